//! A dead-letter file replayed (`--source-type jsonl --jsonl-format
//! dead-letter`, or decided by `auto`): rows a table refused land once the
//! table is fixed, with their values as the first run had them; rows the
//! source could not read are rejected again, kept byte for byte; in-doubt
//! entries are skipped unless --jsonl-replay-in-doubt says they were rolled
//! back; any other file is refused in one line.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Rows 1..=7: names of rows 2 and 4 too long for VARCHAR(5); row 5 has one
/// field too few and row 6 a name that is not UTF-8 (the source rejects
/// both). Row 2's `doc` is JSON text, as a CSV file holds an object.
const CSV: &[u8] = b"id,name,doc\n\
1,ann,{}\n\
2,bartholomew,\"{\"\"k\"\": [1, \"\"x\"\"]}\"\n\
3,cy,[]\n\
4,dorothea,{}\n\
5,eve\n\
6,f\xffy,{}\n\
7,gus,{}\n";

/// The raw rows the source rejected, as read.
const RAW_ROWS: [&[u8]; 2] = [b"5,eve", b"6,f\xffy,{}"];

fn replay_args<'a>(
    dead: &'a str,
    url: &'a str,
    table: &'a str,
    format: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["--source-type", "jsonl", "--jsonl-file", dead];
    args.extend(format);
    args.extend(["--sink-type", "mysql", "--db-url", url, "--db-table", table]);
    args
}

#[test]
fn rows_a_table_refused_land_once_it_is_fixed() {
    let mut db = Db::connect();
    let url = mysql_url();
    for (case, format) in [
        ("named", &["--jsonl-format", "dead-letter"][..]),
        ("auto", &[][..]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (input, dead, dead2) = (
            dir.path().join("in.csv"),
            dir.path().join("dead.jsonl"),
            dir.path().join("dead2.jsonl"),
        );
        fs::write(&input, CSV).unwrap();
        let table = table_name(&format!("replay_{case}"));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(5), doc JSON)"
        ));
        let out = run(&csv_to_mysql(
            p(&input),
            &url,
            &table,
            &["--dead-letter", p(&dead), "--workers", "1"],
        ));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(
            err.contains("read=7 inserted=3 updated=0 skipped=0 failed=4"),
            "{case}: {err}"
        );

        db.exec(&format!("ALTER TABLE {table} MODIFY name VARCHAR(50)"));
        let args = replay_args(p(&dead), &url, &table, format);
        let mut args = args;
        args.extend(["--dead-letter", p(&dead2)]);
        let out = run(&args);
        let err = stderr(&out);
        // The raw rows are failed again: the exit code says not all landed.
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(
            err.contains("read=4 inserted=2 updated=0 skipped=0 failed=2"),
            "{case}: {err}"
        );
        if case == "auto" {
            assert!(
                err.contains("--jsonl-format auto: read as dead-letter"),
                "{err}"
            );
        }
        let rows = db.rows(&format!(
            "SELECT id, name, JSON_TYPE(doc), doc FROM {table} ORDER BY id"
        ));
        let got: Vec<Vec<Option<&str>>> = rows
            .iter()
            .map(|r| r.iter().map(|v| v.as_deref()).collect())
            .collect();
        assert_eq!(
            got,
            [
                [Some("1"), Some("ann"), Some("OBJECT"), Some("{}")],
                // JSON text stays JSON text: an object, not a string.
                [
                    Some("2"),
                    Some("bartholomew"),
                    Some("OBJECT"),
                    Some("{\"k\": [1, \"x\"]}")
                ],
                [Some("3"), Some("cy"), Some("ARRAY"), Some("[]")],
                [Some("4"), Some("dorothea"), Some("OBJECT"), Some("{}")],
                [Some("7"), Some("gus"), Some("OBJECT"), Some("{}")],
            ],
            "{case}"
        );
        // What is left to do is in the new file, the rows as they were read.
        let left = read_jsonl(&dead2);
        assert_eq!(left.len(), 2, "{case}: {left:?}");
        for (entry, raw) in left.iter().zip(RAW_ROWS) {
            assert_eq!(entry["stage"], "source");
            assert_eq!(entry["raw"], String::from_utf8_lossy(raw).as_ref());
            let kept = match entry.get("raw_hex") {
                Some(h) => hex_bytes(h.as_str().unwrap()),
                None => entry["raw"].as_str().unwrap().as_bytes().to_vec(),
            };
            assert_eq!(kept, raw, "{case}");
            let why = entry["reason"].as_str().unwrap();
            assert!(
                why.contains("a row the source could not read (position"),
                "{why}"
            );
        }
        db.exec(&format!("DROP TABLE {table}"));
    }
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// A sink entry as the dead-letter file has it.
fn entry(id: u64, xid: Option<&str>) -> Value {
    let mut e = json!({
        "stage": "sink",
        "error_type": if xid.is_some() { "connection" } else { "conversion" },
        "position": id + 1,
        "reason": "r",
    });
    if let Some(xid) = xid {
        e["in_doubt"] = json!(true);
        e["xid"] = json!(xid);
    }
    e["record"] = json!({"id": id, "n": {"deep": [id]}});
    e
}

