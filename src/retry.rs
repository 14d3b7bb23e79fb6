//! The one retry policy of pipeline-cli: exponential backoff bounded by a
//! total duration (`--retry-for`) and, optionally, a number of retries
//! (`--max-retries`). The Elasticsearch source, the MySQL sink and the
//! Pushgateway all wait through a [`Backoff`], so a server restart of a few
//! minutes is ridden out everywhere in the same way.

use std::time::{Duration, Instant};

/// First wait; each later wait doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Longest wait between two attempts (unless the server asks for longer).
const MAX_DELAY: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured.
const MAX_SERVER_DELAY: Duration = Duration::from_secs(60);

/// How long and how often a failed request may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total time, from the first failure, during which retries are made.
    pub retry_for: Duration,
    /// At most this many retries, when set.
    pub max_retries: Option<u32>,
}

impl RetryPolicy {
    /// Starts counting for one request or batch.
    pub fn start(self) -> Backoff {
        Backoff {
            policy: self,
            first_failure: None,
            attempt: 0,
        }
    }
}

/// The retry state of one request or batch.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    /// Set at the first failure: the budget runs from there.
    first_failure: Option<Instant>,
    attempt: u32,
}

impl Backoff {
    /// After a failure: how long to wait before retrying, or `None` when the
    /// budget is spent. `server_hint` is a `Retry-After` the server sent.
    pub fn next_delay(&mut self, server_hint: Option<Duration>) -> Option<Duration> {
        let first = *self.first_failure.get_or_insert_with(Instant::now);
        if self.policy.max_retries.is_some_and(|m| self.attempt >= m) {
            return None;
        }
        let exp = FIRST_DELAY.saturating_mul(1u32 << self.attempt.min(16));
        let delay = match server_hint {
            Some(h) => h.min(MAX_SERVER_DELAY),
            None => exp.min(MAX_DELAY),
        };
        let spent = first.elapsed();
        if spent + delay > self.policy.retry_for {
            // One last, shorter wait when some budget is left.
            let left = self.policy.retry_for.saturating_sub(spent);
            if left < FIRST_DELAY {
                return None;
            }
            self.attempt += 1;
            return Some(left);
        }
        self.attempt += 1;
        Some(delay)
    }

    /// Retries made so far.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// `1/5` or `3` (no cap): for "retry N" log lines.
    pub fn progress(&self) -> String {
        match self.policy.max_retries {
            Some(m) => format!("{}/{m}", self.attempt),
            None => self.attempt.to_string(),
        }
    }

    /// Why retrying stopped, for the final error message.
    pub fn exhausted(&self) -> String {
        let spent = self
            .first_failure
            .map(|t| t.elapsed())
            .unwrap_or_default()
            .as_secs_f64();
        match self.policy.max_retries {
            Some(m) if self.attempt >= m => {
                format!("gave up after {m} retries, --max-retries")
            }
            _ => format!(
                "gave up after {} retries in {spent:.1}s, --retry-for {}",
                self.attempt,
                format_duration(self.policy.retry_for)
            ),
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `2d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("'{text}' is not a duration like 500ms, 30s, 5m or 1h");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        _ => return Err(bad()),
    };
    Ok(Duration::from_millis(ms))
}

/// A duration the way the flags are written (`90s`, `5m`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parses a byte size: `1048576`, `64KiB`, `64MiB`, `1GiB` (also `K`, `M`,
/// `G`, `KB`, `MB`, `GB`, all powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("'{text}' is not a size like 1048576, 512KiB or 64MiB");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_honours_the_server() {
        let mut b = RetryPolicy {
            retry_for: Duration::from_secs(3600),
            max_retries: None,
        }
        .start();
        let waits: Vec<_> = (0..9).map(|_| b.next_delay(None).unwrap()).collect();
        assert_eq!(waits[0], Duration::from_millis(100));
        assert_eq!(waits[1], Duration::from_millis(200));
        assert_eq!(waits[7], Duration::from_secs(10));
        assert_eq!(waits[8], Duration::from_secs(10));
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(7))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(600))),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn stops_at_the_count_or_the_duration() {
        let mut b = RetryPolicy {
            retry_for: Duration::from_secs(3600),
            max_retries: Some(2),
        }
        .start();
        assert!(b.next_delay(None).is_some());
        assert!(b.next_delay(None).is_some());
        assert_eq!(b.next_delay(None), None);
        assert!(b.exhausted().contains("2 retries, --max-retries"));

        let mut b = RetryPolicy {
            retry_for: Duration::from_millis(250),
            max_retries: None,
        }
        .start();
        let total: Duration = std::iter::from_fn(|| b.next_delay(None))
            .inspect(|d| std::thread::sleep(*d))
            .sum();
        assert!(total <= Duration::from_millis(300), "{total:?}");
        assert!(
            b.exhausted().contains("--retry-for 250ms"),
            "{}",
            b.exhausted()
        );
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
    }
}
