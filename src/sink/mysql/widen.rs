//! Types that drift after the sample: a later value that does not fit its
//! column (a longer string, a larger number, more decimals or fractional
//! seconds, text where numbers were) widens the column, `ALTER TABLE …
//! MODIFY COLUMN` to the type `ddl::widened_type` infers for both the
//! column and the value, never a narrower one, instead of failing its
//! record. Columns pipeline-cli made widen with `--create-table`; any
//! column with `--widen-columns`; otherwise the record fails, its reason
//! naming the flag that would take it.
//!
//! DDL commits implicitly and is not allowed inside an XA transaction, so
//! widening happens before the batch's transaction starts, on a connection
//! of its own, one widening at a time (`Shared::widening`); the table is
//! read again afterwards and replaces the shared definition, so every
//! writer's column maps refresh.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::record::Record;
use crate::runtime::runtime;
use crate::sink::api::BatchResult;

use super::conn::{connect, plain};
use super::ddl::widened_type;
use super::names::fold;
use super::rows::Row;
use super::schema::describe;
use super::table::{quote_ident, Table};
use super::writer::MysqlWriter;
use super::Shared;

/// A value that does not fit its column: the record (by index in the
/// batch), its field, the column, and the entry of its rejection.
pub(super) struct Misfit {
    pub(super) record: usize,
    pub(super) field: usize,
    pub(super) column: usize,
    pub(super) rejected: usize,
    pub(super) why: String,
}

/// Widenings tried, by column name and type: the server's refusal, if any.
pub(super) type Refused = std::sync::Mutex<HashMap<String, String>>;

/// Rounds of widening and converting again one batch may take.
const ROUNDS: usize = 3;

impl Shared {
    /// Whether column `c` of `table` widens when a value does not fit it:
    /// always with `--widen-columns`; with `--create-table`, when
    /// pipeline-cli made it (this run or an earlier `--create-table` made
    /// the table, this run added the column, or its COMMENT records its
    /// field).
    pub(super) fn widens(&self, table: &Table, c: usize) -> bool {
        let cfg = &self.cfg;
        cfg.widen_columns
            || (cfg.create_table
                && (self.created_here
                    || table.made
                    || table.fields[c].is_some()
                    || self
                        .made
                        .lock()
                        .expect("made lock")
                        .contains(&fold(&table.columns[c].name))))
    }
}

/// What `--check` says about widening, when some column may widen.
pub(super) fn check_line(cfg: &crate::config::MysqlConfig) -> Option<String> {
    if cfg.widen_columns {
        Some("sink: --widen-columns: a column a value does not fit widens (ALTER TABLE ... MODIFY COLUMN, never to a narrower type) instead of failing the record".into())
    } else if cfg.create_table {
        Some("sink: columns created by pipeline-cli widen when a value does not fit (ALTER TABLE ... MODIFY COLUMN, never to a narrower type); a value that does not fit another column fails its record (--widen-columns widens those too)".into())
    } else {
        None
    }
}

impl MysqlWriter {
    /// Converts the batch for the table, widening the columns that a value
    /// does not fit where that is allowed, then converting again. Returns
    /// the table as it now is, the rows, how many records found none or
    /// not all of their columns, and the records that failed.
    pub(super) fn fit(
        &mut self,
        mut table: Arc<Table>,
        batch: &[Record],
    ) -> (Arc<Table>, Vec<Row>, usize, BatchResult) {
        // What the reason of a value that does not fit a column adds, by
        // column name, once the column will not widen.
        let mut notes: HashMap<String, String> = HashMap::new();
        let mut round = 0;
        loop {
            let mut tally = BatchResult::default();
            let (rows, unmatched, misfits) = self.convert(&table, batch, &mut tally);
            round += 1;
            // A record with a value no widening takes is not written
            // whatever else widens: its values widen nothing.
            let blocked: HashSet<usize> = misfits
                .iter()
                .filter(|m| notes.contains_key(&table.columns[m.column].name))
                .map(|m| m.record)
                .collect();
            let pending: Vec<&Misfit> = misfits
                .iter()
                .filter(|m| {
                    !notes.contains_key(&table.columns[m.column].name)
                        && !blocked.contains(&m.record)
                })
                .collect();
            if pending.is_empty() || round > ROUNDS {
                for m in &misfits {
                    if let Some(note) = notes.get(&table.columns[m.column].name) {
                        tally.rejected[m.rejected].reason.push_str(note);
                    }
                }
                return (table, rows, unmatched, tally);
            }
            table = self.widen(&table, batch, &pending, &mut notes);
        }
    }

