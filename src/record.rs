//! `Record`, the unit that flows from a source to a sink, its `Value`s, and the
//! conversions between text, typed values and JSON trees. The bytes of a
//! JSON-lines output are written by one encoder, `json_line`.

use std::sync::{Arc, OnceLock};

/// The ordered field names shared by many records (a CSV header, say), with
/// each name's JSON key escaped once so sinks never re-escape it.
#[derive(Debug)]
pub struct Schema {
    names: Vec<String>,
    /// Each name as a JSON key with its colon (`"name":`), made on first
    /// use by the JSON-line encoder (`json_line::keys`).
    pub(crate) json_keys: OnceLock<Vec<Vec<u8>>>,
    /// The input file its records come from, when the source reads several.
    origin: Option<Arc<str>>,
}

impl Schema {
    /// Builds a schema from field names, in order.
    pub fn new(names: Vec<String>) -> Self {
        Schema {
            names,
            json_keys: OnceLock::new(),
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
        match Inferred::of(&text) {
            Inferred::Null => Value::Null,
            Inferred::Int(i) => Value::Int(i),
            Inferred::Number => Value::Decimal(text),
            Inferred::Bool(b) => Value::Bool(b),
            Inferred::Text => Value::Str(text),
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
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Json(v) => v.clone(),
            Value::Raw(_) => self.typed().to_json(),
        }
    }
}

/// What a CSV text infers to: the one rule behind both [`Value::infer`]
/// and the JSON the line encoder writes for the text without making the
/// value (`json_line::inferred_into`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inferred {
    /// An empty text: null.
    Null,
    /// A whole number that fits in 64 bits.
    Int(i64),
    /// Any other number: kept as its text (a decimal, a huge integer).
    Number,
    /// `true` / `false`, in any case.
    Bool(bool),
    /// Anything else: a string.
    Text,
}

impl Inferred {
    /// What `text` infers to. A number is `-?(0|[1-9][0-9]*)(\.[0-9]+)?`,
    /// the numbers JSON and SQL both read the same way.
    #[inline]
    pub(crate) fn of(text: &str) -> Inferred {
        let b = text.as_bytes();
        if b.is_empty() {
            return Inferred::Null;
        }
        let digits = match b[0] {
            b'-' => &b[1..],
            _ => b,
        };
        let int_len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
        if int_len > 0 && (int_len == 1 || digits[0] != b'0') {
            let rest = &digits[int_len..];
            if rest.is_empty() {
                return match text.parse::<i64>() {
                    Ok(i) => Inferred::Int(i),
                    Err(_) => Inferred::Number,
                };
            }
            if rest[0] == b'.' && rest.len() > 1 && rest[1..].iter().all(u8::is_ascii_digit) {
                return Inferred::Number;
            }
            return Inferred::Text;
        }
        if text.eq_ignore_ascii_case("true") {
            Inferred::Bool(true)
        } else if text.eq_ignore_ascii_case("false") {
            Inferred::Bool(false)
        } else {
            Inferred::Text
        }
    }
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
    /// The text of field `name` when it holds a string or a whole number
    /// (a document's `_id` or `_index`, to name it in a log line).
    pub fn text_of(&self, name: &str) -> Option<String> {
        let i = self.schema.names().iter().position(|n| n == name)?;
        match self.values.get(i)? {
            Value::Str(s) => Some(s.clone()),
            Value::Int(n) => Some(n.to_string()),
            Value::Raw(r) => serde_json::from_str::<String>(r).ok(),
            _ => None,
        }
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
/// JSON lines): the bytes of whole lines, byte for byte what the
/// JSON-line encoder (`json_line::record_into`) and a newline give for the
/// same records,
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

    /// Keeps only the lines `keep` says yes to (by index), in order.
    pub fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let (mut bytes, mut ends, mut positions) = (Vec::new(), Vec::new(), Vec::new());
        let mut start = 0;
        for i in 0..self.len() {
            let end = self.ends[i];
            if keep(i) {
                bytes.extend_from_slice(&self.bytes[start..end]);
                ends.push(bytes.len());
                positions.push(self.positions[i]);
            }
            start = end;
        }
        (self.bytes, self.ends, self.positions) = (bytes, ends, positions);
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
    /// Rows `--delete-missing` deleted (not records read, so outside the
    /// invariant).
    pub deleted: u64,
    /// Rows a run resumed from `--checkpoint` skipped: an earlier run of
    /// the job had finished them (not read by this run, so outside the
    /// invariant).
    pub resumed: u64,
}

impl Counts {
    /// The counts a summary reports, by their names in it.
    pub fn named(&self) -> [(&'static str, u64); 9] {
        [
            ("read", self.read),
            ("inserted", self.inserted),
            ("updated", self.updated),
            ("skipped", self.skipped),
            ("failed", self.failed),
            ("in_doubt", self.in_doubt),
            ("recovered", self.recovered),
            ("deleted", self.deleted),
            ("resumed", self.resumed),
        ]
    }

    /// True when every record read is accounted for exactly once:
    /// read = inserted + updated + skipped + failed + in doubt.
    pub fn reconciles(&self) -> bool {
        self.read == self.finished()
    }

    /// Records the run is done with: written, skipped, failed (wherever
    /// they failed) or in doubt.
    pub fn finished(&self) -> u64 {
        self.inserted + self.updated + self.skipped + self.failed + self.in_doubt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            crate::json_line::record_into(&mut lines.bytes, &r);
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
