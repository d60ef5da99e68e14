//! The `process-per-connection` model's own promises, beyond the conformance bodies (which run
//! it for echo-line, echo-frame and http; kv and chat assert its refusal): every connection is a
//! child process holding nothing but its connection, every child that finishes is reaped (no
//! zombies), `--max-procs` holds newcomers in the listen backlog, and shutdown reaches every
//! child: `SIGTERM` lets it finish what it read, and the grace period ends with `SIGKILL`.
//!
//! The children are found in `/proc`: every process whose parent is the server. Servers started
//! in this process are children of the test process itself, so the tests here take turns (one
//! lock), and a test that counts children counts only those that appeared after it started.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use servers::{Model, Proto, ServerConfig};
use support::process::Process;
use support::*;

/// Held by every test in this file: each counts the children of a process, and children of
/// another test's server would be counted too.
static TURNS: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    TURNS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One process as `/proc/PID/stat` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Proc {
    pid: u32,
    /// `R`, `S`, `D` …, or `Z` for a zombie: exited, and not yet reaped by its parent.
    state: char,
    /// Clock ticks after boot when it started: with the pid, names one process for ever.
    start: u64,
}

fn stat(pid: u32) -> Option<(Proc, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the parenthesised command name: state, ppid, … starttime (the 22nd).
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let parent = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((Proc { pid, state, start }, parent))
}

/// Every child of process `parent`, zombies included.
fn children_of(parent: u32) -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .filter(|&(_, ppid)| ppid == parent)
        .map(|(child, _)| child)
        .collect()
}

/// Whether this very process (same pid, same start) still exists, zombie or not.
fn exists(process: Proc) -> bool {
    stat(process.pid).is_some_and(|(now, _)| now.start == process.start)
}

/// The children of `parent` that are not in `before`.
fn new_children(parent: u32, before: &[Proc]) -> Vec<Proc> {
    let before: HashSet<u32> = before.iter().map(|p| p.pid).collect();
    children_of(parent).into_iter().filter(|p| !before.contains(&p.pid)).collect()
}

/// Poll `done` until it holds or `limit` passes; whether it held.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5)); // pacing a poll of /proc, not synchronising
    }
}

fn start(config: ServerConfig) -> TestServer {
    TestServer::with_config(Model::ProcessPerConnection, config)
}

/// Each connection is a process of its own, holding no descriptor but its connection (and
/// stdin, stdout, stderr); when the clients leave, every child is reaped: none stays a zombie.
#[test]
fn each_connection_is_a_child_and_every_finished_child_is_reaped() {
    const CONNECTIONS: usize = 20;
    let _turn = take_turn();
    let me = std::process::id();
    let before = children_of(me);
    let server = start(ServerConfig::new(Proto::EchoLine));
    let mut clients: Vec<TcpStream> = Vec::new();
    for i in 0..CONNECTIONS {
        let mut client = server.connect();
        round_trip(&mut client, Proto::EchoLine, format!("client {i}").as_bytes());
        clients.push(client);
    }
    // Every client has had its reply, so every child is serving: none is still starting.
    let children = new_children(me, &before);
    assert_eq!(children.len(), CONNECTIONS, "one child per connection: {children:?}");
    for child in &children {
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", child.pid))
            .expect("the child's descriptors")
            .filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_owned()))
            .filter(|fd| !["0", "1", "2"].contains(&fd.as_str()))
            .collect();
        assert_eq!(fds.len(), 1, "child {} holds more than its connection: fds {fds:?}", child.pid);
    }
    drop(clients);
    let reaped = eventually(Duration::from_secs(10), || children.iter().all(|&child| !exists(child)));
    let zombies: Vec<Proc> = children
        .iter()
        .filter_map(|&child| stat(child.pid))
        .map(|(p, _)| p)
        .filter(|p| p.state == 'Z')
        .collect();
    assert!(reaped && zombies.is_empty(), "children left unreaped after their clients left: {zombies:?}");
    server.trigger_shutdown();
    server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
}

