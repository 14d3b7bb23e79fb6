//! `--create-table` infers the column types from the run's own first
//! records, held back until the table exists: the input is opened once
//! (an index is not read a second time for its sample, a pipe loses
//! nothing), a value past the first batch but inside the sample shapes the
//! table, and every held record is then written (or, when the table cannot
//! be made, failed and kept).

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::proxy::Proxy;
use common::*;
use serde_json::{json, Value as Json};

const RECORDS: usize = 300;
/// The record whose values only a sample past the first batch sees.
const ODD: usize = 150;

fn code(i: usize) -> String {
    if i == ODD {
        "A12".into()
    } else {
        (1000 + i).to_string()
    }
}

fn note(i: usize) -> String {
    if i == ODD {
        "x".repeat(300)
    } else {
        format!("n{i}")
    }
}

fn doc(i: usize) -> Json {
    let code: Json = if i == ODD {
        json!(code(i))
    } else {
        json!(1000 + i)
    };
    json!({"id": i, "code": code, "note": note(i)})
}

fn csv_text() -> String {
    let mut s = String::from("id,code,note\n");
    for i in 0..RECORDS {
        s.push_str(&format!("{i},{},{}\n", code(i), note(i)));
    }
    s
}

fn ndjson_text() -> String {
    (0..RECORDS).map(|i| format!("{}\n", doc(i))).collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every record is a row holding its values, and the odd record's values
/// shaped the columns.
fn check_table(db: &mut Db, table: &str) -> Result<(), String> {
    let rows = db.rows(&format!(
        "SELECT id, CAST(code AS CHAR), note FROM {table} ORDER BY id"
    ));
    if rows.len() != RECORDS {
        return Err(format!("{} rows, {RECORDS} records", rows.len()));
    }
    for (i, row) in rows.iter().enumerate() {
        let want = [Some(i.to_string()), Some(code(i)), Some(note(i))];
        if row.as_slice() != want.as_slice() {
            return Err(format!("row {i}: {row:?}, want {want:?}"));
        }
    }
    Ok(())
}

/// Arguments every case shares: small batches, several workers.
fn mysql_args<'a>(url: &'a str, table: &'a str) -> Vec<&'a str> {
    vec![
        "--sink-type",
        "mysql",
        "--db-url",
        url,
        "--db-table",
        table,
        "--create-table",
        "--db-key",
        "id",
        "--batch-size",
        "50",
        "--workers",
        "3",
    ]
}

/// Runs `args` with `stdin` as standard input; returns exit code and stderr.
fn run_with_stdin(args: &[&str], stdin: &str) -> (Option<i32>, String) {
    let mut child = Bin::new(args).no_stdout().spawn();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = wait_with_limit(child, Duration::from_secs(60));
    (out.status.code(), stderr(&out))
}

#[test]
fn the_types_come_from_the_runs_own_first_records_read_once() {
    let mut db = Db::connect();
    let url = mysql_url();
    let dir = tempfile::tempdir().unwrap();
    let ndjson_file = dir.path().join("in.jsonl");
    fs::write(&ndjson_file, ndjson_text()).unwrap();
    let csv_file = dir.path().join("in.csv");
    fs::write(&csv_file, csv_text()).unwrap();
    // (name, source arguments, standard input)
    let cases: Vec<(&str, Vec<&str>, Option<String>)> = vec![
        (
            "CSV from standard input",
            vec!["--source-type", "csv", "--csv-file", "-"],
            Some(csv_text()),
        ),
        (
            "NDJSON from standard input",
            vec!["--source-type", "jsonl", "--jsonl-file", "-"],
            Some(ndjson_text()),
        ),
        (
            "NDJSON file, a sample of 200",
            vec![
                "--source-type",
                "jsonl",
                "--jsonl-file",
                p(&ndjson_file),
                "--create-table-sample",
                "200",
            ],
            None,
        ),
        (
            "CSV file, a sample of 151 (the hold fills mid-chunk)",
            vec![
                "--source-type",
                "csv",
                "--csv-file",
                p(&csv_file),
                "--create-table-sample",
                "151",
                "--csv-threads",
                "2",
            ],
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (n, (name, source, stdin)) in cases.into_iter().enumerate() {
        let table = table_name(&format!("held{n}"));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        let mut args = source;
        args.extend(mysql_args(&url, &table));
        let (code, err) = match &stdin {
            Some(text) => run_with_stdin(&args, text),
            None => {
                let out = run(&args);
                (out.status.code(), stderr(&out))
            }
        };
        let checked = match code {
            Some(0) => check_table(&mut db, &table),
            c => Err(format!("exit {c:?}")),
        };
        if let Err(e) = checked {
            failures.push(format!("{name}: {e}\n{err}"));
        }
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Requests that open a reading of the index: a point in time or a scroll.
fn openings(requests: &[String]) -> usize {
    requests
        .iter()
        .filter(|r| {
            r.starts_with("POST /docs/")
                && ["_pit", "point_in_time", "_search?scroll"]
                    .iter()
                    .any(|o| r.contains(o))
        })
        .count()
}

#[test]
fn an_index_is_opened_once_for_its_sample_and_its_run() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        // An index maps `code` from its first value: every code a string
        // here, and the long note at ODD is what the sample must see.
        let docs: Vec<(String, Json)> = (0..RECORDS)
            .map(|i| {
                let mut d = doc(i);
                d["code"] = json!(code(i));
                (format!("d{i}"), d)
            })
            .collect();
        srv.bulk("docs", &docs);
        let mut db = Db::connect();
        let url = mysql_url();
        for (mode, slices, sample) in [("pit", "1", Some("200")), ("scroll", "2", None)] {
            let proxy = Proxy::start(srv.port);
            let table = table_name(&format!("held_es_{mode}"));
            db.exec(&format!("DROP TABLE IF EXISTS {table}"));
            let es_url = proxy.url();
            let mut args = vec![
                "--source-type",
                "elasticsearch",
                "--es-url",
                &es_url,
                "--es-index",
                "docs",
                "--es-mode",
                mode,
                "--es-slices",
                slices,
                "--es-page-size",
                "40",
                "--retry-for",
                "5s",
            ];
            if let Some(n) = sample {
                args.extend(["--create-table-sample", n]);
            }
            args.extend(mysql_args(&url, &table));
            let out = run(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(0), "{kind:?} {mode}: {err}");
            let opened = openings(&proxy.requests());
            let slices: usize = slices.parse().unwrap();
            assert_eq!(
                opened,
                if mode == "pit" { 1 } else { slices },
                "{kind:?} {mode}: the index was opened {opened} times: {:?}",
                proxy.requests()
            );
            if let Err(e) = check_table(&mut db, &table) {
                panic!("{kind:?} {mode}: {e}\n{err}");
            }
            db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        }
    }
}

#[test]
fn held_records_are_failed_and_kept_when_the_table_cannot_be_made() {
    let mut db = Db::connect();
    let url = mysql_url();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("held_fail");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let dead = dir.path().join("dead.jsonl");
    // The key is no field of the records: known only once they are read.
    let mut args = vec![
        "--source-type",
        "jsonl",
        "--jsonl-file",
        "-",
        "--dead-letter",
        p(&dead),
    ];
    let mut sink = mysql_args(&url, &table);
    let key = sink.iter().position(|a| *a == "id").unwrap();
    sink[key] = "uid";
    args.extend(sink);
    let (code, err) = run_with_stdin(&args, &ndjson_text());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("uid"), "the reason names the key: {err}");
    assert_eq!(summary_number(&err, "read"), RECORDS as u64, "{err}");
    assert_eq!(summary_number(&err, "failed"), RECORDS as u64, "{err}");
    let kept = read_jsonl(&dead);
    assert_eq!(kept.len(), RECORDS, "every held record is kept");
    assert!(
        kept[0]["reason"].as_str().unwrap().contains("uid"),
        "{}",
        kept[0]
    );
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'test' AND table_name = '{table}'"
        )),
        0,
        "no table"
    );
}

