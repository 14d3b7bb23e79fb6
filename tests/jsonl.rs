//! NDJSON input (`--source-type jsonl`): top-level keys become fields,
//! values keep their JSON (exact digits, nested objects and arrays as JSON);
//! bad lines are failed records with their line number and raw text; gzip,
//! zstd and standard input give what the plain file gives; into MySQL a JSON
//! column takes nested values as they are and a text column their JSON text.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn to_file<'a>(input: &'a str, output: &'a str, dead: &'a str) -> Vec<&'a str> {
    vec![
        "--source-type",
        "jsonl",
        "--jsonl-file",
        input,
        "--sink-type",
        "file",
        "--output-file",
        output,
        "--dead-letter",
        dead,
    ]
}

/// 3,000 good lines with a bad one every 500 (invalid JSON, an array, a
/// string, invalid UTF-8, a truncated object, an object with trailing text),
/// blank lines and CRLF line ends here and there. Returns the bytes, the
/// good records as they must come out, and the bad lines' numbers.
fn ndjson() -> (Vec<u8>, Vec<Value>, Vec<u64>) {
    let mut bytes = Vec::new();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let bads: [&[u8]; 6] = [
        b"{\"id\": 1,",
        b"[1, 2, 3]",
        b"\"just a string\"",
        b"{\"id\": \"\xff\xfe\"}",
        b"{\"id\": 5} trailing",
        b"not json at all",
    ];
    let mut line = 0u64;
    for i in 0..3000u64 {
        line += 1;
        if i % 500 == 250 {
            bytes.extend_from_slice(bads[(i / 500) as usize]);
            bytes.push(b'\n');
            bad.push(line);
            continue;
        }
        if i % 700 == 3 {
            bytes.extend_from_slice(b"   \n");
            line += 1;
        }
        let doc = json!({
            "id": i,
            "big": format!("1234567890123456789012345{i}").parse::<Value>().unwrap(),
            "name": format!("Zoë \"{i}\"\ttab"),
            "tags": ["a", i % 7],
            "nested": {"k": i, "deep": {"x": null}},
            "ok": i % 2 == 0,
        });
        bytes.extend_from_slice(doc.to_string().as_bytes());
        bytes.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        good.push(doc);
    }
    (bytes, good, bad)
}

#[test]
fn ndjson_lines_become_records_and_bad_lines_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, good, bad) = ndjson();
    let input = dir.path().join("orders.jsonl");
    fs::write(&input, &bytes).unwrap();
    let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let out = run(&to_file(p(&input), p(&output), p(&dead)));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(summary_number(&err, "read"), 3000, "{err}");
    assert_eq!(summary_number(&err, "inserted"), 3000 - 6, "{err}");
    assert_eq!(summary_number(&err, "failed"), 6, "{err}");
    let written = read_jsonl(&output);
    assert_eq!(written, good, "records differ from the input's objects");
    // The exact digits of a number too long for any float or integer.
    let text = fs::read_to_string(&output).unwrap();
    assert!(
        text.contains("\"big\":12345678901234567890123450,"),
        "{}",
        &text[..200]
    );
    let rejects = read_jsonl(&dead);
    let positions: Vec<u64> = rejects
        .iter()
        .map(|r| r["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, bad);
    let reasons: Vec<&str> = rejects
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].contains("not valid JSON"), "{reasons:?}");
    assert!(
        reasons[1].contains("not a JSON object but an array"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("but a string"), "{reasons:?}");
    assert!(reasons[3].contains("not valid UTF-8"), "{reasons:?}");
    assert!(reasons[4].contains("not valid JSON"), "{reasons:?}");
    assert_eq!(rejects[1]["raw"], "[1, 2, 3]");
    assert_eq!(rejects[4]["raw"], "{\"id\": 5} trailing");

    // The same bytes gzip- and zstd-compressed (named as plain), and on
    // standard input: the same output.
    for (tag, data) in [
        ("gz", gzip(&bytes)),
        ("zst", zstd::encode_all(&bytes[..], 3).unwrap()),
        ("plain", bytes.clone()),
    ] {
        let file = dir.path().join(format!("{tag}.jsonl"));
        fs::write(&file, &data).unwrap();
        let o = dir.path().join(format!("{tag}-out.jsonl"));
        let d = dir.path().join(format!("{tag}-dead.jsonl"));
        let res = Command::new(bin())
            .args(to_file("-", p(&o), p(&d)))
            .stdin(Stdio::from(fs::File::open(&file).unwrap()))
            .output()
            .unwrap();
        assert_eq!(res.status.code(), Some(1), "{tag}: {}", stderr(&res));
        assert!(
            fs::read(&o).unwrap() == fs::read(&output).unwrap(),
            "{tag} on stdin"
        );
        if tag != "plain" {
            // Cut in chunks as the decoder gives the lines: one, or many
            // small ones on 3 threads.
            let small: [&[&str]; 2] = [
                &[],
                &["--jsonl-chunk-bytes", "4096", "--jsonl-threads", "3"],
            ];
            for extra in small {
                let _ = fs::remove_file(&d);
                let mut args = to_file(p(&file), p(&o), p(&d));
                args.extend(extra);
                let res = run(&args);
                assert_eq!(res.status.code(), Some(1), "{tag}: {}", stderr(&res));
                assert!(
                    fs::read(&o).unwrap() == fs::read(&output).unwrap(),
                    "{tag} file {extra:?}"
                );
                assert_eq!(
                    without_run_ids(&fs::read_to_string(&d).unwrap()),
                    without_run_ids(&fs::read_to_string(&dead).unwrap()),
                    "{tag} file {extra:?}: the dead-letter file differs"
                );
            }
        }
    }
}

