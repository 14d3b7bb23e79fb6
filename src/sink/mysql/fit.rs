//! A batch fitted to the table: which columns each record shape fills,
//! each record's values converted for its columns, and the records that do
//! not fit (failed with the reason), for the writer.

use std::sync::Arc;

use crate::error::ErrorType;
use crate::record::{Record, Schema};
use crate::sink::api::{BatchError, BatchResult, Rejected};

use super::ddl::is_value;
use super::load_data::escaped_size;
use super::rows::{ColumnMap, Row};
use super::table::{quote_ident, Table};
use super::widen::Misfit;
use super::writer::MysqlWriter;

impl MysqlWriter {
    /// Which columns records of `schema` fill, worked out once per shape
    /// and table definition.
    fn column_map(&mut self, table: &Table, schema: &Arc<Schema>) -> Arc<ColumnMap> {
        // Maps are for one table definition: columns added since void them.
        let table_id = table as *const Table as usize;
        if self.maps_table != table_id {
            self.maps.clear();
            self.maps_table = table_id;
        }
        let key = Arc::as_ptr(schema) as usize;
        if let Some((s, m)) = self.maps.get(&key) {
            if Arc::ptr_eq(s, schema) {
                return m.clone();
            }
        }
        let found = table.resolve(schema.names(), &self.shared.cfg.rename);
        let mut pairs: Vec<(usize, usize)> = found
            .iter()
            .enumerate()
            .filter_map(|(f, c)| c.map(|c| (f, c)))
            .collect();
        pairs.sort_by_key(|&(_, c)| c);
        self.shared.say_mapping(
            pairs
                .iter()
                .map(|&(f, c)| (&schema.names()[f], &table.columns[c].name)),
        );
        let ignored = &self.shared.cfg.ignore_fields;
        let unknown: Vec<String> = schema
            .names()
            .iter()
            .zip(&found)
            .filter(|(n, c)| c.is_none() && !ignored.contains(n))
            .map(|(n, _)| n.clone())
            .collect();
        let names: Vec<String> = pairs
            .iter()
            .map(|&(_, c)| quote_ident(&table.columns[c].name))
            .collect();
        let defaults: Vec<bool> = pairs
            .iter()
            .map(|&(_, c)| table.columns[c].default_on_null)
            .collect();
        let (column_list, row_template, load_columns) = sql_lists(&names, &defaults);
        if tracing::enabled!(tracing::Level::DEBUG) {
            for &(f, c) in &pairs {
                let column = &table.columns[c];
                tracing::debug!(
                    "field {} -> column `{}`: {:?}{}",
                    schema.names()[f],
                    column.name,
                    column.kind,
                    if column.default_on_null {
                        ", its default when empty"
                    } else {
                        ""
                    }
                );
            }
        }
        let map = Arc::new(ColumnMap {
            pairs,
            column_list,
            row_template,
            load_columns,
            unknown,
        });
        if self.maps.len() > 1024 {
            self.maps.clear();
        }
        self.maps.insert(key, (schema.clone(), map.clone()));
        map
    }

    /// A batch none of whose records finds its columns, before any record
    /// of the run has: the job is wrong in its shape (the fields are not the
    /// table's), not in a few values, so the run stops with the reason
    /// instead of failing every record of the input one batch at a time.
    /// The batch's records are failed (kept in the dead-letter file).
    pub(super) fn structural(
        &self,
        len: usize,
        unmatched: usize,
        tally: &BatchResult,
    ) -> Option<BatchError> {
        use std::sync::atomic::Ordering;
        if len == 0 || unmatched < len {
            self.shared.matched_any.store(true, Ordering::Relaxed);
            return None;
        }
        if self.shared.matched_any.load(Ordering::Relaxed) {
            return None;
        }
        let reason = tally.rejected.first().map_or("", |r| r.reason.as_str());
        Some(BatchError {
            error_type: ErrorType::Config,
            message: format!(
                "no record of the first batch ({len}) finds its columns in {}.{}, so reading stops: {reason}",
                self.shared.cfg.database, self.shared.cfg.table
            ),
        })
    }

