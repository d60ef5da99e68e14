//! The open-loop timetable: when every request is *due*, fixed before the run starts.
//!
//! Request slots are numbered globally, `n = 0, 1, 2, …`, one every `1/rate` seconds, and dealt
//! round-robin to connections: connection `c` of `C` owns slots `c, c + C, c + 2C, …`. The
//! schedule never waits for the server. If a reply is late, the next request of that connection
//! leaves late, but its latency still counts from its due time: that is what lets a stall show in
//! the percentiles instead of hiding behind the requests that were never sent (the "coordinated
//! omission" that wrk2 corrects).

/// Due times for an open-loop run.
#[derive(Debug, Clone, Copy)]
pub struct Timetable {
    period_ns: f64,
    conns: u64,
}

impl Timetable {
    /// `rate` requests per second over `conns` connections.
    pub fn new(rate: f64, conns: usize) -> Self {
        Timetable { period_ns: 1e9 / rate, conns: conns as u64 }
    }

    /// When connection `conn`'s `slot`-th request is due, in clock nanoseconds.
    pub fn due_ns(&self, conn: u64, slot: u64) -> u64 {
        let n = slot.saturating_mul(self.conns).saturating_add(conn);
        // f64 holds whole nanoseconds exactly for over 100 days; the cast saturates beyond.
        (n as f64 * self.period_ns) as u64
    }

    /// How many of connection `conn`'s slots from `first_slot` on are due in `[from_ns, to_ns)`:
    /// the requests it should have sent there but did not. Constant time, so a connection that
    /// fell millions of slots behind is counted as quickly as one that kept up.
    pub fn count_due(&self, conn: u64, first_slot: u64, from_ns: u64, to_ns: u64) -> u64 {
        let begin = self.first_slot_due_at_or_after(conn, from_ns).max(first_slot);
        let end = self.first_slot_due_at_or_after(conn, to_ns);
        end.saturating_sub(begin)
    }

    /// The first slot of `conn` that is due at or after `t_ns`.
    fn first_slot_due_at_or_after(&self, conn: u64, t_ns: u64) -> u64 {
        // Estimate with floating point, then settle the rounding exactly against `due_ns`,
        // which is the definition the engine uses.
        let estimate = ((t_ns as f64 / self.period_ns - conn as f64) / self.conns as f64).ceil();
        let mut slot = if estimate > 0.0 { estimate as u64 } else { 0 };
        while slot > 0 && self.due_ns(conn, slot - 1) >= t_ns {
            slot -= 1;
        }
        while self.due_ns(conn, slot) < t_ns {
            slot += 1;
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_interleave_connections_at_the_requested_rate() {
        let t = Timetable::new(1000.0, 4);
        let due: Vec<u64> = (0..4).map(|c| t.due_ns(c, 0)).collect();
        assert_eq!(due, [0, 1_000_000, 2_000_000, 3_000_000]);
        assert_eq!(t.due_ns(1, 1), 5_000_000);
    }

    #[test]
    fn a_whole_number_of_seconds_holds_exactly_rate_times_duration_slots() {
        let t = Timetable::new(1000.0, 3);
        let total: u64 = (0..3).map(|c| t.count_due(c, 0, 500_000_000, 2_500_000_000)).sum();
        assert_eq!(total, 2000);
    }

    #[test]
    fn counting_agrees_with_the_definition_slot_by_slot() {
        for (rate, conns) in [(3.0, 1), (1234.5, 7), (99_999.0, 64)] {
            let t = Timetable::new(rate, conns);
            for conn in [0, conns as u64 - 1] {
                let (from, to) = (123_456_789, 987_654_321);
                let slow = (0..200_000u64)
                    .map(|slot| t.due_ns(conn, slot))
                    .filter(|due| (from..to).contains(due))
                    .count() as u64;
                assert_eq!(t.count_due(conn, 0, from, to), slow, "rate {rate} conn {conn}");
            }
        }
    }
}
