//! Validated, typed settings for one run. Nothing clap-specific goes past
//! `cli.rs`; everything here has already been checked.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ErrorType;
use crate::retry::RetryPolicy;

mod delete;
mod files;
mod mysql;
mod redact;
pub use delete::*;
pub use files::*;
pub use mysql::*;
pub use redact::*;

// The defaults of the flags, stated once: clap shows and applies them, and
// `Config::new` starts from them.

/// `--csv-max-field-bytes`: a quoted field longer than this is taken for an
/// unclosed quote.
pub const DEFAULT_CSV_MAX_FIELD_BYTES: &str = "64MiB";
/// `--csv-max-field-lines`: a quoted field spanning more lines than this is
/// taken for an unclosed quote.
pub const DEFAULT_CSV_MAX_FIELD_LINES: u64 = 10_000;
/// `--retry-for`.
pub const DEFAULT_RETRY_FOR: &str = "5m";
/// `--start-retry-for`.
pub const DEFAULT_START_RETRY_FOR: &str = "30s";

/// `--metrics-linger`: two scrapes at Prometheus's usual 15s interval.
pub const DEFAULT_METRICS_LINGER: &str = "30s";
/// `--es-timeout`.
pub const DEFAULT_ES_TIMEOUT: &str = "30s";
/// `--db-timeout`.
pub const DEFAULT_DB_TIMEOUT: &str = "60s";
/// `--push-timeout`.
pub const DEFAULT_PUSH_TIMEOUT: &str = "10s";
/// `--es-keep-alive`.
pub const DEFAULT_ES_KEEP_ALIVE: &str = "5m";
/// `--queue-size`.
pub const DEFAULT_QUEUE_SIZE: usize = 10_000;
/// `--batch-timeout-ms`.
pub const DEFAULT_BATCH_TIMEOUT_MS: u64 = 1000;
/// `--metrics-host`.
pub const DEFAULT_METRICS_HOST: &str = "127.0.0.1";
/// `--pipeline-id`.
pub const DEFAULT_PIPELINE_ID: &str = "default";
/// The git revision of the build (`unknown` when built outside a checkout).
pub const REVISION: &str = env!("PIPELINE_GIT_REVISION");
/// `--shutdown-timeout`, in seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;
/// `--create-table-sample` for Elasticsearch: documents read before the run
/// to infer the types (a CSV file is read whole).
pub const DEFAULT_CREATE_TABLE_SAMPLE: u64 = 10_000;

/// A chunk of a file read on several threads: about 256 KiB.
pub const DEFAULT_CHUNK_BYTES: usize = 256 << 10;

/// `--jsonl-max-line-bytes`: 64 MiB.
pub const DEFAULT_JSONL_MAX_LINE_BYTES: u64 = 64 << 20;

/// `--accept-errors N` or `--accept-errors P%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ErrorAllowance {
    /// At most this many failed records.
    Count(u64),
    /// At most this share of the records read, in percent.
    Percent(f64),
}

impl ErrorAllowance {
    /// True when `failed` of `read` records is within the allowance.
    pub fn allows(self, failed: u64, read: u64) -> bool {
        match self {
            ErrorAllowance::Count(n) => failed <= n,
            ErrorAllowance::Percent(p) => (failed as f64) <= (read as f64) * p / 100.0,
        }
    }
}

/// A setting's value as the command line spells it (`load-data`, not
/// `LoadData`), for log lines.
pub fn cli_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

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
    /// Several files (paths, globs, a shard of them), read in turn in name
    /// order; `input` is then the first. May be empty (a shard with none).
    pub list: Option<Vec<PathBuf>>,
    /// The field delimiter byte.
    pub delimiter: u8,
    /// False when the first row is data (columns are then `column_1`…).
    pub has_header: bool,
    /// Turn integers, decimals and true/false into typed values, empty into null.
    pub infer_types: bool,
    /// A quoted field longer than this many bytes is reported as probably
    /// unclosed (and bounds the memory one row may take).
    pub max_field_bytes: u64,
    /// A quoted field spanning more lines than this is reported as probably
    /// unclosed.
    pub max_field_lines: u64,
    /// `--csv-threads`: threads that parse a regular file (`None`: not
    /// given; the CSV source chooses).
    pub threads: Option<usize>,
    /// `--state-file`: files already loaded are skipped.
    pub once: Option<FilesOnce>,
}

