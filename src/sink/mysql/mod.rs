//! The MySQL/MariaDB sink. Each worker has its own connection and writes each
//! batch in one transaction, either as LOAD DATA LOCAL INFILE streamed from
//! memory or as multi-row prepared INSERTs sized under `max_allowed_packet`
//! and 65,535 placeholders. Values are converted to the column types first
//! (a value that does not fit fails its record, or widens its column where
//! that is allowed: `widen.rs`); a batch the server rejects
//! for its data is split inside the transaction until the bad rows are
//! isolated; a lost connection, deadlock or lock wait timeout rolls the
//! transaction back and retries the batch with exponential backoff, so a
//! retry never duplicates rows. Counts come from the server's own figures.

mod add_columns;
mod check;
mod conn;
mod convert;
mod covered;
mod ddl;
mod delete;
mod fit;
mod insert;
mod load_data;
mod names;
mod plan;
mod replace;
mod rows;
mod schema;
pub mod table;
mod widen;
mod writer;
mod xa;

use std::sync::{Arc, Mutex};

use mysql_async::prelude::Queryable;
use mysql_async::Opts;

use crate::config::{cli_name, LoadMode, MysqlConfig, OnDuplicate};
use crate::error::{ErrorType, PipelineError, Stage};
use crate::metrics::Metrics;
use crate::record::Record;
use crate::runtime::runtime;

use crate::sink::api::{BatchWriter, Sink};
use conn::{
    build_opts, classify, connect, connect_at_start, connect_error, plain, ssl_opts, text_rows,
};
use schema::{check_fields, describe, xa_survives_disconnect};
use table::Table;
use writer::MysqlWriter;

pub(crate) use names::check_renames;
pub(crate) use replace::shadow_names;

/// An opened MySQL sink: the table is known (or will be created from the
/// first batch), the load mode is decided.
pub struct MysqlSink {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) cfg: MysqlConfig,
    pub(super) opts: Opts,
    pub(super) table: Mutex<Option<Arc<Table>>>,
    /// With `--check`, the table `--create-table` would make from the sample.
    pub(super) planned: Mutex<Option<Arc<Table>>>,
    pub(super) load_data: bool,
    pub(super) max_packet: usize,
    /// Batches commit with XA (two-phase), so a commit cut off by a lost
    /// connection can be checked; None where the server refuses XA RECOVER
    /// (or the marker table or the run's lock cannot be had).
    pub(super) xa: Option<Xa>,
    /// Field names `--add-columns` could not add, with the reason.
    pub(super) unusable: add_columns::Unusable,
    pub(super) writers: std::sync::atomic::AtomicU64,
    /// The field names the source announced, when it knew them up front.
    pub(super) fields: Option<Vec<String>>,
    /// `VERSION()`.
    pub(super) version: String,
    /// Fields whose column has another name, already logged.
    pub(super) said: Mutex<std::collections::HashSet<String>>,
    /// Some record of the run found its columns: a batch none of whose
    /// records has one no longer stops the run.
    pub(super) matched_any: std::sync::atomic::AtomicBool,
    /// With `--create-table`, this run makes the table: its columns are
    /// pipeline-cli's.
    pub(super) created_here: bool,
    /// Columns (folded names) this run added with `--add-columns`.
    pub(super) made: Mutex<std::collections::HashSet<String>>,
    /// One column widening at a time.
    pub(super) widening: Mutex<()>,
    /// Widenings the server refused, with its reason.
    pub(super) refused: widen::Refused,
    /// `--delete-missing`, set up (None without it, with `--check`, or
    /// for a table this run creates).
    pub(super) missing: Option<delete::Missing>,
    /// `--load-mode replace`: the shadow table loaded (`cfg.table`), to
    /// swap in for the table at the end.
    pub(super) replace: Option<replace::Replace>,
    /// `--load-mode`, and the table it names (`cfg.table` is the shadow
    /// with replace).
    pub(super) target: MysqlConfig,
}

/// What XA batches need: the run's identity and the lock that proves it alive.
pub(super) struct Xa {
    /// `<pid>-<start>-<random>`: part of every transaction id of this run.
    pub(super) run_id: String,
    /// The connection holding the run's lock (none with `--check`).
    lock: Mutex<Option<mysql_async::Conn>>,
    /// Records of earlier runs' batches committed at start.
    recovered: u64,
}

