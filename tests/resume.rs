//! Resumable runs (`--checkpoint PATH`) from CSV and NDJSON files: a run
//! killed (SIGKILL) or stopped (Ctrl+C) again and again at random moments,
//! then run to the end with the same flags, leaves exactly what one
//! uninterrupted run leaves (every row once, even in a table without any
//! key; a JSON-lines output byte for byte); a changed input, a checkpoint of
//! another job and flags a checkpoint cannot work with are refused (exit 2,
//! naming --restart or --checkpoint); `--check` says what a run would resume
//! from; the records skipped are counted (`resumed=`,
//! `pipeline_source_resumed_records`).
//!
//! Timing (debug build, MariaDB on loopback, nothing else running): CSV ->
//! MySQL with `--workers 4 --batch-size 25` loads about 32,000 rows/s, so
//! the 500,000 rows of the kill loop take about 16 s uninterrupted, longer
//! than 20 kill windows of 50-1500 ms (15.5 s on average) add up to; the
//! NDJSON -> file run of 200,000 lines at `--batch-size 20` takes about 4 s
//! against 13 windows of 50-600 ms. A run that completes inside a loop ends
//! it (a run started after it would start over). The kill moments come from
//! a seeded RNG; the seed is printed and `PIPELINE_TEST_SEED` repeats it.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::kill_loop::{
    kill_loop, marked_complete, run_to_end, stop_when_ready, Rng, Stop, Stopped,
};
use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A row as the table gives it back: id, name, amount (as text).
type Row = (u64, String, String);

/// Row `i`'s name: quoted text with commas and quotes, non-ASCII, now and
/// then a line break inside the quotes (a record over two lines); `word`
/// (5 bytes) makes another file of the same size.
fn name(i: u64, word: &str) -> String {
    match i % 7 {
        0 => format!("Smith, {word} {i}"),
        1 => format!("say \"{word}\", {i}"),
        2 => format!("Zoë 東京 {word} {i}"),
        3 if i % 1000 == 3 => format!("two\n{word} lines {i}"),
        _ => format!("{word} {i}"),
    }
}

/// Row `i`'s amount as DECIMAL(12,2) gives it back.
fn amount(i: u64) -> String {
    let sign = if i % 11 == 5 { "-" } else { "" };
    format!("{sign}{}.{:02}", (i * 37) % 1_000_000, i % 100)
}

/// A CSV of `rows` rows (ids 1..=rows) and the rows the table must hold.
/// A file of fewer rows is a prefix of one of more (same `word`).
fn csv_data(rows: u64, word: &str) -> (Vec<u8>, Vec<Row>) {
    assert_eq!(word.len(), 5);
    let mut text = String::with_capacity(rows as usize * 40);
    text.push_str("id,name,amount\n");
    let mut want = Vec::with_capacity(rows as usize);
    for i in 1..=rows {
        let (n, a) = (name(i, word), amount(i));
        text.push_str(&format!("{i},{},{a}\n", csv_field(&n, i % 5 == 0)));
        want.push((i, n, a));
    }
    (text.into_bytes(), want)
}

fn write_csv(path: &Path, rows: u64, word: &str) -> Vec<Row> {
    let (bytes, want) = csv_data(rows, word);
    fs::write(path, bytes).unwrap();
    want
}

/// The test database, waiting at most 60 s for a lock (a transaction a
/// killed run left prepared fails the test instead of hanging it).
fn connect() -> Db {
    let mut db = Db::connect();
    db.exec("SET SESSION lock_wait_timeout = 60, innodb_lock_wait_timeout = 60");
    db
}

/// A table for the rows; `key`: with a primary key on id.
fn make_table(db: &mut Db, table: &str, key: bool) {
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let id = if key {
        "id BIGINT PRIMARY KEY"
    } else {
        "id BIGINT"
    };
    db.exec(&format!(
        "CREATE TABLE {table} ({id}, name VARCHAR(100), amount DECIMAL(12,2))"
    ));
}

/// Every row of the table, sorted.
fn table_rows(db: &mut Db, table: &str) -> Vec<Row> {
    let mut rows: Vec<Row> = db
        .rows(&format!("SELECT id, name, amount FROM {table}"))
        .into_iter()
        .map(|r| {
            let text = |k: usize| r[k].clone().unwrap_or_else(|| "NULL".into());
            (text(0).parse().unwrap(), text(1), text(2))
        })
        .collect();
    rows.sort();
    rows
}

