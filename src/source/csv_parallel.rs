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
//!
//! A compressed file is cut the same way as its decoder gives its bytes
//! ([`Stream`]): the header was read from the stream, and the rows after it
//! come from where that reader stood.
//!
//! The threads, the order and the limits are [`super::parallel`]'s; this
//! module brings the CSV cutter and parser.

use std::path::Path;
use std::sync::Arc;

use crate::error::{ErrorType, PipelineError};
use crate::record::{Record, Schema};

use super::csv_lines::LineBatches;
use super::csv_reader::{Next, Row, RowReader};
use super::csv_row::{to_record, trim_line_end};
use super::parallel::{Chunk, Cut, Item, Parse, Parsed, Reading, Stream, CHUNK_BYTES};
use super::SourceOutput;

pub(super) use super::parallel::Ended;

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

impl Parse for Plan<'_> {
    fn parse(&self, bytes: Vec<u8>, line: u64, spare: Vec<Record>) -> Parsed {
        parse(self, bytes, line, spare)
    }

    fn reuses_records(&self) -> bool {
        true
    }
}

fn parse(plan: &Plan, bytes: Vec<u8>, line: u64, mut spare: Vec<Record>) -> Parsed {
    let mut reader = RowReader::from_bytes(
        bytes,
        plan.delimiter,
        plan.max_field_bytes,
        plan.max_field_lines,
        line,
    );
    let mut row = Row::default();
    // Records one item each; lines a few items of a batch each.
    let mut items = Vec::with_capacity(match plan.lines {
        Some(_) => 4,
        None => CHUNK_BYTES / 128,
    });
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
    Parsed {
        items,
        open: reader.ended_open(),
        error,
    }
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
    file: Box<dyn std::io::Read + Send>,
    /// About how many bytes a chunk holds.
    chunk: usize,
    /// The most a chunk grows to looking for a row end.
    max: usize,
    /// Bytes read past the last cut.
    carry: Vec<u8>,
    eof: bool,
}

impl Cut for Cutter {
    /// The next chunk; empty at the end of the file. `Ok(None)`: no row end
    /// within [`MAX_CHUNK_BYTES`], or a failed read.
    fn next(&mut self) -> std::io::Result<Option<Chunk>> {
        let mut want = self.chunk;
        loop {
            // A read that fails (a compressed stream corrupt or cut short)
            // ends the chunks: one thread reads on from the last cut and
            // meets the same failure after the same rows (where the bytes
            // held have a stray quote, only that reader can tell).
            if super::parallel::fill(&mut self.file, &mut self.carry, &mut self.eof, want).is_err()
            {
                return Ok(None);
            }
            if self.eof {
                return Ok(Some(Chunk::whole(std::mem::take(&mut self.carry))));
            }
            if let Some(end) = last_row_end(&self.carry) {
                let rest = self.carry[end..].to_vec();
                let mut chunk = std::mem::replace(&mut self.carry, rest);
                chunk.truncate(end);
                return Ok(Some(Chunk::whole(chunk)));
            }
            if want >= self.max {
                return Ok(None);
            }
            want *= 2;
        }
    }
}

/// Reads the file from `plan.start` on `plan.threads` parse threads, or
/// `stream` (which stands at `plan.start`) when one is given.
pub(super) fn run(
    plan: &Plan,
    stream: Option<Stream>,
    out: &mut SourceOutput,
) -> Result<Ended, PipelineError> {
    let reading = Reading {
        path: plan.path,
        name: plan.name,
        kind: "CSV",
        start: plan.start,
        line: plan.line,
        threads: plan.threads,
    };
    let max = usize::try_from(plan.max_field_bytes)
        .unwrap_or(usize::MAX)
        .saturating_mul(2);
    let (carry, file): (Vec<u8>, Box<dyn std::io::Read + Send>) = match stream {
        Some(s) => (s.ahead, s.rest),
        None => (Vec::new(), Box::new(reading.open()?)),
    };
    let mut cutter = Cutter {
        file,
        chunk: super::parallel::chunk_bytes(plan.threads, CHUNK_BYTES),
        max: max.clamp(CHUNK_BYTES, MAX_CHUNK_BYTES),
        carry,
        eof: false,
    };
    super::parallel::run(&reading, &mut cutter, plan, out)
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
