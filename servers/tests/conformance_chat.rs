//! The chat suite: one body per promise, run for every model (the list is at the bottom).
//!
//! Members are plain blocking sockets with every read bounded by `support::TIMEOUT`; the lines
//! are parsed here, not with `servers::proto::chat`, so a bug in the server's wire format cannot
//! hide behind the same bug in the test. The `blocking` model serves one member at a time, so it
//! runs the cases a lone member can take part in, plus its lesson instead of the others.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown as Direction, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use servers::{Model, Proto, ServerConfig};
use support::{TIMEOUT, TestServer, nothing_arrives_within};

fn config() -> ServerConfig {
    let mut config = ServerConfig::new(Proto::Chat);
    // More workers than any case has members, so the pool's own lesson stays out of the way.
    config.threads = 8;
    config
}

fn start(model: Model) -> TestServer {
    TestServer::with_config(model, config())
}

/// One member, as a test sees it.
struct Member {
    id: u64,
    reader: BufReader<TcpStream>,
}

impl Member {
    /// Connect and read the welcome, which names this member.
    fn join(addr: SocketAddr) -> Member {
        Member::welcome(support::connect(addr))
    }

    /// Connect with a tiny receive buffer, so that a member that does not read fills it fast.
    fn join_with_small_window(addr: SocketAddr) -> Member {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect_timeout(&addr.into(), TIMEOUT).unwrap();
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Member::welcome(stream)
    }

    fn welcome(stream: TcpStream) -> Member {
        let mut member = Member { id: 0, reader: BufReader::new(stream) };
        let line = member.line();
        member.id = line
            .strip_prefix("* you are ")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("expected a welcome, got {line:?}"));
        member
    }

    /// The next line, without its `\n`; panics on end-of-file or after the timeout.
    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("a line within the timeout");
        assert!(n > 0 && line.ends_with('\n'), "expected a whole line, got {line:?} then end-of-file");
        line.pop();
        line
    }

    fn say(&mut self, text: &str) {
        self.stream().write_all(format!("{text}\n").as_bytes()).unwrap();
    }

    fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    /// True if no byte arrives within `wait`.
    fn hears_nothing_for(&mut self, wait: Duration) -> bool {
        self.reader.buffer().is_empty() && nothing_arrives_within(self.reader.get_mut(), wait)
    }

    /// Everything up to a clean end-of-file.
    fn rest(&mut self) -> String {
        let mut rest = String::new();
        self.reader.read_to_string(&mut rest).expect("a clean end-of-file");
        rest
    }
}

/// `members` join one after another; each one's arrival is announced to everyone before it.
fn join_all(addr: SocketAddr, members: usize) -> Vec<Member> {
    let mut all: Vec<Member> = Vec::new();
    for _ in 0..members {
        let new = Member::join(addr);
        for earlier in &mut all {
            assert_eq!(earlier.line(), format!("* {} joined", new.id));
        }
        all.push(new);
    }
    all
}

/// A lone member is welcomed, hears nothing of its own lines, and can leave cleanly.
pub fn a_lone_member_is_welcomed_and_can_leave(model: Model) {
    let server = start(model);
    let mut alone = Member::join(server.addr);
    alone.say("is anybody there?");
    assert!(alone.hears_nothing_for(Duration::from_millis(300)), "a line never comes back to its sender");
    alone.stream().shutdown(Direction::Write).unwrap();
    assert_eq!(alone.rest(), "", "leaving ends with a clean end-of-file");
    // The room is empty again: the next member is welcomed as well.
    let next = Member::join(server.addr);
    assert!(next.id > alone.id, "ids are never reused");
}

/// Everyone is told when someone joins or leaves.
pub fn joins_and_leaves_are_announced(model: Model) {
    let server = start(model);
    let mut members = join_all(server.addr, 3);
    let leaving = members.pop().unwrap();
    let gone = leaving.id;
    drop(leaving);
    for m in &mut members {
        assert_eq!(m.line(), format!("* {gone} left"));
    }
    let late = Member::join(server.addr);
    for m in &mut members {
        assert_eq!(m.line(), format!("* {} joined", late.id));
    }
}

