//! `http`: a minimal HTTP/1.1 server. `GET /` answers `200 OK` with the body `Hello, world!`,
//! so `curl`, `wrk` and a browser can talk to every model of the lab.
//!
//! HTTP/1.1 framing is *both* answers of the echo protocols at once. The request *head* (the
//! request line and the header lines) ends with a delimiter, an empty line, like
//! [`echo_line`](super::echo_line); the *body* that may follow is announced by a length header,
//! `Content-Length`, like [`echo_frame`](super::echo_frame):
//!
//! ```text
//!   POST /form HTTP/1.1\r\n        request line: method, target, version
//!   Host: localhost\r\n            header lines: name ':' value
//!   Content-Length: 5\r\n
//!   \r\n                           the delimiter: an empty line ends the head
//!   hello                          the body: exactly Content-Length bytes, then the next request
//! ```
//!
//! So both dangers come back too, with the same cures. A peer that never sends the empty line
//! must not make the server buffer forever: the decoder gives up as soon as it holds more than
//! [`MAX_HEAD`] bytes without one (`431`). A peer announcing a huge body is refused from the
//! header alone (`413`), before any of the body is waited for.
//!
//! A connection carries many requests (*keep-alive*, the default in HTTP/1.1), and a client may
//! send the next request before the previous answer arrived (*pipelining*): one request per
//! `decode` call answers them in order for free. Either side ends it with `Connection: close`.
//!
//! **Decisions** (RFC 9112 is HTTP/1.1's message syntax, RFC 9110 its semantics):
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /` | `200`, `Hello, world!`; `/?x=1` is `/` too (the query is ignored) |
//! | `HEAD /` | the same status and headers, no body (RFC 9110 §9.3.2) |
//! | another path, say `/nope` or `/%2F` (never percent-decoded) | `404` |
//! | any other method (`POST`, `get`: methods are case-sensitive) | `405` with `Allow: GET, HEAD` |
//! | absolute form, `GET http://host/ HTTP/1.1` | served like `/` (a server must accept it, RFC 9112 §3.2.2) |
//! | a body with `Content-Length: N` | its N bytes are skipped once they have arrived, then answered; N over `--max-frame`: `413` and close |
//! | `Transfer-Encoding` (chunked or any other) | `501` and close: no coding is implemented, so the body's end cannot be found (RFC 9112 §6.1 suggests 501) |
//! | HTTP/1.1 without exactly one `Host` header | `400` and close (RFC 9112 §3.2 says must) |
//! | a bad request line or header line, a bare CR, a folded header line, whitespace before `:`, a bad or repeated `Content-Length` | `400` and close |
//! | `HTTP/2.0` or another version beyond 1.x | `505` and close |
//! | a head over [`MAX_HEAD`] bytes | `431` and close |
//!
//! - Header names are case-insensitive (`CONNECTION: Close` works); `Connection` is a
//!   comma-separated token list, and `close` wins over `keep-alive` if both appear.
//! - HTTP/1.1 keeps the connection open unless the client says `close`; HTTP/1.0 closes after the
//!   reply unless it says `keep-alive`, which the reply then confirms with `Connection: keep-alive`.
//! - `404` and `405` are well-formed requests: the connection stays open. Every error that may
//!   leave the framing in doubt is answered with `Connection: close`, and the connection closes.
//! - Lines may end in a bare LF as well as CRLF, and empty lines before a request line are
//!   skipped (RFC 9112 §2.2 allows both), so that `nc` without `-C` works.
//! - `Expect: 100-continue` is ignored: the answer comes once the whole body is there, so a
//!   client waiting for `100 Continue` sends the body after its own timeout (curl: 1 s).
//! - No `Date` header, which RFC 9110 §6.6.1 asks of a server *with a clock*: this code has
//!   none, on purpose (sans-IO), and nothing in the lab needs one.
//!
//! Every reply is a few static byte strings; answering allocates nothing.

use super::Decoded;

/// The most bytes a request head may take, from the request line to the empty line inclusive.
/// 8 KiB is what common servers allow one request line or header field (nginx, Apache); here it
/// bounds the whole head, still far more than curl, wrk or a browser send.
pub const MAX_HEAD: usize = 8 * 1024;

