//! Elasticsearch dumps as NDJSON input (`--jsonl-format elasticdump|bulk`):
//! elasticdump's data file and a `_bulk` request body, written here as those
//! tools write them, load into a JSON-lines file and into MariaDB with
//! `_id` and `_index` as the first fields; lines that do not fit the format
//! are failed records with their line number and text; the file written is
//! what the Elasticsearch source writes for the same documents with
//! `--es-meta-fields _id,_index`.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A document: `_id`, `_index`, `_source`.
type Doc = (String, &'static str, Value);

/// A dump's text and its bad lines (number, a part of the reason).
type Dump = (String, Vec<(u64, &'static str)>);

/// Writes a dump of the documents.
type Writer = fn(&[Doc]) -> Dump;

/// The documents both dumps hold: (`_id`, `_index`, `_source`).
fn documents() -> Vec<Doc> {
    (0..40)
        .map(|i| {
            let index = if i % 3 == 0 { "logs-a" } else { "logs-b" };
            let src = json!({
                "@timestamp": format!("2026-11-{:02}T10:00:00.123Z", i % 28 + 1),
                "message": format!("GET /page/{i} \"quoted\" Zoë"),
                "bytes": i * 1000 + 7,
                "ratio": 0.25 + f64::from(i),
                "geo": {"coordinates": {"lat": 48.5, "lon": -2.25}, "country": "FR"},
                "tags": ["web", format!("t{}", i % 4)],
                "ok": i % 2 == 0,
                "missing": null,
            });
            // Ids that look numeric stay strings.
            (format!("{}", 1000 + i), index, src)
        })
        .collect()
}

/// An elasticdump data file (`elasticdump --type=data`): one hit a line,
/// with `_type` and `_score` as it writes them; bad lines among them.
fn elasticdump(docs: &[Doc]) -> Dump {
    let mut text = String::new();
    let mut bad = Vec::new();
    let mut line = 0;
    for (n, (id, index, src)) in docs.iter().enumerate() {
        if n == 5 {
            line += 1;
            text.push_str("{\"_index\":\"logs-a\",\"_id\":\"x1\",\"fields\":{}}\n");
            bad.push((line, "no \"_source\" object"));
        }
        if n == 9 {
            line += 1;
            text.push_str("{\"_index\":\"logs-a\",\"_id\":\"x2\",\"_source\":[1]}\n");
            bad.push((line, "no \"_source\" object"));
            line += 1;
            text.push_str("{\"_index\":\"logs-a\",\n");
            bad.push((line, "not valid JSON"));
        }
        line += 1;
        let hit = json!({"_index": index, "_type": "_doc", "_id": id, "_score": 1, "_source": src});
        text.push_str(&hit.to_string());
        text.push('\n');
    }
    (text, bad)
}

/// A `_bulk` request body: index, create and update (with `doc`) actions,
/// each followed by its document line; a delete (no document line) and bad
/// lines among them, and an action without its document at the end.
fn bulk(docs: &[Doc]) -> Dump {
    let mut text = String::new();
    let mut bad = Vec::new();
    let mut line = 0;
    let mut push = |text: &mut String, v: Value| {
        text.push_str(&v.to_string());
        text.push('\n');
        line += 1;
        line
    };
    for (n, (id, index, src)) in docs.iter().enumerate() {
        if n == 4 {
            let at = push(
                &mut text,
                json!({"delete": {"_index": index, "_id": "gone"}}),
            );
            bad.push((at, "delete action"));
        }
        if n == 7 {
            let at = push(&mut text, json!({"upsert": {"_index": index}}));
            bad.push((at, "not a _bulk action line"));
        }
        if n == 11 {
            push(&mut text, json!({"update": {"_index": index, "_id": "s"}}));
            let at = push(&mut text, json!({"script": {"source": "ctx._source.n++"}}));
            bad.push((at, "no \"doc\" object"));
        }
        let (action, body) = match n % 3 {
            0 => ("index", src.clone()),
            1 => ("create", src.clone()),
            _ => ("update", json!({"doc": src, "doc_as_upsert": true})),
        };
        push(&mut text, json!({action: {"_index": index, "_id": id}}));
        push(&mut text, body);
    }
    let at = push(
        &mut text,
        json!({"index": {"_index": "logs-a", "_id": "last"}}),
    );
    bad.push((at, "document line is missing at the end of the input"));
    (text, bad)
}

/// The records a dump of `docs` must give: `_id`, `_index`, then the
/// document's fields.
fn expected(docs: &[Doc]) -> Vec<Value> {
    docs.iter()
        .map(|(id, index, src)| {
            let mut m = serde_json::Map::new();
            m.insert("_id".into(), json!(id));
            m.insert("_index".into(), json!(index));
            m.extend(src.as_object().unwrap().clone());
            Value::Object(m)
        })
        .collect()
}

fn dump_args<'a>(format: &'a str, input: &'a str, dead: &'a str) -> Vec<&'a str> {
    vec![
        "--source-type",
        "jsonl",
        "--jsonl-format",
        format,
        "--jsonl-file",
        input,
        "--dead-letter",
        dead,
    ]
}

#[test]
fn dumps_load_into_json_lines_and_mariadb() {
    let docs = documents();
    let want = expected(&docs);
    let cases: [(&str, Writer); 2] = [("elasticdump", elasticdump), ("bulk", bulk)];
    let mut db = Db::connect();
    let url = mysql_url();
    for (format, make) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (text, bad) = make(&docs);
        let input = dir.path().join(format!("{format}.ndjson"));
        fs::write(&input, &text).unwrap();
        let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));

        // Into a JSON-lines file.
        let mut args = dump_args(format, p(&input), p(&dead));
        args.extend(["--sink-type", "file", "--output-file", p(&output)]);
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{format}: {err}");
        let n = docs.len() as u64;
        let failed = bad.len() as u64;
        assert_eq!(summary_number(&err, "inserted"), n, "{format}: {err}");
        assert_eq!(summary_number(&err, "failed"), failed, "{format}: {err}");
        assert_eq!(summary_number(&err, "read"), n + failed, "{format}: {err}");
        assert_eq!(read_jsonl(&output), want, "{format}: records");
        let text_out = fs::read_to_string(&output).unwrap();
        assert!(
            text_out.starts_with("{\"_id\":\"1000\",\"_index\":\"logs-a\",\"@timestamp\":"),
            "{format}: {}",
            &text_out[..80]
        );
        let rejects = read_jsonl(&dead);
        assert_eq!(rejects.len(), bad.len(), "{format}: {rejects:?}");
        let lines: Vec<&str> = text.lines().collect();
        for (r, (line, why)) in rejects.iter().zip(&bad) {
            assert_eq!(r["position"], json!(line), "{format}: {r}");
            let reason = r["reason"].as_str().unwrap();
            assert!(reason.contains(why), "{format}: {why:?} not in {reason:?}");
            assert_eq!(r["raw"], json!(lines[*line as usize - 1]), "{format}: {r}");
        }

        // Into MariaDB, the table made from the documents.
        let table = table_name(&format!("dump_{format}"));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        let mut args = dump_args(format, p(&input), p(&dead));
        args.extend([
            "--sink-type",
            "mysql",
            "--db-url",
            &url,
            "--db-table",
            &table,
            "--create-table",
            "--db-key",
            "_id",
        ]);
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{format}: {err}");
        assert_eq!(summary_number(&err, "inserted"), n, "{format}: {err}");
        assert_eq!(summary_number(&err, "failed"), failed, "{format}: {err}");
        assert_eq!(summary_number(&err, "read"), n + failed, "{format}: {err}");
        let rows = db.rows(&format!(
            "SELECT `_id`, `_index`, message, bytes, geo, tags FROM {table} ORDER BY `_id`"
        ));
        assert_eq!(rows.len(), docs.len(), "{format}");
        for (row, (id, index, src)) in rows.iter().zip(&docs) {
            let cell = |c: usize| row[c].clone().unwrap();
            assert_eq!(cell(0), *id, "{format}");
            assert_eq!(cell(1), *index, "{format}");
            assert_eq!(cell(2), src["message"].as_str().unwrap(), "{format}");
            assert_eq!(cell(3), src["bytes"].to_string(), "{format}");
            let geo: Value = serde_json::from_str(&cell(4)).unwrap();
            assert_eq!(geo, src["geo"], "{format}");
            let tags: Value = serde_json::from_str(&cell(5)).unwrap();
            assert_eq!(tags, src["tags"], "{format}");
        }
        db.exec(&format!("DROP TABLE {table}"));
    }
}

