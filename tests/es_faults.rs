//! The Elasticsearch source under faults, injected by a small HTTP proxy
//! between pipeline-cli and the real servers (noida-db: Elasticsearch 8;
//! osmem-server: OpenSearch 3): a 200 page that is not a search response
//! (an HTML sign-in page, a body cut short) is retried, never taken as the
//! end of the index; a lost scroll page stops the run at once; a stalled
//! server is a timeout; Ctrl+C cancels a stalled request; 401 is exit 2; a
//! context lost by a restart is told apart from an expired one. Plus exact
//! numbers and incremental runs at the watermark.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use common::proxy::{Fault, Proxy, Rule};
use common::*;

const DOCS: usize = 2000;

fn docs(from: usize, to: usize) -> Vec<(String, Json)> {
    (from..to)
        .map(|i| {
            (
                format!("d{i:05}"),
                json!({"n": i, "name": format!("doc {i}")}),
            )
        })
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn es_args<'a>(url: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--source-type",
        "elasticsearch",
        "--es-url",
        url,
        "--es-index",
        "docs",
        "--es-page-size",
        "100",
        "--sink-type",
        "file",
        "--output-file",
        out,
    ];
    args.extend(extra);
    args
}

fn run_es(url: &str, out: &Path, extra: &[&str]) -> Output {
    let child = Command::new(bin())
        .args(es_args(url, p(out), extra))
        .env("PIPELINE_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_with_limit(child, Duration::from_secs(120))
}

/// The `_id`s in a JSON-lines output, failing on a repeated one.
fn ids(path: &Path) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for line in read_jsonl(path) {
        let id = line["_id"].as_str().unwrap().to_string();
        assert!(set.insert(id.clone()), "{id} written twice");
    }
    set
}

fn all_ids(from: usize, to: usize) -> BTreeSet<String> {
    (from..to).map(|i| format!("d{i:05}")).collect()
}

#[test]
fn pages_that_are_not_search_responses_are_retried_not_taken_as_the_end() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, DOCS));
        let dir = tempfile::tempdir().unwrap();
        for mode in ["pit", "scroll"] {
            let proxy = Proxy::start(srv.port);
            // The first page of slice 2 of 4 is an SSO page with status 200;
            // a later page is a JSON body cut short. Scroll pages after the
            // first cannot be re-requested, so faults go on the opening
            // searches there.
            let (first, later) = if mode == "pit" {
                ("POST /_search", "POST /_search")
            } else {
                ("/docs/_search?scroll", "/docs/_search?scroll")
            };
            proxy.add(Rule::new(first, Fault::Html, 1).with_body("\"slice\":{\"id\":2"));
            proxy.add(Rule::new(later, Fault::Truncate, 1).with_body("\"slice\":{\"id\":1"));
            let out = dir.path().join(format!("{mode}.jsonl"));
            let url = proxy.url();
            let res = run_es(&url, &out, &["--es-mode", mode, "--es-slices", "4"]);
            let err = stderr(&res);
            assert_eq!(res.status.code(), Some(0), "{kind:?} {mode}: {err}");
            assert_eq!(proxy.injected(), 2, "{kind:?} {mode}: faults not injected");
            assert!(err.contains("not JSON"), "{kind:?} {mode}: {err}");
            assert!(err.contains("retry 1"), "{kind:?} {mode}: {err}");
            assert_eq!(ids(&out), all_ids(0, DOCS), "{kind:?} {mode}");
        }
    }
}

