//! Files loaded once: with `--state-file`, a CSV or NDJSON source records
//! each file it loaded (real path, size, modification time, first 64 KiB)
//! and the next run leaves those out; a changed file is refused, read
//! again or left out (`--changed-files`); `--after-load` moves or deletes
//! the files once their records are committed. Dated outputs: `{date}`,
//! `{time}` and `{run_id}` in the output paths.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A day's file: rows `day*1000 + 0..rows`.
fn day(dir: &Path, day: u64, rows: u64) -> PathBuf {
    let mut csv = String::from("id,day\n");
    for r in 0..rows {
        csv.push_str(&format!("{},{day}\n", day * 1000 + r));
    }
    let path = dir.join(format!("day-{day:02}.csv"));
    fs::write(&path, csv).unwrap();
    path
}

/// The ids of every JSON line in the files of `dir`.
fn ids_in(dir: &Path) -> Vec<u64> {
    let mut ids = Vec::new();
    for f in fs::read_dir(dir).unwrap() {
        for v in read_jsonl(&f.unwrap().path()) {
            ids.push(v["id"].as_str().unwrap().parse().unwrap());
        }
    }
    ids.sort();
    ids
}

fn expect_ids(days: &[u64], rows: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = days
        .iter()
        .flat_map(|d| (0..rows).map(move |r| d * 1000 + r))
        .collect();
    ids.sort();
    ids
}

/// A CSV glob into one JSON-lines file per run (`{run_id}`), with a state
/// file, then `extra`.
fn to_files(glob: &str, out_dir: &Path, state: &Path, extra: &[&str]) -> std::process::Output {
    let out = format!("{}/{{date}}-{{time}}-{{run_id}}.jsonl", out_dir.display());
    let mut args = csv_to_file(glob, &out);
    args.extend(["--state-file", p(state)]);
    args.extend(extra);
    run(&args)
}

#[test]
fn daily_files_are_loaded_once_over_three_runs_into_files() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out, done) = (
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("done"),
    );
    for d in [&input, &out, &done] {
        fs::create_dir(d).unwrap();
    }
    let state = dir.path().join("orders.loaded");
    let glob = format!("{}/day-*.csv", input.display());
    let mut loaded = Vec::new();
    for (n, new_days) in [vec![1, 2], vec![3, 4], vec![5], vec![]]
        .into_iter()
        .enumerate()
    {
        for d in &new_days {
            day(&input, *d, 50);
        }
        let before = fs::read_dir(&out).unwrap().count();
        let res = to_files(&glob, &out, &state, &[]);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(0), "run {n}: {err}");
        assert_eq!(
            summary_number(&err, "read"),
            50 * new_days.len() as u64,
            "run {n}: {err}"
        );
        if !loaded.is_empty() {
            assert!(
                err.contains(&format!("skipped {} file(s) already loaded", loaded.len())),
                "run {n}: {err}"
            );
        }
        loaded.extend(new_days);
        // One new output per run; together, each record exactly once.
        assert_eq!(fs::read_dir(&out).unwrap().count(), before + 1, "run {n}");
        assert_eq!(ids_in(&out), expect_ids(&loaded, 50), "run {n}");
        // Every file is still there (--after-load keep is the default).
        assert_eq!(fs::read_dir(&input).unwrap().count(), loaded.len());
    }
    let state_text = fs::read_to_string(&state).unwrap();
    for d in 1..=5 {
        assert!(
            state_text.contains(&format!("day-{d:02}.csv")),
            "{state_text}"
        );
    }
    // Two runs at once: the state file's lock is held by the first.
    let lock = fs::File::create(dir.path().join("orders.loaded.lock")).unwrap();
    lock.lock().unwrap();
    day(&input, 6, 5);
    let res = to_files(&glob, &out, &state, &[]);
    assert_eq!(res.status.code(), Some(75), "{}", stderr(&res));
    drop(lock);
    let res = to_files(&glob, &out, &state, &[]);
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert_eq!(summary_number(&stderr(&res), "read"), 5);
}

