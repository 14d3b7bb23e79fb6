//! Ctrl+C while a live input has paused its writer (the writer still open):
//! CSV and NDJSON, on standard input or a named pipe, plain, gzip or zstd,
//! and a pipe that has not yet sent its first bytes or its CSV header. The
//! run stops at once (not after the shutdown watchdog) with 130, and writes
//! exactly the complete records sent before the signal; a row cut short by
//! the stop is failed, so read = inserted + failed.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

#[derive(Clone, Copy, PartialEq)]
enum Pack {
    Plain,
    Gzip,
    Zstd,
}

#[derive(Clone, Copy, PartialEq)]
enum Via {
    Stdin,
    Fifo,
}

/// What is sent before the signal.
#[derive(Clone, Copy)]
enum Sent {
    /// Nothing at all.
    Nothing,
    /// Part of a CSV header, without its line end.
    HalfHeader,
    /// This many complete records, then (when true) the start of one more
    /// without its line end.
    Records(u64, bool),
}

fn make_fifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn packed(pack: Pack, inner: Box<dyn Write + Send>) -> Box<dyn Write + Send> {
    match pack {
        Pack::Plain => inner,
        Pack::Gzip => Box::new(flate2::write::GzEncoder::new(
            inner,
            flate2::Compression::fast(),
        )),
        Pack::Zstd => Box::new(zstd::stream::write::Encoder::new(inner, 1).unwrap()),
    }
}

fn stop_at_once(kind: &str, pack: Pack, via: Via, sent: Sent) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let fifo = dir.path().join(format!("in.{kind}"));
    let input = match via {
        Via::Stdin => "-".to_string(),
        Via::Fifo => {
            make_fifo(&fifo);
            fifo.display().to_string()
        }
    };
    let port = free_port();
    let port_s = port.to_string();
    let flag = format!("--{kind}-file");
    let mut child = spawn(&[
        "--source-type",
        kind,
        &flag,
        &input,
        "--sink-type",
        "file",
        "--output-file",
        output.to_str().unwrap(),
        "--metrics-linger",
        "0",
        "--metrics-port",
        &port_s,
        "--batch-timeout-ms",
        "20",
    ]);
    let stdin = child.stdin.take().unwrap();
    // Opening a named pipe's write end waits for the reader.
    let raw: Box<dyn Write + Send> = match via {
        Via::Stdin => Box::new(stdin),
        Via::Fifo => Box::new(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap()),
    };
    let mut writer = packed(pack, raw);
    let (complete, cut) = match sent {
        Sent::Nothing => (0, false),
        Sent::HalfHeader => {
            writer.write_all(b"id,na").unwrap();
            (0, false)
        }
        Sent::Records(n, cut) => {
            let mut text = String::new();
            if kind == "csv" {
                text.push_str("id,name\n");
            }
            for i in 0..n {
                text.push_str(&match kind {
                    "csv" => format!("{i},name {i}\n"),
                    _ => format!("{{\"id\":\"{i}\",\"name\":\"name {i}\"}}\n"),
                });
            }
            if cut {
                text.push_str(match kind {
                    "csv" => "99999,na",
                    _ => "{\"id\":\"99999\",\"na",
                });
            }
            writer.write_all(text.as_bytes()).unwrap();
            (n, cut)
        }
    };
    // A compressed writer hands on everything so far (a sync flush or a
    // zstd block), and stays open.
    writer.flush().unwrap();
    wait_for_port(port, &mut child);
    if complete > 0 {
        wait_for_count(port, "inserted", complete as f64);
    } else {
        std::thread::sleep(Duration::from_millis(500));
    }

    let t = Instant::now();
    signal(&child, "INT");
    let out = wait_with_limit(child, Duration::from_secs(15));
    let took = t.elapsed();
    drop(writer);
    let err = stderr(&out);
    let what = format!("{kind} {:?}", input);
    assert!(
        took < Duration::from_secs(3),
        "{what}: took {took:?}: {err}"
    );
    assert_eq!(out.status.code(), Some(130), "{what}: {err}");
    assert!(err.contains("interrupted by SIGINT"), "{what}: {err}");
    let partial = dir.path().join("out.jsonl.partial");
    let lines = if partial.exists() {
        read_jsonl(&partial)
    } else {
        Vec::new()
    };
    let ids: Vec<String> = lines
        .iter()
        .map(|v| v["id"].as_str().unwrap().into())
        .collect();
    let want: Vec<String> = (0..complete).map(|i| i.to_string()).collect();
    assert_eq!(ids, want, "{what}");
    let (read, inserted, failed) = (
        summary_number(&err, "read"),
        summary_number(&err, "inserted"),
        summary_number(&err, "failed"),
    );
    assert_eq!(inserted, complete, "{what}: {err}");
    assert_eq!(failed, u64::from(cut), "{what}: {err}");
    assert_eq!(read, inserted + failed, "{what}: {err}");
}

