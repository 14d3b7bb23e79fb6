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

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use serde::de::DeserializeSeed;
use serde_json::Value as Json;

use crate::config::{JsonlConfig, JsonlFormat};
use crate::error::{ErrorType, PipelineError};
use crate::json_line::{compact_into, raw_value, record_into, tree_value};
use crate::record::{Lines, Record, Schema};

use super::input::{display_name, Compression};
use super::json_object::{all_different, Members, MembersInto, SchemaCache};
use super::jsonl_detect::{peek, Detected};
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
        }
        tracing::debug!(
            "NDJSON {name}: {}, lines of at most {} bytes",
            opened
                .size
                .map_or("size unknown".to_string(), |s| format!("{s} bytes")),
            config.max_line_bytes
        );
        Ok(JsonlSource {
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
        if bom && line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        if !too_long {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            too_long = line.len() > max;
        }
        if too_long {
            line.truncate(max);
        }
        Ok(if too_long {
            Line::TooLong(line_no, std::mem::take(line))
        } else {
            Line::Text(line_no)
        })
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
                let max = self.max_line_bytes;
                let why = format!("a line longer than --jsonl-max-line-bytes {max}");
                (start.len() as u64, false, Some((at, start, why)))
            }
            Line::Cut(at, start) => {
                let why = "incomplete line: cut short by the stop signal".to_string();
                (start.len() as u64, true, Some((at, start, why)))
            }
            Line::Text(at) => {
                let bytes = line.len() as u64 + 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Step::Blank(bytes));
                }
                let took = match self.format {
                    JsonlFormat::Plain | JsonlFormat::Auto => {
                        take_line(line, at, cache, out.pending()).map(|()| true)
                    }
                    format => {
                        take_dump_line(format, &mut self.action, line, at, cache, out.pending())
                    }
                };
                match took {
                    Ok(true) => {
                        out.took();
                        (bytes, false, None)
                    }
                    // A `_bulk` action line: its document comes next.
                    Ok(false) => return Ok(Step::Blank(bytes)),
                    Err((_, reason)) => (bytes, false, Some((at, line.clone(), reason))),
                }
            }
        };
        let stop = rejected
            .is_some_and(|(at, raw, reason)| out.reject(at, &raw, ErrorType::Parse, &reason));
        Ok(Step::Row { bytes, cut, stop })
    }
}

/// A line as a record, or why it cannot be one.
#[cfg(test)]
fn to_record(
    line: &[u8],
    position: u64,
    cache: &mut SchemaCache,
) -> Result<Record, (ErrorType, String)> {
    let mut pending = Pending::Records(Vec::with_capacity(1));
    take_line(line, position, cache, &mut pending)?;
    match pending {
        Pending::Records(mut r) => Ok(r.pop().expect("one record")),
        Pending::Lines(_) => unreachable!("records asked for"),
    }
}

/// Adds a line to `pending` as a record or its JSON line, or says why it
/// cannot be one.
fn take_line(
    line: &[u8],
    position: u64,
    cache: &mut SchemaCache,
    pending: &mut Pending,
) -> Result<(), (ErrorType, String)> {
    let text = std::str::from_utf8(line).map_err(|e| {
        (
            ErrorType::Parse,
            format!("not valid UTF-8 (at byte {})", e.valid_up_to() + 1),
        )
    })?;
    let mut members: Members = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let read = MembersInto(&mut members)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if read.is_err() {
        return Err(explain(text));
    }
    let unique = all_different(members.iter().map(|(k, _)| &*k.0));
    if let Pending::Lines(lines) = pending {
        // Keys without escapes (borrowed) are written as they are: the line
        // without its whitespace is the record's line.
        if unique && members.iter().all(|(k, _)| matches!(k.0, Cow::Borrowed(_))) {
            compact_into(text, &mut lines.bytes);
            lines.end_line(position);
            return Ok(());
        }
    }
    let record = if unique {
        let schema = cache.schema(members.iter().map(|(k, _)| &*k.0));
        let values = members.iter().map(|(_, v)| raw_value(v.get())).collect();
        Record {
            schema,
            values,
            position,
        }
    } else {
        // A key repeated: the last value counts (as for an Elasticsearch
        // _source); read through a tree.
        let Ok(Json::Object(map)) = serde_json::from_str::<Json>(text) else {
            return Err(explain(text));
        };
        let schema = cache.schema(map.keys().map(String::as_str));
        let values = map.values().map(tree_value).collect();
        Record {
            schema,
            values,
            position,
        }
    };
    push(pending, record);
    Ok(())
}

