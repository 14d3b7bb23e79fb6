//! What the process says on stderr: the log set-up (plain text, or with
//! `--log-format json` one JSON object per line, every one carrying
//! `pipeline_id` and `run_id`), fatal error lines, and the run's summary
//! record. [`run_id`] tells one run's lines, summary, dead-letter entries and
//! metrics from another's.
//!
//! Everything written to stderr goes through here or through `tracing`, so
//! a log shipper reading JSON never meets a plain line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{OnceLock, RwLock};

use serde_json::{json, Map, Value as Json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{Config, LogFormat, OutputPath, DEFAULT_PIPELINE_ID};
use crate::error::ExitCode;
use crate::pipeline::{Outcome, RunSummary};

/// This run's identifier, made once.
static RUN_ID: OnceLock<String> = OnceLock::new();

/// This run's identifier: 16 hex digits from the start time, the process
/// id and the standard library's per-process random hash keys. Every log
/// line carries it (`run_id`), as do the summary, each dead-letter entry
/// and `pipeline_info`, so the lines of one run can be picked out of a
/// shared log and matched with its rejected records and its metrics.
pub fn run_id() -> &'static str {
    RUN_ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        format!("{:016x}", h.finish())
    })
}

/// How lines are written: first as the raw arguments say, then as the
/// parsed configuration says.
static STYLE: RwLock<Option<(LogFormat, String)>> = RwLock::new(None);

fn style() -> (LogFormat, String) {
    match &*STYLE.read().unwrap_or_else(|e| e.into_inner()) {
        Some((format, id)) => (*format, id.clone()),
        None => (LogFormat::Text, DEFAULT_PIPELINE_ID.to_string()),
    }
}

/// The log format and pipeline id as the raw arguments give them, for the
/// lines written before the configuration is parsed (a bad flag, say).
pub fn early_style(args: &[std::ffi::OsString]) -> (LogFormat, String) {
    let mut format = LogFormat::Text;
    let mut pipeline_id = DEFAULT_PIPELINE_ID.to_string();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for (i, a) in args.iter().enumerate() {
        let value = |flag: &str| {
            a.strip_prefix(&format!("{flag}="))
                .map(str::to_string)
                .or_else(|| (a == flag).then(|| args.get(i + 1).cloned()).flatten())
        };
        if let Some(v) = value("--log-format") {
            if v == "json" {
                format = LogFormat::Json;
            }
        }
        if let Some(v) = value("--pipeline-id") {
            pipeline_id = v;
        }
    }
    (format, pipeline_id)
}

/// Sets the style of every later line.
pub fn set_style(format: LogFormat, pipeline_id: &str) {
    *STYLE.write().unwrap_or_else(|e| e.into_inner()) = Some((format, pipeline_id.to_string()));
}

/// Starts logging for `config`: `--quiet` keeps warnings and errors,
/// `PIPELINE_LOG` overrides the level; in JSON every line carries
/// `timestamp`, `level`, `pipeline_id`, `run_id` and `message`, as text
/// every line ends with `run_id=…`. A panic is logged the same way.
pub fn init(config: &Config) {
    set_style(config.log_format, &config.pipeline_id);
    // actix-server's own start/stop lines are noise for a command-line tool.
    let default = if config.quiet {
        "warn"
    } else {
        "info,actix_server=warn,actix_web=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIPELINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::progress::StderrAboveBar)
        .with_target(false);
    // Every warning and error is also kept for the live page.
    let recent = crate::metrics::recent::RecentLayer;
    match config.log_format {
        LogFormat::Json => {
            builder
                .event_format(JsonLines {
                    pipeline_id: config.pipeline_id.clone(),
                })
                .finish()
                .with(recent)
                .init();
            std::panic::set_hook(Box::new(|info| {
                line("ERROR", &format!("panic: {info}"), Map::new());
            }));
        }
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .fmt_fields(WithRunId)
            .finish()
            .with(recent)
            .init(),
    }
}

/// The current time as RFC 3339, as on every log line.
pub fn timestamp() -> String {
    let mut s = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut s));
    s
}

/// The JSON object of one line: `timestamp`, `level`, `pipeline_id`,
/// `run_id`, `message`, then `extra`.
pub fn record(level: &str, message: &str, extra: Map<String, Json>) -> Json {
    let mut obj = Map::new();
    obj.insert("timestamp".into(), timestamp().into());
    obj.insert("level".into(), level.into());
    obj.insert("pipeline_id".into(), style().1.into());
    obj.insert("run_id".into(), run_id().into());
    obj.insert("message".into(), message.into());
    obj.extend(extra);
    Json::Object(obj)
}

/// Writes one line outside `tracing` (fatal errors, signals, the summary):
/// `pipeline-cli: message run_id=…` (with `error: ` for ERROR) as text, or
/// one JSON object with `extra` fields.
pub fn line(level: &str, message: &str, extra: Map<String, Json>) {
    if level == "WARN" || level == "ERROR" {
        crate::metrics::recent::push(
            if level == "WARN" { "WARN" } else { "ERROR" },
            message,
            String::new(),
        );
    }
    let text = match style().0 {
        LogFormat::Text if level == "ERROR" => {
            format!("pipeline-cli: error: {message} run_id={}", run_id())
        }
        LogFormat::Text => format!("pipeline-cli: {message} run_id={}", run_id()),
        LogFormat::Json => record(level, message, extra).to_string(),
    };
    crate::progress::above_bar(|| {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    });
}

