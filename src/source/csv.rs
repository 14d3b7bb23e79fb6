//! The CSV source: RFC 4180 input (quoted fields, embedded delimiters, quotes
//! and newlines, CRLF, a UTF-8 BOM) from a file, a named pipe or standard
//! input, read by [`RowReader`](super::csv_reader::RowReader). Rows are sent
//! in chunks; counters and the fetch histogram are updated once per chunk. A
//! row with the wrong number of fields, invalid UTF-8 or an unclosed quote is
//! rejected with its line number and exact raw text, at once, so
//! `--max-errors` stops the read at exactly its count.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;

use crate::config::{CsvConfig, InputPath};
use crate::error::{ErrorType, PipelineError};
use crate::record::{Record, Schema};
use crate::shutdown::Shutdown;

use super::csv_reader::{Next, Row, RowReader};
use super::csv_row::{to_record, trim_line_end};
use super::input::{display_name, Compression};
use super::{Source, SourceOutput};

/// Rows read between two sends, counter updates and fetch observations.
const CHUNK_ROWS: usize = 1024;

/// With live input, when fewer than this many bytes are buffered, check whether
/// the next read would block before reading on.
const LIVE_PEEK_BYTES: usize = 4096;

/// An opened CSV input.
pub struct CsvSource {
    reader: RowReader,
    schema: Option<Arc<Schema>>,
    infer_types: bool,
    size: Option<u64>,
    name: String,
    /// A regular file, which several threads can read in chunks.
    path: Option<std::path::PathBuf>,
    delimiter: u8,
    max_field_bytes: u64,
    max_field_lines: u64,
    /// `--csv-threads`, when given.
    threads: Option<usize>,
    /// The input is gzip or zstd, read through a decoder.
    compression: Option<Compression>,
    /// The stop signal, for opening a compressed file again.
    stop: Shutdown,
    /// The file's name, when it is one of several.
    origin: Option<Arc<str>>,
    /// The sink takes JSON lines: batches of this many records are sent
    /// as lines (from a regular file with a header).
    lines: Option<usize>,
    /// The input has no header at all: it reads as nothing.
    empty: bool,
    /// The byte of the input the reader's offset 0 is (it was opened
    /// again further on: a resumed run, a quote the chunks could not follow).
    base_offset: u64,
    /// Bytes a resumed run goes on after, not counted read yet.
    uncounted: u64,
}

/// True for a row that is no header at all: none, or one field of
/// whitespace (a blank line).
fn blank(row: &Row) -> bool {
    row.len() == 0 || (row.len() == 1 && row.get(0).iter().all(u8::is_ascii_whitespace))
}

/// True (with a warning) when nothing but line ends is left in the input:
/// it is empty, with no header and no records.
fn at_end(reader: &mut RowReader, name: &str) -> Result<bool, PipelineError> {
    let end = reader
        .at_end()
        .map_err(|e| PipelineError::Config(format!("cannot read {name}: {e}")))?;
    if end {
        tracing::warn!("{name} is empty (no header, no records); nothing to read");
    }
    Ok(end)
}

/// Column names from a header row: UTF-8 checked, blanks named `column_N`,
/// repeats made unique with a `_2`, `_3` … suffix (JSON keys must be unique).
pub(super) fn header_names(header: &Row, source: &str) -> Result<Vec<String>, PipelineError> {
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    let mut taken: HashSet<String> = HashSet::with_capacity(header.len());
    // The next suffix to try for a repeated name.
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut renamed = 0u64;
    for i in 0..header.len() {
        let name = std::str::from_utf8(header.get(i)).map_err(|_| {
            PipelineError::Config(format!(
                "the header of {source} is not valid UTF-8 (column {}); convert the file to UTF-8 (e.g. iconv -t UTF-8)",
                i + 1
            ))
        })?;
        let name = name.trim();
        let mut name = if name.is_empty() {
            format!("column_{}", i + 1)
        } else {
            name.to_string()
        };
        if taken.contains(&name) {
            let base = name;
            let n = next.entry(base.clone()).or_insert(2);
            name = format!("{base}_{n}");
            while taken.contains(&name) {
                *n += 1;
                name = format!("{base}_{n}");
            }
            *n += 1;
            renamed += 1;
            if renamed <= 10 {
                tracing::warn!(
                    "{source}: column '{base}' appears more than once; renamed to '{name}'"
                );
            }
        }
        taken.insert(name.clone());
        names.push(name);
    }
    if renamed > 10 {
        tracing::warn!("{source}: {renamed} repeated column names renamed in all");
    }
    Ok(names)
}

