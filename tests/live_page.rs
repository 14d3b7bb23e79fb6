//! The live page at `/`, `/status` and `/health`, seen as a person and a
//! monitor see them: rendered in a real browser (Debian's headless
//! Chromium, which scripts/services.sh installs) during a long CSV → MariaDB
//! run slowed by a proxy, with and without scripts; and the final state
//! served for `--metrics-linger` after the run ends or fails to start.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::proxy::TcpProxy;
use common::*;
use serde_json::Value as Json;

const ROWS: usize = 40_000;

fn chromium() -> &'static str {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return c;
        }
    }
    panic!("Chromium is required (scripts/services.sh installs Debian's chromium package)");
}

/// Renders `url` headless and returns the DOM after its scripts ran (for
/// up to 3 s of page time).
fn dump_dom(url: &str, profile: &Path) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = err.lines().filter(|l| !l.contains("dbus")).collect();
    assert!(
        dom.contains("</html>"),
        "chromium rendered nothing ({}, {} bytes): {}",
        out.status,
        dom.len(),
        said.join("\n")
    );
    dom
}

/// The page as a browser with scripts off shows it: the HTML served at
/// `port`, rendered from a file whose policy forbids every script.
fn dump_dom_without_scripts(port: u16, dir: &Path) -> String {
    let (code, _, html) = http("GET", port, "/").unwrap();
    assert_eq!(code, 200);
    let file = dir.join("no-scripts.html");
    let policy = "<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'none'\">";
    std::fs::write(
        &file,
        html.replacen("<head>", &format!("<head>{policy}"), 1),
    )
    .unwrap();
    dump_dom(
        &format!("file://{}", file.display()),
        &dir.join("p-no-scripts"),
    )
}

