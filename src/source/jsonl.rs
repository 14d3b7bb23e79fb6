//! The NDJSON source (`--source-type jsonl`): one JSON object per line, from
//! a file, a named pipe or standard input, gzip or zstd by content
//! ([`super::input`]). An object's top-level keys become fields, in the order
//! they come; each value keeps its JSON text ([`Value::Raw`]), so numbers
//! keep their digits and nested objects and arrays stay JSON. A line that is
//! not valid UTF-8, not valid JSON or not an object is rejected with its line
//! number and raw text, like a bad CSV row; blank lines are skipped, and so
//! is a UTF-8 byte-order mark at the start of the input.
//!
//! `--jsonl-format elasticdump` reads elasticdump's documents
//! (`{"_index","_id","_source"}`), `bulk` the `_bulk` API's action and
//! document line pairs: a record is `_id`, `_index`, then the document's
//! keys, as the Elasticsearch source gives them with `--es-meta-fields
//! _id,_index`. A line that does not fit (no `_source`, a delete or unknown
//! action, an action whose document line never comes) is rejected like a bad
//! line; a record of a pair has the document line's number. `auto`, the
//! default, picks one of the three for each input from its first line that
//! is not blank ([`super::jsonl_detect`]), and says which when it starts
//! reading it.
//!
//! A regular file (not standard input, a pipe or compressed input) is read
//! on several threads with `--jsonl-threads`, and always into a JSON-lines
//! file, in chunks cut at line ends ([`super::jsonl_parallel`]), line for
//! line as here; `_bulk` pairs are read by one thread. Each line is turned
//! into a record by [`super::jsonl_line`].

use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use crate::config::{InputPath, JsonlConfig, JsonlFormat};
use crate::error::{ErrorType, PipelineError};
use crate::record::{Lines, Schema};

use super::input::{display_name, Compression};
use super::json_object::SchemaCache;
use super::jsonl_detect::{peek, Detected};
use super::jsonl_line::{line_bounds, take_text, too_long, Action, Took};
use super::jsonl_replay::{Entry, Replay};
use super::live::{is_stopped, Live};
use super::output::Pending;
use super::{Source, SourceOutput};
use crate::shutdown::Shutdown;

/// Lines read between two sends and counter updates.
const CHUNK_LINES: usize = 1024;

/// The read buffer.
const BUFFER_BYTES: usize = 256 * 1024;

/// An opened NDJSON input.
pub struct JsonlSource {
    input: BufReader<Box<dyn Read + Send>>,
    name: String,
    size: Option<u64>,
    compression: Option<Compression>,
    /// A pipe that may be fed slowly: what was read is handed on whenever
    /// the buffer runs dry and the pipe would wait, before waiting for more;
    /// the stop signal ends the reading while it waits.
    live: Option<Live>,
    max_line_bytes: u64,
    /// The first line is still to be read: a UTF-8 byte-order mark at its
    /// start is skipped.
    at_start: bool,
    /// The file's name, when it is one of several.
    origin: Option<std::sync::Arc<str>>,
    /// The sink takes JSON lines: batches of this many are sent as lines.
    lines: Option<usize>,
    /// The stop signal ended the input while its writer paused.
    stopped: bool,
    /// What each line holds.
    format: JsonlFormat,
    /// A `_bulk` action line read, its document's line still to come.
    action: Option<Action>,
    /// `--jsonl-format auto`: the format decided from the first line.
    detected: Option<Detected>,
    /// A regular file, which several threads can read in chunks.
    path: Option<std::path::PathBuf>,
    /// `--jsonl-threads`, when given.
    threads: Option<usize>,
    /// About how many bytes a chunk holds, read on several threads.
    chunk_bytes: usize,
    /// `--jsonl-format dead-letter`: what was met besides records.
    replay: Replay,
}

/// One line: where it starts, and its bytes without the line end.
enum Line {
    Text(u64),
    TooLong(u64, Vec<u8>),
    /// The start of a line the stop signal cut short (its end never came).
    Cut(u64, Vec<u8>),
    End,
}

