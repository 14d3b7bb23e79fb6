//! Every Prometheus metric of pipeline-cli is defined and registered in this
//! module (names, help texts, labels and buckets in `catalogue`, the gauges
//! exported once known in `known`, the process metrics in `process`), and
//! nowhere else. Sources and sinks report what happened through the methods of
//! [`Metrics`]; they never spell a metric name. Label handles are resolved once,
//! up front, and every known label combination exists from the first scrape.

mod catalogue;
pub mod human;
mod known;
mod page;
pub mod process;
pub mod push;
pub mod recent;
pub mod server;
mod status;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::{Encoder, IntGauge, Registry, TextEncoder};

use crate::config::{ErrorAllowance, SinkKind, SourceKind};
use crate::error::{ErrorType, Stage};
use crate::record::Counts;

/// Buckets for every `*_duration_seconds` histogram.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Buckets for `batch_size_records`.
pub const BATCH_SIZE_BUCKETS: [f64; 11] = [
    1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 50000.0,
];

/// The run's life cycle, exported as the `state` state set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Checking configuration and opening connections.
    Starting,
    /// Reading and writing.
    Running,
    /// The source stopped (signal or error budget); sinks are writing what was read.
    Draining,
    /// Finished; the summary is final.
    Completed,
    /// Ended by an error.
    Failed,
    /// Ended by a signal.
    Interrupted,
}

impl RunState {
    /// Every state, in export order.
    pub const ALL: [RunState; 6] = [
        RunState::Starting,
        RunState::Running,
        RunState::Draining,
        RunState::Completed,
        RunState::Failed,
        RunState::Interrupted,
    ];

    /// The label value and the `/health` state.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Draining => "draining",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        }
    }
}

/// What a sink did with one batch, reported in one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchReport {
    /// Records in the batch.
    pub size: u64,
    /// Written as new.
    pub inserted: u64,
    /// Updated in place.
    pub updated: u64,
    /// Skipped as duplicates.
    pub skipped: u64,
    /// The sink write, commit included.
    pub insert_elapsed: Duration,
    /// From the first record taken off the queue to committed.
    pub batch_elapsed: Duration,
    /// False when the batch as a whole could not be written.
    pub ok: bool,
}

/// The one handle through which every part of the pipeline reports.
pub struct Metrics {
    registry: Registry,
    pipeline_id: String,
    /// The slice this process reads and how many there are, when one of
    /// several.
    slice: Option<(u32, u32)>,
    started: Instant,
    records: catalogue::Records,
    errors: catalogue::Errors,
    batches: catalogue::Batches,
    source: catalogue::Source,
    flow: catalogue::Flow,
    run: catalogue::Run,
    known: known::Known,
    live: Mutex<Live>,
    /// What is read and where it goes, for the live page.
    about: OnceLock<(String, String)>,
    /// When a record last failed: milliseconds since the start, plus one
    /// (0: none has).
    last_failure: AtomicU64,
}

struct Live {
    state: RunState,
    finished: Option<Duration>,
    exit_code: Option<i32>,
    samples: status::Samples,
}

/// Seconds since the Unix epoch, as Prometheus timestamps are written.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A registry whose every series carries `pipeline_id`, and `slice` and
/// `slices` when the process reads one slice of several.
fn registry(pipeline_id: &str, slice: Option<(u32, u32)>) -> Registry {
    let mut labels: HashMap<String, String> =
        [("pipeline_id".to_string(), pipeline_id.to_string())]
            .into_iter()
            .collect();
    if let Some((id, n)) = slice {
        labels.insert("slice".into(), id.to_string());
        labels.insert("slices".into(), n.to_string());
    }
    Registry::new_custom(None, Some(labels)).expect("valid registry")
}

impl Metrics {
    /// Creates and registers every metric, with `pipeline_id` as a constant
    /// label on all of them, `info{version,source,sink,run_id}` set to 1 and the run
    /// in the `starting` state.
    pub fn new(pipeline_id: &str, source: SourceKind, sink: SinkKind) -> Arc<Metrics> {
        Metrics::with_slice(pipeline_id, None, source, sink)
    }

