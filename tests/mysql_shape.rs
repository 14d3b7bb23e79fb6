//! A job whose records do not fit the table at all stops at its first batch
//! with the reason, instead of failing every record of the input one batch
//! at a time; once some record of the run has found its columns, a batch of
//! records that do not is failed record by record and the run goes on.

mod common;

use std::fs;
use std::io::Write;

use common::*;

fn ndjson(path: &std::path::Path, lines: impl Iterator<Item = String>) {
    let mut f = fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[test]
fn a_first_batch_without_any_column_stops_the_run_with_the_reason() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let url = mysql_url();
    let table = table_name("shape_stop");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, name TEXT)"
    ));
    // (input, expect it to stop early)
    let cases = [
        // No field of any record is a column.
        (
            "nothing",
            (0..20_000)
                .map(|i| format!(r#"{{"uid":{i},"title":"x"}}"#))
                .collect::<Vec<_>>(),
            true,
        ),
        // Every record has a field with no column.
        (
            "extra",
            (0..20_000)
                .map(|i| format!(r#"{{"id":{i},"name":"x","extra":1}}"#))
                .collect(),
            true,
        ),
        // The first records fit; later ones do not: failed one by one.
        (
            "later",
            (0..20_000)
                .map(|i| match i < 1000 {
                    true => format!(r#"{{"id":{i},"name":"x"}}"#),
                    false => format!(r#"{{"uid":{i}}}"#),
                })
                .collect(),
            false,
        ),
    ];
    for (name, lines, stops) in cases {
        db.exec(&format!("DELETE FROM {table}"));
        let input = dir.path().join(format!("{name}.jsonl"));
        ndjson(&input, lines.into_iter());
        let dead = dir.path().join(format!("{name}.dead.jsonl"));
        let out = run(&[
            "--source-type",
            "jsonl",
            "--jsonl-file",
            input.to_str().unwrap(),
            "--sink-type",
            "mysql",
            "--db-url",
            &url,
            "--db-table",
            &table,
            "--batch-size",
            "100",
            "--queue-size",
            "200",
            "--workers",
            "1",
            "--dead-letter",
            dead.to_str().unwrap(),
        ]); // fmt: skip
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        let (read, inserted, failed) = (
            summary_number(&err, "read"),
            summary_number(&err, "inserted"),
            summary_number(&err, "failed"),
        );
        assert_eq!(read, inserted + failed, "{name}: {err}");
        let kept = fs::read_to_string(&dead).unwrap().lines().count() as u64;
        assert_eq!(kept, failed, "{name}: every failed record is kept");
        if stops {
            assert!(err.contains("finds its columns"), "{name}: {err}");
            assert!(read < 20_000, "{name}: the whole input was read: {err}");
            assert_eq!(inserted, 0, "{name}");
        } else {
            assert!(!err.contains("finds its columns"), "{name}: {err}");
            assert_eq!(
                (read, inserted, failed),
                (20_000, 1000, 19_000),
                "{name}: {err}"
            );
        }
    }
}
