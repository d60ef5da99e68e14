//! The verdict of one cell, and the one table of cells that are *expected* to miss.
//!
//! A **pass** needs every criterion:
//! - the server survived (for `sigterm`: exited 0 within its grace period);
//! - its peak memory during the attack (RSS summed over the process tree, or PSS when the
//!   server had child processes, since RSS counts shared pages once per process) stayed under
//!   the scenario's bound;
//! - the probe's p99 during the attack was at most [`P99_FACTOR`] × max(baseline p99,
//!   [`P99_FLOOR_MS`]), with no probe errors (a timeout, a reset, a request left unsent);
//!   the floor is there because a loopback p99 below a millisecond doubles by noise alone;
//! - a new client was served within [`RECOVERY_LIMIT_S`] of the attack's end;
//! - nothing acknowledged was lost or corrupted, and the scenario's own check held.
//!
//! A cell that misses some is **expected** when [`EXPECTED`] declares it, with the reason and
//! the lesson that explains it; otherwise it is a **fail**.

use super::{Cell, ExpectedDoc, Figures, Kind, Verdict};

/// The probe's p99 may grow to this many times its baseline.
pub const P99_FACTOR: f64 = 2.0;
/// The floor under the baseline p99, ms.
pub const P99_FLOOR_MS: f64 = 1.0;
/// Seconds within which a new client must be served after the attack.
pub const RECOVERY_LIMIT_S: f64 = 1.0;

/// One declared expected cell: a model's own lesson, not a defect.
pub struct Expected {
    /// Model.
    pub model: &'static str,
    /// Scenario id.
    pub scenario: &'static str,
    /// Why it cannot pass.
    pub reason: &'static str,
    /// Where its lesson says so.
    pub lesson: &'static str,
}

/// process-per-connection's reason where every attacking connection is short-lived.
const FORK_PER_ATTACKER: &str = "a process per connection: every attacking connection is a fork and an exit on the server's one CPU, a few hundred microseconds each, and the probe's own child waits its turn meanwhile";
/// process-per-connection's reason where the attacking connections are held, then ended.
const FORKS_THEN_EXITS_IN_A_ROW: &str = "a process per connection: the attack's connections are forks in a row, and when they end (or their timeouts end them) exits in a row, on the server's one CPU; the probe's own child waits its turn meanwhile";