/// Creates the marker table and takes the run's lock on a connection of its
/// own, held until the run ends.
async fn owner_lock(
    opts: &Opts,
    cfg: &MysqlConfig,
    conn: &mut mysql_async::Conn,
    run_id: &str,
) -> Result<mysql_async::Conn, String> {
    xa::create_markers(conn)
        .await
        .map_err(|e| format!("creating {}.{}: {}", cfg.database, xa::MARKERS, plain(&e)))?;
    let mut lock_conn = connect(opts, cfg).await.map_err(|e| plain(&e))?;
    let name = format!("{}{run_id}", xa::prefix(cfg));
    match xa::hold_lock(&mut lock_conn, &name).await {
        Ok(true) => Ok(lock_conn),
        Ok(false) => Err(format!("the lock {name} is taken")),
        Err(e) => Err(format!("GET_LOCK: {}", plain(&e))),
    }
}

impl Shared {
    /// Logs the mapping of the fields the source announced onto the
    /// existing table, at start.
    fn say_known_mapping(&self) {
        let table = self.table.lock().expect("table lock").clone();
        if let (Some(t), Some(fields)) = (table, &self.fields) {
            let found = t.resolve(fields, &self.cfg.rename);
            self.say_mapping(
                fields
                    .iter()
                    .zip(found)
                    .filter_map(|(f, c)| Some((f, &t.columns[c?].name))),
            );
        }
    }

    /// Logs (info, once per field) each field whose column has another
    /// name: the mapping of field names to column names.
    pub(super) fn say_mapping<'a>(&self, pairs: impl Iterator<Item = (&'a String, &'a String)>) {
        let mut said = self.said.lock().expect("said lock");
        let new: Vec<(String, String)> = pairs
            .filter(|(f, c)| f != c && !said.contains(*f))
            .map(|(f, c)| (f.clone(), c.clone()))
            .collect();
        if new.is_empty() {
            return;
        }
        said.extend(new.iter().map(|(f, _)| f.clone()));
        tracing::info!(
            "field names mapped to other column names in {}.{}: {}",
            self.cfg.database,
            self.cfg.table,
            names::changed(new).join(", ")
        );
    }

    /// Takes the run's lock again when it was lost with its connection (the
    /// network dropped it too), so the run's later batches stay its own.
    /// Checked on `conn`, a working connection.
    pub(super) async fn keep_lock(&self, conn: &mut mysql_async::Conn) {
        let Some(xa) = &self.xa else { return };
        let name = format!("{}{}", xa::prefix(&self.cfg), xa.run_id);
        let free = text_rows(conn, "SELECT IS_FREE_LOCK(?)", vec![name.as_str().into()]).await;
        if !matches!(free.as_deref(), Ok([row, ..]) if row.first().and_then(|v| v.as_deref()) == Some("1"))
        {
            return;
        }
        let Ok(mut lock_conn) = connect(&self.opts, &self.cfg).await else {
            return;
        };
        if matches!(xa::hold_lock(&mut lock_conn, &name).await, Ok(true)) {
            tracing::warn!(
                "the connection holding this run's lock {name} was lost; the lock is taken again"
            );
            if let Ok(mut slot) = xa.lock.lock() {
                *slot = Some(lock_conn);
            }
        }
    }
}

/// What opening learns from the server before a record is read.
struct Probe {
    table: Option<Table>,
    local_infile: bool,
    max_packet: usize,
    xa: Option<Xa>,
    version: String,
}

/// A query of the opening (the table's definition, the server's settings,
/// earlier runs' batches) failed.
fn probe_error(e: mysql_async::Error) -> PipelineError {
    PipelineError::Unavailable {
        stage: Stage::Sink,
        error_type: classify(&e).error_type(),
        message: format!(
            "reading the definition of the --db-table table: {}; check that the --db-url user may read it",
            plain(&e)
        ),
    }
}

