//! Starting and stopping child processes: the `listening on` handshake, SIGTERM with a
//! deadline (pinning them to CPUs is [`affinity`](crate::affinity)'s).
//!
//! Every wait here is bounded, and the only processes ever signalled are the suite's own
//! children, addressed by the PID their `Child` holds: a server that hangs is killed and
//! recorded as hanging, and the suite moves on.

use std::io::{self, BufRead, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Describes how a process ended, and whether that was a clean `exit 0`.
pub fn describe_exit(status: ExitStatus) -> (String, bool) {
    match (status.code(), status.signal()) {
        (Some(0), _) => ("exit 0".to_owned(), true),
        (Some(code), _) => (format!("exit {code}"), false),
        (None, Some(sig)) => (format!("killed by signal {sig}"), false),
        _ => ("unknown end".to_owned(), false),
    }
}

/// Reads the child's stdout until a line `listening on ADDR` (returned), the deadline, or EOF.
/// The reader thread keeps draining stdout afterwards so the child never blocks on a full pipe.
pub fn wait_listening(child: &mut Child, within: Duration) -> Result<String, String> {
    let stdout = child.stdout.take().ok_or("server stdout was not captured")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut announced = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !announced {
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    announced = true;
                    let _ = tx.send(addr.to_owned());
                }
            }
        }
    });
    let start = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(addr) => return Ok(addr),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let how = child.wait().map(|s| describe_exit(s).0).unwrap_or_else(|e| e.to_string());
                return Err(format!("server ended before printing `listening on` ({how})"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "server ended before printing `listening on` ({})",
                        describe_exit(status).0
                    ));
                }
                if start.elapsed() > within {
                    return Err(format!("server printed no `listening on` within {within:?}"));
                }
            }
        }
    }
}

/// Sends SIGTERM to our child and waits up to `within` for it to exit; kills it if it does not.
/// Returns the description of its end and whether it was a clean `exit 0` after SIGTERM.
pub fn stop(child: &mut Child, within: Duration) -> (String, bool) {
    if let Ok(Some(status)) = child.try_wait() {
        let (how, _) = describe_exit(status);
        return (format!("had already ended before SIGTERM: {how}"), false);
    }
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return kill(child, "pid out of range");
    };
    // SAFETY: plain kill(2) on the PID of a child we have not yet reaped, so it cannot have
    // been reused by another process.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return kill(child, &format!("SIGTERM failed: {}", io::Error::last_os_error()));
    }
    let start = Instant::now();
    while start.elapsed() < within {
        match child.try_wait() {
            Ok(Some(status)) => return describe_exit(status),
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => return kill(child, &format!("waiting failed: {e}")),
        }
    }
    kill(child, &format!("hung: still running {within:?} after SIGTERM"))
}

/// SIGKILLs our child and reaps it.
pub fn kill(child: &mut Child, why: &str) -> (String, bool) {
    let _ = child.kill();
    let _ = child.wait();
    (format!("{why}; killed"), false)
}

/// Standard input closed, stdout piped, stderr into `log`.
pub fn stdio(cmd: &mut Command, stderr: std::fs::File) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(stderr));
}
