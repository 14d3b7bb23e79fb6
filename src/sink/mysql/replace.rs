//! `--load-mode replace` and `truncate`: what a run does with the rows
//! already in the table.
//!
//! replace: the run's rows go into a shadow table `<table>__pipeline_new`
//! (made `LIKE` the table, or by `--create-table` when there is none yet);
//! when every record is in, one `RENAME TABLE t TO t__pipeline_old,
//! t__pipeline_new TO t` swaps it in (atomic: a reader sees the old table or
//! the new one, never an empty or half-loaded one) and the old table is
//! dropped. A run that fails or is interrupted drops the shadow and leaves
//! the table as it was; a shadow (or old table) a killed run left behind is
//! dropped by the next replace run of the same table. One replace run of a
//! table at a time: each holds the named lock `pcli-replace-<hash>`.
//!
//! `CREATE TABLE … LIKE` copies columns, indexes and the table's options,
//! not triggers nor foreign keys: a table with triggers, or one that other
//! tables' foreign keys reference, is refused (the swap would lose them, or
//! leave the references on the old table); the table's own foreign keys are
//! named in a warning. Views and grants name the table, so they follow the
//! swap.

use std::sync::Mutex;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use crate::config::{MysqlConfig, TableLoad};
use crate::error::{ErrorType, PipelineError, Stage};
use crate::runtime::runtime;

use super::conn::{classify, connect, exec, plain, text_rows, DbError};
use super::table::quote_ident;

/// Appended to the table's name for the shadow table a replace run loads.
pub(super) const SHADOW: &str = "__pipeline_new";
/// Appended to the table's name for the old table between swap and drop.
pub(super) const OLD: &str = "__pipeline_old";

/// The shadow and old tables' names for `table`, or why they cannot be made
/// (MySQL names are at most 64 characters).
pub(crate) fn shadow_names(table: &str) -> Result<(String, String), String> {
    let room = 64 - SHADOW.len().max(OLD.len());
    if table.chars().count() > room {
        return Err(format!(
            "--load-mode replace loads a shadow table '{table}{SHADOW}', longer than MySQL's 64 characters: the table name may have at most {room}; use --load-mode truncate, or rename the table"
        ));
    }
    Ok((format!("{table}{SHADOW}"), format!("{table}{OLD}")))
}

/// Where the shadow table of a replace run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Being loaded (or, with `--check`, only planned).
    Loading,
    /// Swapped in.
    Swapped,
    /// Dropped; the table is as it was.
    Dropped,
}

/// A replace run's shadow table and the lock that makes it this run's.
pub(crate) struct Replace {
    /// The table replaced.
    pub(super) target: String,
    /// The table loaded.
    pub(super) shadow: String,
    old: String,
    database: String,
    /// With `--check`: nothing was created.
    dry: bool,
    /// The table was there at start (the swap renames it away).
    target_existed: bool,
    state: Mutex<State>,
    /// The connection holding `pcli-replace-<hash>` for the run.
    lock: Mutex<Option<Conn>>,
    opts: Opts,
    cfg: MysqlConfig,
}

fn start_error(what: &str, e: &mysql_async::Error) -> PipelineError {
    PipelineError::Unavailable {
        stage: Stage::Sink,
        error_type: classify(e).error_type(),
        message: format!("{what}: {}", plain(e)),
    }
}

fn db_error(e: DbError) -> (ErrorType, String) {
    match e {
        DbError::Retry(t, m) | DbError::Data(t, m) | DbError::Fatal(t, m) => (t, m),
    }
}

/// The name of the run's lock on the table.
fn lock_name(cfg: &MysqlConfig) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}.{}", cfg.database, cfg.table).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("pcli-replace-{:08x}", h as u32)
}

