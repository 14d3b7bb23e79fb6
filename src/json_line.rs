//! The one JSON-line encoder: every byte of a JSON-lines output is written
//! here, whichever way the value came. A record's line ([`record_into`]),
//! a CSV row's line straight from its field texts ([`RowEncoder`]), an
//! NDJSON object or an Elasticsearch `_source` value kept as its compact
//! JSON text ([`raw_value`], [`compact_into`]) all go through the same
//! string escaping ([`str_into`]), keys ([`keys`]) and inference rule
//! ([`inferred_into`]), so the paths cannot drift apart.
//!
//! The fast paths: a string with nothing to escape (checked eight bytes at
//! a time) is one copy; a CSV row without type inference is its field texts
//! between precomputed glue bytes (`{"a":"`, `","b":"`, `"}`).

use std::ops::Range;
use std::sync::Arc;

use crate::record::{Inferred, Record, Schema, Value};

/// Bytes JSON strings must escape: `"`, `\\` and the control characters.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// True when no byte of `bytes` needs escaping in a JSON string: eight
/// bytes at a time (a control character, `"` or `\\` in any of them).
#[inline(always)]
fn needs_no_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `v` is zero: its high bit set in the result (exact).
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        // A byte below 0x20 (exact for every byte: !v drops those >= 0x80).
        let control = v.wrapping_sub(ONES * 0x20) & !v & HIGH;
        let quote = has_zero(v ^ (ONES * u64::from(b'"')));
        let backslash = has_zero(v ^ (ONES * u64::from(b'\\')));
        if control | quote | backslash != 0 {
            return false;
        }
    }
    words.remainder().iter().all(|&b| !NEEDS_ESCAPE[b as usize])
}

/// Appends `s` as a JSON string, exactly as serde_json writes it: `"`,
/// `\\`, `\n`, `\r`, `\t`, backspace and form feed escaped by letter, the
/// other control characters as `\u00XX`, everything else as it is. The
/// common case (nothing to escape) is one copy.
#[inline(always)]
pub(crate) fn str_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if needs_no_escape(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        out.push(b'"');
        escaped_into(out, bytes);
        out.push(b'"');
    }
}

/// [`str_into`] without the quotes around it.
#[inline(always)]
pub(crate) fn str_content_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if needs_no_escape(bytes) {
        out.extend_from_slice(bytes);
    } else {
        escaped_into(out, bytes);
    }
}

/// The slow path of [`str_content_into`]: runs of bytes that need no
/// escaping copied whole, the others escaped one by one.
fn escaped_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// `name` as a JSON key with its colon: `"name":`.
pub(crate) fn key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 3);
    str_into(&mut k, name);
    k.push(b':');
    k
}

/// The schema's field names as JSON keys with their colons ([`key`]),
/// escaped once per schema.
#[inline]
pub(crate) fn keys(schema: &Schema) -> &[Vec<u8>] {
    schema
        .json_keys
        .get_or_init(|| schema.names().iter().map(|n| key(n)).collect())
}

/// Appends what the value `Value::infer(text)` is written as, without
/// making the value: `null` for an empty text, a number as written (an
/// integer as `i64` prints it: only `-0` changes, to `0`), `true` /
/// `false`, or a JSON string.
#[inline]
pub(crate) fn inferred_into(out: &mut Vec<u8>, text: &str) {
    match Inferred::of(text) {
        Inferred::Null => out.extend_from_slice(b"null"),
        Inferred::Int(0) => out.push(b'0'),
        Inferred::Int(_) | Inferred::Number => out.extend_from_slice(text.as_bytes()),
        Inferred::Bool(true) => out.extend_from_slice(b"true"),
        Inferred::Bool(false) => out.extend_from_slice(b"false"),
        Inferred::Text => str_into(out, text),
    }
}

/// Appends the value as JSON.
#[inline]
pub(crate) fn value_into(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Str(s) => str_into(out, s),
        Value::Raw(raw) => out.extend_from_slice(raw.as_bytes()),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => {
            use std::io::Write;
            write!(out, "{i}").expect("writing to a Vec cannot fail");
        }
        Value::Decimal(d) => out.extend_from_slice(d.as_bytes()),
        Value::Json(v) => serde_json::to_writer(out, v).expect("writing to a Vec cannot fail"),
    }
}

