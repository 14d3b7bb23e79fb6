//! Wiring: source thread(s) -> bounded channel -> sink workers. Owns the run's
//! shared [`Context`] (stop signal, error budget, dead-letter file, progress),
//! the order of shutdown, and the run summary with its reconciliation check.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;
use crate::dead_letter::DeadLetter;
use crate::error::{ErrorType, ExitCode, PipelineError, Stage};
use crate::metrics::{Counts, Metrics, RunState};
use crate::record::Record;
use crate::shutdown::Shutdown;
use crate::sink::{self, BatchWriter, Sink};
use crate::source::{self, Source};

/// The one tokio runtime async clients (MySQL, Elasticsearch) run on;
/// pipeline threads call into it with `block_on`. Started on first use.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pipeline-io")
            .enable_all()
            .build()
            .expect("start the tokio runtime")
    })
}

/// What every source and sink worker of one run shares.
pub struct Context {
    /// The one metrics handle.
    pub metrics: Arc<Metrics>,
    /// The stop signal (Ctrl+C, SIGTERM, or a test).
    pub shutdown: Shutdown,
    dead_letter: DeadLetter,
    max_errors: Option<u64>,
    abort: AtomicBool,
    warned: AtomicU64,
    live_sinks: AtomicU64,
    fatal: Mutex<Option<PipelineError>>,
    progress: Option<Progress>,
}

impl Context {
    /// A context for one run.
    pub fn new(
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
        dead_letter: DeadLetter,
        max_errors: Option<u64>,
    ) -> Context {
        Context {
            metrics,
            shutdown,
            dead_letter,
            max_errors,
            abort: AtomicBool::new(false),
            warned: AtomicU64::new(0),
            live_sinks: AtomicU64::new(0),
            fatal: Mutex::new(None),
            progress: None,
        }
    }

    /// True when the source must stop reading: a stop signal, a fatal error,
    /// or the error budget used up.
    pub fn should_stop_reading(&self) -> bool {
        self.shutdown.is_requested() || self.abort.load(Ordering::Relaxed)
    }

    /// Ends the run as failed with `error` (the first such error is kept) and
    /// stops the source. Sinks still finish what was read.
    pub fn fail_run(&self, error: PipelineError) {
        let mut fatal = self.fatal.lock().expect("fatal lock");
        if fatal.is_none() {
            tracing::error!("{error}");
            *fatal = Some(error);
        }
        self.abort.store(true, Ordering::SeqCst);
    }

    fn take_fatal(&self) -> Option<PipelineError> {
        self.fatal.lock().expect("fatal lock").take()
    }

    fn has_failed(&self) -> bool {
        self.fatal.lock().expect("fatal lock").is_some()
    }

    /// A source row could not become a record: count it, keep it in the
    /// dead-letter file, and check the error budget.
    pub fn reject_row(&self, position: u64, raw: &[u8], error_type: ErrorType, reason: &str) {
        self.metrics.record_failed(Stage::Source, error_type, 1);
        self.warn_rejected(|| tracing::warn!(line = position, "rejected row: {reason}"));
        if let Err(e) = self
            .dead_letter
            .source_row(position, raw, error_type, reason)
        {
            self.dead_letter_failed(e);
        }
        self.check_budget();
    }

    /// A sink rejected `record`: count it, keep it in the dead-letter file, and
    /// check the error budget.
    pub fn reject_record(&self, record: &Record, error_type: ErrorType, reason: &str) {
        self.metrics.record_failed(Stage::Sink, error_type, 1);
        self.warn_rejected(|| {
            tracing::warn!(position = record.position, "rejected record: {reason}")
        });
        if let Err(e) = self.dead_letter.sink_record(record, error_type, reason) {
            self.dead_letter_failed(e);
        }
        self.check_budget();
    }

    /// Logs the first few rejections; after that they are only counted (and
    /// kept in the dead-letter file), so a bad input cannot flood the log.
    fn warn_rejected(&self, log: impl FnOnce()) {
        const LOGGED: u64 = 10;
        match self.warned.fetch_add(1, Ordering::Relaxed) {
            n if n < LOGGED => log(),
            LOGGED => tracing::warn!(
                "more records rejected; they are counted in pipeline_records_failed_total and kept in the dead-letter file, but not logged"
            ),
            _ => {}
        }
    }

