//! Files loaded once (`--state-file` with a CSV or NDJSON source): the
//! files of the list that an earlier run loaded are left out (known by
//! their real path, size, modification time and first 64 KiB:
//! [`Identity`]); the others are read as a [`FileList`]. When the run has
//! written everything, the files it read are recorded in the state file,
//! which is put into place with the output; then `--after-load` moves or
//! deletes them (and the files found already loaded, which an earlier run
//! could not), and they leave the record: a new file under the same name
//! is then a new file.

use std::path::PathBuf;

use crate::config::{AfterLoad, ChangedFiles, FilesOnce};
use crate::error::PipelineError;

use super::files::{FileList, OpenOne};
use super::once_state::{entry, key, named, Identity, Loaded};
use super::{after_load, Source, SourceOutput, StagedCommit};

/// The files of the list not loaded before, read in turn; what is known of
/// those that were.
pub struct LoadedOnce {
    inner: FileList,
    once: FilesOnce,
    state: Loaded,
    /// The files to read, each with what it was when listed.
    reading: Vec<(PathBuf, Identity)>,
    /// Files found loaded by an earlier run (left out).
    already: Vec<PathBuf>,
    /// Files changed since an earlier run loaded them, left out
    /// (`--changed-files skip`).
    changed_left: Vec<PathBuf>,
    /// `--limit` cut the read short: nothing is recorded.
    limited: bool,
    /// What was recorded, for `--after-load`.
    recorded: Vec<PathBuf>,
}

fn open_error(f: &std::path::Path, source: std::io::Error) -> PipelineError {
    PipelineError::OpenInput {
        what: "input file",
        path: f.to_path_buf(),
        source,
    }
}

/// Reads `once`'s state file and opens the files of `files` it does not
/// record (or records as they were before they changed, with
/// `--changed-files reload`); a changed file is refused (exit 2) by default.
pub(super) fn open(
    files: Vec<PathBuf>,
    once: &FilesOnce,
    open_one: OpenOne,
) -> Result<Box<dyn Source>, PipelineError> {
    let state = Loaded::read(&once.state_file)?;
    let mut reading = Vec::new();
    let (mut already, mut changed_left) = (Vec::new(), Vec::new());
    for f in files {
        let now = Identity::of(&f).map_err(|e| open_error(&f, e))?;
        let Some(then) = state.get(&key(&f)) else {
            reading.push((f, now));
            continue;
        };
        if then.identity == now {
            tracing::debug!(
                "{}: loaded by run {} at {}; skipped",
                f.display(),
                then.run_id,
                then.loaded_at
            );
            already.push(f);
            continue;
        }
        let what = now.differences(&then.identity);
        match once.changed {
            ChangedFiles::Refuse => {
                return Err(PipelineError::Config(format!(
                    "{} was loaded at {} (--state-file '{}') and has changed since: {what}. A file still being written when it was loaded grows: have its writer move it into place when complete. use --changed-files reload to read it again whole, or --changed-files skip to leave it out",
                    f.display(),
                    then.loaded_at,
                    once.state_file.display()
                )))
            }
            ChangedFiles::Reload => {
                tracing::warn!("{} was loaded at {} and has changed since ({what}): read again whole (--changed-files reload)", f.display(), then.loaded_at);
                reading.push((f, now));
            }
            ChangedFiles::Skip => {
                tracing::warn!("{} was loaded at {} and has changed since ({what}): left out (--changed-files skip)", f.display(), then.loaded_at);
                changed_left.push(f);
            }
        }
    }
    let list = reading.iter().map(|(f, _)| f.clone()).collect();
    Ok(Box::new(LoadedOnce {
        inner: FileList::open(list, open_one)?,
        once: once.clone(),
        state,
        reading,
        already,
        changed_left,
        limited: false,
        recorded: Vec::new(),
    }))
}

impl LoadedOnce {
    /// What the summary says of the files left out.
    fn left_out(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.already.is_empty() {
            notes.push(format!(
                "skipped {} file(s) already loaded",
                self.already.len()
            ));
        }
        if !self.changed_left.is_empty() {
            notes.push(format!(
                "left out {} file(s) changed since they were loaded (--changed-files skip)",
                self.changed_left.len()
            ));
        }
        notes
    }