    /// As [`Metrics::new`], and with `slice` = I and `slices` = N (slice I
    /// of N: `--es-slice-id`, `--input-shard`) as constant labels: the
    /// processes of a sliced job export distinct series, and processes that
    /// disagree on N show it.
    pub fn with_slice(
        pipeline_id: &str,
        slice: Option<(u32, u32)>,
        source: SourceKind,
        sink: SinkKind,
    ) -> Arc<Metrics> {
        let registry = registry(pipeline_id, slice);
        let r = &registry;
        let errors = catalogue::Errors::register(r, source, sink);
        catalogue::register_info(r, source, sink);
        registry
            .register(Box::new(process::ProcessCollector::new(
                process::start_time(),
            )))
            .expect("unique metric");
        let m = Metrics {
            pipeline_id: pipeline_id.to_string(),
            slice,
            started: Instant::now(),
            records: catalogue::Records::register(r),
            errors,
            batches: catalogue::Batches::register(r),
            source: catalogue::Source::register(r),
            flow: catalogue::Flow::register(r),
            run: catalogue::Run::register(r),
            known: known::Known::new(),
            registry,
            live: Mutex::new(Live {
                state: RunState::Starting,
                finished: None,
                exit_code: None,
                samples: status::Samples::default(),
            }),
            about: OnceLock::new(),
            last_failure: AtomicU64::new(0),
        };
        m.run.start.set(unix_now());
        m.apply_state(RunState::Starting);
        Arc::new(m)
    }

    /// Names what the run reads and where it writes (never a password),
    /// for the live page and `/status`.
    pub fn describe(&self, source: String, sink: String) {
        let _ = self.about.set((source, sink));
    }

    /// The pipeline id every series carries.
    pub fn pipeline_id(&self) -> &str {
        &self.pipeline_id
    }

    /// The slice this process reads and how many there are, when one of
    /// several.
    pub fn slice(&self) -> Option<(u32, u32)> {
        self.slice
    }

    /// Time since the run started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The source produced `n` more records (good or bad).
    pub fn records_read(&self, n: u64) {
        self.records.read.inc_by(n);
    }

    /// The source read `n` more bytes.
    pub fn source_bytes(&self, n: u64) {
        self.source.bytes.inc_by(n);
    }

    /// One source fetch (a page, a chunk of rows) took `elapsed`.
    pub fn fetch_observed(&self, elapsed: Duration) {
        self.source.fetch_duration.observe(elapsed.as_secs_f64());
    }

    /// `n` records failed at `stage` for `error_type`. Counted in
    /// `records_failed_total` and `errors_total`.
    pub fn record_failed(&self, stage: Stage, error_type: ErrorType, n: u64) {
        self.records.failed.inc_by(n);
        let at = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_failure.store(at + 1, Ordering::Relaxed);
        self.error(stage, error_type, n);
    }

    /// `n` records of a batch whose outcome is unknown: `records_in_doubt_total`.
    pub fn records_in_doubt(&self, n: u64) {
        self.records.in_doubt.inc_by(n);
    }

    /// `n` rows deleted by `--delete-missing`: `records_deleted_total`.
    pub fn records_deleted(&self, n: u64) {
        self.records.deleted.inc_by(n);
    }

    /// `n` records of earlier runs' batches committed: `records_recovered_total`.
    pub fn records_recovered(&self, n: u64) {
        self.records.recovered.inc_by(n);
    }

    /// A MySQL column was widened for a value that did not fit it:
    /// `columns_widened_total`.
    pub fn column_widened(&self) {
        self.records.columns_widened.inc();
    }

    /// An error that is not a record failure (a retried request, a failed scrape).
    pub fn error(&self, stage: Stage, error_type: ErrorType, n: u64) {
        self.errors.counter(stage, error_type).inc_by(n);
    }

    /// A request or batch at `stage` is being retried.
    pub fn retried(&self, stage: Stage) {
        self.errors.retries[stage as usize].inc();
    }

    /// A failed attempt that will be tried again after `delay`: counted in
    /// `errors_total` and `retries_total` and logged, in one call.
    /// `progress` is the retry's number (`2/5`, or `2` without a cap).
    pub fn retrying(
        &self,
        stage: Stage,
        error_type: ErrorType,
        why: &str,
        progress: &str,
        delay: Duration,
    ) {
        self.error(stage, error_type, 1);
        self.retried(stage);
        tracing::warn!(
            "{why}; retry {progress} in {}",
            crate::retry::format_wait(delay)
        );
    }

    /// A sink finished with a batch.
    pub fn batch_done(&self, b: &BatchReport) {
        self.records.processed.inc_by(b.size);
        self.records.inserted.inc_by(b.inserted);
        self.records.updated.inc_by(b.updated);
        self.records.skipped.inc_by(b.skipped);
        if b.ok {
            self.batches.ok.inc();
            self.batches
                .insert_duration
                .observe(b.insert_elapsed.as_secs_f64());
        } else {
            self.batches.failed.inc();
        }
        self.batches
            .batch_duration
            .observe(b.batch_elapsed.as_secs_f64());
        self.batches.size.observe(b.size as f64);
    }

