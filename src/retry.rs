//! The one retry policy of pipeline-cli: exponential backoff bounded by a
//! total duration (`--retry-for`) and, optionally, a number of retries
//! (`--max-retries`). The Elasticsearch source, the MySQL sink and the
//! Pushgateway all retry through one loop, [`Retrier`], waiting with a
//! [`Backoff`], so a server restart of a few minutes is ridden out
//! everywhere in the same way.

use std::time::{Duration, Instant};

/// First wait; each later wait doubles, up to [`MAX_DELAY`]. Each wait is
/// then drawn between half of it and all of it ([`jittered`]), so that the
/// processes of a sliced read that lost their server together do not all
/// come back at the same instant.
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
    /// `--start-retry-for`: how long a server never reached yet is retried
    /// (no longer than `retry_for`), see [`RetryPolicy::starting`].
    pub at_start: Duration,
}

impl RetryPolicy {
    /// Starts counting for one request or batch.
    pub fn start(self) -> Backoff {
        Backoff {
            policy: self,
            first_failure: None,
            attempt: 0,
            flag: "--retry-for",
        }
    }

    /// A retry loop for a server that has not answered yet: a server that
    /// is not there when the run starts fails it after `at_start`, while
    /// one lost mid-run is waited for all of `retry_for`.
    pub fn starting(self) -> Retrier<'static> {
        let mut retrier = RetryPolicy {
            retry_for: self.retry_for.min(self.at_start),
            ..self
        }
        .retrier();
        if self.at_start < self.retry_for {
            retrier.backoff.flag = "--start-retry-for";
        }
        retrier
    }
}

/// The retry state of one request or batch.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    /// Set at the first failure: the budget runs from there.
    first_failure: Option<Instant>,
    attempt: u32,
    /// The flag that bounds it, for messages.
    flag: &'static str,
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
            None => jittered(exp.min(MAX_DELAY)),
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
                "gave up after {} retries in {spent:.1}s, {} {}",
                self.attempt,
                self.flag,
                format_duration(self.policy.retry_for)
            ),
        }
    }
}

/// A failed attempt, as the retry loop sees it.
#[derive(Debug)]
pub struct Failure<E> {
    /// What went wrong; handed back when the loop gives up.
    pub error: E,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// A wait the server asked for (`Retry-After`).
    pub hint: Option<Duration>,
}

impl<E> Failure<E> {
    /// A passing failure: worth another attempt.
    pub fn passing(error: E) -> Failure<E> {
        Failure {
            error,
            retryable: true,
            hint: None,
        }
    }

    /// A failure no retry can mend.
    pub fn fatal(error: E) -> Failure<E> {
        Failure {
            error,
            retryable: false,
            hint: None,
        }
    }
}

/// Why the loop stopped trying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The last failure was not retryable.
    Final,
    /// The run is stopping: the failure was not retried.
    Stopping,
    /// The budget is spent (`--retry-for`, `--max-retries`, a deadline):
    /// the backoff's own account of it.
    Exhausted(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Final => f.write_str("not retryable"),
            Reason::Stopping => f.write_str("not retried: the run is stopping"),
            Reason::Exhausted(why) => f.write_str(why),
        }
    }
}

/// The last failure, once the loop has given up.
#[derive(Debug)]
pub struct GaveUp<E> {
    /// The last attempt's error.
    pub error: E,
    /// Why there is no further attempt.
    pub reason: Reason,
    /// The backoff's retry count when it gave up.
    pub retries: u32,
}

/// A retry callback: the failure about to be retried, the retry's number
/// (`2/5`, or `2` without a cap, for the log line), and the wait before it.
/// This is where retries are logged and counted in the metrics.
pub trait OnRetry<E>: FnMut(&E, &str, Duration) {}
impl<E, F: FnMut(&E, &str, Duration)> OnRetry<E> for F {}

fn never() -> bool {
    false
}

/// The one retry loop: tries, asks the failure whether it is retryable,
/// waits with the [`Backoff`] (within a deadline, if one is set), gives up
/// when the run is stopping, and reports each retry to a callback. Made by
/// [`RetryPolicy::retrier`]; [`Retrier::run`] waits by sleeping the thread,
/// [`Retrier::run_async`] inside the runtime.
pub struct Retrier<'a> {
    backoff: Backoff,
    stopping: &'a (dyn Fn() -> bool + Sync),
    deadline: Option<Instant>,
}

impl RetryPolicy {
    /// A retry loop with this policy.
    pub fn retrier(self) -> Retrier<'static> {
        Retrier {
            backoff: self.start(),
            stopping: &never,
            deadline: None,
        }
    }
}