/// Decoder state for one connection.
#[derive(Debug)]
pub struct Http {
    max_body: usize,
    /// Where the first line of the head not yet searched for the empty line starts: a head that
    /// arrives one byte per read costs O(n) in total, not O(n²).
    line_start: usize,
    /// Where the request line starts, once a non-empty line was seen (empty lines before it
    /// are skipped).
    request_start: Option<usize>,
    /// The head has been read and its answer decided; it waits for the whole body.
    pending: Option<Pending>,
}

/// A request whose head is parsed, waiting until `len` bytes (head and body) have arrived.
#[derive(Clone, Copy, Debug)]
struct Pending {
    len: usize,
    answer: Answer,
}

/// What to send back.
#[derive(Clone, Copy, Debug)]
struct Answer {
    response: &'static Response,
    /// `HEAD`: the headers of the response, without its body.
    head_only: bool,
    connection: Persistence,
}

/// What becomes of the connection after an answer, and what the answer says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Persistence {
    /// HTTP/1.1's default: stays open, no header needed.
    KeepAlive,
    /// HTTP/1.0 asked for `keep-alive`: stays open, and the answer must say so.
    KeepAliveAnnounced,
    /// `Connection: close` in the answer, then the connection ends.
    Close,
}

impl Http {
    /// A decoder accepting request bodies of at most `max_body` bytes.
    pub fn new(max_body: usize) -> Http {
        Http { max_body, line_start: 0, request_start: None, pending: None }
    }

    /// The longest request: the longest head plus the longest body.
    pub fn max_request_len(&self) -> usize {
        MAX_HEAD + self.max_body
    }

    /// See [`super::Codec::decode`].
    #[inline]
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Decoded {
        let pending = match self.pending {
            Some(pending) => pending,
            None => match self.read_head(input) {
                Ok(Some(pending)) => pending,
                Ok(None) => return Decoded::Incomplete,
                Err(refused) => {
                    refused.write(out);
                    return Decoded::Malformed;
                }
            },
        };
        if input.len() < pending.len {
            self.pending = Some(pending); // the body is still on its way
            return Decoded::Incomplete;
        }
        self.pending = None;
        pending.answer.write(out);
        match pending.answer.connection {
            Persistence::Close => Decoded::Last { consumed: pending.len },
            Persistence::KeepAlive | Persistence::KeepAliveAnnounced => {
                Decoded::Request { consumed: pending.len }
            }
        }
    }

    /// Find the end of the head and decide the answer. `Ok(None)`: the head is not complete yet.
    fn read_head(&mut self, input: &[u8]) -> Result<Option<Pending>, Answer> {
        let Some(end) = self.find_head_end(input) else {
            if input.len() > MAX_HEAD {
                self.line_start = 0;
                self.request_start = None;
                return Err(Answer::refusal(&HEAD_TOO_LARGE, false));
            }
            return Ok(None);
        };
        let start = self.request_start.take().unwrap_or(0);
        self.line_start = 0;
        let request = parse(&input[start..end])?;
        let head_only = request.answer.head_only;
        let Some(body) = request.body else {
            return Err(Answer::refusal(&CODING_NOT_IMPLEMENTED, head_only));
        };
        let body = match usize::try_from(body) {
            Ok(body) if body <= self.max_body => body,
            _ => return Err(Answer::refusal(&BODY_TOO_LARGE, head_only)),
        };
        Ok(Some(Pending { len: end + body, answer: request.answer }))
    }

    /// The offset just past the empty line that ends the head, if it lies within [`MAX_HEAD`].
    fn find_head_end(&mut self, input: &[u8]) -> Option<usize> {
        // Never look past the limit: a head that ends later is refused whatever it holds.
        let window = &input[..input.len().min(MAX_HEAD)];
        let mut line_start = self.line_start.min(window.len());
        while let Some(i) = memchr::memchr(b'\n', &window[line_start..]) {
            let newline = line_start + i;
            let line = &window[line_start..newline];
            let empty = line.is_empty() || line == b"\r";
            if !empty && self.request_start.is_none() {
                self.request_start = Some(line_start);
            }
            line_start = newline + 1;
            if empty && self.request_start.is_some() {
                return Some(line_start);
            }
        }
        self.line_start = line_start;
        None
    }
}

