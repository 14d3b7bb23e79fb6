//! The progress bar on stderr, only on a terminal and never with `--quiet`
//! or JSON logs. With a known total (a file's size in bytes, or the number
//! of documents an Elasticsearch count gives) it shows the bar, the %, and
//! the time left; without one (a pipe, compressed input) a spinner with the
//! counts and the rate, and no made-up %. Both show the failed records.
//!
//! Log lines go through [`StderrAboveBar`]: the bar is cleared before a
//! line is written and drawn again under it, so no line ends up glued to a
//! half-drawn bar.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::RwLock;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar on screen now, if any: log lines clear it before they are
/// written.
static SHOWN: RwLock<Option<(u64, ProgressBar)>> = RwLock::new(None);

/// Tells bars apart in [`SHOWN`].
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// What the bar counts up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// Unknown (a pipe, compressed input): a spinner, no % and no time left.
    Unknown = 0,
    /// The input's size in bytes.
    Bytes = 1,
    /// The number of records to read.
    Records = 2,
}

impl Total {
    fn from_u8(v: u8) -> Total {
        match v {
            1 => Total::Bytes,
            2 => Total::Records,
            _ => Total::Unknown,
        }
    }
}

/// The bar's template for `total`: a %, a bar and the time left only when
/// the total is known.
pub fn template(total: Total) -> &'static str {
    match total {
        Total::Unknown => "{prefix}{spinner} {elapsed_precise} {msg}",
        Total::Bytes => {
            "{prefix}{spinner} {elapsed_precise} {wide_bar} {percent:>3}% of {binary_total_bytes}, {eta} left, {msg}"
        }
        Total::Records => {
            "{prefix}{spinner} {elapsed_precise} {wide_bar} {percent:>3}% of {human_len}, {eta} left, {msg}"
        }
    }
}

fn style(total: Total) -> ProgressStyle {
    ProgressStyle::with_template(template(total))
        .expect("valid template")
        .progress_chars("=> ")
}

/// The counts after the bar: records read (but for a bar that counts
/// them), failed records, and the rate in records per second.
pub fn message(total: Total, records: u64, failed: u64, secs: f64) -> String {
    let rate = records as f64 / secs.max(1e-3);
    match total {
        Total::Records => format!("{failed} failed, {rate:.0}/s"),
        _ => format!("{records} read, {failed} failed, {rate:.0}/s"),
    }
}

/// A progress bar on stderr (only on a terminal, and never with --quiet).
pub struct Progress {
    bar: ProgressBar,
    /// Its number in [`SHOWN`].
    id: u64,
    /// For the records/s rate.
    started: Instant,
    /// A [`Total`].
    total: AtomicU8,
}

impl Progress {
    /// A spinner until told the total; `label` goes before it (`""` for the
    /// run itself). It is the bar log lines clear until [`Progress::finish`].
    pub fn new(label: &str) -> Progress {
        // Styled before it is first drawn (`with_*` does not draw).
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4))
            .with_style(style(Total::Unknown))
            .with_prefix(label.to_string());
        let p = Progress {
            bar,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            started: Instant::now(),
            total: AtomicU8::new(Total::Unknown as u8),
        };
        *SHOWN.write().unwrap_or_else(|e| e.into_inner()) = Some((p.id, p.bar.clone()));
        p
    }

    fn restyle(&self, total: Total) {
        self.bar.set_style(style(total));
        self.total.store(total as u8, Ordering::Relaxed);
    }

    /// Moves the bar: `bytes` and `records` read so far, `failed` records.
    pub fn update(&self, bytes: u64, records: u64, failed: u64) {
        let total = Total::from_u8(self.total.load(Ordering::Relaxed));
        let secs = self.started.elapsed().as_secs_f64();
        match total {
            Total::Records => self.bar.set_position(records),
            _ => self.bar.set_position(bytes),
        }
        self.bar.set_message(message(total, records, failed, secs));
    }

    /// The input's size in bytes: the bar shows the % and the time left.
    pub fn total_bytes(&self, total: u64) {
        if Total::from_u8(self.total.load(Ordering::Relaxed)) != Total::Records {
            self.bar.set_length(total);
            self.restyle(Total::Bytes);
        }
    }

    /// The number of records to read: the bar then counts records.
    pub fn total_records(&self, total: u64) {
        self.bar.set_length(total);
        self.restyle(Total::Records);
    }

    /// Clears the bar; log lines no longer wait for it.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        let mut shown = SHOWN.write().unwrap_or_else(|e| e.into_inner());
        if shown.as_ref().is_some_and(|(id, _)| *id == self.id) {
            *shown = None;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Runs `write` (something written to stderr) with the bar on screen, if
/// any, cleared first and drawn again after it.
pub fn above_bar<R>(write: impl FnOnce() -> R) -> R {
    let shown = SHOWN.read().unwrap_or_else(|e| e.into_inner()).clone();
    match shown {
        Some((_, bar)) => bar.suspend(write),
        None => write(),
    }
}

/// Standard error for log lines: each line clears the progress bar first.
pub struct StderrAboveBar;

impl Write for StderrAboveBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        above_bar(|| std::io::stderr().lock().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        above_bar(|| std::io::stderr().lock().write_all(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_total_shows_the_percent_and_the_time_left() {
        for total in [Total::Bytes, Total::Records] {
            let t = template(total);
            assert!(t.contains("{percent"), "{t}");
            assert!(t.contains("{eta} left"), "{t}");
            assert!(t.contains("{wide_bar}"), "{t}");
            ProgressStyle::with_template(t).expect("a valid template");
        }
    }

    #[test]
    fn no_total_is_a_spinner_with_counts_and_rate_only() {
        let t = template(Total::Unknown);
        for fake in ["percent", "bar", "eta", "len", "total"] {
            assert!(!t.contains(fake), "{fake} in {t}");
        }
        assert!(t.contains("{spinner}") && t.contains("{msg}"), "{t}");
        ProgressStyle::with_template(t).expect("a valid template");
        assert_eq!(
            message(Total::Unknown, 5000, 3, 2.0),
            "5000 read, 3 failed, 2500/s"
        );
    }

    #[test]
    fn the_failed_count_is_shown_however_the_bar_counts() {
        assert_eq!(message(Total::Records, 100, 7, 1.0), "7 failed, 100/s");
        assert!(message(Total::Bytes, 100, 7, 1.0).contains("7 failed"));
    }

    #[test]
    fn a_line_written_above_the_bar_is_written_once() {
        let mut n = 0;
        above_bar(|| n += 1);
        let p = Progress::new("");
        above_bar(|| n += 1);
        p.finish();
        above_bar(|| n += 1);
        assert_eq!(n, 3);
        assert!(
            SHOWN.read().unwrap().is_none(),
            "a finished bar is still shown"
        );
    }
}
