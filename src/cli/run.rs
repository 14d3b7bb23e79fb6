//! The flags every run has, whatever its source and sink: retries,
//! batching, the error budget and `--limit`.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, ErrorAllowance};
use crate::error::PipelineError;
use crate::flatten::FlattenConfig;
use crate::retry::RetryPolicy;

use super::resolve::{positive, Slice};

/// Retries, batching and the error budget.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct RunFlags {
    /// How long failed requests and batches are retried (lost connection,
    /// deadlock, lock wait timeout, 429/502/503/504, timeouts), with
    /// exponential backoff of up to 10 s between attempts (each wait drawn
    /// between half and all of it, so sliced runs do not retry in step).
    /// Durations: 500ms, 30s, 1m30s, 1.5h, 2d; a bare number is seconds.
    /// Example: --retry-for 15m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_RETRY_FOR,
        help_heading = "Errors"
    )]
    pub retry_for: String,

    /// How long a server that cannot be reached when the run starts
    /// (Elasticsearch or MySQL: refused, timed out, reset) is tried again
    /// before the run exits 2; never longer than --retry-for. A server
    /// that answered once and is lost mid-run is waited for all of
    /// --retry-for. --check is bounded by it too. Example: --start-retry-for 2m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_START_RETRY_FOR,
        help_heading = "Errors"
    )]
    pub start_retry_for: String,

    /// At most N retries of one request or batch (within --retry-for).
    /// Example: --max-retries 10
    #[arg(long, value_name = "N", help_heading = "Errors")]
    pub max_retries: Option<u32>,

    /// Records per batch written by a sink worker (default: 1000 for the file
    /// sink, 5000 for MySQL, where each batch is one transaction with a
    /// two-phase commit). Example: --batch-size 2000
    #[arg(long, value_name = "N", help_heading = "Batching")]
    pub batch_size: Option<usize>,

    /// Longest a partial batch waits for more records before it is written, in
    /// milliseconds. Example: --batch-timeout-ms 250
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::config::DEFAULT_BATCH_TIMEOUT_MS,
        help_heading = "Batching"
    )]
    pub batch_timeout_ms: u64,

    /// Records buffered between the source and the sinks; a full queue pauses
    /// the source, so memory stays flat. Example: --queue-size 20000
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::config::DEFAULT_QUEUE_SIZE,
        help_heading = "Batching"
    )]
    pub queue_size: usize,

    /// Sink workers writing in parallel (default: 1 for the file sink, 2 for
    /// MySQL, each with its own connection; 1 while --create-table has a
    /// table to create). File lines stay in input order with any number:
    /// workers encode batches in parallel and write them in turn.
    /// Example: --workers 4
    #[arg(long, value_name = "N", help_heading = "Batching")]
    pub workers: Option<usize>,

    /// Keep every rejected record in this file.
    ///
    /// Every rejected record is appended, with its line number, raw text and
    /// the reason, as one JSON line. `{date}`, `{time}` and `{run_id}` in
    /// PATH as in --output-file. Example: --dead-letter 'rejected-{date}.jsonl'
    #[arg(long, value_name = "PATH", help_heading = "Errors")]
    pub dead_letter: Option<PathBuf>,

    /// Stop reading once N records have failed.
    ///
    /// The run then fails. Example: --max-errors 100
    #[arg(long, value_name = "N", help_heading = "Errors")]
    pub max_errors: Option<u64>,

    /// A completed run whose failed records stay within N (or P% of the
    /// records read) exits 0 and counts as a success; the rejects are still
    /// counted, logged and kept in --dead-letter. Example: --accept-errors 0.1%
    #[arg(long, value_name = "N|P%", help_heading = "Errors")]
    pub accept_errors: Option<String>,

    /// Read at most N records, then finish normally. Example: --limit 1000
    #[arg(long, value_name = "N", help_heading = "Errors")]
    pub limit: Option<u64>,

    /// Nested objects become fields (and columns) of their own:
    /// `geo.coordinates.lat` becomes `geo_coordinates_lat`. DEPTH limits the
    /// levels opened (default: all); deeper objects, arrays and empty objects
    /// stay JSON. A record where two fields flatten to one name fails (kept in
    /// --dead-letter as it was read, both names in the reason). CSV input has
    /// no nested objects: there it changes nothing. In --config:
    /// `flatten = true` or `flatten = 2`. Example: --flatten 2
    #[arg(long, value_name = "DEPTH", num_args = 0..=1, help_heading = "Records")]
    pub flatten: Option<Option<String>>,

    /// Put between an object's name and its member's name by --flatten
    /// (without --flatten it changes nothing). Example: --flatten-separator __
    #[arg(
        long,
        value_name = "SEP",
        default_value = crate::flatten::DEFAULT_SEPARATOR,
        help_heading = "Records"
    )]
    pub flatten_separator: String,
}

