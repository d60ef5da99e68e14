//! The lab's list of models, as the server binary tells it: `server --list-models` prints one
//! model per line, `NAME<TAB>one-line description`.
//!
//! The suite never links the servers crate, and it keeps no list of its own: a list copied here
//! would go stale the day a model is added, and the matrix would quietly leave the new one out.
//! Asking the very binary that is about to be measured also means the plan can only name models
//! that binary can run. Parsing is kept apart from asking, so tests inject a list without a
//! binary.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long `server --list-models` may take: it prints a few lines and exits.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// One model as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The `--model` value.
    pub name: String,
    /// What it is, in one line.
    pub about: String,
}

/// Why the list could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    /// The binary could not be started at all.
    #[error(
        "cannot run `{bin} --list-models`: {why}. Build first: cargo build --release (or pass --server-bin PATH)"
    )]
    Start {
        /// The server binary.
        bin: String,
        /// What the operating system said.
        why: String,
    },
    /// It ran but failed, hung or printed something else than the list.
    #[error("`{bin} --list-models` {why}")]
    Bad {
        /// The server binary.
        bin: String,
        /// What went wrong, in words.
        why: String,
    },
}

/// Parses `--list-models` output. Blank lines are ignored; every other line must be
/// `NAME<TAB>description` with a name fit for a command line and an id (no spaces, no `/`),
/// and no name twice. An empty list is an error: a matrix without models measures nothing.
pub fn parse_list(text: &str) -> Result<Vec<ModelInfo>, String> {
    let mut models: Vec<ModelInfo> = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let (name, about) = line.split_once('\t').unwrap_or((line, ""));
        let name = name.trim();
        let fit = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !fit {
            return Err(format!("line {}: expected NAME<TAB>description, got `{line}`", n + 1));
        }
        if models.iter().any(|m| m.name == name) {
            return Err(format!("line {}: model `{name}` is listed twice", n + 1));
        }
        models.push(ModelInfo { name: name.to_owned(), about: about.trim().to_owned() });
    }
    if models.is_empty() {
        return Err("printed no models".to_owned());
    }
    Ok(models)
}

/// Runs `cmd` to its end (killed after [`ASK_TIMEOUT`]): its exit code, stdout and stderr. An
/// error when it cannot be started (the message starts with `cannot start:`) or waited for.
fn run_bounded(mut cmd: Command) -> Result<(Option<i32>, String, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > ASK_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not exit within {ASK_TIMEOUT:?}; killed"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    Ok((status.code(), out.join().unwrap_or_default(), err.join().unwrap_or_default()))
}

/// Runs `server_bin --list-models` (bounded: killed after 10 s) and parses what it prints.
pub fn ask(server_bin: &Path) -> Result<Vec<ModelInfo>, ModelsError> {
    let bin = server_bin.display().to_string();
    let bad = |why: String| ModelsError::Bad { bin: bin.clone(), why };
    let mut cmd = Command::new(server_bin);
    cmd.arg("--list-models");
    let (code, stdout, stderr) =
        run_bounded(cmd).map_err(|why| match why.strip_prefix("cannot start: ") {
            Some(why) => ModelsError::Start { bin: bin.clone(), why: why.to_owned() },
            None => bad(why),
        })?;
    if code != Some(0) {
        let status = code.map_or("killed by a signal".to_owned(), |c| format!("exit status: {c}"));
        let said = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("nothing on stderr");
        return Err(bad(format!(
            "failed ({status}; it said: {}). A server built before --list-models existed cannot \
             tell the suite its models: rebuild it (cargo build --release)",
            said.trim()
        )));
    }
    parse_list(&stdout).map_err(bad)
}

/// Reads a child's pipe to its end on a thread of its own, so a chatty child can never block
/// on a full pipe while the caller waits for it to exit.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Why a model cannot run a point: the line a server prints instead of `listening on` when
/// its model cannot serve (`server: io-uring is unavailable here: …`, `server:
/// process-per-connection does not serve kv: …`), and exits 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailable {
    /// Which of the two it is.
    pub kind: UnavailableKind,
    /// The server's line, without its `server: ` prefix.
    pub reason: String,
}

/// The two ways a model can decline a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnavailableKind {
    /// This machine lacks what the model needs (`… is unavailable here: …`).
    UnavailableHere,
    /// The model does not serve this protocol, by design (`… does not serve …`).
    NotServed,
}

impl UnavailableKind {
    /// How tables say it.
    pub fn label(self) -> &'static str {
        match self {
            UnavailableKind::UnavailableHere => "unavailable here",
            UnavailableKind::NotServed => "not served by this model",
        }
    }
}

impl Unavailable {
    /// Finds the server's refusal in what it wrote on stderr: the first line with `is
    /// unavailable here` or `does not serve` (the words the servers promise to keep). `None`
    /// when there is none: then the server failed to start, which is a failure.
    pub fn from_stderr(text: &str) -> Option<Unavailable> {
        text.lines().find_map(|line| {
            let kind = if line.contains("is unavailable here") {
                UnavailableKind::UnavailableHere
            } else if line.contains("does not serve") {
                UnavailableKind::NotServed
            } else {
                return None;
            };
            let reason = line.trim();
            let reason = reason.strip_prefix("server: ").unwrap_or(reason).to_owned();
            Some(Unavailable { kind, reason })
        })
    }
}

