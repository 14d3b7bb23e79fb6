//! What `--es-index` names on the server (an index, a pattern, an alias, a
//! data stream): its concrete indices, and how they map the
//! `--es-since-field` field, from the field mapping API.

use elasticsearch::http::Method;
use serde_json::Value as Json;

use crate::metrics::Metrics;

use super::client::{Call, Client, EsError};
use super::since::Kind;

/// The concrete indices of `--es-index`, and the mapping of `field`.
pub(super) struct Target {
    /// In name order.
    pub indices: Vec<String>,
    /// The field's kind (`Unmapped` without a field).
    pub kind: Kind,
}

/// Asks the server which indices `index` covers and how they map `field`
/// (`GET /<index>/_mapping/field/<field>`: one entry per concrete index).
/// `Err(Ok(why))` when the field cannot order an incremental read.
pub(super) async fn resolve(
    client: &Client,
    index: &str,
    field: Option<&str>,
    retries: Option<&Metrics>,
) -> Result<Result<Target, String>, EsError> {
    let path = format!("/{index}/_mapping/field/{}", field.unwrap_or("_id"));
    let check = |j: &Json| {
        j.as_object()
            .map(|_| ())
            .ok_or_else(|| "not a JSON object".to_string())
    };
    let mut call = Call::new(Method::Get, &path);
    call.check = Some(&check);
    call.retries = retries;
    let (answer, _) = client.send(call).await?;
    Ok(target_of(&answer, field))
}

fn target_of(answer: &Json, field: Option<&str>) -> Result<Target, String> {
    let mut indices: Vec<String> = answer
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    indices.sort();
    let Some(field) = field else {
        return Ok(Target {
            indices,
            kind: Kind::Unmapped,
        });
    };
    // (kind, type, index) of every index that maps the field.
    let mut kinds: Vec<(Kind, String, &str)> = Vec::new();
    for index in &indices {
        let mapping = &answer[index.as_str()]["mappings"][field]["mapping"];
        let Some(t) = mapping
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|m| m["type"].as_str())
        else {
            continue;
        };
        let kind = Kind::of_type(t).ok_or_else(|| {
            format!(
                "--es-since-field {field} is mapped as {t} in index {index}: an incremental read needs a date, numeric or keyword field (for a text field, its keyword sub-field, e.g. {field}.keyword)"
            )
        })?;
        kinds.push((kind, t.to_string(), index));
    }
    let kind = match kinds.first() {
        None => Kind::Unmapped,
        Some((first, t0, i0)) => {
            if let Some((_, t, i)) = kinds.iter().find(|(k, _, _)| k != first) {
                return Err(format!(
                    "--es-since-field {field} is mapped as {t0} in index {i0} but as {t} in index {i}: their values do not compare; read them separately"
                ));
            }
            *first
        }
    };
    Ok(Target { indices, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_field_mapping_gives_the_indices_and_the_kind() {
        let m = |t: &str| json!({"mappings": {"ts": {"full_name": "ts", "mapping": {"ts": {"type": t}}}}});
        let answer = json!({"b": m("date"), "a": m("date_nanos"), "c": {"mappings": {}}});
        let t = target_of(&answer, Some("ts")).unwrap();
        assert_eq!(t.indices, ["a", "b", "c"]);
        assert_eq!(t.kind, Kind::Date);
        assert_eq!(target_of(&answer, None).unwrap().kind, Kind::Unmapped);
        let none = json!({"a": {"mappings": {}}});
        assert_eq!(target_of(&none, Some("ts")).unwrap().kind, Kind::Unmapped);
        let mixed = json!({"a": m("date"), "b": m("long")});
        let why = target_of(&mixed, Some("ts")).err().unwrap();
        assert!(
            why.contains("date in index a") && why.contains("long in index b"),
            "{why}"
        );
        let text = json!({"a": m("text")});
        assert!(target_of(&text, Some("ts"))
            .err()
            .unwrap()
            .contains("ts.keyword"));
        assert_eq!(
            target_of(&json!({"a": m("keyword")}), Some("ts"))
                .unwrap()
                .kind,
            Kind::Keyword
        );
    }
}
