//! `Record`, the unit that flows from a source to a sink, its `Value`s, and the
//! conversions between text, typed values and JSON.

use std::io::{self, Write};
use std::sync::Arc;

/// The ordered field names shared by many records (a CSV header, say), with
/// each name's JSON key escaped once up front so sinks never re-escape it.
#[derive(Debug)]
pub struct Schema {
    names: Vec<String>,
    json_keys: Vec<Vec<u8>>,
    /// The input file its records come from, when the source reads several.
    origin: Option<Arc<str>>,
}

impl Schema {
    /// Builds a schema from field names, in order.
    pub fn new(names: Vec<String>) -> Self {
        let json_keys = names
            .iter()
            .map(|n| {
                let mut k = serde_json::to_vec(n).expect("a string always serialises");
                k.push(b':');
                k
            })
            .collect();
        Schema {
            names,
            json_keys,
            origin: None,
        }
    }

    /// As [`Schema::new`], for the records of input file `origin` (one of
    /// several: dead-letter entries name it).
    pub fn with_origin(names: Vec<String>, origin: Option<Arc<str>>) -> Self {
        Schema {
            origin,
            ..Schema::new(names)
        }
    }

    /// The input file its records come from, when the source reads several.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The field names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Field `i`'s name as a JSON key with its colon (`"name":`).
    pub fn json_key(&self, i: usize) -> &[u8] {
        &self.json_keys[i]
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// One field value. Decimal keeps the exact source text of a number so no
/// precision is lost between a CSV file and a DECIMAL column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (an empty field with type inference on, a JSON null).
    Null,
    /// true / false.
    Bool(bool),
    /// A whole number that fits in 64 bits.
    Int(i64),
    /// A number kept as its exact text; always valid JSON number syntax.
    Decimal(String),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Str(String),
    /// Nested JSON (objects and arrays from a document source).
    Json(serde_json::Value),
    /// A JSON value kept as its compact JSON text, as a document source
    /// received it (a string with its quotes, a number's exact digits, an
    /// object or array on one line). Written to JSON as it is; [`Value::typed`]
    /// gives the typed value where one is needed.
    Raw(String),
}

impl Value {
    /// A JSON value as a record value: strings, booleans and null as
    /// themselves; a number as an integer when it fits 64 bits, otherwise as
    /// its exact JSON text (never through a 64-bit float); objects and arrays
    /// stay JSON.
    pub fn from_json(v: &serde_json::Value) -> Value {
        use serde_json::Value as Json;
        match v {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::String(s) => Value::Str(s.clone()),
            Json::Number(n) => match n.as_i64() {
                Some(i) if !n.to_string().contains(['.', 'e', 'E']) => Value::Int(i),
                _ => Value::Decimal(n.to_string()),
            },
            other => Value::Json(other.clone()),
        }
    }

