//! The human summary: what was asked, how many replies, which errors, the percentile table
//! with units, and loadgen's own CPU use so a saturated generator is visible.

use std::fmt::Write;

use super::{grouped, human_ns};
use crate::config::{Pacing, ProtocolKind};
use crate::report::{Churn, Percentiles, RunReport};

/// Above this share of its threads' CPU, loadgen warns that it may be the bottleneck.
const BUSY_GENERATOR: f64 = 0.9;

/// Renders the summary table (several lines, ending with a newline).
pub fn summary(report: &RunReport) -> String {
    if report.config.protocol == ProtocolKind::Chat {
        return chat_summary(report);
    }
    let cfg = &report.config;
    let mut out = String::new();
    let pacing = match cfg.pacing {
        Pacing::Closed if cfg.conn_per_request => "closed loop, a new connection per request".to_owned(),
        Pacing::Closed => format!("closed loop, depth {}", cfg.depth),
        Pacing::Open { rate } => format!("open loop at {} req/s, depth {}", grouped(rate as u64), cfg.depth),
    };
    // HTTP has no payload size to speak of: say what is sent instead.
    let size = match cfg.protocol {
        ProtocolKind::Http => "GET /".to_owned(),
        _ => cfg.size.to_string(),
    };
    let _ = writeln!(
        out,
        "loadgen: {} to {}, {pacing}, {} conns on {} thread(s) (+{} idle), {size}, {} warm-up + {} measured",
        cfg.protocol,
        cfg.addr,
        cfg.conns,
        cfg.threads,
        cfg.idle_conns,
        humantime::format_duration(cfg.warmup),
        humantime::format_duration(cfg.duration),
    );
    if report.conns_opened < cfg.conns || report.idle_opened < cfg.idle_conns {
        let _ = writeln!(
            out,
            "  opened only {} of {} connections and {} of {} idle ones",
            report.conns_opened, cfg.conns, report.idle_opened, cfg.idle_conns
        );
    }
    if cfg.protocol == crate::config::ProtocolKind::Kv {
        let _ = writeln!(
            out,
            "  kv: {:.0}% GET, {:.0}% SET of {} values, over {} keys ({} per connection)",
            cfg.kv_get_ratio * 100.0,
            (1.0 - cfg.kv_get_ratio) * 100.0,
            cfg.size,
            grouped(cfg.kv_keys),
            grouped(cfg.kv_keys / cfg.conns.max(1) as u64),
        );
    }
    if !cfg.verify {
        let _ = writeln!(out, "  --no-verify: replies counted only, not checked, latencies not recorded");
    }

    let c = &report.counts;
    let _ = writeln!(
        out,
        "requests    {} in {:.2} s = {} req/s",
        grouped(c.requests),
        report.measured().as_secs_f64(),
        grouped(report.achieved_rate().round() as u64),
    );
    if let Some(churn) = &report.churn {
        churn_lines(&mut out, report, churn);
    }
    rate_and_errors(&mut out, report, ("req/s", "requests"), "every reply checked byte for byte");

    if cfg.verify {
        latency_table(&mut out, report);
    }

    cpu_lines(&mut out, report, "request", "give it a CPU of its own, or more --threads on more CPUs");
    out
}

/// Above this share of what the ephemeral ports allow, loadgen warns that `connect()` is
/// getting close to running out of them.
const PORTS_SCARCE: f64 = 0.5;

/// `--conn-per-request`: connections per second, who closes first, the ports, failed connects.
fn churn_lines(out: &mut String, report: &RunReport, churn: &Churn) {
    let cfg = &report.config;
    let c = &churn.connects;
    let rate = report.connect_rate().unwrap_or(0.0);
    let closer = if churn.server_closes {
        "the server closes first (Connection: close), so TIME_WAIT is on its side"
    } else {
        "loadgen closes first, so TIME_WAIT is on its side"
    };
    let _ = writeln!(
        out,
        "connections {} opened = {} conn/s, one request each; {closer}",
        grouped(c.opened),
        grouped(rate.round() as u64),
    );
    let budget = churn.ports.sustainable_rate(cfg.addr.ip());
    let sustainable =
        budget.map(|r| format!(": about {} new conn/s sustainable", grouped(r as u64))).unwrap_or_default();
    let _ = writeln!(out, "  ports     {}{sustainable}", churn.ports.describe());
    let failed: Vec<String> = c
        .errors()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{} {name}", grouped(*n)))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "  connects failed: {}", failed.join(", "));
    }
    if let Some(budget) = budget.filter(|b| !churn.server_closes && rate > PORTS_SCARCE * b) {
        let _ = writeln!(
            out,
            "  warning: {} conn/s is more than half of what loadgen's ephemeral ports sustain ({}/s); \
             connect() slows down as free ports get scarce, then fails",
            grouped(rate.round() as u64),
            grouped(budget as u64)
        );
    }
}

