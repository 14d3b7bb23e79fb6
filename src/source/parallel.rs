//! Reading a file on several threads, whatever its format: the source
//! thread cuts the file into chunks at record ends (a [`Cut`]), parse
//! threads turn each chunk into records, JSON lines and rejected rows (a
//! [`Parse`]), and the source thread sends the results on in file order,
//! with `--limit`, `--max-errors` and the counts applied row by row exactly
//! as a single-threaded reader applies them. CSV (`csv_parallel.rs`) and
//! NDJSON (`jsonl_parallel.rs`) each bring their cutter and parser.
//!
//! Each chunk gets its own reply channel; the chunks handed out wait in
//! file order ([`Order`]), so a slow chunk holds back the ones after it,
//! never reorders them. A parser may say that a chunk was cut at a wrong
//! place (CSV: inside a quoted field); the read then ends there, and the
//! caller reads on with one thread from that chunk's start.
//!
//! A compressed file is cut the same way as its decoder gives it
//! ([`Stream`]); the caller reads on from a wrong cut by decoding the file
//! again up to that chunk's start.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::error::{ErrorType, PipelineError};
use crate::record::{Lines, Record};

use super::SourceOutput;

/// About how many bytes one chunk holds.
pub(super) const CHUNK_BYTES: usize = crate::config::DEFAULT_CHUNK_BYTES;

/// About how many bytes of input the chunks in flight hold together (one
/// per parse thread and one more): past 7 threads, chunks get smaller, so
/// memory stays flat however many cores there are.
const IN_FLIGHT_BYTES: usize = 8 << 20;

/// The size of a chunk read on `threads` parse threads: `asked`, or less
/// (not under 256 KiB) where the chunks in flight would hold more than
/// [`IN_FLIGHT_BYTES`].
pub(super) fn chunk_bytes(threads: usize, asked: usize) -> usize {
    asked.min((IN_FLIGHT_BYTES / (threads + 1)).max(256 << 10))
}

/// One row of a chunk (or several written as lines), in order.
pub(super) enum Item {
    Record(Record),
    Lines(Lines),
    Rejected {
        line: u64,
        raw: Vec<u8>,
        error_type: ErrorType,
        reason: String,
    },
}

/// A parsed chunk.
pub(super) struct Parsed {
    pub items: Vec<Item>,
    /// The chunk was cut at a wrong place (it ended inside a quoted
    /// field): the cut before it was wrong.
    pub open: bool,
    pub error: Option<std::io::Error>,
}

/// Turns a chunk into rows; called on the parse threads.
pub(super) trait Parse: Sync {
    /// The rows of `bytes`, which starts at a record start on line `line`;
    /// `spare`: records the sinks are done with, to fill again.
    fn parse(&self, bytes: Vec<u8>, line: u64, spare: Vec<Record>) -> Parsed;

    /// True when [`Parse::parse`] fills the spare records it is given.
    fn reuses_records(&self) -> bool {
        false
    }
}

/// A piece of the file: its bytes as the parser reads them, and how many
/// bytes of the file it covers (more than it holds when the middle of a
/// line too long to keep was skipped).
pub(super) struct Chunk {
    pub bytes: Vec<u8>,
    pub len: u64,
}

impl Chunk {
    /// A chunk that holds the bytes it covers.
    pub fn whole(bytes: Vec<u8>) -> Chunk {
        let len = bytes.len() as u64;
        Chunk { bytes, len }
    }
}

/// Cuts the file into chunks at record ends.
/// Reads from `file` until `carry` holds `want` bytes or the file ends
/// (then `eof` is set): what both cutters read ahead with.
pub(super) fn fill(
    file: &mut impl std::io::Read,
    carry: &mut Vec<u8>,
    eof: &mut bool,
    want: usize,
) -> std::io::Result<()> {
    use std::io::Read as _;
    // read_to_end reads into the room past the bytes held as it is (a
    // file's reads fill it directly): no zeroing of what is about to be read.
    while !*eof && carry.len() < want {
        let room = want - carry.len();
        carry.reserve(room);
        let n = file.by_ref().take(room as u64).read_to_end(carry)?;
        *eof = n < room;
    }
    Ok(())
}

