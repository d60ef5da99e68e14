//! Framing: where does the next request end, is it whole, and is it within the limits?
//!
//! The framer answers before anything is executed, so a request that breaks a limit changes
//! nothing in the store. It remembers how far it checked a partial request, so a request that
//! arrives a byte at a time is checked once in total, not once per byte.

use super::MAX_ARGS;

/// Longest number in a `*N` or `$N` header: `-9223372036854775808` is 20 bytes.
const MAX_DIGITS: usize = 20;

/// Why a peer's bytes cannot be a request. Each one ends the connection after its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// `*` not followed by a number in range, then `\r\n`.
    MultibulkLength,
    /// `$` not followed by a number in `0..=max_arg`, then `\r\n`.
    BulkLength,
    /// Something other than `$` where an argument should start.
    ExpectedDollar(u8),
    /// An argument's bytes not followed by `\r\n`.
    BulkNotTerminated,
    /// The whole request would be longer than the framer's `max_request`.
    TooLong,
    /// An inline line longer than `max_arg` bytes.
    TooBigInline,
    /// An inline line with more than [`MAX_ARGS`] arguments.
    TooManyInline,
    /// An inline line with a quote that is not closed, or closed and not followed by a space.
    UnbalancedQuotes,
}

/// What the framer found at the start of the input.
#[derive(Debug)]
pub enum Framed<'a> {
    /// Not a whole request yet: call again with the same bytes and more.
    Incomplete,
    /// A whole request, `consumed` bytes long.
    Whole { frame: Frame<'a>, consumed: usize },
    /// Not a request at all.
    Broken(Broken),
}

/// A whole request.
#[derive(Debug)]
pub enum Frame<'a> {
    /// An empty line, `*0` or `*-1`: nothing to do and nothing to answer.
    Empty,
    /// A command: a RESP array of bulk strings, or a line of words.
    Command(Args<'a>),
}

/// Where a partial RESP request was left: its argument count, how many arguments were
/// already found whole, and where the first argument and the next one start.
#[derive(Clone, Copy, Debug)]
struct Resume {
    argc: usize,
    done: usize,
    first: usize,
    next: usize,
}

/// [`Resume`] as it is kept between reads: every idle connection of the `reactor` holds a
/// framer, so its state is packed into 12 bytes (`argc` and `done` are at most [`MAX_ARGS`],
/// `first` at most a header's length, `next` at most a request's). `argc == 0`: nothing kept.
#[derive(Clone, Copy, Debug, Default)]
struct Packed {
    argc: u16,
    done: u16,
    first: u16,
    next: u32,
}

/// The largest `max_arg` a framer accepts (the `server` binary's `--max-frame` stops at 2³⁰
/// too), so that every offset into a request fits in a `u32`.
pub const MAX_ARG_LIMIT: usize = 1 << 30;

/// Per-connection framing state.
#[derive(Debug)]
pub struct Framer {
    max_arg: u32,
    /// Inline: bytes of the partial line already searched for `\n` (at most `max_arg + 2`).
    scanned: u32,
    /// A RESP request partly checked, if `argc > 0`.
    resume: Packed,
}

impl Framer {
    /// A framer for arguments of at most `max_arg` bytes (capped at [`MAX_ARG_LIMIT`]).
    pub fn new(max_arg: usize) -> Framer {
        let max_arg = u32::try_from(max_arg.min(MAX_ARG_LIMIT)).unwrap_or(u32::MAX);
        Framer { max_arg, scanned: 0, resume: Packed::default() }
    }

    fn max_arg(&self) -> usize {
        self.max_arg as usize
    }

    /// The longest request accepted, framing included.
    pub fn max_request(&self) -> usize {
        2 * self.max_arg() + super::REQUEST_SLACK
    }

