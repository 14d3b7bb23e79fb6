//! The MySQL sink under faults and hostile data, against the real MariaDB
//! (and a private `mariadbd` where the test freezes, kills or restarts it):
//! an orphaned prepared batch, --create-table types that would lose digits,
//! fields without a column, tables without a key, NOT NULL DEFAULT columns,
//! a record over max_allowed_packet, a frozen server, a restart, KILL QUERY.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The XA id prefix pipeline-cli gives `db.table`'s batches.
fn xa_prefix(db: &str, table: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{db}.{table}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("pcli-{:08x}-", h as u32)
}

/// Rolls a prepared XA transaction back if a test left it behind.
struct XaGuard(String);

impl Drop for XaGuard {
    fn drop(&mut self) {
        let mut db = Db::connect();
        let _ = db.try_exec(&format!("XA ROLLBACK '{}'", self.0));
    }
}

#[test]
fn an_orphaned_prepared_batch_is_committed_at_start() {
    let mut db = Db::connect();
    let table = table_name("orphan");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(20))"
    ));
    let xid = format!("{}4242-1-0-1", xa_prefix("test", &table));
    let _guard = XaGuard(xid.clone());
    {
        // A batch prepared by a run that was killed before XA COMMIT.
        let mut orphan = Db::connect();
        orphan.exec(&format!("XA START '{xid}'"));
        orphan.exec(&format!("INSERT INTO {table} VALUES (1, 'orphan')"));
        orphan.exec(&format!("XA END '{xid}'"));
        orphan.exec(&format!("XA PREPARE '{xid}'"));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,name\n");
    for i in 1..=100 {
        text.push_str(&format!("{i},new\n"));
    }
    fs::write(&input, text).unwrap();
    let url = mysql_url();
    let child = spawn(&csv_to_mysql(
        p(&input),
        &url,
        &table,
        &["--db-timeout", "10s"],
    ));
    let out = wait_with_limit(child, Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&xid) && err.contains("committed now"), "{err}");
    assert!(
        err.contains("inserted=99") && err.contains("skipped=1"),
        "{err}"
    );
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 100);
    let name = db.rows(&format!("SELECT name FROM {table} WHERE id = 1"));
    assert_eq!(name[0][0].as_deref(), Some("orphan"));
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn create_table_keeps_every_digit_and_refuses_to_change_a_code() {
    let mut db = Db::connect();
    let table = table_name("digits");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,zip,amount\n");
    for i in 0..200 {
        // Distinct 25-digit ids; the first batch's zips are all numeric.
        let zip = if i == 120 {
            "00151".to_string()
        } else {
            format!("{}", 10_000 + i)
        };
        text.push_str(&format!("{}{i:05},{zip},{i}.5\n", "12345678901234567890"));
    }
    fs::write(&input, text).unwrap();
    let dead = dir.path().join("dead.jsonl");
    let url = mysql_url();
    let out = run(&csv_to_mysql(
        p(&input),
        &url,
        &table,
        &[
            "--create-table",
            "--db-key",
            "id",
            // Types from the first 50 rows only: the later code is never
            // silently changed (the default sample is the whole file); the
            // column pipeline-cli made widens to text and keeps it exactly.
            "--create-table-sample",
            "50",
            "--batch-size",
            "50",
            "--dead-letter",
            p(&dead),
        ],
    ));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("inserted=200") && err.contains("failed=0"),
        "{err}"
    );
    assert!(err.contains("DECIMAL(65,0)"), "the DDL: {err}");
    assert!(
        err.contains("widening column `zip`") && err.contains("leading zero"),
        "{err}"
    );
    assert_eq!(
        db.count(&format!("SELECT COUNT(DISTINCT id) FROM {table}")),
        200
    );
    let zips = db.rows(&format!(
        "SELECT zip FROM {table} WHERE zip IN ('00151', '10000', '10199') ORDER BY zip"
    ));
    assert_eq!(
        zips,
        vec![
            vec![Some("00151".to_string())],
            vec![Some("10000".to_string())],
            vec![Some("10199".to_string())]
        ]
    );
    let ids = db.rows(&format!(
        "SELECT CAST(id AS CHAR) FROM {table} ORDER BY id LIMIT 1"
    ));
    assert_eq!(ids[0][0].as_deref(), Some("1234567890123456789000000"));
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn tables_without_a_key_are_named_and_create_table_needs_one() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n2,b\n").unwrap();
    let url = mysql_url();
    let table = table_name("nokey");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let out = run(&csv_to_mysql(p(&input), &url, &table, &["--create-table"]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--db-key") && err.contains("--no-key"),
        "{err}"
    );
    let out = run(&csv_to_mysql(
        p(&input),
        &url,
        &table,
        &["--create-table", "--no-key"],
    ));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("without a key"), "{err}");
    // An existing table without a key: said at start.
    let out = run(&csv_to_mysql(p(&input), &url, &table, &[]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("no primary or unique key"), "{err}");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn an_empty_value_for_a_not_null_column_with_a_default_takes_the_default() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,qty,status\n1,,\n2,5,done\n").unwrap();
    let url = mysql_url();
    for mode in ["insert", "load-data"] {
        let table = table_name(&format!("defaults_{}", mode.replace('-', "_")));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, qty INT NOT NULL DEFAULT 7, \
             status VARCHAR(10) NOT NULL DEFAULT 'new')"
        ));
        let out = run(&csv_to_mysql(
            p(&input),
            &url,
            &table,
            &["--csv-infer-types", "--mysql-load-mode", mode],
        ));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{mode}: {err}");
        let rows = db.rows(&format!("SELECT id, qty, status FROM {table} ORDER BY id"));
        assert_eq!(rows[0][1].as_deref(), Some("7"), "{mode}");
        assert_eq!(rows[0][2].as_deref(), Some("new"), "{mode}");
        assert_eq!(rows[1][2].as_deref(), Some("done"), "{mode}");
        db.exec(&format!("DROP TABLE {table}"));
    }
}