    /// The typed value: a [`Value::Raw`] read as JSON (as [`Value::from_json`]
    /// reads it), any other value as it is. Raw text that is not valid JSON
    /// (a lone surrogate escape, say) stays text.
    pub fn typed(&self) -> std::borrow::Cow<'_, Value> {
        use std::borrow::Cow;
        let Value::Raw(raw) = self else {
            return Cow::Borrowed(self);
        };
        let b = raw.as_bytes();
        // The common case, a string without escapes, without a parse.
        if b.len() >= 2 && b[0] == b'"' && !b[1..b.len() - 1].contains(&b'\\') {
            return Cow::Owned(Value::Str(raw[1..raw.len() - 1].to_string()));
        }
        Cow::Owned(match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(v) => Value::from_json(&v),
            Err(_) => Value::Str(raw.clone()),
        })
    }

    /// [`Value::typed`], but raw text that is not valid JSON (a lone
    /// surrogate escape such as `"\ud800"`, which no UTF-8 text can hold)
    /// is an error rather than text, for a sink that must not store it.
    pub fn checked_typed(&self) -> Result<std::borrow::Cow<'_, Value>, String> {
        if let Value::Raw(raw) = self {
            if raw.contains('\\') {
                if let Err(e) = serde_json::from_str::<serde_json::Value>(raw) {
                    return Err(format!("not valid JSON text ({e}): {raw}"));
                }
            }
        }
        Ok(self.typed())
    }

    /// Infers a typed value from CSV text: integers, decimals and true/false
    /// become numbers and booleans, an empty field becomes null, anything
    /// else stays text. Integers with leading zeros ("007") stay text, since
    /// they are usually codes rather than quantities.
    pub fn infer(text: String) -> Value {
        if text.is_empty() {
            return Value::Null;
        }
        match classify_number(text.as_bytes()) {
            NumberKind::Int => {
                if let Ok(i) = text.parse::<i64>() {
                    return Value::Int(i);
                }
                return Value::Decimal(text);
            }
            NumberKind::Decimal => return Value::Decimal(text),
            NumberKind::NotNumber => {}
        }
        if text.eq_ignore_ascii_case("true") {
            Value::Bool(true)
        } else if text.eq_ignore_ascii_case("false") {
            Value::Bool(false)
        } else {
            Value::Str(text)
        }
    }

    /// Writes what `Value::infer(text).write_json(..)` writes, without
    /// making the value: `null`, a number as written (an integer as `i64`
    /// prints it), `true` / `false`, or a JSON string.
    pub fn infer_json_into(out: &mut Vec<u8>, text: &str) {
        if text.is_empty() {
            return out.extend_from_slice(b"null");
        }
        match classify_number(text.as_bytes()) {
            NumberKind::Int => match text.parse::<i64>() {
                // Only "-0" prints differently from its text.
                Ok(0) => out.push(b'0'),
                _ => out.extend_from_slice(text.as_bytes()),
            },
            NumberKind::Decimal => out.extend_from_slice(text.as_bytes()),
            NumberKind::NotNumber if text.eq_ignore_ascii_case("true") => {
                out.extend_from_slice(b"true")
            }
            NumberKind::NotNumber if text.eq_ignore_ascii_case("false") => {
                out.extend_from_slice(b"false")
            }
            NumberKind::NotNumber => json_str_into(out, text),
        }
    }

    /// Writes the value as JSON.
    pub fn write_json<W: Write>(&self, out: &mut W) -> io::Result<()> {
        match self {
            Value::Null => out.write_all(b"null"),
            Value::Bool(true) => out.write_all(b"true"),
            Value::Bool(false) => out.write_all(b"false"),
            Value::Int(i) => write!(out, "{i}"),
            Value::Decimal(d) => out.write_all(d.as_bytes()),
            // serde_json keeps a float a float: 12.0, not 12.
            Value::Float(f) if f.is_finite() => {
                serde_json::to_writer(out, f).map_err(io::Error::other)
            }
            Value::Float(_) => out.write_all(b"null"),
            Value::Str(s) => write_json_str(out, s),
            Value::Json(v) => serde_json::to_writer(out, v).map_err(io::Error::other),
            Value::Raw(raw) => out.write_all(raw.as_bytes()),
        }
    }

    /// The value as a `serde_json::Value` (used for dead-letter entries, not hot paths).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Decimal(d) => {
                serde_json::from_str(d).unwrap_or_else(|_| serde_json::Value::String(d.clone()))
            }
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Json(v) => v.clone(),
            Value::Raw(_) => self.typed().to_json(),
        }
    }
}

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
#[inline]
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

/// [`write_json_str`] into a buffer: the same bytes, with the common case
/// (nothing to escape) one copy.
#[inline]
pub fn json_str_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if needs_no_escape(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        write_json_str(out, s).expect("writing to a Vec cannot fail");
    }
}

/// [`json_str_into`] without the quotes around it.
#[inline]
pub fn json_str_content_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if needs_no_escape(bytes) {
        out.extend_from_slice(bytes);
    } else {
        write_json_str_content(out, s).expect("writing to a Vec cannot fail");
    }
}

/// Writes `s` as a JSON string, exactly as serde_json would. Runs of bytes
/// that need no escaping are copied whole.
pub fn write_json_str<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    write_json_str_content(out, s)?;
    out.write_all(b"\"")
}

/// [`write_json_str`] without the quotes around it.
fn write_json_str_content<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.write_all(&bytes[start..i])?;
        match b {
            b'"' => out.write_all(b"\\\"")?,
            b'\\' => out.write_all(b"\\\\")?,
            b'\n' => out.write_all(b"\\n")?,
            b'\r' => out.write_all(b"\\r")?,
            b'\t' => out.write_all(b"\\t")?,
            0x08 => out.write_all(b"\\b")?,
            0x0c => out.write_all(b"\\f")?,
            _ => out.write_all(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ])?,
        }
        start = i + 1;
    }
    out.write_all(&bytes[start..])
}

