//! Error enums, the fixed `error_type` vocabulary used in metrics and
//! dead-letter entries, and the process exit codes (the `app` module decides
//! which, in one place).

use std::fmt;
use std::path::PathBuf;

/// The small, fixed vocabulary of the `error_type` label. Never extend it with
/// free text: label values must stay few and known in advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// Input that could not be parsed (bad CSV row, invalid UTF-8, bad JSON).
    Parse,
    /// A value that does not fit its destination type.
    Conversion,
    /// A connection could not be made or was lost.
    Connection,
    /// A request or lock wait timed out.
    Timeout,
    /// The remote server rejected the request for its own reasons.
    Server,
    /// Authentication or authorisation failed.
    Auth,
    /// Local reading or writing failed.
    Io,
    /// A duplicate key was refused.
    Duplicate,
    /// The configuration is wrong.
    Config,
}

impl ErrorType {
    /// Every error type, in the order they are exported.
    pub const ALL: [ErrorType; 9] = [
        ErrorType::Parse,
        ErrorType::Conversion,
        ErrorType::Connection,
        ErrorType::Timeout,
        ErrorType::Server,
        ErrorType::Auth,
        ErrorType::Io,
        ErrorType::Duplicate,
        ErrorType::Config,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Parse => "parse",
            ErrorType::Conversion => "conversion",
            ErrorType::Connection => "connection",
            ErrorType::Timeout => "timeout",
            ErrorType::Server => "server",
            ErrorType::Auth => "auth",
            ErrorType::Io => "io",
            ErrorType::Duplicate => "duplicate",
            ErrorType::Config => "config",
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `(stage, error_type)` pairs that can happen with a source and a sink
/// that can fail with `source` and `sink` (their kinds' `error_types`): only
/// these series are exported, at 0 from the start. Any other pair is still
/// counted if it ever happens.
pub fn possible_errors(source: &[ErrorType], sink: &[ErrorType]) -> Vec<(Stage, ErrorType)> {
    use ErrorType::*;
    let push_types: &[ErrorType] = &[Connection, Timeout, Server, Io];
    let mut out = Vec::new();
    for (stage, types) in [
        (Stage::Source, source),
        (Stage::Sink, sink),
        (Stage::Push, push_types),
    ] {
        out.extend(types.iter().map(|t| (stage, *t)));
    }
    out
}

/// An error and its causes as one line, each cause said once (drivers wrap
/// "Connection refused" in "error sending request"; the cause is what helps).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Where in the pipeline something happened: the `stage` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Reading from the source.
    Source,
    /// Writing to the sink.
    Sink,
    /// Pushing metrics to a Pushgateway or textfile.
    Push,
}

impl Stage {
    /// Every stage, in the order they are exported.
    pub const ALL: [Stage; 3] = [Stage::Source, Stage::Sink, Stage::Push];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Sink => "sink",
            Stage::Push => "push",
        }
    }
}

/// Process exit codes, as documented in docs/usage.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Every record was written.
    Success = 0,
    /// The run failed, or some records failed.
    Failed = 1,
    /// Usage or configuration error; nothing was read.
    Usage = 2,
    /// Another run holds the lock file.
    Locked = 75,
    /// Stopped by SIGHUP.
    Hangup = 129,
    /// Stopped by SIGINT (Ctrl+C).
    Interrupted = 130,
    /// Stopped by SIGTERM.
    Terminated = 143,
}

impl ExitCode {
    /// The numeric code handed to the operating system.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Everything that can end a run early or stop it from starting.
///
/// Each variant carries enough context for a single clear line; none of them
/// ever carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A flag or config value is wrong (exit 2).
    #[error("{0}")]
    Config(String),
    /// The input could not be opened (exit 2).
    #[error("cannot read {what} '{path}': {source}")]
    OpenInput {
        /// Which flag named the path.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The output could not be created (exit 2).
    #[error("cannot write {what} '{path}': {source}")]
    OpenOutput {
        /// Which flag named the path.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The metrics port could not be bound (exit 2).
    #[error("cannot listen on {host}:{port} for metrics: {reason}; choose another port with --metrics-port (or another address with --metrics-host)")]
    MetricsBind {
        /// The address asked for.
        host: String,
        /// The port asked for.
        port: u16,
        /// Why binding failed.
        reason: String,
    },
    /// Another run is using the same output (exit 75, like a held lock).
    #[error("{0}")]
    Busy(String),
    /// A server could not be used at start: unreachable, credentials
    /// refused, the index or table missing (exit 2). Counted in
    /// `pipeline_errors_total` with its stage and type.
    #[error("{message}")]
    Unavailable {
        /// Which side the server is on.
        stage: Stage,
        /// What went wrong, in the metrics' vocabulary.
        error_type: ErrorType,
        /// The one line to show.
        message: String,
    },
    /// Reading the source failed part way (exit 1).
    #[error("source failed: {1}")]
    Source(ErrorType, String),
    /// Writing the sink failed part way (exit 1).
    #[error("sink failed: {1}")]
    Sink(ErrorType, String),
    /// A worker crashed: a bug (exit 1).
    #[error("{0}")]
    Internal(String),
    /// A push that `--push-required` made part of the run failed (exit 1).
    #[error("{0}")]
    Push(String),
    /// `--max-errors` was reached (exit 1).
    #[error("stopped reading after {0} failed records (--max-errors {0})")]
    TooManyErrors(u64),
    /// The counts do not add up: a bug, and the run fails (exit 1).
    #[error("record counts do not reconcile: read {} != inserted {} + updated {} + skipped {} + failed {}; this is a bug: please report it", .0.read, .0.inserted, .0.updated, .0.skipped, .0.failed)]
    Reconcile(crate::record::Counts),
}

impl PipelineError {
    /// True for errors found before anything was read (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            PipelineError::Config(_)
                | PipelineError::Unavailable { .. }
                | PipelineError::OpenInput { .. }
                | PipelineError::OpenOutput { .. }
                | PipelineError::MetricsBind { .. }
        )
    }

    /// The `error_type` of the fatal log line: the metrics' vocabulary, plus
    /// `locked` (another run holds the lock), `push` (a required push
    /// failed), `max_errors` (`--max-errors` reached) and `internal` (a bug).
    pub fn error_type(&self) -> &'static str {
        match self {
            PipelineError::Config(_) | PipelineError::MetricsBind { .. } => "config",
            PipelineError::Unavailable { error_type, .. }
            | PipelineError::Source(error_type, _)
            | PipelineError::Sink(error_type, _) => error_type.as_str(),
            PipelineError::OpenInput { .. } | PipelineError::OpenOutput { .. } => "io",
            PipelineError::Busy(_) => "locked",
            PipelineError::Push(_) => "push",
            PipelineError::TooManyErrors(_) => "max_errors",
            PipelineError::Internal(_) | PipelineError::Reconcile(_) => "internal",
        }
    }

    /// Its type in `pipeline_errors_total`, where a failure to start is
    /// counted.
    pub fn metric_type(&self) -> ErrorType {
        match self {
            PipelineError::Unavailable { error_type, .. }
            | PipelineError::Source(error_type, _)
            | PipelineError::Sink(error_type, _) => *error_type,
            PipelineError::OpenInput { .. } | PipelineError::OpenOutput { .. } => ErrorType::Io,
            _ => ErrorType::Config,
        }
    }
}
