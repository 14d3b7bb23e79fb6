//! The MySQL/MariaDB sink. Each worker has its own connection and writes each
//! batch in one transaction, either as LOAD DATA LOCAL INFILE streamed from
//! memory or as multi-row prepared INSERTs sized under `max_allowed_packet`
//! and 65,535 placeholders. Values are converted to the column types first
//! (a value that does not fit fails its record); a batch the server rejects
//! for its data is split inside the transaction until the bad rows are
//! isolated; a lost connection, deadlock or lock wait timeout rolls the
//! transaction back and retries the batch with exponential backoff, so a
//! retry never duplicates rows. Counts come from the server's own figures.

pub mod table;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, SslOpts, Value as MyValue};

use crate::config::{LoadMode, MysqlConfig, OnDuplicate, SslMode};
use crate::error::{ErrorType, PipelineError, Stage};
use crate::metrics::Metrics;
use crate::record::{Record, Schema};
use crate::runtime::runtime;

use super::{BatchError, BatchResult, BatchWriter, Rejected, Sink};
use table::{quote_ident, Column, ColumnInfo, Table};

/// Longest wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Placeholders one prepared statement may have.
const MAX_PLACEHOLDERS: usize = 65_535;

/// An opened MySQL sink: the table is known (or will be created from the
/// first batch), the load mode is decided.
pub struct MysqlSink {
    shared: Arc<Shared>,
}

struct Shared {
    cfg: MysqlConfig,
    opts: Opts,
    table: Mutex<Option<Arc<Table>>>,
    load_data: bool,
    max_packet: usize,
    max_retries: u32,
    /// Batches commit with XA (two-phase), so a commit cut off by a lost
    /// connection can be checked; false where the server refuses XA RECOVER.
    xa: bool,
    /// Seconds since the epoch when the sink opened (part of every XA id).
    started: u64,
    writers: std::sync::atomic::AtomicU64,
    /// Unknown record fields already warned about.
    warned_unknown: Mutex<std::collections::HashSet<String>>,
}

/// A database error, sorted into what the sink does about it.
#[derive(Debug)]
enum DbError {
    /// Passing: roll back, reconnect, retry the batch.
    Retry(ErrorType, String),
    /// The rows' fault: isolate them.
    Data(ErrorType, String),
    /// Anything else: the batch (and the run) fails.
    Fatal(ErrorType, String),
}

fn classify(e: &mysql_async::Error) -> DbError {
    use mysql_async::Error as E;
    match e {
        E::Server(se) => {
            let msg = format!("server error {} ({}): {}", se.code, se.state, se.message);
            match se.code {
                // deadlock, lock wait timeout
                1213 | 1205 => DbError::Retry(ErrorType::Timeout, msg),
                // gone away, lost, killed, shutting down, interrupted
                2006 | 2013 | 1927 | 1053 | 1317 | 1158 | 1159 | 1160 | 1161 => {
                    DbError::Retry(ErrorType::Connection, msg)
                }
                1062 | 1586 => DbError::Data(ErrorType::Duplicate, msg),
                // bad values, too long, out of range, NULL, bad dates, JSON, checks, FKs
                1048 | 1263 | 1264 | 1265 | 1292 | 1366 | 1367 | 1406 | 1411 | 1364 | 1690
                | 3140 | 4025 | 3819 | 1452 | 1451 | 4078 | 1918 => {
                    DbError::Data(ErrorType::Conversion, msg)
                }
                1044 | 1045 | 1142 | 1143 | 1227 => DbError::Fatal(ErrorType::Auth, msg),
                _ => DbError::Fatal(ErrorType::Server, msg),
            }
        }
        E::Io(_) | E::Driver(_) => DbError::Retry(ErrorType::Connection, e.to_string()),
        other => DbError::Fatal(ErrorType::Server, other.to_string()),
    }
}

fn ssl_opts(cfg: &MysqlConfig) -> Option<SslOpts> {
    let base = SslOpts::default();
    let with_ca = |o: SslOpts| match &cfg.ssl_ca {
        Some(ca) => o.with_root_certs(vec![ca.clone().into()]),
        None => o,
    };
    match cfg.ssl_mode {
        SslMode::Disabled => None,
        SslMode::Preferred | SslMode::Required => Some(
            base.with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        SslMode::VerifyCa => Some(with_ca(base).with_danger_skip_domain_validation(true)),
        SslMode::VerifyIdentity => Some(with_ca(base)),
    }
}

fn build_opts(cfg: &MysqlConfig, ssl: Option<SslOpts>) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname(cfg.host.clone())
        .tcp_port(cfg.port)
        .user(Some(cfg.user.clone()))
        .pass(cfg.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(Some(cfg.database.clone()))
        .prefer_socket(false)
        .ssl_opts(ssl)
        .stmt_cache_size(64)
        .init(vec![
            // Dates and times are UTC on the wire; strict so bad values are errors.
            "SET time_zone = '+00:00'",
            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
        ])
        .into()
}

async fn connect_once(opts: Opts) -> Result<Conn, mysql_async::Error> {
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
        Ok(r) => r,
        Err(_) => Err(mysql_async::Error::Io(mysql_async::IoError::Io(
            std::io::Error::new(std::io::ErrorKind::TimedOut, "connection timed out"),
        ))),
    }
}

