//! Reading a CSV file on several threads. The source thread cuts the file
//! into chunks of about [`CHUNK_BYTES`] at row ends, found by following the
//! quotes from a row start (a newline outside quotes ends a row); parse
//! threads turn each chunk into records with the same reader and conversion
//! as the single-threaded path; the source thread sends the results on in
//! file order, with the rejected rows, counts, `--limit` and `--max-errors`
//! applied row by row exactly as there.
//!
//! A cut is only a guess when the file has a stray quote (`5" screen`): the
//! guess is checked, because a chunk cut inside a quoted field ends with that
//! field still open. Chunk k starts where chunk k-1 ended cleanly, so every
//! accepted chunk was parsed from a true row start and gives exactly what the
//! single-threaded reader gives. At the first chunk that ends open, the rest
//! of the file is read by the single-threaded reader from that chunk's start.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::error::{ErrorType, PipelineError};
use crate::record::{Lines, Record, Schema};

use super::csv_lines::LineBatches;
use super::csv_reader::{Next, Row, RowReader};
use super::csv_row::{to_record, trim_line_end};
use super::SourceOutput;

/// About how many bytes one chunk holds.
pub(super) const CHUNK_BYTES: usize = 256 << 10;

/// A chunk is not grown past this looking for a row end (a quoted field
/// that long), nor past twice `--csv-max-field-bytes`: the single-threaded
/// reader takes over there (and gives up on a field over the limit
/// without holding it).
const MAX_CHUNK_BYTES: usize = 16 << 20;

/// What the parallel read needs to know.
pub(super) struct Plan<'a> {
    /// The file.
    pub path: &'a Path,
    /// Its name in messages.
    pub name: &'a str,
    /// Byte offset of the first row (after the header).
    pub start: u64,
    /// Line of the first row.
    pub line: u64,
    /// Field delimiter.
    pub delimiter: u8,
    /// `--csv-max-field-bytes`.
    pub max_field_bytes: u64,
    /// `--csv-max-field-lines`.
    pub max_field_lines: u64,
    /// The header's fields.
    pub schema: Arc<Schema>,
    /// `--csv-infer-types`.
    pub infer: bool,
    /// Parse threads.
    pub threads: usize,
    /// Rows are written as JSON lines, in batches of this many.
    pub lines: Option<usize>,
}

/// How the parallel read ended.
pub(super) enum Ended {
    /// The whole file was read, or the read was stopped (signal, budget,
    /// limit).
    Done,
    /// A chunk was cut inside a quoted field: read on single-threaded from
    /// byte `offset`, line `line`.
    From { offset: u64, line: u64 },
}

/// One row of a chunk (or several written as lines), in order.
enum Item {
    Record(Record),
    Lines(Lines),
    Rejected {
        line: u64,
        raw: Vec<u8>,
        error_type: ErrorType,
        reason: String,
    },
}

/// A chunk to parse.
struct Job {
    bytes: Vec<u8>,
    line: u64,
    spare: Vec<Record>,
    reply: Sender<Parsed>,
}

/// A parsed chunk.
struct Parsed {
    items: Vec<Item>,
    /// It ended inside a quoted field: the cut before it was wrong.
    open: bool,
    error: Option<std::io::Error>,
    took: Duration,
}