#[test]
fn answers_are_compressed_only_when_asked_for() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, DOCS));
        let dir = tempfile::tempdir().unwrap();
        for (flag, want) in [(None, "identity"), (Some("--es-compression"), "gzip")] {
            // What each request asks for, seen by a proxy...
            let proxy = Proxy::start(srv.port);
            let out = dir.path().join("via-proxy.jsonl");
            let res = run_es(&proxy.url(), &out, flag.as_slice());
            assert_eq!(
                res.status.code(),
                Some(0),
                "{kind:?} {flag:?}: {}",
                stderr(&res)
            );
            let seen = proxy.accept_encodings();
            assert!(seen.len() > DOCS / 100, "{kind:?}: {} requests", seen.len());
            assert!(
                seen.iter().all(|e| e == want),
                "{kind:?} {flag:?}: {seen:?}"
            );
            // ...and what the server's (compressed) answers give, directly.
            let out = dir.path().join("direct.jsonl");
            let res = run_es(&srv.url(), &out, flag.as_slice());
            assert_eq!(
                res.status.code(),
                Some(0),
                "{kind:?} {flag:?}: {}",
                stderr(&res)
            );
            assert_eq!(ids(&out), all_ids(0, DOCS), "{kind:?} {flag:?}");
        }
    }
}

#[test]
fn a_server_that_keeps_sending_bad_pages_fails_the_run() {
    let srv = EsServer::start(EsKind::Noida);
    srv.bulk("docs", &docs(0, DOCS));
    let dir = tempfile::tempdir().unwrap();
    for fault in [Fault::Html, Fault::Truncate] {
        let proxy = Proxy::start(srv.port);
        // The first data page of the only slice, every time.
        proxy.add(Rule::new("POST /_search", fault, 1000).with_body("\"size\":100"));
        let out = dir.path().join("bad.jsonl");
        let url = proxy.url();
        let res = run_es(&url, &out, &["--es-mode", "pit", "--retry-for", "2s"]);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(1), "{fault:?}: {err}");
        assert!(err.contains("--retry-for 2s"), "{fault:?}: {err}");
        assert!(err.contains("not JSON"), "{fault:?}: {err}");
        assert!(
            !out.exists(),
            "{fault:?}: a failed run must not create the target"
        );
    }
}

#[test]
fn a_lost_scroll_page_stops_the_run_at_once_naming_pit_mode() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, DOCS));
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::start(srv.port);
        proxy.add(Rule::new("POST /_search/scroll", Fault::CutConnection, 1).after(3));
        let out = dir.path().join("scroll.jsonl");
        let url = proxy.url();
        let res = run_es(&url, &out, &["--es-mode", "scroll"]);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(1), "{kind:?}: {err}");
        assert!(err.contains("--es-mode pit"), "{kind:?}: {err}");
        assert!(
            !err.contains("retry 1"),
            "{kind:?}: a scroll page was retried: {err}"
        );
        // The same fault in point-in-time mode is ridden out.
        let proxy = Proxy::start(srv.port);
        proxy.add(Rule::new("POST /_search", Fault::CutConnection, 1).after(3));
        let url = proxy.url();
        let res = run_es(&url, &out, &["--es-mode", "pit"]);
        assert_eq!(res.status.code(), Some(0), "{kind:?}: {}", stderr(&res));
        assert_eq!(ids(&out), all_ids(0, DOCS), "{kind:?}");
    }
}

#[test]
fn a_stalled_server_is_a_timeout_within_the_retry_budget() {
    let srv = EsServer::start(EsKind::Osmem);
    srv.bulk("docs", &docs(0, DOCS));
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(srv.port);
    proxy.add(Rule::new("POST /_search", Fault::Stall, 1000).with_body("\"size\":100"));
    let out = dir.path().join("stall.jsonl");
    let url = proxy.url();
    let started = Instant::now();
    let res = run_es(
        &url,
        &out,
        &[
            "--es-mode",
            "pit",
            "--es-timeout",
            "1s",
            "--retry-for",
            "3s",
        ],
    );
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("within --es-timeout 1s"), "{err}");
    assert!(err.contains("--retry-for 3s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a stalled server held the run for {:?}",
        started.elapsed()
    );
}

