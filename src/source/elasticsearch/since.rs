//! Incremental runs (`--es-since-field` with `--state-file`): the saved
//! position is the largest value of the field seen, together with the ids of
//! the documents that hold exactly that value. The next run reads documents
//! whose value is greater than or equal to it, except those ids, so a
//! document indexed later with the same value as the saved maximum is still
//! read, and none is read twice.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value as Json};

use crate::error::{ErrorType, PipelineError};

/// At most this many ids at the boundary are kept; beyond that, the next run
/// reads the boundary documents again (nothing is lost; a sink with a key
/// skips them) and says so.
pub(super) const MAX_BOUNDARY_IDS: usize = 10_000;

/// The largest value of the field seen and the ids that hold it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Mark {
    pub value: Option<Json>,
    pub ids: Vec<String>,
    /// More documents held the value than [`MAX_BOUNDARY_IDS`].
    pub overflow: bool,
}

impl Mark {
    /// Takes a document's value and id into account.
    pub fn see(&mut self, v: &Json, id: &str) {
        match &self.value {
            Some(m) if greater(m, v) => {}
            Some(m) if same(m, v) => self.add_id(id),
            _ => {
                self.value = Some(v.clone());
                self.ids.clear();
                self.overflow = false;
                self.add_id(id);
            }
        }
    }

    fn add_id(&mut self, id: &str) {
        if self.ids.len() < MAX_BOUNDARY_IDS {
            self.ids.push(id.to_string());
        } else {
            self.overflow = true;
        }
    }

    /// Merges the mark of another slice.
    pub fn merge(&mut self, other: Mark) {
        let Some(v) = &other.value else { return };
        match &self.value {
            Some(m) if greater(m, v) => {}
            Some(m) if same(m, v) => {
                for id in other.ids {
                    self.add_id(&id);
                }
                self.overflow |= other.overflow;
            }
            _ => *self = other,
        }
    }
}

/// JSON numbers compare as numbers, strings (ISO dates) as strings.
pub(super) fn greater(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() > y.as_f64(),
        (Json::String(x), Json::String(y)) => x > y,
        _ => false,
    }
}

fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The value of a (possibly dotted) field in a document.
pub(super) fn field_at<'a>(source: &'a Json, dotted: &str) -> Option<&'a Json> {
    if let Some(v) = source.get(dotted) {
        return Some(v);
    }
    dotted.split('.').try_fold(source, |v, part| v.get(part))
}

/// `--es-since-field` with its saved position.
pub(super) struct Since {
    pub field: String,
    pub path: PathBuf,
    pub previous: Mark,
    pub seen: Mutex<Mark>,
}

/// A watermark value as a number for `pipeline_source_watermark`: a date
/// (RFC 3339, `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS`, taken as UTC without an
/// offset) in seconds since the epoch, a number as it is; `None` otherwise.
pub(super) fn as_seconds(v: &Json) -> Option<f64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.timestamp_micros() as f64 / 1e6);
            }
            let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
                .ok()
                .or_else(|| {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                })?;
            Some(naive.and_utc().timestamp_micros() as f64 / 1e6)
        }
        _ => None,
    }
}

impl Since {
    /// Where an incremental run starts, in words.
    pub fn describe(&self) -> String {
        match &self.previous.value {
            Some(v) => format!(
                "only documents with {} >= {v} ({} already read there are left out), from --state-file {}; moved forward only when a run succeeds",
                self.field,
                self.previous.ids.len(),
                self.path.display()
            ),
            None => format!(
                "every document: --state-file {} holds no position for {} yet",
                self.path.display(),
                self.field
            ),
        }
    }

    /// Reads the saved position, if the state file exists.
    pub fn open(field: &str, path: &Path) -> Result<Since, PipelineError> {
        let previous = read_state(path, field)?;
        Ok(Since {
            field: field.to_string(),
            path: path.to_path_buf(),
            // Documents read at the saved value again (none, unless they
            // arrived since) join the ids already kept for it.
            seen: Mutex::new(previous.clone()),
            previous,
        })
    }