/// One column of text rows.
async fn names(
    conn: &mut Conn,
    sql: &str,
    params: Vec<String>,
) -> Result<Vec<String>, PipelineError> {
    let rows = text_rows(conn, sql, params.into_iter().map(Into::into).collect())
        .await
        .map_err(|e| start_error("reading information_schema", &e))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

/// Refuses a table whose triggers or foreign-key references a replace
/// (`replace`) or a TRUNCATE would lose or break, and a view; warns of the
/// table's own foreign keys, which the shadow does not get.
async fn check_target(conn: &mut Conn, cfg: &MysqlConfig) -> Result<(), PipelineError> {
    let (db, t) = (cfg.database.clone(), cfg.table.clone());
    let mode = match cfg.table_load {
        TableLoad::Replace => "replace",
        _ => "truncate",
    };
    let kind = names(
        conn,
        "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        vec![db.clone(), t.clone()],
    )
    .await?;
    if kind.iter().any(|k| k != "BASE TABLE") {
        return Err(PipelineError::Config(format!(
            "--load-mode {mode}: {db}.{t} is a view, not a table; use the table it shows as --db-table"
        )));
    }
    let referenced = names(
        conn,
        "SELECT CONCAT(CONSTRAINT_SCHEMA, '.', TABLE_NAME, ' (', CONSTRAINT_NAME, ')') FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ? AND NOT (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?)",
        vec![db.clone(), t.clone(), db.clone(), t.clone()],
    )
    .await?;
    if !referenced.is_empty() {
        return Err(PipelineError::Config(format!(
            "--load-mode {mode}: {db}.{t} is referenced by the foreign key(s) {}, which {}; use --load-mode upsert",
            referenced.join(", "),
            if mode == "replace" {
                "would stay on the old table, and keep it from being dropped"
            } else {
                "keep TRUNCATE from running"
            }
        )));
    }
    if cfg.table_load != TableLoad::Replace {
        return Ok(());
    }
    let triggers = names(
        conn,
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?",
        vec![db.clone(), t.clone()],
    )
    .await?;
    if !triggers.is_empty() {
        return Err(PipelineError::Config(format!(
            "--load-mode replace: {db}.{t} has the trigger(s) {}, which CREATE TABLE … LIKE does not copy, so the swapped-in table would have none; use --load-mode truncate or upsert",
            triggers.join(", ")
        )));
    }
    let own = names(
        conn,
        "SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
        vec![db.clone(), t.clone()],
    )
    .await?;
    if !own.is_empty() {
        tracing::warn!(
            "--load-mode replace: the foreign key(s) {} of {db}.{t} are not copied by CREATE TABLE … LIKE: the swapped-in table has none",
            own.join(", ")
        );
    }
    Ok(())
}

impl Replace {
    /// Takes the table's replace lock, drops what a killed run left, and
    /// creates the shadow like the table (when there is one; otherwise
    /// `--create-table` makes it). With `dry`, only checks.
    pub(super) async fn start(
        opts: &Opts,
        cfg: &MysqlConfig,
        target_existed: bool,
        dry: bool,
    ) -> Result<Replace, PipelineError> {
        let (shadow, old) = shadow_names(&cfg.table).map_err(PipelineError::Config)?;
        let mut conn = connect(opts, cfg)
            .await
            .map_err(|e| start_error("connecting for --load-mode replace", &e))?;
        if target_existed {
            check_target(&mut conn, cfg).await?;
        }
        let replace = Replace {
            target: cfg.table.clone(),
            shadow,
            old,
            database: cfg.database.clone(),
            dry,
            target_existed,
            state: Mutex::new(State::Loading),
            lock: Mutex::new(None),
            opts: opts.clone(),
            cfg: cfg.clone(),
        };
        if dry {
            let _ = conn.disconnect().await;
            return Ok(replace);
        }
        let name = lock_name(cfg);
        let got = text_rows(
            &mut conn,
            "SELECT GET_LOCK(?, 0)",
            vec![name.as_str().into()],
        )
        .await
        .map_err(|e| start_error("GET_LOCK", &e))?;
        if got.first().and_then(|r| r[0].as_deref()) != Some("1") {
            return Err(PipelineError::Busy(format!(
                "another run is replacing {}.{} now (it holds the lock {name}); wait for it to end",
                cfg.database, cfg.table
            )));
        }
        // Idle for the whole run: not to be closed by the server's
        // wait_timeout, which would free the lock for another run.
        text_rows(&mut conn, "SET SESSION wait_timeout = 31536000", vec![])
            .await
            .map_err(|e| start_error("setting wait_timeout", &e))?;
        for left in [&replace.shadow, &replace.old] {
            if replace.exists(&mut conn, left).await? {
                tracing::warn!(
                    "dropping {}.{left}, left by an earlier --load-mode replace run that did not end",
                    cfg.database
                );
                replace
                    .run_sql(&mut conn, &format!("DROP TABLE {}", replace.quoted(left)))
                    .await
                    .map_err(|(t, m)| PipelineError::Unavailable {
                        stage: Stage::Sink,
                        error_type: t,
                        message: m,
                    })?;
            }
        }
        if target_existed {
            let sql = format!(
                "CREATE TABLE {} LIKE {}",
                replace.quoted(&replace.shadow),
                replace.quoted(&replace.target)
            );
            replace.run_sql(&mut conn, &sql).await.map_err(|(t, m)| {
                PipelineError::Unavailable {
                    stage: Stage::Sink,
                    error_type: t,
                    message: m,
                }
            })?;
        }
        tracing::info!(
            "--load-mode replace: loading {}.{}; {}.{} stays as it is until every record is in",
            cfg.database,
            replace.shadow,
            cfg.database,
            cfg.table
        );
        *replace.lock.lock().expect("replace lock") = Some(conn);
        Ok(replace)
    }

    fn quoted(&self, table: &str) -> String {
        format!("{}.{}", quote_ident(&self.database), quote_ident(table))
    }

    async fn exists(&self, conn: &mut Conn, table: &str) -> Result<bool, PipelineError> {
        Ok(!names(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            vec![self.database.clone(), table.to_string()],
        )
        .await?
        .is_empty())
    }

    async fn run_sql(&self, conn: &mut Conn, sql: &str) -> Result<(), (ErrorType, String)> {
        exec(conn, self.cfg.timeout, sql).await.map_err(db_error)
    }

    /// What `--check` says of the replace.
    pub(super) fn plan(&self) -> String {
        format!(
            "sink: --load-mode replace: records go into {db}.{s} ({made}), then one RENAME TABLE swaps it in for {db}.{t} and the previous table is dropped; readers see the old rows until the swap; a failed or interrupted run drops {db}.{s}; nothing is created by --check",
            db = self.database,
            s = self.shadow,
            t = self.target,
            made = if self.target_existed {
                format!("created LIKE {}.{}", self.database, self.target)
            } else {
                "created by --create-table".into()
            }
        )
    }

    /// Swaps the loaded shadow in (`complete`) or drops it; the summary's
    /// note on the table. Once done, later calls only repeat the note.
    pub(super) fn finish(&self, complete: bool) -> Result<String, PipelineError> {
        let display = format!("{}.{}", self.database, self.target);
        let mut state = self.state.lock().expect("replace state");
        if self.dry {
            return Ok(format!("table {display}"));
        }
        match *state {
            State::Swapped => return Ok(format!("replaced table {display}")),
            State::Dropped => return Ok(self.untouched()),
            State::Loading => {}
        }
        let done = runtime().block_on(async {
            let mut held = self.lock.lock().expect("replace lock").take();
            // The lock's connection, idle all run, may have been closed by
            // the server (wait_timeout): then a new one.
            if let Some(c) = held.as_mut() {
                if c.ping().await.is_err() {
                    tracing::warn!(
                        "the MySQL connection holding the --load-mode replace lock was lost; swapping on a new one"
                    );
                    held = None;
                }
            }
            let mut conn = match held {
                Some(c) => c,
                None => connect(&self.opts, &self.cfg)
                    .await
                    .map_err(|e| (classify(&e).error_type(), plain(&e)))?,
            };
            let mut bounded = None;
            let done = match complete {
                true => match self.shrink(&mut conn).await {
                    Ok(None) => self.swap(&mut conn).await,
                    Ok(Some(why)) => {
                        bounded = Some(why);
                        self.drop_shadow(&mut conn).await.map(|()| None)
                    }
                    Err(e) => Err(e),
                },
                false => self.drop_shadow(&mut conn).await.map(|()| None),
            };
            let _ = tokio::time::timeout(self.cfg.timeout, conn.disconnect()).await;
            done.map(|rows| (rows, bounded))
        });
        let done = match done {
            Ok((_, Some(why))) => {
                *state = State::Dropped;
                return Err(PipelineError::Sink(ErrorType::Config, why));
            }
            Ok((rows, None)) => Ok(rows),
            Err(e) => Err(e),
        };
        match done {
            Ok(Some(rows)) => {
                *state = State::Swapped;
                Ok(format!(
                    "replaced table {display} ({rows} rows; the previous table dropped)"
                ))
            }
            Ok(None) => {
                *state = State::Dropped;
                Ok(self.untouched())
            }
            Err((t, m)) if complete => {
                // The table is as it was: the shadow goes.
                drop(state);
                let _ = self.finish(false);
                Err(PipelineError::Sink(
                    t,
                    format!(
                        "swapping {}.{} in for {display}: {m}; {display} is left as it was (the swap waits at most --db-timeout for the queries and open transactions on it: rerun when they are done, or raise --db-timeout)",
                        self.database, self.shadow
                    ),
                ))
            }
            Err((t, m)) => Err(PipelineError::Sink(
                t,
                format!(
                    "dropping {}.{}: {m}; the next --load-mode replace run drops it",
                    self.database, self.shadow
                ),
            )),
        }
    }

    fn untouched(&self) -> String {
        format!(
            "table {}.{} left as it was (the run did not complete, or records failed beyond --accept-errors; its rows, loaded into {}, were dropped)",
            self.database, self.target, self.shadow
        )
    }

    async fn drop_shadow(&self, conn: &mut Conn) -> Result<(), (ErrorType, String)> {
        let sql = format!("DROP TABLE IF EXISTS {}", self.quoted(&self.shadow));
        self.run_sql(conn, &sql).await?;
        tracing::info!(
            "--load-mode replace: the run did not complete, or records failed beyond --accept-errors; {}.{} dropped, {}.{} left as it was",
            self.database,
            self.shadow,
            self.database,
            self.target
        );
        Ok(())
    }

    /// Why the loaded shadow must not replace the table: it has more rows
    /// fewer than the old one than `--max-delete` allows (a source that
    /// came back nearly empty); None when it may.
    async fn shrink(&self, conn: &mut Conn) -> Result<Option<String>, (ErrorType, String)> {
        if !self.target_existed {
            return Ok(None);
        }
        let mut counts = [0u64; 2];
        for (n, t) in counts.iter_mut().zip([&self.target, &self.shadow]) {
            *n = conn
                .query_first::<u64, _>(format!("SELECT COUNT(*) FROM {}", self.quoted(t)))
                .await
                .map_err(|e| (classify(&e).error_type(), plain(&e)))?
                .unwrap_or(0);
        }
        let [old, new] = counts;
        let lost = old.saturating_sub(new);
        let bound = &self.cfg.max_shrink;
        Ok((!bound.allows(lost, old)).then(|| {
            format!(
                "--max-delete {}: the new {}.{} has {new} rows, {lost} fewer than the {old} of the table ({:.1}%), so it is not swapped in: {}.{} is left as it was. If the source really has that many fewer, run again with a higher --max-delete (e.g. --max-delete {lost}, or 100%)",
                bound.shown(),
                self.database,
                self.shadow,
                lost as f64 * 100.0 / old.max(1) as f64,
                self.database,
                self.target
            )
        }))
    }

    /// Counts the shadow's rows, swaps it in, drops the old table; the rows.
    async fn swap(&self, conn: &mut Conn) -> Result<Option<u64>, (ErrorType, String)> {
        let (shadow, target, old) = (
            self.quoted(&self.shadow),
            self.quoted(&self.target),
            self.quoted(&self.old),
        );
        let rows: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM {shadow}"))
            .await
            .map_err(|e| (classify(&e).error_type(), plain(&e)))?;
        // A table created by another run meanwhile makes the rename fail:
        // nothing is swapped, the shadow is dropped.
        let rename = if self.target_existed {
            format!("RENAME TABLE {target} TO {old}, {shadow} TO {target}")
        } else {
            format!("RENAME TABLE {shadow} TO {target}")
        };
        // The server itself gives up waiting for the table's readers after
        // --db-timeout, so a rename the client stopped waiting for cannot
        // happen later anyway.
        let wait = self.cfg.timeout.as_secs().max(1);
        self.run_sql(conn, &format!("SET SESSION lock_wait_timeout = {wait}"))
            .await?;
        exec(conn, self.cfg.timeout * 2 + Duration::from_secs(5), &rename)
            .await
            .map_err(db_error)?;
        if self.target_existed {
            if let Err((_, m)) = self.run_sql(conn, &format!("DROP TABLE {old}")).await {
                tracing::warn!(
                    "{}.{} is swapped in, but the previous table {}.{} could not be dropped ({m}); the next --load-mode replace run drops it",
                    self.database,
                    self.target,
                    self.database,
                    self.old
                );
            }
        }
        tracing::info!(
            "--load-mode replace: {}.{} swapped in with {} rows; the previous table dropped",
            self.database,
            self.target,
            rows.unwrap_or(0)
        );
        Ok(Some(rows.unwrap_or(0)))
    }
}

impl Drop for Replace {
    /// A run that ended before the sink finished (a failure while it was
    /// being set up, a crash) drops its shadow too.
    fn drop(&mut self) {
        let loading = self
            .state
            .lock()
            .map(|s| *s == State::Loading)
            .unwrap_or(false);
        if loading && !self.dry && tokio::runtime::Handle::try_current().is_err() {
            let _ = self.finish(false);
        }
    }
}

/// What `--load-mode` needs before the first record (the sink opens after
/// the source has): replace starts its shadow table, truncate empties the
/// table (with `dry`, both only check).
pub(super) async fn prepare(
    opts: &Opts,
    cfg: &MysqlConfig,
    exists: bool,
    dry: bool,
) -> Result<Option<Replace>, PipelineError> {
    match cfg.table_load {
        TableLoad::Upsert => Ok(None),
        TableLoad::Replace => Replace::start(opts, cfg, exists, dry).await.map(Some),
        TableLoad::Truncate if exists => {
            let mut conn = connect(opts, cfg)
                .await
                .map_err(|e| start_error("connecting for --load-mode truncate", &e))?;
            let done = if dry {
                check_target(&mut conn, cfg).await
            } else {
                truncate(&mut conn, cfg).await
            };
            let _ = conn.disconnect().await;
            done.map(|()| None)
        }
        TableLoad::Truncate => Ok(None),
    }
}

/// `--load-mode truncate`: empties the table, once the source has opened.
async fn truncate(conn: &mut Conn, cfg: &MysqlConfig) -> Result<(), PipelineError> {
    check_target(conn, cfg).await?;
    let sql = format!(
        "TRUNCATE TABLE {}.{}",
        quote_ident(&cfg.database),
        quote_ident(&cfg.table)
    );
    exec(conn, cfg.timeout, &sql).await.map_err(|e| {
        let (t, m) = db_error(e);
        PipelineError::Unavailable {
            stage: Stage::Sink,
            error_type: t,
            message: format!(
                "--load-mode truncate: cannot empty {}.{}: {m}; check the user's DROP privilege on it, or use --load-mode replace",
                cfg.database, cfg.table
            ),
        }
    })?;
    tracing::warn!(
        "--load-mode truncate: {}.{} emptied; readers see it empty or partly loaded until the run ends",
        cfg.database,
        cfg.table
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_names_fit_in_64_characters() {
        let (s, o) = shadow_names("orders").unwrap();
        assert_eq!(
            (s.as_str(), o.as_str()),
            ("orders__pipeline_new", "orders__pipeline_old")
        );
        let longest = "t".repeat(64 - SHADOW.len());
        assert_eq!(shadow_names(&longest).unwrap().0.len(), 64);
        let e = shadow_names(&format!("{longest}x")).unwrap_err();
        assert!(e.contains("--load-mode") && e.contains("64"), "{e}");
    }
}
