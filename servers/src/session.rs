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
}

/// One connection's protocol state plus the knobs, and the handle on whatever state the
/// connection shares with the others (`S`: an `Rc` in one-thread models, an `Arc` in the rest).
#[derive(Debug)]
pub struct Session<S> {
    codec: Codec,
    knobs: Knobs,
    store: S,
}

impl<S: Store> Session<S> {
    /// A fresh session for one connection.
    pub fn new(proto: Proto, max_frame: usize, knobs: Knobs, store: S) -> Session<S> {
        Session { codec: Codec::new(proto, max_frame), knobs, store }
    }

    /// Answer every complete request at the start of `input`, appending the responses to `out`.
    ///
    /// `input` must begin with the bytes the previous call did not consume.
    #[inline]
    pub fn serve(&mut self, input: &[u8], out: &mut Vec<u8>) -> Served {
        let mut served = Served { consumed: 0, requests: 0, close: false };
        loop {
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
