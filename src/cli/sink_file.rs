//! The JSON-lines file sink's flags (`--output-file`,
//! `--output-compression`) and their translation into a
//! [`FileSinkConfig`].

use std::path::Path;

use crate::config::{FileSinkConfig, OutputCompression, OutputPath};
use crate::error::PipelineError;

use super::resolve::Slice;
use super::OutputCompressionFlag;

/// The flags of `--sink-type file`.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct FileFlags {
    /// JSON-lines file to write; `-` writes standard output.
    ///
    /// The file is written
    /// as PATH.partial and renamed to PATH only when the run succeeds.
    /// `{date}` (UTC YYYY-MM-DD), `{time}` (UTC HHMMSS) and `{run_id}` (16
    /// hex digits) in PATH become this run's, the same in every path of
    /// the run (also in --dead-letter and --summary-json), so each run
    /// keeps its own file. Example: --output-file 'out/orders-{date}-{time}.jsonl'
    /// or --output-file out/orders.jsonl
    #[arg(long, value_name = "PATH", help_heading = "File sink")]
    pub output_file: Option<String>,

    /// Compress the JSON-lines output: auto (by the file name: `.gz` is
    /// gzip, `.zst` zstd, anything else and standard output none), none,
    /// gzip or zstd. Each batch is one gzip member or zstd frame, so a
    /// `.partial` left by an interrupted run decompresses to whole lines;
    /// each gzip member says its size in its header, so pipeline-cli reads
    /// the file back on several threads.
    /// Example: --output-file out.jsonl.gz
    #[arg(long, value_enum, default_value = "auto", help_heading = "Sink")]
    pub output_compression: OutputCompressionFlag,
}

impl FileFlags {
    /// The file sink's settings.
    pub(super) fn resolve(&self, slice: Slice) -> Result<FileSinkConfig, PipelineError> {
        let file = self.output_file.clone().ok_or_else(|| {
            PipelineError::Config(
                "--sink-type file needs --output-file PATH (or `-` for standard output)".into(),
            )
        })?;
        let output = if file == "-" {
            OutputPath::Stdout
        } else {
            OutputPath::File(
                slice
                    .path("--output-file", Some(Path::new(&file)))?
                    .expect("a path"),
            )
        };
        let compression = match (self.output_compression, &output) {
            (OutputCompressionFlag::Auto, OutputPath::File(p)) => OutputCompression::from_name(p),
            (OutputCompressionFlag::Auto | OutputCompressionFlag::None, _) => None,
            (OutputCompressionFlag::Gzip, _) => Some(OutputCompression::Gzip),
            (OutputCompressionFlag::Zstd, _) => Some(OutputCompression::Zstd),
        };
        Ok(FileSinkConfig {
            output,
            compression,
            resume_bytes: None,
            resume_tail: None,
        })
    }
}
