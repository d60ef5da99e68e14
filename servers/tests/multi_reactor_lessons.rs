//! The `multi-reactor` model's own promises, beyond the conformance bodies (which run it with
//! its defaults: one loop per CPU, `--accept reuseport`): both ways of spreading connections
//! work with more loops than CPUs, and chat and the kv store reach across loops.
//!
//! `--accept handoff` deals connections out round robin, so with three loops three members are
//! known to sit on three different loops: every line then has to cross from one loop to another.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;

use servers::config::AcceptMode;
use servers::{Model, Proto, ServerConfig};
use support::*;

fn multi_reactor(proto: Proto, loops: usize, accept: AcceptMode) -> TestServer {
    let mut config = ServerConfig::new(proto);
    config.threads = loops;
    config.accept = accept;
    TestServer::with_config(Model::MultiReactor, config)
}

/// Many clients at once on four loops, with each way of spreading them: every one is served.
#[test]
fn every_client_is_served_with_either_accept_mode() {
    for accept in [AcceptMode::Reuseport, AcceptMode::Handoff] {
        let server = multi_reactor(Proto::EchoLine, 4, accept);
        let clients: Vec<_> = (0..32)
            .map(|i| {
                let mut stream = server.connect();
                thread::spawn(move || {
                    for k in 0..50 {
                        round_trip(
                            &mut stream,
                            Proto::EchoLine,
                            format!("client {i} request {k}").as_bytes(),
                        );
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap_or_else(|_| panic!("a client failed with --accept {accept}"));
        }
    }
}

/// A chat member as `nc` would be: lines in, lines out.
struct Member {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    id: String,
}

impl Member {
    fn join(server: &TestServer) -> Member {
        let stream = server.connect();
        let mut member =
            Member { writer: stream.try_clone().unwrap(), reader: BufReader::new(stream), id: String::new() };
        let welcome = member.line();
        member.id = welcome
            .strip_prefix("* you are ")
            .unwrap_or_else(|| panic!("not a welcome: {welcome}"))
            .to_owned();
        member
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a line within the timeout");
        line.trim_end_matches('\n').to_owned()
    }

    fn say(&mut self, text: &str) {
        self.writer.write_all(format!("{text}\n").as_bytes()).unwrap();
    }
}

/// Three members on three loops: joins, lines and leaves reach everyone, in each sender's order.
#[test]
fn chat_reaches_members_on_other_loops() {
    let server = multi_reactor(Proto::Chat, 3, AcceptMode::Handoff);
    let mut a = Member::join(&server);
    let mut b = Member::join(&server);
    assert_eq!(a.line(), format!("* {} joined", b.id));
    let mut c = Member::join(&server);
    assert_eq!(a.line(), format!("* {} joined", c.id));
    assert_eq!(b.line(), format!("* {} joined", c.id));
    for k in 0..100 {
        a.say(&format!("line {k}"));
    }
    for member in [&mut b, &mut c] {
        for k in 0..100 {
            assert_eq!(member.line(), format!("{}: line {k}", a.id));
        }
    }
    c.say("bye");
    assert_eq!(a.line(), format!("{}: bye", c.id));
    let c_id = c.id.clone();
    drop(c);
    assert_eq!(b.line(), format!("{}: bye", c_id));
    assert_eq!(a.line(), format!("* {c_id} left"));
    assert_eq!(b.line(), format!("* {c_id} left"));
}

/// The kv store is one store, whichever loop a client lands on.
#[test]
fn kv_state_is_shared_by_every_loop() {
    let server = multi_reactor(Proto::Kv, 3, AcceptMode::Handoff);
    let mut first = server.connect();
    first.write_all(b"SET k shared\r\n").unwrap();
    assert_eq!(read_reply(&mut first, 5).unwrap(), b"+OK\r\n");
    for _ in 0..3 {
        let mut other = server.connect(); // round robin: the next two land on the other loops
        other.write_all(b"GET k\r\n").unwrap();
        assert_eq!(read_reply(&mut other, 12).unwrap(), b"$6\r\nshared\r\n");
    }
}
