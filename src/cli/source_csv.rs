//! The CSV source's flags (`--csv-*`) and their translation into a
//! [`CsvConfig`].

use crate::config::CsvConfig;
use crate::error::PipelineError;

use super::resolve::{inputs_of, positive_u64};

/// The flags of `--source-type csv`.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct CsvFlags {
    /// CSV file(s) to read; `-` reads standard input.
    ///
    /// Several paths or globs
    /// (quoted, so pipeline-cli expands them) are read one after the other in
    /// name order, each with its own header. Example: --csv-file data/orders.csv
    /// or --csv-file 'exports/2026-11-*.csv'
    #[arg(long, value_name = "PATH", num_args = 1.., help_heading = "CSV source")]
    pub csv_file: Vec<String>,

    /// Field delimiter: one character, or `tab`. Example: --csv-delimiter ';'
    #[arg(
        long,
        value_name = "C",
        default_value = ",",
        help_heading = "CSV source"
    )]
    pub csv_delimiter: String,

    /// The first row is data, not a header; columns are named column_1, column_2, ...
    #[arg(long, help_heading = "CSV source")]
    pub csv_no_header: bool,

    /// Write integers, decimals and true/false as JSON numbers and booleans, and
    /// empty fields as null (otherwise every value is a string).
    #[arg(long, help_heading = "CSV source")]
    pub csv_infer_types: bool,

    /// A quoted field longer than this is taken for an unclosed quote, an unquoted one
    /// is too long: its row is rejected and reading resumes on the next line. Bounds
    /// the memory one row may take. Example: --csv-max-field-bytes 256MiB
    #[arg(
        long,
        value_name = "SIZE",
        default_value = crate::config::DEFAULT_CSV_MAX_FIELD_BYTES,
        help_heading = "CSV source"
    )]
    pub csv_max_field_bytes: String,

    /// A quoted field spanning more lines than this is taken for an unclosed
    /// quote, like --csv-max-field-bytes. Example: --csv-max-field-lines 100000
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::config::DEFAULT_CSV_MAX_FIELD_LINES,
        help_heading = "CSV source"
    )]
    pub csv_max_field_lines: u64,

    /// Threads that parse a CSV file with a header, in chunks cut at row
    /// ends; records still go out in file order, exactly as with one thread
    /// (standard input and pipes always use one; a gzip or zstd file is cut
    /// as its decoder, on a thread of its own, gives it). Into a JSON-lines file
    /// the chunks are cut by one thread and turned into lines by these
    /// while the sink writes: by default as many as the cores this process
    /// may use (its CPU affinity and cgroup CPU quota count); into other
    /// sinks 1 by default. Example: --csv-threads 4
    #[arg(long, value_name = "N", help_heading = "CSV source")]
    pub csv_threads: Option<usize>,
}

impl CsvFlags {
    /// The CSV source's settings, reading shard `shard` of the files (`once`:
    /// with `--state-file`, a pattern may match none); what
    /// the run should warn about goes to `notes`.
    pub(super) fn resolve(
        &self,
        shard: Option<(u32, u32)>,
        once: bool,
        notes: &mut Vec<String>,
    ) -> Result<CsvConfig, PipelineError> {
        let given = ("--csv-file", self.csv_file.as_slice());
        let (input, list) = inputs_of("csv", given, shard, once, notes)?;
        Ok(CsvConfig {
            input,
            list,
            delimiter: parse_delimiter(&self.csv_delimiter)?,
            has_header: !self.csv_no_header,
            infer_types: self.csv_infer_types,
            max_field_bytes: crate::retry::parse_size(&self.csv_max_field_bytes)
                .map_err(|e| {
                    PipelineError::Config(format!(
                        "--csv-max-field-bytes: {e}; give a size such as 1MiB"
                    ))
                })
                .and_then(|n| positive_u64("--csv-max-field-bytes", n))?,
            max_field_lines: positive_u64("--csv-max-field-lines", self.csv_max_field_lines)?,
            threads: match self.csv_threads {
                Some(0) => {
                    return Err(PipelineError::Config(
                        "--csv-threads must be at least 1".into(),
                    ))
                }
                n => n,
            },
            once: None,
        })
    }
}

fn parse_delimiter(s: &str) -> Result<u8, PipelineError> {
    let bytes = match s {
        "tab" | "\\t" => return Ok(b'\t'),
        _ => s.as_bytes(),
    };
    match bytes {
        [b] if *b != b'"' && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(PipelineError::Config(format!(
            "--csv-delimiter must be a single ASCII character other than a quote or newline (or `tab`), got {s:?}"
        ))),
    }
}
