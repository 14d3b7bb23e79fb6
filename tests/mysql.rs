//! The MySQL sink against the real MariaDB (scripts/services.sh starts it):
//! types round-trip in both load modes with identical tables, exact
//! skip/update/error counts, --create-table, failures before reading, bad
//! rows isolated, a connection killed mid-run, Ctrl+C, and secrets kept out
//! of the output.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// CSV file -> `table` with extra flags; returns the finished process output.
fn load(input: &Path, table: &str, extra: &[&str]) -> std::process::Output {
    let url = mysql_url();
    let mut args = vec![
        "--source-type",
        "csv",
        "--csv-file",
        p(input),
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        table,
    ];
    args.extend(extra);
    run(&args)
}

const TYPES_DDL: &str = "(id INT PRIMARY KEY, small TINYINT, big BIGINT UNSIGNED, \
    price DECIMAL(10,3), ratio DOUBLE, day DATE, at DATETIME(6), ts TIMESTAMP NULL, \
    flag BOOLEAN, doc JSON, code VARCHAR(8), body TEXT, fixed INT NOT NULL DEFAULT 7)";

const TYPES_CSV: &str = "id,small,big,price,ratio,day,at,ts,flag,doc,code,body,unknown_field\n\
1,-128,18446744073709551615,1234567.125,0.1,2026-01-03,2026-01-03T10:15:00.123456Z,2026-01-03T12:00:00+02:00,true,\"{\"\"a\"\": [1, \"\"x\"\"]}\",Zürich,\"tab\there, \\backslash\\ and\nnewline \\N\",x\n\
2,,,,,,,,,,,,x\n\
3,127,0,-0.5,-1e300,1999-12-31,1999-12-31 23:59:59,1999-12-31T23:59:59Z,FALSE,[],🚀東京,\"\",x\n\
4,128,1,1,1,2026-01-01,2026-01-01,,true,{},ok,fine,x\n\
5,1,1,1.0001,1,2026-01-01,2026-01-01,,true,{},ok,fine,x\n\
6,1,1,1,1,2026-02-30,2026-01-01,,true,{},ok,fine,x\n\
7,1,1,1,1,2026-01-01,2026-01-01,,maybe,{},ok,fine,x\n\
8,1,1,1,1,2026-01-01,2026-01-01,,true,{nope,ok,fine,x\n\
9,1,1,1,1,2026-01-01,2026-01-01,,true,{},waytoolongcode,fine,x\n\
10,1,1,1,1,2026-01-01,2026-01-01,,1,\"{\"\"k\"\":\"\"v\"\"}\",ok,last,x\n";

#[test]
fn every_type_round_trips_and_both_modes_give_identical_tables() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("types.csv");
    fs::write(&input, TYPES_CSV).unwrap();
    let mut dumps = Vec::new();
    for mode in ["insert", "load-data"] {
        let table = table_name(&format!("types_{}", mode.replace('-', "_")));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!("CREATE TABLE {table} {TYPES_DDL}"));
        let dead = dir.path().join(format!("dead-{mode}.jsonl"));
        let out = load(
            &input,
            &table,
            &[
                "--mysql-load-mode",
                mode,
                "--dead-letter",
                p(&dead),
                "--workers",
                "1",
                "--ignore-fields",
                "unknown_field",
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        assert!(
            err.contains("read=10 inserted=4 updated=0 skipped=0 failed=6"),
            "{mode}: {err}"
        );
        assert!(
            err.contains("unknown_field") && err.contains("ignored"),
            "{err}"
        );

        assert_the_dead_letter_reasons(&dead);
        let rows = assert_the_stored_values(&mut db, &table);
        dumps.push(rows);
        db.exec(&format!("DROP TABLE {table}"));
    }
    assert_eq!(dumps[0], dumps[1], "insert and load-data tables differ");
}

