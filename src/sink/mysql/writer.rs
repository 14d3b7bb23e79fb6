//! One worker's writer: converts a batch to the table's column types, writes
//! it in one transaction (XA two-phase where the server keeps prepared
//! transactions across a lost connection), retries passing failures, and
//! works out after a lost connection whether a batch committed.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::config::OnDuplicate;
use crate::error::{ErrorType, Stage};
use crate::metrics::Metrics;
use crate::record::{Record, Schema};
use crate::retry::{Failure, Reason};
use crate::runtime::runtime;
use crate::sink::api::{BatchError, BatchResult, BatchWriter, InDoubt};

use super::conn::{classify, connect, exec, exec_with, text_rows, DbError};
use super::insert::{groups, insert_rows};
use super::load_data::load_group;
use super::rows::{ColumnMap, Row};
use super::schema::describe;
use super::table::Table;
use super::Shared;

pub(super) struct MysqlWriter {
    pub(super) shared: Arc<Shared>,
    pub(super) metrics: Arc<Metrics>,
    /// To hold a second signal back between XA PREPARE and XA COMMIT.
    shutdown: crate::shutdown::Shutdown,
    conn: Option<Conn>,
    pub(super) maps: HashMap<usize, (Arc<Schema>, Arc<ColumnMap>)>,
    /// The table definition `maps` were made for.
    pub(super) maps_table: usize,
    /// Transaction ids: `pcli-<table hash>-<run id>-<worker>-<seq>`.
    xid_prefix: String,
    xid_seq: u64,
    /// The marker row of the last batch committed (deleted by the next).
    last_marker: Option<String>,
    /// Set when the batch just tried is in doubt.
    in_doubt: Option<InDoubt>,
    /// `--checkpoint`: the next batch's rows, recorded in its transaction.
    coverage: Option<crate::checkpoint::Coverage>,
    /// The batch's records that failed converting (their indexes).
    convert_failed: Vec<usize>,
}

impl MysqlWriter {
    pub(super) fn new(
        shared: Arc<Shared>,
        metrics: Arc<Metrics>,
        shutdown: crate::shutdown::Shutdown,
        conn: Conn,
        worker: u64,
    ) -> MysqlWriter {
        let run_id = shared.xa.as_ref().map_or("", |x| x.run_id.as_str());
        let xid_prefix = format!("{}{run_id}-{worker}", super::xa::prefix(&shared.cfg));
        tracing::debug!(
            worker,
            connection_id = conn.id(),
            "MySQL worker {worker} connected (connection id {})",
            conn.id()
        );
        MysqlWriter {
            shared,
            metrics,
            shutdown,
            conn: Some(conn),
            maps: HashMap::new(),
            maps_table: 0,
            xid_prefix,
            xid_seq: 0,
            last_marker: None,
            in_doubt: None,
            coverage: None,
            convert_failed: Vec::new(),
        }
    }

    /// A writer without a connection, for `--check`: it converts batches
    /// for a table ([`MysqlWriter::convert`]) and writes nothing.
    pub(super) fn unconnected(shared: Arc<Shared>, metrics: Arc<Metrics>) -> MysqlWriter {
        MysqlWriter {
            shared,
            metrics,
            shutdown: crate::shutdown::Shutdown::new(),
            conn: None,
            maps: HashMap::new(),
            maps_table: 0,
            xid_prefix: String::new(),
            xid_seq: 0,
            last_marker: None,
            in_doubt: None,
            coverage: None,
            convert_failed: Vec::new(),
        }
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
        let mut inference = super::ddl::Inference::default();
        batch.iter().for_each(|r| inference.add(r));
        let (ddl, mapped) = super::ddl::create_table_ddl(
            &cfg.database,
            &cfg.table,
            &cfg.key,
            (&cfg.rename, &cfg.date_formats),
            &inference,
        )
        .map_err(|m| fatal(ErrorType::Config, m))?;
        self.shared.say_mapping(mapped.iter().map(|(f, c)| (f, c)));
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
}

impl Drop for MysqlWriter {
    /// The last batch's marker is no longer needed: the batch is settled.
    fn drop(&mut self) {
        // Not from inside the runtime (a writer dropped while unwinding there).
        if tokio::runtime::Handle::try_current().is_ok() {
            return;
        }
        if let (Some(conn), Some(xid)) = (self.conn.as_mut(), self.last_marker.take()) {
            let sql = format!("DELETE FROM {} WHERE xid = ?", super::xa::MARKERS);
            let limit = self.shared.cfg.timeout;
            let _ = runtime().block_on(exec_with(conn, limit, &sql, vec![xid.into()]));
        }
    }
}

impl BatchWriter for MysqlWriter {
    fn set_coverage(&mut self, coverage: Option<crate::checkpoint::Coverage>) {
        self.coverage = coverage;
    }

