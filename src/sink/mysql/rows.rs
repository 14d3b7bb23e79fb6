//! A batch converted for the table: which columns a record shape fills
//! ([`ColumnMap`]) and each record's values ([`Row`]), shared by the writer
//! and the two load modes.
use std::sync::Arc;

use mysql_async::Value as MyValue;

/// Which table columns a record shape fills, and from which fields.
pub(super) struct ColumnMap {
    /// (record field index, table column index), in table order.
    pub(super) pairs: Vec<(usize, usize)>,
    /// `(`a`, `b`)`, ready for SQL.
    pub(super) column_list: String,
    /// One row of placeholders for INSERT: `(?, COALESCE(?, DEFAULT(`b`)))`;
    /// a NOT NULL column with a default takes its default for a null.
    pub(super) row_template: String,
    /// The column list and SET clause for LOAD DATA, with the same rule.
    pub(super) load_columns: String,
    /// Record fields with no column (and not in --ignore-fields).
    pub(super) unknown: Vec<String>,
}

/// One converted row, ready to send.
pub(super) struct Row {
    /// Index in the batch.
    pub(super) index: usize,
    pub(super) map: Arc<ColumnMap>,
    pub(super) values: Vec<MyValue>,
}