/// Appends the record as one JSON object (no line end), keys in schema
/// order: the line a JSON-lines output holds for it.
pub(crate) fn record_into(out: &mut Vec<u8>, record: &Record) {
    out.push(b'{');
    for (i, (key, value)) in keys(&record.schema).iter().zip(&record.values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key);
        value_into(out, value);
    }
    out.push(b'}');
}

/// A CSV row's line straight from its field texts: the very bytes
/// [`record_into`] writes for the record the row makes (every value a
/// string, or inferred with `--csv-infer-types`), without making it.
pub(crate) struct RowEncoder {
    schema: Arc<Schema>,
    infer: bool,
    /// Without type inference, every value is a string: what goes before
    /// field i's text (`{"a":"`, then `","b":"`); the last is followed by `"}`.
    glue: Vec<Vec<u8>>,
    /// The glue's length in all, with the closing `"}`.
    glue_len: usize,
}

impl RowEncoder {
    /// An encoder for rows of `schema`, their values typed with `infer`.
    pub(crate) fn new(schema: Arc<Schema>, infer: bool) -> RowEncoder {
        let glue: Vec<Vec<u8>> = keys(&schema)
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let mut g = if i == 0 {
                    b"{".to_vec()
                } else {
                    b"\",".to_vec()
                };
                g.extend_from_slice(key);
                g.push(b'"');
                g
            })
            .collect();
        let glue_len = glue.iter().map(Vec::len).sum::<usize>() + 2;
        RowEncoder {
            schema,
            infer,
            glue,
            glue_len,
        }
    }

    /// The rows' schema.
    pub(crate) fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Appends one row's JSON (without its line end) from the field texts
    /// at `ranges` of `all`, one range per schema field.
    #[inline]
    pub(crate) fn write(
        &self,
        out: &mut Vec<u8>,
        all: &str,
        ranges: impl ExactSizeIterator<Item = Range<usize>>,
    ) {
        if ranges.len() == 0 {
            out.extend_from_slice(b"{}");
        } else if self.infer {
            for ((i, range), key) in ranges.enumerate().zip(keys(&self.schema)) {
                out.push(if i == 0 { b'{' } else { b',' });
                out.extend_from_slice(key);
                inferred_into(out, &all[range]);
            }
            out.push(b'}');
        } else {
            out.reserve(all.len() + self.glue_len);
            for (glue, range) in self.glue.iter().zip(ranges) {
                out.extend_from_slice(glue);
                str_content_into(out, &all[range]);
            }
            out.extend_from_slice(b"\"}");
        }
    }
}

/// A JSON value's text (an NDJSON member, a `_source` value) as a record
/// value: null and booleans as themselves, anything else as its JSON text
/// ([`Value::Raw`], written through as it is), objects and arrays on one
/// line ([`compact`]).
pub(crate) fn raw_value(text: &str) -> Value {
    match text.as_bytes().first() {
        Some(b'n') => Value::Null,
        Some(b't') => Value::Bool(true),
        Some(b'f') => Value::Bool(false),
        Some(b'{' | b'[') => Value::Raw(compact(text)),
        _ => Value::Raw(text.to_string()),
    }
}

/// A value of a parsed JSON tree (an object read whole because a key
/// repeats) as [`raw_value`] makes it from the value's text: null and
/// booleans as themselves, anything else as its compact JSON text. A number
/// keeps its digits as they came (`-0` stays `-0`; as a 64-bit integer it
/// would be written `0`), so the line is what the text would give.
pub(crate) fn tree_value(value: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        other => Value::Raw(serde_json::to_string(other).expect("a JSON tree always serialises")),
    }
}