#[test]
fn a_record_over_max_allowed_packet_fails_alone() {
    let server = OwnMariaDb::start(&["--max-allowed-packet=1M"]);
    server.sql("CREATE TABLE test.big (id INT PRIMARY KEY, body LONGTEXT)");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,body\n");
    for i in 1..=10 {
        let body = if i == 5 {
            "x".repeat(2 << 20)
        } else {
            format!("row {i}")
        };
        text.push_str(&format!("{i},{body}\n"));
    }
    fs::write(&input, text).unwrap();
    let url = server.url();
    for mode in ["insert", "load-data"] {
        server.sql("DELETE FROM test.big");
        let dead = dir.path().join(format!("dead-{mode}.jsonl"));
        let out = run(&csv_to_mysql(
            p(&input),
            &url,
            "big",
            &[
                "--mysql-load-mode",
                mode,
                "--dead-letter",
                p(&dead),
                "--retry-for",
                "5s",
            ],
        ));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        assert!(
            err.contains("inserted=9") && err.contains("failed=1"),
            "{mode}: {err}"
        );
        let rejects = read_jsonl(&dead);
        assert_eq!(rejects[0]["position"], 6, "{mode}");
        assert!(
            rejects[0]["reason"]
                .as_str()
                .unwrap()
                .contains("max_allowed_packet"),
            "{mode}: {}",
            rejects[0]
        );
        let n = server.sql("SELECT COUNT(*) FROM test.big");
        assert_eq!(n[0][0].as_deref(), Some("9"), "{mode}");
    }
}

