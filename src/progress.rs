//! The progress bar on stderr: bytes (or records, when the source knows how
//! many there are), %, records/s. Only on a terminal, never with `--quiet`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr (only on a terminal, and never with --quiet).
pub struct Progress {
    bar: ProgressBar,
    /// For the records/s rate.
    started: Instant,
    /// The total is a number of records (a document count), not bytes.
    by_records: AtomicBool,
}

impl Progress {
    /// A bar counting bytes until told the total number of records.
    pub fn new() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg}",
            )
            .expect("valid template"),
        );
        Progress {
            bar,
            started: Instant::now(),
            by_records: AtomicBool::new(false),
        }
    }

    /// Moves the bar.
    pub fn update(&self, bytes: u64, records: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = records as f64 / secs;
        if self.by_records.load(Ordering::Relaxed) {
            self.bar.set_position(records);
            self.bar.set_message(format!("{rate:.0} records/s"));
        } else {
            self.bar.set_position(bytes);
            self.bar
                .set_message(format!("{records} records, {rate:.0} records/s"));
        }
    }

    /// The input's size in bytes, for the %.
    pub fn total_bytes(&self, total: u64) {
        self.bar.set_length(total);
    }

    /// The number of records to read: the bar then counts records.
    pub fn total_records(&self, total: u64) {
        self.bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {human_pos}/{human_len} records {msg}",
            )
            .expect("valid template"),
        );
        self.bar.set_length(total);
        self.by_records.store(true, Ordering::Relaxed);
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}
