//! A realistic index, filled with documents no one here wrote: 2000 web-log
//! events of makelogs (Elastic's sample-data generator, installed by
//! scripts/services.sh; written as a `_bulk` body by
//! scripts/makelogs_bulk.js, as makelogs' own writer cannot talk to either
//! test server) with nested objects, arrays of strings and of objects,
//! dates, IPs, long texts and a 101-character field name; and beside them
//! documents whose names a column cannot have as they are, at the top level
//! and nested (names that only `--flatten` makes long or clash). Loaded from
//! both Elasticsearch-API servers into MariaDB with `--create-table`, with
//! and without `--flatten`: every document read back from the index (by this
//! test's own HTTP client) is a row, and each of its values is in the column
//! the logged name mapping names: strings equal, numbers equal, objects and
//! arrays JSON-equal, dates the same instant.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::Instant;

use common::*;
use serde_json::{json, Map, Value};

/// The makelogs events.
const EVENTS: usize = 2000;

const INDEX: &str = "weblogs";

/// The `_bulk` body of `count` makelogs events for `INDEX`.
fn makelogs(count: usize) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("node")
        .current_dir(root)
        .args(["scripts/makelogs_bulk.js", &count.to_string(), INDEX])
        .output()
        .expect("run node (scripts/services.sh installs it)");
    assert!(
        out.status.success(),
        "scripts/makelogs_bulk.js failed (scripts/services.sh installs makelogs into node_modules): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Documents whose names a column cannot have as they are: at the top level
/// (as NDJSON has them too) and nested, where `--flatten` makes names of 64,
/// 65 and 300 characters, two long ones sharing 64, a trailing space, and a
/// `GEO_SRC` that meets makelogs' `geo.src` (column names compare
/// case-insensitively). The empty name is a document of its own: an
/// OpenSearch API refuses it.
fn odd_documents() -> Vec<(String, Value)> {
    let shared = "d".repeat(64);
    let mut docs = Vec::new();
    for n in 0..20 {
        let mut top = Map::new();
        for name in [
            "a".repeat(64),
            "b".repeat(65),
            "c".repeat(300),
            format!("{shared}1"),
            format!("{shared}2"),
            "trailing ".into(),
            "!?.-".into(),
            "ID".into(),
            "id".into(),
            "GEO_SRC".into(),
        ] {
            top.insert(name.clone(), json!(format!("{}-{n}", name.len())));
        }
        top.insert("ID".into(), json!(n * 10));
        top.insert("id".into(), json!(format!("lower-{n}")));
        let mut nest = Map::new();
        for (name, v) in [
            ("x".repeat(59), json!(n)),
            ("y".repeat(60), json!(f64::from(n) + 0.5)),
            ("z".repeat(300), json!(format!("z{n}"))),
            (format!("{}1", "s".repeat(60)), json!(format!("s1-{n}"))),
            (format!("{}2", "s".repeat(60)), json!(format!("s2-{n}"))),
            ("t ".into(), json!(true)),
            ("!?".into(), json!([format!("a{n}"), "x"])),
        ] {
            nest.insert(name, v);
        }
        top.insert("nest".into(), Value::Object(nest));
        docs.push((format!("odd-{n}"), Value::Object(top)));
    }
    docs.push(("odd-empty".into(), json!({"": "empty", "k": 1})));
    docs
}

/// Indexes the body; returns the ids the server refused, with why.
fn bulk(srv: &EsServer, body: &str) -> Vec<(String, String)> {
    let port: u16 = srv.url().rsplit(':').next().unwrap().parse().unwrap();
    let (status, text) = http_body(
        "POST",
        port,
        "/_bulk",
        "application/x-ndjson",
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "bulk: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let refused = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| {
            let r = item.as_object().unwrap().values().next().unwrap();
            r.get("error")
                .map(|e| (r["_id"].as_str().unwrap().to_string(), e.to_string()))
        })
        .collect();
    let (status, text) = http_body(
        "POST",
        port,
        &format!("/{INDEX}/_refresh"),
        "application/json",
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "refresh: {text}");
    refused
}

/// Every document of the index, by `_id`, read back with a search.
fn read_back(srv: &EsServer) -> BTreeMap<String, Map<String, Value>> {
    let (status, v) = srv.json(
        "POST",
        &format!("/{INDEX}/_search"),
        &json!({"size": 10000, "query": {"match_all": {}}}),
    );
    assert_eq!(status, 200, "{v}");
    v["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let src = h["_source"].as_object().unwrap().clone();
            (h["_id"].as_str().unwrap().to_string(), src)
        })
        .collect()
}