/// A small `max_allowed_packet` (a few KiB): both load modes cut a batch
/// into statements under it, and every record goes in.
#[test]
fn a_small_packet_limit_cuts_batches_in_both_modes() {
    let server = OwnMariaDb::start(&["--max-allowed-packet=16K"]);
    server.sql("CREATE TABLE test.small (id INT PRIMARY KEY, v TEXT)");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,v\n");
    for i in 1..=3000 {
        text.push_str(&format!("{i},{}\n", "x".repeat(40)));
    }
    fs::write(&input, text).unwrap();
    let url = server.url();
    for mode in ["insert", "load-data"] {
        server.sql("DELETE FROM test.small");
        let out = run(&csv_to_mysql(
            p(&input),
            &url,
            "small",
            &[
                "--mysql-load-mode",
                mode,
                "--batch-size",
                "1000",
                "--retry-for",
                "5s",
            ],
        ));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{mode}: {err}");
        assert_eq!(summary_number(&err, "inserted"), 3000, "{mode}: {err}");
        let n = server.sql("SELECT COUNT(*) FROM test.small");
        assert_eq!(n[0][0].as_deref(), Some("3000"), "{mode}");
    }
}

/// The size that counts is the row as sent: LOAD DATA doubles every
/// backslash and turns a tab into two bytes, so a 600 KB value of either
/// is 1.2 MB on the wire under a 1 MB max_allowed_packet. Such a record
/// fails alone, at once (not retried as a lost connection), in both load
/// modes (identical tables), and the rest of the batch, a batch larger than
/// max_allowed_packet in all, goes in.
#[test]
fn rows_are_sized_as_escaped_and_a_too_large_one_fails_alone() {
    let server = OwnMariaDb::start(&["--max-allowed-packet=1M"]);
    server.sql("CREATE TABLE test.escaped (id INT PRIMARY KEY, body LONGTEXT)");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,body\n");
    let filler = "a\\b\tc".repeat(100);
    for i in 1..=3000 {
        let body = match i {
            700 => "\\".repeat(600 * 1024),
            2100 => "\t".repeat(600 * 1024),
            _ => format!("{i} {filler}"),
        };
        text.push_str(&format!("{i},{body}\n"));
    }
    fs::write(&input, text).unwrap();
    let url = server.url();
    for mode in ["load-data", "insert"] {
        server.sql("DELETE FROM test.escaped");
        let dead = dir.path().join(format!("dead-{mode}.jsonl"));
        let started = Instant::now();
        let out = run(&csv_to_mysql(
            p(&input),
            &url,
            "escaped",
            &[
                "--mysql-load-mode",
                mode,
                "--batch-size",
                "3000",
                "--dead-letter",
                p(&dead),
                "--retry-for",
                "30s",
            ],
        ));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        assert!(
            err.contains("inserted=2998") && err.contains("failed=2 "),
            "{mode}: {err}"
        );
        assert!(!err.contains("retry"), "{mode}: retried: {err}");
        assert!(started.elapsed() < Duration::from_secs(25), "{mode}");
        let rejects = read_jsonl(&dead);
        let mut positions: Vec<u64> = rejects
            .iter()
            .map(|r| r["position"].as_u64().unwrap())
            .collect();
        positions.sort_unstable();
        assert_eq!(positions, [701, 2101], "{mode}");
        for r in &rejects {
            let reason = r["reason"].as_str().unwrap();
            assert!(
                reason.contains("max_allowed_packet") && reason.contains("escaped"),
                "{mode}: {reason}"
            );
        }
        let n = server.sql("SELECT COUNT(*), SUM(LENGTH(body)) FROM test.escaped");
        assert_eq!(n[0][0].as_deref(), Some("2998"), "{mode}");
    }
}

