//! Hostile CSV against the real binary: a stray quote, a file cut inside a
//! quoted field, a quoted field past the limits, a stop while standard input
//! has paused in the middle of a row, the error budget, and the memory a
//! 50 MB field costs.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn with_dead_letter<'a>(input: &'a str, output: &'a str, dead: &'a str) -> Vec<&'a str> {
    let mut args = csv_to_file(input, output);
    args.extend(["--dead-letter", dead]);
    args
}

#[test]
fn a_stray_quote_costs_one_row_not_the_rest_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,name\n");
    for i in 1..=100_000 {
        if i == 5 {
            text.push_str("5,\"stray\n");
        } else {
            text.push_str(&format!("{i},name {i}\n"));
        }
    }
    fs::write(&input, text).unwrap();
    let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let out = run(&with_dead_letter(p(&input), p(&output), p(&dead)));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(summary_number(&err, "read"), 100_000, "{err}");
    assert_eq!(summary_number(&err, "inserted"), 99_999, "{err}");
    assert_eq!(summary_number(&err, "failed"), 1, "{err}");
    let rejects = read_jsonl(&dead);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["position"], 6, "{}", rejects[0]);
    assert_eq!(rejects[0]["raw"], "5,\"stray", "{}", rejects[0]);
    let reason = rejects[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("unclosed quote") && reason.contains("line 6"),
        "{reason}"
    );
    assert!(reason.contains("--csv-max-field-lines"), "{reason}");
    assert_eq!(lines_in(&output), 99_999);
}

fn lines_in(path: &Path) -> usize {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .count()
}

#[test]
fn a_file_cut_inside_a_quoted_field_is_a_failed_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cut.csv");
    fs::write(&input, "id,note\n1,fine\n2,\"the note was cut\nhere").unwrap();
    let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let out = run(&with_dead_letter(p(&input), p(&output), p(&dead)));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        (
            summary_number(&err, "read"),
            summary_number(&err, "inserted"),
            summary_number(&err, "failed")
        ),
        (2, 1, 1),
        "{err}"
    );
    let rejects = read_jsonl(&dead);
    assert_eq!(rejects[0]["position"], 3);
    assert_eq!(rejects[0]["raw"], "2,\"the note was cut\nhere");
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .contains("end of the input"),
        "{}",
        rejects[0]
    );
}

#[test]
fn a_quoted_field_past_the_byte_limit_is_rejected_and_reading_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.csv");
    let mut text = String::from("id,note\n1,\"");
    text.push_str(&"x".repeat(5000));
    text.push_str("\n2,ok\n3,\"closed, fine\"\n");
    fs::write(&input, text).unwrap();
    let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let mut args = with_dead_letter(p(&input), p(&output), p(&dead));
    args.extend(["--csv-max-field-bytes", "1KiB"]);
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(summary_number(&err, "inserted"), 2, "{err}");
    let rejects = read_jsonl(&dead);
    assert_eq!(rejects.len(), 1);
    let reason = rejects[0]["reason"].as_str().unwrap();
    assert!(reason.contains("--csv-max-field-bytes 1024"), "{reason}");
    let written = fs::read_to_string(&output).unwrap();
    assert!(written.contains("\"closed, fine\""), "{written}");
}

/// A field with no quote around it past the limit is said to be too long,
/// not taken for an unclosed quote, read by one thread or several.
#[test]
fn an_unquoted_field_past_the_byte_limit_is_called_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.csv");
    let mut text = String::from("id,note\n");
    for i in 0..3000 {
        text.push_str(&format!("{i},short\n"));
    }
    text.push_str("3000,");
    text.push_str(&"x".repeat(5000));
    text.push_str("\n3001,ok\n");
    fs::write(&input, text).unwrap();
    for threads in ["1", "4"] {
        let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
        let _ = fs::remove_file(&dead);
        let mut args = with_dead_letter(p(&input), p(&output), p(&dead));
        args.extend(["--csv-max-field-bytes", "1KiB", "--csv-threads", threads]);
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(summary_number(&err, "inserted"), 3001, "{err}");
        let rejects = read_jsonl(&dead);
        assert_eq!(rejects.len(), 1);
        let reason = rejects[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("a field longer than --csv-max-field-bytes 1024")
                && !reason.contains("unclosed"),
            "{threads}: {reason}"
        );
    }
}

#[test]
fn the_error_budget_is_checked_on_every_rejected_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    let mut text = String::from("a,b\n");
    for i in 0..1000 {
        text.push_str(&format!("{i},x,too many\n"));
    }
    fs::write(&input, text).unwrap();
    let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let mut args = with_dead_letter(p(&input), p(&output), p(&dead));
    args.extend(["--max-errors", "10"]);
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--max-errors 10"), "{err}");
    // Said once, by the run's ending line.
    assert_eq!(err.matches("--max-errors 10").count(), 1, "{err}");
    assert_eq!(summary_number(&err, "failed"), 10, "{err}");
    assert_eq!(summary_number(&err, "read"), 10, "{err}");
    assert_eq!(read_jsonl(&dead).len(), 10);
}