/// Reads the header row: its fields, or none when the input holds no header
/// at all (then true: it is empty) or a stop came before the whole header.
fn read_header(
    reader: &mut RowReader,
    name: &str,
) -> Result<(Option<Arc<Schema>>, bool), PipelineError> {
    let mut header = Row::default();
    match reader.read_row(&mut header) {
        // Stopped before the whole header came: no fields known, nothing is
        // read.
        Ok(Next::End | Next::Bad { .. }) if reader.stopped() => Ok((None, false)),
        // No header at all (0 bytes, compressed nothing, a byte-order mark
        // or line ends only): nothing to read, and no fields to check a sink
        // against.
        Ok(Next::Row | Next::End) if blank(&header) && at_end(reader, name)? => Ok((None, true)),
        Ok(Next::Row | Next::End) => Ok((
            Some(Arc::new(Schema::new(header_names(&header, name)?))),
            false,
        )),
        Ok(Next::Bad { reason, .. }) => Err(PipelineError::Config(format!(
            "cannot read the header of {name}: {reason}"
        ))),
        Err(e) => Err(PipelineError::Config(format!(
            "cannot read the header of {name}: {e}"
        ))),
    }
}

impl CsvSource {
    /// Opens the input and reads the header. A missing file or a bad header
    /// is a configuration error (nothing is read). A pipe that has not sent
    /// its header when `stop` is raised reads nothing.
    pub fn open(config: &CsvConfig, stop: &Shutdown) -> Result<CsvSource, PipelineError> {
        let name = display_name(&config.input);
        let opened = super::input::open(&config.input, "--csv-file", stop)?;
        let (size, live, compression) = (opened.size, opened.live, opened.compression);
        let mut reader = RowReader::new(
            opened.reader,
            config.delimiter,
            config.max_field_bytes,
            config.max_field_lines,
        );
        reader.prefill(opened.head);
        // A pipe (standard input, a named pipe) may be fed slowly (`tail -f |
        // pipeline-cli`): rows are handed on as soon as the writer pauses,
        // and a stop is seen while it does.
        let live = match live {
            Some(l) => {
                reader.set_live(l);
                true
            }
            None => false,
        };
        let (schema, empty) = if config.has_header {
            read_header(&mut reader, &name)?
        } else {
            (None, at_end(&mut reader, &name)?)
        };
        tracing::debug!(
            "CSV {name}: {} bytes, delimiter {:?}, {} header fields ({}), values {}, a quoted field may span {} lines / {} bytes",
            size.map_or("unknown".to_string(), |s| s.to_string()),
            config.delimiter as char,
            schema.as_ref().map_or(0, |s| s.names().len()),
            schema.as_ref().map_or(String::new(), |s| s.names().join(", ")),
            if config.infer_types { "typed" } else { "as strings" },
            config.max_field_lines,
            config.max_field_bytes
        );
        // A regular file is read in chunks on several threads, a
        // compressed one as its decoder gives it (its rows read once, in
        // order); a pipe is read as it comes, by one thread.
        let path = match (&config.input, live) {
            (InputPath::File(p), false) => Some(p.clone()),
            _ => None,
        };
        Ok(CsvSource {
            reader,
            schema,
            infer_types: config.infer_types,
            size,
            name,
            path,
            delimiter: config.delimiter,
            max_field_bytes: config.max_field_bytes,
            max_field_lines: config.max_field_lines,
            threads: config.threads,
            lines: None,
            compression,
            stop: stop.clone(),
            origin: None,
            empty,
            base_offset: 0,
            uncounted: 0,
        })
    }

