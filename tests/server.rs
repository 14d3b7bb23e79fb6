//! The metrics server of the real binary: /metrics during and after a run
//! (values equal to the row counts, clean under the real promtool), /health,
//! /, 404/405, a port already in use.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use common::*;

fn rows(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("{i},name {i}\n")).collect()
}

fn assert_promtool_clean(text: &str) {
    let (ok, out) = promtool_check_metrics(text);
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}"
    );
}

#[test]
fn metrics_during_and_after_a_run_equal_the_row_counts() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let port = free_port();
    let port_s = port.to_string();
    let mut args = csv_to_file("-", output.to_str().unwrap());
    args.extend([
        "--metrics-port",
        &port_s,
        "--metrics-keep-alive",
        "--batch-timeout-ms",
        "50",
        "--pipeline-id",
        "srv-test",
    ]);
    let mut child = spawn(&args);
    let mut stdin = child.stdin.take().unwrap();
    wait_for_port(port, &mut child);

    // During the run: what was fed so far is read and written, nothing more.
    stdin
        .write_all(format!("id,name\n{}", rows(0, 2500)).as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    assert_the_live_run(port);

    // The rest, then end of input: the run completes and keeps serving.
    stdin.write_all(rows(2500, 4000).as_bytes()).unwrap();
    drop(stdin);
    assert_the_finished_run(port);
    assert_the_other_endpoints(port);

    // SIGTERM ends the keep-alive; the run itself had succeeded.
    signal(&child, "TERM");
    let out = wait_with_limit(child, Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!port_open(port), "port still open after exit");
    assert_eq!(read_jsonl(&output).len(), 4000);
}

/// 2,500 rows fed so far: read and written, nothing more; the run is running.
fn assert_the_live_run(port: u16) {
    let live = scrape_until(port, "2500 records inserted", |t| {
        value(t, "pipeline_records_inserted_total", &[]) == Some(2500.0)
    });
    assert_eq!(
        value(&live, "pipeline_records_read_total", &[]),
        Some(2500.0)
    );
    assert_eq!(
        value(&live, "pipeline_state", &[("state", "running")]),
        Some(1.0)
    );
    assert_eq!(
        value(&live, "pipeline_state", &[("state", "completed")]),
        Some(0.0)
    );
    assert_eq!(value(&live, "pipeline_queue_capacity", &[]), Some(10000.0));
    assert_eq!(
        value(&live, "pipeline_active_workers", &[("stage", "sink")]),
        Some(1.0)
    );
    assert_eq!(
        value(&live, "pipeline_active_workers", &[("stage", "source")]),
        Some(1.0)
    );
    assert!(live.contains("pipeline_id=\"srv-test\""));
    assert!(!live.contains("pipeline_last_success_timestamp_seconds"));
    assert_promtool_clean(&live);
    let (status, ctype, body) = http("GET", port, "/health").unwrap();
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["state"], "running");
    assert_eq!(health["pipeline_id"], "srv-test");
    assert!(health["uptime_seconds"].as_f64().unwrap() > 0.0);
}