fn parse(plan: &Plan, job: Job) {
    let started = Instant::now();
    let Job {
        bytes,
        line,
        mut spare,
        reply,
    } = job;
    let mut reader = RowReader::from_bytes(
        bytes,
        plan.delimiter,
        plan.max_field_bytes,
        plan.max_field_lines,
        line,
    );
    let mut row = Row::default();
    let mut items = Vec::with_capacity(CHUNK_BYTES / 128);
    let mut lines = plan
        .lines
        .map(|batch| LineBatches::new(plan.schema.clone(), plan.infer, batch));
    let mut error = None;
    loop {
        let start = reader.offset();
        // Only lines are written from a quote-free line as it lies.
        let plain = match lines {
            Some(_) => reader.next_plain(),
            None => Ok(None),
        };
        let rejected = match (&mut lines, plain) {
            // A quote-free line: straight from the chunk to its JSON.
            (Some(l), Ok(Some(plain))) => {
                l.plain(plain, plan.delimiter)
                    .err()
                    .map(|(error_type, reason)| Item::Rejected {
                        line: plain.0,
                        raw: plain.1.to_vec(),
                        error_type,
                        reason,
                    })
            }
            (_, Err(e)) => {
                error = Some(e);
                break;
            }
            _ => match reader.read_row(&mut row) {
                Ok(Next::End) => break,
                Ok(Next::Bad { line, raw, reason }) => Some(Item::Rejected {
                    line,
                    raw,
                    error_type: ErrorType::Parse,
                    reason,
                }),
                Ok(Next::Row) => {
                    let made = match &mut lines {
                        Some(l) => l.row(&row),
                        None => to_record(&plan.schema, plan.infer, &mut row, spare.pop())
                            .map(|r| items.push(Item::Record(r))),
                    };
                    made.err().map(|(error_type, reason)| Item::Rejected {
                        line: row.line,
                        raw: trim_line_end(reader.raw(start, reader.offset())).to_vec(),
                        error_type,
                        reason,
                    })
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            },
        };
        // A full batch goes, and the lines before a rejected row go first.
        if let Some(full) = lines.as_mut().and_then(|l| l.ready(rejected.is_some())) {
            items.push(Item::Lines(full));
        }
        items.extend(rejected);
    }
    if let Some(rest) = lines.as_mut().and_then(|l| l.ready(true)) {
        items.push(Item::Lines(rest));
    }
    let _ = reply.send(Parsed {
        items,
        open: reader.ended_open(),
        error,
        took: started.elapsed(),
    });
}

/// The end of the last complete row in `buf` (which starts at a row start),
/// following the quotes; `None` when no row ends in it. A newline ends a
/// row when an even number of quotes comes before it (each quote opens or
/// closes a quoted field, a doubled quote inside one does both): the quotes
/// before the last newline are counted at once (SIMD), then the newlines
/// before it are tried while the count is odd.
fn last_row_end(buf: &[u8]) -> Option<usize> {
    let mut newline = memchr::memrchr(b'\n', buf)?;
    let mut quotes = bytecount::count(&buf[..newline], b'"');
    while quotes % 2 == 1 {
        let before = memchr::memrchr(b'\n', &buf[..newline])?;
        quotes -= bytecount::count(&buf[before..newline], b'"');
        newline = before;
    }
    Some(newline + 1)
}

/// Cuts the file into chunks at row ends.
struct Cutter {
    file: File,
    /// The most a chunk grows to looking for a row end.
    max: usize,
    /// Bytes read past the last cut.
    carry: Vec<u8>,
    eof: bool,
}

impl Cutter {
    /// The next chunk; empty at the end of the file. `Ok(None)`: no row end
    /// within [`MAX_CHUNK_BYTES`].
    fn next(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut want = CHUNK_BYTES;
        loop {
            while !self.eof && self.carry.len() < want {
                let have = self.carry.len();
                self.carry.resize(want, 0);
                let n = self.file.read(&mut self.carry[have..])?;
                self.carry.truncate(have + n);
                self.eof = n == 0;
            }
            if self.eof {
                return Ok(Some(std::mem::take(&mut self.carry)));
            }
            if let Some(end) = last_row_end(&self.carry) {
                let rest = self.carry[end..].to_vec();
                let mut chunk = std::mem::replace(&mut self.carry, rest);
                chunk.truncate(end);
                return Ok(Some(chunk));
            }
            if want >= self.max {
                return Ok(None);
            }
            want *= 2;
        }
    }
}

/// Reads the file from `plan.start` on `plan.threads` parse threads.
pub(super) fn run(plan: &Plan, out: &mut SourceOutput) -> Result<Ended, PipelineError> {
    let mut file = File::open(plan.path).map_err(|e| read_err(plan, e))?;
    file.seek(SeekFrom::Start(plan.start))
        .map_err(|e| read_err(plan, e))?;
    let max = usize::try_from(plan.max_field_bytes)
        .unwrap_or(usize::MAX)
        .saturating_mul(2);
    let mut cutter = Cutter {
        file,
        max: max.clamp(CHUNK_BYTES, MAX_CHUNK_BYTES),
        carry: Vec::new(),
        eof: false,
    };
    // The header is read from the file too: counted from the first byte.
    out.count_bytes(plan.start);
    let (jobs, queue) = bounded::<Job>(plan.threads);
    std::thread::scope(|scope| {
        for i in 0..plan.threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("csv-parse-{i}"))
                .spawn_scoped(scope, move || {
                    for job in queue {
                        parse(plan, job);
                    }
                })
                .expect("spawn a parse thread");
        }
        drop(queue);
        let mut order = Order {
            pending: VecDeque::new(),
            next_offset: plan.start,
            next_line: plan.line,
            cut_failed: false,
        };
        let ended = sequence(plan, &mut cutter, &mut order, &jobs, out);
        drop(jobs);
        ended
    })
}

