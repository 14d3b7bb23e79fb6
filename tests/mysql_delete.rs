//! `--delete-missing` against the real MariaDB and both Elasticsearch-API
//! servers: the rows whose key a full read no longer sees go, and nothing
//! else; `--max-delete` stops a source that came back nearly empty; the
//! combinations that cannot see every key are refused; a failed record, an
//! interrupted run and a killed run delete nothing, and no key table stays.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use common::*;

/// The key table of `table`.
fn seen(table: &str) -> String {
    format!("{table}__pipeline_seen")
}

fn key_tables(db: &mut Db, table: &str) -> u64 {
    db.count(&format!(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = '{}'",
        seen(table)
    ))
}

/// The table's `id`s, in order.
fn ids(db: &mut Db, table: &str) -> Vec<u64> {
    db.rows(&format!("SELECT id FROM {table} ORDER BY id"))
        .into_iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect()
}

/// A CSV of `id,name` rows.
fn write_csv(path: &Path, ids: impl IntoIterator<Item = u64>) {
    let mut text = String::from("id,name\n");
    for i in ids {
        text.push_str(&format!("{i},name {i}\n"));
    }
    std::fs::write(path, text).unwrap();
}

/// What most tests start from: a connection, the database URL, a CSV path
/// in a temporary folder, table `name` made afresh with `columns` (its key
/// table dropped), and the folder.
fn case(name: &str, columns: &str) -> (Db, String, PathBuf, String, tempfile::TempDir) {
    let mut db = Db::connect();
    let table = table_name(name);
    db.exec(&format!("DROP TABLE IF EXISTS {table}, {}", seen(&table)));
    db.exec(&format!("CREATE TABLE {table} ({columns})"));
    let dir = tempfile::tempdir().unwrap();
    (db, mysql_url(), dir.path().join("in.csv"), table, dir)
}

/// The columns of the `id,name` tables.
const ID_NAME: &str = "id INT PRIMARY KEY, name VARCHAR(20)";

fn make_table(db: &mut Db, table: &str, rows: impl IntoIterator<Item = u64>) {
    db.exec(&format!("DROP TABLE IF EXISTS {table}, {}", seen(table)));
    db.exec(&format!("CREATE TABLE {table} ({ID_NAME})"));
    let values: Vec<String> = rows
        .into_iter()
        .map(|i| format!("({i}, 'name {i}')"))
        .collect();
    if !values.is_empty() {
        db.exec(&format!("INSERT INTO {table} VALUES {}", values.join(", ")));
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn documents_deleted_in_the_index_go_from_the_table_and_nothing_else() {
    let mut db = Db::connect();
    let dburl = mysql_url();
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        let docs: Vec<(String, serde_json::Value)> = (0..300)
            .map(|i| {
                (
                    format!("doc-{i:04}"),
                    json!({"n": i, "name": format!("n{i}")}),
                )
            })
            .collect();
        srv.bulk("docs", &docs);
        let table = table_name(&format!("del_es_{kind:?}").to_lowercase());
        db.exec(&format!("DROP TABLE IF EXISTS {table}, {}", seen(&table)));
        let url = srv.url();
        let dir = tempfile::tempdir().unwrap();
        let textfile = dir.path().join("m.prom");
        let es_run = |workers: &str| {
            run(&[
                "--source-type",
                "elasticsearch",
                "--es-url",
                &url,
                "--es-index",
                "docs",
                "--es-page-size",
                "37",
                "--es-slices",
                "2",
                "--sink-type",
                "mysql",
                "--db-url",
                &dburl,
                "--db-table",
                &table,
                "--create-table",
                "--db-key",
                "_id",
                "--delete-missing",
                "--workers",
                workers,
                "--batch-size",
                "25",
                "--metrics-textfile",
                p(&textfile),
            ])
        };
        // The first run creates the table: nothing to delete.
        let out = es_run("1");
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 300);
        // A row the index never had stays out of it, and goes too.
        db.exec(&format!(
            "INSERT INTO {table} (_id, n, name) VALUES ('stray', -1, 'x')"
        ));
        let mut gone: Vec<String> = Vec::new();
        for (round, workers) in [(0, "3"), (1, "1")] {
            let deleted: Vec<String> = (0..300)
                .filter(|i| i % 29 == 3 + round)
                .map(|i| format!("doc-{i:04}"))
                .collect();
            for id in &deleted {
                let (status, body) = srv.json("DELETE", &format!("/docs/_doc/{id}"), &json!({}));
                assert_eq!(status, 200, "{kind:?}: delete {id}: {body}");
            }
            let (status, _) = srv.json("POST", "/docs/_refresh", &json!({}));
            assert_eq!(status, 200);
            let out = es_run(workers);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(0), "{kind:?}: {err}");
            let expected = deleted.len() as u64 + u64::from(round == 0);
            assert_eq!(summary_number(&err, "deleted"), expected, "{kind:?}: {err}");
            let metrics = std::fs::read_to_string(&textfile).unwrap();
            assert!(
                metrics
                    .lines()
                    .any(|l| l.starts_with("pipeline_records_deleted_total{")
                        && l.ends_with(&format!(" {expected}"))),
                "{kind:?}: {metrics}"
            );
            gone.extend(deleted);
            let left: Vec<String> = db
                .rows(&format!("SELECT _id FROM {table} ORDER BY _id"))
                .into_iter()
                .map(|r| r[0].clone().unwrap())
                .collect();
            let want: Vec<String> = (0..300)
                .map(|i| format!("doc-{i:04}"))
                .filter(|id| !gone.contains(id))
                .collect();
            assert_eq!(left, want, "{kind:?} round {round}");
            assert_eq!(key_tables(&mut db, &table), 0, "{kind:?}");
        }
        db.exec(&format!("DROP TABLE {table}"));
    }
}

