//! Scheduled runs against the real tools: a real Pushgateway receives the
//! run's metrics under the right grouping labels and keeps the last success
//! when a later run fails; the textfile passes `promtool check metrics`; the
//! lock refuses a second run with exit 75 and never goes stale; a config file
//! fills in flags.

mod common;

use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The grouping labels of a push, plus `extra`.
fn grouped<'a>(extra: &[(&'a str, &'a str)], id: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut labels = vec![("job", "pipeline-cli"), ("pipeline_id", id)];
    labels.extend_from_slice(extra);
    labels
}

#[test]
fn a_pushgateway_gets_the_run_and_keeps_the_last_success() {
    let pg = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    let bad = dir.path().join("bad.csv");
    let output = dir.path().join("out.jsonl");
    let mut csv = String::from("id,name\n");
    for i in 0..1234 {
        csv.push_str(&format!("{i},n{i}\n"));
    }
    fs::write(&good, csv).unwrap();
    fs::write(&bad, "id,name\n1,a\n2\n3,c\n").unwrap();
    let url = pg.url();

    let mut args = csv_to_file(p(&good), p(&output));
    args.extend(["--pushgateway-url", &url, "--pipeline-id", "nightly"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let success = assert_a_successful_run_pushed(&pg);

    // A failed run of the same pipeline: its figures replace the old ones,
    // but the earlier success stays.
    std::thread::sleep(Duration::from_millis(1100));
    let mut args = csv_to_file(p(&bad), p(&output));
    args.extend([
        "--pushgateway-url",
        &url,
        "--pipeline-id",
        "nightly",
        "--max-errors",
        "1",
    ]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_a_failed_run_pushed_keeping(&pg, success);

    // A push that cannot be delivered: logged and counted, the run still
    // succeeds unless --push-required.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let mut args = csv_to_file(p(&good), p(&output));
    args.extend(["--pushgateway-url", &nowhere]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pushing metrics to"),
        "{}",
        stderr(&out)
    );
    args.push("--push-required");
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The summary agrees with the exit code.
    assert!(
        err.contains("failed: read=") && !err.contains("completed:"),
        "{err}"
    );
    assert!(err.contains("--push-required"), "{err}");
}

/// The group holds the successful run; returns its success timestamp.
fn assert_a_successful_run_pushed(pg: &Pushgateway) -> f64 {
    let text = pg.metrics();
    let inserted = value(
        &text,
        "pipeline_records_inserted_total",
        &grouped(&[], "nightly"),
    );
    assert_eq!(inserted, Some(1234.0), "{text}");
    assert_eq!(
        value(
            &text,
            "pipeline_state",
            &grouped(&[("state", "completed")], "nightly")
        ),
        Some(1.0)
    );
    let success = value(
        &text,
        "pipeline_last_success_timestamp_seconds",
        &grouped(&[], "nightly"),
    )
    .expect("last success pushed");
    assert!(success > 1.7e9);
    assert!(
        !text.contains("process_cpu_seconds_total{instance=\"\",job=\"pipeline-cli\""),
        "process metrics are not pushed"
    );

    success
}

/// The group holds the failed run, and still the earlier success.
fn assert_a_failed_run_pushed_keeping(pg: &Pushgateway, success: f64) {
    let text = pg.metrics();
    assert_eq!(
        value(
            &text,
            "pipeline_state",
            &grouped(&[("state", "failed")], "nightly")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "pipeline_records_failed_total",
            &grouped(&[], "nightly")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "pipeline_last_success_timestamp_seconds",
            &grouped(&[], "nightly")
        ),
        Some(success),
        "a failed run must not erase the last success"
    );
}

#[test]
fn the_textfile_is_clean_for_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "a\n1\n2\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let prom = dir.path().join("pipeline.prom");
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--metrics-textfile", p(&prom), "--pipeline-id", "tf"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs::read_to_string(&prom).unwrap();
    assert_eq!(
        value(
            &text,
            "pipeline_records_inserted_total",
            &[("pipeline_id", "tf")]
        ),
        Some(2.0)
    );
    assert!(value(&text, "pipeline_last_success_timestamp_seconds", &[]).is_some());
    let (ok, report) = promtool_check_metrics(&text);
    assert!(ok && report.trim().is_empty(), "promtool: {report}");
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A failed run keeps the last success in the textfile, as the
    // Pushgateway does, so "no recent success" can still be alerted on.
    let success = value(&text, "pipeline_last_success_timestamp_seconds", &[]).unwrap();
    let bad = dir.path().join("bad.csv");
    fs::write(&bad, "a,b\n1\n").unwrap();
    let mut args = csv_to_file(p(&bad), p(&output));
    args.extend(["--metrics-textfile", p(&prom), "--pipeline-id", "tf"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = fs::read_to_string(&prom).unwrap();
    assert_eq!(
        value(&text, "pipeline_state", &[("state", "completed")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "pipeline_records_failed_total",
            &[("pipeline_id", "tf")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "pipeline_last_success_timestamp_seconds", &[]),
        Some(success),
        "{text}"
    );
    // It completed (read everything, wrote what it could) and says how it
    // ended.
    assert_eq!(
        value(&text, "pipeline_last_exit_code", &[]),
        Some(1.0),
        "{text}"
    );
    assert!(value(&text, "pipeline_last_completion_timestamp_seconds", &[]).unwrap() > 1.7e9);
    let (ok, report) = promtool_check_metrics(&text);
    assert!(ok && report.trim().is_empty(), "promtool: {report}");

    // With --accept-errors, the same run is a success.
    std::thread::sleep(Duration::from_millis(1100));
    args.extend(["--accept-errors", "1"]);
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("within --accept-errors"), "{err}");
    let text = fs::read_to_string(&prom).unwrap();
    assert_eq!(
        value(&text, "pipeline_last_exit_code", &[]),
        Some(0.0),
        "{text}"
    );
    assert!(
        value(&text, "pipeline_last_success_timestamp_seconds", &[]).unwrap() > success,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "pipeline_records_failed_total",
            &[("pipeline_id", "tf")]
        ),
        Some(1.0)
    );

    // A run that fails part way (a gzip file cut short) neither succeeds
    // nor completes: the textfile keeps both times of the run before, as
    // the Pushgateway does, and says how this one ended.
    let success = value(&text, "pipeline_last_success_timestamp_seconds", &[]).unwrap();
    let completion = value(&text, "pipeline_last_completion_timestamp_seconds", &[]).unwrap();
    let rows: String = (0..20_000).map(|i| format!("{i}\n")).collect();
    let packed = gzip(format!("a\n{rows}").as_bytes());
    let cut = dir.path().join("cut.csv.gz");
    fs::write(&cut, &packed[..packed.len() / 2]).unwrap();
    let mut args = csv_to_file(p(&cut), p(&output));
    args.extend(["--metrics-textfile", p(&prom), "--pipeline-id", "tf"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = fs::read_to_string(&prom).unwrap();
    assert_eq!(
        value(&text, "pipeline_last_exit_code", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "pipeline_last_success_timestamp_seconds", &[]),
        Some(success),
        "{text}"
    );
    assert_eq!(
        value(&text, "pipeline_last_completion_timestamp_seconds", &[]),
        Some(completion),
        "{text}"
    );
    let (ok, report) = promtool_check_metrics(&text);
    assert!(ok && report.trim().is_empty(), "promtool: {report}");
}

#[test]
fn the_lock_refuses_a_second_run_and_never_goes_stale() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("run.lock");
    let output = dir.path().join("out.jsonl");
    let mut args = csv_to_file("-", p(&output));
    args.extend(["--lock-file", p(&lock)]);
    // The first run waits on its stdin, holding the lock.
    let mut first = spawn(&args);
    let t = Instant::now();
    while fs::read_to_string(&lock).unwrap_or_default().is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run(&args);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("another run holds the lock"), "{err}");
    // A warning, not an error: a scheduler started it while the last ran.
    assert!(!err.contains("error:"), "{err}");
    let mut json = args.clone();
    json.extend(["--log-format", "json"]);
    let out = run(&json);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let line = stderr(&out);
    let fatal: serde_json::Value = line
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("holds the lock"))
        })
        .unwrap_or_else(|| panic!("no lock line: {line}"));
    assert_eq!(fatal["level"], "WARN", "{fatal}");
    assert_eq!(fatal["exit_code"], 75, "{fatal}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    // Since when, as a time a person reads.
    assert!(err.contains(" UTC"), "{err}");
    // The lock file says who, never the command line (it may hold secrets).
    let holder = fs::read_to_string(&lock).unwrap();
    assert!(!holder.contains("--lock-file"), "{holder}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Killed outright: the kernel drops the lock with the process.
    first.kill().unwrap();
    first.wait().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "a\n1\n").unwrap();
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--lock-file", p(&lock)]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_config_file_holds_the_flags_and_the_command_line_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id;ok\n1;true\n2;false\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let conf = dir.path().join("job.toml");
    fs::write(
        &conf,
        format!(
            "source-type = \"csv\"\ncsv-file = \"{}\"\ncsv-delimiter = \";\"\ncsv-infer-types = true\n\
             sink-type = \"file\"\noutput-file = \"{}\"\nlimit = 1\n",
            p(&input),
            p(&output)
        ),
    )
    .unwrap();
    let out = run(&["--config", p(&conf)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&output).unwrap(),
        "{\"id\":1,\"ok\":true}\n"
    );
    let out = run(&["--config", p(&conf), "--limit", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read_jsonl(&output).len(), 2);

    fs::write(&conf, "db-pass = \"hunter2-do-not-print\"\n").unwrap();
    let out = run(&["--config", p(&conf)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("secret") && !stderr(&out).contains("hunter2"),
        "{}",
        stderr(&out)
    );
}

/// Freezes (SIGSTOP) or thaws (SIGCONT) a process: a frozen Pushgateway
/// accepts connections (the kernel does) but never answers.
fn freeze(child: &Child, frozen: bool) {
    let sig = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn a_stalled_pushgateway_holds_a_finished_run_no_longer_than_the_push_timeout() {
    let pg = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id\n1\n2\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let url = pg.url();
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--pushgateway-url", &url, "--push-timeout", "2s"]);
    freeze(&pg.child, true);
    let t = Instant::now();
    let out = wait_with_limit(spawn(&args), Duration::from_secs(30));
    let took = t.elapsed();
    freeze(&pg.child, false);
    let err = stderr(&out);
    // The run itself succeeded: a push that is not --push-required only logs.
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("timed out (--push-timeout 2s)"), "{err}");
    assert!(took < Duration::from_secs(12), "took {took:?}: {err}");
    assert_eq!(read_jsonl(&output).len(), 2);
}

#[test]
fn a_signal_during_the_final_push_does_not_change_a_finished_run() {
    let pg = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id\n1\n2\n3\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let url = pg.url();
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend([
        "--pushgateway-url",
        &url,
        "--push-timeout",
        "4s",
        "--shutdown-timeout",
        "1",
    ]);
    freeze(&pg.child, true);
    let child = spawn(&args);
    // The output is moved into place when the pipeline has finished; the
    // final push (to a frozen Pushgateway) comes after that.
    let t = Instant::now();
    while !output.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the run never finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, "INT");
    let out = wait_with_limit(child, Duration::from_secs(30));
    freeze(&pg.child, false);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("in doubt"), "{err}");
    assert!(!err.contains("did not finish"), "{err}");
    assert!(err.contains("completed: read=3 inserted=3"), "{err}");
}