    fn dead_letter_failed(&self, e: std::io::Error) {
        let error = PipelineError::Sink(format!(
            "cannot write the dead-letter file: {e}; failed records from now on are counted but not kept"
        ));
        // Said even when the run has already failed for another reason.
        if self.has_failed() {
            tracing::error!("{error}");
        }
        self.fail_run(error);
    }

    fn check_budget(&self) {
        if let Some(max) = self.max_errors {
            if self.metrics.counts().failed >= max && !self.abort.load(Ordering::Relaxed) {
                self.fail_run(PipelineError::TooManyErrors(max));
            }
        }
    }

    /// Tells the progress display how far the source is.
    pub fn progress(&self, bytes: u64, records: u64) {
        if let Some(p) = &self.progress {
            p.update(bytes, records);
        }
    }

    /// Sets the total size of the input, when it is known, for the progress %.
    pub fn progress_total(&self, bytes: Option<u64>) {
        if let (Some(p), Some(total)) = (&self.progress, bytes) {
            p.bar.set_length(total);
        }
    }

    /// Sets the total number of records, when the source knows it (a count
    /// of matching documents): the bar then counts records, not bytes.
    pub fn progress_total_records(&self, total: u64) {
        if let Some(p) = &self.progress {
            p.bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {human_pos}/{human_len} records {msg}",
                )
                .expect("valid template"),
            );
            p.bar.set_length(total);
            p.by_records.store(true, Ordering::Relaxed);
        }
    }
}

/// A progress bar on stderr (only on a terminal, and never with --quiet).
struct Progress {
    bar: ProgressBar,
    started: Instant,
    by_records: AtomicBool,
}

impl Progress {
    fn new() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg}",
            )
            .expect("valid template"),
        );
        Progress {
            bar,
            started: Instant::now(),
            by_records: AtomicBool::new(false),
        }
    }

    fn update(&self, bytes: u64, records: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = records as f64 / secs;
        if self.by_records.load(Ordering::Relaxed) {
            self.bar.set_position(records);
            self.bar.set_message(format!("{rate:.0} records/s"));
        } else {
            self.bar.set_position(bytes);
            self.bar
                .set_message(format!("{records} records, {rate:.0} records/s"));
        }
    }
}

/// The sending end of the channel, as sources see it.
pub struct RecordSender {
    tx: Sender<Record>,
}

impl RecordSender {
    /// Sends every record of `chunk` (leaving it empty), blocking while the
    /// queue is full: that is the back-pressure that keeps memory flat.
    /// Records that can no longer be delivered (every sink worker is gone)
    /// are failed and kept in the dead-letter file, never dropped.
    pub fn send_all(&self, chunk: &mut Vec<Record>, ctx: &Context) {
        let mut drain = chunk.drain(..);
        while let Some(record) = drain.next() {
            // The common case, without reading the clock.
            let mut record = match self.tx.try_send(record) {
                Ok(()) => continue,
                Err(TrySendError::Full(r) | TrySendError::Disconnected(r)) => r,
            };
            loop {
                record = match self.tx.send_timeout(record, Duration::from_millis(200)) {
                    Ok(()) => break,
                    // Every sink worker is gone (one panicked): nobody will
                    // take this record; fail it instead of waiting.
                    Err(SendTimeoutError::Timeout(r))
                        if ctx.live_sinks.load(Ordering::SeqCst) > 0 =>
                    {
                        r
                    }
                    Err(SendTimeoutError::Timeout(r) | SendTimeoutError::Disconnected(r)) => {
                        undeliverable(ctx, std::iter::once(r).chain(drain.by_ref()));
                        return;
                    }
                };
            }
        }
    }
}

/// Counts a sink worker as alive until it ends, however it ends.
struct LiveSink<'a>(&'a AtomicU64);