#[test]
fn ctrl_c_cancels_a_stalled_request_writes_what_was_read_and_releases_the_pit() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, DOCS));
        let dir = tempfile::tempdir().unwrap();
        let proxy = Proxy::start(srv.port);
        // Five pages come through, then the server stalls.
        proxy.add(
            Rule::new("POST /_search", Fault::Stall, 1000)
                .with_body("\"size\":100")
                .after(5),
        );
        let out = dir.path().join("stopped.jsonl");
        let url = proxy.url();
        let mut child = Command::new(bin())
            .args(es_args(
                &url,
                p(&out),
                &["--es-mode", "pit", "--shutdown-timeout", "60"],
            ))
            .env("PIPELINE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while proxy.injected() == 0 {
            assert!(t.elapsed() < Duration::from_secs(30), "{kind:?}: no stall");
            assert!(
                child.try_wait().unwrap().is_none(),
                "{kind:?}: exited early"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        signal(&child, "INT");
        let stopped = Instant::now();
        let res = wait_with_limit(child, Duration::from_secs(30));
        let err = stderr(&res);
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "{kind:?}: Ctrl+C waited {:?} on a stalled request",
            stopped.elapsed()
        );
        assert_eq!(res.status.code(), Some(130), "{kind:?}: {err}");
        assert_eq!(summary_number(&err, "read"), 500, "{kind:?}: {err}");
        assert_eq!(summary_number(&err, "inserted"), 500, "{kind:?}: {err}");
        let partial = dir.path().join("stopped.jsonl.partial");
        assert_eq!(
            read_jsonl(&partial).len(),
            500,
            "{kind:?}: records read were not written"
        );
        assert!(
            err.contains("closed point in time"),
            "{kind:?}: not released: {err}"
        );
    }
}

#[test]
fn refused_credentials_on_the_first_page_are_exit_2() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, 10));
        let dir = tempfile::tempdir().unwrap();
        for (mode, request) in [("pit", "POST /_search"), ("scroll", "/docs/_search?scroll")] {
            let proxy = Proxy::start(srv.port);
            proxy.add(Rule::new(
                request,
                Fault::Error(401, "security_exception"),
                1000,
            ));
            let out = dir.path().join("auth.jsonl");
            let url = proxy.url();
            let res = run_es(&url, &out, &["--es-mode", mode]);
            let err = stderr(&res);
            assert_eq!(res.status.code(), Some(2), "{kind:?} {mode}: {err}");
            assert!(
                err.contains("refused the credentials"),
                "{kind:?} {mode}: {err}"
            );
        }
    }
}

#[test]
fn a_context_lost_by_a_restart_is_not_called_slow() {
    let srv = EsServer::start(EsKind::Noida);
    srv.bulk("docs", &docs(0, DOCS));
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(srv.port);
    proxy.add(
        Rule::new(
            "POST /_search",
            Fault::Error(404, "search_context_missing_exception"),
            1,
        )
        .with_body("search_after"),
    );
    let out = dir.path().join("lost.jsonl");
    let url = proxy.url();
    let res = run_es(&url, &out, &["--es-mode", "pit", "--es-keep-alive", "5m"]);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("was lost on the server"), "{err}");
    assert!(err.contains("restarted"), "{err}");
    assert!(!err.contains("too slowly"), "{err}");
}

/// What a real Elasticsearch returns: `_source` exactly as indexed. (The
/// test servers keep numbers as 64-bit floats, so the proxy puts the exact
/// text back.)
fn exact_source(body: &[u8]) -> Vec<u8> {
    let mut page: Json = serde_json::from_slice(body).unwrap();
    let exact: Json = serde_json::from_str(EXACT).unwrap();
    if let Some(hits) = page["hits"]["hits"].as_array_mut() {
        for hit in hits {
            hit["_source"] = exact.clone();
        }
    }
    serde_json::to_vec(&page).unwrap()
}

const EXACT: &str = r#"{"dec":19.999999999999999999,"big":123456789012345678901234567890,"f":2.5,"e":1.5e-7,"i":7}"#;

