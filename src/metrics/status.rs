//! The run as it is now, for people: `/status` (JSON, documented in
//! METRICS.md), `/health`, and the numbers of the live page at `/`. Read
//! from the same counters the Prometheus text is, at request time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use prometheus::core::Metric as _;
use prometheus::Histogram;
use serde_json::{json, Map, Value as Json};

use super::{human, known::Which, recent, Metrics, RunState};

/// How far back the rate "now" looks.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// A record of failures this recent makes `/health` say records are failing.
const FAILING_WINDOW: Duration = Duration::from_secs(60);

/// Counts at one moment, for the rate now and the time left.
#[derive(Clone, Copy)]
pub(super) struct Sample {
    at: Instant,
    /// Records finished: written, skipped or failed, at the source too (the
    /// run's pace, not the read-ahead).
    done: u64,
    /// The share of the whole written, where the total is known.
    fraction: f64,
}

/// The samples of the last [`RATE_WINDOW`], taken whenever the run is
/// looked at (a page, `/status`, a scrape).
#[derive(Default)]
pub(super) struct Samples(VecDeque<Sample>);

impl Samples {
    /// Adds `now` and returns the oldest sample of the window, when it is at
    /// least a second old.
    fn add(&mut self, now: Sample) -> Option<Sample> {
        while self
            .0
            .front()
            .is_some_and(|s| now.at.duration_since(s.at) > RATE_WINDOW)
        {
            self.0.pop_front();
        }
        if self
            .0
            .back()
            .is_none_or(|s| now.at.duration_since(s.at) >= Duration::from_millis(250))
        {
            self.0.push_back(now);
        }
        self.0
            .front()
            .copied()
            .filter(|s| now.at.duration_since(s.at) >= Duration::from_secs(1))
    }
}

/// How far the run is, where the total is known.
struct Progress {
    /// What the total counts: `records` (a count the source made) or
    /// `bytes` (the input's size).
    basis: &'static str,
    /// Records written or failed, or bytes read.
    done: f64,
    total: f64,
    /// The share written: with bytes, the share read times the share of
    /// the records read that are written (the queue reads ahead).
    fraction: f64,
}

