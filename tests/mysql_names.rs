//! Field names -> column names against the real MariaDB: names of 64, 65
//! and 300 characters, two long names sharing their first 64, a field `ID`
//! against a column `id`, a trailing space, an empty name, only
//! punctuation, `@timestamp` and `--rename`, each with `--create-table`
//! and with an existing table; every value lands in its column, and a second
//! run into the table finds the same columns. `_id` is always a string
//! column. Bad `--rename`s exit 2.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// (field name, the column it must land in), besides `id`.
fn cases() -> Vec<(String, String)> {
    let shared = "d".repeat(64);
    let long = |f: String| {
        let col = format!("{}_{}", &f[..55], hash8(&f));
        (f, col)
    };
    vec![
        ("a".repeat(64), "a".repeat(64)),
        long("b".repeat(65)),
        long("c".repeat(300)),
        long(format!("{shared}1")),
        long(format!("{shared}2")),
        ("trailing ".into(), "trailing".into()),
        ("".into(), "_empty".into()),
        ("!?.-".into(), "!?.-".into()),
        ("@timestamp".into(), "@timestamp".into()),
        ("renamed field".into(), "renamed_col".into()),
    ]
}

/// Rows `ids` of NDJSON with every case's field: `v<case>_<id>`, and a
/// date for `@timestamp`.
fn input(dir: &Path, tag: &str, ids: std::ops::RangeInclusive<u64>, id_field: &str) -> String {
    let mut text = String::new();
    for i in ids {
        let mut d = serde_json::Map::new();
        d.insert(id_field.into(), serde_json::json!(i));
        for (k, (f, _)) in cases().iter().enumerate() {
            d.insert(f.clone(), value(k, f, i).into());
        }
        text.push_str(&serde_json::Value::Object(d).to_string());
        text.push('\n');
    }
    let path = dir.join(format!("{tag}.ndjson"));
    fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn value(case: usize, field: &str, id: u64) -> String {
    if field == "@timestamp" {
        format!("2026-01-0{id}T10:15:00Z")
    } else {
        format!("v{case}_{id}")
    }
}

/// What the sink stores for `value`.
fn stored(field: &str, value: &str) -> String {
    if field == "@timestamp" {
        value.replace('T', " ").replace('Z', ".000000")
    } else {
        value.to_string()
    }
}

fn load(input: &str, table: &str, extra: &[&str]) -> std::process::Output {
    let url = mysql_url();
    let mut args = vec![
        "--source-type",
        "jsonl",
        "--jsonl-file",
        input,
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        table,
    ];
    args.extend(extra);
    run(&args)
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn column_names(db: &mut Db, table: &str) -> Vec<String> {
    db.rows(&format!(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
    ))
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

/// Every case's value of rows `ids` is in its expected column (`id_col`
/// holds the id).
fn assert_values(db: &mut Db, table: &str, id_col: &str, ids: std::ops::RangeInclusive<u64>) {
    for (k, (f, col)) in cases().iter().enumerate() {
        let got = db.rows(&format!(
            "SELECT {}, {} FROM {table} ORDER BY {}",
            quote(id_col),
            quote(col),
            quote(id_col)
        ));
        let want: Vec<Vec<Option<String>>> = ids
            .clone()
            .map(|i| vec![Some(i.to_string()), Some(stored(f, &value(k, f, i)))])
            .collect();
        assert_eq!(got, want, "field {f:?} -> column {col:?}");
    }
}

#[test]
fn every_field_lands_in_its_column_with_create_table_and_again() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("names_create");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    // The first run takes --rename from the config file, as a list.
    let config = dir.path().join("run.toml");
    fs::write(&config, "rename = [\"renamed field=renamed_col\"]\n").unwrap();
    let first = input(dir.path(), "first", 1..=3, "ID");
    let out = load(
        &first,
        &table,
        &["--create-table", "--db-key", "ID", "--config", p(&config)],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("field names mapped to other column names")
            && err.contains("'trailing ' -> `trailing`")
            && err.contains("'' -> `_empty`"),
        "{err}"
    );
    let columns = column_names(&mut db, &table);
    assert_eq!(columns.len(), cases().len() + 1, "{columns:?}");
    assert_values(&mut db, &table, "ID", 1..=3);

    // Again, into the table the first run made: the field `id` meets the
    // column `ID`, the others their columns by the names in the comments;
    // the rename by flag this time.
    let second = input(dir.path(), "second", 4..=6, "id");
    let out = load(&second, &table, &["--rename", "renamed field=renamed_col"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(column_names(&mut db, &table), columns);
    assert_values(&mut db, &table, "ID", 1..=6);
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn every_field_lands_in_its_column_of_an_existing_table_and_again() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("names_existing");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    // Made by hand: `id` for the field `ID`, `trailing` for `trailing `,
    // the legal names as they are; the rest added by --add-columns.
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, {} VARCHAR(20), `trailing` VARCHAR(20), \
         `!?.-` VARCHAR(20), `@timestamp` DATETIME(6), renamed_col VARCHAR(20))",
        "a".repeat(64)
    ));
    for (run, ids) in [(1, 1..=3), (2, 4..=6)] {
        let file = input(dir.path(), &format!("run{run}"), ids, "ID");
        for mode in ["insert", "load-data"] {
            // Both load modes, the second finding the first's rows.
            let out = load(
                &file,
                &table,
                &[
                    "--add-columns",
                    "--rename",
                    "renamed field=renamed_col",
                    "--mysql-load-mode",
                    mode,
                ],
            );
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(0), "{err}");
            if run == 1 && mode == "insert" {
                assert!(err.contains("'ID' -> `id`"), "{err}");
            }
        }
        assert_eq!(column_names(&mut db, &table).len(), cases().len() + 1);
    }
    assert_values(&mut db, &table, "id", 1..=6);
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn check_shows_the_mapping_and_bad_renames_exit_2() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("names_check");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let file = input(dir.path(), "in", 1..=2, "id");
    // The rename as a TOML table.
    let config = dir.path().join("run.toml");
    fs::write(&config, "[rename]\n\"renamed field\" = \"renamed_col\"\n").unwrap();
    let out = load(
        &file,
        &table,
        &[
            "--create-table",
            "--db-key",
            "id",
            "--config",
            p(&config),
            "--check",
        ],
    );
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    let long = "b".repeat(65);
    for want in [
        "'trailing ' -> `trailing`".to_string(),
        "'renamed field' -> `renamed_col`".into(),
        format!("'{long}' -> `{}_{}`", "b".repeat(55), hash8(&long)),
        "`renamed_col` VARCHAR(255) NULL COMMENT 'pipeline-cli field: renamed field'".into(),
    ] {
        assert!(said.contains(&want), "{want}\n{said}");
    }
    assert!(!said.contains("'@timestamp' ->"), "{said}");
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = '{table}'"
        )),
        0
    );
    for (renames, why) in [
        (vec!["a=x", "b=X"], "two fields onto the column"),
        (vec!["a="], "empty"),
        (vec!["a=x "], "space"),
        (vec!["nothing"], "FIELD=COLUMN"),
    ] {
        let mut extra = vec!["--create-table", "--db-key", "id"];
        for r in &renames {
            extra.extend(["--rename", r]);
        }
        let out = load(&file, &table, &extra);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{renames:?}: {err}");
        assert!(err.contains("--rename") && err.contains(why), "{err}");
    }
}

