//! Command-line flags (clap derive) and their translation into a validated
//! [`Config`]. Every flag has a kebab-case name and also accepts the
//! snake_case spelling older cron lines use (`--source_type`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config::{
    Config, CsvConfig, EsConfig, EsMode, FileSinkConfig, InputPath, LoadMode, LogFormat,
    MetricsConfig, MysqlConfig, OnDuplicate, OutputPath, PushConfig, Secret, SinkConfig,
    SourceConfig, SslMode,
};
use crate::error::PipelineError;

/// Kinds of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceType {
    /// A CSV file or standard input.
    Csv,
    /// An Elasticsearch or OpenSearch index.
    Elasticsearch,
}

/// `--es-mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EsModeArg {
    /// Point in time where the server supports it (Elasticsearch >= 7.10, OpenSearch >= 2.4), else scroll.
    Auto,
    /// Point in time + search_after.
    Pit,
    /// The scroll API.
    Scroll,
}

/// Kinds of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkType {
    /// A JSON-lines file or standard output.
    File,
    /// A MySQL or MariaDB table.
    Mysql,
}

/// `--on-duplicate` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnDuplicateArg {
    /// Leave the existing row alone; count the record as skipped.
    Skip,
    /// Update the existing row with the record; count it as updated.
    Update,
    /// Fail the record (it goes to the dead-letter file).
    Error,
}

/// `--mysql-load-mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadModeArg {
    /// load-data when the server allows LOCAL INFILE, else insert.
    Auto,
    /// Multi-row prepared INSERT statements.
    Insert,
    /// LOAD DATA LOCAL INFILE, streamed from memory (no temporary files).
    LoadData,
}

/// `--db-ssl-mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SslModeArg {
    /// Plain TCP.
    Disabled,
    /// TLS if the server offers it, else plain TCP.
    Preferred,
    /// TLS; the certificate is not checked.
    Required,
    /// TLS; the certificate must be signed by --db-ssl-ca.
    VerifyCa,
    /// TLS; the certificate must be signed by --db-ssl-ca and name the host.
    VerifyIdentity,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

const EXAMPLES: &str = "\
Examples:
  # CSV to JSON lines, with metrics for Prometheus on port 9464
  pipeline-cli --source-type csv --csv-file fixtures/sample.csv \\
               --sink-type file --output-file out.jsonl --metrics-port 9464

  # typed values, semicolon-separated input from stdin, JSON lines to stdout
  cat data.csv | pipeline-cli --source-type csv --csv-file - --csv-delimiter ';' \\
               --csv-infer-types --sink-type file --output-file -

  # keep bad rows, give up after 100 of them
  pipeline-cli --source-type csv --csv-file in.csv --sink-type file --output-file out.jsonl \\
               --dead-letter rejected.jsonl --max-errors 100

Every flag also accepts its snake_case spelling (--source_type, --csv_file, ...).

Exit codes: 0 success; 1 the run failed or records failed; 2 usage or configuration
error (nothing was read); 75 another run holds the lock; 130 interrupted by SIGINT;
143 interrupted by SIGTERM.";

/// pipeline-cli moves records from a source (CSV, Elasticsearch/OpenSearch)
/// into a sink (JSON lines, MySQL/MariaDB), batching, counting and timing
/// everything for Prometheus.
#[derive(Debug, Parser)]
#[command(
    name = "pipeline-cli",
    version,
    about,
    after_long_help = EXAMPLES,
    after_help = "Run with --help for examples and exit codes.",
    args_override_self = true
)]
pub struct Cli {
    /// Where records come from. Example: --source-type csv
    #[arg(long, alias = "source_type", value_enum, help_heading = "Source")]
    pub source_type: SourceType,