/// The text of the element with `id` in a rendered DOM.
fn text_of(dom: &str, id: &str) -> String {
    let start = format!("id=\"{id}\"");
    let at = dom
        .find(&start)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[at..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap() + open;
    rest[open..close]
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn status(port: u16) -> Json {
    let (code, ctype, body) = http("GET", port, "/status").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    serde_json::from_str(&body).unwrap()
}

fn wait_for_status(port: u16, what: &str, cond: impl Fn(&Json) -> bool) -> Json {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(port);
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_live_page_in_a_browser_during_a_long_mysql_run() {
    let mut db = Db::connect();
    let table = table_name("live_page");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(40))"
    ));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut csv = String::from("id,name\n");
    for i in 0..ROWS {
        csv.push_str(&format!("{i},name {i}\n"));
    }
    std::fs::write(&input, csv).unwrap();
    // A slow link to MariaDB: the run lasts until the test lets it go.
    let proxy = TcpProxy::start(3306);
    proxy.slow(Duration::from_millis(40));
    let url = proxy.url();
    let port = free_port();
    let port_s = port.to_string();
    let args = csv_to_mysql(
        input.to_str().unwrap(),
        &url,
        &table,
        &[
            "--batch-size",
            "200",
            "--workers",
            "1",
            "--metrics-port",
            &port_s,
            "--metrics-linger",
            "5m",
            "--pipeline-id",
            "live-page",
        ],
    );
    let mut child = Bin::new(&args).no_stdin().spawn();
    wait_for_port(port, &mut child);
    let page = format!("http://127.0.0.1:{port}/");

    let s = wait_for_status(port, "rows inserted", |s| {
        s["records"]["inserted"].as_u64() > Some(0)
    });
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(s["pipeline_id"], "live-page");
    assert_eq!(s["progress"]["basis"], "bytes");
    assert!(s["source"].as_str().unwrap().contains("in.csv"), "{s}");
    assert!(s["sink"].as_str().unwrap().contains(&table), "{s}");

    // Rendered with scripts: the numbers as the page's script put them.
    let first = dump_dom(&page, &dir.path().join("p1"));
    assert!(
        text_of(&first, "conn").starts_with("live; updated"),
        "the page's script did not run: {}",
        text_of(&first, "conn")
    );
    assert!(first.contains("live-page"), "the pipeline id");
    assert_eq!(text_of(&first, "state"), "running");
    let read_1 = text_of(&first, "read");
    assert!(!read_1.is_empty() && read_1 != "0", "{read_1}");
    assert!(text_of(&first, "rate_now").ends_with("/s"));
    assert!(text_of(&first, "rate_average").ends_with("/s"));
    let progress = text_of(&first, "progress");
    assert!(progress.contains(" % ("), "{progress}");
    let eta = text_of(&first, "eta");
    assert!(eta.ends_with(" left"), "{eta}");
    assert!(text_of(&first, "batch_write").contains("median"));
    assert!(text_of(&first, "workers").contains("1 writing"));

    // A second rendering later: the run has moved on.
    std::thread::sleep(Duration::from_millis(1500));
    let second = dump_dom(&page, &dir.path().join("p2"));
    assert_ne!(
        (text_of(&second, "inserted"), text_of(&second, "elapsed")),
        (text_of(&first, "inserted"), text_of(&first, "elapsed")),
        "the page did not change"
    );

    // Without scripts: the numbers as of the request, all of them there.
    let plain = dump_dom_without_scripts(port, dir.path());
    assert!(text_of(&plain, "conn").starts_with("as of"));
    assert_eq!(text_of(&plain, "state"), "running");
    assert!(text_of(&plain, "progress").contains(" % ("));
    assert!(text_of(&plain, "eta").ends_with(" left"));

    // As on a phone: a screenshot that is a real image.
    let shot = dir.path().join("phone.png");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("p4").display()
        ))
        .arg("--window-size=390,844")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&page)
        .output()
        .unwrap();
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );

    // The end: served for --metrics-linger, exit code included.
    proxy.slow(Duration::ZERO);
    let end = wait_for_status(port, "the completed state", |s| s["state"] == "completed");
    assert_eq!(end["exit_code"], 0, "{end}");
    assert_eq!(end["records"]["inserted"], ROWS as u64);
    assert_eq!(end["progress"]["fraction"], 1.0);
    let last = dump_dom(&page, &dir.path().join("p5"));
    assert_eq!(text_of(&last, "state"), "completed (exit 0)");
    assert_eq!(text_of(&last, "eta"), "ended");
    let metrics = scrape(port);
    assert_eq!(value(&metrics, "pipeline_last_exit_code", &[]), Some(0.0));
    assert_eq!(
        value(&metrics, "pipeline_state", &[("state", "completed")]),
        Some(1.0)
    );
    let (code, _, body) = http("GET", port, "/health").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        db.count(&format!("SELECT COUNT(*) FROM {table}")),
        ROWS as u64
    );

    // A signal ends the linger at once; the exit code stays the run's.
    signal(&child, "TERM");
    let out = wait_with_limit(child, Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--metrics-linger"),
        "{}",
        stderr(&out)
    );
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn the_page_shows_rejected_rows_and_health_says_records_fail() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.jsonl");
    std::fs::write(&input, "a,b\n1,2\n3\n4,5\n").unwrap();
    let port = free_port();
    let port_s = port.to_string();
    let mut args = csv_to_file(input.to_str().unwrap(), output.to_str().unwrap());
    args.extend(["--metrics-port", &port_s, "--metrics-linger", "5m"]);
    let mut child = Bin::new(&args).no_stdin().spawn();
    wait_for_port(port, &mut child);
    let s = wait_for_status(port, "the end", |s| s["state"] == "completed");
    assert_eq!(s["exit_code"], 1, "{s}");
    let rejected = s["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["message"].as_str().unwrap().contains("rejected row"))
        .unwrap_or_else(|| panic!("no rejected row in recent: {s}"));
    assert_eq!(rejected["level"], "WARN");
    assert!(
        rejected["at"].as_str().unwrap().contains("line=3"),
        "{rejected}"
    );
    let (code, _, body) = http("GET", port, "/health").unwrap();
    assert_eq!(code, 200, "records failing is not a dead process: {body}");
    let health: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "records_failing", "{health}");
    assert_eq!(health["records_failed"], 1);
    let page = dump_dom(&format!("http://127.0.0.1:{port}/"), &dir.path().join("p"));
    assert_eq!(text_of(&page, "failed"), "1");
    assert!(page.contains("rejected row"), "the last warnings are shown");
    assert!(page.contains("line=3"));
    signal(&child, "INT");
    let out = wait_with_limit(child, Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn a_run_that_cannot_start_serves_its_failure_then_exits_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "a\n1\n").unwrap();
    let table = table_name("never_made");
    for linger in ["3s", "0"] {
        let port = free_port();
        let port_s = port.to_string();
        let args = csv_to_mysql(
            input.to_str().unwrap(),
            "mysql://root@127.0.0.1:3306/test",
            &table,
            &["--metrics-port", &port_s, "--metrics-linger", linger],
        );
        let mut child = Bin::new(&args).no_stdin().spawn();
        if linger == "0" {
            let out = wait_with_limit(child, Duration::from_secs(30));
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            assert!(!stderr(&out).contains("--metrics-linger"));
            continue;
        }
        wait_for_port(port, &mut child);
        let s = wait_for_status(port, "the failed state", |s| s["state"] == "failed");
        assert_eq!(s["exit_code"], 2, "{s}");
        let (code, _, body) = http("GET", port, "/health").unwrap();
        assert_eq!(code, 503, "{body}");
        let text = scrape(port);
        assert_eq!(value(&text, "pipeline_last_exit_code", &[]), Some(2.0));
        // Nobody signals it: the linger ends by itself.
        let out = wait_with_limit(child, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        let error_at = err.find("error:").expect("the error line");
        let linger_at = err.find("--metrics-linger").expect("the linger line");
        assert!(error_at < linger_at, "the error is said first: {err}");
        assert!(!port_open(port), "port still open after exit");
    }
}