#[test]
fn ids_are_string_columns_even_when_they_look_numeric() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("names_id");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let path = dir.path().join("in.ndjson");
    fs::write(
        &path,
        "{\"_id\": \"1\", \"n\": 1}\n{\"_id\": \"0012\", \"n\": 2}\n{\"_id\": 30, \"n\": 3}\n",
    )
    .unwrap();
    let out = load(p(&path), &table, &["--create-table", "--db-key", "_id"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kind = db.rows(&format!(
        "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = '{table}' AND COLUMN_NAME = '_id'"
    ));
    assert_eq!(kind, [[Some("varchar".to_string())]]);
    let rows = db.rows(&format!("SELECT _id, n FROM {table} ORDER BY n"));
    let want: Vec<Vec<Option<String>>> = [("1", "1"), ("0012", "2"), ("30", "3")]
        .iter()
        .map(|(a, b)| vec![Some(a.to_string()), Some(b.to_string())])
        .collect();
    assert_eq!(rows, want);
    db.exec(&format!("DROP TABLE {table}"));
}

/// From both Elasticsearch-API servers: numeric-looking ids make a VARCHAR
/// `_id` key, `@timestamp` and a field `ID` (beside `_id`) and a 100-character
/// name load into their columns, with `--create-table` and then again into
/// the table it made.
#[test]
fn elasticsearch_ids_stay_strings_and_odd_names_load() {
    let mut db = Db::connect();
    let long = "f".repeat(100);
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        let docs: Vec<(String, serde_json::Value)> = (1..=30)
            .map(|i| {
                let mut d = serde_json::Map::new();
                d.insert(
                    "@timestamp".into(),
                    format!("2026-01-02T03:04:{i:02}Z").into(),
                );
                d.insert("ID".into(), (i * 10).into());
                d.insert(long.clone(), format!("v{i}").into());
                (format!("{}", 1000 + i), serde_json::Value::Object(d))
            })
            .collect();
        srv.bulk("logs", &docs);
        let table = table_name(&format!("names_es_{kind:?}").to_lowercase());
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        let url = srv.url();
        let db_url = mysql_url();
        let args = |extra: &[&'static str]| {
            let mut a: Vec<String> = [
                "--source-type",
                "elasticsearch",
                "--es-url",
                &url,
                "--es-index",
                "logs",
                "--es-meta-fields",
                "_id",
                "--sink-type",
                "mysql",
                "--db-url",
                &db_url,
                "--db-table",
                &table,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };
        for extra in [&["--create-table", "--db-key", "_id"][..], &[]] {
            let a = args(extra);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let out = run(&a);
            assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        }
        let kind_of_id = db.rows(&format!(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = '{table}' AND COLUMN_NAME = '_id'"
        ));
        assert_eq!(kind_of_id, [[Some("varchar".to_string())]], "{kind:?}");
        let long_col = format!("{}_{}", &long[..55], hash8(&long));
        let rows = db.rows(&format!(
            "SELECT _id, `@timestamp`, ID, `{long_col}` FROM {table} ORDER BY _id"
        ));
        let want: Vec<Vec<Option<String>>> = (1..=30)
            .map(|i| {
                vec![
                    Some(format!("{}", 1000 + i)),
                    Some(format!("2026-01-02 03:04:{i:02}.000000")),
                    Some(format!("{}", i * 10)),
                    Some(format!("v{i}")),
                ]
            })
            .collect();
        assert_eq!(rows, want, "{kind:?}");
        db.exec(&format!("DROP TABLE {table}"));
    }
}

/// A record that fails is dead-lettered with its original field names, not
/// the column names they were mapped to.
#[test]
fn dead_letter_entries_keep_the_original_field_names() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("names_dead");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, `trailing` VARCHAR(3))"
    ));
    let path = dir.path().join("in.ndjson");
    fs::write(
        &path,
        "{\"ID\": 1, \"trailing \": \"ok\"}\n{\"ID\": 2, \"trailing \": \"too long\"}\n",
    )
    .unwrap();
    let dead = dir.path().join("dead.jsonl");
    let out = load(p(&path), &table, &["--dead-letter", p(&dead)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let entries = read_jsonl(&dead);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0]["record"],
        serde_json::json!({"ID": 2, "trailing ": "too long"}),
        "{}",
        entries[0]
    );
    assert!(
        entries[0]["reason"].as_str().unwrap().contains("trailing"),
        "{}",
        entries[0]
    );
    assert_eq!(
        db.rows(&format!("SELECT id, `trailing` FROM {table}")),
        [[Some("1".to_string()), Some("ok".to_string())]]
    );
    db.exec(&format!("DROP TABLE {table}"));
}
