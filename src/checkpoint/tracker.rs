//! The frontier of one run: which rows are done, written to the checkpoint
//! file as batches commit.
//!
//! Every item sent into the queue gets a number, in the order it is sent
//! (the sends of one chunk hold [`Tracker::lock_send`], so forks reading
//! at once do not interleave); a chunk remembers its stream, the ordinals
//! of its items and where its stream stands after it. Workers take their
//! batches whole and in queue order, so a batch is a range of numbers.
//! Once every batch up to a number is done, every chunk below it is, and
//! its stream's frontier moves to the chunk's end.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::{render, Header, Resume};

/// The rows of one batch, as ranges of ordinals per stream: what a MySQL
/// batch records beside its rows (`stream:first-last`, space-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage(pub String);

impl Coverage {
    /// The batch's records at these indexes (in the order of its rows)
    /// failed: they are not done (a resumed run reads them again, or finds
    /// them kept in the dead-letter file). Said as `x:i,j,…`.
    pub fn without(&self, failed: &[usize]) -> Coverage {
        if failed.is_empty() {
            return self.clone();
        }
        let list: Vec<String> = failed.iter().map(usize::to_string).collect();
        Coverage(format!("{} x:{}", self.0, list.join(",")))
    }

    /// Reads a coverage text back: the (stream, first, last) ranges of the
    /// rows done (those said to have failed left out).
    pub fn parse(text: &str) -> Vec<(u32, u64, u64)> {
        let mut ranges: Vec<(u32, u64, u64)> = Vec::new();
        let mut failed: Vec<u64> = Vec::new();
        for part in text.split_whitespace() {
            let Some((s, rest)) = part.split_once(':') else {
                continue;
            };
            if s == "x" {
                failed.extend(rest.split(',').filter_map(|i| i.parse::<u64>().ok()));
                continue;
            }
            let parsed = rest
                .split_once('-')
                .and_then(|(lo, hi)| Some((s.parse().ok()?, lo.parse().ok()?, hi.parse().ok()?)));
            ranges.extend(parsed);
        }
        failed.sort_unstable();
        failed.dedup();
        if failed.is_empty() {
            return ranges;
        }
        // Drop the failed rows: the i-th row is the i-th ordinal of the
        // ranges in order.
        let mut out = Vec::new();
        let (mut at, mut next) = (0u64, 0usize);
        for (s, lo, hi) in ranges {
            let mut start = lo;
            while next < failed.len() && failed[next] < at + (hi - lo + 1) {
                let o = lo + (failed[next] - at);
                if o > start {
                    out.push((s, start, o - 1));
                }
                start = o + 1;
                next += 1;
            }
            if start <= hi {
                out.push((s, start, hi));
            }
            at += hi - lo + 1;
        }
        out
    }
}

/// A chunk sent into the queue.
struct Chunk {
    /// Its items' numbers: `lo..hi`.
    lo: u64,
    hi: u64,
    stream: u32,
    /// The ordinals of its items, as inclusive runs, in order.
    runs: Vec<(u64, u64)>,
    /// The ordinal of the last row read before the chunk was sent (rows
    /// rejected or skipped included).
    end: u64,
    /// Where the source can go on from after it.
    state: Option<Json>,
    /// Rows of its span rejected as they were read.
    rejected: u64,
}

/// Where one stream stands.
#[derive(Clone, Default)]
struct StreamAt {
    ordinal: u64,
    state: Option<(u64, Json)>,
}

struct Inner {
    /// The number the next item sent gets.
    next: u64,
    chunks: VecDeque<Chunk>,
    /// Batches done beyond the frontier: first number -> (end, output,
    /// records failed).
    done: BTreeMap<u64, (u64, Option<u64>, u64)>,
    /// Records failed (and kept) among the rows done, earlier runs'
    /// included.
    failed: u64,
    /// Every item below this number is done.
    frontier: u64,
    /// The file sink's length with every item below `frontier` written.
    output: Option<u64>,
    streams: BTreeMap<u32, StreamAt>,
    /// Rows of earlier runs known done beyond their stream's frontier.
    carried: BTreeMap<u32, Vec<(u64, u64)>>,
    saved: Instant,
    /// Set once a write failed (said once).
    unwritable: bool,
    /// What the source as a whole goes on from (an index's point in time),
    /// written before anything of it is sent.
    pinned: Option<Json>,
    /// The job completed.
    complete: bool,
    /// Its failed records were within --accept-errors.
    accepted: bool,
    /// The file sink's `.partial`, whose tail is hashed with each write.
    partial: Option<std::path::PathBuf>,
}

/// See the module's documentation.
pub struct Tracker {
    header: Header,
    every: Duration,
    send: Mutex<()>,
    inner: Mutex<Inner>,
    resume: Option<Resume>,
    resumed: AtomicU64,
    /// Records loaded before this run (from the checkpoint).
    loaded_before: u64,
    /// Records this run finished (written or failed) in done batches.
    finished: AtomicU64,
}