/// Connects; with `--db-ssl-mode preferred`, falls back to plain TCP when
/// the server does not offer TLS.
async fn connect(shared_opts: &Opts, cfg: &MysqlConfig) -> Result<Conn, mysql_async::Error> {
    match connect_once(shared_opts.clone()).await {
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer))
            if cfg.ssl_mode == SslMode::Preferred =>
        {
            connect_once(build_opts(cfg, None)).await
        }
        other => other,
    }
}

/// One clear line for a connection that could not be made at start (exit 2).
fn connect_error(cfg: &MysqlConfig, e: &mysql_async::Error) -> PipelineError {
    let target = format!("{}:{}", cfg.host, cfg.port);
    let why = match e {
        mysql_async::Error::Server(se) if se.code == 1045 => format!(
            "access denied for user '{}' (check --db-user and the password in PIPELINE_DB_PASS)",
            cfg.user
        ),
        mysql_async::Error::Server(se) if se.code == 1049 => {
            format!("database '{}' does not exist (--db-name)", cfg.database)
        }
        mysql_async::Error::Server(se) if se.code == 1044 => format!(
            "user '{}' may not use database '{}'",
            cfg.user, cfg.database
        ),
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            "the server does not offer TLS, which --db-ssl-mode asks for".into()
        }
        other => other.to_string(),
    };
    PipelineError::Config(format!("cannot connect to MySQL at {target}: {why}"))
}

async fn text_rows(
    conn: &mut Conn,
    sql: &str,
    params: Vec<MyValue>,
) -> Result<Vec<Vec<Option<String>>>, mysql_async::Error> {
    let rows: Vec<mysql_async::Row> = conn.exec(sql, params).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    MyValue::NULL => None,
                    MyValue::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                })
                .collect()
        })
        .collect())
}

/// Reads the table's columns; `None` when it does not exist.
async fn describe(
    conn: &mut Conn,
    db: &str,
    name: &str,
) -> Result<Option<Table>, mysql_async::Error> {
    let rows = text_rows(
        conn,
        "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), IS_NULLABLE, \
         COLUMN_DEFAULT IS NOT NULL, CAST(CHARACTER_MAXIMUM_LENGTH AS CHAR), \
         CAST(CHARACTER_OCTET_LENGTH AS CHAR), CAST(NUMERIC_PRECISION AS CHAR), \
         CAST(NUMERIC_SCALE AS CHAR), LOWER(EXTRA), COLUMN_KEY \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
         ORDER BY ORDINAL_POSITION",
        vec![db.into(), name.into()],
    )
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    // MariaDB's JSON is LONGTEXT with a json_valid() check.
    let checks = text_rows(
        conn,
        "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
        vec![db.into(), name.into()],
    )
    .await
    .unwrap_or_default();
    let checks: Vec<String> = checks
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    let num = |s: &Option<String>| s.as_deref().and_then(|v| v.parse().ok());
    let infos: Vec<ColumnInfo> = rows
        .iter()
        .map(|r| {
            let name = r[0].clone().unwrap_or_default();
            let json_check = checks
                .iter()
                .any(|c| c.contains(&format!("json_valid({})", quote_ident(&name))));
            ColumnInfo {
                data_type: r[1].clone().unwrap_or_default(),
                column_type: r[2].clone().unwrap_or_default(),
                nullable: r[3].as_deref() == Some("YES"),
                has_default: r[4].as_deref() == Some("1"),
                max_chars: num(&r[5]),
                max_bytes: num(&r[6]),
                precision: num(&r[7]).map(|v: u64| v as u32),
                scale: num(&r[8]).map(|v: u64| v as u32),
                extra: r[9].clone().unwrap_or_default(),
                key: r[10].clone().unwrap_or_default(),
                json_check,
                name,
            }
        })
        .collect();
    let columns: Vec<Column> = infos.iter().map(Column::from_info).collect();
    let by_name = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    let mut key: Vec<usize> = infos
        .iter()
        .enumerate()
        .filter(|(_, c)| c.key == "PRI")
        .map(|(i, _)| i)
        .collect();
    if key.is_empty() {
        key = infos
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key == "UNI")
            .map(|(i, _)| i)
            .take(1)
            .collect();
    }
    Ok(Some(Table {
        quoted: format!("{}.{}", quote_ident(db), quote_ident(name)),
        columns,
        by_name,
        key,
    }))
}

