//! Wiring: the source thread -> the bounded channel -> sink workers. Opens
//! everything a run needs, runs it, decides the order of shutdown, and
//! reconciles the counts into the run summary.

mod check;
#[cfg(test)]
mod in_process;
mod resume;
mod summary;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use crate::channel;
use crate::config::Config;
use crate::context::Context;
use crate::dead_letter::DeadLetter;
use crate::error::{PipelineError, Stage};
use crate::flatten::Flattener;
use crate::metrics::{Metrics, RunState};
use crate::progress::Progress;
use crate::shutdown::Shutdown;
use crate::sink::{self, BatchWriter, Sink};
use crate::source::{self, Source};

pub use check::check;
pub use summary::{signal_name, Outcome, RunSummary};

/// The queue (records) between reading and writing with `--max-errors`.
pub const MAX_ERRORS_QUEUE: usize = 64;

/// A run that has opened its source, sink and dead-letter file (so every
/// configuration error has been seen) but has not read anything yet; or one
/// with nothing to do (its `--checkpoint` says the job completed).
pub enum Prepared {
    /// Ready to run.
    Ready(Box<Ready>),
    /// Nothing to do: the job completed.
    Done(crate::checkpoint::Completed, Arc<Metrics>),
}

/// A run ready to read.
pub struct Ready {
    config: Config,
    ctx: Arc<Context>,
    source: Box<dyn Source>,
    sink: Arc<dyn Sink>,
    writers: Vec<Box<dyn BatchWriter>>,
    /// `--create-table`: the first records to hold back for the types.
    hold: Option<u64>,
}

/// Opens everything a run needs. Errors here mean nothing was read (exit 2).
pub fn prepare(
    config: &Config,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) -> Result<Prepared, PipelineError> {
    // A run that cannot start still counts why, for the final push.
    let counted = |stage: Stage| {
        let metrics = metrics.clone();
        move |e: PipelineError| {
            metrics.error(stage, e.metric_type(), 1);
            e
        }
    };
    // --checkpoint: a new one, or the one this run resumes.
    let start = match &config.checkpoint {
        Some(c) => Some(
            crate::checkpoint::start(config, &c.path, c.restart).map_err(counted(Stage::Source))?,
        ),
        None => None,
    };
    if let Some(done) = start.as_ref().and_then(|s| s.complete.clone()) {
        return Ok(Prepared::Done(done, metrics));
    }
    if let Some(note) = start
        .as_ref()
        .and_then(|s| resume::output_complete(config, s))
    {
        let done = crate::checkpoint::Completed {
            note,
            failed: start
                .as_ref()
                .and_then(|s| s.resume.as_ref())
                .map_or(0, |r| r.failed),
            accepted: false,
        };
        return Ok(Prepared::Done(done, metrics));
    }
    let sink_config = resume::sink_config(&config.sink, start.as_ref());
    let mut source =
        source::open(&config.source, &metrics, &shutdown).map_err(counted(Stage::Source))?;
    let sink = sink::open(&sink_config, source.fields().as_deref(), false)
        .map_err(counted(Stage::Sink))?;
    let hold = match sink.wants_sample() {
        // --create-table from the whole input: regular files are read
        // twice, the first time for the types.
        Some(0) if source::read_twice(&config.source) => {
            check::give_sample(config, 0, sink.as_ref(), false).map_err(counted(Stage::Sink))?;
            None
        }
        // An input read once: its first records decide.
        Some(0) => Some(crate::config::DEFAULT_CREATE_TABLE_SAMPLE),
        // The run's own first records are held back until the table exists.
        Some(n) => Some(n),
        None => None,
    };
    let workers = match hold {
        // The table exists before a worker sees a record.
        Some(_) => config.workers,
        None => sink
            .max_workers()
            .map_or(config.workers, |m| m.min(config.workers)),
    };
    let writers = (0..workers)
        .map(|_| sink.writer(&metrics, &shutdown))
        .collect::<Result<Vec<_>, _>>()
        .map_err(counted(Stage::Sink))?;
    let dead_letter = DeadLetter::open(config.dead_letter.as_deref())
        .map_err(counted(Stage::Sink))?
        .holding_exit(&shutdown);
    let tracker = match start {
        Some(start) => {
            // A source that cannot go on from the checkpoint says so
            // before the checkpoint is written again.
            source
                .checkpointed(start.resume.as_ref())
                .map_err(counted(Stage::Source))?;
            Some(resume::track(config, start, sink.as_ref()).map_err(counted(Stage::Sink))?)
        }
        None => None,
    };
    let progress = progress_bar(config, "");
    // --max-errors spans the runs of a resumed job: what earlier runs
    // failed is spent.
    let earlier = tracker.as_ref().map_or(0, |t| t.failed_before());
    let budget = config.max_errors.map(|m| m.saturating_sub(earlier));
    let ctx = Context::new(metrics, shutdown, dead_letter, budget, progress);
    if let Some(max) = config.max_errors.filter(|&m| earlier >= m) {
        // Spent by the earlier runs: this one reads nothing.
        ctx.fail_run(crate::error::PipelineError::TooManyErrors(max));
    }
    if let Some(t) = tracker {
        ctx.metrics.resumed_records(0);
        ctx.set_checkpoint(t);
    }
    if let crate::config::SourceConfig::Elasticsearch(es) = &config.source {
        ctx.set_index(&es.index);
    }
    ctx.progress_total(source.size_hint());
    Ok(Prepared::Ready(Box::new(Ready {
        config: config.clone(),
        ctx: Arc::new(ctx),
        source,
        sink,
        writers,
        hold,
    })))
}

