//! Helpers shared by the integration tests: run the real binary, pick free
//! ports, speak plain HTTP/1.1 to the metrics server, read metric values,
//! call the real promtool.
#![allow(dead_code)]

pub mod proxy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pipeline-cli")
}

/// Runs the binary to the end with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("PIPELINE_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run pipeline-cli")
}

/// Starts the binary with `args`, stdin piped, stdout/stderr captured.
pub fn spawn(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .env_remove("PIPELINE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pipeline-cli")
}

/// The standard CSV -> file arguments.
pub fn csv_to_file<'a>(input: &'a str, output: &'a str) -> Vec<&'a str> {
    vec![
        "--source-type",
        "csv",
        "--csv-file",
        input,
        "--sink-type",
        "file",
        "--output-file",
        output,
    ]
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// True while something accepts connections on the port.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// One HTTP/1.1 request; returns (status, content-type, body).
pub fn http(method: &str, port: u16, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, ctype, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// GET `/metrics`, panicking on anything but 200.
pub fn scrape(port: u16) -> String {
    let (status, _, body) = http("GET", port, "/metrics").expect("scrape /metrics");
    assert_eq!(status, 200, "GET /metrics");
    body
}

/// Waits until the metrics server answers.
pub fn wait_for_port(port: u16, child: &mut Child) {
    let t = Instant::now();
    while !port_open(port) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("pipeline-cli exited ({status}) before serving metrics");
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "metrics server never came up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the one series of `name` (with any labels) whose label set
/// contains every `labels` pair, e.g. `value(&text, "pipeline_errors_total",
/// &[("stage", "source"), ("error_type", "parse")])`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, v) = l.rsplit_once(' ')?;
        let (n, rest) = match series.split_once('{') {
            Some((n, rest)) => (n, rest),
            None => (series, ""),
        };
        if n != name {
            return None;
        }
        let all = labels
            .iter()
            .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\"")));
        all.then(|| v.parse().ok())?
    })
}

/// Runs `promtool check metrics` on `text`; returns its combined output and
/// whether it passed. promtool must be installed (scripts/test.sh does it).
pub fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is required: run scripts/test.sh, which installs Debian's prometheus package",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), all)
}

/// Sends a signal by name (INT, TERM) to a child.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} failed");
}

/// Waits for a child at most `limit`, killing it (and failing) past that.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> Output {
    let t = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "pipeline-cli did not exit within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a JSON-lines file into values, failing on any invalid line.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("read output");
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: invalid JSON ({e}): {l}", path.display(), i + 1))
        })
        .collect()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Quotes a CSV field the RFC 4180 way; `force` quotes even when not needed.
