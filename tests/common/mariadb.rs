//! A private MariaDB server for tests that freeze, kill or restart it: its
//! own `mariadbd` on a free loopback port with its own data directory,
//! stopped by PID when dropped. (scripts/services.sh installs mariadb-server.)

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::free_port;

/// A running private server.
pub struct OwnMariaDb {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Option<Child>,
}

fn mariadbd() -> PathBuf {
    ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("mariadbd is required (scripts/services.sh installs mariadb-server)")
}

impl OwnMariaDb {
    /// Initialises a data directory and starts the server with `extra`
    /// options (e.g. `--max-allowed-packet=1M`); waits until it answers and
    /// has a `test` database.
    pub fn start(extra: &[&str]) -> OwnMariaDb {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // Its own temporary directory: servers bootstrapped at once never
        // meet in /tmp. A bootstrap that fails anyway is tried again from
        // an empty data directory.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let mut tries = 0;
        loop {
            tries += 1;
            let out = Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .args([
                    "--user=root",
                    "--skip-test-db",
                    "--auth-root-authentication-method=normal",
                ])
                .stdin(Stdio::null())
                .output()
                .expect("mariadb-install-db is required (scripts/services.sh installs it)");
            if out.status.success() {
                break;
            }
            assert!(
                tries < 3,
                "mariadb-install-db: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = std::fs::remove_dir_all(&data);
        }
        let mut db = OwnMariaDb {
            port: free_port(),
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        db.launch();
        db.sql("CREATE DATABASE IF NOT EXISTS test");
        db
    }

    fn launch(&mut self) {
        let d = self.dir.path();
        let child = Command::new(mariadbd())
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-grant-tables",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--skip-log-bin",
            ])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let t = Instant::now();
        loop {
            if self.try_sql("SELECT 1").is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("mariadbd exited at start: {status}");
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "mariadbd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `mysql://root@127.0.0.1:PORT/test`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/test", self.port)
    }

    /// Runs statements in a new connection.
    pub fn try_sql(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        use mysql_async::prelude::Queryable;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = format!("mysql://root@127.0.0.1:{}/", self.port);
        rt.block_on(async {
            let opts = mysql_async::Opts::from_url(&url).unwrap();
            let mut conn =
                tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts))
                    .await
                    .map_err(|_| "connect timed out".to_string())?
                    .map_err(|e| e.to_string())?;
            let rows: Vec<mysql_async::Row> = conn.query(sql).await.map_err(|e| e.to_string())?;
            let _ = conn.disconnect().await;
            Ok(super::mysql::as_text(rows))
        })
    }

    /// Runs statements in a new connection, failing the test on an error.
    pub fn sql(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.try_sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    /// Stops the server's process without closing its connections (SIGSTOP).
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for OwnMariaDb {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A frozen server must be let go before it can die.
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.kill();
    }
}