/// Four members talk at once: each line reaches every other member exactly once, in the order
/// its sender said it, behind its sender's id, and never comes back to its sender.
pub fn every_line_reaches_every_other_member_once_in_order(model: Model) {
    const MEMBERS: usize = 4;
    const LINES: usize = 300;
    let server = start(model);
    let members = join_all(server.addr, MEMBERS);
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let handles: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(me, mut member)| {
            let ids = ids.clone();
            thread::spawn(move || {
                let mut writer = member.stream().try_clone().unwrap();
                // Write on a thread of its own, in batches of varying size, while reading here.
                let sender = thread::spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(me as u64);
                    let mut k = 0;
                    while k < LINES {
                        let batch = rng.usize(1..20).min(LINES - k);
                        let text: String = (k..k + batch)
                            .map(|k| format!("from {me} line {k} {}\n", "x".repeat(k % 50)))
                            .collect();
                        writer.write_all(text.as_bytes()).unwrap();
                        k += batch;
                    }
                });
                let mut next = [0usize; MEMBERS];
                while next.iter().enumerate().any(|(s, n)| s != me && *n < LINES) {
                    let line = member.line();
                    let (prefix, text) =
                        line.split_once(": ").unwrap_or_else(|| panic!("not a message: {line:?}"));
                    let words: Vec<&str> = text.split(' ').collect();
                    let (from, k): (usize, usize) = (words[1].parse().unwrap(), words[3].parse().unwrap());
                    assert_ne!(from, me, "member {me} heard its own line {k}");
                    assert_eq!(prefix, ids[from].to_string(), "the prefix is the sender's id");
                    assert_eq!(k, next[from], "member {me}: lines of {from} out of order or missing");
                    assert_eq!(text, format!("from {from} line {k} {}", "x".repeat(k % 50)), "line intact");
                    next[from] += 1;
                }
                sender.join().unwrap();
                // Nothing more: no duplicates. The others are still sending or about to leave,
                // so only notices may follow.
                member
            })
        })
        .collect();
    let mut members: Vec<Member> = handles.into_iter().map(|h| h.join().expect("a member failed")).collect();
    for m in &mut members {
        m.stream().shutdown(Direction::Write).unwrap();
        for line in m.rest().lines() {
            assert!(
                line.starts_with("* ") && line.ends_with(" left"),
                "unexpected {line:?} after the last line"
            );
        }
    }
}

/// Lines written one byte per `write`, or fifty to a `write`, arrive as the same lines.
pub fn split_and_coalesced_lines_arrive_whole(model: Model) {
    let server = start(model);
    let mut members = join_all(server.addr, 3);
    let lines: Vec<String> = (0..50).map(|i| format!("line {i} {}", "y".repeat(i))).collect();
    let stream: String = lines.iter().map(|l| format!("{l}\n")).collect();
    for byte in stream.as_bytes() {
        members[0].stream().write_all(std::slice::from_ref(byte)).unwrap();
    }
    members[1].stream().write_all(stream.as_bytes()).unwrap();
    let (a, b) = (members[0].id, members[1].id);
    let listener = &mut members[2];
    let mut from_a = Vec::new();
    let mut from_b = Vec::new();
    while from_a.len() < lines.len() || from_b.len() < lines.len() {
        let line = listener.line();
        match line.split_once(": ") {
            Some((p, text)) if p == a.to_string() => from_a.push(text.to_owned()),
            Some((p, text)) if p == b.to_string() => from_b.push(text.to_owned()),
            _ => panic!("unexpected {line:?}"),
        }
    }
    assert_eq!(from_a, lines, "one byte per write");
    assert_eq!(from_b, lines, "fifty lines in one write");
}