pub fn csv_field(s: &str, force: bool) -> String {
    if force || s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A connection to the test MariaDB (`PIPELINE_TEST_MYSQL_URL`, default
/// `mysql://root@127.0.0.1:3306/test`; scripts/services.sh starts it).
pub struct Db {
    rt: tokio::runtime::Runtime,
    conn: mysql_async::Conn,
}

/// The test database URL.
pub fn mysql_url() -> String {
    std::env::var("PIPELINE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

impl Db {
    /// Connects, failing the test with a hint when the server is not there.
    pub fn connect() -> Db {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = mysql_url();
        let conn = rt
            .block_on(mysql_async::Conn::new(
                mysql_async::Opts::from_url(&url).expect("valid PIPELINE_TEST_MYSQL_URL"),
            ))
            .unwrap_or_else(|e| {
                panic!("MariaDB at {url} is required (scripts/services.sh starts it): {e}")
            });
        let mut db = Db { rt, conn };
        db.exec("SET time_zone = '+00:00'");
        db
    }

    /// Runs statements.
    pub fn exec(&mut self, sql: &str) {
        use mysql_async::prelude::Queryable;
        self.rt
            .block_on(self.conn.query_drop(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs a statement that may fail.
    pub fn try_exec(&mut self, sql: &str) -> Result<(), String> {
        use mysql_async::prelude::Queryable;
        self.rt
            .block_on(self.conn.query_drop(sql))
            .map_err(|e| e.to_string())
    }

    /// Runs a query; every value as text (NULL as None).
    pub fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        use mysql_async::prelude::Queryable;
        let rows: Vec<mysql_async::Row> = self
            .rt
            .block_on(self.conn.query(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => {
                            Some(String::from_utf8_lossy(&b).into_owned())
                        }
                        other => Some(other.as_sql(true)),
                    })
                    .collect()
            })
            .collect()
    }

    /// One number from a query.
    pub fn count(&mut self, sql: &str) -> u64 {
        self.rows(sql)[0][0].as_deref().unwrap().parse().unwrap()
    }
}

/// A table name unique to this test and process.
pub fn table_name(test: &str) -> String {
    format!("t_{test}_{}", std::process::id())
}

/// The number after `key=` in a summary line.
pub fn summary_number(err: &str, key: &str) -> u64 {
    err.split(&format!(" {key}="))
        .nth(1)
        .or_else(|| err.split(&format!("{key}=")).nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in summary: {err}"))
}

/// One HTTP/1.1 request with a body; returns (status, body).
pub fn http_body(
    method: &str,
    port: u16,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let rest = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, rest))
}

/// The two Elasticsearch-API servers the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EsKind {
    /// noida-db: the Elasticsearch 8 API.
    Noida,
    /// osmem-server: the OpenSearch 3 API.
    Osmem,
}

/// Both kinds, for tests that run against each.
pub const ES_KINDS: [EsKind; 2] = [EsKind::Noida, EsKind::Osmem];

/// A test server on a free loopback port, stopped (by PID) when dropped.
pub struct EsServer {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    /// Which server.
    pub kind: EsKind,
    _dir: tempfile::TempDir,
}

fn venv() -> std::path::PathBuf {
    std::env::var_os("PIPELINE_TEST_VENV")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"))
}

fn venv_python(code: &str) -> String {
    let py = venv().join("bin/python");
    let out = Command::new(&py)
        .args(["-c", code])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} is required (scripts/services.sh installs it): {e}",
                py.display()
            )
        });
    assert!(
        out.status.success(),
        "the test servers are not installed in {} (run scripts/services.sh): {}",
        venv().display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl EsServer {
    /// Starts a server and waits until it answers `GET /`.
    pub fn start(kind: EsKind) -> EsServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = match kind {
            EsKind::Noida => {
                let bin = venv_python(
                    "import noida_db, os; print(os.path.join(os.path.dirname(noida_db.__file__), 'noida-db'))",
                );
                let mut c = Command::new(bin);
                c.args([
                    "start",
                    "--only",
                    "elasticsearch",
                    "--host",
                    "127.0.0.1",
                    "--elasticsearch-port",
                    &port.to_string(),
                    "--data-dir",
                ])
                .arg(dir.path());
                c
            }
            EsKind::Osmem => {
                let bin = venv_python("import osmem_server; print(osmem_server.resolve_binary())");
                let mut c = Command::new(bin);
                c.args(["-addr", &format!("127.0.0.1:{port}"), "-no-stdin-watch"]);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the test server");
        let mut server = EsServer {
            child: Some(child),
            port,
            kind,
            _dir: dir,
        };
        let t = Instant::now();
        loop {
            if let Ok((200, _, _)) = http("GET", port, "/") {
                break;
            }
            if let Some(c) = server.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("{kind:?} test server exited at start: {status}");
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{kind:?} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server now.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Indexes documents (`(id, source)`) with the bulk API, then refreshes.
    pub fn bulk(&self, index: &str, docs: &[(String, serde_json::Value)]) {
        for chunk in docs.chunks(5000) {
            let mut body = String::new();
            for (id, src) in chunk {
                body.push_str(
                    &serde_json::json!({"index": {"_index": index, "_id": id}}).to_string(),
                );
                body.push('\n');
                body.push_str(&src.to_string());
                body.push('\n');
            }
            let (status, text) = http_body(
                "POST",
                self.port,
                "/_bulk",
                "application/x-ndjson",
                body.as_bytes(),
            )
            .unwrap();
            assert_eq!(status, 200, "bulk: {text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["errors"], false, "bulk errors: {text}");
        }
        let (status, text) = http_body(
            "POST",
            self.port,
            &format!("/{index}/_refresh"),
            "application/json",
            b"",
        )
        .unwrap();
        assert_eq!(status, 200, "refresh: {text}");
    }

    /// A JSON request; returns (status, body).
    pub fn json(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let (status, text) = http_body(
            method,
            self.port,
            path,
            "application/json",
            body.to_string().as_bytes(),
        )
        .unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }
}

impl Drop for EsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Scrapes `/metrics` until `cond` holds on the text (returned), failing
/// after 30 s with `what` and the last scrape.
pub fn scrape_until(port: u16, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        let text = scrape(port);
        if cond(&text) {
            return text;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `pipeline_<counter>_total` reaches `at_least`.
pub fn wait_for_count(port: u16, counter: &str, at_least: f64) {
    let name = format!("pipeline_records_{counter}_total");
    scrape_until(port, &format!("{name} >= {at_least}"), |t| {
        value(t, &name, &[]).unwrap_or(0.0) >= at_least
    });
}