/// Each rejected row is in the dead-letter file with the column and why.
fn assert_the_dead_letter_reasons(dead: &Path) {
    let reasons: Vec<(u64, String)> = read_jsonl(dead)
        .iter()
        .map(|v| {
            assert_eq!(v["stage"], "sink");
            assert_eq!(v["error_type"], "conversion");
            (
                v["position"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason = |line: u64| {
        reasons
            .iter()
            .find(|(l, _)| *l == line)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("no dead-letter entry for line {line}: {reasons:?}"))
    };
    // CSV line numbers: the header is line 1, row 1 spans lines 2-3.
    assert!(reason(6).contains("column small") && reason(6).contains("out of range"));
    assert!(reason(7).contains("column price") && reason(7).contains("decimal places"));
    assert!(reason(8).contains("column day"));
    assert!(reason(9).contains("column flag") && reason(9).contains("boolean"));
    assert!(reason(10).contains("column doc") && reason(10).contains("JSON"));
    assert!(reason(11).contains("column code") && reason(11).contains("too long"));
}

/// The four good rows, value by value; returns the table's rows.
fn assert_the_stored_values(db: &mut Db, table: &str) -> Vec<Vec<Option<String>>> {
    let rows = db.rows(&format!(
        "SELECT id, small, big, price, ratio, day, at, ts, flag, doc, code, body, fixed \
         FROM {table} ORDER BY id"
    ));
    let row = |i: usize| -> Vec<Option<&str>> { rows[i].iter().map(|v| v.as_deref()).collect() };
    assert_eq!(rows.len(), 4);
    assert_eq!(
        row(0),
        vec![
            Some("1"),
            Some("-128"),
            Some("18446744073709551615"),
            Some("1234567.125"),
            Some("0.1"),
            Some("2026-01-03"),
            Some("2026-01-03 10:15:00.123456"),
            Some("2026-01-03 10:00:00"),
            Some("1"),
            Some("{\"a\": [1, \"x\"]}"),
            Some("Zürich"),
            Some("tab\there, \\backslash\\ and\nnewline \\N"),
            Some("7"),
        ]
    );
    // Empty fields: NULL in typed columns, '' in text columns, defaults kept.
    assert_eq!(
        row(1),
        vec![
            Some("2"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            Some(""),
            Some(""),
            Some("7"),
        ]
    );
    assert_eq!(row(2)[4], Some("-1e300"));
    assert_eq!(row(2)[10], Some("🚀東京"));
    assert_eq!(row(3)[0], Some("10"));
    assert_eq!(row(3)[9], Some("{\"k\":\"v\"}"));
    rows
}

fn dup_input(dir: &Path, tag: &str) -> std::path::PathBuf {
    // ids 1..=100, then id 60 again: 101 records.
    let mut csv = String::from("id,name\n");
    for i in 1..=100 {
        csv.push_str(&format!("{i},{tag}-{i}\n"));
    }
    csv.push_str(&format!("60,{tag}-60-again\n"));
    let path = dir.join(format!("{tag}.csv"));
    fs::write(&path, csv).unwrap();
    path
}

#[test]
fn duplicate_counts_are_exact_in_both_modes() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    for mode in ["insert", "load-data"] {
        for (policy, expect, code) in [
            ("skip", "inserted=50 updated=0 skipped=51 failed=0", 0),
            ("update", "inserted=50 updated=51 skipped=0 failed=0", 0),
            ("error", "inserted=50 updated=0 skipped=0 failed=51", 1),
        ] {
            let table = table_name(&format!("dup_{policy}_{}", mode.replace('-', "_")));
            db.exec(&format!("DROP TABLE IF EXISTS {table}"));
            db.exec(&format!(
                "CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL)"
            ));
            db.exec(&format!(
                "INSERT INTO {table} SELECT seq, CONCAT('old-', seq) FROM seq_1_to_50"
            ));
            let input = dup_input(dir.path(), "new");
            let dead = dir.path().join(format!("dead-{policy}-{mode}.jsonl"));
            let out = load(
                &input,
                &table,
                &[
                    "--mysql-load-mode",
                    mode,
                    "--on-duplicate",
                    policy,
                    "--batch-size",
                    "30",
                    "--dead-letter",
                    p(&dead),
                ],
            );
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(code), "{policy}/{mode}: {err}");
            assert!(
                err.contains(&format!("read=101 {expect}")),
                "{policy}/{mode}: {err}"
            );
            assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 100);
            let old = db.count(&format!(
                "SELECT COUNT(*) FROM {table} WHERE name LIKE 'old-%'"
            ));
            match policy {
                "update" => {
                    assert_eq!(old, 0, "{mode}");
                    let sixty = db.rows(&format!("SELECT name FROM {table} WHERE id = 60"));
                    assert!(
                        sixty[0][0].as_deref().unwrap().starts_with("new-60"),
                        "{sixty:?}"
                    );
                }
                _ => assert_eq!(old, 50, "{policy}/{mode}"),
            }
            if policy == "error" {
                let dl = read_jsonl(&dead);
                assert_eq!(dl.len(), 51);
                assert!(dl.iter().all(|v| v["error_type"] == "duplicate"), "{dl:?}");
                assert!(dl[0]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("Duplicate entry"));
            }
            db.exec(&format!("DROP TABLE {table}"));
        }
    }
}

#[test]
fn create_table_infers_types_and_key() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("created");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let input = dir.path().join("in.csv");
    fs::write(
        &input,
        "id,amount,at,active,name\n1,12.50,2026-01-03T10:15:00Z,true,Ann\n2,7,2026-01-04,false,\n",
    )
    .unwrap();
    let out = load(&input, &table, &["--create-table", "--db-key", "id"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("CREATE TABLE IF NOT EXISTS"),
        "the DDL is logged: {err}"
    );
    let cols = db.rows(&format!(
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_KEY FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
    ));
    let cols: Vec<(String, String, String)> = cols
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].clone().unwrap(),
                r[2].clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(cols[0], ("id".into(), "bigint".into(), "PRI".into()));
    assert_eq!(cols[1].1, "decimal");
    assert_eq!(cols[2].1, "datetime");
    assert_eq!(cols[3].1, "tinyint");
    assert_eq!(cols[4].1, "varchar");
    let rows = db.rows(&format!(
        "SELECT id, amount, at, active, name FROM {table} ORDER BY id"
    ));
    assert_eq!(rows[0][1].as_deref(), Some("12.50"));
    assert_eq!(rows[0][2].as_deref(), Some("2026-01-03 10:15:00.000000"));
    assert_eq!(rows[1][3].as_deref(), Some("0"));
    assert_eq!(rows[1][4].as_deref(), Some(""));
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn configuration_problems_fail_before_reading() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n").unwrap();

    let missing = table_name("missing");
    db.exec(&format!("DROP TABLE IF EXISTS {missing}"));
    let out = load(&input, &missing, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("does not exist") && err.contains("--create-table"),
        "{err}"
    );

    // A NOT NULL column without a default that no field fills.
    let strict = table_name("notnull");
    db.exec(&format!("DROP TABLE IF EXISTS {strict}"));
    db.exec(&format!(
        "CREATE TABLE {strict} (id INT PRIMARY KEY, name TEXT, must INT NOT NULL)"
    ));
    let out = load(&input, &strict, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("must"), "{}", stderr(&out));
    // A field with no column is an error, naming the ways out.
    db.exec(&format!(
        "ALTER TABLE {strict} DROP COLUMN must, DROP COLUMN name"
    ));
    let out = load(&input, &strict, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("name") && err.contains("--ignore-fields") && err.contains("--add-columns"),
        "{err}"
    );
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {strict}")), 0);
    db.exec(&format!("DROP TABLE {strict}"));

    // Nothing listens: a clear connection error.
    let port = free_port().to_string();
    let out = run(&[
        "--source-type",
        "csv",
        "--csv-file",
        p(&input),
        "--sink-type",
        "mysql",
        "--db-host",
        "127.0.0.1",
        "--db-port",
        &port,
        "--db-name",
        "test",
        "--db-table",
        "t",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot connect to MySQL at 127.0.0.1:{port}")),
        "{err}"
    );
    // One plain cause, said once.
    assert!(err.contains("Connection refused"), "{err}");
    assert!(
        !err.contains("Input/output error: Input/output error"),
        "{err}"
    );
}

#[test]
fn bad_credentials_exit_2_and_secrets_never_show() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("secret");
    let user = format!("pcli_{}", std::process::id());
    let password = "S3cret-Pa55-do-not-print";
    db.exec(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    db.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"
    ));
    db.exec(&format!("GRANT ALL ON test.* TO '{user}'@'%'"));
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, name TEXT)"
    ));
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n2,b\n").unwrap();
    let base = |pass_env: &str, extra: &[&str]| {
        let port = free_port().to_string();
        let mut cmd = std::process::Command::new(bin());
        cmd.args([
            "--source-type",
            "csv",
            "--csv-file",
            p(&input),
            "--sink-type",
            "mysql",
            "--db-host",
            "127.0.0.1",
            "--db-user",
            &user,
            "--db-name",
            "test",
            "--db-table",
            &table,
            "--metrics-linger",
            "0",
            "--metrics-port",
            &port,
        ])
        .args(extra)
        .env("PIPELINE_DB_PASS", pass_env)
        .env("PIPELINE_LOG", "debug");
        cmd.output().unwrap()
    };
    let wrong = "Wr0ng-Pa55-do-not-print";
    let out = base(wrong, &[]);
    let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("access denied") && all.contains(&user),
        "{all}"
    );
    assert!(
        all.contains("PIPELINE_DB_PASS"),
        "where the password came from: {all}"
    );
    assert!(!all.contains(wrong), "the password leaked: {all}");

    let out = base(password, &[]);
    let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains(password), "the password leaked: {all}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 2);

    // A wrong password in --db-url: the hint names --db-url, not the
    // environment.
    let bad_url = format!("mysql://{user}:{wrong}@127.0.0.1:3306/test");
    let out = run(&[
        "--source-type",
        "csv",
        "--csv-file",
        p(&input),
        "--sink-type",
        "mysql",
        "--db-url",
        &bad_url,
        "--db-table",
        &table,
    ]);
    let all = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("came from --db-url"), "{all}");
    assert!(!all.contains(wrong), "the password leaked: {all}");

    // A password in --db-url never shows either, even when the run fails.
    let url = format!("mysql://{user}:{password}@127.0.0.1:3306/test");
    let out = run(&[
        "--source-type",
        "csv",
        "--csv-file",
        p(&input),
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        "no_such_table_here",
    ]);
    let all = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(!all.contains(password), "the password leaked: {all}");
    db.exec(&format!("DROP TABLE {table}"));
    db.exec(&format!("DROP USER '{user}'@'%'"));
}