/// A member that resets its connection in the middle of a line, with lines still queued for
/// it, is announced as gone and disturbs no one; its half line is never delivered.
pub fn a_member_that_resets_disturbs_no_one(model: Model) {
    let server = start(model);
    let mut members = join_all(server.addr, 3);
    let rude_id = members[2].id;
    {
        let rude = members.pop().unwrap();
        // Lines queued for it while it is not reading, so the server is writing when it resets.
        for i in 0..200 {
            members[0].say(&format!("for the rude one {i} {}", "z".repeat(500)));
        }
        let mut stream = rude.reader.into_inner();
        stream.write_all(b"half a li").unwrap();
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    }
    // The reset and the last lines come from different connections: the notice may arrive
    // anywhere among them.
    let talker = members[0].id;
    let listener = &mut members[1];
    let (mut next, mut told) = (0, false);
    while next < 200 || !told {
        let line = listener.line();
        if line == format!("* {rude_id} left") {
            assert!(!told, "told twice");
            told = true;
        } else {
            assert!(line.starts_with(&format!("{talker}: for the rude one {next} ")), "{line:?}");
            next += 1;
        }
    }
    assert_eq!(members[0].line(), format!("* {rude_id} left"));
    members[0].say("still here?");
    assert_eq!(members[1].line(), format!("{}: still here?", members[0].id));
}

/// A line over `--max-frame` gets `echo-line`'s error reply and a close; the others are told
/// the member left and go on chatting.
pub fn an_oversized_line_is_refused_while_others_chat(model: Model) {
    let mut config = config();
    config.max_frame = 1024;
    let server = TestServer::with_config(model, config);
    let mut members = if model == Model::Blocking { Vec::new() } else { join_all(server.addr, 2) };
    let mut bad = Member::join(server.addr);
    for m in &mut members {
        assert_eq!(m.line(), format!("* {} joined", bad.id));
    }
    bad.stream().write_all(&[b'x'; 8 * 1024]).unwrap();
    bad.stream().shutdown(Direction::Write).unwrap();
    assert_eq!(bad.rest(), "ERR line longer than 1024 bytes\n");
    if let [a, b] = &mut members[..] {
        assert_eq!(a.line(), format!("* {} left", bad.id));
        assert_eq!(b.line(), format!("* {} left", bad.id));
        a.say(&"y".repeat(1024));
        assert_eq!(b.line(), format!("{}: {}", a.id, "y".repeat(1024)), "a line at the limit is fine");
    }
}