/// The same documents indexed with the `_bulk` body, read back by the
/// Elasticsearch source with `--es-meta-fields _id,_index`: the same lines
/// as either dump gives.
#[test]
fn dumps_write_what_the_elasticsearch_source_writes() {
    let docs = documents();
    let dir = tempfile::tempdir().unwrap();
    let (dump, _) = elasticdump(&docs);
    let dump_file = dir.path().join("dump.ndjson");
    fs::write(&dump_file, &dump).unwrap();
    let mut body = String::new();
    for (id, index, src) in &docs {
        body.push_str(&json!({"index": {"_index": index, "_id": id}}).to_string());
        body.push('\n');
        body.push_str(&src.to_string());
        body.push('\n');
    }
    let bulk_file = dir.path().join("bulk.ndjson");
    fs::write(&bulk_file, &body).unwrap();
    let sorted = |path: &Path| {
        let mut lines: Vec<String> = fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let mut from_dumps = Vec::new();
    for (format, file) in [("elasticdump", &dump_file), ("bulk", &bulk_file)] {
        let output = dir.path().join(format!("{format}.jsonl"));
        let dead = dir.path().join(format!("{format}-dead.jsonl"));
        let mut args = dump_args(format, p(file), p(&dead));
        args.extend(["--sink-type", "file", "--output-file", p(&output)]);
        let out = run(&args);
        if format == "bulk" {
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        }
        from_dumps.push(sorted(&output));
    }
    assert_eq!(from_dumps[0], from_dumps[1]);
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        let url = srv.url();
        let mut from_es = Vec::new();
        for index in ["logs-a", "logs-b"] {
            let of_index: Vec<(String, Value)> = docs
                .iter()
                .filter(|(_, i, _)| *i == index)
                .map(|(id, _, src)| (id.clone(), src.clone()))
                .collect();
            srv.bulk(index, &of_index);
            let output = dir.path().join(format!("{kind:?}-{index}.jsonl"));
            let out = Command::new(bin())
                .args([
                    "--source-type",
                    "elasticsearch",
                    "--es-url",
                    &url,
                    "--es-index",
                    index,
                    "--es-meta-fields",
                    "_id,_index",
                    "--sink-type",
                    "file",
                    "--output-file",
                    p(&output),
                ])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
            from_es.extend(sorted(&output));
        }
        from_es.sort();
        assert_eq!(from_es.len(), docs.len(), "{kind:?}");
        // The server keeps a document's keys in its own order: the values
        // are compared, and the metadata in front byte for byte.
        for (es, dump) in from_es.iter().zip(&from_dumps[0]) {
            let head = |l: &str| l.splitn(3, ',').take(2).collect::<Vec<_>>().join(",");
            assert_eq!(head(es), head(dump), "{kind:?}");
            let es_value: Value = serde_json::from_str(es).unwrap();
            let dump_value: Value = serde_json::from_str(dump).unwrap();
            assert_eq!(es_value, dump_value, "{kind:?}");
        }
    }
}