fn lines(entries: &[Value]) -> String {
    entries.iter().map(|e| format!("{e}\n")).collect()
}

#[test]
fn in_doubt_entries_are_failed_and_kept_unless_they_were_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.jsonl");
    fs::write(
        &dead,
        lines(&[
            entry(1, None),
            entry(2, Some("pcli-7-1")),
            entry(3, None),
            entry(4, Some("pcli-7-1")),
            entry(5, Some("")),
        ]),
    )
    .unwrap();
    for (flags, ids, code) in [
        (&["--jsonl-format", "dead-letter"][..], &[1, 3][..], 1),
        (&[][..], &[1, 3][..], 1),
        (&["--jsonl-replay-in-doubt"][..], &[1, 2, 3, 4, 5][..], 0),
        (
            &["--jsonl-format", "dead-letter", "--jsonl-replay-in-doubt"][..],
            &[1, 2, 3, 4, 5][..],
            0,
        ),
    ] {
        let out_file = dir.path().join("out.jsonl");
        let again = dir.path().join("again.jsonl");
        let _ = fs::remove_file(&out_file);
        let _ = fs::remove_file(&again);
        let mut flags = flags.to_vec();
        flags.extend(["--dead-letter", p(&again)]);
        let flags = &flags[..];
        let out = run(&jsonl_to_file(p(&dead), p(&out_file), flags));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{flags:?}: {err}");
        let got: Vec<Value> = read_jsonl(&out_file);
        let want: Vec<Value> = ids
            .iter()
            .map(|&i| json!({"id": i, "n": {"deep": [i]}}))
            .collect();
        assert_eq!(got, want, "{flags:?}");
        // Not loaded is failed and kept whole: nothing is left only in the
        // file replayed.
        let failed = 5 - ids.len();
        assert!(
            err.contains(&format!(
                "read=5 inserted={} updated=0 skipped=0 failed={failed}",
                ids.len()
            )),
            "{flags:?}: {err}"
        );
        let kept: Vec<Value> = if again.exists() {
            read_jsonl(&again)
        } else {
            Vec::new()
        };
        assert_eq!(kept.len(), failed, "{flags:?}: {err}");
        for k in &kept {
            let entry: Value = serde_json::from_str(k["raw"].as_str().unwrap()).unwrap();
            assert_eq!(entry["in_doubt"], true, "{k}");
            assert!(k["reason"]
                .as_str()
                .unwrap()
                .contains("--jsonl-replay-in-doubt"));
        }
        let warned = err.contains(
            "3 in-doubt entries not loaded (xid (a plain transaction), pcli-7-1): their batch may have committed",
        ) && err.contains("replay them with --jsonl-replay-in-doubt");
        assert_eq!(warned, ids.len() == 2, "{flags:?}: {err}");
    }
}

