//! The `server` binary speaking `chat`, as a script sees it: `listening on ADDR`, members that
//! hear each other, and a clean exit on SIGTERM with members still connected.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use servers::{Model, Proto, ServerConfig};
use support::connect;
use support::process::Process;

fn start(model: Model) -> (Process, SocketAddr) {
    Process::start(&["--model", &model.to_string(), "--proto", "chat", "--grace", "2s"])
}

fn line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a line within the timeout");
    line
}

#[test]
fn every_model_chats_and_exits_0_on_sigterm_with_members_connected() {
    // A model that cannot serve chat here, or refuses it by design, is left out: its own test
    // asserts why (`conformance_chat.rs`).
    for model in Model::ALL.into_iter().filter(|m| m.check(&ServerConfig::new(Proto::Chat)).is_ok()) {
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
        server.signal(libc::SIGTERM);
        // A member still connected sees end-of-file: shutdown is a clean close, not a reset.
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).expect("a clean end-of-file");
        let status = server.wait_within(Duration::from_secs(10));
        assert!(status.success(), "{model} exited with {status}");
    }
}