#[test]
fn numbers_keep_their_exact_digits() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        // A real Elasticsearch would refuse the 30-digit integer for a
        // dynamic `long` mapping too; the document indexed is a stand-in.
        srv.bulk("docs", &[("a".to_string(), json!({"n": 1}))]);
        let proxy = Proxy::start(srv.port);
        proxy.add(
            Rule::new("POST /_search", Fault::Rewrite(exact_source), 1000)
                .with_body("\"size\":100"),
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("n.jsonl");
        let res = run_es(&proxy.url(), &out, &["--es-mode", "pit"]);
        assert_eq!(res.status.code(), Some(0), "{kind:?}: {}", stderr(&res));
        assert!(proxy.injected() > 0, "{kind:?}: no page rewritten");
        let line = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            line,
            format!("{{\"_id\":\"a\",{}\n", &EXACT[1..]),
            "{kind:?}: {}",
            stderr(&res)
        );
    }
}

/// The documents a state file keeps at its mark, as `index/id`, sorted.
fn boundary(saved: &Json) -> Vec<String> {
    let mut v: Vec<String> = saved["ids_at_since"]
        .as_object()
        .unwrap_or_else(|| panic!("ids_at_since by index: {saved}"))
        .iter()
        .flat_map(|(index, ids)| {
            ids.as_array()
                .unwrap()
                .iter()
                .map(move |id| format!("{index}/{}", id.as_str().unwrap()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn incremental_runs_read_documents_arriving_at_the_watermark() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        let at = |id: &str, ts: u64| (id.to_string(), json!({"ts": ts, "id": id}));
        srv.bulk("docs", &[at("a", 100), at("b", 100), at("c", 90)]);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let run = |name: &str| {
            let out = dir.path().join(name);
            let res = run_es(
                &srv.url(),
                &out,
                &[
                    "--es-since-field",
                    "ts",
                    "--state-file",
                    p(&state),
                    "--es-slices",
                    "2",
                ],
            );
            assert_eq!(
                res.status.code(),
                Some(0),
                "{kind:?} {name}: {}",
                stderr(&res)
            );
            ids(&out)
        };
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(run("1.jsonl"), set(&["a", "b", "c"]), "{kind:?}");
        // Arrives later with the same timestamp as the saved maximum; a
        // boundary document is updated to a later time.
        srv.bulk("docs", &[at("d", 100), at("e", 101), at("a", 102)]);
        assert_eq!(run("2.jsonl"), set(&["a", "d", "e"]), "{kind:?}");
        assert_eq!(run("3.jsonl"), set(&[]), "{kind:?}: read again");
        srv.bulk("docs", &[at("f", 102)]);
        assert_eq!(run("4.jsonl"), set(&["f"]), "{kind:?}");
        let saved: Json = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        assert_eq!(saved["since"], 102, "{kind:?}: {saved}");
        assert_eq!(boundary(&saved), ["docs/a", "docs/f"], "{kind:?}: {saved}");
    }
}

#[test]
fn an_unreachable_server_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("none.jsonl");
    let url = format!("http://127.0.0.1:{}", free_port());
    let res = run_es(&url, &out, &["--retry-for", "1s"]);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
}

/// The sample values of one metric in a Prometheus text file.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Several incremental runs over an index that changes between them: one
/// instant in several forms (`…00Z`, `…00.000Z`, `+01:00`, epoch
/// milliseconds), a multi-valued field, documents without a value (absent,
/// null), `--es-fields` without the since field. Every document with a value
/// is exported exactly once; the ones without are read on every run
/// (`--es-since-missing include`, the default) or never (`skip`), and said so.
#[test]
fn an_incremental_sequence_exports_each_document_once() {
    const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        let d = |id: &str, ts: Json| (id.to_string(), json!({"name": id, "ts": ts}));
        srv.bulk(
            "docs",
            &[
                d("a", json!("2026-01-01T00:00:00Z")),
                d("b", json!("2026-01-01T00:00:00.000Z")),
                d("c", json!(T0)),
                d("d", json!("2026-01-01T01:00:00+01:00")),
                d("e", json!("2025-12-31T23:59:59Z")),
                ("m".to_string(), json!({"name": "m"})),
                d("n", Json::Null),
                d("v", json!(["2025-06-01T00:00:00Z", "2026-01-01T00:00:00Z"])),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let textfile = dir.path().join("m.prom");
        let run = |name: &str, extra: &[&str]| {
            let out = dir.path().join(name);
            let mut args = vec![
                "--es-since-field",
                "ts",
                "--state-file",
                p(&state),
                "--es-slices",
                "2",
                "--metrics-textfile",
                p(&textfile),
            ];
            args.extend(extra);
            let res = run_es(&srv.url(), &out, &args);
            let err = stderr(&res);
            assert_eq!(res.status.code(), Some(0), "{kind:?} {name}: {err}");
            (ids(&out), read_jsonl(&out), err)
        };
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let saved =
            || -> Json { serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap() };
        let watermark = || {
            metric(
                &std::fs::read_to_string(&textfile).unwrap(),
                "pipeline_source_watermark",
            )
        };

        let (got, _, err) = run("1.jsonl", &[]);
        assert_eq!(
            got,
            set(&["a", "b", "c", "d", "e", "m", "n", "v"]),
            "{kind:?}"
        );
        assert!(
            err.contains("2 documents read had no value of ts"),
            "{kind:?}: the documents without a value are not reported: {err}"
        );
        let s = saved();
        assert_eq!(s["since"], "2026-01-01T00:00:00Z", "{kind:?}: {s}");
        assert_eq!(
            boundary(&s),
            ["docs/a", "docs/b", "docs/c", "docs/d", "docs/v"],
            "{kind:?}: one instant, five forms: {s}"
        );
        assert_eq!(watermark(), Some(1_767_225_600.0), "{kind:?}");

        // Nothing new: only the documents without a value, as every run.
        let (got, _, err) = run("2.jsonl", &[]);
        assert_eq!(got, set(&["m", "n"]), "{kind:?}: read again: {err}");

        // A tie with the mark as epoch milliseconds, 1 ms later as a
        // string; --es-fields without the since field.
        srv.bulk(
            "docs",
            &[d("f", json!(T0)), d("g", json!("2026-01-01T00:00:00.001Z"))],
        );
        let (got, lines, err) = run("3.jsonl", &["--es-fields", "name"]);
        assert_eq!(got, set(&["f", "g", "m", "n"]), "{kind:?}: {err}");
        for line in &lines {
            let keys: Vec<&str> = line
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["_id", "name"],
                "{kind:?}: the since field was added: {line}"
            );
        }
        assert_eq!(saved()["since"], "2026-01-01T00:00:00.001Z", "{kind:?}");

        // A document given a second, later value (epoch milliseconds, the
        // newest of all); a tie with the mark in another form.
        srv.bulk(
            "docs",
            &[
                d("a", json!(["2025-01-01T00:00:00Z", T0 + 2])),
                d("i", json!("2026-01-01T01:00:00.001+01:00")),
            ],
        );
        let (got, _, err) = run("4.jsonl", &[]);
        assert_eq!(got, set(&["a", "i", "m", "n"]), "{kind:?}: {err}");
        let s = saved();
        assert_eq!(s["since"], "2026-01-01T00:00:00.002Z", "{kind:?}: {s}");
        // Seconds, not the field's milliseconds.
        let w = watermark().unwrap();
        assert!(
            (w - 1_767_225_600.002).abs() < 1e-6,
            "{kind:?}: watermark {w}"
        );

        let (got, _, _) = run("5.jsonl", &[]);
        assert_eq!(got, set(&["m", "n"]), "{kind:?}");
        let (got, _, err) = run("6.jsonl", &["--es-since-missing", "skip"]);
        assert_eq!(got, set(&[]), "{kind:?}: {err}");
        assert!(
            err.contains("2 matching documents have no value of ts"),
            "{kind:?}: {err}"
        );

        // A state file whose value cannot be used names the file (exit 2).
        std::fs::write(
            &state,
            r#"{"field": "ts", "since": ["2026-01-01", "2027-01-01"]}"#,
        )
        .unwrap();
        let out = dir.path().join("7.jsonl");
        let res = run_es(
            &srv.url(),
            &out,
            &["--es-since-field", "ts", "--state-file", p(&state)],
        );
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(2), "{kind:?}: {err}");
        assert!(
            err.contains("--state-file") && err.contains(p(&state)),
            "{kind:?}: {err}"
        );
    }
}

/// A host name that does not resolve is a mistake in --es-url, as one in
/// --db-host is: exit 2 at once, not retried for --retry-for. Another node
/// that answers is still used.
#[test]
fn an_unresolvable_host_is_exit_2_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("none.jsonl");
    let started = Instant::now();
    let res = run_es(
        "http://no-such-host.invalid:9200",
        &out,
        &["--retry-for", "60s"],
    );
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "retried for {:?}: {err}",
        started.elapsed()
    );
    assert!(
        err.contains("cannot resolve the host name") && err.contains("--es-url"),
        "{err}"
    );
    let srv = EsServer::start(EsKind::Osmem);
    srv.bulk("docs", &docs(0, 10));
    let urls = format!("http://no-such-host.invalid:9200,{}", srv.url());
    let res = run_es(&urls, &out, &["--retry-for", "60s"]);
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert_eq!(ids(&out), all_ids(0, 10));
}

