//! The CSV source: RFC 4180 input (quoted fields, embedded delimiters, quotes
//! and newlines, CRLF, a UTF-8 BOM) from a file or standard input. Rows are
//! read into one reused `ByteRecord`, in chunks; counters and the fetch
//! histogram are updated once per chunk. A row with the wrong number of fields
//! or invalid UTF-8 is rejected with its line number and exact raw text.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use crate::channel::RecordSender;
use crate::config::{CsvConfig, InputPath};
use crate::context::Context;
use crate::error::{ErrorType, PipelineError};
use crate::record::{Record, Schema, Value};
use crate::shutdown::Shutdown;

use super::Source;

/// Rows read between two sends, counter updates and fetch observations.
const CHUNK_ROWS: usize = 1024;

/// With live input, when fewer than this many bytes are buffered, check whether
/// the next read would block before reading on.
const LIVE_PEEK_BYTES: u64 = 4096;

/// Keep at least this many already-parsed bytes before discarding them.
const RETAIN_SLACK: u64 = 256 * 1024;

/// Wraps the input and keeps the bytes of the rows not yet finished with, so
/// a rejected row can be written to the dead-letter file exactly as it was.
struct Retain<R> {
    inner: R,
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// For a live pipe (standard input): the stop signal. A read then waits
    /// in short polls, and once the run is stopped, a pipe with nothing more
    /// to say at a line end counts as ended, so Ctrl+C never waits on a
    /// quiet writer.
    stop: Option<Shutdown>,
    /// The last byte handed on, to know whether input stopped at a line end.
    last: Option<u8>,
}

impl<R: Read> Read for Retain<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(stop) = &self.stop {
            while !stdin_ready_within(200) {
                if stop.is_requested() && matches!(self.last, None | Some(b'\n')) {
                    return Ok(0);
                }
            }
        }
        let n = self.inner.read(out)?;
        self.buf.extend_from_slice(&out[..n]);
        if n > 0 {
            self.last = Some(out[n - 1]);
        }
        Ok(n)
    }
}

impl<R> Retain<R> {
    /// The bytes between two stream offsets (as far as they are still kept).
    fn slice(&self, start: u64, end: u64) -> &[u8] {
        let s = start.saturating_sub(self.base).min(self.buf.len() as u64) as usize;
        let e = end.saturating_sub(self.base).min(self.buf.len() as u64) as usize;
        &self.buf[s..e.max(s)]
    }

    /// Stream offset just past the last byte handed to the CSV parser.
    fn handed(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Lets go of bytes before `offset` (in large steps, so it stays cheap).
    fn forget_before(&mut self, offset: u64) {
        let k = offset.saturating_sub(self.base).min(self.buf.len() as u64);
        if k >= RETAIN_SLACK {
            self.buf.drain(..k as usize);
            self.base += k;
        }
    }
}

type Input = Retain<Box<dyn Read + Send>>;

/// An opened CSV input.
pub struct CsvSource {
    reader: csv::Reader<Input>,
    schema: Option<Arc<Schema>>,
    infer_types: bool,
    limit: Option<u64>,
    size: Option<u64>,
    name: String,
    /// Standard input may be a pipe fed slowly (`tail -f | pipeline-cli`).
    live: bool,
}

/// True when reading standard input now would not block. Asked only when
/// the parser has (nearly) nothing buffered, so a slow pipe never holds
/// rows that were already read back from the sinks.
fn stdin_ready() -> bool {
    stdin_ready_within(0)
}

/// True when standard input becomes readable (data, end or error) within
/// `ms` milliseconds.
fn stdin_ready_within(ms: i32) -> bool {
    let mut fds = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut fds, 1, ms) != 0 }
}

fn display_name(input: &InputPath) -> String {
    match input {
        InputPath::Stdin => "standard input".into(),
        InputPath::File(p) => p.display().to_string(),
    }
}

/// Column names from a header row: UTF-8 checked, blanks named `column_N`,
/// repeats made unique with a `_2`, `_3` … suffix (JSON keys must be unique).
fn header_names(header: &csv::ByteRecord, source: &str) -> Result<Vec<String>, PipelineError> {
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    for (i, field) in header.iter().enumerate() {
        let name = std::str::from_utf8(field).map_err(|_| {
            PipelineError::Config(format!(
                "the header of {source} is not valid UTF-8 (column {})",
                i + 1
            ))
        })?;
        let name = name.trim();
        let mut name = if name.is_empty() {
            format!("column_{}", i + 1)
        } else {
            name.to_string()
        };
        if names.contains(&name) {
            let base = name.clone();
            let mut n = 2;
            while names.contains(&format!("{base}_{n}")) {
                n += 1;
            }
            name = format!("{base}_{n}");
            tracing::warn!("{source}: column '{base}' appears more than once; renamed to '{name}'");
        }
        names.push(name);
    }
    Ok(names)
}