#[test]
fn daily_files_are_loaded_once_over_three_runs_into_mysql() {
    let mut db = Db::connect();
    let table = table_name("files_once");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    // No key: a file loaded twice would show as rows twice.
    db.exec(&format!(
        "CREATE TABLE {table} (id BIGINT NOT NULL, day INT NOT NULL)"
    ));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir(&input).unwrap();
    let state = dir.path().join("orders.loaded");
    let glob = format!("{}/day-*.csv", input.display());
    let url = mysql_url();
    let mut loaded = Vec::new();
    for (n, new_days) in [vec![1, 2], vec![3], vec![4, 5, 6], vec![]]
        .into_iter()
        .enumerate()
    {
        for d in &new_days {
            day(&input, *d, 200);
        }
        let res = run(&csv_to_mysql(
            &glob,
            &url,
            &table,
            &["--state-file", p(&state)],
        ));
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(0), "run {n}: {err}");
        assert_eq!(
            summary_number(&err, "inserted"),
            200 * new_days.len() as u64,
            "{err}"
        );
        loaded.extend(new_days);
        let rows = db.count(&format!("SELECT COUNT(*) FROM {table}"));
        let distinct = db.count(&format!("SELECT COUNT(DISTINCT id) FROM {table}"));
        assert_eq!(
            (rows, distinct),
            (200 * loaded.len() as u64, rows),
            "run {n}"
        );
        for d in &loaded {
            let c = db.count(&format!("SELECT COUNT(*) FROM {table} WHERE day = {d}"));
            assert_eq!(c, 200, "run {n}, day {d}");
        }
    }
    // A failed load records nothing: the table gone, the next run fails,
    // and once it is back the new file is loaded (once).
    day(&input, 7, 10);
    db.exec(&format!("RENAME TABLE {table} TO {table}_away"));
    let res = run(&csv_to_mysql(
        &glob,
        &url,
        &table,
        &["--state-file", p(&state)],
    ));
    assert_ne!(res.status.code(), Some(0), "{}", stderr(&res));
    db.exec(&format!("RENAME TABLE {table}_away TO {table}"));
    let res = run(&csv_to_mysql(
        &glob,
        &url,
        &table,
        &["--state-file", p(&state)],
    ));
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) FROM {table} WHERE day = 7")),
        10
    );
    db.exec(&format!("DROP TABLE {table}"));
}

