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
    (RecordSender { tx }, rx)
}

/// The sending end of the channel, as sources see it.
pub struct RecordSender {
    tx: Sender<Record>,
}

impl RecordSender {
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
