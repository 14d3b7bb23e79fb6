//! The JSON-lines file sink under faults, against real files and the real
//! binary: a write that fails part way (the kernel's file size limit stands
//! in for a full disk) counts exactly what reached the file; a live
//! `--output-file -` sees every batch as it is written; two runs on one
//! output never write into the same file.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::proxy::{Fault, Proxy, Rule};
use common::*;

fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

/// Runs CSV (6000 rows) -> file with a dead-letter file, every file of the
/// process limited to `limit` bytes: a write crossing the limit is cut short
/// and the next fails with EFBIG, as on a full disk.
fn run_with_file_size_limit(dir: &std::path::Path, limit: u64) -> std::process::Output {
    run_limited(dir, limit, "out.jsonl", true)
}

/// As [`run_with_file_size_limit`], into `output`, with or without the
/// dead-letter file.
fn run_limited(
    dir: &std::path::Path,
    limit: u64,
    output: &str,
    dead: bool,
) -> std::process::Output {
    let input = dir.join("in.csv");
    let mut csv = String::from("id,payload\n");
    for i in 0..6000 {
        csv.push_str(&format!("{i},some payload text for row number {i:06}\n"));
    }
    std::fs::write(&input, csv).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(csv_to_file(p(&input), p(&dir.join(output))))
        .args(["--batch-size", "700"])
        .env_remove("PIPELINE_LOG")
        .stdin(Stdio::null());
    if dead {
        cmd.args(["--dead-letter", p(&dir.join("dead.jsonl"))]);
    }
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// Ids of the records in the output lines and the dead-letter entries.
fn ids(lines: &[serde_json::Value], dead: &[serde_json::Value]) -> Vec<u64> {
    let mut ids: Vec<u64> = lines
        .iter()
        .map(|v| v["id"].as_str().unwrap().parse().unwrap())
        .chain(
            dead.iter()
                .map(|v| v["record"]["id"].as_str().unwrap().parse().unwrap()),
        )
        .collect();
    ids.sort_unstable();
    ids
}

fn whole_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{}: a torn last line was left",
        path.display()
    );
    read_jsonl(path)
}

#[test]
fn a_write_that_fails_part_way_counts_only_whole_lines_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_file_size_limit(dir.path(), 340_000);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("File too large"), "{err}");
    let lines = whole_lines(&dir.path().join("out.jsonl.partial"));
    let on_disk = lines.len() as u64;
    assert!(on_disk > 0 && on_disk < 6000, "{on_disk} lines");
    // Counted as inserted = whole lines on disk; every other record failed
    // and is in the dead-letter file.
    assert_eq!(summary_number(&err, "read"), 6000, "{err}");
    assert_eq!(summary_number(&err, "inserted"), on_disk, "{err}");
    assert_eq!(summary_number(&err, "failed"), 6000 - on_disk, "{err}");
    let dead = whole_lines(&dir.path().join("dead.jsonl"));
    assert_eq!(dead.len() as u64, 6000 - on_disk);
    assert_eq!(ids(&lines, &dead), (0..6000).collect::<Vec<_>>());
    assert!(!dir.path().join("out.jsonl").exists());
}

/// A compressed batch is one gzip member: a write cut short is cut off
/// whole, so `.partial` still decompresses, to exactly the records counted.
#[test]
fn a_compressed_write_that_fails_part_way_leaves_whole_members() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_limited(dir.path(), 12_000, "out.jsonl.gz", false);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("File too large"), "{err}");
    let packed = std::fs::read(dir.path().join("out.jsonl.gz.partial")).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(&packed[..]),
        &mut text,
    )
    .expect("the .partial decompresses");
    let on_disk = text.lines().count() as u64;
    assert!(on_disk > 0 && on_disk < 6000, "{on_disk} lines");
    assert_eq!(on_disk % 700, 0, "whole batches only: {on_disk}");
    assert_eq!(summary_number(&err, "inserted"), on_disk, "{err}");
    assert_eq!(summary_number(&err, "failed"), 6000 - on_disk, "{err}");
}

#[test]
fn when_the_dead_letter_file_fails_too_the_summary_says_how_many_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_file_size_limit(dir.path(), 200_000);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines = whole_lines(&dir.path().join("out.jsonl.partial"));
    let dead = whole_lines(&dir.path().join("dead.jsonl"));
    let failed = summary_number(&err, "failed");
    assert_eq!(
        summary_number(&err, "inserted"),
        lines.len() as u64,
        "{err}"
    );
    assert_eq!(lines.len() as u64 + failed, 6000, "{err}");
    let lost = failed - dead.len() as u64;
    assert!(
        lost > 0,
        "the dead-letter file should have filled up: {err}"
    );
    assert!(
        err.contains(&format!("except {lost} that could not be written there")),
        "{err}"
    );
    assert!(err.contains("cannot write the dead-letter file"), "{err}");
}