#[test]
fn a_frozen_server_is_a_timeout_not_a_hang() {
    let server = OwnMariaDb::start(&[]);
    server.sql("CREATE TABLE test.t (id INT PRIMARY KEY)");
    let url = server.url();
    // Frozen before the run: the connection times out, exit 2.
    server.freeze();
    let started = Instant::now();
    let out = wait_with_limit(
        Bin::new(&csv_to_mysql("-", &url, "t", &["--db-timeout", "2s"]))
            .no_stdin()
            .spawn(),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--db-timeout 2s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    server.thaw();
    // Frozen mid-run: each statement times out, retries stop at --retry-for.
    let mut child = spawn(&csv_to_mysql(
        "-",
        &url,
        "t",
        &[
            "--db-timeout",
            "2s",
            "--retry-for",
            "4s",
            "--batch-timeout-ms",
            "100",
        ],
    ));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"id\n").unwrap();
    for i in 0..100 {
        writeln!(stdin, "{i}").unwrap();
    }
    stdin.flush().unwrap();
    let t = Instant::now();
    while server.sql("SELECT COUNT(*) FROM test.t")[0][0].as_deref() != Some("100") {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "first rows never arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.freeze();
    for i in 100..200 {
        writeln!(stdin, "{i}").unwrap();
    }
    drop(stdin);
    let frozen = Instant::now();
    let out = wait_with_limit(child, Duration::from_secs(90));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no answer from MySQL within --db-timeout 2s"),
        "{err}"
    );
    assert!(err.contains("--retry-for 4s"), "{err}");
    assert!(
        frozen.elapsed() < Duration::from_secs(45),
        "{:?}",
        frozen.elapsed()
    );
    server.thaw();
}

#[test]
fn a_server_restart_is_ridden_out_with_nothing_lost_or_doubled() {
    let mut server = OwnMariaDb::start(&[]);
    server.sql("CREATE TABLE test.t (id INT PRIMARY KEY, v VARCHAR(10))");
    let url = server.url();
    let mut child = spawn(&csv_to_mysql(
        "-",
        &url,
        "t",
        &["--batch-timeout-ms", "100"],
    ));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"id,v\n").unwrap();
    for i in 0..500 {
        writeln!(stdin, "{i},a").unwrap();
    }
    stdin.flush().unwrap();
    let t = Instant::now();
    while server
        .try_sql("SELECT COUNT(*) FROM test.t")
        .ok()
        .and_then(|r| r[0][0].clone())
        .as_deref()
        != Some("500")
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "first rows never arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill();
    for i in 500..1000 {
        writeln!(stdin, "{i},b").unwrap();
    }
    stdin.flush().unwrap();
    // Longer than the old fixed five retries lasted.
    std::thread::sleep(Duration::from_secs(8));
    server.restart();
    drop(stdin);
    let out = wait_with_limit(child, Duration::from_secs(120));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("read=1000 inserted=1000"), "{err}");
    let n = server.sql("SELECT COUNT(*), COUNT(DISTINCT id) FROM test.t");
    assert_eq!(
        (n[0][0].as_deref(), n[0][1].as_deref()),
        (Some("1000"), Some("1000"))
    );
}