/// An index pattern or alias over several indices: two documents of
/// different indices may share an _id, so a run that does not keep _index
/// says so at start; one that keeps it does not.
#[test]
fn several_indices_without_index_in_the_records_are_warned_about() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("part-a", &docs(0, 5));
        srv.bulk("part-b", &docs(0, 5));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let run = |extra: &[&str]| {
            let url = srv.url();
            let mut args = es_args(&url, p(&out), extra);
            let at = args.iter().position(|a| *a == "docs").unwrap();
            args[at] = "part-*";
            let res = Command::new(bin())
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert_eq!(res.status.code(), Some(0), "{kind:?}: {}", stderr(&res));
            stderr(&res)
        };
        let err = run(&[]);
        assert!(
            err.contains("covers 2 indices (part-a, part-b)") && err.contains("_index"),
            "{kind:?}: {err}"
        );
        assert_eq!(read_jsonl(&out).len(), 10, "{kind:?}");
        let err = run(&["--es-meta-fields", "_id,_index"]);
        assert!(!err.contains("covers 2 indices"), "{kind:?}: {err}");
    }
}

/// Two indices of one --es-index list hold documents with the same _id
/// and the same since value: the one indexed after the first run is read
/// by the next run (the mark keeps each id with its index), once.
#[test]
fn a_document_at_the_mark_with_the_id_of_another_index_is_read() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        for index in ["ia", "ib"] {
            let (status, body) = srv.json(
                "PUT",
                &format!("/{index}"),
                &json!({"mappings": {"properties": {"ts": {"type": "date"}}}}),
            );
            assert_eq!(status, 200, "{kind:?}: {body}");
        }
        let doc = || vec![("same".to_string(), json!({"ts": "2026-01-01T00:00:00Z"}))];
        srv.bulk("ia", &doc());
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let run = |name: &str| {
            let out = dir.path().join(name);
            let url = srv.url();
            let mut args = es_args(
                &url,
                p(&out),
                &[
                    "--es-meta-fields",
                    "_id,_index",
                    "--es-since-field",
                    "ts",
                    "--state-file",
                    p(&state),
                ],
            );
            let at = args.iter().position(|a| *a == "docs").unwrap();
            args[at] = "ia,ib";
            let res = Command::new(bin())
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert_eq!(
                res.status.code(),
                Some(0),
                "{kind:?} {name}: {}",
                stderr(&res)
            );
            read_jsonl(&out)
                .iter()
                .map(|r| {
                    format!(
                        "{}/{}",
                        r["_index"].as_str().unwrap(),
                        r["_id"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run("1.jsonl"), ["ia/same"], "{kind:?}");
        srv.bulk("ib", &doc());
        assert_eq!(run("2.jsonl"), ["ib/same"], "{kind:?}: lost");
        assert!(run("3.jsonl").is_empty(), "{kind:?}: read again");
        let saved: Json = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        assert_eq!(
            boundary(&saved),
            ["ia/same", "ib/same"],
            "{kind:?}: {saved}"
        );
        // A state file of an earlier version (bare ids) still reads: the
        // boundary as before, nothing read again.
        std::fs::write(
            &state,
            json!({"field": "ts", "since": "2026-01-01T00:00:00Z", "ids_at_since": ["same"]})
                .to_string(),
        )
        .unwrap();
        assert!(run("4.jsonl").is_empty(), "{kind:?}: read again");
    }
}

/// Runs over an index list whose since field is `date` in one index and
/// `date_nanos` in another, with `--es-index` and `--es-meta-fields`
/// `_id,_index`; returns a runner giving each run's `index/id`s.
fn run_indices<'a>(
    srv: &'a EsServer,
    dir: &'a Path,
    indices: &'a str,
    extra: &'a [&'a str],
) -> impl Fn(&str) -> (Option<i32>, Vec<String>, String) + 'a {
    move |name: &str| {
        let out = dir.join(name);
        let state = dir.join("state.json");
        let url = srv.url();
        let mut more = vec![
            "--es-meta-fields",
            "_id,_index",
            "--es-since-field",
            "ts",
            "--state-file",
            p(&state),
        ];
        more.extend(extra);
        let mut args = es_args(&url, p(&out), &more);
        let at = args.iter().position(|a| *a == "docs").unwrap();
        args[at] = indices;
        let res = Command::new(bin())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let got = if out.exists() {
            let mut v: Vec<String> = read_jsonl(&out)
                .iter()
                .map(|r| {
                    format!(
                        "{}/{}",
                        r["_index"].as_str().unwrap(),
                        r["_id"].as_str().unwrap()
                    )
                })
                .collect();
            v.sort();
            v
        } else {
            Vec::new()
        };
        (res.status.code(), got, stderr(&res))
    }
}

