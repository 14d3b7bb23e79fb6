//! What the flag groups share on their way to a validated
//! [`Config`](crate::config::Config): number, duration and label checks
//! that name the flag, `{slice}` in paths, and a file source's inputs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::PipelineError;

mod inputs;
pub(super) use inputs::{inputs, parse_shard};

pub(super) fn positive_u64(flag: &str, n: u64) -> Result<u64, PipelineError> {
    if n == 0 {
        return Err(PipelineError::Config(format!("{flag} must be at least 1")));
    }
    Ok(n)
}

/// A duration flag (`30s`, `5m`, …) that must be more than zero.
pub(super) fn duration_flag(flag: &str, text: &str) -> Result<Duration, PipelineError> {
    let d = crate::retry::parse_duration(text)
        .map_err(|e| PipelineError::Config(format!("{flag}: {e}")))?;
    if d.is_zero() {
        return Err(PipelineError::Config(format!("{flag} must be more than 0")));
    }
    Ok(d)
}

pub(super) fn positive(flag: &str, n: usize) -> Result<usize, PipelineError> {
    if n == 0 {
        return Err(PipelineError::Config(format!("{flag} must be at least 1")));
    }
    Ok(n)
}

/// A label value or grouping key: letters, digits, `_`, `-`, `.` and `:`.
pub(super) fn label_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// The slice this process reads, I of N (`--es-slice-id` of `--es-slices`,
/// or `--input-shard I/N`), if any.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slice(pub(super) Option<(u32, u32)>);

impl Slice {
    /// `path` with `{slice}` replaced by the slice this process reads; a
    /// `{slice}` without one is a mistake.
    pub(super) fn path(
        self,
        flag: &str,
        path: Option<&Path>,
    ) -> Result<Option<PathBuf>, PipelineError> {
        let Some(path) = path else {
            return Ok(None);
        };
        let text = path.to_string_lossy();
        if !text.contains("{slice}") {
            return Ok(Some(path.to_path_buf()));
        }
        match self.0 {
            Some((id, _)) => Ok(Some(PathBuf::from(text.replace("{slice}", &id.to_string())))),
            None => Err(PipelineError::Config(format!(
                "{flag} '{text}' contains {{slice}} but neither --es-slice-id nor --input-shard says which slice this process reads; add one of them"
            ))),
        }
    }
}