/// A member that never reads is dropped once it falls `--chat-queue` bytes behind (plus what
/// the kernel buffers): it gets a last `ERR too slow` line, the others are told, and they keep
/// receiving every line promptly. The server holds only a bounded amount for the slow member:
/// it receives a small part of what was said, not all of it.
///
/// The talker sends in windows of [`WINDOW`] lines and waits until the listener has them all
/// before it sends more, so the listener is never far behind: the one member that falls
/// behind is the one that does not read at all.
pub fn a_slow_member_is_dropped_while_the_others_keep_up(model: Model) {
    const LINES: usize = 12_000;
    const WINDOW: usize = 32;
    const WIDTH: usize = 1000;
    let mut config = config();
    config.chat_queue = 64 * 1024;
    let server = TestServer::with_config(model, config);
    let mut members = join_all(server.addr, 2);
    let mut slow = Member::join_with_small_window(server.addr);
    let slow_id = slow.id;
    for m in &mut members {
        assert_eq!(m.line(), format!("* {slow_id} joined"));
    }
    let mut listener = members.pop().unwrap();
    let mut talker = members.pop().unwrap();
    let talker_id = talker.id;
    let origin = Instant::now();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let (window_tx, window_rx) = mpsc::channel();
    let hear = thread::spawn(move || {
        let mut worst = Duration::ZERO;
        let mut told = false;
        let mut k = 0;
        while k < LINES {
            let line = listener.line();
            if line == format!("* {slow_id} dropped (too slow)") {
                told = true;
                let _ = dropped_tx.send(());
                continue;
            }
            let text = line.strip_prefix(&format!("{talker_id}: ")).unwrap_or_else(|| panic!("{line:?}"));
            let (seq, sent_us) = text.split_once(' ').unwrap();
            assert_eq!(seq.parse::<usize>().unwrap(), k, "in order, none missing");
            let sent = Duration::from_micros(sent_us.split(' ').next().unwrap().parse().unwrap());
            worst = worst.max(origin.elapsed().saturating_sub(sent));
            k += 1;
            if k % WINDOW == 0 {
                let _ = window_tx.send(());
            }
        }
        (told, worst, listener)
    });
    let say = thread::spawn(move || {
        for k in 0..LINES {
            let mut line = format!("{k} {} ", origin.elapsed().as_micros());
            line.push_str(&"w".repeat(WIDTH - line.len()));
            talker.say(&line);
            if (k + 1) % WINDOW == 0 && window_rx.recv_timeout(TIMEOUT).is_err() {
                break; // the listener failed; its thread reports why
            }
        }
        talker
    });
    // As soon as the others are told, the slow member starts reading: it must get whole lines,
    // then the notice, then end-of-file.
    let dropped = dropped_rx.recv_timeout(Duration::from_secs(60));
    if dropped.is_err() {
        let outcome = hear.join();
        panic!(
            "the slow member was not dropped; the listener ended with {:?}",
            outcome.map(|(t, w, _)| (t, w))
        );
    }
    let mut received = 0;
    let last = loop {
        let line = slow.line();
        if line.starts_with("ERR ") {
            break line;
        }
        received += line.len() + 1;
        assert!(line.starts_with(&format!("{talker_id}: ")), "whole lines only: {line:?}");
    };
    assert!(last.starts_with("ERR too slow: more than 65536 bytes"), "{last:?}");
    assert_eq!(slow.rest(), "", "then the connection ends");
    let (told, worst, mut listener) = hear.join().expect("the listener got every line");
    let _talker = say.join().unwrap();
    assert!(told, "the others were told");
    assert!(worst < Duration::from_secs(2), "a line took {worst:?} to reach a member that reads");
    // What the slow member can have received: the server's bound (plus one batch in flight),
    // the kernel's send buffer on the server's side (autotuned up to `tcp_wmem`'s maximum) and
    // its own receive buffer. Well short of everything that was said.
    let said = LINES * (WIDTH + 1);
    let kernel =
        kernel_send_buffer_max() + socket2::SockRef::from(&*slow.stream()).recv_buffer_size().unwrap();
    let bound = 2 * 64 * 1024 + kernel + 64 * 1024;
    assert!(received <= bound, "the slow member got {received} bytes, more than the {bound} it could hold");
    assert!(received < said, "the slow member got everything: nothing was bounded");
    assert!(listener.hears_nothing_for(Duration::from_millis(100)));
}

/// The most the kernel lets one TCP socket buffer for sending (the top of `tcp_wmem`).
fn kernel_send_buffer_max() -> usize {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").unwrap_or_default();
    text.split_whitespace().nth(2).and_then(|max| max.parse().ok()).unwrap_or(4 << 20)
}

