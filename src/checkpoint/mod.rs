//! Resumable runs (`--checkpoint PATH`): a run records, as its batches
//! commit, how far it is, so that a run started again with the same job
//! after a kill goes on from there and the output equals one uninterrupted
//! run's.
//!
//! Every row a source reads has an identity that does not change from one
//! run to the next: its stream (the file of a list, the slice of an index)
//! and its ordinal in that stream (1, 2, …, rows that could not be read
//! included). The [`Tracker`] follows the records from the source, through
//! the queue, to the batches that commit, and keeps per stream the ordinal
//! below which every row is done: the *frontier*. Batches commit out of
//! order with several workers, so it only moves over a contiguous prefix.
//! The checkpoint file holds the frontiers, what the source needs to go on
//! from them (a point in time and `search_after` values), the ranges done
//! beyond them, and for a file sink the length of its `.partial` at that
//! point. A MySQL batch also writes the ranges it holds into a table of its
//! own, in its own transaction (`pipeline_cli_checkpoint_batches`): a batch that committed
//! after the checkpoint file was last written is skipped too, so no record
//! is written twice, even in a table without a key.
//!
//! A resumed run reads its input again from its start (a file) or from the
//! saved position (an index) and skips every row already done: counted as
//! resumed (`pipeline_source_resumed_records`), never as read.

mod identity;
mod tracker;

pub use identity::{job_of, Identity};
pub use tracker::{Coverage, Tracker};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};

use crate::config::Config;
use crate::error::PipelineError;

/// The format of the file, named in it.
const FORMAT: &str = "pipeline-cli checkpoint 1";

/// What a resumed run starts from: per stream, what earlier runs finished.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Per stream: every ordinal up to this one is done.
    pub frontier: BTreeMap<u32, u64>,
    /// Per stream: where the source can go on from, and the ordinal of
    /// the last row before that point.
    pub state: BTreeMap<u32, (u64, Json)>,
    /// Per stream: ranges (inclusive) done beyond the frontier, sorted and
    /// merged.
    pub covered: BTreeMap<u32, Vec<(u64, u64)>>,
    /// The length of the file sink's `.partial` at the frontier.
    pub output_bytes: Option<u64>,
    /// A hash of the `.partial`'s last bytes before that length
    /// ([`tail_of`]): the file a resumed run writes on is this job's.
    pub output_tail: Option<String>,
    /// Records the earlier runs loaded, as the checkpoint says.
    pub loaded: u64,
    /// What the source as a whole goes on from (an index's point in time).
    pub source: Option<Json>,
    /// Records failed (and kept) among the rows done.
    pub failed: u64,
}

impl Resume {
    /// Adds ranges done (from the sink's own record of its batches).
    pub fn cover(&mut self, stream: u32, lo: u64, hi: u64) {
        let upto = self.frontier.get(&stream).copied().unwrap_or(0);
        if hi <= upto {
            return;
        }
        self.covered
            .entry(stream)
            .or_default()
            .push((lo.max(upto + 1), hi));
    }

    /// Sorts and merges the covered ranges.
    pub fn settle(&mut self) {
        for ranges in self.covered.values_mut() {
            ranges.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
            for &(lo, hi) in ranges.iter() {
                match merged.last_mut() {
                    Some(last) if lo <= last.1 + 1 => last.1 = last.1.max(hi),
                    _ => merged.push((lo, hi)),
                }
            }
            *ranges = merged;
        }
    }

    /// True when every row of `lo..=hi` of `stream` is done already (the
    /// covered ranges settled).
    pub fn is_done(&self, stream: u32, lo: u64, hi: u64) -> bool {
        hi <= self.frontier.get(&stream).copied().unwrap_or(0)
            || self.covered.get(&stream).is_some_and(|r| {
                let at = r.partition_point(|&(_, b)| b < lo);
                r.get(at).is_some_and(|&(a, b)| a <= lo && hi <= b)
            })
    }

    /// The filter of stream `stream`'s rows.
    pub fn filter(&self, stream: u32) -> Filter {
        Filter {
            upto: self.frontier.get(&stream).copied().unwrap_or(0),
            ranges: self.covered.get(&stream).cloned().unwrap_or_default(),
            next: 0,
        }
    }

    /// Rows of every stream an earlier run finished (at most: ranges
    /// count whole).
    pub fn done_rows(&self) -> u64 {
        self.frontier.values().sum::<u64>()
            + self
                .covered
                .values()
                .flatten()
                .map(|(lo, hi)| hi - lo + 1)
                .sum::<u64>()
    }
}

/// Which rows of one stream a resumed run skips: ordinals come in rising
/// order, so a cursor walks the ranges once.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    upto: u64,
    ranges: Vec<(u64, u64)>,
    next: usize,
}

