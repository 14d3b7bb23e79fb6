//! pipeline-cli moves records from a source (a CSV file, an Elasticsearch or
//! OpenSearch index) into a sink (a JSON-lines file, a MySQL/MariaDB table) through a bounded channel and batching sink workers, and
//! tells Prometheus everything about how that went.
//!
//! The library's one public item is [`app::main`]; every other module is
//! `pub(crate)`, so rustc reports what nothing uses. Map of the crate:
//! - [`app`]: the process from its arguments to its exit code: the run's
//!   lifecycle (signal policy, watchdog, metrics server, final exports) and
//!   the one place exit codes are decided.
//! - `cli`: clap flags, the `--config` file and snake_case spellings -> `config::Config`.
//! - `config`: validated, typed settings.
//! - `error`: error enums, the `error_type` vocabulary, exit codes.
//! - `record`: `Record`, `Value` and their JSON trees.
//! - `json_line`: the one JSON-line encoder (strings, keys, inferred values,
//!   a record's line, a CSV row's line, NDJSON values as their JSON text).
//! - `flatten`: `--flatten`, nested objects opened into fields.
//! - `runtime`: the one tokio runtime.
//! - `context`: what a run's workers share: stop, first error, error budget, rejections.
//! - `channel`: the bounded channel from source to sinks, and its depth.
//! - `progress`: the progress bar.
//! - `checkpoint`: `--checkpoint`, resumable runs: each row's stream and
//!   ordinal, the frontier of done rows, the checkpoint file and its job.
//! - `pipeline`: source -> channel -> sink workers, shutdown order, run summary.
//! - `source`: sources (CSV, NDJSON, Elasticsearch/OpenSearch), and the one
//!   `SourceOutput` every source sends through (chunks, counts, `--limit`).
//! - `sink`: sinks (JSON-lines file, MySQL) and the shared batching loop.
//! - `metrics`: every metric, the `/metrics` `/health` `/` server, the
//!   Pushgateway and textfile exports.
//! - `report`: what goes to stderr: log set-up (text or JSON), fatal lines, the summary record.
//! - `dead_letter`: the file rejected records are kept in.
//! - `shutdown`: the stop signal and the Ctrl+C / SIGTERM handler.
//! - `fsutil`: the one atomic write, and the check that a run's paths do not collide.
//! - `lock`: `--lock-file`, one run at a time.
//! - `utf8`: the one UTF-8 check of input text (SIMD, then where it fails).
//! - `retry`: the one backoff policy (`--retry-for`, `--max-retries`) and the one retry
//!   loop, durations and sizes.
#![warn(missing_docs)]

pub mod app;
pub(crate) mod channel;
pub(crate) mod checkpoint;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod context;
pub(crate) mod dead_letter;
pub(crate) mod error;
pub(crate) mod flatten;
pub(crate) mod fsutil;
pub(crate) mod gzip_members;
pub(crate) mod json_line;
pub(crate) mod lock;
pub(crate) mod metrics;
pub(crate) mod pipeline;
pub(crate) mod progress;
pub(crate) mod record;
pub(crate) mod report;
pub(crate) mod retry;
pub(crate) mod runtime;
pub(crate) mod safe_fs;
pub(crate) mod shutdown;
pub(crate) mod sink;
pub(crate) mod source;
pub(crate) mod utf8;
