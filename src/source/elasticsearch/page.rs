//! One page of search hits: what makes it a valid search response, and how
//! its hits become records (numbers keep the exact digits of the JSON text).

use serde::de::{DeserializeSeed, Deserializer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value as Json;

use crate::json_line::{raw_value, tree_value};
use crate::record::{Record, Value};
use crate::source::json_object::{all_different, Members, MembersInto, SchemaCache, Text};

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
    total_value(&page["hits"]["total"])
}

/// An exact `hits.total`: a number, or `{"value": n, "relation": "eq"}`.
fn total_value(total: &Json) -> Option<u64> {
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

impl SchemaCache {
    /// A hit as a record from its parsed tree: metadata fields first, then
    /// the `_source` fields (a `_source` field named like a metadata field
    /// is left out). The slow path, for documents whose `_source` repeats a
    /// key.
    pub(super) fn record(&mut self, hit: &Json, meta: &[String], position: u64) -> Record {
        let source = hit["_source"].as_object();
        let mut names: Vec<&str> = Vec::with_capacity(meta.len() + source.map_or(0, |s| s.len()));
        let mut values = Vec::with_capacity(names.capacity());
        for m in meta {
            names.push(m);
            values.push(tree_value(&hit[m.as_str()]));
        }
        if let Some(src) = source {
            for (k, v) in src {
                if meta.iter().any(|m| m == k) {
                    continue;
                }
                names.push(k);
                values.push(tree_value(v));
            }
        }
        let schema = self.schema(names.iter().copied());
        Record {
            schema,
            values,
            position,
        }
    }
}

/// One hit: its members.
struct HitIn<'a>(Members<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for HitIn<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut members = Vec::with_capacity(8);
        MembersInto(&mut members).deserialize(d)?;
        Ok(HitIn(members))
    }
}

#[derive(Deserialize)]
struct HitsIn<'a> {
    #[serde(default, borrow)]
    total: Option<&'a RawValue>,
    #[serde(default, borrow)]
    hits: Option<Vec<HitIn<'a>>>,
}

#[derive(Deserialize)]
struct PageIn<'a> {
    #[serde(default)]
    timed_out: Option<bool>,
    #[serde(default, borrow, rename = "_scroll_id")]
    scroll_id: Option<Text<'a>>,
    #[serde(default, borrow)]
    pit_id: Option<Text<'a>>,
    #[serde(default, borrow, rename = "_shards")]
    shards: Option<&'a RawValue>,
    #[serde(default, borrow)]
    hits: Option<HitsIn<'a>>,
}

/// Where a piece of JSON text lies in the page body.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn of(body: &str, part: &str) -> Span {
        let start = part.as_ptr() as usize - body.as_ptr() as usize;
        debug_assert!(start + part.len() <= body.len());
        Span {
            start,
            end: start + part.len(),
        }
    }
}

struct HitAt {
    id: Span,
    /// The `_index` (a string), when the hit has one.
    index: Option<Span>,
    source: Option<Span>,
    sort: Option<Span>,
    /// The `fields` object (values asked for with `docvalue_fields`).
    fields: Option<Span>,
}

/// Why a 2xx body is not a page.
#[derive(Debug)]
pub(super) enum Bad {
    /// Not JSON at all (a proxy's HTML page, a body cut short).
    NotJson(String),
    /// JSON, but not a valid search response.
    Invalid(String),
}

/// One page of search hits, parsed without building a value tree: the body
/// as it came, and where each hit's pieces lie in it. Only the pieces that
/// are needed are ever read further: the `_source` members one level deep,
/// their values kept as JSON text.
pub(super) struct Page {
    body: String,
    /// The exact total (when the page carries one).
    pub total: Option<u64>,
    pub scroll_id: Option<String>,
    pub pit_id: Option<String>,
    /// The first shard failure's (type, reason), when shards failed.
    pub shard_failure: Option<(String, String)>,
    hits: Vec<HitAt>,
    /// Where each metadata field's value lies: `meta_len` per hit.
    meta: Vec<Option<Span>>,
    meta_len: usize,
}

