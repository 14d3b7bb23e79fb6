//! The sink's XA transactions: their names, who owns them, and the prepared
//! transactions an earlier run left behind.
//!
//! A transaction id is `pcli-<hash of db.table>-<run id>-<worker>-<seq>`;
//! the run id is `<pid>-<start time>-<random>`. For its whole life a run
//! holds the named lock `pcli-<hash>-<run id>` (`GET_LOCK`) on a connection
//! of its own, so a free lock proves that the run which prepared a batch is
//! gone. At start, a prepared batch of this table whose owner's lock is free
//! was left behind (the run was killed between XA PREPARE and XA COMMIT): it
//! holds its rows locked and invisible, so it is committed, as its run would
//! have done, and said so with its record count. A batch whose owner holds
//! its lock belongs to a live run (one reconnecting after a lost connection)
//! and is left alone. Prepared transactions that are not this table's are
//! named in a warning and left alone.
//!
//! Every batch also writes a row into [`MARKERS`] inside its own
//! transaction (the id and the records it wrote), so the row exists exactly
//! when the batch committed: a run that lost its connection while
//! preparing or committing, and no longer finds its batch prepared, reads
//! the row to know whether the batch is in (committed, by itself or by a
//! run that recovered it) or not (rolled back: written again). A run
//! deletes its own rows as it goes; the row of a batch another run
//! recovered stays for its owner to read, and is deleted a week later.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::config::MysqlConfig;

use super::conn::{exec, text_rows};

/// The table of batch markers, in the target database.
pub(super) const MARKERS: &str = "pipeline_cli_xa_batches";

/// Creates the marker table when missing.
pub(super) async fn create_markers(conn: &mut Conn) -> Result<(), mysql_async::Error> {
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {MARKERS} (xid VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY, target VARCHAR(200) NOT NULL, records BIGINT UNSIGNED NOT NULL, created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB"
    ))
    .await
}

/// The id prefix of this table's transactions.
pub(super) fn prefix(cfg: &MysqlConfig) -> String {
    // FNV-1a: stable across runs and versions.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}.{}", cfg.database, cfg.table).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("pcli-{:08x}-", h as u32)
}

/// A new run id: `<pid>-<start time>-<random>`.
pub(super) fn new_run_id(started: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{}-{started}-{:08x}", std::process::id(), h.finish() as u32)
}

/// The lock a run holds while it lives: the transaction id without its
/// worker and sequence numbers.
pub(super) fn owner_lock(xid: &str) -> &str {
    let mut cut = xid.len();
    for _ in 0..2 {
        cut = xid[..cut].rfind('-').unwrap_or(0);
    }
    &xid[..cut]
}

/// Takes the run's lock on `conn` (kept open for the run's life).
pub(super) async fn hold_lock(conn: &mut Conn, name: &str) -> Result<bool, mysql_async::Error> {
    let got = text_rows(conn, "SELECT GET_LOCK(?, 0)", vec![name.into()]).await?;
    Ok(got.first().and_then(|r| r[0].as_deref()) == Some("1"))
}

/// True when `xid`'s marker row is there: the batch committed.
pub(super) async fn marked(conn: &mut Conn, xid: &str) -> Result<bool, mysql_async::Error> {
    let rows = text_rows(
        conn,
        &format!("SELECT records FROM {MARKERS} WHERE xid = ?"),
        vec![xid.into()],
    )
    .await?;
    Ok(!rows.is_empty())
}

/// The prepared transactions the server lists (their gtrid text).
async fn prepared(conn: &mut Conn) -> Result<Vec<String>, mysql_async::Error> {
    Ok(text_rows(conn, "XA RECOVER", vec![])
        .await?
        .into_iter()
        .filter_map(|r| r.get(3).cloned().flatten())
        .collect())
}

/// Commits this table's orphaned prepared batches (those whose run is gone);
/// returns the records they held (as far as their markers say).
pub(super) async fn resolve_orphans(
    conn: &mut Conn,
    cfg: &MysqlConfig,
) -> Result<u64, mysql_async::Error> {
    let ours = prefix(cfg);
    let listed = prepared(conn).await?;
    let others: Vec<&str> = listed
        .iter()
        .filter(|x| !x.starts_with(&ours))
        .map(|x| x.as_str())
        .collect();
    if !others.is_empty() {
        tracing::warn!(
            "the server holds {} prepared XA transaction(s) that are not this table's: {}; their rows stay locked until whoever prepared them commits or rolls them back (XA COMMIT 'id' / XA ROLLBACK 'id')",
            others.len(),
            others.join(", ")
        );
    }
    let mut records = 0;
    for xid in listed.iter().filter(|x| x.starts_with(&ours)) {
        let lock = owner_lock(xid);
        let free = text_rows(conn, "SELECT IS_FREE_LOCK(?)", vec![lock.into()]).await?;
        if free.first().and_then(|r| r[0].as_deref()) != Some("1") {
            tracing::warn!(
                "batch {xid} is prepared by a run that is still going (it holds the lock {lock}); left for that run to finish"
            );
            continue;
        }
        match exec(conn, cfg.timeout, &format!("XA COMMIT '{xid}'")).await {
            Ok(()) => {
                let n = text_rows(
                    conn,
                    &format!("SELECT records FROM {MARKERS} WHERE xid = ?"),
                    vec![xid.as_str().into()],
                )
                .await
                .ok()
                .and_then(|r| r.first().and_then(|r| r[0].clone()))
                .and_then(|n| n.parse::<u64>().ok());
                let count = match n {
                    Some(n) => {
                        records += n;
                        format!("{n} records")
                    }
                    None => "an unknown number of records".into(),
                };
                tracing::warn!(
                    xid = xid.as_str(),
                    run = lock,
                    "recovered batch {xid} of run {lock}: it was prepared but never committed (that run ended between XA PREPARE and XA COMMIT, or lost its connection there and gave up); committed now with {count}, as the run would have done"
                );
            }
            Err(e) => {
                tracing::warn!("could not commit the earlier run's batch {xid} on MySQL: {e:?}")
            }
        }
    }
    forget_old_markers(conn, cfg).await;
    Ok(records)
}

/// A recovered batch's marker stays (its run, if it is still reconnecting,
/// reads it to learn the batch is in); markers a week old are let go. Read
/// first without locks, then deleted by key: a scan that locks would wait
/// on the markers of batches other runs hold prepared.
async fn forget_old_markers(conn: &mut Conn, cfg: &MysqlConfig) {
    let old = text_rows(
        conn,
        &format!("SELECT xid FROM {MARKERS} WHERE target = ? AND created < NOW() - INTERVAL 7 DAY LIMIT 1000"),
        vec![format!("{}.{}", cfg.database, cfg.table).into()],
    )
    .await
    .unwrap_or_default();
    for xid in old
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
    {
        let sql = format!("DELETE FROM {MARKERS} WHERE xid = ?");
        let _ = super::conn::exec_with(conn, cfg.timeout, &sql, vec![xid.into()]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_lock_is_the_id_without_worker_and_sequence() {
        assert_eq!(
            owner_lock("pcli-0a1b2c3d-4242-1700000000-deadbeef-0-17"),
            "pcli-0a1b2c3d-4242-1700000000-deadbeef"
        );
        assert_eq!(
            owner_lock("pcli-0a1b2c3d-4242-1-0-1"),
            "pcli-0a1b2c3d-4242-1"
        );
        let id = new_run_id(7);
        assert!(
            id.ends_with(&id[id.len() - 8..]) && id.contains("-7-"),
            "{id}"
        );
        assert_ne!(new_run_id(7), new_run_id(7));
    }
}
