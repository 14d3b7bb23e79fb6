//! `--flatten [DEPTH]`: nested objects of NDJSON records become fields of
//! their own, into a JSON-lines file (exact lines) and into the real MariaDB
//! (with --create-table and into an existing table); Elasticsearch documents
//! on both servers; DEPTH, the separator and a --config file;
//! a record whose fields collide after flattening is failed, kept in the
//! dead-letter file as it was read, with both source paths in the reason.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::json;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Objects three deep, arrays, nulls, an empty object; the last line has a
/// field `geo_city` next to an object `geo` with a member `city`.
const INPUT: &str = r#"{"id":1,"geo":{"coordinates":{"lat":1.5,"lon":-2.25},"city":"Oslo"},"tags":["a",{"k":1}],"note":null,"meta":{}}
{"id":2,"geo":{"coordinates":{"lat":-3,"lon":4},"city":null},"tags":[],"note":"x","meta":{}}
{"id":3,"geo_city":"dup","geo":{"city":"Rome"}}
"#;

/// NDJSON `input` -> `sink` args, with --dead-letter `dead` and `extra`.
fn run_flatten(input: &Path, dead: &Path, sink: &[&str], extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--source-type",
        "jsonl",
        "--jsonl-file",
        p(input),
        "--dead-letter",
        p(dead),
    ];
    args.extend(sink);
    args.extend(extra);
    run(&args)
}

#[test]
fn flattened_into_a_file_by_depth_and_separator() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    fs::write(&input, INPUT).unwrap();
    // (flags, the output lines, whether line 3 collides)
    let cases: &[(&[&str], &[&str], bool)] = &[
        (
            &["--flatten"],
            &[
                r#"{"id":1,"geo_coordinates_lat":1.5,"geo_coordinates_lon":-2.25,"geo_city":"Oslo","tags":["a",{"k":1}],"note":null,"meta":{}}"#,
                r#"{"id":2,"geo_coordinates_lat":-3,"geo_coordinates_lon":4,"geo_city":null,"tags":[],"note":"x","meta":{}}"#,
            ],
            true,
        ),
        (
            &["--flatten", "1", "--flatten-separator", "."],
            &[
                r#"{"id":1,"geo.coordinates":{"lat":1.5,"lon":-2.25},"geo.city":"Oslo","tags":["a",{"k":1}],"note":null,"meta":{}}"#,
                r#"{"id":2,"geo.coordinates":{"lat":-3,"lon":4},"geo.city":null,"tags":[],"note":"x","meta":{}}"#,
                r#"{"id":3,"geo_city":"dup","geo.city":"Rome"}"#,
            ],
            false,
        ),
        (
            &["--flatten", "2", "--flatten-separator", "__"],
            &[
                r#"{"id":1,"geo__coordinates__lat":1.5,"geo__coordinates__lon":-2.25,"geo__city":"Oslo","tags":["a",{"k":1}],"note":null,"meta":{}}"#,
                r#"{"id":2,"geo__coordinates__lat":-3,"geo__coordinates__lon":4,"geo__city":null,"tags":[],"note":"x","meta":{}}"#,
                r#"{"id":3,"geo_city":"dup","geo__city":"Rome"}"#,
            ],
            false,
        ),
    ];
    for (i, (flags, want, collides)) in cases.iter().enumerate() {
        let output = dir.path().join(format!("out{i}.jsonl"));
        let dead = dir.path().join(format!("dead{i}.jsonl"));
        let out = run_flatten(
            &input,
            &dead,
            &["--sink-type", "file", "--output-file", p(&output)],
            flags,
        );
        let text = fs::read_to_string(&output).unwrap_or_default();
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(&got, want, "{flags:?}: {}", stderr(&out));
        let rejects = if dead.exists() {
            read_jsonl(&dead)
        } else {
            Vec::new()
        };
        if *collides {
            assert_eq!(out.status.code(), Some(1), "{flags:?}: {}", stderr(&out));
            assert_eq!(rejects.len(), 1, "{rejects:?}");
            let r = &rejects[0];
            assert_eq!(r["position"], 3, "{r}");
            assert_eq!(
                r["record"],
                json!({"id": 3, "geo_city": "dup", "geo": {"city": "Rome"}})
            );
            let reason = r["reason"].as_str().unwrap();
            assert!(
                reason.contains("'geo_city'") && reason.contains("'geo.city'"),
                "{reason}"
            );
        } else {
            assert!(out.status.success(), "{flags:?}: {}", stderr(&out));
            assert!(rejects.is_empty(), "{rejects:?}");
        }
    }
}

