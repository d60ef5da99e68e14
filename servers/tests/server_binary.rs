//! The `server` binary as a script sees it: the `listening on` line, signals, exit codes.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use servers::{Model, Proto};
use support::{connect, request, round_trip};

const BIN: &str = env!("CARGO_BIN_EXE_server");

/// A `server` process, killed if a test fails before stopping it.
struct Process {
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn start(args: &[&str]) -> (Process, SocketAddr) {
        let mut child = Command::new(BIN)
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

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with the PID of a child we started and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    fn wait_within(&mut self, limit: Duration) -> ExitStatus {
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

#[test]
fn every_model_prints_its_address_echoes_and_exits_0_on_sigterm() {
    for model in Model::ALL {
        for proto in Proto::ALL {
            let (mut server, addr) = Process::start(&["--model", model.name(), "--proto", proto.name()]);
            let mut client = connect(addr);
            round_trip(&mut client, proto, b"hello from a script");
            drop(client);
            server.signal(libc::SIGTERM);
            let status = server.wait_within(Duration::from_secs(10));
            assert!(status.success(), "{model}/{proto} exited with {status}");
        }
    }
}

#[test]
fn sigint_with_a_connection_open_exits_0_after_the_client_is_drained() {
    let (mut server, addr) = Process::start(&["--model", "reactor", "--proto", "echo-line"]);
    let mut client = connect(addr);
    round_trip(&mut client, Proto::EchoLine, b"before");
    server.signal(libc::SIGINT);
    // The open connection is told no more input will be read: it sees end-of-file.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(server.wait_within(Duration::from_secs(10)).success());
}

#[test]
fn address_in_use_is_a_one_line_error_and_exit_1() {
    let (_first, addr) = Process::start(&["--model", "async", "--proto", "echo-frame"]);
    let out = Command::new(BIN)
        .args(["--model", "reactor", "--proto", "echo-line", "--addr", &addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout when not listening");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.contains("Address already in use"), "{err}");
}

#[test]
fn bad_flags_get_a_usage_error() {
    for args in [&["--model", "fastest", "--proto", "echo-line"][..], &["--model", "reactor"][..]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error:") && err.contains("--help"), "{args:?}: {err}");
    }
}

#[test]
fn knobs_and_limits_are_accepted_by_every_model() {
    for model in Model::ALL {
        let (mut server, addr) = Process::start(&[
            "--model",
            model.name(),
            "--proto",
            "echo-line",
            "--work-us",
            "50",
            "--block-us",
            "100",
            "--max-frame",
            "16",
            "--grace",
            "1s",
        ]);
        let mut client = connect(addr);
        round_trip(&mut client, Proto::EchoLine, b"sixteen bytes ok");
        drop(client); // `blocking` serves the next client only after this one leaves
        let mut too_long = connect(addr);
        std::io::Write::write_all(&mut too_long, &request(Proto::EchoLine, b"seventeen bytes!!")).unwrap();
        let mut reply = String::new();
        BufReader::new(too_long).read_line(&mut reply).unwrap();
        assert_eq!(reply, "ERR line longer than 16 bytes\n", "{model}");
        server.signal(libc::SIGTERM);
        assert!(server.wait_within(Duration::from_secs(10)).success(), "{model}");
    }
}