impl Metrics {
    /// The run as `/status` gives it: raw numbers, and under `text` the
    /// same numbers for people, keyed by the live page's element ids. The
    /// rates are of records written or failed, now (the last 10 s) and on
    /// average.
    pub fn status(&self) -> Json {
        let c = self.counts();
        let bytes = self.source.bytes.get();
        let mut progress = self.progress(&c, bytes);
        let now = Sample {
            at: Instant::now(),
            done: c.finished(),
            fraction: progress.as_ref().map_or(0.0, |p| p.fraction),
        };
        let (state, exit_code, elapsed, earlier) = {
            let mut live = self.live.lock().expect("metrics lock");
            let elapsed = live.finished.unwrap_or_else(|| self.started.elapsed());
            let earlier = live.samples.add(now);
            (live.state, live.exit_code, elapsed, earlier)
        };
        let ended = matches!(
            state,
            RunState::Completed | RunState::Failed | RunState::Interrupted
        );
        if state == RunState::Completed {
            if let Some(p) = &mut progress {
                p.fraction = 1.0;
            }
        }
        let secs = elapsed.as_secs_f64();
        let average = c.finished() as f64 / secs.max(1e-3);
        let window = earlier.filter(|_| !ended).map(|e| {
            let dt = now.at.duration_since(e.at).as_secs_f64();
            (
                (now.done - e.done) as f64 / dt,
                (now.fraction - e.fraction) / dt,
            )
        });
        let rate_now = match (ended, window) {
            (true, _) => None,
            (false, Some((records, _))) => Some(records),
            (false, None) => Some(average),
        };
        let fraction = progress.as_ref().map(|p| p.fraction);
        let eta = progress.as_ref().filter(|_| !ended).and_then(|p| {
            let per_second = match window {
                Some((_, f)) => f,
                None => p.fraction / secs.max(1e-3),
            };
            (per_second > 0.0).then(|| ((1.0 - p.fraction).max(0.0) / per_second).round())
        });
        let failed_ago = self.failed_ago();
        let p50 = quantile(&self.batches.insert_duration, 0.5);
        let p95 = quantile(&self.batches.insert_duration, 0.95);
        let retries: u64 = self.errors.retries.iter().map(|r| r.get()).sum();
        let (notes, dropped) = recent::snapshot();
        let queue = (self.flow.queue_depth.get(), self.flow.queue_capacity.get());
        let busy = (self.flow.active_source.get(), self.flow.active_sink.get());
        let (source, sink) = self.about.get().cloned().unwrap_or_default();

        let mut text = Map::new();
        let mut put = |k: &str, v: String| {
            text.insert(k.into(), v.into());
        };
        put(
            "state",
            match exit_code {
                Some(code) if ended => format!("{} (exit {code})", state.as_str()),
                _ => state.as_str().to_string(),
            },
        );
        put("elapsed", human::clock(secs));
        for (k, v) in c.named() {
            put(k, human::count(v as f64));
        }
        put("rate_now", rate_now.map_or("—".into(), human::rate));
        put("rate_average", human::rate(average));
        put(
            "progress",
            match &progress {
                Some(p) => format!(
                    "{:.0} % ({} of {}{})",
                    (p.fraction * 100.0).floor(),
                    amount(p.basis, p.done),
                    amount(p.basis, p.total),
                    if p.basis == "bytes" { " read" } else { "" }
                ),
                None => format!(
                    "{} read; the total is not known",
                    human::count(c.read as f64)
                ),
            },
        );
        put(
            "eta",
            match (ended, eta) {
                (true, _) => "ended".into(),
                (false, Some(s)) => format!("{} left", human::duration(s)),
                (false, None) => "—".into(),
            },
        );
        put("queue", format!("{} of {}", queue.0, queue.1));
        put("workers", format!("{} reading, {} writing", busy.0, busy.1));
        put(
            "batch_write",
            match (p50, p95) {
                (Some(a), Some(b)) => {
                    format!("{} median, {} p95", human::latency(a), human::latency(b))
                }
                _ => "no batch written yet".into(),
            },
        );
        put("retries", human::count(retries as f64));

        json!({
            "pipeline_id": self.pipeline_id,
            "run_id": crate::report::run_id(),
            "slice": self.slice.map(|(i, n)| json!({"id": i, "count": n})),
            "version": env!("CARGO_PKG_VERSION"),
            "state": state.as_str(),
            "exit_code": exit_code.filter(|_| ended),
            "source": source,
            "sink": sink,
            "started_at": self.run.start.get(),
            "elapsed_seconds": round3(secs),
            "records": c.named().into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
            "records_per_second": {
                "now": rate_now.map(round3),
                "average": round3(average),
            },
            "progress": progress.as_ref().map(|p| json!({
                "basis": p.basis,
                "done": p.done,
                "total": p.total,
                "fraction": fraction.map(round3),
                "eta_seconds": eta,
            })),
            "queue": {"depth": queue.0, "capacity": queue.1},
            "busy_workers": {"source": busy.0, "sink": busy.1},
            "batches": {
                "ok": self.batches.ok.get(),
                "failed": self.batches.failed.get(),
                "write_seconds_median": p50.map(round3),
                "write_seconds_p95": p95.map(round3),
            },
            "retries": retries,
            "records_failing": failed_ago.is_some_and(|d| d <= FAILING_WINDOW),
            "last_failure_seconds_ago": failed_ago.map(|d| round3(d.as_secs_f64())),
            "recent": notes,
            "recent_dropped": dropped,
            "text": text,
        })
    }

    /// `/health`: whether the run is well (HTTP 200) or has failed (503),
    /// and whether records are failing now.
    pub fn health(&self) -> (bool, Json) {
        let state = self.state();
        let failed = state == RunState::Failed;
        let ago = self.failed_ago();
        let failing = ago.is_some_and(|d| d <= FAILING_WINDOW);
        let status = match (failed, failing) {
            (true, _) => "failed",
            (false, true) => "records_failing",
            (false, false) => "ok",
        };
        let body = json!({
            "status": status,
            "state": state.as_str(),
            "pipeline_id": self.pipeline_id,
            "records_failing": failing,
            "records_failed": self.records.failed.get(),
            "last_failure_seconds_ago": ago.map(|d| round3(d.as_secs_f64())),
            "uptime_seconds": self.uptime().as_secs_f64(),
            "version": env!("CARGO_PKG_VERSION"),
        });
        (!failed, body)
    }

    /// Time since a record last failed.
    fn failed_ago(&self) -> Option<Duration> {
        let at = self.last_failure.load(std::sync::atomic::Ordering::Relaxed);
        (at > 0).then(|| {
            self.started
                .elapsed()
                .saturating_sub(Duration::from_millis(at - 1))
        })
    }

