//! One connection, one 64-byte request at a time: what does each model add to a round trip?
//!
//! The baseline is the least a server can do: a thread blocked in `read` on a plain socket,
//! writing each request straight back. A second baseline is the least an *event loop* can do:
//! one nonblocking socket in a mio poll, woken by readiness, reading and writing back whatever
//! came, without framing, buffers or connection table. What separates the two baselines is the
//! price of readiness itself (one `epoll_wait` per request, and a wake-up through epoll rather
//! than straight from the socket); what separates `reactor` from the second is the lab's code.
//! Every model is measured against them *in the same run*,
//! interleaved in short blocks (plain, blocking, …, async, plain, …) so that a shared machine's
//! drift in speed falls on every target alike. Each round trip is timed on its own and the
//! table reports the median and p99, and the median as a ratio to the baseline's.
//!
//! Server threads run on CPU 0 and the client on CPU 1 when the machine has two CPUs, so the
//! two sides do not take turns on one core.
//!
//! ```sh
//! cargo bench -p servers --bench round_trip            # 40 blocks of 2,000 round trips
//! cargo bench -p servers --bench round_trip -- 10 500   # blocks, round trips per block
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use servers::{Model, Proto, ServerConfig, Shutdown};

const REQUEST: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n";

/// Pin the calling thread (and every thread it starts later) to one CPU, if there are two.
fn pin_to(cpu: usize) {
    if thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return;
    }
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0, ..) affects only this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The baseline: a blocking echo of fixed-size requests, no framing logic at all.
fn start_plain_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        pin_to(0);
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_nodelay(true).unwrap();
        let mut buf = [0u8; REQUEST.len()];
        while conn.read_exact(&mut buf).is_ok() {
            if conn.write_all(&buf).is_err() {
                return;
            }
        }
    });
    addr
}

/// The event-loop baseline: one connection, one poll, readable interest only. 64-byte replies
/// always fit in an empty send buffer, so a write that would block is simply retried.
fn start_plain_epoll() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        pin_to(0);
        let (conn, _) = listener.accept().unwrap();
        conn.set_nodelay(true).unwrap();
        conn.set_nonblocking(true).unwrap();
        let mut conn = mio::net::TcpStream::from_std(conn);
        let mut poll = mio::Poll::new().unwrap();
        poll.registry().register(&mut conn, mio::Token(0), mio::Interest::READABLE).unwrap();
        let mut events = mio::Events::with_capacity(8);
        let mut buf = [0u8; 4096];
        loop {
            poll.poll(&mut events, None).unwrap();
            loop {
                let n = match conn.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => return,
                };
                let mut sent = 0;
                while sent < n {
                    match conn.write(&buf[sent..n]) {
                        Ok(k) => sent += k,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => return,
                    }
                }
                if n < buf.len() {
                    break; // drained: the next byte raises a fresh edge
                }
            }
        }
    });
    addr
}

fn start_model(model: Model, shutdown: &Shutdown) -> SocketAddr {
    let listener = servers::net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = shutdown.clone();
    thread::spawn(move || {
        pin_to(0);
        let _ = model.run(listener, &ServerConfig::new(Proto::EchoLine), &shutdown);
    });
    addr
}

struct Target {
    name: String,
    stream: TcpStream,
    samples: Vec<Duration>,
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let blocks = args.first().copied().unwrap_or(40);
    let per_block = args.get(1).copied().unwrap_or(2_000);
    pin_to(1);

    let shutdown = Shutdown::new();
    let mut addrs = vec![
        ("plain-blocking-socket".to_owned(), start_plain_echo()),
        ("plain-epoll-loop".to_owned(), start_plain_epoll()),
    ];
    for model in Model::ALL {
        addrs.push((model.to_string(), start_model(model, &shutdown)));
    }
    // `blocking` serves one client at a time, so each target gets exactly one connection.
    let mut targets: Vec<Target> = addrs
        .into_iter()
        .map(|(name, addr)| {
            let stream = TcpStream::connect(addr).unwrap();
            stream.set_nodelay(true).unwrap();
            Target { name, stream, samples: Vec::with_capacity(blocks * per_block) }
        })
        .collect();

    let mut reply = [0u8; REQUEST.len()];
    for block in 0..=blocks {
        for t in &mut targets {
            for _ in 0..per_block {
                let start = Instant::now();
                t.stream.write_all(REQUEST).unwrap();
                t.stream.read_exact(&mut reply).unwrap();
                if block > 0 {
                    t.samples.push(start.elapsed()); // block 0 is the warm-up
                }
            }
        }
    }

    println!("{blocks} blocks x {per_block} round trips of 64 B per target, interleaved\n");
    println!(
        "{:<24} {:>12} {:>12} {:>16} {:>16}",
        "target", "median", "p99", "median / plain", "median / epoll"
    );
    let medians: Vec<Duration> = targets
        .iter_mut()
        .map(|t| {
            t.samples.sort_unstable();
            t.samples[(t.samples.len() - 1) / 2]
        })
        .collect();
    let (plain, epoll) = (medians[0].as_secs_f64(), medians[1].as_secs_f64());
    for (t, median) in targets.iter().zip(&medians) {
        let p99 = t.samples[((t.samples.len() - 1) as f64 * 0.99) as usize];
        let median = median.as_secs_f64();
        println!(
            "{:<24} {:>10.2}µs {:>10.2}µs {:>16.3} {:>16.3}",
            t.name,
            median * 1e6,
            p99.as_secs_f64() * 1e6,
            median / plain,
            median / epoll
        );
    }
    drop(targets);
    shutdown.trigger();
}