/// The line of an error that ends the process: level ERROR, with its
/// `exit_code` and `error_type`.
pub fn fatal_line(message: &str, exit_code: i32, error_type: &str) {
    ending_line("ERROR", message, exit_code, error_type);
}

/// The line of `error` ending the process with `exit_code`: ERROR, but
/// WARN when another run holds the lock or the output (nothing is wrong:
/// a scheduler started this run while the last one still ran).
pub fn error_line(error: &crate::error::PipelineError, exit_code: i32) {
    let level = match error {
        crate::error::PipelineError::Busy(_) => "WARN",
        _ => "ERROR",
    };
    ending_line(level, &error.to_string(), exit_code, error.error_type());
}

fn ending_line(level: &str, message: &str, exit_code: i32, error_type: &str) {
    let mut extra = Map::new();
    extra.insert("exit_code".into(), exit_code.into());
    extra.insert("error_type".into(), error_type.into());
    line(level, message, extra);
}

/// The summary record: how the run ended (`outcome`, `exit_code`), the
/// counts, `elapsed_seconds`, `output`; level INFO for a clean run, WARN
/// when records failed or a signal stopped it, ERROR when it failed.
pub fn summary_record(s: &RunSummary, exit_code: ExitCode, output: &str) -> Json {
    let c = s.counts;
    let (level, outcome) = match s.outcome {
        Outcome::Success => ("INFO", "success"),
        Outcome::FailuresAccepted => ("WARN", "failures_accepted"),
        Outcome::RecordsFailed => ("WARN", "records_failed"),
        Outcome::Interrupted(_) => ("WARN", "interrupted"),
        Outcome::Failed => ("ERROR", "failed"),
    };
    let secs = s.elapsed.as_secs_f64();
    let mut extra = Map::new();
    extra.insert("summary".into(), true.into());
    extra.insert("outcome".into(), outcome.into());
    extra.insert("exit_code".into(), exit_code.code().into());
    for (k, v) in c.named() {
        extra.insert(k.into(), v.into());
    }
    extra.insert(
        "elapsed_seconds".into(),
        json!((secs * 1000.0).round() / 1000.0),
    );
    extra.insert(
        "records_per_second".into(),
        json!((c.read as f64 / secs.max(1e-9)).round()),
    );
    extra.insert("output".into(), output.into());
    if let Some(p) = &s.dead_letter {
        if c.failed + c.in_doubt > 0 {
            extra.insert("dead_letter".into(), p.display().to_string().into());
        }
    }
    if let Some(note) = &s.state_note {
        extra.insert("state_file_note".into(), note.clone().into());
    }
    if let Some(e) = &s.error {
        extra.insert("error".into(), e.to_string().into());
        extra.insert("error_type".into(), e.error_type().into());
    }
    record(level, &s.line(), extra)
}

/// Prints the summary (it survives `--quiet`) and writes it to
/// `--summary-json`. A summary file that cannot be written is an error
/// line, the previous run's summary is removed (no script reads stale
/// counts), and `false` is returned: the caller fails a run that had
/// succeeded, as for a textfile.
pub fn print_summary(config: &Config, s: &RunSummary, exit_code: ExitCode) -> bool {
    let obj = summary_record(s, exit_code, &config.sink.target());
    match style().0 {
        LogFormat::Text => line("INFO", &s.line(), Map::new()),
        LogFormat::Json => {
            let _ = writeln!(std::io::stderr().lock(), "{obj}");
        }
    }
    match &config.summary_json {
        None => {}
        Some(OutputPath::Stdout) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{obj}").and_then(|_| out.flush());
        }
        Some(OutputPath::File(path)) => {
            let text = format!("{obj}\n");
            if let Err(e) = crate::fsutil::write_atomic(path, text.as_bytes()) {
                let removed = match std::fs::remove_file(path) {
                    Ok(()) => "; the previous summary there was removed",
                    Err(_) => "",
                };
                line(
                    "ERROR",
                    &format!(
                        "cannot write --summary-json '{}': {e}{removed}",
                        path.display()
                    ),
                    Map::new(),
                );
                return false;
            }
        }
    }
    true
}

/// `--log-format json` for `tracing` events: one object per line.
struct JsonLines {
    pipeline_id: String,
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut obj = Map::new();
        obj.insert("timestamp".into(), timestamp().into());
        obj.insert("level".into(), event.metadata().level().as_str().into());
        obj.insert("pipeline_id".into(), self.pipeline_id.clone().into());
        obj.insert("run_id".into(), run_id().into());
        event.record(&mut Fields(&mut obj));
        obj.entry("message").or_insert_with(|| "".into());
        writeln!(writer, "{}", Json::Object(obj))
    }
}

/// The text format's fields, then ` run_id=…`: every text line ends so.
struct WithRunId;

impl<'w> FormatFields<'w> for WithRunId {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        DefaultFields::new().format_fields(writer.by_ref(), fields)?;
        write!(writer, " run_id={}", run_id())
    }
}

/// Collects an event's fields into the JSON object.
struct Fields<'a>(&'a mut Map<String, Json>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0.insert(field.name().into(), s.into());
    }
}
