//! `--jsonl-format auto`: the format of an NDJSON input is decided from its
//! first line that is not blank, read ahead when the input is opened and
//! then handed to the reader unchanged ([`Peeked`]): nothing is lost, not
//! even from standard input or a pipe, and the records are read by the one
//! NDJSON reader, in the format decided here.
//!
//! - an object with a `_source` object, an `_index` or an `_id`, and no key
//!   but those of a search hit (`_index`, `_type`, `_id`, `_score`,
//!   `_source`, `sort`, `_routing`, `fields`, …): elasticdump;
//! - an object of one key, `index`, `create`, `update` or `delete`, whose
//!   value is an object of an action's metadata (`_index`, `_id`,
//!   `routing`, `pipeline`, …, nothing else): a `_bulk` body;
//! - an entry of pipeline-cli's own dead-letter file (a stage, an error
//!   type, a position, a reason, a `record` object or a `raw` string, and
//!   no key an entry does not have): dead-letter;
//! - anything else (another object, a line that is not JSON, no line at
//!   all, a first line too long to read): plain.

use std::io::{self, Read};

use serde_json::Value as Json;

use crate::config::JsonlFormat;

use super::live::is_stopped;

/// The keys of a search hit, as elasticdump writes them.
const HIT_KEYS: [&str; 16] = [
    "_index",
    "_type",
    "_id",
    "_score",
    "_source",
    "sort",
    "_routing",
    "fields",
    "_version",
    "_seq_no",
    "_primary_term",
    "highlight",
    "inner_hits",
    "matched_queries",
    "_ignored",
    "_explanation",
];

/// The actions of a `_bulk` body.
const BULK_ACTIONS: [&str; 4] = ["index", "create", "update", "delete"];

/// The keys an action's object may have (Elasticsearch refuses others).
pub(super) const BULK_META: [&str; 16] = [
    "_index",
    "_id",
    "_type",
    "routing",
    "_routing",
    "version",
    "version_type",
    "pipeline",
    "if_seq_no",
    "if_primary_term",
    "require_alias",
    "require_data_stream",
    "retry_on_conflict",
    "dynamic_templates",
    "list_executed_pipelines",
    "_source",
];

/// How much is read ahead at once.
const READ: usize = 64 * 1024;

/// The format decided, and what decided it (for the log and `--check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub format: JsonlFormat,
    pub why: String,
    /// A first line was read and decided on (not: no line, a line too
    /// long, a read that failed).
    pub seen: bool,
}

impl Detected {
    /// `FORMAT (why)`, as the log and `--check` say it.
    pub fn describe(&self) -> String {
        format!("{} ({})", format_name(self.format), self.why)
    }
}

/// The name `--jsonl-format` gives a format.
pub fn format_name(format: JsonlFormat) -> &'static str {
    match format {
        JsonlFormat::Auto => "auto",
        JsonlFormat::Plain => "plain",
        JsonlFormat::Elasticdump => "elasticdump",
        JsonlFormat::Bulk => "bulk",
        JsonlFormat::DeadLetter => "dead-letter",
    }
}

fn plain(why: impl Into<String>) -> Detected {
    Detected {
        format: JsonlFormat::Plain,
        why: why.into(),
        seen: true,
    }
}

/// Plain, as no first line could be read to decide on.
fn unseen(why: impl Into<String>) -> Detected {
    Detected {
        seen: false,
        ..plain(why)
    }
}