/// Adds `record` to `pending`, or its JSON line.
fn push(pending: &mut Pending, record: Record) {
    match pending {
        Pending::Records(chunk) => chunk.push(record),
        Pending::Lines(lines) => {
            record_into(&mut lines.bytes, &record);
            lines.end_line(record.position);
        }
    }
}

/// A `_bulk` action line whose document line is still to come.
struct Action {
    /// Its line number and text (for the dead-letter file).
    line: u64,
    raw: Vec<u8>,
    /// `update`: the document is the source line's `doc`.
    update: bool,
    id: Json,
    index: Json,
}

/// The metadata fields a document of a dump starts with, in this order (as
/// `--es-meta-fields _id,_index` gives them from an index).
const DUMP_META: [&str; 2] = ["_id", "_index"];

/// Adds an elasticdump or `_bulk` line to `pending` (true), or keeps a
/// `_bulk` action line for the document line that follows it (false), or
/// says why the line cannot be either.
fn take_dump_line(
    format: JsonlFormat,
    action: &mut Option<Action>,
    line: &[u8],
    position: u64,
    cache: &mut SchemaCache,
    pending: &mut Pending,
) -> Result<bool, (ErrorType, String)> {
    // A document line that cannot be read is failed with its action: the
    // next line is the next action.
    let (kind, why) = match std::str::from_utf8(line) {
        Err(e) => (
            ErrorType::Parse,
            format!("not valid UTF-8 (at byte {})", e.valid_up_to() + 1),
        ),
        Ok(text) => match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(map)) => {
                return take_dump_object(format, action, map, (line, position), cache, pending)
            }
            _ => explain(text),
        },
    };
    Err(match action.take() {
        Some(a) => (
            kind,
            format!(
                "the document line of the _bulk action at line {}: {why}",
                a.line
            ),
        ),
        None => (kind, why),
    })
}

/// [`take_dump_line`] for a line that is a JSON object.
fn take_dump_object(
    format: JsonlFormat,
    action: &mut Option<Action>,
    mut map: serde_json::Map<String, Json>,
    (line, position): (&[u8], u64),
    cache: &mut SchemaCache,
    pending: &mut Pending,
) -> Result<bool, (ErrorType, String)> {
    let bad = |why: String| (ErrorType::Parse, why);
    let (id, index, source) = match (format, action.take()) {
        (JsonlFormat::Bulk, None) => {
            *action = Some(bulk_action(map, position, line).map_err(bad)?);
            return Ok(false);
        }
        (_, Some(a)) => {
            let source = if a.update {
                match map.remove("doc") {
                    Some(Json::Object(doc)) => doc,
                    _ => return Err(bad(format!(
                        "the document line of the _bulk update at line {} has no \"doc\" object (a script or upsert alone is not a document)",
                        a.line
                    ))),
                }
            } else {
                map
            };
            (a.id, a.index, source)
        }
        (_, None) => {
            let Some(Json::Object(source)) = map.remove("_source") else {
                return Err(bad(
                    "not an elasticdump document: no \"_source\" object".to_string()
                ));
            };
            let index = map.remove("_index").unwrap_or(Json::Null);
            (id_string(map.remove("_id")), index, source)
        }
    };
    let names = DUMP_META.into_iter().chain(
        source
            .keys()
            .map(String::as_str)
            .filter(|k| !DUMP_META.contains(k)),
    );
    let schema = cache.schema(names);
    let mut values = vec![tree_value(&id), tree_value(&index)];
    values.extend(
        source
            .iter()
            .filter(|(k, _)| !DUMP_META.contains(&k.as_str()))
            .map(|(_, v)| tree_value(v)),
    );
    push(
        pending,
        Record {
            schema,
            values,
            position,
        },
    );
    Ok(true)
}

/// A document's `_id`: Elasticsearch takes a number as the string of its
/// digits; none is null.
fn id_string(id: Option<Json>) -> Json {
    match id {
        Some(Json::Number(n)) => Json::String(n.to_string()),
        other => other.unwrap_or(Json::Null),
    }
}