#[test]
fn rows_removed_from_a_csv_file_go_from_the_table() {
    // A composite key, and a row whose name changes: it is updated, not deleted.
    let (mut db, dburl, csv, table, _dir) = case(
        "del_csv",
        "region VARCHAR(10), id INT, name VARCHAR(20), PRIMARY KEY (region, id)",
    );
    let rows = |ids: &[u64]| {
        let mut text = String::from("region,id,name\n");
        for i in ids {
            for region in ["eu", "us"] {
                text.push_str(&format!("{region},{i},name {i}\n"));
            }
        }
        text
    };
    let all: Vec<u64> = (1..=100).collect();
    std::fs::write(&csv, rows(&all)).unwrap();
    // --check says what will be deleted by, and sets nothing up.
    let out = run(&csv_to_mysql(
        p(&csv),
        &dburl,
        &table,
        &["--delete-missing", "--check"],
    ));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "--delete-missing: at the end, rows of test.{table} whose key (`region`, `id`) this run did not read are deleted, at most --max-delete 10%"
        )),
        "{said}"
    );
    assert_eq!(key_tables(&mut db, &table), 0);
    for (workers, keep) in [
        ("1", all.clone()),
        ("3", all.iter().copied().filter(|i| i % 17 != 0).collect()),
        (
            "3",
            all.iter()
                .copied()
                .filter(|i| i % 17 != 0 && *i != 50)
                .collect(),
        ),
    ] {
        std::fs::write(&csv, rows(&keep)).unwrap();
        let out = run(&csv_to_mysql(
            p(&csv),
            &dburl,
            &table,
            &[
                "--delete-missing",
                "--workers",
                workers,
                "--batch-size",
                "16",
                "--on-duplicate",
                "update",
            ],
        ));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        let left = db.rows(&format!(
            "SELECT region, id FROM {table} ORDER BY id, region"
        ));
        let want: Vec<Vec<Option<String>>> = keep
            .iter()
            .flat_map(|i| ["eu", "us"].map(|r| vec![Some(r.to_string()), Some(i.to_string())]))
            .collect();
        assert_eq!(left, want, "{err}");
        assert_eq!(key_tables(&mut db, &table), 0);
    }
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn max_delete_refuses_a_source_that_came_back_nearly_empty() {
    let (mut db, dburl, csv, table, _dir) = case("del_max", ID_NAME);
    // 100 rows in the table, 5 in the file: 95 to delete.
    write_csv(&csv, 1..=5);
    for (max, deletes) in [
        (None, false),
        (Some("94"), false),
        (Some("0"), false),
        (Some("94.9%"), false),
        (Some("95"), true),
        (Some("95%"), true),
        (Some("100%"), true),
    ] {
        make_table(&mut db, &table, 1..=100);
        let mut extra = vec!["--delete-missing"];
        if let Some(m) = max {
            extra.extend(["--max-delete", m]);
        }
        let out = run(&csv_to_mysql(p(&csv), &dburl, &table, &extra));
        let err = stderr(&out);
        assert_eq!(key_tables(&mut db, &table), 0, "{max:?}: {err}");
        if deletes {
            assert_eq!(out.status.code(), Some(0), "{max:?}: {err}");
            assert_eq!(ids(&mut db, &table), (1..=5).collect::<Vec<_>>());
            assert_eq!(summary_number(&err, "deleted"), 95, "{err}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{max:?}: {err}");
            let shown = max.unwrap_or("10%");
            assert!(
                err.contains(&format!("--max-delete {shown}: 95 of the 100 rows"))
                    && err.contains("nothing deleted"),
                "{max:?}: {err}"
            );
            assert_eq!(ids(&mut db, &table), (1..=100).collect::<Vec<_>>());
        }
    }
    db.exec(&format!("DROP TABLE {table}"));
}

