//! One NDJSON line to a record (or the JSON line the file sink would write
//! for it), as plain JSON, an elasticdump document or a `_bulk` pair: the
//! per-line code shared by the single-threaded reader (`jsonl.rs`) and the
//! chunks read on several threads (`jsonl_parallel.rs`).

use std::borrow::Cow;

use serde::de::DeserializeSeed;
use serde_json::Value as Json;

use crate::config::JsonlFormat;
use crate::error::ErrorType;
use crate::json_line::{compact_into, raw_value, record_into, tree_value};
use crate::record::Record;

use super::json_object::{all_different, Members, MembersInto, SchemaCache};
use super::output::Pending;

/// Where a line's content lies in `raw` (the line without its `\n`): after
/// a UTF-8 byte-order mark on the input's first line (`first`), before the
/// `\r` of a `\r\n`; cut to the first `max` bytes, and then true, when it is
/// longer (a line too long).
pub(super) fn line_bounds(raw: &[u8], first: bool, max: usize) -> (std::ops::Range<usize>, bool) {
    let start = if first && raw.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let end = raw.len() - usize::from(raw.len() > start && raw.last() == Some(&b'\r'));
    if end - start > max {
        (start..start + max, true)
    } else {
        (start..end, false)
    }
}

/// Why a line too long is rejected.
pub(super) fn too_long(max: u64) -> String {
    format!("a line longer than --jsonl-max-line-bytes {max}")
}

/// What one line's content came to.
pub(super) enum Took {
    /// Blank: skipped.
    Blank,
    /// A record (or its JSON line) added to the pending chunk.
    Row,
    /// A `_bulk` action line, kept for the document line that follows.
    Action,
    /// Not a record, for this reason.
    Rejected(String),
}

/// Adds a line (`line`: its content, number `at`) read as `format` to
/// `pending`, as a record or its JSON line; `action`: the `_bulk` action
/// line waiting for its document.
pub(super) fn take_text(
    format: JsonlFormat,
    action: &mut Option<Action>,
    line: &[u8],
    at: u64,
    cache: &mut SchemaCache,
    pending: &mut Pending,
) -> Took {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Took::Blank;
    }
    let took = match format {
        JsonlFormat::Plain | JsonlFormat::Auto => {
            take_line(line, at, cache, pending).map(|()| true)
        }
        JsonlFormat::DeadLetter => {
            unreachable!("dead-letter entries are read one by one by jsonl_replay")
        }
        format => take_dump_line(format, action, line, at, cache, pending),
    };
    match took {
        Ok(true) => Took::Row,
        Ok(false) => Took::Action,
        Err((_, reason)) => Took::Rejected(reason),
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
    let text = crate::utf8::text(line).map_err(|e| {
        (
            ErrorType::Parse,
            format!("not valid UTF-8 (at byte {})", e.valid_up_to() + 1),
        )
    })?;
    // Room for the members of most lines at once.
    let mut members: Members = Vec::with_capacity(16);
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
            members_into(&members, &mut lines.bytes);
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

/// The object of `members` (keys without escapes) without whitespace: the
/// line [`compact_into`] makes of it, with only nested objects and arrays
/// scanned (a value's raw text has no whitespace around it, and a string
/// none to take out).
fn members_into(members: &Members, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(key.0.as_bytes());
        out.extend_from_slice(b"\":");
        let raw = value.get();
        match raw.as_bytes().first() {
            Some(b'{' | b'[') => compact_into(raw, out),
            _ => out.extend_from_slice(raw.as_bytes()),
        }
    }
    out.push(b'}');
}

/// Adds `record` to `pending`, or its JSON line.
pub(super) fn push(pending: &mut Pending, record: Record) {
    match pending {
        Pending::Records(chunk) => chunk.push(record),
        Pending::Lines(lines) => {
            record_into(&mut lines.bytes, &record);
            lines.end_line(record.position);
        }
    }
}

/// A `_bulk` action line whose document line is still to come.
pub(super) struct Action {
    /// Its line number and text (for the dead-letter file).
    pub line: u64,
    pub raw: Vec<u8>,
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
    let (kind, why) = match crate::utf8::text(line) {
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
pub(super) fn explain(text: &str) -> (ErrorType, String) {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::record::{Lines, Schema, Value};

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
            "{ }",
            "{\t\"a\" :\t[ ] ,\"b\":{ } ,\"c\" : [ 1 , \" , \" , { \"d\" : \"e f\" } ] \r}",
            r#"{"k":"v","n":0,"s":"{ [ \\\" ] }"}"#,
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
