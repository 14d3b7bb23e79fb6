//! `--jsonl-format dead-letter`: a `--dead-letter` file read back as the
//! records it holds, so a fixed table or field mapping can take them again.
//!
//! - an entry with `"record"` (a record a sink rejected) is that record: its
//!   fields in their order, its values as the first run's sink got them
//!   (`"values": "text"`: strings as CSV text; otherwise JSON values, as
//!   the NDJSON source gives them). Its position is the entry's line;
//! - an entry with `"raw"` (a row the source could not read: a CSV row, an
//!   NDJSON line) holds no record: it is rejected again, its raw bytes kept
//!   as they were (`raw_hex` when they are not UTF-8), so the next
//!   dead-letter file still holds it, to be fixed and loaded with the
//!   source's settings;
//! - an entry `"in_doubt": true` (a record of a batch whose commit could
//!   not be checked) is skipped: the batch may have committed. The run says
//!   how many were skipped and their transaction ids; with
//!   `--jsonl-replay-in-doubt` (the transaction is known rolled back) they
//!   are records like the others;
//! - a line that is not an entry is rejected like a bad NDJSON line.

use std::collections::BTreeSet;

use serde_json::{Map, Value as Json};

use crate::dead_letter::ENTRY_KEYS;
use crate::json_line::tree_value;
use crate::record::{Record, Value};

use super::json_object::SchemaCache;
use super::output::Pending;

/// True when `map` is a dead-letter entry as pipeline-cli writes it: a
/// stage, an error type, a position, a reason, a record or a raw row, and
/// no key an entry does not have.
pub(super) fn is_entry(map: &Map<String, Json>) -> bool {
    let stage = matches!(
        map.get("stage").and_then(Json::as_str),
        Some("source" | "sink")
    );
    let held = matches!(
        (map.get("record"), map.get("raw")),
        (Some(Json::Object(_)), None) | (None, Some(Json::String(_)))
    );
    stage
        && held
        && map.get("error_type").is_some_and(Json::is_string)
        && map.get("position").is_some_and(Json::is_u64)
        && map.get("reason").is_some_and(Json::is_string)
        && map.keys().all(|k| ENTRY_KEYS.contains(&k.as_str()))
}

/// What reading a dead-letter file met besides records, for the end of
/// the run.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// `--jsonl-replay-in-doubt`.
    pub in_doubt: bool,
    /// In-doubt entries not loaded (failed), and their transaction ids.
    pub skipped: u64,
    pub xids: BTreeSet<String>,
}

/// What one line of a dead-letter file came to.
pub(super) enum Entry {
    /// A record, added to the pending chunk.
    Row,
    /// Rejected: the bytes to keep (the raw row an entry holds, else the
    /// line) and why.
    Rejected(Option<Vec<u8>>, String),
}

impl Replay {
    /// Adds the entry on line `at` (its content `line`, not blank) to
    /// `pending` as its record, or says what else it is.
    pub fn take(
        &mut self,
        line: &[u8],
        at: u64,
        cache: &mut SchemaCache,
        pending: &mut Pending,
    ) -> Entry {
        let map = match serde_json::from_slice::<Json>(line) {
            Ok(Json::Object(map)) => map,
            Ok(_) | Err(_) => {
                let why = match std::str::from_utf8(line) {
                    Ok(text) => super::jsonl_line::explain(text).1,
                    Err(e) => format!("not valid UTF-8 (at byte {})", e.valid_up_to() + 1),
                };
                return Entry::Rejected(None, format!("not a dead-letter entry: {why}"));
            }
        };
        if map.get("in_doubt") == Some(&Json::Bool(true)) && !self.in_doubt {
            self.skipped += 1;
            let xid = map.get("xid").and_then(Json::as_str).unwrap_or_default();
            self.xids.insert(xid.to_string());
            // Failed again, the entry kept whole: a replay that exits 0
            // must not leave a record only in the file it replayed.
            return Entry::Rejected(
                None,
                format!(
                    "an in-doubt record (xid '{xid}'): its batch may have committed; replay it with --jsonl-replay-in-doubt once the transaction is known rolled back"
                ),
            );
        }
        match (map.get("record"), map.get("raw")) {
            (Some(Json::Object(record)), _) => {
                let text = map.get("values").and_then(Json::as_str) == Some("text");
                let schema = cache.schema(record.keys().map(String::as_str));
                let values = record
                    .values()
                    .map(|v| {
                        if text {
                            Value::from_json(v)
                        } else {
                            tree_value(v)
                        }
                    })
                    .collect();
                super::jsonl_line::push(
                    pending,
                    Record {
                        schema,
                        values,
                        position: at,
                    },
                );
                Entry::Row
            }
            (_, Some(Json::String(raw))) => {
                let bytes = map
                    .get("raw_hex")
                    .and_then(Json::as_str)
                    .and_then(unhex)
                    .unwrap_or_else(|| raw.as_bytes().to_vec());
                Entry::Rejected(Some(bytes), raw_reason(&map))
            }
            _ => Entry::Rejected(
                None,
                "not a dead-letter entry: no \"record\" object or \"raw\" string".into(),
            ),
        }
    }