impl Filter {
    /// True when row `ordinal` was done by an earlier run.
    #[inline]
    pub fn skip(&mut self, ordinal: u64) -> bool {
        if ordinal <= self.upto {
            return true;
        }
        while self.next < self.ranges.len() && self.ranges[self.next].1 < ordinal {
            self.next += 1;
        }
        self.next < self.ranges.len() && self.ranges[self.next].0 <= ordinal
    }

    /// True when nothing is left to skip from `ordinal` on.
    pub fn past(&self, ordinal: u64) -> bool {
        ordinal > self.upto && self.ranges.last().is_none_or(|r| r.1 < ordinal)
    }
}

/// A job its checkpoint says completed.
#[derive(Debug, Clone)]
pub struct Completed {
    /// What a run of it says.
    pub note: String,
    /// Records it failed, in all its runs.
    pub failed: u64,
    /// Those failures were within `--accept-errors`.
    pub accepted: bool,
}

/// The checkpoint of a run about to start: a new one, or the one it
/// resumes.
pub struct Start {
    /// The checkpoint's id (kept across the runs that resume it).
    pub id: String,
    /// What the job is, in words and as a hash.
    pub identity: Identity,
    /// What to resume from; `None`: from the start.
    pub resume: Option<Resume>,
    /// The checkpoint says this very job completed: nothing to do (a run
    /// killed right after completing is not run a second time).
    pub complete: Option<Completed>,
    /// The id of a checkpoint discarded (`--restart`, or a completed job
    /// followed by a new one): what a sink recorded under it goes.
    pub discarded: Option<String>,
}

fn config_error(path: &Path, what: String) -> PipelineError {
    PipelineError::Config(format!(
        "--checkpoint '{}': {what} (check that it is this job's path)",
        path.display()
    ))
}

/// Reads the checkpoint at `path` for the job `config` describes: a new
/// one when there is none (or `--restart`), the one to resume from when it
/// is this job's and its inputs are as they were; refused (exit 2) when it
/// is another job's or an input changed.
pub fn start(config: &Config, path: &Path, restart: bool) -> Result<Start, PipelineError> {
    let identity = job_of(config)?;
    let text = match crate::safe_fs::read_own(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(config_error(path, format!("cannot be read: {e}"))),
    };
    let fresh = |discarded: Option<String>| Start {
        id: new_id(),
        identity: identity.clone(),
        resume: None,
        complete: None,
        discarded,
    };
    let Some(text) = text else {
        return Ok(fresh(None));
    };
    let saved: Option<Json> = serde_json::from_str(&text).ok();
    let old_id = saved
        .as_ref()
        .and_then(|s| s["id"].as_str())
        .map(str::to_string);
    if restart {
        tracing::warn!(
            "--restart: the checkpoint {} is discarded and the job starts from the beginning",
            path.display()
        );
        return Ok(fresh(old_id));
    }
    let saved = match saved {
        Some(s) if s["format"] == FORMAT && intact(&s) => s,
        Some(s) if s["format"] != FORMAT => {
            return Err(config_error(
                path,
                "is not a checkpoint of this version of pipeline-cli; --restart to start over"
                    .into(),
            ))
        }
        _ => {
            return Err(config_error(
                path,
                "is damaged or was edited (it does not match its own check sum); remove it, or --restart to start over".into(),
            ))
        }
    };
    if saved["complete"] == true {
        // The job it followed completed: this very job again (the same
        // flags, its inputs as they were) has nothing to do; anything else
        // is a new job.
        let job = saved["job"] == identity.hash;
        if job && identity.check_inputs(&saved["inputs"], path).is_ok() {
            return Ok(Start {
                complete: Some(Completed {
                    note: format!(
                        "nothing to do: the job of --checkpoint '{}' completed (run it again with --restart)",
                        path.display()
                    ),
                    failed: saved["failed"].as_u64().unwrap_or(0),
                    accepted: saved["accepted"] == true,
                }),
                ..fresh(None)
            });
        }
        // Touched, copied again, its owner changed: the same content, as
        // far as can be told cheaply. New rows or none? Not guessed.
        if job && identity.same_content(&saved["inputs"]) {
            return Err(config_error(
                path,
                "says its job completed, and its input looks the same (size and first 64 KiB) but was touched or replaced since; --restart loads it again if it holds new rows, otherwise there is nothing to do".into(),
            ));
        }
        tracing::info!(
            "the job of checkpoint {} completed; this is a new job, which starts from the beginning",
            path.display()
        );
        return Ok(fresh(old_id));
    }
    if saved["job"] != identity.hash {
        let was = saved["job_text"].as_str().unwrap_or("another job");
        return Err(config_error(
            path,
            format!(
                "was written by another job ({}), not this one ({}); --restart to start this job over and discard it, or give this job its own --checkpoint",
                identity::differs(was, &identity.text),
                identity::differs(&identity.text, was),
            ),
        ));
    }
    identity.check_inputs(&saved["inputs"], path)?;
    let resume = parse_resume(&saved).ok_or_else(|| {
        config_error(
            path,
            "is damaged (its positions cannot be read); --restart to start over".into(),
        )
    })?;
    let id = saved["id"].as_str().unwrap_or_default().to_string();
    if id.is_empty() {
        return Err(config_error(
            path,
            "is damaged (no id); --restart to start over".into(),
        ));
    }
    Ok(Start {
        id,
        identity,
        resume: Some(resume),
        complete: None,
        discarded: None,
    })
}

