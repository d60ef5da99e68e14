//! What loadgen spends on one request, without the network: look up its due time, encode it,
//! check the (echoed) reply byte for byte, and record its latency in the histograms.
//!
//! This is the generator's own overhead per request, the part that must stay far below the
//! server's cost for the figures to measure the server. Run with `cargo bench -p loadgen`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use loadgen::engine::tally::Tally;
use loadgen::engine::timetable::Timetable;
use loadgen::payload::PayloadPool;
use loadgen::proto::{ClientProtocol, Decoded, EchoFrame, EchoLine};
use loadgen::units::SizeSpec;

fn per_request<P: ClientProtocol>(c: &mut Criterion, name: &str, proto: P) {
    let timetable = Timetable::new(100_000.0, 64);
    let mut tally = Tally::new(true);
    // The send buffer and the "receive buffer" (the echo) are reused, as in the engine.
    let mut wire = Vec::with_capacity(70_000);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    let mut seq = 0u64;
    let mut state = proto.conn_state(0);
    // `verify = false` is what `--no-verify` does: framing only, nothing compared or recorded.
    // The difference between the two lines is the price of checking every reply.
    for (label, verify) in [("schedule+encode+verify+record", true), ("schedule+encode, no verify", false)] {
        group.bench_function(label, |b| {
            b.iter(|| {
                seq += 1;
                let due = timetable.due_ns(seq % 64, seq / 64);
                let tag = proto.tag(seq);
                wire.clear();
                proto.encode(tag, &mut wire);
                // A correct echo server returns exactly the request bytes.
                match proto.decode(&mut state, black_box(&wire), tag, verify) {
                    Decoded::Complete { matches, .. } => {
                        tally.record(true, due, due + 10_000, due + 25_000 + (seq & 0xfff), matches, verify)
                    }
                    other => panic!("benchmark echo did not decode: {other:?}"),
                }
            })
        });
    }
    group.finish();
    black_box(tally.counts.requests);
}

fn benches(c: &mut Criterion) {
    for size in [64usize, 4096] {
        let pool = PayloadPool::new(SizeSpec::fixed(size), 1);
        per_request(c, &format!("echo-line {size} B"), EchoLine::new(pool.clone()));
        per_request(c, &format!("echo-frame {size} B"), EchoFrame::new(pool));
    }
}

criterion_group!(per_request_cost, benches);
criterion_main!(per_request_cost);
