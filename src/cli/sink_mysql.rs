//! The MySQL sink's flags (`--db-*` and the table options) and their
//! translation into a [`MysqlConfig`].

use std::path::PathBuf;

use crate::config::{
    Config, EpochUnit, LoadMode, MysqlConfig, OnDuplicate, Secret, SinkConfig, SourceKind, SslMode,
    TableLoad,
};
use crate::error::PipelineError;

use super::resolve::duration_flag;
use super::run::RunFlags;

/// The flags of `--sink-type mysql`.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct MysqlFlags {
    /// MySQL/MariaDB connection as a URL.
    ///
    /// The separate --db-* flags override its parts. Keep the password out of it: use PIPELINE_DB_PASS.
    /// Example: --db-url mysql://loader@db.internal:3306/analytics
    #[arg(long, value_name = "URL", help_heading = "MySQL sink")]
    pub db_url: Option<String>,

    /// Database host. Example: --db-host 127.0.0.1
    #[arg(long, value_name = "HOST", help_heading = "MySQL sink")]
    pub db_host: Option<String>,

    /// Database port (default 3306). Example: --db-port 3307
    #[arg(long, value_name = "N", help_heading = "MySQL sink")]
    pub db_port: Option<u16>,

    /// Database user (default root). Example: --db-user loader
    #[arg(long, value_name = "USER", help_heading = "MySQL sink")]
    pub db_user: Option<String>,

    /// Database password; better set in the environment as PIPELINE_DB_PASS so it
    /// stays out of the process list. Never printed.
    #[arg(
        long,
        value_name = "PASS",
        env = "PIPELINE_DB_PASS",
        hide_env_values = true,
        help_heading = "MySQL sink"
    )]
    pub db_pass: Option<String>,

    /// Database (schema) name. Example: --db-name analytics
    #[arg(long, value_name = "NAME", help_heading = "MySQL sink")]
    pub db_name: Option<String>,

    /// Table to load.
    ///
    /// Record fields map to its columns by name. Example: --db-table orders
    #[arg(long, value_name = "TABLE", help_heading = "MySQL sink")]
    pub db_table: Option<String>,

    /// Create a missing table (with --db-key).
    ///
    /// When the table is missing, it is made with column types inferred from the
    /// first --create-table-sample records (the DDL is logged; --check prints
    /// it). Example: --create-table --db-key id
    #[arg(long, help_heading = "MySQL sink")]
    pub create_table: bool,

    /// Records --create-table infers the column types from: the run's first N
    /// records, held back (in memory) until the table exists, then written.
    /// 0: the whole input, read once before the run (regular files only).
    /// Default: 0 for CSV and NDJSON files, 10000 for Elasticsearch and for
    /// inputs that cannot be read twice (standard input, a pipe). Also the
    /// records --check converts for the table (0: the first 1000). Example: --create-table-sample 50000
    #[arg(long, value_name = "N", help_heading = "MySQL sink")]
    pub create_table_sample: Option<u64>,

    /// Primary key column(s) of a table made by --create-table, comma-separated.
    /// Example: --db-key id
    #[arg(long, value_name = "COL", help_heading = "MySQL sink")]
    pub db_key: Option<String>,

    /// A record whose key is already in the table: skip it (counted as skipped),
    /// update the row (counted as updated), or fail it (dead-lettered).
    #[arg(long, value_enum, default_value = "skip", help_heading = "MySQL sink")]
    pub on_duplicate: OnDuplicate,

    /// How rows are sent: LOAD DATA LOCAL INFILE from memory, multi-row INSERT,
    /// or auto (load-data when the server allows LOCAL INFILE). Both give identical tables.
    #[arg(long, value_enum, default_value = "auto", help_heading = "MySQL sink")]
    pub mysql_load_mode: LoadMode,

    /// What the run does with the rows already in the table.
    ///
    /// upsert: add rows; a record whose key is there follows --on-duplicate.
    /// replace: load a shadow table <table>__pipeline_new (made like the
    /// table, or by --create-table), then swap it in with one atomic RENAME
    /// TABLE and drop the old table: readers never see the table empty or
    /// half loaded, and a failed or interrupted run leaves it untouched.
    /// truncate: empty the table (TRUNCATE) once the source has opened, then
    /// load: readers see it empty or partly loaded until the run ends.
    /// replace and truncate need the whole input, read by one process: not
    /// with --limit, --es-since-field, --es-slice-id or --input-shard.
    /// Example: --load-mode replace
    #[arg(
        long,
        value_enum,
        default_value = "upsert",
        help_heading = "MySQL sink"
    )]
    pub load_mode: TableLoad,

    /// TLS to the database. Example: --db-ssl-mode verify-ca --db-ssl-ca /etc/ssl/db-ca.pem
    #[arg(
        long,
        value_enum,
        default_value = "preferred",
        help_heading = "MySQL sink"
    )]
    pub db_ssl_mode: SslMode,

    /// CA certificate (PEM) for --db-ssl-mode verify-ca / verify-identity.
    #[arg(long, value_name = "PATH", help_heading = "MySQL sink")]
    pub db_ssl_ca: Option<PathBuf>,

    /// Kept for older command lines: record fields that have no column in
    /// the table are always an error (exit 2 when the CSV header shows them,
    /// otherwise their records fail) unless --ignore-fields or --add-columns
    /// says what to do with them.
    #[arg(long, help_heading = "MySQL sink")]
    pub strict_columns: bool,

    /// Add a column (ALTER TABLE … ADD COLUMN, type inferred from the values)
    /// for a record field the table lacks, instead of failing its records.
    #[arg(long, help_heading = "MySQL sink")]
    pub add_columns: bool,

    /// Widen a column (ALTER TABLE … MODIFY COLUMN, never to a narrower
    /// type) when a later value does not fit it, instead of failing the
    /// record: a longer string, a larger number, more decimals or
    /// fractional seconds, text where numbers were. Columns --create-table
    /// made widen without it; it also widens the columns of a table you
    /// made (and those --add-columns adds). Default: off.
    /// Example: --add-columns --widen-columns
    #[arg(long, help_heading = "MySQL sink")]
    pub widen_columns: bool,

    /// Record fields not to load, comma-separated: they need no column and are
    /// left out on purpose (any other field without a column fails its record).
    /// Example: --ignore-fields internal_note,debug
    #[arg(long, value_name = "A,B", help_heading = "MySQL sink")]
    pub ignore_fields: Option<String>,

    /// A field's numbers (and numeric strings) are epoch times, for a DATE,
    /// DATETIME or TIMESTAMP column: epoch_millis or epoch_second (UTC).
    /// Repeatable. Example: --date-format created=epoch_millis
    #[arg(
        long,
        value_name = "FIELD=FORMAT",
        action = clap::ArgAction::Append,
        help_heading = "MySQL sink"
    )]
    pub date_format: Vec<String>,

    /// Load field FIELD into column COLUMN (repeatable). Without it, a field
    /// goes to the column of its name (in any case), and a name MySQL cannot
    /// take (empty, over 64 characters, ending in a space) gets a legal one,
    /// logged at start and shown by --check. In --config: rename = ["a=b"].
    /// Example: --rename "user name =user_name" --rename @timestamp=ts
    #[arg(long, value_name = "FIELD=COLUMN", action = clap::ArgAction::Append, help_heading = "MySQL sink")]
    pub rename: Vec<String>,

    /// With --create-table and no --db-key: create the table without a primary
    /// key, accepting that a re-run inserts every row again.
    #[arg(long, help_heading = "MySQL sink")]
    pub no_key: bool,

    /// Longest one database statement may take before it counts as timed out
    /// (and is retried on a new connection). Example: --db-timeout 2m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_DB_TIMEOUT,
        help_heading = "MySQL sink"
    )]
    pub db_timeout: String,

    #[command(flatten)]
    pub delete: super::sink_mysql_delete::DeleteFlags,
}