impl CsvSource {
    /// Opens the input and reads the header. A missing file or a bad header
    /// is a configuration error (nothing is read).
    pub fn open(config: &CsvConfig, limit: Option<u64>) -> Result<CsvSource, PipelineError> {
        let name = display_name(&config.input);
        let (inner, size): (Box<dyn Read + Send>, Option<u64>) = match &config.input {
            InputPath::Stdin => (Box::new(io::stdin()), None),
            InputPath::File(path) => {
                let open_err = |source| PipelineError::OpenInput {
                    what: "--csv-file",
                    path: path.clone(),
                    source,
                };
                let file = File::open(path).map_err(open_err)?;
                let meta = file.metadata().map_err(open_err)?;
                if meta.is_dir() {
                    return Err(open_err(io::Error::other("it is a directory")));
                }
                (Box::new(file), Some(meta.len()))
            }
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(config.delimiter)
            .has_headers(config.has_header)
            .flexible(true)
            .buffer_capacity(128 * 1024)
            .from_reader(Retain {
                inner,
                buf: Vec::new(),
                base: 0,
                stop: None,
                last: None,
            });
        let schema = if config.has_header {
            let header = reader.byte_headers().map_err(|e| {
                PipelineError::Config(format!("cannot read the header of {name}: {e}"))
            })?;
            Some(Arc::new(Schema::new(header_names(header, &name)?)))
        } else {
            None
        };
        Ok(CsvSource {
            reader,
            schema,
            infer_types: config.infer_types,
            limit,
            size,
            name,
            live: config.input == InputPath::Stdin,
        })
    }

    /// Turns a parsed row into a record, or says why it cannot be one.
    fn convert(&mut self, row: &csv::ByteRecord, line: u64) -> Result<Record, (ErrorType, String)> {
        let schema = match &self.schema {
            Some(s) => s.clone(),
            None => {
                let names = (1..=row.len()).map(|i| format!("column_{i}")).collect();
                let s = Arc::new(Schema::new(names));
                self.schema = Some(s.clone());
                s
            }
        };
        if row.len() != schema.len() {
            return Err((
                ErrorType::Parse,
                format!("expected {} fields, found {}", schema.len(), row.len()),
            ));
        }
        // One UTF-8 check for the whole row; fields split at ASCII
        // delimiters, so each field's range is a valid slice of it.
        let all = match std::str::from_utf8(row.as_slice()) {
            Ok(all) => all,
            Err(e) => {
                let bad = e.valid_up_to();
                let field = (0..row.len())
                    .find(|&i| row.range(i).is_some_and(|r| r.contains(&bad)))
                    .unwrap_or(0);
                let start = row.range(field).map_or(0, |r| r.start);
                return Err((
                    ErrorType::Parse,
                    format!(
                        "invalid UTF-8 in field {} ({}) at byte {}",
                        field + 1,
                        schema.names()[field],
                        bad - start
                    ),
                ));
            }
        };
        let mut values = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let range = row.range(i).expect("field index in range");
            // The row is valid as a whole, but a field may still split a
            // character in two (the bytes of the delimiter are not in `all`).
            if !all.is_char_boundary(range.start) || !all.is_char_boundary(range.end) {
                return Err((
                    ErrorType::Parse,
                    format!(
                        "invalid UTF-8 in field {} ({}): a character is cut by the delimiter",
                        i + 1,
                        schema.names()[i]
                    ),
                ));
            }
            let text = all[range].to_owned();
            values.push(if self.infer_types {
                Value::infer(text)
            } else {
                Value::Str(text)
            });
        }
        Ok(Record {
            schema,
            values,
            position: line,
        })
    }
}

impl Source for CsvSource {
    fn size_hint(&self) -> Option<u64> {
        self.size
    }

    fn fields(&self) -> Option<Vec<String>> {
        self.schema.as_ref().map(|s| s.names().to_vec())
    }