fn put_index(srv: &EsServer, index: &str, properties: Json) {
    let (status, body) = srv.json(
        "PUT",
        &format!("/{index}"),
        &json!({"mappings": {"properties": properties}}),
    );
    assert_eq!(status, 200, "{body}");
}

/// A mark with nanoseconds (from the `date_nanos` index) is no earlier
/// bound in the `date` index: a document of the millisecond before the
/// mark is not read again, and documents after the mark are read in both.
#[test]
fn a_nanosecond_mark_is_exact_in_millisecond_and_nanosecond_indices() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        put_index(&srv, "im", json!({"ts": {"type": "date"}}));
        put_index(&srv, "inano", json!({"ts": {"type": "date_nanos"}}));
        let d = |id: &str, ts: &str| (id.to_string(), json!({"ts": ts}));
        srv.bulk("im", &[d("old", "2026-01-01T00:00:00.000Z")]);
        srv.bulk("inano", &[d("mark", "2026-01-01T00:00:00.000000001Z")]);
        let dir = tempfile::tempdir().unwrap();
        let run = run_indices(&srv, dir.path(), "im,inano", &[]);
        let (code, got, err) = run("1.jsonl");
        assert_eq!(code, Some(0), "{kind:?}: {err}");
        assert_eq!(got, ["im/old", "inano/mark"], "{kind:?}");
        let (code, got, err) = run("2.jsonl");
        assert_eq!(code, Some(0), "{kind:?}: {err}");
        assert!(got.is_empty(), "{kind:?}: read again: {got:?}");
        // Between the mark and the next millisecond, and just after.
        srv.bulk("inano", &[d("between", "2026-01-01T00:00:00.000000500Z")]);
        srv.bulk("im", &[d("next", "2026-01-01T00:00:00.001Z")]);
        let (code, got, err) = run("3.jsonl");
        assert_eq!(code, Some(0), "{kind:?}: {err}");
        assert_eq!(got, ["im/next", "inano/between"], "{kind:?}");
        let (_, got, _) = run("4.jsonl");
        assert!(got.is_empty(), "{kind:?}: read again: {got:?}");
    }
}