/// With `--max-procs 2` and two clients connected, a third is connected (the kernel completes
/// its handshake) but not served until one of the two leaves; there are never three children.
#[test]
fn max_procs_holds_newcomers_in_the_backlog_until_a_child_exits() {
    let _turn = take_turn();
    let me = std::process::id();
    let before = children_of(me);
    let mut config = ServerConfig::new(Proto::EchoLine);
    config.max_procs = 2;
    let server = start(config);
    let mut a = server.connect();
    round_trip(&mut a, Proto::EchoLine, b"a");
    let mut b = server.connect();
    round_trip(&mut b, Proto::EchoLine, b"b");
    let mut c = server.connect();
    let c_request = request(Proto::EchoLine, b"c waits");
    c.write_all(&c_request).unwrap();
    assert!(
        nothing_arrives_within(&mut c, Duration::from_millis(500)),
        "a third client was served while --max-procs 2 children were alive"
    );
    let alive = |children: &[Proc]| children.iter().filter(|p| p.state != 'Z').count();
    assert_eq!(alive(&new_children(me, &before)), 2, "two children, no more");
    drop(a);
    assert_eq!(read_reply(&mut c, c_request.len()).unwrap(), c_request, "c is served once a leaves");
    round_trip(&mut b, Proto::EchoLine, b"b is still served");
    assert!(alive(&new_children(me, &before)) <= 2, "never more than --max-procs children");
}

/// A child whose client never reads cannot finish: at the end of the grace period the parent
/// kills it, reaps it, and returns.
#[test]
fn a_child_that_cannot_finish_is_killed_when_the_grace_period_ends() {
    let _turn = take_turn();
    let me = std::process::id();
    let before = children_of(me);
    let mut config = ServerConfig::new(Proto::EchoLine);
    config.grace = Duration::from_millis(300);
    let server = start(config);
    let mut hog = server.connect();
    round_trip(&mut hog, Proto::EchoLine, b"served first");
    // Send until the child is stuck writing replies nobody reads.
    hog.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let chunk = request(Proto::EchoLine, &[b'x'; 60_000]);
    while hog.write_all(&chunk).is_ok() {}
    let children = new_children(me, &before);
    assert_eq!(children.len(), 1, "{children:?}");
    let stopping = Instant::now();
    server.trigger_shutdown();
    server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
    assert!(stopping.elapsed() >= Duration::from_millis(300), "the stuck child had its grace period");
    assert!(!exists(children[0]), "the stuck child was killed and reaped: {:?}", stat(children[0].pid));
}

/// Shutdown reaches every child: after `SIGTERM` to the `server` binary, each child answers the
/// requests it had read (each takes 20 ms), closes cleanly and exits, long before the 30 s
/// grace period would have it killed; then the server exits 0, and none of its children is left.
#[test]
fn sigterm_reaches_every_child_which_finishes_in_flight_requests() {
    const CLIENTS: usize = 3;
    let _turn = take_turn();
    let (mut server, addr) = Process::start(&[
        "--model",
        "process-per-connection",
        "--proto",
        "echo-line",
        "--block-us",
        "20000",
        "--grace",
        "30s",
    ]);
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|i| {
            let mut client = connect(addr);
            round_trip(&mut client, Proto::EchoLine, format!("client {i}").as_bytes());
            client
        })
        .collect();
    let children = children_of(server.child.id());
    assert_eq!(children.len(), CLIENTS, "one child per client: {children:?}");
    let batch: Vec<u8> =
        (0..10).flat_map(|k| request(Proto::EchoLine, format!("in flight {k}").as_bytes())).collect();
    for client in &mut clients {
        client.write_all(&batch).unwrap();
    }
    let stopping = Instant::now();
    server.signal(libc::SIGTERM);
    for client in &mut clients {
        assert_eq!(read_to_clean_eof(client), batch, "every in-flight request answered, then end-of-file");
    }
    let status = server.wait_within(Duration::from_secs(10));
    assert!(status.success(), "exited with {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "the children finished; nobody waited for the grace period"
    );
    let survivors: Vec<Proc> = children.into_iter().filter(|&child| exists(child)).collect();
    assert!(survivors.is_empty(), "children outlived the server: {survivors:?}");
}

/// Called directly (not through `check`), the model still refuses kv and chat rather than give
/// every connection a store or a room of its own.
#[test]
fn run_refuses_kv_and_chat_without_listening() {
    for proto in [Proto::Kv, Proto::Chat] {
        let listener = servers::net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let served =
            Model::ProcessPerConnection.run(listener, &ServerConfig::new(proto), &servers::Shutdown::new());
        let err = served.expect_err("run must refuse");
        assert!(err.to_string().contains(&format!("does not serve {proto}")), "{err}");
    }
}