/// Shutdown with lines still queued for a member that has not read them: the member gets
/// every one, then end-of-file, and the server stops within its grace period.
pub fn graceful_shutdown_delivers_queued_lines(model: Model) {
    const LINES: usize = 300;
    let mut config = config();
    config.chat_queue = 4 << 20;
    config.grace = Duration::from_secs(10);
    let server = TestServer::with_config(model, config);
    let mut members = join_all(server.addr, 2);
    let mut late_reader = Member::join_with_small_window(server.addr);
    for m in &mut members {
        assert_eq!(m.line(), format!("* {} joined", late_reader.id));
    }
    let lines: Vec<String> = (0..LINES).map(|i| format!("{i} {}", "q".repeat(1000))).collect();
    let talker = members[0].id;
    for l in &lines {
        members[0].say(l);
    }
    for l in &lines {
        assert_eq!(members[1].line(), format!("{talker}: {l}"));
    }
    // Every line has reached the listener, so every line is queued for the late reader too.
    server.trigger_shutdown();
    let got: Vec<String> = late_reader.rest().lines().map(str::to_owned).collect();
    let heard: Vec<&str> = got.iter().filter_map(|l| l.strip_prefix(&format!("{talker}: "))).collect();
    assert_eq!(heard.len(), LINES, "every queued line was delivered before the close");
    assert!(heard.iter().zip(&lines).all(|(h, l)| h == l), "in order and intact");
    server.wait_exit(Duration::from_secs(15)).expect("the server exits cleanly");
    assert!(TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).is_err(), "no longer accepting");
}

/// The `blocking` model's lesson: one member at a time. A second member is not even welcomed
/// while the first is connected, and when its turn comes it has missed everything.
fn blocking_serves_one_member_at_a_time() {
    let server = start(Model::Blocking);
    let mut first = Member::join(server.addr);
    let second = support::connect(server.addr);
    let mut probe = second.try_clone().unwrap();
    assert!(
        nothing_arrives_within(&mut probe, Duration::from_secs(1)),
        "no welcome while the first is served"
    );
    first.say("can anyone hear me?");
    assert!(nothing_arrives_within(&mut probe, Duration::from_millis(300)), "and no message either");
    drop(first);
    let mut second = Member::welcome(second);
    assert!(second.hears_nothing_for(Duration::from_millis(300)), "the first member's line is gone with it");
}

#[test]
fn blocking_lesson_one_member_at_a_time() {
    blocking_serves_one_member_at_a_time();
}

/// Every case a lone member can take part in, for one model.
macro_rules! lone_member_tests {
    ($model:expr) => {
        crate::cases!(
            [super],
            ($model),
            a_lone_member_is_welcomed_and_can_leave,
            an_oversized_line_is_refused_while_others_chat,
        );
    };
}

/// The cases that need several members at once.
macro_rules! room_tests {
    ($model:expr) => {
        lone_member_tests!($model);
        crate::cases!(
            [super],
            ($model),
            joins_and_leaves_are_announced,
            every_line_reaches_every_other_member_once_in_order,
            split_and_coalesced_lines_arrive_whole,
            a_member_that_resets_disturbs_no_one,
            a_slow_member_is_dropped_while_the_others_keep_up,
            graceful_shutdown_delivers_queued_lines,
        );
    };
}

/// The chat cases for one model: `blocking` serves one member at a time, so it takes the lone
/// member's cases, and its lesson is [`blocking_lesson_one_member_at_a_time`]; every other model
/// holds a room.
macro_rules! chat_cases_for {
    (blocking $variant:ident) => {
        mod blocking {
            use super::*;
            lone_member_tests!(Model::$variant);
        }
    };
    // Each member a process of its own, and no room they could share: the model refuses chat,
    // and its test asserts the refusal (see the model's lesson).
    (process_per_connection $variant:ident) => {
        mod process_per_connection {
            use super::*;
            #[test]
            fn refuses_chat_by_design() {
                support::process::assert_refuses(Model::$variant, Proto::Chat);
            }
        }
    };
    ($module:ident $variant:ident) => {
        mod $module {
            use super::*;
            room_tests!(Model::$variant);
        }
    };
}

/// Called with the lab's list of models: one module per model,
/// `cargo test --test conformance_chat reactor::`.
macro_rules! chat_conformance_tests {
    ($(#[doc = $about:literal] $module:ident => $variant:ident $(+ $check:ident)?,)*) => {
        $(chat_cases_for!($module $variant);)*
    };
}

servers::for_each_model!(chat_conformance_tests);
