//! Resumable runs (`--checkpoint PATH`) from Elasticsearch and OpenSearch
//! (noida-db and osmem-server, started here on loopback) into MySQL with
//! `--es-slices 4`: killed at random moments and run to the end, every
//! document is in a table without any key exactly once; a point in time
//! that expired between two runs is refused (exit 2, naming --restart) and
//! `--restart` then loads everything.
//!
//! Timing (debug build, nothing else running): 20,000 documents at
//! `--es-page-size 100 --batch-size 50 --workers 4` take about 11 s
//! uninterrupted from osmem-server and 18 s from noida-db (1,000-1,800
//! documents/s), longer than the 8 kill windows of 50-1500 ms (6.2 s on
//! average) add up to; a run that completes inside the loop ends it.
//! The kill moments come from a seeded RNG; the seed is printed and
//! `PIPELINE_TEST_SEED` repeats it.

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value as Json};

use common::kill_loop::{kill_loop, marked_complete, run_to_end, stop_when_ready, Rng, Stop};
use common::*;

const DOCS: usize = 20_000;

const RUN_LIMIT: Duration = Duration::from_secs(300);

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn doc(i: usize) -> Json {
    json!({
        "n": i,
        "name": format!("Zoë, \"{i}\""),
        "nested": {"level": i % 7, "tags": (0..(i % 4)).map(|t| format!("t{t}")).collect::<Vec<_>>()},
    })
}

fn docs() -> Vec<(String, Json)> {
    (0..DOCS).map(|i| (format!("doc-{i:05}"), doc(i))).collect()
}

/// The test database, waiting at most 60 s for a lock (a transaction a
/// killed run left prepared fails the test instead of hanging it).
fn connect() -> Db {
    let mut db = Db::connect();
    db.exec("SET SESSION lock_wait_timeout = 60, innodb_lock_wait_timeout = 60");
    db
}

/// A table for the documents, without any key.
fn keyless_table(db: &mut Db, table: &str) {
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (_id VARCHAR(20), n BIGINT, name VARCHAR(100), nested JSON)"
    ));
}

/// Every document is in the table exactly once, with its own values.
fn assert_every_document_once(db: &mut Db, table: &str, what: &str) {
    let counts = db.rows(&format!(
        "SELECT COUNT(*), COUNT(DISTINCT _id), \
         SUM(_id = CONCAT('doc-', LPAD(n, 5, '0')) AND name = CONCAT('Zoë, \"', n, '\"') \
             AND JSON_EXTRACT(nested, '$.level') = n % 7) \
         FROM {table}"
    ));
    let n = |k: usize| -> u64 {
        counts[0][k]
            .as_deref()
            .unwrap_or("0")
            .parse()
            .unwrap_or_else(|e| panic!("{what}: {:?}: {e}", counts[0][k]))
    };
    let (rows, distinct, right) = (n(0), n(1), n(2));
    if rows == DOCS as u64 && distinct == DOCS as u64 && right == DOCS as u64 {
        return;
    }
    let twice = db.rows(&format!(
        "SELECT _id, COUNT(*) FROM {table} GROUP BY _id HAVING COUNT(*) > 1 LIMIT 5"
    ));
    panic!(
        "{what}: {rows} rows, {distinct} distinct _id, {right} with their own values; \
         {DOCS} documents; twice e.g. {twice:?}"
    );
}

fn es_args<'a>(url: &'a str, dburl: &'a str, table: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--source-type",
        "elasticsearch",
        "--es-url",
        url,
        "--es-index",
        "docs",
        "--es-slices",
        "4",
        "--es-page-size",
        "100",
        "--sink-type",
        "mysql",
        "--db-url",
        dburl,
        "--db-table",
        table,
        "--workers",
        "4",
        "--batch-size",
        "50",
    ];
    args.extend(extra);
    args
}