#[test]
fn kill_query_is_retried_not_fatal() {
    let mut db = Db::connect();
    let table = table_name("killq");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY)"));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let text: String = std::iter::once("id\n".to_string())
        .chain((0..50).map(|i| format!("{i}\n")))
        .collect();
    fs::write(&input, text).unwrap();
    // The loader's insert waits on a table lock held here.
    db.exec(&format!("LOCK TABLES {table} WRITE"));
    let url = mysql_url();
    let child = spawn(&csv_to_mysql(
        p(&input),
        &url,
        &table,
        &["--mysql-load-mode", "insert"],
    ));
    let mut admin = Db::connect();
    let t = Instant::now();
    let id = loop {
        let rows = admin.rows(&format!(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO%{table}%'"
        ));
        if let Some(id) = rows.first().and_then(|r| r[0].clone()) {
            break id;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the insert never waited"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    admin.exec(&format!("KILL QUERY {id}"));
    std::thread::sleep(Duration::from_millis(300));
    db.exec("UNLOCK TABLES");
    let out = wait_with_limit(child, Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("retry 1"),
        "the killed query was not retried: {err}"
    );
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 50);
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn a_field_without_a_column_fails_its_records_unless_a_column_is_added() {
    let mut db = Db::connect();
    let srv = EsServer::start(EsKind::Noida);
    let docs: Vec<(String, serde_json::Value)> = (0..60)
        .map(|i| {
            let mut d = serde_json::json!({"n": i});
            if i >= 30 {
                d["extra"] = serde_json::json!(format!("late {i}"));
            }
            (format!("d{i:02}"), d)
        })
        .collect();
    srv.bulk("docs", &docs);
    let (url, dburl) = (srv.url(), mysql_url());
    for add in [false, true] {
        let table = table_name(if add { "late_added" } else { "late_failed" });
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!(
            "CREATE TABLE {table} (_id VARCHAR(20) PRIMARY KEY, n INT)"
        ));
        let mut args = vec![
            "--source-type",
            "elasticsearch",
            "--es-url",
            &url,
            "--es-index",
            "docs",
            "--sink-type",
            "mysql",
            "--db-url",
            &dburl,
            "--db-table",
            &table,
            "--batch-size",
            "10",
        ];
        if add {
            args.push("--add-columns");
        }
        let out = run(&args);
        let err = stderr(&out);
        if add {
            assert_eq!(out.status.code(), Some(0), "{err}");
            assert!(
                err.contains("ALTER TABLE") && err.contains("`extra`"),
                "{err}"
            );
            let late = db.rows(&format!("SELECT extra FROM {table} WHERE _id = 'd45'"));
            assert_eq!(late[0][0].as_deref(), Some("late 45"));
            assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 60);
        } else {
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(
                err.contains("inserted=30") && err.contains("failed=30"),
                "{err}"
            );
            assert!(err.contains("--add-columns"), "{err}");
        }
        db.exec(&format!("DROP TABLE {table}"));
    }
}