    /// Turns a parsed row into a record, or says why it cannot be one.
    /// `reuse`: a record the sinks are done with, whose strings are filled
    /// again instead of allocated.
    fn convert(
        &mut self,
        row: &mut Row,
        reuse: Option<Record>,
    ) -> Result<Record, (ErrorType, String)> {
        let schema = match &self.schema {
            Some(s) => s.clone(),
            None => {
                let names = (1..=row.len()).map(|i| format!("column_{i}")).collect();
                let s = Arc::new(Schema::with_origin(names, self.origin.clone()));
                self.schema = Some(s.clone());
                s
            }
        };
        to_record(&schema, self.infer_types, row, reuse)
    }
}

impl CsvSource {
    /// Reads a regular file with a header on several threads. `Ok(false)`:
    /// all read; `Ok(true)`: read on with one thread from where the reader
    /// now stands (all of it when one thread, a pipe or no header leaves it
    /// to the single-threaded reader).
    fn read_in_parallel(&mut self, out: &mut SourceOutput) -> Result<bool, PipelineError> {
        let (Some(path), Some(schema)) = (&self.path, &self.schema) else {
            return Ok(true);
        };
        // Lines are written by the parse threads, even by one: the file is
        // then read, encoded and written by three threads.
        let threads = super::parallel::parse_threads(self.threads, self.lines.is_some());
        if threads < 2 && self.lines.is_none() {
            return Ok(true);
        }
        tracing::debug!(
            "CSV {}: {threads} parse threads ({})",
            self.name,
            if self.threads.is_some() {
                "--csv-threads"
            } else {
                "the cores this process may use"
            }
        );
        // The chunks count the bytes before their start.
        self.uncounted = 0;
        // A compressed file's rows come from its decoder, from where the
        // header left it.
        let stream = self.compression.map(|_| {
            let (ahead, rest) = self.reader.take_input();
            super::parallel::Stream { ahead, rest }
        });
        let plan = super::csv_parallel::Plan {
            path,
            name: &self.name,
            start: self.base_offset + self.reader.offset(),
            line: self.reader.line(),
            delimiter: self.delimiter,
            max_field_bytes: self.max_field_bytes,
            max_field_lines: self.max_field_lines,
            schema: schema.clone(),
            infer: self.infer_types,
            threads,
            lines: self.lines,
        };
        match super::csv_parallel::run(&plan, stream, out)? {
            super::csv_parallel::Ended::Done => Ok(false),
            super::csv_parallel::Ended::From { offset, line } => {
                tracing::debug!(
                    "CSV {}: a quote the chunks cannot follow near line {line}; reading on with one thread",
                    self.name
                );
                let input = self.read_on_from(path, offset)?;
                self.reader = RowReader::starting_at(
                    input,
                    self.delimiter,
                    self.max_field_bytes,
                    self.max_field_lines,
                    line,
                );
                self.base_offset = offset;
                Ok(true)
            }
        }
    }
}

impl CsvSource {
    /// `--checkpoint`, resumed: the file is opened again where the rows
    /// done end (a compressed one decoded up to there), the rows before
    /// never read again.
    fn resume_at(&mut self, out: &mut SourceOutput) -> Result<(), PipelineError> {
        let (Some((ordinal, at)), Some(path)) = (out.resume_point(), self.path.clone()) else {
            return Ok(());
        };
        let (Some(offset), Some(line)) = (at["offset"].as_u64(), at["line"].as_u64()) else {
            return Ok(());
        };
        let input = self.read_on_from(&path, offset)?;
        self.reader = RowReader::starting_at(
            input,
            self.delimiter,
            self.max_field_bytes,
            self.max_field_lines,
            line,
        );
        self.base_offset = offset;
        self.uncounted = offset;
        out.resume_stream_from(ordinal);
        tracing::debug!(
            "CSV {}: resumed at byte {offset} (line {line}, row {ordinal})",
            self.name
        );
        Ok(())
    }