/// The expected-table: every cell allowed to miss, and why. Nothing else may.
pub const EXPECTED: &[Expected] = &[
    Expected {
        model: "blocking",
        scenario: "slowloris",
        reason: "it serves one client at a time: the probe waits behind every slow client until the request timeout frees it",
        lesson: "servers/src/models/blocking.rs",
    },
    Expected {
        model: "blocking",
        scenario: "slowloris-timeouts-off",
        reason: "one client at a time and no timeout: the first slow client holds the server for as long as it likes",
        lesson: "servers/src/models/blocking.rs",
    },
    Expected {
        model: "thread-pool",
        scenario: "slowloris-timeouts-off",
        reason: "a fixed crew of threads: slow clients occupy every worker, and without timeouts nothing frees them",
        lesson: "servers/src/models/thread_pool.rs",
    },
    Expected {
        model: "blocking",
        scenario: "idle",
        reason: "it serves one client at a time: the probe waits behind every idle client until the idle timeout frees it",
        lesson: "servers/src/models/blocking.rs",
    },
    Expected {
        model: "blocking",
        scenario: "slow-reader",
        reason: "it serves one client at a time: a client that sends and never reads holds it until the write timeout drops it",
        lesson: "servers/src/models/blocking.rs",
    },
    Expected {
        model: "blocking",
        scenario: "amplification",
        reason: "it serves one client at a time: a client that never reads its replies holds it until the write timeout drops it",
        lesson: "servers/src/models/blocking.rs",
    },
    Expected {
        model: "thread-pool",
        scenario: "slowloris",
        reason: "a worker belongs to a connection: slow clients occupy every worker (one per server CPU: one here) until the request timeout frees them; the timeout bounds the delay, the pool's width stays",
        lesson: "servers/src/models/thread_pool.rs",
    },
    Expected {
        model: "thread-pool",
        scenario: "idle",
        reason: "a worker belongs to a connection: idle clients occupy every worker until the idle timeout frees them",
        lesson: "servers/src/models/thread_pool.rs",
    },
    Expected {
        model: "thread-pool",
        scenario: "slow-reader",
        reason: "a worker belongs to a connection: clients that never read hold their workers until the write timeout drops them",
        lesson: "servers/src/models/thread_pool.rs",
    },
    Expected {
        model: "thread-pool",
        scenario: "amplification",
        reason: "a worker belongs to a connection: clients that never read their replies hold their workers until the write timeout drops them",
        lesson: "servers/src/models/thread_pool.rs",
    },
    Expected {
        model: "blocking",
        scenario: "churn",
        reason: "it serves one client at a time: while the probe's connection is open (2.5 s in a full run), the connection each of the 4 attacking threads has in flight waits past its 2 s reply timeout, so 4 replies are lost, one per thread",
        lesson: "servers/src/models/blocking.rs",
    },
    Expected {
        model: "thread-pool",
        scenario: "churn",
        reason: "a worker belongs to a connection (one worker on the server's one CPU): while the probe's connection is open (2.5 s in a full run), the connection each of the 4 attacking threads has in flight waits past its 2 s reply timeout, so 4 replies are lost, one per thread",
        lesson: "servers/src/models/thread_pool.rs",
    },
    Expected {
        model: "blocking",
        scenario: "malformed",
        reason: "it serves one client at a time: while the probe's connection is open (2.5 s in a full run), the case each of the 8 attacking threads has in flight waits past its timeout, so 8 cases go unanswered, one per thread",
        lesson: "servers/src/models/blocking.rs",
    },
    Expected {
        model: "thread-pool",
        scenario: "malformed",
        reason: "a worker belongs to a connection (one worker on the server's one CPU): while the probe's connection is open (2.5 s in a full run), the case each of the 8 attacking threads has in flight waits past its timeout, so 8 cases go unanswered, one per thread",
        lesson: "servers/src/models/thread_pool.rs",
    },
    Expected {
        model: "thread-per-connection",
        scenario: "idle",
        reason: "a thread per connection: the idle clients' timeout fires for all of them at once, and 500 threads wake, close and exit together on the server's one CPU; the probe's thread waits its turn among them (an event loop closes them in one sweep)",
        lesson: "servers/src/models/thread_per_connection.rs",
    },
    Expected {
        model: "thread-per-connection",
        scenario: "slow-reader",
        reason: "a thread per connection: the kernel gives turns, in time slices of milliseconds; 16 threads answering pipelined http requests stay runnable on the server's one CPU, and the probe's thread waits for their slices (an event loop ends a turn every 64 requests)",
        lesson: "servers/src/models/thread_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "slow-reader",
        reason: "a process per connection: the kernel gives turns, in time slices of milliseconds; 16 children answering pipelined http requests stay runnable on the server's one CPU, and the probe's child waits for their slices",
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "oversize",
        reason: FORK_PER_ATTACKER,
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "resets",
        reason: FORK_PER_ATTACKER,
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "churn",
        reason: FORK_PER_ATTACKER,
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "slowloris",
        reason: FORKS_THEN_EXITS_IN_A_ROW,
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "slowloris-timeouts-off",
        reason: "a process per connection: the attack's connections are forks in a row on the server's one CPU, and the probe's own child waits its turn meanwhile; with the timeouts off the slow clients' children stay for the whole attack",
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "idle",
        reason: FORKS_THEN_EXITS_IN_A_ROW,
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "fd-exhaustion",
        reason: FORKS_THEN_EXITS_IN_A_ROW,
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "flood",
        reason: FORKS_THEN_EXITS_IN_A_ROW,
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "abandoned",
        reason: FORK_PER_ATTACKER,
        lesson: "servers/src/models/process_per_connection.rs",
    },
    Expected {
        model: "process-per-connection",
        scenario: "malformed",
        reason: FORK_PER_ATTACKER,
        lesson: "servers/src/models/process_per_connection.rs",
    },
];

/// The declared entry for a model and scenario, if any.
pub fn expected(model: &str, scenario: &str) -> Option<&'static Expected> {
    EXPECTED.iter().find(|e| e.model == model && e.scenario == scenario)
}

/// The table as `abuse.json` records it.
pub fn expected_docs() -> Vec<ExpectedDoc> {
    EXPECTED
        .iter()
        .map(|e| ExpectedDoc {
            model: e.model.into(),
            scenario: e.scenario.into(),
            reason: e.reason.into(),
            lesson: e.lesson.into(),
        })
        .collect()
}

/// The memory figure a bound applies to: PSS when the server had child processes, else RSS.
pub fn memory_kib(f: &Figures) -> u64 {
    match f.peak_pss_kib {
        Some(pss) if f.peak_processes > 1 => pss,
        _ => f.peak_rss_kib,
    }
}