    /// CSV file to read; `-` reads standard input. Example: --csv-file data/orders.csv
    #[arg(
        long,
        alias = "csv_file",
        value_name = "PATH",
        help_heading = "CSV source"
    )]
    pub csv_file: Option<String>,

    /// Field delimiter: one character, or `tab`. Example: --csv-delimiter ';'
    #[arg(
        long,
        alias = "csv_delimiter",
        value_name = "C",
        default_value = ",",
        help_heading = "CSV source"
    )]
    pub csv_delimiter: String,

    /// The first row is data, not a header; columns are named column_1, column_2, ...
    #[arg(long, alias = "csv_no_header", help_heading = "CSV source")]
    pub csv_no_header: bool,

    /// Write integers, decimals and true/false as JSON numbers and booleans, and
    /// empty fields as null (otherwise every value is a string).
    #[arg(long, alias = "csv_infer_types", help_heading = "CSV source")]
    pub csv_infer_types: bool,

    /// A quoted field longer than this is taken for an unclosed quote: its row
    /// is rejected and reading resumes on the next line. Bounds the memory one
    /// row may take. Example: --csv-max-field-bytes 256MiB
    #[arg(
        long,
        alias = "csv_max_field_bytes",
        value_name = "SIZE",
        default_value = "64MiB",
        help_heading = "CSV source"
    )]
    pub csv_max_field_bytes: String,

    /// A quoted field spanning more lines than this is taken for an unclosed
    /// quote, like --csv-max-field-bytes. Example: --csv-max-field-lines 100000
    #[arg(
        long,
        alias = "csv_max_field_lines",
        value_name = "N",
        default_value_t = crate::config::DEFAULT_CSV_MAX_FIELD_LINES,
        help_heading = "CSV source"
    )]
    pub csv_max_field_lines: u64,

    /// Elasticsearch/OpenSearch node URL(s), comma-separated; a bare host:port
    /// means http. Example: --es-url https://es1:9200,https://es2:9200
    #[arg(
        long,
        alias = "es_url",
        value_name = "URL[,URL]",
        help_heading = "Elasticsearch source"
    )]
    pub es_url: Option<String>,

    /// Index name or pattern to read. Example: --es-index 'logs-2026.*'
    #[arg(
        long,
        alias = "es_index",
        value_name = "NAME",
        help_heading = "Elasticsearch source"
    )]
    pub es_index: Option<String>,

    /// Query as JSON (a query clause or a body with "query"), or @FILE to read it
    /// from a file. Default: match_all. Example: --es-query '{"term":{"status":"paid"}}'
    #[arg(
        long,
        alias = "es_query",
        value_name = "JSON|@FILE",
        help_heading = "Elasticsearch source"
    )]
    pub es_query: Option<String>,

    /// Documents per page (at most 10000). Example: --es-page-size 5000
    #[arg(
        long,
        alias = "es_page_size",
        value_name = "N",
        default_value_t = 1000,
        help_heading = "Elasticsearch source"
    )]
    pub es_page_size: u32,

    /// Only these _source fields, comma-separated. Example: --es-fields id,amount,customer
    #[arg(
        long,
        alias = "es_fields",
        value_name = "A,B",
        help_heading = "Elasticsearch source"
    )]
    pub es_fields: Option<String>,

    /// Metadata copied into each record, comma-separated (empty for none).
    /// Example: --es-meta-fields _id,_index
    #[arg(
        long,
        alias = "es_meta_fields",
        value_name = "A,B",
        default_value = "_id",
        help_heading = "Elasticsearch source"
    )]
    pub es_meta_fields: String,

    /// Read N slices in parallel (sliced point in time or scroll). Example: --es-slices 4
    #[arg(
        long,
        alias = "es_slices",
        value_name = "N",
        default_value_t = 1,
        help_heading = "Elasticsearch source"
    )]
    pub es_slices: u32,

    /// Paging: point in time + search_after, scroll, or auto (point in time where
    /// the server has it).
    #[arg(
        long,
        alias = "es_mode",
        value_enum,
        default_value = "auto",
        help_heading = "Elasticsearch source"
    )]
    pub es_mode: EsModeArg,

    /// How long the server keeps the point in time or scroll open between two
    /// pages. Example: --es-keep-alive 10m
    #[arg(
        long,
        alias = "es_keep_alive",
        value_name = "DURATION",
        default_value = "5m",
        help_heading = "Elasticsearch source"
    )]
    pub es_keep_alive: String,

    /// User for basic authentication (password in PIPELINE_ES_PASS). Example: --es-user reader
    #[arg(
        long,
        alias = "es_user",
        value_name = "USER",
        help_heading = "Elasticsearch source"
    )]
    pub es_user: Option<String>,

    /// Password for --es-user; better set as PIPELINE_ES_PASS. Never printed.
    #[arg(
        long,
        alias = "es_pass",
        value_name = "PASS",
        env = "PIPELINE_ES_PASS",
        hide_env_values = true,
        help_heading = "Elasticsearch source"
    )]
    pub es_pass: Option<String>,

    /// API key (base64 id:key); better set as PIPELINE_ES_API_KEY. Never printed.
    #[arg(
        long,
        alias = "es_api_key",
        value_name = "KEY",
        env = "PIPELINE_ES_API_KEY",
        hide_env_values = true,
        help_heading = "Elasticsearch source"
    )]
    pub es_api_key: Option<String>,

    /// CA certificate (PEM) to trust for https. Example: --es-ca-cert /etc/ssl/es-ca.pem
    #[arg(
        long,
        alias = "es_ca_cert",
        value_name = "PATH",
        help_heading = "Elasticsearch source"
    )]
    pub es_ca_cert: Option<PathBuf>,

    /// Do not check the server's certificate (testing only).
    #[arg(long, alias = "es_insecure", help_heading = "Elasticsearch source")]
    pub es_insecure: bool,

    /// Longest one request may take before it counts as timed out (and is
    /// retried). Example: --es-timeout 2m
    #[arg(
        long,
        alias = "es_timeout",
        value_name = "DURATION",
        default_value = "30s",
        help_heading = "Elasticsearch source"
    )]
    pub es_timeout: String,

    /// Incremental runs: read only documents whose FIELD is greater than the
    /// value saved by the last successful run (needs --state-file). Example: --es-since-field updated_at
    #[arg(
        long,
        alias = "es_since_field",
        value_name = "FIELD",
        help_heading = "Elasticsearch source"
    )]
    pub es_since_field: Option<String>,

    /// Where --es-since-field keeps its value; written atomically, only when a
    /// run succeeds. Example: --state-file /var/lib/pipeline/orders.state
    #[arg(
        long,
        alias = "state_file",
        value_name = "PATH",
        help_heading = "Elasticsearch source"
    )]
    pub state_file: Option<PathBuf>,

    /// Where records go. Example: --sink-type file
    #[arg(long, alias = "sink_type", value_enum, help_heading = "Sink")]
    pub sink_type: SinkType,

    /// JSON-lines file to write; `-` writes standard output. The file is written
    /// as PATH.partial and renamed to PATH only when the run succeeds.
    /// Example: --output-file out/orders.jsonl
    #[arg(
        long,
        alias = "output_file",
        value_name = "PATH",
        help_heading = "File sink"
    )]
    pub output_file: Option<String>,

    /// MySQL/MariaDB connection as a URL; the separate --db-* flags override its
    /// parts. Keep the password out of it: use PIPELINE_DB_PASS.
    /// Example: --db-url mysql://loader@db.internal:3306/analytics
    #[arg(
        long,
        alias = "db_url",
        value_name = "URL",
        help_heading = "MySQL sink"
    )]
    pub db_url: Option<String>,

    /// Database host. Example: --db-host 127.0.0.1
    #[arg(
        long,
        alias = "db_host",
        value_name = "HOST",
        help_heading = "MySQL sink"
    )]
    pub db_host: Option<String>,

    /// Database port (default 3306). Example: --db-port 3307
    #[arg(long, alias = "db_port", value_name = "N", help_heading = "MySQL sink")]
    pub db_port: Option<u16>,

    /// Database user (default root). Example: --db-user loader
    #[arg(
        long,
        alias = "db_user",
        value_name = "USER",
        help_heading = "MySQL sink"
    )]
    pub db_user: Option<String>,

    /// Database password; better set in the environment as PIPELINE_DB_PASS so it
    /// stays out of the process list. Never printed.
    #[arg(
        long,
        alias = "db_pass",
        value_name = "PASS",
        env = "PIPELINE_DB_PASS",
        hide_env_values = true,
        help_heading = "MySQL sink"
    )]
    pub db_pass: Option<String>,

    /// Database (schema) name. Example: --db-name analytics
    #[arg(
        long,
        alias = "db_name",
        value_name = "NAME",
        help_heading = "MySQL sink"
    )]
    pub db_name: Option<String>,

    /// Table to load. Record fields map to its columns by name. Example: --db-table orders
    #[arg(
        long,
        alias = "db_table",
        value_name = "TABLE",
        help_heading = "MySQL sink"
    )]
    pub db_table: Option<String>,

    /// Create the table if it is missing, with column types inferred from the
    /// first batch (the DDL is logged). Example: --create-table --db-key id
    #[arg(long, alias = "create_table", help_heading = "MySQL sink")]
    pub create_table: bool,

    /// Primary key column(s) of a table made by --create-table, comma-separated.
    /// Example: --db-key id
    #[arg(
        long,
        alias = "db_key",
        value_name = "COL",
        help_heading = "MySQL sink"
    )]
    pub db_key: Option<String>,

    /// A record whose key is already in the table: skip it (counted as skipped),
    /// update the row (counted as updated), or fail it (dead-lettered).
    #[arg(
        long,
        alias = "on_duplicate",
        value_enum,
        default_value = "skip",
        help_heading = "MySQL sink"
    )]
    pub on_duplicate: OnDuplicateArg,

    /// How rows are sent: LOAD DATA LOCAL INFILE from memory, multi-row INSERT,
    /// or auto (load-data when the server allows LOCAL INFILE). Both give identical tables.
    #[arg(
        long,
        alias = "mysql_load_mode",
        value_enum,
        default_value = "auto",
        help_heading = "MySQL sink"
    )]
    pub mysql_load_mode: LoadModeArg,

    /// TLS to the database. Example: --db-ssl-mode verify-ca --db-ssl-ca /etc/ssl/db-ca.pem
    #[arg(
        long,
        alias = "db_ssl_mode",
        value_enum,
        default_value = "preferred",
        help_heading = "MySQL sink"
    )]
    pub db_ssl_mode: SslModeArg,

    /// CA certificate (PEM) for --db-ssl-mode verify-ca / verify-identity.
    #[arg(
        long,
        alias = "db_ssl_ca",
        value_name = "PATH",
        help_heading = "MySQL sink"
    )]
    pub db_ssl_ca: Option<PathBuf>,

    /// Record fields that have no column in the table are an error (exit 2)
    /// instead of being ignored with a warning.
    #[arg(long, alias = "strict_columns", help_heading = "MySQL sink")]
    pub strict_columns: bool,

    /// Add a column (ALTER TABLE … ADD COLUMN, type inferred from the values)
    /// for a record field the table lacks, instead of failing its records.
    #[arg(long, alias = "add_columns", help_heading = "MySQL sink")]
    pub add_columns: bool,

    /// Record fields not to load, comma-separated: they need no column and are
    /// left out on purpose (any other field without a column fails its record).
    /// Example: --ignore-fields internal_note,debug
    #[arg(
        long,
        alias = "ignore_fields",
        value_name = "A,B",
        help_heading = "MySQL sink"
    )]
    pub ignore_fields: Option<String>,

    /// With --create-table and no --db-key: create the table without a primary
    /// key, accepting that a re-run inserts every row again.
    #[arg(long, alias = "no_key", help_heading = "MySQL sink")]
    pub no_key: bool,

    /// Longest one database statement may take before it counts as timed out
    /// (and is retried on a new connection). Example: --db-timeout 2m
    #[arg(
        long,
        alias = "db_timeout",
        value_name = "DURATION",
        default_value = "60s",
        help_heading = "MySQL sink"
    )]
    pub db_timeout: String,

    /// How long failed requests and batches are retried (lost connection,
    /// deadlock, lock wait timeout, 429/502/503/504, timeouts), with
    /// exponential backoff of up to 10 s between attempts. Example: --retry-for 15m
    #[arg(
        long,
        alias = "retry_for",
        value_name = "DURATION",
        default_value = "5m",
        help_heading = "Errors"
    )]
    pub retry_for: String,

    /// At most N retries of one request or batch (within --retry-for).
    /// Example: --max-retries 10
    #[arg(long, alias = "max_retries", value_name = "N", help_heading = "Errors")]
    pub max_retries: Option<u32>,

    /// Records per batch written by a sink worker (default: 1000 for the file
    /// sink, 5000 for MySQL, where each batch is one transaction with a
    /// two-phase commit). Example: --batch-size 2000
    #[arg(
        long,
        alias = "batch_size",
        value_name = "N",
        help_heading = "Batching"
    )]
    pub batch_size: Option<usize>,

    /// Longest a partial batch waits for more records before it is written, in
    /// milliseconds. Example: --batch-timeout-ms 250
    #[arg(
        long,
        alias = "batch_timeout_ms",
        value_name = "N",
        default_value_t = 1000,
        help_heading = "Batching"
    )]
    pub batch_timeout_ms: u64,

    /// Records buffered between the source and the sinks; a full queue pauses
    /// the source, so memory stays flat. Example: --queue-size 20000
    #[arg(
        long,
        alias = "queue_size",
        value_name = "N",
        default_value_t = 10_000,
        help_heading = "Batching"
    )]
    pub queue_size: usize,

    /// Sink workers writing in parallel (default: 1 for the file sink). With
    /// more than one, output lines are no longer in input order. Example: --workers 4
    #[arg(long, value_name = "N", help_heading = "Batching")]
    pub workers: Option<usize>,

    /// Append every rejected record, with its line number, raw text and the
    /// reason, to this JSON-lines file. Example: --dead-letter rejected.jsonl
    #[arg(
        long,
        alias = "dead_letter",
        value_name = "PATH",
        help_heading = "Errors"
    )]
    pub dead_letter: Option<PathBuf>,

    /// Stop reading once N records have failed (the run then fails). Example: --max-errors 100
    #[arg(long, alias = "max_errors", value_name = "N", help_heading = "Errors")]
    pub max_errors: Option<u64>,

    /// Read at most N records, then finish normally. Example: --limit 1000
    #[arg(long, value_name = "N", help_heading = "Errors")]
    pub limit: Option<u64>,

    /// Serve /metrics, /health and / on this port while the run lasts (0 picks a
    /// free port and logs it). Example: --metrics-port 9464
    #[arg(
        long,
        alias = "metrics_port",
        value_name = "N",
        help_heading = "Metrics"
    )]
    pub metrics_port: Option<u16>,

    /// Address the metrics server binds. Example: --metrics-host 0.0.0.0
    #[arg(
        long,
        alias = "metrics_host",
        value_name = "H",
        default_value = "127.0.0.1",
        help_heading = "Metrics"
    )]
    pub metrics_host: String,

    /// After the run ends, keep serving the final metrics until Ctrl+C or
    /// SIGTERM, so Prometheus gets its last scrape.
    #[arg(long, alias = "metrics_keep_alive", help_heading = "Metrics")]
    pub metrics_keep_alive: bool,

    /// Value of the pipeline_id label on every series. Example: --pipeline-id orders-hourly
    #[arg(
        long,
        alias = "pipeline_id",
        value_name = "ID",
        default_value = "default",
        help_heading = "Metrics"
    )]
    pub pipeline_id: String,

    /// Log format on stderr. Example: --log-format json
    #[arg(
        long,
        alias = "log_format",
        value_enum,
        default_value = "text",
        help_heading = "Output"
    )]
    pub log_format: LogFormatArg,

    /// No progress bar, no informational logs, no summary line; errors still print.
    #[arg(long, short, help_heading = "Output")]
    pub quiet: bool,

    /// Read flags from a TOML file: the same names as keys (`source-type = "csv"`,
    /// `batch-size = 5000`, `create-table = true`); flags on the command line
    /// override it. Secrets are not allowed in it: use the environment.
    /// Example: --config /etc/pipeline/orders.toml
    #[arg(long, value_name = "FILE", help_heading = "Scheduled runs")]
    pub config: Option<PathBuf>,

    /// Push the run's metrics to this Pushgateway when it ends (and every
    /// --push-interval while it runs). Example: --pushgateway-url http://127.0.0.1:9091
    #[arg(
        long,
        alias = "pushgateway_url",
        value_name = "URL",
        help_heading = "Scheduled runs"
    )]
    pub pushgateway_url: Option<String>,

    /// The `job` grouping label of pushed metrics. Example: --push-job nightly-export
    #[arg(
        long,
        alias = "push_job",
        value_name = "NAME",
        default_value = "pipeline-cli",
        help_heading = "Scheduled runs"
    )]
    pub push_job: String,

    /// Longest the final push may take, retries included; a slow Pushgateway
    /// never holds a finished run longer. Example: --push-timeout 30s
    #[arg(
        long,
        alias = "push_timeout",
        value_name = "DURATION",
        default_value = "10s",
        help_heading = "Scheduled runs"
    )]
    pub push_timeout: String,

    /// Also push every SECS seconds while the run lasts. Example: --push-interval 15
    #[arg(
        long,
        alias = "push_interval",
        value_name = "SECS",
        help_heading = "Scheduled runs"
    )]
    pub push_interval: Option<u64>,

    /// A failed final push fails the run (exit 1); otherwise it is only logged and counted.
    #[arg(long, alias = "push_required", help_heading = "Scheduled runs")]
    pub push_required: bool,

    /// Write the final metrics to this file (atomically) for node_exporter's
    /// textfile collector. Example: --metrics-textfile /var/lib/node_exporter/orders.prom
    #[arg(
        long,
        alias = "metrics_textfile",
        value_name = "PATH",
        help_heading = "Scheduled runs"
    )]
    pub metrics_textfile: Option<PathBuf>,

    /// Hold an exclusive lock on this file for the whole run; a second run exits
    /// 75 at once. A killed run never leaves it locked. Example: --lock-file /run/lock/orders.lock
    #[arg(
        long,
        alias = "lock_file",
        value_name = "PATH",
        help_heading = "Scheduled runs"
    )]
    pub lock_file: Option<PathBuf>,

    /// After Ctrl+C or SIGTERM, wait at most this many seconds for the sinks to
    /// write what was read, then exit anyway. Example: --shutdown-timeout 30
    #[arg(
        long,
        alias = "shutdown_timeout",
        value_name = "SECS",
        default_value_t = 10,
        help_heading = "Output"
    )]
    pub shutdown_timeout: u64,
}