/// The document as the records' fields: `_id`, then its keys, or with
/// `flatten` its nested objects opened (`a_b`; arrays and empty objects
/// stay JSON).
fn fields(id: &str, src: &Map<String, Value>, flatten: bool) -> Vec<(String, Value)> {
    fn open(prefix: &str, m: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
        for (k, v) in m {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}_{k}")
            };
            match v {
                Value::Object(inner) if !inner.is_empty() => open(&name, inner, out),
                _ => out.push((name, v.clone())),
            }
        }
    }
    let mut out = vec![("_id".to_string(), json!(id))];
    if flatten {
        open("", src, &mut out);
    } else {
        out.extend(src.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// The pairs of the log's `field names mapped to other column names`
/// lines: `'field' -> `column``.
fn logged_mapping(err: &str) -> (Vec<String>, HashMap<String, String>) {
    let lines: Vec<String> = err
        .lines()
        .filter(|l| l.contains("field names mapped to other column names in"))
        .map(str::to_string)
        .collect();
    let mut map = HashMap::new();
    for line in &lines {
        let mut rest = line.split_once(": '").map(|(_, r)| r).unwrap_or("");
        while !rest.is_empty() {
            let (field, after) = rest.split_once("' -> `").expect("a pair");
            let (column, after) = after.split_once('`').expect("a column");
            let field = field.replace("\\'", "'").replace("\\\\", "\\");
            map.insert(field, column.to_string());
            rest = after.strip_prefix(", '").unwrap_or("");
        }
    }
    (lines, map)
}

/// Why the cell of a column of type `kind` does not hold `want`, if it
/// does not.
fn differs(cell: Option<&str>, want: &Value, kind: &str) -> Option<String> {
    let same = match (want, cell) {
        (Value::Null, None) => true,
        (_, None) | (Value::Null, Some(_)) => false,
        (Value::String(s), Some(c)) if kind == "datetime" || kind == "timestamp" => {
            let at = chrono::DateTime::parse_from_rfc3339(s).map(|d| d.naive_utc());
            let got = chrono::NaiveDateTime::parse_from_str(c, "%Y-%m-%d %H:%M:%S%.f");
            matches!((at, got), (Ok(a), Ok(g)) if a == g)
        }
        (Value::String(s), Some(c)) => s == c,
        (Value::Bool(b), Some(c)) => c == if *b { "1" } else { "0" } || c == b.to_string(),
        (Value::Number(n), Some(c)) => match (n.as_i64(), c.parse::<i64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => n.as_f64().is_some() && c.parse::<f64>().ok() == n.as_f64(),
        },
        (Value::Array(_) | Value::Object(_), Some(c)) => {
            serde_json::from_str::<Value>(c).ok().as_ref() == Some(want)
        }
    };
    (!same).then(|| format!("{cell:?} ({kind}) is not {want}"))
}

/// 8 hex digits of the 32-bit FNV-1a hash, as the sink derives long names.
fn hash8(name: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// Loads the index into a new table; returns the log's mapping.
fn load(srv: &EsServer, table: &str, flatten: bool) -> HashMap<String, String> {
    let (url, db_url) = (srv.url(), mysql_url());
    let mut args = vec![
        "--source-type",
        "elasticsearch",
        "--es-url",
        &url,
        "--es-index",
        INDEX,
        "--sink-type",
        "mysql",
        "--db-url",
        &db_url,
        "--db-table",
        table,
        "--create-table",
        "--db-key",
        "_id",
    ];
    if flatten {
        args.push("--flatten");
    }
    let t = Instant::now();
    let out = run(&args);
    let took = t.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{table}: {err}");
    let (lines, mapping) = logged_mapping(&err);
    eprintln!(
        "{table}: {} rows loaded in {took:.2?} (--flatten: {flatten}); name mapping logged:",
        summary_number(&err, "inserted")
    );
    for l in &lines {
        eprintln!("  {l}");
    }
    mapping
}

/// Every document is a row, every value in the column the mapping names,
/// every other column of the row NULL.
fn assert_rows(
    db: &mut Db,
    table: &str,
    docs: &BTreeMap<String, Map<String, Value>>,
    mapping: &HashMap<String, String>,
    flatten: bool,
) {
    let columns: Vec<(String, String)> = db
        .rows(&format!(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
        ))
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    let list: Vec<String> = columns
        .iter()
        .map(|(c, _)| format!("`{}`", c.replace('`', "``")))
        .collect();
    // makelogs' dates are DATETIME columns: compared as instants.
    for date in ["@timestamp", "utc_time"] {
        let kind = columns
            .iter()
            .find(|(c, _)| c == date)
            .map(|(_, k)| k.as_str());
        assert_eq!(kind, Some("datetime"), "{table}: `{date}`");
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, k) in &columns {
        *kinds.entry(k.as_str()).or_default() += 1;
    }
    eprintln!("{table}: {} columns: {kinds:?}", columns.len());
    let id_at = columns.iter().position(|(c, _)| c == "_id").unwrap();
    let rows = db.rows(&format!("SELECT {} FROM {table}", list.join(", ")));
    assert_eq!(rows.len(), docs.len(), "{table}: a row per document");
    let by_id: HashMap<&str, &Vec<Option<String>>> = rows
        .iter()
        .map(|r| (r[id_at].as_deref().unwrap(), r))
        .collect();
    assert_eq!(by_id.len(), docs.len(), "{table}: ids");
    let mut checked = 0usize;
    for (id, src) in docs {
        let row = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{table}: no row {id}"));
        let mut seen = vec![false; columns.len()];
        for (field, want) in fields(id, src, flatten) {
            let column = mapping.get(&field).unwrap_or(&field);
            let at = columns
                .iter()
                .position(|(c, _)| c == column)
                .unwrap_or_else(|| panic!("{table}: {id}: no column `{column}` for '{field}'"));
            assert!(!seen[at], "{table}: {id}: two fields in `{column}`");
            seen[at] = true;
            if let Some(why) = differs(row[at].as_deref(), &want, &columns[at].1) {
                panic!("{table}: {id}: '{field}' in `{column}`: {why}");
            }
            checked += 1;
        }
        for (at, (c, _)) in columns.iter().enumerate() {
            assert!(
                seen[at] || row[at].is_none(),
                "{table}: {id}: `{c}` holds {:?}, no field of the document",
                row[at]
            );
        }
    }
    eprintln!("{table}: {checked} values found in their columns");
}

#[test]
fn makelogs_index_loads_every_value_into_its_column() {
    let mut body = makelogs(EVENTS);
    let odd = odd_documents();
    for (id, src) in &odd {
        body.push_str(&json!({"index": {"_index": INDEX, "_id": id}}).to_string());
        body.push('\n');
        body.push_str(&src.to_string());
        body.push('\n');
    }
    let mut db = Db::connect();
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        let refused = bulk(&srv, &body);
        // An OpenSearch API refuses an empty field name, as Elasticsearch
        // itself does; the Elasticsearch 8 test server takes it.
        for (id, why) in &refused {
            assert_eq!(id, "odd-empty", "{kind:?}: refused {id}: {why}");
            assert!(why.contains("empty"), "{kind:?}: {why}");
        }
        let docs = read_back(&srv);
        assert_eq!(
            docs.len(),
            EVENTS + odd.len() - refused.len(),
            "{kind:?}: documents in the index"
        );
        for flatten in [false, true] {
            let table = table_name(&format!("real_{kind:?}_{flatten}").to_lowercase());
            db.exec(&format!("DROP TABLE IF EXISTS {table}"));
            let mapping = load(&srv, &table, flatten);
            // The long names the sink shortens, as it says it does.
            let long = "thisisaverylongfieldnamethatevendoesnotcontainanyspaces\
                        whyitcouldpotentiallybreakouruiinseveralplaces";
            let mut want = vec![
                (long.to_string(), format!("{}_{}", &long[..55], hash8(long))),
                (
                    "b".repeat(65),
                    format!("{}_{}", "b".repeat(55), hash8(&"b".repeat(65))),
                ),
                ("trailing ".into(), "trailing".into()),
            ];
            if flatten {
                let y = format!("nest_{}", "y".repeat(60));
                want.push((y.clone(), format!("{}_{}", &y[..55], hash8(&y))));
                want.push(("nest_t ".into(), "nest_t".into()));
            }
            for (field, column) in want {
                assert_eq!(mapping.get(&field), Some(&column), "{table}: '{field}'");
            }
            assert_rows(&mut db, &table, &docs, &mapping, flatten);
            db.exec(&format!("DROP TABLE {table}"));
        }
    }
}

/// The comparison itself tells a value that differs.
#[test]
fn a_value_that_differs_is_told() {
    let cases: [(Option<&str>, Value, &str, bool); 12] = [
        (
            Some("2026-12-01 18:13:26.536000"),
            json!("2026-12-01T18:13:26.536Z"),
            "datetime",
            true,
        ),
        (
            Some("2026-12-01 17:13:26.536000"),
            json!("2026-12-01T18:13:26.536+01:00"),
            "datetime",
            true,
        ),
        (
            Some("2026-12-01 18:13:27.536000"),
            json!("2026-12-01T18:13:26.536Z"),
            "datetime",
            false,
        ),
        (
            Some("2026-12-01T18:13:26.536Z"),
            json!("2026-12-01T18:13:26.536Z"),
            "varchar",
            true,
        ),
        (Some("a "), json!("a"), "varchar", false),
        (Some("17179869184"), json!(17179869184u64), "bigint", true),
        (Some("17179869185"), json!(17179869184u64), "bigint", false),
        (Some("37.08158611"), json!(37.08158611), "decimal", true),
        (Some("37.0815861"), json!(37.08158611), "decimal", false),
        (
            Some("{\"b\": [1, \"x\"], \"a\": null}"),
            json!({"a": null, "b": [1, "x"]}),
            "longtext",
            true,
        ),
        (Some("[\"x\",\"y\"]"), json!(["y", "x"]), "longtext", false),
        (None, json!("x"), "varchar", false),
    ];
    for (cell, want, kind, same) in cases {
        assert_eq!(
            differs(cell, &want, kind).is_none(),
            same,
            "{cell:?} {want} {kind}"
        );
    }
}