    fn write_batch(&mut self, batch: &[Record]) -> Result<BatchResult, BatchError> {
        let mut table = self.table(batch)?;
        if self.shared.cfg.add_columns {
            table = super::add_columns::add_missing_columns(
                &self.shared,
                self.conn.as_mut(),
                &table,
                batch,
            )?;
        }
        let (table, rows, unmatched, mut converted) = self.fit(table, batch);
        self.convert_failed = converted.rejected.iter().map(|r| r.index).collect();
        if let Some(broken) = self.structural(batch.len(), unmatched, &converted) {
            converted.broken = Some(broken);
            return Ok(converted);
        }
        let shutdown = self.shutdown.clone();
        let stopping = move || shutdown.is_requested();
        let metrics = self.metrics.clone();
        let written = self.shared.cfg.retry.retrier().until(&stopping).run(
            || match runtime().block_on(self.write_rows(&table, &rows)) {
                Ok(tally) => Ok(tally),
                Err(DbError::Retry(error_type, message)) => {
                    // A fresh connection: the old one may be dead, frozen
                    // or mid-transaction.
                    self.conn = None;
                    Err(Failure::passing((error_type, message)))
                }
                Err(DbError::Fatal(t, m) | DbError::Data(t, m)) => Err(Failure::fatal((t, m))),
            },
            |(error_type, message): &(ErrorType, String), progress, delay| {
                metrics.retrying(
                    Stage::Sink,
                    *error_type,
                    &format!("batch rolled back ({message})"),
                    progress,
                    delay,
                )
            },
        );
        let gave_up = match written {
            Ok(mut tally) => {
                tally.rejected.append(&mut converted.rejected);
                return Ok(tally);
            }
            Err(g) => g,
        };
        let (error_type, message) = gave_up.error;
        self.metrics.error(Stage::Sink, error_type, 1);
        if gave_up.reason != Reason::Final {
            return Err(BatchError {
                error_type,
                message: format!("{message} ({})", gave_up.reason),
            });
        }
        match self.in_doubt.take() {
            Some(doubt) => Ok(BatchResult {
                rejected: std::mem::take(&mut converted.rejected),
                in_doubt: Some(doubt),
                broken: Some(BatchError {
                    error_type,
                    message,
                }),
                ..Default::default()
            }),
            None => Err(BatchError {
                error_type,
                message,
            }),
        }
    }
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
    async fn write_rows(&mut self, table: &Table, rows: &[Row]) -> Result<BatchResult, DbError> {
        if self.conn.is_none() {
            let conn = connect(&self.shared.opts, &self.shared.cfg)
                .await
                .map_err(|e| classify(&e))?;
            tracing::debug!(
                connection_id = conn.id(),
                "reconnected to MySQL (connection id {})",
                conn.id()
            );
            self.conn = Some(conn);
        }
        let limit = self.shared.cfg.timeout;
        if let (Some(m), Some(conn)) = (&self.shared.missing, self.conn.as_mut()) {
            m.fit_types(conn, table, limit).await?;
        }
        let xid = self.next_xid();
        let tally = self.write_groups(table, rows, &xid).await?;
        if let (Some(c), Some(conn)) = (&self.coverage, self.conn.as_mut()) {
            // Its failed records (those that did not convert, those the
            // server refused) are not done: they are kept in the
            // dead-letter file after the commit, which a kill can cut off.
            let mut failed: Vec<usize> = self.convert_failed.clone();
            failed.extend(tally.rejected.iter().map(|r| r.index));
            failed.sort_unstable();
            super::covered::record(conn, &self.shared.cfg, &xid, &c.without(&failed)).await?;
        }
        if let (Some(m), Some(conn)) = (&self.shared.missing, self.conn.as_mut()) {
            m.note(conn, rows, limit, self.shared.max_packet).await?;
        }
        if self.shared.xa.is_none() {
            self.commit_plain(tally).await
        } else {
            self.commit_xa(xid, tally).await
        }
    }

