//! CSV -> JSON lines through the real binary: RFC 4180 edge cases, type
//! inference, bad rows and the dead-letter file, usage errors and exit codes.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Tricky values: delimiters, quotes, CR/LF inside fields, unicode, spaces.
const POOL: &[&str] = &[
    "plain",
    "with, comma",
    "with \"quotes\" inside",
    "multi\nline",
    "crlf\r\ninside",
    "",
    "Zürich 東京 🚀 emoji 👍🏽",
    "  leading and trailing  ",
    "tab\there",
    "back\\slash",
    "{\"looks\": \"like json\"}",
    "'single'",
    "\"",
    ",",
    "x\u{7f}y",
];

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

#[test]
fn every_edge_case_round_trips_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("edge.csv");
    let output = dir.path().join("edge.jsonl");
    let header = ["id", "text", "other", "last"];
    let mut rng = Lcg(7);
    let mut rows: Vec<Vec<String>> = Vec::new();
    // UTF-8 BOM, CRLF line ends, random quoting of fields that need none.
    let mut csv = String::from("\u{feff}");
    csv.push_str(&header.join(","));
    csv.push_str("\r\n");
    for i in 0..3000u32 {
        let row: Vec<String> = vec![
            i.to_string(),
            POOL[rng.next() % POOL.len()].to_string(),
            POOL[rng.next() % POOL.len()].to_string(),
            format!("{}-{}", POOL[rng.next() % POOL.len()], i),
        ];
        let fields: Vec<String> = row
            .iter()
            .map(|f| csv_field(f, rng.next().is_multiple_of(3)))
            .collect();
        csv.push_str(&fields.join(","));
        csv.push_str(if i.is_multiple_of(5) { "\n" } else { "\r\n" });
        rows.push(row);
    }
    fs::write(&input, csv).unwrap();

    let out = run(&csv_to_file(p(&input), p(&output)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let text = fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), rows.len());
    for (line, row) in lines.iter().zip(&rows) {
        // Byte-exact: keys in header order, values as JSON strings.
        let expected = format!(
            "{{{}}}",
            header
                .iter()
                .zip(row)
                .map(|(k, v)| format!(
                    "{}:{}",
                    serde_json::to_string(k).unwrap(),
                    serde_json::to_string(v).unwrap()
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(*line, expected);
    }
    assert!(!dir.path().join("edge.jsonl.partial").exists());
    assert!(
        stderr(&out).contains("read=3000 inserted=3000 updated=0 skipped=0 failed=0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn delimiters_and_headerless_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("semi.csv");
    let output = dir.path().join("semi.jsonl");
    fs::write(&input, "a;\"b;c\"\n1;2\n").unwrap();
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--csv-delimiter", ";", "--csv-no-header"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        "{\"column_1\":\"a\",\"column_2\":\"b;c\"}\n{\"column_1\":\"1\",\"column_2\":\"2\"}\n"
    );

    fs::write(&input, "x\ty\n1\t\"two\tthree\"\n").unwrap();
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--csv-delimiter", "tab"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        "{\"x\":\"1\",\"y\":\"two\\tthree\"}\n"
    );
}

#[test]
fn inferred_types_become_numbers_booleans_and_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("t.csv");
    let output = dir.path().join("t.jsonl");
    fs::write(
        &input,
        "i,d,b,e,s,zip,big\n-42,3.1400,TRUE,,hello,007,123456789012345678901234567890\n",
    )
    .unwrap();
    let mut args = csv_to_file(p(&input), p(&output));
    args.push("--csv-infer-types");
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        "{\"i\":-42,\"d\":3.1400,\"b\":true,\"e\":null,\"s\":\"hello\",\"zip\":\"007\",\"big\":123456789012345678901234567890}\n"
    );
}

#[test]
fn bad_rows_are_counted_dead_lettered_and_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    let output = dir.path().join("bad.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let mut bytes = b"id,name\n1,ok\n2,too,many\n3,\"multi\nline ok\"\n".to_vec();
    bytes.extend_from_slice(b"4,caf\xe9\n5,fine\n6\n");
    fs::write(&input, &bytes).unwrap();
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--dead-letter", p(&dead)]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("read=6 inserted=3 updated=0 skipped=0 failed=3"),
        "{err}"
    );
    assert!(
        err.contains(&format!("failed records in {}", dead.display())),
        "{err}"
    );

    let good = read_jsonl(&output);
    let ids: Vec<&str> = good.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "3", "5"]);
    assert_eq!(good[1]["name"], "multi\nline ok");

    let dl = read_jsonl(&dead);
    assert_eq!(dl.len(), 3);
    assert_eq!(dl[0]["position"], 3);
    assert_eq!(dl[0]["raw"], "2,too,many");
    assert_eq!(dl[0]["reason"], "expected 2 fields, found 3");
    assert_eq!(dl[0]["error_type"], "parse");
    assert_eq!(dl[0]["stage"], "source");
    assert_eq!(dl[1]["position"], 6);
    assert_eq!(dl[1]["raw_hex"], "342c636166e9");
    assert!(
        dl[1]["reason"].as_str().unwrap().contains("invalid UTF-8"),
        "{}",
        dl[1]
    );
    assert_eq!(dl[2]["position"], 8);
    assert_eq!(dl[2]["raw"], "6");
}