/// Sets the modification time of `path`.
fn set_mtime(path: &Path, t: std::time::SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn a_changed_file_is_refused_reloaded_or_left_out_as_configured() {
    // (how it changed, --changed-files, exit code, records read, said)
    type Change = fn(&Path);
    let grew: Change = |f| {
        let mut text = fs::read_to_string(f).unwrap();
        text.push_str("999,9\n");
        fs::write(f, text).unwrap();
    };
    // The same size and time, other bytes: only the first block tells.
    let rewritten: Change = |f| {
        let t = fs::metadata(f).unwrap().modified().unwrap();
        let text = fs::read_to_string(f).unwrap().replace("1000,", "1777,");
        fs::write(f, text).unwrap();
        set_mtime(f, t);
    };
    let touched: Change = |f| {
        set_mtime(
            f,
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400),
        );
    };
    type Case = (
        &'static str,
        Change,
        Option<&'static str>,
        i32,
        u64,
        &'static str,
    );
    let cases: [Case; 6] = [
        (
            "grew",
            grew,
            None,
            2,
            0,
            "its size went from 35 to 41 bytes",
        ),
        ("grew", grew, Some("reload"), 0, 5, "read again whole"),
        (
            "grew",
            grew,
            Some("skip"),
            0,
            0,
            "left out 1 file(s) changed since they were loaded",
        ),
        (
            "rewritten",
            rewritten,
            None,
            2,
            0,
            "its first 64 KiB differ",
        ),
        (
            "rewritten",
            rewritten,
            Some("reload"),
            0,
            4,
            "read again whole",
        ),
        (
            "touched",
            touched,
            Some("refuse"),
            2,
            0,
            "its modification time changed",
        ),
    ];
    for (how, change, mode, code, read, says) in cases {
        let case = format!("{how} {mode:?}");
        let dir = tempfile::tempdir().unwrap();
        let (out, state) = (dir.path().join("out"), dir.path().join("s.loaded"));
        fs::create_dir(&out).unwrap();
        let f = day(dir.path(), 1, 4);
        let glob = format!("{}/day-*.csv", dir.path().display());
        let res = to_files(&glob, &out, &state, &[]);
        assert_eq!(res.status.code(), Some(0), "{case}: {}", stderr(&res));
        change(&f);
        let saved = fs::read(&state).unwrap();
        let mut extra = vec![];
        if let Some(m) = mode {
            extra = vec!["--changed-files", m];
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let res = to_files(&glob, &out, &state, &extra);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(code), "{case}: {err}");
        assert!(err.contains(says), "{case}: {err}");
        if code == 2 {
            // Named, with the way on; nothing written, the state as it was.
            assert!(
                err.contains("day-01.csv") && err.contains("--changed-files reload"),
                "{case}: {err}"
            );
            assert_eq!(fs::read_dir(&out).unwrap().count(), 1, "{case}");
            assert_eq!(fs::read(&state).unwrap(), saved, "{case}");
            continue;
        }
        assert_eq!(summary_number(&err, "read"), read, "{case}: {err}");
        // Reloaded: recorded as it is now, so a third run skips it; left
        // out: still changed, left out again.
        let res = to_files(&glob, &out, &state, &extra);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(0), "{case}: {err}");
        assert_eq!(summary_number(&err, "read"), 0, "{case}: {err}");
    }
}

#[test]
fn after_load_moves_or_deletes_the_files_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b, out, done) = (d.join("a"), d.join("b"), d.join("out"), d.join("done"));
    for x in [&a, &b, &out, &done] {
        fs::create_dir(x).unwrap();
    }
    let state = d.join("s.loaded");
    // Two files of one name from two directories, one listed twice, and
    // a file of that name already in the target directory.
    day(&a, 1, 3);
    day(&b, 1, 2);
    fs::write(done.join("day-01.csv"), "kept").unwrap();
    let (fa, fb) = (a.join("day-01.csv"), b.join("day-01.csv"));
    let out_path = format!("{}/{{run_id}}.jsonl", out.display());
    let move_to = format!("move:{}", done.display());
    let args = |files: &[&str], after: &str| -> Vec<String> {
        let mut v: Vec<String> = ["--source-type", "csv", "--csv-file"]
            .map(String::from)
            .to_vec();
        v.extend(files.iter().map(|s| s.to_string()));
        v.extend(
            [
                "--sink-type",
                "file",
                "--output-file",
                &out_path,
                "--state-file",
                p(&state),
                "--after-load",
                after,
            ]
            .map(String::from),
        );
        v
    };
    let go = |v: Vec<String>| run(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let res = go(args(&[p(&fa), p(&fb), p(&fa)], &move_to));
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(0), "{err}");
    assert_eq!(summary_number(&err, "read"), 5, "{err}");
    assert!(err.contains("moved 2 file(s) to"), "{err}");
    assert!(!fa.exists() && !fb.exists());
    let mut names: Vec<String> = fs::read_dir(&done)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["day-01-1.csv", "day-01-2.csv", "day-01.csv"]);
    assert_eq!(fs::read_to_string(done.join("day-01.csv")).unwrap(), "kept");
    let moved: BTreeSet<usize> = ["day-01-1.csv", "day-01-2.csv"]
        .iter()
        .map(|n| fs::read_to_string(done.join(n)).unwrap().lines().count())
        .collect();
    assert_eq!(moved, BTreeSet::from([4, 3]));
    // Moved files leave the record: a new file under the same name is new.
    assert!(!fs::read_to_string(&state).unwrap().contains("day-01"));
    day(&a, 1, 6);
    let res = go(args(&[&format!("{}/*.csv", a.display())], "delete"));
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(0), "{err}");
    assert_eq!(summary_number(&err, "read"), 6, "{err}");
    assert!(err.contains("deleted 1 file(s)"), "{err}");
    assert!(!a.join("day-01.csv").exists());
    // A file loaded (kept) by one run is moved by the next run that asks:
    // as when a run is stopped between recording it and moving it.
    day(&b, 2, 2);
    let glob_b = format!("{}/*.csv", b.display());
    let res = go(args(&[&glob_b], "keep"));
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert!(b.join("day-02.csv").exists());
    day(&b, 3, 2);
    let res = go(args(&[&glob_b], &move_to));
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(0), "{err}");
    assert_eq!(summary_number(&err, "read"), 2, "{err}");
    assert!(
        err.contains("skipped 1 file(s) already loaded; moved 2 file(s)"),
        "{err}"
    );
    assert!(done.join("day-02.csv").exists() && done.join("day-03.csv").exists());
    // The directory now empty: nothing new, a success.
    let res = go(args(&[&glob_b], &move_to));
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert_eq!(summary_number(&stderr(&res), "read"), 0);
    // Every record of every run once.
    assert_eq!(ids_in(&out).len(), 5 + 6 + 2 + 2);
}

