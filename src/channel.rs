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
            hold: None,
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
    hold: Option<Hold>,
}

/// What a sink does with the records held back ([`RecordSender::hold`])
/// before they are sent: the table `--create-table` makes from them.
pub type TakeHeld = Box<dyn FnOnce(&[Record]) -> Result<(), crate::error::PipelineError> + Send>;

/// The first records of a run, held back until the sink has seen them.
struct Hold {
    /// Records to hold before they are taken.
    wanted: usize,
    state: std::sync::Mutex<Held>,
    /// Set once the held records are sent: later sends skip the lock.
    released: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Held {
    records: Vec<Record>,
    take: Option<TakeHeld>,
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

    /// Holds back the first `n` records sent (more by at most a chunk;
    /// fewer when the input ends first, see [`RecordSender::release_held`])
    /// and hands them to `take` before any is sent: the table
    /// `--create-table` infers from the run's own first records exists
    /// before a sink worker sees one. When `take` fails, the run fails and
    /// the held records are failed and kept in the dead-letter file.
    pub fn hold(&mut self, n: u64, take: TakeHeld) {
        self.hold = Some(Hold {
            wanted: usize::try_from(n).unwrap_or(usize::MAX).max(1),
            state: std::sync::Mutex::new(Held {
                records: Vec::new(),
                take: Some(take),
            }),
            released: Default::default(),
        });
    }

    /// Hands the records held back so far to the sink and sends them (the
    /// input ended, or reading stopped, before the hold was full).
    pub fn release_held(&self, ctx: &Context) {
        if let Some(hold) = &self.hold {
            let mut held = hold.state.lock().unwrap_or_else(|e| e.into_inner());
            self.release(hold, &mut held, ctx);
        }
    }

    /// Keeps `chunk` back while the hold is not full; true when it was kept.
    fn held(&self, chunk: &mut Vec<Record>, ctx: &Context) -> bool {
        let Some(hold) = &self.hold else {
            return false;
        };
        if hold.released.load(Ordering::Acquire) {
            return false;
        }
        let mut held = hold.state.lock().unwrap_or_else(|e| e.into_inner());
        if hold.released.load(Ordering::Acquire) {
            return false;
        }
        held.records.append(chunk);
        if held.records.len() >= hold.wanted {
            self.release(hold, &mut held, ctx);
        }
        true
    }

    fn release(&self, hold: &Hold, held: &mut Held, ctx: &Context) {
        let Some(take) = held.take.take() else {
            return;
        };
        let mut records = std::mem::take(&mut held.records);
        match take(&records) {
            Ok(()) => self.send_now(&mut records, ctx),
            Err(e) => {
                let (error_type, reason) = (e.metric_type(), e.to_string());
                ctx.fail_run(e);
                for r in &records {
                    ctx.reject_record(r, error_type, &reason);
                }
            }
        }
        hold.released.store(true, Ordering::Release);
    }

    /// Sends every record of `chunk` (leaving it empty), blocking while the
    /// queue is full. Records that can no longer be delivered (every sink
    /// worker is gone) are failed and kept in the dead-letter file, never
    /// dropped.
    pub fn send_all(&self, chunk: &mut Vec<Record>, ctx: &Context) {
        if !self.held(chunk, ctx) {
            self.send_now(chunk, ctx);
        }
    }

    fn send_now(&self, chunk: &mut Vec<Record>, ctx: &Context) {
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
        self.release_held(ctx);
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::dead_letter::DeadLetter;
    use crate::metrics::Metrics;
    use crate::record::{Schema, Value};
    use crate::shutdown::Shutdown;

    fn context() -> Context {
        let metrics = Metrics::new(
            "test",
            crate::config::SourceKind::Csv,
            crate::config::SinkKind::File,
        );
        Context::new(
            metrics,
            Shutdown::new(),
            DeadLetter::open(None).unwrap(),
            None,
            None,
        )
    }

    fn chunk(from: u64, to: u64) -> Vec<Record> {
        let schema = Arc::new(Schema::new(vec!["n".into()]));
        (from..to)
            .map(|n| Record {
                schema: schema.clone(),
                values: vec![Value::Str(n.to_string())],
                position: n,
            })
            .collect()
    }

    fn positions(rx: &Receiver<Item>) -> Vec<u64> {
        rx.try_iter()
            .map(|i| match i {
                Item::Record(r) => r.position,
                Item::Lines(_) => panic!("lines"),
            })
            .collect()
    }

    /// Holds back until `n` records came (whole chunks), hands them over
    /// before any is sent, then sends them first and the rest after.
    #[test]
    fn held_records_are_taken_then_sent_first() {
        let ctx = context();
        let (mut tx, rx) = bounded(100);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        tx.hold(
            5,
            Box::new(move |held: &[Record]| {
                s.lock().unwrap().extend(held.iter().map(|r| r.position));
                Ok(())
            }),
        );
        tx.send_all(&mut chunk(0, 3), &ctx);
        assert!(positions(&rx).is_empty(), "held");
        assert!(seen.lock().unwrap().is_empty(), "not taken yet");
        let mut more = chunk(3, 6);
        tx.send_all(&mut more, &ctx);
        assert!(more.is_empty());
        assert_eq!(*seen.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        tx.send_all(&mut chunk(6, 8), &ctx);
        tx.release_held(&ctx);
        assert_eq!(positions(&rx), (0..8).collect::<Vec<_>>());
        assert_eq!(seen.lock().unwrap().len(), 6, "taken once");
    }

    /// The input ends before the hold is full: what was held is taken and
    /// sent; a failed take fails the run and fails every held record.
    #[test]
    fn a_short_input_is_released_and_a_failed_take_fails_the_held() {
        let ctx = context();
        let (mut tx, rx) = bounded(100);
        tx.hold(
            100,
            Box::new(|held: &[Record]| {
                assert_eq!(held.len(), 2);
                Ok(())
            }),
        );
        tx.send_all(&mut chunk(0, 2), &ctx);
        tx.release_held(&ctx);
        assert_eq!(positions(&rx), vec![0, 1]);

        let ctx = context();
        let (mut tx, rx) = bounded(100);
        tx.hold(
            2,
            Box::new(|_: &[Record]| Err(crate::error::PipelineError::Config("no key".into()))),
        );
        tx.send_all(&mut chunk(0, 3), &ctx);
        tx.release_held(&ctx);
        assert!(positions(&rx).is_empty(), "nothing sent");
        assert!(ctx.has_failed());
        assert_eq!(ctx.metrics.counts().failed, 3);
    }
}
