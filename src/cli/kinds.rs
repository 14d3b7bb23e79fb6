//! The kinds of source, sink and output compression the flags name.

use clap::ValueEnum;

/// Kinds of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceType {
    /// A CSV file or standard input.
    Csv,
    /// An Elasticsearch or OpenSearch index.
    Elasticsearch,
    /// NDJSON (JSON lines): one JSON object per line, from a file or
    /// standard input, gzip or zstd read by content.
    Jsonl,
}

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

/// Kinds of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkType {
    /// A JSON-lines file or standard output.
    File,
    /// A MySQL or MariaDB table.
    Mysql,
}