/// A date after the year 9999 is saved in a form the next run reads back:
/// that run starts from it (exit 0, nothing read again), not refusing the
/// state file the last run wrote.
#[test]
fn a_far_future_position_is_read_back_by_the_next_run() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        put_index(&srv, "far", json!({"ts": {"type": "date"}}));
        srv.bulk(
            "far",
            &[
                (
                    "y57971".to_string(),
                    json!({"ts": 1_767_225_600_000_000u64}),
                ),
                ("y10000".to_string(), json!({"ts": 253_402_300_800_000u64})),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let run = run_indices(&srv, dir.path(), "far", &[]);
        let (code, got, err) = run("1.jsonl");
        assert_eq!(code, Some(0), "{kind:?}: {err}");
        assert_eq!(got, ["far/y10000", "far/y57971"], "{kind:?}");
        let (code, got, err) = run("2.jsonl");
        assert_eq!(code, Some(0), "{kind:?}: {err}");
        assert!(got.is_empty(), "{kind:?}: read again: {got:?}");
        srv.bulk(
            "far",
            &[("later".to_string(), json!({"ts": 1_767_225_600_000_001u64}))],
        );
        let (code, got, err) = run("3.jsonl");
        assert_eq!(code, Some(0), "{kind:?}: {err}");
        assert_eq!(got, ["far/later"], "{kind:?}");
    }
}

