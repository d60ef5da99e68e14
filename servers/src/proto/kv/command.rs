//! Executing one whole, well-framed request against the store, and writing its reply.
//!
//! Everything here answers with a reply and keeps the connection: a wrong command is the
//! client's mistake, not a broken stream, so Redis (and this server) say so and read on.

use super::frame::Args;
use super::reply;
use crate::store::{Full, IncrError, Store};

/// What the connection does after this request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    /// `QUIT`: answer, then close.
    Close,
}

/// The commands this server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Ping,
    Get,
    Set,
    Del,
    Exists,
    Incr,
    Quit,
}

impl Command {
    /// Case-insensitive lookup, without lowercasing a copy: the length picks the candidates.
    fn lookup(name: &[u8]) -> Option<Command> {
        let candidates: &[(&[u8], Command)] = match name.len() {
            3 => &[(b"GET", Command::Get), (b"SET", Command::Set), (b"DEL", Command::Del)],
            4 => &[(b"PING", Command::Ping), (b"INCR", Command::Incr), (b"QUIT", Command::Quit)],
            6 => &[(b"EXISTS", Command::Exists)],
            _ => &[],
        };
        candidates.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, c)| c)
    }

    /// The name in error messages (Redis writes it in lower case).
    fn name(self) -> &'static str {
        match self {
            Command::Ping => "ping",
            Command::Get => "get",
            Command::Set => "set",
            Command::Del => "del",
            Command::Exists => "exists",
            Command::Incr => "incr",
            Command::Quit => "quit",
        }
    }

    /// Whether `argc` arguments (the name included) are acceptable.
    fn arity_ok(self, argc: usize) -> bool {
        match self {
            Command::Ping => argc <= 2,
            Command::Get | Command::Incr => argc == 2,
            // Extra arguments are SET's options, refused with their own message below.
            Command::Set => argc >= 3,
            Command::Del | Command::Exists => argc >= 2,
            Command::Quit => true,
        }
    }
}

/// Run the request whose arguments are `args` (the command name first).
pub fn execute(mut args: Args<'_>, out: &mut Vec<u8>, store: &impl Store) -> Outcome {
    let argc = args.len();
    let Some(name) = args.next() else { return Outcome::Continue };
    let Some(command) = Command::lookup(name) else {
        unknown(out, name, args);
        return Outcome::Continue;
    };
    if !command.arity_ok(argc) {
        out.extend_from_slice(b"-ERR wrong number of arguments for '");
        out.extend_from_slice(command.name().as_bytes());
        out.extend_from_slice(b"' command\r\n");
        return Outcome::Continue;
    }
    // Arity is checked: every `next()` below that the command needs yields an argument.
    let mut arg = || args.next().unwrap_or_default();
    match command {
        Command::Ping if argc == 1 => reply::simple(out, b"PONG"),
        Command::Ping => reply::bulk(out, arg()),
        Command::Get => store.with_value(arg(), |value| match value {
            Some(value) => reply::bulk(out, value),
            None => reply::nil(out),
        }),
        Command::Set if argc > 3 => reply::error(
            out,
            b"ERR SET options (EX, PX, NX, XX, GET, KEEPTTL, ...) are not supported by this server",
        ),
        Command::Set => match store.set(arg(), arg()) {
            Ok(()) => reply::simple(out, b"OK"),
            Err(full) => store_full(out, full),
        },
        Command::Del => reply::integer(out, count(args, |key| store.delete(key))),
        Command::Exists => reply::integer(out, count(args, |key| store.contains(key))),
        Command::Incr => match store.increment(arg()) {
            Ok(n) => reply::integer(out, n),
            Err(IncrError::NotAnInteger) => reply::error(out, b"ERR value is not an integer or out of range"),
            Err(IncrError::Overflow) => reply::error(out, b"ERR increment or decrement would overflow"),
            Err(IncrError::Full(full)) => store_full(out, full),
        },
        Command::Quit => {
            reply::simple(out, b"OK");
            return Outcome::Close;
        }
    }
    Outcome::Continue
}

/// How many of the remaining arguments `test` holds for (each key counted as often as named,
/// as Redis's `EXISTS` does).
fn count<'a>(keys: impl Iterator<Item = &'a [u8]>, mut test: impl FnMut(&[u8]) -> bool) -> i64 {
    // At most MAX_ARGS keys: the count always fits.
    keys.map(|key| i64::from(test(key))).sum()
}

/// Redis answers a write refused for lack of memory with an `OOM` error; a full store is that.
fn store_full(out: &mut Vec<u8>, full: Full) {
    let (bound, unit) = match full {
        Full::Keys { max_keys } => (max_keys, &b" keys (--kv-max-keys)\r\n"[..]),
        Full::Bytes { max_bytes } => (max_bytes, &b" bytes (--kv-max-bytes)\r\n"[..]),
    };
    out.extend_from_slice(b"-OOM command not allowed: the store holds its maximum of ");
    reply::decimal(out, i64::try_from(bound).unwrap_or(i64::MAX));
    out.extend_from_slice(unit);
}

/// Redis's wording, with the peer's bytes cut short and cleaned (see [`reply::quoted`]).
fn unknown<'a>(out: &mut Vec<u8>, name: &[u8], args: impl Iterator<Item = &'a [u8]>) {
    /// Redis quotes at most this many bytes of the name, and of the arguments together.
    const QUOTE: usize = 128;
    out.extend_from_slice(b"-ERR unknown command '");
    reply::quoted(out, name, QUOTE);
    out.extend_from_slice(b"', with args beginning with: ");
    let mut quoted = 0;
    for arg in args {
        if quoted >= QUOTE {
            break;
        }
        let take = arg.len().min(QUOTE - quoted);
        out.push(b'\'');
        reply::quoted(out, arg, take);
        out.extend_from_slice(b"' ");
        quoted += take + 3;
    }
    out.extend_from_slice(b"\r\n");
}