enum NumberKind {
    Int,
    Decimal,
    NotNumber,
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: the numbers JSON and SQL both read the same way.
fn classify_number(b: &[u8]) -> NumberKind {
    let digits = match b.first() {
        Some(b'-') => &b[1..],
        _ => b,
    };
    let int_len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 || (int_len > 1 && digits[0] == b'0') {
        return NumberKind::NotNumber;
    }
    let rest = &digits[int_len..];
    if rest.is_empty() {
        return NumberKind::Int;
    }
    if rest[0] == b'.' && rest.len() > 1 && rest[1..].iter().all(u8::is_ascii_digit) {
        return NumberKind::Decimal;
    }
    NumberKind::NotNumber
}

/// One record: values in the order of its schema, plus where it came from.
#[derive(Debug, Clone)]
pub struct Record {
    /// Field names, shared with the other records of the same shape.
    pub schema: Arc<Schema>,
    /// One value per schema field.
    pub values: Vec<Value>,
    /// Where the record came from: the line number in a CSV file, the
    /// ordinal of a document. Used in dead-letter entries.
    pub position: u64,
}

impl Record {
    /// Writes the record as one JSON object (no newline), keys in schema order.
    pub fn write_json<W: Write>(&self, out: &mut W) -> io::Result<()> {
        out.write_all(b"{")?;
        for (i, (key, value)) in self.schema.json_keys.iter().zip(&self.values).enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(key)?;
            value.write_json(out)?;
        }
        out.write_all(b"}")
    }

    /// [`Record::write_json`] into a buffer, the fast way (the file sink's
    /// hot path).
    pub fn write_json_into(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, value)) in self.schema.json_keys.iter().zip(&self.values).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            match value {
                Value::Str(s) => json_str_into(out, s),
                Value::Raw(raw) => out.extend_from_slice(raw.as_bytes()),
                other => other.write_json(out).expect("writing to a Vec cannot fail"),
            }
        }
        out.push(b'}');
    }

    /// The record as a JSON object (for dead-letter entries).
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .schema
            .names()
            .iter()
            .zip(&self.values)
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        serde_json::Value::Object(map)
    }
}

/// Records a source wrote as JSON lines itself (for a sink that writes
/// JSON lines): the bytes of whole lines, byte for byte what
/// [`Record::write_json_into`] and a newline give for the same records,
/// where each line ends, and each record's position.
#[derive(Debug)]
pub struct Lines {
    /// The field names of every line.
    pub schema: Arc<Schema>,
    /// The lines, each ending in `\n`.
    pub bytes: Vec<u8>,
    /// End offset in `bytes` of each line (after its `\n`).
    pub ends: Vec<usize>,
    /// Each record's position (see [`Record::position`]).
    pub positions: Vec<u64>,
    /// Each line has its own keys (NDJSON): `schema` names none, and a line
    /// read back takes its keys in order (`schema` gives only the origin).
    pub keys_per_line: bool,
}

impl Lines {
    /// No lines yet, for records of `schema`.
    pub fn new(schema: Arc<Schema>, capacity: usize) -> Lines {
        Lines {
            schema,
            bytes: Vec::with_capacity(capacity * 128),
            ends: Vec::with_capacity(capacity),
            positions: Vec::with_capacity(capacity),
            keys_per_line: false,
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Ends the line being written (its bytes pushed onto `bytes`) as the
    /// record at `position`.
    pub fn end_line(&mut self, position: u64) {
        self.bytes.push(b'\n');
        self.ends.push(self.bytes.len());
        self.positions.push(position);
    }

    /// Keeps the first `n` records.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.bytes
                .truncate(if n == 0 { 0 } else { self.ends[n - 1] });
            self.ends.truncate(n);
            self.positions.truncate(n);
        }
    }

    /// Record `i`, read back from its line (for a dead-letter entry).
    pub fn record(&self, i: usize) -> Record {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let line = &self.bytes[start..self.ends[i] - 1];
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(line).unwrap_or_default();
        if self.keys_per_line {
            let names = object.keys().cloned().collect();
            return Record {
                schema: Arc::new(Schema::with_origin(
                    names,
                    self.schema.origin().map(Arc::from),
                )),
                values: object.values().map(Value::from_json).collect(),
                position: self.positions[i],
            };
        }
        let values = self
            .schema
            .names()
            .iter()
            .map(|n| object.get(n).map_or(Value::Null, Value::from_json))
            .collect();
        Record {
            schema: self.schema.clone(),
            values,
            position: self.positions[i],
        }
    }
}

