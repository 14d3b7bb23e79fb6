//! The bounded channel between the source and the sink workers. Its
//! capacity (`--queue-size`) is the back-pressure that keeps memory flat;
//! its depth is reported as `pipeline_queue_depth` by the source after each
//! chunk it sends and by each worker after each batch it takes. Nothing else
//! holds a receiver, so once every worker is gone a send fails at once and
//! the records are failed instead of waited on.

use crossbeam_channel::{Receiver, Sender};

use crate::context::Context;
use crate::error::ErrorType;
use crate::record::Record;

/// A bounded channel of `capacity` records.
pub fn bounded(capacity: usize) -> (RecordSender, Receiver<Record>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    (RecordSender { tx, spent: None }, rx)
}

/// Batches the sinks are done with, on their way back to a source that
/// reuses records (their strings keep their capacity): records are then
/// allocated and freed by the source's thread alone, not one thread
/// allocating and another freeing. At most `batches` wait; more are dropped
/// where they are.
pub fn with_reuse(sender: &mut RecordSender, batches: usize) -> Spent {
    let (tx, rx) = crossbeam_channel::bounded(batches);
    sender.spent = Some(rx);
    Spent(Some(tx))
}

/// Where a sink worker hands back the batches it is done with.
#[derive(Clone, Default)]
pub struct Spent(Option<Sender<Vec<Record>>>);

impl Spent {
    /// Hands the records of `batch` back, leaving it empty (they are
    /// dropped here when nobody reuses records or the way back is full).
    pub fn give(&self, batch: &mut Vec<Record>) {
        match &self.0 {
            Some(tx) => {
                let full = std::mem::replace(batch, Vec::with_capacity(batch.capacity()));
                let _ = tx.try_send(full);
            }
            None => batch.clear(),
        }
    }
}

/// The sending end of the channel, as sources see it.
pub struct RecordSender {
    tx: Sender<Record>,
    spent: Option<Receiver<Vec<Record>>>,
}

impl RecordSender {
    /// A batch of records the sinks are done with, to fill again (see
    /// [`with_reuse`]); `None` when there is none waiting.
    pub fn reusable(&self) -> Option<Vec<Record>> {
        self.spent.as_ref().and_then(|rx| rx.try_recv().ok())
    }

    /// Sends every record of `chunk` (leaving it empty), blocking while the
    /// queue is full. Records that can no longer be delivered (every sink
    /// worker is gone) are failed and kept in the dead-letter file, never
    /// dropped.
    pub fn send_all(&self, chunk: &mut Vec<Record>, ctx: &Context) {
        let mut drain = chunk.drain(..);
        while let Some(record) = drain.next() {
            if let Err(lost) = self.tx.send(record) {
                undeliverable(ctx, std::iter::once(lost.0).chain(drain.by_ref()));
                break;
            }
        }
        ctx.metrics.queue_depth(self.tx.len());
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