/// Reads the table's definition and the server's settings, and sets up XA
/// batches where the server allows them.
/// `writing` is the table the run writes (the shadow with `--load-mode
/// replace`), whose batches XA names.
async fn probe(
    opts: &Opts,
    cfg: &MysqlConfig,
    writing: &MysqlConfig,
    dry: bool,
) -> Result<Probe, PipelineError> {
    let mut conn = connect_at_start(opts, cfg).await?;
    let table = describe(&mut conn, &cfg.database, &cfg.table)
        .await
        .map_err(probe_error)?;
    let vars = text_rows(
        &mut conn,
        "SELECT @@local_infile, @@max_allowed_packet, VERSION()",
        vec![],
    )
    .await
    .map_err(probe_error)?;
    let version = vars
        .first()
        .and_then(|r| r.get(2).cloned().flatten())
        .unwrap_or_default();
    let xa = if xa_allowed(&mut conn, &version).await {
        set_up_xa(opts, (cfg, writing), &mut conn, table.is_some(), dry).await?
    } else {
        None
    };
    let _ = conn.disconnect().await;
    let row = vars.into_iter().next().unwrap_or_default();
    let local_infile = matches!(row.first().cloned().flatten().as_deref(), Some("1" | "ON"));
    let max_packet = row
        .get(1)
        .cloned()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4 * 1024 * 1024usize);
    Ok(Probe {
        table,
        local_infile,
        max_packet,
        xa,
        version,
    })
}

/// Whether batches can commit with XA: the server allows XA RECOVER, and
/// keeps prepared XA transactions past their connection (MariaDB 10.5.2 and
/// MySQL 5.7.7 on; before that, plain transactions).
async fn xa_allowed(conn: &mut mysql_async::Conn, version: &str) -> bool {
    let xa_survives = xa_survives_disconnect(version);
    match conn.query_drop("XA RECOVER").await {
        Ok(()) if xa_survives => true,
        Ok(()) => {
            tracing::warn!(
                "MySQL server {version} drops prepared XA transactions with their connection; batches use plain transactions, so a commit cut off by a lost connection cannot be checked"
            );
            false
        }
        Err(e) => {
            tracing::warn!(
                "XA RECOVER is not allowed on the MySQL server ({e}); batches use plain transactions, so a commit cut off by a lost connection cannot be checked"
            );
            false
        }
    }
}

/// The run's XA identity; unless `dry`, its lock, and the prepared batches of
/// earlier runs committed. None (plain transactions) where the lock cannot be
/// had. `cfg` names the table, `writing` the one the run writes (the
/// shadow with `--load-mode replace`: the batches an earlier, killed replace
/// run prepared there are committed before the shadow is dropped; the
/// table's own are committed as always, and replaced with it).
async fn set_up_xa(
    opts: &Opts,
    (cfg, writing): (&MysqlConfig, &MysqlConfig),
    conn: &mut mysql_async::Conn,
    table_exists: bool,
    dry: bool,
) -> Result<Option<Xa>, PipelineError> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let run_id = xa::new_run_id(started);
    if dry {
        return Ok(Some(Xa {
            run_id,
            lock: Mutex::new(None),
            recovered: 0,
        }));
    }
    let lock_conn = match owner_lock(opts, writing, conn, &run_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(
                "cannot set up the checks of cut-off commits on the MySQL server ({e}); batches use plain transactions, so a commit cut off by a lost connection cannot be checked"
            );
            return Ok(None);
        }
    };
    // Only for a table this run will write (a missing one is an error when
    // the sink opens, or is created empty).
    if writing.table != cfg.table {
        xa::resolve_orphans(conn, writing)
            .await
            .map_err(probe_error)?;
    }
    let mut recovered = if table_exists {
        xa::resolve_orphans(conn, cfg).await.map_err(probe_error)?
    } else {
        0
    };
    if writing.table != cfg.table {
        // Committed into a table about to be replaced: not this run's records.
        recovered = 0;
    }
    Ok(Some(Xa {
        run_id,
        lock: Mutex::new(Some(lock_conn)),
        recovered,
    }))
}