/// A hash of the last (at most 4 KiB) bytes of `path` before byte `len`.
pub fn tail_of(path: &Path, len: u64) -> std::io::Result<String> {
    use std::os::unix::fs::FileExt;
    let from = len.saturating_sub(4096);
    let mut buf = vec![0u8; (len - from) as usize];
    std::fs::File::open(path)?.read_exact_at(&mut buf, from)?;
    Ok(format!("{:016x}", identity::fnv(&buf)))
}

/// The check sum of a checkpoint's content (all but `check`).
fn check_sum(saved: &Json) -> String {
    let mut body = saved.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("check");
    }
    format!("{:016x}", identity::fnv(body.to_string().as_bytes()))
}

/// True when a checkpoint's content matches its check sum.
fn intact(saved: &Json) -> bool {
    saved["check"].as_str() == Some(check_sum(saved).as_str())
}

/// A new checkpoint id: the id of the run that starts it (16 hex digits).
fn new_id() -> String {
    crate::report::run_id().to_string()
}

fn parse_resume(saved: &Json) -> Option<Resume> {
    let mut r = Resume {
        output_bytes: saved["partial_length"].as_u64(),
        output_tail: saved["partial_tail"].as_str().map(str::to_string),
        loaded: saved["loaded"].as_u64().unwrap_or(0),
        source: Some(saved["source"].clone()).filter(|s| !s.is_null()),
        failed: saved["failed"].as_u64().unwrap_or(0),
        ..Resume::default()
    };
    for (s, at) in saved["streams"].as_object()? {
        let s: u32 = s.parse().ok()?;
        r.frontier.insert(s, at["ordinal"].as_u64()?);
        if let Some(state) = at.get("state").filter(|v| !v.is_null()) {
            r.state
                .insert(s, (state["ordinal"].as_u64()?, state["at"].clone()));
        }
    }
    for (s, ranges) in saved["covered"].as_object()? {
        let s: u32 = s.parse().ok()?;
        for range in ranges.as_array()? {
            r.cover(s, range[0].as_u64()?, range[1].as_u64()?);
        }
    }
    r.settle();
    Some(r)
}

/// The text of a checkpoint.
pub(crate) fn render(header: &Header, body: Json) -> Vec<u8> {
    let mut all = json!({
        "format": FORMAT,
        "id": header.id,
        "job": header.identity.hash,
        "job_text": header.identity.text,
        "inputs": header.identity.inputs,
        "run_id": crate::report::run_id(),
        "written_at_unix_ms": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    });
    if let (Json::Object(all), Json::Object(body)) = (&mut all, body) {
        all.extend(body);
    }
    all["check"] = json!(check_sum(&all));
    let mut text = serde_json::to_vec_pretty(&all).unwrap_or_default();
    text.push(b'\n');
    text
}

/// What every write of one checkpoint starts with.
#[derive(Debug, Clone)]
pub struct Header {
    /// Where it is written.
    pub path: PathBuf,
    /// Its id.
    pub id: String,
    /// The job.
    pub identity: Identity,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_skips_the_frontier_and_the_ranges_beyond_it() {
        let mut r = Resume::default();
        r.frontier.insert(0, 10);
        r.cover(0, 5, 12);
        r.cover(0, 20, 22);
        r.cover(0, 13, 14);
        r.cover(1, 3, 4);
        r.settle();
        assert_eq!(r.covered[&0], [(11, 14), (20, 22)]);
        let mut f = r.filter(0);
        let skipped: Vec<u64> = (1..=25).filter(|&o| f.skip(o)).collect();
        assert_eq!(
            skipped,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 20, 21, 22]
        );
        assert!(f.past(23));
        assert!(!r.filter(0).past(21));
        let mut g = r.filter(1);
        assert!(!g.skip(2) && g.skip(3) && g.skip(4) && !g.skip(5));
        assert_eq!(r.done_rows(), 10 + 4 + 3 + 2);
    }
}
