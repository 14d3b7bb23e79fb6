//! What the on-call engineer sees when a run fails: with `--log-format json`
//! every stderr line is one JSON object carrying `pipeline_id` (fatal lines
//! with `exit_code` and `error_type`), the summary record survives `--quiet`
//! and goes to `--summary-json`, and a run that cannot start counts why in
//! the metrics it pushes to a real Pushgateway.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every stderr line as JSON; panics on a line that is not an object
/// carrying `pipeline_id`, `level`, `timestamp` and `message`, or on lines
/// that do not all carry the same `run_id`.
fn json_lines(out: &Output, id: &str) -> Vec<Value> {
    let err = stderr(out);
    assert!(!err.trim().is_empty(), "nothing on stderr");
    let lines: Vec<Value> = err
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n--- all:\n{err}"));
            for key in ["timestamp", "level", "message"] {
                assert!(v[key].is_string(), "no {key}: {line}");
            }
            assert_eq!(v["pipeline_id"], id, "{line}");
            v
        })
        .collect();
    let run_id = lines[0]["run_id"].as_str().unwrap_or_default();
    assert!(is_run_id(run_id), "no run_id: {err}");
    for v in &lines {
        assert_eq!(v["run_id"], run_id, "another run_id: {v}");
    }
    lines
}

/// A run's identifier: 16 hex digits.
fn is_run_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The last line: a fatal error with this exit code and error type.
fn assert_fatal(lines: &[Value], code: i32, error_type: &str) {
    assert_ending(lines, code, error_type, "ERROR");
}

/// The last line before any summary: the run's ending, at `level`, with
/// this exit code and error type.
fn assert_ending(lines: &[Value], code: i32, error_type: &str, level: &str) {
    let fatal = lines
        .iter()
        .rev()
        .find(|v| v.get("exit_code").is_some() && v.get("summary").is_none())
        .unwrap_or_else(|| panic!("no fatal line in {lines:?}"));
    assert_eq!(fatal["level"], level, "{fatal}");
    assert_eq!(fatal["exit_code"], code, "{fatal}");
    assert_eq!(fatal["error_type"], error_type, "{fatal}");
}

fn json_run(args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--log-format", "json", "--quiet", "--pipeline-id", "cron-1"]);
    run(&all)
}

