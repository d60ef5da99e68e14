//! The `kv` protocol on every model: the promises of `conformance.rs` (whose bodies assume a
//! reply is the request echoed back), restated for requests that have replies of their own,
//! plus what only a shared store can get wrong: a `SET` on one connection seen by a `GET` on
//! another, and `INCR` from many connections at once counting exactly, on both lock designs.
//!
//! The client side (RESP encoding, reading replies, the expected state) is written here, not
//! taken from `servers::proto`, so a bug in the server's framing cannot hide behind the same
//! bug in the test.

mod support;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown as Direction, TcpStream};
use std::thread;
use std::time::Duration;

use servers::session::Knobs;
use servers::store::StoreKind;
use servers::{Model, Proto, ServerConfig};
use support::kv::command as cmd;
use support::*;

/// The default configuration with an explicit pool size (see `conformance.rs` for why).
fn config(store: StoreKind) -> ServerConfig {
    let mut config = ServerConfig::new(Proto::Kv);
    config.threads = 8;
    config.store = store;
    config
}

fn start(model: Model) -> TestServer {
    TestServer::with_config(model, config(StoreKind::default()))
}

/// Read one whole RESP reply (any type, arrays included) and return its bytes.
fn read_one(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut reply = Vec::new();
    let mut wanted = 1usize; // replies still to read: an array adds its elements
    while wanted > 0 {
        wanted -= 1;
        let start = reply.len();
        reader.read_until(b'\n', &mut reply)?;
        let line = &reply[start..];
        if !line.ends_with(b"\r\n") {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("torn reply {line:?}")));
        }
        let n = || std::str::from_utf8(&line[1..line.len() - 2]).ok().and_then(|s| s.parse::<i64>().ok());
        match line[0] {
            b'+' | b'-' | b':' => {}
            b'$' => {
                if let Ok(len) = usize::try_from(n().expect("bulk length")) {
                    let mut data = vec![0; len + 2];
                    reader.read_exact(&mut data)?;
                    reply.extend_from_slice(&data);
                }
            }
            b'*' => wanted += usize::try_from(n().expect("array length")).unwrap_or(0),
            other => panic!("not a RESP reply: starts with {:?}", other as char),
        }
    }
    Ok(reply)
}

/// One client connection, reading through a buffer.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: &TestServer) -> Client {
        Client { reader: BufReader::new(server.connect()) }
    }

    fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream().write_all(bytes).expect("write request");
    }

    fn reply(&mut self) -> Vec<u8> {
        read_one(&mut self.reader).expect("read reply")
    }

    /// Send one command and return its reply as text (lossy: for assertions).
    fn call(&mut self, args: &[&[u8]]) -> String {
        self.send(&cmd(args));
        String::from_utf8_lossy(&self.reply()).into_owned()
    }
}

/// What a correct store answers, computed independently of the server: a `HashMap` and the
/// documented replies.
#[derive(Default)]
struct Expected {
    map: HashMap<Vec<u8>, Vec<u8>>,
}

impl Expected {
    fn apply(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let bulk = |v: &[u8]| [format!("${}\r\n", v.len()).as_bytes(), v, b"\r\n"].concat();
        match args[0].to_ascii_uppercase().as_slice() {
            b"PING" => b"+PONG\r\n".to_vec(),
            b"SET" => {
                self.map.insert(args[1].to_vec(), args[2].to_vec());
                b"+OK\r\n".to_vec()
            }
            b"GET" => self.map.get(args[1]).map_or(b"$-1\r\n".to_vec(), |v| bulk(v)),
            b"INCR" => {
                let n: i64 =
                    self.map.get(args[1]).map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                self.map.insert(args[1].to_vec(), (n + 1).to_string().into_bytes());
                format!(":{}\r\n", n + 1).into_bytes()
            }
            b"DEL" => {
                let n = args[1..].iter().filter(|k| self.map.remove(**k).is_some()).count();
                format!(":{n}\r\n").into_bytes()
            }
            other => panic!("no expectation for {other:?}"),
        }
    }
}