/// NDJSON source settings.
#[derive(Debug, Clone)]
pub struct JsonlConfig {
    /// The file to read.
    pub input: InputPath,
    /// Several files, as for CSV.
    pub list: Option<Vec<PathBuf>>,
    /// A longer line is rejected (and bounds the memory one line may take).
    pub max_line_bytes: u64,
    /// What each line holds.
    pub format: JsonlFormat,
    /// `--jsonl-threads`: threads that parse a regular file (`None`: not
    /// given; the NDJSON source chooses, as the CSV source does).
    pub threads: Option<usize>,
    /// About how many bytes a chunk read on several threads holds.
    pub chunk_bytes: usize,
    /// `--jsonl-replay-in-doubt`: a dead-letter file's in-doubt entries are
    /// replayed too (their batch is known to be rolled back).
    pub replay_in_doubt: bool,
    /// `--state-file`: files already loaded are skipped.
    pub once: Option<FilesOnce>,
}

/// `--jsonl-format`: plain objects, elasticdump's documents or `_bulk` pairs,
/// or decided from each input's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum JsonlFormat {
    /// Decided from each input's first line that is not blank.
    #[default]
    Auto,
    /// One record per object, its keys the fields.
    Plain,
    /// `{"_index","_id","_source"}`: `_id`, `_index`, then `_source`'s keys.
    Elasticdump,
    /// `_bulk` action/source line pairs: `_id`, `_index`, then the source's keys.
    Bulk,
    /// pipeline-cli's own `--dead-letter` file: the records it holds.
    DeadLetter,
}

/// How an Elasticsearch/OpenSearch index is paged through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EsMode {
    /// Point in time where the server has it, else scroll.
    Auto,
    /// Point in time + search_after.
    Pit,
    /// The scroll API.
    Scroll,
}

/// What an incremental run does with documents that have no value of
/// `--es-since-field` (absent, null, an empty array).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SinceMissing {
    /// Read them on every run: no position can leave them behind.
    Include,
    /// Never read them (counted and reported at every run).
    Skip,
}

/// Elasticsearch / OpenSearch source settings.
#[derive(Debug, Clone)]
pub struct EsConfig {
    /// Node URLs; the next is tried when one cannot be reached.
    pub urls: Vec<url::Url>,
    /// Index name or pattern.
    pub index: String,
    /// The query clause (`{"match_all":{}}` by default).
    pub query: serde_json::Value,
    /// Documents per page.
    pub page_size: u32,
    /// `_source` fields to fetch (all when `None`).
    pub fields: Option<Vec<String>>,
    /// Metadata fields copied into each record (`_id`, `_index`, …).
    pub meta_fields: Vec<String>,
    /// Slices the read is split into.
    pub slices: u32,
    /// This process reads only this slice (`--es-slice-id`); all of them, in
    /// threads, when `None`.
    pub slice_id: Option<u32>,
    /// A point in time opened beforehand (`--es-pit-id`): paged through,
    /// never closed.
    pub pit_id: Option<String>,
    /// Paging mode.
    pub mode: EsMode,
    /// How long the server keeps the point in time / scroll between pages.
    pub keep_alive: String,
    /// Basic-auth user.
    pub user: Option<String>,
    /// Basic-auth password.
    pub password: Option<Secret>,
    /// API key (the base64 `id:key` form).
    pub api_key: Option<Secret>,
    /// CA certificate (PEM) to trust.
    pub ca_cert: Option<PathBuf>,
    /// Skip certificate checks.
    pub insecure: bool,
    /// Ask for gzip-compressed answers.
    pub compression: bool,
    /// Incremental runs: only documents whose field is greater than the saved value.
    pub since_field: Option<String>,
    /// Where the incremental value is kept between runs.
    pub state_file: Option<PathBuf>,
    /// Documents without a value of the since field.
    pub since_missing: SinceMissing,
    /// Retries of a request that failed for a passing reason.
    pub retry: RetryPolicy,
    /// Longest one request may take before it counts as timed out.
    pub timeout: Duration,
}