/// `--load-mode replace|truncate` replaces every row of the table, so the
/// run must read the whole input, alone: refused with a reader that reads
/// part of it (`--limit`, an incremental `--es-since-field` run, one slice
/// or shard of several processes).
pub(super) fn check_load_mode(config: &Config) -> Result<(), PipelineError> {
    let SinkConfig::Mysql(m) = &config.sink else {
        return Ok(());
    };
    let mode = match m.table_load {
        TableLoad::Upsert => return Ok(()),
        TableLoad::Replace => "replace",
        TableLoad::Truncate => "truncate",
    };
    let what = if config.limit.is_some() {
        Some("--limit: the table would hold only the first records; try the limit with --check, or load a copy (--db-table) with --load-mode upsert")
    } else if config.source.state_file().is_some() {
        Some("--es-since-field/--state-file: an incremental run reads only the changed documents or the new files; drop --es-since-field/--state-file for the full refresh")
    } else if config.slice.is_some() {
        Some("--es-slice-id/--input-shard: each process would replace the table with its own part; read every slice in one process (--es-slices N without --es-slice-id, or --workers)")
    } else if m.delete_missing.is_some() {
        Some("--delete-missing: the table already ends up holding exactly what was read; drop --delete-missing")
    } else {
        None
    };
    match what {
        Some(why) => Err(PipelineError::Config(format!(
            "--load-mode {mode} replaces every row of the table, so it cannot be used with {why}; remove one of the two"
        ))),
        None => Ok(()),
    }
}

