//! `--load-mode replace` and `truncate` against the real MariaDB: a table
//! replaced by a swapped shadow is never seen empty or half loaded, a run
//! killed or interrupted mid-way leaves it as it was (and the next run
//! cleans up what a killed one left), truncate empties then loads, and the
//! combinations that cannot work are refused before anything changes.

mod common;

use std::io::Write;
use std::process::{Child, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

const SHADOW: &str = "__pipeline_new";
const OLD: &str = "__pipeline_old";

fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

/// A table `id INT PRIMARY KEY, v VARCHAR(40)` holding `rows` rows `old`.
fn old_table(db: &mut Db, table: &str, rows: u64) {
    for t in [
        table.to_string(),
        format!("{table}{SHADOW}"),
        format!("{table}{OLD}"),
    ] {
        db.exec(&format!("DROP TABLE IF EXISTS {t}"));
    }
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(40))"
    ));
    db.exec(&format!(
        "INSERT INTO {table} SELECT seq, 'old' FROM seq_1_to_{rows}"
    ));
}

/// A connection, table `name` (unique to the process) holding `rows` old
/// rows, and a folder for inputs.
fn start(name: &str, rows: u64) -> (Db, String, tempfile::TempDir) {
    let mut db = Db::connect();
    let table = table_name(name);
    old_table(&mut db, &table, rows);
    (db, table, tempfile::tempdir().unwrap())
}

fn exists(db: &mut Db, table: &str) -> bool {
    db.count(&format!(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
    )) == 1
}

/// The table still holds exactly the `rows` old rows.
fn assert_old(db: &mut Db, table: &str, rows: u64) {
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) FROM {table} WHERE v = 'old'")),
        rows
    );
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), rows);
}

/// The table holds exactly `rows` new rows, no shadow or old table is
/// left; then it is dropped.
fn assert_new_and_drop(db: &mut Db, table: &str, rows: u64) {
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) FROM {table} WHERE v = 'new'")),
        rows
    );
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), rows);
    assert!(!exists(db, &format!("{table}{SHADOW}")) && !exists(db, &format!("{table}{OLD}")));
    db.exec(&format!("DROP TABLE {table}"));
}