    /// Converts the batch for the table: the rows to write, how many
    /// records found none or not all of their columns (failed in `tally`),
    /// and the values that do not fit their column (their records failed
    /// in `tally`, for nothing else).
    pub(super) fn convert(
        &mut self,
        table: &Table,
        batch: &[Record],
        tally: &mut BatchResult,
    ) -> (Vec<Row>, usize, Vec<Misfit>) {
        let mut rows = Vec::with_capacity(batch.len());
        let mut unmatched = 0;
        let mut misfits = Vec::new();
        // Records of one shape follow each other: their map is looked up once.
        let mut last: Option<(&Arc<Schema>, Arc<ColumnMap>)> = None;
        for (index, record) in batch.iter().enumerate() {
            let map = match &last {
                Some((schema, map)) if Arc::ptr_eq(schema, &record.schema) => map.clone(),
                _ => {
                    let map = self.column_map(table, &record.schema);
                    last = Some((&record.schema, map.clone()));
                    map
                }
            };
            let mut values = Vec::with_capacity(map.pairs.len());
            let mut failed = if map.pairs.is_empty() {
                Some(format!(
                    "no field of the record is a column of the table (fields: {})",
                    record.schema.names().join(", ")
                ))
            } else if !map.unknown.is_empty() {
                Some(
                    super::add_columns::unusable_reason(&self.shared, &map.unknown)
                        .unwrap_or_else(|| format!(
                    "fields with no column in {}.{}: {} (leave them out with --ignore-fields, or add the columns with --add-columns)",
                    self.shared.cfg.database,
                    self.shared.cfg.table,
                    map.unknown.join(", ")
                )),
                )
            } else {
                None
            };
            unmatched += usize::from(failed.is_some());
            // Every value that does not fit is a misfit (all can widen in one
            // go); the reason is the first column's.
            let mut misfit = false;
            for &(f, c) in &map.pairs {
                let column = &table.columns[c];
                let epoch = self.shared.cfg.epoch_unit(&record.schema.names()[f]);
                let value = &record.values[f];
                match column.convert_as(value, epoch) {
                    Ok(v) if failed.is_none() => values.push(v),
                    Ok(_) => {}
                    Err(why) if (failed.is_none() || misfit) && is_value(value) => {
                        misfits.push(Misfit {
                            record: index,
                            field: f,
                            column: c,
                            rejected: tally.rejected.len(),
                            why: why.clone(),
                        });
                        if !misfit {
                            failed = Some(format!("column {}: {why}", column.name));
                            misfit = true;
                        }
                    }
                    Err(_) if misfit => {}
                    Err(why) => {
                        failed = Some(format!("column {}: {why}", column.name));
                        break;
                    }
                }
            }
            if failed.is_none() {
                // One row must fit one statement, whatever the batching and
                // the load mode: sized as escaped for LOAD DATA.
                let size = escaped_size(&values, self.shared.max_packet) + 1024;
                if size > self.shared.max_packet {
                    failed = Some(format!(
                        "the record is {size} bytes as sent (escaped), more than the server's max_allowed_packet ({} bytes) lets one statement carry; raise max_allowed_packet on the server to load it",
                        self.shared.max_packet
                    ));
                }
            }
            match failed {
                Some(reason) => tally.rejected.push(Rejected {
                    index,
                    error_type: ErrorType::Conversion,
                    reason,
                }),
                None => rows.push(Row { index, map, values }),
            }
        }
        (rows, unmatched, misfits)
    }
}

/// The column list, one INSERT row of placeholders and the LOAD DATA
/// column list (with its SET clause) for the quoted column `names`; a NOT
/// NULL column with a default (`defaults`) takes its default for a null.
fn sql_lists(names: &[String], defaults: &[bool]) -> (String, String, String) {
    let column_list = format!("({})", names.join(", "));
    let row_template = format!(
        "({})",
        names
            .iter()
            .zip(defaults)
            .map(|(n, &d)| if d {
                format!("COALESCE(?, DEFAULT({n}))")
            } else {
                "?".into()
            })
            .collect::<Vec<_>>()
            .join(",")
    );
    let load_list: Vec<String> = names
        .iter()
        .zip(defaults)
        .enumerate()
        .map(|(i, (n, &d))| if d { format!("@v{i}") } else { n.clone() })
        .collect();
    let sets: Vec<String> = names
        .iter()
        .zip(defaults)
        .enumerate()
        .filter(|(_, (_, &d))| d)
        .map(|(i, (n, _))| format!("{n} = COALESCE(@v{i}, DEFAULT({n}))"))
        .collect();
    let load_columns = if sets.is_empty() {
        format!("({})", load_list.join(", "))
    } else {
        format!("({}) SET {}", load_list.join(", "), sets.join(", "))
    };
    (column_list, row_template, load_columns)
}