#[test]
fn dead_letter_entries_name_the_input_position_the_same_way() {
    let mut db = Db::connect();
    let table = table_name("dl_position");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY, n INT)"));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    // Line 3 has too few fields (the source's), line 4 a value no INT takes
    // (the sink's).
    fs::write(&input, "id,n\n1,5\n2\n3,abc\n4,7\n").unwrap();
    let dead = dir.path().join("dead.jsonl");
    let url = mysql_url();
    let out = run(&csv_to_mysql(
        p(&input),
        &url,
        &table,
        &["--dead-letter", p(&dead)],
    ));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let mut entries = read_jsonl(&dead);
    entries.sort_by_key(|e| e["position"].as_u64());
    let seen: Vec<(&str, u64)> = entries
        .iter()
        .map(|e| {
            assert!(e.get("line").is_none(), "{e}");
            (
                e["stage"].as_str().unwrap(),
                e["position"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("source", 3), ("sink", 4)]);
    db.exec(&format!("DROP TABLE {table}"));
}

/// With --add-columns, a field MySQL cannot take as a column name as it is
/// (empty, over 64 characters, ending in a space) gets a column of a legal
/// name: every record goes in, every value in its column.
#[test]
fn add_columns_gives_a_field_name_mysql_cannot_take_a_legal_column() {
    let mut db = Db::connect();
    let table = table_name("addcols_bad");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY)"));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let long = "l".repeat(65);
    let mut text = String::new();
    let mut bad = 0;
    for i in 1..=200 {
        let mut d = serde_json::json!({"id": i, "good_new": format!("g{i}")});
        let mut carries = false;
        if i % 10 == 0 {
            d[""] = serde_json::json!(1);
            carries = true;
        }
        if i % 7 == 0 {
            d[long.as_str()] = serde_json::json!(2);
            carries = true;
        }
        if i % 13 == 0 {
            d["trailing "] = serde_json::json!(3);
            carries = true;
        }
        bad += u64::from(carries);
        text.push_str(&format!("{d}\n"));
    }
    fs::write(&input, text).unwrap();
    let dead = dir.path().join("dead.jsonl");
    let url = mysql_url();
    let out = run(&[
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
        "--add-columns",
        "--batch-size",
        "50",
        "--dead-letter",
        p(&dead),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(summary_number(&err, "inserted"), 200, "{err}");
    assert!(!dead.exists() || read_jsonl(&dead).is_empty(), "{err}");
    let count =
        |db: &mut Db, cond: &str| db.count(&format!("SELECT COUNT(*) FROM {table} WHERE {cond}"));
    assert_eq!(count(&mut db, "good_new = CONCAT('g', id)"), 200);
    assert_eq!(count(&mut db, "`_empty` = 1"), 20);
    assert_eq!(count(&mut db, "`trailing` = 3"), 15);
    let long_column = db.rows(&format!(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = '{table}' AND COLUMN_COMMENT = 'pipeline-cli field: {long}'"
    ));
    let long_column = long_column[0][0].clone().unwrap();
    assert_eq!(long_column.chars().count(), 64);
    assert_eq!(count(&mut db, &format!("`{long_column}` = 2")), 28);
    assert!(bad > 0);
    db.exec(&format!("DROP TABLE {table}"));
}

/// Fractional seconds a DATETIME, TIMESTAMP or TIME column cannot keep are
/// refused, as DECIMAL rounding is: the record fails naming the column and
/// its precision, in both load modes; zeros past the precision are fine.
#[test]
fn fractional_seconds_beyond_a_columns_precision_fail_the_record() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(
        &input,
        "id,at,t3,ts,tm\n\
         1,2026-01-03 10:15:00,2026-01-03 10:15:00.123,2026-01-03 10:15:00,10:15:00\n\
         2,2026-01-03 10:15:00.5,2026-01-03 10:15:00.123,2026-01-03 10:15:00,10:15:00\n\
         3,2026-01-03 10:15:00.000,2026-01-03 10:15:00.1234,2026-01-03 10:15:00,10:15:00\n\
         4,2026-01-03 10:15:00,2026-01-03 10:15:00.1,2026-01-03T10:15:00.25Z,10:15:00\n\
         5,2026-01-03 10:15:00,2026-01-03 10:15:00.1,2026-01-03 10:15:00,10:15:00.7\n\
         6,2026-01-03 10:15:00,2026-01-03 10:15:00.12300,2026-01-03 10:15:00.0,10:15:00.00\n",
    )
    .unwrap();
    let url = mysql_url();
    for mode in ["load-data", "insert"] {
        let table = table_name(&format!("fsp_{}", mode.replace('-', "_")));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, at DATETIME, t3 DATETIME(3), ts TIMESTAMP NULL, tm TIME)"
        ));
        let dead = dir.path().join(format!("dead-{mode}.jsonl"));
        let out = run(&csv_to_mysql(
            p(&input),
            &url,
            &table,
            &["--mysql-load-mode", mode, "--dead-letter", p(&dead)],
        ));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        assert!(
            err.contains("inserted=2 ") && err.contains("failed=4 "),
            "{mode}: {err}"
        );
        let mut reasons: Vec<(u64, String)> = read_jsonl(&dead)
            .iter()
            .map(|r| {
                (
                    r["position"].as_u64().unwrap() - 1,
                    r["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        reasons.sort();
        let expect = [
            (2, "column at", "(0)"),
            (3, "column t3", "(3)"),
            (4, "column ts", "(0)"),
            (5, "column tm", "(0)"),
        ];
        assert_eq!(reasons.len(), expect.len(), "{mode}: {reasons:?}");
        for ((id, reason), (eid, column, digits)) in reasons.iter().zip(expect) {
            assert_eq!(*id, eid, "{mode}: {reasons:?}");
            assert!(
                reason.contains(column) && reason.contains(digits) && reason.contains("rounded"),
                "{mode}: {reason}"
            );
        }
        let kept = db.rows(&format!("SELECT id, t3 FROM {table} ORDER BY id"));
        assert_eq!(kept.len(), 2, "{mode}");
        assert_eq!(
            kept[1][1].as_deref(),
            Some("2026-01-03 10:15:00.123"),
            "{mode}"
        );
        db.exec(&format!("DROP TABLE {table}"));
    }
}

/// --max-errors with failures the sink finds (values a column refuses):
/// reading stops at the Nth failed record, and what was read by then is
/// still written, which is at most the batch each worker holds, the small
/// queue --max-errors keeps (64 records) and the source's chunk (1,024
/// rows): failed <= N + workers x batch size + 64 + 1,024. Everything read is
/// accounted for.
#[test]
fn max_errors_on_sink_failures_stops_within_a_batch_of_the_limit() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut text = String::from("id,n\n");
    for i in 1..=30_000 {
        if i % 3 == 0 {
            text.push_str(&format!("{i},x{i}\n"));
        } else {
            text.push_str(&format!("{i},{i}\n"));
        }
    }
    fs::write(&input, text).unwrap();
    let url = mysql_url();
    for workers in [1u64, 4] {
        let table = table_name(&format!("maxerr_{workers}"));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY, n INT)"));
        let dead = dir.path().join(format!("dead-{workers}.jsonl"));
        let w = workers.to_string();
        let out = run(&csv_to_mysql(
            p(&input),
            &url,
            &table,
            &[
                "--max-errors",
                "10",
                "--batch-size",
                "100",
                "--workers",
                &w,
                "--dead-letter",
                p(&dead),
            ],
        ));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("--max-errors 10"), "{err}");
        let (read, inserted, failed) = (
            summary_number(&err, "read"),
            summary_number(&err, "inserted"),
            summary_number(&err, "failed"),
        );
        assert_eq!(read, inserted + failed, "{err}");
        assert!(failed >= 10, "{err}");
        let bound = 10 + workers * 100 + 64 + 1024;
        assert!(failed <= bound, "{failed} failed, more than {bound}: {err}");
        assert_eq!(read_jsonl(&dead).len() as u64, failed);
        assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), inserted);
        db.exec(&format!("DROP TABLE {table}"));
    }
}

