//! The names of the sink's XA transactions, and the prepared transactions an
//! earlier run left behind. Every transaction id starts with a prefix that
//! names the table (`pcli-<hash of db.table>-`), so a run can find its own:
//! a batch that was prepared but never committed (the process was killed
//! between XA PREPARE and XA COMMIT) holds its rows locked and invisible
//! until someone finishes it. At start, such a batch is committed, as the
//! coordinator would have done, and said so; prepared transactions that are
//! not this table's are named in a warning and left alone.

use std::time::Duration;

use mysql_async::Conn;

use crate::config::MysqlConfig;

use super::conn::{exec, text_rows};

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

/// The prepared transactions the server lists (their gtrid text).
async fn prepared(conn: &mut Conn) -> Result<Vec<String>, mysql_async::Error> {
    Ok(text_rows(conn, "XA RECOVER", vec![])
        .await?
        .into_iter()
        .filter_map(|r| r.get(3).cloned().flatten())
        .collect())
}

/// Commits this table's orphaned prepared batches; returns how many. A
/// batch of a run still going is prepared for milliseconds only, so a
/// transaction is taken as orphaned when it is still prepared a second
/// after it was first seen.
pub(super) async fn resolve_orphans(
    conn: &mut Conn,
    cfg: &MysqlConfig,
) -> Result<u64, mysql_async::Error> {
    let ours = prefix(cfg);
    let first = prepared(conn).await?;
    if first.is_empty() {
        return Ok(0);
    }
    // A batch being committed right now is prepared for milliseconds; one
    // still prepared a second later was left behind.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still = prepared(conn).await?;
    let left: Vec<&String> = first.iter().filter(|x| still.contains(x)).collect();
    let others: Vec<&str> = left
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
    let candidates: Vec<&String> = left.into_iter().filter(|x| x.starts_with(&ours)).collect();
    let mut committed = 0;
    for xid in candidates {
        match exec(conn, cfg.timeout, &format!("XA COMMIT '{xid}'")).await {
            Ok(()) => {
                tracing::warn!(
                    "batch {xid} of an earlier run was prepared but never committed (the run was killed between XA PREPARE and XA COMMIT); it is committed now, as the run would have done"
                );
                committed += 1;
            }
            Err(e) => tracing::warn!("could not commit the earlier run's batch {xid}: {e:?}"),
        }
    }
    Ok(committed)
}
