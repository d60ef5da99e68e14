//! The glue between a protocol and a model: run the decoder over whatever bytes a connection has,
//! and apply the per-request knobs that make the classroom experiments visible.
//!
//! Every model calls [`Session::serve`] and nothing else from the protocol layer, so the only
//! difference between two servers is how they get bytes in and out, never what they do with them.
//! (For `chat`, what `serve` produces is routed to the other members instead of written back;
//! how each model routes it is that model's chat lesson.)

use std::time::{Duration, Instant};

use crate::proto::chat::MemberId;
use crate::proto::{Codec, Decoded, Proto};
use crate::store::Store;

/// Extra cost charged to every request, the same in every model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Knobs {
    /// CPU time burned per request (`--work-us`): a request that computes something.
    pub work: Duration,
    /// Time slept per request (`--block-us`), the way a blocking database call would. On a thread
    /// per connection this costs one idle thread; on an event loop it stalls *every* connection.
    pub block: Duration,
}

impl Knobs {
    /// Charge one request's worth of work and blocking to the calling thread.
    #[inline]
    pub fn charge(&self) {
        if !self.work.is_zero() {
            burn_cpu(self.work);
        }
        if !self.block.is_zero() {
            std::thread::sleep(self.block);
        }
    }
}

/// Spin until `d` has passed: real CPU work that the scheduler sees as a busy thread.
fn burn_cpu(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// What one call to [`Session::serve`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// Input bytes fully handled; the caller drops them and keeps the rest for the next call.
    pub consumed: usize,
    /// Requests answered (responses appended to `out`).
    pub requests: usize,
    /// The conversation is over (the peer broke the protocol, or the protocol says so):
    /// write `out`, then close.
    pub close: bool,
    /// Decoding stopped at a budget (the replies reached the output budget, or an event loop's
    /// turn its count of requests), with input left over that may hold more complete requests:
    /// write `out`, then serve the rest again *before* reading more (no new bytes may ever come
    /// to prompt it). An event loop serves the rest on the connection's next turn.
    pub more: bool,
}

/// The default `--max-output`: how many bytes of replies one call to [`Session::serve`] may
/// produce before it stops decoding, so a turn's replies are at most this plus one reply. A
/// thread writes them before decoding more; an event loop stops reading once its pending output
/// passes the same mark, so it holds at most twice this plus one reply. (Redis's equivalent,
/// `client-output-buffer-limit`, disconnects a client past its limit; here the client is slowed
/// instead, and `--write-timeout` disconnects one that stops reading altogether.) 256 KiB is a
/// few socket buffers' worth: enough that a client which reads never waits on it.
///
/// Without it, replies are bounded only by what one read can ask for: a single 64 KiB read of
/// 7-byte `GET k` requests for a 64 KiB value asks for 600 MB of replies, from a client that
/// need not read any of them. With it, the rest of that read waits, unconsumed, until the
/// kernel has taken the replies so far; if the peer never reads, its socket's send buffer
/// fills, the kernel takes no more, and the connection's memory stops growing.
pub const DEFAULT_MAX_OUTPUT: usize = 256 * 1024;

/// How many requests one call to [`Session::serve`] answers in an event loop before the
/// connection gives the others their turn ([`Session::taking_turns`]); the requests left over
/// are answered on its next turn, before it reads again.
///
/// One thread serves every connection of a loop, so the time a connection's turn takes is time
/// every other client waits. A client that pipelines hands the loop a whole read of requests at
/// once (the reactor's and the executor's 64 KiB: about 2,000 http requests), and 16 reads a
/// turn made that over 30,000: the abuse suite's slow-reader (16 such clients) measured a
/// healthy probe's p99 at 70-140 ms in the reactor, async and executor at b1e6061, where the
/// suite allows 2 ms. At 64 requests a turn is tens of microseconds, and
/// a client that sends one request at a time never meets the limit. tokio's cooperative budget
/// (128 operations a task poll) and Envoy's `max_requests_per_io_cycle` are the same idea.
/// Threads need no such count: the kernel's scheduler takes the CPU back from a busy one.
///
/// The price is a write, and a turn of the loop, every 64 requests for a client that keeps more
/// than 64 in flight: `loadgen run --proto http --conns 4 --depth 256` against the reactor made
/// 0.74-0.83× the requests per second of turns bounded only by reads (at `--depth 32`, no
/// difference), alternating with a build of b1e6061, from before the budget. 128 (this constant
/// edited) cost 0.90-0.98×, but left the slow-reader probe at 2.2 ms against 1.3 ms: less room
/// under the suite's limit on a noisy machine.
pub const REQUESTS_PER_TURN: usize = 64;

/// One connection's protocol state plus the knobs, and the handle on whatever state the
/// connection shares with the others (`S`: an `Rc` in one-thread models, an `Arc` in the rest).
#[derive(Debug)]
pub struct Session<S> {
    codec: Codec,
    knobs: Knobs,
    store: S,
    max_output: usize,
    /// Requests one `serve` answers at most: [`REQUESTS_PER_TURN`] in an event loop.
    max_requests: usize,
}

impl<S: Store> Session<S> {
    /// A fresh session for one connection.
    pub fn new(proto: Proto, max_frame: usize, knobs: Knobs, store: S) -> Session<S> {
        Session {
            codec: Codec::new(proto, max_frame),
            knobs,
            store,
            max_output: DEFAULT_MAX_OUTPUT,
            max_requests: usize::MAX,
        }
    }