impl Tracker {
    /// A tracker for checkpoint `header`, written at most every `every`,
    /// resuming `resume`; `output` is the file sink's length to start with.
    pub fn new(
        header: Header,
        every: Duration,
        resume: Option<Resume>,
        output: Option<u64>,
    ) -> Tracker {
        let mut streams = BTreeMap::new();
        let mut carried = BTreeMap::new();
        if let Some(r) = &resume {
            for (s, upto) in &r.frontier {
                streams.insert(
                    *s,
                    StreamAt {
                        ordinal: *upto,
                        state: r.state.get(s).cloned(),
                    },
                );
            }
            carried = r.covered.clone();
        }
        Tracker {
            loaded_before: resume.as_ref().map_or(0, |r| r.loaded),
            header,
            every,
            send: Mutex::new(()),
            inner: Mutex::new(Inner {
                next: 0,
                chunks: VecDeque::new(),
                done: BTreeMap::new(),
                frontier: 0,
                output,
                streams,
                carried,
                saved: Instant::now(),
                unwritable: false,
                pinned: resume.as_ref().and_then(|r| r.source.clone()),
                complete: false,
                accepted: false,
                partial: None,
                failed: resume.as_ref().map_or(0, |r| r.failed),
            }),
            resume,
            resumed: AtomicU64::new(0),
            finished: AtomicU64::new(0),
        }
    }

    /// Records failed (and kept) by earlier runs among the rows this run
    /// skips: the job's outcome counts them.
    pub fn failed_before(&self) -> u64 {
        self.resume.as_ref().map_or(0, |r| r.failed)
    }

    /// The file sink writes `partial`: each write of the checkpoint holds a
    /// hash of its tail at the recorded length.
    pub fn follow_output(&self, partial: std::path::PathBuf) {
        self.inner().partial = Some(partial);
    }

    /// The checkpoint's id.
    pub fn id(&self) -> &str {
        &self.header.id
    }

    /// The checkpoint file.
    pub fn path(&self) -> &std::path::Path {
        &self.header.path
    }

    /// What this run resumes, if it does.
    pub fn resume(&self) -> Option<&Resume> {
        self.resume.as_ref()
    }

    /// Held while one chunk is numbered and sent.
    pub fn lock_send(&self) -> MutexGuard<'_, ()> {
        self.send.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A chunk of stream `stream` is about to be sent: its items' ordinals
    /// (`runs`), the ordinal of the last row read before it (`end`) and
    /// where the source can go on from after it (`state`).
    pub fn sent(
        &self,
        stream: u32,
        runs: Vec<(u64, u64)>,
        (end, rejected): (u64, u64),
        state: Option<Json>,
    ) {
        let items: u64 = runs.iter().map(|(lo, hi)| hi - lo + 1).sum();
        let mut inner = self.inner();
        let lo = inner.next;
        inner.next += items;
        inner.chunks.push_back(Chunk {
            lo,
            hi: lo + items,
            stream,
            runs,
            end,
            state,
            rejected,
        });
        // A chunk with nothing in it (every row skipped or rejected) is
        // done once everything before it is.
        if items == 0 {
            advance(&mut inner);
        }
    }

    /// What the source as a whole goes on from (the point in time an index
    /// is read in): written now, before anything read in it is sent, so
    /// that whatever commits can be told apart by a resumed run.
    pub fn pin(&self, source: Json) -> std::io::Result<()> {
        let mut inner = self.inner();
        inner.pinned = Some(source);
        inner.saved = Instant::now();
        let text = self.text(&inner);
        crate::fsutil::write_atomic(&self.header.path, &text)
    }

    /// `n` rows skipped: an earlier run had loaded them.
    pub fn skipped(&self, n: u64) -> u64 {
        self.resumed.fetch_add(n, Ordering::Relaxed) + n
    }

