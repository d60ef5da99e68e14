//! The protocols every model speaks, written *sans-IO*: pure functions from the bytes a peer sent
//! to the bytes it should get back. Nothing here touches a socket, a clock or a thread, so every
//! framing question (a request split over many reads, many requests in one read, a frame that is
//! too large) is answered once, here, and tested without a network.
//!
//! A model owns an input buffer and an output buffer per connection and calls
//! [`Codec::decode`] with the unprocessed input. The decoder answers with one of three outcomes:
//!
//! ```text
//!   input: |req 1 complete|req 2 compl|req 3 partia|
//!           ^ decode -> Request { consumed: 14 }   (response 1 appended to `out`)
//!                          ^ decode -> Request { consumed: 11 }
//!                                      ^ decode -> Incomplete  (keep these bytes, read more)
//! ```
//!
//! `Malformed` means the peer broke the framing: whatever the protocol says to send back has been
//! appended to `out`, and the model closes the connection once that is written. `Last` is a
//! well-formed request after which the protocol itself ends the conversation (HTTP's
//! `Connection: close`): answer it, then close the same way.
//!
//! A decoder may need state shared between connections (the `kv` protocol's store); it gets it
//! as a [`Store`] argument, so the model decides how that state is shared and the decoder does
//! not. The two echo protocols are the two classic answers to TCP being a byte stream with no message boundaries:
//! a *delimiter* ([`echo_line`]) or a *length header* ([`echo_frame`]); [`http`] uses both, and so
//! does [`kv`], Redis's protocol: length headers for its arguments, lines for its headers.
//!
//! [`line`](mod@line) is the newline framing that `echo-line` and `chat` share.
//!
//! [`chat`] is not request/response: a line goes to the *other* members. It still decodes
//! through the same [`Codec`] (its "response" is the message as the others see it, which the
//! model routes instead of writing back), and [`outbox`] holds the rule for a member that reads
//! too slowly to keep up.
//!
//! Besides their tests, every decoder here is fuzzed through [`Codec::decode`], fed whole and
//! split, for panics, replies that depend on how the input was split, and allocation that grows
//! with the input: `servers/examples/fuzz/` (`cargo run --release -p servers --example fuzz`).

pub mod chat;
pub mod echo_frame;
pub mod echo_line;
pub mod http;
pub mod kv;
pub mod line;
pub mod outbox;

use crate::store::Store;

/// The default limit on one request's payload: 64 KiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// Which protocol a server speaks (named in kebab case: `echo-line`; see [`crate::names`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// Lines ending in `\n`, echoed back whole.
    EchoLine,
    /// A 4-byte big-endian length, then that many bytes, echoed back with the same header.
    EchoFrame,
    /// HTTP/1.1: `GET /` answers `Hello, world!`.
    Http,
    /// A key-value store speaking Redis's RESP2 (GET, SET, DEL, EXISTS, INCR, PING).
    Kv,
    /// Lines ending in `\n`, each delivered to every *other* member of one room.
    Chat,
}

impl Proto {
    /// Every protocol, in the order the documentation lists them.
    pub const ALL: [Proto; 5] = [Proto::EchoLine, Proto::EchoFrame, Proto::Http, Proto::Kv, Proto::Chat];

    /// What a server already holding `--max-conns` connections says to one more before it
    /// closes it: what each protocol's real servers say (nginx's `503`, Redis's own words),
    /// so that a client reports "server busy" instead of a mysterious reset. `echo-frame` has
    /// no agreed way to carry an error, so it closes without a word.
    pub fn refusal_at_capacity(self) -> &'static [u8] {
        match self {
            Proto::Http => HTTP_AT_CAPACITY,
            Proto::Kv => b"-ERR max number of clients reached\r\n",
            Proto::EchoLine | Proto::Chat => b"ERR server is at its connection limit\n",
            Proto::EchoFrame => b"",
        }
    }
}

/// The `503` of [`Proto::refusal_at_capacity`]; a test checks its `Content-Length`.
const HTTP_AT_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 35\r\nConnection: close\r\n\r\nserver is at its connection limit\r\n";

crate::spelled_by_clap!(Proto, "protocol");

/// What a decoder made of the bytes it was shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The input does not hold a whole request yet. Call again with the same bytes plus more.
    Incomplete,
    /// One request was answered: its response is appended to `out`, and the first `consumed`
    /// bytes of the input are done with.
    Request { consumed: usize },
    /// Like `Request`, but the protocol says this was the connection's last request: write `out`,
    /// then close. Any input after `consumed` is ignored.
    Last { consumed: usize },
    /// The peer broke the protocol. Any error reply is appended to `out`; write it, then close.
    Malformed,
}