#[test]
fn limit_records_nothing_and_a_symlink_is_known_by_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (out, state) = (d.join("out"), d.join("s.loaded"));
    fs::create_dir(&out).unwrap();
    let f1 = day(d, 1, 5);
    let f2 = day(d, 2, 3);
    let latest = d.join("latest.csv");
    std::os::unix::fs::symlink(&f1, &latest).unwrap();
    let res = to_files(p(&latest), &out, &state, &["--limit", "2"]);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(0), "{err}");
    assert!(err.contains("no file is recorded as loaded"), "{err}");
    assert!(!state.exists());
    let res = to_files(p(&latest), &out, &state, &[]);
    assert_eq!(summary_number(&stderr(&res), "read"), 5);
    // The target itself, by its own name: the same file, already loaded.
    let res = to_files(p(&f1), &out, &state, &[]);
    assert_eq!(summary_number(&stderr(&res), "read"), 0, "{}", stderr(&res));
    // The link repointed at another file: that file is new.
    fs::remove_file(&latest).unwrap();
    std::os::unix::fs::symlink(&f2, &latest).unwrap();
    let res = to_files(p(&latest), &out, &state, &[]);
    assert_eq!(summary_number(&stderr(&res), "read"), 3, "{}", stderr(&res));
}

#[test]
fn what_cannot_work_is_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("in");
    let done = input.join("done");
    fs::create_dir_all(&done).unwrap();
    let f = day(&input, 1, 2);
    let link = d.join("link.csv");
    std::os::unix::fs::symlink(&f, &link).unwrap();
    let fifo = d.join("pipe.csv");
    let c = std::ffi::CString::new(p(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let es_state = d.join("es.state");
    fs::write(
        &es_state,
        "{\"field\":\"updated_at\",\"value\":\"2026-01-01\"}\n",
    )
    .unwrap();
    let out = d.join("out-{run_id}.jsonl");
    let state = d.join("s.loaded");
    let (fs_, ls, ps, es, ss) = (p(&f), p(&link), p(&fifo), p(&es_state), p(&state));
    let existing = d.join("earlier.jsonl");
    fs::write(&existing, "{\"id\":1}\n").unwrap();
    let xs = p(&existing);
    let into_input = format!("move:{}/.", input.display());
    let glob_in = format!("{}/*", input.display());
    let glob_all = format!("{}/**/*.csv", input.display());
    let state_in_glob = format!("{}/s.loaded", input.display());
    let move_done = format!("move:{}", done.display());
    let missing = format!("move:{}", d.join("nowhere").display());
    let glob_out = format!("{}/o-*.csv", d.display());
    let out_in = format!("{}/o-{{date}}.csv", d.display());
    let dead_in = format!("{}/dead.csv", input.display());
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "stdin",
            vec!["--csv-file", "-", "--state-file", ss],
            "standard input) is no file",
        ),
        (
            "changed without state",
            vec!["--csv-file", fs_, "--changed-files", "reload"],
            "--changed-files needs --state-file",
        ),
        (
            "after-load without state",
            vec!["--csv-file", fs_, "--after-load", "delete"],
            "--after-load needs --state-file",
        ),
        (
            "bad after-load",
            vec![
                "--csv-file",
                fs_,
                "--state-file",
                ss,
                "--after-load",
                "move",
            ],
            "is not keep, move:DIR or delete",
        ),
        (
            "missing move dir",
            vec![
                "--csv-file",
                fs_,
                "--state-file",
                ss,
                "--after-load",
                &missing,
            ],
            "no such directory; create it first",
        ),
        (
            "bad changed-files",
            vec![
                "--csv-file",
                fs_,
                "--state-file",
                ss,
                "--changed-files",
                "maybe",
            ],
            "invalid value 'maybe'",
        ),
        (
            "limit and move",
            vec![
                "--csv-file",
                fs_,
                "--state-file",
                ss,
                "--limit",
                "1",
                "--after-load",
                "delete",
            ],
            "with --limit they are not all read",
        ),
        (
            "glob matches the state file",
            vec!["--csv-file", &glob_in, "--state-file", &state_in_glob],
            "is matched by --csv-file",
        ),
        (
            "glob matches moved files",
            vec![
                "--csv-file",
                &glob_all,
                "--state-file",
                ss,
                "--after-load",
                &move_done,
            ],
            "they would be read again as new files",
        ),
        (
            "glob matches the output",
            vec![
                "--csv-file",
                &glob_out,
                "--state-file",
                ss,
                "--output-file",
                &out_in,
            ],
            "--output-file '",
        ),
        (
            "glob matches the dead letters",
            vec![
                "--csv-file",
                &glob_in,
                "--state-file",
                ss,
                "--dead-letter",
                &dead_in,
            ],
            "--dead-letter '",
        ),
        (
            "shards share a state",
            vec![
                "--csv-file",
                &glob_in,
                "--state-file",
                ss,
                "--input-shard",
                "0/2",
            ],
            "put {slice} in the path",
        ),
        (
            "symlink moved",
            vec![
                "--csv-file",
                ls,
                "--state-file",
                ss,
                "--after-load",
                "delete",
            ],
            "is a symbolic link",
        ),
        (
            "a pipe",
            vec!["--csv-file", ps, "--state-file", ss],
            "is not a regular file",
        ),
        (
            "another kind of state",
            vec!["--csv-file", fs_, "--state-file", es],
            "holds something else than the files",
        ),
        (
            "dated state",
            vec!["--csv-file", fs_, "--state-file", "s-{date}.loaded"],
            "must be the same file on every run",
        ),
        (
            "a move into the input's own directory, spelt otherwise",
            vec![
                "--csv-file",
                fs_,
                "--state-file",
                ss,
                "--after-load",
                &into_input,
            ],
            "is the directory",
        ),
        (
            "an earlier run's output in the way",
            vec!["--csv-file", fs_, "--state-file", ss, "--output-file", xs],
            "holds an earlier run's records",
        ),
        (
            "misspelt placeholder",
            vec!["--csv-file", fs_, "--output-file", "o-{data}.jsonl"],
            "{data} is not a placeholder",
        ),
        (
            "es flag",
            vec!["--csv-file", fs_, "--es-index", "x"],
            "--es-index is not used by --source-type csv",
        ),
    ];
    for (what, extra, says) in cases {
        let mut args = vec!["--source-type", "csv", "--sink-type", "file"];
        if !extra.contains(&"--output-file") {
            args.extend(["--output-file", p(&out)]);
        }
        args.extend(extra);
        let res = run(&args);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(!state.exists(), "{what}");
        assert!(f.exists(), "{what}");
    }
    // Elasticsearch refuses the file-source flags.
    let res = run(&[
        "--source-type",
        "elasticsearch",
        "--es-url",
        "http://127.0.0.1:9",
        "--es-index",
        "i",
        "--sink-type",
        "file",
        "--output-file",
        "o.jsonl",
        "--after-load",
        "delete",
    ]);
    assert_eq!(res.status.code(), Some(2));
    assert!(
        stderr(&res).contains("--after-load is not used by --source-type elasticsearch"),
        "{}",
        stderr(&res)
    );
    // An output the same on every run is warned of.
    let fixed = d.join("fixed.jsonl");
    let res = run(&[
        "--source-type",
        "csv",
        "--csv-file",
        fs_,
        "--state-file",
        ss,
        "--sink-type",
        "file",
        "--output-file",
        p(&fixed),
    ]);
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert!(
        stderr(&res).contains("is the same file on every run"),
        "{}",
        stderr(&res)
    );
}