/// The format of a first line that is not blank (its line end removed).
pub fn classify(line: &[u8]) -> Detected {
    let map = match serde_json::from_slice::<Json>(line) {
        Ok(Json::Object(map)) => map,
        Ok(_) => return plain("its first line is not a JSON object"),
        Err(_) => return plain("its first line is not valid JSON"),
    };
    if super::jsonl_replay::is_entry(&map) {
        return Detected {
            format: JsonlFormat::DeadLetter,
            why: "its first line is an entry of a --dead-letter file".into(),
            seen: true,
        };
    }
    let has = |k: &str| map.contains_key(k);
    if matches!(map.get("_source"), Some(Json::Object(_)))
        && (has("_index") || has("_id"))
        && map.keys().all(|k| HIT_KEYS.contains(&k.as_str()))
    {
        return Detected {
            format: JsonlFormat::Elasticdump,
            why: "its first line is a search hit: a _source object with _index or _id".into(),
            seen: true,
        };
    }
    if let (1, Some((kind, Json::Object(meta)))) = (map.len(), map.iter().next()) {
        if BULK_ACTIONS.contains(&kind.as_str())
            && meta.keys().all(|k| BULK_META.contains(&k.as_str()))
        {
            return Detected {
                format: JsonlFormat::Bulk,
                why: format!("its first line is a _bulk \"{kind}\" action"),
                seen: true,
            };
        }
    }
    plain("its first line is an object, not an elasticdump hit, a _bulk action or a dead-letter entry")
}

/// An input whose first bytes were read ahead: they are read again first,
/// then the rest; an error met while reading ahead comes after them, once.
pub struct Peeked<R> {
    held: io::Cursor<Vec<u8>>,
    error: Option<io::Error>,
    rest: R,
}

impl<R: Read> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.held.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => self.rest.read(buf),
        }
    }
}

/// Reads `input` up to the end of its first line that is not blank (a
/// UTF-8 byte-order mark before it left out) and decides its format; at
/// most `max_line_bytes` (and a few for a byte-order mark and a `\r`) are
/// read ahead. Returns the input, every byte still to be read, and the
/// format.
pub fn peek<R: Read>(mut input: R, max_line_bytes: u64) -> (Peeked<R>, Detected) {
    let limit = usize::try_from(max_line_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(4);
    let mut held: Vec<u8> = Vec::new();
    // Where the line being read starts, and how far it was searched.
    let (mut start, mut searched) = (0usize, 0usize);
    let mut error = None;
    let detected = 'peek: loop {
        while let Some(i) = memchr::memchr(b'\n', &held[searched..]) {
            let end = searched + i;
            let line = first_line(&held[start..end], start == 0);
            if !line.iter().all(u8::is_ascii_whitespace) {
                break 'peek classify(line);
            }
            start = end + 1;
            searched = start;
        }
        searched = held.len();
        if held.len() > limit {
            break unseen(format!(
                "no line ends within its first {max_line_bytes} bytes (--jsonl-max-line-bytes)"
            ));
        }
        let at = held.len();
        held.resize(at + READ, 0);
        let read = input.read(&mut held[at..]);
        held.truncate(at + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => {
                let line = first_line(&held[start..], start == 0);
                break if line.iter().all(u8::is_ascii_whitespace) {
                    unseen("it holds no line to decide from")
                } else {
                    classify(line)
                };
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let why = if is_stopped(&e) {
                    "the run stopped before its first line came"
                } else {
                    "its first line could not be read"
                };
                error = Some(e);
                break unseen(why);
            }
        }
    };
    let peeked = Peeked {
        held: io::Cursor::new(held),
        error,
        rest: input,
    };
    (peeked, detected)
}