/// A source with other keys (the wrong file, the wrong index) does not
/// widen the bound by the rows it adds: the percentage is of the rows the
/// table had before the run.
#[test]
fn max_delete_is_a_share_of_the_rows_before_the_run() {
    let (mut db, dburl, csv, table, _dir) = case("del_max_before", ID_NAME);
    make_table(&mut db, &table, 1..=10);
    write_csv(&csv, 100..=199);
    let out = run(&csv_to_mysql(
        p(&csv),
        &dburl,
        &table,
        &["--delete-missing"],
    ));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--max-delete 10%: 10 of the 10 rows"), "{err}");
    let kept = ids(&mut db, &table);
    assert_eq!(&kept[..10], &(1..=10).collect::<Vec<_>>()[..], "{err}");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn combinations_that_cannot_see_every_key_are_refused() {
    let (mut db, dburl, csv, table, dir) = case("del_refused", ID_NAME);
    write_csv(&csv, 1..=3);
    let nokey = table_name("del_nokey");
    make_table(&mut db, &table, 1..=10);
    db.exec(&format!("DROP TABLE IF EXISTS {nokey}"));
    db.exec(&format!("CREATE TABLE {nokey} (id INT, name VARCHAR(20))"));
    db.exec(&format!("INSERT INTO {nokey} VALUES (1, 'a'), (9, 'b')"));
    let csv_args = |t: &str, extra: &[&str]| -> Vec<String> {
        csv_to_mysql(p(&csv), &dburl, t, extra)
            .into_iter()
            .map(String::from)
            .collect()
    };
    let es = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "--source-type",
            "elasticsearch",
            "--es-url",
            "http://127.0.0.1:9",
            "--es-index",
            "docs",
            "--sink-type",
            "mysql",
            "--db-url",
            &dburl,
            "--db-table",
            &table,
            "--delete-missing",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let state = dir.path().join("state.json");
    let mut cases: Vec<(&str, Vec<String>, &[&str])> = vec![
        (
            "--limit",
            csv_args(&table, &["--delete-missing", "--limit", "2"]),
            &["--limit"],
        ),
        (
            "--input-shard",
            csv_args(&table, &["--delete-missing", "--input-shard", "1/2"]),
            &["--input-shard"],
        ),
        (
            "incremental",
            es(&["--es-since-field", "updated", "--state-file", p(&state)]),
            &["--es-since-field", "--state-file"],
        ),
        (
            "a slice",
            es(&["--es-slices", "2", "--es-slice-id", "0"]),
            &["--es-slice-id"],
        ),
        (
            "--no-key",
            csv_args(&table, &["--delete-missing", "--create-table", "--no-key"]),
            &["--no-key"],
        ),
        (
            "a table without a key",
            csv_args(&nokey, &["--delete-missing"]),
            &["no primary or unique key", "--db-key"],
        ),
        (
            "--check on a table without a key",
            csv_args(&nokey, &["--delete-missing", "--check"]),
            &["no primary or unique key", "--db-key"],
        ),
        (
            "--db-key not a column",
            csv_args(&table, &["--delete-missing", "--db-key", "nope"]),
            &["--db-key", "'nope'"],
        ),
        (
            "--max-delete alone",
            csv_args(&table, &["--max-delete", "5"]),
            &["--max-delete", "add --delete-missing"],
        ),
        (
            "--max-delete not a number",
            csv_args(&table, &["--delete-missing", "--max-delete", "lots"]),
            &["--max-delete 'lots'", "10%"],
        ),
        (
            "--max-delete over 100%",
            csv_args(&table, &["--delete-missing", "--max-delete", "150%"]),
            &["--max-delete '150%'"],
        ),
        (
            "the file sink",
            vec![
                "--source-type".into(),
                "csv".into(),
                "--csv-file".into(),
                p(&csv).into(),
                "--sink-type".into(),
                "file".into(),
                "--output-file".into(),
                p(&dir.path().join("out.jsonl")).into(),
                "--delete-missing".into(),
            ],
            &["--delete-missing", "--sink-type file"],
        ),
    ];
    // A table that only has the key table's name is not dropped.
    let other = table_name("del_other");
    db.exec(&format!("DROP TABLE IF EXISTS {other}, {}", seen(&other)));
    db.exec(&format!("CREATE TABLE {other} ({ID_NAME})"));
    db.exec(&format!("CREATE TABLE {} (mine INT)", seen(&other)));
    cases.push((
        "a table of the key table's name",
        csv_args(&other, &["--delete-missing"]),
        &["pipeline-cli did not make", "__pipeline_seen"],
    ));
    for (name, args, words) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("ERROR") || l.starts_with("pipeline-cli:"))
            .collect();
        assert_eq!(lines.len(), 1, "{name}: one line: {err}");
        for w in words {
            assert!(err.contains(w), "{name}: {w} in {err}");
        }
        assert_eq!(ids(&mut db, &table), (1..=10).collect::<Vec<_>>(), "{name}");
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) FROM {nokey}")),
            2,
            "{name}"
        );
        assert_eq!(key_tables(&mut db, &table), 0, "{name}");
    }
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) FROM {}", seen(&other))),
        0
    );
    db.exec(&format!(
        "DROP TABLE {table}, {nokey}, {other}, {}",
        seen(&other)
    ));
}

