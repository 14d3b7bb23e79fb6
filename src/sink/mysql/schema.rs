//! What the server says about the table: its columns, key and checks
//! (information_schema), whether its XA transactions survive a lost
//! connection, and whether the records' fields fit it.
use mysql_async::Conn;

use crate::config::MysqlConfig;
use crate::error::PipelineError;

use super::conn::text_rows;
use super::names::field_in_comment;
use super::table::{quote_ident, Column, ColumnInfo, Table};

/// Reads the table's columns; `None` when it does not exist.
pub(super) async fn describe(
    conn: &mut Conn,
    db: &str,
    name: &str,
) -> Result<Option<Table>, mysql_async::Error> {
    let rows = text_rows(
        conn,
        "SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), IS_NULLABLE, \
         COLUMN_DEFAULT IS NOT NULL, CAST(CHARACTER_MAXIMUM_LENGTH AS CHAR), \
         CAST(CHARACTER_OCTET_LENGTH AS CHAR), CAST(NUMERIC_PRECISION AS CHAR), \
         CAST(NUMERIC_SCALE AS CHAR), LOWER(EXTRA), COLUMN_KEY, COLUMN_COMMENT \
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
    let made = text_rows(
        conn,
        "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        vec![db.into(), name.into()],
    )
    .await?
    .into_iter()
    .any(|r| r.first().cloned().flatten().as_deref() == Some(super::table::MADE_BY));
    let infos: Vec<ColumnInfo> = rows.iter().map(|r| column_info(r, &checks)).collect();
    let columns: Vec<Column> = infos.iter().map(Column::from_info).collect();
    let key = key_of(&infos);
    let fields = infos
        .iter()
        .map(|c| field_in_comment(&c.comment).map(str::to_string))
        .collect();
    Ok(Some(Table {
        quoted: format!("{}.{}", quote_ident(db), quote_ident(name)),
        columns,
        fields,
        key,
        made,
    }))
}

/// One row of information_schema.COLUMNS, as `describe` selects it; `checks`
/// are the table's CHECK clauses.
fn column_info(r: &[Option<String>], checks: &[String]) -> ColumnInfo {
    let num = |s: &Option<String>| s.as_deref().and_then(|v| v.parse().ok());
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
        comment: r.get(11).cloned().flatten().unwrap_or_default(),
        name,
    }
}

/// The key: the primary key's columns, or else the first column marked
/// unique.
fn key_of(infos: &[ColumnInfo]) -> Vec<usize> {
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
    key
}

/// Whether prepared XA transactions survive a lost connection on this server
/// version (MariaDB >= 10.5.2, MySQL >= 5.7.7).
pub(super) fn xa_survives_disconnect(version: &str) -> bool {
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
pub(super) fn check_fields(
    cfg: &MysqlConfig,
    table: &Table,
    fields: &[String],
) -> Result<(), PipelineError> {
    let found = table.resolve(fields, &cfg.rename);
    let without = |ignored: bool| -> Vec<&str> {
        fields
            .iter()
            .zip(&found)
            .filter(|(f, c)| c.is_none() && cfg.ignore_fields.contains(f) == ignored)
            .map(|(f, _)| f.as_str())
            .collect()
    };
    let (unknown, ignored) = (without(false), without(true));
    if !ignored.is_empty() {
        tracing::info!(
            "record fields ignored on purpose (--ignore-fields): {}",
            ignored.join(", ")
        );
    }
    if !unknown.is_empty() && !cfg.add_columns {
        return Err(PipelineError::Config(format!(
            "record fields with no column in {}.{}: {}; add the columns, leave the fields out with --ignore-fields {}, or let pipeline-cli add them with --add-columns",
            cfg.database,
            cfg.table,
            unknown.join(", "),
            unknown.join(",")
        )));
    }
    let missing: Vec<&str> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(i, c)| !c.fills_itself && !found.contains(&Some(*i)))
        .map(|(_, c)| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(PipelineError::Config(format!(
            "{}.{} has NOT NULL columns without a default that no record field fills: {}; give them a default, or rename fields to them with --rename FIELD=COLUMN",
            cfg.database,
            cfg.table,
            missing.join(", ")
        )));
    }
    Ok(())
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
}
