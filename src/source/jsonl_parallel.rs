//! Reading an NDJSON file on several threads ([`super::parallel`]). A `\n`
//! is never inside a JSON string, so every one ends a line: the source
//! thread cuts the file into chunks of about `--jsonl-chunk-bytes` after
//! the last `\n` in them, and parse threads read each chunk's lines with
//! the single-threaded reader's own code ([`line_bounds`], [`take_text`]):
//! the same records or JSON lines, the same rejected lines with the same
//! line numbers (each chunk starts on the line after the `\n`s before it).
//!
//! A chunk grows to hold a line up to `--jsonl-max-line-bytes`; of a longer
//! line only its first bytes are held (what is kept of it in the
//! dead-letter file), the rest is read past. `_bulk` pairs are read by one
//! thread (an action line and its document may fall in two chunks).

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::config::JsonlFormat;
use crate::error::{ErrorType, PipelineError};
use crate::record::{Lines, Record, Schema};

use super::json_object::SchemaCache;
use super::jsonl_line::{line_bounds, take_text, too_long, Took};
use super::output::Pending;
use super::parallel::{Chunk, Cut, Ended, Item, Parse, Parsed, Reading};
use super::SourceOutput;

/// What the parallel read needs to know.
pub(super) struct Plan<'a> {
    /// The file.
    pub path: &'a Path,
    /// Its name in messages.
    pub name: &'a str,
    /// What each line holds: plain or elasticdump.
    pub format: JsonlFormat,
    /// `--jsonl-max-line-bytes`.
    pub max_line_bytes: u64,
    /// The file, when it is one of several (its records' schemas say so).
    pub origin: Option<Arc<str>>,
    /// Parse threads.
    pub threads: usize,
    /// About how many bytes one chunk holds.
    pub chunk_bytes: usize,
    /// Records are written as JSON lines, in batches of this many.
    pub lines: Option<usize>,
    /// Where reading starts: a byte at a line's start, and that line's
    /// number (0 and 1 but for a resumed run).
    pub start: (u64, u64),
}

impl Plan<'_> {
    /// A line longer than this many bytes (its `\n` not counted) is too
    /// long, even the first line with a byte-order mark and a `\r\n`.
    fn hold(&self) -> usize {
        usize::try_from(self.max_line_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(4)
    }
}

/// The parse threads' parser: the plan, and the schemas of every chunk.
struct Parser<'a> {
    plan: &'a Plan<'a>,
    /// Records of one shape get one schema whichever chunk they are in
    /// (a sink works out what to do with a schema once).
    schemas: Arc<Mutex<SchemaCache>>,
}

impl<'a> Parser<'a> {
    fn new(plan: &'a Plan<'a>) -> Parser<'a> {
        let mut schemas = SchemaCache::default();
        schemas.origin = plan.origin.clone();
        Parser {
            plan,
            schemas: Arc::new(Mutex::new(schemas)),
        }
    }
}

impl Parse for Parser<'_> {
    fn parse(&self, bytes: Vec<u8>, line: u64, _spare: Vec<Record>) -> Parsed {
        let mut cache = SchemaCache::default();
        cache.origin = self.plan.origin.clone();
        cache.shared = Some(self.schemas.clone());
        Parsed {
            items: self.plan.items(&bytes, line, &mut cache),
            open: false,
            error: None,
        }
    }
}

impl Plan<'_> {
    /// The rows of a chunk whose first line is line `line`.
    fn items(&self, bytes: &[u8], line: u64, cache: &mut SchemaCache) -> Vec<Item> {
        let max = usize::try_from(self.max_line_bytes).unwrap_or(usize::MAX);
        let mut pending = match self.lines {
            Some(batch) => Pending::Lines(self.new_lines(batch)),
            None => Pending::Records(Vec::with_capacity(1)),
        };
        // Never set: `_bulk` pairs are not read in chunks.
        let mut action = None;
        let mut items = Vec::with_capacity(match self.lines {
            Some(_) => 4,
            None => bytes.len() / 128 + 1,
        });
        let mut at = line;
        let mut rest = bytes;
        while !rest.is_empty() {
            let (raw, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            let (content, long) = line_bounds(raw, at == 1, max);
            let content = &raw[content];
            let rejected = if long {
                Some(too_long(self.max_line_bytes))
            } else {
                let took = take_text(self.format, &mut action, content, at, cache, &mut pending);
                match took {
                    Took::Rejected(reason) => Some(reason),
                    Took::Row | Took::Blank | Took::Action => None,
                }
            };
            match &mut pending {
                Pending::Records(records) => items.extend(records.drain(..).map(Item::Record)),
                // A full batch goes, and the lines before a rejected line
                // go first.
                Pending::Lines(lines) => {
                    if lines.len() >= self.lines.unwrap_or(1) || rejected.is_some() {
                        self.send_lines(lines, &mut items);
                    }
                }
            }
            items.extend(rejected.map(|reason| Item::Rejected {
                line: at,
                raw: content.to_vec(),
                error_type: ErrorType::Parse,
                reason,
            }));
            at += 1;
            rest = next;
        }
        match pending {
            Pending::Lines(lines) if !lines.is_empty() => items.push(Item::Lines(lines)),
            _ => {}
        }
        items
    }

    /// No lines yet: a batch of `batch`, each line with its own keys.
    fn new_lines(&self, batch: usize) -> Lines {
        Lines {
            keys_per_line: true,
            ..Lines::new(
                Arc::new(Schema::with_origin(Vec::new(), self.origin.clone())),
                batch,
            )
        }
    }

    /// Moves the lines written so far, when there are any, to `items`.
    fn send_lines(&self, lines: &mut Lines, items: &mut Vec<Item>) {
        if !lines.is_empty() {
            let batch = self.lines.unwrap_or(1);
            items.push(Item::Lines(std::mem::replace(lines, self.new_lines(batch))));
        }
    }
}