impl RunFlags {
    /// `--retry-for`, `--max-retries` and `--start-retry-for`.
    pub(super) fn retry_policy(&self) -> Result<RetryPolicy, PipelineError> {
        Ok(RetryPolicy {
            retry_for: crate::retry::parse_duration(&self.retry_for).map_err(|e| {
                PipelineError::Config(format!(
                    "--retry-for: {e}; give a duration such as 30s, 5m or 1h"
                ))
            })?,
            max_retries: self.max_retries,
            at_start: crate::retry::parse_duration(&self.start_retry_for).map_err(|e| {
                PipelineError::Config(format!(
                    "--start-retry-for: {e}; give a duration such as 30s, 5m or 1h"
                ))
            })?,
        })
    }

    /// Batch size, batch timeout, queue and workers into `config`; refuses
    /// `--max-errors 0`.
    pub(super) fn batching(&self, config: &mut Config) -> Result<(), PipelineError> {
        if let Some(n) = self.batch_size {
            config.batch_size = positive("--batch-size", n)?;
        }
        config.batch_timeout = Duration::from_millis(self.batch_timeout_ms.max(1));
        config.queue_size = positive("--queue-size", self.queue_size)?;
        if let Some(w) = self.workers {
            config.workers = positive("--workers", w)?;
        }
        if self.max_errors == Some(0) {
            return Err(PipelineError::Config(
                "--max-errors must be at least 1 (leave it out to never stop on errors)".into(),
            ));
        }
        Ok(())
    }

    /// Retries, the dead-letter file, the error budget and `--limit` into
    /// `config`.
    pub(super) fn errors(&self, config: &mut Config, slice: Slice) -> Result<(), PipelineError> {
        config.retry = self.retry_policy()?;
        config.dead_letter = slice.path("--dead-letter", self.dead_letter.as_deref())?;
        config.max_errors = self.max_errors;
        config.accept_errors = match &self.accept_errors {
            Some(text) => Some(parse_allowance(text).map_err(|e| {
                PipelineError::Config(format!(
                    "--accept-errors: {e}; see --help for the forms it takes"
                ))
            })?),
            None => None,
        };
        config.limit = self.limit;
        config.flatten = self.flatten()?;
        Ok(())
    }

    /// `--flatten [DEPTH]` and `--flatten-separator`.
    fn flatten(&self) -> Result<Option<FlattenConfig>, PipelineError> {
        // `true`/`false` for a --config file's `flatten = true`.
        let depth = match self.flatten.as_ref().map(|d| d.as_deref()) {
            None | Some(Some("false")) => return Ok(None),
            Some(None | Some("true" | "all")) => None,
            Some(Some(n)) => match n.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(PipelineError::Config(format!(
                        "--flatten: DEPTH must be a number of levels, at least 1, not '{n}' \
                         (leave it out to open every level)"
                    )))
                }
            },
        };
        if self.flatten_separator.is_empty() {
            return Err(PipelineError::Config(
                "--flatten-separator must not be empty".into(),
            ));
        }
        Ok(Some(FlattenConfig {
            depth,
            separator: self.flatten_separator.clone(),
        }))
    }
}

/// `--accept-errors`: `100` or `0.5%`.
fn parse_allowance(text: &str) -> Result<ErrorAllowance, String> {
    let t = text.trim();
    let bad = || format!("'{text}' is not a number of records (100) or a share of them (0.5%)");
    match t.strip_suffix('%') {
        Some(p) => {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(bad());
            }
            Ok(ErrorAllowance::Percent(p))
        }
        None => t.parse().map(ErrorAllowance::Count).map_err(|_| bad()),
    }
}
