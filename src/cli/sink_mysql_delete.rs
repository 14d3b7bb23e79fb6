//! The flags of `--delete-missing` (a part of the MySQL sink's flags) and
//! the combinations it refuses.

use crate::config::{Config, DeleteMissing, MaxDelete, SinkConfig, DEFAULT_MAX_DELETE};
use crate::error::PipelineError;

/// `--delete-missing` and its bound.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct DeleteFlags {
    /// After a full read, delete the table's rows whose key the run did not
    /// see: the rows the source no longer has.
    ///
    /// Needs a key (the table's primary key, or --db-key) and a run that
    /// reads everything: refused with --limit, --es-since-field/--state-file,
    /// --es-slice-id and --input-shard. Nothing is deleted when the run is
    /// interrupted or fails, or when a record failed; more than --max-delete
    /// rows to delete fails the run (exit 1) and deletes none. See
    /// docs/mysql.md. Example: --delete-missing --max-delete 5%
    #[arg(long, help_heading = "MySQL sink")]
    pub delete_missing: bool,

    /// The most rows --delete-missing may delete in one run: a number of
    /// rows, or a percentage of the table's rows before the delete. A run
    /// that would delete more deletes nothing and exits 1, so a source that
    /// came back nearly empty does not empty the table. With --load-mode
    /// replace, the most rows the new table may have fewer than the old
    /// one (more: the old table stays, exit 1). [default: 10%]
    /// Example: --max-delete 500, --max-delete 100% (no bound)
    #[arg(long, value_name = "N|P%", help_heading = "MySQL sink")]
    pub max_delete: Option<String>,
}

impl DeleteFlags {
    /// The settings of `--delete-missing`, when it is given; `replacing`:
    /// the run replaces the table (`--load-mode replace`), which
    /// `--max-delete` bounds too.
    pub(super) fn resolve(&self, replacing: bool) -> Result<Option<DeleteMissing>, PipelineError> {
        if !self.delete_missing {
            if self.max_delete.is_some() && !replacing {
                return Err(PipelineError::Config(
                    "--max-delete bounds --delete-missing and --load-mode replace; add --delete-missing (or --load-mode replace), or remove --max-delete".into(),
                ));
            }
            return Ok(None);
        }
        Ok(Some(DeleteMissing {
            max_delete: self.bound()?,
        }))
    }

    /// `--max-delete`, or its default.
    pub(super) fn bound(&self) -> Result<MaxDelete, PipelineError> {
        let max = self.max_delete.as_deref().unwrap_or(DEFAULT_MAX_DELETE);
        MaxDelete::parse(max).map_err(PipelineError::Config)
    }
}

/// Refuses `--delete-missing` where the run does not see every key of its
/// source, or the table has no key to compare.
pub(super) fn refuse_combinations(config: &Config, no_key: bool) -> Result<(), PipelineError> {
    let SinkConfig::Mysql(m) = &config.sink else {
        return Ok(());
    };
    if m.delete_missing.is_none() {
        return Ok(());
    }
    let why = if config.limit.is_some() {
        Some("--limit reads only part of the source")
    } else if config.source.state_file().is_some() {
        Some("--es-since-field/--state-file read only what changed since the last run (for deletions there see \"soft deletes\" in docs/mysql.md)")
    } else if config.slice.is_some() {
        Some("--es-slice-id/--input-shard: this process reads one slice, so it does not see the other slices' keys")
    } else if no_key {
        Some("--no-key: the table has no key to compare")
    } else {
        None
    };
    match why {
        Some(why) => Err(PipelineError::Config(format!(
            "--delete-missing needs a full read of the source into a keyed table: {why}; remove --delete-missing or that flag"
        ))),
        None => Ok(()),
    }
}