#[test]
fn without_flatten_objects_stay_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    fs::write(&input, INPUT).unwrap();
    let output = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let out = run_flatten(
        &input,
        &dead,
        &["--sink-type", "file", "--output-file", p(&output)],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_jsonl(&output)[0]["geo"]["coordinates"]["lat"], 1.5);
}

#[test]
fn depth_zero_and_an_empty_separator_are_refused() {
    for flags in [
        &["--flatten", "0"][..],
        &["--flatten", "deep"][..],
        &["--flatten", "--flatten-separator", ""][..],
    ] {
        let mut args = vec![
            "--source-type",
            "jsonl",
            "--jsonl-file",
            "in.jsonl",
            "--sink-type",
            "file",
            "--output-file",
            "out.jsonl",
        ];
        args.extend(flags);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--flatten"), "{}", stderr(&out));
    }
}

/// The rows of `table`, by id: lat, lon, city, tags, note, meta.
fn rows(db: &mut Db, table: &str) -> Vec<Vec<Option<String>>> {
    db.rows(&format!(
        "SELECT id, geo_coordinates_lat, geo_coordinates_lon, geo_city, tags, note, meta \
         FROM {table} ORDER BY id"
    ))
}

#[test]
fn flattened_into_mysql_with_create_table_and_into_an_existing_table() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    fs::write(&input, INPUT).unwrap();
    let url = mysql_url();
    let created = table_name("flatten_created");
    let existing = table_name("flatten_existing");
    db.exec(&format!("DROP TABLE IF EXISTS {created}"));
    db.exec(&format!("DROP TABLE IF EXISTS {existing}"));
    db.exec(&format!(
        "CREATE TABLE {existing} (id INT PRIMARY KEY, geo_coordinates_lat DOUBLE, \
         geo_coordinates_lon DOUBLE, geo_city VARCHAR(20), tags JSON, note TEXT, meta JSON)"
    ));
    for (table, extra) in [
        (&created, &["--create-table", "--db-key", "id"][..]),
        (&existing, &[][..]),
    ] {
        let dead = dir.path().join(format!("{table}.dead.jsonl"));
        let mut flags = vec!["--flatten"];
        flags.extend(extra);
        let out = run_flatten(
            &input,
            &dead,
            &[
                "--sink-type",
                "mysql",
                "--db-url",
                &url,
                "--db-table",
                table,
            ],
            &flags,
        );
        assert_eq!(out.status.code(), Some(1), "{table}: {}", stderr(&out));
        let rows = rows(&mut db, table);
        assert_eq!(rows.len(), 2, "{table}: {rows:?}");
        let s = |v: &str| Some(v.to_string());
        let json_of = |v: &Option<String>| -> serde_json::Value {
            serde_json::from_str(v.as_deref().unwrap()).unwrap()
        };
        assert_eq!(rows[0][0], s("1"));
        assert_eq!(
            rows[0][1].as_deref().map(|v| v.parse::<f64>().unwrap()),
            Some(1.5)
        );
        assert_eq!(
            rows[0][2].as_deref().map(|v| v.parse::<f64>().unwrap()),
            Some(-2.25)
        );
        assert_eq!(rows[0][3], s("Oslo"));
        assert_eq!(json_of(&rows[0][4]), json!(["a", {"k": 1}]));
        assert_eq!(rows[0][5], None);
        assert_eq!(json_of(&rows[0][6]), json!({}));
        assert_eq!(
            rows[1][1].as_deref().map(|v| v.parse::<f64>().unwrap()),
            Some(-3.0)
        );
        assert_eq!(rows[1][3], None);
        assert_eq!(json_of(&rows[1][4]), json!([]));
        assert_eq!(rows[1][5], s("x"));
        let rejects = read_jsonl(&dead);
        assert_eq!(rejects.len(), 1, "{table}: {rejects:?}");
        assert_eq!(
            rejects[0]["record"],
            json!({"id": 3, "geo_city": "dup", "geo": {"city": "Rome"}})
        );
        db.exec(&format!("DROP TABLE {table}"));
    }
}