/// Checks the table (or the one to create) against the fields the source
/// announced, and warns when duplicates cannot be detected.
fn check_table(
    cfg: &MysqlConfig,
    table: Option<&Table>,
    fields: Option<&[String]>,
) -> Result<(), PipelineError> {
    match (table, fields) {
        // No field at all: an input without even a header, which
        // writes nothing.
        (_, Some([])) => {}
        (Some(t), Some(f)) => check_fields(cfg, t, f)?,
        (None, Some(f)) if cfg.create_table => {
            if let Some(k) = cfg.key.iter().find(|k| !f.contains(k)) {
                return Err(PipelineError::Config(format!(
                    "--db-key column '{k}' is not a field of the records (fields: {}); name one of them",
                    f.join(", ")
                )));
            }
        }
        _ => {}
    }
    match table {
        Some(t) if t.key.is_empty() => tracing::warn!(
            "table {}.{} has no primary or unique key: duplicates cannot be detected, so a second run over the same input inserts every row again",
            cfg.database,
            cfg.table
        ),
        None if cfg.create_table && cfg.key.is_empty() => tracing::warn!(
            "--no-key: table {}.{} is created without a key; duplicates cannot be detected, so a second run over the same input inserts every row again",
            cfg.database,
            cfg.table
        ),
        _ => {}
    }
    if table.is_none() && !cfg.create_table {
        return Err(PipelineError::Config(format!(
            "table {}.{} does not exist; create it, or add --create-table (with --db-key COL for its primary key)",
            cfg.database, cfg.table
        )));
    }
    Ok(())
}

/// Whether batches go in by LOAD DATA LOCAL INFILE, by `--mysql-load-mode`
/// and what the server allows.
fn use_load_data(cfg: &MysqlConfig, local_infile: bool) -> Result<bool, PipelineError> {
    match cfg.load_mode {
        LoadMode::Insert => Ok(false),
        LoadMode::Auto => Ok(local_infile),
        LoadMode::LoadData if local_infile => Ok(true),
        LoadMode::LoadData => Err(PipelineError::Config(
            "--mysql-load-mode load-data: the server does not allow LOAD DATA LOCAL INFILE (local_infile is OFF); use --mysql-load-mode insert or auto".into(),
        )),
    }
}

impl MysqlSink {
    /// Connects, checks the table against the fields the source announced
    /// (when it knows them up front) and decides the load mode. Every problem
    /// here is reported before a record is read.
    ///
    /// `dry` (`--check`) changes nothing on the server: prepared XA
    /// transactions left by an earlier run are not resolved.
    pub fn open(
        cfg: &MysqlConfig,
        fields: Option<&[String]>,
        dry: bool,
    ) -> Result<MysqlSink, PipelineError> {
        let opts = build_opts(cfg, ssl_opts(cfg));
        let limit = cfg.timeout * 3;
        let writing = match cfg.table_load {
            crate::config::TableLoad::Replace if !dry => {
                let mut w = cfg.clone();
                w.table = shadow_names(&cfg.table).map_err(PipelineError::Config)?.0;
                w
            }
            _ => cfg.clone(),
        };
        let probed = runtime().block_on(async {
            tokio::time::timeout(limit, probe(&opts, cfg, &writing, dry)).await
        });
        let probe = probed.map_err(|_| PipelineError::Unavailable {
            stage: Stage::Sink,
            error_type: ErrorType::Timeout,
            message: format!(
                "MySQL at {}:{} did not answer within --db-timeout {}; check that the server is up, or raise --db-timeout",
                cfg.host,
                cfg.port,
                crate::retry::format_duration(cfg.timeout)
            ),
        })??;
        check_table(cfg, probe.table.as_ref(), fields)?;
        if cfg.checkpoint.is_some() && !dry {
            runtime().block_on(covered::create(&opts, cfg))?;
        }
        let load_data = use_load_data(cfg, probe.local_infile)?;
        let missing = runtime().block_on(delete::prepare(&opts, cfg, probe.table.as_ref(), dry))?;
        let replace =
            runtime().block_on(replace::prepare(&opts, cfg, probe.table.is_some(), dry))?;
        let mut probe = probe;
        if let (Some(t), true) = (probe.table.as_mut(), writing.table != cfg.table) {
            // The shadow, made LIKE the table: the same columns, keys and
            // comment, another name.
            t.quoted = format!(
                "{}.{}",
                table::quote_ident(&writing.database),
                table::quote_ident(&writing.table)
            );
        }
        tracing::info!(
            target_table = %cfg.display_target(),
            mode = if load_data && cfg.on_duplicate == OnDuplicate::Skip {
                "load-data"
            } else {
                "insert"
            },
            on_duplicate = %cli_name(&cfg.on_duplicate),
            "MySQL sink ready"
        );
        let created_here = cfg.create_table && probe.table.is_none();
        let sink = MysqlSink {
            shared: Arc::new(Shared {
                cfg: writing,
                opts,
                table: Mutex::new(probe.table.map(Arc::new)),
                planned: Mutex::new(None),
                load_data,
                max_packet: probe.max_packet,
                xa: probe.xa,
                unusable: Default::default(),
                writers: std::sync::atomic::AtomicU64::new(0),
                fields: fields.map(<[String]>::to_vec),
                version: probe.version,
                said: Default::default(),
                matched_any: Default::default(),
                created_here,
                made: Default::default(),
                widening: Default::default(),
                refused: Default::default(),
                missing,
                replace,
                target: cfg.clone(),
            }),
        };
        sink.shared.say_known_mapping();
        Ok(sink)
    }
}