    /// The user's query, narrowed to documents at or after the saved
    /// position, minus the ones already read at exactly that position.
    pub fn narrow(&self, query: Json) -> Json {
        let Some(prev) = &self.previous.value else {
            return query;
        };
        if self.previous.overflow {
            tracing::warn!(
                "more than {MAX_BOUNDARY_IDS} documents had {} = {prev} in the last run; they are read again (a sink with a key skips them)",
                self.field
            );
        }
        let mut q =
            json!({"bool": {"filter": [query, {"range": {self.field.clone(): {"gte": prev}}}]}});
        if !self.previous.ids.is_empty() && !self.previous.overflow {
            q["bool"]["must_not"] = json!([{"bool": {"filter": [
                {"ids": {"values": self.previous.ids}},
                {"range": {self.field.clone(): {"gte": prev, "lte": prev}}},
            ]}}]);
        }
        q
    }

    /// Saves the position reached (called once the run has succeeded) to a
    /// temporary file beside the state file, put into place by the caller.
    pub fn save(&self) -> Result<Option<(Mark, crate::fsutil::Staged)>, PipelineError> {
        let mark = self.seen.lock().expect("since lock").clone();
        if mark.value.is_none() {
            return Ok(None);
        }
        let body = json!({
            "field": self.field,
            "since": mark.value,
            "ids_at_since": if mark.overflow { Json::Null } else { json!(mark.ids) },
            "saved_at": crate::metrics::unix_now(),
        });
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

fn read_state(path: &Path, field: &str) -> Result<Mark, PipelineError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Mark::default()),
        Err(e) => {
            return Err(PipelineError::OpenInput {
                what: "--state-file",
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let state: Json = serde_json::from_str(&text).map_err(|e| {
        PipelineError::Config(format!(
            "--state-file '{}' is not valid JSON: {e}",
            path.display()
        ))
    })?;
    if state["field"].as_str() != Some(field) {
        return Err(PipelineError::Config(format!(
            "--state-file '{}' holds the position of field '{}', not '{field}'; use another file",
            path.display(),
            state["field"].as_str().unwrap_or("?")
        )));
    }
    let value = Some(state["since"].clone()).filter(|v| !v.is_null());
    let ids = state["ids_at_since"].as_array();
    Ok(Mark {
        value,
        ids: ids
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        // A state without the ids (or with too many to keep) re-reads the
        // boundary: nothing is lost.
        overflow: ids.is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_become_seconds_when_they_are_dates() {
        assert_eq!(as_seconds(&json!(1234)), Some(1234.0));
        assert_eq!(as_seconds(&json!("1970-01-02")), Some(86_400.0));
        assert_eq!(as_seconds(&json!("1970-01-01T00:01:00Z")), Some(60.0));
        assert_eq!(as_seconds(&json!("1970-01-01T01:00:00+01:00")), Some(0.0));
        assert_eq!(as_seconds(&json!("1970-01-01 00:00:01.5")), Some(1.5));
        assert_eq!(as_seconds(&json!("abc")), None);
    }

    #[test]
    fn values_compare_by_kind() {
        assert!(greater(&json!(3), &json!(2.5)));
        assert!(greater(
            &json!("2026-01-02"),
            &json!("2026-01-01T23:00:00Z")
        ));
        assert!(!greater(&json!("a"), &json!(1)));
        let doc = json!({"a": {"b": 5}, "c.d": 6});
        assert_eq!(field_at(&doc, "a.b"), Some(&json!(5)));
        assert_eq!(field_at(&doc, "c.d"), Some(&json!(6)));
    }

    #[test]
    fn the_mark_keeps_the_ids_at_the_largest_value() {
        let mut a = Mark::default();
        a.see(&json!(5), "x");
        a.see(&json!(7), "y");
        a.see(&json!(7), "z");
        a.see(&json!(6), "w");
        assert_eq!(a.value, Some(json!(7)));
        assert_eq!(a.ids, ["y", "z"]);
        let mut b = Mark::default();
        b.see(&json!(7.0), "v");
        a.merge(b);
        assert_eq!(a.ids, ["y", "z", "v"]);
        let mut c = Mark::default();
        c.see(&json!(8), "u");
        a.merge(c);
        assert_eq!((a.value, a.ids), (Some(json!(8)), vec!["u".to_string()]));
    }
}