impl<'a> Retrier<'a> {
    /// No retry once `stopping` says the run is stopping.
    pub fn until<'b>(self, stopping: &'b (dyn Fn() -> bool + Sync)) -> Retrier<'b> {
        Retrier {
            backoff: self.backoff,
            stopping,
            deadline: self.deadline,
        }
    }

    /// No retry whose wait would end at or after `deadline`.
    pub fn within(mut self, deadline: Instant) -> Retrier<'a> {
        self.deadline = Some(deadline);
        self
    }

    /// Calls `attempt` until it succeeds or the loop gives up, sleeping the
    /// thread between attempts; `on_retry` hears of each retry first.
    pub fn run<T, E>(
        mut self,
        mut attempt: impl FnMut() -> Result<T, Failure<E>>,
        mut on_retry: impl OnRetry<E>,
    ) -> Result<T, GaveUp<E>> {
        loop {
            let failure = match attempt() {
                Ok(done) => return Ok(done),
                Err(f) => f,
            };
            let (error, delay) = self.after(failure)?;
            on_retry(&error, &self.backoff.progress(), delay);
            std::thread::sleep(delay);
        }
    }

    /// [`Retrier::run`] for an async `attempt`, waiting inside the runtime.
    pub async fn run_async<T, E, F>(
        mut self,
        mut attempt: impl FnMut() -> F,
        mut on_retry: impl OnRetry<E>,
    ) -> Result<T, GaveUp<E>>
    where
        F: std::future::Future<Output = Result<T, Failure<E>>>,
    {
        loop {
            let failure = match attempt().await {
                Ok(done) => return Ok(done),
                Err(f) => f,
            };
            let (error, delay) = self.after(failure)?;
            on_retry(&error, &self.backoff.progress(), delay);
            tokio::time::sleep(delay).await;
        }
    }

    /// After a failure: the wait before the next attempt, or why there is
    /// none.
    fn after<E>(&mut self, failure: Failure<E>) -> Result<(E, Duration), GaveUp<E>> {
        let reason = if !failure.retryable {
            Reason::Final
        } else if (self.stopping)() {
            Reason::Stopping
        } else {
            let delay = self.backoff.next_delay(failure.hint).filter(|d| {
                self.deadline
                    .is_none_or(|deadline| Instant::now() + *d < deadline)
            });
            match delay {
                Some(delay) => return Ok((failure.error, delay)),
                None => Reason::Exhausted(self.backoff.exhausted()),
            }
        };
        Err(GaveUp {
            error: failure.error,
            reason,
            retries: self.backoff.attempt(),
        })
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `2d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("'{text}' is not a duration like 500ms, 30s, 1m30s, 5m or 1.5h");
    // A bare number is seconds.
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = t.parse().map_err(|_| bad())?;
        return Ok(Duration::from_secs(n));
    }
    // Otherwise one or more numbers with a unit each, largest first
    // (`1h30m`, `2m30s500ms`), a number may have a fraction (`1.5h`).
    if t.is_empty() {
        return Err(bad());
    }
    let mut rest = t;
    let mut total = 0f64;
    let mut last_unit = f64::INFINITY;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, after) = rest.split_at(num_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let n: f64 = match num.parse() {
            Ok(n) if !num.starts_with('.') && !num.ends_with('.') => n,
            _ => return Err(bad()),
        };
        let ms = match unit {
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3_600e3,
            "d" => 86_400e3,
            _ => return Err(bad()),
        };
        if ms >= last_unit {
            return Err(bad());
        }
        last_unit = ms;
        total += n * ms;
        rest = next;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_micros((total * 1000.0).round() as u64))
}

/// A wait for a log line, rounded: `250ms`, `1.3s`, `10s`.
pub fn format_wait(d: Duration) -> String {
    match d.as_millis() {
        ms if ms < 1000 => format!("{ms}ms"),
        ms if ms < 10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}s", d.as_secs_f64().round()),
    }
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

/// A wait between half of `d` and `d`, drawn at random (each process's hash
/// keys are random, and the clock differs between calls).
fn jittered(d: Duration) -> Duration {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let half = d / 2;
    let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
    half + Duration::from_micros(random % span.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_spread_between_half_and_all_of_the_backoff() {
        let waits: Vec<Duration> = (0..200).map(|_| jittered(Duration::from_secs(8))).collect();
        assert!(waits
            .iter()
            .all(|w| (Duration::from_secs(4)..=Duration::from_secs(8)).contains(w)));
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(
            distinct.len() > 150,
            "{} distinct waits of 200",
            distinct.len()
        );
        let low = waits
            .iter()
            .filter(|w| **w < Duration::from_secs(6))
            .count();
        assert!((40..160).contains(&low), "{low} of 200 in the lower half");
    }

    /// A server not reached yet is retried for the shorter of the two
    /// bounds, and the message names the one that ended it.
    #[test]
    fn a_server_not_reached_yet_is_given_up_at_the_start_bound() {
        let fail = || Err::<(), _>(Failure::passing("refused"));
        let policy = RetryPolicy {
            retry_for: Duration::from_secs(3600),
            max_retries: None,
            at_start: Duration::from_millis(300),
        };
        let started = Instant::now();
        let gave_up = policy
            .starting()
            .run(fail, |_: &&str, _: &str, _| {})
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        match gave_up.reason {
            Reason::Exhausted(why) => assert!(why.contains("--start-retry-for 300ms"), "{why}"),
            other => panic!("{other:?}"),
        }
        // --retry-for shorter: it bounds the start too, and is named.
        let policy = RetryPolicy {
            retry_for: Duration::from_millis(200),
            at_start: Duration::from_secs(30),
            ..policy
        };
        match policy
            .starting()
            .run(fail, |_: &&str, _: &str, _| {})
            .unwrap_err()
            .reason
        {
            Reason::Exhausted(why) => assert!(why.contains("--retry-for 200ms"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn doubles_up_to_the_cap_and_honours_the_server() {
        let mut b = RetryPolicy {
            retry_for: Duration::from_secs(3600),
            max_retries: None,
            at_start: Duration::from_secs(30),
        }
        .start();
        let waits: Vec<_> = (0..9).map(|_| b.next_delay(None).unwrap()).collect();
        let within = |w: Duration, full: Duration| (full / 2..=full).contains(&w);
        assert!(within(waits[0], Duration::from_millis(100)), "{waits:?}");
        assert!(within(waits[1], Duration::from_millis(200)), "{waits:?}");
        assert!(within(waits[7], Duration::from_secs(10)), "{waits:?}");
        assert!(within(waits[8], Duration::from_secs(10)), "{waits:?}");
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
            at_start: Duration::from_secs(30),
        }
        .start();
        assert!(b.next_delay(None).is_some());
        assert!(b.next_delay(None).is_some());
        assert_eq!(b.next_delay(None), None);
        assert!(b.exhausted().contains("2 retries, --max-retries"));

        let mut b = RetryPolicy {
            retry_for: Duration::from_millis(250),
            max_retries: None,
            at_start: Duration::from_secs(30),
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
    fn the_loop_retries_passing_failures_and_hands_back_the_last() {
        let policy = RetryPolicy {
            retry_for: Duration::from_secs(60),
            max_retries: Some(2),
            at_start: Duration::from_secs(30),
        };
        let mut tries = 0;
        let mut heard = Vec::new();
        let gave = policy
            .retrier()
            .run(
                || -> Result<(), _> {
                    tries += 1;
                    Err(Failure::passing(tries))
                },
                |e: &i32, progress: &str, _| heard.push(format!("{e} {progress}")),
            )
            .unwrap_err();
        assert_eq!(tries, 3);
        assert_eq!(heard, ["1 1/2", "2 2/2"]);
        assert_eq!((gave.error, gave.retries), (3, 2));
        assert!(matches!(gave.reason, Reason::Exhausted(ref w) if w.contains("--max-retries")));

        let mut tries = 0;
        let done = policy.retrier().run(
            || {
                tries += 1;
                if tries < 2 {
                    Err(Failure::passing("down"))
                } else {
                    Ok(tries)
                }
            },
            |_: &&str, _: &str, _| {},
        );
        assert_eq!(done.unwrap(), 2);
    }

    #[test]
    fn the_loop_stops_at_a_final_failure_a_stop_or_a_deadline() {
        let policy = RetryPolicy {
            retry_for: Duration::from_secs(60),
            max_retries: None,
            at_start: Duration::from_secs(30),
        };
        let no_retry = |_: &&str, _: &str, _| panic!("retried");
        let gave = policy
            .retrier()
            .run(
                || -> Result<(), _> { Err(Failure::fatal("refused")) },
                no_retry,
            )
            .unwrap_err();
        assert_eq!((gave.reason, gave.retries), (Reason::Final, 0));
        let stopping = || true;
        let gave = policy
            .retrier()
            .until(&stopping)
            .run(
                || -> Result<(), _> { Err(Failure::passing("down")) },
                no_retry,
            )
            .unwrap_err();
        assert_eq!(gave.reason, Reason::Stopping);
        assert_eq!(gave.reason.to_string(), "not retried: the run is stopping");
        let gave = policy
            .retrier()
            .within(Instant::now() + Duration::from_millis(50))
            .run(
                || -> Result<(), _> { Err(Failure::passing("down")) },
                no_retry,
            )
            .unwrap_err();
        // The wait that would pass the deadline is counted, not made.
        assert_eq!(gave.retries, 1);
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
        // Compound and fractional forms, largest unit first.
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("2m30s500ms"),
            Ok(Duration::from_millis(150_500))
        );
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0.25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
        for bad in [
            "30s1m", "1m1m", "1.s", ".5s", "1..5s", "s", "1x", "1m30", "-1s", "1 m", "ms",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("1m30s"), "{bad}: {e}");
        }
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_wait(Duration::from_micros(881_011)), "881ms");
        assert_eq!(format_wait(Duration::from_millis(1_349)), "1.3s");
        assert_eq!(format_wait(Duration::from_millis(9_990)), "10.0s");
        assert_eq!(format_wait(Duration::from_millis(12_600)), "13s");
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
    }
}
