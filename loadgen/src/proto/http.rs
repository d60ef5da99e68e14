//! `http`: keep-alive `GET / HTTP/1.1` requests; every response must be `200` with the body
//! `Hello, world!`, framed by its `Content-Length`.
//!
//! Written from RFC 9112 (HTTP/1.1's message syntax), not from the lab's server. A response is
//! a head that ends with an empty line (`\r\n\r\n`) and a body of exactly `Content-Length`
//! bytes. With `--depth` above 1 the requests are pipelined: HTTP/1.1 answers them in order,
//! so the engine's in-flight queue pairs each response with its request as it does for the
//! echo protocols.
//!
//! What is checked, and how it is counted:
//! - a status other than `200`, or a body other than `Hello, world!`: a *mismatch* (the framing
//!   held, so the connection carries on);
//! - a head that is not a response, over 8 KiB, without `Content-Length`, with a
//!   `Transfer-Encoding` (chunked is not needed by this workload and not implemented), or
//!   declaring more than 64 KiB: *malformed*, and the connection is dropped.
//!
//! Every correct response is the same bytes, so unlike the echo protocols a reply delivered to
//! the wrong request cannot be told apart: HTTP gives it no identity. `--size` has no meaning
//! here (the CLI refuses it).

use super::{ClientProtocol, Decoded, RequestTag};

/// The body every `GET /` must get.
pub const HELLO: &[u8] = b"Hello, world!";

/// A response head longer than this is malformed (servers cap their own heads far below it).
const MAX_HEAD: usize = 8 * 1024;

/// A response announcing a longer body is malformed: no correct reply comes near it.
const MAX_BODY: usize = 64 * 1024;

/// The client side of `http`.
#[derive(Debug, Clone)]
pub struct Http {
    /// The request, the same bytes every time: built once, copied per request.
    request: Box<[u8]>,
    /// The request asks the server to close after its reply (`Connection: close`).
    closing: bool,
}

impl Http {
    /// Keep-alive requests carrying `Host: <host>`, which HTTP/1.1 requires; pass the address as
    /// `host:port`.
    pub fn new(host: &str) -> Self {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        Http { request: request.into_bytes().into_boxed_slice(), closing: false }
    }

    /// One request per connection (`--conn-per-request`): each request says
    /// `Connection: close`, HTTP/1.1's way for a client to announce that it sends no more, and
    /// the server closes after its reply (RFC 9112, section 9.6). The client then waits for
    /// that close instead of closing first, so the connection ends as HTTP says it should, and
    /// a server that keeps it open is caught (as a timeout).
    pub fn closing(host: &str) -> Self {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        Http { request: request.into_bytes().into_boxed_slice(), closing: true }
    }
}

impl ClientProtocol for Http {
    type ConnState = ();

    fn conn_state(&self, _conn_id: u64) {}

    fn tag(&self, seq: u64) -> RequestTag {
        RequestTag { seq, len: 0 }
    }

    fn encode(&self, _tag: RequestTag, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request);
    }

    fn decode(&self, _: &mut (), input: &[u8], _tag: RequestTag, verify: bool) -> Decoded {
        // Only the first MAX_HEAD bytes can hold a valid head: never search further.
        let window = &input[..input.len().min(MAX_HEAD)];
        let Some(blank) = memchr::memmem::find(window, b"\r\n\r\n") else {
            return if input.len() >= MAX_HEAD {
                Decoded::Malformed("a response head is longer than 8 KiB")
            } else {
                Decoded::Incomplete
            };
        };
        let head = match parse_head(&window[..blank]) {
            Ok(head) => head,
            Err(why) => return Decoded::Malformed(why),
        };
        let body_start = blank + 4;
        let Some(body) = input.get(body_start..body_start + head.length) else {
            return Decoded::Incomplete;
        };
        let matches = !verify || (head.status == 200 && body == HELLO);
        Decoded::Complete { len: body_start + head.length, matches }
    }

    fn max_response_len(&self) -> usize {
        MAX_HEAD + MAX_BODY
    }

    fn server_closes(&self) -> bool {
        self.closing
    }
}

/// What the engine needs from a response head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    length: usize,
}

/// Parse a response head (without its final `\r\n\r\n`).
fn parse_head(head: &[u8]) -> Result<Head, &'static str> {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = lines.next().and_then(status_code).ok_or("not an HTTP/1.x status line")?;
    if (100..200).contains(&status) {
        return Err("an interim 1xx response, which nothing here asked for");
    }
    let mut length = None;
    for line in lines {
        let colon = memchr::memchr(b':', line).ok_or("a header line without a colon")?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err("a response with Transfer-Encoding (only Content-Length framing is supported)");
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = digits(value).ok_or("a Content-Length that is not a number")?;
            if length.is_some_and(|m| m != n) {
                return Err("two different Content-Length headers");
            }
            length = Some(n);
        }
    }
    let length = length.ok_or("a response without Content-Length")?;
    if length > MAX_BODY {
        return Err("a response body announced over 64 KiB");
    }
    Ok(Head { status, length })
}

