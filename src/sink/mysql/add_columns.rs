//! `--add-columns`: a column (type inferred from the batch) for each field
//! the table lacks, named as `names.rs` says (a legal, unique name; the
//! field recorded in its COMMENT when the names differ). A column the
//! server refuses to add is set aside with the reason: the records
//! carrying its field fail, naming it, and the other fields' columns are
//! added all the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::ErrorType;
use crate::record::Record;
use crate::runtime::runtime;
use crate::sink::api::BatchError;

use super::conn::plain;
use super::names::{assign, comment_for, fold};
use super::schema::describe;
use super::table::{quote_ident, Table};
use super::Shared;

/// Field names that cannot be columns, with the reason (shared by workers).
pub(super) type Unusable = Mutex<HashMap<String, String>>;

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

/// The fields of `batch` that `current` has no column for (not ignored,
/// not set aside), in the order first met; each record shape is looked at
/// once.
fn missing_fields(shared: &Shared, current: &Table, batch: &[Record]) -> Vec<String> {
    let cfg = &shared.cfg;
    let mut shapes = std::collections::HashSet::new();
    let mut missing: Vec<String> = Vec::new();
    for r in batch {
        if !shapes.insert(Arc::as_ptr(&r.schema)) {
            continue;
        }
        let names = r.schema.names();
        let found = current.resolve(names, &cfg.rename);
        for (n, c) in names.iter().zip(found) {
            if c.is_none()
                && !cfg.ignore_fields.contains(n)
                && !missing.contains(n)
                && !shared
                    .unusable
                    .lock()
                    .expect("unusable lock")
                    .contains_key(n)
            {
                missing.push(n.clone());
            }
        }
    }
    missing
}

/// The columns `--add-columns` adds to `current` for the fields of
/// `batch` it has none for: (field, column, type), the type inferred from
/// the batch, in the order the fields are first met.
pub(super) fn planned_adds(
    shared: &Shared,
    current: &Table,
    batch: &[Record],
) -> Vec<(String, String, String)> {
    let missing = missing_fields(shared, current, batch);
    if missing.is_empty() {
        return Vec::new();
    }
    let mut taken = current.columns.iter().map(|c| fold(&c.name)).collect();
    let columns = assign(&missing, &shared.cfg.rename, &mut taken);
    let types: HashMap<String, String> = super::ddl::column_types(batch, &missing)
        .into_iter()
        .collect();
    missing
        .into_iter()
        .zip(columns)
        .map(|(n, c)| {
            let t = types
                .get(&n)
                .map_or("MEDIUMTEXT", String::as_str)
                .to_string();
            (n, c, t)
        })
        .collect()
}

/// The `ADD COLUMN` clause for `field`'s new column.
pub(super) fn add_clause(field: &str, column: &str, sql_type: &str) -> String {
    format!(
        "ADD COLUMN {} {sql_type} NULL{}",
        quote_ident(column),
        comment_for(field, column)
    )
}

/// Adds the columns this batch's fields need; returns the table as it now is.
pub(super) fn add_missing_columns(
    shared: &Shared,
    conn: Option<&mut Conn>,
    table: &Arc<Table>,
    batch: &[Record],
) -> Result<Arc<Table>, BatchError> {
    let cfg = &shared.cfg;
    if missing_fields(shared, table, batch).is_empty() {
        return Ok(table.clone());
    }
    let mut slot = shared.table.lock().expect("table lock");
    let current = slot.clone().unwrap_or_else(|| table.clone());
    let planned = planned_adds(shared, &current, batch);
    if planned.is_empty() {
        return Ok(current);
    }
    let adds: Vec<(String, String)> = planned
        .iter()
        .map(|(n, c, t)| (n.clone(), add_clause(n, c, t)))
        .collect();
    shared.say_mapping(planned.iter().map(|(n, c, _)| (n, c)));
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
            shared
                .made
                .lock()
                .expect("made lock")
                .extend(planned.iter().map(|(_, c, _)| fold(c)));
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
        if t.column_of(name, &shared.cfg.rename).is_none() {
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