fn parse_delimiter(s: &str) -> Result<u8, PipelineError> {
    let bytes = match s {
        "tab" | "\\t" => return Ok(b'\t'),
        _ => s.as_bytes(),
    };
    match bytes {
        [b] if *b != b'"' && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(PipelineError::Config(format!(
            "--csv-delimiter must be a single ASCII character other than a quote or newline (or `tab`), got {s:?}"
        ))),
    }
}

fn positive_u64(flag: &str, n: u64) -> Result<u64, PipelineError> {
    if n == 0 {
        return Err(PipelineError::Config(format!("{flag} must be at least 1")));
    }
    Ok(n)
}

/// A duration flag (`30s`, `5m`, …) that must be more than zero.
fn duration_flag(flag: &str, text: &str) -> Result<Duration, PipelineError> {
    let d = crate::retry::parse_duration(text)
        .map_err(|e| PipelineError::Config(format!("{flag}: {e}")))?;
    if d.is_zero() {
        return Err(PipelineError::Config(format!("{flag} must be more than 0")));
    }
    Ok(d)
}

fn positive(flag: &str, n: usize) -> Result<usize, PipelineError> {
    if n == 0 {
        return Err(PipelineError::Config(format!("{flag} must be at least 1")));
    }
    Ok(n)
}

