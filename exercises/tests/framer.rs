//! Exercise 1: `cargo test --test framer`. See `src/framer/mod.rs` for the task.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use exercises::framer::{LineFramer, LineTooLong, MAX_LINE, TOO_LONG_REPLY, serve};

/// How long a reply may take before the test gives up: generous, for a loaded machine.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

fn lines_of(framer: &mut LineFramer) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(line) = framer.next_line().expect("no line here is too long") {
        lines.push(String::from_utf8(line).unwrap());
    }
    lines
}

#[test]
fn framer_gives_every_line_of_one_coalesced_read() {
    let mut framer = LineFramer::new();
    framer.push(b"a\nbb\nccc\n");
    assert_eq!(lines_of(&mut framer), ["a", "bb", "ccc"]);
}

#[test]
fn framer_keeps_a_partial_line_until_its_end_arrives() {
    let mut framer = LineFramer::new();
    framer.push(b"hel");
    assert_eq!(framer.next_line(), Ok(None), "half a line is not a line yet");
    framer.push(b"lo\nwor");
    assert_eq!(lines_of(&mut framer), ["hello"]);
    framer.push(b"ld\n\n");
    assert_eq!(lines_of(&mut framer), ["world", ""], "an empty line is a line too");
}

#[test]
fn framer_accepts_the_longest_line_and_refuses_one_byte_more() {
    let mut framer = LineFramer::new();
    framer.push(&vec![b'x'; MAX_LINE]);
    assert_eq!(framer.next_line(), Ok(None));
    framer.push(b"\n");
    assert_eq!(framer.next_line().unwrap().map(|l| l.len()), Some(MAX_LINE));

    let mut framer = LineFramer::new();
    framer.push(&vec![b'x'; MAX_LINE + 1]);
    assert_eq!(framer.next_line(), Err(LineTooLong), "a peer that never sends \\n must be stopped");
}

/// A server on a free port (port 0: the kernel picks one, so tests never collide).
fn start_server() -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || serve(listener));
    let client = TcpStream::connect(addr).unwrap();
    // Send every write as its own segment: the split test needs the pieces to stay apart.
    client.set_nodelay(true).unwrap();
    client.set_read_timeout(Some(REPLY_DEADLINE)).unwrap();
    client
}

/// Read `count` reply lines; a missing reply fails after [`REPLY_DEADLINE`].
fn read_replies(reader: &mut BufReader<TcpStream>, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a reply within the deadline");
            line
        })
        .collect()
}

#[test]
fn server_answers_each_line_of_one_coalesced_write() {
    let mut client = start_server();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    client.write_all(b"a\nbb\nccc\n").unwrap(); // three messages, one write
    assert_eq!(read_replies(&mut reader, 3), ["1 a\n", "2 bb\n", "3 ccc\n"]);
}

#[test]
fn server_waits_for_the_rest_of_a_line_split_over_writes() {
    let mut client = start_server();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    for piece in [&b"hel"[..], b"lo\nwo", b"rld", b"\n"] {
        client.write_all(piece).unwrap();
        // Not synchronisation: the pause lets each piece reach the server as its own read,
        // the way a slow network delivers it. The replies below are what the test waits for.
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read_replies(&mut reader, 2), ["5 hello\n", "5 world\n"]);
}

#[test]
fn server_answers_a_too_long_line_with_an_error_and_closes() {
    let mut client = start_server();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    client.write_all(b"ok\n").unwrap();
    client.write_all(&vec![b'x'; MAX_LINE + 1]).unwrap();
    let too_long = String::from_utf8(TOO_LONG_REPLY.to_vec()).unwrap();
    assert_eq!(read_replies(&mut reader, 2), ["2 ok\n".to_string(), too_long]);
    assert_eq!(read_replies(&mut reader, 1), [""], "then the server closes: end of file");
}
