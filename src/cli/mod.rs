//! The command line: the flags (clap derive, here), the `--config` TOML
//! file and the snake_case spellings older cron lines use (`file.rs`: both
//! become plain kebab-case flags before clap sees them), and their
//! translation into a validated [`Config`](crate::config::Config)
//! (`resolve.rs`).

mod file;
mod kinds;
mod resolve;
mod text;

use std::path::PathBuf;

use clap::Parser;

use crate::config::{EsMode, LoadMode, LogFormat, OnDuplicate, SinceMissing, SslMode};

pub use file::{with_config_file, with_config_file_noting};
pub use kinds::{OutputCompressionFlag, SinkType, SourceType};
pub use text::VERSION;

/// `--man-page` or `--completions SHELL` among `args`: the text to print,
/// generated from the flags.
pub fn generated_text(args: &[std::ffi::OsString]) -> Option<Result<String, String>> {
    use clap::CommandFactory;
    text::generated_text(args, Cli::command)
}

impl Cli {
    /// Parses the arguments (after [`with_config_file`]), remembering which
    /// flags were given.
    pub fn parse_args(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.given = matches
            .ids()
            .filter(|id| {
                matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
            })
            .map(|id| id.as_str().to_string())
            .collect();
        Ok(cli)
    }
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
    version = VERSION,
    about,
    after_long_help = EXAMPLES,
    after_help = "Run with --help for examples and exit codes.",
    args_override_self = true
)]
pub struct Cli {
    /// The flags given on the command line or in the --config file (not
    /// defaults, not the environment), to refuse the ones the chosen source
    /// or sink would ignore.
    #[arg(skip)]
    pub given: Vec<String>,

    /// Where records come from. Example: --source-type csv
    #[arg(long, value_enum, help_heading = "Source")]
    pub source_type: SourceType,

    /// CSV file(s) to read; `-` reads standard input. Several paths or globs
    /// (quoted, so pipeline-cli expands them) are read one after the other in
    /// name order, each with its own header. Example: --csv-file data/orders.csv
    /// or --csv-file 'exports/2026-11-*.csv'
    #[arg(long, value_name = "PATH", num_args = 1.., help_heading = "CSV source")]
    pub csv_file: Vec<String>,

    /// NDJSON file(s) to read (one JSON object per line; gzip or zstd read by
    /// content); `-` reads standard input; several paths or globs as for
    /// --csv-file. Example: --jsonl-file dump/orders.jsonl.gz
    #[arg(long, value_name = "PATH", num_args = 1.., help_heading = "NDJSON source")]
    pub jsonl_file: Vec<String>,

