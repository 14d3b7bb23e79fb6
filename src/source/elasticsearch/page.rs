//! One page of search hits: what makes it a valid search response, and how
//! its hits become records (numbers keep the exact digits of the JSON text).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::record::{Record, Schema, Value};

/// What a page must hold, besides a `hits.hits` array.
#[derive(Debug, Clone, Copy)]
pub(super) struct Expect {
    /// `hits.total` (asked for with `track_total_hits`).
    pub total: bool,
    /// `sort` values on every hit (search_after paging).
    pub sort: bool,
    /// `_scroll_id`.
    pub scroll_id: bool,
}

/// The exact total of a page that was asked to track it.
pub(super) fn total_of(page: &Json) -> Option<u64> {
    let total = &page["hits"]["total"];
    match total {
        Json::Number(n) => n.as_u64(),
        Json::Object(o) => match o.get("relation").and_then(Json::as_str) {
            None | Some("eq") => o.get("value").and_then(Json::as_u64),
            Some(_) => None,
        },
        _ => None,
    }
}

/// Checks that `page` is a well-formed search response: an object with a
/// `hits.hits` array of hits that each have an `_id` (and sort values when
/// paging with search_after), the exact total when it was asked for, a
/// scroll id when scrolling, and no timed-out or failed shards.
pub(super) fn check(page: &Json, expect: Expect) -> Result<(), String> {
    let Some(obj) = page.as_object() else {
        return Err("not a JSON object".into());
    };
    let Some(hits) = obj
        .get("hits")
        .and_then(|h| h.get("hits"))
        .and_then(Json::as_array)
    else {
        return Err("no hits.hits array".into());
    };
    if obj.get("timed_out").and_then(Json::as_bool) == Some(true) {
        return Err("timed_out is true: the page may be missing hits".into());
    }
    if expect.total && total_of(page).is_none() {
        return Err(format!(
            "no exact hits.total (got {})",
            serde_json::to_string(&page["hits"]["total"]).unwrap_or_default()
        ));
    }
    if expect.scroll_id && !obj.get("_scroll_id").is_some_and(Json::is_string) {
        return Err("no _scroll_id".into());
    }
    for (i, hit) in hits.iter().enumerate() {
        if !hit.get("_id").is_some_and(Json::is_string) {
            return Err(format!("hit {i} has no _id"));
        }
        if expect.sort && !hit.get("sort").is_some_and(Json::is_array) {
            return Err(format!("hit {i} has no sort values"));
        }
    }
    Ok(())
}

/// Checks a `size: 0` count search or a `_count` answer.
pub(super) fn check_count(page: &Json) -> Result<(), String> {
    if page.get("count").and_then(Json::as_u64).is_some() || total_of(page).is_some() {
        Ok(())
    } else {
        Err("no count".into())
    }
}

/// Reuses one schema for consecutive documents with the same fields.
#[derive(Default)]
pub(super) struct SchemaCache {
    last: Option<Arc<Schema>>,
    by_keys: HashMap<Vec<String>, Arc<Schema>>,
}