pub(super) trait Cut {
    /// The next chunk; empty at the end of the file. `Ok(None)`: no record
    /// end could be found (the caller reads on with one thread).
    fn next(&mut self) -> std::io::Result<Option<Chunk>>;
}

/// A stream read on from where a reader before stood (a compressed file's
/// decoder, after the header): the bytes it had read ahead, then the rest.
pub(super) struct Stream {
    pub ahead: Vec<u8>,
    pub rest: Box<dyn std::io::Read + Send>,
}

/// What a parallel read needs to know besides its cutter and parser.
pub(super) struct Reading<'a> {
    /// The file.
    pub path: &'a Path,
    /// Its name in messages.
    pub name: &'a str,
    /// What is read, in messages and thread names (`CSV`, `NDJSON`).
    pub kind: &'static str,
    /// Byte offset of the first record (after a header).
    pub start: u64,
    /// Line of the first record.
    pub line: u64,
    /// Parse threads.
    pub threads: usize,
}

impl Reading<'_> {
    /// The file, opened at [`Reading::start`].
    pub fn open(&self) -> Result<File, PipelineError> {
        let mut file = File::open(self.path).map_err(|e| self.read_err(e))?;
        file.seek(SeekFrom::Start(self.start))
            .map_err(|e| self.read_err(e))?;
        Ok(file)
    }

    fn read_err(&self, e: std::io::Error) -> PipelineError {
        PipelineError::Source(ErrorType::Io, format!("reading {}: {e}", self.name))
    }
}

/// How the parallel read ended.
pub(super) enum Ended {
    /// The whole file was read, or the read was stopped (signal, budget,
    /// limit).
    Done,
    /// A chunk was cut at a wrong place, or no cut was found: read on
    /// single-threaded from byte `offset` (of the file, or of what its
    /// decoder gives), line `line`.
    From { offset: u64, line: u64 },
}

/// A chunk to parse.
struct Job {
    bytes: Vec<u8>,
    line: u64,
    spare: Vec<Record>,
    reply: Sender<Reply>,
}

/// A parsed chunk and how long parsing it took.
struct Reply {
    parsed: Parsed,
    took: Duration,
}

/// Reads the file from `reading.start` on `reading.threads` parse threads,
/// cut by `cutter` (reading a file opened by [`Reading::open`]) and parsed
/// by `parser`.
pub(super) fn run<C: Cut, P: Parse>(
    reading: &Reading,
    cutter: &mut C,
    parser: &P,
    out: &mut SourceOutput,
) -> Result<Ended, PipelineError> {
    // A header is read from the file too: counted from the first byte.
    out.count_bytes(reading.start);
    let (jobs, queue) = bounded::<Job>(reading.threads);
    let prefix = reading.kind.to_ascii_lowercase();
    std::thread::scope(|scope| {
        for i in 0..reading.threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{prefix}-parse-{i}"))
                .spawn_scoped(scope, move || {
                    for job in queue {
                        let started = Instant::now();
                        let parsed = parser.parse(job.bytes, job.line, job.spare);
                        let took = started.elapsed();
                        let _ = job.reply.send(Reply { parsed, took });
                    }
                })
                .expect("spawn a parse thread");
        }
        drop(queue);
        let mut order = Order {
            pending: VecDeque::new(),
            next_offset: reading.start,
            next_line: reading.line,
            cut_failed: false,
            failed: None,
            reuse: parser.reuses_records(),
        };
        let ended = sequence(reading, cutter, &mut order, &jobs, out);
        drop(jobs);
        ended
    })
}

/// A chunk handed out: where it starts, and its result to come.
struct Pending {
    offset: u64,
    line: u64,
    len: u64,
    /// Its lines (the next chunk starts on line + lines).
    lines: u64,
    result: Receiver<Reply>,
}

/// The chunks handed out, in file order, and where the next one starts.
struct Order {
    pending: VecDeque<Pending>,
    next_offset: u64,
    next_line: u64,
    /// No record end was found within the largest chunk.
    cut_failed: bool,
    /// Reading failed after the chunks handed out: raised once they are
    /// sent on (the rows before a corrupt stream's break count).
    failed: Option<std::io::Error>,
    /// The parser fills spare records.
    reuse: bool,
}

