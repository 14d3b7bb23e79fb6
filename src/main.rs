//! The `pipeline-cli` binary: parse flags, start logging, the signal handler
//! and the metrics server, run the pipeline, and map the outcome to an exit code.

use std::io::Write;
use std::process;
use std::time::Duration;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use pipeline_cli::cli::Cli;
use pipeline_cli::config::{Config, LogFormat};
use pipeline_cli::error::{ExitCode, PipelineError};
use pipeline_cli::lock::{LockError, RunLock};
use pipeline_cli::metrics::push::{write_textfile, Pusher};
use pipeline_cli::metrics::server::MetricsServer;
use pipeline_cli::metrics::{Metrics, RunState};
use pipeline_cli::pipeline::{self, signal_exit_code, signal_name, Outcome};
use pipeline_cli::report;
use pipeline_cli::shutdown::{install_signal_handlers, Shutdown, CRITICAL_LIMIT};

/// mimalloc: records are allocated on the source thread and freed on the
/// sink threads; glibc's allocator serialises that on a lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits the arenas it reserves up front on Linux, and pages
/// freed by one thread and reused by another then stay resident: about
/// 30 MiB more peak memory for a run that reads 5,000-document pages, and
/// no faster. Committing on demand keeps resident memory to what is used.
/// Set before `main`, as the process starts, before the first allocation
/// reserves an arena.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static LAZY_COMMIT: extern "C" fn() = lazy_commit;