/// The criteria a cell's figures miss, in words (empty: all met).
pub fn missed(f: &Figures, mem_bound_mib: u64, terminates: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !f.survived {
        out.push(if terminates {
            format!("did not exit 0 within the grace period ({})", f.exit)
        } else {
            format!("did not survive ({})", f.exit)
        });
    }
    let mem = memory_kib(f);
    if mem > mem_bound_mib * 1024 {
        out.push(format!("peak memory {:.1} MiB over the bound of {mem_bound_mib} MiB", mem as f64 / 1024.0));
    }
    if !terminates {
        match (&f.baseline, &f.during) {
            (Some(b), _) if b.error.is_some() || b.p99_ms.is_none() => {
                out.push(format!("baseline probe not clean: {}", b.error.as_deref().unwrap_or("no p99")));
            }
            (Some(b), Some(d)) => {
                let limit = P99_FACTOR * b.p99_ms.unwrap_or(0.0).max(P99_FLOOR_MS);
                if let Some(e) = &d.error {
                    out.push(format!("probe errors during the attack: {e}"));
                } else {
                    match d.p99_ms {
                        Some(p) if p <= limit => {}
                        Some(p) => out.push(format!("probe p99 {p:.2} ms over {limit:.2} ms")),
                        None => out.push("probe gave no p99 during the attack".into()),
                    }
                }
            }
            _ => out.push("no probe during the attack".into()),
        }
        match f.recovery_seconds {
            Some(s) if s <= RECOVERY_LIMIT_S => {}
            Some(s) => {
                out.push(format!("new client served {s:.2} s after the attack (limit {RECOVERY_LIMIT_S} s)"))
            }
            None => out.push("no new client served after the attack".into()),
        }
    }
    if f.lost > 0 || f.corrupted > 0 {
        out.push(format!("{} lost and {} corrupted replies", f.lost, f.corrupted));
    }
    if let Some(c) = &f.check_failed {
        out.push(c.clone());
    }
    out
}

/// Attempts a cell gets when it fails on the probe's p99 alone. A p99 of 500 probes is their
/// fifth-slowest, and on a shared VM a few milliseconds' stall of the host (`steal` in
/// /proc/stat, a few per cent of the time here) can alone put five probes over a limit of 2 ms:
/// one retry still failed cells that passed on the next run (idle and slowloris cells at
/// 2.1-2.6 ms against 2 ms). An effect of the attack repeats; a stall of the host does not.
pub const ATTEMPTS: usize = 3;

/// True when a cell fails on the probe's p99 alone (the one criterion a busy machine can
/// spoil by itself): the run gives such a cell up to [`ATTEMPTS`].
pub fn latency_only(cell: &Cell) -> bool {
    cell.verdict.kind == Kind::Fail
        && !cell.verdict.missed.is_empty()
        && cell.verdict.missed.iter().all(|m| m.starts_with("probe p99 "))
}

