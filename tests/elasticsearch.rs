//! The Elasticsearch/OpenSearch source against two real servers that speak
//! the REST API (noida-db: Elasticsearch 8; osmem-server: OpenSearch 3),
//! started here on loopback: every document exactly once in every paging
//! mode, filters and fields, the PIT/scroll released, a missing index, a
//! server stopped mid-run, incremental runs, ES -> MySQL, and basic auth, API
//! keys and TLS through a real nginx.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use common::*;

const DOCS: usize = 25_000;

fn doc(i: usize) -> Json {
    let names = [
        "Zürich",
        "東京",
        "naïve café",
        "🚀 launch",
        "plain",
        "quote \" and \\ back",
    ];
    json!({
        "n": i,
        "name": format!("{} {i}", names[i % names.len()]),
        "price": (i as f64) / 100.0,
        "tags": (0..(i % 4)).map(|t| format!("t{t}")).collect::<Vec<_>>(),
        "nested": {"level": i % 7, "inner": {"even": i.is_multiple_of(2), "note": if i.is_multiple_of(3) { Json::Null } else { json!("x\ny") }}},
        "maybe": if i.is_multiple_of(5) { Json::Null } else { json!("here") },
        "updated": i,
    })
}

fn docs(from: usize, to: usize) -> Vec<(String, Json)> {
    (from..to)
        .map(|i| (format!("doc-{i:05}"), doc(i)))
        .collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn es_to_file(srv: &EsServer, index: &str, output: &Path, extra: &[&str]) -> std::process::Output {
    let url = srv.url();
    let mut args = vec![
        "--source-type",
        "elasticsearch",
        "--es-url",
        &url,
        "--es-index",
        index,
        "--sink-type",
        "file",
        "--output-file",
        p(output),
    ];
    args.extend(extra);
    Command::new(bin())
        .args(&args)
        .env("PIPELINE_LOG", "debug")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Checks the output holds exactly documents `from..to`, each once and whole.
fn assert_exactly(output: &Path, from: usize, to: usize, what: &str) {
    let lines = read_jsonl(output);
    assert_eq!(lines.len(), to - from, "{what}: line count");
    let mut seen: HashMap<String, Json> = HashMap::new();
    for mut line in lines {
        let id = line["_id"].as_str().expect("an _id").to_string();
        line.as_object_mut().unwrap().shift_remove("_id");
        assert!(
            seen.insert(id.clone(), line).is_none(),
            "{what}: {id} read twice"
        );
    }
    for i in from..to {
        let id = format!("doc-{i:05}");
        let got = seen
            .get(&id)
            .unwrap_or_else(|| panic!("{what}: {id} missing"));
        assert_eq!(got, &doc(i), "{what}: {id} differs");
    }
}

/// The PIT or scroll ids the run logged as released must be gone.
fn assert_released(srv: &EsServer, stderr: &str, what: &str) {
    let mut checked = 0;
    for line in stderr.lines() {
        if let Some(id) = line.split("closed point in time ").nth(1) {
            let (status, body) = srv.json(
                "POST",
                "/_search",
                &json!({"size": 1, "pit": {"id": id.trim(), "keep_alive": "1m"}}),
            );
            assert_ne!(status, 200, "{what}: point in time still open: {body}");
            checked += 1;
        }
        if let Some(ids) = line.split("cleared scrolls ").nth(1) {
            for id in ids.trim().split(',') {
                let (status, body) = srv.json(
                    "POST",
                    "/_search/scroll",
                    &json!({"scroll": "1m", "scroll_id": id}),
                );
                assert_ne!(status, 200, "{what}: scroll still open: {body}");
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "{what}: no release logged:\n{stderr}");
}

#[test]
fn every_document_exactly_once_in_every_mode_on_both_servers() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, DOCS));
        let dir = tempfile::tempdir().unwrap();
        for (mode, slices) in [("pit", "1"), ("scroll", "1"), ("pit", "4"), ("scroll", "4")] {
            let what = format!("{kind:?} {mode} x{slices}");
            let out_file = dir.path().join(format!("{mode}-{slices}.jsonl"));
            let out = es_to_file(
                &srv,
                "docs",
                &out_file,
                &[
                    "--es-mode",
                    mode,
                    "--es-slices",
                    slices,
                    "--es-page-size",
                    "1000",
                ],
            );
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(0), "{what}: {err}");
            assert!(
                err.contains(&format!(
                    "read={DOCS} inserted={DOCS} updated=0 skipped=0 failed=0"
                )),
                "{what}: {err}"
            );
            assert_exactly(&out_file, 0, DOCS, &what);
            assert_released(&srv, &err, &what);
        }
    }
}