#[test]
fn max_errors_stops_reading_and_keeps_the_old_target() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("allbad.csv");
    let output = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let mut csv = String::from("a,b\n");
    for i in 0..20_000 {
        csv.push_str(&format!("{i}\n"));
    }
    fs::write(&input, csv).unwrap();
    fs::write(&output, "previous complete output\n").unwrap();
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--max-errors", "3", "--dead-letter", p(&dead)]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--max-errors 3"), "{err}");
    // The source stops within its current chunk of rows, far before the end.
    let read = summary_number(&err, "read");
    assert!((3..20_000).contains(&read), "read={read}");
    // Every row read was failed and kept: nothing silently dropped.
    assert_eq!(read_jsonl(&dead).len() as u64, read);
    // A failed run never replaces the target.
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        "previous complete output\n"
    );
    assert!(dir.path().join("out.jsonl.partial").exists());
    assert!(err.contains("output so far left in"), "{err}");
}

#[test]
fn missing_input_and_unwritable_output_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("o.jsonl");
    let missing = dir.path().join("nope.csv");
    let out = run(&csv_to_file(p(&missing), p(&output)));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--csv-file") && err.contains("nope.csv"),
        "{err}"
    );
    assert!(!output.exists() && !dir.path().join("o.jsonl.partial").exists());

    let input = dir.path().join("in.csv");
    fs::write(&input, "a\n1\n").unwrap();
    let bad_out = dir.path().join("no/such/dir/o.jsonl");
    let out = run(&csv_to_file(p(&input), p(&bad_out)));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--output-file"), "{err}");

    // Bad flags are usage errors too, before anything is read.
    let out = run(&["--source-type", "csv", "--sink-type", "file"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--csv-file"), "{}", stderr(&out));
}

#[test]
fn empty_and_header_only_inputs_succeed_with_no_records() {
    let dir = tempfile::tempdir().unwrap();
    // (name, content, --csv-no-header, said to be empty)
    for (name, content, no_header, empty) in [
        ("empty.csv", "", false, true),
        ("header.csv", "a,b,c\r\n", false, false),
        ("empty-no-header.csv", "", true, true),
        ("blank-no-header.csv", "\u{feff}\r\n\n", true, true),
    ] {
        let input = dir.path().join(name);
        let output = dir.path().join(format!("{name}.jsonl"));
        fs::write(&input, content).unwrap();
        let mut args = csv_to_file(p(&input), p(&output));
        if no_header {
            args.push("--csv-no-header");
        }
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        assert_eq!(fs::read_to_string(&output).unwrap(), "", "{name}");
        assert!(err.contains("read=0 inserted=0"), "{err}");
        assert_eq!(
            err.contains("WARN") && err.contains("is empty (no header, no records)"),
            empty,
            "{name}: {err}"
        );
    }
}

#[test]
fn snake_case_flags_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.jsonl");
    fs::write(&input, "k,v\n1,a\n2,b\n").unwrap();
    let port = free_port().to_string();
    let out = run(&[
        "--source_type",
        "csv",
        "--csv_file",
        p(&input),
        "--sink_type",
        "file",
        "--output_file",
        p(&output),
        "--batch_size",
        "1",
        "--queue_size",
        "2",
        "--metrics_port",
        &port,
        "--pipeline_id",
        "snake",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        "{\"k\":\"1\",\"v\":\"a\"}\n{\"k\":\"2\",\"v\":\"b\"}\n"
    );
}

#[test]
fn stdin_to_stdout() {
    use std::io::Write;
    let mut child = spawn(&csv_to_file("-", "-"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"name\n\"a,b\"\nc\n")
        .unwrap();
    let out = wait_with_limit(child, std::time::Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"name\":\"a,b\"}\n{\"name\":\"c\"}\n"
    );
}

#[test]
fn limit_and_several_workers() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.jsonl");
    let mut csv = String::from("id\n");
    for i in 0..10_000 {
        csv.push_str(&format!("{i}\n"));
    }
    fs::write(&input, csv).unwrap();

    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--workers", "3", "--batch-size", "7", "--queue-size", "50"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut ids: Vec<u32> = read_jsonl(&output)
        .iter()
        .map(|v| v["id"].as_str().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..10_000).collect::<Vec<_>>());

    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--limit", "25"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read_jsonl(&output).len(), 25);
}

#[test]
fn help_teaches_with_examples_and_exit_codes() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Examples:",
        "--csv-file",
        "--output-file",
        "--metrics-port",
        "--dead-letter",
        "Exit codes",
        "143",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}");
    }
}