#[test]
fn a_line_longer_than_the_limit_is_failed_and_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.jsonl");
    let long = format!("{{\"note\": \"{}\"}}", "x".repeat(5000));
    fs::write(&input, format!("{{\"a\":1}}\n{long}\n{{\"a\":2}}")).unwrap();
    let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let mut args = to_file(p(&input), p(&output), p(&dead));
    args.extend(["--jsonl-max-line-bytes", "1000"]);
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(read_jsonl(&output), vec![json!({"a": 1}), json!({"a": 2})]);
    let rejects = read_jsonl(&dead);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["position"], 2);
    assert!(rejects[0]["reason"]
        .as_str()
        .unwrap()
        .contains("--jsonl-max-line-bytes 1000"));
    assert_eq!(rejects[0]["raw"].as_str().unwrap().len(), 1000);
}

/// The limit is on a line's content: its `\n` or `\r\n` does not count.
#[test]
fn the_line_limit_counts_content_not_the_line_end() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("edge.jsonl");
    // 20 content bytes each, then 21.
    let line = |k: usize| format!("{{\"a\":\"{}\"}}", "x".repeat(k));
    assert_eq!(line(12).len(), 20);
    let text = format!(
        "{}\r\n{}\n{}\r\n{}\n{}\r\n{}",
        line(12),
        line(12),
        line(13),
        line(13),
        line(12),
        line(12)
    );
    fs::write(&input, &text).unwrap();
    let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let mut args = to_file(p(&input), p(&output), p(&dead));
    args.extend(["--jsonl-max-line-bytes", "20"]);
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(read_jsonl(&output).len(), 4, "{err}");
    let rejects = read_jsonl(&dead);
    let at: Vec<u64> = rejects
        .iter()
        .map(|r| r["position"].as_u64().unwrap())
        .collect();
    assert_eq!(at, [3, 4], "{err}");
    for r in &rejects {
        assert_eq!(r["raw"].as_str().unwrap().len(), 20);
    }
    // 21 bytes with no line end at all, at the end of the input.
    fs::write(&input, format!("{}\n{}", line(12), line(13))).unwrap();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(read_jsonl(&output).len(), 1);
}

/// A UTF-8 byte-order mark at the start of an NDJSON input is skipped, as
/// for CSV: in a file, a gzip file, standard input, and each of several files.
#[test]
fn a_byte_order_mark_at_the_start_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    fs::create_dir(&inputs).unwrap();
    let body = "{\"id\":1}\r\n{\"id\":2}\n";
    let bom = format!("\u{feff}{body}");
    fs::write(inputs.join("a.jsonl"), &bom).unwrap();
    fs::write(inputs.join("b.jsonl"), &bom).unwrap();
    fs::write(inputs.join("c.jsonl.gz"), gzip(bom.as_bytes())).unwrap();
    let output = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    for (input, want) in [
        (inputs.join("a.jsonl"), 2),
        (inputs.join("c.jsonl.gz"), 2),
        (inputs.join("*.jsonl"), 4),
    ] {
        let out = run(&to_file(p(&input), p(&output), p(&dead)));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{input:?}: {err}");
        let got = read_jsonl(&output);
        assert_eq!(got.len(), want, "{input:?}");
        assert!(got
            .iter()
            .all(|v| v.as_object().unwrap().len() == 1 && v["id"].is_number()));
    }
    let mut child = Command::new(bin())
        .args(to_file("-", p(&output), p(&dead)))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), bom.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        read_jsonl(&output),
        vec![json!({"id": 1}), json!({"id": 2})]
    );
}

#[test]
fn ndjson_into_mysql_json_and_text_columns() {
    let mut db = Db::connect();
    let table = table_name("jsonl_types");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, amount DECIMAL(30,10), name VARCHAR(100), \
         nested JSON, tags TEXT, ok BOOLEAN)"
    ));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl.gz");
    let lines = [
        r#"{"id": 1, "amount": 12345678901234567890.0123456789, "name": "Zoë", "nested": {"a": [1, {"b": null}]}, "tags": ["x", 2], "ok": true}"#,
        r#"{"id": 2, "amount": 0.5, "name": "plain", "nested": {}, "tags": [], "ok": false}"#,
        r#"{"id": 3, "name": "no amount", "nested": null, "tags": "a string", "ok": null}"#,
        // A lone surrogate escape has no UTF-8 text: the record fails, it
        // is not stored as its escape with quotes.
        r#"{"id": 4, "name": "\ud800"}"#,
    ];
    fs::write(&input, gzip(lines.join("\n").as_bytes())).unwrap();
    let url = mysql_url();
    let out = run(&[
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
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(summary_number(&err, "failed"), 1, "{err}");
    assert!(err.contains("not valid JSON text"), "{err}");
    let rows = db.rows(&format!(
        "SELECT id, amount, name, nested, tags, ok FROM {table} ORDER BY id"
    ));
    let cell = |r: usize, c: usize| rows[r][c].clone();
    assert_eq!(
        cell(0, 1).as_deref(),
        Some("12345678901234567890.0123456789")
    );
    assert_eq!(cell(0, 2).as_deref(), Some("Zoë"));
    let nested: Value = serde_json::from_str(&cell(0, 3).unwrap()).unwrap();
    assert_eq!(nested, json!({"a": [1, {"b": null}]}));
    assert_eq!(cell(0, 4).as_deref(), Some(r#"["x",2]"#));
    assert_eq!(cell(0, 5).as_deref(), Some("1"));
    assert_eq!(cell(1, 4).as_deref(), Some("[]"));
    assert_eq!(cell(2, 1), None);
    assert_eq!(cell(2, 3), None);
    assert_eq!(cell(2, 4).as_deref(), Some("a string"));
    assert_eq!(rows.len(), 3);
    db.exec(&format!("DROP TABLE {table}"));
}