#[test]
fn flatten_in_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    fs::write(&input, "{\"a\":{\"b\":{\"c\":1}}}\n").unwrap();
    let cases = [
        ("flatten = true", r#"{"a_b_c":1}"#),
        (
            "flatten = 1\nflatten_separator = \"-\"",
            r#"{"a-b":{"c":1}}"#,
        ),
        ("flatten = false", r#"{"a":{"b":{"c":1}}}"#),
    ];
    for (i, (toml, want)) in cases.iter().enumerate() {
        let config = dir.path().join(format!("job{i}.toml"));
        fs::write(&config, toml).unwrap();
        let output = dir.path().join(format!("out{i}.jsonl"));
        let dead = dir.path().join(format!("dead{i}.jsonl"));
        let out = run_flatten(
            &input,
            &dead,
            &["--sink-type", "file", "--output-file", p(&output)],
            &["--config", p(&config)],
        );
        assert!(out.status.success(), "{toml}: {}", stderr(&out));
        assert_eq!(
            fs::read_to_string(&output).unwrap(),
            format!("{want}\n"),
            "{toml}"
        );
    }
}

#[test]
fn elasticsearch_documents_are_flattened_on_both_servers() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        let docs: Vec<(String, serde_json::Value)> = (0..3)
            .map(|i| {
                let doc =
                    json!({"n": i, "geo": {"coordinates": {"lat": i, "lon": 0.5}}, "tags": [i]});
                (format!("d{i}"), doc)
            })
            .collect();
        srv.bulk("nested", &docs);
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out.jsonl");
        let url = srv.url();
        let out = run(&[
            "--source-type",
            "elasticsearch",
            "--es-url",
            &url,
            "--es-index",
            "nested",
            "--sink-type",
            "file",
            "--output-file",
            p(&output),
            "--flatten",
        ]);
        assert!(out.status.success(), "{kind:?}: {}", stderr(&out));
        let mut got: Vec<serde_json::Value> = read_jsonl(&output)
            .into_iter()
            .map(|mut d| {
                d.as_object_mut()
                    .unwrap()
                    .retain(|k, _| !k.starts_with('_'));
                d
            })
            .collect();
        got.sort_by_key(|d| d["n"].as_i64());
        let want: Vec<serde_json::Value> = (0..3)
            .map(|i| json!({"n": i, "geo_coordinates_lat": i, "geo_coordinates_lon": 0.5, "tags": [i]}))
            .collect();
        assert_eq!(got, want, "{kind:?}");
    }
}

#[test]
fn a_record_the_table_refuses_is_dead_lettered_as_it_was_read() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    fs::write(&input, INPUT).unwrap();
    let url = mysql_url();
    let table = table_name("flatten_refused");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    // Too narrow for "Oslo": the first record fails in the sink.
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, geo_coordinates_lat DOUBLE, \
         geo_coordinates_lon DOUBLE, geo_city VARCHAR(3), tags JSON, note TEXT, meta JSON)"
    ));
    let dead = dir.path().join("dead.jsonl");
    let out = run_flatten(
        &input,
        &dead,
        &[
            "--sink-type",
            "mysql",
            "--db-url",
            &url,
            "--db-table",
            &table,
        ],
        &["--flatten"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let ids = db.rows(&format!("SELECT id, geo_city FROM {table} ORDER BY id"));
    assert_eq!(
        ids,
        [[Some("2".to_string()), None]],
        "{}\n{}",
        stderr(&out),
        fs::read_to_string(&dead).unwrap_or_default()
    );
    let mut rejects = read_jsonl(&dead);
    rejects.sort_by_key(|r| r["position"].as_u64());
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert_eq!(rejects[0]["position"], 1);
    assert_eq!(
        rejects[0]["record"],
        serde_json::from_str::<serde_json::Value>(INPUT.lines().next().unwrap()).unwrap()
    );
    assert_eq!(rejects[1]["position"], 3);
    db.exec(&format!("DROP TABLE {table}"));
}

/// `--check` with `--create-table` infers the columns from the flattened
/// sample, as the run does: the CREATE TABLE it shows names the flattened
/// fields (and creates nothing).
#[test]
fn check_shows_the_flattened_columns() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    fs::write(&input, INPUT).unwrap();
    let table = table_name("flatten_check");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let url = mysql_url();
    let dead = dir.path().join("dead.jsonl");
    let out = run_flatten(
        &input,
        &dead,
        &[
            "--sink-type",
            "mysql",
            "--db-url",
            &url,
            "--db-table",
            &table,
        ],
        &["--check", "--create-table", "--db-key", "id", "--flatten"],
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let ddl = text
        .lines()
        .find(|l| l.contains("CREATE TABLE"))
        .unwrap_or_else(|| panic!("no CREATE TABLE: {text}"));
    for column in [
        "`geo_coordinates_lat`",
        "`geo_coordinates_lon`",
        "`geo_city`",
        "`tags` JSON",
    ] {
        assert!(ddl.contains(column), "{column} missing: {ddl}");
    }
    assert!(
        !ddl.contains("`geo` "),
        "the object itself is not a column: {ddl}"
    );
    assert!(
        db.rows(&format!("SHOW TABLES LIKE '{table}'")).is_empty(),
        "--check created the table"
    );
}