/// The progress bar, `label` before it: for a person at a terminal, not
/// with `--quiet`, nor with JSON logs (they are for a shipper).
fn progress_bar(config: &Config, label: &str) -> Option<Progress> {
    (!config.quiet
        && config.log_format == crate::config::LogFormat::Text
        && std::io::stderr().is_terminal())
    .then(|| Progress::new(label))
}

impl Prepared {
    /// Reads everything (or until stopped), writes it, and reports. Never
    /// returns before every record read has been written or failed.
    pub fn run(self) -> RunSummary {
        match self {
            Prepared::Ready(ready) => ready.run(),
            Prepared::Done(done, metrics) => {
                tracing::info!("{}", done.note);
                // As the run that completed the job ended.
                let outcome = match (done.failed, done.accepted) {
                    (0, _) => Outcome::Success,
                    (_, true) => Outcome::FailuresAccepted,
                    _ => Outcome::RecordsFailed,
                };
                mark_outcome(&metrics, outcome, true);
                let failed = (done.failed > 0)
                    .then(|| format!("failed earlier={} records in the job's runs", done.failed));
                RunSummary {
                    outcome,
                    counts: metrics.counts(),
                    elapsed: std::time::Duration::ZERO,
                    error: None,
                    output_note: Some(done.note),
                    state_note: failed,
                    dead_letter: None,
                    dead_letter_lost: 0,
                }
            }
        }
    }
}

impl Ready {
    /// See [`Prepared::run`].
    fn run(self) -> RunSummary {
        let Ready {
            config,
            ctx,
            mut source,
            sink,
            writers,
            hold,
        } = self;
        let started = Instant::now();
        let metrics = ctx.metrics.clone();
        // A source that writes JSON lines for a sink that takes them sends
        // whole batches: the queue then holds about as many records.
        // Not with --flatten: every record passes through the flattener.
        let flattener = config.flatten.clone().map(Flattener::new);
        let lines =
            flattener.is_none() && sink.takes_lines() && source.write_json_lines(config.batch_size);
        let (mut sender, rx) = channel::bounded(queue_capacity(&config, lines));
        if let Some(n) = hold {
            sender.hold(
                n,
                take_held(sink.clone(), config.flatten.clone().map(Flattener::new), n),
            );
        }
        let spent = if source.reuses_records() {
            // A few batches per worker on the way back: enough to keep the
            // source supplied, few enough to keep memory flat.
            channel::with_reuse(&mut sender, 2 * writers.len() + 2)
        } else {
            channel::Spent::default()
        };
        metrics.queue_capacity(config.queue_size);
        metrics.set_state(RunState::Running);
        // Batches numbered in input order, for a sink that keeps it with
        // several workers.
        // With --checkpoint every batch is a range of the items sent.
        let numbered = sink.ordered() && writers.len() > 1;
        let order =
            (numbered || ctx.checkpoint().is_some()).then(|| sink::batch::Order::new(numbered));
        std::thread::scope(|scope| {
            let workers = Workers {
                ctx: &ctx,
                config: &config,
                order: order.as_ref(),
                spent: &spent,
                depth: sender.depth(),
                flatten: flattener.as_ref(),
            };
            for (i, writer) in writers.into_iter().enumerate() {
                workers.spawn(scope, i, writer, rx.clone());
            }
            drop(rx);
            spawn_source(scope, &mut source, sender, &ctx, config.limit);
        });
        metrics.queue_depth(0);
        if let Err(e) = ctx.dead_letter().flush() {
            ctx.dead_letter_failed(e);
        }
        // A stop requested without a signal (the library API) is SIGINT-like.
        let interrupted = ctx
            .shutdown
            .is_requested()
            .then(|| ctx.shutdown.signal().unwrap_or(2));
        let (committed, output_note, state_note) =
            settle(&config, &ctx, &mut *source, &*sink, interrupted);
        ctx.progress_done();
        let counts = metrics.counts();
        if !counts.reconciles() {
            ctx.fail_run(PipelineError::Reconcile(counts));
        }
        let error = ctx.take_fatal();
        // A resumed job's outcome counts what its earlier runs failed.
        let earlier = ctx.checkpoint().map_or(0, |t| t.failed_before());
        let failed = counts.failed + earlier;
        let accepted = config
            .accept_errors
            .is_some_and(|a| a.allows(failed, counts.read + counts.resumed));
        let outcome = match (error.is_some(), interrupted) {
            (true, _) => Outcome::Failed,
            (false, Some(sig)) => Outcome::Interrupted(sig),
            (false, None) if failed > 0 && accepted => Outcome::FailuresAccepted,
            (false, None) if failed > 0 => Outcome::RecordsFailed,
            (false, None) => Outcome::Success,
        };
        mark_outcome(&metrics, outcome, committed);
        RunSummary {
            outcome,
            counts,
            elapsed: started.elapsed(),
            error,
            output_note,
            state_note,
            dead_letter: ctx.dead_letter().path().map(|p| p.to_path_buf()),
            dead_letter_lost: ctx.dead_letter().lost(),
        }
    }
}

