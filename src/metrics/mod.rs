//! Every Prometheus metric of pipeline-cli is defined and registered here, and
//! nowhere else. Sources and sinks report what happened through the methods of
//! [`Metrics`]; they never spell a metric name. Label handles are resolved once,
//! up front, and every known label combination exists from the first scrape.

mod known;
pub mod process;
pub mod push;
pub mod server;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

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
    records_read: IntCounter,
    records_processed: IntCounter,
    records_inserted: IntCounter,
    records_updated: IntCounter,
    records_skipped: IntCounter,
    records_failed: IntCounter,
    records_in_doubt: IntCounter,
    records_recovered: IntCounter,
    /// `errors_total` by `stage * ErrorType::ALL.len() + error_type`: the
    /// possible pairs made at start, any other on first use.
    errors: Vec<std::sync::OnceLock<IntCounter>>,
    errors_vec: IntCounterVec,
    retries: Vec<IntCounter>,
    batches_ok: IntCounter,
    batches_failed: IntCounter,
    source_bytes: IntCounter,
    fetch_duration: Histogram,
    insert_duration: Histogram,
    batch_duration: Histogram,
    batch_size: Histogram,
    queue_depth: IntGauge,
    queue_capacity: IntGauge,
    active_source: IntGauge,
    active_sink: IntGauge,
    states: Vec<IntGauge>,
    run_start: Gauge,
    run_duration: Gauge,
    last_success: Gauge,
    last_completion: Gauge,
    last_exit_code: IntGauge,
    known: known::Known,
    live: Mutex<Live>,
}

struct Live {
    state: RunState,
    finished: Option<Duration>,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("unique metric");
    h
}

fn register_vec<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