/// The parts of a `mysql://user:pass@host:port/db` URL.
#[derive(Debug, Default)]
struct DbUrl {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    pass: Option<String>,
    db: Option<String>,
}

fn parse_db_url(raw: &str) -> Result<DbUrl, PipelineError> {
    // The message never repeats the URL: it may hold a password.
    let bad = |why: &str| {
        PipelineError::Config(format!(
            "--db-url is not a valid MySQL URL: {why}; give it as mysql://USER@HOST:PORT/DATABASE"
        ))
    };
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(bad("it must start with mysql://"));
    }
    // Percent-decoding only: a '+' in a password stays a '+'.
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let db = url.path().trim_start_matches('/');
    Ok(DbUrl {
        host: url.host_str().map(str::to_string),
        port: url.port(),
        user: (!url.username().is_empty()).then(|| decode(url.username())),
        pass: url.password().map(decode),
        db: (!db.is_empty()).then(|| decode(db)),
    })
}

/// `--date-format FIELD=epoch_millis|epoch_second`, each field once.
fn date_formats(given: &[String]) -> Result<Vec<(String, EpochUnit)>, PipelineError> {
    let mut out: Vec<(String, EpochUnit)> = Vec::with_capacity(given.len());
    for item in given {
        let bad = |why: &str| {
            PipelineError::Config(format!(
                "--date-format '{item}': {why}; give FIELD=FORMAT as --help shows"
            ))
        };
        let (field, format) = item
            .rsplit_once('=')
            .ok_or_else(|| bad("expected FIELD=epoch_millis or FIELD=epoch_second"))?;
        let unit = match format.trim() {
            "epoch_millis" => EpochUnit::Millis,
            "epoch_second" => EpochUnit::Seconds,
            _ => return Err(bad("the format is epoch_millis or epoch_second")),
        };
        if field.is_empty() {
            return Err(bad("no field name before '='"));
        }
        if out.iter().any(|(f, _)| f == field) {
            return Err(bad("the field is given a format twice"));
        }
        out.push((field.to_string(), unit));
    }
    Ok(out)
}

