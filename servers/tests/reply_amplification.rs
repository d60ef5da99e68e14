//! A small request can ask for a large reply: `GET k` is 7 bytes, its reply as large as the
//! value. A client that pipelines thousands of them in one write and never reads must not make
//! the server buffer every reply (issue #12, bug 2: four such clients took the reactor from
//! 3 MB to 628 MB, and the threaded models to 150 MB). Every model that serves `kv` stops
//! decoding once a connection's replies reach the output budget, so its memory stays bounded.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use servers::{Model, Proto, ServerConfig};
use support::process::Process;

/// A value just under the default `--max-frame`.
const VALUE: usize = 60_000;
/// `GET k` requests per attacking connection: 120 MB of replies each if all were produced.
const GETS: usize = 2_000;
const ATTACKERS: usize = 4;
/// What the attack may cost the server, all connections together: four output budgets and
/// their buffers, well under one connection's worth of unbounded replies.
const BOUND_KIB: u64 = 48 * 1024;

/// `SET k` to a value of `VALUE` bytes, and check the `+OK`.
fn set_the_value(client: &mut TcpStream, model: Model) {
    let set = [
        format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${VALUE}\r\n").into_bytes(),
        vec![b'v'; VALUE],
        b"\r\n".to_vec(),
    ]
    .concat();
    client.write_all(&set).unwrap();
    let mut ok = [0u8; 5];
    client.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n", "{model}");
}

/// What `GET k` answers once [`set_the_value`] has run.
fn the_reply() -> Vec<u8> {
    [format!("${VALUE}\r\n").into_bytes(), vec![b'v'; VALUE], b"\r\n".to_vec()].concat()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else { return 0 };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// The server's peak resident memory while it works on the attack: sampled until its CPU time
/// stops growing (it has produced all it will) or 5 s pass.
fn peak_rss_while_busy(pid: u32) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut peak, mut last_cpu, mut quiet) = (0, u64::MAX, 0);
    while Instant::now() < deadline && quiet < 5 {
        peak = peak.max(rss_kib(pid));
        let cpu = cpu_ticks(pid);
        quiet = if cpu == last_cpu { quiet + 1 } else { 0 };
        last_cpu = cpu;
        std::thread::sleep(Duration::from_millis(50)); // sampling, not synchronising
    }
    peak.max(rss_kib(pid))
}

#[test]
fn pipelined_gets_that_are_never_read_cost_bounded_memory() {
    for model in Model::ALL {
        if model.check(&ServerConfig::new(Proto::Kv)).is_err() {
            continue; // refuses kv (its own tests say so), or unavailable here
        }
        let (server, addr) =
            Process::start(&["--model", &model.to_string(), "--proto", "kv", "--threads", "4"]);
        let pid = server.child.id();
        set_the_value(&mut support::connect(addr), model);

        let before = rss_kib(pid);
        let gets = b"GET k\r\n".repeat(GETS);
        let attackers: Vec<TcpStream> = (0..ATTACKERS)
            .map(|_| {
                let mut c = support::connect(addr);
                c.write_all(&gets).unwrap(); // 14 KB: fits the socket buffers, never read back
                c
            })
            .collect();
        let peak = peak_rss_while_busy(pid);
        assert!(
            peak < before + BOUND_KIB,
            "{model}: {ATTACKERS} connections pipelining {GETS} GETs of a {VALUE}-byte value and reading \
             nothing grew the server from {before} KiB to {peak} KiB (bound: +{BOUND_KIB} KiB)"
        );
        drop(attackers);
        drop(server);
    }
}

/// The other half of the bound: a client that does read gets every reply, in order, even though
/// the server stopped decoding at the budget and had to come back to the requests it held
/// (no new bytes arrive to remind it).
#[test]
fn pipelined_gets_past_the_budget_are_all_answered_once_read() {
    const PIPELINED: usize = 100; // 6 MB of replies, many output budgets
    for model in Model::ALL {
        if model.check(&ServerConfig::new(Proto::Kv)).is_err() {
            continue;
        }
        let server = support::TestServer::start(model, Proto::Kv);
        let mut client = support::connect(server.addr);
        set_the_value(&mut client, model);
        client.write_all(&b"GET k\r\n".repeat(PIPELINED)).unwrap();
        let reply = the_reply();
        let mut got = vec![0u8; reply.len()];
        for i in 0..PIPELINED {
            client
                .read_exact(&mut got)
                .unwrap_or_else(|e| panic!("{model}: reply {i} of {PIPELINED} never came: {e}"));
            assert!(got == reply, "{model}: reply {i} is wrong");
        }
        drop(client);
        server.trigger_shutdown();
        server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
    }
}

/// The same, but the client half-closes right after its requests: the end-of-file may arrive
/// while the server is still holding requests back at the output budget, and those must be
/// answered before it closes (an event loop that took the end-of-file for the end of the
/// conversation dropped them).
#[test]
fn half_close_after_pipelined_gets_still_gets_every_reply() {
    const PIPELINED: usize = 100;
    for model in Model::ALL {
        if model.check(&ServerConfig::new(Proto::Kv)).is_err() {
            continue;
        }
        let server = support::TestServer::start(model, Proto::Kv);
        let mut client = support::connect(server.addr);
        set_the_value(&mut client, model);
        client.write_all(&b"GET k\r\n".repeat(PIPELINED)).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap_or_else(|e| panic!("{model}: reading to end-of-file: {e}"));
        let reply = the_reply();
        assert_eq!(
            rest.len(),
            PIPELINED * reply.len(),
            "{model}: {} of {PIPELINED} replies",
            rest.len() / reply.len()
        );
        assert!(rest.chunks(reply.len()).all(|r| r == reply), "{model}: a reply is wrong");
        server.trigger_shutdown();
        server.wait_exit(Duration::from_secs(10)).expect("server exits cleanly");
    }
}
