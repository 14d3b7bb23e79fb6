//! One run of the pipeline, from the signal handler to the last export:
//! the metrics server, the interval and final pushes, the textfile, the
//! summary, and the exit code they decide together.

use std::sync::Arc;

use super::exit::{exit_code, Ending};
use super::signals;
use crate::config::Config;
use crate::error::{ExitCode, PipelineError};
use crate::lock::RunLock;
use crate::metrics::push::{write_textfile, Pusher};
use crate::metrics::server::MetricsServer;
use crate::metrics::{Metrics, RunState};
use crate::pipeline::{self, Outcome, RunSummary};
use crate::report;
use crate::shutdown::Shutdown;

/// What a run serves and exports while it runs and when it ends.
struct Exports {
    metrics: Arc<Metrics>,
    server: Option<MetricsServer>,
    pusher: Option<Arc<Pusher>>,
}

/// Runs the pipeline `config` describes and returns its exit code, or the
/// error that kept it from starting.
pub(super) fn run(config: Config, lock: Vec<RunLock>) -> Result<ExitCode, PipelineError> {
    let shutdown = Shutdown::new();
    signals::install(&shutdown)?;
    let exports = start_exports(&config, &shutdown)?;
    let prepared = match pipeline::prepare(&config, exports.metrics.clone(), shutdown.clone()) {
        Ok(p) => p,
        Err(e) => return Ok(not_started(&config, &shutdown, exports, e, lock)),
    };
    let (push_done, push_done_rx) = crossbeam_channel::bounded::<()>(0);
    let interval_pusher = exports
        .pusher
        .as_ref()
        .and_then(|p| p.spawn_interval(push_done_rx));
    let mut summary = prepared.run();
    let code = exit_code(Ending::Run(&summary));
    signals::finished(code.code());
    drop(push_done);
    if let Some(t) = interval_pusher {
        let _ = t.join();
    }
    exports.metrics.mark_exit_code(code.code());
    // The run's own error first, then what its exports meet.
    if let Some(e) = &summary.error {
        report::error_line(e, code.code());
    }
    let code = match export_final(&config, &exports, code) {
        // The run itself completed, but its metrics are part of it (a cron
        // job's only record of the run, or a push --push-required asks
        // for): the summary says failed, as the exit code does.
        Err(why) if code == ExitCode::Success => {
            let code = exit_code(Ending::RecordLost(code));
            let e = PipelineError::Push(why);
            report::error_line(&e, code.code());
            summary.outcome = Outcome::Failed;
            summary.error = Some(e);
            code
        }
        _ => code,
    };
    let code = report_summary(&config, &summary, code);
    // The next run may start while the final state is still served.
    drop(lock);
    if let Some(server) = exports.server {
        linger(&config, &shutdown, &server, code);
        server.stop();
    }
    Ok(code)
}

/// Serves the run's final state a while longer (`--metrics-linger`), or
/// until a signal (`--metrics-keep-alive`), so Prometheus scrapes how it
/// ended and a late look at the page still sees it.
fn linger(config: &Config, shutdown: &Shutdown, server: &MetricsServer, code: ExitCode) {
    if shutdown.is_requested() {
        return;
    }
    let addr = server.local_addr();
    if config.metrics.keep_alive {
        tracing::info!(
            "run ended (exit {}); still serving its final state on http://{addr}/ and /metrics until Ctrl+C or SIGTERM",
            code.code()
        );
        shutdown.wait();
    } else if !config.metrics.linger.is_zero() {
        tracing::info!(
            "run ended (exit {}); serving its final state on http://{addr}/ and /metrics for {} more (--metrics-linger; Ctrl+C ends it now)",
            code.code(),
            crate::retry::format_wait(config.metrics.linger)
        );
        shutdown.wait_for(config.metrics.linger);
    }
}

/// The run's metrics, the watchdog that bounds its shutdown, the metrics
/// server and the pusher.
fn start_exports(config: &Config, shutdown: &Shutdown) -> Result<Exports, PipelineError> {
    let metrics = Metrics::with_slice(
        &config.pipeline_id,
        config.slice,
        config.source.kind(),
        config.sink.kind(),
    );
    metrics.describe(config.source.target(), config.sink.target());
    metrics.accept_errors(config.accept_errors);
    signals::spawn_watchdog(shutdown.clone(), config.shutdown_timeout, metrics.clone());
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
    Ok(Exports {
        metrics,
        server,
        pusher,
    })
}

/// A run that could not start: its error line, then the exports (cron runs
/// that cannot even start still say so to Prometheus), and a lingering
/// metrics server serving that. Returns the exit code.
fn not_started(
    config: &Config,
    shutdown: &Shutdown,
    exports: Exports,
    e: PipelineError,
    lock: Vec<RunLock>,
) -> ExitCode {
    let code = exit_code(Ending::Error(&e));
    report::error_line(&e, code.code());
    exports.metrics.set_state(RunState::Failed);
    exports.metrics.mark_exit_code(code.code());
    let _ = export_final(config, &exports, code);
    if let Some(s) = exports.server {
        drop(lock);
        linger(config, shutdown, &s, code);
        s.stop();
    }
    code
}

/// The run's summary (stderr, `--summary-json`); the exit code, which a
/// summary file that cannot be written makes 1.
fn report_summary(config: &Config, summary: &RunSummary, code: ExitCode) -> ExitCode {
    if report::print_summary(config, summary, code) {
        code
    } else {
        // The summary file is a script's record of the run, like the
        // textfile: a run that succeeded without it exits 1.
        exit_code(Ending::RecordLost(code))
    }
}

/// The final textfile and push. An error names what failed: a textfile
/// that could not be written (counted in `errors_total{stage="push",
/// error_type="io"}`), or a push that `--push-required` asked for.
fn export_final(config: &Config, exports: &Exports, code: ExitCode) -> Result<(), String> {
    let metrics = &exports.metrics;
    let mut failed = None;
    if let Some(path) = &config.textfile {
        match write_textfile(path, metrics) {
            Ok(()) => tracing::info!("metrics written to {}", path.display()),
            Err(e) => {
                let why = format!("cannot write --metrics-textfile '{}': {e}", path.display());
                tracing::error!("{why}");
                // What is pushed next says how the run ends.
                metrics.mark_exit_code(exit_code(Ending::RecordLost(code)).code());
                failed = Some(why);
            }
        }
    }
    let pushed = match &exports.pusher {
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