#[test]
fn a_query_filter_and_source_fields() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, 500));
        let dir = tempfile::tempdir().unwrap();
        let out_file = dir.path().join("filtered.jsonl");
        let query = dir.path().join("q.json");
        fs::write(&query, r#"{"query": {"range": {"n": {"lt": 100}}}}"#).unwrap();
        let q = format!("@{}", p(&query));
        let out = es_to_file(
            &srv,
            "docs",
            &out_file,
            &[
                "--es-query",
                &q,
                "--es-fields",
                "n,tags",
                "--es-meta-fields",
                "_id,_index",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        let lines = read_jsonl(&out_file);
        assert_eq!(lines.len(), 100, "{kind:?}");
        for line in &lines {
            let keys: Vec<&str> = line
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, ["_id", "_index", "n", "tags"], "{kind:?}: {line}");
            assert_eq!(line["_index"], "docs");
            let n = line["n"].as_u64().unwrap() as usize;
            assert!(n < 100);
            assert_eq!(line["tags"], doc(n)["tags"]);
        }
    }
}

#[test]
fn a_missing_index_is_a_usage_error() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        let dir = tempfile::tempdir().unwrap();
        let out_file = dir.path().join("none.jsonl");
        let out = es_to_file(&srv, "no-such-index", &out_file, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{kind:?}: {err}");
        assert!(
            err.contains("index 'no-such-index' does not exist"),
            "{kind:?}: {err}"
        );
        assert!(!out_file.exists());
    }
}

#[test]
fn a_server_stopped_mid_run_is_retried_then_fails() {
    for kind in ES_KINDS {
        let mut srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, DOCS));
        let dir = tempfile::tempdir().unwrap();
        let out_file = dir.path().join("cut.jsonl");
        let port = free_port();
        let (url, port_s) = (srv.url(), port.to_string());
        let mut child = spawn(&[
            "--source-type",
            "elasticsearch",
            "--es-url",
            &url,
            "--es-index",
            "docs",
            "--es-page-size",
            "20",
            "--max-retries",
            "2",
            "--sink-type",
            "file",
            "--output-file",
            p(&out_file),
            "--metrics-linger",
            "0",
            "--metrics-port",
            &port_s,
        ]);
        wait_for_port(port, &mut child);
        wait_for_count(port, "read", 1000.0);
        srv.stop();
        let out = wait_with_limit(child, Duration::from_secs(60));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{kind:?}: {err}");
        assert!(
            err.contains("retry 1/2") && err.contains("retry 2/2"),
            "{kind:?}: {err}"
        );
        assert!(err.contains("gave up after 2 retries"), "{kind:?}: {err}");
        assert!(err.contains("output so far left in"), "{kind:?}: {err}");
        assert!(
            !out_file.exists(),
            "{kind:?}: a failed run must not create the target"
        );
    }
}

#[test]
fn incremental_runs_pick_up_only_new_documents() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, 300));
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let run_once = |name: &str| {
            let out_file = dir.path().join(name);
            let out = es_to_file(
                &srv,
                "docs",
                &out_file,
                &[
                    "--es-since-field",
                    "updated",
                    "--state-file",
                    p(&state),
                    "--es-slices",
                    "2",
                ],
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "{kind:?} {name}: {}",
                stderr(&out)
            );
            out_file
        };
        let first = run_once("first.jsonl");
        assert_exactly(&first, 0, 300, "first run");
        let saved: Json = serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
        assert_eq!(saved["since"], 299, "{kind:?}: {saved}");

        srv.bulk("docs", &docs(300, 350));
        let second = run_once("second.jsonl");
        assert_exactly(&second, 300, 350, "second run");

        // A --limit run reads in index order, not by the field: it must not
        // move the saved position.
        srv.bulk("docs", &docs(350, 360));
        let limited = dir.path().join("limited.jsonl");
        let out = es_to_file(
            &srv,
            "docs",
            &limited,
            &[
                "--es-since-field",
                "updated",
                "--state-file",
                p(&state),
                "--limit",
                "3",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        assert_eq!(read_jsonl(&limited).len(), 3);
        let saved: Json = serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
        assert_eq!(
            saved["since"], 349,
            "{kind:?}: a limited run moved the state: {saved}"
        );
        let rest = run_once("rest.jsonl");
        assert_exactly(&rest, 350, 360, "after the limited run");

        let third = run_once("third.jsonl");
        assert_eq!(read_jsonl(&third).len(), 0, "{kind:?}: nothing new");
        let saved: Json = serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
        assert_eq!(saved["since"], 359, "{kind:?}: {saved}");
    }
}