/// `YYYY-MM-DD` of the UTC day `secs` falls in.
fn utc_date(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn dated_outputs_of_two_runs_do_not_collide_and_one_run_agrees_on_its_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("in.csv");
    // A bad row, so the dead-letter file is written too.
    fs::write(&input, "id,v\n1,a\nbad,row,extra\n").unwrap();
    let out = format!("{}/orders-{{date}}T{{time}}-{{run_id}}.jsonl", d.display());
    let dead = format!("{}/dead-{{date}}T{{time}}-{{run_id}}.jsonl", d.display());
    let summary = format!("{}/summary-{{date}}T{{time}}-{{run_id}}.json", d.display());
    let (mut stamps, mut times) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let before = now_secs();
        let mut args = csv_to_file(p(&input), &out);
        args.extend(["--dead-letter", &dead, "--summary-json", &summary]);
        let res = run(&args);
        let after = now_secs();
        assert_eq!(res.status.code(), Some(1), "{}", stderr(&res));
        // The one stamp of the run, in each of its three files.
        let mut names: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("orders-"))
            .filter(|n| !stamps.iter().any(|s: &String| n.contains(s.as_str())))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let name = names.remove(0);
        let stamp = name
            .strip_prefix("orders-")
            .and_then(|n| n.strip_suffix(".jsonl"))
            .unwrap()
            .to_string();
        let (date, rest) = stamp.split_once('T').unwrap();
        let (time, run_id) = rest.split_once('-').unwrap();
        // {date} YYYY-MM-DD and {time} HHMMSS in UTC, taken during the run.
        assert!(
            [utc_date(before), utc_date(after)].contains(&date.to_string()),
            "{date}"
        );
        assert_eq!(time.len(), 6, "{time}");
        let secs_of_day: u64 = time[..2].parse::<u64>().unwrap() * 3600
            + time[2..4].parse::<u64>().unwrap() * 60
            + time[4..].parse::<u64>().unwrap();
        assert!(
            (before % 86_400..=after % 86_400).contains(&secs_of_day)
                || after % 86_400 < before % 86_400,
            "{time} not between {before} and {after}"
        );
        // {run_id}: the run's own, as its log lines say.
        assert!(
            run_id.len() == 16 && run_id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{run_id}"
        );
        assert!(
            stderr(&res).contains(&format!("run_id={run_id}")),
            "{}",
            stderr(&res)
        );
        assert!(d.join(format!("dead-{stamp}.jsonl")).exists(), "{stamp}");
        assert!(d.join(format!("summary-{stamp}.json")).exists(), "{stamp}");
        times.push(time.to_string());
        stamps.push(stamp);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    // Two runs, a second apart: two outputs, neither replaced.
    assert_ne!(times[0], times[1]);
    assert_eq!(
        fs::read_dir(d)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("orders-"))
            .count(),
        2
    );
}