/// Valid JSON text without the whitespace between its tokens (a
/// `_source` as it was indexed, an NDJSON line, may hold some).
pub(crate) fn compact(text: &str) -> String {
    if !text
        .bytes()
        .any(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
    {
        return text.to_string();
    }
    let mut out = Vec::with_capacity(text.len());
    compact_into(text, &mut out);
    String::from_utf8(out).expect("removing ASCII whitespace keeps UTF-8 valid")
}

/// [`compact`], appended to `out`. Strings are copied whole (their end
/// found with memchr), the bytes between them in runs. An NDJSON object
/// whose keys need no escaping (and differ) is its line this way.
pub(crate) fn compact_into(text: &str, out: &mut Vec<u8>) {
    let b = text.as_bytes();
    let ws = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t');
    let mut i = 0;
    let mut run = 0;
    while i < b.len() {
        let c = b[i];
        if ws(c) {
            out.extend_from_slice(&b[run..i]);
            i += 1;
            run = i;
        } else if c == b'"' {
            // To the closing quote: past every escaped character.
            i += 1;
            loop {
                match memchr::memchr2(b'"', b'\\', &b[i..]) {
                    Some(k) if b[i + k] == b'\\' => i += k + 2,
                    Some(k) => {
                        i += k + 1;
                        break;
                    }
                    None => {
                        i = b.len();
                        break;
                    }
                }
            }
            i = i.min(b.len());
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&b[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_and_keys_escape_exactly_as_serde_json_does() {
        let samples = [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\ncr\rtab\t",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "\u{8}\u{c}",
            "Zürich 東京 🚀",
            "/slash/",
        ];
        for s in samples {
            let want = serde_json::to_string(s).unwrap();
            assert_eq!(text(|o| str_into(o, s)), want);
            assert_eq!(text(|o| str_content_into(o, s)), want[1..want.len() - 1]);
            assert_eq!(String::from_utf8(key(s)).unwrap(), format!("{want}:"));
        }
    }

    #[test]
    fn the_fast_path_escapes_every_position_of_long_strings() {
        let specials = [
            '"', '\\', '\n', '\u{1}', '\u{1f}', ' ', '\u{7f}', 'é', '\u{80}',
        ];
        for len in [7usize, 8, 9, 15, 16, 17, 40] {
            for at in 0..len {
                for c in specials {
                    let mut s: String = "a".repeat(len);
                    s.replace_range(at..at + 1, &c.to_string());
                    let want = serde_json::to_string(&s).unwrap();
                    assert_eq!(text(|o| str_into(o, &s)), want, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(-7),
            Value::Int(i64::MIN),
            Value::Decimal("19.999999999999999999".into()),
            Value::Decimal("1e+3".into()),
            Value::Str("x\n\"y\" \u{1}é".into()),
            Value::Json(serde_json::json!({"k": [1, "x y"], "e": "q\"u\\ \n"})),
        ];
        for v in values {
            let want = serde_json::to_string(&v.to_json()).unwrap();
            assert_eq!(text(|o| value_into(o, &v)), want, "{v:?}");
        }
        // Raw JSON text goes through as it is.
        let raw = Value::Raw(r#""\u00e9 \/""#.into());
        assert_eq!(text(|o| value_into(o, &raw)), r#""\u00e9 \/""#);
    }

    #[test]
    fn writes_a_record_as_json_in_schema_order() {
        let schema = Arc::new(Schema::new(vec!["b".into(), "a\"q".into()]));
        let r = Record {
            schema,
            values: vec![Value::Str("x\n\"y\"".into()), Value::Null],
            position: 2,
        };
        assert_eq!(
            text(|o| record_into(o, &r)),
            r#"{"b":"x\n\"y\"","a\"q":null}"#
        );
    }

    const INFER_SAMPLES: [&str; 23] = [
        "",
        "0",
        "-0",
        "42",
        "-7",
        "007",
        "3.25",
        "-0.50",
        "1.",
        ".5",
        "1e5",
        "+3",
        "123456789012345678901234567890",
        "9223372036854775808",
        "-9223372036854775808",
        "TRUE",
        "false",
        "FaLsE",
        "text",
        "q\"uote",
        "tab\t",
        "Zürich",
        " 1",
    ];

    #[test]
    fn inferred_json_is_what_the_inferred_value_writes() {
        for t in INFER_SAMPLES {
            let want = text(|o| value_into(o, &Value::infer(t.into())));
            assert_eq!(text(|o| inferred_into(o, t)), want, "{t:?}");
        }
    }

    /// A row written from its field texts is what its record is written
    /// as, with and without inference, for every sample in every field.
    #[test]
    fn rows_are_written_as_their_records_are() {
        let names = ["id", "na\"me", "", "é\n"].map(String::from).to_vec();
        let schema = Arc::new(Schema::new(names));
        for infer in [false, true] {
            let encoder = RowEncoder::new(schema.clone(), infer);
            for (i, t) in INFER_SAMPLES.iter().enumerate() {
                let fields = [*t, "x", INFER_SAMPLES[(i + 5) % 23], "\\"];
                let all = fields.concat();
                let mut at = 0;
                let ranges: Vec<Range<usize>> = fields
                    .iter()
                    .map(|f| {
                        at += f.len();
                        at - f.len()..at
                    })
                    .collect();
                let record = Record {
                    schema: schema.clone(),
                    values: fields
                        .iter()
                        .map(|f| match infer {
                            true => Value::infer(f.to_string()),
                            false => Value::Str(f.to_string()),
                        })
                        .collect(),
                    position: 1,
                };
                let want = text(|o| record_into(o, &record));
                let got = text(|o| encoder.write(o, &all, ranges.into_iter()));
                assert_eq!(got, want, "{fields:?}");
            }
        }
        let none = RowEncoder::new(Arc::new(Schema::new(Vec::new())), false);
        assert_eq!(text(|o| none.write(o, "", std::iter::empty())), "{}");
    }

    /// The byte-by-byte definition: whitespace dropped outside strings.
    fn slow_compact(text: &str) -> String {
        let mut out = String::new();
        let (mut in_str, mut escaped) = (false, false);
        for c in text.chars() {
            if in_str {
                out.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_str = false;
                }
            } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
                in_str = c == '"';
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn compact_drops_whitespace_outside_strings_only() {
        for text in [
            r#"{ "a b" : [ 1 , 2 ] , "c" : "x \" y\\" , "d":{"e" :"\\\"" } }"#,
            "{\n\t\"k\": \"v\\n w\",\r\n \"n\": null}",
            r#"{"no":"spaces","at":"all"}"#,
            r#"  "edge \\"   "#,
            r#"{"é": "ü ß", "x": "\u00e9 "}"#,
        ] {
            assert_eq!(compact(text), slow_compact(text), "{text}");
        }
    }

    /// A value read through a tree is written as its text is, and types
    /// as the value it was read as.
    #[test]
    fn tree_values_are_written_as_their_text() {
        for text in [
            "-0",
            "0",
            "1.0e5",
            "123456789012345678901234567890",
            "\"\\u00e9 x\\n\"",
            "{\"a\":[1,-0,\"x y\"],\"b\":null}",
            "null",
            "true",
        ] {
            let tree: serde_json::Value = serde_json::from_str(text).unwrap();
            let value = tree_value(&tree);
            let raw = raw_value(text);
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text_of(&value)).unwrap(),
                serde_json::from_str::<serde_json::Value>(&text_of(&raw)).unwrap(),
            );
            assert_eq!(*value.typed(), Value::from_json(&tree), "{text}");
        }
        assert_eq!(text_of(&tree_value(&serde_json::json!(-0))), "0");
        let minus_zero: serde_json::Value = serde_json::from_str("-0").unwrap();
        assert_eq!(text_of(&tree_value(&minus_zero)), "-0");
    }

    fn text_of(v: &Value) -> String {
        text(|o| value_into(o, v))
    }

    #[test]
    fn raw_values_keep_their_json_text_on_one_line() {
        assert_eq!(raw_value("null"), Value::Null);
        assert_eq!(raw_value("true"), Value::Bool(true));
        assert_eq!(raw_value("false"), Value::Bool(false));
        assert_eq!(raw_value("-0.50"), Value::Raw("-0.50".into()));
        assert_eq!(raw_value(r#""\u00e9""#), Value::Raw(r#""\u00e9""#.into()));
        assert_eq!(
            raw_value("{ \"a\" : [1, \"x y\"] }"),
            Value::Raw(r#"{"a":[1,"x y"]}"#.into())
        );
    }
}