/// `got` is `want` (both sorted): on a difference, how many rows are
/// missing, extra or twice, and the first few of each, not 500,000 rows.
fn assert_same_rows(what: &str, got: &[Row], want: &[Row]) {
    if got == want {
        return;
    }
    let mut want_sorted = want.to_vec();
    want_sorted.sort();
    if got == want_sorted {
        return;
    }
    let twice: Vec<&Row> = got
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| &w[0])
        .collect();
    let got_set: std::collections::HashSet<&Row> = got.iter().collect();
    let want_set: std::collections::HashSet<&Row> = want_sorted.iter().collect();
    let missing: Vec<&&Row> = want_set.difference(&got_set).take(5).collect();
    let extra: Vec<&&Row> = got_set.difference(&want_set).take(5).collect();
    panic!(
        "{what}: the table holds {} rows, the file {}; {} rows twice (e.g. {:?}), \
         {} missing (e.g. {missing:?}), {} not in the file (e.g. {extra:?})",
        got.len(),
        want.len(),
        twice.len(),
        twice.iter().take(5).collect::<Vec<_>>(),
        want_set.difference(&got_set).count(),
        got_set.difference(&want_set).count(),
    );
}

/// The table holds exactly the file's rows, each once.
fn assert_table_is(db: &mut Db, table: &str, want: &[Row], what: &str) {
    let counts = db.rows(&format!("SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}"));
    let n = |k: usize| counts[0][k].as_deref().unwrap().parse::<u64>().unwrap();
    assert_eq!(
        (n(0), n(1)),
        (want.len() as u64, want.len() as u64),
        "{what}: COUNT(*), COUNT(DISTINCT id)"
    );
    assert_same_rows(what, &table_rows(db, table), want);
}

/// CSV -> MySQL arguments with `--checkpoint`, then `extra`.
fn load_args(input: &Path, table: &str, ck: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = csv_to_mysql(p(input), &mysql_url(), table, &[])
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(["--checkpoint".to_string(), p(ck).to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The run ended well (exit 0, nothing failed).
fn assert_completed(out: &std::process::Output, what: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(0), "{what}: {err}");
    assert_eq!(summary_number(&err, "failed"), 0, "{what}: {err}");
    err
}

/// The lines of an error run that report the error: `pipeline-cli: error…`
/// and log lines at ERROR.
fn error_lines(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.starts_with("pipeline-cli: error") || l.contains(" ERROR "))
        .collect()
}

/// A refusal of a checkpoint: exit 2, one error line, naming --restart.
fn assert_refused(out: &std::process::Output, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    let lines = error_lines(&err);
    assert_eq!(lines.len(), 1, "{what}: one error line: {err}");
    assert!(lines[0].contains("--restart"), "{what}: {err}");
}

const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Starts the load and stops it with Ctrl+C once the checkpoint exists and
/// `at_least` rows are in the table; returns the stopped run and the rows
/// then in the table. Fails if the run completes first.
fn interrupt_after_rows(
    db: &mut Db,
    args: &[&str],
    table: &str,
    ck: &Path,
    at_least: u64,
    what: &str,
) -> (Stopped, u64) {
    let count = format!("SELECT COUNT(*) FROM {table}");
    let r = stop_when_ready(args, &[], Stop::Int, RUN_LIMIT, || {
        ck.exists() && db.count(&count) >= at_least
    });
    assert!(
        !r.exited_first,
        "{what}: the run ended ({}) before it could be interrupted: {}",
        r.out.status,
        r.stderr()
    );
    assert!(r.interrupted(), "{what}: {} {}", r.out.status, r.stderr());
    assert!(
        ck.exists(),
        "{what}: no checkpoint left by the interrupted run: {}",
        r.stderr()
    );
    let loaded = db.count(&count);
    (r, loaded)
}

/// The kill loop on a table without any key: 20 SIGKILLs at random moments
/// (50-1500 ms after the start), then a run to the end: the table holds the
/// file's rows, each exactly once.
#[test]
fn csv_to_mysql_keyless_survives_twenty_sigkills() {
    let what = "keyless, 20 SIGKILLs";
    let mut rng = Rng::seeded("csv_to_mysql_keyless_survives_twenty_sigkills");
    let mut db = connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let want = write_csv(&input, 500_000, "plain");
    let table = table_name("resume_keyless");
    make_table(&mut db, &table, false);
    let ck = dir.path().join("ck");
    let args = load_args(
        &input,
        &table,
        &ck,
        &["--workers", "4", "--batch-size", "25"],
    );
    let args = strs(&args);

    let lp = kill_loop(what, &args, &[], &mut rng, &[Stop::Kill; 20], (50, 1500));
    assert!(
        lp.resumed_runs() >= 1,
        "{what}: no run said \"resuming from checkpoint\"; the last one's stderr: {}",
        lp.runs.last().map(Stopped::stderr).unwrap_or_default()
    );
    let out = match lp.completed {
        Some(out) => out,
        None => run_to_end(&args, &[], RUN_LIMIT),
    };
    let err = assert_completed(&out, what);
    assert_table_is(&mut db, &table, &want, what);
    assert!(
        marked_complete(&ck),
        "{what}: the checkpoint is not marked complete: {err}"
    );
    // The same job again (a run killed right after completing is started
    // again by its scheduler): nothing to do, nothing written twice.
    let again = run_to_end(&args, &[], RUN_LIMIT);
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(0), "{what}, again: {err}");
    assert!(err.contains("nothing to do"), "{what}, again: {err}");
    assert_table_is(&mut db, &table, &want, &format!("{what}, again"));
    db.exec(&format!("DROP TABLE {table}"));
}

