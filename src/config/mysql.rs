//! The MySQL/MariaDB sink's settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::retry::RetryPolicy;

use super::Secret;

/// TLS to the database, named as the MySQL client names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SslMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it, plain otherwise.
    Preferred,
    /// TLS, without checking the certificate.
    Required,
    /// TLS, with the certificate checked against `--db-ssl-ca`.
    VerifyCa,
    /// TLS, with the certificate and the host name checked.
    VerifyIdentity,
}

/// What to do with a record whose key is already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnDuplicate {
    /// Leave the existing row; count the record as skipped.
    Skip,
    /// Update the existing row; count the record as updated.
    Update,
    /// Fail the record.
    Error,
}

/// `--date-format FIELD=…`: the unit of a field's epoch times (numbers,
/// or numeric strings as Elasticsearch's `epoch_millis` fields hold them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    /// `epoch_millis`: milliseconds since 1970-01-01T00:00:00Z.
    Millis,
    /// `epoch_second`: seconds since 1970-01-01T00:00:00Z.
    Seconds,
}

/// How rows are sent to MySQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadMode {
    /// `load-data` when the server allows LOCAL INFILE, else `insert`.
    Auto,
    /// Multi-row prepared INSERT statements.
    Insert,
    /// LOAD DATA LOCAL INFILE fed from memory.
    LoadData,
}

/// `--load-mode`: what a run does with the rows already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableLoad {
    /// Add to the table; a record whose key is there follows --on-duplicate.
    Upsert,
    /// Load a shadow table, then swap it in with one RENAME TABLE: readers
    /// see the old rows until the new ones are all there.
    Replace,
    /// Empty the table (TRUNCATE) first: readers see it empty, then
    /// filling, until the run ends.
    Truncate,
}

/// MySQL/MariaDB sink settings.
#[derive(Debug, Clone)]
pub struct MysqlConfig {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password, if any.
    pub password: Option<Secret>,
    /// Where the password came from (`--db-url`, `--db-pass or
    /// PIPELINE_DB_PASS`, or `nowhere`), for the access-denied hint.
    pub password_source: &'static str,
    /// Database (schema) name.
    pub database: String,
    /// Table name.
    pub table: String,
    /// TLS mode.
    pub ssl_mode: SslMode,
    /// CA certificate for `verify-ca` / `verify-identity`.
    pub ssl_ca: Option<PathBuf>,
    /// Create a missing table, types inferred from a sample.
    pub create_table: bool,
    /// `--create-table-sample`: records of the sample (0: the whole input).
    pub create_table_sample: u64,
    /// Primary key column(s) for `--create-table`.
    pub key: Vec<String>,
    /// Duplicate-key policy.
    pub on_duplicate: OnDuplicate,
    /// Load mode.
    pub load_mode: LoadMode,
    /// `--load-mode`: upsert, replace by a swapped shadow table, or
    /// truncate first.
    pub table_load: TableLoad,
    /// Add a column (ALTER TABLE) for a record field the table lacks,
    /// instead of failing the record.
    pub add_columns: bool,
    /// `--widen-columns`: widen any column a value does not fit (ALTER
    /// TABLE … MODIFY COLUMN), not only those pipeline-cli made with
    /// `--create-table`.
    pub widen_columns: bool,
    /// Record fields deliberately not loaded (they need no column).
    pub ignore_fields: Vec<String>,
    /// Fields whose numbers are epoch times (`--date-format`), for date columns.
    pub date_formats: Vec<(String, EpochUnit)>,
    /// `--rename FIELD=COLUMN`: columns named by hand, checked legal and
    /// distinct.
    pub rename: Vec<(String, String)>,
    /// Retries of a batch after a lost connection, deadlock or lock wait timeout.
    pub retry: RetryPolicy,
    /// Longest one statement may take before it counts as timed out.
    pub timeout: Duration,
    /// `--delete-missing`: delete the rows whose key the run did not see.
    pub delete_missing: Option<super::DeleteMissing>,
    /// `--max-delete` for `--load-mode replace`: how many rows fewer than
    /// the old table the new one may have.
    pub max_shrink: super::MaxDelete,
    /// `--checkpoint`: its id, recorded with each batch's rows.
    pub checkpoint: Option<String>,
}

impl MysqlConfig {
    /// The unit `--date-format` gives `field`'s epoch times, if any.
    pub fn epoch_unit(&self, field: &str) -> Option<EpochUnit> {
        self.date_formats
            .iter()
            .find(|(name, _)| name == field)
            .map(|&(_, unit)| unit)
    }

    /// `user@host:port/database.table`, for messages (never the password).
    pub fn display_target(&self) -> String {
        format!(
            "{}@{}:{}/{}.{}",
            self.user, self.host, self.port, self.database, self.table
        )
    }
}