/// The channel's capacity: `--queue-size` records, or batches of them when
/// the source sends whole batches of JSON lines (`lines`).
fn queue_capacity(config: &Config, lines: bool) -> usize {
    let capacity = if lines {
        (config.queue_size / config.batch_size).max(2)
    } else {
        config.queue_size
    };
    // With --max-errors, records read are still written (or failed) after
    // reading stops, so failures the sink finds late overshoot the budget
    // by what was read ahead: keep that to the batches being written and a
    // chunk, not a full queue.
    match config.max_errors {
        Some(_) if lines => 1,
        Some(_) => capacity.min(MAX_ERRORS_QUEUE),
        None => capacity,
    }
}

/// What every sink worker shares.
struct Workers<'a> {
    ctx: &'a Arc<Context>,
    config: &'a Config,
    order: Option<&'a sink::batch::Order>,
    spent: &'a channel::Spent,
    depth: channel::Depth,
    flatten: Option<&'a Flattener>,
}

impl<'a> Workers<'a> {
    /// Starts sink worker `i`, writing what it receives with `writer`.
    fn spawn<'scope>(
        &self,
        scope: &'scope std::thread::Scope<'scope, '_>,
        i: usize,
        writer: Box<dyn BatchWriter>,
        rx: crossbeam_channel::Receiver<channel::Item>,
    ) where
        'a: 'scope,
    {
        let Workers {
            ctx,
            config,
            order,
            spent,
            depth,
            flatten,
        } = self;
        let (ctx, config, order, flatten) = (*ctx, *config, *order, *flatten);
        let spent = (*spent).clone();
        let depth = depth.clone();
        std::thread::Builder::new()
            .name(format!("sink-{i}"))
            .spawn_scoped(scope, move || {
                let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    sink::batch::run_worker(
                        rx,
                        writer,
                        ctx,
                        config.batch_size,
                        config.batch_timeout,
                        order,
                        (&spent, &depth, flatten),
                    )
                }));
                if worked.is_err() {
                    ctx.fail_run(PipelineError::Internal(format!(
                        "sink worker {i} crashed; records it held are missing from the counts"
                    )));
                }
            })
            .expect("spawn a sink worker");
    }
}

/// Starts the source thread: it reads everything into `sender`, then drops
/// it, which tells the sink workers that nothing more comes.
fn spawn_source<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    source: &'scope mut Box<dyn Source>,
    sender: channel::RecordSender,
    ctx: &'scope Arc<Context>,
    limit: Option<u64>,
) {
    std::thread::Builder::new()
        .name("source".into())
        .spawn_scoped(scope, move || {
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                source.run(&mut source::SourceOutput::new(&sender, ctx, limit))
            }));
            match read {
                Ok(Ok(())) => {}
                Ok(Err(e)) => ctx.fail_run(e),
                Err(_) => ctx.fail_run(PipelineError::Internal(
                    "the source crashed; records it had read but not sent are missing from the counts".into(),
                )),
            }
            sender.release_held(ctx);
            drop(sender);
            if ctx.should_stop_reading() {
                ctx.metrics.set_state(RunState::Draining);
            }
        })
        .expect("spawn the source thread");
}

/// What the held-back first records are for: the table `--create-table`
/// makes, typed from at most `n` of them (flattened first with `--flatten`,
/// those that collide left out, as the run fails them).
fn take_held(sink: Arc<dyn Sink>, flattener: Option<Flattener>, n: u64) -> channel::TakeHeld {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    Box::new(move |records| {
        let mut sample = records.iter().take(n).cloned();
        match &flattener {
            Some(f) => sink.take_sample(&mut sample.filter_map(|r| f.apply(&r).ok()), false),
            None => sink.take_sample(&mut sample, false),
        }
        .map(|_| ())
    })
}

