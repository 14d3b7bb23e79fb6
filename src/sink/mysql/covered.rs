//! `--checkpoint` on MySQL: every batch records the rows it holds (their
//! streams and ordinals, [`Coverage`]) in [`TABLE`], inside its own
//! transaction, so the row is there exactly when the batch committed. A
//! resumed run reads them back and skips those rows as well as the ones
//! the checkpoint file says are done: a batch that committed after the file
//! was last written is never written again, even into a table without a
//! key. A completed (or discarded) job's rows are deleted.

use mysql_async::{Conn, Opts};

use crate::checkpoint::Coverage;
use crate::config::MysqlConfig;
use crate::error::{ErrorType, PipelineError, Stage};

use super::conn::{connect, exec_with, plain, text_rows, DbError};

/// The table, in the target database.
pub(super) const TABLE: &str = "pipeline_cli_checkpoint_batches";

fn failed(what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Unavailable {
        stage: Stage::Sink,
        error_type: ErrorType::Server,
        message: format!(
            "--checkpoint: {what} {TABLE} on MySQL: {e}; check that the MySQL user may create and write tables in the database"
        ),
    }
}

async fn bounded<T>(
    cfg: &MysqlConfig,
    what: &str,
    work: impl std::future::Future<Output = Result<T, PipelineError>>,
) -> Result<T, PipelineError> {
    tokio::time::timeout(cfg.timeout * 3, work)
        .await
        .map_err(|_| failed(what, "no answer within 3 x --db-timeout"))?
}

/// Creates the table when missing.
pub(super) async fn create(opts: &Opts, cfg: &MysqlConfig) -> Result<(), PipelineError> {
    bounded(cfg, "creating", async {
        let mut conn = connect(opts, cfg)
            .await
            .map_err(|e| failed("creating", plain(&e)))?;
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (checkpoint VARCHAR(32) CHARACTER SET ascii NOT NULL, xid VARCHAR(64) CHARACTER SET ascii NOT NULL, target VARCHAR(200) NOT NULL, ranges MEDIUMTEXT CHARACTER SET ascii NOT NULL, created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (checkpoint, xid)) ENGINE=InnoDB"
        );
        exec_with(&mut conn, cfg.timeout, &sql, vec![])
            .await
            .map_err(|e| failed("creating", db_text(&e)))?;
        let _ = conn.disconnect().await;
        Ok(())
    })
    .await
}

fn db_text(e: &DbError) -> String {
    match e {
        DbError::Retry(_, m) | DbError::Fatal(_, m) | DbError::Data(_, m) => m.clone(),
    }
}

/// Records batch `xid`'s rows, in its open transaction on `conn`.
pub(super) async fn record(
    conn: &mut Conn,
    cfg: &MysqlConfig,
    xid: &str,
    coverage: &Coverage,
) -> Result<(), DbError> {
    let Some(id) = &cfg.checkpoint else {
        return Ok(());
    };
    let sql = format!("INSERT INTO {TABLE} (checkpoint, xid, target, ranges) VALUES (?, ?, ?, ?)");
    let target = format!("{}.{}", cfg.database, cfg.table);
    exec_with(
        conn,
        cfg.timeout,
        &sql,
        vec![
            id.as_str().into(),
            xid.into(),
            target.into(),
            coverage.0.as_str().into(),
        ],
    )
    .await
}

/// The rows recorded under checkpoint `id`, each as its coverage text.
pub(super) async fn load(
    opts: &Opts,
    cfg: &MysqlConfig,
    id: &str,
) -> Result<Vec<String>, PipelineError> {
    bounded(cfg, "reading", async {
        let mut conn = connect(opts, cfg)
            .await
            .map_err(|e| failed("reading", plain(&e)))?;
        let rows = text_rows(
            &mut conn,
            &format!("SELECT ranges FROM {TABLE} WHERE checkpoint = ?"),
            vec![id.into()],
        )
        .await
        .map_err(|e| failed("reading", plain(&e)))?;
        let _ = conn.disconnect().await;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect())
    })
    .await
}

/// Deletes what was recorded under checkpoint `id` (its job is complete,
/// or it was discarded). Nothing else: the rows of a job only paused,
/// however long ago, are what its resumed run skips.
pub(super) async fn forget(opts: &Opts, cfg: &MysqlConfig, id: &str) {
    let done = bounded(cfg, "cleaning", async {
        let mut conn = connect(opts, cfg)
            .await
            .map_err(|e| failed("cleaning", plain(&e)))?;
        let sql = format!("DELETE FROM {TABLE} WHERE checkpoint = ?");
        exec_with(&mut conn, cfg.timeout, &sql, vec![id.into()])
            .await
            .map_err(|e| failed("cleaning", db_text(&e)))?;
        let _ = conn.disconnect().await;
        Ok(())
    })
    .await;
    if let Err(e) = done {
        tracing::warn!("{e}; the rows stay (they are never read again)");
    }
}
