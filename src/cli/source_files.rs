//! The flags of files loaded once (`--state-file` with a CSV or NDJSON
//! source, `--changed-files`, `--after-load`) and their translation into a
//! [`FilesOnce`].

use std::path::{Path, PathBuf};

use crate::config::{AfterLoad, ChangedFiles, FilesOnce, InputPath};
use crate::error::PipelineError;

use super::resolve::Slice;

/// The flags of a file source that records the files it loads.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct FilesOnceFlags {
    /// With --state-file, a file loaded by an earlier run that has changed
    /// since (its size, modification time or first 64 KiB differ: a file
    /// that grew, or was written again under the same name): refuse (the
    /// default: exit 2 before anything is read, naming the file), reload
    /// (read it again whole: with MySQL, --db-key and --on-duplicate make
    /// that safe) or skip (leave it out, warning on every run).
    /// Example: --changed-files reload
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        help_heading = "Files loaded once"
    )]
    pub changed_files: Option<ChangedFiles>,

    /// With --state-file, what becomes of each input file once its records
    /// are committed (after the output is in place and the file recorded
    /// as loaded): keep (the default), move:DIR (into DIR, which must
    /// exist; never over a file there: `a.csv` becomes `a-1.csv`, `a-2.csv`
    /// …; across file systems by copy, sync and remove) or delete. A file
    /// an earlier run loaded but could not move or delete is moved or
    /// deleted by the next. Example: --after-load move:/data/done
    #[arg(
        long,
        value_name = "keep|move:DIR|delete",
        help_heading = "Files loaded once"
    )]
    pub after_load: Option<String>,
}

fn cfg(message: String) -> PipelineError {
    PipelineError::Config(message)
}

impl FilesOnceFlags {
    /// What a file source does with `--state-file` (`state`), reading
    /// `input`/`list` (given as `given` to `flag`) as slice `slice` of a
    /// sharded job, with `limit`.
    pub(super) fn resolve(
        &self,
        state: Option<&Path>,
        slice: Slice,
        limit: Option<u64>,
        (flag, given): (&str, &[String]),
        (input, files): (&InputPath, &[PathBuf]),
    ) -> Result<Option<FilesOnce>, PipelineError> {
        let Some(state) = state else {
            for (given, name) in [
                (self.changed_files.is_some(), "--changed-files"),
                (self.after_load.is_some(), "--after-load"),
            ] {
                if given {
                    return Err(cfg(format!(
                        "{name} needs --state-file PATH: that file records which files were loaded (e.g. --state-file /var/lib/pipeline/orders.loaded)"
                    )));
                }
            }
            return Ok(None);
        };
        if *input == InputPath::Stdin {
            return Err(cfg(format!(
                "--state-file records which files were loaded; {flag} - (standard input) is no file: read files, or leave out --state-file"
            )));
        }
        if slice.0.is_some_and(|(_, n)| n > 1) && !state.to_string_lossy().contains("{slice}") {
            return Err(cfg(format!(
                "--state-file '{}' would be shared by the shards of --input-shard; each shard keeps its own: put {{slice}} in the path (orders.{{slice}}.loaded)",
                state.display()
            )));
        }
        let state_file = slice.path("--state-file", Some(state))?.expect("a path");
        let after_load = parse_after_load(self.after_load.as_deref())?;
        for f in files {
            if std::fs::metadata(f).is_ok_and(|m| !m.is_file()) {
                return Err(cfg(format!(
                    "{flag} '{}' is not a regular file (a pipe, a device, a process substitution): --state-file cannot tell it apart on the next run; read it without --state-file",
                    f.display()
                )));
            }
            let link = f
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink());
            if link && after_load != AfterLoad::Keep {
                return Err(cfg(format!(
                    "{flag} '{}' is a symbolic link: --after-load would move or delete the link, not the file it names; give the file itself, or use --after-load keep",
                    f.display()
                )));
            }
        }
        if limit.is_some() && after_load != AfterLoad::Keep {
            return Err(cfg(
                "--after-load moves or deletes files once they are loaded; with --limit they are not all read: leave out --limit or use --after-load keep".into(),
            ));
        }
        check_patterns(flag, given, files, &state_file, &after_load)?;
        Ok(Some(FilesOnce {
            state_file,
            changed: self.changed_files.unwrap_or_default(),
            after_load,
        }))
    }
}

