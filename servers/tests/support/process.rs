//! The `server` binary as a child process: started on port 0, its address read from its first
//! line, killed if a test fails before it exits.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use servers::{CannotServe, Model, Proto, ServerConfig};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_server");

/// A running `server` process.
pub struct Process {
    pub child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `server ARGS` (its `--addr` defaults to port 0) and waits for `listening on ADDR`.
    pub fn start(args: &[&str]) -> (Process, SocketAddr) {
        Process::start_with(args, |_| {})
    }

    /// Starts the server after `adjust` has had its say on the command (limits, say).
    pub fn start_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> (Process, SocketAddr) {
        let mut command = Command::new(BIN);
        adjust(&mut command);
        let mut child = command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server binary");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let process = Process { child };
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("a `listening on` line");
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        (process, addr)
    }

    /// The server's process ID, for reading its `/proc` files.
    #[allow(dead_code)] // not every test binary that includes `support` reads /proc
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` (`libc::SIGTERM`, say).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with the PID of a child we started and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit, failing the test after `limit`.
    pub fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit within {limit:?}");
            thread::sleep(Duration::from_millis(10)); // polling a child's exit, not synchronising
        }
    }
}

/// A model that refuses `proto` by design: its `check` says so, and the `server` binary prints
/// that as one line on stderr (`... does not serve PROTO: why`) and exits 1 without listening.
pub fn assert_refuses(model: Model, proto: Proto) {
    let refusal = model.check(&ServerConfig::new(proto));
    assert!(matches!(refusal, Err(CannotServe::Refuses { .. })), "{model} must refuse {proto}: {refusal:?}");
    let child = Command::new(BIN)
        .args(["--model", &model.to_string(), "--proto", &proto.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server binary");
    // A server that does not refuse would listen for ever: `wait_within` kills it then.
    let mut process = Process { child };
    let status = process.wait_within(Duration::from_secs(10));
    let (mut out, mut err) = (String::new(), String::new());
    process.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    process.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{model}/{proto}: {err}");
    assert!(!out.contains("listening on"), "{model} listened for {proto} before refusing: {out:?}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(&format!("does not serve {proto}")), "{err}");
}