/// A line without its `\r` and, at the start of the input, a byte-order
/// mark.
fn first_line(line: &[u8], at_start: bool) -> &[u8] {
    let line = if at_start {
        line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
    } else {
        line
    };
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `peek` decides for `input`, and every byte read through it.
    fn peeked(input: &[u8], max: u64) -> (JsonlFormat, Vec<u8>) {
        let (mut r, d) = peek(io::Cursor::new(input.to_vec()), max);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        (d.format, all)
    }

    #[test]
    fn the_first_line_that_is_not_blank_decides() {
        use JsonlFormat::*;
        let big = format!("{{\"a\":\"{}\"}}\n", "x".repeat(200_000));
        let cases: Vec<(&str, Vec<u8>, JsonlFormat)> = vec![
            ("empty", b"".to_vec(), Plain),
            ("blank only", b"\n  \r\n\t\n".to_vec(), Plain),
            (
                "elasticdump",
                br#"{"_index":"i","_type":"_doc","_id":"1","_score":1,"_source":{"a":1}}"#.to_vec(),
                Elasticdump,
            ),
            (
                "elasticdump after blank lines and a BOM",
                b"\xEF\xBB\xBF\n \r\n{\"_id\":\"1\",\"_source\":{},\"sort\":[1]}\r\n{}".to_vec(),
                Elasticdump,
            ),
            (
                "bulk index",
                b"{\"index\":{\"_id\":\"1\"}}\n{}\n".to_vec(),
                Bulk,
            ),
            ("bulk delete", b"{\"delete\":{}}".to_vec(), Bulk),
            (
                "bulk action not an object",
                b"{\"index\":1}\n".to_vec(),
                Plain,
            ),
            (
                "bulk action with its metadata",
                b"{\"create\":{\"_index\":\"i\",\"_id\":\"1\",\"routing\":\"r\",\"pipeline\":\"p\"}}\n{}\n".to_vec(),
                Bulk,
            ),
            (
                "records that look like actions but carry a field",
                b"{\"index\":{\"a\":1}}\n{\"index\":{\"a\":2}}\n".to_vec(),
                Plain,
            ),
            (
                "two keys",
                b"{\"index\":{},\"create\":{}}\n".to_vec(),
                Plain,
            ),
            (
                "_source not an object",
                b"{\"_id\":\"1\",\"_source\":\"x\"}\n".to_vec(),
                Plain,
            ),
            (
                "_source without _id or _index",
                b"{\"_source\":{}}\n".to_vec(),
                Plain,
            ),
            (
                "another key",
                b"{\"_id\":\"1\",\"_source\":{},\"user\":1}\n".to_vec(),
                Plain,
            ),
            ("not JSON", b"{\"_id\":\n{\"index\":{}}\n".to_vec(), Plain),
            ("an array", b"[{\"index\":{}}]\n".to_vec(), Plain),
            ("a line past the read-ahead", big.into_bytes(), Plain),
            (
                "a dead-letter entry",
                b"{\"stage\":\"sink\",\"error_type\":\"conversion\",\"position\":3,\"reason\":\"r\",\"record\":{\"a\":1}}\n".to_vec(),
                DeadLetter,
            ),
            (
                "a record with an entry's keys and one more",
                b"{\"stage\":\"sink\",\"error_type\":\"conversion\",\"position\":3,\"reason\":\"r\",\"record\":{},\"id\":1}\n".to_vec(),
                Plain,
            ),
        ];
        for (name, input, want) in cases {
            let (got, all) = peeked(&input, 1 << 20);
            assert_eq!(got, want, "{name}");
            assert_eq!(all, input, "{name}: every byte read again");
        }
    }

    #[test]
    fn a_first_line_longer_than_the_limit_is_plain() {
        let mut input = b"\n".to_vec();
        input.extend(format!("{{\"index\":{{\"_id\":\"{}\"}}}}\n", "9".repeat(300_000)).bytes());
        let (got, all) = peeked(&input, 1000);
        assert_eq!(got, JsonlFormat::Plain);
        assert_eq!(all, input);
        let (got, _) = peeked(&input, 400_000);
        assert_eq!(got, JsonlFormat::Bulk);
    }

    #[test]
    fn an_error_while_reading_ahead_comes_after_what_was_read() {
        struct Failing(bool);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    Err(io::Error::other("broken"))
                } else {
                    buf[..3].copy_from_slice(b"{\"a");
                    Ok(3)
                }
            }
        }
        let (mut r, d) = peek(Failing(false), 100);
        assert_eq!(d.format, JsonlFormat::Plain);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        assert_eq!(r.read(&mut buf).unwrap_err().to_string(), "broken");
    }
}
