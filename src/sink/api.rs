//! The interface every sink implements: a [`Sink`] opened once, a
//! [`BatchWriter`] per worker, and what a batch came to.

use std::sync::Arc;

use crate::error::{ErrorType, PipelineError};
use crate::metrics::Metrics;
use crate::record::{Lines, Record};
use crate::shutdown::Shutdown;

/// A record a sink refused, by its index in the batch.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Index in the batch.
    pub index: usize,
    /// Why, in the fixed vocabulary.
    pub error_type: ErrorType,
    /// Why, in words (the server's message, the conversion that failed).
    pub reason: String,
}

/// What a sink did with one batch. Every record of the batch is counted in
/// exactly one of inserted, updated, skipped or rejected, or the batch is
/// in doubt ([`BatchResult::in_doubt`]).
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    /// Written as new.
    pub inserted: u64,
    /// Updated in place.
    pub updated: u64,
    /// Left alone as duplicates.
    pub skipped: u64,
    /// Refused, one by one.
    pub rejected: Vec<Rejected>,
    /// The sink broke part way through the batch (a full disk): the counts
    /// above are what was written before it did, the rest of the batch is in
    /// `rejected`, and the run fails (later batches are failed unwritten).
    pub broken: Option<BatchError>,
    /// The batch's commit was cut off and whether it happened could not be
    /// found out: every record of the batch not in `rejected` is in doubt
    /// (counted apart, kept in the dead-letter file with the transaction
    /// id), and `broken` says why the run fails.
    pub in_doubt: Option<InDoubt>,
}

/// A batch whose outcome is unknown.
#[derive(Debug, Clone)]
pub struct InDoubt {
    /// The transaction that may or may not have committed.
    pub xid: String,
    /// Why its outcome is unknown.
    pub reason: String,
}

/// The batch as a whole could not be written and retrying did not help; the
/// run fails, and the batch's records are failed and kept in the dead-letter file.
#[derive(Debug, Clone)]
pub struct BatchError {
    /// Why, in the fixed vocabulary.
    pub error_type: ErrorType,
    /// Why, in words (never with a secret in it).
    pub message: String,
}

/// One worker's connection or handle to the sink.
pub trait BatchWriter: Send {
    /// Writes one batch, in one transaction where the sink has them.
    fn write_batch(&mut self, batch: &[Record]) -> Result<BatchResult, BatchError>;

    /// Writes batch number `seq`: with a sink that keeps input order
    /// ([`Sink::ordered`]) and several workers, batches are numbered in input
    /// order and written in that order. Without a number, as `write_batch`.
    fn write_batch_at(
        &mut self,
        _seq: Option<u64>,
        batch: &[Record],
    ) -> Result<BatchResult, BatchError> {
        self.write_batch(batch)
    }

    /// Writes records the source wrote as JSON lines ([`Sink::takes_lines`]),
    /// as batch number `seq`. A sink that does not write JSON lines gets
    /// the records read back from them.
    fn write_lines_at(
        &mut self,
        seq: Option<u64>,
        lines: &Lines,
    ) -> Result<BatchResult, BatchError> {
        let records: Vec<Record> = (0..lines.len()).map(|i| lines.record(i)).collect();
        self.write_batch_at(seq, &records)
    }

    /// Batch number `seq` will not be written (the sink failed earlier): the
    /// batches after it need not wait for it.
    fn skip(&mut self, _seq: Option<u64>) {}

    /// `--checkpoint`: the rows of the next batch, for a sink that records
    /// them in the batch's own transaction (MySQL), so that a resumed run
    /// skips a batch that committed after the checkpoint was last written.
    fn set_coverage(&mut self, _coverage: Option<crate::checkpoint::Coverage>) {}

    /// The output's length right after this writer's last batch (a file
    /// sink, which writes batches in order): where a resumed run cuts it
    /// back to.
    fn position(&self) -> Option<u64> {
        None
    }
}