/// A primary key and `--on-duplicate error`: a row loaded twice would fail.
/// Five stops, SIGINT (Ctrl+C) and SIGKILL in turn.
#[test]
fn csv_to_mysql_on_duplicate_error_survives_kills_and_ctrl_c() {
    let what = "keyed, --on-duplicate error";
    let mut rng = Rng::seeded("csv_to_mysql_on_duplicate_error_survives_kills_and_ctrl_c");
    let mut db = connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let want = write_csv(&input, 200_000, "plain");
    let table = table_name("resume_dup_error");
    make_table(&mut db, &table, true);
    let ck = dir.path().join("ck");
    let dead = dir.path().join("dead.jsonl");
    let args = load_args(
        &input,
        &table,
        &ck,
        &[
            "--workers",
            "4",
            "--batch-size",
            "25",
            "--on-duplicate",
            "error",
            "--dead-letter",
            p(&dead),
        ],
    );
    let args = strs(&args);
    let stops = [Stop::Int, Stop::Kill, Stop::Int, Stop::Kill, Stop::Int];
    let lp = kill_loop(what, &args, &[], &mut rng, &stops, (50, 1500));
    assert!(lp.resumed_runs() >= 1, "{what}: no run resumed");
    let out = match lp.completed {
        Some(out) => out,
        None => run_to_end(&args, &[], RUN_LIMIT),
    };
    let err = assert_completed(&out, what);
    assert_table_is(&mut db, &table, &want, what);
    assert!(
        marked_complete(&ck),
        "{what}: the checkpoint is not marked complete: {err}"
    );
    assert!(
        fs::read_to_string(&dead).unwrap_or_default().is_empty(),
        "{what}: dead letters: {}",
        fs::read_to_string(&dead).unwrap_or_default()
    );
    db.exec(&format!("DROP TABLE {table}"));
}

