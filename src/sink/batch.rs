//! The sink worker loop shared by every sink: take records off the channel,
//! build a batch (full at `--batch-size`, or flushed `--batch-timeout-ms`
//! after its first record), write it, and report the outcome. Records a
//! source wrote as JSON lines come as batches of their own. Workers never
//! stop on the stop signal: they end when the channel is empty and closed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::channel::{Depth, Item, Spent};
use crate::context::Context;
use crate::error::{ErrorType, PipelineError, Stage};
use crate::flatten::Flattener;
use crate::metrics::BatchReport;
use crate::record::{Lines, Record};

use super::api::{BatchError, BatchWriter, InDoubt};

/// Batches taken whole and in queue order: the next batch's number and
/// the number of items taken before it.
#[derive(Default)]
pub struct Order {
    next: Mutex<(u64, u64)>,
    /// The sink is told each batch's number (it keeps input order).
    numbered: bool,
}

impl Order {
    /// Batches taken in order; `numbered`: the sink is told their numbers.
    pub fn new(numbered: bool) -> Order {
        Order {
            next: Mutex::default(),
            numbered,
        }
    }
}

/// Runs one sink worker until the channel is closed and drained. With
/// `order` (a sink that keeps input order with several workers, or
/// `--checkpoint`) each batch is taken whole under that lock and numbered
/// from it, so batch numbers follow the input and the sink writes them in
/// that order, and each batch is a range of the items sent.
pub fn run_worker(
    rx: Receiver<Item>,
    mut writer: Box<dyn BatchWriter>,
    ctx: &Context,
    batch_size: usize,
    batch_timeout: Duration,
    order: Option<&Order>,
    (spent, depth, flatten): (&Spent, &Depth, Option<&Flattener>),
) {
    let _active = ctx.metrics.worker_active(Stage::Sink);
    let mut batch: Vec<Record> = Vec::with_capacity(batch_size);
    // Once the sink has failed, later batches are failed (and dead-lettered)
    // instead of written, so everything read is still accounted for.
    let mut broken: Option<BatchError> = None;
    let numbered = order.is_some_and(|o| o.numbered);
    // A batch's number (for the sink) and its items' range.
    let number = |taking: &mut Option<std::sync::MutexGuard<'_, (u64, u64)>>, items: usize| {
        taking.as_mut().map(|next| {
            let (seq, from) = **next;
            **next = (seq + 1, from + items as u64);
            (seq, (from, from + items as u64))
        })
    };
    let split = |taken: Option<(u64, (u64, u64))>| {
        (taken.filter(|_| numbered).map(|t| t.0), taken.map(|t| t.1))
    };
    loop {
        let mut taking = order.map(|m| m.next.lock().unwrap_or_else(|e| e.into_inner()));
        let Ok(first) = rx.recv() else {
            break;
        };
        let started = Instant::now();
        let first = match first {
            Item::Lines(lines) => {
                depth.took_lines(lines.len());
                let (seq, span) = split(number(&mut taking, lines.len()));
                drop(taking);
                ctx.metrics.queue_depth(depth.records(rx.len()));
                let batch = Batch::Lines(&lines);
                flush(
                    batch,
                    writer.as_mut(),
                    ctx,
                    (started, seq, span),
                    &mut broken,
                );
                continue;
            }
            Item::Record(r) => r,
        };
        let deadline = started + batch_timeout;
        batch.push(first);
        // Lines that came while the batch filled: written right after it.
        let mut after: Option<Lines> = None;
        while batch.len() < batch_size {
            let next = match rx.try_recv() {
                Ok(item) => item,
                Err(_) => match rx.recv_deadline(deadline) {
                    Ok(item) => item,
                    Err(_) => break,
                },
            };
            match next {
                Item::Record(r) => batch.push(r),
                Item::Lines(lines) => {
                    depth.took_lines(lines.len());
                    after = Some(lines);
                    break;
                }
            }
        }
        let (seq, span) = split(number(&mut taking, batch.len()));
        let (after_seq, after_span) = match &after {
            Some(lines) => split(number(&mut taking, lines.len())),
            None => (None, None),
        };
        drop(taking);
        ctx.metrics.queue_depth(depth.records(rx.len()));
        let flat = flatten.map(|f| flattened(f, &batch, ctx, span));
        let records = match &flat {
            Some((flat, from)) => Batch::Flat(flat, &batch, from),
            None => Batch::Records(&batch),
        };
        flush(
            records,
            writer.as_mut(),
            ctx,
            (started, seq, span),
            &mut broken,
        );
        spent.give(&mut batch);
        if let Some(lines) = after {
            let batch = Batch::Lines(&lines);
            flush(
                batch,
                writer.as_mut(),
                ctx,
                (Instant::now(), after_seq, after_span),
                &mut broken,
            );
        }
    }
}