#[test]
fn a_live_standard_output_sees_each_batch_as_it_is_written() {
    let mut args = csv_to_file("-", "-");
    args.extend(["--batch-timeout-ms", "20"]);
    let mut child = spawn(&args);
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    stdin.write_all(b"id,name\n").unwrap();
    for i in 0..100 {
        writeln!(stdin, "{i},n{i}").unwrap();
    }
    stdin.flush().unwrap();
    // The writer is still open: the lines must arrive without waiting for
    // the end of the input.
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let t = Instant::now();
    let mut got = Vec::new();
    while got.len() < 100 && t.elapsed() < Duration::from_secs(20) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            got.push(line);
        }
    }
    assert_eq!(got.len(), 100, "lines seen while the input is still open");
    assert_eq!(got[99], r#"{"id":"99","name":"n99"}"#);
    drop(stdin);
    let out = wait_with_limit(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    reader.join().unwrap();
}

#[test]
fn a_second_run_on_the_same_output_is_refused_and_the_first_is_intact() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("shared.jsonl");
    let first_args = csv_to_file("-", p(&output));
    let mut first = spawn(&first_args);
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(b"id,who\n").unwrap();
    for i in 0..500 {
        writeln!(stdin, "{i},first").unwrap();
    }
    stdin.flush().unwrap();
    // Wait until the first run has its .partial.
    let partial = dir.path().join("shared.jsonl.partial");
    let t = Instant::now();
    while !partial.exists() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let input = dir.path().join("second.csv");
    std::fs::write(&input, "id,who\n1,second\n2,second\n").unwrap();
    let second = run(&csv_to_file(p(&input), p(&output)));
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(75), "{err}");
    assert!(err.contains("another run is writing"), "{err}");

    for i in 500..1000 {
        writeln!(stdin, "{i},first").unwrap();
    }
    drop(stdin);
    let out = wait_with_limit(first, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = read_jsonl(&output);
    assert_eq!(lines.len(), 1000);
    assert!(lines.iter().all(|l| l["who"] == "first"));
    assert!(!partial.exists());

    // Once the first run is done, the output is free again.
    let again = run(&csv_to_file(p(&input), p(&output)));
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(read_jsonl(&output).len(), 2);
}

/// A compressed output with no record is still a valid (empty) stream:
/// an empty file is not a gzip or zstd file.
#[test]
fn a_compressed_output_without_records_decompresses() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "id,name\n").unwrap();
    for (name, tool) in [("out.jsonl.gz", "gzip"), ("out.jsonl.zst", "zstd")] {
        let out = dir.path().join(name);
        let r = run(&csv_to_file(p(&input), p(&out)));
        assert_eq!(r.status.code(), Some(0), "{name}: {}", stderr(&r));
        let z = Command::new(tool).arg("-dc").arg(&out).output().unwrap();
        assert!(
            z.status.success() && z.stdout.is_empty(),
            "{name}: {} bytes do not decompress: {}",
            std::fs::metadata(&out).unwrap().len(),
            String::from_utf8_lossy(&z.stderr)
        );
    }
}

/// Slows the first search down: time to take the state file's directory
/// away while the run reads.
fn slow(body: &[u8]) -> Vec<u8> {
    std::thread::sleep(Duration::from_millis(1500));
    body.to_vec()
}

/// An incremental run whose state file cannot be saved at its end does not
/// put its output into place either (exit 1, the output stays in
/// `.partial`): the next run, starting from the old state, exports those
/// documents once, and a run after it exports nothing again.
#[test]
fn an_output_is_put_into_place_only_with_its_state_file() {
    let es = EsServer::start(EsKind::Noida);
    let docs: Vec<_> = (0..12)
        .map(|i| {
            (
                format!("d{i}"),
                serde_json::json!({"at": format!("2026-11-{:02}T00:00:00Z", i + 1)}),
            )
        })
        .collect();
    es.bulk("inc", &docs);
    let proxy = Proxy::start(es.port);
    proxy.add(Rule::new("_search", Fault::Rewrite(slow), 1));
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    let state = state_dir.join("inc.json");
    let output = dir.path().join("out.jsonl");
    let url = proxy.url();
    let args = [
        "--source-type",
        "elasticsearch",
        "--es-url",
        &url,
        "--es-index",
        "inc",
        "--es-since-field",
        "at",
        "--state-file",
        p(&state),
        "--sink-type",
        "file",
        "--output-file",
        p(&output),
    ];
    let child = Bin::new(&args).no_stdin().spawn();
    std::thread::sleep(Duration::from_millis(700));
    // Checked at start; gone when the run ends (a full or lost disk).
    std::fs::remove_dir(&state_dir).unwrap();
    let out = wait_with_limit(child, Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--state-file"), "{err}");
    assert!(err.contains("output so far left in"), "{err}");
    assert!(
        !output.exists(),
        "the output was put into place without its state: {err}"
    );
    assert_eq!(whole_lines(&dir.path().join("out.jsonl.partial")).len(), 12);

    std::fs::create_dir(&state_dir).unwrap();
    let again = run(&args);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(whole_lines(&output).len(), 12);
    assert!(state.exists());
    let third = run(&args);
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    assert_eq!(whole_lines(&output).len(), 0, "exported twice");
    // No temporary state file is left behind.
    let left: Vec<_> = std::fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}