#[test]
fn elasticsearch_to_mysql_end_to_end() {
    let mut db = Db::connect();
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, DOCS));
        let table = table_name(&format!("es_{kind:?}").to_lowercase());
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!(
            "CREATE TABLE {table} (_id VARCHAR(20) PRIMARY KEY, n INT NOT NULL, name VARCHAR(100), \
             price DECIMAL(12,2), tags JSON, nested JSON, maybe VARCHAR(10), updated BIGINT)"
        ));
        let (url, dburl) = (srv.url(), mysql_url());
        let out = run(&[
            "--source-type",
            "elasticsearch",
            "--es-url",
            &url,
            "--es-index",
            "docs",
            "--es-slices",
            "2",
            "--sink-type",
            "mysql",
            "--db-url",
            &dburl,
            "--db-table",
            &table,
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {err}");
        assert!(
            err.contains(&format!(
                "read={DOCS} inserted={DOCS} updated=0 skipped=0 failed=0"
            )),
            "{kind:?}: {err}"
        );
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) FROM {table}")),
            DOCS as u64
        );
        let row = &db.rows(&format!(
            "SELECT n, name, price, tags, nested, maybe FROM {table} WHERE _id = 'doc-01234'"
        ))[0];
        let d = doc(1234);
        assert_eq!(row[0].as_deref(), Some("1234"));
        assert_eq!(row[1].as_deref(), d["name"].as_str());
        assert_eq!(row[2].as_deref(), Some("12.34"));
        let tags: Json = serde_json::from_str(row[3].as_deref().unwrap()).unwrap();
        assert_eq!(tags, d["tags"]);
        let nested: Json = serde_json::from_str(row[4].as_deref().unwrap()).unwrap();
        assert_eq!(nested, d["nested"]);
        assert_eq!(row[5].as_deref(), Some("here"));
        // A second run finds every key already there.
        let out = run(&[
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
        ]);
        assert!(
            stderr(&out).contains(&format!("inserted=0 updated=0 skipped={DOCS}")),
            "{}",
            stderr(&out)
        );
        db.exec(&format!("DROP TABLE {table}"));
    }
}

