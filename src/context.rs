//! What every source and sink worker of one run shares: the metrics, the
//! stop signal, the first fatal error, the error budget (`--max-errors`),
//! the dead-letter file, and the progress bar. Rejecting a row or a record
//! is one call here that counts, logs (the first few) and keeps it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::dead_letter::DeadLetter;
use crate::error::{ErrorType, PipelineError, Stage};
use crate::metrics::Metrics;
use crate::progress::Progress;
use crate::record::Record;
use crate::shutdown::Shutdown;

/// What every source and sink worker of one run shares.
pub struct Context {
    /// The one metrics handle.
    pub metrics: Arc<Metrics>,
    /// The stop signal (Ctrl+C, SIGTERM, or a test).
    pub shutdown: Shutdown,
    /// Where rejected rows and records are kept.
    dead_letter: DeadLetter,
    /// `--max-errors`: the error budget.
    max_errors: Option<u64>,
    /// Raised by a fatal error or a spent budget: the source stops reading.
    abort: AtomicBool,
    /// Rejections logged so far (only the first few are logged).
    warned: AtomicU64,
    /// The first error that ended the run.
    fatal: Mutex<Option<PipelineError>>,
    /// The progress bar, on a terminal.
    progress: Option<Progress>,
    /// The file being read, when the source reads several (named in the
    /// dead-letter entries of its rows).
    input: Mutex<Option<Arc<str>>>,
    /// `--es-index`, naming a rejected document's index when the record
    /// does not carry its `_index`.
    index: std::sync::OnceLock<Arc<str>>,
    /// `--checkpoint`: the run's frontier, written as batches commit.
    checkpoint: std::sync::OnceLock<Arc<crate::checkpoint::Tracker>>,
}

impl Context {
    /// A context for one run.
    pub fn new(
        metrics: Arc<Metrics>,
        shutdown: Shutdown,
        dead_letter: DeadLetter,
        max_errors: Option<u64>,
        progress: Option<Progress>,
    ) -> Context {
        Context {
            metrics,
            shutdown,
            dead_letter,
            max_errors,
            abort: AtomicBool::new(false),
            warned: AtomicU64::new(0),
            fatal: Mutex::new(None),
            progress,
            input: Mutex::new(None),
            index: std::sync::OnceLock::new(),
            checkpoint: std::sync::OnceLock::new(),
        }
    }

    /// Follows the run's frontier in `tracker` (`--checkpoint`).
    pub fn set_checkpoint(&self, tracker: Arc<crate::checkpoint::Tracker>) {
        let _ = self.checkpoint.set(tracker);
    }

    /// The run's checkpoint, with `--checkpoint`.
    pub fn checkpoint(&self) -> Option<&Arc<crate::checkpoint::Tracker>> {
        self.checkpoint.get()
    }

