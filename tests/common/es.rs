//! The two Elasticsearch-API test servers (noida-db, osmem-server), started
//! on free loopback ports and stopped by PID.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::{free_port, http, http_body};

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

/// The Python virtualenv of the test tools (`PIPELINE_TEST_VENV`, default
/// `.venv` in the repository; scripts/services.sh installs it).
pub fn venv() -> std::path::PathBuf {
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