/// A CSV of `rows` rows `id,new` (ids from 1).
fn new_csv(dir: &std::path::Path, rows: u64) -> std::path::PathBuf {
    let path = dir.join(format!("new_{rows}.csv"));
    let mut text = String::from("id,v\n");
    for i in 1..=rows {
        text.push_str(&format!("{i},new\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A `--load-mode MODE` run of the CSV file `input` into `table`.
fn load(input: &str, table: &str, mode: &str, extra: &[&str]) -> Output {
    let url = mysql_url();
    let mut args = mysql_args(input, &url, table, &["--load-mode", mode]);
    args.extend(extra);
    run(&args)
}

/// A replace run of `table` from standard input, batches flushed every 20 ms.
fn replace_from_stdin(table: &str, extra: &[&str]) -> Running {
    let url = mysql_url();
    let mut args = mysql_args("-", &url, table, &["--load-mode", "replace"]);
    args.extend(["--batch-timeout-ms", "20"]);
    args.extend(extra);
    spawn(&args)
}

fn mysql_args<'a>(input: &'a str, url: &'a str, table: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = csv_to_mysql(input, url, table, &["--metrics-linger", "0"]);
    args.extend(extra);
    args
}

/// Feeds `id,new` rows into the child's stdin, `per_chunk` at a time with
/// `pause` between chunks, up to `total` rows (or until the child stops
/// reading); then closes it.
fn feed(child: &mut Child, per_chunk: u64, pause: Duration, total: u64) -> JoinHandle<u64> {
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        if stdin.write_all(b"id,v\n").is_err() {
            return 0;
        }
        let mut i = 0u64;
        while i < total {
            let mut chunk = String::new();
            for _ in 0..per_chunk {
                i += 1;
                chunk.push_str(&format!("{i},new\n"));
            }
            if stdin.write_all(chunk.as_bytes()).is_err() {
                return i;
            }
            std::thread::sleep(pause);
        }
        i
    })
}

/// Waits until table `shadow` exists and holds at least `n` rows, failing
/// after 60 s.
fn wait_for_rows(db: &mut Db, shadow: &str, n: u64) {
    let t = Instant::now();
    while !(exists(db, shadow) && db.count(&format!("SELECT COUNT(*) FROM {shadow}")) >= n) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{shadow} never held {n} rows"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_reader_sees_the_old_table_or_the_new_one_never_an_empty_or_partial_one() {
    let mut db = Db::connect();
    let table = table_name("replace_read");
    old_table(&mut db, &table, 3000);
    let stop = Arc::new(AtomicBool::new(false));
    // A client counting the rows every 2 ms, and whether the shadow was
    // being loaded at the time.
    let reader = {
        let (stop, table) = (stop.clone(), table.clone());
        std::thread::spawn(move || {
            let mut db = Db::connect();
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let n = db.count(&format!("SELECT COUNT(*) FROM {table}"));
                let loading = db.count(&format!(
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}{SHADOW}'"
                ));
                seen.push((n, loading == 1));
                std::thread::sleep(Duration::from_millis(2));
            }
            seen
        })
    };
    let mut child = replace_from_stdin(&table, &["--workers", "4", "--batch-size", "200"]);
    let feeder = feed(&mut child, 500, Duration::from_millis(60), 20_000);
    let out = wait_with_limit(child, Duration::from_secs(120));
    assert_eq!(feeder.join().unwrap(), 20_000);
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "replaced table test.{table} (20000 rows; the previous table dropped)"
        )),
        "{err}"
    );
    let odd: Vec<_> = seen
        .iter()
        .filter(|(n, _)| *n != 3000 && *n != 20_000)
        .collect();
    assert!(
        odd.is_empty(),
        "counts other than the old or the new table's: {odd:?}"
    );
    // The reader did read while the shadow was filling, and after the swap.
    assert!(
        seen.iter().any(|&(n, loading)| n == 3000 && loading),
        "{:?}",
        &seen[..seen.len().min(20)]
    );
    assert_eq!(seen.last().unwrap().0, 20_000);
    // Never back to the old count once the new one showed.
    let first_new = seen.iter().position(|(n, _)| *n == 20_000).unwrap();
    assert!(seen[first_new..].iter().all(|(n, _)| *n == 20_000));
    assert_new_and_drop(&mut db, &table, 20_000);
}

/// A replace run reading a slow standard input, stopped by `sig` once its
/// shadow holds rows: the table is as it was.
fn stop_mid_replace(sig: &str) -> (Db, String, Output) {
    let mut db = Db::connect();
    let table = table_name(&format!("replace_{}", sig.to_lowercase()));
    old_table(&mut db, &table, 100);
    let mut child = replace_from_stdin(&table, &["--batch-size", "100"]);
    let feeder = feed(&mut child, 200, Duration::from_millis(20), 50_000_000);
    wait_for_rows(&mut db, &format!("{table}{SHADOW}"), 500);
    if sig == "INT" {
        // Meanwhile, a second replace run of the same table is refused.
        let dir = tempfile::tempdir().unwrap();
        let small = new_csv(dir.path(), 3);
        let second = load(p(&small), &table, "replace", &[]);
        let e = stderr(&second);
        assert_eq!(second.status.code(), Some(75), "{e}");
        assert!(e.contains("another run is replacing"), "{e}");
    }
    assert_old(&mut db, &table, 100);
    signal(&child, sig);
    let out = wait_with_limit(child, Duration::from_secs(60));
    let _ = feeder.join();
    assert_old(&mut db, &table, 100);
    assert!(!exists(&mut db, &format!("{table}{OLD}")));
    (db, table, out)
}