impl Page {
    /// Parses and checks a 2xx body as [`check`] does, reading the values
    /// of the `meta` fields of each hit.
    pub(super) fn parse(bytes: &[u8], meta: &[String], expect: Expect) -> Result<Page, Bad> {
        let body = match crate::utf8::text(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => return Err(explain(bytes, None, expect)),
        };
        let parsed = match serde_json::from_str::<PageIn>(&body) {
            Ok(p) => p,
            Err(e) => return Err(explain(bytes, Some(e), expect)),
        };
        let Some((total_raw, hits_in)) = parsed.hits.and_then(|h| Some((h.total, h.hits?))) else {
            return Err(Bad::Invalid("no hits.hits array".into()));
        };
        if parsed.timed_out == Some(true) {
            return Err(Bad::Invalid(
                "timed_out is true: the page may be missing hits".into(),
            ));
        }
        let total = total_raw
            .and_then(|raw| serde_json::from_str::<Json>(raw.get()).ok())
            .and_then(|t| total_value(&t));
        if expect.total && total.is_none() {
            return Err(Bad::Invalid(format!(
                "no exact hits.total (got {})",
                total_raw.map_or("null", |r| r.get())
            )));
        }
        if expect.scroll_id && parsed.scroll_id.is_none() {
            return Err(Bad::Invalid("no _scroll_id".into()));
        }
        let shard_failure = parsed.shards.and_then(|raw| {
            let shards: Json = serde_json::from_str(raw.get()).ok()?;
            (shards["failed"].as_u64().unwrap_or(0) > 0).then(|| {
                error_reason(&serde_json::json!({"error": shards["failures"][0]["reason"]}))
            })
        });
        let mut hits = Vec::with_capacity(hits_in.len());
        let mut metas = vec![None; hits_in.len() * meta.len()];
        for (i, HitIn(members)) in hits_in.iter().enumerate() {
            let (mut id, mut index, mut source, mut sort, mut fields) =
                (None, None, None, None, None);
            let at = &mut metas[i * meta.len()..(i + 1) * meta.len()];
            for (key, raw) in members {
                let span = Span::of(&body, raw.get());
                match &*key.0 {
                    "_id" => id = raw.get().starts_with('"').then_some(span),
                    "_index" => index = raw.get().starts_with('"').then_some(span),
                    "_source" => source = Some(span),
                    "sort" => sort = raw.get().starts_with('[').then_some(span),
                    "fields" => fields = raw.get().starts_with('{').then_some(span),
                    _ => {}
                }
                if let Some(m) = meta.iter().position(|m| *m == *key.0) {
                    at[m] = Some(span);
                }
            }
            let Some(id) = id else {
                return Err(Bad::Invalid(format!("hit {i} has no _id")));
            };
            if expect.sort && sort.is_none() {
                return Err(Bad::Invalid(format!("hit {i} has no sort values")));
            }
            hits.push(HitAt {
                id,
                index,
                source,
                sort,
                fields,
            });
        }
        let scroll_id = parsed.scroll_id.map(|t| t.0.into_owned());
        let pit_id = parsed.pit_id.map(|t| t.0.into_owned());
        drop(hits_in);
        Ok(Page {
            body,
            total,
            scroll_id,
            pit_id,
            shard_failure,
            hits,
            meta: metas,
            meta_len: meta.len(),
        })
    }

    fn text(&self, span: Span) -> &str {
        &self.body[span.start..span.end]
    }

    /// Number of hits.
    pub(super) fn len(&self) -> usize {
        self.hits.len()
    }

    /// The last hit's sort values (the next page's `search_after`).
    pub(super) fn last_sort(&self) -> Option<Json> {
        let span = self.hits.last()?.sort?;
        serde_json::from_str(self.text(span)).ok()
    }

    /// Hit `i`'s `_id`.
    pub(super) fn id(&self, i: usize) -> String {
        serde_json::from_str(self.text(self.hits[i].id)).unwrap_or_default()
    }

    /// Hit `i`'s `_index`, when it has one.
    pub(super) fn index(&self, i: usize) -> Option<String> {
        serde_json::from_str(self.text(self.hits[i].index?)).ok()
    }