/// `lines` NDJSON lines with nested objects and arrays.
fn ndjson(lines: u64) -> Vec<u8> {
    let mut out = String::with_capacity(lines as usize * 110);
    for i in 0..lines {
        let doc = serde_json::json!({
            "id": i,
            "name": format!("Zoë \"{i}\", x"),
            "tags": ["a", i % 7],
            "nested": {"k": i, "deep": {"x": null, "y": [i % 3, {"z": "w"}]}},
        });
        out.push_str(&doc.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

/// NDJSON -> JSON-lines file: killed 10 times and stopped with Ctrl+C 3
/// times, then run to the end, the output is byte for byte the one an
/// uninterrupted run writes.
#[test]
fn ndjson_to_jsonl_is_byte_equal_after_kills() {
    let what = "NDJSON -> file";
    let mut rng = Rng::seeded("ndjson_to_jsonl_is_byte_equal_after_kills");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    fs::write(&input, ndjson(200_000)).unwrap();
    let reference = dir.path().join("ref.jsonl");
    let output = dir.path().join("out.jsonl");
    let ck = dir.path().join("ck");
    let flags = ["--workers", "2", "--batch-size", "20"];
    let out = run(&jsonl_to_file(p(&input), p(&reference), &flags));
    assert_completed(&out, "the reference run");

    let mut args = jsonl_to_file(p(&input), p(&output), &flags);
    args.extend(["--checkpoint", p(&ck)]);
    let mut stops = [Stop::Kill; 13];
    // Early in the loop: a run that completes ends it.
    for i in [2, 5, 8] {
        stops[i] = Stop::Int;
    }
    let lp = kill_loop(what, &args, &[], &mut rng, &stops, (50, 600));
    assert!(lp.resumed_runs() >= 1, "{what}: no run resumed");
    let out = match lp.completed {
        Some(out) => out,
        None => run_to_end(&args, &[], RUN_LIMIT),
    };
    let err = assert_completed(&out, what);
    let (got, want) = (fs::read(&output).unwrap(), fs::read(&reference).unwrap());
    if got != want {
        let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
        let line = want[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        panic!(
            "{what}: the output differs from the uninterrupted run's from byte {at} \
             (line {line}); {} bytes against {}",
            got.len(),
            want.len()
        );
    }
    assert!(
        marked_complete(&ck),
        "{what}: the checkpoint is not marked complete: {err}"
    );
    assert!(
        !dir.path().join("out.jsonl.partial").exists(),
        "{what}: .partial left"
    );
}

/// How the input is changed between the interrupted run and the next.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// One row added at the end.
    Appended,
    /// Cut to its first half.
    Truncated,
    /// Replaced (another file renamed over it) by another of the same size.
    Replaced,
    /// Rewritten in place with other content of the same size, its
    /// modification time set back to what it was.
    RewrittenSameMtime,
    /// Only its modification time changed: may be refused or resumed.
    Touched,
}

const CHANGE_ROWS: u64 = 100_000;

/// Changes `input`; returns the rows the file then holds.
fn change(input: &Path, how: Change) -> Vec<Row> {
    let dir = input.parent().unwrap();
    match how {
        Change::Appended => {
            let (bytes, want) = csv_data(CHANGE_ROWS + 1, "plain");
            let old = fs::read(input).unwrap();
            assert!(bytes.starts_with(&old));
            let mut f = fs::OpenOptions::new().append(true).open(input).unwrap();
            std::io::Write::write_all(&mut f, &bytes[old.len()..]).unwrap();
            want
        }
        Change::Truncated => write_csv(input, CHANGE_ROWS / 2, "plain"),
        Change::Replaced => {
            let other = dir.join("other.csv");
            let want = write_csv(&other, CHANGE_ROWS, "other");
            assert_eq!(
                fs::metadata(&other).unwrap().len(),
                fs::metadata(input).unwrap().len()
            );
            fs::rename(&other, input).unwrap();
            want
        }
        Change::RewrittenSameMtime => {
            let before = fs::metadata(input).unwrap();
            let (bytes, want) = csv_data(CHANGE_ROWS, "other");
            assert_eq!(bytes.len() as u64, before.len());
            fs::write(input, bytes).unwrap();
            let f = fs::OpenOptions::new().write(true).open(input).unwrap();
            f.set_modified(before.modified().unwrap()).unwrap();
            want
        }
        Change::Touched => {
            let f = fs::OpenOptions::new().write(true).open(input).unwrap();
            let later = fs::metadata(input).unwrap().modified().unwrap() + Duration::from_secs(60);
            f.set_modified(later).unwrap();
            csv_data(CHANGE_ROWS, "plain").1
        }
    }
}

/// An input changed since the checkpoint: refused (exit 2, naming
/// --restart) without touching the table; `--restart` then loads the new
/// file. A changed modification time alone may be refused or resumed.
#[test]
fn a_changed_input_is_refused() {
    let mut db = connect();
    for how in [
        Change::Appended,
        Change::Truncated,
        Change::Replaced,
        Change::RewrittenSameMtime,
        Change::Touched,
    ] {
        let what = format!("{how:?}");
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        write_csv(&input, CHANGE_ROWS, "plain");
        let table = table_name(&format!("resume_changed_{how:?}").to_lowercase());
        make_table(&mut db, &table, true);
        let ck = dir.path().join("ck");
        let args = load_args(&input, &table, &ck, &["--batch-size", "25"]);
        let args = strs(&args);
        let (_, loaded) = interrupt_after_rows(&mut db, &args, &table, &ck, 2000, &what);
        assert!(loaded > 0 && loaded < CHANGE_ROWS, "{what}: {loaded} rows");
        let before = table_rows(&mut db, &table);

        let want = change(&input, how);
        let out = run_to_end(&args, &[], RUN_LIMIT);
        if matches!(how, Change::Touched) && out.status.code() == Some(0) {
            // Resumed: the content is the same, so the table must be whole.
            assert_completed(&out, &what);
            assert_table_is(&mut db, &table, &want, &what);
            assert!(
                marked_complete(&ck),
                "{what}: the checkpoint is not marked complete"
            );
            db.exec(&format!("DROP TABLE {table}"));
            continue;
        }
        assert_refused(&out, &what);
        assert_eq!(
            table_rows(&mut db, &table),
            before,
            "{what}: the refused run changed the table"
        );

        db.exec(&format!("TRUNCATE TABLE {table}"));
        let mut again = args.clone();
        again.push("--restart");
        let out = run_to_end(&again, &[], RUN_LIMIT);
        let err = assert_completed(&out, &format!("{what}, --restart"));
        assert!(
            !err.contains("resuming from checkpoint"),
            "{what}: --restart resumed: {err}"
        );
        assert_table_is(&mut db, &table, &want, &format!("{what}, --restart"));
        assert!(
            marked_complete(&ck),
            "{what}: the checkpoint is not marked complete"
        );
        db.exec(&format!("DROP TABLE {table}"));
    }
}

/// The checkpoint of a job is refused for another (another table, another
/// input file with the same content, a flag that changes what is read,
/// another output file), the original job still resumes from it; and
/// --checkpoint is refused with the flags it cannot work with.
#[test]
fn a_checkpoint_of_another_job_is_refused() {
    let mut db = connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let want = write_csv(&input, CHANGE_ROWS, "plain");
    let copy = dir.path().join("copy.csv");
    fs::copy(&input, &copy).unwrap();
    let table = table_name("resume_job");
    let other = table_name("resume_job_other");
    make_table(&mut db, &table, false);
    make_table(&mut db, &other, false);
    let ck = dir.path().join("ck");
    let flags = ["--batch-size", "25"];
    let args = load_args(&input, &table, &ck, &flags);
    interrupt_after_rows(&mut db, &strs(&args), &table, &ck, 2000, "the first run");
    let before = table_rows(&mut db, &table);
    let ck_bytes = fs::read(&ck).unwrap();

    let cases: Vec<(&str, Vec<String>)> = vec![
        ("another table", load_args(&input, &other, &ck, &flags)),
        (
            "another input file of the same content",
            load_args(&copy, &table, &ck, &flags),
        ),
        (
            "--csv-infer-types",
            load_args(
                &input,
                &table,
                &ck,
                &["--batch-size", "25", "--csv-infer-types"],
            ),
        ),
    ];
    for (what, args) in cases {
        let out = run_to_end(&strs(&args), &[], RUN_LIMIT);
        assert_refused(&out, what);
        assert_eq!(table_rows(&mut db, &table), before, "{what}: table changed");
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) FROM {other}")),
            0,
            "{what}: the other table was written"
        );
        assert_eq!(
            fs::read(&ck).unwrap(),
            ck_bytes,
            "{what}: checkpoint changed"
        );
    }
    // The job itself still resumes from it.
    let out = run_to_end(&strs(&args), &[], RUN_LIMIT);
    let err = assert_completed(&out, "the job itself");
    assert!(err.contains("resuming from checkpoint"), "{err}");
    assert_table_is(&mut db, &table, &want, "the job itself");
    assert!(marked_complete(&ck));

    // Another output file.
    let nd = dir.path().join("in.jsonl");
    fs::write(&nd, ndjson(100_000)).unwrap();
    let out1 = dir.path().join("out1.jsonl");
    let out2 = dir.path().join("out2.jsonl");
    let fck = dir.path().join("fck");
    let mut a1 = jsonl_to_file(p(&nd), p(&out1), &["--batch-size", "20"]);
    a1.extend(["--checkpoint", p(&fck)]);
    let partial1 = dir.path().join("out1.jsonl.partial");
    let r = stop_when_ready(&a1, &[], Stop::Int, RUN_LIMIT, || {
        fck.exists() && fs::metadata(&partial1).map_or(0, |m| m.len()) > 100_000
    });
    assert!(r.interrupted() && !r.exited_first, "{}", r.stderr());
    let mut a2 = jsonl_to_file(p(&nd), p(&out2), &["--batch-size", "20"]);
    a2.extend(["--checkpoint", p(&fck)]);
    let out = run_to_end(&a2, &[], RUN_LIMIT);
    assert_refused(&out, "another output file");
    assert!(
        !out2.exists() && !dir.path().join("out2.jsonl.partial").exists(),
        "another output file: written"
    );

    db.exec(&format!("DROP TABLE {table}, {other}"));
}

/// `--checkpoint` with a flag it cannot work with: exit 2 (configuration),
/// one line naming --checkpoint, nothing written; the same flags without
/// --checkpoint pass `--check`.
#[test]
fn checkpoint_is_refused_with_flags_it_cannot_work_with() {
    let mut db = connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_csv(&input, 100, "plain");
    let table = table_name("resume_flags");
    make_table(&mut db, &table, true);
    let url = mysql_url();
    let state = dir.path().join("state");
    let stdout_out = "-".to_string();
    // Inputs read once: standard input and a named pipe.
    let fifo = dir.path().join("fifo.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("standard input", csv_to_mysql("-", &url, &table, &[])),
        ("a named pipe", csv_to_mysql(p(&fifo), &url, &table, &[])),
        (
            "--limit",
            csv_to_mysql(p(&input), &url, &table, &["--limit", "10"]),
        ),
        ("--output-file -", csv_to_file(p(&input), &stdout_out)),
        (
            "--load-mode replace",
            csv_to_mysql(p(&input), &url, &table, &["--load-mode", "replace"]),
        ),
        (
            "--load-mode truncate",
            csv_to_mysql(p(&input), &url, &table, &["--load-mode", "truncate"]),
        ),
        (
            "--delete-missing",
            csv_to_mysql(p(&input), &url, &table, &["--delete-missing"]),
        ),
        (
            "--state-file",
            csv_to_mysql(p(&input), &url, &table, &["--state-file", p(&state)]),
        ),
    ];
    let ck = dir.path().join("ck");
    for (what, args) in cases {
        let mut control = args.clone();
        control.push("--check");
        let out = run(&control);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what} without --checkpoint must pass --check: {}",
            stderr(&out)
        );
        let mut refused = args.clone();
        refused.extend(["--checkpoint", p(&ck)]);
        let out = run(&refused);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
        assert!(err.contains("--checkpoint"), "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what}: wrote to stdout");
        assert!(!ck.exists(), "{what}: a checkpoint was written");
        assert!(!state.exists(), "{what}: a state file was written");
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{what}: rows written"
        );
    }
    db.exec(&format!("DROP TABLE {table}"));
}

