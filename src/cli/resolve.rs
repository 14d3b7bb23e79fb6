//! What the flag groups share on their way to a validated
//! [`Config`](crate::config::Config): number, duration and label checks
//! that name the flag, `{slice}` in paths, and a file source's inputs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::PipelineError;

mod inputs;
pub(super) use inputs::{inputs_of, parse_shard};

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
    /// `path` with its placeholders replaced ([`expand`]): `{slice}` by
    /// the slice this process reads (a `{slice}` without one is a
    /// mistake), `{date}`, `{time}` and `{run_id}` by this run's ([`stamp`]).
    pub(super) fn path(
        self,
        flag: &str,
        path: Option<&Path>,
    ) -> Result<Option<PathBuf>, PipelineError> {
        let Some(path) = path else {
            return Ok(None);
        };
        let (date, time) = stamp();
        let stamp = Stamp {
            date,
            time,
            run_id: crate::report::run_id(),
        };
        expand(flag, path, self.0, &stamp).map(Some)
    }
}

/// This run's date and time (UTC), taken once: every path of a run has
/// the same `{date}` and `{time}`.
fn stamp() -> (&'static str, &'static str) {
    static STAMP: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (date, time) = STAMP.get_or_init(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let now = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default();
        (
            now.format("%Y-%m-%d").to_string(),
            now.format("%H%M%S").to_string(),
        )
    });
    (date, time)
}

/// What the time placeholders of a path become.
pub(super) struct Stamp<'a> {
    /// `{date}`: YYYY-MM-DD, UTC.
    pub(super) date: &'a str,
    /// `{time}`: HHMMSS, UTC.
    pub(super) time: &'a str,
    /// `{run_id}`: 16 hex digits, this run's alone.
    pub(super) run_id: &'a str,
}

/// The placeholders a path may hold.
const PLACEHOLDERS: [&str; 4] = ["{slice}", "{date}", "{time}", "{run_id}"];

/// The flags whose path is the same on every run (what one run leaves,
/// the next finds): no `{date}`, `{time}` or `{run_id}` in them.
const SAME_EVERY_RUN: [(&str, &str); 3] = [
    (
        "--state-file",
        "the next run would not find what this one saves",
    ),
    ("--lock-file", "two runs at once would lock different files"),
    (
        "--metrics-textfile",
        "node_exporter would read every run's file, the same series in each",
    ),
];

/// `path` (of `flag`) with `{slice}` replaced by `slice`'s I and `{date}`,
/// `{time}`, `{run_id}` by `stamp`'s. A `{name}` of letters that is none of
/// them is refused (a misspelt placeholder would be a fixed name, each
/// run overwriting the last one's file), as are the time placeholders in a
/// path that must be the same on every run.
pub(super) fn expand(
    flag: &str,
    path: &Path,
    slice: Option<(u32, u32)>,
    stamp: &Stamp,
) -> Result<PathBuf, PipelineError> {
    let text = path.to_string_lossy();
    if !text.contains('{') {
        return Ok(path.to_path_buf());
    }
    let cfg = PipelineError::Config;
    if let Some(bad) = unknown_placeholder(&text) {
        return Err(cfg(format!(
            "{flag} '{text}': {bad} is not a placeholder; a path may hold {}",
            PLACEHOLDERS.join(", ")
        )));
    }
    if let Some((_, why)) = SAME_EVERY_RUN.iter().find(|(f, _)| *f == flag) {
        if let Some(p) = PLACEHOLDERS[1..].iter().find(|p| text.contains(*p)) {
            return Err(cfg(format!(
                "{flag} '{text}' contains {p}: it must be the same file on every run ({why}); remove {p}"
            )));
        }
    }
    let mut out = text
        .replace("{date}", stamp.date)
        .replace("{time}", stamp.time)
        .replace("{run_id}", stamp.run_id);
    if out.contains("{slice}") {
        match slice {
            Some((id, _)) => out = out.replace("{slice}", &id.to_string()),
            None => return Err(cfg(format!(
                "{flag} '{text}' contains {{slice}} but neither --es-slice-id nor --input-shard says which slice this process reads"
            ))),
        }
    }
    Ok(PathBuf::from(out))
}

/// The first `{name}` in `text` whose name is made of lower-case letters
/// and `_` and is not a placeholder.
fn unknown_placeholder(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        if let Some(end) = after.find('}') {
            let name = &after[..end];
            let word =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            let whole = format!("{{{name}}}");
            if word && !PLACEHOLDERS.contains(&whole.as_str()) {
                return Some(whole);
            }
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(date: &'a str, time: &'a str, run_id: &'a str) -> Stamp<'a> {
        Stamp { date, time, run_id }
    }

    #[test]
    fn dated_paths_of_two_days_differ_and_keep_their_format() {
        let day1 = at("2026-12-04", "235959", "00000000000000aa");
        let day2 = at("2026-12-05", "000001", "00000000000000bb");
        let p = Path::new("out/orders-{date}.jsonl");
        let a = expand("--output-file", p, None, &day1).unwrap();
        let b = expand("--output-file", p, None, &day2).unwrap();
        assert_eq!(a, Path::new("out/orders-2026-12-04.jsonl"));
        assert_eq!(b, Path::new("out/orders-2026-12-05.jsonl"));
        let p = Path::new("out/{date}/{time}-{run_id}.{slice}.jsonl");
        assert_eq!(
            expand("--dead-letter", p, Some((3, 4)), &day1).unwrap(),
            Path::new("out/2026-12-04/235959-00000000000000aa.3.jsonl")
        );
        // A path without braces is kept as it is.
        let plain = Path::new("out/orders.jsonl");
        assert_eq!(expand("--output-file", plain, None, &day1).unwrap(), plain);
    }

    #[test]
    fn misspelt_and_misplaced_placeholders_are_refused() {
        let s = at("2026-12-04", "120000", "00000000000000aa");
        for (flag, path, says) in [
            (
                "--output-file",
                "o-{data}.jsonl",
                "{data} is not a placeholder",
            ),
            (
                "--dead-letter",
                "{run-id}x{Date}{runid}",
                "{runid} is not a placeholder",
            ),
            (
                "--state-file",
                "s-{date}.state",
                "--state-file 's-{date}.state' contains {date}",
            ),
            ("--lock-file", "l-{run_id}", "contains {run_id}"),
            ("--metrics-textfile", "m-{time}.prom", "contains {time}"),
            (
                "--output-file",
                "o-{slice}.jsonl",
                "contains {slice} but neither",
            ),
        ] {
            let e = expand(flag, Path::new(path), None, &s)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{flag} {path}: {e}");
        }
        // Braces that hold no placeholder's kind of name stay as they are.
        for path in ["a{1}.jsonl", "a{X}.jsonl", "{}.jsonl"] {
            assert_eq!(
                expand("--output-file", Path::new(path), None, &s).unwrap(),
                Path::new(path)
            );
        }
        // {slice} in a path that is the same on every run is fine.
        assert_eq!(
            expand("--state-file", Path::new("s.{slice}"), Some((1, 2)), &s).unwrap(),
            Path::new("s.1")
        );
    }
}