#[cfg(target_os = "linux")]
extern "C" fn lazy_commit() {
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    /// `mi_option_arena_eager_commit` in mimalloc's option enum.
    const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    // SAFETY: sets one of mimalloc's option values (an int in a static
    // table); mimalloc reads it when it next reserves an arena.
    unsafe { mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

/// The one place errors become exit codes: `try_main` returns the run's
/// code, or the error that kept it from running, printed as one line.
fn main() -> process::ExitCode {
    let code = match try_main() {
        Ok(code) => code,
        Err(e) => {
            report::fatal(&e);
            e.exit_code()
        }
    };
    process::ExitCode::from(code.code() as u8)
}

fn try_main() -> Result<ExitCode, PipelineError> {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match pipeline_cli::cli::generated_text(&raw) {
        Some(Ok(text)) => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            return Ok(ExitCode::Success);
        }
        Some(Err(e)) => return Err(PipelineError::Config(e)),
        None => {}
    }
    let (format, id) = report::early_style(&raw);
    report::set_style(format, &id);
    let (args, config_notes) = pipeline_cli::cli::with_config_file_noting(raw)?;
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
    pipeline_cli::fsutil::check_paths(&config)?;
    if config.check {
        return check(&config);
    }
    // Held until the process exits, whichever way it exits.
    let _lock = match &config.lock_file {
        Some(path) => Some(RunLock::acquire(path).map_err(|e| match e {
            LockError::Held(holder) => PipelineError::Busy(format!(
                "another run holds the lock {}: {holder}",
                path.display()
            )),
            LockError::Io(e) => {
                PipelineError::Config(format!("cannot lock --lock-file '{}': {e}", path.display()))
            }
        })?),
        None => None,
    };
    run(config)
}

/// A flag clap refused: its own (multi-line) message as text, or one fatal
/// JSON line with `--log-format json`. Help and version go to stdout as usual.
fn usage_exit(e: clap::Error, format: LogFormat) -> ! {
    use clap::error::ErrorKind;
    let is_output = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if is_output || format == LogFormat::Text {
        e.exit()
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
    report::fatal_line(message, ExitCode::Usage.code(), "config");
    process::exit(ExitCode::Usage.code())
}

/// `--check`: what the run would do, on stdout; any problem is exit 2.
fn check(config: &Config) -> Result<ExitCode, PipelineError> {
    let lines = pipeline::check(config).map_err(|e| match e {
        e if e.is_usage() || matches!(e, PipelineError::Busy(_)) => e,
        other => PipelineError::Config(other.to_string()),
    })?;
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "check: ok; nothing was written");
    Ok(ExitCode::Success)
}

/// `--es-open-pit`: opens a point in time and prints its id on stdout.
fn open_pit(config: &Config) -> Result<ExitCode, PipelineError> {
    let pipeline_cli::config::SourceConfig::Elasticsearch(es) = &config.source else {
        unreachable!("open_pit_config makes an Elasticsearch source")
    };
    let metrics = Metrics::new(&config.pipeline_id, "elasticsearch", "file");
    let id = pipeline_cli::source::elasticsearch::EsSource::open_shared_pit(es, &metrics)?;
    let _ = writeln!(std::io::stdout().lock(), "{id}");
    Ok(ExitCode::Success)
}

/// The final textfile and push. An error names what failed: a textfile
/// that could not be written (counted in `errors_total{stage="push",
/// error_type="io"}`), or a push that `--push-required` asked for.
fn export_final(
    config: &Config,
    metrics: &Metrics,
    pusher: Option<&Arc<Pusher>>,
    code: ExitCode,
) -> Result<(), String> {
    let mut failed = None;
    if let Some(path) = &config.textfile {
        match write_textfile(path, metrics) {
            Ok(()) => tracing::info!("metrics written to {}", path.display()),
            Err(e) => {
                let why = format!("cannot write --metrics-textfile '{}': {e}", path.display());
                tracing::error!("{why}");
                // What is pushed next says how the run ends.
                if code == ExitCode::Success {
                    metrics.mark_exit_code(ExitCode::Failed.code());
                }
                failed = Some(why);
            }
        }
    }
    let pushed = match pusher {
        Some(p) => match p.push() {
            Ok(()) => {
                tracing::info!("metrics pushed to {}", p.target());
                true
            }
            Err(_) => !p.required(),
        },
        None => true,
    };
    match failed {
        Some(why) => Err(why),
        None if !pushed => Err("the final push to the Pushgateway failed (--push-required)".into()),
        None => Ok(()),
    }
}

/// The run's exit code once the pipeline has finished (-1 before): a signal
/// arriving after that (during the final push, say) no longer changes it.
static FINISHED: AtomicI32 = AtomicI32::new(-1);

fn run(config: Config) -> Result<ExitCode, PipelineError> {
    let shutdown = Shutdown::new();
    let held = shutdown.clone();
    install_signal_handlers(shutdown.clone(), move |sig| {
        let finished = FINISHED.load(Ordering::SeqCst);
        if finished >= 0 {
            report::line(
                "WARN",
                &format!(
                    "second {}: the run had finished; exiting now",
                    signal_name(sig)
                ),
                Default::default(),
            );
            process::exit(finished);
        }
        // Never in the middle of a batch's write to a file (a torn last
        // line) nor between XA PREPARE and XA COMMIT (a batch locked on the
        // server until the next run resolves it).
        let done = held.begin_exit(CRITICAL_LIMIT);
        let mut message = format!("second {}: exiting now", signal_name(sig));
        if !done {
            message.push_str(&format!("; {}", unfinished_batch()));
        }
        let code = signal_exit_code(sig).code();
        report::fatal_line(&message, code, "interrupted");
        process::exit(code);
    })?;
    let metrics = Metrics::with_slice(
        &config.pipeline_id,
        config.slice,
        config.source.kind(),
        config.sink.kind(),
    );
    spawn_watchdog(shutdown.clone(), config.shutdown_timeout, metrics.clone());
    let server = match config.metrics.port {
        Some(port) => {
            let s = MetricsServer::start(&config.metrics.host, port, metrics.clone())?;
            tracing::info!("serving metrics on http://{}/metrics", s.local_addr());
            Some(s)
        }
        None => None,
    };
    let pusher = match &config.push {
        Some(p) => Some(Arc::new(Pusher::new(p.clone(), metrics.clone())?)),
        None => None,
    };
    let prepared = match pipeline::prepare(&config, metrics.clone(), shutdown.clone()) {
        Ok(p) => p,
        Err(e) => {
            // Cron runs that cannot even start still say so to Prometheus.
            metrics.set_state(RunState::Failed);
            metrics.mark_exit_code(e.exit_code().code());
            let _ = export_final(&config, &metrics, pusher.as_ref(), e.exit_code());
            if let Some(s) = server {
                s.stop();
            }
            return Err(e);
        }
    };
    let (push_done, push_done_rx) = crossbeam_channel::bounded::<()>(0);
    let interval_pusher = pusher.as_ref().and_then(|p| p.spawn_interval(push_done_rx));
    let mut summary = prepared.run();
    let code = summary.exit_code();
    FINISHED.store(code.code(), Ordering::SeqCst);
    drop(push_done);
    if let Some(t) = interval_pusher {
        let _ = t.join();
    }
    metrics.mark_exit_code(code.code());
    let exported = export_final(&config, &metrics, pusher.as_ref(), code);
    let code = match exported {
        // The run itself completed, but its metrics are part of it (a cron
        // job's only record of the run, or a push --push-required asks
        // for): the summary says failed, as the exit code does.
        Err(why) if code == ExitCode::Success => {
            summary.outcome = Outcome::Failed;
            summary.error = Some(PipelineError::Push(why));
            ExitCode::Failed
        }
        _ => code,
    };
    if let Some(e) = &summary.error {
        report::fatal_line(&e.to_string(), code.code(), e.error_type());
    }
    let code = match report::print_summary(&config, &summary, code) {
        // The summary file is a script's record of the run, like the
        // textfile: a run that succeeded without it exits 1.
        false if code == ExitCode::Success => ExitCode::Failed,
        _ => code,
    };
    if let Some(server) = server {
        if config.metrics.keep_alive && !shutdown.is_requested() {
            tracing::info!(
                "run finished; still serving the final metrics on http://{}/metrics until Ctrl+C or SIGTERM",
                server.local_addr()
            );
            shutdown.wait();
        }
        server.stop();
    }
    Ok(code)
}

/// What an exit that could not wait longer for a batch leaves behind.
fn unfinished_batch() -> String {
    format!(
        "a batch being written did not finish within {}s (a file's last line may be torn; a database batch prepared is resolved by the next run)",
        CRITICAL_LIMIT.as_secs()
    )
}

/// After the first stop signal, bounds how long the process may take to end.
/// It stands down once the pipeline has finished (what is left, the final
/// push, is bounded by --push-timeout); when it fires it prints what the run
/// did so far and how many records read are in doubt.
fn spawn_watchdog(shutdown: Shutdown, timeout: Duration, metrics: Arc<Metrics>) {
    std::thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || {
            shutdown.wait();
            std::thread::sleep(timeout);
            if FINISHED.load(Ordering::SeqCst) >= 0 {
                return;
            }
            let done = shutdown.begin_exit(CRITICAL_LIMIT);
            if FINISHED.load(Ordering::SeqCst) >= 0 {
                return;
            }
            if !done {
                report::line("WARN", &unfinished_batch(), Default::default());
            }
            let sig = shutdown.signal().unwrap_or(2);
            let c = metrics.counts();
            let done = c.inserted + c.updated + c.skipped + c.failed;
            let code = signal_exit_code(sig).code();
            report::fatal_line(
                &format!(
                    "shutdown did not finish within --shutdown-timeout {}s; exiting with {} records read but neither written nor failed (in doubt)",
                    timeout.as_secs(),
                    c.read.saturating_sub(done)
                ),
                code,
                "interrupted",
            );
            report::line(
                "WARN",
                &format!(
                    "interrupted by {}: read={} inserted={} updated={} skipped={} failed={} (stopped by the shutdown timeout)",
                    signal_name(sig),
                    c.read,
                    c.inserted,
                    c.updated,
                    c.skipped,
                    c.failed
                ),
                Default::default(),
            );
            process::exit(code);
        })
        .expect("spawn the watchdog");
}