/// A run stopped while it holds records back still makes the table from
/// them and writes them: nothing read is lost.
#[test]
fn a_run_stopped_while_holding_writes_what_it_held() {
    let mut db = Db::connect();
    let url = mysql_url();
    let table = table_name("held_stop");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let mut args = vec!["--source-type", "jsonl", "--jsonl-file", "-"];
    args.extend(mysql_args(&url, &table));
    let mut child = Bin::new(&args).no_stdout().spawn();
    let mut input = child.stdin.take().unwrap();
    // Fewer than the sample, and the input stays open.
    input.write_all(ndjson_text().as_bytes()).unwrap();
    input.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "TERM");
    let out = wait_with_limit(child, Duration::from_secs(60));
    drop(input);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "{err}");
    if let Err(e) = check_table(&mut db, &table) {
        panic!("{e}\n{err}");
    }
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
}

/// Another run makes the table while this one holds its sample: the
/// table is used as it is, and the run says so.
#[test]
fn a_table_made_by_another_run_meanwhile_is_said() {
    let mut db = Db::connect();
    let url = mysql_url();
    let table = table_name("held_race");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let mut args = vec!["--source-type", "jsonl", "--jsonl-file", "-"];
    args.extend(mysql_args(&url, &table));
    let mut child = Bin::new(&args).no_stdout().spawn();
    let mut input = child.stdin.take().unwrap();
    input.write_all(ndjson_text().as_bytes()).unwrap();
    input.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // Made meanwhile, without `note`.
    db.exec(&format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, code VARCHAR(20))"
    ));
    drop(input);
    let out = wait_with_limit(child, Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("was created by another run meanwhile"),
        "{err}"
    );
    assert_eq!(summary_number(&err, "failed"), RECORDS as u64, "{err}");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
}