    /// Marks one worker of `stage` busy until the guard is dropped.
    pub fn worker_active(self: &Arc<Self>, stage: Stage) -> ActiveGuard {
        let gauge = match stage {
            Stage::Source => self.flow.active_source.clone(),
            _ => self.flow.active_sink.clone(),
        };
        gauge.inc();
        ActiveGuard { gauge }
    }

    /// Sets the channel capacity.
    pub fn queue_capacity(&self, capacity: usize) {
        self.flow.queue_capacity.set(capacity as i64);
    }

    /// Sets the channel depth: the source after each chunk it sends, each
    /// sink worker after each batch it takes, and 0 once the run is over.
    pub fn queue_depth(&self, depth: usize) {
        self.flow.queue_depth.set(depth as i64);
    }

    /// Moves the run to `state`. Ending states also freeze `run_duration_seconds`.
    pub fn set_state(&self, state: RunState) {
        let mut live = self.live.lock().expect("metrics lock");
        live.state = state;
        if matches!(
            state,
            RunState::Completed | RunState::Failed | RunState::Interrupted
        ) && live.finished.is_none()
        {
            live.finished = Some(self.started.elapsed());
        }
        drop(live);
        self.apply_state(state);
    }

    fn apply_state(&self, state: RunState) {
        for (g, s) in self.run.states.iter().zip(RunState::ALL) {
            g.set(i64::from(s == state));
        }
    }

    /// The current state.
    pub fn state(&self) -> RunState {
        self.live.lock().expect("metrics lock").state
    }

    /// The run completed (whether or not records failed):
    /// `last_completion_timestamp_seconds`.
    pub fn mark_completion(&self) {
        self.run.last_completion.set(unix_now());
        let _ = self
            .registry
            .register(Box::new(self.run.last_completion.clone()));
    }

    /// The process's exit code: `last_exit_code`.
    pub fn mark_exit_code(&self, code: i32) {
        self.live.lock().expect("metrics lock").exit_code = Some(code);
        self.run.last_exit_code.set(i64::from(code));
        let _ = self
            .registry
            .register(Box::new(self.run.last_exit_code.clone()));
    }

    /// The size of the input in bytes (a CSV file), once known:
    /// `source_expected_bytes`, for % done and an ETA.
    pub fn expected_bytes(&self, n: u64) {
        self.known
            .set(&self.registry, known::Which::Bytes, n as f64);
    }

    /// The records the source will produce (an Elasticsearch count within
    /// `--limit`), once known: `source_expected_records`.
    pub fn expected_records(&self, n: u64) {
        self.known
            .set(&self.registry, known::Which::Records, n as f64);
    }

    /// The position of an incremental run (`--es-since-field`):
    /// `source_watermark`.
    pub fn watermark(&self, v: f64) {
        self.known.set(&self.registry, known::Which::Watermark, v);
    }

    /// Rows skipped so far because an earlier run finished them
    /// (`--checkpoint`): `source_resumed_records`.
    pub fn resumed_records(&self, n: u64) {
        self.known
            .set(&self.registry, known::Which::Resumed, n as f64);
    }

    /// Rows skipped because an earlier run finished them.
    pub fn resumed(&self) -> u64 {
        self.known.get(known::Which::Resumed).unwrap_or(0.0) as u64
    }

    /// Records a successful run: sets and from now on exports
    /// `last_success_timestamp_seconds`.
    pub fn mark_success(&self) {
        self.run.last_success.set(unix_now());
        // Registering twice is refused by the registry; a run succeeds once.
        let _ = self
            .registry
            .register(Box::new(self.run.last_success.clone()));
    }

    /// What `--accept-errors` lets the run fail and still succeed, for
    /// alerts that leave accepted failures alone: `accept_errors_records`
    /// (N) and `accept_errors_ratio` (P%, as P/100), 0 where not given so.
    pub fn accept_errors(&self, allowance: Option<ErrorAllowance>) {
        let (records, ratio) = match allowance {
            Some(ErrorAllowance::Count(n)) => (n as f64, 0.0),
            Some(ErrorAllowance::Percent(p)) => (0.0, p / 100.0),
            None => (0.0, 0.0),
        };
        self.run.accept_records.set(records);
        self.run.accept_ratio.set(ratio);
    }

