//! `--check` converts the first records of the input for the table, as the
//! run would, with nothing written: how many would be written, why the
//! others would fail, the `ALTER TABLE` of `--add-columns`; it fails (exit
//! 2) when none would be written.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `--check` of the JSON-lines file `input` into `table`, then `extra`.
fn check_jsonl(input: &Path, table: &str, extra: &[&str]) -> std::process::Output {
    let url = mysql_url();
    let mut args = vec![
        "--source-type",
        "jsonl",
        "--jsonl-file",
        p(input),
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        table,
        "--check",
    ];
    args.extend(extra);
    run(&args)
}

/// The table's columns and types, and its rows, as information_schema and
/// a count show them.
fn state(db: &mut Db, table: &str) -> (Vec<Vec<Option<String>>>, u64) {
    let columns = db.rows(&format!(
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
    ));
    let rows = if columns.is_empty() {
        0
    } else {
        db.count(&format!("SELECT COUNT(*) FROM {table}"))
    };
    (columns, rows)
}

fn jsonl(dir: &Path, lines: &[serde_json::Value]) -> std::path::PathBuf {
    let path = dir.join("in.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn none_would_be_written_fails_with_the_reason_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = jsonl(
        dir.path(),
        &(0..3)
            .map(|i| serde_json::json!({"a": i, "b": "x", "c": true}))
            .collect::<Vec<_>>(),
    );
    let table = table_name("check_none");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!("CREATE TABLE {table} (x INT, y VARCHAR(5))"));
    db.exec(&format!("INSERT INTO {table} VALUES (7, 'seven')"));
    let before = state(&mut db, &table);
    let out = check_jsonl(&input, &table, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want = format!(
        "none of the 3 sample records would be written to test.{table}: no field of the records is a column of the table (fields: a, b, c; columns: x, y)"
    );
    let error: Vec<&str> = err.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(error.len(), 1, "one error line: {err}");
    assert!(without_run_id(error[0]).ends_with(&want), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("check: ok"),
        "{err}"
    );
    assert_eq!(state(&mut db, &table), before, "--check changed the table");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn some_would_fail_and_the_check_passes_with_the_counts_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    // Lines 3 and 7: too long for VARCHAR(5); line 5: not a number.
    let mut lines: Vec<serde_json::Value> = (1..=1500)
        .map(|i| serde_json::json!({"id": i, "n": i, "s": "ok"}))
        .collect();
    lines[2]["s"] = "toolong".into();
    lines[6]["s"] = "much too long".into();
    lines[4]["n"] = "abc".into();
    let input = jsonl(dir.path(), &lines);
    let table = table_name("check_some");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, n INT, s VARCHAR(5))"
    ));
    let before = state(&mut db, &table);
    // The first 1000 records by default.
    let out = check_jsonl(&input, &table, &["--batch-size", "100"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    let check: Vec<&str> = said.lines().filter(|l| l.starts_with("check:")).collect();
    assert_eq!(
        check,
        [
            "check: 1000 sample records: 997 would be written, 3 would fail",
            "check:   2 would fail: column s: too long: 7 characters, the column holds 5; --widen-columns would widen the column (first: position 3)",
            "check:   1 would fail: column n: 'abc' is not a number; --widen-columns would widen the column (first: position 5)",
            "check: ok; nothing was written",
        ],
        "{said}"
    );
    // With --widen-columns the run would widen both columns and write all.
    let out = check_jsonl(&input, &table, &["--widen-columns"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    let check: Vec<&str> = said.lines().filter(|l| l.starts_with("check:")).collect();
    assert_eq!(
        check,
        [
            "check: 1000 sample records: 1000 would be written, 0 would fail",
            "check:   some only once the run widens their columns: s, n",
            "check: ok; nothing was written",
        ],
        "{said}"
    );
    // --create-table-sample sets how many.
    let out = check_jsonl(&input, &table, &["--create-table-sample", "4"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert!(
        said.contains("check: 4 sample records: 3 would be written, 1 would fail\n"),
        "{said}"
    );
    assert_eq!(state(&mut db, &table), before, "--check changed the table");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn create_table_prints_the_statement_and_what_would_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<serde_json::Value> = (1..=5)
        .map(
            |i| serde_json::json!({"id": i, "name": format!("n{i}"), "at": "2026-01-02T03:04:05Z"}),
        )
        .collect();
    let input = jsonl(dir.path(), &lines);
    let table = table_name("check_create");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let out = check_jsonl(&input, &table, &["--create-table", "--db-key", "id"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert!(
        said.contains(&format!(
            "would run --create-table: types inferred from 5 records: CREATE TABLE IF NOT EXISTS `test`.`{table}` (`id` BIGINT NOT NULL, `name` VARCHAR(255) NULL, `at` DATETIME(6) NULL, PRIMARY KEY (`id`))"
        )),
        "{said}"
    );
    assert!(
        said.contains("check: 5 sample records: 5 would be written, 0 would fail\n"),
        "{said}"
    );
    assert_eq!(state(&mut db, &table), (vec![], 0), "--check created it");
}

#[test]
fn add_columns_prints_the_alter_table_it_would_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<serde_json::Value> = (1..=4)
        .map(|i| serde_json::json!({"id": i, "qty": i * 10}))
        .collect();
    // A field met only in the second batch of 2: a second ALTER TABLE.
    lines[3]["note"] = "late".into();
    lines[1]["qty"] = "many".into();
    let input = jsonl(dir.path(), &lines);
    let table = table_name("check_add");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY)"));
    let before = state(&mut db, &table);
    let out = check_jsonl(&input, &table, &["--add-columns", "--batch-size", "2"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    let alters: Vec<&str> = said.lines().filter(|l| l.contains("ALTER TABLE")).collect();
    assert_eq!(
        alters,
        [
            format!("would run --add-columns: ALTER TABLE `test`.`{table}` ADD COLUMN `qty` VARCHAR(255) NULL"),
            format!("would run --add-columns: ALTER TABLE `test`.`{table}` ADD COLUMN `note` VARCHAR(255) NULL"),
        ],
        "{said}"
    );
    // qty is text (typed from the first batch): every record fits.
    assert!(
        said.contains("check: 4 sample records: 4 would be written, 0 would fail\n"),
        "{said}"
    );
    assert_eq!(state(&mut db, &table), before, "--check changed the table");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn flatten_converts_the_flattened_records() {
    let dir = tempfile::tempdir().unwrap();
    let input = jsonl(
        dir.path(),
        &[
            serde_json::json!({"id": 1, "o": {"p": 1, "q": "aa"}}),
            serde_json::json!({"id": 2, "o": {"p": "x", "q": "bb"}}),
            // o.p and o_p both flatten to o_p.
            serde_json::json!({"id": 3, "o": {"p": 3}, "o_p": 4}),
            serde_json::json!({"id": 4, "o": {"p": 4, "q": "ccc"}}),
            serde_json::json!({"id": 5, "o": {"p": 5, "q": "ee"}}),
        ],
    );
    let table = table_name("check_flat");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, o_p INT, o_q VARCHAR(2))"
    ));
    let before = state(&mut db, &table);
    let out = check_jsonl(&input, &table, &["--flatten"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    let check: Vec<&str> = said.lines().filter(|l| l.starts_with("check:")).collect();
    assert_eq!(check.len(), 5, "{said}");
    assert_eq!(
        check[0],
        "check: 4 sample records: 2 would be written, 2 would fail"
    );
    assert!(
        check[1..3].iter().any(
            |l| l.contains("1 would fail: column o_p: 'x' is not a number; --widen-columns would widen the column (first: position 2)")
        ),
        "{said}"
    );
    assert!(
        check[1..3]
            .iter()
            .any(|l| l.contains("1 would fail: column o_q: too long: 3 characters, the column holds 2; --widen-columns would widen the column (first: position 4)")),
        "{said}"
    );
    assert!(
        check[3].starts_with("check:   1 more sample records would fail --flatten: ")
            && check[3].ends_with("(first: position 3)"),
        "{said}"
    );
    // Unflattened, no record finds all its columns (o is not one).
    let out = check_jsonl(&input, &table, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("none of the 5 sample records would be written"),
        "{}",
        stderr(&out)
    );
    assert_eq!(state(&mut db, &table), before, "--check changed the table");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn elasticsearch_documents_are_checked_against_the_table() {
    let url = mysql_url();
    for kind in ES_KINDS {
        let es = EsServer::start(kind);
        let docs: Vec<_> = (0..6)
            .map(|i| {
                let label = if i == 3 { "toolong" } else { "l" };
                (format!("d{i}"), serde_json::json!({"n": i, "label": label}))
            })
            .collect();
        es.bulk("chk", &docs);
        let table = table_name("check_es");
        let mut db = Db::connect();
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        // The fields of the documents are none of these columns.
        db.exec(&format!("CREATE TABLE {table} (x INT, y VARCHAR(5))"));
        let es_url = es.url();
        let args = |extra: &[&'static str]| {
            let mut a: Vec<String> = [
                "--source-type",
                "elasticsearch",
                "--es-url",
                &es_url,
                "--es-index",
                "chk",
                "--sink-type",
                "mysql",
                "--db-url",
                &url,
                "--db-table",
                &table,
                "--check",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            a.extend(extra.iter().map(|s| s.to_string()));
            a
        };
        let run_args = |a: Vec<String>| run(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let out = run_args(args(&[]));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{kind:?}: {err}");
        assert!(
            err.contains(&format!("none of the 6 sample records would be written to test.{table}: no field of the records is a column of the table (fields: ")),
            "{kind:?}: {err}"
        );
        assert!(err.contains("columns: x, y)"), "{kind:?}: {err}");
        assert_eq!(
            state(&mut db, &table),
            (
                vec![
                    vec![Some("x".into()), Some("int(11)".into())],
                    vec![Some("y".into()), Some("varchar(5)".into())]
                ],
                0
            ),
            "{kind:?}"
        );
        // A table the documents fit but one: named by its _id.
        db.exec(&format!("DROP TABLE {table}"));
        db.exec(&format!(
            "CREATE TABLE {table} (_id VARCHAR(20) PRIMARY KEY, n INT, label VARCHAR(5))"
        ));
        let out = run_args(args(&["--es-meta-fields", "_id"]));
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{kind:?}: {said}{}",
            stderr(&out)
        );
        assert!(
            said.contains(
                "check: 6 sample records: 5 would be written, 1 would fail\ncheck:   1 would fail: column label: too long: 7 characters, the column holds 5; --widen-columns would widen the column (first: _id d3)\n"
            ),
            "{kind:?}: {said}"
        );
        assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 0);
        db.exec(&format!("DROP TABLE {table}"));
    }
}
