//! `--flatten`: the members of nested objects become fields of their own
//! (`geo.coordinates.lat` becomes `geo_coordinates_lat`), opened up to a
//! depth; arrays stay JSON. Two fields that flatten to one name are refused
//! (the record fails with both source paths), never overwritten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::record::{Record, Schema, Value};

/// The default `--flatten-separator`.
pub const DEFAULT_SEPARATOR: &str = "_";

/// How records are flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlattenConfig {
    /// Levels of objects opened (`--flatten 1`: only the record's own
    /// members); `None` opens every level.
    pub depth: Option<usize>,
    /// Put between an object's name and its member's name.
    pub separator: String,
}

/// Flattened schemas by origin and field names.
type Schemas = HashMap<(Option<Arc<str>>, Vec<String>), Arc<Schema>>;

/// Flattens records, sharing one schema among records of one flattened
/// shape.
#[derive(Debug)]
pub struct Flattener {
    config: FlattenConfig,
    schemas: Mutex<Schemas>,
}

/// One flattened field: its name, where it came from, its value.
struct Field {
    name: String,
    path: String,
    value: Value,
}

impl Flattener {
    /// A flattener for `config`.
    pub fn new(config: FlattenConfig) -> Flattener {
        Flattener {
            config,
            schemas: Mutex::new(HashMap::new()),
        }
    }

    /// The record with its nested objects opened. Fails, naming both source
    /// paths, when two fields flatten to the same name.
    pub fn apply(&self, record: &Record) -> Result<Record, String> {
        let mut fields = Vec::with_capacity(record.values.len());
        let mut opened = false;
        for (name, value) in record.schema.names().iter().zip(&record.values) {
            opened |= self.open(name.clone(), name.clone(), value, 0, &mut fields);
        }
        if !opened {
            return Ok(record.clone());
        }
        let mut seen: HashMap<&str, &str> = HashMap::with_capacity(fields.len());
        for f in &fields {
            if let Some(first) = seen.insert(&f.name, &f.path) {
                return Err(format!(
                    "--flatten: fields '{first}' and '{}' both become the field '{}'",
                    f.path, f.name
                ));
            }
        }
        let (names, values): (Vec<String>, Vec<Value>) =
            fields.into_iter().map(|f| (f.name, f.value)).unzip();
        Ok(Record {
            schema: self.schema(record.schema.origin(), names),
            values,
            position: record.position,
        })
    }

    /// Pushes `value` (named `name`, found at `path`) onto `fields`, opened
    /// when it is a non-empty object at a level still to be opened. Returns
    /// whether it was opened.
    fn open(
        &self,
        name: String,
        path: String,
        value: &Value,
        level: usize,
        fields: &mut Vec<Field>,
    ) -> bool {
        let may_open = self.config.depth.is_none_or(|d| level < d);
        let is_object = match value {
            Value::Json(serde_json::Value::Object(_)) => true,
            Value::Raw(raw) => raw.starts_with('{'),
            _ => false,
        };
        if !may_open || !is_object {
            fields.push(Field {
                name,
                path,
                value: value.clone(),
            });
            return false;
        }
        let parsed;
        let map = match value {
            Value::Json(serde_json::Value::Object(m)) => m,
            Value::Raw(raw) => match serde_json::from_str::<serde_json::Value>(raw) {
                Ok(serde_json::Value::Object(m)) => {
                    parsed = m;
                    &parsed
                }
                // Not valid JSON: kept as it came, for the sink to judge.
                _ => {
                    fields.push(Field {
                        name,
                        path,
                        value: value.clone(),
                    });
                    return false;
                }
            },
            _ => unreachable!("checked above"),
        };
        if map.is_empty() {
            // An empty object has no members to become fields: it stays.
            fields.push(Field {
                name,
                path,
                value: Value::Json(serde_json::Value::Object(Default::default())),
            });
            return false;
        }
        for (key, member) in map {
            let inner = match member {
                serde_json::Value::Object(_) => Value::Json(member.clone()),
                other => Value::from_json(other),
            };
            self.open(
                format!("{name}{}{key}", self.config.separator),
                format!("{path}.{key}"),
                &inner,
                level + 1,
                fields,
            );
        }
        true
    }

    /// The shared schema of these names.
    fn schema(&self, origin: Option<&str>, names: Vec<String>) -> Arc<Schema> {
        let origin: Option<Arc<str>> = origin.map(Arc::from);
        let mut schemas = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        schemas
            .entry((origin.clone(), names))
            .or_insert_with_key(|(_, names)| Arc::new(Schema::with_origin(names.clone(), origin)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(names: &[&str], values: Vec<Value>) -> Record {
        Record {
            schema: Arc::new(Schema::new(names.iter().map(|s| s.to_string()).collect())),
            values,
            position: 7,
        }
    }

    fn flat(depth: Option<usize>, sep: &str, r: &Record) -> Result<serde_json::Value, String> {
        let f = Flattener::new(FlattenConfig {
            depth,
            separator: sep.into(),
        });
        f.apply(r).map(|r| {
            let names: Vec<&str> = r.schema.names().iter().map(String::as_str).collect();
            serde_json::json!([names, r.to_json()])
        })
    }

    #[test]
    fn flattens_by_depth_and_separator() {
        let raw = r#"{"coordinates":{"lat":1.5,"lon":-2},"tags":["a"],"none":null,"e":{}}"#;
        let r = record(&["id", "geo"], vec![Value::Int(1), Value::Raw(raw.into())]);
        let cases: &[(Option<usize>, &str, serde_json::Value)] = &[
            (
                None,
                "_",
                serde_json::json!([["id", "geo_coordinates_lat", "geo_coordinates_lon", "geo_tags", "geo_none", "geo_e"],
                    {"id": 1, "geo_coordinates_lat": 1.5, "geo_coordinates_lon": -2, "geo_tags": ["a"], "geo_none": null, "geo_e": {}}]),
            ),
            (
                Some(1),
                ".",
                serde_json::json!([["id", "geo.coordinates", "geo.tags", "geo.none", "geo.e"],
                    {"id": 1, "geo.coordinates": {"lat": 1.5, "lon": -2}, "geo.tags": ["a"], "geo.none": null, "geo.e": {}}]),
            ),
        ];
        for (depth, sep, want) in cases {
            assert_eq!(&flat(*depth, sep, &r).unwrap(), want, "depth {depth:?}");
        }
    }

    #[test]
    fn a_collision_names_both_paths() {
        let r = record(
            &["a_b", "a"],
            vec![Value::Int(1), Value::Json(serde_json::json!({"b": 2}))],
        );
        let e = flat(None, "_", &r).unwrap_err();
        assert!(e.contains("'a_b' and 'a.b'"), "{e}");
    }

    #[test]
    fn records_of_one_shape_share_a_schema() {
        let f = Flattener::new(FlattenConfig {
            depth: None,
            separator: "_".into(),
        });
        let r = record(&["o"], vec![Value::Raw(r#"{"x":1}"#.into())]);
        let (a, b) = (f.apply(&r).unwrap(), f.apply(&r).unwrap());
        assert!(Arc::ptr_eq(&a.schema, &b.schema));
        // Nothing to open: the record as it was.
        let plain = record(&["x"], vec![Value::Str("s".into())]);
        assert!(Arc::ptr_eq(&f.apply(&plain).unwrap().schema, &plain.schema));
    }
}