/// One dead-letter file read as a regular file, gzip-compressed, and
/// through a pipe on standard input gives the same records; a line in it
/// that is not an entry is rejected with its line number.
#[test]
fn every_input_kind_gives_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = lines(&[entry(1, None), entry(2, None)]);
    text.push_str("{\"id\":3}\n\n");
    text.push_str(&lines(&[entry(4, None)]));
    let plain = dir.path().join("dead.jsonl");
    let gz = dir.path().join("dead.jsonl.gz");
    fs::write(&plain, &text).unwrap();
    fs::write(&gz, gzip(text.as_bytes())).unwrap();
    for kind in ["file", "gzip", "stdin"] {
        let (out_file, dead2) = (
            dir.path().join(format!("out-{kind}.jsonl")),
            dir.path().join(format!("dead2-{kind}.jsonl")),
        );
        let input = match kind {
            "file" => p(&plain),
            "gzip" => p(&gz),
            _ => "-",
        };
        let mut args = jsonl_to_file(input, p(&out_file), &["--jsonl-format", "dead-letter"]);
        args.extend(["--dead-letter", p(&dead2)]);
        let mut child = Command::new(bin())
            .args(&args)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if kind == "stdin" {
            stdin.write_all(text.as_bytes()).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{kind}: {err}");
        assert!(
            err.contains("read=4 inserted=3 updated=0 skipped=0 failed=1"),
            "{kind}: {err}"
        );
        let ids: Vec<Value> = read_jsonl(&out_file)
            .iter()
            .map(|r| r["id"].clone())
            .collect();
        assert_eq!(ids, [json!(1), json!(2), json!(4)], "{kind}");
        let left = read_jsonl(&dead2);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["position"], 3);
        assert_eq!(left[0]["raw"], "{\"id\":3}");
        assert!(
            left[0]["reason"]
                .as_str()
                .unwrap()
                .contains("no \"record\" object or \"raw\" string"),
            "{}",
            left[0]
        );
    }
}

#[test]
fn other_files_and_flags_that_cannot_work_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    fs::write(&dead, lines(&[entry(1, None)])).unwrap();
    let mut extra = entry(1, None);
    extra["user"] = json!("x");
    let same = ["--jsonl-format", "dead-letter", "--dead-letter", p(&dead)];
    let cases: Vec<(&str, String, &[&str], &str)> = vec![
        (
            "records",
            "{\"id\":1,\"name\":\"a\"}\n".into(),
            &["--jsonl-format", "dead-letter"],
            "is not a dead-letter file (--jsonl-format dead-letter): its first line is an object, not",
        ),
        (
            "elasticdump",
            "{\"_index\":\"i\",\"_id\":\"1\",\"_source\":{}}\n".into(),
            &["--jsonl-format", "dead-letter"],
            "is not a dead-letter file (--jsonl-format dead-letter): its first line is a search hit",
        ),
        (
            "csv",
            "id,name\n1,a\n".into(),
            &["--jsonl-format", "dead-letter"],
            "is not a dead-letter file (--jsonl-format dead-letter): its first line is not valid JSON",
        ),
        (
            "an entry with a key entries do not have",
            lines(&[extra]),
            &["--jsonl-format", "dead-letter"],
            "is not a dead-letter file",
        ),
        (
            "the flag with another format",
            lines(&[entry(1, None)]),
            &["--jsonl-format", "plain", "--jsonl-replay-in-doubt"],
            "--jsonl-replay-in-doubt is for dead-letter files; --jsonl-format plain reads none: remove one of them",
        ),
        (
            "the replayed file as the new dead-letter file",
            lines(&[entry(1, None)]),
            &same,
            "is the input file (--jsonl-file)",
        ),
    ];
    for (case, text, flags, want) in cases {
        let input = if case.contains("new dead-letter") {
            dead.clone()
        } else {
            let input = dir.path().join("input.jsonl");
            fs::write(&input, text).unwrap();
            input
        };
        let out = run(&jsonl_to_file(p(&input), p(&out_file), flags));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{case}: {err}");
        assert!(err.contains(want), "{case}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{case}: {err}");
        assert!(!out_file.exists(), "{case}");
    }
    // The flag of another source.
    let csv = dir.path().join("in.csv");
    fs::write(&csv, "a\n1\n").unwrap();
    let mut args = csv_to_file(p(&csv), p(&out_file));
    args.push("--jsonl-replay-in-doubt");
    let out = run(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--jsonl-replay-in-doubt is not used by --source-type csv"));
    // An empty dead-letter file (a run where nothing failed) replays nothing.
    let empty = dir.path().join("empty.jsonl");
    fs::write(&empty, "").unwrap();
    let out = run(&jsonl_to_file(
        p(&empty),
        p(&out_file),
        &["--jsonl-format", "dead-letter"],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("read=0 inserted=0"));
}