/// One input of the `--jsonl-format auto` table.
struct AutoCase {
    name: &'static str,
    /// The input's bytes.
    input: Vec<u8>,
    /// Read from standard input instead of a file.
    stdin: bool,
    /// `--jsonl-format` given, if any.
    format: Option<&'static str>,
    /// The format the log must name (`None`: none named, a format given).
    said: Option<&'static str>,
    /// The records written, and the reasons of the lines rejected (by line).
    records: Vec<Value>,
    rejected: Vec<(u64, &'static str)>,
}

const HIT: &str =
    r#"{"_index":"i","_type":"_doc","_id":"1","_score":1,"_source":{"a":1,"n":{"b":[2]}}}"#;
const HIT2: &str = r#"{"_index":"i","_id":"2","_source":{"a":2}}"#;
const BULK: &str = "{\"index\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{\"a\":1,\"n\":{\"b\":[2]}}\n{\"create\":{\"_index\":\"i\",\"_id\":\"2\"}}\n{\"a\":2}\n";

/// The records of [`HIT`] and [`HIT2`], or of [`BULK`].
fn dump_records() -> Vec<Value> {
    vec![
        json!({"_id": "1", "_index": "i", "a": 1, "n": {"b": [2]}}),
        json!({"_id": "2", "_index": "i", "a": 2}),
    ]
}

fn auto_cases() -> Vec<AutoCase> {
    let hits = format!("{HIT}\n{HIT2}\n");
    let case = |name, input: String, said, records, rejected| AutoCase {
        name,
        input: input.into_bytes(),
        stdin: false,
        format: None,
        said: Some(said),
        records,
        rejected,
    };
    vec![
        case("empty file", String::new(), "plain", vec![], vec![]),
        case(
            "blank lines only",
            "\n \r\n\n".into(),
            "plain",
            vec![],
            vec![],
        ),
        case(
            "a blank first line",
            format!("\n  \n{hits}"),
            "elasticdump",
            dump_records(),
            vec![],
        ),
        case(
            "BOM",
            format!("\u{feff}{BULK}"),
            "bulk",
            dump_records(),
            vec![],
        ),
        case(
            "first line invalid JSON",
            format!("{{\"_index\":\"i\",\n{hits}"),
            "plain",
            vec![
                serde_json::from_str(HIT).unwrap(),
                serde_json::from_str(HIT2).unwrap(),
            ],
            vec![(1, "not valid JSON")],
        ),
        case(
            "_source not an object",
            "{\"_id\":\"1\",\"_source\":\"x\"}\n{\"_id\":\"2\",\"_source\":{\"a\":1}}\n".into(),
            "plain",
            vec![
                json!({"_id": "1", "_source": "x"}),
                json!({"_id": "2", "_source": {"a": 1}}),
            ],
            vec![],
        ),
        case(
            "records shaped like _bulk actions, with a field no action has",
            "{\"index\":{\"a\":1}}\n{\"index\":{\"a\":2}}\n{\"index\":{\"a\":3}}\n".into(),
            "plain",
            vec![
                json!({"index": {"a": 1}}),
                json!({"index": {"a": 2}}),
                json!({"index": {"a": 3}}),
            ],
            vec![],
        ),
        case(
            "a key a hit has not",
            "{\"_id\":\"1\",\"_source\":{\"a\":1},\"user\":\"x\"}\n".into(),
            "plain",
            vec![json!({"_id": "1", "_source": {"a": 1}, "user": "x"})],
            vec![],
        ),
        case(
            "a delete first",
            format!("{{\"delete\":{{\"_id\":\"0\"}}}}\n{BULK}"),
            "bulk",
            dump_records(),
            vec![(1, "delete action")],
        ),
        AutoCase {
            input: gzip(hits.as_bytes()),
            ..case("gzip", String::new(), "elasticdump", dump_records(), vec![])
        },
        AutoCase {
            stdin: true,
            ..case("stdin", BULK.into(), "bulk", dump_records(), vec![])
        },
        AutoCase {
            stdin: true,
            ..case("stdin, empty", String::new(), "plain", vec![], vec![])
        },
        AutoCase {
            format: Some("plain"),
            said: None,
            ..case(
                "--jsonl-format plain keeps a dump as it is",
                hits.clone(),
                "",
                vec![
                    serde_json::from_str(HIT).unwrap(),
                    serde_json::from_str(HIT2).unwrap(),
                ],
                vec![],
            )
        },
    ]
}

/// `--jsonl-format auto` (the default) reads each input in the format its
/// first line that is not blank shows, says which in the log, and reads the
/// rest as that format would; a format named is kept.
#[test]
fn auto_decides_each_input_from_its_first_line() {
    for c in auto_cases() {
        let name = c.name;
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.ndjson");
        let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
        let source = if c.stdin { "-" } else { p(&input) };
        let mut args = vec!["--source-type", "jsonl", "--jsonl-file", source];
        if let Some(f) = c.format {
            args.extend(["--jsonl-format", f]);
        }
        args.extend(["--dead-letter", p(&dead), "--sink-type", "file"]);
        args.extend(["--output-file", p(&output)]);
        let out = if c.stdin {
            let mut child = Command::new(bin())
                .args(&args)
                .env_remove("PIPELINE_LOG")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&c.input).unwrap();
            child.wait_with_output().unwrap()
        } else {
            fs::write(&input, &c.input).unwrap();
            // --check says it too (it reads no standard input).
            let mut check = args.clone();
            check.push("--check");
            let out = run(&check);
            let said = String::from_utf8_lossy(&out.stdout).to_string();
            assert_eq!(out.status.code(), Some(0), "{name}: {said}{}", stderr(&out));
            let line = c
                .said
                .map(|f| format!("source: --jsonl-format auto: read as {f} ("));
            match &line {
                Some(l) => assert!(said.contains(l), "{name}: {l:?} not in {said}"),
                None => assert!(!said.contains("auto"), "{name}: {said}"),
            }
            run(&args)
        };
        let err = stderr(&out);
        let code = if c.rejected.is_empty() { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(code), "{name}: {err}");
        let said: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("--jsonl-format auto: read as"))
            .collect();
        match c.said {
            Some(format) => {
                assert_eq!(said.len(), 1, "{name}: said once: {err}");
                let whose = if c.stdin { "standard input" } else { source };
                let want = format!("{whose}: --jsonl-format auto: read as {format} (");
                assert!(said[0].contains(&want), "{name}: {want:?} not in {err}");
            }
            None => assert!(said.is_empty(), "{name}: {err}"),
        }
        assert_eq!(read_jsonl(&output), c.records, "{name}");
        assert_eq!(
            summary_number(&err, "failed"),
            c.rejected.len() as u64,
            "{name}: {err}"
        );
        let rejects = if c.rejected.is_empty() {
            Vec::new()
        } else {
            read_jsonl(&dead)
        };
        assert_eq!(rejects.len(), c.rejected.len(), "{name}: {rejects:?}");
        for (r, (line, why)) in rejects.iter().zip(&c.rejected) {
            assert_eq!(r["position"], json!(line), "{name}: {r}");
            let reason = r["reason"].as_str().unwrap();
            assert!(reason.contains(why), "{name}: {why:?} not in {reason:?}");
        }
    }
}