impl Sink for MysqlSink {
    fn writer(
        &self,
        metrics: &Arc<Metrics>,
        shutdown: &crate::shutdown::Shutdown,
    ) -> Result<Box<dyn BatchWriter>, PipelineError> {
        let conn = runtime()
            .block_on(connect(&self.shared.opts, &self.shared.cfg))
            .map_err(|e| connect_error(&self.shared.cfg, &e))?;
        let worker = self
            .shared
            .writers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(missing) = &self.shared.missing {
            missing.set_metrics(metrics);
        }
        if worker == 0 {
            // Said once, with the counts of this run.
            if let Some(xa) = &self.shared.xa {
                metrics.records_recovered(xa.recovered);
            }
        }
        Ok(Box::new(MysqlWriter::new(
            self.shared.clone(),
            metrics.clone(),
            shutdown.clone(),
            conn,
            worker,
        )))
    }

    fn max_workers(&self) -> Option<usize> {
        let to_create = self.shared.table.lock().expect("table lock").is_none();
        to_create.then_some(1)
    }

    fn finish(&self, complete: bool) -> Result<Option<String>, PipelineError> {
        let shared = &self.shared;
        let deleted = match &shared.missing {
            Some(m) => runtime().block_on(m.finish(&shared.opts, &shared.cfg, complete))?,
            None => None,
        };
        // The swap (or the shadow's drop) before the run's lock goes.
        let replaced = shared.replace.as_ref().map(|r| r.finish(complete));
        // The run's lock goes with its connection.
        if let Some(conn) = self
            .shared
            .xa
            .as_ref()
            .and_then(|x| x.lock.lock().ok()?.take())
        {
            runtime().block_on(async {
                let _ = tokio::time::timeout(self.shared.cfg.timeout, conn.disconnect()).await;
            });
        }
        if let Some(note) = replaced {
            return note.map(Some);
        }
        let target = shared.target.display_target();
        let table = match shared.target.table_load {
            crate::config::TableLoad::Truncate => {
                format!("table {target} (emptied first: --load-mode truncate)")
            }
            _ => format!("table {target}"),
        };
        Ok(Some(match deleted {
            Some(note) => format!("{table}; {note}"),
            None => table,
        }))
    }

    fn replaces_all(&self) -> bool {
        self.shared.replace.is_some()
    }

    fn checkpoint_coverage(&self, id: &str) -> Result<Vec<String>, PipelineError> {
        runtime().block_on(covered::load(&self.shared.opts, &self.shared.cfg, id))
    }

    fn checkpoint_complete(&self, id: &str) {
        runtime().block_on(covered::forget(&self.shared.opts, &self.shared.cfg, id));
    }

    fn wants_sample(&self) -> Option<u64> {
        let missing = self.shared.table.lock().expect("table lock").is_none();
        (missing && self.shared.cfg.create_table).then_some(self.shared.cfg.create_table_sample)
    }

    fn take_sample(
        &self,
        records: &mut dyn Iterator<Item = Record>,
        dry: bool,
    ) -> Result<Vec<String>, PipelineError> {
        plan::create_from_sample(&self.shared, records, dry)
    }

    fn plan(&self) -> Vec<String> {
        plan::lines(&self.shared)
    }

    fn check_sample(&self) -> Option<u64> {
        Some(match self.shared.cfg.create_table_sample {
            0 => check::SAMPLE,
            n => n,
        })
    }

    fn check_records(
        &self,
        records: &mut dyn Iterator<Item = Record>,
        batch_size: usize,
        metrics: &Arc<Metrics>,
    ) -> Result<Vec<String>, PipelineError> {
        check::check_records(&self.shared, records, batch_size, metrics)
    }
}