/// `HTTP/1.x SP 3DIGIT [SP reason]` -> the status code.
fn status_code(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (minor, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ").filter(|_| minor.is_ascii_digit())?;
    let (code, reason) = rest.split_at_checked(3)?;
    if !(reason.is_empty() || reason[0] == b' ') {
        return None;
    }
    let code = digits(code)?;
    u16::try_from(code).ok()
}

/// A non-empty run of ASCII digits as a number, or `None` (also if it does not fit).
fn digits(s: &[u8]) -> Option<usize> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0usize, |n, &d| n.checked_mul(10)?.checked_add(usize::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

    fn decode(input: &[u8]) -> Decoded {
        Http::new("lab:80").decode(&mut (), input, RequestTag { seq: 0, len: 0 }, true)
    }

    #[test]
    fn the_request_is_a_keep_alive_get_with_a_host() {
        let mut out = Vec::new();
        let http = Http::new("127.0.0.1:7000");
        http.encode(http.tag(1), &mut out);
        http.encode(http.tag(2), &mut out);
        assert_eq!(out, b"GET / HTTP/1.1\r\nHost: 127.0.0.1:7000\r\n\r\n".repeat(2));
    }

    #[test]
    fn a_closing_request_asks_for_the_close_and_expects_it() {
        let mut out = Vec::new();
        let http = Http::closing("127.0.0.1:7000");
        http.encode(http.tag(1), &mut out);
        assert_eq!(out, b"GET / HTTP/1.1\r\nHost: 127.0.0.1:7000\r\nConnection: close\r\n\r\n");
        assert!(http.server_closes());
        assert!(!Http::new("127.0.0.1:7000").server_closes());
        // The reply is read and checked the same way.
        assert_eq!(
            http.decode(&mut (), OK, http.tag(1), true),
            Decoded::Complete { len: OK.len(), matches: true }
        );
    }

    #[test]
    fn a_hello_verifies_even_split_byte_by_byte() {
        for cut in 0..OK.len() {
            assert_eq!(decode(&OK[..cut]), Decoded::Incomplete, "cut at {cut}");
        }
        let whole = Decoded::Complete { len: OK.len(), matches: true };
        assert_eq!(decode(OK), whole);
        // Pipelined: only the first response is consumed.
        assert_eq!(decode(&OK.repeat(3)), whole);
    }

    #[test]
    fn header_names_are_case_insensitive_and_1_0_and_odd_reasons_are_fine() {
        let r = b"HTTP/1.0 200 Fine by me\r\ncontent-LENGTH:13 \r\nX: y\r\n\r\nHello, world!";
        assert_eq!(decode(r), Decoded::Complete { len: r.len(), matches: true });
        let r = b"HTTP/1.1 200\r\nContent-Length: 13\r\n\r\nHello, world!";
        assert_eq!(decode(r), Decoded::Complete { len: r.len(), matches: true });
    }

    #[test]
    fn wrong_status_or_body_is_a_mismatch_but_keeps_the_framing() {
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 13\r\n\r\nHello, world!";
        assert_eq!(decode(not_found), Decoded::Complete { len: not_found.len(), matches: false });
        let wrong_body = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";
        assert_eq!(decode(wrong_body), Decoded::Complete { len: wrong_body.len(), matches: false });
        let empty = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(decode(empty), Decoded::Complete { len: empty.len(), matches: false });
        // Without verification only the framing counts.
        let http = Http::new("lab");
        let unchecked = http.decode(&mut (), not_found, http.tag(0), false);
        assert_eq!(unchecked, Decoded::Complete { len: not_found.len(), matches: true });
    }

    #[test]
    fn bad_framing_is_malformed() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\n\r\nHello, world!"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\nHello, world!\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Length: 14\r\n\r\nHello, world!",
            b"HTTP/1.1 200 OK\r\nContent-Length: -13\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 65537\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 13\r\n\r\nHello, world!",
            b"HTTP/2 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!",
            b"HTTP/1.1 2000 OK\r\nContent-Length: 13\r\n\r\nHello, world!",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"Hello, world!\r\n\r\n",
        ] {
            assert!(matches!(decode(bad), Decoded::Malformed(_)), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn an_endless_head_is_malformed_once_it_passes_8_kib() {
        let mut endless = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        endless.resize(MAX_HEAD - 1, b'x');
        assert_eq!(decode(&endless), Decoded::Incomplete);
        endless.push(b'x');
        assert!(matches!(decode(&endless), Decoded::Malformed(_)));
    }
}
