//! How a run ended: the outcome and the one summary line (the `app` module
//! maps it to the exit code).

use std::time::Duration;

use crate::error::PipelineError;
use crate::record::Counts;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything read was written.
    Success,
    /// The run finished, but some records failed (see the dead-letter file).
    RecordsFailed,
    /// The run finished with failed records within `--accept-errors`: a
    /// success (exit 0), the rejects still counted and kept.
    FailuresAccepted,
    /// The run was ended by an error.
    Failed,
    /// The run was stopped by a signal (its number).
    Interrupted(i32),
}

/// What a run did, for the summary line and the exit code.
#[derive(Debug)]
pub struct RunSummary {
    /// How it ended.
    pub outcome: Outcome,
    /// The record counts.
    pub counts: Counts,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// The error that ended the run, if one did.
    pub error: Option<PipelineError>,
    /// Where the output is (or was left), from the sink.
    pub output_note: Option<String>,
    /// What became of `--state-file` when records failed, and of the
    /// input files it records (skipped, moved).
    pub state_note: Option<String>,
    /// The dead-letter file, when records failed and one was given.
    pub dead_letter: Option<std::path::PathBuf>,
    /// Failed records the dead-letter file could not take (it failed).
    pub dead_letter_lost: u64,
}

impl RunSummary {
    /// The one-line summary printed on stderr.
    pub fn line(&self) -> String {
        let c = &self.counts;
        let status = match self.outcome {
            Outcome::Success => "completed".to_string(),
            Outcome::RecordsFailed => "completed with failed records".to_string(),
            Outcome::FailuresAccepted => {
                "completed with failed records, within --accept-errors".to_string()
            }
            Outcome::Failed => "failed".to_string(),
            Outcome::Interrupted(sig) => format!("interrupted by {}", signal_name(sig)),
        };
        let secs = self.elapsed.as_secs_f64();
        let mut line = format!(
            "{status}: read={} inserted={} updated={} skipped={} failed={} in_doubt={} in {:.2}s ({:.0} records/s)",
            c.read,
            c.inserted,
            c.updated,
            c.skipped,
            c.failed,
            c.in_doubt,
            secs,
            c.read as f64 / secs.max(1e-9)
        );
        if c.recovered > 0 {
            line.push_str(&format!(
                "; recovered={} records of earlier runs' prepared batches committed",
                c.recovered
            ));
        }
        if c.resumed > 0 {
            line.push_str(&format!(
                "; resumed={} rows an earlier run of the job had finished were skipped (--checkpoint)",
                c.resumed
            ));
        }
        if c.deleted > 0 {
            line.push_str(&format!(
                "; deleted={} rows the source no longer has (--delete-missing)",
                c.deleted
            ));
        }
        if let Some(note) = &self.output_note {
            line.push_str("; ");
            line.push_str(note);
        }
        if let Some(note) = &self.state_note {
            line.push_str("; ");
            line.push_str(note);
        }
        if c.in_doubt > 0 {
            line.push_str(&format!(
                "; {} records in doubt: their batch's commit was cut off and could not be checked (the next run commits it if it was prepared; do not replay them from the dead-letter file unless their xid was rolled back)",
                c.in_doubt
            ));
        }
        if c.failed + c.in_doubt > 0 {
            match &self.dead_letter {
                Some(p) if self.dead_letter_lost > 0 => line.push_str(&format!(
                    "; failed records in {}, except {} that could not be written there",
                    p.display(),
                    self.dead_letter_lost
                )),
                Some(p) => line.push_str(&format!("; failed records in {}", p.display())),
                None => line.push_str("; keep failed records with --dead-letter PATH"),
            }
        }
        line
    }
}

/// The conventional name of a signal number.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
