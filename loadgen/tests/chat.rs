//! loadgen's chat mode against small chat servers started in the test: exact counts when the
//! server is right, and each kind of wrong delivery counted and reported when it is not.
//!
//! The servers here are written for these tests (thread per member, writes to the other
//! members' sockets under one lock: simple, and fast enough for a reader that never stalls);
//! they share nothing with the lab's servers, so a bug common to both sides cannot hide.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadgen::{Pacing, ProtocolKind, RunConfig, SizeSpec};
use support::loadgen_binary;

/// How the test server misbehaves, if at all.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    /// Deliver every line to every other member, once.
    Correct,
    /// Skip delivery number 0, N, 2N, … (counted over the whole server).
    DropEvery(u64),
    /// Deliver delivery number N, 2N, … twice.
    DuplicateEvery(u64),
    /// Change one byte of delivery number N, 2N, …
    CorruptEvery(u64),
    /// Welcome only the first member, as a one-at-a-time server would.
    OneAtATime,
}

#[derive(Default)]
struct Stats {
    /// Deliveries made, and the number of the next one.
    deliveries: AtomicU64,
    /// Deliveries skipped, doubled or corrupted on purpose.
    tampered: AtomicU64,
}

struct ChatServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
}

type Members = Arc<Mutex<(u64, Vec<(u64, TcpStream)>)>>;

fn start(behaviour: Behaviour) -> ChatServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let members: Members = Arc::new(Mutex::new((0, Vec::new())));
    let shared = Arc::clone(&stats);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (stats, members) = (Arc::clone(&shared), Arc::clone(&members));
            std::thread::spawn(move || {
                // A member that vanishes is normal here; nothing to report.
                let _ = serve(stream, &members, &stats, behaviour);
            });
        }
    });
    ChatServer { addr, stats }
}

fn serve(stream: TcpStream, members: &Members, stats: &Stats, behaviour: Behaviour) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let id = {
        let mut room = members.lock().unwrap();
        room.0 += 1;
        let id = room.0;
        if behaviour == Behaviour::OneAtATime && id > 1 {
            drop(room);
            std::thread::sleep(Duration::from_secs(60)); // the misbehaviour under test: never served
            return Ok(());
        }
        (&stream).write_all(format!("* you are {id}\n").as_bytes())?;
        for (_, other) in &room.1 {
            let _ = (&*other).write_all(format!("* {id} joined\n").as_bytes());
        }
        room.1.push((id, stream.try_clone()?));
        id
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 || !line.ends_with(b"\n") {
            break;
        }
        let mut message = format!("{id}: ").into_bytes();
        message.extend_from_slice(&line);
        let room = members.lock().unwrap();
        for (other_id, other) in &room.1 {
            if *other_id == id {
                continue;
            }
            let n = stats.deliveries.fetch_add(1, Ordering::SeqCst);
            let mut copies = 1;
            let mut bytes = message.clone();
            match behaviour {
                Behaviour::DropEvery(every) if n % every == 0 => copies = 0,
                Behaviour::DuplicateEvery(every) if n % every == every - 1 => copies = 2,
                Behaviour::CorruptEvery(every) if n % every == every - 1 => {
                    let last = bytes.len() - 2; // a padding byte, never the newline
                    bytes[last] = if bytes[last] == b'!' { b'?' } else { b'!' };
                }
                _ => {}
            }
            if copies != 1 || bytes != message {
                stats.tampered.fetch_add(1, Ordering::SeqCst);
            }
            for _ in 0..copies {
                let _ = (&*other).write_all(&bytes);
            }
        }
    }
    let mut room = members.lock().unwrap();
    room.1.retain(|(m, _)| *m != id);
    for (_, other) in &room.1 {
        let _ = (&*other).write_all(format!("* {id} left\n").as_bytes());
    }
    Ok(())
}

fn quick(addr: SocketAddr, members: usize) -> RunConfig {
    let mut cfg = RunConfig::new(addr, ProtocolKind::Chat);
    cfg.conns = members;
    cfg.warmup = Duration::from_millis(200);
    cfg.duration = Duration::from_millis(700);
    cfg.size = SizeSpec { min: 42, max: 300 };
    cfg.timeout = Duration::from_secs(2);
    cfg
}

/// Against a correct server: no errors, every message reached exactly the others, and the
/// counts add up with what the server delivered.
fn exact_counts(depth: usize, rate: Option<f64>) {
    const MEMBERS: u64 = 4;
    let server = start(Behaviour::Correct);
    let mut cfg = quick(server.addr, MEMBERS as usize);
    cfg.depth = depth;
    if let Some(rate) = rate {
        cfg.pacing = Pacing::Open { rate };
    }
    let report = loadgen::run(&cfg).expect("the run starts");
    let c = report.counts;
    assert!(report.is_clean(), "{c:?} {:?}", report.first_error);
    assert!(c.requests > 0);
    assert_eq!(c.deliveries, c.requests * (MEMBERS - 1), "each measured message reached the 3 others");
    assert_eq!(report.service_time.len(), c.deliveries, "each delivery's latency is recorded");
    let delivered = server.stats.deliveries.load(Ordering::SeqCst);
    assert_eq!(
        delivered,
        (c.requests + c.warmup_requests) * (MEMBERS - 1),
        "nothing lost between the chairs"
    );
    match rate {
        Some(rate) => {
            assert_eq!(c.requests + c.unsent, (rate * 0.7).round() as u64);
            assert_eq!(report.corrected.as_ref().expect("open loop").len(), c.deliveries);
        }
        None => assert!(report.corrected.is_none()),
    }
}

