//! The signal policy of a run: a second stop signal exits at once (but
//! never in the middle of a batch's critical section for longer than
//! [`CRITICAL_LIMIT`]), and a watchdog bounds how long a stopping run may
//! take (`--shutdown-timeout`).

use std::process;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::exit::{exit_code, Ending};
use crate::error::PipelineError;
use crate::metrics::Metrics;
use crate::pipeline::signal_name;
use crate::report;
use crate::shutdown::{install_signal_handlers, Shutdown, CRITICAL_LIMIT};

/// The run's exit code once the pipeline has finished (-1 before): a signal
/// arriving after that (during the final push, say) no longer changes it.
static FINISHED: AtomicI32 = AtomicI32::new(-1);

/// Records that the pipeline has finished with exit code `code`.
pub(super) fn finished(code: i32) {
    FINISHED.store(code, Ordering::SeqCst);
}

fn finished_code() -> Option<i32> {
    let code = FINISHED.load(Ordering::SeqCst);
    (code >= 0).then_some(code)
}

/// Installs the Ctrl+C / SIGTERM / SIGHUP handler: the first signal asks
/// `shutdown` to stop, a second one exits.
pub(super) fn install(shutdown: &Shutdown) -> Result<(), PipelineError> {
    let held = shutdown.clone();
    install_signal_handlers(shutdown.clone(), move |sig| second_signal(&held, sig))
}

/// A second stop signal: exit now.
fn second_signal(shutdown: &Shutdown, sig: i32) {
    if let Some(finished) = finished_code() {
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
    // Never in the middle of a batch's write to a file (a torn last line)
    // nor between XA PREPARE and XA COMMIT (a batch locked on the server
    // until the next run resolves it).
    let done = shutdown.begin_exit(CRITICAL_LIMIT);
    let mut message = format!("second {}: exiting now", signal_name(sig));
    if !done {
        message.push_str(&format!("; {}", unfinished_batch()));
    }
    let code = exit_code(Ending::Signal(sig)).code();
    report::fatal_line(&message, code, "interrupted");
    process::exit(code);
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
pub(super) fn spawn_watchdog(shutdown: Shutdown, timeout: Duration, metrics: Arc<Metrics>) {
    std::thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || {
            shutdown.wait();
            std::thread::sleep(timeout);
            if finished_code().is_some() {
                return;
            }
            let done = shutdown.begin_exit(CRITICAL_LIMIT);
            if finished_code().is_some() {
                return;
            }
            if !done {
                report::line("WARN", &unfinished_batch(), Default::default());
            }
            timed_out(shutdown.signal().unwrap_or(2), timeout, &metrics)
        })
        .expect("spawn the watchdog");
}

/// The watchdog fired: say what the run did so far, and exit.
fn timed_out(sig: i32, timeout: Duration, metrics: &Metrics) -> ! {
    let c = metrics.counts();
    let done = c.inserted + c.updated + c.skipped + c.failed;
    let code = exit_code(Ending::Signal(sig)).code();
    report::fatal_line(
        &format!(
            "shutdown did not finish within --shutdown-timeout {}s; exiting with {} records read but neither written nor failed (in doubt); raise --shutdown-timeout to let a slow sink finish",
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
}