/// Cuts the file into chunks after a `\n`.
struct LineCutter {
    file: Box<dyn Read + Send>,
    /// About how many bytes a chunk holds.
    chunk: usize,
    /// Past this many bytes without a `\n`, a line is too long: of it only
    /// these first bytes and one more are held.
    hold: usize,
    /// Bytes read past the last cut.
    carry: Vec<u8>,
    eof: bool,
    /// A read failed (a compressed stream corrupt or cut short): the lines
    /// read before it are handed out first, as one reader would read them.
    failed: Option<std::io::Error>,
}

impl LineCutter {
    /// Reads until `carry` holds `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> std::io::Result<()> {
        super::parallel::fill(&mut self.file, &mut self.carry, &mut self.eof, want)
    }

    /// After a failed read: the whole lines read before it, or the error.
    fn before_failure(&mut self, e: std::io::Error) -> std::io::Result<Option<Chunk>> {
        let Some(i) = memchr::memrchr(b'\n', &self.carry) else {
            return Err(e);
        };
        self.failed = Some(e);
        let rest = self.carry.split_off(i + 1);
        Ok(Some(Chunk::whole(std::mem::replace(&mut self.carry, rest))))
    }

    /// `carry` starts with more than [`LineCutter::hold`] bytes of one
    /// line: a chunk of its first bytes, still too long (and its `\n`), the
    /// rest of it read past without holding it.
    fn too_long(&mut self) -> std::io::Result<Chunk> {
        let mut head = self.carry[..=self.hold].to_vec();
        let mut len = self.carry.len() as u64;
        self.carry.clear();
        let mut buf = vec![0; self.chunk.max(4096)];
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.eof = true;
                return Ok(Chunk { bytes: head, len });
            }
            if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
                head.push(b'\n');
                self.carry.extend_from_slice(&buf[i + 1..n]);
                return Ok(Chunk {
                    bytes: head,
                    len: len + i as u64 + 1,
                });
            }
            len += n as u64;
        }
    }
}

impl Cut for LineCutter {
    /// The next chunk, ending after a `\n` or at the end of the file; empty
    /// at the end. Never `None`.
    fn next(&mut self) -> std::io::Result<Option<Chunk>> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut want = self.chunk;
        loop {
            if let Err(e) = self.fill(want) {
                return self.before_failure(e);
            }
            if self.eof {
                return Ok(Some(Chunk::whole(std::mem::take(&mut self.carry))));
            }
            if let Some(i) = memchr::memrchr(b'\n', &self.carry) {
                let rest = self.carry[i + 1..].to_vec();
                let mut chunk = std::mem::replace(&mut self.carry, rest);
                chunk.truncate(i + 1);
                return Ok(Some(Chunk::whole(chunk)));
            }
            if self.carry.len() > self.hold {
                return self.too_long().map(Some);
            }
            // One line so far: grown to hold it up to the limit.
            want = want.saturating_mul(2).min(self.hold.saturating_add(1));
        }
    }
}

