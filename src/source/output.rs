//! Where a source puts what it reads: one [`SourceOutput`] per run. It sends
//! the records (or JSON lines) to the sinks in chunks, counts the rows read
//! and the bytes, times each fetch, applies `--limit`, rejects bad rows
//! through the [`Context`] (dead-letter file, error budget) and moves the
//! progress bar, so a source only reads and converts.
//!
//! Everything is counted once per chunk, not per row. A row counts against
//! `--limit` whether it becomes a record or is rejected; a rejected row is
//! counted read at once (with the rows before it), so the error budget is
//! checked on every one. Several files read in turn share one output, so the
//! limit and the counts span the files. Threads that read at once (the
//! slices of an index) each take a [`SourceOutput::fork`] and claim their
//! share of the limit a page at a time ([`SourceOutput::claim`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::RecordSender;
use crate::context::Context;
use crate::error::ErrorType;
use crate::record::{Lines, Record};

/// What a chunk holds until it is sent: records, or JSON lines the source
/// wrote itself (each byte for byte what its record would be written as).
pub(crate) enum Pending {
    Records(Vec<Record>),
    Lines(Lines),
}

/// What every fork of one output shares.
struct Shared {
    /// `--limit`: how many rows may be read in all.
    limit: Option<u64>,
    /// Rows claimed against the limit (by [`SourceOutput::at_limit`] or
    /// [`SourceOutput::claim`]), before they are read.
    taken: AtomicU64,
    /// Rows counted read: records sent and rows rejected.
    read: AtomicU64,
    /// Bytes counted read.
    bytes: AtomicU64,
}

impl Shared {
    /// Takes up to `n` rows of what is left of the limit.
    fn take(&self, limit: u64, n: u64) -> u64 {
        let before = self
            .taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t + n.min(limit.saturating_sub(t)))
            })
            .unwrap_or_else(|t| t);
        n.min(limit.saturating_sub(before))
    }
}

/// The way out of a source: see the module's documentation.
pub struct SourceOutput<'a> {
    sender: &'a RecordSender,
    ctx: &'a Context,
    shared: Arc<Shared>,
    /// The chunk being read.
    pending: Pending,
    /// Rows of the chunk not yet counted read.
    rows: u64,
    /// Rows this output may still read without claiming more.
    left: u64,
    /// When the chunk started (its fetch time).
    started: Instant,
    /// Records the sinks are done with, to fill again.
    spare: Vec<Record>,
    /// `--checkpoint`: each row's ordinal, the rows to skip.
    follow: Option<super::follow::Follow>,
}

/// Rows a chunk of records starts with room for.
const CHUNK_CAPACITY: usize = 1024;