    /// Find the request at the start of `input`.
    pub fn next<'a>(&mut self, input: &'a [u8]) -> Framed<'a> {
        let framed = match input.first() {
            None => return Framed::Incomplete,
            Some(b'*') => self.resp(input),
            Some(_) => self.inline(input),
        };
        if !matches!(framed, Framed::Incomplete) {
            (self.resume, self.scanned) = (Packed::default(), 0);
        }
        framed
    }

    fn resp<'a>(&mut self, input: &'a [u8]) -> Framed<'a> {
        let kept = self.resume;
        let mut at = match kept.argc {
            1.. => Resume {
                argc: kept.argc.into(),
                done: kept.done.into(),
                first: kept.first.into(),
                next: kept.next as usize,
            },
            0 => match number(input, 0) {
                Number::Incomplete => return Framed::Incomplete,
                Number::Invalid => return Framed::Broken(Broken::MultibulkLength),
                Number::Value(n, _) if n > MAX_ARGS as i64 => return Framed::Broken(Broken::MultibulkLength),
                Number::Value(n, next) if n <= 0 => {
                    return Framed::Whole { frame: Frame::Empty, consumed: next };
                }
                // In 1..=MAX_ARGS, so the cast is exact.
                Number::Value(n, next) => Resume { argc: n as usize, done: 0, first: next, next },
            },
        };
        while at.done < at.argc {
            let Some(&kind) = input.get(at.next) else {
                return self.incomplete(at, input);
            };
            if kind != b'$' {
                return Framed::Broken(Broken::ExpectedDollar(kind));
            }
            let (len, data) = match number(input, at.next) {
                Number::Incomplete => return self.incomplete(at, input),
                Number::Invalid => return Framed::Broken(Broken::BulkLength),
                Number::Value(len, data) => match usize::try_from(len) {
                    Ok(len) if len <= self.max_arg() => (len, data),
                    _ => return Framed::Broken(Broken::BulkLength),
                },
            };
            // Both terms are bounded (an index into `input`, and at most `max_arg`): no overflow.
            let end = data + len + 2;
            if end > self.max_request() {
                return Framed::Broken(Broken::TooLong);
            }
            match input.get(data + len..end) {
                None => return self.incomplete(at, input),
                Some(b"\r\n") => {}
                Some(_) => return Framed::Broken(Broken::BulkNotTerminated),
            }
            at.next = end;
            at.done += 1;
        }
        let args = input.get(at.first..at.next).unwrap_or_default();
        Framed::Whole { frame: Frame::Command(Args::resp(args, at.argc)), consumed: at.next }
    }

    /// Remember how far a partial RESP request was checked; a partial request that already
    /// holds more bytes than any request may is refused without waiting for the rest.
    fn incomplete<'a>(&mut self, at: Resume, input: &[u8]) -> Framed<'a> {
        if input.len() > self.max_request() {
            return Framed::Broken(Broken::TooLong);
        }
        // Each field is within its type: see `Packed`. A failed conversion (impossible) only
        // makes the framer check the request from its start again.
        self.resume = match (
            u16::try_from(at.argc),
            u16::try_from(at.done),
            u16::try_from(at.first),
            u32::try_from(at.next),
        ) {
            (Ok(argc), Ok(done), Ok(first), Ok(next)) => Packed { argc, done, first, next },
            _ => Packed::default(),
        };
        Framed::Incomplete
    }

    fn inline<'a>(&mut self, input: &'a [u8]) -> Framed<'a> {
        let from = (self.scanned as usize).min(input.len());
        let Some(newline) = memchr::memchr(b'\n', &input[from..]).map(|i| from + i) else {
            // A line of max_arg bytes may still be followed by `\r\n`: only a partial line
            // of max_arg + 2 bytes is certainly too long.
            if input.len() >= self.max_arg() + 2 {
                return Framed::Broken(Broken::TooBigInline);
            }
            // Less than max_arg + 2 <= 2^30 + 2: fits.
            self.scanned = u32::try_from(input.len()).unwrap_or(0);
            return Framed::Incomplete;
        };
        let line = &input[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max_arg() {
            return Framed::Broken(Broken::TooBigInline);
        }
        let mut argc = 0;
        let mut rest = line;
        loop {
            match split_word(rest) {
                Word::End => break,
                Word::Unbalanced => return Framed::Broken(Broken::UnbalancedQuotes),
                Word::Found(_, after) => {
                    argc += 1;
                    rest = after;
                }
            }
        }
        let frame = match argc {
            0 => Frame::Empty,
            n if n > MAX_ARGS => return Framed::Broken(Broken::TooManyInline),
            n => Frame::Command(Args::inline(line, n)),
        };
        Framed::Whole { frame, consumed: newline + 1 }
    }
}

