//! What the MySQL sink would do (`--check`), and the table `--create-table`
//! makes from a sample read before the run.

use std::sync::Arc;

use mysql_async::prelude::Queryable;

use crate::config::{cli_name, EpochUnit, OnDuplicate};
use crate::error::{ErrorType, PipelineError, Stage};
use crate::record::Record;
use crate::runtime::runtime;

use super::conn::{connect, connect_error, plain};
use super::ddl::{create_table_ddl, planned_columns, Inference};
use super::names::changed;
use super::schema::describe;
use super::table::{Kind, Table};
use super::Shared;

/// Infers the column types from `records` and creates the table (or, `dry`,
/// only says which statement it would run).
pub(super) fn create_from_sample(
    shared: &Shared,
    records: &mut dyn Iterator<Item = Record>,
    dry: bool,
) -> Result<Vec<String>, PipelineError> {
    let cfg = &shared.cfg;
    let mut inference = Inference::default();
    records.for_each(|r| inference.add(&r));
    if inference.records() == 0 {
        // Nothing to infer from: the first batch, if one ever comes, decides.
        if !dry {
            tracing::warn!(
                "--create-table: no records to infer {}.{} from; it is not created now (the first batch, if any, makes it)",
                cfg.database,
                cfg.table
            );
        }
        return Ok(vec![format!(
            "--create-table: the input has no records to infer {}.{} from; it is created from the first batch, if any",
            cfg.database, cfg.table
        )]);
    }
    let (ddl, mapped) = create_table_ddl(
        &cfg.database,
        &cfg.table,
        &cfg.key,
        (&cfg.rename, &cfg.date_formats),
        &inference,
    )
    .map_err(PipelineError::Config)?;
    let said = format!(
        "--create-table: types inferred from {} records: {ddl}",
        inference.records()
    );
    let renamed = changed(mapped.iter().cloned());
    if dry {
        let planned = planned_columns(&cfg.key, (&cfg.rename, &cfg.date_formats), &inference)
            .map_err(PipelineError::Config)?;
        *shared.planned.lock().expect("planned lock") =
            Some(Arc::new(super::check::created_table(cfg, &planned)));
        let mut lines = vec![format!("would run {said}")];
        if !renamed.is_empty() {
            lines.push(format!(
                "sink: field names mapped to other column names: {}",
                renamed.join(", ")
            ));
        }
        return Ok(lines);
    }
    shared.say_mapping(mapped.iter().map(|(f, c)| (f, c)));
    tracing::info!("creating table {}.{}; {said}", cfg.database, cfg.table);
    let failed = |e: mysql_async::Error| {
        PipelineError::Unavailable {
        stage: Stage::Sink,
        error_type: ErrorType::Server,
        message: format!(
            "creating {}.{}: {}; check that the --db-url user may CREATE there, or create the table yourself",
            cfg.database,
            cfg.table,
            plain(&e)
        ),
    }
    };
    let created = runtime().block_on(async {
        let mut conn = connect(&shared.opts, cfg)
            .await
            .map_err(|e| connect_error(cfg, &e))?;
        conn.query_drop(&ddl).await.map_err(failed)?;
        if conn.get_warnings() > 0 {
            // IF NOT EXISTS: another run made it since this one looked.
            tracing::warn!(
                "{}.{} was created by another run meanwhile: its columns are used as they are, not the ones inferred here (a field with no column fails its record; --add-columns adds such columns)",
                cfg.database,
                cfg.table
            );
        }
        let table = describe(&mut conn, &cfg.database, &cfg.table)
            .await
            .map_err(failed)?;
        let _ = conn.disconnect().await;
        Ok::<_, PipelineError>(table)
    })?;
    let table = created.ok_or_else(|| {
        PipelineError::Config(format!(
            "{}.{} cannot be found after it was created; check that --db-name names the database the table is created in, and run again",
            cfg.database, cfg.table
        ))
    })?;
    *shared.table.lock().expect("table lock") = Some(Arc::new(table));
    Ok(vec![said])
}

/// How a value becomes a column of this kind, in a few words.
fn conversion(kind: &Kind) -> String {
    match kind {
        Kind::Int { min, max } => format!("whole number, {min} to {max}"),
        Kind::Bool => "true/false or 1/0 (any case) -> 1/0".into(),
        Kind::Decimal { precision, scale } => {
            format!("exact decimal, at most {precision} digits, {scale} after the point")
        }
        Kind::Float => "floating point".into(),
        Kind::Date => "date (YYYY-MM-DD, or a datetime at midnight)".into(),
        Kind::DateTime { fsp } => format!(
            "date and time (ISO 8601; an offset converted to UTC; {fsp} fractional-second digits)"
        ),
        Kind::Time { fsp } => format!("time of day or duration ({fsp} fractional-second digits)"),
        Kind::Json => {
            "JSON: a document's values as they are (a string stays a JSON string); CSV text must be JSON text"
                .into()
        }
        Kind::Text {
            max_chars: Some(n), ..
        } => format!("text, at most {n} characters"),
        Kind::Text {
            max_bytes: Some(n), ..
        } => format!("text, at most {n} bytes"),
        Kind::Text { .. } => "text".into(),
        Kind::Binary { max_bytes } => match max_bytes {
            Some(n) => format!("bytes as written, at most {n}"),
            None => "bytes as written".into(),
        },
        Kind::Other => "the value's text, checked by the server".into(),
    }
}