impl<'a> SourceOutput<'a> {
    /// The output of a source that sends to `sender` and reports through
    /// `ctx`; at most `limit` rows are read.
    pub fn new(sender: &'a RecordSender, ctx: &'a Context, limit: Option<u64>) -> SourceOutput<'a> {
        let shared = Arc::new(Shared {
            limit,
            taken: AtomicU64::new(0),
            read: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        });
        SourceOutput::with(sender, ctx, shared)
    }

    fn with(sender: &'a RecordSender, ctx: &'a Context, shared: Arc<Shared>) -> SourceOutput<'a> {
        SourceOutput {
            sender,
            ctx,
            left: if shared.limit.is_some() { 0 } else { u64::MAX },
            shared,
            pending: Pending::Records(Vec::with_capacity(CHUNK_CAPACITY)),
            rows: 0,
            started: Instant::now(),
            spare: Vec::new(),
            follow: ctx
                .checkpoint()
                .map(|t| super::follow::Follow::new(t.clone())),
        }
    }

    /// From now on the rows read are of stream `stream` (the file of a
    /// list, the slice of an index), the next one numbered `after + 1`
    /// (`--checkpoint`; nothing without).
    pub fn begin_stream(&mut self, stream: u32, after: u64) {
        if self.follow.is_some() {
            self.count_rows();
            self.send_pending();
        }
        if let Some(f) = &mut self.follow {
            f.begin(stream, after);
        }
    }

    /// `--checkpoint`, resumed: where the source can go on from in the
    /// stream it reads now (what it said with
    /// [`SourceOutput::set_resume_state`] in an earlier run), and the
    /// ordinal of the last row before that point.
    pub fn resume_point(&self) -> Option<(u64, serde_json::Value)> {
        self.follow.as_ref()?.resume_point()
    }

    /// The source goes on from a resume point: the rows of its stream up to
    /// `ordinal` are not read again.
    pub fn resume_stream_from(&mut self, ordinal: u64) {
        if let Some(f) = &mut self.follow {
            f.begin(f.stream(), ordinal);
        }
    }

    /// Where the source can go on from once the chunk being read is sent
    /// (`--checkpoint`: a point in time and the last sort values).
    pub fn set_resume_state(&mut self, state: impl FnOnce() -> serde_json::Value) {
        if let Some(f) = &mut self.follow {
            f.set_state(state());
        }
    }

    /// Another output for a thread reading at the same time: it sends to
    /// the same sinks and shares the counts and the limit (claimed with
    /// [`SourceOutput::claim`]).
    pub fn fork(&self) -> SourceOutput<'a> {
        SourceOutput::with(self.sender, self.ctx, self.shared.clone())
    }

    /// The run's context.
    pub fn ctx(&self) -> &'a Context {
        self.ctx
    }

    /// True when the source must stop reading (see
    /// [`Context::should_stop_reading`]).
    pub fn should_stop(&self) -> bool {
        self.ctx.should_stop_reading()
    }

    /// Rows counted read so far, by every fork.
    pub fn read(&self) -> u64 {
        self.shared.read.load(Ordering::Relaxed)
    }

    /// A batch of records the sinks are done with, to fill again.
    pub fn reusable(&self) -> Option<Vec<Record>> {
        self.sender.reusable()
    }

    /// A record the sinks are done with, to fill again.
    pub fn spare_record(&mut self) -> Option<Record> {
        if self.spare.is_empty() {
            self.spare = self.sender.reusable().unwrap_or_default();
        }
        self.spare.pop()
    }

    /// Sets the number of records to read, when the source knows it (a
    /// count of matching documents), cut to `--limit`.
    pub fn progress_total_records(&self, total: u64) {
        let total = self.shared.limit.map_or(total, |l| l.min(total));
        self.ctx.progress_total_records(total);
    }

    /// From now on rows are collected in `pending` (a source that writes
    /// JSON lines itself); what was pending before must have been sent.
    pub(crate) fn collect_into(&mut self, pending: Pending) {
        self.pending = pending;
    }

    /// The chunk being read, for a source that adds rows to it itself
    /// (each then counted with [`SourceOutput::took`]).
    pub(crate) fn pending(&mut self) -> &mut Pending {
        &mut self.pending
    }

    /// Starts a chunk: its fetch time is counted from now.
    pub fn start_chunk(&mut self) {
        self.started = Instant::now();
    }

    /// Rows read into the chunk since it started or since the last
    /// rejected row (which counts those before it).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// True when `--limit` rows have been read: no more may be. Claims
    /// what is left of the limit for this output when it holds none (a
    /// reader that reads row by row claims it all at once).
    pub fn at_limit(&mut self) -> bool {
        if self.left == 0 {
            if let Some(limit) = self.shared.limit {
                self.left = self.shared.take(limit, u64::MAX);
            }
        }
        self.left == 0
    }

    /// Claims up to `n` more rows against `--limit` for this output, when
    /// it is about to read `n` it already holds (a page); returns how many
    /// it may read (fewer than `n`: the limit cut the read).
    pub fn claim(&mut self, n: u64) -> u64 {
        let Some(limit) = self.shared.limit else {
            return n;
        };
        let k = self.shared.take(limit, n);
        self.left += k;
        k
    }

    #[inline]
    fn took_rows(&mut self, n: u64) {
        self.rows += n;
        self.left = self.left.saturating_sub(n);
    }

    /// True when the next row is one an earlier run finished
    /// (`--checkpoint`): it is skipped. `item`: it would be sent.
    #[inline]
    fn skipped(&mut self, item: bool) -> bool {
        self.follow.as_mut().is_some_and(|f| f.next(item))
    }

    /// A row became `record`.
    #[inline]
    pub fn push(&mut self, record: Record) {
        if self.skipped(true) {
            return;
        }
        self.took_rows(1);
        match &mut self.pending {
            Pending::Records(chunk) => chunk.push(record),
            Pending::Lines(_) => unreachable!("records are pushed to a chunk of records"),
        }
    }

    /// A row was added to [`SourceOutput::pending`] by the source.
    #[inline]
    pub fn took(&mut self) {
        if self.skipped(true) {
            match &mut self.pending {
                Pending::Records(chunk) => {
                    chunk.pop();
                }
                Pending::Lines(lines) => lines.truncate(lines.len().saturating_sub(1)),
            }
            return;
        }
        self.took_rows(1);
    }

    /// A row that cannot become a record: it and the rows before it are
    /// counted read, then it is failed and kept in the dead-letter file.
    /// True when reading must stop (the error budget is spent).
    pub fn reject(&mut self, line: u64, raw: &[u8], error_type: ErrorType, reason: &str) -> bool {
        if self.skipped(false) {
            return self.ctx.should_stop_reading();
        }
        let tag = self.follow.as_mut().map(|f| {
            f.rejected += 1;
            f.tag()
        });
        self.took_rows(1);
        self.count_rows();
        self.ctx
            .reject_row((line, tag.as_deref()), raw, error_type, reason);
        self.ctx.should_stop_reading()
    }

    /// Sends JSON lines the source wrote (a batch of their own), after the
    /// records read before them, all counted read first; cut to what
    /// `--limit` leaves. True when they were cut: reading ends.
    pub fn send_lines(&mut self, mut lines: Lines) -> bool {
        if self.follow.is_some() {
            // The chunk before the lines goes as a chunk of its own.
            self.count_rows();
            self.send_pending();
            let follow = self.follow.as_mut().expect("following");
            let keep: Vec<bool> = (0..lines.len()).map(|_| !follow.next(true)).collect();
            if keep.contains(&false) {
                lines.retain(|i| keep[i]);
            }
            self.took_rows(lines.len() as u64);
            self.count_rows();
            self.send_lines_now(lines);
            return false;
        }
        self.at_limit();
        let cut = lines.len() as u64 > self.left;
        if cut {
            lines.truncate(self.left as usize);
        }
        self.took_rows(lines.len() as u64);
        self.count_rows();
        self.send_pending();
        self.sender.send_lines(lines, self.ctx);
        cut
    }

    /// Counts `bytes` read outside any chunk (a header read apart).
    pub fn count_bytes(&mut self, bytes: u64) {
        self.ctx.metrics.source_bytes(bytes);
        self.shared.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Ends the chunk, `bytes` long, timed from [`SourceOutput::start_chunk`]:
    /// counts it, sends it and moves the progress bar.
    pub fn end_chunk(&mut self, bytes: u64) {
        let took = self.started.elapsed();
        self.end_chunk_took(bytes, took);
    }

    /// Ends the chunk, `bytes` long, fetched in `took` (by another thread).
    pub fn end_chunk_took(&mut self, bytes: u64, took: Duration) {
        let read = self.count_rows();
        self.ctx.metrics.source_bytes(bytes);
        let bytes = self.shared.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.ctx.metrics.fetch_observed(took);
        self.send_pending();
        self.ctx.progress(bytes, read + self.resumed());
    }

    /// Ends a page whose bytes and fetch time were counted as it came:
    /// counts its records, sends them and moves the progress bar.
    pub fn end_page(&mut self) {
        let read = self.count_rows();
        self.send_pending();
        let bytes = self.shared.bytes.load(Ordering::Relaxed);
        self.ctx.progress(bytes, read + self.resumed());
    }

    /// Reading failed: what the chunk holds is counted and sent, so every
    /// row counted read is written or failed.
    pub fn end_before_error(&mut self) {
        self.count_rows();
        self.send_pending();
    }

    /// Rows skipped because an earlier run finished them (`--checkpoint`).
    pub fn resumed(&self) -> u64 {
        self.follow.as_ref().map_or(0, |f| f.tracker.resumed())
    }

    /// Counts the chunk's rows read; returns the rows read in all.
    fn count_rows(&mut self) -> u64 {
        let rows = std::mem::take(&mut self.rows);
        self.ctx.metrics.records_read(rows);
        self.shared.read.fetch_add(rows, Ordering::Relaxed) + rows
    }

    /// Sends `lines` as a chunk of their own (`--checkpoint`).
    fn send_lines_now(&mut self, lines: Lines) {
        let follow = self.follow.as_mut().expect("following");
        let tracker = follow.tracker.clone();
        let _turn = tracker.lock_send();
        if let Some(all) = follow.sending() {
            self.ctx.metrics.resumed_records(all);
        }
        self.sender.send_lines(lines, self.ctx);
    }

    fn send_pending(&mut self) {
        let tracker = self.follow.as_ref().map(|f| f.tracker.clone());
        let _turn = tracker.as_ref().map(|t| t.lock_send());
        if let Some(all) = self.follow.as_mut().and_then(|f| f.sending()) {
            self.ctx.metrics.resumed_records(all);
        }
        match &mut self.pending {
            Pending::Records(chunk) => self.sender.send_all(chunk, self.ctx),
            Pending::Lines(lines) if !lines.is_empty() => {
                let empty = Lines {
                    keys_per_line: lines.keys_per_line,
                    ..Lines::new(lines.schema.clone(), lines.ends.capacity())
                };
                self.sender
                    .send_lines(std::mem::replace(lines, empty), self.ctx);
            }
            Pending::Lines(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crossbeam_channel::Receiver;

    use super::*;
    use crate::channel::{self, Item};
    use crate::dead_letter::DeadLetter;
    use crate::metrics::Metrics;
    use crate::record::{Schema, Value};
    use crate::shutdown::Shutdown;

    fn context(max_errors: Option<u64>, dead_letter: Option<&std::path::Path>) -> Context {
        let metrics = Metrics::new(
            "test",
            crate::config::SourceKind::Csv,
            crate::config::SinkKind::File,
        );
        let dead_letter = DeadLetter::open(dead_letter).unwrap();
        Context::new(metrics, Shutdown::new(), dead_letter, max_errors, None)
    }

    fn record(n: u64) -> Record {
        Record {
            schema: Arc::new(Schema::new(vec!["n".into()])),
            values: vec![Value::Str(n.to_string())],
            position: n,
        }
    }

    fn lines(from: u64, n: u64) -> Lines {
        let mut lines = Lines::new(Arc::new(Schema::new(vec!["n".into()])), n as usize);
        for i in from..from + n {
            lines
                .bytes
                .extend_from_slice(format!("{{\"n\":\"{i}\"}}").as_bytes());
            lines.end_line(i);
        }
        lines
    }

    /// The positions of every record sent, in order.
    fn positions(rx: &Receiver<Item>) -> Vec<u64> {
        let mut got = Vec::new();
        for item in rx.try_iter() {
            match item {
                Item::Record(r) => got.push(r.position),
                Item::Lines(l) => got.extend(l.positions.iter().copied()),
            }
        }
        got
    }

    /// Reads rows 1, 2, … as a source does (`bad`: those rejected) until
    /// the limit, `chunk` rows to a chunk.
    fn read_rows(out: &mut SourceOutput, rows: u64, bad: &[u64], chunk: u64) {
        let mut n = 1;
        while n <= rows {
            out.start_chunk();
            while out.rows() < chunk && n <= rows {
                if out.at_limit() {
                    out.end_chunk(0);
                    return;
                }
                if bad.contains(&n) {
                    out.reject(n, b"bad", ErrorType::Parse, "bad row");
                } else {
                    out.push(record(n));
                }
                n += 1;
            }
            out.end_chunk(0);
        }
    }

    #[test]
    fn the_limit_is_reached_in_the_middle_of_a_chunk() {
        let ctx = context(None, None);
        let (sender, rx) = channel::bounded(100);
        let mut out = SourceOutput::new(&sender, &ctx, Some(5));
        read_rows(&mut out, 20, &[], 3);
        assert_eq!(positions(&rx), [1, 2, 3, 4, 5]);
        assert_eq!(ctx.metrics.counts().read, 5);
        assert_eq!(out.read(), 5);
        assert!(out.at_limit());
    }

    #[test]
    fn a_limit_of_zero_reads_nothing() {
        let ctx = context(None, None);
        let (sender, rx) = channel::bounded(100);
        let mut out = SourceOutput::new(&sender, &ctx, Some(0));
        assert!(out.at_limit());
        read_rows(&mut out, 3, &[], 10);
        assert!(out.send_lines(lines(1, 4)), "lines past the limit are cut");
        assert_eq!(out.claim(2), 0);
        assert!(positions(&rx).is_empty());
        assert_eq!(ctx.metrics.counts().read, 0);
    }

    #[test]
    fn no_limit_reads_everything() {
        let ctx = context(None, None);
        let (sender, rx) = channel::bounded(100);
        let mut out = SourceOutput::new(&sender, &ctx, None);
        read_rows(&mut out, 7, &[], 3);
        assert!(!out.at_limit());
        assert!(!out.send_lines(lines(8, 2)));
        assert_eq!(positions(&rx), (1..=9).collect::<Vec<_>>());
        assert_eq!(ctx.metrics.counts().read, 9);
    }

    #[test]
    fn rows_rejected_before_the_limit_count_against_it() {
        let dir = tempfile::tempdir().unwrap();
        let dl = dir.path().join("dl.jsonl");
        let ctx = context(None, Some(&dl));
        let (sender, rx) = channel::bounded(100);
        let mut out = SourceOutput::new(&sender, &ctx, Some(4));
        read_rows(&mut out, 10, &[2, 3], 100);
        assert_eq!(positions(&rx), [1, 4]);
        let counts = ctx.metrics.counts();
        assert_eq!((counts.read, counts.failed), (4, 2));
        ctx.dead_letter().flush().unwrap();
        let kept = std::fs::read_to_string(&dl).unwrap();
        assert_eq!(kept.lines().count(), 2, "{kept}");
    }

    #[test]
    fn a_rejected_row_counts_the_rows_before_it_at_once() {
        let ctx = context(Some(2), None);
        let (sender, rx) = channel::bounded(100);
        let mut out = SourceOutput::new(&sender, &ctx, None);
        out.start_chunk();
        out.push(record(1));
        out.push(record(2));
        assert!(!out.reject(3, b"x", ErrorType::Parse, "bad"));
        // Counted read before it was failed, though not sent yet.
        assert_eq!(ctx.metrics.counts().read, 3);
        assert_eq!(out.rows(), 0);
        out.push(record(4));
        assert!(
            out.reject(5, b"y", ErrorType::Parse, "bad"),
            "the budget is spent"
        );
        out.end_chunk(10);
        assert_eq!(positions(&rx), [1, 2, 4]);
        assert_eq!(ctx.metrics.counts().read, 5);
    }

    #[test]
    fn lines_are_cut_at_the_limit_after_the_records_before_them() {
        let ctx = context(None, None);
        let (sender, rx) = channel::bounded(100);
        let mut out = SourceOutput::new(&sender, &ctx, Some(4));
        out.start_chunk();
        assert!(!out.at_limit());
        out.push(record(1));
        assert!(out.send_lines(lines(2, 5)));
        assert!(out.at_limit());
        out.end_chunk(0);
        assert_eq!(positions(&rx), [1, 2, 3, 4]);
        assert_eq!(ctx.metrics.counts().read, 4);
    }

    #[test]
    fn forks_share_the_limit_and_the_counts() {
        let ctx = context(None, None);
        let (sender, rx) = channel::bounded(100);
        let out = SourceOutput::new(&sender, &ctx, Some(5));
        let (mut a, mut b) = (out.fork(), out.fork());
        assert_eq!(a.claim(3), 3);
        assert_eq!(b.claim(3), 2);
        for (fork, from, n) in [(&mut a, 1, 3), (&mut b, 4, 2)] {
            for i in from..from + n {
                fork.push(record(i));
            }
            fork.end_page();
        }
        assert_eq!(a.claim(1), 0);
        assert_eq!(out.read(), 5);
        assert_eq!(ctx.metrics.counts().read, 5);
        assert_eq!(positions(&rx), [1, 2, 3, 4, 5]);
    }

    /// Two NDJSON files read in turn through one output: the limit and the
    /// counts span both, and a rejected row names its file.
    fn read_two_files(limit: Option<u64>) -> (Vec<u64>, crate::record::Counts, String) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let b = dir.path().join("b.jsonl");
        std::fs::write(&a, "{\"n\":1}\nnot json\n{\"n\":3}\n").unwrap();
        std::fs::write(&b, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n").unwrap();
        let config = crate::config::JsonlConfig {
            input: crate::config::InputPath::File(a.clone()),
            list: Some(vec![a, b]),
            max_line_bytes: 1 << 20,
            format: Default::default(),
            threads: None,
            chunk_bytes: crate::config::DEFAULT_CHUNK_BYTES,
            replay_in_doubt: false,
            once: None,
        };
        let src = crate::config::SourceConfig::Jsonl(config);
        let dl = dir.path().join("dl.jsonl");
        let ctx = context(None, Some(&dl));
        let mut source = super::super::open(&src, &ctx.metrics, &Shutdown::new()).unwrap();
        let (sender, rx) = channel::bounded(100);
        let mut out = SourceOutput::new(&sender, &ctx, limit);
        source.run(&mut out).unwrap();
        ctx.dead_letter().flush().unwrap();
        let kept = std::fs::read_to_string(&dl).unwrap_or_default();
        (positions(&rx), ctx.metrics.counts(), kept)
    }

    #[test]
    fn the_counts_and_the_limit_span_several_files() {
        let (got, counts, kept) = read_two_files(None);
        assert_eq!(got, [1, 3, 1, 2, 3]);
        assert_eq!((counts.read, counts.failed), (6, 1));
        assert!(kept.contains("a.jsonl"), "{kept}");

        let (got, counts, _) = read_two_files(Some(5));
        assert_eq!(got, [1, 3, 1, 2]);
        assert_eq!((counts.read, counts.failed), (5, 1));

        // The limit reached with the first file: the second is not read.
        let (got, counts, _) = read_two_files(Some(3));
        assert_eq!(got, [1, 3]);
        assert_eq!((counts.read, counts.failed), (3, 1));
    }
}