    /// Records written against the count the source expects, or bytes
    /// read against the input's size, whichever is known.
    fn progress(&self, c: &crate::record::Counts, bytes: u64) -> Option<Progress> {
        if let Some(total) = self.known.get(Which::Records) {
            return Some(Progress {
                basis: "records",
                done: c.finished() as f64,
                total,
                fraction: (c.finished() as f64 / total.max(1.0)).min(1.0),
            });
        }
        self.known.get(Which::Bytes).map(|total| {
            let written = match c.read {
                0 => 0.0,
                read => c.finished() as f64 / read as f64,
            };
            Progress {
                basis: "bytes",
                done: bytes as f64,
                total,
                fraction: (bytes as f64 / total.max(1.0) * written).min(1.0),
            }
        })
    }
}

fn amount(basis: &str, n: f64) -> String {
    match basis {
        "bytes" => human::bytes(n),
        _ => human::count(n),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The `q` quantile of a histogram, interpolated within its bucket as
/// Prometheus's `histogram_quantile` does; `None` before any observation.
fn quantile(h: &Histogram, q: f64) -> Option<f64> {
    let m = h.metric();
    let h = m.get_histogram();
    let total = h.get_sample_count();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let (mut lower, mut below) = (0.0, 0u64);
    for b in h.get_bucket() {
        let (upper, count) = (b.upper_bound(), b.cumulative_count());
        if count as f64 >= rank {
            let inside = (count - below) as f64;
            let into = if inside > 0.0 {
                (rank - below as f64) / inside
            } else {
                1.0
            };
            return Some(lower + (upper - lower) * into);
        }
        (lower, below) = (upper, count);
    }
    // Beyond the last bucket: its bound is all that is known.
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SinkKind, SourceKind};
    use crate::error::{ErrorType, Stage};

    #[test]
    fn quantiles_come_from_the_buckets() {
        let h = Histogram::with_opts(
            prometheus::HistogramOpts::new("h", "h").buckets(vec![0.01, 0.1, 1.0]),
        )
        .unwrap();
        assert_eq!(quantile(&h, 0.5), None);
        for _ in 0..90 {
            h.observe(0.005);
        }
        for _ in 0..10 {
            h.observe(0.5);
        }
        let p50 = quantile(&h, 0.5).unwrap();
        assert!(p50 > 0.0 && p50 <= 0.01, "{p50}");
        let p95 = quantile(&h, 0.95).unwrap();
        assert!(p95 > 0.1 && p95 <= 1.0, "{p95}");
    }

    #[test]
    fn status_says_how_far_the_run_is_and_health_says_records_fail() {
        let m = Metrics::new("t", SourceKind::Csv, SinkKind::File);
        m.describe("CSV in.csv".into(), "out.jsonl".into());
        m.set_state(RunState::Running);
        m.expected_bytes(1000.0 as u64);
        m.source_bytes(250);
        m.records_read(20_000);
        m.batch_done(&super::super::BatchReport {
            size: 10_000,
            inserted: 10_000,
            ok: true,
            ..Default::default()
        });
        let s = m.status();
        assert_eq!(s["state"], "running");
        assert_eq!(s["source"], "CSV in.csv");
        assert_eq!(s["progress"]["basis"], "bytes");
        // A quarter read, half of that written.
        assert_eq!(s["progress"]["fraction"], 0.125);
        assert_eq!(s["text"]["read"], "20.0k");
        assert!(s["text"]["progress"]
            .as_str()
            .unwrap()
            .starts_with("12 % (250 B of 1000 B read)"));
        assert_eq!(s["exit_code"], Json::Null);
        let (ok, h) = m.health();
        assert!(ok);
        assert_eq!(h["status"], "ok");

        m.record_failed(Stage::Sink, ErrorType::Conversion, 1);
        let (ok, h) = m.health();
        assert!(ok, "failing records do not make the process unhealthy");
        assert_eq!(h["status"], "records_failing");
        assert_eq!(h["records_failed"], 1);

        m.set_state(RunState::Failed);
        m.mark_exit_code(1);
        let (ok, h) = m.health();
        assert!(!ok);
        assert_eq!(h["status"], "failed");
        let s = m.status();
        assert_eq!(s["exit_code"], 1);
        assert_eq!(s["text"]["state"], "failed (exit 1)");
        assert_eq!(s["text"]["eta"], "ended");
        assert_eq!(s["records_per_second"]["now"], Json::Null);
    }
}
