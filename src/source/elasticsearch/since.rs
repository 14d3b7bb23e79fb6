//! Incremental runs (`--es-since-field` with `--state-file`): the saved
//! position is the largest value of the field seen, together with the ids of
//! the documents that hold exactly that value. The next run reads documents
//! with a value greater than or equal to it, except those ids, so a document
//! indexed later with the same value as the saved maximum is still read, and
//! none is read twice.
//!
//! Values are compared as the server compares them: each hit's values come
//! from the server's doc values (`docvalue_fields`), a date as epoch
//! milliseconds whatever form the document gave it in (`…00Z`, `…00.000Z`,
//! `…01:00+01:00` and `1767225600000` are one instant), a number as a
//! number, a keyword as its bytes. A document with several values counts
//! with its largest (a range query matches it when any value is in range).
//! A document without a value (absent, null, an empty array) is counted and
//! read on every run, or never (`--es-since-missing`).

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value as Json};

use crate::config::SinceMissing;
use crate::error::{ErrorType, PipelineError};

/// At most this many ids at the boundary are kept; beyond that, the next run
/// reads the boundary documents again (nothing is lost; a sink with a key
/// skips them) and says so.
pub(super) const MAX_BOUNDARY_IDS: usize = 10_000;

/// How the server maps the field, across the indices of `--es-index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `date` or `date_nanos`: instants.
    Date,
    /// A numeric type.
    Number,
    /// `keyword` (and its kin): compared byte by byte.
    Keyword,
    /// No index maps the field: no document has a value.
    Unmapped,
}

impl Kind {
    /// The kind of a mapping type; `None` for a type a range cannot order.
    pub(super) fn of_type(t: &str) -> Option<Kind> {
        Some(match t {
            "date" | "date_nanos" => Kind::Date,
            "long" | "integer" | "short" | "byte" | "double" | "float" | "half_float"
            | "scaled_float" | "unsigned_long" => Kind::Number,
            "keyword" | "constant_keyword" | "wildcard" => Kind::Keyword,
            _ => return None,
        })
    }
}

/// Which indices keep the field's dates in milliseconds (`date`, not
/// `date_nanos`): there a range bound is cut to its millisecond, so a bound
/// with nanoseconds would match the documents of that millisecond before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Millis {
    /// None (or not a date field): a bound is exact.
    #[default]
    None,
    /// Every index.
    All,
    /// These indices (the others map it as `date_nanos`).
    Only(Vec<String>),
}

/// One value of the field, as the server orders it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Point {
    /// An instant, in nanoseconds since the epoch.
    Instant(i128),
    /// A whole number.
    Int(i128),
    /// Any other number.
    Float(f64),
    /// A keyword.
    Text(String),
}