/// A `_bulk` action line (`{"index":{"_index":..,"_id":..}}`, or `create`,
/// `update`), or why it is not one (a `delete` carries no document).
fn bulk_action(
    map: serde_json::Map<String, Json>,
    line: u64,
    raw: &[u8],
) -> Result<Action, String> {
    let mut entries = map.into_iter();
    let (Some((kind, meta)), None) = (entries.next(), entries.next()) else {
        return Err("not a _bulk action line: an object of one key (index, create, update or delete) was expected".into());
    };
    let Json::Object(mut meta) = meta else {
        return Err(format!(
            "not a _bulk action line: the value of \"{kind}\" is not an object"
        ));
    };
    if let Some(k) = meta
        .keys()
        .find(|k| !super::jsonl_detect::BULK_META.contains(&k.as_str()))
    {
        return Err(format!(
            "not a _bulk action line: \"{k}\" is not a parameter of a _bulk \"{kind}\" action"
        ));
    }
    match kind.as_str() {
        "index" | "create" | "update" => Ok(Action {
            line,
            raw: raw.to_vec(),
            update: kind == "update",
            id: id_string(meta.remove("_id")),
            index: meta.remove("_index").unwrap_or(Json::Null),
        }),
        "delete" => {
            Err("a _bulk delete action: it removes a document and carries none to load".into())
        }
        other => Err(format!(
            "not a _bulk action line: \"{other}\" is not index, create, update or delete"
        )),
    }
}