    fn run(&mut self, out: &RecordSender, ctx: &Context) -> Result<(), PipelineError> {
        let _active = ctx.metrics.worker_active(crate::error::Stage::Source);
        if self.live {
            self.reader.get_mut().stop = Some(ctx.shutdown.clone());
        }
        let mut row = csv::ByteRecord::new();
        let mut chunk: Vec<Record> = Vec::with_capacity(CHUNK_ROWS);
        let mut rejected: Vec<(u64, Vec<u8>, ErrorType, String)> = Vec::new();
        let mut total_rows: u64 = 0;
        // The header was read from the source too: count from the first byte.
        let mut last_byte = 0;
        let mut done = false;
        while !done && !ctx.should_stop_reading() {
            let started = Instant::now();
            let mut rows = 0u64;
            while rows < CHUNK_ROWS as u64 {
                if self.limit.is_some_and(|l| total_rows + rows >= l) {
                    done = true;
                    break;
                }
                match self.reader.read_byte_record(&mut row) {
                    Ok(false) => {
                        done = true;
                        break;
                    }
                    Ok(true) => {
                        rows += 1;
                        let pos = row.position().cloned().unwrap_or_else(csv::Position::new);
                        match self.convert(&row, pos.line()) {
                            Ok(r) => chunk.push(r),
                            Err((et, reason)) => {
                                let end = self.reader.position().byte();
                                let raw = self.reader.get_ref().slice(pos.byte(), end);
                                let raw = trim_line_end(raw).to_vec();
                                rejected.push((pos.line(), raw, et, reason));
                            }
                        }
                        if self.live
                            && self.reader.get_ref().handed() - self.reader.position().byte()
                                < LIVE_PEEK_BYTES
                            && !stdin_ready()
                        {
                            // The next row would wait for the writer: hand
                            // over what was read so far first.
                            break;
                        }
                    }
                    Err(e) => {
                        // csv reports I/O errors here; parse problems are
                        // handled per row above because the reader is flexible.
                        // What this chunk already read is still accounted for.
                        ctx.metrics.records_read(rows);
                        for (line, raw, et, reason) in rejected.drain(..) {
                            ctx.reject_row(line, &raw, et, &reason);
                        }
                        out.send_all(&mut chunk, ctx);
                        return Err(PipelineError::Source(format!("reading {}: {e}", self.name)));
                    }
                }
            }
            let byte = self.reader.position().byte();
            ctx.metrics.records_read(rows);
            ctx.metrics.source_bytes(byte - last_byte);
            ctx.metrics.fetch_observed(started.elapsed());
            last_byte = byte;
            total_rows += rows;
            self.reader.get_mut().forget_before(byte);
            for (line, raw, et, reason) in rejected.drain(..) {
                ctx.reject_row(line, &raw, et, &reason);
            }
            out.send_all(&mut chunk, ctx);
            ctx.progress(byte, total_rows);
        }
        Ok(())
    }
}

/// A row's bytes without the line terminators around it (with CRLF input the
/// reader's record start can sit on the previous row's `\n`).
fn trim_line_end(raw: &[u8]) -> &[u8] {
    let is_eol = |b: &u8| *b == b'\n' || *b == b'\r';
    let start = raw.iter().take_while(|b| is_eol(b)).count();
    let end = raw.len() - raw[start..].iter().rev().take_while(|b| is_eol(b)).count();
    &raw[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(header: &[&str]) -> Vec<String> {
        header_names(&csv::ByteRecord::from(header.to_vec()), "t").unwrap()
    }

    #[test]
    fn blank_and_repeated_header_names_become_unique() {
        assert_eq!(
            names(&["a", "", "a", " b ", "a"]),
            vec!["a", "column_2", "a_2", "b", "a_3"]
        );
    }

    #[test]
    fn a_character_cut_by_the_delimiter_is_a_parse_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.csv");
        std::fs::write(&path, b"a,b\n\xc3,\xa9\nok,fine\n").unwrap();
        let cfg = CsvConfig {
            input: InputPath::File(path),
            delimiter: b',',
            has_header: true,
            infer_types: false,
            max_field_bytes: crate::retry::parse_size(crate::config::DEFAULT_CSV_MAX_FIELD_BYTES)
                .unwrap(),
            max_field_lines: crate::config::DEFAULT_CSV_MAX_FIELD_LINES,
        };
        let mut src = CsvSource::open(&cfg, None).unwrap();
        let mut row = csv::ByteRecord::new();
        assert!(src.reader.read_byte_record(&mut row).unwrap());
        let err = src.convert(&row, 2).unwrap_err();
        assert!(err.1.contains("invalid UTF-8 in field 1"), "{}", err.1);
        assert!(src.reader.read_byte_record(&mut row).unwrap());
        assert!(src.convert(&row, 3).is_ok());
    }

    #[test]
    fn retain_keeps_unfinished_bytes() {
        let mut r = Retain {
            inner: &b"0123456789"[..],
            buf: Vec::new(),
            base: 0,
            stop: None,
            last: None,
        };
        let mut out = [0u8; 4];
        assert_eq!(r.read(&mut out).unwrap(), 4);
        assert_eq!(r.read(&mut out).unwrap(), 4);
        assert_eq!(r.slice(2, 6), b"2345");
        assert_eq!(r.slice(6, 99), b"67");
        r.forget_before(3); // below the slack: nothing is dropped
        assert_eq!(r.slice(0, 2), b"01");
    }
}