/// `--after-load keep|move:DIR|delete`.
fn parse_after_load(text: Option<&str>) -> Result<AfterLoad, PipelineError> {
    match text.map(str::trim) {
        None | Some("keep") => Ok(AfterLoad::Keep),
        Some("delete") => Ok(AfterLoad::Delete),
        Some(t) => match t.strip_prefix("move:") {
            Some(dir) if !dir.is_empty() => {
                let dir = PathBuf::from(dir);
                if !dir.is_dir() {
                    return Err(cfg(format!(
                        "--after-load move:{}: no such directory; create it first",
                        dir.display()
                    )));
                }
                Ok(AfterLoad::Move(dir))
            }
            _ => Err(cfg(format!(
                "--after-load '{t}' is not keep, move:DIR or delete (e.g. --after-load move:/data/done)"
            ))),
        },
    }
}

/// As glob() matches: `*` within one directory.
const MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// The patterns among the paths `given` to a file source (a path that
/// exists is that file, never a pattern).
fn patterns(given: &[String]) -> Vec<(&String, glob::Pattern)> {
    given
        .iter()
        .filter(|g| g.contains(['*', '?', '[']) && Path::new(g).symlink_metadata().is_err())
        .filter_map(|g| glob::Pattern::new(g).ok().map(|p| (g, p)))
        .collect()
}

/// With `--state-file`, no file the run writes (`written`: flag and path)
/// may be matched by a pattern of `given` (to `flag`): the next run would
/// load it as a new file, its own output among its input.
pub(super) fn check_written(
    flag: &str,
    given: &[String],
    written: &[(&str, &Path)],
) -> Result<(), PipelineError> {
    for (g, p) in &patterns(given) {
        if let Some((what, path)) = written.iter().find(|(_, w)| p.matches_path_with(w, MATCH)) {
            return Err(cfg(format!(
                "{what} '{}' is matched by {flag} '{g}': with --state-file the next run would load it as a new input file; write it to another directory",
                path.display()
            )));
        }
    }
    Ok(())
}

/// No pattern of `given` matches the state file, or a file moved into
/// the `--after-load` directory (one of `files` there): the next run would
/// read it as input.
fn check_patterns(
    flag: &str,
    given: &[String],
    files: &[PathBuf],
    state: &Path,
    after_load: &AfterLoad,
) -> Result<(), PipelineError> {
    if let AfterLoad::Move(dir) = after_load {
        same_place(dir, files)?;
    }
    for (g, p) in &patterns(given) {
        if p.matches_path_with(state, MATCH) {
            return Err(cfg(format!(
                "--state-file '{}' is matched by {flag} '{g}': the next run would read it as input; keep it in another directory",
                state.display()
            )));
        }
        let AfterLoad::Move(dir) = after_load else {
            continue;
        };
        if let Some(m) = files
            .iter()
            .filter_map(|f| f.file_name().map(|n| dir.join(n)))
            .find(|m| p.matches_path_with(m, MATCH))
        {
            return Err(cfg(format!(
                "--after-load move:{} puts files where {flag} '{g}' finds them ({}): they would be read again as new files; move them elsewhere",
                dir.display(),
                m.display()
            )));
        }
    }
    Ok(())
}

/// `--after-load move:DIR` into a directory an input file is in, however
/// DIR is spelt (`./in`, `in/.`, an absolute path, a link to it): compared
/// as real paths.
fn same_place(dir: &Path, files: &[PathBuf]) -> Result<(), PipelineError> {
    let Ok(real) = std::fs::canonicalize(dir) else {
        return Ok(());
    };
    let parent_of = |f: &PathBuf| {
        let parent = f.parent().filter(|p| !p.as_os_str().is_empty());
        std::fs::canonicalize(parent.unwrap_or(Path::new("."))).ok()
    };
    match files.iter().find(|f| parent_of(f).as_ref() == Some(&real)) {
        Some(f) => Err(cfg(format!(
            "--after-load move:{} is the directory {} is in: moved files would be read again as new files; move them to another directory",
            dir.display(),
            f.display()
        ))),
        None => Ok(()),
    }
}
