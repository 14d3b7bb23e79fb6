//! The catalogue: the name, help text, labels and buckets of every metric
//! [`Metrics`](super::Metrics) registers up front, one family group per
//! struct. Each group registers its metrics in one call and keeps their
//! handles, label values resolved once. (The registry writes families in name
//! order, whatever order they were registered in.)

use std::sync::OnceLock;

use prometheus::core::Collector;
use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::{RunState, BATCH_SIZE_BUCKETS, DURATION_BUCKETS};
use crate::config::{SinkKind, SourceKind};
use crate::error::{ErrorType, Stage};

fn register<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help).expect("valid metric"))
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help).expect("valid metric"))
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    register(registry, Gauge::new(name, help).expect("valid metric"))
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, Histogram::with_opts(opts).expect("valid metric"))
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(registry, c)
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(registry, g)
}

/// `pipeline_errors_total{stage,error_type}` and `pipeline_retries_total{stage}`.
pub(super) struct Errors {
    /// By `stage * ErrorType::ALL.len() + error_type`: the possible pairs
    /// made at start, any other on first use.
    by_pair: Vec<OnceLock<IntCounter>>,
    vec: IntCounterVec,
    /// By stage.
    pub(super) retries: Vec<IntCounter>,
}

impl Errors {
    /// Registers both, with a zero series for every (stage, error type) pair
    /// a run of `source` into `sink` can meet.
    pub(super) fn register(r: &Registry, source: SourceKind, sink: SinkKind) -> Errors {
        let vec = counter_vec(
            r,
            "pipeline_errors_total",
            "Errors by pipeline stage and error type.",
            &["stage", "error_type"],
        );
        let by_pair: Vec<OnceLock<IntCounter>> = (0..Stage::ALL.len() * ErrorType::ALL.len())
            .map(|_| OnceLock::new())
            .collect();
        for (stage, et) in crate::error::possible_errors(source.error_types(), sink.error_types()) {
            let _ = by_pair[Errors::index(stage, et)]
                .set(vec.with_label_values(&[stage.as_str(), et.as_str()]));
        }
        let retries_vec = counter_vec(
            r,
            "pipeline_retries_total",
            "Requests or batches retried, by stage.",
            &["stage"],
        );
        let retries = Stage::ALL
            .iter()
            .map(|s| retries_vec.with_label_values(&[s.as_str()]))
            .collect();
        Errors {
            by_pair,
            vec,
            retries,
        }
    }

    fn index(stage: Stage, error_type: ErrorType) -> usize {
        stage as usize * ErrorType::ALL.len() + error_type as usize
    }

    /// The `errors_total` series of one pair, made on first use when it was
    /// not thought possible.
    pub(super) fn counter(&self, stage: Stage, error_type: ErrorType) -> &IntCounter {
        self.by_pair[Errors::index(stage, error_type)].get_or_init(|| {
            self.vec
                .with_label_values(&[stage.as_str(), error_type.as_str()])
        })
    }
}

/// The `pipeline_records_*_total` counters.
pub(super) struct Records {
    pub(super) read: IntCounter,
    pub(super) processed: IntCounter,
    pub(super) inserted: IntCounter,
    pub(super) updated: IntCounter,
    pub(super) skipped: IntCounter,
    pub(super) failed: IntCounter,
    pub(super) in_doubt: IntCounter,
    pub(super) recovered: IntCounter,
    pub(super) deleted: IntCounter,
    pub(super) columns_widened: IntCounter,
}

impl Records {
    pub(super) fn register(r: &Registry) -> Records {
        Records {
            read: counter(r, "pipeline_records_read_total", "Records the source produced."),
            processed: counter(
                r,
                "pipeline_records_processed_total",
                "Records the sinks finished with, whatever the outcome.",
            ),
            inserted: counter(
                r,
                "pipeline_records_inserted_total",
                "Records written as a new file line or a new row.",
            ),
            updated: counter(
                r,
                "pipeline_records_updated_total",
                "Existing rows updated (MySQL upsert).",
            ),
            skipped: counter(
                r,
                "pipeline_records_skipped_total",
                "Duplicate records skipped.",
            ),
            failed: counter(
                r,
                "pipeline_records_failed_total",
                "Records rejected; see pipeline_errors_total and the dead-letter file.",
            ),
            in_doubt: counter(
                r,
                "pipeline_records_in_doubt_total",
                "Records of a batch whose commit was cut off and could not be checked; the next run commits the batch if it was prepared.",
            ),
            recovered: counter(
                r,
                "pipeline_records_recovered_total",
                "Records of earlier runs' prepared (orphaned) batches this run committed.",
            ),
            deleted: counter(
                r,
                "pipeline_records_deleted_total",
                "Rows --delete-missing deleted: rows of the table whose key the run's full read did not see.",
            ),
            columns_widened: counter(
                r,
                "pipeline_columns_widened_total",
                "MySQL columns widened (ALTER TABLE ... MODIFY COLUMN) for a value that did not fit them.",
            ),
        }
    }
}