    /// For an event loop: `serve` also stops after [`REQUESTS_PER_TURN`] requests, so that one
    /// pipelining client cannot hold the thread every other client is waiting for.
    pub fn taking_turns(mut self) -> Session<S> {
        self.max_requests = REQUESTS_PER_TURN;
        self
    }

    /// Stop decoding once a turn's replies pass `max_output` bytes (at least one reply is always
    /// made, so progress never stops).
    pub fn with_max_output(mut self, max_output: usize) -> Session<S> {
        self.max_output = max_output;
        self
    }

    /// The output budget of one turn.
    pub fn max_output(&self) -> usize {
        self.max_output
    }

    /// Answer the complete requests at the start of `input`, appending the responses to `out`,
    /// until they pass the connection's output budget ([`DEFAULT_MAX_OUTPUT`]) or, in an event
    /// loop, its turn's count of requests ([`REQUESTS_PER_TURN`]); then [`Served::more`] says so.
    ///
    /// `input` must begin with the bytes the previous call did not consume.
    #[inline]
    pub fn serve(&mut self, input: &[u8], out: &mut Vec<u8>) -> Served {
        let mut served = Served { consumed: 0, requests: 0, close: false, more: false };
        let start = out.len();
        // Chat is exempt: what a member says goes to the others' outboxes, each bounded by
        // `--chat-queue` (and a line's prefix at most triples a read), not to its own socket.
        let (budget, max_requests) = match self.codec {
            Codec::Chat(_) => (usize::MAX, usize::MAX),
            _ => (self.max_output, self.max_requests),
        };
        loop {
            let spent = out.len() - start >= budget || served.requests >= max_requests;
            if spent && served.consumed < input.len() {
                served.more = true;
                return served;
            }
            match self.codec.decode(&input[served.consumed..], out, &self.store) {
                Decoded::Incomplete => return served,
                answered @ (Decoded::Request { consumed } | Decoded::Last { consumed }) => {
                    served.consumed += consumed;
                    served.requests += 1;
                    self.knobs.charge();
                    if matches!(answered, Decoded::Last { .. }) {
                        served.close = true;
                        return served;
                    }
                }
                Decoded::Malformed => {
                    served.close = true;
                    return served;
                }
            }
        }
    }

    /// Chat only: this connection is member `id`, whose lines `serve` turns into `id: line`
    /// messages for the others (see [`crate::proto::chat`]). Other protocols ignore it.
    pub fn speak_as(&mut self, id: MemberId) {
        if let Codec::Chat(chat) = &mut self.codec {
            chat.speak_as(id);
        }
    }

    /// Chat only: after [`Served::close`], the reply for the sender alone (`ERR line longer than
    /// N bytes`), since everything `serve` produced goes to the others. Other protocols put their
    /// error reply in `serve`'s output and append nothing here.
    pub fn refusal(&self, out: &mut Vec<u8>) {
        if let Codec::Chat(chat) = &self.codec {
            chat.refusal(out);
        }
    }

    /// The most input bytes one request can need; an input buffer never has to grow past this.
    pub fn max_request_len(&self) -> usize {
        self.codec.max_request_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    fn kv_with_value(len: usize) -> Session<LocalStore> {
        let mut session = Session::new(
            Proto::Kv,
            1 << 20,
            Knobs::default(),
            LocalStore::new(crate::store::Capacity::keys(10)),
        );
        let set = [
            format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${len}\r\n").into_bytes(),
            vec![b'v'; len],
            b"\r\n".to_vec(),
        ];
        session.serve(&set.concat(), &mut Vec::new());
        session
    }

    #[test]
    fn decoding_stops_at_the_output_budget_and_resumes_where_it_stopped() {
        let mut session = kv_with_value(100_000);
        let gets = b"GET k\r\n".repeat(10);
        let mut out = Vec::new();
        let first = session.serve(&gets, &mut out);
        // 100 KB per reply: the third passes the 256 KiB budget, and decoding stops there.
        assert_eq!((first.requests, first.more, first.close), (3, true, false));
        assert_eq!(first.consumed, 3 * 7);
        // Served again from where it stopped (as a model does once the replies are written),
        // the rest comes three at a time, and the last call says nothing more is waiting.
        let (mut at, mut calls, mut answered) = (first.consumed, 1, first.requests);
        loop {
            let served = session.serve(&gets[at..], &mut Vec::new());
            (at, calls, answered) = (at + served.consumed, calls + 1, answered + served.requests);
            if !served.more {
                break;
            }
        }
        assert_eq!((at, answered, calls), (gets.len(), 10, 4));
    }

    #[test]
    fn small_replies_never_stop_at_the_budget() {
        let mut session = kv_with_value(10);
        let gets = b"GET k\r\n".repeat(1000);
        let served = session.serve(&gets, &mut Vec::new());
        assert_eq!((served.requests, served.consumed, served.more), (1000, gets.len(), false));
    }

    #[test]
    fn an_event_loop_turn_answers_at_most_its_count_of_requests() {
        let mut session = kv_with_value(10).taking_turns();
        let gets = b"GET k\r\n".repeat(2 * REQUESTS_PER_TURN + 22);
        let mut turns = Vec::new();
        let mut at = 0;
        loop {
            let served = session.serve(&gets[at..], &mut Vec::new());
            at += served.consumed;
            turns.push((served.requests, served.more));
            if !served.more {
                break;
            }
        }
        assert_eq!(turns, [(REQUESTS_PER_TURN, true), (REQUESTS_PER_TURN, true), (22, false)]);
        assert_eq!(at, gets.len());
    }
}