impl Point {
    fn cmp(&self, other: &Point) -> Ordering {
        use Point::*;
        match (self, other) {
            (Instant(a), Instant(b)) | (Int(a), Int(b)) => a.cmp(b),
            (Int(a), Float(b)) => (*a as f64).total_cmp(b),
            (Float(a), Int(b)) => a.total_cmp(&(*b as f64)),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Text(a), Text(b)) => a.cmp(b),
            // One field has one kind: never mixed.
            _ => Ordering::Equal,
        }
    }

    /// A value the server handed back in `docvalue_fields` (dates asked for
    /// as `epoch_millis`, possibly with a fraction for `date_nanos`).
    pub(super) fn from_docvalue(kind: Kind, v: &Json) -> Option<Point> {
        match (kind, v) {
            (Kind::Date, Json::String(s)) => epoch_millis(s).map(Point::Instant),
            (Kind::Date, Json::Number(n)) => epoch_millis(&n.to_string()).map(Point::Instant),
            (Kind::Number, Json::Number(n)) => Some(number(&n.to_string())),
            (Kind::Number, Json::String(s)) => s.parse::<f64>().ok().map(|_| number(s)),
            (Kind::Keyword, Json::String(s)) => Some(Point::Text(s.clone())),
            _ => None,
        }
    }

    /// A value saved in a state file: what [`Point::to_state`] wrote, or what
    /// earlier versions wrote (the document's own value: a date in one of
    /// its forms, epoch milliseconds, a number, a keyword).
    fn from_state(kind: Kind, v: &Json) -> Result<Point, String> {
        let refuse = || {
            format!(
                "{} is not a single {} value",
                v,
                match kind {
                    Kind::Date => "date",
                    Kind::Number => "numeric",
                    _ => "keyword",
                }
            )
        };
        match (kind, v) {
            (Kind::Date, Json::String(s)) => parse_date(s)
                .or_else(|| epoch_millis(s))
                .map(Point::Instant)
                .ok_or_else(refuse),
            (Kind::Date, Json::Number(n)) => epoch_millis(&n.to_string())
                .map(Point::Instant)
                .ok_or_else(refuse),
            (Kind::Number, Json::Number(n)) => Ok(number(&n.to_string())),
            (Kind::Number, Json::String(s)) if s.parse::<f64>().is_ok() => Ok(number(s)),
            (Kind::Keyword | Kind::Unmapped, Json::String(s)) => Ok(Point::Text(s.clone())),
            (Kind::Unmapped, Json::Number(n)) => Ok(number(&n.to_string())),
            _ => Err(refuse()),
        }
    }

    /// The value as the state file keeps it: a date as RFC 3339 (UTC), or
    /// as epoch milliseconds (a string) outside the years 0000 to 9999,
    /// which RFC 3339 cannot write.
    pub(super) fn to_state(&self) -> Json {
        match self {
            Point::Instant(ns) => json!(rfc3339(*ns).unwrap_or_else(|| millis_text(*ns))),
            Point::Int(i) => serde_json::from_str(&i.to_string()).unwrap_or(Json::Null),
            Point::Float(f) => json!(f),
            Point::Text(s) => json!(s),
        }
    }

    /// The value in a range query (dates with `"format": "epoch_millis"`).
    fn to_query(&self) -> Json {
        match self {
            Point::Instant(ns) => json!(millis_text(*ns)),
            other => other.to_state(),
        }
    }

    /// Seconds since the epoch for `pipeline_source_watermark`: an instant
    /// converted; a number of 10^11 or more taken as epoch milliseconds (in
    /// seconds that would be after the year 5000), a smaller one as it is; a
    /// keyword that reads as a date converted.
    pub(super) fn seconds(&self) -> Option<f64> {
        match self {
            Point::Instant(ns) => Some(*ns as f64 / 1e9),
            Point::Int(i) => Some(maybe_millis(*i as f64)),
            Point::Float(f) => Some(maybe_millis(*f)),
            Point::Text(s) => parse_date(s).map(|ns| ns as f64 / 1e9),
        }
    }
}

fn maybe_millis(v: f64) -> f64 {
    if v.abs() >= 1e11 {
        v / 1000.0
    } else {
        v
    }
}

fn number(text: &str) -> Point {
    match text.parse::<i128>() {
        Ok(i) => Point::Int(i),
        Err(_) => Point::Float(text.parse().unwrap_or(f64::NAN)),
    }
}

/// `1767225600123` or `1767225600123.456789` (epoch milliseconds, as the
/// server writes `epoch_millis`; the sign applies to the fraction too) in
/// nanoseconds.
fn epoch_millis(s: &str) -> Option<i128> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let ms: i128 = whole.parse().ok()?;
    if !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 6 {
        return None;
    }
    let f: i128 = format!("{frac:0<6}").parse().ok()?;
    Some(ms * 1_000_000 + if whole.starts_with('-') { -f } else { f })
}

/// Nanoseconds as epoch milliseconds, with a fraction when there are
/// nanoseconds (what [`epoch_millis`] reads).
fn millis_text(ns: i128) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let (ms, frac) = (ns.unsigned_abs() / 1_000_000, ns.unsigned_abs() % 1_000_000);
    if frac == 0 {
        format!("{sign}{ms}")
    } else {
        let f = format!("{frac:06}");
        format!("{sign}{ms}.{}", f.trim_end_matches('0'))
    }
}

