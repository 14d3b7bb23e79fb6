//! `--check` with real records: the first records of the input converted
//! for the table (the existing one, or the one `--create-table` would make,
//! with the columns `--add-columns` would add) exactly as the writer
//! converts a batch, with nothing sent to the server.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::MysqlConfig;
use crate::error::PipelineError;
use crate::metrics::Metrics;
use crate::record::{Record, Schema, Value};
use crate::sink::api::BatchResult;

use super::add_columns::{add_clause, planned_adds};
use super::convert::text_of;
use super::ddl::PlannedColumn;
use super::names::comment_for;
use super::table::{quote_ident, Column, ColumnInfo, Table};
use super::writer::MysqlWriter;
use super::Shared;

/// Records `--check` converts when `--create-table-sample` is 0 (all).
pub(super) const SAMPLE: u64 = 1000;

/// Distinct reasons shown for the records that would fail.
const REASONS: usize = 3;

/// A column of a type written in a DDL statement (`BIGINT`,
/// `VARCHAR(255)`, `DECIMAL(38,2)`), as information_schema would show it
/// once made: NULL allowed unless it is part of the key.
fn column_of_type(name: &str, sql_type: &str, key: bool) -> Column {
    let lower = sql_type.to_ascii_lowercase();
    let (base, args) = match lower.split_once('(') {
        Some((b, rest)) => (b.trim().to_string(), rest.trim_end_matches(')').to_string()),
        None => (lower.trim().to_string(), String::new()),
    };
    let nums: Vec<u64> = args
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    let (data_type, column_type) = match base.as_str() {
        "boolean" | "bool" => ("tinyint".to_string(), "tinyint(1)".to_string()),
        _ => (base.clone(), lower.clone()),
    };
    let (max_chars, max_bytes) = match data_type.as_str() {
        "char" | "varchar" => (nums.first().copied(), nums.first().map(|n| n * 4)),
        "tinytext" => (None, Some(255)),
        "text" => (None, Some(65_535)),
        "mediumtext" => (None, Some(16_777_215)),
        "longtext" => (None, Some(4_294_967_295)),
        _ => (None, None),
    };
    let numeric = data_type == "decimal";
    Column::from_info(&ColumnInfo {
        name: name.to_string(),
        data_type,
        column_type,
        nullable: !key,
        max_chars,
        max_bytes,
        precision: nums.first().filter(|_| numeric).map(|&n| n as u32),
        scale: numeric.then(|| nums.get(1).copied().unwrap_or(0) as u32),
        key: if key { "PRI".into() } else { String::new() },
        ..Default::default()
    })
}

/// The field a new column records in its COMMENT, if any.
fn recorded(field: &str, column: &str) -> Option<String> {
    (!comment_for(field, column).is_empty()).then(|| field.to_string())
}

/// The table `--create-table` would make with these columns.
pub(super) fn created_table(cfg: &MysqlConfig, planned: &[PlannedColumn]) -> Table {
    Table {
        quoted: format!("{}.{}", quote_ident(&cfg.database), quote_ident(&cfg.table)),
        columns: planned
            .iter()
            .map(|p| column_of_type(&p.column, &p.sql_type, p.key))
            .collect(),
        fields: planned
            .iter()
            .map(|p| recorded(&p.field, &p.column))
            .collect(),
        key: cfg
            .key
            .iter()
            .filter_map(|k| planned.iter().position(|p| &p.field == k))
            .collect(),
        made: true,
    }
}

/// `table` with the columns `--add-columns` would add: (field, column, type).
fn with_added(table: &Table, adds: &[(String, String, String)]) -> Table {
    let mut columns = table.columns.clone();
    let mut fields = table.fields.clone();
    for (f, c, t) in adds {
        columns.push(column_of_type(c, t, false));
        fields.push(recorded(f, c));
    }
    Table {
        quoted: table.quoted.clone(),
        columns,
        fields,
        key: table.key.clone(),
        made: table.made,
    }
}

/// The reason with the values in it left out (quoted text, numbers), so
/// records failing the same way count together.
fn shape_of(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut quoted = false;
    let mut digits = false;
    for ch in reason.chars() {
        if ch == '\'' {
            quoted = !quoted;
            if quoted {
                out.push_str("'…'");
            }
            continue;
        }
        if quoted {
            continue;
        }
        if ch.is_ascii_digit() {
            if !digits {
                out.push('#');
            }
            digits = true;
            continue;
        }
        digits = false;
        out.push(ch);
    }
    out
}

