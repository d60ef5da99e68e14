//! What one worker thread counted and recorded; merged across threads at the end.

use std::time::Duration;

use hdrhistogram::Histogram;

use std::sync::Arc;

use super::histogram::latency_histogram;
use crate::live::LiveWindow;
use crate::report::{Connects, Counts};

/// Counts plus latency histograms for one thread (or, after merging, the whole run).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Requests, errors and the rest, see [`Counts`].
    pub counts: Counts,
    /// Service time: from the moment a request was written to the last byte of its reply.
    pub service: Histogram<u64>,
    /// Open loop only: from the moment a request was *due* to the last byte of its reply.
    pub corrected: Option<Histogram<u64>>,
    /// The first connection failure seen, in words, for the summary.
    pub first_error: Option<String>,
    /// Measured-phase time spent spinning for a near deadline instead of sleeping (see
    /// `engine::waiter`): CPU used, but not work.
    pub spun: Duration,
    /// `--conn-per-request`: connections opened and connects failed, by cause (see
    /// `engine::churn`); all zero otherwise.
    pub connects: Connects,
    /// `--live`: where every reply and error is also counted for the once-a-second line.
    pub live: Option<Arc<LiveWindow>>,
}

impl Tally {
    /// An empty tally; `open_loop` decides whether a corrected histogram is kept.
    pub fn new(open_loop: bool) -> Self {
        Tally {
            counts: Counts::default(),
            service: latency_histogram(),
            corrected: open_loop.then(latency_histogram),
            first_error: None,
            spun: Duration::ZERO,
            connects: Connects::default(),
            live: None,
        }
    }

    /// Counts one reply. Replies to warm-up requests are only counted, never recorded.
    #[inline]
    pub fn record(
        &mut self,
        measured: bool,
        due_ns: u64,
        sent_ns: u64,
        done_ns: u64,
        matches: bool,
        verify: bool,
    ) {
        if let Some(live) = &self.live {
            // Open loop counts from the due time, as the report's headline does.
            let from = if self.corrected.is_some() { due_ns } else { sent_ns };
            live.record(done_ns.saturating_sub(from));
            if !matches {
                live.error();
            }
        }
        if !measured {
            self.counts.warmup_requests += 1;
            return;
        }
        self.counts.requests += 1;
        if !matches {
            self.counts.mismatches += 1;
        }
        if verify {
            self.service.saturating_record(done_ns.saturating_sub(sent_ns));
            if let Some(corrected) = &mut self.corrected {
                corrected.saturating_record(done_ns.saturating_sub(due_ns));
            }
        }
    }

    /// Keeps the first failure's description; later ones only count.
    pub fn note_error(&mut self, text: impl FnOnce() -> String) {
        if let Some(live) = &self.live {
            live.error();
        }
        if self.first_error.is_none() {
            self.first_error = Some(text());
        }
    }

    /// Adds another thread's tally into this one.
    pub fn merge(&mut self, other: Tally) {
        self.counts.add(&other.counts);
        self.connects.add(&other.connects);
        self.spun += other.spun;
        // Every histogram is made by `latency_histogram`, with the same bounds, so adding can
        // never run out of range; a failure here would be a bug in this file, not in the input.
        let added = self.service.add(&other.service);
        debug_assert!(added.is_ok(), "histograms share their bounds");
        if let (Some(mine), Some(theirs)) = (&mut self.corrected, &other.corrected) {
            let added = mine.add(theirs);
            debug_assert!(added.is_ok(), "histograms share their bounds");
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}
