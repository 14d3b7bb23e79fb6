//! What `--es-index` names on the server (an index, a pattern, an alias, a
//! data stream): its concrete indices, and how they map the
//! `--es-since-field` field, from the field capabilities API (which the
//! `read` privilege allows, unlike the mapping API).

use elasticsearch::http::Method;
use serde_json::Value as Json;

use crate::metrics::Metrics;

use super::client::{Call, Client, EsError};
use super::since::{Kind, Millis};

/// The concrete indices of `--es-index`, and the mapping of `field`.
pub(super) struct Target {
    /// In name order; `None` when the server does not list them.
    pub indices: Option<Vec<String>>,
    /// The field's kind (`Unmapped` without a field).
    pub kind: Kind,
    /// Where a date field keeps milliseconds.
    pub millis: Millis,
}

/// Asks the server which indices `index` covers and how they map `field`
/// (`GET /<index>/_field_caps?fields=<field>`). `Ok(Err(why))` when the
/// field cannot order an incremental read.
pub(super) async fn resolve(
    client: &Client,
    index: &str,
    field: Option<&str>,
    retries: Option<&Metrics>,
) -> Result<Result<Target, String>, EsError> {
    let path = format!("/{index}/_field_caps");
    // The field and the objects it lies in (`a.b.c`: `a`, `a.b`), to tell
    // a field inside a nested object.
    let asked = match field {
        Some(f) => {
            let mut names: Vec<&str> = f.match_indices('.').map(|(at, _)| &f[..at]).collect();
            names.push(f);
            names.join(",")
        }
        None => "_id".to_string(),
    };
    let fields = [("fields", asked.as_str())];
    let check = |j: &Json| {
        j.get("fields")
            .and_then(Json::as_object)
            .map(|_| ())
            .ok_or_else(|| "no fields object".to_string())
    };
    let mut call = Call::new(Method::Get, &path);
    call.query = &fields;
    call.check = Some(&check);
    call.retries = retries;
    let (answer, _) = client.send(call).await?;
    Ok(target_of(&answer, field))
}

/// " in a,b" for the indices a field capability names (none: all).
fn in_indices(caps: &Json) -> String {
    caps["indices"]
        .as_array()
        .map(|a| {
            let names: Vec<&str> = a.iter().filter_map(Json::as_str).collect();
            format!(" in {}", names.join(","))
        })
        .unwrap_or_default()
}

fn target_of(answer: &Json, field: Option<&str>) -> Result<Target, String> {
    let indices = answer["indices"].as_array().map(|a| {
        let mut v: Vec<String> = a
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect();
        v.sort();
        v
    });
    let Some(field) = field else {
        return Ok(Target {
            indices,
            kind: Kind::Unmapped,
            millis: Millis::None,
        });
    };
    // A range query on the documents does not reach into a nested object
    // (its values are separate hidden documents).
    for (at, _) in field.match_indices('.') {
        let parent = &field[..at];
        if let Some(caps) = answer["fields"][parent].get("nested") {
            return Err(format!(
                "--es-since-field {field} lies inside the nested object {parent}{}: its values are not the document's own, so they cannot order an incremental read; use a field of the document itself",
                in_indices(caps)
            ));
        }
    }
    // One entry per type the field has across the indices.
    let types = answer["fields"][field].as_object();
    let mut kinds: Vec<(Kind, String, String)> = Vec::new();
    for (t, caps) in types.into_iter().flatten() {
        if t == "unmapped" {
            continue;
        }
        let which = in_indices(caps);
        let kind = Kind::of_type(t).ok_or_else(|| {
            format!(
                "--es-since-field {field} is mapped as {t}{which}: an incremental read needs a date, numeric or keyword field (for a text field, its keyword sub-field, e.g. {field}.keyword)"
            )
        })?;
        kinds.push((kind, t.clone(), which));
    }
    let kind = match kinds.first() {
        None => Kind::Unmapped,
        Some((first, t0, w0)) => {
            if let Some((_, t, w)) = kinds.iter().find(|(k, _, _)| k != first) {
                return Err(format!(
                    "--es-since-field {field} is mapped as {t0}{w0} but as {t}{w}: their values do not compare; read them separately"
                ));
            }
            *first
        }
    };
    let millis = match (
        types.and_then(|t| t.get("date")),
        types.is_some_and(|t| t.contains_key("date_nanos")),
    ) {
        (None, _) => Millis::None,
        (Some(_), false) => Millis::All,
        // Both: the `date` entry lists its indices (without the list, the
        // bound stays exact: at worst a millisecond is read again).
        (Some(caps), true) => caps["indices"]
            .as_array()
            .map(|a| {
                Millis::Only(
                    a.iter()
                        .filter_map(|i| i.as_str().map(String::from))
                        .collect(),
                )
            })
            .unwrap_or(Millis::None),
    };
    Ok(Target {
        indices,
        kind,
        millis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_field_capabilities_give_the_indices_and_the_kind() {
        let caps = |t: &str, i: Option<&[&str]>| {
            let mut c = json!({"type": t, "searchable": true, "aggregatable": true});
            if let Some(i) = i {
                c["indices"] = json!(i);
            }
            c
        };
        let answer = json!({"indices": ["b", "a", "c"], "fields": {"ts": {
            "date": caps("date", Some(&["a"])),
            "date_nanos": caps("date_nanos", Some(&["b"])),
        }}});
        let t = target_of(&answer, Some("ts")).unwrap();
        assert_eq!(t.indices.unwrap(), ["a", "b", "c"]);
        assert_eq!(t.kind, Kind::Date);
        assert_eq!(t.millis, Millis::Only(vec!["a".to_string()]));
        assert_eq!(target_of(&answer, None).unwrap().kind, Kind::Unmapped);
        let none = json!({"indices": ["a"], "fields": {}});
        assert_eq!(target_of(&none, Some("ts")).unwrap().kind, Kind::Unmapped);
        assert!(target_of(&json!({"fields": {}}), None)
            .unwrap()
            .indices
            .is_none());
        let mixed = json!({"fields": {"ts": {
            "date": caps("date", Some(&["a"])),
            "long": caps("long", Some(&["b"])),
        }}});
        let why = target_of(&mixed, Some("ts")).err().unwrap();
        assert!(
            why.contains("date in a") && why.contains("long in b"),
            "{why}"
        );
        let text = json!({"fields": {"ts": {"text": caps("text", None)}}});
        assert!(target_of(&text, Some("ts"))
            .err()
            .unwrap()
            .contains("ts.keyword"));
        let ms = json!({"fields": {"ts": {"date": caps("date", None)}}});
        assert_eq!(target_of(&ms, Some("ts")).unwrap().millis, Millis::All);
        let ns = json!({"fields": {"ts": {"date_nanos": caps("date_nanos", None)}}});
        assert_eq!(target_of(&ns, Some("ts")).unwrap().millis, Millis::None);
        let nested = json!({"fields": {
            "o": {"object": caps("object", None)},
            "o.n": {"nested": caps("nested", Some(&["b"]))},
            "o.n.ts": {"date": caps("date", None)},
        }});
        let why = target_of(&nested, Some("o.n.ts")).err().unwrap();
        assert!(why.contains("nested object o.n in b"), "{why}");
        let object = json!({"fields": {"o": {"object": caps("object", None)}, "o.ts": {"date": caps("date", None)}}});
        assert_eq!(target_of(&object, Some("o.ts")).unwrap().kind, Kind::Date);
        let kw = json!({"fields": {"ts": {"keyword": caps("keyword", None)}}});
        assert_eq!(target_of(&kw, Some("ts")).unwrap().kind, Kind::Keyword);
    }
}
