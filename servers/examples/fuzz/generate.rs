//! Structured generators: for each protocol, byte streams that are *mostly* valid requests,
//! pipelined, with the corruptions a decoder must survive mixed in: lengths at and around the
//! limit, length headers of 2³¹ and 4 GiB, truncated frames, missing or bare line ends, odd and
//! oversized HTTP heads, chunked-looking bodies, RESP counts that disagree with what follows.
//!
//! Random bytes alone would almost never get past the first check of a parser; these streams
//! reach its deep states (the eighth request of a pipeline, a body or an argument still on its
//! way, a store that is full), and the mutator (see `mutate.rs`) then breaks them in the places
//! nobody thought of.

use fastrand::Rng;
use servers::proto::Proto;

/// The largest stream a generator makes on purpose (a 1 MiB header, line or argument).
pub const BIG: usize = 1 << 20;

/// One generated stream for `proto`, for a decoder whose limit is `max_frame`.
///
/// Each stream draws how often it breaks a rule: never (two streams in five: pipelined valid
/// requests, of which only the last may be cut short), or once in 256, 64 or 16 decisions. So
/// some streams go deep (the eighth request of a pipeline, a body still arriving) and others
/// hit the error paths from every angle.
pub fn stream(proto: Proto, rng: &mut Rng, max_frame: usize) -> Vec<u8> {
    let fault = *pick(rng, &[0, 0, 256, 64, 16]);
    let mut g = Gen { rng, max: max_frame, fault, out: Vec::new() };
    match proto {
        Proto::EchoLine | Proto::Chat => g.lines(),
        Proto::EchoFrame => g.frames(),
        Proto::Http => g.http(),
        Proto::Kv => g.kv(),
    }
    g.out
}

/// Pick one element of a non-empty slice.
pub fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

/// Numbers that sit on a boundary somewhere: zero, the limit and its neighbours, the edges of
/// 31-, 32- and 64-bit integers, and spellings a strict parser must refuse.
pub fn interesting_number(rng: &mut Rng, max_frame: usize) -> String {
    match rng.usize(..16) {
        0 => "0".into(),
        1 => "-1".into(),
        2 => max_frame.to_string(),
        3 => (max_frame + 1).to_string(),
        4 => max_frame.saturating_sub(1).to_string(),
        5 => "2147483647".into(),
        6 => "2147483648".into(),
        7 => "4294967295".into(),
        8 => "4294967296".into(),
        9 => "9223372036854775807".into(),
        10 => "9223372036854775808".into(),
        11 => "-9223372036854775808".into(),
        12 => "18446744073709551616".into(),
        13 => pick(rng, &["01", "+1", "-0", " 1", "1 ", "0x10", "1e3", ""]).to_string(),
        14 => "9".repeat(rng.usize(20..=40)),
        _ => rng.usize(..=max_frame.saturating_mul(2).max(4)).to_string(),
    }
}

/// Big-endian 32-bit lengths on a boundary: a 4 GiB frame header, 2³¹, the limit ± 1.
pub fn interesting_u32(rng: &mut Rng, max_frame: usize) -> u32 {
    let max = u32::try_from(max_frame).unwrap_or(u32::MAX);
    *pick(
        rng,
        &[
            0,
            1,
            max.saturating_sub(1),
            max,
            max.saturating_add(1),
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0xffff_fffe,
            1 << 30,
            (1 << 30) + 1,
            0x0001_0000,
            0x0a0a_0a0a,
        ],
    )
}

struct Gen<'a> {
    rng: &'a mut Rng,
    max: usize,
    /// One decision in `fault` breaks a rule; 0: none does.
    fault: usize,
    out: Vec<u8>,
}