    /// The input from byte `offset` on: the file opened again and sought,
    /// or, compressed, decoded again from its start up to there.
    fn read_on_from(
        &self,
        path: &std::path::Path,
        offset: u64,
    ) -> Result<Box<dyn std::io::Read + Send>, PipelineError> {
        let read_err = |e: std::io::Error| {
            PipelineError::Source(ErrorType::Io, format!("reading {}: {e}", self.name))
        };
        if self.compression.is_some() {
            let input = InputPath::File(path.to_path_buf());
            let mut opened = super::input::open(&input, "--csv-file", &self.stop)?;
            // Decoded again in steps, so that Ctrl+C is heard on a long way.
            let mut skipped = 0;
            while skipped < offset {
                if self.stop.is_requested() {
                    return Ok(Box::new(std::io::empty()));
                }
                let step = (offset - skipped).min(16 << 20);
                let n = std::io::copy(
                    &mut std::io::Read::take(&mut opened.reader, step),
                    &mut std::io::sink(),
                )
                .map_err(read_err)?;
                skipped += n;
                if n < step {
                    break;
                }
            }
            if skipped < offset {
                return Err(read_err(std::io::Error::other(
                    "the file is shorter than when it was first read",
                )));
            }
            return Ok(opened.reader);
        }
        let mut file = File::open(path).map_err(read_err)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset)).map_err(read_err)?;
        Ok(Box::new(file))
    }
}

impl Source for CsvSource {
    fn size_hint(&self) -> Option<u64> {
        self.size
    }

    fn fields(&self) -> Option<Vec<String>> {
        self.schema.as_ref().map(|s| s.names().to_vec())
    }

    fn reuses_records(&self) -> bool {
        true
    }

    fn empty(&self) -> bool {
        self.empty
    }

    fn write_json_lines(&mut self, batch: usize) -> bool {
        // Only the chunked reading of a regular file with a header writes
        // lines; a pipe, or a file without a header, sends records.
        let chunked = self.path.is_some() && self.schema.is_some();
        if chunked {
            self.lines = Some(batch.max(1));
        }
        chunked
    }

    fn describe(&self) -> Vec<String> {
        let size = match (self.size, self.compression) {
            (_, Some(kind)) => format!(
                "{}-compressed (inflated by a thread of its own, rows cut from what it gives)",
                kind.name()
            ),
            (Some(n), None) => format!("{n} bytes"),
            (None, None) => "a pipe (size unknown)".into(),
        };
        let fields = self
            .schema
            .as_ref()
            .map(|s| s.names().to_vec())
            .unwrap_or_default();
        if self.empty {
            return vec![format!(
                "source: CSV {}, {size}: empty (no header, no records), nothing to read",
                self.name
            )];
        }
        vec![
            format!("source: CSV {}, {size}", self.name),
            format!(
                "source: {} fields from the header: {}",
                fields.len(),
                fields.join(", ")
            ),
            format!(
                "source: values {}",
                if self.infer_types {
                    "typed where they look like numbers or booleans (--csv-infer-types)"
                } else {
                    "as strings"
                }
            ),
        ]
    }

    fn set_origin(&mut self, origin: Arc<str>) {
        self.origin = Some(origin.clone());
        if let Some(s) = &self.schema {
            self.schema = Some(Arc::new(Schema::with_origin(
                s.names().to_vec(),
                Some(origin),
            )));
        }
    }

