//! Validated, typed settings for one run. Nothing clap-specific goes past
//! `cli.rs`; everything here has already been checked.

use std::path::PathBuf;
use std::time::Duration;

/// Where bytes come from: a file or standard input (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPath {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

/// Where bytes go: a file (written via `<path>.partial`) or standard output (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputPath {
    /// Standard output.
    Stdout,
    /// A file.
    File(PathBuf),
}

/// CSV source settings.
#[derive(Debug, Clone)]
pub struct CsvConfig {
    /// The file to read.
    pub input: InputPath,
    /// The field delimiter byte.
    pub delimiter: u8,
    /// False when the first row is data (columns are then `column_1`…).
    pub has_header: bool,
    /// Turn integers, decimals and true/false into typed values, empty into null.
    pub infer_types: bool,
}

/// Which source to read.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// A CSV file.
    Csv(CsvConfig),
}

impl SourceConfig {
    /// The `source` label of `pipeline_info`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Csv(_) => "csv",
        }
    }
}

/// JSON-lines file sink settings.
#[derive(Debug, Clone)]
pub struct FileSinkConfig {
    /// Where to write.
    pub output: OutputPath,
}

/// Which sink to write.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// A JSON-lines file.
    File(FileSinkConfig),
}

impl SinkConfig {
    /// The `sink` label of `pipeline_info`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::File(_) => "file",
        }
    }

    /// How many writers this sink uses when `--workers` is not given.
    pub fn default_workers(&self) -> usize {
        match self {
            SinkConfig::File(_) => 1,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The metrics HTTP server settings.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Port to serve on; `None` opens no port.
    pub port: Option<u16>,
    /// Address to bind.
    pub host: String,
    /// Keep serving after the run until a signal arrives.
    pub keep_alive: bool,
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to read.
    pub source: SourceConfig,
    /// What to write.
    pub sink: SinkConfig,
    /// Records per batch.
    pub batch_size: usize,
    /// Longest a partial batch waits before it is flushed.
    pub batch_timeout: Duration,
    /// Capacity of the channel between source and sinks, in records.
    pub queue_size: usize,
    /// Number of sink workers.
    pub workers: usize,
    /// Where rejected records are written, as JSON lines.
    pub dead_letter: Option<PathBuf>,
    /// Stop reading once this many records have failed.
    pub max_errors: Option<u64>,
    /// Read at most this many records.
    pub limit: Option<u64>,
    /// The metrics server.
    pub metrics: MetricsConfig,
    /// The `pipeline_id` label on every series.
    pub pipeline_id: String,
    /// Log format.
    pub log_format: LogFormat,
    /// No progress bar, no info logs, no summary line.
    pub quiet: bool,
    /// Longest the process waits, after a stop signal, for the sinks to drain.
    pub shutdown_timeout: Duration,
}

impl Config {
    /// A configuration with the documented defaults around a source and sink;
    /// used by tests and as the base the CLI fills in.
    pub fn new(source: SourceConfig, sink: SinkConfig) -> Config {
        let workers = sink.default_workers();
        Config {
            source,
            sink,
            batch_size: 1000,
            batch_timeout: Duration::from_millis(1000),
            queue_size: 10_000,
            workers,
            dead_letter: None,
            max_errors: None,
            limit: None,
            metrics: MetricsConfig {
                port: None,
                host: "127.0.0.1".into(),
                keep_alive: false,
            },
            pipeline_id: "default".into(),
            log_format: LogFormat::Text,
            quiet: false,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}