#[test]
fn fatal_errors_are_json_lines_with_exit_code_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n2\n3,c\n4\n").unwrap();
    let output = dir.path().join("out.jsonl");

    // A refused password: configuration, exit 2, error_type auth.
    let url = mysql_url().replace("root@", "root:wrong@");
    let out = json_run(&csv_to_mysql(p(&input), &url, "on_call_none", &[]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_fatal(&json_lines(&out, "cron-1"), 2, "auth");
    assert!(!stderr(&out).contains("wrong"), "the password leaked");

    // A flag clap refuses.
    let out = json_run(&["--source-type", "csv", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert_fatal(&json_lines(&out, "cron-1"), 2, "config");

    // --max-errors ends the run: exit 1, and the summary record says so.
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--max-errors", "1"]);
    let out = json_run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_lines(&out, "cron-1");
    assert_fatal(&lines, 1, "max_errors");
    let summary = lines.last().unwrap();
    assert_eq!(summary["summary"], true, "{summary}");
    assert_eq!(summary["level"], "ERROR");
    assert_eq!(summary["outcome"], "failed");
}

#[test]
fn a_held_lock_and_a_signal_are_json_lines_too() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("run.lock");
    let output = dir.path().join("out.jsonl");
    let mut args = csv_to_file("-", p(&output));
    args.extend(["--lock-file", p(&lock), "--log-format", "json"]);
    args.extend(["--pipeline-id", "cron-2"]);
    let mut first = spawn(&args);
    let t = Instant::now();
    while fs::read_to_string(&lock).unwrap_or_default().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(20), "no lock taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run(&args);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    // A warning: the last run still runs, nothing is wrong.
    assert_ending(&json_lines(&out, "cron-2"), 75, "locked", "WARN");

    use std::io::Write;
    first
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"id,name\n1,a\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&first, "TERM");
    let out = wait_with_limit(first, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    let lines = json_lines(&out, "cron-2");
    let summary = lines.last().unwrap();
    assert_eq!(summary["outcome"], "interrupted", "{summary}");
    assert_eq!(summary["exit_code"], 143);
    assert_eq!(summary["level"], "WARN");
}

#[test]
fn the_summary_survives_quiet_and_goes_to_summary_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n2\n3,c\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let summary_file = dir.path().join("last.json");

    // Text: the one summary line, nothing else.
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--quiet", "--accept-errors", "1"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("WARN")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("pipeline-cli: completed with failed records"),
        "{err}"
    );

    // JSON: the record, and the same object in --summary-json.
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--summary-json", p(&summary_file)]);
    let out = json_run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let last = json_lines(&out, "cron-1").pop().unwrap();
    let written: Value = serde_json::from_str(&fs::read_to_string(&summary_file).unwrap()).unwrap();
    assert_eq!(last, written);
    assert_eq!(written["level"], "WARN");
    assert_eq!(written["outcome"], "records_failed");
    assert_eq!(written["exit_code"], 1);
    assert_eq!(
        (written["read"].as_u64(), written["inserted"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(written["failed"], 1);
    assert_eq!(written["output"], p(&output));
    assert!(written["elapsed_seconds"].as_f64().unwrap() >= 0.0);

    // '-' writes it to standard output.
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--summary-json", "-", "--quiet", "--accept-errors", "1"]);
    let out = run(&args);
    let printed: Value = serde_json::from_slice(&out.stdout).expect("the record on stdout");
    assert_eq!(printed["outcome"], "failures_accepted");
    assert_eq!(printed["level"], "WARN");
    assert_eq!(printed["exit_code"], 0);
}

/// The pushed value of `name` with the run's grouping labels plus `labels`.
fn pushed(pg: &Pushgateway, id: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut all = vec![("job", "pipeline-cli"), ("pipeline_id", id)];
    all.extend_from_slice(labels);
    value(&pg.metrics(), name, &all)
}

#[test]
fn runs_that_cannot_start_push_why() {
    let pg = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n").unwrap();
    let push = pg.url();
    let url = mysql_url().replace("root@", "root:wrong@");
    let out = run(&csv_to_mysql(
        p(&input),
        &url,
        "on_call_none",
        &["--pushgateway-url", &push, "--pipeline-id", "bad-pass"],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let auth = [("stage", "sink"), ("error_type", "auth")];
    assert_eq!(
        pushed(&pg, "bad-pass", "pipeline_errors_total", &auth),
        Some(1.0)
    );
    assert_eq!(
        pushed(&pg, "bad-pass", "pipeline_last_exit_code", &[]),
        Some(2.0)
    );
    assert!(
        !pg.metrics().contains("wrong"),
        "the password reached the Pushgateway"
    );

    // A missing table is a configuration error of the sink.
    let out = run(&csv_to_mysql(
        p(&input),
        &mysql_url(),
        "on_call_no_such_table",
        &["--pushgateway-url", &push, "--pipeline-id", "no-table"],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let config = [("stage", "sink"), ("error_type", "config")];
    assert_eq!(
        pushed(&pg, "no-table", "pipeline_errors_total", &config),
        Some(1.0)
    );

    // An Elasticsearch nobody answers at: retried, then counted.
    let es = format!("http://127.0.0.1:{}", free_port());
    let output = dir.path().join("out.jsonl");
    let out = run(&[
        "--source-type",
        "elasticsearch",
        "--es-url",
        &es,
        "--es-index",
        "x",
        "--sink-type",
        "file",
        "--output-file",
        p(&output),
        "--retry-for",
        "1s",
        "--pushgateway-url",
        &push,
        "--pipeline-id",
        "no-es",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("connection refused"),
        "{}",
        stderr(&out)
    );
    let conn = [("stage", "source"), ("error_type", "connection")];
    assert_eq!(
        pushed(&pg, "no-es", "pipeline_errors_total", &conn),
        Some(1.0)
    );
    let retries = pushed(
        &pg,
        "no-es",
        "pipeline_retries_total",
        &[("stage", "source")],
    );
    assert!(retries.unwrap_or(0.0) >= 1.0, "{}", pg.metrics());
    assert_eq!(
        pushed(&pg, "no-es", "pipeline_state", &[("state", "failed")]),
        Some(1.0)
    );
}

#[test]
fn progress_watermark_and_build_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n2,b\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let textfile = dir.path().join("m.prom");
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--metrics-textfile", p(&textfile)]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs::read_to_string(&textfile).unwrap();
    let size = fs::metadata(&input).unwrap().len() as f64;
    assert_eq!(
        value(&text, "pipeline_source_expected_bytes", &[]),
        Some(size),
        "{text}"
    );
    assert!(!text.contains("pipeline_source_watermark"), "{text}");
    let build = text
        .lines()
        .find(|l| l.starts_with("pipeline_build_info{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{build}"
    );
    assert!(
        build.contains("revision=\"") && !build.contains("revision=\"\""),
        "{build}"
    );

    let es = EsServer::start(EsKind::Noida);
    let docs: Vec<_> = (0..12)
        .map(|i| {
            (
                format!("d{i}"),
                serde_json::json!({"at": format!("2026-11-{:02}T00:00:00Z", i + 1)}),
            )
        })
        .collect();
    es.bulk("wm", &docs);
    let state = dir.path().join("state.json");
    let out = run(&[
        "--source-type",
        "elasticsearch",
        "--es-url",
        &es.url(),
        "--es-index",
        "wm",
        "--es-since-field",
        "at",
        "--state-file",
        p(&state),
        "--sink-type",
        "file",
        "--output-file",
        p(&output),
        "--metrics-textfile",
        p(&textfile),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs::read_to_string(&textfile).unwrap();
    // 2026-11-12T00:00:00Z, the newest value, now in the state file.
    assert_eq!(
        value(&text, "pipeline_source_watermark", &[]),
        Some(1_794_441_600.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "pipeline_source_expected_records", &[]),
        Some(12.0),
        "{text}"
    );
}

#[test]
fn debug_logs_say_what_a_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,n\n1,5\n2,6\n").unwrap();
    let table = table_name("debug_lines");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY, n INT)"));
    let url = mysql_url();
    let args = csv_to_mysql(p(&input), &url, &table, &["--workers", "1"]);
    let quiet = run(&args);
    assert!(!stderr(&quiet).contains("DEBUG"), "{}", stderr(&quiet));
    let out = Bin::new(&args)
        .env("PIPELINE_LOG", "debug")
        .no_stdin()
        .spawn();
    let out = wait_with_limit(out, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for needle in [
        "2 header fields (id, n)",
        "connected (connection id ",
        "field n -> column `n`: Int",
        "batch of 2 records written in",
    ] {
        assert!(err.contains(needle), "no '{needle}' in:\n{err}");
    }
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn an_es_user_without_a_password_is_warned_about() {
    let es = EsServer::start(EsKind::Osmem);
    es.bulk("w", &[("a".to_string(), serde_json::json!({"n": 1}))]);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let args = [
        "--source-type",
        "elasticsearch",
        "--es-url",
        &es.url(),
        "--es-index",
        "w",
        "--sink-type",
        "file",
        "--output-file",
        p(&output),
        "--es-user",
        "exporter",
    ];
    let out = Bin::new(&args)
        .env_remove("PIPELINE_ES_PASS")
        .no_stdin()
        .spawn();
    let out = wait_with_limit(out, Duration::from_secs(30));
    let err = stderr(&out);
    assert!(
        err.contains("--es-user exporter is set but no password"),
        "{err}"
    );
    let out = Bin::new(&args)
        .env("PIPELINE_ES_PASS", "s3cret")
        .no_stdin()
        .spawn();
    let out = wait_with_limit(out, Duration::from_secs(30));
    assert!(!stderr(&out).contains("no password"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s3cret"));
}

#[test]
fn json_logs_on_a_terminal_have_no_progress_bar() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut csv = String::from("id,name\n");
    for i in 0..200_000 {
        csv.push_str(&format!("{i},name {i}\n"));
    }
    fs::write(&input, csv).unwrap();
    let output = dir.path().join("out.jsonl");
    let typescript = dir.path().join("tty.log");
    // `script` runs the binary on a pseudo-terminal, as a person would.
    let command = format!(
        "{} --source-type csv --csv-file {} --sink-type file --output-file {} --log-format json",
        bin(),
        p(&input),
        p(&output)
    );
    let status = std::process::Command::new("script")
        .args(["-qec", &command, p(&typescript)])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script (util-linux)");
    assert!(status.success());
    let text = fs::read_to_string(&typescript).unwrap();
    let lines: Vec<&str> = text
        .split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Script "))
        .collect();
    assert!(!lines.is_empty(), "{text}");
    for line in lines {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    }
}

/// A metrics textfile that cannot be written when the run ends (its
/// directory is gone) fails the run: exit 1, the summary says why, and the
/// push that follows counts it and carries the exit code.
#[test]
fn a_textfile_that_cannot_be_written_fails_the_run() {
    use std::io::Write;
    let pg = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let metrics_dir = dir.path().join("textfiles");
    fs::create_dir(&metrics_dir).unwrap();
    let textfile = metrics_dir.join("m.prom");
    let summary = dir.path().join("summary.json");
    let push = pg.url();
    let mut args = csv_to_file("-", p(&output));
    args.extend([
        "--metrics-textfile",
        p(&textfile),
        "--summary-json",
        p(&summary),
        "--pushgateway-url",
        &push,
        "--pipeline-id",
        "tf-gone",
    ]);
    // The run waits for its input; the directory goes meanwhile (after the
    // check at start), as a full or unmounted disk would fail the write.
    let mut child = Bin::new(&args).no_stdout().spawn();
    std::thread::sleep(Duration::from_millis(300));
    fs::remove_dir(&metrics_dir).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"id,name\n1,a\n2,b\n").unwrap();
    drop(stdin);
    let out = wait_with_limit(child, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--metrics-textfile"), "{err}");
    let s: Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["exit_code"], 1, "{s}");
    assert_eq!(s["outcome"], "failed", "{s}");
    assert!(
        s["error"]
            .as_str()
            .unwrap_or("")
            .contains("--metrics-textfile"),
        "{s}"
    );
    assert_eq!(
        pushed(
            &pg,
            "tf-gone",
            "pipeline_errors_total",
            &[("stage", "push"), ("error_type", "io")]
        ),
        Some(1.0),
        "{}",
        pg.metrics()
    );
    assert_eq!(
        pushed(&pg, "tf-gone", "pipeline_last_exit_code", &[]),
        Some(1.0)
    );
    // The output itself is whole and in place: only the metrics failed.
    assert_eq!(fs::read_to_string(&output).unwrap().lines().count(), 2);
}

/// A `--summary-json` that cannot be written at the end of a run that
/// otherwise succeeded fails it (exit 1), as a textfile does: a script that
/// reads the summary would otherwise take an older run's for this one.
#[test]
fn a_summary_file_that_cannot_be_written_fails_the_run() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let summary_dir = dir.path().join("summaries");
    fs::create_dir(&summary_dir).unwrap();
    let summary = summary_dir.join("s.json");
    let mut args = csv_to_file("-", p(&output));
    args.extend(["--summary-json", p(&summary)]);
    let mut child = Bin::new(&args).no_stdout().spawn();
    std::thread::sleep(Duration::from_millis(300));
    fs::remove_dir(&summary_dir).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"id,name\n1,a\n2,b\n").unwrap();
    drop(stdin);
    let out = wait_with_limit(child, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: cannot write --summary-json"), "{err}");
    assert_eq!(summary_number(&err, "inserted"), 2, "{err}");
}

/// One `run_id` ties a run's log lines (JSON and text), its summary (on
/// stderr and in `--summary-json`), its dead-letter entries and its
/// `pipeline_info` together; the next run has another.
#[test]
fn one_run_id_ties_a_runs_lines_summary_dead_letters_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n2\n3,c\n4\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let summary = dir.path().join("summary.json");
    let textfile = dir.path().join("m.prom");
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--dead-letter", p(&dead), "--summary-json", p(&summary)]);
    args.extend(["--metrics-textfile", p(&textfile)]);
    let mut json = args.clone();
    json.extend(["--log-format", "json", "--pipeline-id", "ids"]);
    let out = run(&json);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_lines(&out, "ids");
    assert!(lines.len() > 2, "{lines:?}");
    let id = lines[0]["run_id"].as_str().unwrap().to_string();
    let written: Value = serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(written["run_id"], id.as_str(), "{written}");
    let entries = read_jsonl(&dead);
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert_eq!(e["run_id"], id.as_str(), "{e}");
    }
    let metrics = fs::read_to_string(&textfile).unwrap();
    assert_eq!(
        value(&metrics, "pipeline_info", &[("run_id", &id)]),
        Some(1.0),
        "{metrics}"
    );

    // As text, every line ends with it; another run, another id.
    let out = run(&args);
    let err = stderr(&out);
    let ids: std::collections::BTreeSet<&str> = err
        .lines()
        .map(|l| l.rsplit_once(" run_id=").map_or("", |(_, id)| id))
        .collect();
    assert_eq!(ids.len(), 1, "{err}");
    let text_id = ids.into_iter().next().unwrap();
    assert!(is_run_id(text_id), "{err}");
    assert_ne!(text_id, id, "two runs, one id");
    assert!(err.lines().count() > 2, "{err}");
    let entries = read_jsonl(&dead);
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[3]["run_id"], text_id, "{}", entries[3]);
}

/// The run's own error is said before what its final push meets (a
/// Pushgateway nobody answers at), whether the run started or not; the
/// exit code is the run's.
#[test]
fn the_runs_own_error_comes_before_the_push_failure() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n2\n3,c\n4\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let push = format!("http://127.0.0.1:{}", free_port());
    let dead_push = ["--pushgateway-url", &push, "--push-timeout", "1s"];
    let order = |lines: &[Value], error_type: &str| {
        let own = lines
            .iter()
            .position(|v| v["error_type"] == error_type && v.get("summary").is_none());
        let pushed = lines.iter().position(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("pushing metrics to"))
        });
        match (own, pushed) {
            (Some(own), Some(pushed)) => assert!(own < pushed, "{lines:#?}"),
            _ => panic!("no {error_type} line or no push failure: {lines:#?}"),
        }
    };

    // A run that stops on --max-errors.
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--max-errors", "1"]);
    args.extend(dead_push);
    let out = json_run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    order(&json_lines(&out, "cron-1"), "max_errors");

    // A run that cannot start: an Elasticsearch nobody answers at.
    let es = format!("http://127.0.0.1:{}", free_port());
    let mut args = vec!["--source-type", "elasticsearch", "--es-url", &es];
    args.extend(["--es-index", "x", "--sink-type", "file"]);
    args.extend(["--output-file", p(&output), "--retry-for", "1s"]);
    args.extend(dead_push);
    let out = json_run(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    order(&json_lines(&out, "cron-1"), "connection");
}
