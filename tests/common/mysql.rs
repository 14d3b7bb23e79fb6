//! The test MariaDB: a connection, unique table names.

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
        as_text(rows)
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

/// Query rows with every value as text (NULL as None).
pub fn as_text(rows: Vec<mysql_async::Row>) -> Vec<Vec<Option<String>>> {
    rows.into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true)),
                })
                .collect()
        })
        .collect()
}