/// While the final state is served, the next run may already start (the
/// `--lock-file` is released first), the page names no credential or
/// query token, and a dead-letter file that is `/dev/null` is taken.
#[test]
fn the_lock_is_free_and_no_secret_is_shown_while_the_end_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "a,b\n1,2\n3\n").unwrap();
    let lock = dir.path().join("run.lock");
    let port = free_port();
    let port_s = port.to_string();
    let first_out = dir.path().join("first.jsonl");
    let mut args = csv_to_file(input.to_str().unwrap(), first_out.to_str().unwrap());
    args.extend([
        "--lock-file",
        lock.to_str().unwrap(),
        "--dead-letter",
        "/dev/null",
        "--metrics-port",
        &port_s,
        "--metrics-linger",
        "5m",
    ]);
    let mut child = Bin::new(&args).no_stdin().spawn();
    wait_for_port(port, &mut child);
    let s = wait_for_status(port, "the end", |s| s["state"] == "completed");
    assert_eq!(s["exit_code"], 1, "one row failed: {s}");

    let second_out = dir.path().join("second.jsonl");
    let mut next = csv_to_file(input.to_str().unwrap(), second_out.to_str().unwrap());
    next.extend([
        "--lock-file",
        lock.to_str().unwrap(),
        "--accept-errors",
        "1",
    ]);
    let out = run(&next);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    signal(&child, "TERM");
    let out = wait_with_limit(child, Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // An Elasticsearch URL with a password and a token in its query, not
    // answering: the page and /status show neither.
    let es_port = free_port().to_string();
    let url = format!("http://elastic:S3cretPW@127.0.0.1:{es_port}/?token=QTOKEN");
    let port = free_port();
    let port_s = port.to_string();
    let args = [
        "--source-type",
        "elasticsearch",
        "--es-url",
        &url,
        "--es-index",
        "idx",
        "--start-retry-for",
        "1s",
        "--sink-type",
        "file",
        "--output-file",
        second_out.to_str().unwrap(),
        "--metrics-port",
        &port_s,
        "--metrics-linger",
        "5m",
    ];
    let mut child = Bin::new(&args).no_stdin().spawn();
    wait_for_port(port, &mut child);
    let s = wait_for_status(port, "the failed start", |s| s["state"] == "failed");
    let (_, _, page) = http("GET", port, "/").unwrap();
    let shown = format!("{s}{page}");
    assert!(shown.contains(&format!("127.0.0.1:{es_port}")), "{shown}");
    for secret in ["S3cretPW", "QTOKEN", "elastic@"] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    assert!(
        s["recent"].as_array().is_some_and(|r| !r.is_empty()),
        "the failure is among the warnings: {s}"
    );
    signal(&child, "TERM");
    let out = wait_with_limit(child, Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