/// A date string (RFC 3339; `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.f]` and
/// the same with `T`, taken as UTC) in nanoseconds since the epoch.
pub(super) fn parse_date(s: &str) -> Option<i128> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let nanos = |secs: i64, sub: u32| secs as i128 * 1_000_000_000 + sub as i128;
    // RFC 3339, or with a signed year of more than four digits
    // (`+57971-02-25T00:00:00Z`, as earlier versions saved such dates).
    if let Ok(t) =
        DateTime::parse_from_rfc3339(s).or_else(|_| s.parse::<DateTime<chrono::FixedOffset>>())
    {
        return Some(nanos(t.timestamp(), t.timestamp_subsec_nanos()));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?
        .and_utc();
    Some(nanos(naive.timestamp(), naive.timestamp_subsec_nanos()))
}

/// RFC 3339 in UTC, for the years it can write (0000 to 9999).
fn rfc3339(ns: i128) -> Option<String> {
    use chrono::Datelike;
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).ok()?;
    let sub = ns.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, sub)
        .filter(|t| (0..=9999).contains(&t.year()))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// A document at the saved value: its index and id. Documents of
/// different indices may share an `_id`; a state file of an earlier version
/// kept the id alone (`index` is `None`: that id in any index).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct DocKey {
    pub index: Option<String>,
    pub id: String,
}

/// The key under which `ids_at_since` keeps ids without an index ("*" is
/// not a valid index name).
const ANY_INDEX: &str = "*";

/// The largest value of the field seen, the documents that hold it, and
/// how many documents had no value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Mark {
    pub value: Option<Point>,
    pub ids: Vec<DocKey>,
    /// More documents held the value than [`MAX_BOUNDARY_IDS`].
    pub overflow: bool,
    /// Documents read without a value of the field.
    pub missing: u64,
}

impl Mark {
    /// Takes a document's value, index and id into account.
    pub fn see(&mut self, v: Point, index: Option<String>, id: &str) {
        let key = DocKey {
            index,
            id: id.to_string(),
        };
        match self.value.as_ref().map(|m| m.cmp(&v)) {
            Some(Ordering::Greater) => {}
            Some(Ordering::Equal) => self.add_id(key),
            _ => {
                self.value = Some(v);
                self.ids.clear();
                self.overflow = false;
                self.add_id(key);
            }
        }
    }

    fn add_id(&mut self, key: DocKey) {
        if self.ids.len() < MAX_BOUNDARY_IDS {
            self.ids.push(key);
        } else {
            self.overflow = true;
        }
    }

    /// Merges the mark of another slice.
    pub fn merge(&mut self, other: Mark) {
        self.missing += other.missing;
        let Some(v) = &other.value else { return };
        match self.value.as_ref().map(|m| m.cmp(v)) {
            Some(Ordering::Greater) => {}
            Some(Ordering::Equal) => {
                for key in other.ids {
                    self.add_id(key);
                }
                self.overflow |= other.overflow;
            }
            _ => {
                let missing = self.missing;
                *self = other;
                self.missing = missing;
            }
        }
    }

    /// The ids by index, as the state file keeps them: `{"index": [ids]}`
    /// (ids without an index under `*`).
    fn ids_to_state(&self) -> Json {
        let mut by: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for k in &self.ids {
            by.entry(k.index.as_deref().unwrap_or(ANY_INDEX))
                .or_default()
                .push(&k.id);
        }
        json!(by)
    }

