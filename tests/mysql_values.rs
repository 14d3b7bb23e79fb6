//! Document values into the column types that expect them, against the real
//! MariaDB (scripts/services.sh starts it), in both load modes: a JSON
//! string into a JSON column is that JSON string, fractional seconds past a
//! column's precision fail the record (never dropped), an offset is
//! converted to UTC, and numbers and booleans into text columns keep their
//! JSON text. Every stored value is read back exactly; every refused one is
//! in the dead-letter file with its reason.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use common::*;

const DDL: &str = "(id INT PRIMARY KEY, j JSON, dt0 DATETIME, dt3 DATETIME(3), \
    dt6 DATETIME(6), ts TIMESTAMP(6) NULL, t2 TIME(2), d DATE, v VARCHAR(40), tx TEXT)";

/// What becomes of a value.
enum Want {
    /// Stored: the column read back as text (`CAST(… AS CHAR)`).
    Stored(&'static str),
    /// Refused: the record is in the dead-letter file, its reason naming
    /// the column and containing this.
    Failed(&'static str),
}

use Want::*;

/// (id, column, the value's JSON text in the document, what becomes of it)
const CASES: &[(u32, &str, &str, Want)] = &[
    // A JSON string is a JSON string, even one whose text looks like JSON.
    (1, "j", r#""abc""#, Stored(r#""abc""#)),
    (2, "j", r#""{\"a\":1}""#, Stored(r#""{\"a\":1}""#)),
    (3, "j", r#""""#, Stored(r#""""#)),
    (4, "j", r#""caf\u00e9""#, Stored(r#""café""#)),
    (
        5,
        "j",
        r#"{"a":[1,"x"],"b":{"c":null}}"#,
        Stored(r#"{"a":[1,"x"],"b":{"c":null}}"#),
    ),
    (6, "j", "1.50", Stored("1.50")),
    (7, "j", "true", Stored("true")),
    // An offset is converted to UTC; without one the value is as given.
    (
        10,
        "dt0",
        r#""2026-01-02T03:04:05+02:00""#,
        Stored("2026-01-02 01:04:05"),
    ),
    (
        11,
        "dt0",
        r#""2026-01-02T03:04:05Z""#,
        Stored("2026-01-02 03:04:05"),
    ),
    (
        12,
        "dt0",
        r#""2026-01-02T03:04:05-05:30""#,
        Stored("2026-01-02 08:34:05"),
    ),
    (
        13,
        "dt0",
        r#""2026-01-02T03:04:05""#,
        Stored("2026-01-02 03:04:05"),
    ),
    (
        14,
        "dt0",
        r#""2024-02-29T23:00:00-02:00""#,
        Stored("2024-03-01 01:00:00"),
    ),
    (
        15,
        "dt0",
        r#""2026-01-01T00:30:00+01:00""#,
        Stored("2025-12-31 23:30:00"),
    ),
    // Fractional seconds: kept to the column's precision, refused past it.
    (
        16,
        "dt0",
        r#""2026-01-02T03:04:05.5Z""#,
        Failed("(0); it would be rounded"),
    ),
    (
        17,
        "dt0",
        r#""2026-01-02T03:04:05.000Z""#,
        Stored("2026-01-02 03:04:05"),
    ),
    (
        18,
        "dt3",
        r#""2026-01-02T03:04:05.123Z""#,
        Stored("2026-01-02 03:04:05.123"),
    ),
    (
        19,
        "dt3",
        r#""2026-01-02T03:04:05.1234Z""#,
        Failed("(3); it would be rounded"),
    ),
    (
        20,
        "dt3",
        r#""2026-01-02T03:04:05.120000+01:00""#,
        Stored("2026-01-02 02:04:05.120"),
    ),
    (
        21,
        "dt6",
        r#""2026-01-02 03:04:05.123456""#,
        Stored("2026-01-02 03:04:05.123456"),
    ),
    (
        22,
        "dt6",
        r#""2026-01-02 03:04:05.1234567""#,
        Failed("(6); it would be rounded"),
    ),
    // The limits.
    (
        23,
        "dt6",
        r#""9999-12-31T23:59:59.999999Z""#,
        Stored("9999-12-31 23:59:59.999999"),
    ),
    (
        24,
        "dt6",
        r#""1000-01-01T01:00:00+01:00""#,
        Stored("1000-01-01 00:00:00.000000"),
    ),
    (
        25,
        "dt6",
        r#""9999-12-31T23:30:00-01:00""#,
        Failed("outside the years 0000 to 9999"),
    ),
    (
        26,
        "dt6",
        r#""2016-12-31T23:59:60Z""#,
        Failed("leap second"),
    ),
    (
        27,
        "dt6",
        r#""2023-02-29T00:00:00Z""#,
        Failed("not an ISO 8601"),
    ),
    (
        30,
        "ts",
        r#""1970-01-01T00:00:01Z""#,
        Stored("1970-01-01 00:00:01.000000"),
    ),
    (
        31,
        "ts",
        r#""2038-01-19T05:14:07.999999+02:00""#,
        Stored("2038-01-19 03:14:07.999999"),
    ),
    (
        32,
        "ts",
        r#""2026-06-01T12:00:00.1234567+02:00""#,
        Failed("(6); it would be rounded"),
    ),
    (
        33,
        "ts",
        r#""2026-06-01T12:00:00.25-07:00""#,
        Stored("2026-06-01 19:00:00.250000"),
    ),
    // Past TIMESTAMP's range (the server's to say: newer servers go further).
    (
        34,
        "ts",
        r#""2038-01-19T03:14:08Z""#,
        Failed("Incorrect datetime value"),
    ),
    (40, "t2", r#""10:15:00.25""#, Stored("10:15:00.25")),
    (
        41,
        "t2",
        r#""10:15:00.255""#,
        Failed("(2); it would be rounded"),
    ),
    (42, "t2", r#""-838:59:59.50""#, Stored("-838:59:59.50")),
    (43, "t2", r#""838:59:59""#, Stored("838:59:59.00")),
    (50, "d", r#""2024-02-29""#, Stored("2024-02-29")),
    (
        51,
        "d",
        r#""2024-03-01T02:00:00+02:00""#,
        Stored("2024-03-01"),
    ),
    (
        52,
        "d",
        r#""2024-03-01T00:00:00+02:00""#,
        Failed("time of day"),
    ),
    (53, "d", r#""2023-02-29""#, Failed("not an ISO 8601")),
    // Numbers and booleans into text keep their JSON text.
    (60, "v", "true", Stored("true")),
    (61, "v", "1.50", Stored("1.50")),
    (62, "v", "-0", Stored("-0")),
    (63, "v", "1e5", Stored("1e5")),
    (
        64,
        "v",
        "12345678901234567890123",
        Stored("12345678901234567890123"),
    ),
    (65, "v", r#""007""#, Stored("007")),
    (66, "tx", "false", Stored("false")),
    (67, "tx", "-2.50E-3", Stored("-2.50E-3")),
    (
        68,
        "v",
        "1234567890.123456789012345678901234567890",
        Failed("too long"),
    ),
];

/// The NDJSON file, one line per case: its id and its one value.
fn ndjson() -> String {
    CASES
        .iter()
        .map(|(id, column, json, _)| format!("{{\"id\": {id}, \"{column}\": {json}}}\n"))
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn document_values_into_the_columns_that_expect_them() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("values.jsonl");
    fs::write(&input, ndjson()).unwrap();
    let url = mysql_url();
    let failed = CASES.iter().filter(|c| matches!(c.3, Failed(_))).count();
    let mut dumps = Vec::new();
    // One thread, and three reading chunks of a few lines.
    let ways = [
        ("insert", "1"),
        ("load-data", "1"),
        ("insert", "3"),
        ("load-data", "3"),
    ];
    for (mode, threads) in ways {
        let way = format!("{}_{threads}", mode.replace('-', "_"));
        let table = table_name(&format!("values_{way}"));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!("CREATE TABLE {table} {DDL}"));
        let dead = dir.path().join(format!("dead-{way}.jsonl"));
        let out = run(&[
            "--source-type",
            "jsonl",
            "--jsonl-file",
            p(&input),
            "--jsonl-threads",
            threads,
            "--jsonl-chunk-bytes",
            "100",
            "--sink-type",
            "mysql",
            "--db-url",
            &url,
            "--db-table",
            &table,
            "--mysql-load-mode",
            mode,
            "--dead-letter",
            p(&dead),
        ]);
        let mode = format!("{mode} on {threads} thread(s)");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        assert_eq!(
            summary_number(&err, "failed"),
            failed as u64,
            "{mode}: {err}"
        );
        assert_eq!(
            summary_number(&err, "inserted"),
            (CASES.len() - failed) as u64,
            "{mode}: {err}"
        );
        let reasons: HashMap<u64, String> = read_jsonl(&dead)
            .iter()
            .map(|v| {
                assert_eq!(v["error_type"], "conversion", "{v}");
                (
                    v["record"]["id"].as_u64().unwrap(),
                    v["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let dump = db.rows(&format!(
            "SELECT id, CAST(j AS CHAR), CAST(dt0 AS CHAR), CAST(dt3 AS CHAR), \
             CAST(dt6 AS CHAR), CAST(ts AS CHAR), CAST(t2 AS CHAR), CAST(d AS CHAR), v, tx \
             FROM {table} ORDER BY id"
        ));
        let columns = ["id", "j", "dt0", "dt3", "dt6", "ts", "t2", "d", "v", "tx"];
        for (id, column, json, want) in CASES {
            let row = dump
                .iter()
                .find(|r| r[0].as_deref() == Some(&id.to_string()));
            match want {
                Stored(text) => {
                    let row = row.unwrap_or_else(|| {
                        panic!(
                            "{mode}: {column} {json} not stored: {:?}",
                            reasons.get(&(*id as u64))
                        )
                    });
                    let at = columns.iter().position(|c| c == column).unwrap();
                    assert_eq!(row[at].as_deref(), Some(*text), "{mode}: {column} {json}");
                    assert!(!reasons.contains_key(&(*id as u64)));
                }
                Failed(why) => {
                    assert!(row.is_none(), "{mode}: {column} {json} stored: {row:?}");
                    let reason = &reasons[&(*id as u64)];
                    assert!(
                        (reason.starts_with(&format!("column {column}: "))
                            || reason.contains(&format!("`{column}`")))
                            && reason.contains(why),
                        "{mode}: {column} {json}: {reason}"
                    );
                }
            }
        }
        // A JSON string is stored as a string, an object as an object.
        let types = db.rows(&format!(
            "SELECT JSON_TYPE(j), JSON_UNQUOTE(j) FROM {table} WHERE id IN (1, 2, 5) ORDER BY id"
        ));
        assert_eq!(
            types,
            vec![
                vec![Some("STRING".into()), Some("abc".into())],
                vec![Some("STRING".into()), Some(r#"{"a":1}"#.into())],
                vec![
                    Some("OBJECT".into()),
                    Some(r#"{"a":[1,"x"],"b":{"c":null}}"#.into())
                ],
            ]
        );
        dumps.push(dump);
        db.exec(&format!("DROP TABLE {table}"));
    }
    for (dump, (mode, threads)) in dumps.iter().zip(ways).skip(1) {
        assert_eq!(
            dumps[0], *dump,
            "{mode} on {threads} thread(s): the tables differ"
        );
    }
}

/// CSV text into a JSON column is JSON text: stored as it is when it
/// parses (an object, a quoted string, a number), refused when it does not,
/// with the reason saying how a string is written.
#[test]
fn csv_text_into_a_json_column_is_json_text() {
    let mut db = Db::connect();
    let table = table_name("values_csv_json");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, j JSON)"
    ));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(
        &input,
        "id,j\n1,\"{\"\"a\"\": 1}\"\n2,\"\"\"abc\"\"\"\n3,42\n4,abc\n5,\n",
    )
    .unwrap();
    let dead = dir.path().join("dead.jsonl");
    let url = mysql_url();
    let out = run(&[
        "--source-type",
        "csv",
        "--csv-file",
        p(&input),
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        &table,
        "--dead-letter",
        p(&dead),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(summary_number(&err, "failed"), 1, "{err}");
    let rows = db.rows(&format!("SELECT id, j FROM {table} ORDER BY id"));
    let text = |s: &str| Some(s.to_string());
    assert_eq!(
        rows,
        vec![
            vec![text("1"), text(r#"{"a": 1}"#)],
            vec![text("2"), text(r#""abc""#)],
            vec![text("3"), text("42")],
            vec![text("5"), None],
        ]
    );
    let dead = read_jsonl(&dead);
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("column j: not valid JSON") && reason.contains(r#""abc""#),
        "{reason}"
    );
    db.exec(&format!("DROP TABLE {table}"));
}

/// `--date-format FIELD=epoch_millis|epoch_second` (on the command line or
/// as a list in `--config`): numbers and numeric strings in those fields load
/// into date columns as the instants they count; without it the records fail
/// with a reason naming the flag.
#[test]
fn epoch_times_load_into_date_columns_with_date_format() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("epochs.jsonl");
    fs::write(
        &input,
        [
            r#"{"id": 1, "ms": 1420070400001, "s": 1767323045, "d": "1709164800000", "n": 1420070400001}"#,
            r#"{"id": 2, "ms": "1420070400999", "s": "2026-01-02T03:04:05+02:00", "d": 0, "n": 0}"#,
            r#"{"id": 3, "ms": 1420070400000.5}"#,
            r#"{"id": 4, "d": 1709164801000}"#,
            r#"{"id": 5, "s": -1}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let config = dir.path().join("job.toml");
    fs::write(
        &config,
        "date-format = [\"ms=epoch_millis\", \"s=epoch_second\", \"d=epoch_millis\"]\n",
    )
    .unwrap();
    let url = mysql_url();
    let flags = [
        "--date-format",
        "ms=epoch_millis",
        "--date-format",
        "s=epoch_second",
        "--date-format",
        "d=epoch_millis",
    ];
    let config_flag = ["--config", p(&config)];
    let ways: [(&str, &[&str]); 3] = [
        ("insert", &flags),
        ("load-data", &config_flag),
        ("insert", &[]),
    ];
    for (i, (mode, given)) in ways.into_iter().enumerate() {
        let table = table_name(&format!("values_epoch_{i}"));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, ms DATETIME(3), s TIMESTAMP NULL, \
             d DATE, n BIGINT)"
        ));
        let dead = dir.path().join(format!("dead-{i}.jsonl"));
        let mut args = vec![
            "--source-type",
            "jsonl",
            "--jsonl-file",
            p(&input),
            "--sink-type",
            "mysql",
            "--db-url",
            &url,
            "--db-table",
            &table,
            "--mysql-load-mode",
            mode,
            "--dead-letter",
            p(&dead),
        ];
        args.extend(given);
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let reasons: HashMap<u64, String> = read_jsonl(&dead)
            .iter()
            .map(|v| {
                (
                    v["record"]["id"].as_u64().unwrap(),
                    v["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let rows = db.rows(&format!(
            "SELECT id, CAST(ms AS CHAR), CAST(s AS CHAR), CAST(d AS CHAR), n \
             FROM {table} ORDER BY id"
        ));
        let text = |s: &str| Some(s.to_string());
        if given.is_empty() {
            // Without the flag: every record with an epoch number fails.
            assert_eq!(rows, Vec::<Vec<Option<String>>>::new());
            assert_eq!(reasons.len(), 5, "{reasons:?}");
            for id in 1..=5 {
                let why = &reasons[&id];
                assert!(
                    why.contains("is a number") && why.contains("--date-format FIELD=epoch_millis"),
                    "{why}"
                );
            }
            assert!(reasons[&1].starts_with("column ms: '1420070400001'"));
        } else {
            assert_eq!(
                rows,
                vec![
                    vec![
                        text("1"),
                        text("2015-01-01 00:00:00.001"),
                        text("2026-01-02 03:04:05"),
                        text("2024-02-29"),
                        text("1420070400001"),
                    ],
                    vec![
                        text("2"),
                        text("2015-01-01 00:00:00.999"),
                        text("2026-01-02 01:04:05"),
                        text("1970-01-01"),
                        text("0"),
                    ],
                ]
            );
            assert_eq!(reasons.len(), 3, "{reasons:?}");
            assert!(
                reasons[&3].contains("(3); it would be rounded"),
                "{reasons:?}"
            );
            assert!(reasons[&4].contains("time of day"), "{reasons:?}");
            // 1969-12-31 23:59:59 is before TIMESTAMP's range: the server says so.
            assert!(
                reasons[&5].contains("Incorrect datetime value"),
                "{reasons:?}"
            );
        }
        db.exec(&format!("DROP TABLE {table}"));
    }
}

/// `--check` says which fields `--date-format` reads as epoch times, and
/// names one that is not a field of the input (it would change nothing).
#[test]
fn check_shows_the_date_formats() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "id,at\n1,1700000000000\n").unwrap();
    let table = table_name("values_check_dates");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, at DATETIME(3))"
    ));
    let url = mysql_url();
    let out = run(&[
        "--check",
        "--source-type",
        "csv",
        "--csv-file",
        input.to_str().unwrap(),
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        &table,
        "--date-format",
        "at=epoch_millis",
        "--date-format",
        "missing=epoch_second",
    ]); // fmt: skip
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let at = text
        .lines()
        .find(|l| l.trim_start().starts_with("at -> "))
        .unwrap_or_else(|| panic!("no line for field at: {text}"));
    assert!(at.contains("epoch_millis (--date-format)"), "{at}");
    assert!(
        text.contains("--date-format names 'missing', which is not a field of the input"),
        "{text}"
    );
}
