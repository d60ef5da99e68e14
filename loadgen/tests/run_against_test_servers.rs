//! loadgen against small echo servers started in the test: exact counts when the server is
//! right, and each kind of wrongness counted and reported when it is not.

mod support;

use std::time::Duration;

use loadgen::{Pacing, ProtocolKind, RunConfig, RunError, SizeSpec};
use support::{Behaviour, start};

/// The settings every test starts from: short, a few connections over two threads.
fn quick(addr: std::net::SocketAddr, proto: ProtocolKind) -> RunConfig {
    let mut cfg = RunConfig::new(addr, proto);
    cfg.conns = 4;
    cfg.threads = 2;
    cfg.warmup = Duration::from_millis(200);
    cfg.duration = Duration::from_millis(700);
    cfg.size = SizeSpec { min: 1, max: 300 };
    cfg.timeout = Duration::from_secs(5);
    cfg
}

/// Against a correct server: no errors, and loadgen's counts add up to exactly what the server
/// sent (replies still in flight at the end are awaited, so nothing falls between the chairs).
fn exact_counts(proto: ProtocolKind, depth: usize, rate: Option<f64>) {
    let server = start(proto, Behaviour::Correct);
    let mut cfg = quick(server.addr, proto);
    cfg.depth = depth;
    if let Some(rate) = rate {
        cfg.pacing = Pacing::Open { rate };
    }
    let report = loadgen::run(&cfg).expect("the run starts");
    let c = report.counts;
    assert!(report.is_clean(), "{c:?} {:?}", report.first_error);
    assert!(c.requests > 0);
    let served = server.stats.replies.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(c.requests + c.warmup_requests, served, "every reply the server sent is counted once");
    assert_eq!(report.service_time.len(), c.requests, "every measured reply is recorded");
    if let Some(rate) = rate {
        // 0.7 s at `rate` per second is a whole number of slots, all of them either answered
        // or reported as never sent (if this busy test machine fell behind).
        assert_eq!(c.requests + c.unsent, (rate * 0.7).round() as u64);
        let corrected = report.corrected.as_ref().expect("open loop keeps a corrected histogram");
        assert_eq!(corrected.len(), c.requests);
    } else {
        assert!(report.corrected.is_none());
    }
}

#[test]
fn echo_line_closed_depth_1() {
    exact_counts(ProtocolKind::EchoLine, 1, None);
}

#[test]
fn echo_line_closed_depth_8() {
    exact_counts(ProtocolKind::EchoLine, 8, None);
}

#[test]
fn echo_line_open_depth_1() {
    exact_counts(ProtocolKind::EchoLine, 1, Some(2000.0));
}

#[test]
fn echo_line_open_depth_8() {
    exact_counts(ProtocolKind::EchoLine, 8, Some(2000.0));
}

#[test]
fn echo_frame_closed_depth_1() {
    exact_counts(ProtocolKind::EchoFrame, 1, None);
}

#[test]
fn echo_frame_closed_depth_8() {
    exact_counts(ProtocolKind::EchoFrame, 8, None);
}

#[test]
fn echo_frame_open_depth_1() {
    exact_counts(ProtocolKind::EchoFrame, 1, Some(2000.0));
}

#[test]
fn echo_frame_open_depth_8() {
    exact_counts(ProtocolKind::EchoFrame, 8, Some(2000.0));
}

#[test]
fn spinning_happens_only_for_near_sends_and_is_reported_apart() {
    // At 2,000 req/s sends are about 500 µs apart: a 1 ms spin threshold waits for every one
    // of them by spinning, 0 never spins, and closed loop has no sends to wait for at all.
    let server = start(ProtocolKind::EchoLine, Behaviour::Correct);
    let spun = |rate: Option<f64>, spin: Duration| {
        let mut cfg = quick(server.addr, ProtocolKind::EchoLine);
        cfg.spin = spin;
        if let Some(rate) = rate {
            cfg.pacing = Pacing::Open { rate };
        }
        let report = loadgen::run(&cfg).expect("the run starts");
        assert!(report.is_clean(), "{:?} {:?}", report.counts, report.first_error);
        assert!(report.busy_share() <= report.cpu_share());
        report.spun
    };
    let spinning = spun(Some(2000.0), Duration::from_millis(1));
    assert!(spinning > Duration::from_millis(100), "spun only {spinning:?} of a 0.7 s measured phase");
    assert_eq!(spun(Some(2000.0), Duration::ZERO), Duration::ZERO);
    assert_eq!(spun(None, Duration::from_millis(1)), Duration::ZERO);
}