impl Answer {
    /// An error answer, after which the connection closes.
    fn refusal(response: &'static Response, head_only: bool) -> Answer {
        Answer { response, head_only, connection: Persistence::Close }
    }

    #[inline]
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.response.head);
        match self.connection {
            Persistence::KeepAlive => {}
            Persistence::KeepAliveAnnounced => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            Persistence::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only {
            out.extend_from_slice(self.response.body);
        }
    }
}

/// What a well-framed request head says.
struct Request {
    answer: Answer,
    /// The body's declared length (0 without `Content-Length`); `None`: a transfer coding,
    /// whose end this server cannot find.
    body: Option<u64>,
}

/// Parse a whole head (request line up to and including the empty line).
fn parse(head: &[u8]) -> Result<Request, Answer> {
    let mut lines = head.split(|&b| b == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let (method, target, version) =
        lines.next().and_then(request_line).ok_or(Answer::refusal(&BAD_REQUEST_LINE, false))?;
    let head_only = method == b"HEAD";
    let refuse = |response: &'static Response| Answer::refusal(response, head_only);
    let version = match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => {
            if *minor == b'0' {
                Version::Http10
            } else {
                Version::Http11
            }
        }
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(refuse(&VERSION_NOT_SUPPORTED));
        }
        _ => return Err(refuse(&BAD_REQUEST_LINE)),
    };

    let mut hosts = 0;
    let mut length: Option<u64> = None;
    let mut coded = false;
    let (mut close, mut keep_alive) = (false, false);
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = header_line(line).ok_or(refuse(&BAD_HEADER))?;
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // A second Content-Length, even an equal one, is refused: two framings that might
            // disagree are how request smuggling starts (RFC 9112 §6.3).
            if length.is_some() {
                return Err(refuse(&BAD_LENGTH));
            }
            length = Some(decimal(value).ok_or(refuse(&BAD_LENGTH))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            coded = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if version == Version::Http11 && hosts != 1 {
        return Err(refuse(&BAD_HOST));
    }
    let connection = match version {
        _ if close => Persistence::Close,
        Version::Http11 => Persistence::KeepAlive,
        Version::Http10 if keep_alive => Persistence::KeepAliveAnnounced,
        Version::Http10 => Persistence::Close,
    };
    let response = if method != b"GET" && method != b"HEAD" {
        &METHOD_NOT_ALLOWED
    } else {
        match path(target) {
            None => return Err(refuse(&BAD_TARGET)),
            Some(b"/") => &OK,
            Some(_) => &NOT_FOUND,
        }
    };
    Ok(Request {
        answer: Answer { response, head_only, connection },
        body: if coded { None } else { Some(length.unwrap_or(0)) },
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    Http10,
    /// HTTP/1.1, and any later 1.x, which must be understood as 1.1 (RFC 9110 §6.2).
    Http11,
}

/// `method SP target SP version`, each part non-empty, single spaces (RFC 9112 §3).
fn request_line(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let target_ok = !target.is_empty() && target.iter().all(|&b| b.is_ascii_graphic());
    (parts.next().is_none() && is_token(method) && target_ok).then_some((method, target, version))
}

/// `name ":" OWS value OWS`; no whitespace before the colon, no folded lines, no control bytes.
fn header_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr::memchr(b':', line)?;
    let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
    let value_ok = value.iter().all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f));
    (is_token(name) && value_ok).then_some((name, value))
}

/// `1*DIGIT`, nothing else; `Some(u64::MAX)` for a number too large to hold (it is over any
/// limit anyway).
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .unwrap_or(u64::MAX),
    )
}