    /// The record counts so far.
    pub fn counts(&self) -> Counts {
        Counts {
            read: self.records.read.get(),
            processed: self.records.processed.get(),
            inserted: self.records.inserted.get(),
            updated: self.records.updated.get(),
            skipped: self.records.skipped.get(),
            failed: self.records.failed.get(),
            in_doubt: self.records.in_doubt.get(),
            recovered: self.records.recovered.get(),
            deleted: self.records.deleted.get(),
            resumed: self.resumed(),
        }
    }

    /// The failed-record count for one stage and type.
    #[cfg(test)]
    pub fn errors_of(&self, stage: Stage, error_type: ErrorType) -> u64 {
        self.errors.counter(stage, error_type).get()
    }

    /// Everything in the Prometheus text format 0.0.4, with the values read at
    /// scrape time (queue depth, run duration) brought up to date first.
    pub fn render(&self) -> String {
        {
            let live = self.live.lock().expect("metrics lock");
            let d = live.finished.unwrap_or_else(|| self.started.elapsed());
            self.run.duration.set(d.as_secs_f64());
        }
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of valid metrics");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Keeps `active_workers{stage}` raised while a worker runs.
pub struct ActiveGuard {
    gauge: IntGauge,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_combination_exists_from_the_start() {
        let m = Metrics::new(
            "t1",
            crate::config::SourceKind::Csv,
            crate::config::SinkKind::File,
        );
        let text = m.render();
        let possible = crate::error::possible_errors(
            SourceKind::Csv.error_types(),
            SinkKind::File.error_types(),
        );
        for stage in Stage::ALL {
            for et in ErrorType::ALL {
                let series = format!(
                    "pipeline_errors_total{{error_type=\"{}\",stage=\"{}\",pipeline_id=\"t1\"}} 0",
                    et.as_str(),
                    stage.as_str()
                );
                assert_eq!(
                    text.contains(&series),
                    possible.contains(&(stage, et)),
                    "{series}"
                );
            }
        }
        assert!(!text.contains("stage=\"push\",error_type=\"duplicate\""));
        // A pair thought impossible is still counted when it happens.
        m.error(Stage::Sink, ErrorType::Duplicate, 2);
        assert!(m.render().contains(
            "pipeline_errors_total{error_type=\"duplicate\",stage=\"sink\",pipeline_id=\"t1\"} 2"
        ));
        assert!(text.contains("pipeline_state{state=\"starting\",pipeline_id=\"t1\"} 1"));
        assert!(text.contains("pipeline_state{state=\"running\",pipeline_id=\"t1\"} 0"));
        assert!(!text.contains("pipeline_last_success_timestamp_seconds"));
    }

    #[test]
    fn counts_follow_batches_and_failures() {
        let m = Metrics::new(
            "t2",
            crate::config::SourceKind::Csv,
            crate::config::SinkKind::File,
        );
        m.records_read(5);
        m.record_failed(Stage::Source, ErrorType::Parse, 1);
        m.batch_done(&BatchReport {
            size: 4,
            inserted: 4,
            ok: true,
            ..Default::default()
        });
        let c = m.counts();
        assert_eq!((c.read, c.inserted, c.failed, c.processed), (5, 4, 1, 4));
        assert!(c.reconciles());
        assert_eq!(m.errors_of(Stage::Source, ErrorType::Parse), 1);
        m.mark_success();
        m.mark_success();
        assert!(m
            .render()
            .contains("pipeline_last_success_timestamp_seconds{"));
    }

    #[test]
    fn the_error_allowance_is_exported_as_a_count_or_a_ratio() {
        let m = Metrics::new("t3", SourceKind::Csv, SinkKind::File);
        let has = |m: &Metrics, records: &str, ratio: &str| {
            let text = m.render();
            let r = format!("pipeline_accept_errors_records{{pipeline_id=\"t3\"}} {records}\n");
            let p = format!("pipeline_accept_errors_ratio{{pipeline_id=\"t3\"}} {ratio}\n");
            assert!(text.contains(&r) && text.contains(&p), "{r}{p}in:\n{text}");
        };
        has(&m, "0", "0");
        m.accept_errors(Some(ErrorAllowance::Count(25)));
        has(&m, "25", "0");
        m.accept_errors(Some(ErrorAllowance::Percent(0.5)));
        has(&m, "0", "0.005");
        m.accept_errors(None);
        has(&m, "0", "0");
    }
}
