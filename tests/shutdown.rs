//! Ctrl+C and SIGTERM against the real binary: the source stops, what was read
//! is written, `.partial` holds a valid prefix of the input, the exit code
//! names the signal, the metrics port is closed; a second signal or the
//! shutdown timeout ends a stuck drain at once.

mod common;

use std::io::Write;
use std::process::Child;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// Feeds numbered rows into the child's stdin until the child stops reading.
fn feed_forever(child: &mut Child) -> JoinHandle<u64> {
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        if stdin.write_all(b"id,payload\n").is_err() {
            return 0;
        }
        let mut i = 0u64;
        loop {
            let mut chunk = String::new();
            for _ in 0..500 {
                chunk.push_str(&format!("{i},\"row {i}, with a comma\"\n"));
                i += 1;
            }
            if stdin.write_all(chunk.as_bytes()).is_err() || i > 50_000_000 {
                return i;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

fn interrupt_mid_run(sig: &str, code: i32, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let port = free_port();
    let port_s = port.to_string();
    let mut args = csv_to_file("-", output.to_str().unwrap());
    args.extend([
        "--metrics-linger",
        "0",
        "--metrics-port",
        &port_s,
        "--batch-size",
        "100",
        "--batch-timeout-ms",
        "20",
    ]);
    let mut child = spawn(&args);
    let feeder = feed_forever(&mut child);
    wait_for_port(port, &mut child);
    wait_for_count(port, "read", 5000.0);

    signal(&child, sig);
    let out = wait_with_limit(child, Duration::from_secs(15));
    feeder.join().unwrap();
    assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("interrupted by {name}")), "{err}");
    assert!(err.contains("output so far left in"), "{err}");

    // Nothing read was lost: every record read is in .partial, in order,
    // as valid JSON lines forming a prefix of the input.
    assert!(
        !output.exists(),
        "an interrupted run must not create the target"
    );
    let partial = dir.path().join("out.jsonl.partial");
    let lines = read_jsonl(&partial);
    let read = summary_number(&err, "read");
    assert!(read >= 5000, "read={read}");
    assert_eq!(summary_number(&err, "inserted"), read);
    assert_eq!(lines.len() as u64, read);
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["id"], i.to_string());
        assert_eq!(v["payload"], format!("row {i}, with a comma"));
    }
    assert!(!port_open(port), "metrics port still open after exit");
}

/// A compressed output interrupted mid-run: `.partial` is a whole gzip or
/// zstd stream (a member or frame per batch) of whole lines, every record
/// read among them.
#[test]
fn sigterm_mid_run_leaves_a_compressed_partial_of_whole_lines() {
    for ext in ["gz", "zst"] {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join(format!("out.jsonl.{ext}"));
        let port = free_port();
        let port_s = port.to_string();
        let mut args = csv_to_file("-", output.to_str().unwrap());
        args.extend([
            "--metrics-port",
            &port_s,
            "--metrics-linger",
            "0",
            "--batch-size",
            "100",
        ]);
        let mut child = spawn(&args);
        let feeder = feed_forever(&mut child);
        wait_for_port(port, &mut child);
        wait_for_count(port, "read", 5000.0);
        signal(&child, "TERM");
        let out = wait_with_limit(child, Duration::from_secs(15));
        feeder.join().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(143), "{ext}: {err}");
        let packed = std::fs::read(dir.path().join(format!("out.jsonl.{ext}.partial"))).unwrap();
        let mut text = String::new();
        let decoded = if ext == "gz" {
            std::io::Read::read_to_string(
                &mut flate2::read::MultiGzDecoder::new(&packed[..]),
                &mut text,
            )
            .map(|_| ())
        } else {
            zstd::decode_all(&packed[..]).map(|b| text = String::from_utf8(b).unwrap())
        };
        decoded.unwrap_or_else(|e| panic!("{ext}: .partial does not decompress: {e}"));
        assert!(text.ends_with('\n'), "{ext}: a torn last line");
        let read = summary_number(&err, "read");
        assert!(read >= 5000, "read={read}");
        assert_eq!(summary_number(&err, "inserted"), read, "{err}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, read, "{ext}");
        for (i, line) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["id"], i.to_string(), "{ext}");
        }
    }
}

#[test]
fn sigint_mid_run_writes_what_was_read_and_exits_130() {
    interrupt_mid_run("INT", 130, "SIGINT");
}

#[test]
fn sigterm_mid_run_writes_what_was_read_and_exits_143() {
    interrupt_mid_run("TERM", 143, "SIGTERM");
}