    /// Rows skipped so far.
    pub fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }

    /// The row of item `item` as a dead-letter entry names it:
    /// `id:stream:ordinal`.
    pub fn tag_of(&self, item: u64) -> Option<String> {
        let inner = self.inner();
        let at = inner.chunks.partition_point(|c| c.hi <= item);
        let c = inner.chunks.get(at).filter(|c| c.lo <= item)?;
        let (o, _) = *slice_runs(&c.runs, item - c.lo, item - c.lo + 1).first()?;
        Some(format!("{}:{}:{o}", self.header.id, c.stream))
    }

    /// The rows of items `lo..hi` (a batch), but those at `except`
    /// (offsets from `lo`, rising), for the sink to record.
    pub fn coverage_except(&self, lo: u64, hi: u64, except: &[u64]) -> Coverage {
        let mut parts = Vec::new();
        let mut from = lo;
        for &x in except.iter().chain(std::iter::once(&(hi - lo))) {
            let to = lo + x;
            if to > from {
                parts.push(self.coverage(from, to).0);
            }
            from = to + 1;
        }
        Coverage(
            parts
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    /// The rows of items `lo..hi` (a batch), for the sink to record.
    pub fn coverage(&self, lo: u64, hi: u64) -> Coverage {
        let inner = self.inner();
        let first = inner.chunks.partition_point(|c| c.hi <= lo);
        let mut parts = Vec::new();
        for c in inner.chunks.iter().skip(first) {
            if c.lo >= hi {
                break;
            }
            let from = lo.max(c.lo) - c.lo;
            let to = hi.min(c.hi) - c.lo;
            for (a, b) in slice_runs(&c.runs, from, to) {
                parts.push(format!("{}:{a}-{b}", c.stream));
            }
        }
        Coverage(parts.join(" "))
    }

    /// The batch of items `lo..hi` is done (committed, its `failed`
    /// records kept); `output` is the file sink's length right after it.
    pub fn done(&self, lo: u64, hi: u64, output: Option<u64>, failed: u64) {
        self.finished.fetch_add(hi - lo, Ordering::Relaxed);
        let mut inner = self.inner();
        inner.done.insert(lo, (hi, output, failed));
        advance(&mut inner);
        if inner.saved.elapsed() >= self.every {
            self.save(&mut inner);
        }
    }

    /// Writes the checkpoint now (the run is starting or ending).
    pub fn save_now(&self) -> std::io::Result<()> {
        let mut inner = self.inner();
        inner.saved = Instant::now();
        let text = self.text(&inner);
        crate::fsutil::write_atomic(&self.header.path, &text)
    }

    fn save(&self, inner: &mut Inner) {
        inner.saved = Instant::now();
        let text = self.text(inner);
        if let Err(e) = crate::fsutil::write_atomic(&self.header.path, &text) {
            if !inner.unwritable {
                inner.unwritable = true;
                tracing::warn!(
                    "cannot write the checkpoint {}: {e}; a run resumed from it goes on from an earlier point",
                    self.header.path.display()
                );
            }
        }
    }

    /// The run is over: a complete run marks the checkpoint complete (the
    /// same job again then has nothing to do); any other writes it as of
    /// now, to resume from.
    pub fn finish(&self, complete: Option<bool>) -> Result<(), String> {
        let path = &self.header.path;
        if let Some(accepted) = complete {
            let mut inner = self.inner();
            inner.complete = true;
            inner.accepted = accepted;
        }
        self.save_now()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// What a summary says of it.
    pub fn note(&self, complete: bool) -> String {
        let path = self.path().display();
        let inner = self.inner();
        let done: u64 = inner.streams.values().map(|s| s.ordinal).sum();
        match complete {
            true => format!("checkpoint {path} marked complete"),
            false => format!(
                "checkpoint {path} kept: {done} rows done; run again with the same flags to go on from there"
            ),
        }
    }

    fn text(&self, inner: &Inner) -> Vec<u8> {
        let mut streams = serde_json::Map::new();
        for (s, at) in &inner.streams {
            streams.insert(
                s.to_string(),
                json!({
                    "ordinal": at.ordinal,
                    "state": at.state.as_ref().map(|(o, v)| json!({"ordinal": o, "at": v})),
                }),
            );
        }
        let mut covered: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
        for (s, ranges) in &inner.carried {
            let upto = inner.streams.get(s).map_or(0, |a| a.ordinal);
            covered
                .entry(*s)
                .or_default()
                .extend(ranges.iter().filter(|r| r.1 > upto).copied());
        }
        // The first chunk can be done in part: its first items.
        if let Some(c) = inner.chunks.front() {
            if c.lo < inner.frontier {
                covered.entry(c.stream).or_default().extend(slice_runs(
                    &c.runs,
                    0,
                    inner.frontier - c.lo,
                ));
            }
        }
        let covered: serde_json::Map<String, Json> = covered
            .into_iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(s, r)| (s.to_string(), json!(r)))
            .collect();
        let loaded = self.loaded_before + self.finished.load(Ordering::Relaxed);
        render(
            &self.header,
            json!({
                "streams": streams,
                "covered": covered,
                "partial_length": inner.output,
                "partial_tail": match (&inner.partial, inner.output) {
                    (Some(p), Some(len)) => super::tail_of(p, len).ok(),
                    _ => None,
                },
                "loaded": loaded,
                "source": inner.pinned,
                "complete": inner.complete,
                "accepted": inner.accepted,
                "failed": inner.failed,
            }),
        )
    }
}

/// Moves the frontier over the batches done, and each stream's frontier
/// over the chunks wholly below it.
fn advance(inner: &mut Inner) {
    while let Some((hi, output, failed)) = inner.done.remove(&inner.frontier) {
        inner.frontier = hi;
        inner.failed += failed;
        if output.is_some() {
            inner.output = output;
        }
    }
    while inner.chunks.front().is_some_and(|c| c.hi <= inner.frontier) {
        let c = inner.chunks.pop_front().expect("a chunk");
        inner.failed += c.rejected;
        let at = inner.streams.entry(c.stream).or_default();
        at.ordinal = at.ordinal.max(c.end);
        if let Some(state) = c.state {
            at.state = Some((c.end, state));
        }
    }
}

/// The ordinals of items `from..to` of a chunk whose items have the
/// ordinals of `runs`, as runs.
fn slice_runs(runs: &[(u64, u64)], from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0u64;
    for &(lo, hi) in runs {
        let len = hi - lo + 1;
        let (a, b) = (from.max(at), to.min(at + len));
        if a < b {
            out.push((lo + (a - at), lo + (b - at) - 1));
        }
        at += len;
        if at >= to {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(dir: &std::path::Path) -> Tracker {
        let header = Header {
            path: dir.join("ck"),
            id: "abc".into(),
            identity: super::super::Identity {
                text: "t".into(),
                hash: "h".into(),
                inputs: json!([]),
            },
        };
        Tracker::new(header, Duration::ZERO, None, Some(0))
    }

    fn saved(t: &Tracker) -> Json {
        serde_json::from_slice(&std::fs::read(t.path()).unwrap()).unwrap()
    }

    #[test]
    fn failed_rows_are_left_out_of_a_coverage() {
        let c = Coverage("0:1-5 0:10-12".into()).without(&[0, 4, 6]);
        assert_eq!(c.0, "0:1-5 0:10-12 x:0,4,6");
        assert_eq!(Coverage::parse(&c.0), [(0, 2, 4), (0, 10, 10), (0, 12, 12)]);
        assert_eq!(Coverage::parse("1:3-4"), [(1, 3, 4)]);
    }

    #[test]
    fn slices_of_runs() {
        let runs = [(1, 3), (7, 9)];
        assert_eq!(slice_runs(&runs, 0, 6), [(1, 3), (7, 9)]);
        assert_eq!(slice_runs(&runs, 2, 5), [(3, 3), (7, 8)]);
        assert_eq!(slice_runs(&runs, 3, 4), [(7, 7)]);
        assert!(slice_runs(&runs, 6, 6).is_empty());
    }

    #[test]
    fn the_frontier_moves_over_a_contiguous_prefix_only() {
        let dir = tempfile::tempdir().unwrap();
        let t = tracker(dir.path());
        // Stream 0: rows 1-4 sent, row 5 rejected, rows 6-9 sent.
        t.sent(0, vec![(1, 4)], (4, 1), None);
        t.sent(0, vec![(6, 9)], (9, 0), Some(json!("after 9")));
        assert_eq!(t.coverage(2, 6).0, "0:3-4 0:6-7");
        // The second batch commits first: nothing moves.
        t.done(4, 8, Some(80), 0);
        let s = saved(&t);
        assert_eq!(s["streams"], json!({}));
        t.done(0, 4, Some(40), 2);
        let s = saved(&t);
        assert_eq!(s["streams"]["0"]["ordinal"], 9);
        assert_eq!(s["streams"]["0"]["state"]["at"], "after 9");
        assert_eq!(s["partial_length"], 80);
        assert_eq!(s["loaded"], 8);
        // Two records of the first batch, and the row rejected as read.
        assert_eq!(s["failed"], 3);
        // A batch done in the middle of a chunk: the chunk's first items
        // are listed as covered, the output is as long as they are.
        t.sent(0, vec![(10, 19)], (19, 0), None);
        t.done(8, 12, Some(120), 0);
        let s = saved(&t);
        assert_eq!(s["streams"]["0"]["ordinal"], 9);
        assert_eq!(s["covered"]["0"], json!([[10, 13]]));
        assert_eq!(s["partial_length"], 120);
        let r = super::super::parse_resume(&s).unwrap();
        let mut f = r.filter(0);
        let skipped: Vec<u64> = (1..=20).filter(|&o| f.skip(o)).collect();
        assert_eq!(skipped, (1..=13).collect::<Vec<_>>());
    }

    #[test]
    fn a_chunk_of_skipped_rows_moves_the_frontier_when_reached() {
        let dir = tempfile::tempdir().unwrap();
        let t = tracker(dir.path());
        t.sent(1, vec![(1, 2)], (2, 0), None);
        t.sent(1, vec![], (50, 0), None);
        t.done(0, 2, None, 0);
        assert_eq!(saved(&t)["streams"]["1"]["ordinal"], 50);
        t.finish(Some(false)).unwrap();
        assert_eq!(saved(&t)["complete"], true);
    }
}