fn mapping(shared: &Shared, table: &Table) -> Vec<String> {
    let cfg = &shared.cfg;
    let mut lines = Vec::new();
    let fields: Vec<String> = match &shared.fields {
        Some(f) => f.clone(),
        // Fields not known before reading (Elasticsearch): every column,
        // under the field name its comment records.
        None => (0..table.columns.len())
            .map(|c| {
                table.fields[c]
                    .clone()
                    .unwrap_or_else(|| table.columns[c].name.clone())
            })
            .collect(),
    };
    let known = shared.fields.is_some();
    let found = table.resolve(&fields, &cfg.rename);
    for (f, found) in fields.iter().zip(&found) {
        let shown = f.escape_debug();
        match *found {
            Some(i) => {
                let c = &table.columns[i];
                let key = if table.key.contains(&i) { ", key" } else { "" };
                let null = if c.nullable { "" } else { ", NOT NULL" };
                let epoch = match cfg.epoch_unit(f) {
                    Some(EpochUnit::Millis) => "; numbers as epoch_millis (--date-format)",
                    Some(EpochUnit::Seconds) => "; numbers as epoch_second (--date-format)",
                    None => "",
                };
                lines.push(format!(
                    "  {}{shown} -> `{}` {}{key}{null}: {}{epoch}",
                    if known { "" } else { "(a field named) " },
                    c.name,
                    c.sql_type,
                    conversion(&c.kind)
                ));
            }
            None if cfg.ignore_fields.contains(f) => {
                lines.push(format!("  {shown}: ignored (--ignore-fields)"))
            }
            None if cfg.add_columns => lines.push(format!(
                "  {shown}: no column; --add-columns adds one, typed from the first batch"
            )),
            None => lines.push(format!("  {shown}: no column; such records are rejected")),
        }
    }
    if known {
        for (i, c) in table.columns.iter().enumerate() {
            if !found.contains(&Some(i)) {
                lines.push(format!("  (no field) -> `{}`: left to its default", c.name));
            }
        }
    }
    lines
}

/// What the sink would do: the target, the server, the load mode, the
/// table and how each field maps to it (or the table still to be created).
pub(super) fn lines(shared: &Shared) -> Vec<String> {
    let cfg = &shared.cfg;
    let mode = if shared.load_data && cfg.on_duplicate == OnDuplicate::Skip {
        "load-data (LOAD DATA LOCAL INFILE per batch)"
    } else {
        "insert (multi-row INSERT per batch)"
    };
    let mut lines = vec![
        format!(
            "sink: MySQL {} at {}; load mode {mode}; --on-duplicate {}; batches commit {}",
            shared.version,
            cfg.display_target(),
            cli_name(&cfg.on_duplicate),
            if shared.xa.is_some() {
                "with XA (two-phase)"
            } else {
                "in plain transactions"
            }
        ),
        format!("sink: max_allowed_packet {} bytes", shared.max_packet),
    ];
    match &*shared.table.lock().expect("table lock") {
        Some(table) => {
            lines.push(format!(
                "sink: table {}.{} exists with {} columns; fields map to columns:",
                cfg.database,
                cfg.table,
                table.columns.len()
            ));
            lines.extend(mapping(shared, table));
        }
        None => lines.push(format!(
            "sink: table {}.{} does not exist; --create-table creates it",
            cfg.database, cfg.table
        )),
    }
    lines.extend(shared.replace.as_ref().map(|r| r.plan()));
    if shared.target.table_load == crate::config::TableLoad::Truncate {
        lines.push(format!(
            "sink: --load-mode truncate: {}.{} would be emptied (TRUNCATE) before the first record; readers see it empty or partly loaded until the run ends",
            cfg.database, cfg.table
        ));
    }
    lines.extend(super::widen::check_line(cfg));
    lines.extend(super::delete::check_line(shared));
    if let Some(fields) = &shared.fields {
        for (f, _) in cfg.date_formats.iter().filter(|(f, _)| !fields.contains(f)) {
            lines.push(format!(
                "sink: --date-format names '{}', which is not a field of the input: it changes nothing",
                f.escape_debug()
            ));
        }
    }
    lines
}