impl Gen<'_> {
    fn chance(&mut self, one_in: usize) -> bool {
        self.rng.usize(..one_in) == 0
    }

    /// Whether to break a rule here.
    fn bad(&mut self) -> bool {
        self.fault != 0 && self.chance(self.fault)
    }

    /// A length within the limit: mostly small, often exactly the limit; past it (by a byte or
    /// two, by a lot, rarely by a megabyte) when breaking a rule.
    fn size(&mut self) -> usize {
        let max = self.max;
        if self.bad() {
            return match self.rng.usize(..8) {
                0..=2 => max + 1,
                3 => max + 2,
                4 | 5 => self.rng.usize(max + 1..=(max + 2).max(4096)),
                6 if self.chance(16) => BIG,
                _ => self.rng.usize(max + 1..=2 * max + 2),
            };
        }
        match self.rng.usize(..16) {
            0..=7 => self.rng.usize(..=max.min(16)),
            8..=10 => self.rng.usize(..=max.min(256)),
            11 => max.saturating_sub(1),
            12 | 13 => max,
            _ => self.rng.usize(..=max.min(4096)),
        }
    }

    fn one_of(&mut self, items: &[&'static [u8]]) -> &'static [u8] {
        items[self.rng.usize(..items.len())]
    }

    fn put_one_of(&mut self, items: &[&'static [u8]]) {
        let bytes = self.one_of(items);
        self.put(bytes);
    }

    /// A length for a long target or header value: a few bytes mostly, now and then one that
    /// passes the 8 KiB limit on a head.
    fn head_size(&mut self) -> usize {
        if self.chance(8) { self.size().min(MAX_HEAD_ISH) } else { self.rng.usize(..=self.max.min(256)) }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// `broken` when breaking a rule, else `usual`.
    fn put_or_bad(&mut self, usual: &[u8], broken: &[u8]) {
        let bytes = if self.bad() { broken } else { usual };
        self.put(bytes);
    }

    /// `n` bytes from `alphabet`, or (for large `n`) one byte of it repeated.
    fn fill(&mut self, n: usize, alphabet: &[u8]) {
        if n >= 4096 {
            // Large fills need no variety, only size: keep them cheap.
            let byte = *pick(self.rng, alphabet);
            self.out.resize(self.out.len() + n, byte);
            return;
        }
        for _ in 0..n {
            let b = *pick(self.rng, alphabet);
            self.out.push(b);
        }
    }

    /// Random bytes, any of the 256.
    fn noise(&mut self, n: usize) {
        let at = self.out.len();
        self.out.resize(at + n, 0);
        self.rng.fill(&mut self.out[at..]);
    }

    /// `n` bytes of a line: printable mostly, and tabs, `\r`, NULs and bytes above 127 too,
    /// never `\n`. A line protocol must carry all of these.
    fn line_bytes(&mut self, n: usize) {
        if n >= 4096 {
            self.fill(n, b"x \t\r\xff");
            return;
        }
        for _ in 0..n {
            let b = match self.rng.usize(..64) {
                0 => b'\r',
                1 => b'\t',
                2 => 0,
                3 => self.rng.u8(128..),
                4 => self.rng.u8(..).max(b'\n' + 1),
                _ => self.rng.u8(b' '..=b'~'),
            };
            self.out.push(b);
        }
    }

    /// Cut the stream short somewhere, as a peer that stops mid-request does: in one clean
    /// stream in eight, only inside its last request; more often when breaking rules.
    fn maybe_truncate(&mut self, last_request_at: usize) {
        if self.out.is_empty() {
            return;
        }
        if self.bad() {
            let at = self.rng.usize(..self.out.len());
            self.out.truncate(at);
        } else if self.chance(8) && last_request_at < self.out.len() {
            let at = self.rng.usize(last_request_at..self.out.len());
            self.out.truncate(at);
        }
    }

    // ---- echo-line and chat -------------------------------------------------------------

    fn lines(&mut self) {
        if self.chance(500) {
            // Many empty lines, or one endless line.
            match self.rng.usize(..3) {
                0 => self.out.resize(self.rng.usize(1..=64 * 1024), b'\n'),
                1 => self.line_bytes(BIG),
                _ => {
                    self.line_bytes(BIG);
                    self.put(b"\n");
                }
            }
            return;
        }
        let mut last = 0;
        for _ in 0..self.rng.usize(1..=8) {
            last = self.out.len();
            let n = self.size();
            self.line_bytes(n);
            if self.chance(4) {
                self.put(b"\r\n");
            } else {
                self.put(b"\n");
            }
        }
        self.maybe_truncate(last);
    }

    // ---- echo-frame ---------------------------------------------------------------------

    fn frames(&mut self) {
        let mut last = 0;
        for _ in 0..self.rng.usize(1..=8) {
            last = self.out.len();
            let payload = self.size();
            let header = if self.bad() {
                interesting_u32(self.rng, self.max)
            } else {
                u32::try_from(payload).unwrap_or(u32::MAX)
            };
            self.put(&header.to_be_bytes());
            // The payload as declared, or (breaking the framing) shorter or longer, so that the
            // next header starts inside this payload or this one swallows the next header.
            let n = if self.bad() {
                if self.rng.bool() { self.rng.usize(..=payload) } else { payload + self.rng.usize(1..=8) }
            } else {
                payload
            };
            if n >= 4096 {
                self.out.resize(self.out.len() + n, b'f');
            } else {
                self.noise(n);
            }
        }
        if self.bad() {
            let n = self.rng.usize(1..=3);
            self.noise(n); // a partial header at the end
        }
        self.maybe_truncate(last);
    }

    // ---- http ---------------------------------------------------------------------------

    fn http(&mut self) {
        if self.chance(300) {
            // A head that never ends: a 1 MiB header, or thousands of small ones.
            self.put(b"GET / HTTP/1.1\r\nHost: lab\r\n");
            if self.rng.bool() {
                self.put(b"X-Big: ");
                self.fill(BIG, b"x");
                self.put(b"\r\n");
            } else {
                for _ in 0..self.rng.usize(1000..=20_000) {
                    self.put(b"X: y\r\n");
                }
            }
            if self.rng.bool() {
                self.put(b"\r\n");
            }
            return;
        }
        let mut last = 0;
        for _ in 0..self.rng.usize(1..=6) {
            last = self.out.len();
            self.http_request();
        }
        self.maybe_truncate(last);
    }

    /// A line end: `\r\n` or a bare `\n` (both valid), or when breaking a rule a bare `\r` or
    /// a stray one.
    fn eol(&mut self, crlf: bool) {
        if self.bad() {
            let e: &[u8] = self.one_of(&[&b"\r"[..], b"\r\r\n", b"\n\r", b"\n \r\n"]);
            self.put(e);
        } else {
            self.put(if crlf { b"\r\n" } else { b"\n" });
        }
    }

    fn http_request(&mut self) {
        let crlf = !self.chance(8);
        if self.chance(16) {
            for _ in 0..self.rng.usize(1..=3) {
                self.eol(crlf); // empty lines before a request are allowed
            }
        }
        let method: &[u8] = if self.bad() {
            self.one_of(&[&b"G(T"[..], b"", b"\xc3\xa9T", b"GET /", b"G\0T"])
        } else {
            match self.rng.usize(..24) {
                0..=13 => b"GET",
                14..=16 => b"HEAD",
                17 => b"POST",
                18 => b"PUT",
                19 => b"get",
                20 => b"BREW",
                21 => b"DELETE",
                _ => b"OPTIONS",
            }
        };
        self.put(method);
        if self.bad() {
            self.put_one_of(&[&b"  "[..], b"\t", b""]);
        } else {
            self.put(b" ");
        }
        if self.bad() {
            let target: &[u8] = self.one_of(&[&b"*"[..], b"lab:80", b"http:/lab", b"/\x7f", b"/a b", b""]);
            self.put(target);
        } else {
            match self.rng.usize(..16) {
                0..=8 => self.put(b"/"),
                9 => self.put(b"/?x=1"),
                10 => self.put(b"/nope"),
                11 => self.put(b"http://lab/"),
                12 => self.put(b"HTTPS://a.b:8080?x"),
                13 => self.put(b"//"),
                14 => self.put(b"/%2F"),
                _ => {
                    self.put(b"/");
                    let n = self.head_size();
                    self.fill(n, b"abcxyz019/?=&%-._~");
                }
            }
        }
        self.put_or_bad(b" ", b"  ");
        let version: &[u8] = if self.bad() {
            self.one_of(&[&b"HTTP/2.0"[..], b"HTTP/1.10", b"http/1.1", b"HTTP/1", b"HTTP/0.9", b"HTTP/9.9"])
        } else {
            match self.rng.usize(..16) {
                0..=11 => b"HTTP/1.1",
                12..=14 => b"HTTP/1.0",
                _ => b"HTTP/1.7",
            }
        };
        let http10 = version == b"HTTP/1.0";
        self.put(version);
        self.eol(crlf);

        // Host: exactly once in 1.1 (missing or twice breaks the rule), optional in 1.0.
        let hosts =
            if self.bad() { *pick(self.rng, &[0, 2]) } else { usize::from(!http10 || self.rng.bool()) };
        // Which headers, by number (see the match below), in a random order.
        let mut headers: Vec<u8> = vec![0; hosts];
        let body = if self.chance(3) { self.size() } else { 0 };
        if body > 0 || self.chance(8) {
            headers.push(1);
        }
        if http10 && !self.chance(4) {
            headers.push(2); // 1.0 closes after one request unless it asks to keep the connection
        }
        for _ in 0..self.rng.usize(0..=4) {
            headers.push(self.rng.u8(2..=9));
        }
        self.rng.shuffle(&mut headers);
        for h in headers {
            match h {
                0 => self.put_one_of(&[&b"Host: lab"[..], b"host: lab", b"HOST:lab", b"Host:  lab\t"]),
                1 => {
                    self.put_one_of(&[&b"Content-Length: "[..], b"content-length:", b"CONTENT-LENGTH:  "]);
                    let n =
                        if self.bad() { interesting_number(self.rng, self.max) } else { body.to_string() };
                    self.put(n.as_bytes());
                }
                2 if !http10 && self.chance(16) => {
                    self.put_one_of(&[&b"Connection: close"[..], b"connection: Keep-Alive, CLOSE"])
                }
                2 => self.put(b"Connection: keep-alive"),
                3 => self.put(b"Expect: 100-continue"),
                4 => {
                    self.put(b"X-Pad: ");
                    let n = self.head_size();
                    self.fill(n, b"pad \t\x80\xff");
                }
                _ if self.bad() => {
                    let broken = self.one_of(&[
                        &b"Transfer-Encoding: chunked"[..],
                        b" Folded: continuation",
                        b"Bad Name: x",
                        b"X: a\rb",
                        b"X: a\0b",
                        b"Host : lab",
                        b":",
                        b"Content-Length: 5, 5",
                        b"\x7f: x",
                    ]);
                    self.put(broken);
                }
                _ => {
                    self.put(b"X-");
                    let n = self.rng.usize(..12);
                    self.fill(n, b"abcXYZ019-_!#$%&'*+.^`|~");
                    self.put(b":");
                    let n = self.rng.usize(..24);
                    self.fill(n, b" abc~!\t\x80\xfe,;=");
                }
            }
            self.eol(crlf);
        }
        if !self.bad() {
            self.eol(crlf); // the empty line that ends the head
        }
        if self.bad() {
            self.put(b"5\r\nhello\r\n0\r\n\r\n"); // a chunked-looking body nobody announced
        } else {
            self.noise(body);
        }
    }

    // ---- kv -----------------------------------------------------------------------------

    fn kv(&mut self) {
        if self.chance(300) {
            match self.rng.usize(..4) {
                // A megabyte argument, declared or inline.
                0 => {
                    self.put(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$");
                    self.put(BIG.to_string().as_bytes());
                    self.put(b"\r\n");
                    self.fill(BIG, b"v");
                    self.put(b"\r\n");
                }
                1 => {
                    self.put(b"SET k ");
                    self.fill(BIG, b"v");
                    self.put(b"\r\n");
                }
                // As many arguments as allowed, or one more, in both framings.
                2 => {
                    let n = servers::proto::kv::MAX_ARGS + self.rng.usize(..=1);
                    self.put(format!("*{n}\r\n$3\r\nDEL\r\n").as_bytes());
                    for _ in 1..n {
                        self.put(b"$1\r\nk\r\n");
                    }
                }
                _ => {
                    self.put(b"EXISTS");
                    for _ in 1..servers::proto::kv::MAX_ARGS + self.rng.usize(..=1) {
                        self.put(b" k");
                    }
                    self.put(b"\r\n");
                }
            }
            return;
        }
        let mut last = 0;
        for _ in 0..self.rng.usize(1..=8) {
            last = self.out.len();
            if self.chance(24) {
                // A counter at the edge of i64, then one more: INCR must refuse to overflow.
                let edge: &[u8] = self.one_of(&[&b"9223372036854775807"[..], b"-9223372036854775808"]);
                if edge.len() <= self.max {
                    self.kv_resp(&[b"SET".to_vec(), b"n".to_vec(), edge.to_vec()]);
                    self.kv_resp(&[b"INCR".to_vec(), b"n".to_vec()]);
                    continue;
                }
            }
            let args = self.kv_args();
            // Inline only where the whole line fits the limit (or when breaking that rule).
            let line: usize = args.iter().map(|a| a.len() + 3).sum();
            let fits = line <= self.max || self.bad();
            let inline = fits && self.chance(4) && args.iter().all(|a| !a.is_empty());
            if inline { self.kv_inline(&args) } else { self.kv_resp(&args) }
        }
        self.maybe_truncate(last);
    }

    /// A key: a few names shared by the whole stream (so a GET finds what a SET stored).
    fn kv_key(&mut self) -> Vec<u8> {
        match self.rng.usize(..10) {
            0..=7 => self.one_of(&[&b"k"[..], b"key:1", b"n", b"counter", b"x"]).to_vec(),
            8 => self.rng.u32(..20).to_string().into_bytes(),
            _ => {
                let n = self.size();
                let mut key = vec![0; n];
                self.rng.fill(&mut key);
                key
            }
        }
    }

    fn kv_value(&mut self) -> Vec<u8> {
        match self.rng.usize(..8) {
            // A number for INCR, where it fits the limit.
            0 | 1 => {
                let n = match self.rng.usize(..3) {
                    0 => pick(
                        self.rng,
                        &["0", "-1", "9223372036854775807", "-9223372036854775808", "1x", " 1"],
                    )
                    .to_string(),
                    1 => self.rng.i64(..).to_string(),
                    _ => self.rng.i64(-100..100).to_string(),
                };
                if n.len() <= self.max || self.bad() { n.into_bytes() } else { b"1".to_vec() }
            }
            _ => {
                let n = self.size();
                let mut value = vec![b'v'; n];
                if n < 4096 {
                    self.rng.fill(&mut value);
                }
                value
            }
        }
    }

    /// A command's words: a known command with the right arity mostly; a wrong arity or an
    /// unknown command is a valid request too (it gets an error reply and the connection goes on).
    fn kv_args(&mut self) -> Vec<Vec<u8>> {
        let (name, arity): (&[u8], usize) = match self.rng.usize(..48) {
            0..=9 => (b"GET", 2),
            10..=19 => (b"SET", 3),
            20..=22 => (b"DEL", self.rng.usize(2..=5)),
            23..=25 => (b"EXISTS", self.rng.usize(2..=5)),
            26..=31 => (b"INCR", 2),
            32..=34 => (b"PING", self.rng.usize(1..=2)),
            35 if self.chance(4) => (b"QUIT", 1),
            36 => (b"get", 2),
            37 => (b"sEt", 3),
            38 => (b"COMMAND", 2),
            39 => (b"CONFIG", 3),
            40 => (b"SET", 5),
            41 => (b"incr", self.rng.usize(1..=3)),
            _ => (b"GET", 2),
        };
        let arity = if self.chance(12) { self.rng.usize(..=5) } else { arity };
        let mut args = Vec::with_capacity(arity);
        if arity > 0 {
            args.push(name.to_vec());
        }
        for i in 1..arity {
            let value = i == 2 && name.eq_ignore_ascii_case(b"SET");
            let arg = if value { self.kv_value() } else { self.kv_key() };
            args.push(arg);
        }
        args
    }

    fn kv_resp(&mut self, args: &[Vec<u8>]) {
        self.put(b"*");
        let count = if self.bad() {
            match self.rng.usize(..3) {
                0 => interesting_number(self.rng, self.max),
                1 => (args.len() + 1).to_string(),
                _ => args.len().saturating_sub(1).to_string(),
            }
        } else {
            args.len().to_string()
        };
        self.put(count.as_bytes());
        self.kv_crlf();
        for arg in args {
            self.put_or_bad(b"$", b":");
            let len = if self.bad() { interesting_number(self.rng, self.max) } else { arg.len().to_string() };
            self.put(len.as_bytes());
            self.kv_crlf();
            self.put(arg);
            self.kv_crlf();
        }
    }

    fn kv_crlf(&mut self) {
        if self.bad() {
            let e: &[u8] = self.one_of(&[&b"\n"[..], b"\r", b"", b"\r\r\n", b"xx"]);
            self.put(e);
        } else {
            self.put(b"\r\n");
        }
    }

    fn kv_inline(&mut self, args: &[Vec<u8>]) {
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                let sep: &[u8] = self.one_of(&[&b" "[..], b" ", b"\t", b"  \t "]);
                self.put(sep);
            }
            if self.bad() {
                let broken: &[u8] = self.one_of(&[&b"\"open"[..], b"'open", b"\"a\"b", b"'a'b"]);
                self.put(broken);
                continue;
            }
            let plain = arg.iter().all(|&b| !is_inline_special(b));
            match self.rng.usize(..8) {
                0 if !arg.contains(&b'"') && !arg.contains(&b'\n') => {
                    self.put(b"\"");
                    self.put(arg);
                    self.put(b"\"");
                }
                1 if !arg.contains(&b'\'') && !arg.contains(&b'\n') => {
                    self.put(b"'");
                    self.put(arg);
                    self.put(b"'");
                }
                _ if plain => self.put(arg),
                _ => self.put(b"x"),
            }
        }
        if self.chance(4) {
            self.put(b"\n");
        } else {
            self.put(b"\r\n");
        }
    }
}

/// The bytes an unquoted inline word cannot hold: separators, quotes, the line end.
fn is_inline_special(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c' | b'"' | b'\'')
}

/// Long targets and header values stop here: longer than any head the servers accept (8 KiB),
/// so `431` is reached, without making every such request a megabyte.
const MAX_HEAD_ISH: usize = 12 * 1024;
