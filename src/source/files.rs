//! Several input files (`--csv-file`/`--jsonl-file` given several paths or
//! a glob, or `--input-shard`) read one after the other, in the order of the
//! list (regular files in name order, pipes at their place), as one stream of
//! records. Each file is opened by its own source (CSV: its own header); the
//! file being read is named in the dead-letter entries of its records. Every
//! file is checked to exist, and every regular file's header read, before
//! anything is read.
//!
//! Only regular files are opened more than once. An input that is not one
//! (a named pipe, `/dev/stdin`, a process substitution) is opened once, when
//! its turn comes (the first one at once), and read from that descriptor.

use std::path::PathBuf;

use crate::config::InputPath;
use crate::error::PipelineError;

use super::{Source, SourceOutput};

/// Opens one file of the list as a source.
pub type OpenOne = Box<dyn Fn(&InputPath) -> Result<Box<dyn Source>, PipelineError> + Send>;

/// The files, read in turn.
pub struct FileList {
    files: Vec<PathBuf>,
    open: OpenOne,
    /// The first file, opened at once (its configuration errors, its fields).
    first: Option<Box<dyn Source>>,
    /// `write_json_lines` was accepted with this batch.
    lines: Option<usize>,
    /// The total size when every file is plain.
    size: Option<u64>,
    /// Every field of the headers read up front, in order of first
    /// appearance (`None` when no file has a header: NDJSON, no header).
    fields: Option<Vec<String>>,
    /// The first header read, and its file: later headers are compared
    /// with it.
    header: Option<(String, Vec<String>)>,
    /// Empty files left out.
    skipped: Vec<PathBuf>,
    /// What was decided from each file's content, when anything was
    /// ([`Source::detected`]).
    detected: Vec<(PathBuf, String)>,
}

fn open_error(f: &std::path::Path, source: std::io::Error) -> PipelineError {
    PipelineError::OpenInput {
        what: "input file",
        path: f.to_path_buf(),
        source,
    }
}

impl FileList {
    /// Checks every file before anything is read: each exists, and each
    /// regular file is opened and its header read (CSV), so that a header
    /// the sink cannot take is refused now, an empty file is skipped (with a
    /// warning) and headers that differ are named. The first input is kept
    /// open. An input that is not a regular file is only looked at (opening
    /// a named pipe would wait for its writer, and what is read from a pipe
    /// cannot be read again): it is opened once, when its turn comes, its
    /// header read from that descriptor. An empty list (an `--input-shard`
    /// given no file) reads nothing.
    pub fn open(files: Vec<PathBuf>, open: OpenOne) -> Result<FileList, PipelineError> {
        let mut list = FileList {
            files: Vec::with_capacity(files.len()),
            open,
            first: None,
            lines: None,
            // Nothing to read: no size (a 0 would make "% done" divide by 0).
            size: (!files.is_empty()).then_some(0),
            fields: None,
            header: None,
            skipped: Vec::new(),
            detected: Vec::new(),
        };
        for f in files {
            let meta = std::fs::metadata(&f).map_err(|e| open_error(&f, e))?;
            if meta.is_dir() {
                return Err(open_error(&f, std::io::Error::other("it is a directory")));
            }
            let regular = meta.is_file();
            if regular && meta.len() == 0 {
                list.skip(f);
                continue;
            }
            if !regular {
                list.size = None;
                if !list.files.is_empty() {
                    // Not opened before its turn.
                    list.files.push(f);
                    continue;
                }
            }
            // A regular file (opened again when its turn comes), or the
            // first input, whose turn is now.
            let mut source = (list.open)(&InputPath::File(f.clone()))?;
            if !list.take_header(&f, source.as_ref()) {
                continue;
            }
            list.size = match (list.size, source.size_hint()) {
                (Some(total), Some(n)) => Some(total + n),
                _ => None,
            };
            if list.files.is_empty() {
                source.set_origin(f.display().to_string().into());
                list.first = Some(source);
            }
            list.files.push(f);
        }
        tracing::info!(
            "reading {} file(s) in turn{}",
            list.files.len(),
            match (list.files.first(), list.files.last()) {
                (Some(a), Some(b)) if list.files.len() > 1 =>
                    format!(": {} … {}", a.display(), b.display()),
                _ => String::new(),
            }
        );
        Ok(list)
    }

    /// The files read (those left out as empty are not).
    pub(super) fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Leaves out an empty file, saying so.
    fn skip(&mut self, f: PathBuf) {
        tracing::warn!("{} is empty (no header, no records); skipped", f.display());
        self.skipped.push(f);
    }

    /// Takes the header of `f` (read by `source`): adds its new fields to
    /// [`FileList::fields`] and warns when it differs from the first
    /// header. False when the file turned out empty (a compressed file of
    /// nothing, a pipe that ended at once): it is skipped.
    fn take_header(&mut self, f: &std::path::Path, source: &dyn Source) -> bool {
        if source.empty() {
            // The source said so when it was opened.
            self.skipped.push(f.to_path_buf());
            return false;
        }
        if let Some(d) = source.detected() {
            self.detected.push((f.to_path_buf(), d));
        }
        let Some(names) = source.fields() else {
            return true;
        };
        match &self.header {
            None => self.header = Some((f.display().to_string(), names.clone())),
            Some((first, first_names)) if *first_names != names => tracing::warn!(
                "{}: its header ({}) differs from the header of {first} ({}); each file's records keep their own fields",
                f.display(),
                names.join(", "),
                first_names.join(", ")
            ),
            Some(_) => {}
        }
        let fields = self.fields.get_or_insert_with(Vec::new);
        for n in names {
            if !fields.contains(&n) {
                fields.push(n);
            }
        }
        true
    }
}

impl Source for FileList {
    /// Reads the files in turn through the one output: `--limit` and the
    /// counts span the files.
    fn run(&mut self, out: &mut SourceOutput) -> Result<(), PipelineError> {
        let ctx = out.ctx();
        let files = self.files.clone();
        for (i, file) in files.iter().enumerate() {
            if ctx.should_stop_reading() || out.at_limit() {
                break;
            }
            let mut source = match (i, self.first.take()) {
                (0, Some(s)) => s,
                _ => {
                    let mut s = (self.open)(&InputPath::File(file.clone()))?;
                    if !super::input::reopenable(&InputPath::File(file.clone()))
                        && !self.take_header(file, s.as_ref())
                    {
                        // A pipe's header is read now, from the descriptor
                        // that reads its records.
                        continue;
                    }
                    s.set_origin(file.display().to_string().into());
                    if let Some(batch) = self.lines {
                        s.write_json_lines(batch);
                    }
                    s
                }
            };
            tracing::debug!("reading {} ({} of {})", file.display(), i + 1, files.len());
            ctx.set_input(Some(file.display().to_string().into()));
            // --checkpoint: each file's rows are numbered on their own.
            out.begin_stream(i as u32, 0);
            let result = source.run(out);
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
        // Every field of every header read up front, so a sink checks them
        // all before anything is written.
        self.fields.clone()
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "source: {} file(s), read one after the other in this order{}",
            self.files.len(),
            if self.files.is_empty() && !self.skipped.is_empty() {
                ": every file is empty, nothing to read".to_string()
            } else if self.files.is_empty() {
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
        if !self.skipped.is_empty() {
            lines.push(format!(
                "source: {} empty file(s) skipped: {}",
                self.skipped.len(),
                self.skipped
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.files.len() > 1 {
            lines.extend(self.detected.iter().map(|(f, d)| {
                format!("source: {}: --jsonl-format auto: read as {d}", f.display())
            }));
        }
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