/// A list of files in different formats: each file is read in its own
/// format, and the log and `--check` name each file's.
#[test]
fn auto_decides_for_each_file_of_a_list() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "a.ndjson",
            format!("{HIT}\n{HIT2}\n").into_bytes(),
            "elasticdump",
        ),
        ("b.ndjson.gz", gzip(BULK.as_bytes()), "bulk"),
        (
            "c.ndjson",
            b"{\"_id\":\"3\",\"x\":true}\n".to_vec(),
            "plain",
        ),
    ];
    for (f, data, _) in &files {
        fs::write(dir.path().join(f), data).unwrap();
    }
    let glob = dir.path().join("*.ndjson*");
    let output = dir.path().join("out.jsonl");
    let args = [
        "--source-type",
        "jsonl",
        "--jsonl-file",
        p(&glob),
        "--sink-type",
        "file",
        "--output-file",
        p(&output),
    ];
    let mut check = args.to_vec();
    check.push("--check");
    let out = run(&check);
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for (f, _, format) in &files {
        let path = dir.path().join(f);
        let want = format!(
            "{}: --jsonl-format auto: read as {format} (",
            path.display()
        );
        assert_eq!(err.matches(&want).count(), 1, "{want:?} once in {err}");
        let want = format!("source: {want}");
        assert!(said.contains(&want), "--check: {want:?} not in {said}");
    }
    let mut want = dump_records();
    want.extend(dump_records());
    want.push(json!({"_id": "3", "x": true}));
    assert_eq!(read_jsonl(&output), want);
}
