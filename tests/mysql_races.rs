//! Races between runs on one MySQL table: a TCP proxy in front of a private
//! MariaDB cuts the first run's connection at a chosen statement (`XA
//! PREPARE`, `XA COMMIT`), and a second run starts on the same table while
//! the first is reconnecting (or after it gave up). Into a keyless table
//! (where a batch written twice is visible), every case must end with
//! exactly one row per id, counts that add up (read = inserted + updated +
//! skipped + failed + in doubt), and exit codes that tell the truth.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::proxy::{Cut, TcpProxy};
use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn ids_csv(path: &Path, ids: std::ops::RangeInclusive<u32>) {
    let mut text = String::from("id,name\n");
    for i in ids {
        text.push_str(&format!("{i},n{i}\n"));
    }
    fs::write(path, text).unwrap();
}

fn summary(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path).unwrap();
    serde_json::from_str(text.trim()).unwrap()
}

fn n(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// read = inserted + updated + skipped + failed + in_doubt.
fn assert_reconciles(s: &serde_json::Value, what: &str) {
    assert_eq!(
        n(s, "read"),
        n(s, "inserted") + n(s, "updated") + n(s, "skipped") + n(s, "failed") + n(s, "in_doubt"),
        "{what}: {s}"
    );
}

/// One race.
struct Race {
    name: &'static str,
    /// Where the first run's connection is cut.
    statement: &'static str,
    /// The statement reaches the server before the cut.
    forward: bool,
    /// Every connection through the proxy is cut (the run's lock too).
    all: bool,
    /// New connections are refused for this long after the cut.
    refuse_for: Duration,
    /// The first run's exit code.
    first_exit: i32,
    /// The first run's records in doubt.
    in_doubt: u64,
    /// Records the second run commits for the first.
    recovered: u64,
}

const RACES: &[Race] = &[
    // Prepared, answer lost; the second run must leave the live run's
    // batch alone, and the first commits it once it is back.
    Race {
        name: "prepare_answer_lost",
        statement: "XA PREPARE",
        forward: true,
        all: false,
        refuse_for: Duration::from_secs(5),
        first_exit: 0,
        in_doubt: 0,
        recovered: 0,
    },
    // Never prepared: the first run writes the batch again, once.
    Race {
        name: "prepare_never_sent",
        statement: "XA PREPARE",
        forward: false,
        all: false,
        refuse_for: Duration::from_secs(5),
        first_exit: 0,
        in_doubt: 0,
        recovered: 0,
    },
    // Committed, answer lost: not written again.
    Race {
        name: "commit_answer_lost",
        statement: "XA COMMIT",
        forward: true,
        all: false,
        refuse_for: Duration::from_secs(5),
        first_exit: 0,
        in_doubt: 0,
        recovered: 0,
    },
    // Prepared, commit never sent: still the first run's to commit.
    Race {
        name: "commit_never_sent",
        statement: "XA COMMIT",
        forward: false,
        all: false,
        refuse_for: Duration::from_secs(5),
        first_exit: 0,
        in_doubt: 0,
        recovered: 0,
    },
    // The network drops every connection of the first run, its lock's too:
    // the second run may take the batch for an orphan and commit it; the
    // first must then find it committed and not write it again.
    Race {
        name: "prepare_lock_lost",
        statement: "XA PREPARE",
        forward: true,
        all: true,
        refuse_for: Duration::from_secs(10),
        first_exit: 0,
        in_doubt: 0,
        recovered: 1000,
    },
    // The first run cannot get back in time: its batch is in doubt (exit 1),
    // and the second run, after it, commits the batch and says so.
    Race {
        name: "prepare_in_doubt",
        statement: "XA PREPARE",
        forward: true,
        all: false,
        refuse_for: Duration::from_secs(3600),
        first_exit: 1,
        in_doubt: 1000,
        recovered: 1000,
    },
];

#[test]
fn races_between_runs_never_lose_or_double_a_batch() {
    let server = OwnMariaDb::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for race in RACES {
        if let Err(e) = one_race(&server, dir.path(), race) {
            failures.push(format!("{}: {e}", race.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn one_race(server: &OwnMariaDb, dir: &Path, race: &Race) -> Result<(), String> {
    let table = format!("race_{}", race.name);
    server.sql(&format!("DROP TABLE IF EXISTS test.{table}"));
    server.sql(&format!(
        "CREATE TABLE test.{table} (id INT NOT NULL, name VARCHAR(20))"
    ));
    let first_in = dir.join(format!("{table}-1.csv"));
    let second_in = dir.join(format!("{table}-2.csv"));
    ids_csv(&first_in, 1..=5000);
    ids_csv(&second_in, 5001..=6000);
    let (s1, s2) = (
        dir.join(format!("{table}-1.json")),
        dir.join(format!("{table}-2.json")),
    );
    let dead = dir.join(format!("{table}-dead.jsonl"));
    let proxy = TcpProxy::start(server.port);
    proxy.cut(Cut {
        statement: race.statement.into(),
        forward: race.forward,
        skip: 2,
        refuse_for: race.refuse_for,
        all: race.all,
    });
    let url = proxy.url();
    let common = [
        "--db-ssl-mode",
        "disabled",
        "--batch-size",
        "1000",
        "--workers",
        "1",
        "--db-timeout",
        "5s",
    ];
    let mut args = csv_to_mysql(p(&first_in), &url, &table, &common);
    // Long enough to outlast the refusals, except where the run is to give up.
    let retry_for = if race.in_doubt > 0 { "4s" } else { "30s" };
    args.extend([
        "--retry-for",
        retry_for,
        "--summary-json",
        p(&s1),
        "--dead-letter",
        p(&dead),
        "--mysql-load-mode",
        "insert",
    ]);
    let first = spawn(&args);
    let t = Instant::now();
    while proxy.cuts_done() == 0 {
        if t.elapsed() > Duration::from_secs(60) {
            let out = wait_with_limit(first, Duration::from_secs(1));
            return Err(format!("no cut happened: {}", stderr(&out)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The prepared batch detaches from its connection once the server has
    // seen that connection go.
    std::thread::sleep(Duration::from_millis(1500));
    let direct = server.url();
    let second_args = {
        let mut a = csv_to_mysql(p(&second_in), &direct, &table, &common);
        a.extend(["--summary-json", p(&s2), "--retry-for", "20s"]);
        a
    };
    let (out1, out2) = if race.in_doubt > 0 {
        // The second run comes after the first has given up.
        let out1 = wait_with_limit(first, Duration::from_secs(180));
        let out2 = run(&second_args);
        (out1, out2)
    } else {
        let out2 = run(&second_args);
        let out1 = wait_with_limit(first, Duration::from_secs(180));
        (out1, out2)
    };
    let (e1, e2) = (stderr(&out1), stderr(&out2));
    let ctx = format!("first run:\n{e1}\nsecond run:\n{e2}");
    let check = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what}\n{ctx}"))
        }
    };
    check(
        out1.status.code() == Some(race.first_exit),
        "first run's exit code",
    )?;
    check(out2.status.code() == Some(0), "second run's exit code")?;
    let (j1, j2) = (summary(&s1), summary(&s2));
    assert_reconciles(&j1, race.name);
    assert_reconciles(&j2, race.name);
    check(n(&j1, "in_doubt") == race.in_doubt, "records in doubt")?;
    check(n(&j2, "recovered") == race.recovered, "records recovered")?;
    check(n(&j2, "inserted") == 1000, "the second run's inserts")?;
    let rows = server.sql(&format!(
        "SELECT COUNT(*), COUNT(DISTINCT id) FROM test.{table}"
    ));
    let (total, distinct) = (
        rows[0][0].clone().unwrap_or_default(),
        rows[0][1].clone().unwrap_or_default(),
    );
    check(
        total == distinct,
        &format!("{total} rows for {distinct} ids"),
    )?;
    // Every id the first run did not count failed is in the table.
    let expected = 6000 - n(&j1, "failed");
    check(
        total == expected.to_string(),
        &format!("{total} rows, {expected} expected"),
    )?;
    check(
        n(&j1, "inserted") + n(&j1, "in_doubt") + n(&j2, "inserted") == expected,
        "rows = what the runs say they wrote",
    )?;
    if race.in_doubt > 0 {
        let entries = read_jsonl(&dead);
        let doubt: Vec<_> = entries.iter().filter(|e| e["in_doubt"] == true).collect();
        check(
            doubt.len() as u64 == race.in_doubt,
            "in-doubt dead-letter entries",
        )?;
        let xid = doubt[0]["xid"].as_str().unwrap_or_default().to_string();
        check(
            !xid.is_empty() && e2.contains(&xid),
            "the recovering run names the xid",
        )?;
    }
    let left = server.sql("XA RECOVER");
    check(
        left.is_empty(),
        &format!("prepared transactions left: {left:?}"),
    )?;
    Ok(())
}

/// Where XA cannot be used (here: a user who may not create the marker
/// table), batches commit in plain transactions, and a COMMIT whose answer
/// is lost cannot be checked: the batch is in doubt (exit 1), never written
/// a second time.
#[test]
fn a_plain_commit_cut_off_is_in_doubt_not_written_twice() {
    let mut db = Db::connect();
    let table = table_name("plain_cut");
    let user = format!("plain_{}", std::process::id());
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT NOT NULL, name VARCHAR(20))"
    ));
    db.exec(&format!("DROP USER IF EXISTS '{user}'@'%'"));
    db.exec(&format!("CREATE USER '{user}'@'%'"));
    db.exec(&format!(
        "GRANT SELECT, INSERT ON test.{table} TO '{user}'@'%'"
    ));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    ids_csv(&input, 1..=5000);
    let s1 = dir.path().join("s.json");
    let dead = dir.path().join("dead.jsonl");
    let port: u16 = mysql_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(3306);
    let proxy = TcpProxy::start(port);
    proxy.cut(Cut {
        statement: "COMMIT".into(),
        forward: true,
        skip: 2,
        refuse_for: Duration::ZERO,
        all: false,
    });
    let url = format!("mysql://{user}@127.0.0.1:{}/test", proxy.port);
    let mut args = csv_to_mysql(p(&input), &url, &table, &[]);
    args.extend([
        "--db-ssl-mode",
        "disabled",
        "--batch-size",
        "1000",
        "--workers",
        "1",
        "--retry-for",
        "10s",
        "--summary-json",
        p(&s1),
        "--dead-letter",
        p(&dead),
    ]);
    let out = run(&args);
    let err = stderr(&out);
    let _ = db.try_exec(&format!("DROP USER '{user}'@'%'"));
    assert_eq!(proxy.cuts_done(), 1, "{err}");
    assert!(err.contains("plain transactions"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s = summary(&s1);
    assert_reconciles(&s, "plain");
    assert_eq!(n(&s, "in_doubt"), 1000, "{err}");
    let total = db.count(&format!("SELECT COUNT(*) FROM {table}"));
    let distinct = db.count(&format!("SELECT COUNT(DISTINCT id) FROM {table}"));
    assert_eq!(total, distinct, "a batch written twice: {err}");
    // The cut COMMIT reached the server: the batch in doubt is in.
    assert_eq!(total, n(&s, "inserted") + 1000, "{err}");
    let doubt = read_jsonl(&dead)
        .into_iter()
        .filter(|e| e["in_doubt"] == true)
        .count();
    assert_eq!(doubt, 1000);
    db.exec(&format!("DROP TABLE {table}"));
}