#[test]
fn ndjson_files_are_loaded_once_and_check_says_which_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (input, out) = (d.join("in"), d.join("out"));
    fs::create_dir(&input).unwrap();
    fs::create_dir(&out).unwrap();
    let state = d.join("s.loaded");
    let glob = format!("{}/*.jsonl*", input.display());
    let out_path = format!("{}/{{run_id}}.jsonl", out.display());
    let args = |check: bool| {
        let mut v = vec![
            "--source-type",
            "jsonl",
            "--jsonl-file",
            &glob,
            "--state-file",
            p(&state),
            "--sink-type",
            "file",
            "--output-file",
            &out_path,
        ];
        if check {
            v.push("--check");
        }
        run(&v)
    };
    fs::write(input.join("a.jsonl"), "{\"id\":\"1\"}\n{\"id\":\"2\"}\n").unwrap();
    fs::write(input.join("b.jsonl.gz"), gzip(b"{\"id\":\"3\"}\n")).unwrap();
    let res = args(false);
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert_eq!(summary_number(&stderr(&res), "read"), 3);
    fs::write(input.join("c.jsonl"), "{\"id\":\"4\"}\n").unwrap();
    // --check names what the run would skip, and writes nothing.
    let saved = fs::read(&state).unwrap();
    let res = args(true);
    let said = String::from_utf8_lossy(&res.stdout).to_string();
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert!(said.contains("skipped 2 file(s) already loaded"), "{said}");
    assert!(said.contains("c.jsonl"), "{said}");
    assert_eq!(fs::read(&state).unwrap(), saved);
    let res = args(false);
    assert_eq!(summary_number(&stderr(&res), "read"), 1, "{}", stderr(&res));
    assert_eq!(ids_in(&out), [1, 2, 3, 4]);
    let said = String::from_utf8_lossy(&args(true).stdout).to_string();
    assert!(
        said.contains("no file to read that --state-file does not record"),
        "{said}"
    );
    assert!(said.contains("skipped 3 file(s) already loaded"), "{said}");
}