/// 8 SIGKILLs at random moments, then a run to the end, on both servers:
/// every document is in a table without any key exactly once.
#[test]
fn es_to_mysql_keyless_survives_kills_on_both_servers() {
    let mut rng = Rng::seeded("es_to_mysql_keyless_survives_kills_on_both_servers");
    let mut db = connect();
    for kind in ES_KINDS {
        let what = format!("{kind:?}");
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs());
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("ck");
        let table = table_name(&format!("resume_es_{kind:?}").to_lowercase());
        keyless_table(&mut db, &table);
        let (url, dburl) = (srv.url(), mysql_url());
        let args = es_args(&url, &dburl, &table, &["--checkpoint", p(&ck)]);

        let lp = kill_loop(&what, &args, &[], &mut rng, &[Stop::Kill; 8], (50, 1500));
        assert!(
            lp.resumed_runs() >= 1,
            "{what}: no run said \"resuming from checkpoint\"; the last one's stderr: {}",
            lp.runs.last().map(|r| r.stderr()).unwrap_or_default()
        );
        let out = match lp.completed {
            Some(out) => out,
            None => run_to_end(&args, &[], RUN_LIMIT),
        };
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{what}: {err}");
        assert_eq!(summary_number(&err, "failed"), 0, "{what}: {err}");
        assert_every_document_once(&mut db, &table, &what);
        assert!(
            marked_complete(&ck),
            "{what}: the checkpoint is not marked complete: {err}"
        );
        db.exec(&format!("DROP TABLE {table}"));
    }
}

/// A run killed mid-way whose point in time is gone cannot resume: exit 2,
/// one error line naming --restart, the table untouched; `--restart` then
/// loads every document once. A server frees an expired point in time
/// when its reaper next runs (Elasticsearch: every minute), so the test
/// frees it itself, as the reaper or a restart would.
#[test]
fn an_expired_point_in_time_is_refused_and_restart_loads_everything() {
    let mut db = connect();
    for kind in ES_KINDS {
        let what = format!("{kind:?}");
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs());
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("ck");
        let table = table_name(&format!("resume_es_pit_{kind:?}").to_lowercase());
        keyless_table(&mut db, &table);
        let (url, dburl) = (srv.url(), mysql_url());
        let args = es_args(
            &url,
            &dburl,
            &table,
            &["--checkpoint", p(&ck), "--es-keep-alive", "2s"],
        );
        let count = format!("SELECT COUNT(*) FROM {table}");
        let r = stop_when_ready(&args, &[], Stop::Kill, RUN_LIMIT, || {
            ck.exists() && db.count(&count) >= 1000
        });
        assert!(
            r.interrupted() && !r.exited_first,
            "{what}: the run ended ({}) before it could be killed: {}",
            r.out.status,
            r.stderr()
        );
        assert!(ck.exists(), "{what}: no checkpoint: {}", r.stderr());
        let loaded = db.count(&count);
        assert!(loaded < DOCS as u64, "{what}: {loaded} rows");
        let saved: Json = serde_json::from_slice(&std::fs::read(&ck).unwrap()).unwrap();
        // The point in time the run opened (saved before anything was sent),
        // and the ids its slices were given since.
        let pits: Vec<String> = saved["streams"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|s| s["state"]["at"]["pit"].as_str().map(str::to_string))
            .chain(saved["source"]["pit"].as_str().map(str::to_string))
            .collect();
        assert!(!pits.is_empty(), "{what}: no point in time saved: {saved}");
        let (status, answer) = match kind {
            EsKind::Noida => srv.json("DELETE", "/_pit", &json!({"id": pits[0]})),
            EsKind::Osmem => srv.json(
                "DELETE",
                "/_search/point_in_time",
                &json!({"pit_id": [pits[0]]}),
            ),
        };
        assert_eq!(status, 200, "{what}: freeing the point in time: {answer}");

        let out = run_to_end(&args, &[], RUN_LIMIT);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("pipeline-cli: error") || l.contains(" ERROR "))
            .collect();
        assert_eq!(lines.len(), 1, "{what}: one error line: {err}");
        assert!(lines[0].contains("--restart"), "{what}: {err}");
        // The refused run reads nothing; opening the sink commits the
        // batches the killed run left prepared (at most one per worker).
        let now = db.count(&count);
        assert!(
            (loaded..=loaded + 4 * 50).contains(&now),
            "{what}: the refused run wrote rows: {loaded} before, {now} after: {err}"
        );

        db.exec(&format!("TRUNCATE TABLE {table}"));
        let mut again = args.clone();
        again.push("--restart");
        let out = run_to_end(&again, &[], RUN_LIMIT);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{what}, --restart: {err}");
        assert_eq!(summary_number(&err, "failed"), 0, "{what}: {err}");
        assert!(
            !err.contains("resuming from checkpoint"),
            "{what}: --restart resumed: {err}"
        );
        assert_every_document_once(&mut db, &table, &format!("{what}, --restart"));
        assert!(
            marked_complete(&ck),
            "{what}: the checkpoint is not marked complete"
        );
        db.exec(&format!("DROP TABLE {table}"));
    }
}