/// Which source to read.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// A CSV file.
    Csv(CsvConfig),
    /// An Elasticsearch or OpenSearch index.
    Elasticsearch(Box<EsConfig>),
    /// NDJSON: one JSON object per line.
    Jsonl(JsonlConfig),
}

impl SourceConfig {
    /// The input files and the flag that named them (none for standard
    /// input or Elasticsearch): every file of a list, or the one file.
    pub fn input_files(&self) -> (&'static str, Vec<PathBuf>) {
        let files = |input: &InputPath, list: &Option<Vec<PathBuf>>| match (input, list) {
            (_, Some(list)) => list.clone(),
            (InputPath::File(p), None) => vec![p.clone()],
            (InputPath::Stdin, None) => Vec::new(),
        };
        match self {
            SourceConfig::Csv(c) => ("--csv-file", files(&c.input, &c.list)),
            SourceConfig::Jsonl(c) => ("--jsonl-file", files(&c.input, &c.list)),
            SourceConfig::Elasticsearch(_) => ("", Vec::new()),
        }
    }

    /// What is read, for the live page: the file, `N files (first, …)`,
    /// standard input, or the index and its servers (never a password).
    pub fn target(&self) -> String {
        if let SourceConfig::Elasticsearch(c) = self {
            let urls: Vec<String> = c.urls.iter().map(|u| redacted(u.as_str())).collect();
            return format!("index {} at {}", c.index, urls.join(","));
        }
        let kind = match self.kind() {
            SourceKind::Jsonl => "NDJSON",
            _ => "CSV",
        };
        match self.input_files().1.as_slice() {
            [] => format!("{kind} from standard input"),
            [one] => format!("{kind} {}", one.display()),
            [first, rest @ ..] => {
                format!(
                    "{kind}, {} files ({} and {} more)",
                    rest.len() + 1,
                    first.display(),
                    rest.len()
                )
            }
        }
    }

    /// `--state-file`, when the run is incremental (`--es-since-field`)
    /// or records the files it loads.
    pub fn state_file(&self) -> Option<&std::path::Path> {
        match self {
            SourceConfig::Elasticsearch(c) => c.since_field.as_ref().and(c.state_file.as_deref()),
            SourceConfig::Csv(CsvConfig { once, .. })
            | SourceConfig::Jsonl(JsonlConfig { once, .. }) => {
                once.as_ref().map(|o| o.state_file.as_path())
            }
        }
    }

    /// `--state-file` of a file source: which files were loaded.
    pub fn files_once(&self) -> Option<&FilesOnce> {
        match self {
            SourceConfig::Csv(c) => c.once.as_ref(),
            SourceConfig::Jsonl(c) => c.once.as_ref(),
            SourceConfig::Elasticsearch(_) => None,
        }
    }

    /// Which kind of source this is.
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceConfig::Csv(_) => SourceKind::Csv,
            SourceConfig::Elasticsearch(_) => SourceKind::Elasticsearch,
            SourceConfig::Jsonl(_) => SourceKind::Jsonl,
        }
    }
}

/// Kinds of source: the values of `--source-type`, the `source` label of
/// `pipeline_info`. A new source adds its variant here; the compiler then
/// points to every match that must learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    /// A CSV file or standard input.
    Csv,
    /// An Elasticsearch or OpenSearch index.
    Elasticsearch,
    /// NDJSON (JSON lines): one JSON object per line, from a file or
    /// standard input, gzip or zstd read by content.
    Jsonl,
}

impl SourceKind {
    /// The `--source-type` value and `source` label.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Csv => "csv",
            SourceKind::Elasticsearch => "elasticsearch",
            SourceKind::Jsonl => "jsonl",
        }
    }

    /// The `error_type`s reading this source can count at the `source`
    /// stage.
    pub fn error_types(self) -> &'static [ErrorType] {
        use ErrorType::*;
        match self {
            SourceKind::Csv | SourceKind::Jsonl => &[Parse, Io, Config],
            SourceKind::Elasticsearch => &[Parse, Connection, Timeout, Server, Auth, Io, Config],
        }
    }

    /// `--create-table-sample` when it is not given: a file can be read
    /// twice (all of it: 0); a server is sampled.
    pub fn default_create_table_sample(self) -> u64 {
        match self {
            SourceKind::Csv | SourceKind::Jsonl => 0,
            SourceKind::Elasticsearch => DEFAULT_CREATE_TABLE_SAMPLE,
        }
    }
}