/// Flags that hold secrets: never read from a config file.
const SECRET_FLAGS: [&str; 3] = ["db-pass", "es-pass", "es-api-key"];

/// The command line with the settings of `--config FILE` (if given) put in
/// front, so flags on the command line override them.
pub fn with_config_file(
    args: Vec<std::ffi::OsString>,
) -> Result<Vec<std::ffi::OsString>, PipelineError> {
    use clap::CommandFactory;
    let mut path: Option<PathBuf> = None;
    let mut iter = args.iter().skip(1);
    while let Some(a) = iter.next() {
        let a = a.to_string_lossy();
        if a == "--config" {
            path = iter.next().map(PathBuf::from);
        } else if let Some(p) = a.strip_prefix("--config=") {
            path = Some(PathBuf::from(p));
        }
    }
    let Some(path) = path else {
        return Ok(args);
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| PipelineError::OpenInput {
        what: "--config",
        path: path.clone(),
        source,
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        PipelineError::Config(format!("--config {shown}: {}", e.message()))
    })?;
    let command = Cli::command();
    let mut injected = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        if SECRET_FLAGS.contains(&flag.as_str()) {
            return Err(PipelineError::Config(format!(
                "--config {shown}: '{key}' is a secret; set it in the environment (PIPELINE_DB_PASS, PIPELINE_ES_PASS, PIPELINE_ES_API_KEY) instead"
            )));
        }
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(flag.as_str()) && flag != "config")
            .ok_or_else(|| {
                PipelineError::Config(format!("--config {shown}: unknown setting '{key}'"))
            })?;
        let takes_value = arg.get_action().takes_values();
        if value_holds_password(&value) {
            return Err(PipelineError::Config(format!(
                "--config {shown}: '{key}' holds a password; set it in the environment (PIPELINE_DB_PASS, PIPELINE_ES_PASS) instead"
            )));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) if !takes_value => {
                if b {
                    injected.push(format!("--{flag}").into());
                }
                continue;
            }
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => {
                return Err(PipelineError::Config(format!(
                    "--config {shown}: '{key}' must be a string, number, boolean or list, not {}",
                    other.type_str()
                )))
            }
        };
        if !takes_value {
            return Err(PipelineError::Config(format!(
                "--config {shown}: '{key}' is a switch; write {key} = true"
            )));
        }
        injected.push(format!("--{flag}").into());
        injected.push(text.into());
    }
    let mut out = Vec::with_capacity(args.len() + injected.len());
    out.push(args[0].clone());
    out.extend(injected);
    out.extend(args.into_iter().skip(1));
    Ok(out)
}

