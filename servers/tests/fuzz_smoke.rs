//! The fuzzer's short version, run by `cargo test`: the harness of `examples/fuzz/` (the same
//! files, included below) drives every decoder with 10^4 generated and mutated inputs, each fed
//! whole, in random chunks and one byte per read, with the same checks and the same counting
//! allocator as the full campaign (`cargo run --release -p servers --example fuzz -- --iterations
//! 10000000`, see that file).
//!
//! The second half plants a fault in a wrapper around a real decoder (never in the decoders
//! themselves) and checks that the harness catches each kind: a panic, output that depends on how
//! the input was split, a decoder that keeps everything it is shown, one that trusts a length
//! header, one that stops consuming.

#[path = "../examples/fuzz/alloc.rs"]
mod alloc;
#[path = "../examples/fuzz/generate.rs"]
mod generate;
#[path = "../examples/fuzz/harness.rs"]
mod harness;
#[path = "../examples/fuzz/mutate.rs"]
mod mutate;

use std::sync::atomic::AtomicU64;

use harness::{Case, Decode, Failure, Found, Subject};
use servers::proto::{Decoded, Proto};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// Inputs per parser: a few seconds for all five in the debug profile.
const INPUTS: u64 = 10_000;

/// The full campaign's default seed.
const SEED: u64 = 12;

fn fuzz(proto: Proto) {
    assert!(alloc::installed(), "the counting allocator is this test's global allocator");
    let stats = harness::campaign(&harness::Servers, proto, SEED, 0, INPUTS, &AtomicU64::new(0))
        .unwrap_or_else(|found| panic!("{found}"));
    println!("{}\n{}", stats.line(proto), stats.details());
    assert_eq!((stats.inputs, stats.panics), (INPUTS, 0));
    assert!(stats.generated > INPUTS / 4 && stats.mutated > INPUTS / 4, "{stats:?}");
    assert!(stats.peak > 0, "the allocator counted the decoder's replies");
}

#[test]
fn echo_line_survives_ten_thousand_inputs() {
    fuzz(Proto::EchoLine);
}

#[test]
fn echo_frame_survives_ten_thousand_inputs() {
    fuzz(Proto::EchoFrame);
}

#[test]
fn http_survives_ten_thousand_inputs() {
    fuzz(Proto::Http);
}

#[test]
fn kv_survives_ten_thousand_inputs() {
    fuzz(Proto::Kv);
}

#[test]
fn chat_survives_ten_thousand_inputs() {
    fuzz(Proto::Chat);
}

#[test]
fn the_same_seed_gives_the_same_inputs() {
    for proto in Proto::ALL {
        for index in [0, 1, 99_999] {
            let (a, b) = (harness::make_case(proto, SEED, index), harness::make_case(proto, SEED, index));
            assert_eq!((a.input, a.cuts, a.max_frame), (b.input, b.cuts, b.max_frame));
        }
        let differ = (0..20).filter(|&i| {
            harness::make_case(proto, SEED, i).input != harness::make_case(proto, SEED + 1, i).input
        });
        assert!(differ.count() > 10, "{proto}: another seed, other inputs");
    }
}

// ---- the harness catches planted faults ------------------------------------------------------

/// A fault added in front of a real decoder.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Panic when shown this byte.
    PanicOn(u8),
    /// Answer a lone byte as if it were a whole line: only a split input ever shows one.
    LoneByteIsALine,
    /// Keep a copy of every byte shown: memory that grows with the input.
    Hoard,
    /// echo-frame: wait for a frame over the limit instead of refusing it.
    TrustLength,
    /// Say a request was answered without consuming anything.
    ConsumeNothing,
}

struct Faulty(Fault);

struct FaultyConnection {
    real: harness::Connection,
    fault: Fault,
    max_frame: usize,
    hoard: Vec<u8>,
}

impl Subject for Faulty {
    type Decoder = FaultyConnection;
    fn open(&self, proto: Proto, case: &Case) -> FaultyConnection {
        let real = harness::Servers.open(proto, case);
        FaultyConnection { real, fault: self.0, max_frame: case.max_frame, hoard: Vec::new() }
    }
}

impl Decode for FaultyConnection {
    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Decoded {
        match self.fault {
            Fault::PanicOn(byte) if input.contains(&byte) => panic!("planted: byte {byte:#04x}"),
            Fault::LoneByteIsALine if input.len() == 1 && input[0] != b'\n' => {
                out.extend_from_slice(&[input[0], b'\n']);
                return Decoded::Request { consumed: 1 };
            }
            Fault::Hoard => self.hoard.extend_from_slice(input),
            Fault::TrustLength => {
                if let Some(header) = input.first_chunk::<4>()
                    && u32::from_be_bytes(*header) as usize > self.max_frame
                {
                    return Decoded::Incomplete;
                }
            }
            Fault::ConsumeNothing if input.starts_with(b"GET") => return Decoded::Request { consumed: 0 },
            _ => {}
        }
        self.real.decode(input, out)
    }
    fn max_request_len(&self) -> usize {
        self.real.max_request_len()
    }
}

/// Run a short campaign against a faulty decoder; it must stop with a failure.
fn catch(fault: Fault, proto: Proto) -> Box<Found> {
    let found = harness::campaign(&Faulty(fault), proto, SEED, 0, INPUTS, &AtomicU64::new(0))
        .expect_err("the planted fault is found");
    println!("{found}");
    found
}

#[test]
fn a_panic_is_caught_reported_and_shrunk() {
    let found = catch(Fault::PanicOn(0xa5), Proto::EchoLine);
    assert!(matches!(&found.failure, Failure::Panic(msg) if msg.contains("planted: byte 0xa5")), "{found}");
    assert_eq!(found.stats.panics, 1);
    assert_eq!(found.minimal.input, [0xa5], "shrunk to the one byte that matters");
    let report = found.to_string();
    assert!(report.contains(&format!("--seed {SEED} --start {} --iterations 1", found.index)), "{report}");
    assert!(report.contains("00000000  a5 "), "a hex dump of the reproducer: {report}");
    // The reported input, regenerated alone, fails the same way.
    let again = harness::make_case(Proto::EchoLine, SEED, found.index);
    let failure =
        harness::check(&Faulty(Fault::PanicOn(0xa5)), Proto::EchoLine, &again, &mut Default::default());
    assert!(matches!(failure, Err(Failure::Panic(_))));
}

#[test]
fn replies_that_depend_on_the_split_are_caught() {
    let found = catch(Fault::LoneByteIsALine, Proto::EchoLine);
    assert!(matches!(found.failure, Failure::Mismatch(_)), "{found}");
    assert!(found.minimal.input.len() <= 2, "{found}");
}

#[test]
fn memory_that_grows_with_the_input_is_caught() {
    let found = catch(Fault::Hoard, Proto::Kv);
    assert!(matches!(found.failure, Failure::Allocation { peak, bound, .. } if peak > bound), "{found}");
}

#[test]
fn waiting_for_a_frame_over_the_limit_is_caught() {
    let found = catch(Fault::TrustLength, Proto::EchoFrame);
    assert!(
        matches!(&found.failure, Failure::Contract(msg) if msg.contains("more than max_request_len")),
        "{found}"
    );
}

#[test]
fn a_request_that_consumes_nothing_is_caught() {
    let found = catch(Fault::ConsumeNothing, Proto::Http);
    assert!(
        matches!(&found.failure, Failure::Contract(msg) if msg.contains("Request { consumed: 0 }")),
        "{found}"
    );
}