/// Whether prepared XA transactions survive a lost connection on this server
/// version (MariaDB >= 10.5.2, MySQL >= 5.7.7).
fn xa_survives_disconnect(version: &str) -> bool {
    let nums: Vec<u64> = version
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let v = (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
        nums.get(2).copied().unwrap_or(0),
    );
    if version.to_ascii_lowercase().contains("mariadb") {
        v >= (10, 5, 2)
    } else {
        v >= (5, 7, 7)
    }
}

/// Checks the fields the source will produce against the table's columns.
fn check_fields(cfg: &MysqlConfig, table: &Table, fields: &[String]) -> Result<(), PipelineError> {
    let unknown: Vec<&str> = fields
        .iter()
        .filter(|f| !table.by_name.contains_key(*f))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let msg = format!(
            "record fields with no column in {}.{}: {}",
            cfg.database,
            cfg.table,
            unknown.join(", ")
        );
        if cfg.strict_columns {
            return Err(PipelineError::Config(format!("{msg} (--strict-columns)")));
        }
        tracing::warn!("{msg}; they are ignored (--strict-columns makes this an error)");
    }
    let missing: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| !c.fills_itself && !fields.contains(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(PipelineError::Config(format!(
            "{}.{} has NOT NULL columns without a default that no record field fills: {}",
            cfg.database,
            cfg.table,
            missing.join(", ")
        )));
    }
    Ok(())
}

impl MysqlSink {
    /// Connects, checks the table against the fields the source announced
    /// (when it knows them up front) and decides the load mode. Every problem
    /// here is reported before a record is read.
    pub fn open(cfg: &MysqlConfig, fields: Option<&[String]>) -> Result<MysqlSink, PipelineError> {
        let opts = build_opts(cfg, ssl_opts(cfg));
        let rt = runtime();
        let (table, local_infile, max_packet, xa) = rt.block_on(async {
            let mut conn = connect(&opts, cfg)
                .await
                .map_err(|e| connect_error(cfg, &e))?;
            let query_err = |e: mysql_async::Error| {
                PipelineError::Config(format!("reading the table definition: {e}"))
            };
            let table = describe(&mut conn, &cfg.database, &cfg.table)
                .await
                .map_err(query_err)?;
            let vars = text_rows(
                &mut conn,
                "SELECT @@local_infile, @@max_allowed_packet, VERSION()",
                vec![],
            )
            .await
            .map_err(query_err)?;
            // Prepared XA transactions outlive their connection only from
            // MariaDB 10.5.2 and MySQL 5.7.7 on; before that, plain transactions.
            let version = vars
                .first()
                .and_then(|r| r.get(2).cloned().flatten())
                .unwrap_or_default();
            let xa_survives = xa_survives_disconnect(&version);
            let xa = match conn.query_drop("XA RECOVER").await {
                Ok(()) if xa_survives => true,
                Ok(()) => {
                    tracing::warn!(
                        "server {version} drops prepared XA transactions with their connection; batches use plain transactions, so a commit cut off by a lost connection cannot be checked"
                    );
                    false
                }
                Err(e) => {
                    tracing::warn!(
                        "XA RECOVER is not allowed ({e}); batches use plain transactions, so a commit cut off by a lost connection cannot be checked"
                    );
                    false
                }
            };
            let _ = conn.disconnect().await;
            let row = vars.into_iter().next().unwrap_or_default();
            let local_infile =
                matches!(row.first().cloned().flatten().as_deref(), Some("1" | "ON"));
            let max_packet = row
                .get(1)
                .cloned()
                .flatten()
                .and_then(|v| v.parse().ok())
                .unwrap_or(4 * 1024 * 1024usize);
            Ok::<_, PipelineError>((table, local_infile, max_packet, xa))
        })?;
        match (&table, fields) {
            (Some(t), Some(f)) => check_fields(cfg, t, f)?,
            (None, Some(f)) if cfg.create_table => {
                if let Some(k) = cfg.key.iter().find(|k| !f.contains(k)) {
                    return Err(PipelineError::Config(format!(
                        "--db-key column '{k}' is not a field of the records (fields: {})",
                        f.join(", ")
                    )));
                }
            }
            _ => {}
        }
        if table.is_none() && !cfg.create_table {
            return Err(PipelineError::Config(format!(
                "table {}.{} does not exist; create it, or add --create-table (with --db-key COL for its primary key)",
                cfg.database, cfg.table
            )));
        }
        let load_data = match cfg.load_mode {
            LoadMode::Insert => false,
            LoadMode::Auto => local_infile,
            LoadMode::LoadData if local_infile => true,
            LoadMode::LoadData => {
                return Err(PipelineError::Config(
                    "--mysql-load-mode load-data: the server does not allow LOAD DATA LOCAL INFILE (local_infile is OFF); use --mysql-load-mode insert or auto".into(),
                ))
            }
        };
        tracing::info!(
            target_table = %cfg.display_target(),
            mode = if load_data { "load-data" } else { "insert" },
            on_duplicate = ?cfg.on_duplicate,
            "MySQL sink ready"
        );
        Ok(MysqlSink {
            shared: Arc::new(Shared {
                cfg: cfg.clone(),
                opts,
                table: Mutex::new(table.map(Arc::new)),
                load_data,
                max_packet,
                max_retries: cfg.retry.max_retries.unwrap_or(5),
                xa,
                started: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                writers: std::sync::atomic::AtomicU64::new(0),
                warned_unknown: Mutex::new(
                    fields
                        .map(|f| f.iter().cloned().collect())
                        .unwrap_or_default(),
                ),
            }),
        })
    }
}

