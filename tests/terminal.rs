//! The progress bar a person at a terminal sees: `script` (util-linux)
//! runs the binary on a pseudo-terminal and keeps what it drew. A file's
//! bar shows the %, the time left and the failed records; a pipe's is a
//! spinner with the counts and no %; log lines are never glued to a frame;
//! the `--create-table` pass over the input has its own bar; and off a
//! terminal there is no bar at all.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A CSV of `rows` good rows with 12 bad ones (one field) after the
/// first `bad_at`.
fn csv(path: &Path, rows: usize, bad_at: usize) {
    let mut text = String::from("id,name\n");
    for i in 0..rows {
        if i == bad_at {
            text.push_str(&"bad\n".repeat(12));
        }
        text.push_str(&format!("{i},name {i}\n"));
    }
    fs::write(path, text).unwrap();
}

/// Runs `command` (a shell command line) on a pseudo-terminal; what the
/// terminal was sent.
fn on_a_terminal(command: &str, dir: &Path) -> String {
    let typescript = dir.join("tty.log");
    let status = std::process::Command::new("script")
        .args(["-qec", command, p(&typescript)])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script (util-linux)");
    assert!(status.code().is_some(), "script was killed");
    let text = String::from_utf8_lossy(&fs::read(&typescript).unwrap()).into_owned();
    // script's own first and last lines.
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("Script ")).collect();
    lines.join("\n")
}

/// `text` without its terminal control sequences (ESC [ … letter).
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A spinner's frame: it starts with one of indicatif's braille dots.
fn is_frame(s: &str) -> bool {
    s.trim_start()
        .chars()
        .next()
        .is_some_and(|c| ('\u{2800}'..='\u{28ff}').contains(&c))
}

/// The frames drawn, each as shown (padding trimmed).
fn frames(text: &str) -> Vec<String> {
    plain(text)
        .split(['\r', '\n'])
        .map(|s| s.trim().to_string())
        .filter(|s| is_frame(s) || s.starts_with("--create-table"))
        .collect()
}

/// The number before ` failed` in a frame.
fn failed_in(frame: &str) -> Option<u64> {
    let before = frame.split(" failed").next()?;
    before.rsplit([' ', ',']).next()?.parse().ok()
}

/// What a run of 300,000 rows (12 bad ones after `bad_at`) from a file,
/// or piped in (`pipe`), to a file drew on a terminal.
fn csv_to_file_on_a_terminal(bad_at: usize, pipe: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    csv(&input, 300_000, bad_at);
    let output = dir.path().join("out.jsonl");
    let command = if pipe {
        let args = csv_to_file("-", p(&output)).join(" ");
        format!("cat {} | {} {args}", p(&input), bin())
    } else {
        let args = csv_to_file(p(&input), p(&output)).join(" ");
        format!("{} {args}", bin())
    };
    on_a_terminal(&command, dir.path())
}

/// Some frame is as `shown` says.
#[track_caller]
fn assert_shown(frames: &[String], shown: impl Fn(&str) -> bool) {
    assert!(frames.iter().any(|f| shown(f)), "not in {frames:#?}");
}

#[test]
fn a_files_bar_shows_the_percent_the_time_left_and_the_failed_records() {
    let text = csv_to_file_on_a_terminal(100_000, false);
    let frames = frames(&text);
    assert!(!frames.is_empty(), "no bar: {text:?}");
    assert_shown(&frames, |f| f.contains("% of ") && f.contains(" left, "));
    assert_shown(&frames, |f| failed_in(f).is_some_and(|n| n > 0));
    // Every log line starts a line of its own: the frame before it was
    // cleared, not left for the line to be glued to.
    let plain = plain(&text);
    let logged: Vec<&str> = plain
        .lines()
        .filter(|l| l.contains("rejected row"))
        .collect();
    assert_eq!(logged.len(), 10, "{plain}");
    for line in logged {
        let shown = line.rsplit('\r').next().unwrap();
        assert!(
            shown.starts_with("20") && !shown.contains(" failed, "),
            "a log line glued to a frame: {line:?}"
        );
    }
    assert!(plain.contains("pipeline-cli: completed with failed records"));
}

#[test]
fn a_pipes_bar_is_a_spinner_with_counts_and_no_percent() {
    let text = csv_to_file_on_a_terminal(1_000, true);
    let frames = frames(&text);
    assert_shown(&frames, |f| f.contains(" read, ") && f.contains("/s"));
    assert_shown(&frames, |f| failed_in(f).is_some_and(|n| n > 0));
    for f in &frames {
        assert!(!f.contains('%') && !f.contains(" left"), "a made-up %: {f}");
    }
}

#[test]
fn the_create_table_pass_over_the_input_has_its_bar() {
    let table = table_name("terminal_sample");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    csv(&input, 20_000, 30_000);
    let url = mysql_url();
    let args = csv_to_mysql(
        p(&input),
        &url,
        &table,
        &["--create-table", "--db-key", "id"],
    )
    .join(" ");
    let text = on_a_terminal(&format!("{} {args}", bin()), dir.path());
    let frames = frames(&text);
    assert!(
        frames
            .iter()
            .any(|f| f.starts_with("--create-table: reading for the column types")),
        "no bar for the first pass: {frames:#?}"
    );
    assert!(frames.iter().any(|f| is_frame(f)), "no bar for the run");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 20_000);
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn off_a_terminal_there_is_no_bar() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    csv(&input, 100_000, 1_000);
    let output = dir.path().join("out.jsonl");
    let out = run(&csv_to_file(p(&input), p(&output)));
    let err = stderr(&out);
    assert!(!err.contains('\r') && frames(&err).is_empty(), "{err}");
    assert!(err.contains("rejected row"), "{err}");
}