/// The record counts of a run, read back from the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records the source produced (including rows it could not parse).
    pub read: u64,
    /// Records the sinks finished with.
    pub processed: u64,
    /// New lines / rows written.
    pub inserted: u64,
    /// Existing rows updated.
    pub updated: u64,
    /// Duplicates left alone.
    pub skipped: u64,
    /// Records rejected anywhere (see the dead-letter file).
    pub failed: u64,
    /// Records of a batch whose commit was cut off and could not be checked
    /// (kept in the dead-letter file, marked `in_doubt`): the next run
    /// commits the batch if it was prepared.
    pub in_doubt: u64,
    /// Records of earlier runs' prepared batches this run committed (not
    /// read by this run, so outside the invariant).
    pub recovered: u64,
}

impl Counts {
    /// True when every record read is accounted for exactly once:
    /// read = inserted + updated + skipped + failed + in doubt.
    pub fn reconciles(&self) -> bool {
        self.read == self.inserted + self.updated + self.skipped + self.failed + self.in_doubt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &Value) -> String {
        let mut out = Vec::new();
        v.write_json(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn infers_numbers_booleans_and_nulls() {
        assert_eq!(Value::infer("42".into()), Value::Int(42));
        assert_eq!(Value::infer("-7".into()), Value::Int(-7));
        assert_eq!(Value::infer("0".into()), Value::Int(0));
        assert_eq!(Value::infer("3.25".into()), Value::Decimal("3.25".into()));
        assert_eq!(Value::infer("TRUE".into()), Value::Bool(true));
        assert_eq!(Value::infer("false".into()), Value::Bool(false));
        assert_eq!(Value::infer(String::new()), Value::Null);
    }

    #[test]
    fn keeps_codes_and_odd_numbers_as_text() {
        for s in ["007", "1.", ".5", "1e5", "+3", "-", "12a", "1.2.3", " 1"] {
            assert_eq!(Value::infer(s.into()), Value::Str(s.into()), "{s}");
        }
    }

    #[test]
    fn huge_integers_keep_their_digits() {
        let big = "123456789012345678901234567890";
        assert_eq!(Value::infer(big.into()), Value::Decimal(big.into()));
        assert_eq!(json(&Value::infer(big.into())), big);
    }

    #[test]
    fn strings_escape_exactly_as_serde_json_does() {
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
            let mut ours = Vec::new();
            write_json_str(&mut ours, s).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(s).unwrap()
            );
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
                    let mut text: String = "a".repeat(len);
                    text.replace_range(at..at + 1, &c.to_string());
                    let mut ours = Vec::new();
                    json_str_into(&mut ours, &text);
                    assert_eq!(
                        String::from_utf8(ours).unwrap(),
                        serde_json::to_string(&text).unwrap(),
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn writes_a_record_as_json_in_schema_order() {
        let schema = Arc::new(Schema::new(vec!["b".into(), "a\"q".into()]));
        let r = Record {
            schema,
            values: vec![Value::Str("x\n\"y\"".into()), Value::Null],
            position: 2,
        };
        let mut out = Vec::new();
        r.write_json(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"b":"x\n\"y\"","a\"q":null}"#
        );
    }

    #[test]
    fn inferred_json_is_what_the_inferred_value_writes() {
        for t in [
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
            "TRUE",
            "false",
            "FaLsE",
            "text",
            "q\"uote",
            "tab\t",
            "Zürich",
        ] {
            let mut ours = Vec::new();
            Value::infer_json_into(&mut ours, t);
            assert_eq!(ours, json(&Value::infer(t.into())).into_bytes(), "{t:?}");
        }
    }

    #[test]
    fn lines_read_back_as_records_and_cut_whole() {
        let schema = Arc::new(Schema::new(vec!["a".into(), "b".into()]));
        let mut lines = Lines::new(schema.clone(), 2);
        for (i, (a, b)) in [("x", "1"), ("y\"", "")].iter().enumerate() {
            let r = Record {
                schema: schema.clone(),
                values: vec![Value::Str(a.to_string()), Value::infer(b.to_string())],
                position: 10 + i as u64,
            };
            r.write_json_into(&mut lines.bytes);
            lines.end_line(r.position);
        }
        assert_eq!(
            lines.bytes,
            b"{\"a\":\"x\",\"b\":1}\n{\"a\":\"y\\\"\",\"b\":null}\n"
        );
        let back = lines.record(1);
        assert_eq!(back.values, vec![Value::Str("y\"".into()), Value::Null]);
        assert_eq!(back.position, 11);
        lines.truncate(1);
        assert_eq!(lines.bytes, b"{\"a\":\"x\",\"b\":1}\n");
        assert_eq!((lines.len(), lines.positions.clone()), (1, vec![10]));
    }
}