/// nginx in front of a test server: basic auth, an API-key check, and TLS
/// with a certificate signed by a CA made here.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    basic: u16,
    apikey: u16,
    tls: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (a killed master leaves
        // them running); SIGKILL only if it does not exit.
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sh(dir: &Path, cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Nginx {
    fn start(upstream: u16, user: &str, password: &str, api_key: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        sh(d, "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=pipeline-cli-test-ca 2>/dev/null");
        sh(d, "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null");
        fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        sh(d, "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null");
        let hash = sh(d, &format!("openssl passwd -apr1 '{password}'"));
        fs::write(d.join("htpasswd"), format!("{user}:{}", hash.trim())).unwrap();
        let (basic, apikey, tls) = (free_port(), free_port(), free_port());
        let dp = d.display();
        let conf = format!(
            "user root;\nworker_processes 1;\ndaemon off;\npid {dp}/nginx.pid;\nerror_log {dp}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n access_log off;\n client_body_temp_path {dp}/body; proxy_temp_path {dp}/proxy;\n \
             fastcgi_temp_path {dp}/fcgi; uwsgi_temp_path {dp}/uwsgi; scgi_temp_path {dp}/scgi;\n \
             server {{ listen 127.0.0.1:{basic}; auth_basic \"es\"; auth_basic_user_file {dp}/htpasswd;\n   \
             location / {{ proxy_pass http://127.0.0.1:{upstream}; proxy_set_header Authorization \"\"; }} }}\n \
             server {{ listen 127.0.0.1:{apikey};\n   location / {{ if ($http_authorization != \"ApiKey {api_key}\") {{ return 401; }}\n   \
             proxy_pass http://127.0.0.1:{upstream}; proxy_set_header Authorization \"\"; }} }}\n \
             server {{ listen 127.0.0.1:{tls} ssl; ssl_certificate {dp}/server.pem; ssl_certificate_key {dp}/server.key;\n   \
             location / {{ proxy_pass http://127.0.0.1:{upstream}; }} }}\n}}\n"
        );
        fs::write(d.join("nginx.conf"), conf).unwrap();
        let nginx = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let child = Command::new(nginx)
            .args(["-p", &dp.to_string(), "-c", &format!("{dp}/nginx.conf")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx is required (scripts/services.sh installs it)");
        let nginx = Nginx {
            child,
            dir,
            basic,
            apikey,
            tls,
        };
        let t = Instant::now();
        while !(port_open(basic) && port_open(apikey) && port_open(tls)) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "nginx did not start: {}",
                fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }
}

fn es_run(url: &str, env: &[(&str, &str)], extra: &[&str], out: &Path) -> std::process::Output {
    let mut cmd = Command::new(bin());
    cmd.args([
        "--source-type",
        "elasticsearch",
        "--es-url",
        url,
        "--es-index",
        "docs",
        "--sink-type",
        "file",
        "--output-file",
        p(out),
    ])
    .args(extra)
    .env_remove("PIPELINE_ES_PASS")
    .env_remove("PIPELINE_ES_API_KEY")
    .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn basic_auth_api_keys_and_tls_through_nginx() {
    let srv = EsServer::start(EsKind::Noida);
    srv.bulk("docs", &docs(0, 50));
    let password = "Es-S3cret-do-not-print";
    let api_key = "dGVzdDprZXktZG8tbm90LXByaW50";
    let nginx = Nginx::start(srv.port, "reader", password, api_key);
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    let basic = format!("http://127.0.0.1:{}", nginx.basic);
    let keyed = format!("http://127.0.0.1:{}", nginx.apikey);
    let tls = format!("https://127.0.0.1:{}", nginx.tls);
    let ca = nginx.dir.path().join("ca.pem");
    let ok = |out: &std::process::Output, what: &str| {
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(out));
        assert_exactly(&out_file, 0, 50, what);
    };

    let out = es_run(
        &basic,
        &[("PIPELINE_ES_PASS", password)],
        &["--es-user", "reader"],
        &out_file,
    );
    ok(&out, "basic auth");
    assert!(!stderr(&out).contains(password));

    let wrong = "Wr0ng-do-not-print";
    let out = es_run(
        &basic,
        &[("PIPELINE_ES_PASS", wrong)],
        &["--es-user", "reader"],
        &out_file,
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("refused the credentials (HTTP 401)"), "{err}");
    assert!(
        !err.contains(wrong) && !err.contains(password),
        "a password leaked: {err}"
    );

    let out = es_run(&keyed, &[("PIPELINE_ES_API_KEY", api_key)], &[], &out_file);
    ok(&out, "API key");
    assert!(!stderr(&out).contains(api_key));
    let out = es_run(
        &keyed,
        &[("PIPELINE_ES_API_KEY", "bm9wZTpub3Bl")],
        &[],
        &out_file,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refused the credentials"),
        "{}",
        stderr(&out)
    );

    let out = es_run(&tls, &[], &["--es-ca-cert", p(&ca)], &out_file);
    ok(&out, "TLS with --es-ca-cert");
    let out = es_run(&tls, &[], &[], &out_file);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown CA must be refused: {}",
        stderr(&out)
    );
    // At once, not retried for --retry-for: retrying cannot mend it.
    assert!(
        stderr(&out).contains("TLS certificate that is not trusted")
            && stderr(&out).contains("--es-ca-cert"),
        "{}",
        stderr(&out)
    );
    let out = es_run(&tls, &[], &["--es-insecure"], &out_file);
    ok(&out, "TLS with --es-insecure");
}

#[test]
fn an_expired_point_in_time_or_scroll_is_a_clear_error() {
    use std::io::Read;
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, 5000));
        for mode in ["pit", "scroll"] {
            let url = srv.url();
            // stdout is not read for a while: the sink stalls, the queue
            // fills, the source waits longer than the keep-alive.
            let mut child = spawn(&[
                "--source-type",
                "elasticsearch",
                "--es-url",
                &url,
                "--es-index",
                "docs",
                "--es-mode",
                mode,
                "--es-keep-alive",
                "1s",
                "--es-page-size",
                "100",
                "--queue-size",
                "10",
                "--batch-size",
                "10",
                "--sink-type",
                "file",
                "--output-file",
                "-",
            ]);
            std::thread::sleep(Duration::from_secs(4));
            let mut stdout = child.stdout.take().unwrap();
            let drain = std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = stdout.read_to_end(&mut sink);
            });
            let out = wait_with_limit(child, Duration::from_secs(60));
            drain.join().unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{kind:?} {mode}: {err}");
            assert!(
                err.contains("expired") && err.contains("--es-keep-alive 1s"),
                "{kind:?} {mode}: {err}"
            );
        }
    }
}

