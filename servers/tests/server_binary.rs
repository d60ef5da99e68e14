//! The `server` binary as a script sees it: the `listening on` line, signals, exit codes.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::Command;
use std::thread;
use std::time::Duration;

use servers::{Model, Proto};
use support::process::{BIN, Process};
use support::{connect, request, round_trip};

#[test]
fn every_model_prints_its_address_echoes_and_exits_0_on_sigterm() {
    for model in Model::ALL {
        // Chat is not request/response (`chat_binary.rs` covers it); kv replies are not echoes.
        for proto in Proto::ALL.into_iter().filter(|p| !matches!(p, Proto::Chat | Proto::Kv)) {
            let (mut server, addr) =
                Process::start(&["--model", &model.to_string(), "--proto", &proto.to_string()]);
            let mut client = connect(addr);
            round_trip(&mut client, proto, b"hello from a script");
            drop(client);
            server.signal(libc::SIGTERM);
            let status = server.wait_within(Duration::from_secs(10));
            assert!(status.success(), "{model}/{proto} exited with {status}");
        }
    }
}

#[test]
fn sigint_with_a_connection_open_exits_0_after_the_client_is_drained() {
    let (mut server, addr) = Process::start(&["--model", "reactor", "--proto", "echo-line"]);
    let mut client = connect(addr);
    round_trip(&mut client, Proto::EchoLine, b"before");
    server.signal(libc::SIGINT);
    // The open connection is told no more input will be read: it sees end-of-file.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(server.wait_within(Duration::from_secs(10)).success());
}

#[test]
fn address_in_use_is_a_one_line_error_and_exit_1() {
    let (_first, addr) = Process::start(&["--model", "async", "--proto", "echo-frame"]);
    let out = Command::new(BIN)
        .args(["--model", "reactor", "--proto", "echo-line", "--addr", &addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout when not listening");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.contains("Address already in use"), "{err}");
}

#[test]
fn bad_flags_get_a_usage_error() {
    let reactor = ["--model", "reactor", "--proto", "echo-line"];
    for args in [
        &["--model", "fastest", "--proto", "echo-line"][..],
        &["--model", "reactor"][..],
        &[&reactor[..], &["--idle-timeout", "5"]].concat(), // a duration needs its unit
        &[&reactor[..], &["--request-timeout", "0"]].concat(), // `off`, not 0, turns it off
        &[&reactor[..], &["--max-conns", "0"]].concat(),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error:") && err.contains("--help"), "{args:?}: {err}");
    }
}

#[test]
fn knobs_and_limits_are_accepted_by_every_model() {
    for model in Model::ALL {
        let (mut server, addr) = Process::start(&[
            "--model",
            &model.to_string(),
            "--proto",
            "echo-line",
            "--work-us",
            "50",
            "--block-us",
            "100",
            "--max-frame",
            "16",
            "--grace",
            "1s",
            "--request-timeout",
            "30s",
            "--idle-timeout",
            "off",
            "--write-timeout",
            "1m",
            "--max-conns",
            "100",
            "--max-output",
            "65536",
            "--kv-max-bytes",
            "1000000",
        ]);
        let mut client = connect(addr);
        round_trip(&mut client, Proto::EchoLine, b"sixteen bytes ok");
        drop(client); // `blocking` serves the next client only after this one leaves
        let mut too_long = connect(addr);
        std::io::Write::write_all(&mut too_long, &request(Proto::EchoLine, b"seventeen bytes!!")).unwrap();
        let mut reply = String::new();
        BufReader::new(too_long).read_line(&mut reply).unwrap();
        assert_eq!(reply, "ERR line longer than 16 bytes\n", "{model}");
        server.signal(libc::SIGTERM);
        assert!(server.wait_within(Duration::from_secs(10)).success(), "{model}");
    }
}

/// Growing the descriptor table inside a multi-threaded process waits for an RCU grace period,
/// which stalled the reactor's `accept4` for up to 29 ms under a flood (`net::presize_fd_table`).
/// So the server sizes the table for its connection cap before its first thread starts: the
/// kernel reports the table's size as `FDSize`, which starts at 64 in a fresh process.
#[test]
fn the_descriptor_table_is_sized_for_the_connection_cap_at_start() {
    let mut hard = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) }, 0);
    let want = (3000 + 64).min(hard.rlim_max);
    for model in [Model::Reactor, Model::ThreadPerConnection] {
        let (server, _addr) =
            Process::start(&["--model", &model.to_string(), "--proto", "echo-line", "--max-conns", "3000"]);
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        let slots: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("an FDSize line");
        assert!(slots >= want, "{model}: FDSize {slots}, want at least {want}");
    }
}

/// CPU time (user + system) the process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Out of file descriptors, a server must shed the connections it cannot hold, keep serving
/// the ones it has, not spin, serve newcomers once descriptors are free again, and still stop
/// cleanly. The server runs with a hard limit of 48 descriptors and 80 clients knock.
#[test]
fn every_model_survives_running_out_of_file_descriptors() {
    use std::os::unix::process::CommandExt;
    for model in Model::ALL {
        let limit_fds = |cmd: &mut Command| {
            // SAFETY: setrlimit is async-signal-safe, as a pre_exec hook requires.
            unsafe {
                cmd.pre_exec(|| {
                    let lim = libc::rlimit { rlim_cur: 48, rlim_max: 48 };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        };
        let (mut server, addr) = Process::start_with(
            &["--model", &model.to_string(), "--proto", "echo-line", "--threads", "4"],
            limit_fds,
        );
        // The first client is served before the crowd comes. (Connected together with the crowd,
        // it may not be: `multi-reactor` accepts on one listener per loop, so which connections
        // get the last descriptors is not the order they arrived in; see its lesson.)
        let mut first = connect(addr);
        round_trip(&mut first, Proto::EchoLine, b"served before the crowd");
        let mut crowd: Vec<_> = (0..80).map(|_| connect(addr)).collect();
        crowd.push(first);

        let before = cpu_time(server.child.id());
        let quiet = std::time::Instant::now();
        thread::sleep(Duration::from_secs(1)); // measuring idle CPU use, not synchronising
        let used = cpu_time(server.child.id()) - before;
        assert!(
            used < quiet.elapsed() / 2,
            "{model}: {used:?} of CPU in {:?} at the descriptor limit: the accept loop spins",
            quiet.elapsed()
        );

        drop(crowd);
        // Descriptors come free as the server notices the crowd has left; a newcomer is then
        // served (or, while the server is still full, shed: try again, a bounded number of times).
        let served = (0..100).any(|_| {
            let mut late = connect(addr);
            let ok = std::io::Write::write_all(&mut late, b"late\n").is_ok()
                && support::read_reply(&mut late, 5).is_ok_and(|r| r == b"late\n");
            if !ok {
                thread::sleep(Duration::from_millis(50)); // pacing the retries
            }
            ok
        });
        assert!(served, "{model}: nobody was served once the crowd left");
        server.signal(libc::SIGTERM);
        assert!(server.wait_within(Duration::from_secs(10)).success(), "{model}");
    }
}