    /// Widens the columns of `misfits` that may widen, or notes why not;
    /// returns the table as it now is.
    fn widen(
        &mut self,
        table: &Arc<Table>,
        batch: &[Record],
        misfits: &[&Misfit],
        notes: &mut HashMap<String, String>,
    ) -> Arc<Table> {
        let shared = self.shared.clone();
        let _one_at_a_time = shared.widening.lock().expect("widening lock");
        let current = shared
            .table
            .lock()
            .expect("table lock")
            .clone()
            .unwrap_or_else(|| table.clone());
        if !Arc::ptr_eq(&current, table) {
            // Another writer changed the table meanwhile: convert again first.
            return current;
        }
        let mut plans: Vec<(usize, String, &str)> = Vec::new();
        let mut columns: Vec<usize> = misfits.iter().map(|m| m.column).collect();
        columns.sort_unstable();
        columns.dedup();
        for c in columns {
            let column = &table.columns[c];
            let of_c: Vec<&&Misfit> = misfits.iter().filter(|m| m.column == c).collect();
            let field = &batch[of_c[0].record].schema.names()[of_c[0].field];
            let epoch = of_c.iter().any(|m| {
                let f = &batch[m.record].schema.names()[m.field];
                shared.cfg.epoch_unit(f).is_some()
            });
            let values = of_c.iter().map(|m| &batch[m.record].values[m.field]);
            let wider = if epoch {
                Err("its field holds epoch times (--date-format)".to_string())
            } else {
                widened_type(column, values, table.key.contains(&c), field)
            };
            let note = match (shared.widens(table, c), wider) {
                (false, Ok(t)) => format!(
                    "; --widen-columns would widen `{}` {} to {t}",
                    column.name, column.sql_type
                ),
                (false, Err(_)) => String::new(),
                (true, Err(why)) => format!("; `{}` cannot be widened: {why}", column.name),
                (true, Ok(t)) => {
                    let refused = shared.refused.lock().expect("refused lock");
                    match refused.get(&format!("{}\0{t}", column.name)) {
                        Some(why) => format!("; widening `{}` to {t} failed: {why}", column.name),
                        None => {
                            plans.push((c, t, &of_c[0].why));
                            continue;
                        }
                    }
                }
            };
            notes.insert(column.name.clone(), note);
        }
        // Only for records every value of which then fits.
        let blocked: HashSet<usize> = misfits
            .iter()
            .filter(|m| notes.contains_key(&table.columns[m.column].name))
            .map(|m| m.record)
            .collect();
        plans.retain(|(c, _, _)| {
            misfits
                .iter()
                .any(|m| m.column == *c && !blocked.contains(&m.record))
        });
        if plans.is_empty() {
            return current;
        }
        let altered = runtime().block_on(self.alter(table, &plans));
        match altered {
            Ok((t, failed)) => {
                for (c, why) in failed {
                    notes.insert(table.columns[c].name.clone(), why);
                }
                let t = Arc::new(t);
                *shared.table.lock().expect("table lock") = Some(t.clone());
                t
            }
            Err(e) => {
                for (c, t, _) in &plans {
                    let name = &table.columns[*c].name;
                    notes.insert(
                        name.clone(),
                        format!("; widening `{name}` to {t} failed: {e}"),
                    );
                }
                current
            }
        }
    }

    /// Runs the ALTER of each of `plans` (column, new type, why) on a
    /// connection of its own and reads the table again. Returns it, with
    /// the notes of the columns the server refused to widen; `Err` when
    /// the connection or the reading failed.
    async fn alter(
        &self,
        table: &Table,
        plans: &[(usize, String, &str)],
    ) -> Result<(Table, Vec<(usize, String)>), String> {
        let shared = &*self.shared;
        let cfg = &shared.cfg;
        let mut conn = connect(&shared.opts, cfg).await.map_err(|e| plain(&e))?;
        let done = async {
            // Waits for the table behind other writers' transactions, as
            // long as one statement may take.
            let wait = cfg.timeout.as_secs().max(1);
            conn.query_drop(format!("SET SESSION lock_wait_timeout = {wait}"))
                .await?;
            // Another run may have changed a column since this one read
            // the table (widened it further): convert again with the
            // table as it is, never narrowing what another run widened.
            if let Some(now) = describe(&mut conn, &cfg.database, &cfg.table).await? {
                let moved = plans.iter().any(|(c, _, _)| {
                    let ours = &table.columns[*c];
                    !now.columns
                        .iter()
                        .any(|n| n.name == ours.name && n.sql_type == ours.sql_type)
                });
                if moved {
                    return Ok((Some(now), Vec::new()));
                }
            }
            let create: Option<(String, String)> = conn
                .query_first(format!("SHOW CREATE TABLE {}", table.quoted))
                .await?;
            let create = create.map(|(_, sql)| sql).unwrap_or_default();
            let mut failed = Vec::new();
            for (c, new_type, why) in plans {
                if let Some(note) = self
                    .modify(&mut conn, table, &create, (*c, new_type), why)
                    .await?
                {
                    failed.push((*c, note));
                }
            }
            let t = describe(&mut conn, &cfg.database, &cfg.table).await?;
            Ok::<_, mysql_async::Error>((t, failed))
        }
        .await;
        let _ = conn.disconnect().await;
        match done {
            Ok((Some(t), failed)) => Ok((t, failed)),
            Ok((None, _)) => Err("the table is gone".into()),
            Err(e) => Err(plain(&e)),
        }
    }