/// `count` mixed requests and the replies a correct server sends, some in inline form.
fn some_requests(count: usize) -> (Vec<u8>, Vec<u8>) {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut expected = Expected::default();
    let (mut stream, mut replies) = (Vec::new(), Vec::new());
    for i in 0..count {
        let key = format!("key{}", rng.usize(..4));
        let value = payload(&mut rng, Proto::EchoFrame, i % 40);
        let args: Vec<&[u8]> = match i % 5 {
            0 | 3 => vec![b"SET", key.as_bytes(), &value],
            1 => vec![b"GET", key.as_bytes()],
            2 => vec![b"INCR", b"counter"],
            _ => vec![b"DEL", key.as_bytes(), b"key0"],
        };
        if i % 7 == 1 {
            // The same command typed by a human (keys and command names hold no spaces).
            stream.extend_from_slice(format!("{} {}\r\n", "get", key).as_bytes());
            replies.extend(expected.apply(&[b"GET", key.as_bytes()]));
        } else {
            stream.extend(cmd(&args));
            replies.extend(expected.apply(&args));
        }
    }
    (stream, replies)
}

/// Many clients at once, each its own keys, values from 1 B to 64 KiB, every reply checked.
pub fn many_clients_random_sizes(model: Model) {
    const CLIENTS: u64 = 16;
    const REQUESTS: usize = 200;
    let server = start(model);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|seed| {
            let mut client = Client::connect(&server);
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed);
                if matches!(model, Model::Blocking | Model::ThreadPool) {
                    // Served one client (or a pool's worth) after another: a client may wait
                    // for all the others.
                    client.stream().set_read_timeout(Some(TIMEOUT * 4)).unwrap();
                }
                let mut expected = Expected::default();
                for _ in 0..REQUESTS {
                    let key = format!("client{seed}:{}", rng.usize(..8));
                    let len = log_uniform_size(&mut rng, 64 * 1024);
                    let value = payload(&mut rng, Proto::EchoFrame, len);
                    let args: Vec<&[u8]> = if rng.bool() {
                        vec![b"SET", key.as_bytes(), &value]
                    } else {
                        vec![b"GET", key.as_bytes()]
                    };
                    client.send(&cmd(&args));
                    assert!(client.reply() == expected.apply(&args), "wrong reply to {:?}", args[0]);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client failed");
    }
}

/// A request stream written one byte per `write` gets the same replies as written whole.
pub fn one_byte_per_write(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    let (stream, replies) = some_requests(20);
    for byte in &stream {
        client.write_all(std::slice::from_ref(byte)).unwrap();
    }
    assert_eq!(read_reply(&mut client, replies.len()).unwrap(), replies);
}

/// Fifty requests in a single `write` get fifty replies, in order.
pub fn fifty_requests_in_one_write(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    let (stream, replies) = some_requests(50);
    client.write_all(&stream).unwrap();
    assert_eq!(read_reply(&mut client, replies.len()).unwrap(), replies);
}

/// A client that half-closes after sending still receives every reply, then end-of-file.
pub fn half_close_still_gets_every_reply(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    let (stream, replies) = some_requests(20);
    client.write_all(&stream).unwrap();
    client.shutdown(Direction::Write).unwrap();
    assert_eq!(read_to_clean_eof(&mut client), replies);
}

/// A client that resets its connection mid-reply disturbs neither the others nor the store.
pub fn reset_mid_reply_disturbs_no_one(model: Model) {
    let server = start(model);
    let big = vec![b'b'; 32 * 1024];
    {
        let mut rude = Client::connect(&server);
        assert_eq!(rude.call(&[b"SET", b"big", &big]), "+OK\r\n");
        let get = cmd(&[b"GET", b"big"]);
        // Queue many GETs of a large value without reading, so replies are still being written
        // when the reset comes (see `conformance.rs` for why one descriptor only).
        rude.stream().set_nonblocking(true).unwrap();
        for _ in 0..512 {
            if rude.stream().write_all(&get).is_err() {
                break; // WouldBlock: the buffers are full
            }
        }
        rude.stream().set_nonblocking(false).unwrap();
        assert_eq!(rude.reply().len(), 32 * 1024 + 10, "at least one reply is under way");
        // SO_LINGER 0: close() sends a reset instead of a FIN, discarding unsent data.
        socket2::SockRef::from(&*rude.stream()).set_linger(Some(Duration::ZERO)).unwrap();
    }
    for _ in 0..3 {
        let mut polite = Client::connect(&server);
        assert_eq!(polite.call(&[b"PING"]), "+PONG\r\n");
        assert_eq!(polite.call(&[b"GET", b"big"]).len(), 32 * 1024 + 10, "the store is intact");
    }
}

