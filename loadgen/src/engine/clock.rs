//! One time base for all threads: nanoseconds since the run started.
//!
//! `Instant` is monotonic, so a wall-clock jump cannot produce negative latencies; reducing it
//! to a `u64` of nanoseconds makes timestamps cheap to store in every in-flight request.

use std::time::Instant;

/// Shared origin of the run's timestamps; `Copy`, so each thread holds its own.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// Starts the clock at zero now.
    pub fn start() -> Self {
        Clock { origin: Instant::now() }
    }

    /// The instant that corresponds to zero.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Nanoseconds since the origin (saturating far beyond any run's length).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