#[test]
fn corrupted_replies_are_counted_exactly() {
    for proto in [ProtocolKind::EchoLine, ProtocolKind::EchoFrame] {
        let server = start(proto, Behaviour::CorruptEvery(1000));
        let mut cfg = quick(server.addr, proto);
        // No warm-up, so the very first reply (which this server corrupts) is measured and the
        // test does not depend on how fast the machine is.
        cfg.warmup = Duration::ZERO;
        cfg.duration = Duration::from_millis(500);
        let report = loadgen::run(&cfg).expect("the run starts");
        let corrupted = server.stats.corrupted.load(std::sync::atomic::Ordering::SeqCst);
        assert!(corrupted >= 1);
        assert_eq!(report.counts.mismatches, corrupted, "{proto}: every corrupted reply caught");
        assert!(!report.is_clean());
        // The framing survived, so the connections did too.
        assert_eq!(report.counts.malformed + report.counts.unexpected_eof, 0);
    }
}

#[test]
fn a_stall_shows_in_the_corrected_histogram_but_not_the_service_time() {
    // One connection at 2,000 requests/s for 3 s; the server stops once for a second. Without
    // correction only the single request caught in the stall is slow (1 in 6,000, below the
    // 99.9th percentile); measured from due times, the ~2,000 requests that *should* have been
    // sent during the stall are late too, which is what a user would have seen.
    let server =
        start(ProtocolKind::EchoLine, Behaviour::StallOnce { after: 500, pause: Duration::from_secs(1) });
    let mut cfg = quick(server.addr, ProtocolKind::EchoLine);
    cfg.conns = 1;
    cfg.threads = 1;
    cfg.warmup = Duration::ZERO;
    cfg.duration = Duration::from_secs(3);
    cfg.pacing = Pacing::Open { rate: 2000.0 };
    let report = loadgen::run(&cfg).expect("the run starts");
    assert!(report.is_clean(), "{:?} {:?}", report.counts, report.first_error);
    let corrected = report.corrected.as_ref().expect("open loop");
    let half_second = 500_000_000;
    let corrected_p999 = corrected.value_at_quantile(0.999);
    let service_p999 = report.service_time.value_at_quantile(0.999);
    assert!(corrected_p999 >= half_second, "corrected p99.9 = {corrected_p999} ns should show the stall");
    assert!(service_p999 < half_second, "service p99.9 = {service_p999} ns should hide it");
    assert!(report.service_time.max() >= half_second, "the stalled request itself is still recorded");
}

#[test]
fn connections_closed_mid_run_are_reported_not_panicked_on() {
    for proto in [ProtocolKind::EchoLine, ProtocolKind::EchoFrame] {
        let server = start(proto, Behaviour::CloseAfter(50));
        let cfg = quick(server.addr, proto);
        let report = loadgen::run(&cfg).expect("the run starts");
        let c = report.counts;
        assert_eq!(c.unexpected_eof + c.short_reads + c.resets, 4, "{c:?}");
        assert!(!report.is_clean());
        let first = report.first_error.as_deref().unwrap_or_default();
        assert!(first.contains("closed by the server") || first.contains("reset"), "{first}");
    }
}

#[test]
fn nothing_listening_is_a_connect_error() {
    let cfg = quick(support::closed_port(), ProtocolKind::EchoLine);
    match loadgen::run(&cfg) {
        Err(RunError::Connect { .. }) => {}
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[test]
fn idle_connections_are_held_open() {
    let server = start(ProtocolKind::EchoFrame, Behaviour::Correct);
    let mut cfg = quick(server.addr, ProtocolKind::EchoFrame);
    cfg.idle_conns = 50;
    let report = loadgen::run(&cfg).expect("the run starts");
    assert_eq!(report.idle_opened, 50);
    assert!(report.is_clean(), "{:?}", report.counts);
}

#[test]
fn no_verify_counts_replies_without_recording() {
    let server = start(ProtocolKind::EchoLine, Behaviour::CorruptEvery(1));
    let mut cfg = quick(server.addr, ProtocolKind::EchoLine);
    cfg.verify = false;
    let report = loadgen::run(&cfg).expect("the run starts");
    assert!(report.counts.requests > 0);
    assert_eq!(report.counts.mismatches, 0, "nothing is checked in calibration mode");
    assert!(report.service_time.is_empty());
}

#[test]
fn invalid_settings_are_rejected_before_connecting() {
    let mut cfg = quick(support::closed_port(), ProtocolKind::EchoLine);
    cfg.depth = 0;
    assert!(matches!(loadgen::run(&cfg), Err(RunError::Config(_))));
}