/// loadgen's own CPU use, and a warning if it was the busy side.
fn cpu_lines(out: &mut String, report: &RunReport, per: &str, remedy: &str) {
    let cfg = &report.config;
    let cpu = report.cpu;
    let per_request = report
        .cpu_per_request()
        .map(|d| format!("; {} per {per}", human_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "loadgen CPU {:.2} s user + {:.2} s sys = {:.0}% of its {} thread(s){per_request}",
        cpu.user.as_secs_f64(),
        cpu.system.as_secs_f64(),
        report.cpu_share() * 100.0,
        cfg.threads,
    );
    if !report.spun.is_zero() {
        let _ = writeln!(
            out,
            "  of which {:.2} s spinning for sends due within {} (cheaper than sleeping): busy {:.0}% without it",
            report.spun.as_secs_f64(),
            human_ns(u64::try_from(cfg.spin.as_nanos()).unwrap_or(u64::MAX)),
            report.busy_share() * 100.0,
        );
    }
    if report.busy_share() > BUSY_GENERATOR {
        let _ = writeln!(
            out,
            "  warning: loadgen was busy most of the time; it may be what limits these figures ({remedy})"
        );
    }
}

/// The summary of a chat run: messages instead of requests, deliveries, and fan-out latency.
fn chat_summary(report: &RunReport) -> String {
    let cfg = &report.config;
    let mut out = String::new();
    let pacing = match cfg.pacing {
        Pacing::Closed => format!("closed loop, depth {}", cfg.depth),
        Pacing::Open { rate } => format!("open loop at {} msg/s, depth {}", grouped(rate as u64), cfg.depth),
    };
    let _ = writeln!(
        out,
        "loadgen: chat to {}, {pacing}, {} members, {} messages, {} warm-up + {} measured",
        cfg.addr,
        cfg.conns,
        cfg.size,
        humantime::format_duration(cfg.warmup),
        humantime::format_duration(cfg.duration),
    );
    if report.conns_opened < cfg.conns {
        let _ = writeln!(out, "  opened only {} of {} members", report.conns_opened, cfg.conns);
    }
    let c = &report.counts;
    let _ = writeln!(
        out,
        "messages    {} in {:.2} s = {} msg/s, each to {} others: {} deliveries",
        grouped(c.requests),
        report.measured().as_secs_f64(),
        grouped(report.achieved_rate().round() as u64),
        report.conns_opened.saturating_sub(1),
        grouped(c.deliveries),
    );
    rate_and_errors(
        &mut out,
        report,
        ("msg/s", "messages"),
        "every delivery checked: once, in order, to every other member, intact",
    );
    if !report.service_time.is_empty() {
        let service = Percentiles::of(&report.service_time);
        match &report.corrected {
            Some(corrected) => {
                let corrected = Percentiles::of(corrected);
                let _ = writeln!(out, "fan-out     {:>14} {:>14}", "from due time", "from sending");
                for ((label, due), (_, sent)) in corrected.rows().iter().zip(service.rows()) {
                    let _ = writeln!(out, "  {label:<9} {:>14} {:>14}", human_ns(*due), human_ns(sent));
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "fan-out     a member's write of a message to each other member's read of it"
                );
                for (label, value) in service.rows() {
                    let _ = writeln!(out, "  {label:<9} {:>14}", human_ns(value));
                }
            }
        }
    }
    cpu_lines(&mut out, report, "message", "chat mode runs on one thread: give it a CPU of its own");
    out
}

fn latency_table(out: &mut String, report: &RunReport) {
    let service = Percentiles::of(&report.service_time);
    match &report.corrected {
        Some(corrected) => {
            let corrected = Percentiles::of(corrected);
            let _ = writeln!(out, "latency     {:>14} {:>14}", "from due time", "service time");
            for ((label, due), (_, served)) in corrected.rows().iter().zip(service.rows()) {
                let _ = writeln!(out, "  {label:<9} {:>14} {:>14}", human_ns(*due), human_ns(served));
            }
            let _ = writeln!(
                out,
                "  (from due time counts queueing behind a slow reply, as a user would see it;\n   service time is write to last byte of the reply)"
            );
        }
        None if report.churn.is_some() => {
            let _ = writeln!(out, "latency     start of the connect to last byte of the reply");
            for (label, value) in service.rows() {
                let _ = writeln!(out, "  {label:<9} {:>14}", human_ns(value));
            }
        }
        None => {
            let _ = writeln!(out, "latency     write to last byte of the reply");
            for (label, value) in service.rows() {
                let _ = writeln!(out, "  {label:<9} {:>14}", human_ns(value));
            }
        }
    }
}

/// The open-loop verdict (if any), the error counts (or what "none" vouches for), and the
/// first error: the same lines for requests and for chat messages, in their own words.
fn rate_and_errors(out: &mut String, report: &RunReport, (rate_unit, things): (&str, &str), checked: &str) {
    let c = &report.counts;
    if let (Some(rate), Some(fraction)) = (report.requested_rate(), report.achieved_fraction()) {
        let verdict = if report.fell_short() { "FELL SHORT of" } else { "kept up with" };
        let _ = writeln!(
            out,
            "rate        {verdict} the requested {} {rate_unit}: {:.1}% achieved, {} due {things} never sent",
            grouped(rate as u64),
            fraction * 100.0,
            grouped(c.unsent),
        );
    }
    let errors: Vec<String> = c
        .errors()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{} {name}", grouped(*n)))
        .collect();
    if errors.is_empty() {
        let _ = writeln!(out, "errors      none ({checked})");
    } else {
        let _ = writeln!(out, "errors      {}", errors.join(", "));
    }
    if let Some(first) = &report.first_error {
        let _ = writeln!(out, "first error {first}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProtocolKind, RunConfig};
    use crate::engine::histogram::latency_histogram;
    use crate::report::Counts;
    use crate::sys::CpuTime;
    use std::time::Duration;

    fn report(open: bool) -> RunReport {
        let mut config = RunConfig::new("127.0.0.1:7".parse().unwrap(), ProtocolKind::EchoLine);
        if open {
            config.pacing = Pacing::Open { rate: 1000.0 };
        }
        let mut service_time = latency_histogram();
        for v in 1..=1000u64 {
            service_time.record(v * 1000).unwrap();
        }
        RunReport {
            config,
            conns_opened: 1,
            idle_opened: 0,
            counts: Counts { requests: 1000, mismatches: 2, ..Counts::default() },
            cpu: CpuTime::default(),
            spun: Duration::ZERO,
            first_error: Some("connection 0 at 1.000 s: something".into()),
            corrected: open.then(|| service_time.clone()),
            service_time,
            churn: None,
        }
    }

    #[test]
    fn closed_loop_summary_has_counts_errors_and_percentiles_with_units() {
        let text = summary(&report(false));
        for needle in
            ["1,000 in 10.00 s = 100 req/s", "2 mismatched replies", "p99.99", "max", "µs", "first error"]
        {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn conn_per_request_says_connections_per_second_ports_and_failed_connects() {
        use crate::ports::PortBudget;
        use crate::report::Connects;
        let mut r = report(false);
        r.config.conn_per_request = true;
        let ports = PortBudget {
            tcp_tw_reuse: Some(0),
            tcp_tw_reuse_delay_ms: None,
            local_port_range: Some((32768, 60999)),
        };
        let connects = Connects { opened: 9_000, refused: 2, timed_out: 1, ..Connects::default() };
        r.churn = Some(Churn { connects, ports, server_closes: false });
        let text = summary(&r);
        for needle in [
            "closed loop, a new connection per request",
            "connections 9,000 opened = 900 conn/s, one request each; loadgen closes first",
            "ports     tcp_tw_reuse=0 (never), 28232 ports (32768-60999): about 470 new conn/s sustainable",
            "connects failed: 2 refused, 1 timed out",
            "warning: 900 conn/s is more than half",
            "latency     start of the connect to last byte of the reply",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        // The server closing first leaves loadgen's ports free: no warning then.
        r.churn = Some(Churn { connects, ports, server_closes: true });
        let text = summary(&r);
        assert!(text.contains("the server closes first (Connection: close)"), "{text}");
        assert!(!text.contains("warning: 900 conn/s"), "{text}");
        // Without --conn-per-request none of it.
        assert!(!summary(&report(false)).contains("conn/s"));
    }

    #[test]
    fn open_loop_summary_shows_both_histograms_and_the_shortfall() {
        let text = summary(&report(true));
        assert!(text.contains("from due time"), "{text}");
        assert!(text.contains("FELL SHORT"), "{text}");
    }

    #[test]
    fn spinning_is_shown_apart_and_does_not_count_as_busy() {
        // 9.5 s of CPU in a 10 s run would warn that loadgen was the limit; 6 s of it spinning
        // for due sends leaves 35% of real work, which must not.
        let mut busy = report(true);
        busy.cpu = CpuTime { user: Duration::from_millis(1500), system: Duration::from_secs(8) };
        let text = summary(&busy);
        assert!(text.contains("warning: loadgen was busy"), "{text}");
        assert!(!text.contains("spinning"), "{text}");

        busy.spun = Duration::from_secs(6);
        let text = summary(&busy);
        assert!(text.contains("of which 6.00 s spinning for sends due within 50.0 µs"), "{text}");
        assert!(text.contains("busy 35% without it"), "{text}");
        assert!(!text.contains("warning: loadgen was busy"), "{text}");
    }
}