/// True when `text` holds a URL with a password in any of the forms the
/// flags accept: `scheme://user:pass@host`, a bare `user:pass@host:port`, or
/// either as one part of a comma-separated list.
fn holds_password(text: &str) -> bool {
    text.split(',').map(str::trim).any(|part| {
        let with_scheme = if part.contains("://") {
            part.to_string()
        } else {
            format!("http://{part}")
        };
        if url::Url::parse(&with_scheme).is_ok_and(|u| u.password().is_some()) {
            return true;
        }
        // Forms the URL parser refuses still hold a secret: `user:pass@host`
        // (user info made of URL characters, then a host name).
        let rest = part.split_once("://").map_or(part, |(_, r)| r);
        rest.split_once('@').is_some_and(|(userinfo, host)| {
            userinfo.contains(':')
                && userinfo
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+;=:".contains(&b))
                && host
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'[')
        })
    })
}

/// [`holds_password`] for a TOML value of any type (lists included).
fn value_holds_password(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(s) => holds_password(s),
        toml::Value::Array(items) => items.iter().any(value_holds_password),
        toml::Value::Table(t) => t.values().any(value_holds_password),
        _ => false,
    }
}

/// A URL without any `user:password@` part, for messages.
fn strip_userinfo(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &raw[..s + 3], &raw[at + 1..]),
        (None, Some(at)) => raw[at + 1..].to_string(),
        _ => raw.to_string(),
    }
}

/// The parts of a `mysql://user:pass@host:port/db` URL.
#[derive(Debug, Default)]
struct DbUrl {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    pass: Option<String>,
    db: Option<String>,
}

fn parse_db_url(raw: &str) -> Result<DbUrl, PipelineError> {
    // The message never repeats the URL: it may hold a password.
    let bad =
        |why: &str| PipelineError::Config(format!("--db-url is not a valid MySQL URL: {why}"));
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(bad("it must start with mysql://"));
    }
    // Percent-decoding only: a '+' in a password stays a '+'.
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let db = url.path().trim_start_matches('/');
    Ok(DbUrl {
        host: url.host_str().map(str::to_string),
        port: url.port(),
        user: (!url.username().is_empty()).then(|| decode(url.username())),
        pass: url.password().map(decode),
        db: (!db.is_empty()).then(|| decode(db)),
    })
}

impl Cli {
    fn retry_policy(&self) -> Result<crate::retry::RetryPolicy, PipelineError> {
        Ok(crate::retry::RetryPolicy {
            retry_for: crate::retry::parse_duration(&self.retry_for)
                .map_err(|e| PipelineError::Config(format!("--retry-for: {e}")))?,
            max_retries: self.max_retries,
        })
    }