/// What the server answers when asked whether its model can serve a point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `server … --check` exited 0: it would listen.
    Serves,
    /// It exited 1 with the line that says why not.
    Declines(Unavailable),
    /// It could not tell (a server built before `--check`, or another error): the run will
    /// find out by starting it.
    Unknown(String),
}

/// Reads the outcome of `server --model M --proto P … --check`: exit 0 serves, exit 1 with a
/// refusal line declines, anything else cannot tell.
pub fn verdict(code: Option<i32>, stderr: &str) -> Verdict {
    match (code, Unavailable::from_stderr(stderr)) {
        (Some(0), _) => Verdict::Serves,
        (Some(1), Some(unavailable)) => Verdict::Declines(unavailable),
        _ => {
            let said = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("nothing on stderr");
            Verdict::Unknown(format!("exit {code:?}: {}", said.trim()))
        }
    }
}

/// Asks `server_bin ARGS --check` (bounded: killed after 10 s). `args` are the point's server
/// arguments (`--model`, `--proto`, its flags): a model may decline some flags and not others.
pub fn check(server_bin: &Path, args: &[String]) -> Verdict {
    let mut cmd = Command::new(server_bin);
    cmd.args(args).arg("--check");
    match run_bounded(cmd) {
        Ok((code, _, stderr)) => verdict(code, &stderr),
        Err(why) => Verdict::Unknown(why),
    }
}

/// The names alone, in the server's order.
pub fn names(models: &[ModelInfo]) -> Vec<String> {
    models.iter().map(|m| m.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_names_and_descriptions() {
        let text = "blocking\tone client at a time\nreactor\tone loop, readiness events\n\n";
        let models = parse_list(text).unwrap();
        assert_eq!(names(&models), ["blocking", "reactor"]);
        assert_eq!(models[1].about, "one loop, readiness events");
        // A name alone is still a name; its description is empty.
        assert_eq!(parse_list("async\n").unwrap()[0].about, "");
    }

    #[test]
    fn a_list_that_is_not_one_is_refused_with_the_line() {
        assert!(parse_list("").unwrap_err().contains("no models"));
        assert!(parse_list("two words\tx").unwrap_err().contains("line 1"));
        assert!(parse_list("a\tx\nb/c\ty").unwrap_err().contains("line 2"));
        assert!(parse_list("a\tx\na\ty").unwrap_err().contains("twice"));
        assert!(parse_list("error: unexpected argument '--list-models'").is_err());
    }

    #[test]
    fn a_refusal_is_found_in_the_servers_words() {
        let io =
            Unavailable::from_stderr("server: io-uring is unavailable here: kernel.io_uring_disabled is 2\n");
        assert_eq!(
            io,
            Some(Unavailable {
                kind: UnavailableKind::UnavailableHere,
                reason: "io-uring is unavailable here: kernel.io_uring_disabled is 2".into()
            })
        );
        let kv = Unavailable::from_stderr(
            "warning: cannot raise the open-file limit\nserver: process-per-connection does not serve kv: no shared memory\n",
        )
        .unwrap();
        assert_eq!(kv.kind, UnavailableKind::NotServed);
        assert_eq!(kv.reason, "process-per-connection does not serve kv: no shared memory");
        assert_eq!(kv.kind.label(), "not served by this model");
        // A server that failed for another reason did not decline: that is a failure.
        assert_eq!(Unavailable::from_stderr("server: cannot listen on 127.0.0.1:0: in use\n"), None);
        assert_eq!(Unavailable::from_stderr(""), None);
    }

    #[test]
    fn the_check_says_serves_declines_or_cannot_tell() {
        assert_eq!(verdict(Some(0), ""), Verdict::Serves);
        let declined =
            verdict(Some(1), "server: process-per-connection does not serve chat: no shared room\n");
        assert_eq!(
            declined,
            Verdict::Declines(Unavailable {
                kind: UnavailableKind::NotServed,
                reason: "process-per-connection does not serve chat: no shared room".into()
            })
        );
        // A server from before --check: clap's usage error, exit 2.
        let old = verdict(Some(2), "error: unexpected argument '--check' found\n");
        assert!(matches!(&old, Verdict::Unknown(why) if why.contains("unexpected argument")), "{old:?}");
        // Exit 1 for another reason is not a refusal.
        assert!(matches!(verdict(Some(1), "server: cannot listen\n"), Verdict::Unknown(_)));
        // `true` accepts anything and exits 0; `false` exits 1 and says nothing.
        assert_eq!(check(Path::new("true"), &["--model".into(), "x".into()]), Verdict::Serves);
        assert!(matches!(check(Path::new("false"), &[]), Verdict::Unknown(_)));
        assert!(matches!(check(Path::new("/nonexistent/server"), &[]), Verdict::Unknown(_)));
    }

    #[test]
    fn a_missing_binary_says_to_build_first() {
        let err = ask(Path::new("/nonexistent/server")).unwrap_err().to_string();
        assert!(err.contains("cargo build --release"), "{err}");
    }

    #[test]
    fn a_binary_that_fails_is_reported_in_its_own_words() {
        // `false` exits 1 whatever its arguments: a stand-in for a server without the flag.
        let err = ask(Path::new("false")).unwrap_err().to_string();
        assert!(err.contains("failed") && err.contains("rebuild"), "{err}");
    }
}