/// Each limit of the lesson: the documented error, a clean close, and others carry on.
pub fn oversized_or_broken_requests_are_refused(model: Model) {
    let max = 1024;
    let mut config = config(StoreKind::default());
    config.max_frame = max;
    let server = TestServer::with_config(model, config);
    let cases: [(Vec<u8>, &str); 4] = [
        // Only the header of an argument one byte too long, and some of its bytes.
        ([&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n"[..], &[b'v'; 100]].concat(), "invalid bulk length"),
        (b"*1025\r\n".to_vec(), "invalid multibulk length"),
        (vec![b'x'; 8 * 1024], "too big inline request"),
        (b"*1\r\n:1\r\n".to_vec(), "expected '$', got ':'"),
    ];
    for (stream, why) in cases {
        let mut bad = server.connect();
        bad.write_all(&stream).unwrap();
        bad.shutdown(Direction::Write).unwrap();
        let reply = read_to_clean_eof(&mut bad);
        assert_eq!(String::from_utf8_lossy(&reply), format!("-ERR Protocol error: {why}\r\n"));
    }
    let mut good = Client::connect(&server);
    let value = [b'y'; 1024];
    assert_eq!(good.call(&[b"SET", b"k", &value]), "+OK\r\n");
    assert_eq!(good.call(&[b"GET", b"k"]).len(), 1024 + 9);
    assert_eq!(good.call(&[b"NOPE"]), "-ERR unknown command 'NOPE', with args beginning with: \r\n");
    assert_eq!(good.call(&[b"GET"]), "-ERR wrong number of arguments for 'get' command\r\n");
    assert_eq!(good.call(&[b"PING"]), "+PONG\r\n", "an unknown command leaves the connection usable");
}

/// Client A connects and sends nothing; client B must still be answered within a second
/// (except on `blocking`, whose lesson is the opposite: see `conformance.rs`).
pub fn idle_client_does_not_hold_up_others(model: Model) {
    let server = start(model);
    let idle = server.connect();
    let mut probe_a = idle.try_clone().unwrap();
    let mut b = server.connect();
    b.write_all(&cmd(&[b"PING"])).unwrap();
    if model == Model::Blocking {
        assert!(
            nothing_arrives_within(&mut b, Duration::from_secs(1)),
            "lesson of `blocking`: B must wait while idle A holds the only thread"
        );
        drop(idle);
        probe_a.shutdown(Direction::Both).unwrap();
        assert_eq!(read_reply(&mut b, 7).unwrap(), b"+PONG\r\n");
    } else {
        b.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let reply = read_reply(&mut b, 7);
        assert!(reply.is_ok(), "B was not answered within 1 s while A sat idle: {reply:?}");
        assert!(nothing_arrives_within(&mut probe_a, Duration::from_millis(10)));
    }
}

/// A client that pipelines `GET`s of a large value and never reads cannot make the server
/// buffer without bound: each 25-byte request asks for a 1 KB reply.
pub fn peer_that_never_reads_is_held_back(model: Model) {
    const BUDGET: usize = 64 << 20;
    let server = start(model);
    let mut hog = Client::connect(&server);
    assert_eq!(hog.call(&[b"SET", b"v", &[b'v'; 1000]]), "+OK\r\n");
    let chunk: Vec<u8> = (0..64).flat_map(|_| cmd(&[b"GET", b"v"])).collect();
    let mut hog = hog.reader.into_inner(); // nothing is buffered: the reply above was read whole
    hog.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut accepted = 0;
    while accepted < BUDGET {
        match hog.write(&chunk) {
            Ok(n) => accepted += n,
            Err(e) => {
                assert!(
                    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
                    "the server cut the non-reading peer instead of holding it back: {e}"
                );
                break;
            }
        }
    }
    assert!(accepted < BUDGET, "the server accepted {accepted} bytes of GETs from a peer that never reads");
    if model == Model::Blocking {
        drop(hog); // the blocking model serves the next client only after this one
    }
    let mut other = Client::connect(&server);
    assert_eq!(other.call(&[b"PING"]), "+PONG\r\n");
}

/// Requests that take 20 ms each are in flight when shutdown is triggered: with a grace period
/// they are all answered, in order, and the server exits.
pub fn graceful_shutdown_finishes_in_flight_requests(model: Model) {
    let mut config = config(StoreKind::default());
    config.knobs = Knobs { work: Duration::ZERO, block: Duration::from_millis(20) };
    let server = TestServer::with_config(model, config);
    let mut client = Client::connect(&server);
    assert_eq!(client.call(&[b"PING"]), "+PONG\r\n");
    let batch: Vec<u8> = (0..19).flat_map(|_| cmd(&[b"INCR", b"n"])).collect();
    client.send(&batch);
    server.trigger_shutdown();
    let replies = read_to_eof(client.stream());
    let expected: String = (1..=19).map(|n| format!(":{n}\r\n")).collect();
    assert_eq!(String::from_utf8_lossy(&replies), expected, "every in-flight request is answered");
    server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
}

/// Shutdown while a client keeps sending `SET`s: every reply that arrives is whole.
pub fn shutdown_while_the_client_keeps_sending_tears_no_reply(model: Model) {
    let server = start(model);
    let mut client = server.connect();
    let req = cmd(&[b"SET", b"k", &[b'v'; 32 * 1024]]);
    let mut writer = client.try_clone().unwrap();
    let feeder = thread::spawn(move || {
        for _ in 0..400 {
            if writer.write_all(&req).is_err() {
                return; // the server has stopped reading and closed: expected
            }
        }
    });
    let mut replies = read_reply(&mut client, 5).unwrap();
    server.trigger_shutdown();
    replies.extend(read_to_eof(&mut client));
    assert_eq!(replies.len() % 5, 0, "a reply was torn: {} bytes arrived", replies.len());
    assert!(replies.chunks(5).all(|r| r == b"+OK\r\n"), "replies are whole and correct");
    drop(client);
    feeder.join().unwrap();
    server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
}

/// A `SET` on one connection is seen by a `GET` on another, and the other way round.
pub fn state_is_shared_across_connections(model: Model, store: StoreKind) {
    let server = TestServer::with_config(model, config(store));
    let mut a = Client::connect(&server);
    assert_eq!(a.call(&[b"SET", b"shared", b"from a"]), "+OK\r\n");
    if model == Model::Blocking {
        drop(a); // one client at a time: B is served once A has left
        let mut b = Client::connect(&server);
        assert_eq!(b.call(&[b"GET", b"shared"]), "$6\r\nfrom a\r\n");
        return;
    }
    let mut b = Client::connect(&server);
    assert_eq!(b.call(&[b"GET", b"shared"]), "$6\r\nfrom a\r\n");
    assert_eq!(b.call(&[b"SET", b"shared", b"from b"]), "+OK\r\n");
    assert_eq!(a.call(&[b"GET", b"shared"]), "$6\r\nfrom b\r\n");
    assert_eq!(a.call(&[b"DEL", b"shared"]), ":1\r\n");
    assert_eq!(b.call(&[b"EXISTS", b"shared"]), ":0\r\n");
}

/// 16 connections each `INCR` the same key 500 times, at once: the count is exactly 8000.
/// A store whose read-modify-write is not atomic under its lock loses increments here.
pub fn incr_from_many_connections_counts_exactly(model: Model, store: StoreKind) {
    const CONNS: usize = 16;
    const INCRS: usize = 500;
    let server = TestServer::with_config(model, config(store));
    let incr = cmd(&[b"INCR", b"counter"]);
    let clients: Vec<_> = (0..CONNS)
        .map(|_| {
            let mut client = Client::connect(&server);
            let incr = incr.clone();
            thread::spawn(move || {
                if matches!(model, Model::Blocking | Model::ThreadPool) {
                    client.stream().set_read_timeout(Some(TIMEOUT * 4)).unwrap();
                }
                for _ in 0..INCRS {
                    client.send(&incr);
                    let reply = client.reply();
                    assert!(reply.starts_with(b":"), "{:?}", String::from_utf8_lossy(&reply));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client failed");
    }
    let mut check = Client::connect(&server);
    assert_eq!(check.call(&[b"GET", b"counter"]), format!("${}\r\n{}\r\n", 4, CONNS * INCRS));
}

/// The protocol-generic cases for one model.
macro_rules! generic_cases {
    ($model:expr) => {
        crate::cases!(
            [super],
            ($model),
            many_clients_random_sizes,
            one_byte_per_write,
            fifty_requests_in_one_write,
            half_close_still_gets_every_reply,
            reset_mid_reply_disturbs_no_one,
            oversized_or_broken_requests_are_refused,
            idle_client_does_not_hold_up_others,
            peer_that_never_reads_is_held_back,
            graceful_shutdown_finishes_in_flight_requests,
            shutdown_while_the_client_keeps_sending_tears_no_reply,
        );
    };
}

/// The shared-state cases for one model and store kind.
macro_rules! store_cases {
    ($model:expr, $store:expr) => {
        crate::cases!(
            [super::super],
            ($model, $store),
            state_is_shared_across_connections,
            incr_from_many_connections_counts_exactly,
        );
    };
}

/// The kv cases for one model. One-thread models own their store (no lock, `--store` does not
/// apply), so they run the store's cases once; every other model shares it behind locks and
/// runs them with each lock design: `cargo test --test conformance_kv single_lock`.
macro_rules! kv_cases_for {
    (one_thread $module:ident $variant:ident) => {
        mod $module {
            use super::*;
            generic_cases!(Model::$variant);
            mod store {
                use super::*;
                store_cases!(Model::$variant, servers::store::StoreKind::default());
            }
        }
    };
    (threaded $module:ident $variant:ident) => {
        mod $module {
            use super::*;
            generic_cases!(Model::$variant);
            mod single_lock {
                use super::*;
                store_cases!(Model::$variant, servers::store::StoreKind::SingleLock);
            }
            mod sharded {
                use super::*;
                store_cases!(Model::$variant, servers::store::StoreKind::Sharded);
            }
        }
    };
    (blocking $variant:ident) => { kv_cases_for!(one_thread blocking $variant); };
    (reactor $variant:ident) => { kv_cases_for!(one_thread reactor $variant); };
    (executor $variant:ident) => { kv_cases_for!(one_thread executor $variant); };
    (io_uring $variant:ident) => { kv_cases_for!(one_thread io_uring $variant); };
    // Each connection a process of its own: there is no store they could share, so the model
    // refuses kv, and its test asserts the refusal (see the model's lesson).
    (process_per_connection $variant:ident) => {
        mod process_per_connection {
            use super::*;
            #[test]
            fn refuses_kv_by_design() {
                support::process::assert_refuses(Model::$variant, Proto::Kv);
            }
        }
    };
    ($module:ident $variant:ident) => { kv_cases_for!(threaded $module $variant); };
}

/// Called with the lab's list of models, so every listed model runs every case.
macro_rules! kv_conformance_tests {
    ($(#[doc = $about:literal] $module:ident => $variant:ident $(+ $check:ident)?,)*) => {
        $(kv_cases_for!($module $variant);)*
    };
}

servers::for_each_model!(kv_conformance_tests);

/// The `async` model on tokio's multi-thread runtime: connections really run in parallel, so
/// this is where a store that is not safe to share would lose increments.
mod async_multi_thread {
    use super::*;

    fn multi(store: StoreKind) -> ServerConfig {
        let mut config = config(store);
        config.runtime = servers::Runtime::MultiThread;
        config.threads = 4;
        config
    }

    #[test]
    fn incr_from_many_connections_counts_exactly_on_both_stores() {
        for store in [StoreKind::SingleLock, StoreKind::Sharded] {
            let server = TestServer::with_config(Model::Async, multi(store));
            let clients: Vec<_> = (0..16)
                .map(|_| {
                    let mut client = Client::connect(&server);
                    thread::spawn(move || {
                        for _ in 0..500 {
                            assert!(client.call(&[b"INCR", b"c"]).starts_with(':'));
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().expect("a client failed");
            }
            assert_eq!(Client::connect(&server).call(&[b"GET", b"c"]), "$4\r\n8000\r\n", "{store}");
        }
    }
}
