//! The output compression the flags name (the kinds of source and sink are
//! [`SourceKind`](crate::config::SourceKind) and
//! [`SinkKind`](crate::config::SinkKind)).

use clap::ValueEnum;

/// `--output-compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputCompressionFlag {
    /// By the output file's name: `.gz`, `.zst`.
    Auto,
    /// Plain JSON lines.
    None,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}
