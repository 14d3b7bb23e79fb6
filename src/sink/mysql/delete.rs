//! `--delete-missing`: after a full read, delete the table's rows whose key
//! the run did not see.
//!
//! At start the run takes a lock of its own for the table (one such run at a
//! time), drops a key table an earlier run left behind (killed before its
//! end), and creates `<table>__pipeline_seen` with the key columns of the
//! table. Every batch writes its records' keys there in its own
//! transaction, so the key table holds exactly the keys of the batches that
//! committed. At the end, only when the run read everything and no record
//! failed, the rows of the table whose key is not in the key table are
//! counted, checked against `--max-delete`, and deleted in batches; the key
//! table is dropped whatever happens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Value as MyValue};

use crate::config::{DeleteMissing, MysqlConfig};
use crate::error::{ErrorType, PipelineError, Stage};
use crate::metrics::Metrics;

use super::conn::DbError;
use super::conn::{bounded, classify, connect, connect_error, exec, exec_with, plain, text_rows};
use super::rows::Row;
use super::table::{quote_ident, Table};

/// The end of the key table's name: `<table>__pipeline_seen`.
pub(super) const SEEN_SUFFIX: &str = "__pipeline_seen";

/// The COMMENT of a key table: only a table with it is ever dropped.
const SEEN_COMMENT: &str =
    "pipeline-cli --delete-missing: keys the run in progress has written; dropped at its end";

/// Rows deleted per statement.
const DELETE_BATCH: u64 = 1000;

/// What `--delete-missing` keeps during a run.
pub(crate) struct Missing {
    settings: DeleteMissing,
    /// `db`.`table`, quoted.
    target: String,
    /// `db.table`, for messages.
    shown: String,
    /// The database and the table, unquoted.
    names: (String, String),
    /// `db`.`<table>__pipeline_seen`, quoted.
    seen: String,
    /// The key columns: (column index in the table, quoted name).
    key: Vec<(usize, String)>,
    /// The SQL types of the key columns the key table has now.
    types: Mutex<Vec<String>>,
    /// The connection holding this run's lock for the table; taken at the end.
    lock: Mutex<Option<Conn>>,
    /// Records whose key could not be noted (no value, or NULL, for a key column).
    unknown: AtomicU64,
    metrics: OnceLock<Arc<Metrics>>,
    /// The table's rows when the run started: what a `--max-delete`
    /// percentage is of (rows this run adds do not widen the bound).
    rows_at_start: u64,
}

