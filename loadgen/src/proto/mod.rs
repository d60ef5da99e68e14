//! The client side of each wire protocol, kept apart from the engine.
//!
//! The engine only knows the [`ClientProtocol`] trait: "write request number `seq` into this
//! buffer" and "does this buffer start with the response to that request, and is it right?".
//! It owns sockets, timing and counting; a protocol owns bytes. Adding HTTP, a Redis-style KV
//! workload or a chat client means adding a file here and a variant to
//! [`ProtocolKind`](crate::config::ProtocolKind), not touching the event loop.
//!
//! This code is written independently of the lab's servers on purpose: if both sides shared
//! one framing bug, neither could catch it.

mod echo_frame;
mod echo_line;
mod http;
mod kv;

pub use echo_frame::EchoFrame;
pub use echo_line::EchoLine;
pub use http::Http;
pub use kv::{Kv, KvConn};

pub use crate::payload::RequestTag;

/// What a decoder found at the start of the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// Not enough bytes yet for a whole response; read more and ask again.
    Incomplete,
    /// A whole response of `len` bytes is at the front of the buffer. `matches` says whether it
    /// was the expected one (always `true` when verification is off).
    Complete {
        /// Bytes to consume, framing included.
        len: usize,
        /// Whether the response is byte for byte what was expected.
        matches: bool,
    },
    /// The bytes cannot be a response at all (bad framing, oversized length). The stream can no
    /// longer be trusted, so the engine drops the connection.
    Malformed(&'static str),
}

/// One request/response protocol, seen from the client.
///
/// Implementations must not allocate per request: encode by appending to the caller's buffer,
/// decode by looking at the caller's buffer in place.
///
/// A request is a pure function of its sequence number (`tag`, `encode` take `&self`), so the
/// engine can build requests without asking anyone. What a *reply* should be may depend on
/// what the connection did before: the `kv` protocol expects a `GET` to return the value its
/// connection last `SET` there. Such a protocol keeps that memory in [`Self::ConnState`], one
/// per connection, owned by the engine and handed to `decode` in reply order. The echo
/// protocols need none and use `()`, which costs nothing.
pub trait ClientProtocol: Send + Sync {
    /// What the protocol remembers about one connection between replies.
    type ConnState: Send;

    /// A fresh state for connection `conn_id` (run-wide, as in its sequence numbers), made
    /// once when the connection is set up, never per request.
    fn conn_state(&self, conn_id: u64) -> Self::ConnState;

    /// Picks what request number `seq` will be (its size, in the echo protocols).
    fn tag(&self, seq: u64) -> RequestTag;

    /// Appends the wire bytes of the request described by `tag` to `out`.
    fn encode(&self, tag: RequestTag, out: &mut Vec<u8>);

    /// Looks for the response to `tag` at the start of `input`. With `verify` off only the
    /// framing is checked (the calibration mode that measures what checking costs). `state` is
    /// the connection's; it sees every reply of the connection, in order, each exactly once as
    /// `Complete` (`Incomplete` calls must leave it unchanged).
    fn decode(&self, state: &mut Self::ConnState, input: &[u8], tag: RequestTag, verify: bool) -> Decoded;

    /// The largest response this protocol can legitimately send for the configured workload;
    /// the engine sizes its receive buffers from it so that one response always fits.
    fn max_response_len(&self) -> usize;

    /// With `--conn-per-request`: whether the server closes each connection after its one reply
    /// (HTTP's `Connection: close`), so the client waits for that close and checks it instead
    /// of closing first. The echo protocols have no way to ask, so the client closes.
    fn server_closes(&self) -> bool {
        false
    }
}