#[test]
fn ctrl_c_mid_replace_leaves_the_table_and_drops_the_shadow() {
    let (mut db, table, out) = stop_mid_replace("INT");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains(&format!("table test.{table} left as it was")),
        "{err}"
    );
    assert!(!exists(&mut db, &format!("{table}{SHADOW}")), "{err}");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn a_killed_replace_leaves_the_table_and_the_next_run_drops_its_shadow() {
    let (mut db, table, out) = stop_mid_replace("KILL");
    assert_eq!(out.status.code(), None);
    // What the killed run left: its shadow.
    assert!(exists(&mut db, &format!("{table}{SHADOW}")));
    let dir = tempfile::tempdir().unwrap();
    let input = new_csv(dir.path(), 250);
    let next = load(p(&input), &table, "replace", &[]);
    let err = stderr(&next);
    assert_eq!(next.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "dropping test.{table}{SHADOW}, left by an earlier"
        )),
        "{err}"
    );
    assert_new_and_drop(&mut db, &table, 250);
}

#[test]
fn a_replace_stopped_by_max_errors_leaves_the_table() {
    let (mut db, table, dir) = start("replace_maxerr", 40);
    let input = dir.path().join("bad.csv");
    let mut text = String::from("id,v\n");
    for i in 1..=2000 {
        text.push_str(&if i % 10 == 0 {
            format!("x{i},bad\n")
        } else {
            format!("{i},new\n")
        });
    }
    std::fs::write(&input, text).unwrap();
    let out = load(
        p(&input),
        &table,
        "replace",
        &["--max-errors", "3", "--batch-size", "50"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_old(&mut db, &table, 40);
    assert!(!exists(&mut db, &format!("{table}{SHADOW}")), "{err}");
    // A run that fails after its shadow was made, before reading (a
    // worker's connection is refused: the user may hold 3), drops it too.
    let user = format!("replace_{}", std::process::id());
    db.exec(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    db.exec(&format!(
        "CREATE USER '{user}'@'%' WITH MAX_USER_CONNECTIONS 3"
    ));
    db.exec(&format!("GRANT ALL ON test.* TO '{user}'@'%'"));
    let url = mysql_url().replacen("//root@", &format!("//{user}@"), 1);
    let mut args = mysql_args(p(&input), &url, &table, &["--load-mode", "replace"]);
    args.extend(["--workers", "3"]);
    let out = run(&args);
    db.exec(&format!("DROP USER '{user}'@'%'"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("max_user_connections") && err.contains(&format!("{table}{SHADOW} dropped")),
        "{err}"
    );
    assert_old(&mut db, &table, 40);
    assert!(!exists(&mut db, &format!("{table}{SHADOW}")), "{err}");
    db.exec(&format!("DROP TABLE {table}"));
}

/// Records that fail (kept in the dead-letter file) would be missing from
/// the new table: it is swapped in only when --accept-errors allows them.
#[test]
fn a_replace_with_failed_records_swaps_only_within_accept_errors() {
    let (mut db, table, dir) = start("replace_failed", 40);
    let input = dir.path().join("one_bad.csv");
    let mut text = String::from("id,v\n");
    for i in 1..=100 {
        text.push_str(&if i == 50 {
            format!("x{i},new\n")
        } else {
            format!("{i},new\n")
        });
    }
    std::fs::write(&input, text).unwrap();
    let dead = dir.path().join("dead.jsonl");
    let out = load(p(&input), &table, "replace", &["--dead-letter", p(&dead)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_old(&mut db, &table, 40);
    assert!(!exists(&mut db, &format!("{table}{SHADOW}")), "{err}");
    assert!(err.contains("left as it was"), "{err}");
    assert_eq!(read_jsonl(&dead).len(), 1);

    let out = load(p(&input), &table, "replace", &["--accept-errors", "1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_new_and_drop(&mut db, &table, 99);
}

/// A source that came back (nearly) empty does not empty the table: a new
/// table more than --max-delete rows smaller is not swapped in.
#[test]
fn a_replace_that_would_shrink_the_table_past_max_delete_leaves_it() {
    let (mut db, table, dir) = start("replace_shrink", 40);
    let header_only = dir.path().join("empty.csv");
    std::fs::write(&header_only, "id,v\n").unwrap();
    let two = new_csv(dir.path(), 2);
    for (input, extra, code) in [
        (p(&header_only), vec![], 1),
        (p(&two), vec![], 1),
        (p(&two), vec!["--max-delete", "37"], 1),
        (p(&two), vec!["--max-delete", "38"], 0),
    ] {
        let out = load(input, &table, "replace", &extra);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{extra:?}: {err}");
        assert!(!exists(&mut db, &format!("{table}{SHADOW}")), "{err}");
        if code == 1 {
            assert!(
                err.contains("--max-delete") && err.contains("left as it was"),
                "{err}"
            );
            assert_old(&mut db, &table, 40);
        }
    }
    assert_new_and_drop(&mut db, &table, 2);
}

#[test]
fn replace_creates_a_missing_table_through_the_shadow_and_check_creates_nothing() {
    let mut db = Db::connect();
    let table = table_name("replace_create");
    for t in [table.clone(), format!("{table}{SHADOW}")] {
        db.exec(&format!("DROP TABLE IF EXISTS {t}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = new_csv(dir.path(), 30);
    let url = mysql_url();
    let flags = ["--load-mode", "replace", "--create-table", "--db-key", "id"];
    let mut check = flags.to_vec();
    check.push("--check");
    let out = run(&mysql_args(p(&input), &url, &table, &check));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "--load-mode replace: records go into test.{table}{SHADOW} (created by --create-table)"
        )),
        "{text}"
    );
    assert!(!exists(&mut db, &table) && !exists(&mut db, &format!("{table}{SHADOW}")));
    let out = run(&mysql_args(p(&input), &url, &table, &flags));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_new_and_drop(&mut db, &table, 30);
}

#[test]
fn truncate_empties_the_table_then_loads_but_not_when_the_source_cannot_open() {
    let (mut db, table, dir) = start("truncate", 500);
    let missing = dir.path().join("missing.csv");
    let out = load(p(&missing), &table, "truncate", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_old(&mut db, &table, 500);
    let input = new_csv(dir.path(), 10);
    let out = load(p(&input), &table, "truncate", &["--check"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("--load-mode truncate: test."), "{text}");
    assert_old(&mut db, &table, 500);
    let out = load(p(&input), &table, "truncate", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("emptied first: --load-mode truncate"), "{err}");
    assert_new_and_drop(&mut db, &table, 10);
}

#[test]
fn combinations_that_cannot_work_are_refused_before_anything_changes() {
    let (mut db, table, dir) = start("replace_refused", 7);
    let input = new_csv(dir.path(), 5);
    let input2 = new_csv(dir.path(), 6);
    let (i1, i2) = (p(&input), p(&input2));
    let url = mysql_url();
    let long = "t".repeat(51);
    let es = |extra: &[&'static str]| {
        let mut a = vec![
            "--source-type",
            "elasticsearch",
            "--es-url",
            "http://127.0.0.1:9",
            "--es-index",
            "x",
            "--sink-type",
            "mysql",
            "--db-name",
            "test",
        ];
        a.extend(extra);
        a
    };
    for mode in ["replace", "truncate"] {
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (mysql_args(i1, &url, &table, &["--limit", "3"]), "--limit"),
            (
                mysql_args(i1, &url, &table, &["--delete-missing"]),
                "--delete-missing",
            ),
            (
                mysql_args(
                    i1,
                    &url,
                    &table,
                    &["--csv-file", i2, "--input-shard", "1/2"],
                ),
                "--input-shard",
            ),
            (
                es(&[
                    "--db-table",
                    "t",
                    "--es-since-field",
                    "ts",
                    "--state-file",
                    "s.json",
                ]),
                "--es-since-field",
            ),
            (
                es(&["--db-table", "t", "--es-slices", "2", "--es-slice-id", "0"]),
                "--es-slice-id",
            ),
        ];
        for (mut args, flag) in cases {
            args.extend(["--load-mode", mode]);
            let out = run(&args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{mode} {flag}: {err}");
            assert!(
                err.contains(&format!("--load-mode {mode}"))
                    && err.contains(flag)
                    && err.trim().lines().count() == 1,
                "{mode} {flag}: {err}"
            );
        }
    }
    let out = load(i1, &long, "replace", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("64 characters"), "{err}");
    // What the server has: a trigger (replace would lose it), a foreign
    // key referencing the table (both), a view given as the table.
    let child = format!("{table}_child");
    let view = format!("{table}_view");
    db.exec(&format!("DROP TABLE IF EXISTS {child}"));
    db.exec(&format!(
        "CREATE OR REPLACE VIEW {view} AS SELECT * FROM {table}"
    ));
    db.exec(&format!(
        "CREATE TRIGGER {table}_tr BEFORE INSERT ON {table} FOR EACH ROW SET NEW.v = NEW.v"
    ));
    let server_cases: Vec<(&str, &str, String)> = vec![
        ("replace", table.as_str(), "trigger".into()),
        ("replace", view.as_str(), "is a view".into()),
        ("truncate", view.as_str(), "is a view".into()),
    ];
    let run_case = |mode: &str, target: &str| load(i1, target, mode, &[]);
    for (mode, target, why) in &server_cases {
        let out = run_case(mode, target);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{mode} {target}: {err}");
        assert!(
            err.contains(why.as_str()) && err.contains("--load-mode"),
            "{mode} {target}: {err}"
        );
        assert_old(&mut db, &table, 7);
        assert!(!exists(&mut db, &format!("{target}{SHADOW}")));
    }
    db.exec(&format!("DROP TRIGGER {table}_tr"));
    db.exec(&format!(
        "CREATE TABLE {child} (id INT PRIMARY KEY, parent INT, FOREIGN KEY (parent) REFERENCES {table}(id))"
    ));
    for mode in ["replace", "truncate"] {
        let out = run_case(mode, &table);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{mode}: {err}");
        assert!(
            err.contains("referenced by the foreign key") && err.contains(&child),
            "{mode}: {err}"
        );
        assert_old(&mut db, &table, 7);
        assert!(!exists(&mut db, &format!("{table}{SHADOW}")));
    }
    // --check says what a replace would do and creates nothing.
    db.exec(&format!("DROP TABLE {child}"));
    let out = load(i1, &table, "replace", &["--check"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("created LIKE test.{table}")),
        "{text}"
    );
    assert!(!exists(&mut db, &format!("{table}{SHADOW}")));
    assert_old(&mut db, &table, 7);
    db.exec(&format!("DROP VIEW {view}"));
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn a_swap_kept_waiting_by_a_reader_past_db_timeout_leaves_the_table() {
    let (mut db, table, dir) = start("replace_wait", 20);
    let input = new_csv(dir.path(), 5);
    // An open transaction that has read the table holds it (metadata lock)
    // until it ends: the RENAME has to wait for it.
    let mut reader = Db::connect();
    reader.exec("BEGIN");
    assert_eq!(reader.count(&format!("SELECT COUNT(*) FROM {table}")), 20);
    let t = Instant::now();
    let out = load(p(&input), &table, "replace", &["--db-timeout", "2s"]);
    let took = t.elapsed();
    reader.exec("COMMIT");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("left as it was"), "{err}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // Nothing happens later either.
    std::thread::sleep(Duration::from_secs(3));
    assert_old(&mut db, &table, 20);
    assert!(!exists(&mut db, &format!("{table}{SHADOW}")), "{err}");
    assert!(!exists(&mut db, &format!("{table}{OLD}")), "{err}");
    db.exec(&format!("DROP TABLE {table}"));
}