/// Why a line is not a JSON object.
fn explain(text: &str) -> (ErrorType, String) {
    let reason = match serde_json::from_str::<Json>(text) {
        Err(e) => format!("not valid JSON: {e}"),
        Ok(v) => format!(
            "not a JSON object but {}",
            match v {
                Json::Array(_) => "an array",
                Json::String(_) => "a string",
                Json::Number(_) => "a number",
                Json::Bool(_) => "a boolean",
                Json::Null => "null",
                Json::Object(_) => "an object",
            }
        ),
    };
    (ErrorType::Parse, reason)
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Value;

    fn record(line: &str) -> Result<Record, String> {
        to_record(line.as_bytes(), 7, &mut SchemaCache::default()).map_err(|(_, r)| r)
    }

    #[test]
    fn top_level_keys_become_fields_and_values_keep_their_json() {
        let r = record(r#"{"id": 12345678901234567890123, "n": {"a": [1, 2]}, "s": "\u00e9", "b": true, "z": null}"#)
            .unwrap();
        assert_eq!(r.schema.names(), ["id", "n", "s", "b", "z"]);
        assert_eq!(r.values[0], Value::Raw("12345678901234567890123".into()));
        assert_eq!(r.values[1], Value::Raw(r#"{"a":[1,2]}"#.into()));
        assert_eq!(r.values[2], Value::Raw(r#""\u00e9""#.into()));
        assert_eq!(r.values[3], Value::Bool(true));
        assert_eq!(r.values[4], Value::Null);
        assert_eq!(r.position, 7);
    }

    /// A line written as it is (compacted) is byte for byte what its
    /// record would be written as; lines the shortcut cannot take (escaped
    /// or repeated keys) go through the record.
    #[test]
    fn lines_equal_what_their_records_are_written_as() {
        let inputs = [
            r#"{"a": 1, "b": [1, 2, {"c": "x y"}], "d": "q\"uote \u00e9", "e": null}"#,
            "  {\"t\":true,\"f\":false,\"n\":-1.5e300}  ",
            r#"{"caf\u00e9": 1, "b": 2}"#,
            r#"{"a": 1, "a": {"z" : 2}}"#,
            r#"{}"#,
            "{\"s\": \"tab\\there\", \"big\": 123456789012345678901234567890}",
        ];
        let mut cache = SchemaCache::default();
        let mut lines = Pending::Lines(Lines {
            keys_per_line: true,
            ..Lines::new(Arc::new(Schema::new(Vec::new())), 8)
        });
        let mut want = Vec::new();
        for (i, text) in inputs.iter().enumerate() {
            take_line(text.as_bytes(), i as u64 + 1, &mut cache, &mut lines).unwrap();
            let r = to_record(text.as_bytes(), i as u64 + 1, &mut cache).unwrap();
            record_into(&mut want, &r);
            want.push(b'\n');
        }
        let Pending::Lines(lines) = lines else {
            unreachable!()
        };
        assert_eq!(
            String::from_utf8(lines.bytes.clone()).unwrap(),
            String::from_utf8(want).unwrap()
        );
        // Read back (for a dead-letter entry) with its own keys.
        let back = lines.record(0);
        assert_eq!(back.schema.names(), ["a", "b", "d", "e"]);
        assert_eq!(back.position, 1);
    }

    #[test]
    fn a_repeated_key_counts_once_with_its_last_value() {
        let r = record(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(r.schema.names().len(), 2);
        let a = r.schema.names().iter().position(|n| n == "a").unwrap();
        assert_eq!(
            *r.values[a].typed(),
            Value::from_json(&serde_json::json!(3))
        );
    }

    /// Takes each line of a dump in turn; the records made, or each line's
    /// reason.
    fn dump(format: JsonlFormat, lines: &[&str]) -> Vec<Result<Option<Record>, String>> {
        let (mut cache, mut action) = (SchemaCache::default(), None);
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let mut pending = Pending::Records(Vec::new());
            let took = take_dump_line(
                format,
                &mut action,
                line.as_bytes(),
                i as u64 + 1,
                &mut cache,
                &mut pending,
            );
            let Pending::Records(mut r) = pending else {
                unreachable!()
            };
            out.push(took.map(|_| r.pop()).map_err(|(_, why)| why));
        }
        out
    }

    #[test]
    fn elasticdump_lines_give_id_index_then_source() {
        let got = dump(
            JsonlFormat::Elasticdump,
            &[
                r#"{"_index":"i","_type":"_doc","_id":"7","_score":1,"_source":{"a":1,"_id":"no","n":{"b":[2]}}}"#,
                r#"{"_source":{}}"#,
                r#"{"_index":"i","_id":"8"}"#,
                r#"[1]"#,
            ],
        );
        let r = got[0].clone().unwrap().unwrap();
        assert_eq!(r.schema.names(), ["_id", "_index", "a", "n"]);
        assert_eq!(r.values[0], Value::Raw("\"7\"".into()));
        assert_eq!(r.values[3], Value::Raw(r#"{"b":[2]}"#.into()));
        let r = got[1].clone().unwrap().unwrap();
        assert_eq!((r.values[0].clone(), r.values.len()), (Value::Null, 2));
        assert!(got[2]
            .clone()
            .unwrap_err()
            .contains("no \"_source\" object"));
        assert!(got[3].clone().unwrap_err().contains("not a JSON object"));
    }

    #[test]
    fn bulk_pairs_give_id_index_then_the_document() {
        let got = dump(
            JsonlFormat::Bulk,
            &[
                r#"{"index":{"_index":"i","_id":5}}"#,
                r#"{"a":1}"#,
                r#"{"update":{"_index":"i","_id":"6"}}"#,
                r#"{"doc":{"b":2},"doc_as_upsert":true}"#,
                r#"{"delete":{"_index":"i","_id":"7"}}"#,
                r#"{"a":1,"b":2}"#,
                r#"{"update":{"_id":"8"}}"#,
                r#"{"script":{"source":"x"}}"#,
                r#"{"create":{"_id":"9"}}"#,
                r#"not json"#,
                r#"{"index":{"a":1}}"#,
                r#"{"index":{"_id":"10"}}"#,
                r#"{"z":1}"#,
            ],
        );
        assert!(matches!(got[0], Ok(None)));
        let r = got[1].clone().unwrap().unwrap();
        assert_eq!(r.schema.names(), ["_id", "_index", "a"]);
        assert_eq!(r.values[0], Value::Raw("\"5\"".into()));
        assert_eq!(r.position, 2);
        let r = got[3].clone().unwrap().unwrap();
        assert_eq!(r.schema.names(), ["_id", "_index", "b"]);
        assert!(got[4].clone().unwrap_err().contains("delete"));
        assert!(got[5]
            .clone()
            .unwrap_err()
            .contains("not a _bulk action line"));
        assert!(got[7].clone().unwrap_err().contains("no \"doc\" object"));
        let why = got[9].clone().unwrap_err();
        assert!(
            why.contains("of the _bulk action at line 9: not valid JSON"),
            "{why}"
        );
        // Elasticsearch refuses an action with a key no action has.
        let why = got[10].clone().unwrap_err();
        assert!(
            why.contains("\"a\" is not a parameter of a _bulk \"index\" action"),
            "{why}"
        );
        // The bad document line went with its action: the next pair is whole.
        let r = got[12].clone().unwrap().unwrap();
        assert_eq!(r.values[0], Value::Raw("\"10\"".into()));
        assert_eq!(r.schema.names(), ["_id", "_index", "z"]);
    }

    #[test]
    fn lines_that_are_not_objects_say_why() {
        assert!(record("[1,2]")
            .unwrap_err()
            .contains("not a JSON object but an array"));
        assert!(record("\"x\"").unwrap_err().contains("but a string"));
        assert!(record("{\"a\": 1").unwrap_err().contains("not valid JSON"));
        assert!(record("{\"a\": 1} x")
            .unwrap_err()
            .contains("not valid JSON"));
        let bad = to_record(b"{\"a\": \"\xff\"}", 1, &mut SchemaCache::default()).unwrap_err();
        assert!(bad.1.contains("not valid UTF-8"), "{}", bad.1);
    }
}