/// The path a target names, without its query: `Some(b"/")` for `/`, `/?x=1` and
/// `http://host`. `None` if the target is neither a path nor an absolute URL.
fn path(target: &[u8]) -> Option<&[u8]> {
    let path = if target.first() == Some(&b'/') {
        target
    } else {
        // absolute-form: scheme "://" authority, then the path (RFC 9112 §3.2.2).
        let colon = memchr::memchr(b':', target)?;
        let (scheme, rest) = target.split_at(colon);
        let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        let after_authority = rest.strip_prefix(b"://").filter(|_| scheme_ok)?;
        let authority_end =
            after_authority.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(after_authority.len());
        &after_authority[authority_end..]
    };
    let path = &path[..memchr::memchr(b'?', path).unwrap_or(path.len())];
    Some(if path.is_empty() { b"/" } else { path })
}

/// RFC 9110 §5.6.2's `token`: what a method or a header name may be made of.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Strip optional whitespace (spaces and tabs) from both ends.
fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |i| i + 1);
    &s[start..end]
}

/// One response, as bytes on the wire: the status line and headers up to (not including) the
/// `Connection` header, and the body.
#[derive(Debug)]
struct Response {
    head: &'static [u8],
    body: &'static [u8],
}

/// Build a [`Response`] at compile time. The `Content-Length` is written out by hand, so that
/// the bytes read as they go on the wire, and checked against the body when compiling: a wrong
/// length does not build.
macro_rules! response {
    ($status:literal, $extra_headers:literal, $length:literal, $body:literal) => {{
        assert!(decimal_const($length) == $body.len(), "Content-Length does not match the body");
        Response {
            head: concat!(
                "HTTP/1.1 ",
                $status,
                "\r\n",
                $extra_headers,
                "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ",
                $length,
                "\r\n"
            )
            .as_bytes(),
            body: $body.as_bytes(),
        }
    }};
}

const fn decimal_const(s: &str) -> usize {
    let (digits, mut n, mut i) = (s.as_bytes(), 0, 0);
    while i < digits.len() {
        n = n * 10 + (digits[i] - b'0') as usize;
        i += 1;
    }
    n
}

/// The body every `GET /` gets.
pub const HELLO: &[u8] = b"Hello, world!";

const OK: Response = response!("200 OK", "", "13", "Hello, world!");
const NOT_FOUND: Response =
    response!("404 Not Found", "", "47", "404 Not Found: this server has one resource, /\n");
const METHOD_NOT_ALLOWED: Response = response!(
    "405 Method Not Allowed",
    "Allow: GET, HEAD\r\n",
    "57",
    "405 Method Not Allowed: this server answers GET and HEAD\n"
);
const BAD_REQUEST_LINE: Response =
    response!("400 Bad Request", "", "40", "400 Bad Request: malformed request line\n");
const BAD_HEADER: Response =
    response!("400 Bad Request", "", "39", "400 Bad Request: malformed header line\n");
const BAD_HOST: Response = response!(
    "400 Bad Request",
    "",
    "67",
    "400 Bad Request: an HTTP/1.1 request needs exactly one Host header\n"
);
const BAD_LENGTH: Response =
    response!("400 Bad Request", "", "54", "400 Bad Request: malformed or repeated Content-Length\n");
const BAD_TARGET: Response =
    response!("400 Bad Request", "", "62", "400 Bad Request: the target must be a path or an absolute URL\n");
const BODY_TOO_LARGE: Response = response!(
    "413 Content Too Large",
    "",
    "81",
    "413 Content Too Large: the body is longer than this server accepts (--max-frame)\n"
);
const HEAD_TOO_LARGE: Response = response!(
    "431 Request Header Fields Too Large",
    "",
    "80",
    "431 Request Header Fields Too Large: a request head may take at most 8192 bytes\n"
);
const CODING_NOT_IMPLEMENTED: Response = response!(
    "501 Not Implemented",
    "",
    "74",
    "501 Not Implemented: no transfer coding is supported; send Content-Length\n"
);
const VERSION_NOT_SUPPORTED: Response = response!(
    "505 HTTP Version Not Supported",
    "",
    "73",
    "505 HTTP Version Not Supported: this server speaks HTTP/1.0 and HTTP/1.1\n"
);