#[test]
fn a_stop_while_stdin_pauses_mid_row_fails_that_row_and_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let mut child = spawn(&with_dead_letter("-", p(&output), p(&dead)));
    let mut stdin = child.stdin.take().unwrap();
    let mut text = String::from("id,name\n");
    for i in 0..1000 {
        text.push_str(&format!("{i},row {i}\n"));
    }
    text.push_str("1000,half a ro");
    stdin.write_all(text.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // The 1,000 whole rows reach the output before the stop.
    let partial = dir.path().join("out.jsonl.partial");
    let t = Instant::now();
    while fs::read_to_string(&partial).map_or(0, |s| s.lines().count()) < 1000 {
        assert!(t.elapsed() < Duration::from_secs(30), "rows not written");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "INT");
    let stopped = Instant::now();
    let out = wait_with_limit(child, Duration::from_secs(30));
    drop(stdin);
    let err = stderr(&out);
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "the stop waited {:?}",
        stopped.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert_eq!(
        (
            summary_number(&err, "read"),
            summary_number(&err, "inserted"),
            summary_number(&err, "failed")
        ),
        (1001, 1000, 1),
        "{err}"
    );
    let rejects = read_jsonl(&dead);
    assert_eq!(rejects[0]["raw"], "1000,half a ro");
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cut short by the stop signal"),
        "{}",
        rejects[0]
    );
    assert_eq!(lines_in(&partial), 1000);
}

/// Peak resident memory of a finished child, in bytes. The child is waited
/// for with wait4 (for its own rusage), not with `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measuring_rss(args: &[&str]) -> (i32, u64, String) {
    let child = Command::new(bin())
        .args(args)
        .env_remove("PIPELINE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr_pipe = child.stderr.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr_pipe, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value to be filled in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid pointers.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid);
    let code = libc::WEXITSTATUS(status);
    (code, usage.ru_maxrss as u64 * 1024, reader.join().unwrap())
}

#[test]
fn a_50_mb_field_costs_a_bounded_amount_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.csv");
    let mut f = fs::File::create(&input).unwrap();
    f.write_all(b"id,blob\n1,\"").unwrap();
    let chunk = "abcdefghij\"\"klmnopqrstuvwxyz\n".repeat(1000);
    let mut written = 0;
    while written < 50 << 20 {
        f.write_all(chunk.as_bytes()).unwrap();
        written += chunk.len();
    }
    f.write_all(b"\"\n2,small\n").unwrap();
    drop(f);
    let output = dir.path().join("out.jsonl");
    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--csv-max-field-lines", "10000000"]);
    let (code, rss, err) = run_measuring_rss(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines_in(&output), 2);
    assert!(
        rss < 300 << 20,
        "peak RSS {} MiB for a 50 MB field",
        rss >> 20
    );
}

#[test]
fn a_huge_quoted_field_is_given_up_at_the_limit_without_being_held() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("huge.csv");
    let mut f = fs::File::create(&input).unwrap();
    f.write_all(b"id,blob\n1,\"").unwrap();
    let chunk = "x".repeat(1 << 20);
    for _ in 0..200 {
        f.write_all(chunk.as_bytes()).unwrap();
    }
    f.write_all(b"\n2,small\n").unwrap();
    drop(f);
    let (output, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let mut args = with_dead_letter(p(&input), p(&output), p(&dead));
    args.extend(["--csv-max-field-bytes", "8MiB"]);
    let (code, rss, err) = run_measuring_rss(&args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("failed=1"), "{err}");
    assert_eq!(lines_in(&output), 1);
    assert!(
        rss < 120 << 20,
        "peak RSS {} MiB for a 200 MB field given up at 8 MiB",
        rss >> 20
    );
}

/// Past the first 10 rejections the log says where the rest are: in the
/// dead-letter file named, or, without one, that they are not kept and
/// which flag keeps them.
#[test]
fn the_line_after_ten_rejections_says_where_the_rest_are() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let rows: String = (0..15).map(|i| format!("{i},x,extra\n")).collect();
    fs::write(&input, format!("id,name\n{rows}1,ok\n")).unwrap();
    let output = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    for kept in [false, true] {
        let mut args = csv_to_file(p(&input), p(&output));
        if kept {
            args.extend(["--dead-letter", p(&dead)]);
        }
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let line = err
            .lines()
            .find(|l| l.contains("more records rejected"))
            .unwrap_or_else(|| panic!("no line after ten: {err}"));
        if kept {
            assert!(
                line.contains(&format!("kept in the dead-letter file {}", dead.display())),
                "{line}"
            );
        } else {
            assert!(
                line.contains("not kept")
                    && line.contains("--dead-letter")
                    && !line.contains("kept in"),
                "{line}"
            );
        }
    }
}