/// Which record: its `_id` when it has one (a document), else its position
/// (a line number), and its file when the input has several.
fn which(record: &Record) -> String {
    let id = record
        .schema
        .names()
        .iter()
        .position(|n| n == "_id")
        .map(|i| &record.values[i])
        .filter(|v| !matches!(v, Value::Null));
    let at = match id {
        Some(v) => format!("_id {}", text_of(v)),
        None => format!("position {}", record.position),
    };
    match record.schema.origin() {
        Some(f) => format!("{at} of {f}"),
        None => at,
    }
}

/// What the sample came to.
#[derive(Default)]
struct Outcome {
    records: u64,
    written: u64,
    /// By reason shape: (count, the first record's reason, which record).
    reasons: HashMap<String, (u64, String, String)>,
    /// Reason shapes in the order first met.
    order: Vec<String>,
    /// Failed records none of whose fields is a column, and their fields.
    no_column: u64,
    fields: Vec<String>,
    /// Record shapes already looked at for `no_column`.
    shapes: HashMap<usize, (Arc<Schema>, bool)>,
    /// Columns the run would widen for a value, in the order first met.
    widened: Vec<String>,
}

impl Outcome {
    fn widened(&mut self, column: &str) {
        if !self.widened.iter().any(|c| c == column) {
            self.widened.push(column.to_string());
        }
    }

    fn fail(&mut self, table: &Table, cfg: &MysqlConfig, record: &Record, reason: &str) {
        let shape = shape_of(reason);
        match self.reasons.get_mut(&shape) {
            Some(r) => r.0 += 1,
            None => {
                self.order.push(shape.clone());
                self.reasons
                    .insert(shape, (1, reason.to_string(), which(record)));
            }
        }
        let key = Arc::as_ptr(&record.schema) as usize;
        let none = match self.shapes.get(&key) {
            Some((s, none)) if Arc::ptr_eq(s, &record.schema) => *none,
            _ => {
                let names = record.schema.names();
                let none = table
                    .resolve(names, &cfg.rename)
                    .iter()
                    .all(Option::is_none);
                for n in names.iter().filter(|_| none) {
                    if !self.fields.contains(n) {
                        self.fields.push(n.clone());
                    }
                }
                self.shapes.insert(key, (record.schema.clone(), none));
                none
            }
        };
        self.no_column += u64::from(none);
    }

    /// The reasons, most records first (ties: first met first).
    fn ranked(&self) -> Vec<&(u64, String, String)> {
        let mut ranked: Vec<&(u64, String, String)> =
            self.order.iter().map(|s| &self.reasons[s]).collect();
        ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
        ranked
    }

    fn lines(&self) -> Vec<String> {
        let failed = self.records - self.written;
        let mut lines = vec![format!(
            "check: {} sample records: {} would be written, {failed} would fail",
            self.records, self.written
        )];
        if !self.widened.is_empty() {
            lines.push(format!(
                "check:   some only once the run widens their columns: {}",
                self.widened.join(", ")
            ));
        }
        let ranked = self.ranked();
        for (n, reason, at) in ranked.iter().take(REASONS) {
            lines.push(format!("check:   {n} would fail: {reason} (first: {at})"));
        }
        if ranked.len() > REASONS {
            let rest: u64 = ranked[REASONS..].iter().map(|r| r.0).sum();
            lines.push(format!(
                "check:   {rest} would fail for {} other reasons",
                ranked.len() - REASONS
            ));
        }
        lines
    }

    /// Why none would be written, in one line.
    fn none_written(&self, cfg: &MysqlConfig, table: &Table) -> String {
        let reason = if self.no_column == self.records {
            let columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            format!(
                "no field of the records is a column of the table (fields: {}; columns: {})",
                self.fields.join(", "),
                columns.join(", ")
            )
        } else {
            let ranked = self.ranked();
            let (n, reason, at) = ranked[0];
            match ranked.len() - 1 {
                0 => format!("{reason} (first: {at})"),
                more => format!(
                    "{reason} ({n} records, first: {at}; {} more for {more} other reasons)",
                    self.records - n
                ),
            }
        };
        format!(
            "none of the {} sample records would be written to {}.{}: {reason}",
            self.records, cfg.database, cfg.table
        )
    }
}