/// A move that fails once the output is committed: the run fails (exit 1,
/// naming the file), its records stay, the file stays recorded, and the
/// next run skips it and moves it.
#[test]
fn a_move_that_fails_after_the_commit_is_done_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (input, out, done) = (d.join("in"), d.join("out"), d.join("done"));
    for x in [&input, &out, &done] {
        fs::create_dir(x).unwrap();
    }
    let state = d.join("s.loaded");
    let f = day(&input, 1, 3);
    let glob = format!("{}/*.csv", input.display());
    // /proc takes no new file: the copy across file systems fails.
    let res = to_files(&glob, &out, &state, &["--after-load", "move:/proc"]);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--after-load could not move or delete 1 loaded file(s)"),
        "{err}"
    );
    assert!(err.contains("day-01.csv"), "{err}");
    assert!(f.exists());
    assert_eq!(ids_in(&out).len(), 3);
    let move_to = format!("move:{}", done.display());
    let res = to_files(&glob, &out, &state, &["--after-load", &move_to]);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(0), "{err}");
    assert_eq!(summary_number(&err, "read"), 0, "{err}");
    assert!(
        err.contains("skipped 1 file(s) already loaded; moved 1 file(s)"),
        "{err}"
    );
    assert!(!f.exists() && done.join("day-01.csv").exists());
    assert_eq!(ids_in(&out).len(), 3);
}