    /// Hit `i`'s values of `field` in its `fields` object (asked for with
    /// `docvalue_fields`); `None` when it has none.
    pub(super) fn docvalues(&self, i: usize, field: &str) -> Option<Vec<Json>> {
        let span = self.hits[i].fields?;
        let mut fields: serde_json::Map<String, Json> =
            serde_json::from_str(self.text(span)).ok()?;
        match fields.remove(field)? {
            Json::Array(values) => Some(values),
            Json::Null => None,
            one => Some(vec![one]),
        }
    }

    /// Hit `i` as a record: its metadata fields first (null when the hit
    /// lacks one), then its `_source` fields in the order they came (one
    /// named like a metadata field is left out). Values keep their JSON
    /// text ([`Value::Raw`]); objects and arrays are put on one line.
    pub(super) fn record<'p>(
        &'p self,
        i: usize,
        cache: &mut SchemaCache,
        members: &mut Members<'p>,
        meta: &[String],
        position: u64,
    ) -> Record {
        members.clear();
        let source = self.hits[i].source.map(|s| self.text(s));
        let parsed = match source {
            Some(src) if src.starts_with('{') => {
                let mut de = serde_json::Deserializer::from_str(src);
                MembersInto(members).deserialize(&mut de).is_ok()
            }
            _ => true,
        };
        let unique = parsed && {
            let keys = || members.iter().map(|(k, _)| &*k.0);
            let cached = cache.last.as_ref().is_some_and(|s| {
                s.names()[self.meta_len.min(s.len())..]
                    .iter()
                    .map(String::as_str)
                    .eq(keys().filter(|k| !meta.iter().any(|m| m == k)))
            });
            cached || all_different(keys())
        };
        if !unique {
            // A repeated key (the last one counts) or a body serde could
            // not read one level deep: read the whole hit.
            let hit = self.hit_json(i, meta);
            return cache.record(&hit, meta, position);
        }
        let names = meta.iter().map(String::as_str).chain(
            members
                .iter()
                .map(|(k, _)| &*k.0)
                .filter(|k| !meta.iter().any(|m| m == k)),
        );
        let schema = cache.schema(names);
        let mut values = Vec::with_capacity(schema.len());
        let at = &self.meta[i * self.meta_len..(i + 1) * self.meta_len];
        for span in at {
            values.push(span.map_or(Value::Null, |s| raw_value(self.text(s))));
        }
        for (key, raw) in members.iter() {
            if !meta.iter().any(|m| *m == *key.0) {
                values.push(raw_value(raw.get()));
            }
        }
        Record {
            schema,
            values,
            position,
        }
    }

    /// Hit `i` as a tree: its metadata fields and `_source`.
    fn hit_json(&self, i: usize, meta: &[String]) -> Json {
        let mut hit = serde_json::Map::new();
        let at = &self.meta[i * self.meta_len..(i + 1) * self.meta_len];
        for (m, span) in meta.iter().zip(at) {
            if let Some(s) = span {
                hit.insert(
                    m.clone(),
                    serde_json::from_str(self.text(*s)).unwrap_or(Json::Null),
                );
            }
        }
        if let Some(s) = self.hits[i].source {
            hit.insert(
                "_source".into(),
                serde_json::from_str(self.text(s)).unwrap_or(Json::Null),
            );
        }
        Json::Object(hit)
    }
}

/// Explains why a body is not a page, from its tree (failures only, so
/// the cost does not matter).
fn explain(bytes: &[u8], typed: Option<serde_json::Error>, expect: Expect) -> Bad {
    match serde_json::from_slice::<Json>(bytes) {
        Err(e) => Bad::NotJson(e.to_string()),
        Ok(j) => Bad::Invalid(match check(&j, expect) {
            Err(what) => what,
            Ok(()) => typed.map_or_else(|| "not valid UTF-8".into(), |e| e.to_string()),
        }),
    }
}