/// --create-table gives a field MySQL cannot take as a column name as it
/// is a legal column (a CREATE with it would fail and end the run): every
/// record goes in, every value in its column.
#[test]
fn create_table_gives_a_field_name_mysql_cannot_take_a_legal_column() {
    let mut db = Db::connect();
    let table = table_name("create_bad_name");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let mut text = String::new();
    for i in 1..=100 {
        let mut d = serde_json::json!({"id": i, "good": i * 2});
        if i % 4 == 0 {
            d["ends in space "] = serde_json::json!("x");
        }
        if i % 25 == 0 {
            d[""] = serde_json::json!("y");
        }
        text.push_str(&format!("{d}\n"));
    }
    fs::write(&input, text).unwrap();
    let dead = dir.path().join("dead.jsonl");
    let url = mysql_url();
    let out = run(&[
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
        "--create-table",
        "--db-key",
        "id",
        "--dead-letter",
        p(&dead),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(summary_number(&err, "inserted"), 100, "{err}");
    let columns = db.rows(&format!(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
    ));
    let names: Vec<&str> = columns.iter().map(|r| r[0].as_deref().unwrap()).collect();
    assert_eq!(names, ["id", "good", "ends in space", "_empty"]);
    let count =
        |db: &mut Db, cond: &str| db.count(&format!("SELECT COUNT(*) FROM {table} WHERE {cond}"));
    assert_eq!(count(&mut db, "good = 2 * id"), 100);
    assert_eq!(count(&mut db, "`ends in space` = 'x' AND id % 4 = 0"), 25);
    assert_eq!(count(&mut db, "`_empty` = 'y' AND id % 25 = 0"), 4);
    assert!(!dead.exists() || read_jsonl(&dead).is_empty());
    db.exec(&format!("DROP TABLE {table}"));
}
