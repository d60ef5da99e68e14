//! A deliberately naive echo client, for comparison with loadgen.
//!
//! It has the shape of the popular `rust_echo_bench`: one OS thread per connection, each
//! writing a fixed 64-byte message and blocking until it has read 64 bytes back, as fast as it
//! can. It checks nothing, records no latency and pays nothing for either. Running it and
//! `loadgen` against the same server shows whether loadgen's event loop, checking and recording
//! cost throughput compared with the simplest client there is.
//!
//! ```text
//! cargo run --release -p loadgen --example naive_echo_client -- 127.0.0.1:7000 64 5
//! #                                                             address     conns seconds
//! ```
//! The message is an `echo-line` request (63 bytes and `\n`); raw echo servers work too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: naive_echo_client ADDR CONNS SECONDS";
    let addr: SocketAddr = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let conns: usize = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let seconds: u64 = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;

    let mut message = [b'x'; 64];
    message[63] = b'\n';
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    let start = Instant::now();
    let threads: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            std::thread::Builder::new().stack_size(64 * 1024).spawn(move || {
                let mut reply = [0u8; 64];
                let mut count = 0;
                while !stop.load(Ordering::Relaxed) {
                    if stream.write_all(&message).is_err() || stream.read_exact(&mut reply).is_err() {
                        break;
                    }
                    count += 1;
                }
                done.fetch_add(count, Ordering::Relaxed);
            })
        })
        .collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    println!("{total} replies in {elapsed:.2} s = {:.0} req/s", total as f64 / elapsed);
    Ok(())
}