    fn es_config(&self) -> Result<EsConfig, PipelineError> {
        let cfg = |m: String| PipelineError::Config(m);
        let raw = self.es_url.as_deref().ok_or_else(|| {
            cfg(
                "--source-type elasticsearch needs --es-url URL (e.g. http://localhost:9200)"
                    .into(),
            )
        })?;
        let mut urls = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let with_scheme = if part.contains("://") {
                part.to_string()
            } else {
                format!("http://{part}")
            };
            let url = url::Url::parse(&with_scheme).map_err(|e| {
                cfg(format!(
                    "--es-url '{}' is not a URL: {e}",
                    strip_userinfo(part)
                ))
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(cfg(format!(
                    "--es-url '{}' must be http or https",
                    strip_userinfo(part)
                )));
            }
            urls.push(url);
        }
        if urls.is_empty() {
            return Err(cfg("--es-url needs at least one URL".into()));
        }
        let index = self
            .es_index
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| cfg("--source-type elasticsearch needs --es-index NAME".into()))?;
        let query = match self.es_query.as_deref() {
            None => serde_json::json!({"match_all": {}}),
            Some(q) => {
                let text = match q.strip_prefix('@') {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| cfg(format!("--es-query @{path}: {e}")))?,
                    None => q.to_string(),
                };
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| cfg(format!("--es-query is not valid JSON: {e}")))?;
                match v {
                    serde_json::Value::Object(mut m) if m.contains_key("query") => {
                        m.remove("query").expect("checked")
                    }
                    serde_json::Value::Object(_) => v,
                    _ => return Err(cfg("--es-query must be a JSON object".into())),
                }
            }
        };
        if self.es_page_size == 0 || self.es_page_size > 10_000 {
            return Err(cfg("--es-page-size must be between 1 and 10000".into()));
        }
        if self.es_slices == 0 || self.es_slices > 1024 {
            return Err(cfg("--es-slices must be between 1 and 1024".into()));
        }
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        };
        if self.es_since_field.is_some() != self.state_file.is_some() {
            return Err(cfg("--es-since-field and --state-file go together".into()));
        }
        if self.es_pass.is_some() && self.es_user.is_none() {
            return Err(cfg(
                "a password (--es-pass / PIPELINE_ES_PASS) needs --es-user".into(),
            ));
        }
        if let Some(ca) = &self.es_ca_cert {
            if !ca.is_file() {
                return Err(cfg(format!(
                    "--es-ca-cert '{}' is not a readable file",
                    ca.display()
                )));
            }
        }
        let ka = &self.es_keep_alive;
        let unit_ok = ["ms", "s", "m", "h", "d"].iter().any(|u| {
            ka.strip_suffix(u)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        if !unit_ok {
            return Err(cfg(format!(
                "--es-keep-alive '{ka}' is not a duration like 30s, 5m or 1h"
            )));
        }
        Ok(EsConfig {
            urls,
            index,
            query,
            page_size: self.es_page_size,
            fields: self.es_fields.as_deref().map(list),
            meta_fields: list(&self.es_meta_fields),
            slices: self.es_slices,
            mode: match self.es_mode {
                EsModeArg::Auto => EsMode::Auto,
                EsModeArg::Pit => EsMode::Pit,
                EsModeArg::Scroll => EsMode::Scroll,
            },
            keep_alive: ka.clone(),
            user: self.es_user.clone(),
            password: self
                .es_pass
                .clone()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            api_key: self
                .es_api_key
                .clone()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            ca_cert: self.es_ca_cert.clone(),
            insecure: self.es_insecure,
            since_field: self.es_since_field.clone(),
            state_file: self.state_file.clone(),
            retry: self.retry_policy()?,
            timeout: duration_flag("--es-timeout", &self.es_timeout)?,
        })
    }

    fn mysql_config(&self) -> Result<MysqlConfig, PipelineError> {
        let url = match &self.db_url {
            Some(u) => parse_db_url(u)?,
            None => DbUrl::default(),
        };
        let database = self.db_name.clone().or(url.db).ok_or_else(|| {
            PipelineError::Config(
                "--sink-type mysql needs the database: --db-name NAME (or the path of --db-url)"
                    .into(),
            )
        })?;
        let table = self.db_table.clone().ok_or_else(|| {
            PipelineError::Config("--sink-type mysql needs --db-table TABLE".into())
        })?;
        let ssl_mode = match self.db_ssl_mode {
            SslModeArg::Disabled => SslMode::Disabled,
            SslModeArg::Preferred => SslMode::Preferred,
            SslModeArg::Required => SslMode::Required,
            SslModeArg::VerifyCa => SslMode::VerifyCa,
            SslModeArg::VerifyIdentity => SslMode::VerifyIdentity,
        };
        if matches!(ssl_mode, SslMode::VerifyCa | SslMode::VerifyIdentity)
            && self.db_ssl_ca.is_none()
        {
            return Err(PipelineError::Config(
                "--db-ssl-mode verify-ca and verify-identity need --db-ssl-ca PATH".into(),
            ));
        }
        if let Some(ca) = &self.db_ssl_ca {
            if !ca.is_file() {
                return Err(PipelineError::Config(format!(
                    "--db-ssl-ca '{}' is not a readable file",
                    ca.display()
                )));
            }
        }
        let key: Vec<String> = self
            .db_key
            .as_deref()
            .map(|k| {
                k.split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if self.db_key.is_some() && key.is_empty() {
            return Err(PipelineError::Config(
                "--db-key needs at least one column name".into(),
            ));
        }
        Ok(MysqlConfig {
            host: self
                .db_host
                .clone()
                .or(url.host)
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: self.db_port.or(url.port).unwrap_or(3306),
            user: self
                .db_user
                .clone()
                .or(url.user)
                .unwrap_or_else(|| "root".into()),
            password: self
                .db_pass
                .clone()
                .or(url.pass)
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            database,
            table,
            ssl_mode,
            ssl_ca: self.db_ssl_ca.clone(),
            create_table: self.create_table,
            key,
            on_duplicate: match self.on_duplicate {
                OnDuplicateArg::Skip => OnDuplicate::Skip,
                OnDuplicateArg::Update => OnDuplicate::Update,
                OnDuplicateArg::Error => OnDuplicate::Error,
            },
            load_mode: match self.mysql_load_mode {
                LoadModeArg::Auto => LoadMode::Auto,
                LoadModeArg::Insert => LoadMode::Insert,
                LoadModeArg::LoadData => LoadMode::LoadData,
            },
            strict_columns: self.strict_columns,
            add_columns: self.add_columns,
            ignore_fields: self
                .ignore_fields
                .as_deref()
                .map(|f| {
                    f.split(',')
                        .map(|c| c.trim().to_string())
                        .filter(|c| !c.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            no_key: self.no_key,
            retry: self.retry_policy()?,
            timeout: duration_flag("--db-timeout", &self.db_timeout)?,
        })
    }

    /// Checks the flags against each other and builds the run's [`Config`].
    pub fn into_config(self) -> Result<Config, PipelineError> {
        let source = match self.source_type {
            SourceType::Elasticsearch => SourceConfig::Elasticsearch(Box::new(self.es_config()?)),
            SourceType::Csv => {
                let file = self.csv_file.clone().ok_or_else(|| {
                    PipelineError::Config(
                        "--source-type csv needs --csv-file PATH (or `-` for standard input)"
                            .into(),
                    )
                })?;
                SourceConfig::Csv(CsvConfig {
                    input: if file == "-" {
                        InputPath::Stdin
                    } else {
                        InputPath::File(file.into())
                    },
                    delimiter: parse_delimiter(&self.csv_delimiter)?,
                    has_header: !self.csv_no_header,
                    infer_types: self.csv_infer_types,
                    max_field_bytes: crate::retry::parse_size(&self.csv_max_field_bytes)
                        .map_err(|e| PipelineError::Config(format!("--csv-max-field-bytes: {e}")))
                        .and_then(|n| positive_u64("--csv-max-field-bytes", n))?,
                    max_field_lines: positive_u64(
                        "--csv-max-field-lines",
                        self.csv_max_field_lines,
                    )?,
                })
            }
        };
        let sink = match self.sink_type {
            SinkType::Mysql => SinkConfig::Mysql(Box::new(self.mysql_config()?)),
            SinkType::File => {
                let file = self.output_file.clone().ok_or_else(|| {
                    PipelineError::Config(
                        "--sink-type file needs --output-file PATH (or `-` for standard output)"
                            .into(),
                    )
                })?;
                SinkConfig::File(FileSinkConfig {
                    output: if file == "-" {
                        OutputPath::Stdout
                    } else {
                        OutputPath::File(file.into())
                    },
                })
            }
        };
        let mut config = Config::new(source, sink);
        if let Some(n) = self.batch_size {
            config.batch_size = positive("--batch-size", n)?;
        }
        config.batch_timeout = Duration::from_millis(self.batch_timeout_ms.max(1));
        config.queue_size = positive("--queue-size", self.queue_size)?;
        if let Some(w) = self.workers {
            config.workers = positive("--workers", w)?;
        }
        if self.max_errors == Some(0) {
            return Err(PipelineError::Config(
                "--max-errors must be at least 1 (leave it out to never stop on errors)".into(),
            ));
        }
        if self.pipeline_id.is_empty() {
            return Err(PipelineError::Config(
                "--pipeline-id must not be empty".into(),
            ));
        }
        if self.metrics_keep_alive && self.metrics_port.is_none() {
            return Err(PipelineError::Config(
                "--metrics-keep-alive needs --metrics-port N".into(),
            ));
        }
        config.retry = self.retry_policy()?;
        config.dead_letter = self.dead_letter;
        config.max_errors = self.max_errors;
        config.limit = self.limit;
        config.metrics = MetricsConfig {
            port: self.metrics_port,
            host: self.metrics_host,
            keep_alive: self.metrics_keep_alive,
        };
        config.pipeline_id = self.pipeline_id;
        config.log_format = match self.log_format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
        config.quiet = self.quiet;
        config.shutdown_timeout = Duration::from_secs(self.shutdown_timeout);
        let label_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        };
        if !label_ok(&config.pipeline_id) {
            return Err(PipelineError::Config(
                "--pipeline-id may hold only letters, digits, '_', '-', '.' and ':'".into(),
            ));
        }
        if let Some(raw) = &self.pushgateway_url {
            let url = url::Url::parse(raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    PipelineError::Config(format!(
                        "--pushgateway-url '{}' is not an http(s) URL",
                        strip_userinfo(raw)
                    ))
                })?;
            if !label_ok(&self.push_job) {
                return Err(PipelineError::Config(
                    "--push-job may hold only letters, digits, '_', '-', '.' and ':'".into(),
                ));
            }
            if self.push_interval == Some(0) {
                return Err(PipelineError::Config(
                    "--push-interval must be at least 1".into(),
                ));
            }
            config.push = Some(PushConfig {
                url,
                job: self.push_job.clone(),
                interval: self.push_interval.map(Duration::from_secs),
                required: self.push_required,
                timeout: duration_flag("--push-timeout", &self.push_timeout)?,
            });
        } else if self.push_interval.is_some() || self.push_required {
            return Err(PipelineError::Config(
                "--push-interval and --push-required need --pushgateway-url URL".into(),
            ));
        }
        config.textfile = self.metrics_textfile.clone();
        config.lock_file = self.lock_file.clone();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(std::iter::once("pipeline-cli").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.into_config().map_err(|e| e.to_string())
    }

    #[test]
    fn snake_and_kebab_spellings_agree() {
        let a = parse(&[
            "--source_type",
            "csv",
            "--csv_file",
            "in.csv",
            "--sink_type",
            "file",
            "--output_file",
            "out.jsonl",
            "--batch_size",
            "7",
            "--metrics_port",
            "8000",
        ])
        .unwrap();
        let b = parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "in.csv",
            "--sink-type",
            "file",
            "--output-file",
            "out.jsonl",
            "--batch-size",
            "7",
            "--metrics-port",
            "8000",
        ])
        .unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.batch_size, 7);
        let c = parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "x",
            "--sink-type",
            "mysql",
            "--db-name",
            "d",
            "--db-table",
            "t",
        ])
        .unwrap();
        assert_eq!((c.batch_size, c.workers), (5000, 2));
        assert_eq!(a.metrics.port, Some(8000));
    }

    #[test]
    fn stdin_stdout_and_delimiters() {
        let c = parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "-",
            "--sink-type",
            "file",
            "--output-file",
            "-",
            "--csv-delimiter",
            "tab",
        ])
        .unwrap();
        let SourceConfig::Csv(csv) = &c.source else {
            panic!("csv source expected")
        };
        assert_eq!(csv.input, InputPath::Stdin);
        assert_eq!(csv.delimiter, b'\t');
        let SinkConfig::File(f) = &c.sink else {
            panic!("file sink expected")
        };
        assert_eq!(f.output, OutputPath::Stdout);
    }

    #[test]
    fn db_url_parts_and_flags_combine_and_secrets_stay_hidden() {
        let c = parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "x",
            "--sink-type",
            "mysql",
            "--db-url",
            "mysql://loader:p%40s+s@db.example:3307/shop",
            "--db-table",
            "orders",
            "--db-port",
            "3308",
        ])
        .unwrap();
        let SinkConfig::Mysql(m) = &c.sink else {
            panic!("mysql sink expected")
        };
        assert_eq!(m.host, "db.example");
        assert_eq!(m.port, 3308);
        assert_eq!(m.user, "loader");
        assert_eq!(m.password.as_ref().unwrap().expose(), "p@s+s");
        assert_eq!(m.database, "shop");
        assert_eq!(c.workers, 2);
        assert!(!format!("{c:?}").contains("p@s+s"));
        let e = parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "x",
            "--sink-type",
            "mysql",
            "--db-url",
            "postgres://u:hunter2@h/db",
            "--db-table",
            "t",
        ])
        .unwrap_err();
        assert!(e.contains("--db-url") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn a_config_file_fills_in_flags_and_the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.toml");
        std::fs::write(
            &file,
            "source-type = \"csv\"\ncsv_file = \"in.csv\"\nsink-type = \"file\"\noutput-file = \"out.jsonl\"\nbatch-size = 10\ncsv-infer-types = true\nes-fields = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let args: Vec<std::ffi::OsString> = [
            "pipeline-cli",
            "--config",
            file.to_str().unwrap(),
            "--batch-size",
            "20",
        ]
        .iter()
        .map(Into::into)
        .collect();
        let cli = Cli::try_parse_from(with_config_file(args).unwrap()).unwrap();
        assert_eq!(cli.batch_size, Some(20));
        assert!(cli.csv_infer_types);
        assert_eq!(cli.csv_file.as_deref(), Some("in.csv"));
        assert_eq!(cli.es_fields.as_deref(), Some("a,b"));

        std::fs::write(&file, "db-pass = \"hunter2\"\n").unwrap();
        let args: Vec<std::ffi::OsString> = ["pipeline-cli", "--config", file.to_str().unwrap()]
            .iter()
            .map(Into::into)
            .collect();
        let e = with_config_file(args).unwrap_err().to_string();
        assert!(e.contains("secret") && !e.contains("hunter2"), "{e}");
        std::fs::write(&file, "db-url = \"mysql://u:hunter3@h/db\"\n").unwrap();
        let args: Vec<std::ffi::OsString> = ["pipeline-cli", "--config", file.to_str().unwrap()]
            .iter()
            .map(Into::into)
            .collect();
        let e = with_config_file(args).unwrap_err().to_string();
        assert!(e.contains("password") && !e.contains("hunter3"), "{e}");
        for leaky in [
            "es-url = \"http://a:9200,https://reader:hunter4@b:9200\"\n",
            "es-url = \"reader:hunter4@b:9200\"\n",
            "es-url = [\"http://a:9200\", \"http://reader:hunter4@b:9200\"]\n",
            "db-url = [\"mysql://u:hunter4@h/db\"]\n",
            "pushgateway-url = \"http://u:hunter4@pgw:9091\"\n",
        ] {
            std::fs::write(&file, leaky).unwrap();
            let args: Vec<std::ffi::OsString> =
                ["pipeline-cli", "--config", file.to_str().unwrap()]
                    .iter()
                    .map(Into::into)
                    .collect();
            let e = with_config_file(args).unwrap_err().to_string();
            assert!(
                e.contains("password") && !e.contains("hunter4"),
                "{leaky}: {e}"
            );
        }
        assert!(!holds_password("http://a:9200,https://b:9200"));
        assert!(!holds_password("mysql://loader@db:3306/shop"));
        assert!(!holds_password("localhost:9200"));
        assert!(holds_password("reader:s3cr%40t@es.internal:9200"));
        assert!(!holds_password(
            r#"{"range": {"@timestamp": {"gte": "now-1d/d", "lt": "now/d"}}}"#
        ));
        std::fs::write(&file, "no-such-flag = 1\n").unwrap();
        let args: Vec<std::ffi::OsString> = ["pipeline-cli", "--config", file.to_str().unwrap()]
            .iter()
            .map(Into::into)
            .collect();
        assert!(with_config_file(args)
            .unwrap_err()
            .to_string()
            .contains("unknown setting 'no-such-flag'"));
    }

    #[test]
    fn bad_combinations_are_refused_with_the_flag_named() {
        let e = parse(&[
            "--source-type",
            "csv",
            "--sink-type",
            "file",
            "--output-file",
            "o",
        ])
        .unwrap_err();
        assert!(e.contains("--csv-file"), "{e}");
        let e = parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "x",
            "--sink-type",
            "file",
            "--output-file",
            "o",
            "--csv-delimiter",
            ";;",
        ])
        .unwrap_err();
        assert!(e.contains("--csv-delimiter"), "{e}");
        let e = parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "x",
            "--sink-type",
            "file",
            "--output-file",
            "o",
            "--batch-size",
            "0",
        ])
        .unwrap_err();
        assert!(e.contains("--batch-size"), "{e}");
    }
}