/// A sink stuck on a full pipe: stdout is never read.
fn stuck_run(extra: &[&str]) -> (Running, JoinHandle<u64>, u16) {
    let port = free_port();
    let port_s = port.to_string();
    let mut args = csv_to_file("-", "-");
    args.extend([
        "--metrics-linger",
        "0",
        "--metrics-port",
        &port_s,
        "--queue-size",
        "100",
        "--batch-size",
        "10",
    ]);
    args.extend(extra);
    let mut child = spawn(&args);
    let feeder = feed_forever(&mut child);
    wait_for_port(port, &mut child);
    // The stdout pipe full (about 1,300 lines), then the queue: the sink
    // is stuck on its write (nothing more inserted for a while) with more
    // read than the queue and a batch hold.
    let stuck = Instant::now();
    loop {
        let count = |name: &str| value(&scrape(port), name, &[]).unwrap_or(0.0);
        let inserted = count("pipeline_records_inserted_total");
        std::thread::sleep(Duration::from_millis(300));
        let read = count("pipeline_records_read_total");
        if inserted > 0.0
            && count("pipeline_records_inserted_total") == inserted
            && read - inserted >= 110.0
        {
            break;
        }
        assert!(
            stuck.elapsed() < Duration::from_secs(30),
            "the sink never got stuck"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    (child, feeder, port)
}

#[test]
fn a_second_signal_exits_at_once() {
    let (child, feeder, _port) = stuck_run(&["--shutdown-timeout", "60"]);
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child_status(&child).is_none(),
        "the first signal must wait for the stuck sink"
    );
    let t = Instant::now();
    signal(&child, "INT");
    let out = wait_with_limit(child, Duration::from_secs(10));
    feeder.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("second SIGINT"), "{}", stderr(&out));
}

#[test]
fn the_shutdown_timeout_bounds_a_stuck_drain() {
    let (child, feeder, _port) = stuck_run(&["--shutdown-timeout", "1"]);
    let t = Instant::now();
    signal(&child, "TERM");
    let out = wait_with_limit(child, Duration::from_secs(10));
    feeder.join().unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the timeout"
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("--shutdown-timeout 1"), "{err}");
    // Even cut short, the run says what it did and how much is in doubt.
    let read = summary_number(&err, "read");
    let written = summary_number(&err, "inserted") + summary_number(&err, "failed");
    assert!(err.contains("interrupted by SIGTERM: read="), "{err}");
    assert!(
        err.contains(&format!(
            "{} records read but neither written nor failed",
            read - written
        )),
        "{err}"
    );
}

fn child_status(child: &Child) -> Option<i32> {
    // /proc/PID exists (as a zombie at worst) until the child is reaped.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
    let state = stat.rsplit(')').next()?.split_whitespace().next()?;
    (state == "Z").then_some(0)
}

#[test]
fn a_quiet_stdin_pipe_still_stops_at_once() {
    // `tail -f log.csv | pipeline-cli ...`: the writer is alive but silent.
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("quiet.jsonl");
    let port = free_port();
    let port_s = port.to_string();
    let mut args = csv_to_file("-", output.to_str().unwrap());
    args.extend([
        "--metrics-linger",
        "0",
        "--metrics-port",
        &port_s,
        "--batch-timeout-ms",
        "20",
        "--shutdown-timeout",
        "30",
    ]);
    let mut child = spawn(&args);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"id,payload\n1,a\n2,b\n3,c\n").unwrap();
    stdin.flush().unwrap();
    wait_for_port(port, &mut child);
    wait_for_count(port, "inserted", 3.0);
    let t = Instant::now();
    signal(&child, "TERM");
    let out = wait_with_limit(child, Duration::from_secs(20));
    drop(stdin);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    let lines = read_jsonl(&dir.path().join("quiet.jsonl.partial"));
    assert_eq!(lines.len(), 3);
}

