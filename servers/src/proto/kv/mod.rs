//! `kv`: a key-value store that speaks the subset of Redis's protocol (RESP2) that `redis-cli`,
//! `redis-benchmark -t ping,set,get` and a human with `nc` need.
//!
//! This is the first protocol in the lab whose requests *change shared state*: a `SET` on one
//! connection must be seen by a `GET` on another. The decoder stays sans-IO and does not know
//! how that state is shared; it gets a [`Store`] and calls it. Whether that costs a `RefCell`
//! check, one mutex or one of many is the model's choice (see [`crate::store`]).
//!
//! **Two framings, told apart by the first byte.** A request starting with `*` is a RESP array
//! of bulk strings, what every client library sends:
//!
//! ```text
//!   *3\r\n $3\r\nSET\r\n $7\r\ntask_01\r\n $9\r\nread-book\r\n      (spaces added for reading)
//!   └count┘ └len┘└arg┘   └len┘ └─arg─┘     └len┘ └──arg──┘
//! ```
//!
//! Anything else is an *inline* command, a line typed by a human: `SET task_01 read-book`, ended
//! by `\n` (an `\r` before it is dropped), split at spaces and tabs; `"..."` or `'...'` quote an
//! argument with spaces in it (no escapes inside quotes, unlike Redis). An empty line, `*0` and
//! `*-1` are requests that get no reply, as in Redis. Replies are RESP whichever framing asked.
//!
//! **Commands** (names in any case): `PING [msg]`, `GET key`, `SET key value`, `DEL key...`,
//! `EXISTS key...`, `INCR key`, `QUIT`. `SET`'s options (`EX`, `NX`, ...) are not supported and
//! get an error reply. An unknown command or a wrong number of arguments gets Redis's error
//! (`-ERR unknown command 'x', with args beginning with: ...`, `-ERR wrong number of arguments
//! for 'get' command`) and the connection stays usable. That is also all the tools need for
//! what they ask when they start: an interactive `redis-cli` (7.0) sends `COMMAND DOCS`, then
//! `COMMAND`, and on the errors falls back to its built-in help and goes on; `redis-benchmark` sends `CONFIG GET save` and
//! `CONFIG GET appendonly`, prints `WARNING: Could not fetch server CONFIG` and carries on
//! (`scripts/clients/kv.sh` runs both tools against every model).
//!
//! **Limits: what a peer can make a server hold.** A request is decoded only once it is whole,
//! so everything it can cost is bounded before it is answered:
//!
//! | limit | value | past it |
//! | --- | --- | --- |
//! | one argument (bulk string) | `--max-frame` bytes (F, 64 KiB by default) | `-ERR Protocol error: invalid bulk length`, close |
//! | arguments per request | [`MAX_ARGS`] = 1024 | `-ERR Protocol error: invalid multibulk length`, close |
//! | one whole request | `2·F + 16 KiB` (a `SET` with key and value both at F, plus framing) | `-ERR Protocol error: request longer than N bytes`, close |
//! | one inline line | F bytes before its line end | `-ERR Protocol error: too big inline request`, close |
//! | keys in the store | `--kv-max-keys` | `-OOM ...` for that `SET`/`INCR`; the connection stays usable |
//!
//! Every limit is checked from the headers alone, as soon as they arrive: a peer announcing
//! `$4294967296` is refused before it sends a byte of that. So a connection never holds more
//! than one maximal request of input, and the store never more than `--kv-max-keys` keys of at
//! most F bytes each (key and value). A broken framing (`$` expected and something else found,
//! a length that is not a number) gets `-ERR Protocol error: ...` and a close, as Redis does:
//! after a framing error nobody can tell where the next request starts.
//!
//! **No allocation per request.** The decoder keeps no list of arguments: it checks the request
//! is whole, then walks it again with an iterator that yields slices of the input, so `GET` and
//! `SET` copy bytes only into the reply buffer and the store. (The store allocates when a key is
//! created or a value changes size.)

mod command;
mod frame;
mod reply;

#[cfg(test)]
mod tests;

use super::Decoded;
use crate::store::Store;
use frame::{Frame, Framed, Framer};

/// The most arguments (command name included) one request may carry.
pub const MAX_ARGS: usize = 1024;

/// What one request may take beyond its two largest arguments: the framing of every argument
/// and room for many small ones (`DEL` of a thousand short keys).
pub const REQUEST_SLACK: usize = 16 * 1024;

/// Decoder state for one connection: the limits and how far a partial request was checked.
#[derive(Debug)]
pub struct Kv {
    framer: Framer,
}

impl Kv {
    /// A decoder accepting arguments of at most `max_arg` bytes (`--max-frame`).
    pub fn new(max_arg: usize) -> Kv {
        Kv { framer: Framer::new(max_arg) }
    }

    /// The longest request: see the table of limits above.
    pub fn max_request_len(&self) -> usize {
        self.framer.max_request()
    }

    /// See [`super::Codec::decode`].
    #[inline]
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>, store: &impl Store) -> Decoded {
        match self.framer.next(input) {
            Framed::Incomplete => Decoded::Incomplete,
            Framed::Broken(error) => {
                reply::protocol_error(out, error, self.framer.max_request());
                Decoded::Malformed
            }
            Framed::Whole { frame, consumed } => {
                let outcome = match frame {
                    Frame::Empty => command::Outcome::Continue,
                    Frame::Command(args) => command::execute(args, out, store),
                };
                match outcome {
                    command::Outcome::Continue => Decoded::Request { consumed },
                    command::Outcome::Close => Decoded::Last { consumed },
                }
            }
        }
    }
}