/// A since field that no index maps (a misspelt name) or that lies inside a
/// nested object is refused with exit 2, naming the flag and the index; an
/// index with no document yet may lack the field.
#[test]
fn an_unmapped_or_nested_since_field_is_refused() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        put_index(&srv, "typo", json!({"ts": {"type": "date"}}));
        srv.bulk("typo", &[("a".to_string(), json!({"ts": "2026-01-01"}))]);
        put_index(
            &srv,
            "nest",
            json!({"items": {"type": "nested", "properties": {"ts": {"type": "date"}}}}),
        );
        srv.bulk(
            "nest",
            &[("a".to_string(), json!({"items": [{"ts": "2026-01-01"}]}))],
        );
        put_index(&srv, "fresh", json!({"other": {"type": "keyword"}}));
        for (index, field, missing, want) in [
            ("typo", "tsx", "include", "no index of --es-index typo maps"),
            ("typo", "tsx", "skip", "no index of --es-index typo maps"),
            ("nest", "items.ts", "include", "nested object items"),
            ("nest", "items.ts", "skip", "nested object items"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state.json");
            let out = dir.path().join("out.jsonl");
            let url = srv.url();
            let mut args = es_args(
                &url,
                p(&out),
                &[
                    "--es-since-field",
                    field,
                    "--es-since-missing",
                    missing,
                    "--state-file",
                    p(&state),
                ],
            );
            let at = args.iter().position(|a| *a == "docs").unwrap();
            args[at] = index;
            let res = Command::new(bin())
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let err = stderr(&res);
            assert_eq!(
                res.status.code(),
                Some(2),
                "{kind:?} {index} {field} {missing}: {err}"
            );
            assert!(
                err.contains(&format!("--es-since-field {field}")) && err.contains(want),
                "{kind:?} {index} {field}: {err}"
            );
            assert!(!state.exists(), "{kind:?} {index} {field}");
        }
        let dir = tempfile::tempdir().unwrap();
        let run = run_indices(&srv, dir.path(), "fresh", &[]);
        let (code, got, err) = run("1.jsonl");
        assert_eq!(code, Some(0), "{kind:?}: an empty index: {err}");
        assert!(got.is_empty(), "{kind:?}");
    }
}