/// The server's error type and reason from an error body.
pub(super) fn error_reason(body: &Json) -> (String, String) {
    let err = &body["error"];
    let root = &err["root_cause"][0];
    let kind = root["type"]
        .as_str()
        .or_else(|| err["type"].as_str())
        .unwrap_or("")
        .to_string();
    let reason = root["reason"]
        .as_str()
        .or_else(|| err["reason"].as_str())
        .or_else(|| err.as_str())
        .unwrap_or("")
        .to_string();
    (kind, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn hits_become_records_with_metadata_first() {
        let mut cache = SchemaCache::default();
        let hit = json!({"_id": "a", "_index": "i", "_source": {"n": 1, "o": {"k": [1]}, "s": null, "u": 18446744073709551615u64}});
        let r = cache.record(&hit, &["_id".to_string()], 7);
        assert_eq!(r.schema.names(), &["_id", "n", "o", "s", "u"]);
        assert_eq!(*r.values[0].typed(), Value::Str("a".into()));
        assert_eq!(*r.values[1].typed(), Value::Int(1));
        assert_eq!(*r.values[2].typed(), Value::Json(json!({"k": [1]})));
        assert_eq!(*r.values[3].typed(), Value::Null);
        assert_eq!(
            *r.values[4].typed(),
            Value::Decimal("18446744073709551615".into())
        );
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
        assert_eq!(
            *r.values[0].typed(),
            Value::Decimal("19.999999999999999999".into())
        );
        assert_eq!(
            *r.values[1].typed(),
            Value::Decimal("123456789012345678901234567890".into())
        );
        assert_eq!(*r.values[2].typed(), Value::Decimal("2.0".into()));
        assert_eq!(*r.values[3].typed(), Value::Decimal("1e+3".into()));
        assert_eq!(*r.values[4].typed(), Value::Int(-5));
        let mut line = Vec::new();
        crate::json_line::record_into(&mut line, &r);
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

    fn page_of(hits: &str) -> Page {
        let body = format!(
            r#"{{"_scroll_id":"s1","hits":{{"total":{{"value":9,"relation":"eq"}},"hits":[{hits}]}}}}"#
        );
        let expect = Expect {
            total: true,
            sort: false,
            scroll_id: true,
        };
        Page::parse(body.as_bytes(), &["_id".to_string()], expect).unwrap()
    }

    fn line(r: &Record) -> String {
        let mut out = Vec::new();
        crate::json_line::record_into(&mut out, r);
        String::from_utf8(out).unwrap()
    }

    fn records(page: &Page) -> Vec<Record> {
        let mut cache = SchemaCache::default();
        let mut members = Vec::new();
        (0..page.len())
            .map(|i| page.record(i, &mut cache, &mut members, &["_id".to_string()], i as u64))
            .collect()
    }

    #[test]
    fn sources_pass_through_on_one_line_with_metadata_in_front() {
        let page = page_of(
            r#"{"_id":"a","_index":"i","_source":{"n": 19.999999999999999999 ,
              "o" : { "k" : [ 1 , "x y" ] , "e":"q\"u\\ \n" },"s":null,"b":true,"t":"\u00e9 \/"}}"#,
        );
        assert_eq!(page.total, Some(9));
        assert_eq!(page.scroll_id.as_deref(), Some("s1"));
        let r = &records(&page)[0];
        assert_eq!(
            line(r),
            r#"{"_id":"a","n":19.999999999999999999,"o":{"k":[1,"x y"],"e":"q\"u\\ \n"},"s":null,"b":true,"t":"\u00e9 \/"}"#
        );
        // The typed values are what the tree gave.
        let typed: Vec<Value> = r.values.iter().map(|v| v.typed().into_owned()).collect();
        assert_eq!(typed[0], Value::Str("a".into()));
        assert_eq!(typed[1], Value::Decimal("19.999999999999999999".into()));
        assert_eq!(
            typed[2],
            Value::Json(serde_json::json!({"k": [1, "x y"], "e": "q\"u\\ \n"}))
        );
        assert_eq!(typed[3], Value::Null);
        assert_eq!(typed[4], Value::Bool(true));
        assert_eq!(typed[5], Value::Str("é /".into()));
    }

    #[test]
    fn a_source_field_named_like_metadata_and_repeated_keys_read_as_the_tree_does() {
        let page = page_of(
            r#"{"_id":"a","_source":{"_id":"shadow","x":1}},{"_id":"b","_source":{"x":1,"y":2,"x":3}},{"_id":"c","_source":{"x":4,"y":5}}"#,
        );
        let rs = records(&page);
        assert_eq!(line(&rs[0]), r#"{"_id":"a","x":1}"#);
        assert_eq!(line(&rs[1]), r#"{"_id":"b","x":3,"y":2}"#);
        assert_eq!(line(&rs[2]), r#"{"_id":"c","x":4,"y":5}"#);
        assert!(Arc::ptr_eq(&rs[1].schema, &rs[2].schema));
    }

    #[test]
    fn escaped_keys_missing_sources_and_metadata() {
        let page = page_of(
            r#"{"_id":"a\"b","_source":{"k\u00e9":"v"}},{"_id":"c"},{"_id":"d","_source":null}"#,
        );
        let rs = records(&page);
        assert_eq!(rs[0].schema.names(), &["_id", "ké"]);
        assert_eq!(line(&rs[0]), r#"{"_id":"a\"b","ké":"v"}"#);
        assert_eq!(page.id(0), "a\"b");
        assert_eq!(line(&rs[1]), r#"{"_id":"c"}"#);
        assert_eq!(line(&rs[2]), r#"{"_id":"d"}"#);
    }

    #[test]
    fn the_since_field_comes_from_the_doc_values_not_the_source() {
        let page = page_of(
            r#"{"_id":"a","_source":{"t":"x"},"fields":{"t":["1767225600000"],"n":[3,9]}},{"_id":"b","_source":{"t":null}}"#,
        );
        assert_eq!(
            page.docvalues(0, "t"),
            Some(vec![serde_json::json!("1767225600000")])
        );
        assert_eq!(
            page.docvalues(0, "n"),
            Some(vec![serde_json::json!(3), serde_json::json!(9)])
        );
        assert_eq!(page.docvalues(1, "t"), None);
        // `fields` is not a record field.
        assert_eq!(line(&records(&page)[0]), r#"{"_id":"a","t":"x"}"#);
    }

    #[test]
    fn bodies_that_are_not_pages_say_why() {
        let expect = Expect {
            total: true,
            sort: true,
            scroll_id: false,
        };
        let why = |body: &str| match Page::parse(body.as_bytes(), &[], expect) {
            Err(Bad::NotJson(m)) => format!("not json: {m}"),
            Err(Bad::Invalid(m)) => m,
            Ok(_) => "ok".into(),
        };
        assert!(why("<html>").starts_with("not json"));
        assert!(why(r#"{"hits":{"total":1,"hits":[{"_id":"a","sort":[1]}"#).starts_with("not json"));
        assert_eq!(why(r#""<html>""#), "not a JSON object");
        assert_eq!(why(r#"{"ok":true}"#), "no hits.hits array");
        assert_eq!(
            why(r#"{"hits":{"hits":[]}}"#),
            "no exact hits.total (got null)"
        );
        assert_eq!(
            why(r#"{"hits":{"total":1,"hits":[{"_id":"a"}]}}"#),
            "hit 0 has no sort values"
        );
        assert_eq!(
            why(r#"{"hits":{"total":1,"hits":[{"_id":7,"sort":[1]}]}}"#),
            "hit 0 has no _id"
        );
        assert_eq!(
            why(r#"{"timed_out":true,"hits":{"total":1,"hits":[]}}"#),
            "timed_out is true: the page may be missing hits"
        );
        assert_eq!(
            why(r#"{"hits":{"total":1,"hits":[{"_id":"a","sort":[1]}]}}"#),
            "ok"
        );
        let failed = r#"{"_shards":{"failed":1,"failures":[{"reason":{"type":"x_exception","reason":"bad"}}]},"hits":{"total":0,"hits":[]}}"#;
        let page = Page::parse(failed.as_bytes(), &[], expect).unwrap();
        assert_eq!(
            page.shard_failure,
            Some(("x_exception".into(), "bad".into()))
        );
    }
}