/// Seconds since the Unix epoch, as Prometheus timestamps are written.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Metrics {
    /// Creates and registers every metric, with `pipeline_id` as a constant
    /// label on all of them, `info{version,source,sink}` set to 1 and the run
    /// in the `starting` state.
    pub fn new(pipeline_id: &str, source: &str, sink: &str) -> Arc<Metrics> {
        Metrics::with_slice(pipeline_id, None, source, sink)
    }

    /// As [`Metrics::new`], and with `slice` = I and `slices` = N (slice I
    /// of N: `--es-slice-id`, `--input-shard`) as constant labels: the
    /// processes of a sliced job export distinct series, and processes that
    /// disagree on N show it.
    pub fn with_slice(
        pipeline_id: &str,
        slice: Option<(u32, u32)>,
        source: &str,
        sink: &str,
    ) -> Arc<Metrics> {
        let mut labels: std::collections::HashMap<String, String> =
            [("pipeline_id".to_string(), pipeline_id.to_string())]
                .into_iter()
                .collect();
        if let Some((id, n)) = slice {
            labels.insert("slice".into(), id.to_string());
            labels.insert("slices".into(), n.to_string());
        }
        let registry = Registry::new_custom(None, Some(labels)).expect("valid registry");
        let r = &registry;

        let errors_vec = register_vec(
            r,
            IntCounterVec::new(
                Opts::new(
                    "pipeline_errors_total",
                    "Errors by pipeline stage and error type.",
                ),
                &["stage", "error_type"],
            )
            .expect("valid metric"),
        );
        let errors: Vec<std::sync::OnceLock<IntCounter>> = (0..Stage::ALL.len()
            * ErrorType::ALL.len())
            .map(|_| std::sync::OnceLock::new())
            .collect();
        let kinds = (
            crate::config::SourceKind::from_label(source).expect("a source kind's label"),
            crate::config::SinkKind::from_label(sink).expect("a sink kind's label"),
        );
        for (stage, et) in
            crate::error::possible_errors(kinds.0.error_types(), kinds.1.error_types())
        {
            let _ = errors[stage as usize * ErrorType::ALL.len() + et as usize]
                .set(errors_vec.with_label_values(&[stage.as_str(), et.as_str()]));
        }
        let retries_vec = register_vec(
            r,
            IntCounterVec::new(
                Opts::new(
                    "pipeline_retries_total",
                    "Requests or batches retried, by stage.",
                ),
                &["stage"],
            )
            .expect("valid metric"),
        );
        let retries = Stage::ALL
            .iter()
            .map(|s| retries_vec.with_label_values(&[s.as_str()]))
            .collect();
        let batches_vec = register_vec(
            r,
            IntCounterVec::new(
                Opts::new(
                    "pipeline_batches_total",
                    "Batches flushed by the sinks, by outcome.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
        );
        let active_vec = register_vec(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "pipeline_active_workers",
                    "Threads doing work now, by stage.",
                ),
                &["stage"],
            )
            .expect("valid metric"),
        );
        let state_vec = register_vec(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "pipeline_state",
                    "Run state set: 1 for the current state, 0 for the others.",
                ),
                &["state"],
            )
            .expect("valid metric"),
        );
        let states = RunState::ALL
            .iter()
            .map(|s| state_vec.with_label_values(&[s.as_str()]))
            .collect();
        let info_vec = register_vec(
            r,
            IntGaugeVec::new(
                Opts::new("pipeline_info", "Build and run information; always 1."),
                &["version", "source", "sink"],
            )
            .expect("valid metric"),
        );
        info_vec
            .with_label_values(&[env!("CARGO_PKG_VERSION"), source, sink])
            .set(1);
        register_vec(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "pipeline_build_info",
                    "The build: version and git revision; always 1.",
                ),
                &["version", "revision"],
            )
            .expect("valid metric"),
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION"), crate::config::REVISION])
        .set(1);

        registry
            .register(Box::new(process::ProcessCollector::new(
                process::start_time(),
            )))
            .expect("unique metric");

        let m = Metrics {
            pipeline_id: pipeline_id.to_string(),
            slice,
            started: Instant::now(),
            records_read: counter(r, "pipeline_records_read_total", "Records the source produced."),
            records_processed: counter(
                r,
                "pipeline_records_processed_total",
                "Records the sinks finished with, whatever the outcome.",
            ),
            records_inserted: counter(
                r,
                "pipeline_records_inserted_total",
                "Records written as a new file line or a new row.",
            ),
            records_updated: counter(
                r,
                "pipeline_records_updated_total",
                "Existing rows updated (MySQL upsert).",
            ),
            records_skipped: counter(
                r,
                "pipeline_records_skipped_total",
                "Duplicate records skipped.",
            ),
            records_failed: counter(
                r,
                "pipeline_records_failed_total",
                "Records rejected; see pipeline_errors_total and the dead-letter file.",
            ),
            records_in_doubt: counter(
                r,
                "pipeline_records_in_doubt_total",
                "Records of a batch whose commit was cut off and could not be checked; the next run commits the batch if it was prepared.",
            ),
            records_recovered: counter(
                r,
                "pipeline_records_recovered_total",
                "Records of earlier runs' prepared (orphaned) batches this run committed.",
            ),
            errors,
            errors_vec,
            retries,
            batches_ok: batches_vec.with_label_values(&["ok"]),
            batches_failed: batches_vec.with_label_values(&["failed"]),
            source_bytes: counter(r, "pipeline_source_bytes_total", "Bytes read from the source."),
            fetch_duration: histogram(
                r,
                "pipeline_fetch_duration_seconds",
                "One source fetch: an Elasticsearch page request, or reading one chunk of rows.",
                &DURATION_BUCKETS,
            ),
            insert_duration: histogram(
                r,
                "pipeline_insert_duration_seconds",
                "One sink write of one batch, commit included.",
                &DURATION_BUCKETS,
            ),
            batch_duration: histogram(
                r,
                "pipeline_batch_duration_seconds",
                "A batch from its first record taken off the queue to committed.",
                &DURATION_BUCKETS,
            ),
            batch_size: histogram(
                r,
                "pipeline_batch_size_records",
                "Records per flushed batch.",
                &BATCH_SIZE_BUCKETS,
            ),
            queue_depth: int_gauge(
                r,
                "pipeline_queue_depth",
                "Records waiting in the channel between source and sinks.",
            ),
            queue_capacity: int_gauge(
                r,
                "pipeline_queue_capacity",
                "Capacity of the channel between source and sinks, in records.",
            ),
            active_source: active_vec.with_label_values(&["source"]),
            active_sink: active_vec.with_label_values(&["sink"]),
            states,
            run_start: gauge(
                r,
                "pipeline_run_start_timestamp_seconds",
                "When this run started, in seconds since the Unix epoch.",
            ),
            run_duration: gauge(
                r,
                "pipeline_run_duration_seconds",
                "How long this run has taken so far; final once it has ended.",
            ),
            last_success: Gauge::new(
                "pipeline_last_success_timestamp_seconds",
                "When a run last succeeded, in seconds since the Unix epoch; exported only after a success.",
            )
            .expect("valid metric"),
            last_completion: Gauge::new(
                "pipeline_last_completion_timestamp_seconds",
                "When a run last completed (read its whole input and wrote everything it could, failed records aside), in seconds since the Unix epoch; exported only after a completion.",
            )
            .expect("valid metric"),
            last_exit_code: IntGauge::new(
                "pipeline_last_exit_code",
                "The exit code of the run (0 success, 1 failed, 2 usage or configuration, 75 locked, 128+N signal); exported once the run has ended.",
            )
            .expect("valid metric"),
            known: known::Known::new(),
            registry,
            live: Mutex::new(Live {
                state: RunState::Starting,
                finished: None,
            }),
        };
        m.run_start.set(unix_now());
        m.apply_state(RunState::Starting);
        Arc::new(m)
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
        self.records_read.inc_by(n);
    }

    /// The source read `n` more bytes.
    pub fn source_bytes(&self, n: u64) {
        self.source_bytes.inc_by(n);
    }

    /// One source fetch (a page, a chunk of rows) took `elapsed`.
    pub fn fetch_observed(&self, elapsed: Duration) {
        self.fetch_duration.observe(elapsed.as_secs_f64());
    }

    /// `n` records failed at `stage` for `error_type`. Counted in
    /// `records_failed_total` and `errors_total`.
    pub fn record_failed(&self, stage: Stage, error_type: ErrorType, n: u64) {
        self.records_failed.inc_by(n);
        self.error(stage, error_type, n);
    }

    /// `n` records of a batch whose outcome is unknown: `records_in_doubt_total`.
    pub fn records_in_doubt(&self, n: u64) {
        self.records_in_doubt.inc_by(n);
    }

    /// `n` records of earlier runs' batches committed: `records_recovered_total`.
    pub fn records_recovered(&self, n: u64) {
        self.records_recovered.inc_by(n);
    }

    /// An error that is not a record failure (a retried request, a failed scrape).
    pub fn error(&self, stage: Stage, error_type: ErrorType, n: u64) {
        self.errors_counter(stage, error_type).inc_by(n);
    }

    fn errors_counter(&self, stage: Stage, error_type: ErrorType) -> &IntCounter {
        self.errors[stage as usize * ErrorType::ALL.len() + error_type as usize].get_or_init(|| {
            self.errors_vec
                .with_label_values(&[stage.as_str(), error_type.as_str()])
        })
    }

    /// A request or batch at `stage` is being retried.
    pub fn retried(&self, stage: Stage) {
        self.retries[stage as usize].inc();
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
        tracing::warn!("{why}; retry {progress} in {delay:?}");
    }

    /// A sink finished with a batch.
    pub fn batch_done(&self, b: &BatchReport) {
        self.records_processed.inc_by(b.size);
        self.records_inserted.inc_by(b.inserted);
        self.records_updated.inc_by(b.updated);
        self.records_skipped.inc_by(b.skipped);
        if b.ok {
            self.batches_ok.inc();
            self.insert_duration.observe(b.insert_elapsed.as_secs_f64());
        } else {
            self.batches_failed.inc();
        }
        self.batch_duration.observe(b.batch_elapsed.as_secs_f64());
        self.batch_size.observe(b.size as f64);
    }

    /// Marks one worker of `stage` busy until the guard is dropped.
    pub fn worker_active(self: &Arc<Self>, stage: Stage) -> ActiveGuard {
        let gauge = match stage {
            Stage::Source => self.active_source.clone(),
            _ => self.active_sink.clone(),
        };
        gauge.inc();
        ActiveGuard { gauge }
    }

    /// Sets the channel capacity.
    pub fn queue_capacity(&self, capacity: usize) {
        self.queue_capacity.set(capacity as i64);
    }

    /// Sets the channel depth: the source after each chunk it sends, each
    /// sink worker after each batch it takes, and 0 once the run is over.
    pub fn queue_depth(&self, depth: usize) {
        self.queue_depth.set(depth as i64);
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
        for (g, s) in self.states.iter().zip(RunState::ALL) {
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
        self.last_completion.set(unix_now());
        let _ = self
            .registry
            .register(Box::new(self.last_completion.clone()));
    }

    /// The process's exit code: `last_exit_code`.
    pub fn mark_exit_code(&self, code: i32) {
        self.last_exit_code.set(i64::from(code));
        let _ = self
            .registry
            .register(Box::new(self.last_exit_code.clone()));
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

    /// Records a successful run: sets and from now on exports
    /// `last_success_timestamp_seconds`.
    pub fn mark_success(&self) {
        self.last_success.set(unix_now());
        // Registering twice is refused by the registry; a run succeeds once.
        let _ = self.registry.register(Box::new(self.last_success.clone()));
    }

    /// The record counts so far.
    pub fn counts(&self) -> Counts {
        Counts {
            read: self.records_read.get(),
            processed: self.records_processed.get(),
            inserted: self.records_inserted.get(),
            updated: self.records_updated.get(),
            skipped: self.records_skipped.get(),
            failed: self.records_failed.get(),
            in_doubt: self.records_in_doubt.get(),
            recovered: self.records_recovered.get(),
        }
    }

    /// The failed-record count for one stage and type.
    #[cfg(test)]
    pub fn errors_of(&self, stage: Stage, error_type: ErrorType) -> u64 {
        self.errors_counter(stage, error_type).get()
    }

    /// Everything in the Prometheus text format 0.0.4, with the values read at
    /// scrape time (queue depth, run duration) brought up to date first.
    pub fn render(&self) -> String {
        {
            let live = self.live.lock().expect("metrics lock");
            let d = live.finished.unwrap_or_else(|| self.started.elapsed());
            self.run_duration.set(d.as_secs_f64());
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
        let m = Metrics::new("t1", "csv", "file");
        let text = m.render();
        let possible = crate::error::possible_errors(
            crate::config::SourceKind::Csv.error_types(),
            crate::config::SinkKind::File.error_types(),
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
        let m = Metrics::new("t2", "csv", "file");
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
}