/// A JSON value as a record value: strings, booleans and null as
/// themselves; a number as an integer when it fits 64 bits, otherwise as its
/// exact JSON text (never through a 64-bit float); objects and arrays stay
/// JSON.
pub(super) fn to_value(v: &Json) -> Value {
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

impl SchemaCache {
    pub(super) fn record(&mut self, hit: &Json, meta: &[String], position: u64) -> Record {
        let source = hit["_source"].as_object();
        let mut names: Vec<&str> = Vec::with_capacity(meta.len() + source.map_or(0, |s| s.len()));
        let mut values = Vec::with_capacity(names.capacity());
        for m in meta {
            names.push(m);
            values.push(to_value(&hit[m.as_str()]));
        }
        if let Some(src) = source {
            for (k, v) in src {
                if meta.iter().any(|m| m == k) {
                    continue;
                }
                names.push(k);
                values.push(to_value(v));
            }
        }
        let schema = match &self.last {
            Some(s)
                if s.names()
                    .iter()
                    .map(String::as_str)
                    .eq(names.iter().copied()) =>
            {
                s.clone()
            }
            _ => {
                let key: Vec<String> = names.iter().map(|s| s.to_string()).collect();
                if self.by_keys.len() > 4096 {
                    self.by_keys.clear();
                }
                let s = self
                    .by_keys
                    .entry(key.clone())
                    .or_insert_with(|| Arc::new(Schema::new(key)))
                    .clone();
                self.last = Some(s.clone());
                s
            }
        };
        Record {
            schema,
            values,
            position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hits_become_records_with_metadata_first() {
        let mut cache = SchemaCache::default();
        let hit = json!({"_id": "a", "_index": "i", "_source": {"n": 1, "o": {"k": [1]}, "s": null, "u": 18446744073709551615u64}});
        let r = cache.record(&hit, &["_id".to_string()], 7);
        assert_eq!(r.schema.names(), &["_id", "n", "o", "s", "u"]);
        assert_eq!(r.values[0], Value::Str("a".into()));
        assert_eq!(r.values[1], Value::Int(1));
        assert_eq!(r.values[2], Value::Json(json!({"k": [1]})));
        assert_eq!(r.values[3], Value::Null);
        assert_eq!(r.values[4], Value::Decimal("18446744073709551615".into()));
        let again = cache.record(&hit, &["_id".to_string()], 8);
        assert!(Arc::ptr_eq(&r.schema, &again.schema));
    }

    #[test]
    fn numbers_keep_their_exact_digits() {
        let hit: Json = serde_json::from_str(
            r#"{"_id":"x","_source":{"d":19.999999999999999999,"big":123456789012345678901234567890,"f":2.0,"e":1e3,"i":-5}}"#,
        )
        .unwrap();
        let r = SchemaCache::default().record(&hit, &[], 1);
        assert_eq!(r.values[0], Value::Decimal("19.999999999999999999".into()));
        assert_eq!(
            r.values[1],
            Value::Decimal("123456789012345678901234567890".into())
        );
        assert_eq!(r.values[2], Value::Decimal("2.0".into()));
        assert_eq!(r.values[3], Value::Decimal("1e+3".into()));
        assert_eq!(r.values[4], Value::Int(-5));
        let mut line = Vec::new();
        r.write_json(&mut line).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"d":19.999999999999999999,"big":123456789012345678901234567890,"f":2.0,"e":1e+3,"i":-5}"#
        );
    }

    #[test]
    fn pages_that_are_not_search_responses_are_refused() {
        let all = Expect {
            total: true,
            sort: true,
            scroll_id: false,
        };
        let good = json!({"hits": {"total": {"value": 1, "relation": "eq"}, "hits": [{"_id": "a", "sort": [1]}]}});
        assert!(check(&good, all).is_ok());
        assert!(check(&json!("<html>"), all).is_err());
        assert!(check(&json!({"ok": true}), all).is_err());
        assert!(
            check(&json!({"hits": {"hits": []}}), all).is_err(),
            "no total"
        );
        let gte = json!({"hits": {"total": {"value": 10000, "relation": "gte"}, "hits": []}});
        assert!(check(&gte, all).is_err(), "a lower bound is not a total");
        let no_sort = json!({"hits": {"total": 1, "hits": [{"_id": "a"}]}});
        assert!(check(&no_sort, all).is_err());
        let timed_out = json!({"timed_out": true, "hits": {"total": 0, "hits": []}});
        assert!(check(&timed_out, all).is_err());
        let scroll = Expect {
            total: false,
            sort: false,
            scroll_id: true,
        };
        assert!(check(&json!({"hits": {"hits": []}}), scroll).is_err());
        assert!(check(&json!({"_scroll_id": "s", "hits": {"hits": []}}), scroll).is_ok());
    }
}
