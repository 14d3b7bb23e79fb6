//! Several input files (`--csv-file`/`--jsonl-file` given several paths or
//! a glob, or `--input-shard`) read one after the other, in the order of the
//! list (regular files in name order, pipes at their place), as one stream of
//! records. Each file is opened by its own source (CSV: its own header); the
//! file being read is named in the dead-letter entries of its records. Every
//! file is checked to exist before anything is read.
//!
//! Only regular files are opened more than once. An input that is not one
//! (a named pipe, `/dev/stdin`, a process substitution) is opened once, when
//! its turn comes (the first one at once), and read from that descriptor.

use std::path::PathBuf;

use crate::channel::RecordSender;
use crate::config::InputPath;
use crate::context::Context;
use crate::error::PipelineError;

use super::input::Compression;
use super::Source;

/// Opens one file of the list as a source, with what is left of `--limit`.
pub type OpenOne =
    Box<dyn Fn(&InputPath, Option<u64>) -> Result<Box<dyn Source>, PipelineError> + Send>;

/// The files, read in turn.
pub struct FileList {
    files: Vec<PathBuf>,
    open: OpenOne,
    limit: Option<u64>,
    /// The first file, opened at once (its configuration errors, its fields).
    first: Option<Box<dyn Source>>,
    /// `write_json_lines` was accepted with this batch.
    lines: Option<usize>,
    /// The total size when every file is plain.
    size: Option<u64>,
}

impl FileList {
    /// Checks that every file can be opened, and opens the first. An empty
    /// list (an `--input-shard` given no file) reads nothing.
    pub fn open(
        files: Vec<PathBuf>,
        limit: Option<u64>,
        open: OpenOne,
    ) -> Result<FileList, PipelineError> {
        let mut size = Some(0u64);
        for f in &files {
            let meta = std::fs::metadata(f).map_err(|source| PipelineError::OpenInput {
                what: "input file",
                path: f.clone(),
                source,
            })?;
            if meta.is_dir() {
                return Err(PipelineError::OpenInput {
                    what: "input file",
                    path: f.clone(),
                    source: std::io::Error::other("it is a directory"),
                });
            }
            if !meta.is_file() {
                // A pipe is opened once, when its turn comes, and its first
                // bytes are read from the descriptor that reads the rest:
                // nothing is looked at here, and its size is not known.
                size = None;
                continue;
            }
            let mut head = [0u8; 8];
            let n = std::fs::File::open(f)
                .and_then(|mut file| std::io::Read::read(&mut file, &mut head))
                .map_err(|source| PipelineError::OpenInput {
                    what: "input file",
                    path: f.clone(),
                    source,
                })?;
            size = match Compression::sniff(&head[..n]) {
                Some(_) => None,
                None => size.map(|s| s + meta.len()),
            };
        }
        if files.is_empty() {
            // Nothing to read: no size (a 0 would make "% done" divide by 0).
            size = None;
        }
        let first = match files.first() {
            Some(f) => {
                let mut s = open(&InputPath::File(f.clone()), limit)?;
                s.set_origin(f.display().to_string().into());
                Some(s)
            }
            None => None,
        };
        tracing::info!(
            "reading {} file(s) in turn{}",
            files.len(),
            match (files.first(), files.last()) {
                (Some(a), Some(b)) if files.len() > 1 =>
                    format!(": {} … {}", a.display(), b.display()),
                _ => String::new(),
            }
        );
        Ok(FileList {
            files,
            open,
            limit,
            first,
            lines: None,
            size,
        })
    }
}

impl Source for FileList {
    fn run(&mut self, out: &RecordSender, ctx: &Context) -> Result<(), PipelineError> {
        let files = self.files.clone();
        for (i, file) in files.iter().enumerate() {
            if ctx.should_stop_reading() {
                break;
            }
            let read = ctx.metrics.counts().read;
            let left = self.limit.map(|l| l.saturating_sub(read));
            if left == Some(0) {
                break;
            }
            let mut source = match (i, self.first.take()) {
                (0, Some(s)) => s,
                _ => {
                    let mut s = (self.open)(&InputPath::File(file.clone()), left)?;
                    s.set_origin(file.display().to_string().into());
                    if let Some(batch) = self.lines {
                        s.write_json_lines(batch);
                    }
                    s
                }
            };
            tracing::debug!("reading {} ({} of {})", file.display(), i + 1, files.len());
            ctx.set_input(Some(file.display().to_string().into()));
            let result = source.run(out, ctx);
            ctx.set_input(None);
            result?;
        }
        Ok(())
    }

    fn reuses_records(&self) -> bool {
        self.first.as_ref().is_some_and(|s| s.reuses_records())
    }

    fn write_json_lines(&mut self, batch: usize) -> bool {
        let taken = self
            .first
            .as_mut()
            .is_some_and(|s| s.write_json_lines(batch));
        if taken {
            self.lines = Some(batch);
        }
        taken
    }

    fn size_hint(&self) -> Option<u64> {
        self.size
    }

    fn fields(&self) -> Option<Vec<String>> {
        self.first.as_ref().and_then(|s| s.fields())
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "source: {} file(s), read one after the other in this order{}",
            self.files.len(),
            if self.files.is_empty() {
                " (this shard has none: nothing to read)".to_string()
            } else {
                format!(
                    ": {}",
                    self.files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )];
        if let Some(s) = &self.first {
            lines.extend(
                s.describe()
                    .into_iter()
                    .map(|l| format!("{l} (the first file)")),
            );
        }
        lines
    }
}