/// After an interrupted run, `--check` with the same flags says it would
/// resume, and changes neither the checkpoint nor the table; the run then
/// resumes and completes.
#[test]
fn check_says_what_it_would_resume() {
    let mut db = connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let want = write_csv(&input, CHANGE_ROWS, "plain");
    let table = table_name("resume_check");
    make_table(&mut db, &table, false);
    let ck = dir.path().join("ck");
    let args = load_args(&input, &table, &ck, &["--batch-size", "25"]);
    let args = strs(&args);
    interrupt_after_rows(&mut db, &args, &table, &ck, 2000, "check");
    let before = table_rows(&mut db, &table);
    let ck_before = (
        fs::read(&ck).unwrap(),
        fs::metadata(&ck).unwrap().modified().unwrap(),
    );

    let mut check = args.clone();
    check.push("--check");
    let out = run(&check);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.lines()
            .any(|l| l.to_lowercase().contains("resum") && l.chars().any(|c| c.is_ascii_digit())),
        "--check does not say what it would resume from: {said}"
    );
    assert_eq!(table_rows(&mut db, &table), before, "--check wrote rows");
    assert_eq!(
        (
            fs::read(&ck).unwrap(),
            fs::metadata(&ck).unwrap().modified().unwrap()
        ),
        ck_before,
        "--check changed the checkpoint"
    );

    let out = run_to_end(&args, &[], RUN_LIMIT);
    let err = assert_completed(&out, "after --check");
    assert!(err.contains("resuming from checkpoint"), "{err}");
    assert_table_is(&mut db, &table, &want, "after --check");
    assert!(marked_complete(&ck));
    db.exec(&format!("DROP TABLE {table}"));
}