    /// Starts the batch's transaction (`XA START xid` with XA) and writes
    /// every row group in it, leaving it open. A batch LOAD DATA turned a
    /// data problem into a warning for is rolled back and written again
    /// with INSERT, which names the bad rows exactly.
    async fn write_groups(
        &mut self,
        table: &Table,
        rows: &[Row],
        xid: &str,
    ) -> Result<BatchResult, DbError> {
        let shared = self.shared.clone();
        let limit = shared.cfg.timeout;
        let xa = shared.xa.is_some();
        let conn = self.conn.as_mut().expect("connected above");
        let mut use_load = shared.load_data && shared.cfg.on_duplicate == OnDuplicate::Skip;
        loop {
            let mut tally = BatchResult::default();
            if xa {
                exec(conn, limit, &format!("XA START '{xid}'")).await?;
            } else {
                exec(conn, limit, "START TRANSACTION").await?;
            }
            let mut redo_with_insert = false;
            for group in groups(rows) {
                if use_load {
                    let bounds = (limit, shared.max_packet);
                    if !load_group(conn, table, group, &mut tally, bounds).await? {
                        redo_with_insert = true;
                        break;
                    }
                } else {
                    insert_rows(conn, &shared, table, group, &mut tally).await?;
                }
            }
            if !redo_with_insert {
                return Ok(tally);
            }
            if xa {
                exec(conn, limit, &format!("XA END '{xid}'")).await?;
                exec(conn, limit, &format!("XA ROLLBACK '{xid}'")).await?;
            } else {
                exec(conn, limit, "ROLLBACK").await?;
            }
            use_load = false;
        }
    }

    /// Commits a plain transaction. Without XA a COMMIT cut off cannot be
    /// checked: writing the batch again could double it.
    async fn commit_plain(&mut self, tally: BatchResult) -> Result<BatchResult, DbError> {
        let limit = self.shared.cfg.timeout;
        let conn = self.conn.as_mut().expect("connected above");
        match exec(conn, limit, "COMMIT").await {
            Ok(()) => Ok(tally),
            Err(DbError::Retry(t, m)) => {
                let reason = format!(
                    "{m}; whether the batch committed is unknown (plain transactions: XA is not available on this server)"
                );
                self.in_doubt = Some(InDoubt {
                    xid: String::new(),
                    reason: reason.clone(),
                });
                Err(DbError::Fatal(t, reason))
            }
            Err(other) => Err(other),
        }
    }

    /// Writes the batch's marker (there exactly when the batch committed;
    /// the last batch's marker goes, as that batch is settled), then
    /// prepares and commits transaction `xid`.
    async fn commit_xa(&mut self, xid: String, tally: BatchResult) -> Result<BatchResult, DbError> {
        let shared = self.shared.clone();
        let limit = shared.cfg.timeout;
        let conn = self.conn.as_mut().expect("connected above");
        let marker = format!(
            "INSERT INTO {} (xid, target, records) VALUES (?, ?, ?)",
            super::xa::MARKERS
        );
        let target = format!("{}.{}", shared.cfg.database, shared.cfg.table);
        let written = tally.inserted + tally.updated;
        exec_with(
            conn,
            limit,
            &marker,
            vec![xid.as_str().into(), target.into(), written.into()],
        )
        .await?;
        if let Some(prev) = &self.last_marker {
            let sql = format!("DELETE FROM {} WHERE xid = ?", super::xa::MARKERS);
            exec_with(conn, limit, &sql, vec![prev.as_str().into()]).await?;
        }
        exec(conn, limit, &format!("XA END '{xid}'")).await?;
        // From PREPARE until COMMIT has answered, exiting would leave the
        // batch prepared and its rows locked.
        let _critical = self.shutdown.critical();
        let ended = match exec(conn, limit, &format!("XA PREPARE '{xid}'")).await {
            Ok(()) => exec(conn, limit, &format!("XA COMMIT '{xid}'")).await,
            Err(e) => Err(e),
        };
        match ended {
            Ok(()) => {
                self.last_marker = Some(xid);
                Ok(tally)
            }
            Err(DbError::Retry(t, m)) => self.cut_off(xid, tally, t, m).await,
            Err(other) => Err(other),
        }
    }