    /// The warning for the in-doubt entries not loaded, if any were.
    pub fn skipped_warning(&self, name: &str) -> Option<String> {
        if self.skipped == 0 {
            return None;
        }
        let xids: Vec<&str> = self
            .xids
            .iter()
            .map(|x| {
                if x.is_empty() {
                    "(a plain transaction)"
                } else {
                    x
                }
            })
            .collect();
        Some(format!(
            "{name}: {} in-doubt entries not loaded (xid {}): their batch may have committed; they are counted failed and kept whole in --dead-letter, if given; once it is known rolled back (XA RECOVER does not list it and its rows are not in the table), replay them with --jsonl-replay-in-doubt",
            self.skipped,
            xids.join(", ")
        ))
    }
}

/// Why a raw row is rejected again: where the first run read it, and why it
/// could not.
fn raw_reason(entry: &Map<String, Json>) -> String {
    let position = entry
        .get("position")
        .map(Json::to_string)
        .unwrap_or_default();
    let file = match entry.get("file").and_then(Json::as_str) {
        Some(f) => format!(" of {f}"),
        None => String::new(),
    };
    let why = entry.get("reason").and_then(Json::as_str).unwrap_or("");
    format!(
        "a row the source could not read (position {position}{file}: {why}), kept as it was read: fix it and load it with the source's settings"
    )
}