#[test]
fn a_connection_killed_mid_run_loses_and_duplicates_nothing() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    for mode in ["insert", "load-data"] {
        let table = table_name(&format!("kill_{}", mode.replace('-', "_")));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, payload VARCHAR(100))"
        ));
        let rows = 200_000;
        let mut csv = String::from("id,payload\n");
        for i in 0..rows {
            csv.push_str(&format!("{i},payload number {i}\n"));
        }
        let input = dir.path().join("kill.csv");
        fs::write(&input, csv).unwrap();
        let url = mysql_url();
        let mut child = spawn(&[
            "--source-type",
            "csv",
            "--csv-file",
            p(&input),
            "--sink-type",
            "mysql",
            "--db-url",
            &url,
            "--db-table",
            &table,
            "--batch-size",
            "200",
            "--mysql-load-mode",
            mode,
            "--on-duplicate",
            "error",
        ]);
        // Kill the pipeline's connections while they write, a few times.
        let mut killed = 0;
        let t = Instant::now();
        while killed < 3 && t.elapsed() < Duration::from_secs(60) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let ids = db.rows(&format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
                 AND DB = DATABASE() AND INFO LIKE '%{table}%' AND INFO NOT LIKE '%PROCESSLIST%'"
            ));
            if let Some(id) = ids.first().and_then(|r| r[0].clone()) {
                // The connection may have finished its statement already.
                if db.try_exec(&format!("KILL {id}")).is_ok() {
                    killed += 1;
                }
                std::thread::sleep(Duration::from_millis(50));
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let out = wait_with_limit(child, Duration::from_secs(120));
        let err = stderr(&out);
        assert!(
            killed >= 1,
            "{mode}: never caught a connection to kill: {err}"
        );
        // Duplicates would fail records (--on-duplicate error): exit 0 proves none.
        assert_eq!(out.status.code(), Some(0), "{mode}: {err}");
        assert!(
            err.contains(&format!(
                "read={rows} inserted={rows} updated=0 skipped=0 failed=0"
            )),
            "{mode}: {err}"
        );
        assert!(err.contains("retry 1 in"), "{mode}: no retry logged: {err}");
        assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), rows);
        assert_eq!(
            db.count(&format!("SELECT COUNT(DISTINCT id) FROM {table}")),
            rows
        );
        db.exec(&format!("DROP TABLE {table}"));
    }
}