impl Order {
    /// Cuts chunks and hands them to the parse threads until each thread
    /// has one and one more waits.
    fn hand_out<C: Cut>(
        &mut self,
        reading: &Reading,
        cutter: &mut C,
        jobs: &Sender<Job>,
        out: &SourceOutput,
    ) {
        while self.pending.len() <= reading.threads
            && !self.cut_failed
            && self.failed.is_none()
            && !out.should_stop()
        {
            let next = match cutter.next() {
                Ok(next) => next,
                Err(e) => {
                    self.failed = Some(e);
                    break;
                }
            };
            let Some(Chunk { bytes, len }) = next else {
                self.cut_failed = true;
                break;
            };
            if bytes.is_empty() {
                break;
            }
            let (reply, result) = bounded(1);
            let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
            self.pending.push_back(Pending {
                offset: self.next_offset,
                line: self.next_line,
                len,
                lines,
                result,
            });
            let spare = match self.reuse {
                true => out.reusable().unwrap_or_default(),
                false => Vec::new(),
            };
            let job = Job {
                bytes,
                line: self.next_line,
                spare,
                reply,
            };
            if jobs.send(job).is_err() {
                break;
            }
            self.next_offset += len;
            self.next_line += lines;
        }
    }
}

/// Hands chunks to the parse threads and sends their results on in order.
fn sequence<C: Cut>(
    reading: &Reading,
    cutter: &mut C,
    order: &mut Order,
    jobs: &Sender<Job>,
    out: &mut SourceOutput,
) -> Result<Ended, PipelineError> {
    loop {
        order.hand_out(reading, cutter, jobs, out);
        let Some(chunk) = order.pending.pop_front() else {
            if let Some(e) = order.failed.take() {
                return Err(reading.read_err(e));
            }
            if order.cut_failed {
                return Ok(Ended::From {
                    offset: order.next_offset,
                    line: order.next_line,
                });
            }
            return Ok(Ended::Done);
        };
        if out.should_stop() {
            return Ok(Ended::Done);
        }
        let Reply { parsed, took } = chunk.result.recv().map_err(|_| {
            PipelineError::Internal(format!("a {} parse thread crashed", reading.kind))
        })?;
        if parsed.open {
            // Cut at a wrong place: from here on, one thread.
            return Ok(Ended::From {
                offset: chunk.offset,
                line: chunk.line,
            });
        }
        if let Some(e) = parsed.error {
            return Err(reading.read_err(e));
        }
        let stop = send_parsed(parsed.items, out);
        // --checkpoint: where a resumed run opens the file again.
        let (at, line) = (chunk.offset + chunk.len, chunk.line + chunk.lines);
        out.set_resume_state(|| serde_json::json!({"offset": at, "line": line}));
        out.end_chunk_took(chunk.len, took);
        if stop {
            return Ok(Ended::Done);
        }
    }
}

/// Hands a parsed chunk's rows to `out` in order. True when reading ends
/// (`--limit`, or the error budget spent).
fn send_parsed(items: Vec<Item>, out: &mut SourceOutput) -> bool {
    for item in items {
        if out.at_limit() {
            return true;
        }
        let stop = match item {
            Item::Lines(lines) => out.send_lines(lines),
            Item::Record(r) => {
                out.push(r);
                false
            }
            Item::Rejected {
                line,
                raw,
                error_type,
                reason,
            } => out.reject(line, &raw, error_type, &reason),
        };
        if stop {
            return true;
        }
    }
    false
}

/// How many threads parse a regular file: `given` (`--csv-threads`,
/// `--jsonl-threads`); otherwise, when lines are written for a JSON-lines
/// file (one thread cuts, these encode, the sink writes), as many as the
/// cores this process may use (its CPU affinity and cgroup quota count);
/// otherwise 1 (the sink, not parsing, is what a run waits on).
pub(super) fn parse_threads(given: Option<usize>, lines: bool) -> usize {
    match (given, lines) {
        (Some(n), _) => n,
        (None, true) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        (None, false) => 1,
    }
}