fn read_err(plan: &Plan, e: std::io::Error) -> PipelineError {
    PipelineError::Source(ErrorType::Io, format!("reading {}: {e}", plan.name))
}

/// A chunk handed out: where it starts, and its result to come.
struct Pending {
    offset: u64,
    line: u64,
    len: u64,
    result: Receiver<Parsed>,
}

/// The chunks handed out, in file order, and where the next one starts.
struct Order {
    pending: VecDeque<Pending>,
    next_offset: u64,
    next_line: u64,
    /// No row end was found within the largest chunk.
    cut_failed: bool,
}

impl Order {
    /// Cuts chunks and hands them to the parse threads until each thread
    /// has one and one more waits.
    fn hand_out(
        &mut self,
        plan: &Plan,
        cutter: &mut Cutter,
        jobs: &Sender<Job>,
        out: &SourceOutput,
    ) -> Result<(), PipelineError> {
        while self.pending.len() <= plan.threads && !self.cut_failed && !out.should_stop() {
            let Some(bytes) = cutter.next().map_err(|e| read_err(plan, e))? else {
                self.cut_failed = true;
                break;
            };
            if bytes.is_empty() {
                break;
            }
            let (reply, result) = bounded(1);
            let len = bytes.len() as u64;
            let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
            self.pending.push_back(Pending {
                offset: self.next_offset,
                line: self.next_line,
                len,
                result,
            });
            let spare = out.reusable().unwrap_or_default();
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
        Ok(())
    }
}

/// Hands chunks to the parse threads and sends their results on in order.
fn sequence(
    plan: &Plan,
    cutter: &mut Cutter,
    order: &mut Order,
    jobs: &Sender<Job>,
    out: &mut SourceOutput,
) -> Result<Ended, PipelineError> {
    loop {
        order.hand_out(plan, cutter, jobs, out)?;
        let Some(chunk) = order.pending.pop_front() else {
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
        let parsed = chunk
            .result
            .recv()
            .map_err(|_| PipelineError::Internal("a CSV parse thread crashed".into()))?;
        if parsed.open {
            // Cut inside a quoted field: from here on, one thread.
            return Ok(Ended::From {
                offset: chunk.offset,
                line: chunk.line,
            });
        }
        if let Some(e) = parsed.error {
            return Err(read_err(plan, e));
        }
        let stop = send_parsed(parsed.items, out);
        out.end_chunk_took(chunk.len, parsed.took);
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

#[cfg(test)]
mod tests {
    use super::last_row_end;

    #[test]
    fn row_ends_follow_the_quotes() {
        assert_eq!(last_row_end(b"a,b\nc,d\ne"), Some(8));
        assert_eq!(last_row_end(b"a,\"b\nc\"\nd"), Some(8));
        assert_eq!(last_row_end(b"a,\"b\nc"), None);
        assert_eq!(last_row_end(b"a,\"b\"\"\n\"\n"), Some(9));
    }

    /// Following the quotes one by one from the start, as a reader does.
    fn walked(buf: &[u8]) -> Option<usize> {
        let mut quoted = false;
        let mut end = None;
        for (i, &b) in buf.iter().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b'\n' if !quoted => end = Some(i + 1),
                _ => {}
            }
        }
        end
    }

    proptest::proptest! {
        /// Counting the quotes finds the row end that walking them finds,
        /// in text of quotes, newlines, commas and letters in any order.
        #[test]
        fn counting_the_quotes_finds_the_row_end_walking_finds(
            buf in proptest::collection::vec(proptest::sample::select(b"\"\n,ab\r".to_vec()), 0..600)
        ) {
            proptest::prop_assert_eq!(last_row_end(&buf), walked(&buf));
        }
    }
}