/// The key table's name for `table`: `<table>__pipeline_seen`, shortened
/// (with a hash of the whole name) where that would pass MySQL's 64
/// characters.
pub(super) fn seen_name(table: &str) -> String {
    let full = format!("{table}{SEEN_SUFFIX}");
    if full.chars().count() <= 64 {
        return full;
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in table.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let keep = 64 - SEEN_SUFFIX.len() - 9;
    let head: String = table.chars().take(keep).collect();
    format!("{head}_{h:08x}{SEEN_SUFFIX}")
}

/// For `--check`: what `--delete-missing` will do.
pub(super) fn check_line(shared: &super::Shared) -> Option<String> {
    let cfg = &shared.cfg;
    let settings = cfg.delete_missing?;
    let table = shared.table.lock().expect("table lock").clone();
    Some(match table.as_deref().map(|t| key_columns(cfg, t)) {
        Some(Ok(key)) => format!(
            "sink: --delete-missing: at the end, rows of {}.{} whose key ({}) this run did not read are deleted, at most --max-delete {}; keys go to {}.{} meanwhile",
            cfg.database,
            cfg.table,
            key.iter().map(|(_, q)| q.as_str()).collect::<Vec<_>>().join(", "),
            settings.max_delete.shown(),
            cfg.database,
            seen_name(&cfg.table)
        ),
        Some(Err(e)) => format!("sink: {e}"),
        None => format!(
            "sink: --delete-missing: table {}.{} is created by this run: nothing to delete",
            cfg.database, cfg.table
        ),
    })
}

/// The MySQL lock one `--delete-missing` run over a table holds.
fn lock_name(cfg: &MysqlConfig) -> String {
    format!("{}delete", super::xa::prefix(cfg))
}

/// A failure of the setup at start.
fn start_error(cfg: &MysqlConfig, what: &str, e: &mysql_async::Error) -> PipelineError {
    PipelineError::Unavailable {
        stage: Stage::Sink,
        error_type: classify(e).error_type(),
        message: format!(
            "--delete-missing: {what} for {}.{}: {}",
            cfg.database,
            cfg.table,
            plain(e)
        ),
    }
}

/// The key columns `--delete-missing` compares: `--db-key`'s, else the
/// table's primary (or first unique) key.
fn key_columns(cfg: &MysqlConfig, table: &Table) -> Result<Vec<(usize, String)>, PipelineError> {
    let shown = format!("{}.{}", cfg.database, cfg.table);
    let key: Vec<usize> = if cfg.key.is_empty() {
        table.key.clone()
    } else {
        cfg.key
            .iter()
            .map(|k| {
                table
                    .columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(k))
                    .ok_or_else(|| {
                        PipelineError::Config(format!(
                            "--delete-missing: --db-key column '{k}' is not a column of {shown}"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?
    };
    if key.is_empty() {
        return Err(PipelineError::Config(format!(
            "--delete-missing needs a key to compare: {shown} has no primary or unique key; add one, or name the key column(s) with --db-key COL"
        )));
    }
    Ok(key
        .into_iter()
        .map(|c| (c, quote_ident(&table.columns[c].name)))
        .collect())
}

/// Sets `--delete-missing` up at start: takes the run's lock for the
/// table, drops a key table left by an earlier run, creates this run's.
/// None when the table is missing (this run creates it: nothing in it is
/// missing from the source); with `dry` (`--check`), None after checking
/// the key.
pub(super) async fn prepare(
    opts: &Opts,
    cfg: &MysqlConfig,
    table: Option<&Table>,
    dry: bool,
) -> Result<Option<Missing>, PipelineError> {
    let limit = cfg.timeout * 3;
    tokio::time::timeout(limit, set_up(opts, cfg, table, dry))
        .await
        .map_err(|_| PipelineError::Unavailable {
            stage: Stage::Sink,
            error_type: ErrorType::Timeout,
            message: format!(
                "--delete-missing: making the key table for {}.{} took longer than 3 x --db-timeout {}",
                cfg.database,
                cfg.table,
                crate::retry::format_duration(cfg.timeout)
            ),
        })?
}

/// [`prepare`], unbounded.
async fn set_up(
    opts: &Opts,
    cfg: &MysqlConfig,
    table: Option<&Table>,
    dry: bool,
) -> Result<Option<Missing>, PipelineError> {
    let Some(settings) = cfg.delete_missing else {
        return Ok(None);
    };
    let Some(table) = table else {
        tracing::info!(
            "--delete-missing: table {}.{} is created by this run, so it has no row the source no longer has",
            cfg.database,
            cfg.table
        );
        return Ok(None);
    };
    let key = key_columns(cfg, table)?;
    if dry {
        return Ok(None);
    }
    let mut conn = connect(opts, cfg)
        .await
        .map_err(|e| connect_error(cfg, &e))?;
    let lock = lock_name(cfg);
    let shown = format!("{}.{}", cfg.database, cfg.table);
    match super::xa::hold_lock(&mut conn, &lock).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(PipelineError::Busy(format!(
                "another run with --delete-missing is loading {shown} (it holds the MySQL lock {lock}); wait for it to end"
            )))
        }
        Err(e) => return Err(start_error(cfg, "taking the lock", &e)),
    }
    // Idle for the whole run: not to be closed by the server's wait_timeout.
    conn.query_drop("SET SESSION wait_timeout = 31536000")
        .await
        .map_err(|e| start_error(cfg, "setting wait_timeout", &e))?;
    let name = seen_name(&cfg.table);
    let seen = format!("{}.{}", quote_ident(&cfg.database), quote_ident(&name));
    let left = text_rows(
        &mut conn,
        "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        vec![cfg.database.as_str().into(), name.as_str().into()],
    )
    .await
    .map_err(|e| start_error(cfg, "looking for a key table", &e))?;
    if let Some(row) = left.first() {
        // Never a table of someone else's that happens to have the name.
        if row[0].as_deref() != Some(SEEN_COMMENT) {
            return Err(PipelineError::Config(format!(
                "--delete-missing keeps this run's keys in {}.{name}, but a table of that name exists that pipeline-cli did not make; rename it, or load another table",
                cfg.database
            )));
        }
        tracing::warn!(
            "--delete-missing: dropping {}.{name}, the key table of an earlier run that ended before it could finish (killed, or its connection lost); this run makes its own",
            cfg.database
        );
    }
    let columns: Vec<&str> = key.iter().map(|(_, q)| q.as_str()).collect();
    let list = columns.join(", ");
    let create = format!(
        "CREATE TABLE {seen} (PRIMARY KEY ({list})) ENGINE=InnoDB COMMENT='{SEEN_COMMENT}' SELECT {list} FROM {} LIMIT 0",
        table.quoted
    );
    for sql in [format!("DROP TABLE IF EXISTS {seen}"), create] {
        conn.query_drop(&sql)
            .await
            .map_err(|e| start_error(cfg, "making the key table", &e))?;
    }
    let rows_at_start = count(
        &mut conn,
        cfg.timeout,
        &format!("SELECT COUNT(*) FROM {}", table.quoted),
    )
    .await
    .map_err(|e| {
        let (t, m) = match e {
            DbError::Retry(t, m) | DbError::Data(t, m) | DbError::Fatal(t, m) => (t, m),
        };
        PipelineError::Sink(
            t,
            format!("--delete-missing: counting the rows of {shown}: {m}; check that the table can be read"),
        )
    })?;
    tracing::info!(
        "--delete-missing: keys of this run go to {}.{name}; rows of {shown} whose key is not there are deleted at the end (at most --max-delete {})",
        cfg.database,
        settings.max_delete.shown()
    );
    Ok(Some(Missing {
        settings,
        target: table.quoted.clone(),
        shown,
        names: (cfg.database.clone(), cfg.table.clone()),
        seen,
        types: Mutex::new(
            key.iter()
                .map(|(c, _)| table.columns[*c].sql_type.clone())
                .collect(),
        ),
        key,
        lock: Mutex::new(Some(conn)),
        unknown: AtomicU64::new(0),
        metrics: OnceLock::new(),
        rows_at_start,
    }))
}

impl Missing {
    /// The run's metrics, for the deleted rows and the failed records.
    pub(super) fn set_metrics(&self, metrics: &Arc<Metrics>) {
        let _ = self.metrics.set(metrics.clone());
    }

    /// Before a batch's transaction: a key column widened since the key
    /// table was made (`--widen-columns`) is widened there too, so a key
    /// always fits it.
    pub(super) async fn fit_types(
        &self,
        conn: &mut Conn,
        table: &Table,
        limit: Duration,
    ) -> Result<(), DbError> {
        let now: Vec<String> = self
            .key
            .iter()
            .map(|(c, _)| table.columns[*c].sql_type.clone())
            .collect();
        if *self.types.lock().expect("types lock") == now {
            return Ok(());
        }
        let (db, name) = self.names.clone();
        let rows = bounded(
            limit,
            text_rows(
                conn,
                "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                vec![db.into(), name.into()],
            ),
        )
        .await?
        .map_err(|e| classify(&e))?;
        let changes: Vec<String> = self
            .key
            .iter()
            .filter_map(|(c, quoted)| {
                let col = &table.columns[*c].name;
                let r = rows.iter().find(|r| r[0].as_deref() == Some(col))?;
                let mut def = format!("MODIFY {quoted} {}", r[1].clone()?);
                if let (Some(cs), Some(co)) = (&r[2], &r[3]) {
                    def.push_str(&format!(" CHARACTER SET {cs} COLLATE {co}"));
                }
                Some(def + " NOT NULL")
            })
            .collect();
        let sql = format!("ALTER TABLE {} {}", self.seen, changes.join(", "));
        exec(conn, limit, &sql).await?;
        *self.types.lock().expect("types lock") = now;
        Ok(())
    }

    /// In a batch's transaction: writes the keys of its rows to the key
    /// table. A row without a value for a key column is counted: its key
    /// is unknown, so nothing will be deleted.
    pub(super) async fn note(
        &self,
        conn: &mut Conn,
        rows: &[Row],
        limit: Duration,
        max_packet: usize,
    ) -> Result<(), DbError> {
        let width = self.key.len();
        let mut keys: Vec<Vec<MyValue>> = Vec::with_capacity(rows.len());
        for row in rows {
            let values: Option<Vec<MyValue>> = self
                .key
                .iter()
                .map(|(c, _)| {
                    let at = row.map.pairs.iter().position(|(_, col)| col == c)?;
                    Some(row.values[at].clone()).filter(|v| *v != MyValue::NULL)
                })
                .collect();
            match values {
                Some(v) => keys.push(v),
                None => {
                    self.unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let columns: Vec<&str> = self.key.iter().map(|(_, q)| q.as_str()).collect();
        let one = format!("({})", vec!["?"; width].join(", "));
        let most_rows = (60_000 / width).max(1);
        let mut start = 0;
        while start < keys.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < keys.len() && end - start < most_rows && bytes < max_packet / 2 {
                bytes += keys[end].iter().map(value_size).sum::<usize>() + 8;
                end += 1;
            }
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {} ON DUPLICATE KEY UPDATE {} = {}",
                self.seen,
                columns.join(", "),
                vec![one.as_str(); end - start].join(", "),
                columns[0],
                columns[0]
            );
            let params: Vec<MyValue> = keys[start..end].iter().flatten().cloned().collect();
            exec_with(conn, limit, &sql, params).await?;
            start = end;
        }
        Ok(())
    }

    /// At the end of the run: deletes the rows whose key the run did not
    /// see when `complete` and no record failed, within `--max-delete`;
    /// drops the key table and gives the lock back. Returns a note for the
    /// summary. Does nothing once done.
    pub(super) async fn finish(
        &self,
        opts: &Opts,
        cfg: &MysqlConfig,
        complete: bool,
    ) -> Result<Option<String>, PipelineError> {
        let Some(mut conn) = self.lock.lock().expect("lock slot").take() else {
            return Ok(None);
        };
        let limit = cfg.timeout;
        let skip = self.skip_reason(complete);
        let result = match skip {
            Some(why) => {
                tracing::warn!("--delete-missing: nothing deleted: {why}");
                Ok(Some(format!("--delete-missing: nothing deleted ({why})")))
            }
            None => {
                // The lock's connection may have been lost (the network):
                // the lock is taken again, or nothing is deleted, as another
                // run may have replaced the key table meanwhile.
                if !matches!(bounded(limit, conn.ping()).await, Ok(Ok(()))) {
                    match self.lock_again(opts, cfg).await {
                        Some(c) => conn = c,
                        None => {
                            let why = "the connection holding this run's lock was lost and the lock could not be taken again";
                            tracing::warn!("--delete-missing: nothing deleted: {why}");
                            return Ok(Some(format!("--delete-missing: nothing deleted ({why})")));
                        }
                    }
                }
                self.delete(&mut conn, limit).await
            }
        };
        // Dropped whatever happened: a later run would drop it anyway.
        let _ = exec(
            &mut conn,
            limit,
            &format!("DROP TABLE IF EXISTS {}", self.seen),
        )
        .await;
        let _ = tokio::time::timeout(limit, conn.disconnect()).await;
        result
    }

    /// A new connection holding the run's lock again, if it is free.
    async fn lock_again(&self, opts: &Opts, cfg: &MysqlConfig) -> Option<Conn> {
        let mut conn = connect(opts, cfg).await.ok()?;
        let name = lock_name(cfg);
        matches!(super::xa::hold_lock(&mut conn, &name).await, Ok(true)).then_some(conn)
    }

    /// Why nothing may be deleted, if so.
    fn skip_reason(&self, complete: bool) -> Option<String> {
        if !complete {
            return Some("the run did not read everything (it was interrupted or failed)".into());
        }
        let Some(metrics) = self.metrics.get() else {
            return Some("no record reached the table".into());
        };
        let c = metrics.counts();
        if c.failed + c.in_doubt > 0 || !c.reconciles() {
            return Some(format!(
                "{} records failed or are in doubt, and a failed record's key may be one of the table's rows; fix them and run again",
                c.failed + c.in_doubt
            ));
        }
        let unknown = self.unknown.load(Ordering::Relaxed);
        if unknown > 0 {
            return Some(format!(
                "{unknown} records had no value for the key column(s) {}, so their keys are unknown",
                self.key
                    .iter()
                    .map(|(_, q)| q.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        None
    }

    /// Counts the rows to delete, checks `--max-delete`, deletes them in
    /// batches.
    async fn delete(
        &self,
        conn: &mut Conn,
        limit: Duration,
    ) -> Result<Option<String>, PipelineError> {
        let failed = |what: &str, e: DbError| {
            let (t, m) = match e {
                DbError::Retry(t, m) | DbError::Data(t, m) | DbError::Fatal(t, m) => (t, m),
            };
            PipelineError::Sink(t, format!("--delete-missing: {what} {}: {m}", self.shown))
        };
        // The rows before this run's load: new keys do not dilute the bound.
        let total = self.rows_at_start;
        let missing = count(
            conn,
            limit,
            &format!("SELECT COUNT(*) FROM {}", self.unseen("t")),
        )
        .await
        .map_err(|e| failed("counting the rows to delete of", e))?;
        if !self.settings.max_delete.allows(missing, total) {
            return Err(PipelineError::Sink(
                ErrorType::Config,
                format!(
                    "--max-delete {}: {missing} of the {total} rows {} had before this run ({:.1}%) have a key this run did not read; nothing deleted. If the source really lost them, run again with a higher --max-delete (e.g. --max-delete {missing})",
                    self.settings.max_delete.shown(),
                    self.shown,
                    missing as f64 * 100.0 / (total.max(1)) as f64
                ),
            ));
        }
        let on: Vec<String> = self
            .key
            .iter()
            .map(|(_, q)| format!("t.{q} = d.{q}"))
            .collect();
        let picked: Vec<String> = self.key.iter().map(|(_, q)| format!("t.{q}")).collect();
        let mut deleted = 0u64;
        while deleted < missing {
            let n = DELETE_BATCH.min(missing - deleted);
            let sql = format!(
                "DELETE t FROM {} t JOIN (SELECT {} FROM {} LIMIT {n}) d ON {}",
                self.target,
                picked.join(", "),
                self.unseen("t"),
                on.join(" AND ")
            );
            let done = bounded(limit, conn.query_drop(&sql))
                .await
                .and_then(|r| r.map_err(|e| classify(&e)))
                .map(|()| conn.affected_rows())
                .map_err(|e| {
                    failed(
                        &format!("{deleted} of {missing} rows deleted (the next run with --delete-missing deletes the rest), then deleting from"),
                        e,
                    )
                })?;
            deleted += done;
            if let Some(m) = self.metrics.get() {
                m.records_deleted(done);
            }
            if done == 0 {
                break;
            }
        }
        tracing::info!(
            "--delete-missing: deleted {deleted} rows of {} whose key this run did not read",
            self.shown
        );
        Ok((deleted == 0).then(|| "--delete-missing: no row to delete".to_string()))
    }

    /// `target t` left-joined to the key table, keeping the rows whose key
    /// is not there (a row with a NULL key column is never deleted).
    fn unseen(&self, alias: &str) -> String {
        let on: Vec<String> = self
            .key
            .iter()
            .map(|(_, q)| format!("s.{q} = {alias}.{q}"))
            .collect();
        let not_null: Vec<String> = self
            .key
            .iter()
            .map(|(_, q)| format!(" AND {alias}.{q} IS NOT NULL"))
            .collect();
        format!(
            "{} {alias} LEFT JOIN {} s ON {} WHERE s.{} IS NULL{}",
            self.target,
            self.seen,
            on.join(" AND "),
            self.key[0].1,
            not_null.concat()
        )
    }
}

/// The number a `SELECT COUNT(*)` gives.
async fn count(conn: &mut Conn, limit: Duration, sql: &str) -> Result<u64, DbError> {
    let rows = bounded(limit, text_rows(conn, sql, vec![]))
        .await?
        .map_err(|e| classify(&e))?;
    Ok(rows
        .first()
        .and_then(|r| r[0].as_deref())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// About how many bytes a value takes in a statement.
fn value_size(v: &MyValue) -> usize {
    match v {
        MyValue::Bytes(b) => b.len() * 2 + 3,
        _ => 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_table_name_stays_within_64_characters() {
        assert_eq!(seen_name("orders"), "orders__pipeline_seen");
        let long = "é".repeat(60);
        let name = seen_name(&long);
        assert_eq!(name.chars().count(), 64, "{name}");
        assert!(name.ends_with(SEEN_SUFFIX));
        assert_ne!(
            seen_name(&format!("{long}a")),
            seen_name(&format!("{long}b"))
        );
    }
}
