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

/// Runs `server_bin --list-models` (bounded: killed after 10 s) and parses what it prints.
pub fn ask(server_bin: &Path) -> Result<Vec<ModelInfo>, ModelsError> {
    let bin = server_bin.display().to_string();
    let bad = |why: String| ModelsError::Bad { bin: bin.clone(), why };
    let mut child = Command::new(server_bin)
        .arg("--list-models")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ModelsError::Start { bin: bin.clone(), why: e.to_string() })?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > ASK_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(bad(format!("did not exit within {ASK_TIMEOUT:?}; killed")));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(bad(format!("could not be waited for: {e}"))),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
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