    /// Moves or deletes `files`; returns those done and the first error.
    fn act(&self, files: &[PathBuf]) -> (Vec<PathBuf>, Option<String>) {
        let mut done = Vec::new();
        let mut failed: Option<(usize, String)> = None;
        for f in files {
            let result = match &self.once.after_load {
                AfterLoad::Keep => return (done, None),
                AfterLoad::Move(dir) => after_load::move_into(f, dir).map(|to| {
                    tracing::info!(
                        "{} loaded: moved to {} (--after-load)",
                        f.display(),
                        to.display()
                    );
                }),
                AfterLoad::Delete => after_load::delete(f).map(|()| {
                    tracing::info!("{} loaded: deleted (--after-load)", f.display());
                }),
            };
            match result {
                Ok(()) => done.push(f.clone()),
                Err(e) => {
                    let why = format!("{}: {e}", f.display());
                    tracing::error!("--after-load: {why}");
                    let n = failed.as_ref().map_or(0, |(n, _)| *n);
                    failed = Some((n + 1, failed.map_or(why, |(_, first)| first)));
                }
            }
        }
        let error = failed.map(|(n, first)| {
            format!(
                "--after-load could not move or delete {n} loaded file(s) (first: {first}); they are recorded as loaded in --state-file '{}', so the next run skips them and tries again; fix the cause (permissions, space)",
                self.once.state_file.display()
            )
        });
        (done, error)
    }
}

impl Source for LoadedOnce {
    fn run(&mut self, out: &mut SourceOutput) -> Result<(), PipelineError> {
        if !self.already.is_empty() {
            tracing::info!(
                "skipping {} file(s) already loaded (--state-file '{}'): {}",
                self.already.len(),
                self.once.state_file.display(),
                named(&self.already)
            );
        }
        self.inner.run(out)?;
        self.limited = out.at_limit();
        Ok(())
    }

    fn stage_commit(&mut self) -> Result<Option<StagedCommit>, PipelineError> {
        let path = self.once.state_file.clone();
        if self.limited {
            tracing::warn!(
                "--limit stopped the read early; no file is recorded as loaded in {}, so the next run reads them again",
                path.display()
            );
            return Ok(None);
        }
        let read = self.inner.files();
        for (f, then) in self.reading.iter().filter(|(f, _)| read.contains(f)) {
            // A file still being written when it was read is recorded as
            // it was listed: the next run finds it changed.
            if let Ok(meta) = std::fs::metadata(f) {
                if meta.len() != then.size
                    || super::once_state::modified_ns(&meta) != then.modified_ns
                {
                    tracing::warn!("{} changed while it was read; it is recorded as it was when the run started, so the next run finds it changed", f.display());
                }
            }
            self.state.put(entry(f, then.clone()));
            self.recorded.push(f.clone());
        }
        let gone = self.state.forget_gone();
        if gone > 0 {
            tracing::debug!("{gone} file(s) recorded as loaded are no longer there; forgotten");
        }
        let file = crate::fsutil::stage_atomic(&path, &self.state.to_bytes()).map_err(|e| {
            PipelineError::Source(
                crate::error::ErrorType::Io,
                format!("cannot write --state-file '{}': {e}", path.display()),
            )
        })?;
        let n = self.recorded.len();
        Ok(Some(StagedCommit {
            file,
            what: format!("--state-file '{}'", path.display()),
            then: Box::new(move |_| {
                tracing::info!("recorded {n} file(s) loaded in {}", path.display());
            }),
        }))
    }

    fn finished(&mut self, committed: bool) -> Result<Option<String>, PipelineError> {
        let mut notes = self.left_out();
        let mut error = None;
        if committed && self.once.after_load != AfterLoad::Keep {
            let files: Vec<PathBuf> = self.recorded.iter().chain(&self.already).cloned().collect();
            let (done, failed) = self.act(&files);
            error = failed;
            if !done.is_empty() {
                notes.push(match &self.once.after_load {
                    AfterLoad::Move(dir) => {
                        format!("moved {} file(s) to {}", done.len(), dir.display())
                    }
                    _ => format!("deleted {} file(s)", done.len()),
                });
                // Gone from their path: a new file there is a new file.
                self.state.forget_gone();
                if let Err(e) =
                    crate::fsutil::write_atomic(&self.once.state_file, &self.state.to_bytes())
                {
                    tracing::warn!("--state-file '{}' still records the {} file(s) moved or deleted ({e}); the next run forgets them", self.once.state_file.display(), done.len());
                }
            }
        }
        match error {
            Some(e) => Err(PipelineError::Source(crate::error::ErrorType::Io, e)),
            None => Ok((!notes.is_empty()).then(|| notes.join("; "))),
        }
    }

    fn reuses_records(&self) -> bool {
        self.inner.reuses_records()
    }

    fn write_json_lines(&mut self, batch: usize) -> bool {
        self.inner.write_json_lines(batch)
    }

    fn size_hint(&self) -> Option<u64> {
        self.inner.size_hint()
    }

    fn fields(&self) -> Option<Vec<String>> {
        self.inner.fields()
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = if self.inner.files().is_empty() {
            vec!["source: no file to read that --state-file does not record as loaded".to_string()]
        } else {
            self.inner.describe()
        };
        lines.extend(self.left_out().into_iter().map(|n| {
            format!(
                "source: --state-file '{}': {n}",
                self.once.state_file.display()
            )
        }));
        lines
    }
}