/// The bytes of a `raw_hex` text, or none when it is not hex.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::dead_letter::DeadLetter;
    use crate::error::ErrorType;
    use crate::record::Schema;

    fn record(names: &[&str], values: Vec<Value>, position: u64) -> Record {
        Record {
            schema: Arc::new(Schema::new(names.iter().map(|n| n.to_string()).collect())),
            values,
            position,
        }
    }

    /// Entries the dead-letter file's own writer wrote come back as the
    /// records they hold, value for value; raw rows as their bytes; in-doubt
    /// entries only when asked for.
    #[test]
    fn what_the_dead_letter_file_keeps_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let dl = DeadLetter::open(Some(&path)).unwrap();
        let csv = record(
            &["id", "doc", "n"],
            vec![
                Value::Str("1".into()),
                Value::Str("{\"a\": 1}".into()),
                Value::Int(7),
            ],
            2,
        );
        let doc = record(
            &["id", "doc", "big"],
            vec![
                Value::Raw("\"x\"".into()),
                Value::Raw("{\"a\":[1,\"y\"]}".into()),
                Value::Raw("123456789012345678901234567890".into()),
            ],
            3,
        );
        dl.sink_record(&csv, ErrorType::Conversion, "too long", None)
            .unwrap();
        dl.sink_record(&doc, ErrorType::Conversion, "too long", None)
            .unwrap();
        dl.sink_record_in_doubt(&doc, "pcli-1", "cut off").unwrap();
        dl.source_row(
            (9, None),
            Some("in.csv"),
            b"a,\xff,c",
            ErrorType::Parse,
            "bad row",
        )
        .unwrap();
        dl.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);

        for in_doubt in [false, true] {
            let mut replay = Replay {
                in_doubt,
                ..Replay::default()
            };
            let mut cache = SchemaCache::default();
            let mut pending = Pending::Records(Vec::new());
            let mut rejected = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                let map: Map<String, Json> = serde_json::from_str(line).unwrap();
                assert!(is_entry(&map), "{line}");
                match replay.take(line.as_bytes(), i as u64 + 1, &mut cache, &mut pending) {
                    Entry::Rejected(raw, why) => rejected.push((raw, why)),
                    Entry::Row => {}
                }
            }
            let Pending::Records(got) = pending else {
                unreachable!()
            };
            let want = if in_doubt { 3 } else { 2 };
            assert_eq!(got.len(), want);
            assert_eq!(got[0].schema.names(), ["id", "doc", "n"]);
            assert_eq!(got[0].values, csv.values, "CSV text stays text");
            assert_eq!(got[0].position, 1);
            assert_eq!(got[1].values, doc.values, "JSON values stay JSON");
            assert_eq!(replay.skipped, if in_doubt { 0 } else { 1 });
            assert_eq!(rejected.len(), if in_doubt { 1 } else { 2 });
            if !in_doubt {
                assert_eq!(rejected[0].0, None, "the in-doubt entry kept whole");
                assert!(rejected[0].1.contains("xid 'pcli-1'"), "{}", rejected[0].1);
            }
            let raw = rejected.last().unwrap();
            assert_eq!(raw.0.as_deref(), Some(&b"a,\xff,c"[..]));
            assert!(raw.1.contains("position 9 of in.csv: bad row"), "{}", raw.1);
        }
    }

    #[test]
    fn only_entries_are_entries() {
        let cases = [
            (
                r#"{"stage":"sink","error_type":"conversion","position":1,"reason":"r","record":{}}"#,
                true,
            ),
            (
                r#"{"stage":"source","error_type":"parse","position":1,"reason":"r","raw":"x","raw_hex":"78","file":"f","run_id":"r1"}"#,
                true,
            ),
            (
                r#"{"stage":"sink","error_type":"connection","position":1,"reason":"r","in_doubt":true,"xid":"x","record":{"a":1}}"#,
                true,
            ),
            (
                r#"{"stage":"other","error_type":"parse","position":1,"reason":"r","raw":"x"}"#,
                false,
            ),
            (
                r#"{"stage":"sink","error_type":"parse","position":1,"reason":"r"}"#,
                false,
            ),
            (
                r#"{"stage":"sink","error_type":"parse","position":1,"reason":"r","record":{},"raw":"x"}"#,
                false,
            ),
            (
                r#"{"stage":"sink","error_type":"parse","position":"1","reason":"r","record":{}}"#,
                false,
            ),
            (
                r#"{"stage":"sink","error_type":"parse","position":1,"reason":"r","record":"x"}"#,
                false,
            ),
            (
                r#"{"stage":"sink","error_type":"parse","position":1,"reason":"r","record":{},"user":1}"#,
                false,
            ),
            (r#"{"id":1,"name":"a"}"#, false),
        ];
        for (line, want) in cases {
            let map: Map<String, Json> = serde_json::from_str(line).unwrap();
            assert_eq!(is_entry(&map), want, "{line}");
        }
    }

    #[test]
    fn lines_that_are_not_entries_are_rejected_with_the_reason() {
        let mut replay = Replay::default();
        let mut cache = SchemaCache::default();
        let mut pending = Pending::Records(Vec::new());
        for (line, want) in [
            (
                &b"[1]"[..],
                "not a dead-letter entry: not a JSON object but an array",
            ),
            (b"{\"a\":", "not a dead-letter entry: not valid JSON"),
            (
                b"{\"a\":\"\xff\"}",
                "not a dead-letter entry: not valid UTF-8 (at byte 7)",
            ),
            (
                b"{\"stage\":\"sink\"}",
                "no \"record\" object or \"raw\" string",
            ),
        ] {
            match replay.take(line, 1, &mut cache, &mut pending) {
                Entry::Rejected(None, why) => assert!(why.contains(want), "{why}"),
                _ => panic!("{line:?} taken"),
            }
        }
        assert_eq!(unhex("00ff"), Some(vec![0, 255]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