#[test]
fn ctrl_c_mid_run_leaves_exactly_what_was_read() {
    use std::io::Write;
    let mut db = Db::connect();
    let table = table_name("sigint");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, payload VARCHAR(100))"
    ));
    let url = mysql_url();
    let port = free_port();
    let port_s = port.to_string();
    let mut child = spawn(&[
        "--source-type",
        "csv",
        "--csv-file",
        "-",
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        &table,
        "--batch-size",
        "500",
        "--metrics-linger",
        "0",
        "--metrics-port",
        &port_s,
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(b"id,payload\n");
        let mut i = 0u64;
        loop {
            let mut chunk = String::new();
            for _ in 0..500 {
                chunk.push_str(&format!("{i},row {i}\n"));
                i += 1;
            }
            if stdin.write_all(chunk.as_bytes()).is_err() || i > 20_000_000 {
                return;
            }
        }
    });
    wait_for_port(port, &mut child);
    wait_for_count(port, "inserted", 5000.0);
    signal(&child, "INT");
    let out = wait_with_limit(child, Duration::from_secs(30));
    feeder.join().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let read = summary_number(&err, "read");
    assert_eq!(summary_number(&err, "inserted"), read, "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), read);
    // Every row read, and only those: ids 0..read.
    assert_eq!(
        db.count(&format!("SELECT COALESCE(MAX(id), -1) + 1 FROM {table}")),
        read
    );
    db.exec(&format!("DROP TABLE {table}"));
}

/// A user the server lets in only by its unix socket (error 1698 over TCP)
/// is told like a wrong password (1045): exit 2 at once, naming the user
/// and the flags, not retried for --start-retry-for.
#[test]
fn a_user_without_a_tcp_password_is_told_like_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,name\n1,a\n").unwrap();
    let user = format!("sock_{}", std::process::id());
    let mut db = Db::connect();
    db.exec(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    db.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED VIA unix_socket"
    ));
    let url = format!("mysql://{user}@127.0.0.1:3306/test");
    let started = std::time::Instant::now();
    let out = run(&csv_to_mysql(p(&input), &url, "t_sock", &[]));
    db.exec(&format!("DROP USER '{user}'@'%'"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{err}"
    );
    assert!(
        err.contains("access denied") && err.contains(&user) && err.contains("--db-user"),
        "{err}"
    );
    assert!(!err.contains("retry 1"), "{err}");
}
