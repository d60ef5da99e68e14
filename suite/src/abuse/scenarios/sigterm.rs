//! 12: SIGTERM in the middle of load. The server must stop accepting, let open connections
//! finish within `--grace`, and exit 0; every reply a client got must be whole.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use super::{Attack, AttackReport};
use crate::abuse::wire::{self, Got};

/// Eight clients loop request → checked reply; SIGTERM after 0.5 s; each client stops when
/// its connection ends.
pub fn sigterm(a: &Attack) -> AttackReport {
    let (req, want) = wire::hello(a.proto);
    (a.ready)();
    let mut total = AttackReport::default();
    let reports: Vec<AttackReport> = thread::scope(|scope| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut r = AttackReport::default();
                    let Ok(mut s) = wire::connect(a.addr, Duration::from_secs(3)) else {
                        r.count("connect_failed", 1);
                        return r;
                    };
                    while a.in_time() {
                        if s.write_all(&req).is_err() {
                            r.count("unanswered", 1);
                            break;
                        }
                        match wire::read_expected(&mut s, &want) {
                            Got::Intact => r.count("answered", 1),
                            Got::Corrupted => {
                                r.corrupted += 1;
                                break;
                            }
                            Got::Nothing | Got::TimedOut => {
                                r.count("unanswered", 1);
                                break;
                            }
                        }
                    }
                    r
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(500));
        let pid = a.server_pid as libc::pid_t;
        // The time is read before the signal: read after, it would start late whenever this
        // (idle-priority) thread waits for its CPU, and the server's exit would look faster.
        let sent = Instant::now();
        // SAFETY: kill(2) on the PID of the suite's own child server, which the harness has
        // not reaped (it waits for it only after this attack returns).
        if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
            total.terminated_at = Some(sent);
        } else {
            total.check_failed = Some("could not send SIGTERM".into());
        }
        hs.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    for r in reports {
        total.merge(r);
    }
    total
}
