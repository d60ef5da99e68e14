//! loadgen's `kv` protocol against a small RESP server written here (sharing nothing with the
//! lab's servers): exact counts when the server is right, and a stale value caught, counted
//! exactly and turned into a failing exit status when it is not.

mod support;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadgen::{ProtocolKind, RunConfig, SizeSpec};
use support::loadgen_binary;

/// How the test server answers `GET`.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Correct,
    /// Every `n`th `GET` (server-wide) returns the key's previous value (nil if it had none).
    StaleEvery(u64),
}

/// A key's value and the one it replaced.
#[derive(Default)]
struct Entry {
    current: Option<Vec<u8>>,
    previous: Option<Vec<u8>>,
}

#[derive(Default)]
struct Server {
    map: Mutex<HashMap<Vec<u8>, Entry>>,
    replies: AtomicU64,
    gets: AtomicU64,
    /// Stale replies that differ from the right one: what loadgen must count as mismatches.
    stale: AtomicU64,
}

fn start(behaviour: Behaviour) -> (SocketAddr, Arc<Server>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(Server::default());
    let shared = Arc::clone(&server);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let server = Arc::clone(&shared);
            std::thread::spawn(move || {
                let _ = serve(stream, behaviour, &server);
            });
        }
    });
    (addr, server)
}

/// Read one `*N` array of `$len` bulk strings; `None` at a clean end of stream.
fn read_command(reader: &mut impl BufRead) -> io::Result<Option<Vec<Vec<u8>>>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let argc: usize =
        line.strip_prefix('*').and_then(|n| n.trim_end().parse().ok()).ok_or_else(|| bad("count"))?;
    let mut args = Vec::with_capacity(argc);
    for _ in 0..argc {
        line.clear();
        reader.read_line(&mut line)?;
        let len: usize =
            line.strip_prefix('$').and_then(|n| n.trim_end().parse().ok()).ok_or_else(|| bad("len"))?;
        let mut arg = vec![0; len + 2];
        reader.read_exact(&mut arg)?;
        arg.truncate(len);
        args.push(arg);
    }
    Ok(Some(args))
}

fn bulk(out: &mut impl Write, value: Option<&[u8]>) -> io::Result<()> {
    match value {
        None => out.write_all(b"$-1\r\n"),
        Some(v) => {
            write!(out, "${}\r\n", v.len())?;
            out.write_all(v)?;
            out.write_all(b"\r\n")
        }
    }
}

fn serve(stream: TcpStream, behaviour: Behaviour, server: &Server) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(64 * 1024, stream);
    while let Some(args) = read_command(&mut reader)? {
        {
            let mut map = server.map.lock().unwrap();
            match (args[0].as_slice(), &args[1..]) {
                (b"SET", [key, value]) => {
                    let entry = map.entry(key.clone()).or_default();
                    entry.previous = entry.current.replace(value.clone());
                    writer.write_all(b"+OK\r\n")?;
                }
                (b"GET", [key]) => {
                    let n = server.gets.fetch_add(1, Ordering::SeqCst) + 1;
                    let entry = map.get(key);
                    let right = entry.and_then(|e| e.current.as_deref());
                    let stale = matches!(behaviour, Behaviour::StaleEvery(every) if n % every == 0);
                    let sent = if stale { entry.and_then(|e| e.previous.as_deref()) } else { right };
                    if sent != right {
                        server.stale.fetch_add(1, Ordering::SeqCst);
                    }
                    bulk(&mut writer, sent)?;
                }
                _ => writer.write_all(b"-ERR unknown command\r\n")?,
            }
        }
        server.replies.fetch_add(1, Ordering::SeqCst);
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
    writer.flush()
}

fn quick(addr: SocketAddr) -> RunConfig {
    let mut cfg = RunConfig::new(addr, ProtocolKind::Kv);
    cfg.conns = 4;
    cfg.threads = 2;
    cfg.warmup = Duration::from_millis(200);
    cfg.duration = Duration::from_millis(700);
    cfg.size = SizeSpec { min: 1, max: 300 };
    cfg.kv_keys = 64;
    cfg
}

fn exact_counts(depth: usize, get_ratio: f64) {
    let (addr, server) = start(Behaviour::Correct);
    let mut cfg = quick(addr);
    cfg.depth = depth;
    cfg.kv_get_ratio = get_ratio;
    let report = loadgen::run(&cfg).expect("the run starts");
    let c = report.counts;
    assert!(report.is_clean(), "{c:?} {:?}", report.first_error);
    assert!(c.requests > 0);
    assert_eq!(c.requests + c.warmup_requests, server.replies.load(Ordering::SeqCst));
    let gets = server.gets.load(Ordering::SeqCst) as f64 / server.replies.load(Ordering::SeqCst) as f64;
    assert!((gets - get_ratio).abs() < 0.05, "asked for {get_ratio} GETs, sent {gets}");
}

#[test]
fn a_correct_server_gets_exact_counts_and_no_error() {
    exact_counts(1, 0.9);
}

#[test]
fn pipelined_requests_are_checked_in_order() {
    // With 16 in flight, a GET often follows a SET of its key that is not answered yet.
    exact_counts(16, 0.5);
}

#[test]
fn only_gets_after_the_first_writes() {
    exact_counts(4, 1.0);
}

#[test]
fn a_stale_value_is_a_mismatch_counted_exactly() {
    let (addr, server) = start(Behaviour::StaleEvery(50));
    let mut cfg = quick(addr);
    cfg.kv_get_ratio = 0.5;
    // Replies to warm-up requests are not checked (see the README), so measure from the start.
    cfg.warmup = Duration::ZERO;
    let report = loadgen::run(&cfg).expect("the run starts");
    let stale = server.stale.load(Ordering::SeqCst);
    assert!(stale > 0, "the server never sent a stale value");
    let c = report.counts;
    assert_eq!(c.mismatches, stale, "every stale reply, and nothing else, is a mismatch");
    assert!(!report.is_clean());
}

#[test]
fn the_binary_exits_1_on_a_stale_value_and_says_so() {
    let (addr, _server) = start(Behaviour::StaleEvery(20));
    let addr = addr.to_string();
    let args =
        ["run", "--addr", &addr, "--proto", "kv", "--conns", "2", "--warmup", "0", "--duration", "300ms"];
    let out = loadgen_binary(
        &[&args[..], &["--kv-keys", "8", "--kv-get-ratio", "0.8"]].concat(),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("mismatch"), "{stdout}");
    assert!(stdout.contains("kv: 80% GET, 20% SET"), "{stdout}");
}

#[test]
fn the_binary_exits_0_against_a_correct_server() {
    let (addr, _server) = start(Behaviour::Correct);
    let addr = addr.to_string();
    let args =
        ["run", "--addr", &addr, "--proto", "kv", "--conns", "2", "--warmup", "0", "--duration", "300ms"];
    let out = loadgen_binary(&args, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn fewer_keys_than_connections_is_a_usage_error() {
    let (addr, _server) = start(Behaviour::Correct);
    let addr = addr.to_string();
    let args =
        ["run", "--addr", &addr, "--proto", "kv", "--conns", "4", "--kv-keys", "3", "--duration", "1s"];
    let out = loadgen_binary(&args, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kv-keys"));
}
