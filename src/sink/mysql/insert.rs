//! Multi-row prepared INSERTs, sized under `max_allowed_packet` and 65,535
//! placeholders; a statement refused for its data is split until the bad
//! rows are found. Counts come from the server's own figures.
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as MyValue};

use crate::config::OnDuplicate;
use crate::sink::api::Rejected;

use super::conn::{bounded, classify, DbError};
use super::rows::{ColumnMap, Row};
use super::table::{quote_ident, Table};
use super::Shared;
use crate::sink::api::BatchResult;

/// Placeholders one prepared statement may have.
const MAX_PLACEHOLDERS: usize = 65_535;

/// Consecutive rows with the same column map.
pub(super) fn groups(rows: &[Row]) -> Vec<&[Row]> {
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
    let one = &map.row_template;
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
        sql.push_str(one);
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

pub(super) fn value_size(v: &MyValue) -> usize {
    match v {
        MyValue::Bytes(b) => b.len() + 9,
        _ => 9,
    }
}

/// Inserts rows in statements under the packet and placeholder limits; a
/// statement the server refuses for its data is split until the bad rows are
/// found (each rejected with the server's message); the good rows stay in the
/// transaction.
pub(super) async fn insert_rows(
    conn: &mut Conn,
    shared: &Shared,
    table: &Table,
    rows: &[Row],
    tally: &mut BatchResult,
) -> Result<(), DbError> {
    let width = rows[0].map.pairs.len().max(1);
    let max_rows = (MAX_PLACEHOLDERS / width).max(1);
    // The values' share of a packet: room is left for the statement's
    // header and its placeholders, also under a small max_allowed_packet
    // (a few KiB), where half the packet is for values.
    let budget = if shared.max_packet > 256 * 1024 {
        (shared.max_packet - 64 * 1024) * 9 / 10
    } else {
        shared.max_packet / 2
    };
    let mut start = 0;
    while start < rows.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < rows.len() && end - start < max_rows {
            // Its values, and its `(?, ?, …),` in the statement text.
            let size: usize =
                rows[end].values.iter().map(value_size).sum::<usize>() + 8 + 3 * width;
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
    tally: &'a mut BatchResult,
) -> futures_util::future::BoxFuture<'a, Result<(), DbError>> {
    Box::pin(async move {
        let sql = insert_sql(shared, table, &rows[0].map, rows.len());
        let params: Vec<MyValue> = rows.iter().flat_map(|r| r.values.iter().cloned()).collect();
        match bounded(shared.cfg.timeout, conn.exec_drop(sql, params)).await? {
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
pub(super) fn count_insert(conn: &Conn, mode: OnDuplicate, n: u64, tally: &mut BatchResult) {
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

/// `Records: 3  Duplicates: 1  Warnings: 0` → the number after `key`.
pub(super) fn info_number(info: &str, key: &str) -> Option<u64> {
    let rest = &info[info.find(key)? + key.len()..];
    rest.trim_start_matches([':', ' '])
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_info_numbers() {
        let info = "Records: 4  Deleted: 0  Skipped: 2  Warnings: 2";
        assert_eq!(info_number(info, "Records"), Some(4));
        assert_eq!(info_number(info, "Skipped"), Some(2));
        assert_eq!(info_number(info, "Duplicates"), None);
    }
}