impl Sink for MysqlSink {
    fn writer(
        &self,
        metrics: &Arc<Metrics>,
        shutdown: &crate::shutdown::Shutdown,
    ) -> Result<Box<dyn BatchWriter>, PipelineError> {
        let conn = runtime()
            .block_on(connect(&self.shared.opts, &self.shared.cfg))
            .map_err(|e| connect_error(&self.shared.cfg, &e))?;
        Ok(Box::new(MysqlWriter {
            shared: self.shared.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            conn: Some(conn),
            maps: HashMap::new(),
            xid_prefix: format!(
                "pipeline-cli-{}-{}-{}",
                std::process::id(),
                self.shared.started,
                self.shared
                    .writers
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
            xid_seq: 0,
        }))
    }

    fn finish(&self, _complete: bool) -> Result<Option<String>, PipelineError> {
        Ok(Some(format!("table {}", self.shared.cfg.display_target())))
    }
}

/// Which table columns a record shape fills, and from which fields.
struct ColumnMap {
    /// (record field index, table column index), in table order.
    pairs: Vec<(usize, usize)>,
    /// `(`a`, `b`)`, ready for SQL.
    column_list: String,
    /// Record fields with no column.
    unknown: Vec<String>,
}

/// One converted row, ready to send.
struct Row {
    /// Index in the batch.
    index: usize,
    map: Arc<ColumnMap>,
    values: Vec<MyValue>,
}

struct MysqlWriter {
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    /// To hold a second signal back between XA PREPARE and XA COMMIT.
    shutdown: crate::shutdown::Shutdown,
    conn: Option<Conn>,
    maps: HashMap<usize, (Arc<Schema>, Arc<ColumnMap>)>,
    /// Transaction ids: `pipeline-cli-<pid>-<start>-<worker>-<seq>`.
    xid_prefix: String,
    xid_seq: u64,
}

#[derive(Default)]
struct Tally {
    inserted: u64,
    updated: u64,
    skipped: u64,
    rejected: Vec<Rejected>,
}

/// `Records: 3  Duplicates: 1  Warnings: 0` → the number after `key`.
fn info_number(info: &str, key: &str) -> Option<u64> {
    let rest = &info[info.find(key)? + key.len()..];
    rest.trim_start_matches([':', ' '])
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl MysqlWriter {
    fn column_map(&mut self, table: &Table, schema: &Arc<Schema>) -> Arc<ColumnMap> {
        let key = Arc::as_ptr(schema) as usize;
        if let Some((s, m)) = self.maps.get(&key) {
            if Arc::ptr_eq(s, schema) {
                return m.clone();
            }
        }
        let mut pairs: Vec<(usize, usize)> = schema
            .names()
            .iter()
            .enumerate()
            .filter_map(|(f, name)| table.by_name.get(name).map(|&c| (f, c)))
            .collect();
        pairs.sort_by_key(|&(_, c)| c);
        let unknown: Vec<String> = schema
            .names()
            .iter()
            .filter(|n| !table.by_name.contains_key(*n))
            .cloned()
            .collect();
        if !unknown.is_empty() && !self.shared.cfg.strict_columns {
            let mut warned = self.shared.warned_unknown.lock().expect("warned lock");
            let new: Vec<&str> = unknown
                .iter()
                .filter(|f| warned.insert((*f).clone()))
                .map(String::as_str)
                .collect();
            if !new.is_empty() {
                tracing::warn!(
                    "record fields with no column in {}.{}: {}; they are ignored (--strict-columns makes them fail the record)",
                    self.shared.cfg.database,
                    self.shared.cfg.table,
                    new.join(", ")
                );
            }
        }
        let column_list = format!(
            "({})",
            pairs
                .iter()
                .map(|&(_, c)| quote_ident(&table.columns[c].name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let map = Arc::new(ColumnMap {
            pairs,
            column_list,
            unknown,
        });
        if self.maps.len() > 1024 {
            self.maps.clear();
        }
        self.maps.insert(key, (schema.clone(), map.clone()));
        map
    }

    /// The table, creating it from this batch first with `--create-table`.
    fn table(&mut self, batch: &[Record]) -> Result<Arc<Table>, BatchError> {
        let mut slot = self.shared.table.lock().expect("table lock");
        if let Some(t) = &*slot {
            return Ok(t.clone());
        }
        let cfg = &self.shared.cfg;
        let fatal = |error_type, message| BatchError {
            error_type,
            message,
        };
        let ddl = table::create_table_ddl(&cfg.database, &cfg.table, &cfg.key, batch)
            .map_err(|m| fatal(ErrorType::Config, m))?;
        tracing::info!("creating table {}.{}: {ddl}", cfg.database, cfg.table);
        let conn = self.conn.as_mut().ok_or_else(|| {
            fatal(
                ErrorType::Connection,
                "no connection to create the table".into(),
            )
        })?;
        let created = runtime().block_on(async {
            conn.query_drop(&ddl).await?;
            describe(conn, &cfg.database, &cfg.table).await
        });
        match created {
            Ok(Some(t)) => {
                let t = Arc::new(t);
                *slot = Some(t.clone());
                Ok(t)
            }
            Ok(None) => Err(fatal(
                ErrorType::Server,
                "the created table cannot be found".into(),
            )),
            Err(e) => Err(fatal(ErrorType::Server, format!("creating the table: {e}"))),
        }
    }

    fn convert(&mut self, table: &Table, batch: &[Record], tally: &mut Tally) -> Vec<Row> {
        let mut rows = Vec::with_capacity(batch.len());
        for (index, record) in batch.iter().enumerate() {
            let map = self.column_map(table, &record.schema);
            let mut values = Vec::with_capacity(map.pairs.len());
            let mut failed = if map.pairs.is_empty() {
                Some(format!(
                    "no field of the record is a column of the table (fields: {})",
                    record.schema.names().join(", ")
                ))
            } else if self.shared.cfg.strict_columns && !map.unknown.is_empty() {
                Some(format!(
                    "fields with no column (--strict-columns): {}",
                    map.unknown.join(", ")
                ))
            } else {
                None
            };
            for &(f, c) in &map.pairs {
                let column = &table.columns[c];
                match column.convert(&record.values[f]) {
                    Ok(v) => values.push(v),
                    Err(why) => {
                        failed = Some(format!("column {}: {why}", column.name));
                        break;
                    }
                }
            }
            match failed {
                Some(reason) => tally.rejected.push(Rejected {
                    index,
                    error_type: ErrorType::Conversion,
                    reason,
                }),
                None => rows.push(Row { index, map, values }),
            }
        }
        rows
    }
}

impl BatchWriter for MysqlWriter {
    fn write_batch(&mut self, batch: &[Record]) -> Result<BatchResult, BatchError> {
        let table = self.table(batch)?;
        let mut converted = Tally::default();
        let rows = self.convert(&table, batch, &mut converted);
        let mut attempt = 0u32;
        loop {
            let result = runtime().block_on(self.write_rows(&table, &rows));
            match result {
                Ok(mut tally) => {
                    tally.rejected.append(&mut converted.rejected);
                    return Ok(BatchResult {
                        inserted: tally.inserted,
                        updated: tally.updated,
                        skipped: tally.skipped,
                        rejected: tally.rejected,
                        broken: None,
                    });
                }
                Err(DbError::Retry(error_type, message)) if attempt < self.shared.max_retries => {
                    attempt += 1;
                    self.metrics.error(Stage::Sink, error_type, 1);
                    self.metrics.retried(Stage::Sink);
                    let backoff = Duration::from_millis(100 * (1u64 << attempt.min(6)));
                    tracing::warn!(
                        "batch rolled back ({message}); retry {attempt}/{} in {backoff:?}",
                        self.shared.max_retries
                    );
                    // A fresh connection: the old one may be dead or mid-transaction.
                    self.conn = None;
                    std::thread::sleep(backoff);
                }
                Err(DbError::Retry(error_type, message)) => {
                    self.metrics.error(Stage::Sink, error_type, 1);
                    return Err(BatchError {
                        error_type,
                        message: format!(
                            "{message} (gave up after {} retries, --max-retries)",
                            self.shared.max_retries
                        ),
                    });
                }
                Err(DbError::Fatal(error_type, message) | DbError::Data(error_type, message)) => {
                    self.metrics.error(Stage::Sink, error_type, 1);
                    return Err(BatchError {
                        error_type,
                        message,
                    });
                }
            }
        }
    }
}

/// Where a transaction's end failed, for working out whether it committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Prepare,
    Commit,
}

impl MysqlWriter {
    fn next_xid(&mut self) -> String {
        self.xid_seq += 1;
        format!("{}-{}", self.xid_prefix, self.xid_seq)
    }

    /// Writes the rows in one transaction. Before the commit is sent, any
    /// failure leaves nothing behind (the server rolls the transaction back).
    /// The commit is two-phase (XA), so when the connection drops during
    /// PREPARE or COMMIT, a new connection can tell from XA RECOVER whether
    /// the batch is in the table: a retry never writes a batch twice.
    async fn write_rows(&mut self, table: &Table, rows: &[Row]) -> Result<Tally, DbError> {
        if self.conn.is_none() {
            let conn = connect(&self.shared.opts, &self.shared.cfg)
                .await
                .map_err(|e| classify(&e))?;
            self.conn = Some(conn);
        }
        let shared = self.shared.clone();
        let xa = shared.xa;
        let xid = self.next_xid();
        let conn = self.conn.as_mut().expect("connected above");
        let mut use_load = shared.load_data && shared.cfg.on_duplicate == OnDuplicate::Skip;
        loop {
            let mut tally = Tally::default();
            if xa {
                exec(conn, &format!("XA START '{xid}'")).await?;
            } else {
                exec(conn, "START TRANSACTION").await?;
            }
            let mut redo_with_insert = false;
            for group in groups(rows) {
                if use_load {
                    if !load_group(conn, table, group, &mut tally).await? {
                        redo_with_insert = true;
                        break;
                    }
                } else {
                    insert_rows(conn, &shared, table, group, &mut tally).await?;
                }
            }
            if redo_with_insert {
                // LOAD DATA turned a data problem into a warning: redo the
                // batch with INSERT, which names the bad rows exactly.
                if xa {
                    exec(conn, &format!("XA END '{xid}'")).await?;
                    exec(conn, &format!("XA ROLLBACK '{xid}'")).await?;
                } else {
                    exec(conn, "ROLLBACK").await?;
                }
                use_load = false;
                continue;
            }
            if !xa {
                exec(conn, "COMMIT").await?;
                return Ok(tally);
            }
            exec(conn, &format!("XA END '{xid}'")).await?;
            // From PREPARE until COMMIT has answered, exiting would leave the
            // batch prepared and its rows locked.
            let _critical = self.shutdown.critical();
            let ended = match exec(conn, &format!("XA PREPARE '{xid}'")).await {
                Ok(()) => exec(conn, &format!("XA COMMIT '{xid}'"))
                    .await
                    .map_err(|e| (Phase::Commit, e)),
                Err(e) => Err((Phase::Prepare, e)),
            };
            return match ended {
                Ok(()) => Ok(tally),
                Err((phase, DbError::Retry(t, m))) => {
                    let old_id = conn.id();
                    self.conn = None;
                    self.resolve(&xid, old_id, phase, t, m)
                        .await
                        .map(|()| tally)
                }
                Err((_, other)) => Err(other),
            };
        }
    }

    /// The connection dropped while the batch's transaction `xid` was being
    /// prepared or committed. A prepared XA transaction outlives its
    /// connection: if XA RECOVER lists it, commit it; if not, it committed
    /// (the failure was in COMMIT) or never prepared (in PREPARE; then the
    /// batch is retried).
    async fn resolve(
        &mut self,
        xid: &str,
        old_id: u32,
        phase: Phase,
        error_type: ErrorType,
        message: String,
    ) -> Result<(), DbError> {
        let mut attempt = 0;
        let mut conn = loop {
            match connect(&self.shared.opts, &self.shared.cfg).await {
                Ok(c) => break c,
                Err(e) if attempt < self.shared.max_retries => {
                    attempt += 1;
                    tracing::warn!("reconnecting to check batch {xid}: {e}");
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                }
                Err(e) => {
                    return Err(DbError::Fatal(
                        error_type,
                        format!(
                        "{message}; cannot reconnect to learn whether batch {xid} committed: {e}"
                    ),
                    ))
                }
            }
        };
        // Until the server has finished with the old connection, its
        // prepared transaction is not yet detached and listed.
        let gone = std::time::Instant::now();
        loop {
            let alive = text_rows(
                &mut conn,
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
                vec![old_id.into()],
            )
            .await
            .map(|r| r.first().and_then(|r| r[0].clone()).as_deref() != Some("0"))
            // Not knowing is not "gone": ask again until the deadline.
            .unwrap_or(true);
            if !alive {
                break;
            }
            if gone.elapsed() > Duration::from_secs(30) {
                return Err(DbError::Fatal(
                    error_type,
                    format!("{message}; the old connection {old_id} is still open after 30 s, so whether batch {xid} committed is unknown"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let listed = text_rows(&mut conn, "XA RECOVER", vec![])
            .await
            .map_err(|e| DbError::Fatal(ErrorType::Server, format!("XA RECOVER: {e}")))?
            .iter()
            .any(|r| r.get(3).and_then(|d| d.as_deref()) == Some(xid));
        let outcome = if listed {
            // Whatever happens now, the batch must not be written again.
            exec(&mut conn, &format!("XA COMMIT '{xid}'"))
                .await
                .map_err(|e| match e {
                    DbError::Retry(t, m) | DbError::Data(t, m) | DbError::Fatal(t, m) => DbError::Fatal(
                        t,
                        format!("{m}; batch {xid} is prepared on the server and could not be committed: finish it with XA COMMIT '{xid}'"),
                    ),
                })?;
            tracing::warn!("{message}; batch {xid} was prepared and is now committed");
            Ok(())
        } else if phase == Phase::Commit {
            tracing::warn!("{message}; batch {xid} had committed");
            Ok(())
        } else {
            Err(DbError::Retry(error_type, message))
        };
        self.conn = Some(conn);
        outcome
    }
}

async fn exec(conn: &mut Conn, sql: &str) -> Result<(), DbError> {
    conn.query_drop(sql).await.map_err(|e| match classify(&e) {
        // A data error on a control statement is not about a row.
        DbError::Data(t, m) => DbError::Fatal(t, format!("{m} (during {sql})")),
        DbError::Retry(t, m) => DbError::Retry(t, format!("{m} (during {sql})")),
        DbError::Fatal(t, m) => DbError::Fatal(t, format!("{m} (during {sql})")),
    })
}

/// Consecutive rows with the same column map.
fn groups(rows: &[Row]) -> Vec<&[Row]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        if i == rows.len() || !Arc::ptr_eq(&rows[i].map, &rows[start].map) {
            if i > start {
                out.push(&rows[start..i]);
            }
            start = i;
        }
    }
    out
}

fn insert_sql(shared: &Shared, table: &Table, map: &ColumnMap, rows: usize) -> String {
    let width = map.pairs.len();
    let one = format!("({})", vec!["?"; width].join(","));
    let mut sql = String::with_capacity(64 + rows * (one.len() + 1));
    sql.push_str("INSERT INTO ");
    sql.push_str(&table.quoted);
    sql.push(' ');
    sql.push_str(&map.column_list);
    sql.push_str(" VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&one);
    }
    match shared.cfg.on_duplicate {
        OnDuplicate::Error => {}
        OnDuplicate::Skip => {
            // A no-op update: duplicates are counted by the server, not inserted.
            let c = quote_ident(
                &table.columns[table.key.first().copied().unwrap_or(map.pairs[0].1)].name,
            );
            sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {c} = {c}"));
        }
        OnDuplicate::Update => {
            let sets: Vec<String> = map
                .pairs
                .iter()
                .filter(|(_, c)| !table.key.contains(c))
                .map(|&(_, c)| {
                    let n = quote_ident(&table.columns[c].name);
                    format!("{n} = VALUES({n})")
                })
                .collect();
            let sets = if sets.is_empty() {
                let c = quote_ident(&table.columns[map.pairs[0].1].name);
                format!("{c} = {c}")
            } else {
                sets.join(", ")
            };
            sql.push_str(" ON DUPLICATE KEY UPDATE ");
            sql.push_str(&sets);
        }
    }
    sql
}

fn value_size(v: &MyValue) -> usize {
    match v {
        MyValue::Bytes(b) => b.len() + 9,
        _ => 9,
    }
}

/// Inserts rows in statements under the packet and placeholder limits; a
/// statement the server refuses for its data is split until the bad rows are
/// found (each rejected with the server's message); the good rows stay in the
/// transaction.
async fn insert_rows(
    conn: &mut Conn,
    shared: &Shared,
    table: &Table,
    rows: &[Row],
    tally: &mut Tally,
) -> Result<(), DbError> {
    let width = rows[0].map.pairs.len().max(1);
    let max_rows = (MAX_PLACEHOLDERS / width).max(1);
    let budget = shared.max_packet.saturating_sub(64 * 1024).max(64 * 1024) * 9 / 10;
    let mut start = 0;
    while start < rows.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < rows.len() && end - start < max_rows {
            let size: usize = rows[end].values.iter().map(value_size).sum::<usize>() + 8;
            if end > start && bytes + size > budget {
                break;
            }
            bytes += size;
            end += 1;
        }
        insert_chunk(conn, shared, table, &rows[start..end], tally).await?;
        start = end;
    }
    Ok(())
}

fn insert_chunk<'a>(
    conn: &'a mut Conn,
    shared: &'a Shared,
    table: &'a Table,
    rows: &'a [Row],
    tally: &'a mut Tally,
) -> futures_util::future::BoxFuture<'a, Result<(), DbError>> {
    Box::pin(async move {
        let sql = insert_sql(shared, table, &rows[0].map, rows.len());
        let params: Vec<MyValue> = rows.iter().flat_map(|r| r.values.iter().cloned()).collect();
        match conn.exec_drop(sql, params).await {
            Ok(()) => {
                count_insert(conn, shared.cfg.on_duplicate, rows.len() as u64, tally);
                Ok(())
            }
            Err(e) => match classify(&e) {
                DbError::Data(error_type, reason) => {
                    if rows.len() == 1 {
                        tally.rejected.push(Rejected {
                            index: rows[0].index,
                            error_type,
                            reason,
                        });
                        Ok(())
                    } else {
                        let (a, b) = rows.split_at(rows.len() / 2);
                        insert_chunk(conn, shared, table, a, tally).await?;
                        insert_chunk(conn, shared, table, b, tally).await
                    }
                }
                other => Err(other),
            },
        }
    })
}

/// Counts one successful INSERT … ON DUPLICATE KEY UPDATE from the server's
/// figures. Affected rows are 1 per inserted row, 2 per row the update
/// changed and 0 per existing row left as it was; the info string's
/// `Duplicates` is the number of changed rows (a single-row statement has no
/// info string: there, 2 affected means one changed row). So inserted =
/// affected − 2 × changed, and every other row met an existing key.
fn count_insert(conn: &Conn, mode: OnDuplicate, n: u64, tally: &mut Tally) {
    let affected = conn.affected_rows();
    let changed = info_number(&conn.info(), "Duplicates").unwrap_or(u64::from(affected == 2));
    let inserted = affected.saturating_sub(2 * changed).min(n);
    let existing = n - inserted;
    tally.inserted += inserted;
    match mode {
        OnDuplicate::Update => tally.updated += existing,
        _ => tally.skipped += existing,
    }
}

/// LOAD DATA LOCAL INFILE of one group, streamed from memory, duplicates
/// skipped. Returns false (and the caller redoes the batch with INSERT) when
/// the server reports warnings other than the skipped duplicates.
async fn load_group(
    conn: &mut Conn,
    table: &Table,
    rows: &[Row],
    tally: &mut Tally,
) -> Result<bool, DbError> {
    let mut data = Vec::with_capacity(rows.len() * 128);
    for row in rows {
        for (i, v) in row.values.iter().enumerate() {
            if i > 0 {
                data.push(b'\t');
            }
            encode_load_value(v, &mut data);
        }
        data.push(b'\n');
    }
    let data = Bytes::from(data);
    conn.set_infile_handler(async move {
        Ok(futures_util::stream::once(async move { Ok(data) }).boxed())
    });
    let sql = format!(
        "LOAD DATA LOCAL INFILE 'pipeline-cli-batch' IGNORE INTO TABLE {} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' {}",
        table.quoted, rows[0].map.column_list
    );
    match conn.query_drop(sql).await {
        Ok(()) => {}
        Err(e) => {
            return match classify(&e) {
                DbError::Data(..) => Ok(false),
                other => Err(other),
            }
        }
    }
    let info: Cow<'_, str> = conn.info();
    let records = info_number(&info, "Records").unwrap_or(rows.len() as u64);
    let skipped = info_number(&info, "Skipped").unwrap_or(0);
    let warnings = u64::from(conn.get_warnings());
    if records != rows.len() as u64 || warnings != skipped {
        return Ok(false);
    }
    tally.inserted += records - skipped;
    tally.skipped += skipped;
    Ok(true)
}

/// One value in LOAD DATA's default text format: `\N` for NULL, and
/// backslash escapes for the backslash, tab, newline, carriage return and NUL.
fn encode_load_value(v: &MyValue, out: &mut Vec<u8>) {
    match v {
        MyValue::NULL => out.extend_from_slice(b"\\N"),
        MyValue::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        MyValue::UInt(u) => out.extend_from_slice(u.to_string().as_bytes()),
        MyValue::Double(f) => out.extend_from_slice(f.to_string().as_bytes()),
        MyValue::Float(f) => out.extend_from_slice(f.to_string().as_bytes()),
        MyValue::Bytes(b) => {
            for &c in b {
                match c {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0 => out.extend_from_slice(b"\\0"),
                    _ => out.push(c),
                }
            }
        }
        other => out.extend_from_slice(other.as_sql(true).trim_matches('\'').as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xa_survival_by_server_version() {
        assert!(xa_survives_disconnect("10.11.19-MariaDB-0+deb12u1"));
        assert!(!xa_survives_disconnect("10.4.30-MariaDB"));
        assert!(xa_survives_disconnect("8.0.36"));
        assert!(!xa_survives_disconnect("5.7.6-log"));
    }

    #[test]
    fn server_info_numbers() {
        let info = "Records: 4  Deleted: 0  Skipped: 2  Warnings: 2";
        assert_eq!(info_number(info, "Records"), Some(4));
        assert_eq!(info_number(info, "Skipped"), Some(2));
        assert_eq!(info_number(info, "Duplicates"), None);
    }

    #[test]
    fn load_data_escaping() {
        let mut out = Vec::new();
        for v in [
            MyValue::NULL,
            MyValue::Bytes(b"a\tb\nc\\d\re\0f \\N".to_vec()),
            MyValue::Int(-3),
        ] {
            encode_load_value(&v, &mut out);
            out.push(b'|');
        }
        assert_eq!(out, b"\\N|a\\tb\\nc\\\\d\\re\\0f \\\\N|-3|".to_vec());
    }
}
