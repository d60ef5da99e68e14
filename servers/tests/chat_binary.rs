//! The `server` binary speaking `chat`, as a script sees it: `listening on ADDR`, members that
//! hear each other, and a clean exit on SIGTERM with members still connected.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use servers::Model;
use support::connect;

const BIN: &str = env!("CARGO_BIN_EXE_server");

/// A `server` process, killed if the test fails before it exits.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(model: Model) -> (Process, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["--model", model.name(), "--proto", "chat", "--addr", "127.0.0.1:0", "--grace", "2s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let process = Process(child);
    let line = rx.recv_timeout(Duration::from_secs(10)).expect("a `listening on` line");
    let addr =
        line.strip_prefix("listening on ").and_then(|a| a.trim_end().parse().ok()).expect("an address");
    (process, addr)
}

fn line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a line within the timeout");
    line
}

#[test]
fn every_model_chats_and_exits_0_on_sigterm_with_members_connected() {
    for model in Model::ALL {
        let (mut server, addr) = start(model);
        let mut a = BufReader::new(connect(addr));
        assert!(line(&mut a).starts_with("* you are "), "{model}");
        if model != Model::Blocking {
            let mut b = BufReader::new(connect(addr));
            let welcome = line(&mut b);
            let b_id = welcome.trim_end().strip_prefix("* you are ").expect("a welcome").to_owned();
            assert_eq!(line(&mut a), format!("* {b_id} joined\n"), "{model}");
            b.get_mut().write_all(b"hello from b\n").unwrap();
            assert_eq!(line(&mut a), format!("{b_id}: hello from b\n"), "{model}");
        }
        // SAFETY: kill(2) on the PID of a child we started and have not reaped.
        assert_eq!(unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) }, 0);
        // A member still connected sees end-of-file: shutdown is a clean close, not a reset.
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).expect("a clean end-of-file");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = server.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{model}: no exit within 10 s of SIGTERM");
            thread::sleep(Duration::from_millis(10)); // polling a child's exit, not synchronising
        };
        assert!(status.success(), "{model} exited with {status}");
    }
}