#[test]
fn closed_loop_depth_1_counts_exactly() {
    exact_counts(1, None);
}

#[test]
fn closed_loop_depth_4_counts_exactly() {
    exact_counts(4, None);
}

#[test]
fn open_loop_counts_exactly() {
    exact_counts(2, Some(1000.0));
}

#[test]
fn dropped_deliveries_are_reported_as_missing() {
    let server = start(Behaviour::DropEvery(50));
    let mut cfg = quick(server.addr, 4);
    cfg.timeout = Duration::from_millis(500);
    let report = loadgen::run(&cfg).expect("the run starts");
    assert!(server.stats.tampered.load(Ordering::SeqCst) >= 1);
    assert!(report.counts.missing >= 1, "{:?}", report.counts);
    assert!(!report.is_clean());
    assert!(report.first_error.is_some());
}

#[test]
fn duplicated_deliveries_are_counted() {
    let server = start(Behaviour::DuplicateEvery(100));
    let mut cfg = quick(server.addr, 3);
    cfg.pacing = Pacing::Open { rate: 600.0 };
    cfg.warmup = Duration::ZERO;
    let report = loadgen::run(&cfg).expect("the run starts");
    let doubled = server.stats.tampered.load(Ordering::SeqCst);
    assert!(doubled >= 1);
    assert_eq!(report.counts.duplicates, doubled, "{:?}", report.counts);
    assert_eq!(report.counts.missing + report.counts.mismatches, 0, "{:?}", report.counts);
    assert!(!report.is_clean());
}

#[test]
fn corrupted_deliveries_are_counted() {
    let server = start(Behaviour::CorruptEvery(100));
    let mut cfg = quick(server.addr, 3);
    cfg.pacing = Pacing::Open { rate: 600.0 };
    cfg.warmup = Duration::ZERO;
    cfg.timeout = Duration::from_millis(500);
    let report = loadgen::run(&cfg).expect("the run starts");
    let corrupted = server.stats.tampered.load(Ordering::SeqCst);
    assert!(corrupted >= 1);
    assert_eq!(report.counts.mismatches, corrupted, "{:?}", report.counts);
    assert!(!report.is_clean());
}

#[test]
fn a_room_that_never_fills_is_a_clear_failure() {
    let server = start(Behaviour::OneAtATime);
    let mut cfg = quick(server.addr, 3);
    cfg.timeout = Duration::from_millis(500);
    let report = loadgen::run(&cfg).expect("the run starts");
    assert!(!report.is_clean());
    let why = report.first_error.unwrap_or_default();
    assert!(why.contains("only 1 of 3 members were welcomed"), "{why}");
}

const LIMIT: Duration = Duration::from_secs(30);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_binary_reports_a_clean_run_with_json_and_hgrm() {
    let server = start(Behaviour::Correct);
    let dir = std::env::temp_dir().join(format!("loadgen-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, hgrm) = (dir.join("chat.json"), dir.join("chat.hgrm"));
    let addr = server.addr.to_string();
    let out = loadgen_binary(
        &[
            "run",
            "--addr",
            &addr,
            "--proto",
            "chat",
            "--conns",
            "5",
            "--warmup",
            "100ms",
            "--duration",
            "500ms",
            "--json",
            json.to_str().unwrap(),
            "--hgrm",
            hgrm.to_str().unwrap(),
        ],
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for needle in ["msg/s, each to 4 others", "errors      none", "fan-out", "p99.99", "per message"] {
        assert!(stdout.contains(needle), "missing {needle:?}:\n{stdout}");
    }
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["settings"]["protocol"], "chat");
    let (messages, deliveries) =
        (doc["counts"]["requests"].as_u64().unwrap(), doc["counts"]["deliveries"].as_u64());
    assert_eq!(deliveries, Some(messages * 4));
    assert!(doc["latency_measures"].as_str().unwrap().starts_with("fan-out"));
    assert_eq!(doc["percentiles"]["service_time"]["count"].as_u64(), deliveries);
    assert!(std::fs::read_to_string(&hgrm).unwrap().contains("#[Buckets ="));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_binary_exits_1_when_deliveries_go_missing() {
    let server = start(Behaviour::DropEvery(20));
    let addr = server.addr.to_string();
    let out = loadgen_binary(
        &[
            "run",
            "--addr",
            &addr,
            "--proto",
            "chat",
            "--conns",
            "3",
            "--warmup",
            "0",
            "--duration",
            "300ms",
            "--timeout",
            "500ms",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("missing deliveries"), "{}", text(&out.stdout));
}

#[test]
fn chat_usage_errors_exit_2() {
    for (args, needle) in [
        (&["--conns", "1"][..], "--conns"),
        (&["--conns", "3", "--threads", "2"][..], "one thread"),
        (&["--conns", "3", "--size", "16"][..], "--size"),
        (&["--conns", "3", "--live"][..], "--live does not fit"),
    ] {
        let mut all = vec!["run", "--addr", "127.0.0.1:1", "--proto", "chat"];
        all.extend_from_slice(args);
        let out = loadgen_binary(&all, LIMIT);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(needle), "{args:?}: {}", text(&out.stderr));
    }
}