/// Once everything read is written or failed: saves what the source keeps
/// for the next run and puts the output into place, or leaves it aside.
/// Returns whether the output was committed, the sink's note on where it
/// is, and what became of `--state-file` (and the files it records).
fn settle(
    config: &Config,
    ctx: &Context,
    source: &mut dyn Source,
    sink: &dyn Sink,
    interrupted: Option<i32>,
) -> (bool, Option<String>, Option<String>) {
    let metrics = &ctx.metrics;
    let complete = interrupted.is_none() && !ctx.has_failed();
    // What the source saves for the next run is written before the output
    // is put into place, and put into place right after it: a state that
    // cannot be saved keeps the output in `.partial` (exit 1), so no record
    // is exported twice and none is skipped.
    let so_far = metrics.counts();
    // The position moves past failed records only where they are kept: an
    // incremental job with one bad document moves on, and the document is
    // in the dead-letter file (a failed write there fails the run). Without
    // one, even failures --accept-errors allows keep the position, so the
    // next run reads them again rather than losing them.
    let kept = ctx.dead_letter().path().is_some();
    if let Some(t) = ctx.checkpoint() {
        metrics.resumed_records(t.resumed());
    }
    let mut staged = None;
    let mut state_note = None;
    if complete && so_far.reconciles() {
        if so_far.failed == 0 || kept {
            match source.stage_commit() {
                Ok(s) => staged = s,
                Err(e) => ctx.fail_run(e),
            }
        } else {
            state_note = config.source.state_file().map(|p| {
                format!(
                    "{} not moved: {} records failed and are not kept, so the next run reads them again; --dead-letter PATH keeps them and lets the position move on (add --accept-errors to exit 0 when they are few)",
                    p.display(),
                    so_far.failed
                )
            });
        }
    }
    let moving = staged.is_some();
    // A table replaced whole keeps its old rows when records failed that
    // --accept-errors does not allow (their new versions are only in the
    // dead-letter file).
    let accepted = config
        .accept_errors
        .is_some_and(|a| a.allows(so_far.failed, so_far.read));
    let complete =
        complete && !ctx.has_failed() && (!sink.replaces_all() || so_far.failed == 0 || accepted);
    let mut committed = false;
    let mut commit = || {
        if let Some(s) = staged.take() {
            s.commit(metrics)?;
        }
        committed = true;
        Ok(())
    };
    let output_note = match sink.finish_with(complete, &mut commit) {
        Ok(note) => note,
        Err(e) => {
            ctx.fail_run(e);
            sink.finish(false).ok().flatten()
        }
    };
    if committed && moving && so_far.failed > 0 {
        state_note = config.source.state_file().map(|p| {
            format!(
                "{} moved past the {} failed records: they are in the dead-letter file",
                p.display(),
                so_far.failed
            )
        });
    }
    // --checkpoint: removed once the job is complete, else written as of now.
    if let Some(t) = ctx.checkpoint() {
        let all = ctx.metrics.counts();
        let accepted = config
            .accept_errors
            .is_some_and(|a| a.allows(all.failed + t.failed_before(), all.read + all.resumed));
        let note = resume::finish(t, sink, committed, accepted).unwrap_or_else(|e| {
            tracing::warn!("checkpoint: {e}");
            e
        });
        state_note = Some(match state_note {
            Some(s) => format!("{s}; {note}"),
            None => note,
        });
    }
    // What the source does once its inputs are loaded (--after-load), and
    // what it says of them.
    match source.finished(committed) {
        Ok(Some(note)) => {
            state_note = Some(match state_note {
                Some(s) => format!("{s}; {note}"),
                None => note,
            })
        }
        Ok(None) => {}
        Err(e) => ctx.fail_run(e),
    }
    (committed, output_note, state_note)
}

/// The run's state and completion metrics for how it ended.
fn mark_outcome(metrics: &Metrics, outcome: Outcome, committed: bool) {
    metrics.set_state(match outcome {
        Outcome::Success | Outcome::RecordsFailed | Outcome::FailuresAccepted => {
            RunState::Completed
        }
        Outcome::Failed => RunState::Failed,
        Outcome::Interrupted(_) => RunState::Interrupted,
    });
    if matches!(outcome, Outcome::RecordsFailed | Outcome::FailuresAccepted) {
        metrics.mark_completion();
    }
    if matches!(outcome, Outcome::Success | Outcome::FailuresAccepted) && committed {
        metrics.mark_completion();
        metrics.mark_success();
    }
}
