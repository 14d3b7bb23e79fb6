//! The command line: the flags (clap derive: [`Cli`] and one group of flags
//! per source, sink and concern, each in its own file with the code that
//! turns it into its part of the [`Config`]), the `--config` TOML file and
//! the snake_case spellings older cron lines use (`file.rs`: both become
//! plain kebab-case flags before clap sees them).

mod checkpoint;
mod file;
mod kinds;
mod metrics;
mod push;
mod reference;
mod resolve;
mod run;
mod sink_file;
mod sink_mysql;
mod sink_mysql_delete;
mod source_csv;
mod source_es;
mod source_files;
mod source_jsonl;
mod text;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::config::{
    Config, FileSinkConfig, LogFormat, OutputPath, SinkConfig, SinkKind, SourceConfig, SourceKind,
};
use crate::error::PipelineError;

pub use file::with_config_file_noting;
pub use kinds::OutputCompressionFlag;
pub use metrics::MetricsFlags;
pub use push::PushFlags;
pub use run::RunFlags;
pub use sink_file::FileFlags;
pub use sink_mysql::MysqlFlags;
pub use source_csv::CsvFlags;
pub use source_es::EsFlags;
pub use source_files::FilesOnceFlags;
pub use source_jsonl::JsonlFlags;
pub use text::VERSION;

use resolve::{parse_shard, Slice};

/// `--man-page` or `--completions SHELL` among `args`: the text to print,
/// generated from the flags.
pub fn generated_text(args: &[std::ffi::OsString]) -> Option<Result<String, String>> {
    use clap::CommandFactory;
    text::generated_text(args, Cli::command)
}

/// The flag reference, `docs/flags.md`, generated from the flags.
pub fn flags_markdown() -> String {
    reference::flags_markdown(&command())
}

/// The flags `-h` lists, so that it fits on one screen; `--help` lists them
/// all. A flag not named here (a new one too) is in `--help` only.
const SHORT_HELP: [&str; 16] = [
    "source_type",
    "csv_file",
    "jsonl_file",
    "es_url",
    "es_index",
    "sink_type",
    "output_file",
    "db_url",
    "db_table",
    "create_table",
    "dead_letter",
    "max_errors",
    "metrics_port",
    "check",
    "quiet",
    "config",
];

/// The command line as clap parses it and prints its help: every flag but
/// those of [`SHORT_HELP`] left out of `-h`.
fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_args(|arg| {
        let short = SHORT_HELP.contains(&arg.get_id().as_str());
        arg.hide_short_help(!short)
    })
}

impl Cli {
    /// Parses the arguments (after [`with_config_file_noting`]), remembering which
    /// flags were given.
    pub fn parse_args(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
        use clap::FromArgMatches;
        let matches = command().try_get_matches_from(args)?;
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
// The groups come in the order their flags are listed under each heading
// of `--help` and the man page.
#[derive(Debug, Parser)]
#[command(
    name = "pipeline-cli",
    version = VERSION,
    about = "Moves records from CSV, NDJSON or Elasticsearch into JSON lines or MySQL.",
    long_about = env!("CARGO_PKG_DESCRIPTION"),
    after_long_help = EXAMPLES,
    after_help = "The common flags; --help explains every flag, with examples and exit codes.",
    override_usage = "pipeline-cli --source-type <SOURCE_TYPE> --sink-type <SINK_TYPE> [OPTIONS]\n       pipeline-cli --config <FILE> [OPTIONS]",
    args_override_self = true
)]
pub struct Cli {
    /// The flags given on the command line or in the --config file (not
    /// defaults, not the environment), to refuse the ones the chosen source
    /// or sink would ignore.
    #[arg(skip)]
    pub given: Vec<String>,

    /// Where records come from.
    ///
    /// Example: --source-type csv
    #[arg(long, value_enum, help_heading = "Source")]
    pub source_type: SourceKind,

    /// The CSV source.
    #[command(flatten)]
    pub csv: CsvFlags,