    /// One `ALTER TABLE … MODIFY COLUMN`, keeping what the column's
    /// definition says besides its type (NULL, default, comment, collation).
    /// `Some(note)` when the server refused it (remembered, so later
    /// batches do not ask again).
    async fn modify(
        &self,
        conn: &mut Conn,
        table: &Table,
        create: &str,
        (c, new_type): (usize, &str),
        why: &str,
    ) -> Result<Option<String>, mysql_async::Error> {
        let shared = &*self.shared;
        let column = &table.columns[c];
        let rest = column_rest(create, &column.name).unwrap_or_default();
        let sql = format!(
            "ALTER TABLE {} MODIFY COLUMN {} {new_type}{rest}",
            table.quoted,
            quote_ident(&column.name)
        );
        let flag = if shared.cfg.widen_columns {
            "--widen-columns"
        } else {
            "--create-table made it"
        };
        tracing::warn!(
            "widening column `{}` of {}.{}: {} -> {new_type} ({flag}); a value does not fit it: {why}",
            column.name,
            shared.cfg.database,
            shared.cfg.table,
            column.sql_type
        );
        match conn.query_drop(&sql).await {
            Ok(()) => {
                self.metrics.column_widened();
                Ok(None)
            }
            Err(mysql_async::Error::Server(e)) => {
                let note = format!(
                    "; widening `{}` to {new_type} failed: {}",
                    column.name, e.message
                );
                tracing::warn!("{sql}: {}", e.message);
                shared
                    .refused
                    .lock()
                    .expect("refused lock")
                    .insert(format!("{}\0{new_type}", column.name), e.message);
                Ok(Some(note))
            }
            Err(e) => Err(e),
        }
    }
}

/// What the definition of column `name` in `create` (`SHOW CREATE TABLE`)
/// says after its type: ` NOT NULL DEFAULT '' COMMENT '…'`, with a space
/// first; `None` when the column is not there.
fn column_rest(create: &str, name: &str) -> Option<String> {
    let quoted = quote_ident(name);
    let line = create
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(&format!("{quoted} ")))?;
    let after = line[quoted.len()..].trim_end().trim_end_matches(',');
    let after = after.trim_start();
    // The type: up to the first space outside parentheses and quotes, with
    // its `unsigned` / `zerofill`, which a wider type does not keep.
    let (mut depth, mut quote, mut end) = (0i32, false, after.len());
    for (i, ch) in after.char_indices() {
        match ch {
            '\'' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth -= 1,
            ' ' if !quote && depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let mut rest = &after[end..];
    loop {
        let t = rest.trim_start();
        let word = t.split(' ').next().unwrap_or("");
        if ["unsigned", "signed", "zerofill"].contains(&word.to_ascii_lowercase().as_str()) {
            rest = &t[word.len()..];
        } else {
            break;
        }
    }
    let rest = rest.trim();
    Some(if rest.is_empty() {
        String::new()
    } else {
        format!(" {rest}")
    })
}

#[cfg(test)]
mod tests {
    use super::column_rest;

    #[test]
    fn a_column_keeps_what_its_definition_says_besides_its_type() {
        let create = "CREATE TABLE `t` (\n  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,\n  \
            `na``me` varchar(10) COLLATE utf8mb4_bin DEFAULT 'a b' COMMENT 'pipeline-cli field: x',\n  \
            `e` enum('a b','c') DEFAULT NULL,\n  `n` decimal(10,2) DEFAULT NULL\n) ENGINE=InnoDB";
        let cases = [
            ("id", Some(" NOT NULL AUTO_INCREMENT")),
            (
                "na`me",
                Some(" COLLATE utf8mb4_bin DEFAULT 'a b' COMMENT 'pipeline-cli field: x'"),
            ),
            ("e", Some(" DEFAULT NULL")),
            ("n", Some(" DEFAULT NULL")),
            ("nope", None),
        ];
        for (name, want) in cases {
            assert_eq!(column_rest(create, name).as_deref(), want, "{name}");
        }
    }
}