/// `--es-pit-id` must be a point in time of `--es-index`: one opened on
/// another index (with documents, or empty), a closed one and a mistyped
/// one are refused with exit 2 naming --es-pit-id, before anything is
/// written; one opened on the index itself is read.
#[test]
fn a_point_in_time_of_another_index_is_refused() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, 50));
        srv.bulk("other", &docs(100, 130));
        let (status, body) = srv.json("PUT", "/empty", &json!({}));
        assert_eq!(status, 200, "{kind:?}: {body}");
        let dir = tempfile::tempdir().unwrap();
        let url = srv.url();
        let open_pit = |index: &str| {
            let out = Command::new(bin())
                .args([
                    "--source-type",
                    "elasticsearch",
                    "--es-url",
                    &url,
                    "--es-index",
                    index,
                    "--es-open-pit",
                ])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let out_file = dir.path().join("out.jsonl");
        let with_pit = |pit: &str| {
            es_to_file(
                &srv,
                "docs",
                &out_file,
                &["--es-pit-id", pit, "--es-slices", "2", "--es-slice-id", "0"],
            )
        };
        let closed = open_pit("docs");
        let (path, body) = match kind {
            EsKind::Noida => ("/_pit", json!({"id": closed})),
            EsKind::Osmem => ("/_search/point_in_time", json!({"pit_id": [closed]})),
        };
        let (status, answer) = srv.json("DELETE", path, &body);
        assert_eq!(status, 200, "{kind:?}: {answer}");
        for (what, pit) in [
            ("another index", open_pit("other")),
            ("an empty index", open_pit("empty")),
            ("a closed point in time", closed),
            ("not an id", "bm90LWEtcGl0LWlk".to_string()),
        ] {
            let out = with_pit(&pit);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{kind:?} {what}: {err}");
            assert!(err.contains("--es-pit-id"), "{kind:?} {what}: {err}");
            assert!(!out_file.exists(), "{kind:?} {what}: output written");
            assert!(
                !dir.path().join("out.jsonl.partial").exists(),
                "{kind:?} {what}: output started"
            );
        }
        let pit = open_pit("docs");
        let (mut got, mut n) = (0, 0);
        for slice in ["0", "1"] {
            let out = es_to_file(
                &srv,
                "docs",
                &out_file,
                &[
                    "--es-pit-id",
                    &pit,
                    "--es-slices",
                    "2",
                    "--es-slice-id",
                    slice,
                ],
            );
            assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
            got += read_jsonl(&out_file).len();
            n += 1;
        }
        assert_eq!((got, n), (50, 2), "{kind:?}");
    }
}