/// Scores a cell in place.
pub fn score(cell: &mut Cell, mem_bound_mib: u64, terminates: bool) {
    cell.verdict = if cell.declined.is_some() {
        Verdict { kind: Kind::NotApplicable, missed: vec![] }
    } else if let Some(why) = &cell.broken {
        Verdict { kind: Kind::Fail, missed: vec![format!("not measured: {why}")] }
    } else if let Some(f) = &cell.figures {
        let missed = missed(f, mem_bound_mib, terminates);
        let kind = if missed.is_empty() {
            Kind::Pass
        } else if expected(&cell.model, &cell.scenario).is_some() {
            Kind::Expected
        } else {
            Kind::Fail
        };
        Verdict { kind, missed }
    } else {
        Verdict { kind: Kind::Fail, missed: vec!["no figures".into()] }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abuse::{Probe, Verdict};

    fn good() -> Figures {
        Figures {
            survived: true,
            exit: "exit 0".into(),
            peak_rss_kib: 10 * 1024,
            baseline: Some(Probe { p99_ms: Some(0.3), replies: 100, error: None, unsent: 0 }),
            during: Some(Probe { p99_ms: Some(1.9), replies: 200, error: None, unsent: 0 }),
            recovery_seconds: Some(0.01),
            ..Figures::default()
        }
    }

    fn cell(model: &str, scenario: &str, f: Figures) -> Cell {
        Cell {
            model: model.into(),
            scenario: scenario.into(),
            proto: "echo-line".into(),
            server_args: vec![],
            figures: Some(f),
            declined: None,
            broken: None,
            verdict: Verdict { kind: Kind::Fail, missed: vec![] },
            stderr_tail: None,
            earlier_attempts: Vec::new(),
        }
    }

    #[test]
    fn a_healthy_cell_passes_with_the_floor_under_a_tiny_baseline() {
        // Baseline 0.3 ms: the limit is 2 × max(0.3, 1) = 2 ms, and 1.9 ms is within it.
        assert!(missed(&good(), 64, false).is_empty());
        let mut c = cell("reactor", "idle", good());
        score(&mut c, 64, false);
        assert_eq!(c.verdict.kind, Kind::Pass);
    }

    #[test]
    fn each_criterion_can_fail_a_cell() {
        type Spoil = Box<dyn Fn(&mut Figures)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (Box::new(|f| f.survived = false), "did not survive"),
            (Box::new(|f| f.peak_rss_kib = 65 * 1024), "over the bound of 64 MiB"),
            (Box::new(|f| f.during.as_mut().unwrap().p99_ms = Some(2.1)), "probe p99 2.10 ms over 2.00 ms"),
            (Box::new(|f| f.during.as_mut().unwrap().error = Some("timeouts 1".into())), "probe errors"),
            (
                Box::new(|f| f.baseline.as_mut().unwrap().error = Some("resets 1".into())),
                "baseline probe not clean",
            ),
            (Box::new(|f| f.recovery_seconds = Some(1.5)), "served 1.50 s after"),
            (Box::new(|f| f.recovery_seconds = None), "no new client served"),
            (Box::new(|f| f.lost = 1), "1 lost"),
            (Box::new(|f| f.corrupted = 2), "2 corrupted"),
            (Box::new(|f| f.check_failed = Some("still open".into())), "still open"),
        ];
        for (spoil, says) in cases {
            let mut f = good();
            spoil(&mut f);
            let mut c = cell("reactor", "idle", f);
            score(&mut c, 64, false);
            assert_eq!(c.verdict.kind, Kind::Fail, "{says}");
            assert!(c.verdict.missed.iter().any(|m| m.contains(says)), "{says}: {:?}", c.verdict.missed);
        }
    }

    #[test]
    fn a_slow_baseline_doubles_and_pss_counts_for_a_process_tree() {
        let mut f = good();
        f.baseline.as_mut().unwrap().p99_ms = Some(5.0);
        f.during.as_mut().unwrap().p99_ms = Some(9.9);
        assert!(missed(&f, 64, false).is_empty());
        // Ten processes sharing pages: RSS 200 MiB summed, PSS 30 MiB; the bound reads PSS.
        f.peak_processes = 10;
        f.peak_rss_kib = 200 * 1024;
        f.peak_pss_kib = Some(30 * 1024);
        assert!(missed(&f, 64, false).is_empty());
    }

    #[test]
    fn only_declared_cells_are_expected() {
        let mut bad = good();
        bad.recovery_seconds = Some(3.0);
        let mut declared = cell("blocking", "idle", bad.clone());
        score(&mut declared, 64, false);
        assert_eq!(declared.verdict.kind, Kind::Expected);
        let mut other = cell("reactor", "idle", bad);
        score(&mut other, 64, false);
        assert_eq!(other.verdict.kind, Kind::Fail);
        // A declared cell that meets everything is a pass.
        let mut fine = cell("blocking", "idle", good());
        score(&mut fine, 64, false);
        assert_eq!(fine.verdict.kind, Kind::Pass);
        for e in EXPECTED {
            assert!(!e.reason.is_empty() && e.lesson.starts_with("servers/src/models/"), "{}", e.model);
        }
    }

    #[test]
    fn sigterm_is_judged_on_its_exit_not_on_a_probe() {
        let mut f = good();
        f.during = None;
        f.recovery_seconds = None;
        assert!(missed(&f, 64, true).is_empty());
        f.survived = false;
        f.exit = "exit 1 0.10 s after SIGTERM".into();
        assert!(missed(&f, 64, true)[0].contains("did not exit 0 within the grace period"));
    }

    #[test]
    fn declined_and_broken_cells() {
        let mut c = cell("io-uring", "idle", good());
        c.declined = Some(crate::models::Unavailable {
            kind: crate::models::UnavailableKind::UnavailableHere,
            reason: "io-uring is unavailable here: x".into(),
        });
        score(&mut c, 64, false);
        assert_eq!(c.verdict.kind, Kind::NotApplicable);
        let mut b = cell("reactor", "idle", good());
        b.figures = None;
        b.broken = Some("server did not start".into());
        score(&mut b, 64, false);
        assert_eq!(b.verdict.kind, Kind::Fail);
    }
}