impl JsonlSource {
    /// Opens the input. A missing file is a configuration error; nothing is
    /// read but the first bytes (to tell compressed input). A pipe stops
    /// being waited on once `stop` is raised.
    pub fn open(config: &JsonlConfig, stop: &Shutdown) -> Result<JsonlSource, PipelineError> {
        let opened = super::input::open(&config.input, "--jsonl-file", stop)?;
        let name = display_name(&config.input);
        let mut reader: Box<dyn Read + Send> = if opened.head.is_empty() {
            opened.reader
        } else {
            Box::new(io::Cursor::new(opened.head).chain(opened.reader))
        };
        let (mut format, mut detected) = (config.format, None);
        if format == JsonlFormat::Auto {
            let (peeked, decided) = peek(reader, config.max_line_bytes);
            reader = Box::new(peeked);
            format = decided.format;
            detected = Some(decided);
        } else if format == JsonlFormat::DeadLetter {
            // Another file given for a dead-letter file is refused before a
            // line of it is read as one.
            let (peeked, decided) = peek(reader, config.max_line_bytes);
            reader = Box::new(peeked);
            if decided.seen && decided.format != JsonlFormat::DeadLetter {
                return Err(PipelineError::Config(format!(
                    "--jsonl-file {name} is not a dead-letter file (--jsonl-format dead-letter): {}; give the file --dead-letter wrote, or read it with --jsonl-format auto",
                    decided.why
                )));
            }
        }
        tracing::debug!(
            "NDJSON {name}: {}, lines of at most {} bytes",
            opened
                .size
                .map_or("size unknown".to_string(), |s| format!("{s} bytes")),
            config.max_line_bytes
        );
        // A regular file is read in chunks on several threads, a
        // compressed one as its decoder gives it; pipes are read by one
        // thread, as they come.
        let path = match (&config.input, &opened.live) {
            (InputPath::File(p), None) => Some(p.clone()),
            _ => None,
        };
        Ok(JsonlSource {
            path,
            threads: config.threads,
            chunk_bytes: config.chunk_bytes,
            input: BufReader::with_capacity(BUFFER_BYTES, reader),
            name,
            size: opened.size,
            compression: opened.compression,
            live: opened.live,
            max_line_bytes: config.max_line_bytes,
            at_start: true,
            origin: None,
            lines: None,
            stopped: false,
            format,
            action: None,
            detected,
            replay: Replay {
                in_doubt: config.replay_in_doubt,
                ..Replay::default()
            },
        })
    }

    /// Reads the next line into `line` (without its `\n` or `\r\n`). A line
    /// whose content (its end not counted) is longer than the limit is
    /// [`Line::TooLong`], with its first `max_line_bytes` bytes.
    fn next_line(&mut self, line: &mut Vec<u8>, line_no: u64) -> io::Result<Line> {
        line.clear();
        let max = self.max_line_bytes as usize;
        // Held while the line is read: the content, the `\r` of a `\r\n`
        // and, on the first line, a byte-order mark.
        let bom = std::mem::take(&mut self.at_start);
        let hold = max.saturating_add(if bom { 4 } else { 1 });
        let mut too_long = false;
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A live input left by the stop signal: what it sent is read.
                Err(e) if is_stopped(&e) => {
                    self.stopped = true;
                    if !too_long && line.iter().all(u8::is_ascii_whitespace) {
                        return Ok(Line::End);
                    }
                    return Ok(Line::Cut(line_no, std::mem::take(line)));
                }
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                if line.is_empty() && !too_long {
                    return Ok(Line::End);
                }
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if !too_long {
                let room = hold.saturating_sub(line.len());
                // The `\n` is not held.
                let content = if done { take - 1 } else { take };
                if content > room {
                    // Keep the start for the dead-letter entry, skip the rest.
                    line.extend_from_slice(&buf[..room]);
                    too_long = true;
                } else {
                    line.extend_from_slice(&buf[..take]);
                }
            }
            self.input.consume(take);
            if done {
                break;
            }
        }
        if !too_long && line.last() == Some(&b'\n') {
            line.pop();
        }
        let (content, long) = line_bounds(line, bom, max);
        too_long |= long;
        line.truncate(content.end);
        line.drain(..content.start);
        // Held past the limit: the start of a line too long.
        line.truncate(max);
        Ok(if too_long {
            Line::TooLong(line_no, std::mem::take(line))
        } else {
            Line::Text(line_no)
        })
    }
}