    /// The connection dropped during XA PREPARE or COMMIT: finds out
    /// (bounded in time: a frozen server must not hold the run) whether
    /// batch `xid` committed. When that cannot be known, the batch is in
    /// doubt.
    async fn cut_off(
        &mut self,
        xid: String,
        tally: BatchResult,
        t: ErrorType,
        m: String,
    ) -> Result<BatchResult, DbError> {
        let limit = self.shared.cfg.timeout;
        let old_id = self.conn.as_ref().expect("connected above").id();
        self.conn = None;
        let bound = limit * 4 + Duration::from_secs(30);
        let resolved = tokio::time::timeout(bound, self.resolve(&xid, old_id, t, m))
            .await
            .unwrap_or_else(|_| {
                Err(DbError::Fatal(
                    ErrorType::Timeout,
                    format!("the server did not answer within {bound:?}"),
                ))
            });
        match resolved {
            Ok(()) => {
                self.last_marker = Some(xid);
                Ok(tally)
            }
            Err(DbError::Fatal(t, m) | DbError::Data(t, m)) => {
                let reason = format!(
                    "whether batch {xid} committed is unknown ({m}); the next run commits it if it was prepared"
                );
                self.in_doubt = Some(InDoubt {
                    xid: xid.clone(),
                    reason: reason.clone(),
                });
                Err(DbError::Fatal(t, reason))
            }
            Err(retry) => Err(retry),
        }
    }

    /// A new connection to check batch `xid`, retried with the run's
    /// policy; `Err` says why there is none.
    async fn reconnect(&self, xid: &str) -> Result<Conn, String> {
        let shared = &*self.shared;
        shared
            .cfg
            .retry
            .retrier()
            .run_async(
                || async {
                    connect(&shared.opts, &shared.cfg)
                        .await
                        .map_err(Failure::passing)
                },
                |e: &mysql_async::Error, progress, delay| {
                    tracing::warn!(
                        "reconnecting to MySQL to check batch {xid}: {e}; retry {progress} in {}",
                        crate::retry::format_wait(delay)
                    )
                },
            )
            .await
            .map_err(|gave_up| format!("{} ({})", gave_up.error, gave_up.reason))
    }

    /// The connection dropped while the batch's transaction `xid` was being
    /// prepared or committed. A prepared XA transaction outlives its
    /// connection: if XA RECOVER lists it, commit it; if not, its marker row
    /// says whether it committed (here, or by a run that recovered it while
    /// this run's lock was lost) or not (then the batch is retried). An
    /// error here (`Fatal`) means the outcome is unknown: the batch is in
    /// doubt.
    async fn resolve(
        &mut self,
        xid: &str,
        old_id: u32,
        error_type: ErrorType,
        message: String,
    ) -> Result<(), DbError> {
        let limit = self.shared.cfg.timeout;
        let mut conn = match self.reconnect(xid).await {
            Ok(c) => c,
            Err(why) => {
                return Err(DbError::Fatal(
                    error_type,
                    format!("{message}; cannot reconnect: {why}"),
                ))
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
                    format!("{message}; the old connection {old_id} is still open after 30 s"),
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
            match exec(&mut conn, limit, &format!("XA COMMIT '{xid}'")).await {
                Ok(()) => {
                    tracing::warn!("{message}; batch {xid} was prepared and is now committed");
                    Ok(())
                }
                // Committed meanwhile by a run that took it for an orphan?
                Err(e) => match super::xa::marked(&mut conn, xid).await {
                    Ok(true) => Ok(()),
                    _ => Err(DbError::Fatal(
                        e.error_type(),
                        format!("{e:?}; batch {xid} is prepared on the server and could not be committed: finish it with XA COMMIT '{xid}'"),
                    )),
                },
            }
        } else {
            match super::xa::marked(&mut conn, xid).await {
                Ok(true) => {
                    tracing::warn!("{message}; batch {xid} had committed");
                    Ok(())
                }
                Ok(false) => Err(DbError::Retry(error_type, message)),
                Err(e) => Err(DbError::Fatal(
                    ErrorType::Server,
                    format!("reading the marker of batch {xid}: {e}"),
                )),
            }
        };
        self.shared.keep_lock(&mut conn).await;
        self.conn = Some(conn);
        outcome
    }
}