/// One connection's protocol state. Each variant is a small struct, so a connection that is idle
/// costs a few bytes, and dispatch is a `match`, not a virtual call.
#[derive(Debug)]
pub enum Codec {
    EchoLine(echo_line::EchoLine),
    EchoFrame(echo_frame::EchoFrame),
    Http(http::Http),
    Chat(chat::Chat),
    Kv(kv::Kv),
}

impl Codec {
    /// A fresh decoder for one connection.
    pub fn new(proto: Proto, max_frame: usize) -> Codec {
        match proto {
            Proto::EchoLine => Codec::EchoLine(echo_line::EchoLine::new(max_frame)),
            Proto::EchoFrame => Codec::EchoFrame(echo_frame::EchoFrame::new(max_frame)),
            Proto::Http => Codec::Http(http::Http::new(max_frame)),
            Proto::Chat => Codec::Chat(chat::Chat::new(max_frame)),
            Proto::Kv => Codec::Kv(kv::Kv::new(max_frame)),
        }
    }

    /// Decode at most one request from the start of `input`, appending its response to `out`.
    ///
    /// `input` must start where the previous `Request` ended; after `Incomplete` the caller passes
    /// the same bytes again with more appended (decoders may remember how far they looked).
    #[inline]
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>, store: &impl Store) -> Decoded {
        match self {
            Codec::EchoLine(c) => c.decode(input, out),
            Codec::EchoFrame(c) => c.decode(input, out),
            Codec::Http(c) => c.decode(input, out),
            Codec::Chat(c) => c.decode(input, out),
            Codec::Kv(c) => c.decode(input, out, store),
        }
    }

    /// The most bytes a model must be able to hold for one request (payload plus framing).
    /// A model never needs a larger input buffer than this.
    pub fn max_request_len(&self) -> usize {
        match self {
            Codec::EchoLine(c) => c.max_request_len(),
            Codec::EchoFrame(c) => c.max_request_len(),
            Codec::Http(c) => c.max_request_len(),
            Codec::Chat(c) => c.max_request_len(),
            Codec::Kv(c) => c.max_request_len(),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the protocol tests: feed a byte stream in arbitrary pieces the way a
    //! model would, and collect everything the decoder answered.
    use proptest::prelude::*;

    use super::*;

    /// Streams of up to 8 newline-terminated lines of any other bytes, some of them longer than
    /// `max_line` (so the line protocols' limit is crossed too).
    pub fn lines(max_line: usize) -> impl Strategy<Value = Vec<u8>> {
        let line =
            prop::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..=max_line + 2);
        prop::collection::vec(line, 0..8).prop_map(|lines| {
            let mut stream = Vec::new();
            for l in lines {
                stream.extend_from_slice(&l);
                stream.push(b'\n');
            }
            stream
        })
    }

    /// What a whole conversation produced: all output bytes, and whether it ended malformed.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Transcript {
        pub out: Vec<u8>,
        pub requests: usize,
        pub malformed: bool,
    }

    /// Feed `stream` to a fresh codec in chunks whose lengths are given by `cuts`
    /// (offsets into the stream, ascending), exactly as a model does.
    pub fn run(proto: Proto, max_frame: usize, stream: &[u8], cuts: &[usize]) -> Transcript {
        let mut codec = Codec::new(proto, max_frame);
        let store =
            crate::store::LocalStore::new(crate::store::Capacity::keys(crate::store::DEFAULT_MAX_KEYS));
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut requests = 0;
        let mut start = 0;
        let ends = cuts.iter().copied().chain(std::iter::once(stream.len()));
        for end in ends {
            let end = end.clamp(start, stream.len());
            pending.extend_from_slice(&stream[start..end]);
            start = end;
            let mut at = 0;
            loop {
                match codec.decode(&pending[at..], &mut out, &store) {
                    Decoded::Incomplete => break,
                    Decoded::Request { consumed } => {
                        assert!(consumed > 0, "a request consumes bytes");
                        at += consumed;
                        requests += 1;
                    }
                    Decoded::Last { .. } => {
                        return Transcript { out, requests: requests + 1, malformed: false };
                    }
                    Decoded::Malformed => {
                        return Transcript { out, requests, malformed: true };
                    }
                }
            }
            pending.drain(..at);
        }
        Transcript { out, requests, malformed: false }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_http_refusal_at_capacity_has_a_true_content_length() {
        let text = std::str::from_utf8(super::HTTP_AT_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())), "{head}");
        assert!(head.starts_with("HTTP/1.1 503 ") && head.ends_with("Connection: close"));
    }
}