    /// Says which of several input files the source now reads.
    pub fn set_input(&self, file: Option<Arc<str>>) {
        *self.input.lock().expect("input lock") = file;
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
            // The run's ending line says it too; a --max-errors stop ends
            // the run at once, so it is said once, there.
            if !matches!(error, PipelineError::TooManyErrors(_)) {
                tracing::error!("{error}");
            }
            *fatal = Some(error);
        }
        self.abort.store(true, Ordering::SeqCst);
    }

    /// The error that ended the run, taken out (once).
    pub fn take_fatal(&self) -> Option<PipelineError> {
        self.fatal.lock().expect("fatal lock").take()
    }

    /// True once an error has ended the run.
    pub fn has_failed(&self) -> bool {
        self.fatal.lock().expect("fatal lock").is_some()
    }

    /// The source reads documents of `--es-index`: a rejected record's line
    /// names it, with the document's `_id`.
    pub fn set_index(&self, index: &str) {
        let _ = self.index.set(Arc::from(index));
    }

    /// A source row could not become a record: count it, keep it in the
    /// dead-letter file, and check the error budget.
    /// `tag` (`--checkpoint`: `id:stream:ordinal`) names the row in its
    /// entry, so a resumed run knows it is kept already.
    pub fn reject_row(
        &self,
        (position, tag): (u64, Option<&str>),
        raw: &[u8],
        error_type: ErrorType,
        reason: &str,
    ) {
        self.metrics.record_failed(Stage::Source, error_type, 1);
        let file = self.input.lock().expect("input lock").clone();
        self.warn_rejected(|| match &file {
            Some(f) => tracing::warn!(file = &**f, line = position, "rejected row: {reason}"),
            None => tracing::warn!(line = position, "rejected row: {reason}"),
        });
        if let Err(e) =
            self.dead_letter
                .source_row((position, tag), file.as_deref(), raw, error_type, reason)
        {
            self.dead_letter_failed(e);
        }
        self.check_budget();
    }

    /// A sink rejected `record`: count it, keep it in the dead-letter file, and
    /// check the error budget.
    pub fn reject_record(&self, record: &Record, error_type: ErrorType, reason: &str) {
        self.reject_record_tagged(record, error_type, reason, None);
    }

    /// [`Context::reject_record`], its entry naming the row (`--checkpoint`:
    /// `id:stream:ordinal`) so a resumed run knows it is kept already.
    pub fn reject_record_tagged(
        &self,
        record: &Record,
        error_type: ErrorType,
        reason: &str,
        tag: Option<&str>,
    ) {
        self.metrics.record_failed(Stage::Sink, error_type, 1);
        self.warn_rejected(|| match record.text_of("_id") {
            Some(id) => {
                let index = record
                    .text_of("_index")
                    .or_else(|| self.index.get().map(|i| i.to_string()))
                    .unwrap_or_default();
                tracing::warn!(
                    position = record.position,
                    "rejected document _id={id} in index {index}: {reason}"
                )
            }
            None => tracing::warn!(position = record.position, "rejected record: {reason}"),
        });
        if let Err(e) = self
            .dead_letter
            .sink_record(record, error_type, reason, tag)
        {
            self.dead_letter_failed(e);
        }
        self.check_budget();
    }

    /// `record` was in a batch whose commit was cut off and cannot be
    /// checked (transaction `xid`): counted in doubt, kept in the dead-letter
    /// file marked so (replay it only if `xid` was rolled back). The batch
    /// is logged once, by the caller.
    pub fn record_in_doubt(&self, record: &Record, xid: &str, reason: &str) {
        self.metrics.records_in_doubt(1);
        if let Err(e) = self.dead_letter.sink_record_in_doubt(record, xid, reason) {
            self.dead_letter_failed(e);
        }
    }

    /// Rejections are counted but never logged (a sample read before the
    /// run: the run itself logs them).
    pub fn silence_rejections(&self) {
        self.warned.store(u64::MAX / 2, Ordering::Relaxed);
    }

    /// Logs the first few rejections; after that they are only counted (and
    /// kept in the dead-letter file), so a bad input cannot flood the log.
    fn warn_rejected(&self, log: impl FnOnce()) {
        const LOGGED: u64 = 10;
        match self.warned.fetch_add(1, Ordering::Relaxed) {
            n if n < LOGGED => log(),
            LOGGED => match self.dead_letter.path() {
                Some(path) => tracing::warn!(
                    "more records rejected; they are counted in pipeline_records_failed_total and kept in the dead-letter file {}, but not logged",
                    path.display()
                ),
                None => tracing::warn!(
                    "more records rejected; they are counted in pipeline_records_failed_total but not logged, and not kept: keep them with --dead-letter PATH"
                ),
            },
            _ => {}
        }
    }

    /// The dead-letter file could not be written: the run fails.
    pub fn dead_letter_failed(&self, e: std::io::Error) {
        let error = PipelineError::Sink(ErrorType::Io, format!(
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
            p.update(bytes, records, self.metrics.counts().failed);
        }
    }

    /// Sets the total size of the input, when it is known, for the progress %.
    pub fn progress_total(&self, bytes: Option<u64>) {
        if let Some(total) = bytes {
            self.metrics.expected_bytes(total);
        }
        if let (Some(p), Some(total)) = (&self.progress, bytes) {
            p.total_bytes(total);
        }
    }

    /// Sets the total number of records, when the source knows it (a count
    /// of matching documents): the bar then counts records, not bytes.
    pub fn progress_total_records(&self, total: u64) {
        self.metrics.expected_records(total);
        if let Some(p) = &self.progress {
            p.total_records(total);
        }
    }

    /// Clears the progress bar at the end of the run.
    pub fn progress_done(&self) {
        if let Some(p) = &self.progress {
            p.finish();
        }
    }

    /// The dead-letter file.
    pub fn dead_letter(&self) -> &DeadLetter {
        &self.dead_letter
    }
}