impl JsonlSource {
    /// Reads a regular file on several threads ([`super::jsonl_parallel`]),
    /// as the CSV source does: on `--jsonl-threads`, or when the
    /// sink takes JSON lines (a compressed file as its decoder gives it).
    /// False: it is left to the single-threaded reader (standard input, a
    /// pipe, `_bulk` pairs, or one thread asked for records).
    fn read_in_parallel(&mut self, out: &mut SourceOutput) -> Result<bool, PipelineError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        if matches!(self.format, JsonlFormat::Bulk | JsonlFormat::DeadLetter) {
            return Ok(false);
        }
        let threads = super::parallel::parse_threads(self.threads, self.lines.is_some());
        if threads < 2 && self.lines.is_none() {
            return Ok(false);
        }
        // --checkpoint, resumed: from the byte after the rows done.
        let resume = out.resume_point().and_then(|(ordinal, at)| {
            Some((ordinal, at["offset"].as_u64()?, at["line"].as_u64()?))
        });
        let plan = super::jsonl_parallel::Plan {
            path,
            name: &self.name,
            format: self.format,
            max_line_bytes: self.max_line_bytes,
            origin: self.origin.clone(),
            threads,
            chunk_bytes: self.chunk_bytes,
            lines: self.lines,
            start: resume.map_or((0, 1), |(_, offset, line)| (offset, line)),
        };
        // Rows go out as records or as the parse threads' own lines.
        out.collect_into(Pending::Records(Vec::new()));
        // Nothing was read from a compressed file's decoder yet: its lines
        // are cut from the start, as a plain file's (a resumed run's from
        // where it goes on, what comes before decoded and let go).
        let stream = match self.compression {
            Some(_) => {
                let mut input = std::mem::replace(
                    &mut self.input,
                    BufReader::new(Box::new(io::empty()) as Box<dyn Read + Send>),
                );
                if let Some((_, offset, _)) = resume {
                    io::copy(&mut (&mut input).take(offset), &mut io::sink()).map_err(|e| {
                        PipelineError::Source(ErrorType::Io, format!("reading {}: {e}", self.name))
                    })?;
                }
                Some(Box::new(input) as Box<dyn Read + Send>)
            }
            None => None,
        };
        if let Some((ordinal, offset, line)) = resume {
            out.resume_stream_from(ordinal);
            tracing::debug!(
                "NDJSON {}: resumed at byte {offset} (line {line}, row {ordinal})",
                self.name
            );
        }
        let before = out.read();
        super::jsonl_parallel::run(&plan, stream, out)?;
        if out.read() == before && !out.should_stop() && !out.at_limit() {
            tracing::warn!("{} is empty (no records); nothing read", self.name);
        }
        Ok(true)
    }
}

/// What reading one line came to.
enum Step {
    /// The input ended.
    End,
    /// A blank line of this many bytes, skipped.
    Blank(u64),
    /// A line of `bytes` bytes became a record or was rejected; `cut`: it
    /// was cut short by the stop signal; `stop`: its rejection spent the
    /// error budget.
    Row { bytes: u64, cut: bool, stop: bool },
}

impl JsonlSource {
    /// Reads the next line (number `line_no`) and hands it to `out`, as a
    /// record, a JSON line or a rejected row.
    fn read_one(
        &mut self,
        line: &mut Vec<u8>,
        line_no: u64,
        cache: &mut SchemaCache,
        out: &mut SourceOutput,
    ) -> Result<Step, PipelineError> {
        let next = self.next_line(line, line_no).map_err(|e| {
            out.end_before_error();
            PipelineError::Source(ErrorType::Io, format!("reading {}: {e}", self.name))
        })?;
        if !matches!(next, Line::Text(_)) {
            if let Some(action) = self.action.take() {
                // The document's line is missing (the input ended) or is
                // the one rejected below (the action goes with it).
                if matches!(next, Line::End) {
                    let why = "a _bulk action line whose document line is missing at the end of the input";
                    let stop = out.reject(action.line, &action.raw, ErrorType::Parse, why);
                    return Ok(Step::Row {
                        bytes: 0,
                        cut: false,
                        stop,
                    });
                }
            }
        }
        let (bytes, cut, rejected) = match next {
            Line::End => return Ok(Step::End),
            Line::TooLong(at, start) => {
                let why = too_long(self.max_line_bytes);
                (start.len() as u64, false, Some((at, start, why)))
            }
            Line::Cut(at, start) => {
                let why = "incomplete line: cut short by the stop signal".to_string();
                (start.len() as u64, true, Some((at, start, why)))
            }
            Line::Text(at) if self.format == JsonlFormat::DeadLetter => {
                let bytes = line.len() as u64 + 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Step::Blank(bytes));
                }
                match self.replay.take(line, at, cache, out.pending()) {
                    Entry::Row => {
                        out.took();
                        (bytes, false, None)
                    }
                    Entry::Rejected(raw, reason) => (
                        bytes,
                        false,
                        Some((at, raw.unwrap_or_else(|| line.clone()), reason)),
                    ),
                }
            }
            Line::Text(at) => {
                let bytes = line.len() as u64 + 1;
                let format = self.format;
                match take_text(format, &mut self.action, line, at, cache, out.pending()) {
                    Took::Row => {
                        out.took();
                        (bytes, false, None)
                    }
                    // A `_bulk` action line: its document comes next.
                    Took::Blank | Took::Action => return Ok(Step::Blank(bytes)),
                    Took::Rejected(reason) => (bytes, false, Some((at, line.clone(), reason))),
                }
            }
        };
        let stop = rejected
            .is_some_and(|(at, raw, reason)| out.reject(at, &raw, ErrorType::Parse, &reason));
        Ok(Step::Row { bytes, cut, stop })
    }
}