    fn run(&mut self, out: &mut SourceOutput) -> Result<(), PipelineError> {
        if self.empty {
            return Ok(());
        }
        let _active = out.ctx().metrics.worker_active(crate::error::Stage::Source);
        self.resume_at(out)?;
        // What is left after the chunks (a quote they could not follow) is
        // read here, its byte offsets counted from there.
        if !self.read_in_parallel(out)? {
            return Ok(());
        }
        let mut row = Row::default();
        // The header was read from the source too: count from the first byte
        // (a resumed run: the bytes it goes on after too).
        out.count_bytes(std::mem::take(&mut self.uncounted));
        let mut last_byte = 0;
        let mut done = false;
        while !done && !out.should_stop() {
            out.start_chunk();
            while out.rows() < CHUNK_ROWS as u64 {
                if out.at_limit() {
                    done = true;
                    break;
                }
                match self.read_one(&mut row, out)? {
                    Some(stop) => done = stop,
                    None => {
                        done = true;
                        break;
                    }
                }
                // The next row would wait for the writer: hand over what
                // was read so far first.
                if done || self.reader.would_block(LIVE_PEEK_BYTES) {
                    break;
                }
            }
            let byte = self.reader.offset();
            // --checkpoint: a resumed run opens the file again here.
            let (at, line) = (self.base_offset + byte, self.reader.line());
            out.set_resume_state(|| serde_json::json!({"offset": at, "line": line}));
            out.end_chunk(byte - last_byte);
            last_byte = byte;
        }
        Ok(())
    }
}

impl CsvSource {
    /// Reads one row and hands it to `out` as a record or a rejected row.
    /// `None` at the end of the input; `Some(true)` when a rejected row
    /// spent the error budget.
    fn read_one(
        &mut self,
        row: &mut Row,
        out: &mut SourceOutput,
    ) -> Result<Option<bool>, PipelineError> {
        let start = self.reader.offset();
        let next = self.reader.read_row(row).map_err(|e| {
            // What this chunk already read is still accounted for.
            out.end_before_error();
            PipelineError::Source(ErrorType::Io, format!("reading {}: {e}", self.name))
        })?;
        let (line, raw, et, reason) = match next {
            Next::End => return Ok(None),
            Next::Bad { line, raw, reason } => (line, raw, ErrorType::Parse, reason),
            Next::Row => match self.convert(row, out.spare_record()) {
                Ok(r) => {
                    out.push(r);
                    self.reader.release();
                    return Ok(Some(false));
                }
                Err((et, reason)) => {
                    let raw = self.reader.raw(start, self.reader.offset());
                    (row.line, trim_line_end(raw).to_vec(), et, reason)
                }
            },
        };
        Ok(Some(out.reject(line, &raw, et, &reason)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(header: &[&str]) -> Vec<String> {
        let text = header.join(",") + "\n";
        let mut r = RowReader::new(Box::new(std::io::Cursor::new(text)), b',', 1 << 20, 100);
        let mut row = Row::default();
        assert_eq!(r.read_row(&mut row).unwrap(), Next::Row);
        header_names(&row, "t").unwrap()
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
            list: None,
            delimiter: b',',
            has_header: true,
            infer_types: false,
            max_field_bytes: crate::retry::parse_size(crate::config::DEFAULT_CSV_MAX_FIELD_BYTES)
                .unwrap(),
            max_field_lines: crate::config::DEFAULT_CSV_MAX_FIELD_LINES,
            threads: None,
            once: None,
        };
        let mut src = CsvSource::open(&cfg, &Shutdown::new()).unwrap();
        let mut row = Row::default();
        assert_eq!(src.reader.read_row(&mut row).unwrap(), Next::Row);
        let err = src.convert(&mut row, None).unwrap_err();
        assert!(err.1.contains("invalid UTF-8 in field 1"), "{}", err.1);
        assert_eq!(src.reader.read_row(&mut row).unwrap(), Next::Row);
        assert!(src.convert(&mut row, None).is_ok());
    }

    #[test]
    fn many_columns_get_unique_names_in_linear_time() {
        let header: Vec<String> = (0..200_000).map(|i| format!("c{}", i % 1000)).collect();
        let refs: Vec<&str> = header.iter().map(String::as_str).collect();
        let got = names(&refs);
        assert_eq!(got.len(), 200_000);
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), 200_000);
        assert_eq!(
            (got[0].as_str(), got[1000].as_str(), got[2000].as_str()),
            ("c0", "c0_2", "c0_3")
        );
    }
}
