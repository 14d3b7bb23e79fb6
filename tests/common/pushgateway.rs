//! A real Pushgateway on a free loopback port, stopped by PID.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::{free_port, http, port_open};

/// A real Pushgateway on a free loopback port, stopped by PID when dropped.
pub struct Pushgateway {
    pub child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Pushgateway {
    pub fn start() -> Pushgateway {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--persistence.file={}",
                dir.path().join("pg.data").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-pushgateway is required (scripts/test.sh installs it)");
        let t = Instant::now();
        while !port_open(port) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the Pushgateway did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Pushgateway {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn metrics(&self) -> String {
        let (status, _, body) = http("GET", self.port, "/metrics").unwrap();
        assert_eq!(status, 200);
        body
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
