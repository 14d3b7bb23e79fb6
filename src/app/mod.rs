//! The process of pipeline-cli from its arguments to its exit code: the
//! generated texts, the `--config` file, flag parsing, logging, the modes
//! that do not run the pipeline (`--check`, `--es-open-pit`), the run lock,
//! and the run itself with its signal policy, metrics server and exports.
//! [`exit_code`] decides every exit code.

mod exit;
mod run;
mod signals;

use std::ffi::OsString;
use std::io::Write;

pub(crate) use exit::{exit_code, Ending};

use crate::cli::Cli;
use crate::config::{Config, LogFormat, SourceConfig};
use crate::error::{ExitCode, PipelineError};
use crate::lock::{LockError, RunLock};
use crate::metrics::Metrics;
use crate::report;

/// Runs pipeline-cli with the process's arguments (`args[0]` is the
/// program's name) and returns the exit code. An error that keeps the run
/// from starting is printed as one fatal line.
pub fn main(args: Vec<OsString>) -> std::process::ExitCode {
    std::process::ExitCode::from(process(args).code() as u8)
}

/// The flag reference, `docs/flags.md`: every flag's `--help` text under
/// its heading, as markdown, generated from the flags.
pub fn flags_markdown() -> String {
    crate::cli::flags_markdown()
}

/// [`main`], with the exit code as pipeline-cli's own.
fn process(args: Vec<OsString>) -> ExitCode {
    // Made once, as the process starts: every line says it.
    report::run_id();
    match try_main(args) {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code(Ending::Error(&e));
            report::error_line(&e, code.code());
            code
        }
    }
}

fn try_main(raw: Vec<OsString>) -> Result<ExitCode, PipelineError> {
    match crate::cli::generated_text(&raw) {
        Some(Ok(text)) => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            return Ok(exit_code(Ending::Done));
        }
        Some(Err(e)) => return Err(PipelineError::Config(e)),
        None => {}
    }
    let (format, id) = report::early_style(&raw);
    report::set_style(format, &id);
    let (args, config_notes) = crate::cli::with_config_file_noting(raw)?;
    let (format, id) = report::early_style(&args);
    report::set_style(format, &id);
    let cli = Cli::parse_args(args).unwrap_or_else(|e| usage_exit(e, format));
    if cli.es.es_open_pit {
        let config = cli.open_pit_config()?;
        report::init(&config);
        for note in &config_notes {
            tracing::info!("{note}");
        }
        return open_pit(&config);
    }
    let config = cli.into_config()?;
    report::init(&config);
    for note in &config_notes {
        tracing::info!("{note}");
    }
    for note in &config.notes {
        tracing::warn!("{note}");
    }
    crate::fsutil::check_paths(&config)?;
    if config.check {
        return check(&config);
    }
    // Held until the run's work is done (a lingering metrics server does
    // not hold it), or the process exits, whichever way it exits.
    // --lock-file, and a --checkpoint's own lock.
    let mut paths: Vec<&std::path::Path> = config.lock_file.iter().map(|p| p.as_path()).collect();
    if let Some(c) = &config.checkpoint {
        if !paths.contains(&c.lock.as_path()) {
            paths.push(&c.lock);
        }
    }
    let mut locks = Vec::new();
    for path in paths {
        locks.push(RunLock::acquire(path).map_err(|e| match e {
            LockError::Held(holder) => PipelineError::Busy(format!(
                "another run holds the lock {}: {holder}",
                path.display()
            )),
            LockError::Io(e) => PipelineError::Config(format!(
                "cannot lock '{}': {e}; give a path in a writable directory (--lock-file, --checkpoint)",
                path.display()
            )),
        })?);
    }
    run::run(config, locks)
}

/// A flag clap refused: its own (multi-line) message as text, or one fatal
/// JSON line with `--log-format json`. Help and version go to stdout as usual.
fn usage_exit(e: clap::Error, format: LogFormat) -> ! {
    use clap::error::ErrorKind;
    let is_output = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if is_output || format == LogFormat::Text {
        // As clap's own exit: help and version on stdout, exit 0.
        let _ = e.print();
        let _ = std::io::stdout().flush();
        let ending = if e.use_stderr() {
            Ending::Usage
        } else {
            Ending::Done
        };
        std::process::exit(exit_code(ending).code())
    }
    let text = e.render().to_string();
    let mut message = String::new();
    for l in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more"))
    {
        if !message.is_empty() {
            message.push_str(if message.ends_with(':') { " " } else { "; " });
        }
        message.push_str(l);
    }
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let code = exit_code(Ending::Usage).code();
    report::fatal_line(message, code, "config");
    std::process::exit(code)
}

/// `--check`: what the run would do, on stdout; any problem is exit 2.
fn check(config: &Config) -> Result<ExitCode, PipelineError> {
    let lines = crate::pipeline::check(config).map_err(|e| match e {
        e if e.is_usage() || matches!(e, PipelineError::Busy(_)) => e,
        other => PipelineError::Config(other.to_string()),
    })?;
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "check: ok; nothing was written");
    Ok(exit_code(Ending::Done))
}

/// `--es-open-pit`: opens a point in time and prints its id on stdout.
fn open_pit(config: &Config) -> Result<ExitCode, PipelineError> {
    let SourceConfig::Elasticsearch(es) = &config.source else {
        unreachable!("open_pit_config makes an Elasticsearch source")
    };
    let metrics = Metrics::new(
        &config.pipeline_id,
        crate::config::SourceKind::Elasticsearch,
        crate::config::SinkKind::File,
    );
    let id = crate::source::elasticsearch::EsSource::open_shared_pit(es, &metrics)?;
    let _ = writeln!(std::io::stdout().lock(), "{id}");
    Ok(exit_code(Ending::Done))
}