    /// What [`Mark::ids_to_state`] wrote, or a list of bare ids (earlier
    /// versions); `None` when the state holds no usable list.
    fn ids_from_state(v: &Json) -> Option<Vec<DocKey>> {
        let key = |index: Option<&str>, id: &Json| {
            id.as_str().map(|id| DocKey {
                index: index.map(String::from),
                id: id.to_string(),
            })
        };
        match v {
            Json::Array(a) => Some(a.iter().filter_map(|id| key(None, id)).collect()),
            Json::Object(m) => Some(
                m.iter()
                    .flat_map(|(index, ids)| {
                        let index = (index != ANY_INDEX).then_some(index.as_str());
                        ids.as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(move |id| key(index, id))
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// A query matching the documents of [`Mark::ids`], each in its index.
    fn ids_query(&self) -> Json {
        let mut by: std::collections::BTreeMap<Option<&str>, Vec<&str>> = Default::default();
        for k in &self.ids {
            by.entry(k.index.as_deref()).or_default().push(&k.id);
        }
        let mut each: Vec<Json> = by
            .into_iter()
            .map(|(index, ids)| {
                let ids = json!({"ids": {"values": ids}});
                match index {
                    Some(index) => json!({"bool": {"filter": [{"term": {"_index": index}}, ids]}}),
                    None => ids,
                }
            })
            .collect();
        if each.len() == 1 {
            return each.pop().expect("one");
        }
        json!({"bool": {"should": each, "minimum_should_match": 1}})
    }
}

/// `--es-since-field` with its saved position.
pub(super) struct Since {
    pub field: String,
    pub path: PathBuf,
    pub kind: Kind,
    /// The indices where dates are milliseconds.
    pub millis: Millis,
    pub missing: SinceMissing,
    pub previous: Mark,
    pub seen: Mutex<Mark>,
    /// (I, N) when this process reads slice I of N: kept in the state file.
    pub slice: Option<(u32, u32)>,
}

impl Since {
    /// Where an incremental run starts, in words.
    pub fn describe(&self) -> String {
        let missing = match self.missing {
            SinceMissing::Include => "documents without a value are read on every run",
            SinceMissing::Skip => "documents without a value are left out",
        };
        match &self.previous.value {
            Some(v) => format!(
                "only documents with {} >= {} ({} already read there are left out; {missing}), from --state-file {}; moved forward only when a run succeeds",
                self.field,
                v.to_state(),
                self.previous.ids.len(),
                self.path.display()
            ),
            None => format!(
                "every document ({missing}): --state-file {} holds no position for {} yet",
                self.path.display(),
                self.field
            ),
        }
    }

    /// Reads the saved position, if the state file exists.
    pub fn open(
        field: &str,
        path: &Path,
        (kind, millis): (Kind, Millis),
        missing: SinceMissing,
        slice: Option<(u32, u32)>,
    ) -> Result<Since, PipelineError> {
        let previous = read_state(path, field, kind, slice)?;
        Ok(Since {
            field: field.to_string(),
            path: path.to_path_buf(),
            kind,
            millis,
            missing,
            // Documents read at the saved value again (none, unless they
            // arrived since) join the ids already kept for it.
            seen: Mutex::new(Mark {
                missing: 0,
                ..previous.clone()
            }),
            previous,
            slice,
        })
    }

    /// What a search asks for to get each hit's values of the field.
    pub fn docvalue_fields(&self) -> Option<Json> {
        match self.kind {
            Kind::Date => Some(json!([{"field": self.field, "format": "epoch_millis"}])),
            Kind::Number | Kind::Keyword => Some(json!([{"field": self.field}])),
            Kind::Unmapped => None,
        }
    }

    /// A hit's value: the largest of its doc values (`None`: it has none).
    pub fn point_of(&self, values: Option<&[Json]>) -> Option<Point> {
        values?
            .iter()
            .filter_map(|v| Point::from_docvalue(self.kind, v))
            .max_by(|a, b| a.cmp(b))
    }

    fn range(&self, op: &str, v: &Point) -> Json {
        let mut r = json!({op: v.to_query()});
        if self.kind == Kind::Date {
            r["format"] = json!("epoch_millis");
        }
        json!({"range": {self.field.clone(): r}})
    }

    /// Documents at or after `prev`, exactly in every index: an instant
    /// with nanoseconds is rounded up to the next millisecond where dates
    /// are milliseconds (no document there lies between the two), and kept
    /// as it is in the `date_nanos` indices.
    fn from(&self, prev: &Point) -> Json {
        let exact = self.range("gte", prev);
        let Point::Instant(ns) = prev else {
            return exact;
        };
        if ns.rem_euclid(1_000_000) == 0 {
            return exact;
        }
        let up = self.range(
            "gte",
            &Point::Instant((ns.div_euclid(1_000_000) + 1) * 1_000_000),
        );
        match &self.millis {
            Millis::None => exact,
            Millis::All => up,
            Millis::Only(indices) => {
                let these = json!({"terms": {"_index": indices}});
                json!({"bool": {
                    "should": [
                        {"bool": {"filter": [these, up]}},
                        {"bool": {"filter": [exact], "must_not": [these]}},
                    ],
                    "minimum_should_match": 1,
                }})
            }
        }
    }

    fn exists(&self) -> Json {
        json!({"exists": {"field": self.field}})
    }

    /// Documents without a value of the field (with the user's query).
    pub fn without_value(&self, query: Json) -> Json {
        json!({"bool": {"filter": [query], "must_not": [self.exists()]}})
    }

    /// The user's query, narrowed to documents at or after the saved
    /// position, minus the ones already read at exactly that position, and
    /// with or without the documents that have no value.
    pub fn narrow(&self, query: Json) -> Json {
        let mut filter = vec![query];
        if self.missing == SinceMissing::Skip {
            filter.push(self.exists());
        }
        let mut must_not = Vec::new();
        if let Some(prev) = &self.previous.value {
            if self.previous.overflow {
                tracing::warn!(
                    "more than {MAX_BOUNDARY_IDS} documents had --es-since-field {} = {} in the last run; they are read again (a sink with a key skips them)",
                    self.field,
                    prev.to_state()
                );
            }
            let from = self.from(prev);
            filter.push(match self.missing {
                SinceMissing::Skip => from,
                SinceMissing::Include => json!({"bool": {
                    "should": [from, {"bool": {"must_not": [self.exists()]}}],
                    "minimum_should_match": 1,
                }}),
            });
            // A document read at the saved value is left out unless it
            // has a greater value now.
            if !self.previous.ids.is_empty() && !self.previous.overflow {
                must_not.push(json!({"bool": {
                    "filter": [self.previous.ids_query()],
                    "must_not": [self.range("gt", prev)],
                }}));
            }
        }
        if filter.len() == 1 && must_not.is_empty() {
            return filter.pop().expect("the query");
        }
        let mut q = json!({"bool": {"filter": filter}});
        if !must_not.is_empty() {
            q["bool"]["must_not"] = json!(must_not);
        }
        q
    }

    /// Saves the position reached (called once the run has succeeded) to a
    /// temporary file beside the state file, put into place by the caller.
    pub fn save(&self) -> Result<Option<(Mark, crate::fsutil::Staged)>, PipelineError> {
        let mark = self.seen.lock().expect("since lock").clone();
        let Some(value) = &mark.value else {
            return Ok(None);
        };
        let mut body = json!({
            "field": self.field,
            "since": value.to_state(),
            "ids_at_since": if mark.overflow { Json::Null } else { mark.ids_to_state() },
            "saved_at": crate::metrics::unix_now(),
        });
        if let Some((i, n)) = self.slice {
            body["slice"] = json!(i);
            body["slices"] = json!(n);
        }
        let text = serde_json::to_string_pretty(&body).expect("state is JSON");
        let staged = crate::fsutil::stage_atomic(&self.path, text.as_bytes()).map_err(|e| {
            PipelineError::Source(
                ErrorType::Io,
                format!("cannot save --state-file '{}': {e}", self.path.display()),
            )
        })?;
        Ok(Some((mark, staged)))
    }
}

/// Checks what the state file says before any server is asked: that it is
/// a state file (JSON) of this field and of this slice and slice count. A
/// missing file is fine (the first run). Its position itself is checked
/// once the field's type is known ([`Since::open`]).
pub fn check_state(
    field: &str,
    path: &Path,
    slice: Option<(u32, u32)>,
) -> Result<(), PipelineError> {
    state_json(path, field, slice).map(|_| ())
}

/// The state file's JSON, checked for its field and slice; `None` when the
/// file does not exist.
fn state_json(
    path: &Path,
    field: &str,
    slice: Option<(u32, u32)>,
) -> Result<Option<Json>, PipelineError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(PipelineError::OpenInput {
                what: "--state-file",
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let refuse = |why: String| {
        PipelineError::Config(format!(
            "--state-file '{}' {why}; correct the file, or delete it to read everything again",
            path.display()
        ))
    };
    let state: Json =
        serde_json::from_str(&text).map_err(|e| refuse(format!("is not valid JSON: {e}")))?;
    if state["field"].as_str() != Some(field) {
        return Err(refuse(format!(
            "holds the position of field '{}', not '{field}'; use another file",
            state["field"].as_str().unwrap_or("?")
        )));
    }
    check_slice(&state, slice).map_err(refuse)?;
    Ok(Some(state))
}

fn read_state(
    path: &Path,
    field: &str,
    kind: Kind,
    slice: Option<(u32, u32)>,
) -> Result<Mark, PipelineError> {
    let Some(state) = state_json(path, field, slice)? else {
        return Ok(Mark::default());
    };
    let refuse = |why: String| {
        PipelineError::Config(format!(
            "--state-file '{}' {why}; correct the file, or delete it to read everything again",
            path.display()
        ))
    };
    let value = match &state["since"] {
        Json::Null => None,
        v => Some(Point::from_state(kind, v).map_err(|why| {
            refuse(format!(
                "holds a position for {field} that cannot be used: {why}; correct it, or delete the file to read everything again"
            ))
        })?),
    };
    let ids = Mark::ids_from_state(&state["ids_at_since"]);
    Ok(Mark {
        value,
        // A state without the ids (or with too many to keep) re-reads the
        // boundary: nothing is lost.
        overflow: ids.is_none(),
        ids: ids.unwrap_or_default(),
        missing: 0,
    })
}

/// A state file written by one slice of N is only read by that slice of
/// the same N: the slices of another N hold other documents.
fn check_slice(state: &Json, slice: Option<(u32, u32)>) -> Result<(), String> {
    let Some(theirs) = state.get("slices").and_then(Json::as_u64) else {
        // Written by a process that read every slice (or by an earlier
        // version, which did not say).
        return Ok(());
    };
    let their_id = state["slice"].as_u64().unwrap_or(0);
    // Slice 0 of 1 is the whole index.
    if theirs == 1 && slice.is_none_or(|(_, n)| n == 1) {
        return Ok(());
    }
    match slice {
        Some((i, n)) if u64::from(n) == theirs && u64::from(i) == their_id => Ok(()),
        Some((i, n)) if u64::from(n) == theirs => Err(format!(
            "was written by slice {their_id} of --es-slices {theirs}, and this process reads slice {i}; give each slice its own file ({{slice}} in the path)"
        )),
        Some((_, n)) => Err(format!(
            "was written for --es-slices {theirs}, and this process reads one slice of --es-slices {n}: a slice of {theirs} holds other documents than a slice of {n}; every process of the job must use the same --es-slices (to re-slice, start from new state files: the next runs read everything once)"
        )),
        None => Err(format!(
            "was written by slice {their_id} of --es-slices {theirs}, and this process reads every slice; use the state file of the whole index"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Point {
        Point::Instant(parse_date(s).unwrap())
    }

    #[test]
    fn watermarks_become_seconds() {
        assert_eq!(Point::Int(1234).seconds(), Some(1234.0));
        assert_eq!(
            Point::Int(1_767_225_600_000).seconds(),
            Some(1_767_225_600.0)
        );
        assert_eq!(date("1970-01-02").seconds(), Some(86_400.0));
        assert_eq!(date("1970-01-01T00:01:00Z").seconds(), Some(60.0));
        assert_eq!(date("1970-01-01T01:00:00+01:00").seconds(), Some(0.0));
        assert_eq!(date("1970-01-01 00:00:01.5").seconds(), Some(1.5));
        assert_eq!(Point::Text("abc".into()).seconds(), None);
    }

    #[test]
    fn dates_compare_as_instants_whatever_their_form() {
        let forms = [
            json!("1767225600000"),
            json!("1767225600000.000"),
            json!(1767225600000u64),
        ];
        let points: Vec<_> = forms
            .iter()
            .map(|v| Point::from_docvalue(Kind::Date, v).unwrap())
            .collect();
        assert!(points
            .iter()
            .all(|p| *p == date("2026-01-01T00:00:00.000Z")));
        assert_eq!(
            date("2026-01-01T01:00:00+01:00"),
            date("2026-01-01T00:00:00Z")
        );
        let nanos = Point::from_docvalue(Kind::Date, &json!("1767225600000.000123")).unwrap();
        assert_eq!(nanos.cmp(&points[0]), Ordering::Greater);
        assert_eq!(nanos.to_query(), json!("1767225600000.000123"));
        assert_eq!(nanos.to_state(), json!("2026-01-01T00:00:00.000000123Z"));
        assert_eq!(points[0].to_query(), json!("1767225600000"));
        // What a state file holds is read back to the same instant.
        for saved in [
            json!("2026-01-01T00:00:00Z"),
            json!(1767225600000u64),
            json!("1767225600000"),
        ] {
            assert_eq!(Point::from_state(Kind::Date, &saved), Ok(points[0].clone()));
        }
        assert!(Point::from_state(Kind::Date, &json!(["2026-01-01"])).is_err());
        assert!(Point::from_state(Kind::Number, &json!({"a": 1})).is_err());
        assert!(Point::from_state(Kind::Date, &json!("yesterday")).is_err());
    }

    #[test]
    fn numbers_compare_as_numbers_and_keywords_as_bytes() {
        let n = |v: Json| Point::from_docvalue(Kind::Number, &v).unwrap();
        assert_eq!(n(json!(3)).cmp(&n(json!(2.5))), Ordering::Greater);
        assert_eq!(n(json!(2)).cmp(&n(json!(2.0))), Ordering::Equal);
        // Beyond f64's exact integers.
        assert_eq!(
            n(json!(9007199254740993u64)).cmp(&n(json!(9007199254740992u64))),
            Ordering::Greater
        );
        assert_eq!(
            Point::Text("b".into()).cmp(&Point::Text("ab".into())),
            Ordering::Greater
        );
    }

    #[test]
    fn the_mark_keeps_the_ids_at_the_largest_value() {
        let ix = || Some("i".to_string());
        let ids = |m: &Mark| m.ids.iter().map(|k| k.id.clone()).collect::<Vec<_>>();
        let mut a = Mark::default();
        a.see(Point::Int(5), ix(), "x");
        a.see(Point::Int(7), ix(), "y");
        a.see(Point::Int(7), ix(), "z");
        a.see(Point::Int(6), ix(), "w");
        a.missing = 2;
        assert_eq!(a.value, Some(Point::Int(7)));
        assert_eq!(ids(&a), ["y", "z"]);
        let mut b = Mark::default();
        b.see(Point::Float(7.0), ix(), "v");
        b.missing = 1;
        a.merge(b);
        assert_eq!(ids(&a), ["y", "z", "v"]);
        let mut c = Mark::default();
        c.see(Point::Int(8), ix(), "u");
        a.merge(c);
        assert_eq!(
            (&a.value, ids(&a)),
            (&Some(Point::Int(8)), vec!["u".to_string()])
        );
        assert_eq!(a.missing, 3);
    }

    #[test]
    fn the_ids_at_the_mark_are_kept_with_their_index() {
        let mut m = Mark::default();
        m.see(Point::Int(1), Some("ia".into()), "same");
        m.see(Point::Int(1), Some("ib".into()), "same");
        m.see(Point::Int(1), Some("ib".into()), "other");
        let saved = m.ids_to_state();
        assert_eq!(saved, json!({"ia": ["same"], "ib": ["same", "other"]}));
        let mut back = Mark::ids_from_state(&saved).unwrap();
        back.sort();
        let mut want = m.ids.clone();
        want.sort();
        assert_eq!(back, want);
        // The exclusion names each document's index.
        let q = m.ids_query().to_string();
        assert!(
            q.contains(r#"{"term":{"_index":"ia"}}"#) && q.contains(r#"{"term":{"_index":"ib"}}"#),
            "{q}"
        );
        // A list of bare ids (an earlier version's state) still reads, as
        // ids of any index, and is saved again as such.
        let old = Mark::ids_from_state(&json!(["a", "b"])).unwrap();
        assert!(old.iter().all(|k| k.index.is_none()));
        let m = Mark {
            ids: old,
            ..Mark::default()
        };
        assert_eq!(m.ids_to_state(), json!({"*": ["a", "b"]}));
        assert_eq!(m.ids_query(), json!({"ids": {"values": ["a", "b"]}}));
        assert_eq!(Mark::ids_from_state(&json!(null)), None);
    }

    #[test]
    fn a_bound_with_nanoseconds_is_rounded_up_only_where_dates_are_milliseconds() {
        let since = |millis: Millis| Since {
            field: "ts".into(),
            path: "s".into(),
            kind: Kind::Date,
            millis,
            missing: SinceMissing::Skip,
            previous: Mark::default(),
            seen: Mutex::new(Mark::default()),
            slice: None,
        };
        let mark = Point::Instant(1_767_225_600_000_000_001);
        let bound = |q: Json| q["range"]["ts"]["gte"].clone();
        assert_eq!(
            bound(since(Millis::None).from(&mark)),
            "1767225600000.000001"
        );
        assert_eq!(bound(since(Millis::All).from(&mark)), "1767225600001");
        let whole = Point::Instant(1_767_225_600_000_000_000);
        assert_eq!(bound(since(Millis::All).from(&whole)), "1767225600000");
        let mixed = since(Millis::Only(vec!["im".into()])).from(&mark);
        let each = &mixed["bool"]["should"];
        assert_eq!(
            each[0]["bool"]["filter"][0],
            json!({"terms": {"_index": ["im"]}})
        );
        assert_eq!(bound(each[0]["bool"]["filter"][1].clone()), "1767225600001");
        assert_eq!(
            each[1]["bool"]["must_not"][0],
            json!({"terms": {"_index": ["im"]}})
        );
        assert_eq!(
            bound(each[1]["bool"]["filter"][0].clone()),
            "1767225600000.000001"
        );
    }

    #[test]
    fn every_date_saved_reads_back_to_the_same_instant() {
        for ms in [
            1_767_225_600_000_000i128, // year 57971
            253_402_300_800_000,       // year 10000
            253_402_300_799_999,       // the last millisecond of 9999
            -62_198_755_200_000,       // year -1
            -1,
            0,
        ] {
            for sub in [0, 1, 999_999] {
                let p = Point::Instant(ms * 1_000_000 + sub);
                let saved = p.to_state();
                assert_eq!(
                    Point::from_state(Kind::Date, &saved),
                    Ok(p.clone()),
                    "{saved}"
                );
            }
        }
        // What an earlier version wrote for a year after 9999.
        assert_eq!(
            Point::from_state(Kind::Date, &json!("+57971-02-25T00:00:00Z")),
            Ok(Point::Instant(1_767_225_600_000_000 * 1_000_000))
        );
    }

    #[test]
    fn a_state_file_of_another_slicing_is_refused() {
        let state = json!({"slice": 1, "slices": 2});
        assert!(check_slice(&state, Some((1, 2))).is_ok());
        let other_n = check_slice(&state, Some((1, 3))).unwrap_err();
        assert!(
            other_n.contains("--es-slices 2") && other_n.contains("--es-slices 3"),
            "{other_n}"
        );
        assert!(check_slice(&state, Some((0, 2))).is_err());
        assert!(check_slice(&state, None).is_err());
        assert!(check_slice(&json!({"since": 1}), Some((0, 4))).is_ok());
        let whole = json!({"slice": 0, "slices": 1});
        assert!(check_slice(&whole, None).is_ok());
        assert!(check_slice(&whole, Some((0, 2))).is_err());
    }
}
