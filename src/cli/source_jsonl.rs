//! The NDJSON source's flags (`--jsonl-*`) and their translation into a
//! [`JsonlConfig`].

use crate::config::{JsonlConfig, JsonlFormat};
use crate::error::PipelineError;

use super::resolve::{inputs_of, positive_u64};

/// The flags of `--source-type jsonl`.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct JsonlFlags {
    /// NDJSON file(s) to read; `-` reads standard input.
    ///
    /// One JSON object per line; gzip or zstd read by content; several paths
    /// or globs as for --csv-file. Example: --jsonl-file dump/orders.jsonl.gz
    #[arg(long, value_name = "PATH", num_args = 1.., help_heading = "NDJSON source")]
    pub jsonl_file: Vec<String>,

    /// A longer line (its line end not counted) is rejected (kept in the dead-letter
    /// file, cut to this length): it bounds the memory one line may take. Example: --jsonl-max-line-bytes 1048576
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = crate::config::DEFAULT_JSONL_MAX_LINE_BYTES,
        help_heading = "NDJSON source"
    )]
    pub jsonl_max_line_bytes: u64,

    /// What each line holds: plain (one object, its keys the fields),
    /// elasticdump (`{"_index":..,"_id":..,"_source":{..}}`, as elasticdump
    /// writes an index) or bulk (the `_bulk` API's action line, then the
    /// document's line; delete actions are rejected). Either of the last two
    /// gives the fields `_id`, `_index`, then the document's keys, as
    /// --es-meta-fields _id,_index would. auto (the default) decides for each
    /// input (each file of a list, standard input) from its first line that
    /// is not blank: a search hit (a `_source` object with `_index` or `_id`,
    /// no key but a hit's) is elasticdump, an object of one key `index`,
    /// `create`, `update` or `delete` holding an object is bulk, anything
    /// else plain; the log and --check say what was decided. Name the format
    /// to read records that merely look like dumps as they are.
    /// Example: --jsonl-format plain
    #[arg(
        long,
        value_name = "FORMAT",
        value_enum,
        default_value_t = JsonlFormat::Auto,
        help_heading = "NDJSON source"
    )]
    pub jsonl_format: JsonlFormat,

    /// Threads that parse an NDJSON file, in chunks cut at line ends;
    /// records still go out in file order, exactly as with one thread.
    /// Standard input, pipes, gzip or zstd files and --jsonl-format bulk
    /// (decided or named) always use one. Into a JSON-lines file the chunks
    /// are cut by one thread and turned into lines by these while the sink
    /// writes: by default as many as the cores this process may use (its CPU
    /// affinity and cgroup CPU quota count); into other sinks 1 by default.
    /// As --csv-threads for CSV. Example: --jsonl-threads 4
    #[arg(long, value_name = "N", help_heading = "NDJSON source")]
    pub jsonl_threads: Option<usize>,

    /// About how many bytes one chunk of a file read on several threads
    /// holds (a chunk ends at a line end; it grows to hold a line up to
    /// --jsonl-max-line-bytes); past 7 threads, no more than 8 MiB over
    /// the threads and one (at least 256 KiB). For tests.
    #[arg(long, value_name = "BYTES", hide = true, default_value_t = crate::config::DEFAULT_CHUNK_BYTES)]
    pub jsonl_chunk_bytes: usize,
}

impl JsonlFlags {
    /// The NDJSON source's settings, reading shard `shard` of the files (`once`:
    /// with `--state-file`, a pattern may match none);
    /// what the run should warn about goes to `notes`.
    pub(super) fn resolve(
        &self,
        shard: Option<(u32, u32)>,
        once: bool,
        notes: &mut Vec<String>,
    ) -> Result<JsonlConfig, PipelineError> {
        let given = ("--jsonl-file", self.jsonl_file.as_slice());
        let (input, list) = inputs_of("jsonl", given, shard, once, notes)?;
        Ok(JsonlConfig {
            input,
            list,
            max_line_bytes: positive_u64("--jsonl-max-line-bytes", self.jsonl_max_line_bytes)?,
            format: self.jsonl_format,
            threads: match self.jsonl_threads {
                Some(0) => {
                    return Err(PipelineError::Config(
                        "--jsonl-threads must be at least 1".into(),
                    ))
                }
                n => n,
            },
            chunk_bytes: match self.jsonl_chunk_bytes {
                0 => {
                    return Err(PipelineError::Config(
                        "--jsonl-chunk-bytes must be at least 1".into(),
                    ))
                }
                n => n,
            },
            once: None,
        })
    }
}