#[test]
fn a_failed_record_keeps_every_row() {
    let (mut db, dburl, csv, table, dir) = case("del_failed", ID_NAME);
    make_table(&mut db, &table, 1..=20);
    // Row 20 is gone from the file, and row 7's name is too long for its
    // column: its record fails.
    let mut text = String::from("id,name\n");
    for i in 1..=19 {
        let name = if i == 7 {
            "x".repeat(30)
        } else {
            format!("name {i}")
        };
        text.push_str(&format!("{i},{name}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let dead = dir.path().join("dead.jsonl");
    for extra in [
        &["--delete-missing", "--max-delete", "100%"][..],
        &[
            "--delete-missing",
            "--max-delete",
            "100%",
            "--dead-letter",
            p(&dead),
            "--accept-errors",
            "1",
        ][..],
    ] {
        let out = run(&csv_to_mysql(p(&csv), &dburl, &table, extra));
        let err = stderr(&out);
        let accepting = extra.contains(&"--accept-errors");
        assert_eq!(
            out.status.code(),
            Some(if accepting { 0 } else { 1 }),
            "{extra:?}: {err}"
        );
        assert!(err.contains("failed=1"), "{err}");
        assert!(
            err.contains("WARN")
                && err.contains("--delete-missing: nothing deleted: 1 records failed"),
            "{extra:?}: {err}"
        );
        assert_eq!(
            ids(&mut db, &table),
            (1..=20).collect::<Vec<_>>(),
            "{extra:?}"
        );
        assert_eq!(key_tables(&mut db, &table), 0);
    }
    db.exec(&format!("DROP TABLE {table}"));
}

/// Loads `csv` into `table` with `extra`, expecting exit 0; returns stderr.
fn load_ok(csv: &Path, table: &str, extra: &[&str]) -> String {
    let out = run(&csv_to_mysql(p(csv), &mysql_url(), table, extra));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    err
}

/// Waits until the key table of `table` holds `n` keys.
fn wait_for_keys(db: &mut Db, table: &str, n: u64) {
    let start = Instant::now();
    while key_tables(db, table) == 0
        || db.count(&format!("SELECT COUNT(*) FROM {}", seen(table))) < n
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no keys written");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A run with `--delete-missing` reading standard input, once its first
/// rows are written and committed (their keys in the key table).
fn started_run(db: &mut Db, table: &str) -> (Running, std::process::ChildStdin) {
    let dburl = mysql_url();
    let mut child = spawn(&csv_to_mysql(
        "-",
        &dburl,
        table,
        &[
            "--delete-missing",
            "--max-delete",
            "100%",
            "--batch-size",
            "2",
            "--batch-timeout-ms",
            "50",
        ],
    ));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"id,name\n1,a\n2,b\n3,c\n").unwrap();
    stdin.flush().unwrap();
    wait_for_keys(db, table, 3);
    (child, stdin)
}

/// A run reading standard input: the first rows written and committed
/// (their keys in the key table), then stopped by `stop`.
fn stopped_run(
    db: &mut Db,
    table: &str,
    stop: &str,
    extra_check: impl FnOnce(&mut Db),
) -> std::process::Output {
    let (child, stdin) = started_run(db, table);
    extra_check(db);
    signal(&child, stop);
    let out = wait_with_limit(child, Duration::from_secs(30));
    drop(stdin);
    out
}

#[test]
fn an_interrupted_run_deletes_nothing_and_leaves_no_key_table() {
    let (mut db, dburl, csv, table, _dir) = case("del_stopped", ID_NAME);
    make_table(&mut db, &table, 1..=10);
    write_csv(&csv, 1..=10);
    let out = stopped_run(&mut db, &table, "TERM", |db| {
        // A second run on the same table meanwhile is refused (exit 75).
        let other = run(&csv_to_mysql(
            p(&csv),
            &dburl,
            &table,
            &["--delete-missing"],
        ));
        let err = stderr(&other);
        assert_eq!(other.status.code(), Some(75), "{err}");
        assert!(err.contains("another run with --delete-missing"), "{err}");
        assert_eq!(ids(db, &table), (1..=10).collect::<Vec<_>>());
    });
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(
        err.contains("--delete-missing: nothing deleted: the run did not read everything"),
        "{err}"
    );
    assert_eq!(ids(&mut db, &table), (1..=10).collect::<Vec<_>>());
    assert_eq!(key_tables(&mut db, &table), 0, "{err}");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn a_key_table_left_by_a_killed_run_is_dropped_by_the_next() {
    let (mut db, _, csv, table, _dir) = case("del_killed", ID_NAME);
    make_table(&mut db, &table, 1..=10);
    let out = stopped_run(&mut db, &table, "KILL", |_| {});
    assert_eq!(out.status.code(), None, "killed");
    // Its key table stays, with keys 1-3: they must not count for the next run.
    assert_eq!(key_tables(&mut db, &table), 1);
    write_csv(&csv, 4..=10);
    let err = load_ok(&csv, &table, &["--delete-missing", "--max-delete", "3"]);
    assert!(err.contains("the key table of an earlier run"), "{err}");
    assert_eq!(ids(&mut db, &table), (4..=10).collect::<Vec<_>>(), "{err}");
    assert_eq!(summary_number(&err, "deleted"), 3);
    assert_eq!(key_tables(&mut db, &table), 0);
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn a_key_column_widened_during_the_run_widens_in_the_key_table_too() {
    let (mut db, _, csv, table, _dir) = case("del_widen", "code VARCHAR(5) PRIMARY KEY, n INT");
    db.exec(&format!(
        "INSERT INTO {table} VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4), ('e', 5), ('f', 6), ('g', 7), ('h', 8), ('i', 9), ('j', 10)"
    ));
    // 'c' is gone; a key longer than the column comes in a later batch.
    std::fs::write(
        &csv,
        "code,n\na,1\nb,2\nd,4\ne,5\nf,6\ng,7\nh,8\ni,9\nj,10\na-much-longer-code,11\n",
    )
    .unwrap();
    let err = load_ok(
        &csv,
        &table,
        &["--delete-missing", "--widen-columns", "--batch-size", "3"],
    );
    let left: Vec<String> = db
        .rows(&format!("SELECT code FROM {table} ORDER BY code"))
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(
        left,
        [
            "a",
            "a-much-longer-code",
            "b",
            "d",
            "e",
            "f",
            "g",
            "h",
            "i",
            "j"
        ],
        "{err}"
    );
    assert_eq!(summary_number(&err, "deleted"), 1, "{err}");
    assert_eq!(key_tables(&mut db, &table), 0);
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn records_without_a_key_value_keep_every_row() {
    let (mut db, _, csv, table, _dir) = case(
        "del_nokeyvalue",
        "id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20)",
    );
    db.exec(&format!(
        "INSERT INTO {table} (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')"
    ));
    // The server numbers the rows: the records carry no key.
    std::fs::write(&csv, "name\nx\ny\n").unwrap();
    let err = load_ok(&csv, &table, &["--delete-missing", "--max-delete", "100%"]);
    assert!(
        err.contains(
            "--delete-missing: nothing deleted: 2 records had no value for the key column(s) `id`"
        ),
        "{err}"
    );
    assert_eq!(ids(&mut db, &table), vec![1, 2, 3, 4, 5]);
    assert_eq!(key_tables(&mut db, &table), 0);
    db.exec(&format!("DROP TABLE {table}"));
}

/// The MySQL lock a `--delete-missing` run over `test.<table>` holds.
fn delete_lock(table: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("test.{table}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("pcli-{:08x}-delete", h as u32)
}

#[test]
fn a_lost_lock_connection_is_taken_again_before_deleting() {
    let (mut db, _, _, table, _dir) = case("del_lostlock", ID_NAME);
    make_table(&mut db, &table, 1..=10);
    // Once the first rows are in, the lock's connection is idle.
    let (child, mut stdin) = started_run(&mut db, &table);
    let lock = delete_lock(&table);
    let start = Instant::now();
    let holder = loop {
        let r = db.rows(&format!("SELECT IS_USED_LOCK('{lock}')"));
        if let Some(id) = r[0][0].clone() {
            break id;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no lock {lock}");
        std::thread::sleep(Duration::from_millis(50));
    };
    db.exec(&format!("KILL {holder}"));
    stdin.write_all(b"4,d\n").unwrap();
    drop(stdin);
    let out = wait_with_limit(child, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(ids(&mut db, &table), vec![1, 2, 3, 4], "{err}");
    assert_eq!(summary_number(&err, "deleted"), 6, "{err}");
    assert_eq!(key_tables(&mut db, &table), 0);
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn many_missing_rows_go_in_several_statements() {
    let (mut db, _, csv, table, _dir) = case("del_many", ID_NAME);
    make_table(&mut db, &table, 1..=2500);
    write_csv(&csv, (1..=2500).filter(|i| i % 500 == 0));
    let err = load_ok(&csv, &table, &["--delete-missing", "--max-delete", "2495"]);
    assert_eq!(summary_number(&err, "deleted"), 2495, "{err}");
    assert_eq!(ids(&mut db, &table), vec![500, 1000, 1500, 2000, 2500]);
    assert_eq!(key_tables(&mut db, &table), 0);
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn a_table_locked_at_start_is_reported_within_the_db_timeout() {
    let (mut db, _, csv, table, _dir) = case("del_locked", ID_NAME);
    make_table(&mut db, &table, 1..=3);
    write_csv(&csv, 1..=2);
    db.exec(&format!("LOCK TABLES {table} WRITE"));
    let started = Instant::now();
    let child = spawn(&csv_to_mysql(
        p(&csv),
        &mysql_url(),
        &table,
        &["--delete-missing", "--db-timeout", "1s"],
    ));
    let out = wait_with_limit(child, Duration::from_secs(20));
    let err = stderr(&out);
    db.exec("UNLOCK TABLES");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--delete-missing: making the key table")
            && err.contains("3 x --db-timeout 1s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15), "{err}");
    assert_eq!(ids(&mut db, &table), vec![1, 2, 3]);
    db.exec(&format!("DROP TABLE IF EXISTS {table}, {}", seen(&table)));
}