#[cfg(test)]
mod tests {
    use super::super::testing::{Transcript, run};
    use super::super::{Codec, Decoded, Proto};
    use super::MAX_HEAD;
    use crate::store::LocalStore;
    use proptest::prelude::*;

    /// The body limit in these tests (the server's `--max-frame`).
    const MAX_BODY: usize = 64;

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n";

    /// The replies, spelled out byte for byte here rather than taken from the code under test.
    const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Length: 13\r\n\r\nHello, world!";
    const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Length: 13\r\nConnection: close\r\n\r\nHello, world!";
    const HELLO_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\n";
    const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Length: 47\r\n\r\n404 Not Found: this server has one resource, /\n";

    fn whole(stream: &[u8]) -> Transcript {
        run(Proto::Http, MAX_BODY, stream, &[])
    }

    /// One decode call on a fresh codec.
    fn decode_once(input: &[u8]) -> (Decoded, Vec<u8>) {
        let mut codec = Codec::new(Proto::Http, MAX_BODY);
        let mut out = Vec::new();
        let decoded = codec.decode(input, &mut out, &LocalStore::new(crate::store::Capacity::keys(1)));
        (decoded, out)
    }

    /// The status line of a reply, and whether the reply announces a close.
    fn status_of(out: &[u8]) -> (String, bool) {
        let text = String::from_utf8_lossy(out);
        let status = text.lines().next().unwrap_or_default().to_owned();
        (status, text.contains("\r\nConnection: close\r\n"))
    }

