//! The settings of files loaded once (`--state-file` with a CSV or NDJSON
//! source).

use std::path::PathBuf;

/// `--state-file` with a file source: files already loaded are skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesOnce {
    /// Where the files loaded are recorded.
    pub state_file: PathBuf,
    /// What becomes of a file loaded before that has changed since.
    pub changed: ChangedFiles,
    /// What becomes of a file once its records are committed.
    pub after_load: AfterLoad,
}

/// `--changed-files`: a file recorded as loaded whose size, modification
/// time or first 64 KiB differ now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ChangedFiles {
    /// The run is refused (exit 2) before anything is read, naming the file.
    #[default]
    Refuse,
    /// The file is read again, whole, and recorded as it is now.
    Reload,
    /// The file is left out, with a warning, on every run.
    Skip,
}

/// `--after-load`: what is done with a file once its records are committed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AfterLoad {
    /// Left where it is.
    #[default]
    Keep,
    /// Moved into this directory (never over a file there).
    Move(PathBuf),
    /// Removed.
    Delete,
}