    /// The NDJSON source.
    #[command(flatten)]
    pub jsonl: JsonlFlags,

    /// Files loaded once (`--state-file` with a file source).
    #[command(flatten)]
    pub files_once: FilesOnceFlags,

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

    /// The Elasticsearch source.
    #[command(flatten)]
    pub es: EsFlags,

    /// Where records go.
    ///
    /// Example: --sink-type file
    #[arg(
        long,
        value_enum,
        required_unless_present = "es_open_pit",
        help_heading = "Sink"
    )]
    pub sink_type: Option<SinkKind>,

    /// The JSON-lines file sink.
    #[command(flatten)]
    pub file: FileFlags,

    /// The MySQL sink.
    #[command(flatten)]
    pub mysql: MysqlFlags,

    /// Retries, batching and the error budget.
    #[command(flatten)]
    pub run: RunFlags,

    /// The metrics server and the `pipeline_id` label.
    #[command(flatten)]
    pub metrics: MetricsFlags,

    /// Log format on stderr. The PIPELINE_LOG environment variable sets the
    /// log filter (e.g. PIPELINE_LOG=debug, or info,pipeline_cli=debug).
    /// Example: --log-format json
    #[arg(long, value_enum, default_value = "text", help_heading = "Output")]
    pub log_format: LogFormat,

    /// No progress bar, no informational logs.
    ///
    /// Warnings, errors and the one summary line that says how the run ended
    /// still print.
    #[arg(long, short, help_heading = "Output")]
    pub quiet: bool,

    /// Print the completion script for SHELL (bash, zsh, fish, elvish,
    /// powershell) and exit. Example: pipeline-cli --completions bash > /usr/share/bash-completion/completions/pipeline-cli
    #[arg(long, value_name = "SHELL", help_heading = "Install")]
    pub completions: Option<String>,

    /// Print the man page (roff) and exit. Example: pipeline-cli --man-page > /usr/local/share/man/man1/pipeline-cli.1
    #[arg(long, help_heading = "Install")]
    pub man_page: bool,

    /// Say what the run would do, writing nothing.
    ///
    /// Check and say, do not run: validate the flags, connect to every
    /// server, print what the run would do (the source's size or document
    /// count, the table and how each field maps to its columns, the DDL
    /// --create-table would run, the load mode; with MySQL, how many of the
    /// first records would be written and why the others would fail), then
    /// exit 0, or 2 with the reason (also when no such record would be
    /// written). Writes nothing: no output, table, lock, push or state file.
    /// Example: --check
    #[arg(long, help_heading = "Output")]
    pub check: bool,

    /// Also write the summary record (outcome, exit code, counts, elapsed,
    /// output) as one JSON object to PATH (written atomically), or to standard
    /// output with '-'. `{date}`, `{time}` and `{run_id}` in PATH as in
    /// --output-file. Example: --summary-json /var/lib/pipeline/orders.last.json
    #[arg(long, value_name = "PATH|-", help_heading = "Output")]
    pub summary_json: Option<PathBuf>,

    /// Read flags from a TOML file.
    ///
    /// The same names as keys (`source-type = "csv"`, `batch-size = 5000`,
    /// `create-table = true`); flags on the command line
    /// override it. Secrets are not allowed in it: use the environment.
    /// Example: --config /etc/pipeline/orders.toml
    #[arg(long, value_name = "FILE", help_heading = "Scheduled runs")]
    pub config: Option<PathBuf>,

    /// Pushing the metrics to a Pushgateway.
    #[command(flatten)]
    pub push: PushFlags,

    /// Resumable runs.
    #[command(flatten)]
    pub checkpoint: checkpoint::CheckpointFlags,

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