/// Reads the file on `plan.threads` parse threads, or `stream` (what a
/// compressed file's decoder gives, from its start) when one is given.
pub(super) fn run(
    plan: &Plan,
    stream: Option<Box<dyn Read + Send>>,
    out: &mut SourceOutput,
) -> Result<(), PipelineError> {
    let reading = Reading {
        path: plan.path,
        name: plan.name,
        kind: "NDJSON",
        start: plan.start.0,
        line: plan.start.1,
        threads: plan.threads,
    };
    let mut cutter = LineCutter {
        file: match stream {
            Some(stream) => stream,
            None => Box::new(reading.open()?),
        },
        chunk: super::parallel::chunk_bytes(plan.threads, plan.chunk_bytes.max(1)),
        hold: plan.hold(),
        carry: Vec::new(),
        eof: false,
        failed: None,
    };
    match super::parallel::run(&reading, &mut cutter, &Parser::new(plan), out)? {
        Ended::Done => Ok(()),
        Ended::From { line, .. } => Err(PipelineError::Internal(format!(
            "reading {} in chunks stopped at line {line}",
            plan.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts `text` into chunks of about `chunk` bytes and parses them in
    /// turn: each row as (line, what), what being `record`, `lines N` or
    /// the raw text of a rejected line (after `long ` for a line too long).
    fn read(text: &[u8], max: u64, chunk: usize, lines: Option<usize>) -> Vec<(u64, String)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, text).unwrap();
        let plan = Plan {
            path: &path,
            name: "in.jsonl",
            format: JsonlFormat::Plain,
            max_line_bytes: max,
            origin: None,
            threads: 1,
            chunk_bytes: chunk,
            lines,
            start: (0, 1),
        };
        let mut cutter = LineCutter {
            file: Box::new(std::fs::File::open(&path).unwrap()),
            chunk,
            hold: plan.hold(),
            carry: Vec::new(),
            eof: false,
            failed: None,
        };
        let (mut got, mut line, mut covered) = (Vec::new(), 1, 0);
        loop {
            let c = cutter.next().unwrap().expect("never None");
            if c.bytes.is_empty() {
                break;
            }
            covered += c.len;
            let mut cache = SchemaCache::default();
            for item in plan.items(&c.bytes, line, &mut cache) {
                got.push(match item {
                    Item::Record(r) => (r.position, "record".to_string()),
                    Item::Lines(l) => (l.positions[0], format!("lines {}", l.len())),
                    Item::Rejected {
                        line, raw, reason, ..
                    } => {
                        let long = if reason.contains("longer than") {
                            "long "
                        } else {
                            ""
                        };
                        (line, format!("{long}{}", String::from_utf8_lossy(&raw)))
                    }
                });
            }
            line += memchr::memchr_iter(b'\n', &c.bytes).count() as u64;
        }
        assert_eq!(covered, text.len() as u64, "every byte is read once");
        got
    }

    fn rows(rows: &[(u64, &str)]) -> Vec<(u64, String)> {
        rows.iter().map(|(l, w)| (*l, w.to_string())).collect()
    }

    #[test]
    fn lines_keep_their_numbers_across_cuts() {
        let text = b"{}\n\n  \r\n{\"a\":1}\r\nbad\n{}";
        for chunk in [1, 3, 7, 1 << 10] {
            assert_eq!(
                read(text, 100, chunk, None),
                rows(&[(1, "record"), (4, "record"), (5, "bad"), (6, "record")]),
                "chunks of {chunk}"
            );
        }
        assert_eq!(
            read(text, 100, 4, Some(2)),
            rows(&[(1, "lines 1"), (4, "lines 1"), (5, "bad"), (6, "lines 1")])
        );
        assert_eq!(
            read(text, 100, 1 << 10, Some(2)),
            rows(&[(1, "lines 2"), (5, "bad"), (6, "lines 1")])
        );
    }

    #[test]
    fn records_of_one_shape_share_one_schema_across_chunks() {
        let path = Path::new("unused.jsonl");
        let plan = Plan {
            path,
            name: "unused.jsonl",
            format: JsonlFormat::Plain,
            max_line_bytes: 100,
            origin: Some("unused.jsonl".into()),
            threads: 2,
            chunk_bytes: 16,
            lines: None,
            start: (0, 1),
        };
        let parser = Parser::new(&plan);
        let record =
            |text: &[u8], line| match parser.parse(text.to_vec(), line, Vec::new()).items.pop() {
                Some(Item::Record(r)) => r,
                _ => panic!("a record"),
            };
        let (a, b) = (record(b"{\"x\":1}\n", 1), record(b"{\"x\":2}\n", 2));
        assert!(Arc::ptr_eq(&a.schema, &b.schema));
        assert_eq!(a.schema.origin(), Some("unused.jsonl"));
        let c = record(b"{\"y\":1}\n", 3);
        assert!(!Arc::ptr_eq(&a.schema, &c.schema));
    }

    /// A line past the limit keeps its first bytes, however long it is
    /// and wherever the cuts fall, as the single-threaded reader keeps
    /// them (after a byte-order mark, a `\r` inside it not taken for the
    /// line end).
    #[test]
    fn a_line_too_long_keeps_its_first_bytes() {
        let mut text = b"\xEF\xBB\xBF".to_vec();
        text.extend(b"xxxxxxxxxx\rmore\n{}\n");
        text.extend(vec![b'y'; 20_000]);
        text.extend(b"\r\n{\"b\":2}\n");
        text.extend(b"\xEF\xBB\xBF{}\r\n0123456789\r\n");
        for chunk in [1, 5, 64, 1 << 20] {
            assert_eq!(
                read(&text, 10, chunk, None),
                rows(&[
                    (1, "long xxxxxxxxxx"),
                    (2, "record"),
                    (3, "long yyyyyyyyyy"),
                    (4, "record"),
                    (5, "\u{feff}{}"),
                    (6, "0123456789"),
                ]),
                "chunks of {chunk}"
            );
        }
    }
}