impl Drop for LiveSink<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn undeliverable(ctx: &Context, records: impl Iterator<Item = Record>) {
    for r in records {
        ctx.reject_record(
            &r,
            ErrorType::Io,
            "not written: every sink worker has stopped",
        );
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything read was written.
    Success,
    /// The run finished, but some records failed (see the dead-letter file).
    RecordsFailed,
    /// The run was ended by an error.
    Failed,
    /// The run was stopped by a signal (its number).
    Interrupted(i32),
}

impl Outcome {
    /// The exit code for this outcome.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::Success,
            Outcome::RecordsFailed | Outcome::Failed => ExitCode::Failed,
            Outcome::Interrupted(sig) => signal_exit_code(sig),
        }
    }
}

/// The exit code for a run stopped by signal `sig`.
pub fn signal_exit_code(sig: i32) -> ExitCode {
    match sig {
        15 => ExitCode::Terminated,
        1 => ExitCode::Hangup,
        _ => ExitCode::Interrupted,
    }
}

/// What a run did, for the summary line and the exit code.
#[derive(Debug)]
pub struct RunSummary {
    /// How it ended.
    pub outcome: Outcome,
    /// The record counts.
    pub counts: Counts,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// The error that ended the run, if one did.
    pub error: Option<PipelineError>,
    /// Where the output is (or was left), from the sink.
    pub output_note: Option<String>,
    /// The dead-letter file, when records failed and one was given.
    pub dead_letter: Option<std::path::PathBuf>,
    /// Failed records the dead-letter file could not take (it failed).
    pub dead_letter_lost: u64,
}

impl RunSummary {
    /// The exit code: the outcome's, except that a configuration error
    /// found before anything was read (credentials refused on the first
    /// page) is a usage error (2), as when it is found at start.
    pub fn exit_code(&self) -> ExitCode {
        match &self.error {
            Some(e) if self.counts.read == 0 && e.is_usage() => ExitCode::Usage,
            _ => self.outcome.exit_code(),
        }
    }

    /// The one-line summary printed on stderr.
    pub fn line(&self) -> String {
        let c = &self.counts;
        let status = match self.outcome {
            Outcome::Success => "completed".to_string(),
            Outcome::RecordsFailed => "completed with failed records".to_string(),
            Outcome::Failed => "failed".to_string(),
            Outcome::Interrupted(sig) => format!("interrupted by {}", signal_name(sig)),
        };
        let secs = self.elapsed.as_secs_f64();
        let mut line = format!(
            "{status}: read={} inserted={} updated={} skipped={} failed={} in {:.2}s ({:.0} records/s)",
            c.read,
            c.inserted,
            c.updated,
            c.skipped,
            c.failed,
            secs,
            c.read as f64 / secs.max(1e-9)
        );
        if let Some(note) = &self.output_note {
            line.push_str("; ");
            line.push_str(note);
        }
        if c.failed > 0 {
            match &self.dead_letter {
                Some(p) if self.dead_letter_lost > 0 => line.push_str(&format!(
                    "; failed records in {}, except {} that could not be written there",
                    p.display(),
                    self.dead_letter_lost
                )),
                Some(p) => line.push_str(&format!("; failed records in {}", p.display())),
                None => line.push_str("; keep failed records with --dead-letter PATH"),
            }
        }
        line
    }
}

/// The conventional name of a signal number.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

/// A run that has opened its source, sink and dead-letter file (so every
/// configuration error has been seen) but has not read anything yet.
pub struct Prepared {
    config: Config,
    ctx: Arc<Context>,
    source: Box<dyn Source>,
    sink: Arc<dyn Sink>,
    writers: Vec<Box<dyn BatchWriter>>,
}

/// Opens everything a run needs. Errors here mean nothing was read (exit 2).
pub fn prepare(
    config: &Config,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) -> Result<Prepared, PipelineError> {
    let source = source::open(&config.source, config.limit)?;
    let sink = sink::open(&config.sink, source.fields().as_deref())?;
    let writers = (0..config.workers)
        .map(|_| sink.writer(&metrics, &shutdown))
        .collect::<Result<Vec<_>, _>>()?;
    let dead_letter = DeadLetter::open(config.dead_letter.as_deref())?;
    let mut ctx = Context::new(metrics, shutdown, dead_letter, config.max_errors);
    if !config.quiet && std::io::stderr().is_terminal() {
        ctx.progress = Some(Progress::new());
    }
    ctx.progress_total(source.size_hint());
    Ok(Prepared {
        config: config.clone(),
        ctx: Arc::new(ctx),
        source,
        sink,
        writers,
    })
}