/// The value of a series in a Prometheus textfile.
fn textfile_value(path: &Path, name: &str) -> f64 {
    let text = fs::read_to_string(path).unwrap();
    value(&text, name, &[]).unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// The completing run counts the records it skipped because an earlier run
/// had loaded them: `resumed=` on the summary line and
/// `pipeline_source_resumed_records`, equal to the rows the interrupted run
/// left in the table; read + resumed = the file's rows.
#[test]
fn resumed_records_are_counted() {
    let mut db = connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let want = write_csv(&input, CHANGE_ROWS, "plain");
    let table = table_name("resume_counted");
    make_table(&mut db, &table, false);
    let ck = dir.path().join("ck");
    let textfile = dir.path().join("m.prom");
    let args = load_args(
        &input,
        &table,
        &ck,
        &["--batch-size", "25", "--metrics-textfile", p(&textfile)],
    );
    let args = strs(&args);
    let (first, loaded) = interrupt_after_rows(&mut db, &args, &table, &ck, 5000, "counted");
    assert!(
        !first.resumed(),
        "the first run says it resumed: {}",
        first.stderr()
    );

    let out = run_to_end(&args, &[], RUN_LIMIT);
    let err = assert_completed(&out, "the resumed run");
    let summary = err.lines().last().unwrap_or_default();
    assert!(err.contains("resuming from checkpoint"), "{err}");
    let resumed = summary_number(summary, "resumed");
    let read = summary_number(summary, "read");
    assert!(resumed > 0, "{summary}");
    assert_eq!(read + resumed, CHANGE_ROWS, "{summary}");
    assert_eq!(
        resumed, loaded,
        "resumed= is not the rows the interrupted run loaded: {summary}"
    );
    assert_eq!(summary_number(summary, "inserted"), read, "{summary}");
    assert_eq!(
        textfile_value(&textfile, "pipeline_source_resumed_records"),
        resumed as f64
    );
    assert_table_is(&mut db, &table, &want, "counted");
    db.exec(&format!("DROP TABLE {table}"));
}

/// Bad rows across kills: each is kept in the dead-letter file once, the
/// output equals an uninterrupted run's, and the run that completes the job
/// exits 1 and counts the failures of the earlier runs too.
#[test]
fn bad_rows_are_kept_once_and_counted_across_kills() {
    let what = "CSV with bad rows -> file";
    let mut rng = Rng::seeded("bad_rows_are_kept_once_and_counted_across_kills");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,name,amount\n");
    let mut bad = 0u64;
    for i in 1..=800_000u64 {
        if i % 499 == 0 {
            // A row with a field too many.
            text.push_str(&format!("{i},x,1.00,extra\n"));
            bad += 1;
        } else if i % 211 == 0 {
            text.push_str(&format!("{i},\"two\nlines\",2.00\n"));
        } else {
            text.push_str(&format!("{i},name {i},{}.{:02}\n", i % 1000, i % 100));
        }
    }
    fs::write(&input, text).unwrap();
    let (reference, output) = (dir.path().join("ref.jsonl"), dir.path().join("out.jsonl"));
    let (dl_ref, dl) = (dir.path().join("ref.dl"), dir.path().join("out.dl"));
    let ck = dir.path().join("ck");
    let mut args = csv_to_file(p(&input), p(&reference));
    args.extend(["--batch-size", "50", "--dead-letter", p(&dl_ref)]);
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the reference run: {}",
        stderr(&out)
    );
    assert_eq!(summary_number(&stderr(&out), "failed"), bad);

    let mut args = csv_to_file(p(&input), p(&output));
    args.extend(["--batch-size", "50", "--dead-letter", p(&dl)]);
    args.extend(["--checkpoint", p(&ck), "--checkpoint-every", "20ms"]);
    let lp = kill_loop(what, &args, &[], &mut rng, &[Stop::Kill; 8], (60, 400));
    assert!(lp.resumed_runs() >= 1, "{what}: no run resumed");
    let out = match lp.completed {
        Some(out) => out,
        None => run_to_end(&args, &[], RUN_LIMIT),
    };
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    let earlier = err
        .split("failed earlier=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map_or(0, |n| n.parse::<u64>().unwrap());
    assert_eq!(
        summary_number(&err, "failed") + earlier,
        bad,
        "{what}: failures of this run and the earlier ones: {err}"
    );
    assert_eq!(
        fs::read(&output).unwrap(),
        fs::read(&reference).unwrap(),
        "{what}: output"
    );
    let kept = |path: &Path| {
        let mut rows: Vec<(u64, String)> = read_jsonl(path)
            .iter()
            .map(|e| {
                (
                    e["position"].as_u64().unwrap(),
                    e["raw"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        kept(&dl),
        kept(&dl_ref),
        "{what}: the dead-letter entries, each once"
    );
    assert!(marked_complete(&ck), "{what}: {err}");
}

/// Two runs of one job at once would both go on from the same point: the
/// second exits 75 at once, whatever --lock-file each is given, and the
/// first loads every row once.
#[test]
fn two_runs_of_one_job_at_once_are_one_too_many() {
    let what = "two runs at once";
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let want = write_csv(&input, 300_000, "twice");
    let mut db = connect();
    let table = table_name("resume_twice");
    make_table(&mut db, &table, false);
    let (url, ck) = (mysql_url(), dir.path().join("ck"));
    let (lock_a, lock_b) = (dir.path().join("a.lock"), dir.path().join("b.lock"));
    let args = |lock: &Path| -> Vec<String> {
        let extra = [
            "--batch-size",
            "25",
            "--checkpoint",
            p(&ck),
            "--lock-file",
            p(lock),
        ];
        csv_to_mysql(p(&input), &url, &table, &extra)
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    let first_args = args(&lock_a);
    let first = spawn(&strs(&first_args));
    // The first holds its checkpoint's lock once the checkpoint exists.
    let t0 = std::time::Instant::now();
    while !ck.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what}: no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second_args = args(&lock_b);
    let out = run_to_end(&strs(&second_args), &[], RUN_LIMIT);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(75), "{what}: the second run: {err}");
    assert!(err.contains("ck.lock"), "{what}: {err}");
    let out = wait_with_limit(first, RUN_LIMIT);
    assert_completed(&out, "the first run");
    assert_table_is(&mut db, &table, &want, what);
    db.exec(&format!("DROP TABLE {table}"));
}

/// Values the table refuses (a name too long for its column) across kills:
/// every row is either in the table or in the dead-letter file, once. A
/// MySQL batch records only the rows it wrote, so a run killed after a
/// commit but before the refused rows reached the dead-letter file reads
/// them again rather than losing them.
#[test]
fn rows_the_table_refuses_are_kept_once_across_kills() {
    let what = "NDJSON -> MySQL, values refused";
    let mut rng = Rng::seeded("rows_the_table_refuses_are_kept_once_across_kills");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let rows = 300_000u64;
    let mut text = String::new();
    for i in 1..=rows {
        let name = if i % 20 == 0 {
            "x".repeat(40)
        } else {
            format!("n{i}")
        };
        text.push_str(&format!("{{\"id\":{i},\"name\":\"{name}\",\"v\":{i}}}\n"));
    }
    fs::write(&input, text).unwrap();
    let mut db = connect();
    let table = table_name("resume_refused");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id BIGINT, name VARCHAR(20), v BIGINT)"
    ));
    let (url, ck, dl) = (mysql_url(), dir.path().join("ck"), dir.path().join("dl"));
    let args: Vec<String> = [
        "--source-type",
        "jsonl",
        "--jsonl-file",
        p(&input),
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        &table,
        "--batch-size",
        "2000",
        "--workers",
        "2",
        "--dead-letter",
        p(&dl),
        "--checkpoint",
        p(&ck),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let lp = kill_loop(
        what,
        &strs(&args),
        &[],
        &mut rng,
        &[Stop::Kill; 10],
        (150, 900),
    );
    let out = match lp.completed {
        Some(out) => out,
        None => run_to_end(&strs(&args), &[], RUN_LIMIT),
    };
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    let in_table = db.count(&format!("SELECT COUNT(*) FROM {table}"));
    let distinct = db.count(&format!("SELECT COUNT(DISTINCT id) FROM {table}"));
    let kept: Vec<u64> = read_jsonl(&dl)
        .iter()
        .map(|e| e["record"]["id"].as_u64().expect("an id"))
        .collect();
    let kept_set: std::collections::BTreeSet<u64> = kept.iter().copied().collect();
    assert_eq!(in_table, distinct, "{what}: rows twice in the table");
    assert_eq!(
        kept.len(),
        kept_set.len(),
        "{what}: entries twice in the dead-letter file"
    );
    assert_eq!(
        kept_set.len() as u64,
        rows / 20,
        "{what}: refused rows kept"
    );
    assert!(
        kept_set.iter().all(|id| id % 20 == 0),
        "{what}: {kept_set:?}"
    );
    assert_eq!(
        in_table + kept.len() as u64,
        rows,
        "{what}: every row once: {err}"
    );
    db.exec(&format!("DROP TABLE {table}"));
}

/// What a completed job's checkpoint makes of later runs: the same job has
/// nothing to do and exits as the job did (1: records failed); its input
/// touched is refused; a JSON-lines job killed after its output was put in
/// place (its `.partial` renamed) but before its checkpoint said so is
/// found complete; a --max-errors budget spent by earlier runs stays spent.
#[test]
fn a_completed_or_spent_job_is_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,name,amount\n");
    for i in 1..=200_000u64 {
        match i % 400 {
            0 => text.push_str(&format!("{i},bad,1.00,extra\n")),
            _ => text.push_str(&format!("{i},name {i},{}.00\n", i % 100)),
        }
    }
    fs::write(&input, text).unwrap();
    let (out_file, ck, dl) = (
        dir.path().join("out.jsonl"),
        dir.path().join("ck"),
        dir.path().join("dl"),
    );
    let mut args = csv_to_file(p(&input), p(&out_file));
    args.extend(["--checkpoint", p(&ck), "--dead-letter", p(&dl)]);
    let first = run(&args);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let bytes = fs::read(&out_file).unwrap();
    let again = run(&args);
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(1), "the same job again: {err}");
    assert!(
        err.contains("nothing to do") && err.contains("failed earlier=500"),
        "{err}"
    );
    assert_eq!(
        fs::read(&out_file).unwrap(),
        bytes,
        "the output was written again"
    );
    assert_eq!(read_jsonl(&dl).len(), 500, "the dead-letter file grew");

    // Touched: the same size and head, maybe new rows: not guessed.
    let f = fs::File::options().write(true).open(&input).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    let touched = run(&args);
    let err = stderr(&touched);
    assert_eq!(touched.status.code(), Some(2), "touched: {err}");
    assert!(err.contains("--restart"), "{err}");

    // Killed after the rename, before the checkpoint said so: stopped
    // part way, then its .partial put in place by hand.
    let mut args = csv_to_file(p(&input), p(&out_file));
    args.extend(["--checkpoint", p(&ck), "--restart", "--batch-size", "50"]);
    args.extend(["--checkpoint-every", "20ms"]);
    fs::remove_file(&out_file).unwrap();
    let partial = dir.path().join("out.jsonl.partial");
    let r = stop_when_ready(&args, &[], Stop::Kill, RUN_LIMIT, || {
        fs::metadata(&partial).map_or(0, |m| m.len()) > 1_000_000
    });
    assert!(
        r.interrupted(),
        "the run ended before it could be killed: {}",
        r.stderr()
    );
    fs::rename(&partial, &out_file).unwrap();
    args.retain(|a| *a != "--restart");
    let done = run(&args);
    let err = stderr(&done);
    assert!(
        err.contains("nothing to do") && err.contains("is complete"),
        "{err}"
    );

    // --max-errors spent by the first run: the next reads nothing.
    fs::remove_file(&out_file).unwrap();
    let mut args = csv_to_file(p(&input), p(&out_file));
    args.extend(["--checkpoint", p(&ck), "--restart", "--max-errors", "10"]);
    let spent = run(&args);
    assert_eq!(summary_number(&stderr(&spent), "failed"), 10);
    args.retain(|a| *a != "--restart");
    let again = run(&args);
    let err = stderr(&again);
    assert_ne!(again.status.code(), Some(0), "{err}");
    assert_eq!(
        summary_number(&err, "read"),
        0,
        "a spent budget read on: {err}"
    );
}

/// An input given as a link to a regular file is read again like the file:
/// a run through the link resumes, every row once.
#[test]
fn an_input_given_as_a_link_resumes() {
    let what = "CSV through a link";
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let want = write_csv(&input, 200_000, "links");
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let mut db = connect();
    let table = table_name("resume_link");
    make_table(&mut db, &table, false);
    let ck = dir.path().join("ck");
    let args = load_args(&link, &table, &ck, &["--batch-size", "25"]);
    let count = format!("SELECT COUNT(*) FROM {table}");
    let r = stop_when_ready(&strs(&args), &[], Stop::Kill, RUN_LIMIT, || {
        ck.exists() && db.count(&count) >= 2_000
    });
    assert!(r.interrupted(), "{what}: not killed: {}", r.stderr());
    let out = run_to_end(&strs(&args), &[], RUN_LIMIT);
    let err = assert_completed(&out, what);
    assert!(err.contains("resuming from checkpoint"), "{what}: {err}");
    assert_table_is(&mut db, &table, &want, what);
    db.exec(&format!("DROP TABLE {table}"));
}