#[test]
fn csv_on_a_pipe() {
    stop_at_once("csv", Pack::Plain, Via::Stdin, Sent::Records(1000, true));
}

#[test]
fn ndjson_on_a_pipe() {
    stop_at_once("jsonl", Pack::Plain, Via::Stdin, Sent::Records(1000, true));
}

#[test]
fn gzip_csv_on_standard_input() {
    stop_at_once("csv", Pack::Gzip, Via::Stdin, Sent::Records(1000, true));
}

#[test]
fn zstd_ndjson_on_standard_input() {
    stop_at_once("jsonl", Pack::Zstd, Via::Stdin, Sent::Records(1000, true));
}

#[test]
fn gzip_ndjson_and_zstd_csv_on_a_named_pipe() {
    stop_at_once("jsonl", Pack::Gzip, Via::Fifo, Sent::Records(500, false));
    stop_at_once("csv", Pack::Zstd, Via::Fifo, Sent::Records(500, true));
}

#[test]
fn a_pipe_that_has_sent_nothing_yet() {
    stop_at_once("csv", Pack::Plain, Via::Stdin, Sent::Nothing);
    stop_at_once("jsonl", Pack::Plain, Via::Stdin, Sent::Nothing);
    stop_at_once("csv", Pack::Plain, Via::Fifo, Sent::Nothing);
}

#[test]
fn a_csv_header_not_yet_complete() {
    stop_at_once("csv", Pack::Plain, Via::Stdin, Sent::HalfHeader);
    stop_at_once("csv", Pack::Gzip, Via::Stdin, Sent::HalfHeader);
}

/// Ctrl+C or SIGTERM while a named pipe has had no writer at all (opening
/// it would wait for one): alone, and after a regular file in a list. The
/// run stops at once with 130 or 143, keeps the file's records, and prints
/// its summary; the pipe is an empty input.
fn stop_before_the_pipe_has_a_writer(kind: &str, after_a_file: bool, sig: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let fifo = dir.path().join(format!("no-writer.{kind}"));
    make_fifo(&fifo);
    let file = dir.path().join(format!("first.{kind}"));
    let rows = 100u64;
    let mut text = String::new();
    for i in 0..rows {
        if kind == "csv" && i == 0 {
            text.push_str("id,name\n");
        }
        text.push_str(&match kind {
            "csv" => format!("{i},name {i}\n"),
            _ => format!("{{\"id\":\"{i}\",\"name\":\"name {i}\"}}\n"),
        });
    }
    std::fs::write(&file, text).unwrap();
    let port = free_port();
    let port_s = port.to_string();
    let flag = format!("--{kind}-file");
    let mut args = vec!["--source-type", kind, &flag];
    if after_a_file {
        args.push(file.to_str().unwrap());
    }
    args.extend([
        fifo.to_str().unwrap(),
        "--sink-type",
        "file",
        "--output-file",
        output.to_str().unwrap(),
        "--metrics-linger",
        "0",
        "--metrics-port",
        &port_s,
        "--batch-timeout-ms",
        "20",
    ]);
    let mut child = spawn(&args);
    let complete = if after_a_file { rows } else { 0 };
    if after_a_file {
        wait_for_port(port, &mut child);
        wait_for_count(port, "inserted", complete as f64);
        std::thread::sleep(Duration::from_millis(300));
    } else {
        std::thread::sleep(Duration::from_millis(1000));
    }
    finish(child, kind, (sig, code), complete, &dir, after_a_file);
}

fn finish(
    child: Running,
    kind: &str,
    (sig, code): (&str, i32),
    complete: u64,
    dir: &tempfile::TempDir,
    after_a_file: bool,
) {
    let t = Instant::now();
    signal(&child, sig);
    let out = wait_with_limit(child, Duration::from_secs(20));
    let took = t.elapsed();
    let err = stderr(&out);
    let what = format!("{kind}, SIG{sig}, after a file: {after_a_file}");
    assert!(
        took < Duration::from_secs(3),
        "{what}: took {took:?}: {err}"
    );
    assert_eq!(out.status.code(), Some(code), "{what}: {err}");
    assert!(err.contains(&format!("by SIG{sig}")), "{what}: {err}");
    let partial = dir.path().join("out.jsonl.partial");
    let lines = if partial.exists() {
        read_jsonl(&partial)
    } else {
        Vec::new()
    };
    assert_eq!(lines.len() as u64, complete, "{what}: {err}");
    assert_eq!(summary_number(&err, "read"), complete, "{what}: {err}");
    assert_eq!(summary_number(&err, "inserted"), complete, "{what}: {err}");
}

#[test]
fn a_named_pipe_that_never_had_a_writer() {
    stop_before_the_pipe_has_a_writer("csv", false, "INT", 130);
    stop_before_the_pipe_has_a_writer("jsonl", false, "TERM", 143);
    stop_before_the_pipe_has_a_writer("csv", true, "TERM", 143);
    stop_before_the_pipe_has_a_writer("jsonl", true, "INT", 130);
}