/// An opened sink.
pub trait Sink: Send + Sync {
    /// A writer for one more worker (its own connection, where the sink has
    /// them); `metrics` is for what the writer does inside a batch (retries),
    /// `shutdown` for marking the moments it must not be cut short in
    /// ([`Shutdown::critical`]).
    fn writer(
        &self,
        metrics: &Arc<Metrics>,
        shutdown: &Shutdown,
    ) -> Result<Box<dyn BatchWriter>, PipelineError>;

    /// The most workers this sink can use right now, when it has a limit
    /// (a table still to be created from the first batch: one, so that
    /// batch holds the first records in input order).
    fn max_workers(&self) -> Option<usize> {
        None
    }

    /// True when the sink writes each record as its JSON line (a JSON-lines
    /// file): a source may then send records already written as lines
    /// ([`crate::record::Lines`]).
    fn takes_lines(&self) -> bool {
        false
    }

    /// True when the output keeps input order whatever the number of
    /// workers (a file): batches are then taken whole and numbered.
    fn ordered(&self) -> bool {
        false
    }

    /// True when a complete output replaces what was there (MySQL
    /// `--load-mode replace`): it is put in place only when no record
    /// failed, or the failures are within `--accept-errors`, since what it
    /// replaces may hold the rows whose new versions failed.
    fn replaces_all(&self) -> bool {
        false
    }

    /// `--checkpoint`: the output's length before any batch (a file sink).
    fn output_position(&self) -> Option<u64> {
        None
    }

    /// `--checkpoint` `id`: the rows of the batches that committed under
    /// it, as recorded with them ([`BatchWriter::set_coverage`]), each as
    /// its coverage text. Nothing for a sink that does not record them.
    fn checkpoint_coverage(&self, _id: &str) -> Result<Vec<String>, PipelineError> {
        Ok(Vec::new())
    }

    /// `--checkpoint` `id` is done (its job completed): what was recorded
    /// for it goes.
    fn checkpoint_complete(&self, _id: &str) {}

    /// Called once after every worker has stopped. `complete` is true when
    /// the run read everything and nothing fatal happened; a file sink then
    /// moves its output into place. Returns a note for the summary line
    /// (where the output is, or was left).
    fn finish(&self, complete: bool) -> Result<Option<String>, PipelineError>;

    /// As [`Sink::finish`]; when the output is complete (and, for a file,
    /// moved into place), `then` runs right after: what the source saves
    /// for the next run. A file sink takes its output back out of place
    /// when `then` fails, so the two are committed together.
    fn finish_with(
        &self,
        complete: bool,
        then: &mut dyn FnMut() -> Result<(), PipelineError>,
    ) -> Result<Option<String>, PipelineError> {
        let note = self.finish(complete)?;
        if complete {
            then()?;
        }
        Ok(note)
    }

    /// Records this sink wants to see before the run, and how many (`0`:
    /// all): a table `--create-table` makes from them. `None`: none.
    fn wants_sample(&self) -> Option<u64> {
        None
    }

    /// Takes the sample asked for (creates the table from it), before any
    /// writer exists; with `dry` (`--check`) only says what it would do.
    /// Returns lines saying what was (or would be) done.
    fn take_sample(
        &self,
        _records: &mut dyn Iterator<Item = Record>,
        _dry: bool,
    ) -> Result<Vec<String>, PipelineError> {
        Ok(Vec::new())
    }

    /// What a run would do, for `--check`: one line per fact.
    fn plan(&self) -> Vec<String>;

    /// How many of the first records `--check` hands to
    /// [`Sink::check_records`]. `None`: the sink has no use for them.
    fn check_sample(&self) -> Option<u64> {
        None
    }

    /// `--check` with real records: converts the first records of the
    /// input as the run would (in batches of `batch_size`), writing
    /// nothing, and says how many would be written and why the others
    /// would fail. Fails when records came and none would be written.
    fn check_records(
        &self,
        _records: &mut dyn Iterator<Item = Record>,
        _batch_size: usize,
        _metrics: &Arc<Metrics>,
    ) -> Result<Vec<String>, PipelineError> {
        Ok(Vec::new())
    }
}