/// A second Ctrl+C while a large batch is being written: the exit waits for
/// the write in hand, so `.partial` holds whole lines only (and a
/// compressed one decompresses), whenever the second signal comes. The
/// second signal is sent at varied moments: as the batch's write begins
/// (the file starts to grow), at once, and after a delay.
#[test]
fn a_second_signal_during_a_large_batch_write_leaves_whole_lines() {
    // Rows of about 1 KB: a batch read in a fraction of a second is tens
    // of megabytes, written by one call that takes a while.
    let payload = "x".repeat(1000);
    // (the first signal, ms after the start; the second, ms after the
    // first, or None: as the write begins)
    let plain: &[(u64, Option<u64>)] = &[
        (400, None),
        (800, None),
        (1200, None),
        (600, Some(0)),
        (300, Some(2)),
        (700, Some(40)),
    ];
    // Compressing is slow in a debug build: smaller batches.
    let gzip: &[(u64, Option<u64>)] =
        &[(150, None), (200, Some(0)), (100, Some(2)), (250, Some(40))];
    for (ext, moments) in [("", plain), (".gz", gzip)] {
        for (trial, &(first_ms, second)) in moments.iter().enumerate() {
            let what = format!("out.jsonl{ext} trial {trial} ({first_ms} ms, {second:?})");
            let dir = tempfile::tempdir().unwrap();
            let output = dir.path().join(format!("out.jsonl{ext}"));
            let partial = dir.path().join(format!("out.jsonl{ext}.partial"));
            let mut args = csv_to_file("-", output.to_str().unwrap());
            args.extend(["--batch-size", "300000", "--batch-timeout-ms", "600000"]);
            let mut child = spawn(&args);
            let mut stdin = child.stdin.take().unwrap();
            let rows = payload.clone();
            let feeder = std::thread::spawn(move || {
                let _ = stdin.write_all(b"id,payload\n");
                for i in 0..400_000u64 {
                    if writeln!(stdin, "{i},{rows}").is_err() {
                        return;
                    }
                }
            });
            while !partial.exists() {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(first_ms));
            let pid = child.id() as i32;
            let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let before = size(&partial);
            // SAFETY: kill(2) on the child's pid.
            unsafe { libc::kill(pid, libc::SIGINT) };
            match second {
                Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
                None => {
                    // As soon as the batch's write begins.
                    let t = Instant::now();
                    while size(&partial) == before
                        && child_status(&child).is_none()
                        && t.elapsed() < Duration::from_secs(30)
                    {
                        std::thread::yield_now();
                    }
                }
            }
            // SAFETY: as above (the child is not reaped yet: no pid reuse).
            unsafe { libc::kill(pid, libc::SIGINT) };
            let out = wait_with_limit(child, Duration::from_secs(60));
            feeder.join().unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(130), "{what}: {err}");
            assert!(!output.exists(), "{what}");
            if !partial.exists() {
                continue;
            }
            let text = if ext == ".gz" {
                let z = std::process::Command::new("gzip")
                    .arg("-dc")
                    .arg(&partial)
                    .output()
                    .unwrap();
                assert!(
                    z.status.success(),
                    "{what}: .partial ({} bytes) does not decompress: {}",
                    size(&partial),
                    String::from_utf8_lossy(&z.stderr)
                );
                z.stdout
            } else {
                std::fs::read(&partial).unwrap()
            };
            assert!(
                text.is_empty() || text.ends_with(b"\n"),
                "{what}: a torn last line ({} bytes)",
                text.len()
            );
            for (i, line) in text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .enumerate()
            {
                let v: serde_json::Value = serde_json::from_slice(line)
                    .unwrap_or_else(|e| panic!("{what}: line {}: {e}", i + 1));
                assert_eq!(v["id"], i.to_string(), "{what}");
            }
        }
    }
}

/// The same for the dead-letter file: a second signal while a large
/// rejected row is being written to it leaves whole entries only.
#[test]
fn a_second_signal_during_a_large_dead_letter_write_leaves_whole_entries() {
    // Rows of 8 MB with a field too many: each is one dead-letter entry
    // (the row, escaped) written by one call.
    let big = "y".repeat(8 << 20);
    for trial in 0..4u64 {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out.jsonl");
        let dead = dir.path().join("dead.jsonl");
        let mut args = csv_to_file("-", output.to_str().unwrap());
        args.extend(["--dead-letter", dead.to_str().unwrap()]);
        let mut child = spawn(&args);
        let mut stdin = child.stdin.take().unwrap();
        let row = big.clone();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(b"id,payload\n");
            for i in 0..40u64 {
                if writeln!(stdin, "{i},{row},extra").is_err() {
                    return;
                }
            }
        });
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        // Let `trial` entries through, then signal as the next one grows.
        let t = Instant::now();
        while size(&dead) < trial * (8 << 20) && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let before = size(&dead);
        while size(&dead) == before && t.elapsed() < Duration::from_secs(60) {
            std::thread::yield_now();
        }
        let pid = child.id() as i32;
        // SAFETY: kill(2) on the child's pid (not reaped yet).
        unsafe { libc::kill(pid, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(1));
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let out = wait_with_limit(child, Duration::from_secs(60));
        feeder.join().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(130), "trial {trial}: {err}");
        let text = std::fs::read(&dead).unwrap();
        assert!(
            text.is_empty() || text.ends_with(b"\n"),
            "trial {trial}: a torn last entry ({} bytes): {err}",
            text.len()
        );
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value =
                serde_json::from_slice(line).unwrap_or_else(|e| panic!("trial {trial}: {e}"));
            assert_eq!(v["stage"], "source", "trial {trial}");
        }
    }
}
