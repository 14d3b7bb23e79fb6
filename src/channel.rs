//! The bounded channel between the source and the sink workers. Its
//! capacity (`--queue-size`) is the back-pressure that keeps memory flat;
//! its depth is reported as `pipeline_queue_depth` by the source after each
//! chunk it sends and by each worker after each batch it takes. Nothing else
//! holds a receiver, so once every worker is gone a send fails at once and
//! the records are failed instead of waited on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::context::Context;
use crate::error::ErrorType;
use crate::record::{Lines, Record};

/// What travels from the source to the sinks, in order.
#[derive(Debug)]
pub enum Item {
    /// One record.
    Record(Record),
    /// Records the source wrote as JSON lines itself, for a sink that
    /// writes JSON lines; a batch of their own.
    Lines(Lines),
}

/// A bounded channel of `capacity` items (records, or [`Lines`] of up to a
/// batch each).
pub fn bounded(capacity: usize) -> (RecordSender, Receiver<Item>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let depth = Depth::default();
    (
        RecordSender {
            tx,
            spent: None,
            depth,
        },
        rx,
    )
}

/// The records waiting in the channel, [`Lines`] counted by their records
/// (the channel itself counts items).
#[derive(Clone, Default)]
pub struct Depth(Arc<[AtomicUsize; 2]>);

impl Depth {
    /// [`Lines`] of `records` records were taken off the channel.
    pub fn took_lines(&self, records: usize) {
        self.0[0].fetch_sub(1, Ordering::Relaxed);
        self.0[1].fetch_sub(records, Ordering::Relaxed);
    }

    fn sent_lines(&self, records: usize) {
        self.0[0].fetch_add(1, Ordering::Relaxed);
        self.0[1].fetch_add(records, Ordering::Relaxed);
    }

    /// Records waiting, the channel holding `items` items.
    pub fn records(&self, items: usize) -> usize {
        let lines = self.0[0].load(Ordering::Relaxed);
        items.saturating_sub(lines) + self.0[1].load(Ordering::Relaxed)
    }
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
    tx: Sender<Item>,
    spent: Option<Receiver<Vec<Record>>>,
    depth: Depth,
}

impl RecordSender {
    /// The count of records waiting, for the sink workers.
    pub fn depth(&self) -> Depth {
        self.depth.clone()
    }

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
        self.will_fill(chunk.len(), ctx);
        let mut drain = chunk.drain(..);
        while let Some(record) = drain.next() {
            if let Err(lost) = self.tx.send(Item::Record(record)) {
                let Item::Record(lost) = lost.0 else {
                    unreachable!("a record was sent")
                };
                undeliverable(ctx, std::iter::once(lost).chain(drain.by_ref()));
                break;
            }
        }
        ctx.metrics.queue_depth(self.depth.records(self.tx.len()));
    }

    /// Sending `items` more fills the queue: it is shown full before the
    /// send waits on it (the gauge is otherwise set after a send and when a
    /// worker takes a batch).
    fn will_fill(&self, items: usize, ctx: &Context) {
        let cap = self.tx.capacity().unwrap_or(usize::MAX);
        if self.tx.len() + items >= cap {
            ctx.metrics.queue_depth(self.depth.records(cap));
        }
    }

    /// Sends records written as JSON lines, blocking while the queue is
    /// full; when they can no longer be delivered, they are failed and
    /// kept in the dead-letter file like records.
    pub fn send_lines(&self, lines: Lines, ctx: &Context) {
        if lines.is_empty() {
            return;
        }
        let n = lines.len();
        self.will_fill(1, ctx);
        self.depth.sent_lines(n);
        if let Err(lost) = self.tx.send(Item::Lines(lines)) {
            self.depth.took_lines(n);
            if let Item::Lines(lines) = lost.0 {
                undeliverable(ctx, (0..lines.len()).map(|i| lines.record(i)));
            }
        }
        ctx.metrics.queue_depth(self.depth.records(self.tx.len()));
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
