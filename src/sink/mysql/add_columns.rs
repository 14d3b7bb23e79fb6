//! `--add-columns`: a column (type inferred from the batch) for each field
//! the table lacks. A field name MySQL cannot take as a column name (empty,
//! over 64 characters, ending in a space, a NUL, a character outside the
//! Basic Multilingual Plane), or one the server refuses to add, is set
//! aside with the reason: the records carrying it fail, naming it, and the
//! other fields' columns are added all the same. `--create-table` leaves
//! such a field out of the table the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::ErrorType;
use crate::record::Record;
use crate::runtime::runtime;
use crate::sink::api::BatchError;

use super::conn::plain;
use super::schema::describe;
use super::table::{quote_ident, Table};
use super::Shared;

/// Field names that cannot be columns, with the reason (shared by workers).
pub(super) type Unusable = Mutex<HashMap<String, String>>;

/// Why `name` cannot be a MySQL column name, if it cannot.
pub(super) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an empty name")
    } else if name.chars().count() > 64 {
        Some("longer than 64 characters")
    } else if name.ends_with(' ') {
        Some("ends with a space")
    } else if name.contains('\0') {
        Some("contains a NUL character")
    } else if name.chars().any(|c| u32::from(c) > 0xFFFF) {
        Some("has a character outside the Basic Multilingual Plane")
    } else {
        None
    }
}

/// Leaves out of a `--create-table` the fields MySQL cannot take as
/// column names (set aside, so the records carrying them fail, naming
/// them); a `--db-key` field stays, for the DDL to refuse.
pub(super) fn leave_out_unusable(shared: &Shared, inference: &mut super::ddl::Inference) {
    inference.retain(|name| match name_problem(name) {
        Some(why) if !shared.cfg.key.iter().any(|k| k == name) => {
            set_aside(shared, name, why.to_string());
            false
        }
        _ => true,
    });
}

/// The reason a record carrying `unknown` fields fails, naming the fields
/// set aside by `--add-columns`.
pub(super) fn unusable_reason(shared: &Shared, unknown: &[String]) -> Option<String> {
    let unusable = shared.unusable.lock().expect("unusable lock");
    let named: Vec<String> = unknown
        .iter()
        .filter_map(|n| unusable.get(n).map(|why| format!("'{n}': {why}")))
        .collect();
    (!named.is_empty()).then(|| {
        format!(
            "fields that cannot be columns of {}.{}: {}",
            shared.cfg.database,
            shared.cfg.table,
            named.join("; ")
        )
    })
}

/// Whether `t` lacks a column for the field `name` that `--add-columns`
/// should add (not ignored, not set aside).
fn lacks(shared: &Shared, t: &Table, name: &String) -> bool {
    !t.by_name.contains_key(name)
        && !shared.cfg.ignore_fields.contains(name)
        && !shared
            .unusable
            .lock()
            .expect("unusable lock")
            .contains_key(name)
}

/// The fields of `batch` that `current` lacks, in the order first met; a
/// name that cannot be a column is set aside instead.
fn missing_fields(shared: &Shared, current: &Table, batch: &[Record]) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for r in batch {
        for n in r.schema.names() {
            if lacks(shared, current, n) && !missing.contains(n) {
                match name_problem(n) {
                    Some(why) => set_aside(shared, n, why.to_string()),
                    None => missing.push(n.clone()),
                }
            }
        }
    }
    missing
}

