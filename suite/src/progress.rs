//! Telling the person at the terminal where the run is: a progress bar with the point being run
//! and an ETA when stderr is a terminal, one plain line per repetition otherwise (CI logs).
//!
//! The bar counts *estimated milliseconds*, not repetitions, so a 10,000-connection point that
//! takes longer moves the bar further and the ETA stays honest.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The run's progress display.
pub struct Progress {
    bar: Option<ProgressBar>,
    index: usize,
    total: usize,
}

impl Progress {
    /// A display for `total` repetitions expected to take `estimate`.
    pub fn new(total: usize, estimate: Duration) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(estimate.as_millis() as u64),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            let style =
                ProgressStyle::with_template("[{elapsed_precise}] {wide_bar} {percent:>3}% ETA {eta} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress { bar, index: 0, total }
    }

    /// A repetition starts.
    pub fn start(&mut self, label: &str) {
        self.index += 1;
        let line = format!("[{}/{}] {label}", self.index, self.total);
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => eprintln!("suite: {line} ..."),
        }
    }

    /// The repetition that started last has finished; `estimate` is what it was expected to
    /// take, `outcome` one line about it.
    pub fn finish(&mut self, estimate: Duration, outcome: &str) {
        let line = format!("[{}/{}] {outcome}", self.index, self.total);
        match &self.bar {
            Some(bar) => {
                bar.inc(estimate.as_millis() as u64);
                bar.println(line);
            }
            None => eprintln!("suite: {line}"),
        }
    }

    /// `reps` repetitions expected to take `estimate` in all will not run (their point cannot):
    /// the count and the bar move past them.
    pub fn skip(&mut self, reps: usize, estimate: Duration) {
        self.index += reps;
        if let Some(bar) = &self.bar {
            bar.inc(estimate.as_millis() as u64);
        }
    }

    /// A message that is not about one repetition.
    pub fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("suite: {text}"),
        }
    }

    /// Removes the bar.
    pub fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