/// `batch` flattened (`--flatten`), with the index in `batch` of each
/// record; a record whose fields collide is failed here, as it was read.
fn flattened(
    f: &Flattener,
    batch: &[Record],
    ctx: &Context,
    span: Option<(u64, u64)>,
) -> (Vec<Record>, Vec<usize>) {
    let mut flat = Vec::with_capacity(batch.len());
    let mut from = Vec::with_capacity(batch.len());
    for (i, r) in batch.iter().enumerate() {
        match f.apply(r) {
            Ok(r) => {
                flat.push(r);
                from.push(i);
            }
            Err(reason) => {
                let tag = tag_of(ctx, span, i);
                ctx.reject_record_tagged(r, ErrorType::Conversion, &reason, tag.as_deref())
            }
        }
    }
    (flat, from)
}

/// `--checkpoint`: how a dead-letter entry names record `i` of the batch
/// of items `span`.
fn tag_of(ctx: &Context, span: Option<(u64, u64)>, i: usize) -> Option<String> {
    let (lo, _) = span?;
    ctx.checkpoint()?.tag_of(lo + i as u64)
}

/// A batch as it came: records, or records the source wrote as lines.
#[derive(Clone, Copy)]
enum Batch<'a> {
    Records(&'a [Record]),
    Lines(&'a Lines),
    /// Flattened records, the records they were read as, and the index of
    /// each in the latter (failures keep the records as read).
    Flat(&'a [Record], &'a [Record], &'a [usize]),
}

impl Batch<'_> {
    fn len(&self) -> usize {
        match self {
            Batch::Records(r) | Batch::Flat(r, ..) => r.len(),
            Batch::Lines(l) => l.len(),
        }
    }

    /// Record `i` was in a batch whose commit is in doubt.
    fn in_doubt(&self, ctx: &Context, i: usize, doubt: &InDoubt) {
        match self {
            Batch::Records(r) => ctx.record_in_doubt(&r[i], &doubt.xid, &doubt.reason),
            Batch::Lines(l) => ctx.record_in_doubt(&l.record(i), &doubt.xid, &doubt.reason),
            Batch::Flat(_, read, from) => {
                ctx.record_in_doubt(&read[from[i]], &doubt.xid, &doubt.reason)
            }
        }
    }

    /// Record `i` of what the sink was given, as an index in the batch as
    /// it came (before --flatten failed some).
    fn original(&self, i: usize) -> usize {
        match self {
            Batch::Flat(_, _, from) => from[i],
            _ => i,
        }
    }

    /// Fails record `i` (kept in the dead-letter file, named by `tag`).
    fn reject(
        &self,
        ctx: &Context,
        i: usize,
        (error_type, reason): (ErrorType, &str),
        tag: Option<&str>,
    ) {
        match self {
            Batch::Records(r) => ctx.reject_record_tagged(&r[i], error_type, reason, tag),
            Batch::Lines(l) => ctx.reject_record_tagged(&l.record(i), error_type, reason, tag),
            Batch::Flat(_, read, from) => {
                ctx.reject_record_tagged(&read[from[i]], error_type, reason, tag)
            }
        }
    }
}

fn flush(
    batch: Batch<'_>,
    writer: &mut dyn BatchWriter,
    ctx: &Context,
    (started, seq, span): (Instant, Option<u64>, Option<(u64, u64)>),
    broken: &mut Option<BatchError>,
) {
    // --checkpoint: the batch's rows, recorded with it by a sink that can.
    let tracker = ctx.checkpoint().filter(|_| span.is_some());
    if let (Some(t), Some((lo, hi))) = (tracker, span) {
        // The records the sink is given, in order: not those --flatten
        // failed (kept in the dead-letter file already).
        let coverage = match batch {
            Batch::Flat(_, read, from) => {
                let mut kept = from.iter().peekable();
                let except: Vec<u64> = (0..read.len())
                    .filter(|i| kept.next_if(|&&k| k == *i).is_none())
                    .map(|i| i as u64)
                    .collect();
                t.coverage_except(lo, hi, &except)
            }
            _ => t.coverage(lo, hi),
        };
        writer.set_coverage(Some(coverage));
    }
    let tag = |i: usize| tag_of(ctx, span, batch.original(i));
    let mut report = BatchReport {
        size: batch.len() as u64,
        ..Default::default()
    };
    let result = match broken {
        Some(e) => {
            writer.skip(seq);
            Err(BatchError {
                error_type: e.error_type,
                message: format!(
                    "not written: the sink failed earlier ({message})",
                    message = e.message
                ),
            })
        }
        None => {
            let t = Instant::now();
            let r = match batch {
                Batch::Records(records) | Batch::Flat(records, ..) => {
                    writer.write_batch_at(seq, records)
                }
                Batch::Lines(lines) => writer.write_lines_at(seq, lines),
            };
            report.insert_elapsed = t.elapsed();
            r
        }
    };
    // The batch is done, for the checkpoint, when it committed (its
    // failures, one by one, kept like any run's); not when it is in doubt
    // or the sink broke: a resumed run writes those records again, and a
    // sink that records its batches skips the ones that did commit.
    let done = matches!(&result, Ok(r) if r.in_doubt.is_none() && r.broken.is_none());
    let failed = match (&result, span) {
        (Ok(r), Some((lo, hi))) => (hi - lo).saturating_sub(r.inserted + r.updated + r.skipped),
        _ => 0,
    };
    match result {
        Ok(res) => {
            report.ok = true;
            report.inserted = res.inserted;
            report.updated = res.updated;
            report.skipped = res.skipped;
            for rej in &res.rejected {
                let t = tag(rej.index);
                batch.reject(ctx, rej.index, (rej.error_type, &rej.reason), t.as_deref());
            }
            if let Some(doubt) = &res.in_doubt {
                report.ok = false;
                let mut rejected: Vec<usize> = res.rejected.iter().map(|r| r.index).collect();
                rejected.sort_unstable();
                tracing::warn!(
                    xid = doubt.xid.as_str(),
                    "{} records in doubt on MySQL: {}",
                    batch.len() - rejected.len(),
                    doubt.reason
                );
                for i in 0..batch.len() {
                    if rejected.binary_search(&i).is_err() {
                        batch.in_doubt(ctx, i, doubt);
                    }
                }
            }
            if let Some(e) = res.broken {
                if broken.is_none() {
                    ctx.fail_run(PipelineError::Sink(e.error_type, e.message.clone()));
                    *broken = Some(e);
                }
            }
        }
        Err(e) => {
            for i in 0..batch.len() {
                batch.reject(ctx, i, (e.error_type, &e.message), None);
            }
            if broken.is_none() {
                ctx.fail_run(PipelineError::Sink(e.error_type, e.message.clone()));
                *broken = Some(e);
            }
        }
    }
    if let (true, Some(t), Some((lo, hi))) = (done, tracker, span) {
        t.done(lo, hi, writer.position(), failed);
    }
    report.batch_elapsed = started.elapsed();
    tracing::debug!(
        records = report.size,
        inserted = report.inserted,
        updated = report.updated,
        skipped = report.skipped,
        ok = report.ok,
        write_ms = report.insert_elapsed.as_millis() as u64,
        batch_ms = report.batch_elapsed.as_millis() as u64,
        "batch of {} records written in {:.1} ms ({:.1} ms from its first record)",
        report.size,
        report.insert_elapsed.as_secs_f64() * 1e3,
        report.batch_elapsed.as_secs_f64() * 1e3
    );
    ctx.metrics.batch_done(&report);
}