/// JSON-lines file sink settings.
#[derive(Debug, Clone)]
pub struct FileSinkConfig {
    /// Where to write.
    pub output: OutputPath,
    /// Compress the output: each batch one gzip member or zstd frame.
    pub compression: Option<OutputCompression>,
    /// `--checkpoint`, resumed: the `.partial` is kept, cut back to this
    /// length, and written on from there.
    pub resume_bytes: Option<u64>,
    /// A hash of its last bytes before that length, as the checkpoint has
    /// it (`checkpoint::tail_of`): checked before the file is written on.
    pub resume_tail: Option<String>,
}

/// `--output-compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputCompression {
    /// gzip (each batch one member; `zcat` reads them as one stream).
    Gzip,
    /// Zstandard (each batch one frame).
    Zstd,
}

impl OutputCompression {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            OutputCompression::Gzip => "gzip",
            OutputCompression::Zstd => "zstd",
        }
    }

    /// The compression an output file's name asks for: `.gz`, `.zst`.
    pub fn from_name(path: &std::path::Path) -> Option<OutputCompression> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz" | "gzip") => Some(OutputCompression::Gzip),
            Some("zst" | "zstd") => Some(OutputCompression::Zstd),
            _ => None,
        }
    }
}

/// A secret (a password, an API key): printed as `***` by `Debug`, so it
/// cannot reach a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for handing to a client library; never for printing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Which sink to write.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// A JSON-lines file.
    File(FileSinkConfig),
    /// A MySQL/MariaDB table.
    Mysql(Box<MysqlConfig>),
}

impl SinkConfig {
    /// Where records go, for the summary: the output file, `-` for
    /// standard output, or `user@host:port/db.table` (never a password).
    pub fn target(&self) -> String {
        match self {
            SinkConfig::File(f) => match &f.output {
                OutputPath::Stdout => "-".into(),
                OutputPath::File(p) => p.display().to_string(),
            },
            SinkConfig::Mysql(m) => m.display_target(),
        }
    }

    /// Which kind of sink this is.
    pub fn kind(&self) -> SinkKind {
        match self {
            SinkConfig::File(_) => SinkKind::File,
            SinkConfig::Mysql(_) => SinkKind::Mysql,
        }
    }

    /// How many writers this sink uses when `--workers` is not given.
    pub fn default_workers(&self) -> usize {
        match self {
            SinkConfig::File(_) => 1,
            SinkConfig::Mysql(_) => 2,
        }
    }

    /// Records per batch when `--batch-size` is not given. MySQL batches are
    /// larger: each is a transaction with a two-phase commit (two log
    /// flushes), which small batches would spend most of their time on.
    pub fn default_batch_size(&self) -> usize {
        match self {
            SinkConfig::File(_) => 1000,
            SinkConfig::Mysql(_) => 5000,
        }
    }
}

/// Kinds of sink: the values of `--sink-type`, the `sink` label of
/// `pipeline_info`. A new sink adds its variant here; the compiler then
/// points to every match that must learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SinkKind {
    /// A JSON-lines file or standard output.
    File,
    /// A MySQL or MariaDB table.
    Mysql,
}

impl SinkKind {
    /// The `--sink-type` value and `sink` label.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::File => "file",
            SinkKind::Mysql => "mysql",
        }
    }

    /// The `error_type`s writing to this sink can count at the `sink`
    /// stage.
    pub fn error_types(self) -> &'static [ErrorType] {
        use ErrorType::*;
        match self {
            SinkKind::File => &[Io, Config],
            SinkKind::Mysql => &[
                Conversion, Duplicate, Connection, Timeout, Server, Auth, Io, Config,
            ],
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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
    /// Keep serving the final state this long after the run (a signal ends
    /// it sooner).
    pub linger: std::time::Duration,
}

