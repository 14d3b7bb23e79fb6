//! The sink worker loop shared by every sink: take records off the channel,
//! build a batch (full at `--batch-size`, or flushed `--batch-timeout-ms`
//! after its first record), write it, and report the outcome. Workers never
//! stop on the stop signal: they end when the channel is empty and closed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::channel::Spent;
use crate::context::Context;
use crate::error::{PipelineError, Stage};
use crate::metrics::BatchReport;
use crate::record::Record;

use super::api::{BatchError, BatchWriter};

/// Runs one sink worker until the channel is closed and drained. With
/// `order` (a sink that keeps input order, several workers) each batch is
/// taken whole under that lock and numbered from it, so batch numbers follow
/// the input and the sink writes them in that order.
pub fn run_worker(
    rx: Receiver<Record>,
    mut writer: Box<dyn BatchWriter>,
    ctx: &Context,
    batch_size: usize,
    batch_timeout: Duration,
    order: Option<&Mutex<u64>>,
    spent: &Spent,
) {
    let _active = ctx.metrics.worker_active(Stage::Sink);
    let mut batch: Vec<Record> = Vec::with_capacity(batch_size);
    // Once the sink has failed, later batches are failed (and dead-lettered)
    // instead of written, so everything read is still accounted for.
    let mut broken: Option<BatchError> = None;
    loop {
        let mut taking = order.map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
        let Ok(first) = rx.recv() else {
            break;
        };
        let started = Instant::now();
        let deadline = started + batch_timeout;
        batch.push(first);
        while batch.len() < batch_size {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => match rx.recv_deadline(deadline) {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                },
            }
        }
        let seq = taking.as_mut().map(|next| {
            let seq = **next;
            **next += 1;
            seq
        });
        drop(taking);
        ctx.metrics.queue_depth(rx.len());
        flush(
            &mut batch,
            writer.as_mut(),
            ctx,
            (started, seq),
            &mut broken,
        );
        spent.give(&mut batch);
    }
}

fn flush(
    batch: &mut [Record],
    writer: &mut dyn BatchWriter,
    ctx: &Context,
    (started, seq): (Instant, Option<u64>),
    broken: &mut Option<BatchError>,
) {
    let mut report = BatchReport {
        size: batch.len() as u64,
        ..Default::default()
    };
    let result = match broken {
        Some(e) => {
            writer.skip(seq);
            Err(BatchError {
                error_type: e.error_type,
                message: format!("not written: the sink failed earlier ({})", e.message),
            })
        }
        None => {
            let t = Instant::now();
            let r = writer.write_batch_at(seq, batch);
            report.insert_elapsed = t.elapsed();
            r
        }
    };
    match result {
        Ok(res) => {
            report.ok = true;
            report.inserted = res.inserted;
            report.updated = res.updated;
            report.skipped = res.skipped;
            for rej in &res.rejected {
                ctx.reject_record(&batch[rej.index], rej.error_type, &rej.reason);
            }
            if let Some(e) = res.broken {
                if broken.is_none() {
                    ctx.fail_run(PipelineError::Sink(e.error_type, e.message.clone()));
                    *broken = Some(e);
                }
            }
        }
        Err(e) => {
            for r in batch.iter() {
                ctx.reject_record(r, e.error_type, &e.message);
            }
            if broken.is_none() {
                ctx.fail_run(PipelineError::Sink(e.error_type, e.message.clone()));
                *broken = Some(e);
            }
        }
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
