//! `--checkpoint`, `--restart` and `--checkpoint-every`: a run that can be
//! stopped at any moment and resumed, and what it cannot be combined with.

use std::path::PathBuf;

use crate::config::{CheckpointConfig, Config, OutputPath, SinkConfig, TableLoad};
use crate::error::PipelineError;

use super::resolve::{duration_flag, Slice};

/// Resumable runs.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct CheckpointFlags {
    /// Make the run resumable: record in PATH, as batches commit, which
    /// rows are done. A run killed at any moment (SIGKILL, Ctrl+C, a
    /// drained node) and started again with the same flags goes on from
    /// there: rows already done are skipped (counted as resumed, not
    /// read), and the output equals one uninterrupted run's, with no row
    /// twice, even in a MySQL table without a key. A JSON-lines output's
    /// `.partial` is kept and cut back to its last batch done. A complete
    /// run removes PATH. A checkpoint of another job, or of an input file
    /// that changed since, is refused (exit 2; --restart starts over). One
    /// run at a time: PATH.lock is held (exit 75 for another).
    /// `{slice}` in PATH as in --state-file. Example: --checkpoint /var/lib/pipeline/orders.checkpoint
    #[arg(long, value_name = "PATH", help_heading = "Scheduled runs")]
    pub checkpoint: Option<PathBuf>,

    /// With --checkpoint: discard the checkpoint there is and start the job
    /// from the beginning. Example: --checkpoint orders.checkpoint --restart
    #[arg(long, help_heading = "Scheduled runs")]
    pub restart: bool,

    /// With --checkpoint: longest time between two writes of the checkpoint
    /// while batches commit (each write is one small file, synced). A MySQL
    /// batch records its rows itself, so this bounds what a resumed run
    /// reads again, never what it writes twice. Example: --checkpoint-every 5s
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        help_heading = "Scheduled runs"
    )]
    pub checkpoint_every: String,
}

impl CheckpointFlags {
    /// `--checkpoint` into `config` (the rest of it already resolved);
    /// refuses what a resumed run could not continue.
    pub(super) fn resolve(
        &self,
        config: &mut Config,
        slice: Slice,
        output_given: Option<&str>,
    ) -> Result<(), PipelineError> {
        let every = duration_flag("--checkpoint-every", &self.checkpoint_every)?;
        let Some(given) = &self.checkpoint else {
            if self.restart {
                return Err(PipelineError::Config(
                    "--restart needs --checkpoint PATH: it discards that checkpoint".into(),
                ));
            }
            return Ok(());
        };
        let changing = ["{date}", "{time}", "{run_id}"];
        let text = given.to_string_lossy();
        if changing.iter().any(|p| text.contains(p)) {
            return Err(PipelineError::Config(format!(
                "--checkpoint '{text}' names another file on every run ({{date}}, {{time}} or {{run_id}}): a run could never find the checkpoint to resume; use a fixed path ({{slice}} is fine)"
            )));
        }
        if let Some(reason) = refused_with(config, output_given) {
            return Err(PipelineError::Config(format!(
                "--checkpoint cannot be used {reason}; leave out one of the two"
            )));
        }
        let path = slice
            .path("--checkpoint", Some(given))?
            .expect("a path given");
        // Two runs of one job at once would both go on from the same
        // point: the checkpoint's name with .lock lets one run at a time
        // (exit 75 for the other), whatever --lock-file says.
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        config.checkpoint = Some(CheckpointConfig {
            lock: lock.into(),
            path,
            restart: self.restart,
            every,
        });
        Ok(())
    }
}

/// Why a run configured as `config` cannot be resumed, if it cannot.
fn refused_with(config: &Config, output_given: Option<&str>) -> Option<String> {
    if config.limit.is_some() {
        return Some(
            "with --limit: a run cut short on purpose is not the whole job a checkpoint follows"
                .into(),
        );
    }
    if config.source.state_file().is_some() {
        return Some("with --state-file: an incremental run already starts where the last one ended; a checkpoint is for one long load".into());
    }
    match &config.sink {
        SinkConfig::File(f) if f.output == OutputPath::Stdout => {
            return Some("with --output-file -: what went to standard output cannot be taken back; write a file".into())
        }
        SinkConfig::File(_)
            if output_given
                .is_some_and(|o| ["{date}", "{time}", "{run_id}"].iter().any(|p| o.contains(p))) =>
        {
            return Some("with {date}, {time} or {run_id} in --output-file: a resumed run must go on writing the same file".into())
        }
        SinkConfig::Mysql(m) if m.table_load != TableLoad::Upsert => {
            return Some("with --load-mode replace or truncate: the table is refilled whole by one run; load with --load-mode upsert (the default) to resume".into())
        }
        SinkConfig::Mysql(m) if m.delete_missing.is_some() => {
            return Some("with --delete-missing: its full read must see every key in one run".into())
        }
        _ => {}
    }
    None
}