/// A comma-separated list of column names, trimmed, the empty ones left
/// out.
fn columns(text: Option<&str>) -> Vec<String> {
    text.map(|k| {
        k.split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

impl MysqlFlags {
    /// The MySQL sink's settings, reading from a `source` source.
    pub(super) fn resolve(
        &self,
        source: SourceKind,
        run: &RunFlags,
    ) -> Result<MysqlConfig, PipelineError> {
        let url = match &self.db_url {
            Some(u) => parse_db_url(u)?,
            None => DbUrl::default(),
        };
        let database = self.db_name.clone().or(url.db).ok_or_else(|| {
            PipelineError::Config(
                "--sink-type mysql needs the database: --db-name NAME (or the path of --db-url)"
                    .into(),
            )
        })?;
        let table = self.db_table.clone().ok_or_else(|| {
            PipelineError::Config("--sink-type mysql needs --db-table TABLE".into())
        })?;
        self.check_tls()?;
        if self.load_mode == TableLoad::Replace {
            crate::sink::mysql::shadow_names(&table).map_err(PipelineError::Config)?;
        }
        let key = columns(self.db_key.as_deref());
        self.check_key(&key)?;
        Ok(MysqlConfig {
            host: self
                .db_host
                .clone()
                .or(url.host)
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: self.db_port.or(url.port).unwrap_or(3306),
            user: self
                .db_user
                .clone()
                .or(url.user)
                .unwrap_or_else(|| "root".into()),
            password_source: match (&self.db_pass, &url.pass) {
                (Some(p), _) if !p.is_empty() => "--db-pass or PIPELINE_DB_PASS",
                (_, Some(p)) if !p.is_empty() => "--db-url",
                _ => "nowhere: no password was given (--db-pass or PIPELINE_DB_PASS)",
            },
            password: self
                .db_pass
                .clone()
                .or(url.pass)
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            database,
            table,
            ssl_mode: self.db_ssl_mode,
            ssl_ca: self.db_ssl_ca.clone(),
            create_table: self.create_table,
            create_table_sample: self
                .create_table_sample
                .unwrap_or(source.default_create_table_sample()),
            key,
            on_duplicate: self.on_duplicate,
            load_mode: self.mysql_load_mode,
            table_load: self.load_mode,
            add_columns: self.add_columns,
            widen_columns: self.widen_columns,
            ignore_fields: columns(self.ignore_fields.as_deref()),
            date_formats: date_formats(&self.date_format)?,
            rename: self.renames()?,
            retry: run.retry_policy()?,
            timeout: duration_flag("--db-timeout", &self.db_timeout)?,
            delete_missing: self.delete.resolve(self.load_mode == TableLoad::Replace)?,
            max_shrink: self.delete.bound()?,
            checkpoint: None,
        })
    }

    /// The `--rename FIELD=COLUMN` pairs, checked: each has an `=`, each
    /// column is a legal name, no two fields go onto one column.
    fn renames(&self) -> Result<Vec<(String, String)>, PipelineError> {
        let pairs = self
            .rename
            .iter()
            .map(|r| {
                // The last '=': a field name may hold one, a column name rarely does.
                r.rsplit_once('=')
                    .map(|(f, c)| (f.to_string(), c.to_string()))
                    .ok_or_else(|| {
                        PipelineError::Config(format!("--rename '{r}' is not FIELD=COLUMN"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        crate::sink::mysql::check_renames(&pairs).map_err(PipelineError::Config)?;
        Ok(pairs)
    }

    /// `--db-ssl-mode` and `--db-ssl-ca` agree, and the CA file is there.
    fn check_tls(&self) -> Result<(), PipelineError> {
        if matches!(
            self.db_ssl_mode,
            SslMode::VerifyCa | SslMode::VerifyIdentity
        ) && self.db_ssl_ca.is_none()
        {
            return Err(PipelineError::Config(
                "--db-ssl-mode verify-ca and verify-identity need --db-ssl-ca PATH".into(),
            ));
        }
        if let Some(ca) = &self.db_ssl_ca {
            if !ca.is_file() {
                return Err(PipelineError::Config(format!(
                    "--db-ssl-ca '{}' is not a readable file; give the path of the CA certificate (PEM)",
                    ca.display()
                )));
            }
        }
        Ok(())
    }

    /// `--db-key` names a column, and `--create-table` has a key (or
    /// `--no-key`).
    fn check_key(&self, key: &[String]) -> Result<(), PipelineError> {
        if self.db_key.is_some() && key.is_empty() {
            return Err(PipelineError::Config(
                "--db-key needs at least one column name".into(),
            ));
        }
        if self.create_table && key.is_empty() && !self.no_key {
            return Err(PipelineError::Config(
                "--create-table needs --db-key COL[,COL] for the table's primary key: without a key, duplicates cannot be detected and a re-run inserts every row again; add --no-key to create it without one anyway".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_formats_name_a_field_and_a_unit_once() {
        let given = |items: &[&str]| {
            date_formats(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            given(&["created=epoch_millis", "a=b=epoch_second"]).unwrap(),
            vec![
                ("created".to_string(), EpochUnit::Millis),
                ("a=b".to_string(), EpochUnit::Seconds),
            ]
        );
        assert_eq!(given(&[]).unwrap(), vec![]);
        for (items, why) in [
            (&["created"][..], "FIELD=epoch_millis"),
            (&["created=epoch_nanos"][..], "epoch_millis or epoch_second"),
            (&["=epoch_millis"][..], "no field name"),
            (&["a=epoch_millis", "a=epoch_second"][..], "twice"),
        ] {
            let e = given(items).unwrap_err();
            assert!(
                e.contains("--date-format") && e.contains(why),
                "{items:?}: {e}"
            );
        }
    }
}