/// Pushgateway settings.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The Pushgateway's base URL.
    pub url: url::Url,
    /// The `job` grouping label.
    pub job: String,
    /// Also push this often while the run lasts.
    pub interval: Option<Duration>,
    /// A failed final push fails the run.
    pub required: bool,
    /// Longest one push may take, retries included.
    pub timeout: Duration,
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
    /// `--accept-errors`: failed records a completed run may have and still
    /// count as a success (exit 0).
    pub accept_errors: Option<ErrorAllowance>,
    /// Retries of a request or batch that failed for a passing reason.
    pub retry: RetryPolicy,
    /// Read at most this many records.
    pub limit: Option<u64>,
    /// `--flatten`: nested objects become fields of their own.
    pub flatten: Option<crate::flatten::FlattenConfig>,
    /// The metrics server.
    pub metrics: MetricsConfig,
    /// The `pipeline_id` label on every series.
    pub pipeline_id: String,
    /// Log format.
    pub log_format: LogFormat,
    /// No progress bar, no info logs (the summary line stays).
    pub quiet: bool,
    /// `--check`: say what the run would do, write nothing.
    pub check: bool,
    /// Warnings found while reading the flags (an input named twice, a
    /// shard with no file), logged once logging has started.
    pub notes: Vec<String>,
    /// `--summary-json`: where the summary record is also written.
    pub summary_json: Option<OutputPath>,
    /// Longest the process waits, after a stop signal, for the sinks to drain.
    pub shutdown_timeout: Duration,
    /// Push metrics to a Pushgateway.
    pub push: Option<PushConfig>,
    /// Write the final metrics to this file for node_exporter.
    pub textfile: Option<PathBuf>,
    /// Hold this lock for the whole run.
    pub lock_file: Option<PathBuf>,
    /// The slice this process reads and the count (`--es-slice-id` of
    /// `--es-slices`, `--input-shard I/N`): `slice` and `slices` labels on
    /// every metric, and its own Pushgateway group.
    pub slice: Option<(u32, u32)>,
    /// `--checkpoint`: a run that can be resumed.
    pub checkpoint: Option<CheckpointConfig>,
}

/// `--checkpoint PATH`, `--restart`, `--checkpoint-every`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointConfig {
    /// The checkpoint file.
    pub path: PathBuf,
    /// Held for the run: one run of the job at a time.
    pub lock: PathBuf,
    /// Discard an existing checkpoint and start over.
    pub restart: bool,
    /// Longest time between two writes of the file while batches commit.
    pub every: Duration,
}

impl Config {
    /// A configuration with the documented defaults around a source and sink;
    /// used by tests and as the base the CLI fills in.
    pub fn new(source: SourceConfig, sink: SinkConfig) -> Config {
        let workers = sink.default_workers();
        let batch_size = sink.default_batch_size();
        Config {
            source,
            sink,
            batch_size,
            batch_timeout: Duration::from_millis(DEFAULT_BATCH_TIMEOUT_MS),
            queue_size: DEFAULT_QUEUE_SIZE,
            workers,
            dead_letter: None,
            max_errors: None,
            accept_errors: None,
            retry: RetryPolicy {
                retry_for: crate::retry::parse_duration(DEFAULT_RETRY_FOR)
                    .expect("a valid default"),
                max_retries: None,
                at_start: crate::retry::parse_duration(DEFAULT_START_RETRY_FOR)
                    .expect("a valid default"),
            },
            limit: None,
            flatten: None,
            metrics: MetricsConfig {
                port: None,
                host: DEFAULT_METRICS_HOST.into(),
                keep_alive: false,
                linger: std::time::Duration::ZERO,
            },
            pipeline_id: DEFAULT_PIPELINE_ID.into(),
            log_format: LogFormat::Text,
            quiet: false,
            check: false,
            notes: Vec::new(),
            summary_json: None,
            shutdown_timeout: Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            push: None,
            slice: None,
            checkpoint: None,
            textfile: None,
            lock_file: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kinds_label_is_its_flag_value() {
        use clap::ValueEnum;
        for k in SourceKind::value_variants() {
            assert_eq!(cli_name(k), k.as_str());
        }
        for k in SinkKind::value_variants() {
            assert_eq!(cli_name(k), k.as_str());
        }
    }
}