/// Adds the columns this batch's fields need; returns the table as it now is.
pub(super) fn add_missing_columns(
    shared: &Shared,
    conn: Option<&mut Conn>,
    table: &Arc<Table>,
    batch: &[Record],
) -> Result<Arc<Table>, BatchError> {
    let cfg = &shared.cfg;
    if !batch
        .iter()
        .any(|r| r.schema.names().iter().any(|n| lacks(shared, table, n)))
    {
        return Ok(table.clone());
    }
    let mut slot = shared.table.lock().expect("table lock");
    let current = slot.clone().unwrap_or_else(|| table.clone());
    let missing = missing_fields(shared, &current, batch);
    if missing.is_empty() {
        return Ok(current);
    }
    let adds: Vec<(String, String)> = super::ddl::column_types(batch, &missing)
        .into_iter()
        .map(|(n, t)| {
            let add = format!("ADD COLUMN {} {t} NULL", quote_ident(&n));
            (n, add)
        })
        .collect();
    let fatal = |message: String| BatchError {
        error_type: ErrorType::Server,
        message,
    };
    let conn = conn.ok_or_else(|| fatal("no connection to add the columns".into()))?;
    let altered = runtime().block_on(async {
        alter(shared, conn, &current, &adds).await?;
        describe(conn, &cfg.database, &cfg.table).await
    });
    match altered {
        Ok(Some(t)) => {
            set_aside_hidden(shared, &t, &adds);
            let t = Arc::new(t);
            *slot = Some(t.clone());
            Ok(t)
        }
        Ok(None) => Err(fatal("the table is gone".into())),
        Err(e) => Err(fatal(format!("adding columns: {}", plain(&e)))),
    }
}

/// One ALTER TABLE for all of `adds` (field name, `ADD COLUMN` clause). A
/// column the server refuses is set aside; a column that exists already
/// (error 1060: another run added it first) is taken as added.
async fn alter(
    shared: &Shared,
    conn: &mut Conn,
    current: &Table,
    adds: &[(String, String)],
) -> Result<(), mysql_async::Error> {
    let cfg = &shared.cfg;
    let all: Vec<&str> = adds.iter().map(|(_, a)| a.as_str()).collect();
    let sql = format!("ALTER TABLE {} {}", current.quoted, all.join(", "));
    tracing::warn!(
        "adding columns for new fields to {}.{} (--add-columns): {sql}",
        cfg.database,
        cfg.table
    );
    match conn.query_drop(&sql).await {
        Ok(()) => {}
        // Refused: column by column, so one bad column does not keep
        // the others out (one another run added first is there).
        Err(mysql_async::Error::Server(_)) if adds.len() > 1 => {
            for (name, add) in adds {
                let one = format!("ALTER TABLE {} {add}", current.quoted);
                match conn.query_drop(&one).await {
                    Ok(()) => {}
                    Err(mysql_async::Error::Server(e)) if e.code != 1060 => {
                        set_aside(
                            shared,
                            name,
                            format!("the server refused the column: {}", e.message),
                        );
                    }
                    Err(mysql_async::Error::Server(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Err(mysql_async::Error::Server(e)) if e.code != 1060 => {
            set_aside(
                shared,
                &adds[0].0,
                format!("the server refused the column: {}", e.message),
            );
        }
        // Another run added it first.
        Err(mysql_async::Error::Server(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Sets aside each added field that `t` does not show under its name: the
/// server says the column exists, but its name differs (only in case, say).
fn set_aside_hidden(shared: &Shared, t: &Table, adds: &[(String, String)]) {
    for (name, _) in adds {
        if !t.by_name.contains_key(name) {
            let mut unusable = shared.unusable.lock().expect("unusable lock");
            unusable.entry(name.clone()).or_insert_with(|| {
                "the table has a column whose name differs only in case or accents".to_string()
            });
        }
    }
}

fn set_aside(shared: &Shared, name: &str, why: String) {
    tracing::warn!(
        "field '{}' cannot be a column: {why}; records carrying it fail",
        name.escape_debug()
    );
    shared
        .unusable
        .lock()
        .expect("unusable lock")
        .insert(name.to_string(), why);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_mysql_cannot_take() {
        assert!(name_problem("").is_some());
        assert!(name_problem(&"x".repeat(65)).is_some());
        assert!(name_problem(&"é".repeat(64)).is_none());
        assert!(name_problem("name ").is_some());
        assert!(name_problem(" name").is_none());
        assert!(name_problem("a\0b").is_some());
        assert!(name_problem("smile 😀").is_some());
        assert!(name_problem("select").is_none());
        assert!(name_problem("we`ird").is_none());
    }
}