/// The ids of the flags of group `G` (`csv_file`, …).
fn group_ids<G: clap::Args>() -> Vec<String> {
    G::augment_args(clap::Command::new("group"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// The flags that belong to a kind of source: refused with the others.
fn source_flags(kind: SourceKind) -> Vec<String> {
    match kind {
        SourceKind::Csv => [group_ids::<CsvFlags>(), group_ids::<FilesOnceFlags>()].concat(),
        SourceKind::Elasticsearch => EsFlags::foreign_ids(),
        SourceKind::Jsonl => [group_ids::<JsonlFlags>(), group_ids::<FilesOnceFlags>()].concat(),
    }
}

/// The flags that belong to a kind of sink: refused with the others.
fn sink_flags(kind: SinkKind) -> Vec<String> {
    match kind {
        SinkKind::File => group_ids::<FileFlags>(),
        SinkKind::Mysql => group_ids::<MysqlFlags>(),
    }
}

/// A run that records the files it loads holds a lock (`--lock-file`, or
/// else the state file's name with `.lock`), so two runs at once do not
/// both load a new file; and is warned when each run replaces the last
/// one's output file.
fn once_lock_and_output(
    config: &mut Config,
    output_flag: Option<&str>,
) -> Result<(), PipelineError> {
    let Some(once) = config.source.files_once() else {
        return Ok(());
    };
    let state = once.state_file.clone();
    if config.lock_file.is_none() {
        let mut lock = state.clone().into_os_string();
        lock.push(".lock");
        config.lock_file = Some(lock.into());
    }
    if let (
        SinkConfig::File(FileSinkConfig {
            output: OutputPath::File(p),
            ..
        }),
        Some(given),
    ) = (&config.sink, output_flag)
    {
        // Replacing it would lose records whose files are recorded loaded.
        if p.exists() {
            return Err(PipelineError::Config(format!(
                "--output-file '{}' exists: it holds an earlier run's records, whose files --state-file '{}' will not read again, and this run would replace it; put {{run_id}} in its name (or {{date}}-{{time}}), or move it away first",
                p.display(),
                state.display()
            )));
        }
        if !["{date}", "{time}", "{run_id}"]
            .iter()
            .any(|t| given.contains(t))
        {
            config.notes.push(format!(
                "--output-file '{}' is the same file on every run: each run replaces the last one's, whose files --state-file '{}' will not read again; put {{run_id}} or {{date}}-{{time}} in its name to keep every run's output",
                p.display(),
                state.display()
            ));
        }
    }
    Ok(())
}

impl Cli {
    /// Checks the flags against each other and builds the run's [`Config`]:
    /// each group resolves its part.
    pub fn into_config(self) -> Result<Config, PipelineError> {
        let sink_kind = self.sink_type.expect("clap requires --sink-type");
        self.check_unused_flags(sink_kind)?;
        let mut notes = Vec::new();
        let slice = self.slice()?;
        let once = self.es.state_file.is_some();
        let mut source = match self.source_type {
            SourceKind::Csv => SourceConfig::Csv(self.csv.resolve(slice.0, once, &mut notes)?),
            SourceKind::Elasticsearch => {
                SourceConfig::Elasticsearch(Box::new(self.es.resolve(slice, &self.run)?))
            }
            SourceKind::Jsonl => {
                SourceConfig::Jsonl(self.jsonl.resolve(slice.0, once, &mut notes)?)
            }
        };
        self.files_once(&mut source, slice)?;
        let sink = match sink_kind {
            SinkKind::File => SinkConfig::File(self.file.resolve(slice)?),
            SinkKind::Mysql => {
                SinkConfig::Mysql(Box::new(self.mysql.resolve(self.source_type, &self.run)?))
            }
        };
        let mut config = Config::new(source, sink);
        config.notes = notes;
        self.run.batching(&mut config)?;
        self.metrics.check()?;
        self.run.errors(&mut config, slice)?;
        config.metrics = self.metrics.resolve()?;
        config.pipeline_id = self.metrics.pipeline_id.clone();
        self.output(&mut config, slice)?;
        self.metrics.check_label()?;
        config.push = self.push.resolve()?;
        config.textfile = slice.path("--metrics-textfile", self.metrics_textfile.as_deref())?;
        config.lock_file = slice.path("--lock-file", self.lock_file.as_deref())?;
        config.slice = slice.0;
        once_lock_and_output(&mut config, self.file.output_file.as_deref())?;
        self.once_not_written(&config)?;
        sink_mysql_delete::refuse_combinations(&config, self.mysql.no_key)?;
        sink_mysql::check_load_mode(&config)?;
        self.checkpoint
            .resolve(&mut config, slice, self.file.output_file.as_deref())?;
        Ok(config)
    }

    /// With `--state-file` on a file source, no file the run writes is
    /// matched by a pattern of the input files.
    fn once_not_written(&self, config: &Config) -> Result<(), PipelineError> {
        if config.source.files_once().is_none() {
            return Ok(());
        }
        let (flag, given) = match self.source_type {
            SourceKind::Csv => ("--csv-file", &self.csv.csv_file),
            _ => ("--jsonl-file", &self.jsonl.jsonl_file),
        };
        let mut written: Vec<(&str, &std::path::Path)> = Vec::new();
        if let SinkConfig::File(FileSinkConfig {
            output: OutputPath::File(p),
            ..
        }) = &config.sink
        {
            written.push(("--output-file", p));
        }
        if let Some(p) = &config.dead_letter {
            written.push(("--dead-letter", p));
        }
        if let Some(OutputPath::File(p)) = &config.summary_json {
            written.push(("--summary-json", p));
        }
        if let Some(p) = &config.lock_file {
            written.push(("--lock-file", p));
        }
        source_files::check_written(flag, given, &written)
    }

    /// `--state-file` with a file source, into `source`.
    fn files_once(&self, source: &mut SourceConfig, slice: Slice) -> Result<(), PipelineError> {
        let (flag, files) = source.input_files();
        let (given, input, once) = match source {
            SourceConfig::Csv(c) => (&self.csv.csv_file, &c.input, &mut c.once),
            SourceConfig::Jsonl(c) => (&self.jsonl.jsonl_file, &c.input, &mut c.once),
            SourceConfig::Elasticsearch(_) => return Ok(()),
        };
        *once = self.files_once.resolve(
            self.es.state_file.as_deref(),
            slice,
            self.run.limit,
            (flag, given),
            (input, &files),
        )?;
        Ok(())
    }

    /// Logging, `--check`, `--summary-json` and the shutdown timeout into
    /// `config`.
    fn output(&self, config: &mut Config, slice: Slice) -> Result<(), PipelineError> {
        config.log_format = self.log_format;
        config.quiet = self.quiet;
        config.check = self.check;
        config.summary_json = match self.summary_json.as_deref() {
            Some(p) if p.as_os_str() == "-" => Some(OutputPath::Stdout),
            Some(p) => Some(OutputPath::File(
                slice.path("--summary-json", Some(p))?.expect("a path"),
            )),
            None => None,
        };
        if config.summary_json == Some(OutputPath::Stdout)
            && matches!(&config.sink, SinkConfig::File(f) if f.output == OutputPath::Stdout)
        {
            return Err(PipelineError::Config(
                "--summary-json - and --output-file - would both write to standard output; give one of them a path".into(),
            ));
        }
        config.shutdown_timeout = Duration::from_secs(self.shutdown_timeout);
        Ok(())
    }

    /// Refuses flags that the chosen source or sink would ignore: those of
    /// the other sources' and sinks' groups.
    fn check_unused_flags(&self, sink: SinkKind) -> Result<(), PipelineError> {
        use clap::ValueEnum;
        let source = self.source_type;
        // A flag two kinds share is refused only by the others.
        let own = source_flags(source);
        let source_foreign: Vec<String> = SourceKind::value_variants()
            .iter()
            .filter(|k| **k != source)
            .flat_map(|k| source_flags(*k))
            .filter(|f| !own.contains(f))
            .collect();
        let sink_foreign: Vec<String> = SinkKind::value_variants()
            .iter()
            .filter(|k| **k != sink)
            .flat_map(|k| sink_flags(*k))
            .collect();
        for (kind, name, refused) in [
            ("source", source.as_str(), source_foreign),
            ("sink", sink.as_str(), sink_foreign),
        ] {
            let unused: Vec<String> = self
                .given
                .iter()
                .filter(|g| refused.contains(g))
                .map(|g| format!("--{}", g.replace('_', "-")))
                .collect();
            if !unused.is_empty() {
                return Err(PipelineError::Config(format!(
                    "{} {} not used by --{kind}-type {name}; remove {} or choose the {kind} {} belong{} to",
                    unused.join(", "),
                    if unused.len() == 1 { "is" } else { "are" },
                    if unused.len() == 1 { "it" } else { "them" },
                    if unused.len() == 1 { "it" } else { "they" },
                    if unused.len() == 1 { "s" } else { "" },
                )));
            }
        }
        Ok(())
    }

    /// The slice this process reads: `--es-slice-id` of `--es-slices` for
    /// Elasticsearch, `--input-shard I/N` for a file source.
    fn slice(&self) -> Result<Slice, PipelineError> {
        let shard = || self.input_shard.as_deref().map(parse_shard).transpose();
        Ok(Slice(match self.source_type {
            SourceKind::Csv | SourceKind::Jsonl => shard()?,
            // Ignored, every process would read the whole index.
            SourceKind::Elasticsearch if self.input_shard.is_some() => {
                return Err(PipelineError::Config(
                    "--input-shard (or PIPELINE_INPUT_SHARD) splits input files; use --es-slices N --es-slice-id I to split an Elasticsearch read".into(),
                ))
            }
            SourceKind::Elasticsearch => self.es.slice(),
        }))
    }

    /// `--es-open-pit`: only the Elasticsearch settings and how to log
    /// matter (there is no sink).
    pub fn open_pit_config(&self) -> Result<Config, PipelineError> {
        if self.source_type != SourceKind::Elasticsearch {
            return Err(PipelineError::Config(
                "--es-open-pit needs --source-type elasticsearch".into(),
            ));
        }
        if self.es.es_pit_id.is_some() {
            return Err(PipelineError::Config(
                "--es-open-pit opens a point in time; --es-pit-id names one already open: give one of them".into(),
            ));
        }
        let mut config = Config::new(
            SourceConfig::Elasticsearch(Box::new(
                self.es.resolve(Slice(self.es.slice()), &self.run)?,
            )),
            SinkConfig::File(FileSinkConfig {
                output: OutputPath::Stdout,
                compression: None,
                resume_bytes: None,
                resume_tail: None,
            }),
        );
        config.log_format = self.log_format;
        config.quiet = self.quiet;
        config.pipeline_id = self.metrics.pipeline_id.clone();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::*;
    use file::holds_password;

    /// The command line with `--config`'s settings, without the notes.
    fn with_config_file(
        args: Vec<std::ffi::OsString>,
    ) -> Result<Vec<std::ffi::OsString>, crate::error::PipelineError> {
        with_config_file_noting(args).map(|(args, _)| args)
    }

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
        assert_eq!(cli.run.batch_size, Some(20));
        assert!(cli.csv.csv_infer_types);
        assert_eq!(cli.csv.csv_file, ["in.csv"]);
        assert_eq!(cli.es.es_fields.as_deref(), Some("a,b"));

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
            if long == "config" || file::is_secret(arg) || !arg.get_action().takes_values() {
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
        assert_eq!(cli.csv.csv_file, ["a.csv", "-b.csv"]);
        assert_eq!(cli.jsonl.jsonl_file, ["c.jsonl"]);
        assert_eq!(cli.es.es_fields.as_deref(), Some("a,b"));
        let cli = Cli::parse_args(
            with_config_file(argv(&["--csv_file", "y.csv", "--jsonl-file=z.jsonl"])).unwrap(),
        )
        .unwrap();
        assert_eq!(cli.csv.csv_file, ["y.csv"]);
        assert_eq!(cli.jsonl.jsonl_file, ["z.jsonl"]);
        // Still given (by the file) for the flags a source would ignore.
        assert!(
            cli.given.iter().any(|g| g == "es_fields"),
            "{:?}",
            cli.given
        );
    }

    /// Every DURATION flag takes compound and fractional forms; a bad one
    /// is refused naming the flag and the forms.
    #[test]
    fn durations_take_the_usual_forms() {
        let base = [
            "--source-type",
            "csv",
            "--csv-file",
            "x",
            "--sink-type",
            "file",
            "--output-file",
            "o",
        ];
        // A server not reached at start: 30 s by default, its own flag.
        let c = parse(&base).unwrap();
        assert_eq!(c.retry.at_start, std::time::Duration::from_secs(30));
        let mut args = base.to_vec();
        args.extend(["--start-retry-for", "1m30s"]);
        assert_eq!(
            parse(&args).unwrap().retry.at_start,
            std::time::Duration::from_secs(90)
        );
        for (text, secs) in [("1m30s", 90), ("1.5h", 5400), ("45", 45)] {
            let mut args = base.to_vec();
            args.extend(["--retry-for", text]);
            let c = parse(&args).unwrap();
            assert_eq!(
                c.retry.retry_for,
                std::time::Duration::from_secs(secs),
                "{text}"
            );
        }
        for text in ["1m30", "30s1m", "soon"] {
            let mut args = base.to_vec();
            args.extend(["--retry-for", text]);
            let e = parse(&args).unwrap_err();
            assert!(
                e.contains("--retry-for") && e.contains("1m30s"),
                "{text}: {e}"
            );
        }
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
        // --state-file is taken by a file source too (the files loaded).
        assert!(parse(&[
            "--source-type",
            "csv",
            "--csv-file",
            "in.csv",
            "--state-file",
            "s.state",
            "--sink-type",
            "file",
            "--output-file",
            "o",
        ])
        .is_ok());
        let e = parse(&[
            "--source-type",
            "jsonl",
            "--jsonl-file",
            "in.jsonl",
            "--csv-threads",
            "2",
            "--es-index",
            "i",
            "--sink-type",
            "mysql",
            "--db-table",
            "t",
            "--output-compression",
            "gzip",
        ])
        .unwrap_err();
        assert!(
            e.contains("--csv-threads, --es-index are not used by --source-type jsonl; remove them or choose the source they belong to"),
            "{e}"
        );
        let e = parse(&[
            "--source-type",
            "elasticsearch",
            "--es-url",
            "http://es:9200",
            "--es-index",
            "i",
            "--sink-type",
            "mysql",
            "--db-table",
            "t",
            "--output-compression",
            "gzip",
        ])
        .unwrap_err();
        assert!(
            e.contains("--output-compression is not used by --sink-type mysql; remove it or choose the sink it belongs to"),
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

    #[test]
    fn the_examples_parse() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&examples).expect("examples/") {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            seen += 1;
            let args: Vec<std::ffi::OsString> =
                ["pipeline-cli", "--config", path.to_str().unwrap()]
                    .iter()
                    .map(Into::into)
                    .collect();
            let args = with_config_file(args).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // Flags and values parse; paths in the examples need not exist here.
            <super::Cli as clap::Parser>::try_parse_from(args)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        assert!(
            seen >= 4,
            "expected a config per source/sink pair, found {seen}"
        );
        let cron = std::fs::read_to_string(examples.join("crontab")).unwrap();
        assert!(
            cron.contains("--lock-file") && cron.contains("--pushgateway-url"),
            "{cron}"
        );
    }

    #[test]
    fn input_shard_is_refused_for_elasticsearch() {
        let e = parse(&[
            "--source-type",
            "elasticsearch",
            "--es-url",
            "http://127.0.0.1:9200",
            "--es-index",
            "docs",
            "--input-shard",
            "0/2",
            "--sink-type",
            "file",
            "--output-file",
            "out.jsonl",
        ])
        .unwrap_err();
        assert!(
            e.contains("--input-shard") && e.contains("--es-slices"),
            "{e}"
        );
    }
}