/// What the source reports besides records: bytes and fetch times.
pub(super) struct Source {
    pub(super) bytes: IntCounter,
    pub(super) fetch_duration: Histogram,
}

impl Source {
    pub(super) fn register(r: &Registry) -> Source {
        Source {
            bytes: counter(
                r,
                "pipeline_source_bytes_total",
                "Bytes read from the source.",
            ),
            fetch_duration: histogram(
                r,
                "pipeline_fetch_duration_seconds",
                "One source fetch: an Elasticsearch page request, or reading one chunk of rows.",
                &DURATION_BUCKETS,
            ),
        }
    }
}

/// What the sinks report per batch: `pipeline_batches_total{outcome}` and
/// the write, batch and size histograms.
pub(super) struct Batches {
    pub(super) ok: IntCounter,
    pub(super) failed: IntCounter,
    pub(super) insert_duration: Histogram,
    pub(super) batch_duration: Histogram,
    pub(super) size: Histogram,
}

impl Batches {
    pub(super) fn register(r: &Registry) -> Batches {
        let outcomes = counter_vec(
            r,
            "pipeline_batches_total",
            "Batches flushed by the sinks, by outcome.",
            &["outcome"],
        );
        Batches {
            ok: outcomes.with_label_values(&["ok"]),
            failed: outcomes.with_label_values(&["failed"]),
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
            size: histogram(
                r,
                "pipeline_batch_size_records",
                "Records per flushed batch.",
                &BATCH_SIZE_BUCKETS,
            ),
        }
    }
}

/// The channel between source and sinks, and the threads on both sides of it.
pub(super) struct Flow {
    pub(super) queue_depth: IntGauge,
    pub(super) queue_capacity: IntGauge,
    pub(super) active_source: IntGauge,
    pub(super) active_sink: IntGauge,
}

impl Flow {
    pub(super) fn register(r: &Registry) -> Flow {
        let active = gauge_vec(
            r,
            "pipeline_active_workers",
            "Threads doing work now, by stage.",
            &["stage"],
        );
        Flow {
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
            active_source: active.with_label_values(&["source"]),
            active_sink: active.with_label_values(&["sink"]),
        }
    }
}

/// The run as a whole: its state set, when it started and how long it has
/// taken, and the three exported only once they happen (made here,
/// registered by [`Metrics`](super::Metrics) when they do).
pub(super) struct Run {
    /// `pipeline_state{state}`, in [`RunState::ALL`] order.
    pub(super) states: Vec<IntGauge>,
    pub(super) start: Gauge,
    pub(super) duration: Gauge,
    pub(super) last_success: Gauge,
    pub(super) last_completion: Gauge,
    pub(super) last_exit_code: IntGauge,
    /// `--accept-errors N`: N, else 0.
    pub(super) accept_records: Gauge,
    /// `--accept-errors P%`: P / 100, else 0.
    pub(super) accept_ratio: Gauge,
}

impl Run {
    pub(super) fn register(r: &Registry) -> Run {
        let state_vec = gauge_vec(
            r,
            "pipeline_state",
            "Run state set: 1 for the current state, 0 for the others.",
            &["state"],
        );
        Run {
            states: RunState::ALL
                .iter()
                .map(|s| state_vec.with_label_values(&[s.as_str()]))
                .collect(),
            start: gauge(
                r,
                "pipeline_run_start_timestamp_seconds",
                "When this run started, in seconds since the Unix epoch.",
            ),
            duration: gauge(
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
            accept_records: gauge(
                r,
                "pipeline_accept_errors_records",
                "Failed records this run may have and still succeed (--accept-errors N); 0 without --accept-errors or with a percentage.",
            ),
            accept_ratio: gauge(
                r,
                "pipeline_accept_errors_ratio",
                "Share of the records read this run may fail and still succeed (--accept-errors P% as P/100); 0 without --accept-errors or with a count.",
            ),
        }
    }
}

/// `pipeline_info{version,source,sink,run_id}` and `pipeline_build_info{version,revision}`,
/// both always 1.
pub(super) fn register_info(r: &Registry, source: SourceKind, sink: SinkKind) {
    gauge_vec(
        r,
        "pipeline_info",
        "Build and run information; always 1.",
        &["version", "source", "sink", "run_id"],
    )
    .with_label_values(&[
        env!("CARGO_PKG_VERSION"),
        source.as_str(),
        sink.as_str(),
        crate::report::run_id(),
    ])
    .set(1);
    gauge_vec(
        r,
        "pipeline_build_info",
        "The build: version and git revision; always 1.",
        &["version", "revision"],
    )
    .with_label_values(&[env!("CARGO_PKG_VERSION"), crate::config::REVISION])
    .set(1);
}