    /// The request is refused with `status` and the connection closes.
    #[track_caller]
    fn refused(request: &[u8], status: &str) {
        let (decoded, out) = decode_once(request);
        assert_eq!(decoded, Decoded::Malformed, "{}", String::from_utf8_lossy(request));
        assert_eq!(
            status_of(&out),
            (format!("HTTP/1.1 {status}"), true),
            "{}",
            String::from_utf8_lossy(request)
        );
        let text = String::from_utf8_lossy(&out);
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.parse().ok())
            .expect("a Content-Length");
        assert_eq!(length, body.len(), "Content-Length matches the body");
    }

    #[test]
    fn get_slash_is_hello_world_and_keeps_the_connection() {
        assert_eq!(decode_once(GET), (Decoded::Request { consumed: GET.len() }, HELLO.to_vec()));
    }

    #[test]
    fn head_gets_the_same_headers_and_no_body() {
        let (decoded, out) = decode_once(b"HEAD / HTTP/1.1\r\nHost: lab\r\n\r\n");
        assert!(matches!(decoded, Decoded::Request { .. }));
        assert_eq!(out, HELLO_HEAD);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let stream = [GET, b"GET /nope HTTP/1.1\r\nHost: lab\r\n\r\n", GET].concat();
        let t = whole(&stream);
        assert_eq!(t.out, [HELLO, NOT_FOUND, HELLO].concat());
        assert_eq!(t.requests, 3);
        assert!(!t.malformed);
    }

    #[test]
    fn connection_close_is_honoured_and_later_requests_ignored() {
        let stream = [b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n" as &[u8], GET].concat();
        let (decoded, out) = decode_once(&stream);
        assert_eq!(decoded, Decoded::Last { consumed: stream.len() - GET.len() });
        assert_eq!(out, HELLO_CLOSE);
    }

    #[test]
    fn header_names_are_case_insensitive_and_connection_is_a_token_list() {
        for connection in ["CONNECTION: Close", "connection: keep-alive, close", "Connection:  foo ,\tCLOSE "]
        {
            let request = format!("GET / HTTP/1.1\r\nhOsT: lab\r\n{connection}\r\n\r\n");
            let (decoded, out) = decode_once(request.as_bytes());
            assert!(matches!(decoded, Decoded::Last { .. }), "{connection}");
            assert_eq!(out, HELLO_CLOSE, "{connection}");
        }
        let (decoded, _) = decode_once(b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: closed, upgrade\r\n\r\n");
        assert!(matches!(decoded, Decoded::Request { .. }), "`closed` is not `close`");
    }

    #[test]
    fn http_1_0_closes_unless_it_asks_for_keep_alive() {
        let (decoded, out) = decode_once(b"GET / HTTP/1.0\r\n\r\n");
        assert!(matches!(decoded, Decoded::Last { .. }), "no Host needed in 1.0");
        assert_eq!(out, HELLO_CLOSE);
        let (decoded, out) = decode_once(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(matches!(decoded, Decoded::Request { .. }));
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nConnection: keep-alive\r\n") && text.ends_with("\r\n\r\nHello, world!"));
    }

    #[test]
    fn later_1_x_versions_are_served_as_1_1() {
        let request = b"GET / HTTP/1.7\r\nHost: lab\r\n\r\n";
        assert_eq!(decode_once(request), (Decoded::Request { consumed: request.len() }, HELLO.to_vec()));
    }

    #[test]
    fn query_strings_and_absolute_urls_name_the_root() {
        for target in ["/?x=1", "/?", "http://lab/", "http://lab", "HTTP://lab:8080?x", "https://a.b/"] {
            let request = format!("GET {target} HTTP/1.1\r\nHost: lab\r\n\r\n");
            assert_eq!(decode_once(request.as_bytes()).1, HELLO, "{target}");
        }
        for target in ["/nope", "//", "/%2F", "/index.html", "http://lab/x", "/#frag"] {
            let request = format!("GET {target} HTTP/1.1\r\nHost: lab\r\n\r\n");
            let (decoded, out) = decode_once(request.as_bytes());
            assert!(matches!(decoded, Decoded::Request { .. }), "404 keeps the connection: {target}");
            assert_eq!(out, NOT_FOUND, "{target}");
        }
    }

    #[test]
    fn other_methods_get_405_with_allow_and_keep_the_connection() {
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "BREW", "get"] {
            let request = format!("{method} / HTTP/1.1\r\nHost: lab\r\n\r\n");
            let (decoded, out) = decode_once(request.as_bytes());
            assert!(matches!(decoded, Decoded::Request { .. }), "{method}");
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{method}: {text}");
            assert!(text.contains("\r\nAllow: GET, HEAD\r\n"), "{method}: {text}");
        }
    }

    #[test]
    fn a_body_is_skipped_once_it_has_arrived() {
        let post = b"POST / HTTP/1.1\r\nHost: lab\r\nContent-Length: 5\r\n\r\nhello";
        let mut codec = Codec::new(Proto::Http, MAX_BODY);
        let (mut out, store) = (Vec::new(), LocalStore::new(crate::store::Capacity::keys(1)));
        // The head alone: the answer waits for the body.
        assert_eq!(codec.decode(&post[..post.len() - 2], &mut out, &store), Decoded::Incomplete);
        assert!(out.is_empty());
        assert_eq!(codec.decode(post, &mut out, &store), Decoded::Request { consumed: post.len() });
        // A GET may carry a body too; a pipelined request after it is read from the right place.
        let stream = [b"GET / HTTP/1.1\r\nHost: lab\r\ncontent-length: 3\r\n\r\nabc" as &[u8], GET].concat();
        assert_eq!(whole(&stream).out, [HELLO, HELLO].concat());
    }

    #[test]
    fn a_body_exactly_at_the_limit_is_accepted() {
        let mut request =
            format!("GET / HTTP/1.1\r\nHost: lab\r\nContent-Length: {MAX_BODY}\r\n\r\n").into_bytes();
        request.extend_from_slice(&[b'b'; MAX_BODY]);
        assert_eq!(decode_once(&request), (Decoded::Request { consumed: request.len() }, HELLO.to_vec()));
    }

    #[test]
    fn a_body_over_the_limit_is_refused_from_the_header_alone() {
        let over = MAX_BODY + 1;
        refused(
            format!("POST / HTTP/1.1\r\nHost: lab\r\nContent-Length: {over}\r\n\r\n").as_bytes(),
            "413 Content Too Large",
        );
        refused(
            b"GET / HTTP/1.1\r\nHost: lab\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
            "413 Content Too Large",
        );
    }

    #[test]
    fn transfer_encoding_is_not_implemented() {
        refused(
            b"POST / HTTP/1.1\r\nHost: lab\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "501 Not Implemented",
        );
    }

    #[test]
    fn malformed_request_lines_are_400() {
        for line in [
            "GET /",
            "GET  / HTTP/1.1",
            "GET / HTTP/1.1 ",
            " GET / HTTP/1.1",
            "GET / http/1.1",
            "GET / HTTP/1",
            "GET / HTTP/1.10",
            "G(T / HTTP/1.1",
            "GET /\x7f HTTP/1.1",
            "GET /\r HTTP/1.1",
            "GET\t/ HTTP/1.1",
            "\u{e9}T / HTTP/1.1",
        ] {
            refused(format!("{line}\r\nHost: lab\r\n\r\n").as_bytes(), "400 Bad Request");
        }
    }

    #[test]
    fn malformed_header_lines_are_400() {
        for header in [
            "Host lab",
            "Host : lab",
            ": lab",
            "Ho st: lab",
            " Folded: continuation",
            "X: a\rb",
            "X: a\0b",
            "X: a\x1bb",
        ] {
            refused(format!("GET / HTTP/1.1\r\nHost: lab\r\n{header}\r\n\r\n").as_bytes(), "400 Bad Request");
        }
    }

    #[test]
    fn host_must_appear_exactly_once_in_1_1() {
        refused(b"GET / HTTP/1.1\r\n\r\n", "400 Bad Request");
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", "400 Bad Request");
    }

    #[test]
    fn bad_or_repeated_content_length_is_400() {
        for length in ["", "-1", "+5", "5 5", "5,5", "0x10", "five"] {
            refused(
                format!("POST / HTTP/1.1\r\nHost: lab\r\nContent-Length: {length}\r\n\r\n").as_bytes(),
                "400 Bad Request",
            );
        }
        refused(
            b"POST / HTTP/1.1\r\nHost: lab\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            "400 Bad Request",
        );
    }

    #[test]
    fn a_target_that_is_neither_a_path_nor_a_url_is_400() {
        for target in ["*", "lab:80", "nope", "1http://lab/", "http:/lab/"] {
            refused(format!("GET {target} HTTP/1.1\r\nHost: lab\r\n\r\n").as_bytes(), "400 Bad Request");
        }
    }

    #[test]
    fn other_major_versions_are_505() {
        refused(b"GET / HTTP/2.0\r\nHost: lab\r\n\r\n", "505 HTTP Version Not Supported");
        refused(b"GET / HTTP/0.9\r\n\r\n", "505 HTTP Version Not Supported");
    }

    #[test]
    fn an_error_to_head_has_no_body() {
        let (decoded, out) = decode_once(b"HEAD / HTTP/1.1\r\n\r\n");
        assert_eq!(decoded, Decoded::Malformed);
        assert!(out.ends_with(b"Connection: close\r\n\r\n"), "{}", String::from_utf8_lossy(&out));
    }

    /// A request whose head (empty line included) is exactly `len` bytes.
    fn head_of_length(len: usize) -> Vec<u8> {
        let start = b"GET / HTTP/1.1\r\nHost: lab\r\nX-Pad: ";
        let mut head = start.to_vec();
        head.resize(len - 4, b'p');
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head.len(), len);
        head
    }

    #[test]
    fn a_head_of_exactly_8_kib_is_accepted() {
        let head = head_of_length(MAX_HEAD);
        assert_eq!(decode_once(&head), (Decoded::Request { consumed: MAX_HEAD }, HELLO.to_vec()));
    }

    #[test]
    fn a_head_one_byte_over_8_kib_is_431() {
        refused(&head_of_length(MAX_HEAD + 1), "431 Request Header Fields Too Large");
    }

    #[test]
    fn an_endless_head_is_given_up_as_soon_as_it_passes_8_kib() {
        // The decoder must not wait for an empty line that may never come: once it holds more
        // than 8 KiB without one, it refuses, so the server buffers no more than that.
        let endless = head_of_length(3 * MAX_HEAD);
        let mut codec = Codec::new(Proto::Http, MAX_BODY);
        let (mut out, store) = (Vec::new(), LocalStore::new(crate::store::Capacity::keys(1)));
        assert_eq!(codec.decode(&endless[..MAX_HEAD], &mut out, &store), Decoded::Incomplete);
        assert_eq!(codec.decode(&endless[..MAX_HEAD + 1], &mut out, &store), Decoded::Malformed);
        assert!(out.starts_with(b"HTTP/1.1 431 "));
        // Many short header lines count the same as one long one.
        let many: Vec<u8> = std::iter::repeat_n(b"X: y\r\n" as &[u8], 2000).flatten().copied().collect();
        refused(&[b"GET / HTTP/1.1\r\n" as &[u8], &many].concat(), "431 Request Header Fields Too Large");
    }

    #[test]
    fn bare_lf_lines_and_leading_empty_lines_are_accepted() {
        assert_eq!(whole(b"GET / HTTP/1.1\nHost: lab\n\n").out, HELLO);
        assert_eq!(whole(&[b"\r\n\n\r\n" as &[u8], GET].concat()).out, HELLO);
    }

    #[test]
    fn an_unfinished_request_gets_no_reply() {
        let t = whole(&[GET, b"GET / HTTP/1.1\r\nHost: lab\r\n"].concat());
        assert_eq!((t.out, t.requests, t.malformed), (HELLO.to_vec(), 1, false));
    }

    #[test]
    fn byte_at_a_time_matches_whole_stream() {
        let stream = [
            GET,
            b"HEAD /?a=b HTTP/1.1\r\nHost: lab\r\n\r\n",
            b"PUT /x HTTP/1.1\r\nHost: lab\r\nContent-Length: 4\r\n\r\nbody",
            b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n",
        ]
        .concat();
        let cuts: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(run(Proto::Http, MAX_BODY, &stream, &cuts), whole(&stream));
        assert_eq!(whole(&stream).requests, 4);
    }

    /// A well-formed request with random method, target, header case, body and persistence.
    fn request() -> impl Strategy<Value = Vec<u8>> {
        let method = prop::sample::select(vec!["GET", "HEAD", "POST", "DELETE"]);
        let target = prop::sample::select(vec!["/", "/?q=1", "/nope", "http://lab/"]);
        let host = prop::sample::select(vec!["Host", "host", "HOST"]);
        let line_end = prop::sample::select(vec!["\r\n", "\n"]);
        let body = prop::collection::vec(any::<u8>(), 0..=8);
        let closes = prop::bool::weighted(0.1);
        (method, target, host, line_end, body, closes).prop_map(
            |(method, target, host, end, body, closes)| {
                let mut r = format!("{method} {target} HTTP/1.1{end}{host}: lab{end}");
                if !body.is_empty() {
                    r += &format!("Content-Length: {}{end}", body.len());
                }
                if closes {
                    r += &format!("Connection: close{end}");
                }
                r += end;
                let mut r = r.into_bytes();
                r.extend_from_slice(&body);
                r
            },
        )
    }

    /// A pipelined stream, sometimes ending in a malformed request.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let bad = prop::sample::select(vec![
            &b""[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"BAD\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
        ]);
        (prop::collection::vec(request(), 0..8), bad).prop_map(|(requests, bad)| {
            let mut s = requests.concat();
            s.extend_from_slice(bad);
            s
        })
    }

    proptest! {
        /// However TCP splits the stream, the replies are the same bytes in the same order.
        #[test]
        fn any_split_gives_the_same_replies(stream in stream(), mut cuts in prop::collection::vec(0usize..400, 0..30)) {
            cuts.sort_unstable();
            prop_assert_eq!(run(Proto::Http, MAX_BODY, &stream, &cuts), whole(&stream));
        }

        /// Any bytes at all, split anyhow: no panic, and the same answer as in one piece.
        #[test]
        fn arbitrary_bytes_never_panic(stream in prop::collection::vec(any::<u8>(), 0..300), mut cuts in prop::collection::vec(0usize..300, 0..10)) {
            cuts.sort_unstable();
            prop_assert_eq!(run(Proto::Http, MAX_BODY, &stream, &cuts), whole(&stream));
        }
    }
}
