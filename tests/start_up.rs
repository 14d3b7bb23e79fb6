//! A server that is not there when a run starts: Elasticsearch and MySQL
//! alike are tried again for `--start-retry-for` (not the minutes of
//! `--retry-for`), for a run and for `--check`, then the run exits 2 naming
//! the server and the flag; a server that comes up within that time is
//! used; a MySQL host name that does not resolve fails at once.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::proxy::TcpProxy;
use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Index `orders` at `url` into the JSON-lines file `output`.
fn es_to_file<'a>(url: &'a str, output: &'a str) -> Vec<&'a str> {
    vec![
        "--source-type",
        "elasticsearch",
        "--es-url",
        url,
        "--es-index",
        "orders",
        "--sink-type",
        "file",
        "--output-file",
        output,
    ]
}

/// Runs `args` and returns (exit code, stderr, seconds taken).
fn timed(args: &[&str]) -> (Option<i32>, String, f64) {
    let started = Instant::now();
    let out = wait_with_limit(
        Bin::new(args).env_remove("PIPELINE_LOG").no_stdin().spawn(),
        Duration::from_secs(120),
    );
    (
        out.status.code(),
        stderr(&out),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
fn a_server_not_there_at_start_is_given_up_after_start_retry_for() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    fs::write(&csv, "id,name\n1,a\n").unwrap();
    let out = dir.path().join("out.jsonl");
    // Nothing listens there.
    let port = free_port();
    let es_url = format!("http://127.0.0.1:{port}");
    let db_url = format!("mysql://root@127.0.0.1:{port}/test");
    let es = es_to_file(&es_url, p(&out));
    let db = csv_to_mysql(p(&csv), &db_url, "t_start_up", &[]);
    for (server, base) in [("Elasticsearch", es), ("MySQL", db)] {
        for check in [false, true] {
            let mut args = base.clone();
            args.extend(["--retry-for", "5m", "--start-retry-for", "2s"]);
            if check {
                args.push("--check");
            }
            let case = format!("{server}, --check {check}");
            let (code, err, secs) = timed(&args);
            assert_eq!(code, Some(2), "{case}: {err}");
            assert!(
                (1.5..30.0).contains(&secs),
                "{case}: gave up after {secs:.1}s: {err}"
            );
            assert!(
                err.contains("--start-retry-for 2s") && err.contains(&format!("127.0.0.1:{port}")),
                "{case}: {err}"
            );
            // Retried in the meantime, each wait said in rounded units.
            assert!(err.contains("retry 1 in "), "{case}: {err}");
            assert!(!err.contains("µs") && !err.contains("ns"), "{case}: {err}");
        }
    }
}

#[test]
fn a_server_that_comes_up_within_start_retry_for_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    fs::write(&csv, "id,name\n1,a\n2,b\n").unwrap();

    // MySQL behind a proxy that refuses connections for 2 s.
    let proxy = TcpProxy::start(3306);
    proxy.refuse_for(Duration::from_secs(2));
    let table = table_name("start_up");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let url = proxy.url();
    let args = csv_to_mysql(
        p(&csv),
        &url,
        &table,
        &[
            "--create-table",
            "--db-key",
            "id",
            "--start-retry-for",
            "30s",
        ],
    );
    let (code, err, secs) = timed(&args);
    assert_eq!(code, Some(0), "MySQL: {err}");
    assert!(
        secs >= 1.5,
        "MySQL: connected after {secs:.1}s, while refused"
    );
    assert!(err.contains("retry 1 in "), "MySQL: {err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 2);
    db.exec(&format!("DROP TABLE {table}"));

    // Elasticsearch (osmem-server) behind one that refuses for 2 s.
    let es = EsServer::start(EsKind::Osmem);
    es.bulk(
        "orders",
        &[
            ("1".into(), serde_json::json!({"n": 1})),
            ("2".into(), serde_json::json!({"n": 2})),
        ],
    );
    let upstream = es.port;
    let proxy = TcpProxy::start(upstream);
    proxy.refuse_for(Duration::from_secs(2));
    let out = dir.path().join("es.jsonl");
    let es_url = format!("http://127.0.0.1:{}", proxy.port);
    let mut args = es_to_file(&es_url, p(&out));
    args.extend(["--start-retry-for", "30s"]);
    let (code, err, secs) = timed(&args);
    assert_eq!(code, Some(0), "Elasticsearch: {err}");
    assert!(secs >= 1.5, "Elasticsearch: answered after {secs:.1}s");
    assert!(err.contains("retry 1 in "), "Elasticsearch: {err}");
    assert_eq!(read_jsonl(&out).len(), 2, "{err}");
}

#[test]
fn a_mysql_host_that_does_not_resolve_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    fs::write(&csv, "id,name\n1,a\n").unwrap();
    let args = csv_to_mysql(
        p(&csv),
        "mysql://root@no-such-host.invalid:3306/test",
        "t",
        &["--start-retry-for", "1m"],
    );
    let (code, err, secs) = timed(&args);
    assert_eq!(code, Some(2), "{err}");
    assert!(secs < 20.0, "took {secs:.1}s: {err}");
    assert!(!err.contains("retry 1"), "{err}");
    assert!(err.contains("no-such-host.invalid"), "{err}");
}