/// A header line `*N\r\n` or `$N\r\n` starting at `at` (which holds the `*` or `$`).
#[derive(Debug, PartialEq, Eq)]
enum Number {
    Incomplete,
    Invalid,
    /// The number, and where the bytes after its `\r\n` start.
    Value(i64, usize),
}

fn number(input: &[u8], at: usize) -> Number {
    let digits_from = at + 1;
    let window = input.get(digits_from..).unwrap_or_default();
    let window = &window[..window.len().min(MAX_DIGITS + 1)];
    let Some(cr) = memchr::memchr(b'\r', window) else {
        return if window.len() > MAX_DIGITS { Number::Invalid } else { Number::Incomplete };
    };
    match input.get(digits_from + cr + 1) {
        None => Number::Incomplete,
        Some(b'\n') => match parse_decimal(&window[..cr]) {
            Some(n) => Number::Value(n, digits_from + cr + 2),
            None => Number::Invalid,
        },
        Some(_) => Number::Invalid,
    }
}

/// A strict decimal, as Redis reads lengths: an optional `-`, digits, no `+`, no spaces, no
/// leading zeros.
pub fn parse_decimal(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let well_formed = match digits {
        [] => false,
        [b'0'] => text.len() == 1, // `0`, but not `-0`
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    if !well_formed {
        return None;
    }
    // Only ASCII digits and a sign remain, so this is valid UTF-8; `parse` checks the range.
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// One word of an inline line.
enum Word<'a> {
    End,
    Unbalanced,
    /// The word, and the rest of the line after it.
    Found(&'a [u8], &'a [u8]),
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

fn split_word(line: &[u8]) -> Word<'_> {
    let start = line.iter().position(|&b| !is_space(b)).unwrap_or(line.len());
    let line = &line[start..];
    match line.first() {
        None => Word::End,
        Some(&quote @ (b'"' | b'\'')) => {
            let inner = &line[1..];
            let Some(close) = memchr::memchr(quote, inner) else { return Word::Unbalanced };
            let after = &inner[close + 1..];
            if after.first().is_some_and(|&b| !is_space(b)) {
                return Word::Unbalanced;
            }
            Word::Found(&inner[..close], after)
        }
        Some(_) => {
            let end = line.iter().position(|&b| is_space(b)).unwrap_or(line.len());
            Word::Found(&line[..end], &line[end..])
        }
    }
}

/// The arguments of a whole request, as slices of the input: nothing copied, nothing stored.
#[derive(Clone, Debug)]
pub struct Args<'a> {
    rest: &'a [u8],
    left: usize,
    inline: bool,
}

impl<'a> Args<'a> {
    /// `bytes` holds exactly `argc` checked `$N\r\n...\r\n` arguments.
    fn resp(bytes: &'a [u8], argc: usize) -> Args<'a> {
        Args { rest: bytes, left: argc, inline: false }
    }

    /// `line` holds exactly `argc` checked words.
    fn inline(line: &'a [u8], argc: usize) -> Args<'a> {
        Args { rest: line, left: argc, inline: true }
    }

    fn next_resp(&mut self) -> Option<&'a [u8]> {
        let cr = memchr::memchr(b'\r', self.rest)?;
        let len = usize::try_from(parse_decimal(self.rest.get(1..cr)?)?).ok()?;
        let data = self.rest.get(cr + 2..cr + 2 + len)?;
        self.rest = self.rest.get(cr + 2 + len + 2..).unwrap_or_default();
        Some(data)
    }

    fn next_inline(&mut self) -> Option<&'a [u8]> {
        match split_word(self.rest) {
            Word::Found(word, rest) => {
                self.rest = rest;
                Some(word)
            }
            Word::End | Word::Unbalanced => None,
        }
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        // The framer checked every argument, so these cannot fail; if they somehow did, the
        // request would just look shorter, never panic.
        let arg = if self.inline { self.next_inline() } else { self.next_resp() };
        self.left = if arg.is_some() { self.left - 1 } else { 0 };
        arg
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Args<'_> {}