/// Converts `records` for the table in batches of `batch_size`, as the
/// run's writer would; with `--add-columns`, first adds (to the table as
/// planned here, not on the server) the columns each batch's new fields
/// would get, saying the `ALTER TABLE` the run would send.
pub(super) fn check_records(
    shared: &Arc<Shared>,
    records: &mut dyn Iterator<Item = Record>,
    batch_size: usize,
    metrics: &Arc<Metrics>,
) -> Result<Vec<String>, PipelineError> {
    let cfg = &shared.cfg;
    let existing = shared.table.lock().expect("table lock").clone();
    let planned = shared.planned.lock().expect("planned lock").clone();
    // No table and none planned: --create-table found no sample records.
    // The table --create-table would make: every column is pipeline-cli's.
    let planned_only = existing.is_none();
    let Some(mut table) = existing.or(planned) else {
        return Ok(Vec::new());
    };
    let mut writer = MysqlWriter::unconnected(shared.clone(), metrics.clone());
    let mut lines = Vec::new();
    let mut outcome = Outcome::default();
    let mut batch = Vec::with_capacity(batch_size.max(1));
    let mut records = records.fuse();
    loop {
        batch.clear();
        batch.extend(records.by_ref().take(batch_size.max(1)));
        if batch.is_empty() {
            break;
        }
        if cfg.add_columns {
            let adds = planned_adds(shared, &table, &batch);
            if !adds.is_empty() {
                let clauses: Vec<String> =
                    adds.iter().map(|(f, c, t)| add_clause(f, c, t)).collect();
                lines.push(format!(
                    "would run --add-columns: ALTER TABLE {} {}",
                    table.quoted,
                    clauses.join(", ")
                ));
                table = Arc::new(with_added(&table, &adds));
            }
        }
        let mut tally = BatchResult::default();
        let (rows, _, misfits) = writer.convert(&table, &batch, &mut tally);
        // Records failed only by values too big for columns that widen:
        // the run widens the columns and writes them.
        let mut widen: HashMap<usize, bool> = HashMap::new();
        for m in &misfits {
            let ok = planned_only || shared.widens(&table, m.column);
            *widen.entry(m.record).or_insert(true) &= ok;
            if ok {
                outcome.widened(&table.columns[m.column].name);
            }
        }
        outcome.records += batch.len() as u64;
        outcome.written += rows.len() as u64;
        for r in &tally.rejected {
            match widen.get(&r.index) {
                Some(true) => outcome.written += 1,
                Some(false) if !cfg.widen_columns => outcome.fail(
                    &table,
                    cfg,
                    &batch[r.index],
                    &format!("{}; --widen-columns would widen the column", r.reason),
                ),
                _ => outcome.fail(&table, cfg, &batch[r.index], &r.reason),
            }
        }
    }
    if outcome.records > 0 && outcome.written == 0 {
        return Err(PipelineError::Config(outcome.none_written(cfg, &table)));
    }
    if outcome.records > 0 {
        lines.extend(outcome.lines());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::super::table::Kind;
    use super::*;

    #[test]
    fn ddl_types_become_the_columns_the_server_would_show() {
        let c = column_of_type("n", "VARCHAR(255)", false);
        assert_eq!(
            c.kind,
            Kind::Text {
                max_chars: Some(255),
                max_bytes: None
            }
        );
        assert!(c.nullable);
        let c = column_of_type("id", "BIGINT", true);
        assert!(matches!(c.kind, Kind::Int { max, .. } if max == i64::MAX as i128));
        assert!(!c.nullable && !c.fills_itself);
        assert_eq!(
            column_of_type("d", "DECIMAL(38,2)", false).kind,
            Kind::Decimal {
                precision: 38,
                scale: 2
            }
        );
        assert_eq!(column_of_type("b", "BOOLEAN", false).kind, Kind::Bool);
        assert_eq!(column_of_type("j", "JSON", false).kind, Kind::Json);
        assert_eq!(
            column_of_type("t", "DATETIME(6)", false).kind,
            Kind::DateTime { fsp: 6 }
        );
        assert_eq!(
            column_of_type("m", "MEDIUMTEXT", false).kind,
            Kind::Text {
                max_chars: None,
                max_bytes: Some(16_777_215)
            }
        );
    }

    #[test]
    fn reasons_count_together_whatever_their_values() {
        assert_eq!(
            shape_of("column n: 'abc' is not a whole number"),
            shape_of("column n: 'x1' is not a whole number")
        );
        assert_eq!(
            shape_of("column s: too long: 7 characters, the column holds 5"),
            shape_of("column s: too long: 12 characters, the column holds 5")
        );
        assert_ne!(
            shape_of("column s: too long: 7 characters, the column holds 5"),
            shape_of("column n: 'abc' is not a whole number")
        );
    }
}