impl Source for JsonlSource {
    fn size_hint(&self) -> Option<u64> {
        self.size
    }

    fn fields(&self) -> Option<Vec<String>> {
        None
    }

    fn describe(&self) -> Vec<String> {
        let what = match (self.size, self.compression) {
            (_, Some(kind)) => format!("{}-compressed, read through a decoder", kind.name()),
            (Some(n), None) => format!("{n} bytes"),
            (None, None) => "a pipe (size unknown)".into(),
        };
        let mut lines = vec![format!("source: NDJSON {} ({what})", self.name)];
        if let Some(d) = &self.detected {
            lines.push(format!(
                "source: --jsonl-format auto: read as {}",
                d.describe()
            ));
        }
        lines.push(
            match self.format {
                JsonlFormat::Plain | JsonlFormat::Auto => "source: one JSON object per line; top-level keys become fields, nested objects and arrays stay JSON",
                JsonlFormat::Elasticdump => "source: elasticdump documents, one per line; fields _id, _index, then the _source keys (nested objects and arrays stay JSON)",
                JsonlFormat::Bulk => "source: _bulk action and document line pairs; fields _id, _index, then the document's keys (nested objects and arrays stay JSON); delete actions are rejected",
                JsonlFormat::DeadLetter if self.replay.in_doubt => "source: a dead-letter file: the records it holds, in-doubt ones too (--jsonl-replay-in-doubt); raw rows the source could not read are rejected again, kept as they were",
                JsonlFormat::DeadLetter => "source: a dead-letter file: the records it holds; in-doubt entries are failed and kept whole (--jsonl-replay-in-doubt takes them), raw rows the source could not read are rejected again, kept as they were",
            }
            .into(),
        );
        lines
    }

    fn detected(&self) -> Option<String> {
        self.detected.as_ref().map(Detected::describe)
    }

    fn write_json_lines(&mut self, batch: usize) -> bool {
        self.lines = Some(batch.max(1));
        true
    }

    fn set_origin(&mut self, origin: std::sync::Arc<str>) {
        self.origin = Some(origin);
    }

    fn run(&mut self, out: &mut SourceOutput) -> Result<(), PipelineError> {
        let _active = out.ctx().metrics.worker_active(crate::error::Stage::Source);
        if let Some(d) = &self.detected {
            tracing::info!(
                "{}: --jsonl-format auto: read as {}",
                self.name,
                d.describe()
            );
        }
        if self.read_in_parallel(out)? {
            return Ok(());
        }
        let mut cache = SchemaCache::default();
        cache.origin = self.origin.clone();
        let mut line = Vec::with_capacity(4096);
        let chunk_lines = self.lines.unwrap_or(CHUNK_LINES);
        out.collect_into(match self.lines {
            Some(batch) => Pending::Lines(Lines {
                keys_per_line: true,
                ..Lines::new(
                    Arc::new(Schema::with_origin(Vec::new(), self.origin.clone())),
                    batch,
                )
            }),
            None => Pending::Records(Vec::with_capacity(CHUNK_LINES)),
        });
        let mut line_no = 0u64;
        let mut done = false;
        // Nothing but blank lines (or nothing at all) came before the end.
        let (mut ended_blank, mut any) = (false, false);
        while !done && !out.should_stop() {
            out.start_chunk();
            let mut chunk_bytes = 0u64;
            while out.rows() < chunk_lines as u64 {
                if out.at_limit() {
                    done = true;
                    break;
                }
                line_no += 1;
                match self.read_one(&mut line, line_no, &mut cache, out)? {
                    Step::End => {
                        ended_blank = !any;
                        done = true;
                        break;
                    }
                    Step::Blank(bytes) => {
                        chunk_bytes += bytes;
                        continue;
                    }
                    Step::Row { bytes, cut, stop } => {
                        chunk_bytes += bytes;
                        any = true;
                        // Cut short by the stop signal: what is left is read.
                        done |= cut;
                        if stop {
                            done = true;
                            break;
                        }
                    }
                }
                if self.input.buffer().is_empty()
                    && self.live.as_ref().is_some_and(Live::would_block)
                {
                    // The next line would wait for the writer: hand over
                    // what was read so far first.
                    break;
                }
            }
            out.end_chunk(chunk_bytes);
        }
        if ended_blank && !self.stopped {
            tracing::warn!("{} is empty (no records); nothing read", self.name);
        }
        if let Some(warning) = self.replay.skipped_warning(&self.name) {
            tracing::warn!("{warning}");
        }
        Ok(())
    }
}