    /// Read only share I of N of the (regular) input files: those whose real
    /// name (a symlink's target's, no directory) hashes to I (FNV-1a 64 mod
    /// N; a file's shard never depends on the others). N processes with
    /// I = 0 … N-1 read every file once: a directory split over the pods of an
    /// Indexed Job, as --es-slice-id splits an index (and, like it, a `slice`
    /// label on every metric, its own Pushgateway group, `{slice}` in paths).
    /// Example: --input-shard 2/4
    #[arg(
        long,
        value_name = "I/N",
        env = "PIPELINE_INPUT_SHARD",
        help_heading = "Source"
    )]
    pub input_shard: Option<String>,

    /// A longer line (its line end not counted) is rejected (kept in the dead-letter
    /// file, cut to this length): it bounds the memory one line may take. Example: --jsonl-max-line-bytes 1048576
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = crate::config::DEFAULT_JSONL_MAX_LINE_BYTES,
        help_heading = "NDJSON source"
    )]
    pub jsonl_max_line_bytes: u64,

    /// Field delimiter: one character, or `tab`. Example: --csv-delimiter ';'
    #[arg(
        long,
        value_name = "C",
        default_value = ",",
        help_heading = "CSV source"
    )]
    pub csv_delimiter: String,

    /// The first row is data, not a header; columns are named column_1, column_2, ...
    #[arg(long, help_heading = "CSV source")]
    pub csv_no_header: bool,

    /// Write integers, decimals and true/false as JSON numbers and booleans, and
    /// empty fields as null (otherwise every value is a string).
    #[arg(long, help_heading = "CSV source")]
    pub csv_infer_types: bool,

    /// A quoted field longer than this is taken for an unclosed quote, an unquoted one
    /// is too long: its row is rejected and reading resumes on the next line. Bounds
    /// the memory one row may take. Example: --csv-max-field-bytes 256MiB
    #[arg(
        long,
        value_name = "SIZE",
        default_value = crate::config::DEFAULT_CSV_MAX_FIELD_BYTES,
        help_heading = "CSV source"
    )]
    pub csv_max_field_bytes: String,

    /// A quoted field spanning more lines than this is taken for an unclosed
    /// quote, like --csv-max-field-bytes. Example: --csv-max-field-lines 100000
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::config::DEFAULT_CSV_MAX_FIELD_LINES,
        help_heading = "CSV source"
    )]
    pub csv_max_field_lines: u64,

    /// Threads that parse a CSV file with a header, in chunks cut at row
    /// ends; records still go out in file order, exactly as with one thread
    /// (standard input and pipes always use one). Into a JSON-lines file
    /// the chunks are cut by one thread and turned into lines by these
    /// while the sink writes: by default as many as there are cores (at
    /// most 4); otherwise 1 by default. Example: --csv-threads 4
    #[arg(long, value_name = "N", help_heading = "CSV source")]
    pub csv_threads: Option<usize>,

    /// Elasticsearch/OpenSearch node URL(s), comma-separated; a bare host:port
    /// means http. Example: --es-url https://es1:9200,https://es2:9200
    #[arg(long, value_name = "URL[,URL]", help_heading = "Elasticsearch source")]
    pub es_url: Option<String>,

    /// Index name or pattern to read. Example: --es-index 'logs-2026.*'
    #[arg(long, value_name = "NAME", help_heading = "Elasticsearch source")]
    pub es_index: Option<String>,

    /// Query as JSON (a query clause or a body with "query"), or @FILE to read it
    /// from a file. Default: match_all. Example: --es-query '{"term":{"status":"paid"}}'
    #[arg(long, value_name = "JSON|@FILE", help_heading = "Elasticsearch source")]
    pub es_query: Option<String>,

    /// Documents per page (at most 10000). Example: --es-page-size 5000
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        help_heading = "Elasticsearch source"
    )]
    pub es_page_size: u32,

    /// Only these _source fields, comma-separated. Example: --es-fields id,amount,customer
    #[arg(long, value_name = "A,B", help_heading = "Elasticsearch source")]
    pub es_fields: Option<String>,

    /// Metadata copied into each record, comma-separated (empty for none).
    /// Example: --es-meta-fields _id,_index
    #[arg(
        long,
        value_name = "A,B",
        default_value = "_id",
        help_heading = "Elasticsearch source"
    )]
    pub es_meta_fields: String,

    /// Split the read into N slices (sliced point in time or scroll): read in
    /// parallel threads, or, with --es-slice-id, one slice per process.
    /// Example: --es-slices 4
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        env = "PIPELINE_ES_SLICES",
        help_heading = "Elasticsearch source"
    )]
    pub es_slices: u32,

    /// Read only slice I (0 … N-1) of --es-slices N: N processes, on one host
    /// or many (a Kubernetes Indexed Job sets it from the completion index),
    /// together read every matching document once. Metrics carry
    /// slice="I" and slices="N" and are pushed to their own Pushgateway
    /// group; a --state-file of another N is refused; `{slice}` in
    /// --state-file, --output-file, --dead-letter, --lock-file,
    /// --metrics-textfile and --summary-json becomes I. Example:
    /// --es-slices 4 --es-slice-id 2
    #[arg(
        long,
        value_name = "I",
        env = "PIPELINE_ES_SLICE_ID",
        help_heading = "Elasticsearch source"
    )]
    pub es_slice_id: Option<u32>,

    /// Page through this point in time (opened beforehand with --es-open-pit)
    /// instead of opening one: every process of a sliced job then reads the
    /// same snapshot. It is not closed at the end (it expires after
    /// --es-keep-alive without use). Example: --es-pit-id "$PIT"
    #[arg(
        long,
        value_name = "ID",
        env = "PIPELINE_ES_PIT_ID",
        help_heading = "Elasticsearch source"
    )]
    pub es_pit_id: Option<String>,

    /// Open a point in time on --es-index for --es-keep-alive, print its id on
    /// standard output and exit: the snapshot the processes of a sliced job
    /// share through --es-pit-id. Example:
    /// PIT=$(pipeline-cli --source-type elasticsearch --es-index orders --es-keep-alive 30m --es-open-pit)
    #[arg(long, help_heading = "Elasticsearch source")]
    pub es_open_pit: bool,

    /// Paging: point in time + search_after, scroll, or auto (point in time where
    /// the server has it).
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        help_heading = "Elasticsearch source"
    )]
    pub es_mode: EsMode,

    /// How long the server keeps the point in time or scroll open between two
    /// pages. Example: --es-keep-alive 10m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_ES_KEEP_ALIVE,
        help_heading = "Elasticsearch source"
    )]
    pub es_keep_alive: String,

    /// User for basic authentication (password in PIPELINE_ES_PASS). Example: --es-user reader
    #[arg(long, value_name = "USER", help_heading = "Elasticsearch source")]
    pub es_user: Option<String>,

    /// Password for --es-user; better set as PIPELINE_ES_PASS. Never printed.
    #[arg(
        long,
        value_name = "PASS",
        env = "PIPELINE_ES_PASS",
        hide_env_values = true,
        help_heading = "Elasticsearch source"
    )]
    pub es_pass: Option<String>,

    /// API key (base64 id:key); better set as PIPELINE_ES_API_KEY. Never printed.
    #[arg(
        long,
        value_name = "KEY",
        env = "PIPELINE_ES_API_KEY",
        hide_env_values = true,
        help_heading = "Elasticsearch source"
    )]
    pub es_api_key: Option<String>,

    /// CA certificate (PEM) to trust for https. Example: --es-ca-cert /etc/ssl/es-ca.pem
    #[arg(long, value_name = "PATH", help_heading = "Elasticsearch source")]
    pub es_ca_cert: Option<PathBuf>,

    /// Do not check the server's certificate (testing only).
    #[arg(long, help_heading = "Elasticsearch source")]
    pub es_insecure: bool,

    /// Ask for gzip-compressed answers (Accept-Encoding: gzip): a fifth of
    /// the bytes on the network for more client CPU. Off by default, since
    /// on a fast network the decompression costs more than it saves.
    #[arg(long, help_heading = "Elasticsearch source")]
    pub es_compression: bool,

    /// Longest one request may take before it counts as timed out (and is
    /// retried). Example: --es-timeout 2m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_ES_TIMEOUT,
        help_heading = "Elasticsearch source"
    )]
    pub es_timeout: String,

    /// Incremental runs: read only documents whose FIELD is greater than the
    /// value saved by the last successful run (needs --state-file). Example: --es-since-field updated_at
    #[arg(long, value_name = "FIELD", help_heading = "Elasticsearch source")]
    pub es_since_field: Option<String>,

    /// Where --es-since-field keeps its value; written atomically, only when a
    /// run succeeds. Example: --state-file /var/lib/pipeline/orders.state
    #[arg(long, value_name = "PATH", help_heading = "Elasticsearch source")]
    pub state_file: Option<PathBuf>,

    /// Incremental runs: documents without a value of --es-since-field
    /// (absent, null, empty) are read on every run (include) or never (skip);
    /// either way they are counted and reported. Example: --es-since-missing skip
    #[arg(
        long,
        value_enum,
        default_value = "include",
        help_heading = "Elasticsearch source"
    )]
    pub es_since_missing: SinceMissing,

    /// Where records go. Example: --sink-type file
    #[arg(
        long,
        value_enum,
        required_unless_present = "es_open_pit",
        help_heading = "Sink"
    )]
    pub sink_type: Option<SinkType>,

    /// JSON-lines file to write; `-` writes standard output. The file is written
    /// as PATH.partial and renamed to PATH only when the run succeeds.
    /// Example: --output-file out/orders.jsonl
    #[arg(long, value_name = "PATH", help_heading = "File sink")]
    pub output_file: Option<String>,

    /// Compress the JSON-lines output: auto (by the file name: `.gz` is
    /// gzip, `.zst` zstd, anything else and standard output none), none,
    /// gzip or zstd. Each batch is one gzip member or zstd frame, so a
    /// `.partial` left by an interrupted run decompresses to whole lines.
    /// Example: --output-file out.jsonl.gz
    #[arg(long, value_enum, default_value = "auto", help_heading = "Sink")]
    pub output_compression: OutputCompressionFlag,

    /// MySQL/MariaDB connection as a URL; the separate --db-* flags override its
    /// parts. Keep the password out of it: use PIPELINE_DB_PASS.
    /// Example: --db-url mysql://loader@db.internal:3306/analytics
    #[arg(long, value_name = "URL", help_heading = "MySQL sink")]
    pub db_url: Option<String>,

    /// Database host. Example: --db-host 127.0.0.1
    #[arg(long, value_name = "HOST", help_heading = "MySQL sink")]
    pub db_host: Option<String>,

    /// Database port (default 3306). Example: --db-port 3307
    #[arg(long, value_name = "N", help_heading = "MySQL sink")]
    pub db_port: Option<u16>,

    /// Database user (default root). Example: --db-user loader
    #[arg(long, value_name = "USER", help_heading = "MySQL sink")]
    pub db_user: Option<String>,

    /// Database password; better set in the environment as PIPELINE_DB_PASS so it
    /// stays out of the process list. Never printed.
    #[arg(
        long,
        value_name = "PASS",
        env = "PIPELINE_DB_PASS",
        hide_env_values = true,
        help_heading = "MySQL sink"
    )]
    pub db_pass: Option<String>,

    /// Database (schema) name. Example: --db-name analytics
    #[arg(long, value_name = "NAME", help_heading = "MySQL sink")]
    pub db_name: Option<String>,

    /// Table to load. Record fields map to its columns by name. Example: --db-table orders
    #[arg(long, value_name = "TABLE", help_heading = "MySQL sink")]
    pub db_table: Option<String>,

    /// Create the table if it is missing, with column types inferred from the
    /// first --create-table-sample records, read before the run (the DDL is
    /// logged; --check prints it). Example: --create-table --db-key id
    #[arg(long, help_heading = "MySQL sink")]
    pub create_table: bool,

    /// Records --create-table reads before the run to infer the column types
    /// (0: the whole input). Default: the whole file for a CSV file, the
    /// first 10000 documents for Elasticsearch; from standard input, which
    /// cannot be read twice, the first batch decides. Example: --create-table-sample 50000
    #[arg(long, value_name = "N", help_heading = "MySQL sink")]
    pub create_table_sample: Option<u64>,

    /// Primary key column(s) of a table made by --create-table, comma-separated.
    /// Example: --db-key id
    #[arg(long, value_name = "COL", help_heading = "MySQL sink")]
    pub db_key: Option<String>,

    /// A record whose key is already in the table: skip it (counted as skipped),
    /// update the row (counted as updated), or fail it (dead-lettered).
    #[arg(long, value_enum, default_value = "skip", help_heading = "MySQL sink")]
    pub on_duplicate: OnDuplicate,

    /// How rows are sent: LOAD DATA LOCAL INFILE from memory, multi-row INSERT,
    /// or auto (load-data when the server allows LOCAL INFILE). Both give identical tables.
    #[arg(long, value_enum, default_value = "auto", help_heading = "MySQL sink")]
    pub mysql_load_mode: LoadMode,

    /// TLS to the database. Example: --db-ssl-mode verify-ca --db-ssl-ca /etc/ssl/db-ca.pem
    #[arg(
        long,
        value_enum,
        default_value = "preferred",
        help_heading = "MySQL sink"
    )]
    pub db_ssl_mode: SslMode,

    /// CA certificate (PEM) for --db-ssl-mode verify-ca / verify-identity.
    #[arg(long, value_name = "PATH", help_heading = "MySQL sink")]
    pub db_ssl_ca: Option<PathBuf>,

    /// Kept for older command lines: record fields that have no column in
    /// the table are always an error (exit 2 when the CSV header shows them,
    /// otherwise their records fail) unless --ignore-fields or --add-columns
    /// says what to do with them.
    #[arg(long, help_heading = "MySQL sink")]
    pub strict_columns: bool,

    /// Add a column (ALTER TABLE … ADD COLUMN, type inferred from the values)
    /// for a record field the table lacks, instead of failing its records.
    #[arg(long, help_heading = "MySQL sink")]
    pub add_columns: bool,

    /// Record fields not to load, comma-separated: they need no column and are
    /// left out on purpose (any other field without a column fails its record).
    /// Example: --ignore-fields internal_note,debug
    #[arg(long, value_name = "A,B", help_heading = "MySQL sink")]
    pub ignore_fields: Option<String>,

    /// With --create-table and no --db-key: create the table without a primary
    /// key, accepting that a re-run inserts every row again.
    #[arg(long, help_heading = "MySQL sink")]
    pub no_key: bool,

    /// Longest one database statement may take before it counts as timed out
    /// (and is retried on a new connection). Example: --db-timeout 2m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_DB_TIMEOUT,
        help_heading = "MySQL sink"
    )]
    pub db_timeout: String,

    /// How long failed requests and batches are retried (lost connection,
    /// deadlock, lock wait timeout, 429/502/503/504, timeouts), with
    /// exponential backoff of up to 10 s between attempts. Example: --retry-for 15m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_RETRY_FOR,
        help_heading = "Errors"
    )]
    pub retry_for: String,

    /// At most N retries of one request or batch (within --retry-for).
    /// Example: --max-retries 10
    #[arg(long, value_name = "N", help_heading = "Errors")]
    pub max_retries: Option<u32>,

    /// Records per batch written by a sink worker (default: 1000 for the file
    /// sink, 5000 for MySQL, where each batch is one transaction with a
    /// two-phase commit). Example: --batch-size 2000
    #[arg(long, value_name = "N", help_heading = "Batching")]
    pub batch_size: Option<usize>,

    /// Longest a partial batch waits for more records before it is written, in
    /// milliseconds. Example: --batch-timeout-ms 250
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::config::DEFAULT_BATCH_TIMEOUT_MS,
        help_heading = "Batching"
    )]
    pub batch_timeout_ms: u64,

    /// Records buffered between the source and the sinks; a full queue pauses
    /// the source, so memory stays flat. Example: --queue-size 20000
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::config::DEFAULT_QUEUE_SIZE,
        help_heading = "Batching"
    )]
    pub queue_size: usize,

    /// Sink workers writing in parallel (default: 1 for the file sink, 2 for
    /// MySQL, each with its own connection; 1 while --create-table has a
    /// table to create). File lines stay in input order with any number:
    /// workers encode batches in parallel and write them in turn.
    /// Example: --workers 4
    #[arg(long, value_name = "N", help_heading = "Batching")]
    pub workers: Option<usize>,

    /// Append every rejected record, with its line number, raw text and the
    /// reason, to this JSON-lines file. Example: --dead-letter rejected.jsonl
    #[arg(long, value_name = "PATH", help_heading = "Errors")]
    pub dead_letter: Option<PathBuf>,

    /// Stop reading once N records have failed (the run then fails). Example: --max-errors 100
    #[arg(long, value_name = "N", help_heading = "Errors")]
    pub max_errors: Option<u64>,

    /// A completed run whose failed records stay within N (or P% of the
    /// records read) exits 0 and counts as a success; the rejects are still
    /// counted, logged and kept in --dead-letter. Example: --accept-errors 0.1%
    #[arg(long, value_name = "N|P%", help_heading = "Errors")]
    pub accept_errors: Option<String>,

    /// Read at most N records, then finish normally. Example: --limit 1000
    #[arg(long, value_name = "N", help_heading = "Errors")]
    pub limit: Option<u64>,

    /// Serve /metrics, /health and / on this port while the run lasts (0 picks a
    /// free port and logs it). Example: --metrics-port 9464
    #[arg(long, value_name = "N", help_heading = "Metrics")]
    pub metrics_port: Option<u16>,

    /// Address the metrics server binds. Example: --metrics-host 0.0.0.0
    #[arg(
        long,
        value_name = "H",
        default_value = crate::config::DEFAULT_METRICS_HOST,
        help_heading = "Metrics"
    )]
    pub metrics_host: String,

    /// After the run ends, keep serving the final metrics until Ctrl+C or
    /// SIGTERM, so Prometheus gets its last scrape.
    #[arg(long, help_heading = "Metrics")]
    pub metrics_keep_alive: bool,

    /// Value of the pipeline_id label on every series. Example: --pipeline-id orders-hourly
    #[arg(
        long,
        value_name = "ID",
        default_value = crate::config::DEFAULT_PIPELINE_ID,
        help_heading = "Metrics"
    )]
    pub pipeline_id: String,

    /// Log format on stderr. The PIPELINE_LOG environment variable sets the
    /// log filter (e.g. PIPELINE_LOG=debug, or info,pipeline_cli=debug).
    /// Example: --log-format json
    #[arg(long, value_enum, default_value = "text", help_heading = "Output")]
    pub log_format: LogFormat,

    /// No progress bar, no informational logs; warnings, errors and the one
    /// summary line that says how the run ended still print.
    #[arg(long, short, help_heading = "Output")]
    pub quiet: bool,

    /// Print the completion script for SHELL (bash, zsh, fish, elvish,
    /// powershell) and exit. Example: pipeline-cli --completions bash > /usr/share/bash-completion/completions/pipeline-cli
    #[arg(long, value_name = "SHELL", help_heading = "Install")]
    pub completions: Option<String>,

    /// Print the man page (roff) and exit. Example: pipeline-cli --man-page > /usr/local/share/man/man1/pipeline-cli.1
    #[arg(long, help_heading = "Install")]
    pub man_page: bool,

    /// Check and say, do not run: validate the flags, connect to every
    /// server, print what the run would do (the source's size or document
    /// count, the table and how each field maps to its columns, the DDL
    /// --create-table would run, the load mode), then exit 0, or 2 with the
    /// reason. Writes nothing: no output, table, lock, push or state file.
    #[arg(long, help_heading = "Output")]
    pub check: bool,

    /// Also write the summary record (outcome, exit code, counts, elapsed,
    /// output) as one JSON object to PATH (written atomically), or to standard
    /// output with '-'. Example: --summary-json /var/lib/pipeline/orders.last.json
    #[arg(long, value_name = "PATH|-", help_heading = "Output")]
    pub summary_json: Option<PathBuf>,

    /// Read flags from a TOML file: the same names as keys (`source-type = "csv"`,
    /// `batch-size = 5000`, `create-table = true`); flags on the command line
    /// override it. Secrets are not allowed in it: use the environment.
    /// Example: --config /etc/pipeline/orders.toml
    #[arg(long, value_name = "FILE", help_heading = "Scheduled runs")]
    pub config: Option<PathBuf>,

    /// Push the run's metrics to this Pushgateway when it ends (and every
    /// --push-interval while it runs). Example: --pushgateway-url http://127.0.0.1:9091
    #[arg(long, value_name = "URL", help_heading = "Scheduled runs")]
    pub pushgateway_url: Option<String>,

    /// The `job` grouping label of pushed metrics. Example: --push-job nightly-export
    #[arg(
        long,
        value_name = "NAME",
        default_value = "pipeline-cli",
        help_heading = "Scheduled runs"
    )]
    pub push_job: String,

    /// Longest the final push may take, retries included; a slow Pushgateway
    /// never holds a finished run longer. Example: --push-timeout 30s
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_PUSH_TIMEOUT,
        help_heading = "Scheduled runs"
    )]
    pub push_timeout: String,

    /// Also push every SECS seconds while the run lasts. Example: --push-interval 15
    #[arg(long, value_name = "SECS", help_heading = "Scheduled runs")]
    pub push_interval: Option<u64>,

    /// A failed final push fails the run (exit 1); otherwise it is only logged and counted.
    #[arg(long, help_heading = "Scheduled runs")]
    pub push_required: bool,

    /// Write the final metrics to this file (atomically) for node_exporter's
    /// textfile collector. Example: --metrics-textfile /var/lib/node_exporter/orders.prom
    #[arg(long, value_name = "PATH", help_heading = "Scheduled runs")]
    pub metrics_textfile: Option<PathBuf>,

    /// Hold an exclusive lock on this file for the whole run; a second run exits
    /// 75 at once. A killed run never leaves it locked. Example: --lock-file /run/lock/orders.lock
    #[arg(long, value_name = "PATH", help_heading = "Scheduled runs")]
    pub lock_file: Option<PathBuf>,

    /// After Ctrl+C or SIGTERM, wait at most this many seconds for the sinks to
    /// write what was read, then exit anyway. Example: --shutdown-timeout 30
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = crate::config::DEFAULT_SHUTDOWN_TIMEOUT_SECS,
        help_heading = "Output"
    )]
    pub shutdown_timeout: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::*;
    use file::holds_password;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let argv = std::iter::once("pipeline-cli")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect();
        let argv = with_config_file(argv).map_err(|e| e.to_string())?;
        let cli = Cli::parse_args(argv).map_err(|e| e.to_string())?;
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
        assert_eq!(cli.csv_file, ["in.csv"]);
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

    /// Every flag that takes a value, set in a --config file and given on
    /// the command line too: the command line's value replaces the file's,
    /// for the flags taking several values (found from the definition, so a
    /// new one is covered) as for the others.
    #[test]
    fn a_value_on_the_command_line_replaces_the_config_files_for_every_flag() {
        use clap::CommandFactory;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.toml");
        let command = Cli::command();
        // A value the flag accepts: one of its choices, else a number
        // (which paths, names and sizes accept too).
        let sample = |arg: &clap::Arg, i: usize| -> String {
            let choices = arg.get_possible_values();
            if choices.is_empty() {
                (i + 1).to_string()
            } else {
                choices[i % choices.len()].get_name().to_string()
            }
        };
        let mut lists = Vec::new();
        let mut scalars = 0;
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "config"
                || file::SECRET_FLAGS.contains(&long)
                || !arg.get_action().takes_values()
            {
                continue;
            }
            let many = arg.get_num_args().is_some_and(|n| n.max_values() > 1)
                || matches!(arg.get_action(), clap::ArgAction::Append);
            let (in_file, on_line) = if many {
                lists.push(long.to_string());
                (
                    format!(
                        "{long} = [\"{}\", \"{}\"]\n",
                        sample(arg, 0),
                        sample(arg, 1)
                    ),
                    vec![sample(arg, 2)],
                )
            } else {
                scalars += 1;
                (
                    format!("{long} = \"{}\"\n", sample(arg, 0)),
                    vec![sample(arg, 1)],
                )
            };
            std::fs::write(&file, &in_file).unwrap();
            let mut argv: Vec<std::ffi::OsString> = vec!["pipeline-cli".into()];
            for (flag, value) in [("source-type", "csv"), ("sink-type", "file")] {
                if flag != long {
                    argv.extend([format!("--{flag}").into(), value.into()]);
                }
            }
            argv.extend(["--config".into(), file.clone().into_os_string()]);
            argv.push(format!("--{long}").into());
            argv.extend(on_line.iter().map(Into::into));
            let argv = with_config_file(argv).unwrap();
            let matches = command
                .clone()
                .try_get_matches_from(&argv)
                .unwrap_or_else(|e| panic!("{in_file} {on_line:?}: {e}"));
            let got: Vec<String> = matches
                .get_raw(arg.get_id().as_str())
                .unwrap()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            assert_eq!(got, on_line, "--{long}: {in_file}");
        }
        assert!(
            lists.contains(&"csv-file".to_string()) && lists.contains(&"jsonl-file".to_string()),
            "{lists:?}"
        );
        assert!(scalars > 30, "{scalars}");
    }

    #[test]
    fn a_config_list_gives_the_flag_one_value_per_item() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.toml");
        std::fs::write(
            &file,
            "source-type = \"csv\"\ncsv-file = [\"a.csv\", \"-b.csv\"]\njsonl-file = [\"c.jsonl\"]\nsink-type = \"file\"\noutput-file = \"o\"\nes-fields = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let argv = |extra: &[&str]| -> Vec<std::ffi::OsString> {
            ["pipeline-cli", "--config", file.to_str().unwrap()]
                .iter()
                .chain(extra)
                .map(Into::into)
                .collect()
        };
        let cli = Cli::parse_args(with_config_file(argv(&[])).unwrap()).unwrap();
        assert_eq!(cli.csv_file, ["a.csv", "-b.csv"]);
        assert_eq!(cli.jsonl_file, ["c.jsonl"]);
        assert_eq!(cli.es_fields.as_deref(), Some("a,b"));
        let cli = Cli::parse_args(
            with_config_file(argv(&["--csv_file", "y.csv", "--jsonl-file=z.jsonl"])).unwrap(),
        )
        .unwrap();
        assert_eq!(cli.csv_file, ["y.csv"]);
        assert_eq!(cli.jsonl_file, ["z.jsonl"]);
        // Still given (by the file) for the flags a source would ignore.
        assert!(
            cli.given.iter().any(|g| g == "es_fields"),
            "{:?}",
            cli.given
        );
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

    #[test]
    fn config_file_mistakes_say_where_and_suggest_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.toml");
        let argv = |file: &std::path::Path| -> Vec<std::ffi::OsString> {
            ["pipeline-cli", "--config", file.to_str().unwrap()]
                .iter()
                .map(Into::into)
                .collect()
        };
        std::fs::write(&file, "source-type = \"csv\"\nbatch-size = = 5\n").unwrap();
        let e = with_config_file(argv(&file)).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        std::fs::write(&file, "batch-sise = 5\n").unwrap();
        let e = with_config_file(argv(&file)).unwrap_err().to_string();
        assert!(e.contains("did you mean 'batch-size'"), "{e}");
    }

    #[test]
    fn flags_the_chosen_source_or_sink_would_ignore_are_refused() {
        let e = parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "in.csv",
            "--es-index",
            "foo",
            "--sink-type",
            "file",
            "--output-file",
            "o",
        ])
        .unwrap_err();
        assert!(
            e.contains("--es-index is not used by --source-type csv"),
            "{e}"
        );
        let e = parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "in.csv",
            "--sink-type",
            "file",
            "--output-file",
            "o",
            "--db-table",
            "t",
            "--on-duplicate",
            "update",
        ])
        .unwrap_err();
        assert!(
            e.contains("--db-table, --on-duplicate are not used by --sink-type file"),
            "{e}"
        );
        // Defaults and the environment do not count as given.
        assert!(parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "in.csv",
            "--sink-type",
            "file",
            "--output-file",
            "o",
        ])
        .is_ok());
    }

    #[test]
    fn help_names_the_log_filter_and_both_worker_defaults() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("PIPELINE_LOG"), "{help}");
        assert!(
            help.contains("2 for\n") || help.contains("2 for MySQL") || help.contains("2 for"),
            "{help}"
        );
    }
}