/// The slice count N is part of what the processes of a sliced job share:
/// the `slices` label, the Pushgateway group and the per-slice state file. A
/// process given another N than the one its state file was written for is
/// refused (exit 2, naming --state-file and both counts); one that has no
/// state yet pushes to a group of its own, so the two counts stay visible.
#[test]
fn processes_that_disagree_on_the_slice_count_are_told_apart() {
    let pg = Pushgateway::start();
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("docs", &docs(0, 200));
        let dir = tempfile::tempdir().unwrap();
        let id = format!("resliced-{kind:?}").to_lowercase();
        let state = dir.path().join("s.{slice}.json");
        let textfile = dir.path().join("m.{slice}.prom");
        let out_file = dir.path().join("out.{slice}.jsonl");
        let pg_url = pg.url();
        let slice = |i: &str, n: &str| {
            es_to_file(
                &srv,
                "docs",
                &out_file,
                &[
                    "--es-slices",
                    n,
                    "--es-slice-id",
                    i,
                    "--es-since-field",
                    "updated",
                    "--state-file",
                    p(&state),
                    "--metrics-textfile",
                    p(&textfile),
                    "--pushgateway-url",
                    &pg_url,
                    "--pipeline-id",
                    &id,
                ],
            )
        };
        let mut read = 0;
        for i in ["0", "1"] {
            let out = slice(i, "2");
            assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
            read += read_jsonl(&dir.path().join(format!("out.{i}.jsonl"))).len();
            let saved: Json = serde_json::from_str(
                &fs::read_to_string(dir.path().join(format!("s.{i}.json"))).unwrap(),
            )
            .unwrap();
            assert_eq!(
                (saved["slice"].to_string(), saved["slices"].clone()),
                (i.to_string(), json!(2)),
                "{kind:?}: {saved}"
            );
            let text = fs::read_to_string(dir.path().join(format!("m.{i}.prom"))).unwrap();
            let labels = [("pipeline_id", &*id), ("slice", i), ("slices", "2")];
            assert!(
                prom::value(&text, "pipeline_records_read_total", &labels).is_some(),
                "{kind:?}: {text}"
            );
        }
        assert_eq!(read, 200, "{kind:?}");

        // Slice 0 of 3 with the state of slice 0 of 2: refused.
        let out = slice("0", "3");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{kind:?}: {err}");
        assert!(
            err.contains("--state-file")
                && err.contains("--es-slices 2")
                && err.contains("--es-slices 3"),
            "{kind:?}: {err}"
        );
        // Slice 2 of 3 has no state yet: it runs, and pushes beside the
        // groups of N = 2 instead of over them.
        let out = slice("2", "3");
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        let text = pg.metrics();
        for (i, n) in [("0", "2"), ("1", "2"), ("2", "3")] {
            let labels = [("pipeline_id", &*id), ("slice", i), ("slices", n)];
            assert!(
                prom::value(&text, "pipeline_records_read_total", &labels).is_some(),
                "{kind:?}: no group for slice {i} of {n}: {text}"
            );
        }

        // Re-sliced as docs/scaling.md says: new state files. The three slices
        // read everything once, then only what changed, once.
        let resliced = |name: &str| {
            let state = dir.path().join("r.{slice}.json");
            let out = dir.path().join(format!("{name}.{{slice}}.jsonl"));
            let mut all = Vec::new();
            for i in ["0", "1", "2"] {
                let res = es_to_file(
                    &srv,
                    "docs",
                    &out,
                    &[
                        "--es-slices",
                        "3",
                        "--es-slice-id",
                        i,
                        "--es-since-field",
                        "updated",
                        "--state-file",
                        p(&state),
                    ],
                );
                assert_eq!(res.status.code(), Some(0), "{kind:?}: {}", stderr(&res));
                all.extend(read_jsonl(&dir.path().join(format!("{name}.{i}.jsonl"))));
            }
            let mut ids: Vec<String> = all
                .iter()
                .map(|l| l["_id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        };
        let want = |from, to| {
            (from..to)
                .map(|i| format!("doc-{i:05}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(resliced("first"), want(0, 200), "{kind:?}");
        srv.bulk("docs", &docs(200, 220));
        assert_eq!(resliced("second"), want(200, 220), "{kind:?}");
        assert_eq!(resliced("third"), want(0, 0), "{kind:?}");
    }
}

/// A point in time opened on fewer indices than `--es-index` covers (one
/// index of a pattern) would read fewer documents: refused, naming the
/// index it lacks. One opened on the pattern itself is read whole.
#[test]
fn a_point_in_time_of_fewer_indices_is_refused() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        srv.bulk("part-a", &docs(0, 20));
        srv.bulk("part-b", &docs(20, 35));
        let dir = tempfile::tempdir().unwrap();
        let url = srv.url();
        let open_pit = |index: &str| {
            let out = Command::new(bin())
                .args([
                    "--source-type",
                    "elasticsearch",
                    "--es-url",
                    &url,
                    "--es-index",
                    index,
                    "--es-open-pit",
                ])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let out_file = dir.path().join("out.jsonl");
        let meta = ["--es-meta-fields", "_id,_index", "--es-pit-id"];
        let pit = open_pit("part-a");
        let out = es_to_file(&srv, "part-*", &out_file, &[&meta[..], &[&pit]].concat());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{kind:?}: {err}");
        assert!(
            err.contains("--es-pit-id") && err.contains("part-b"),
            "{kind:?}: {err}"
        );
        assert!(!out_file.exists(), "{kind:?}");
        let pit = open_pit("part-*");
        let out = es_to_file(&srv, "part-*", &out_file, &[&meta[..], &[&pit]].concat());
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        assert_eq!(read_jsonl(&out_file).len(), 35, "{kind:?}");
    }
}

/// One document that cannot be written (two fields flatten to one name)
/// must not freeze an incremental job: without a dead-letter file the run
/// names the document and the flag that gets it going, and keeps the
/// position; with one, the position moves past the kept document, and the
/// next run reads only what is new.
#[test]
fn one_bad_document_does_not_freeze_an_incremental_job() {
    for kind in ES_KINDS {
        let srv = EsServer::start(kind);
        let mut batch = docs(0, 20);
        batch[5].1["nested_level"] = json!(1);
        srv.bulk("docs", &batch);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let dead = dir.path().join("dead.jsonl");
        let incremental = [
            "--es-since-field",
            "updated",
            "--state-file",
            p(&state),
            "--flatten",
        ];

        let out = es_to_file(&srv, "docs", &dir.path().join("a.jsonl"), &incremental);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{kind:?}: {err}");
        assert!(
            !state.exists(),
            "{kind:?}: the position moved past a lost document"
        );
        let reject = err
            .lines()
            .find(|l| l.contains("rejected document"))
            .unwrap_or_else(|| panic!("{kind:?}: no reject line: {err}"));
        assert!(
            reject.contains("_id=doc-00005 in index docs"),
            "{kind:?}: the reject line names the document: {reject}"
        );
        assert!(
            err.contains("not moved") && err.contains("--dead-letter PATH"),
            "{kind:?}: the summary says which flag gets it going: {err}"
        );

        // Failures --accept-errors allows, kept nowhere: exit 0, and the
        // position stays, so the next run reads the document again.
        let mut accepting = incremental.to_vec();
        accepting.extend(["--accept-errors", "10%"]);
        let out = es_to_file(&srv, "docs", &dir.path().join("a2.jsonl"), &accepting);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {err}");
        assert!(
            !state.exists(),
            "{kind:?}: moved past a document kept nowhere"
        );
        assert!(err.contains("not moved"), "{kind:?}: {err}");

        let mut with_dead = incremental.to_vec();
        with_dead.extend(["--dead-letter", p(&dead)]);
        let out = es_to_file(&srv, "docs", &dir.path().join("b.jsonl"), &with_dead);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{kind:?}: {err}");
        let saved: Json = serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
        assert_eq!(saved["since"], 19, "{kind:?}: {saved}");
        assert!(
            err.contains("moved past the 1 failed records"),
            "{kind:?}: {err}"
        );
        let kept = read_jsonl(&dead);
        assert_eq!(kept.len(), 1, "{kind:?}");
        assert_eq!(kept[0]["record"]["_id"], "doc-00005", "{kind:?}");
        assert_eq!(read_jsonl(&dir.path().join("b.jsonl")).len(), 19);

        srv.bulk("docs", &docs(20, 25));
        let next = dir.path().join("c.jsonl");
        let out = es_to_file(&srv, "docs", &next, &with_dead);
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        let ids: Vec<String> = read_jsonl(&next)
            .iter()
            .map(|l| l["_id"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = (20..25).map(|i| format!("doc-{i:05}")).collect();
        assert_eq!(ids.len(), 5, "{kind:?}: {ids:?}");
        assert!(ids.iter().all(|i| want.contains(i)), "{kind:?}: {ids:?}");
        assert_eq!(read_jsonl(&dead).len(), 1, "{kind:?}: read again");
    }
}