/// Every row fed: the counts add up, the final values stay put.
fn assert_the_finished_run(port: u16) {
    let done = scrape_until(port, "the completed state", |t| {
        value(t, "pipeline_state", &[("state", "completed")]) == Some(1.0)
    });
    for (name, want) in [
        ("pipeline_records_read_total", 4000.0),
        ("pipeline_records_processed_total", 4000.0),
        ("pipeline_records_inserted_total", 4000.0),
        ("pipeline_records_failed_total", 0.0),
        ("pipeline_records_skipped_total", 0.0),
        ("pipeline_queue_depth", 0.0),
    ] {
        assert_eq!(value(&done, name, &[]), Some(want), "{name}");
    }
    let batches = value(&done, "pipeline_batches_total", &[("outcome", "ok")]).unwrap();
    assert!(batches >= 4.0, "batches={batches}");
    assert_eq!(
        value(&done, "pipeline_batch_size_records_count", &[]),
        Some(batches)
    );
    assert_eq!(
        value(&done, "pipeline_batch_size_records_sum", &[]),
        Some(4000.0)
    );
    assert_eq!(
        value(&done, "pipeline_insert_duration_seconds_count", &[]),
        Some(batches)
    );
    assert!(value(&done, "pipeline_fetch_duration_seconds_count", &[]).unwrap() >= 1.0);
    let bytes = value(&done, "pipeline_source_bytes_total", &[]).unwrap();
    assert_eq!(bytes as usize, format!("id,name\n{}", rows(0, 4000)).len());
    assert!(value(&done, "pipeline_last_success_timestamp_seconds", &[]).unwrap() > 1.7e9);
    assert!(value(&done, "pipeline_run_duration_seconds", &[]).unwrap() > 0.0);
    assert_eq!(
        value(
            &done,
            "pipeline_info",
            &[("source", "csv"), ("sink", "file")]
        ),
        Some(1.0)
    );
    assert!(done.contains("process_resident_memory_bytes"));
    assert_promtool_clean(&done);
    // The final values stay put while the server keeps serving.
    std::thread::sleep(Duration::from_millis(200));
    let again = scrape(port);
    assert_eq!(
        value(&again, "pipeline_records_inserted_total", &[]),
        Some(4000.0)
    );
    assert_eq!(
        value(&again, "pipeline_run_duration_seconds", &[]),
        value(&done, "pipeline_run_duration_seconds", &[])
    );
}

/// `/`, unknown paths and methods, the `/metrics` content type.
fn assert_the_other_endpoints(port: u16) {
    let (status, ctype, body) = http("GET", port, "/").unwrap();
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(body.contains("/metrics") && body.contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(http("GET", port, "/nope").unwrap().0, 404);
    assert_eq!(http("POST", port, "/metrics").unwrap().0, 405);
    // HEAD answers like GET, without a body.
    let (status, ctype, body) = http("HEAD", port, "/metrics").unwrap();
    assert_eq!((status, body.as_str()), (200, ""), "{ctype}");
    assert_eq!(http("HEAD", port, "/health").unwrap().0, 200);
    assert_eq!(http("DELETE", port, "/health").unwrap().0, 405);
    let (_, ctype, _) = http("GET", port, "/metrics").unwrap();
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
}

#[test]
fn health_is_503_after_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    let output = dir.path().join("out.jsonl");
    std::fs::write(&input, "a,b\n1\n2\n3,3\n").unwrap();
    let port = free_port();
    let port_s = port.to_string();
    let mut args = csv_to_file(input.to_str().unwrap(), output.to_str().unwrap());
    args.extend([
        "--metrics-port",
        &port_s,
        "--metrics-keep-alive",
        "--max-errors",
        "1",
    ]);
    let mut child = spawn(&args);
    wait_for_port(port, &mut child);
    let text = scrape_until(port, "the failed state", |t| {
        value(t, "pipeline_state", &[("state", "failed")]) == Some(1.0)
    });
    assert!(value(&text, "pipeline_records_failed_total", &[]).unwrap() >= 1.0);
    assert!(
        value(
            &text,
            "pipeline_errors_total",
            &[("stage", "source"), ("error_type", "parse")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(!text.contains("pipeline_last_success_timestamp_seconds"));
    let (status, _, body) = http("GET", port, "/health").unwrap();
    assert_eq!(status, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "failed");
    signal(&child, "INT");
    let out = wait_with_limit(child, Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn a_port_in_use_is_a_usage_error_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.jsonl");
    std::fs::write(&input, "a\n1\n").unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut args = csv_to_file(input.to_str().unwrap(), output.to_str().unwrap());
    args.extend(["--metrics-port", &port]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&port) && err.contains("--metrics-port"),
        "{err}"
    );
    assert!(err.contains("in use"), "{err}");
    assert!(!output.exists() && !dir.path().join("out.jsonl.partial").exists());
}