/// Opens everything and runs to the end: [`prepare`] then [`Prepared::run`].
pub fn run(
    config: &Config,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) -> Result<RunSummary, PipelineError> {
    Ok(prepare(config, metrics, shutdown)?.run())
}

impl Prepared {
    /// Reads everything (or until stopped), writes it, and reports. Never
    /// returns before every record read has been written or failed.
    pub fn run(self) -> RunSummary {
        let Prepared {
            config,
            ctx,
            mut source,
            sink,
            writers,
        } = self;
        let started = Instant::now();
        let metrics = ctx.metrics.clone();
        let (tx, rx) = crossbeam_channel::bounded::<Record>(config.queue_size);
        let probe_rx = rx.clone();
        metrics.watch_queue(config.queue_size, Some(Box::new(move || probe_rx.len())));
        metrics.set_state(RunState::Running);

        std::thread::scope(|scope| {
            for (i, writer) in writers.into_iter().enumerate() {
                let rx = rx.clone();
                let ctx = &ctx;
                let cfg = &config;
                ctx.live_sinks.fetch_add(1, Ordering::SeqCst);
                std::thread::Builder::new()
                    .name(format!("sink-{i}"))
                    .spawn_scoped(scope, move || {
                        let _alive = LiveSink(&ctx.live_sinks);
                        let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            sink::batch::run_worker(rx, writer, ctx, cfg.batch_size, cfg.batch_timeout)
                        }));
                        if worked.is_err() {
                            ctx.fail_run(PipelineError::Sink(format!(
                                "sink worker {i} crashed; records it held are missing from the counts"
                            )));
                        }
                    })
                    .expect("spawn a sink worker");
            }
            drop(rx);
            let sender = RecordSender { tx };
            let ctx = &ctx;
            let source = &mut source;
            std::thread::Builder::new()
                .name("source".into())
                .spawn_scoped(scope, move || {
                    if let Err(e) = source.run(&sender, ctx) {
                        ctx.fail_run(e);
                    }
                    drop(sender);
                    if ctx.should_stop_reading() {
                        ctx.metrics.set_state(RunState::Draining);
                    }
                })
                .expect("spawn the source thread");
        });
        metrics.unwatch_queue();
        if let Err(e) = ctx.dead_letter.flush() {
            ctx.dead_letter_failed(e);
        }

        // A stop requested without a signal (the library API) is SIGINT-like.
        let interrupted = ctx
            .shutdown
            .is_requested()
            .then(|| ctx.shutdown.signal().unwrap_or(2));
        let complete = interrupted.is_none() && !ctx.has_failed();
        let output_note = match sink.finish(complete) {
            Ok(note) => note,
            Err(e) => {
                ctx.fail_run(e);
                sink.finish(false).ok().flatten()
            }
        };
        if let Some(p) = &ctx.progress {
            p.bar.finish_and_clear();
        }

        let counts = metrics.counts();
        if !counts.reconciles() {
            ctx.fail_run(PipelineError::Reconcile(counts));
        }
        let error = ctx.take_fatal();
        let outcome = match (error.is_some(), interrupted) {
            (true, _) => Outcome::Failed,
            (false, Some(sig)) => Outcome::Interrupted(sig),
            (false, None) if counts.failed > 0 => Outcome::RecordsFailed,
            (false, None) => Outcome::Success,
        };
        metrics.set_state(match outcome {
            Outcome::Success | Outcome::RecordsFailed => RunState::Completed,
            Outcome::Failed => RunState::Failed,
            Outcome::Interrupted(_) => RunState::Interrupted,
        });
        let mut error = error;
        let mut outcome = outcome;
        if outcome == Outcome::Success {
            if let Err(e) = source.commit() {
                tracing::error!("{e}");
                error = Some(e);
                outcome = Outcome::Failed;
                metrics.set_state(RunState::Failed);
            } else {
                metrics.mark_success();
            }
        }
        RunSummary {
            outcome,
            counts,
            elapsed: started.elapsed(),
            error,
            output_note,
            dead_letter: ctx.dead_letter.path().map(|p| p.to_path_buf()),
            dead_letter_lost: ctx.dead_letter.lost(),
        }
    }
}
