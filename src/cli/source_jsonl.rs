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
    /// writes an index), bulk (the `_bulk` API's action line, then the
    /// document's line; delete actions are rejected) or dead-letter (a
    /// --dead-letter file: the records it holds, to load again once the
    /// table or the mapping is fixed; rows the source could not read are
    /// rejected again, in-doubt entries failed and kept (see --jsonl-replay-in-doubt);
    /// another file is refused). elasticdump and bulk give the fields `_id`,
    /// `_index`, then the document's keys, as --es-meta-fields _id,_index
    /// would. auto (the default) decides for each input (each file of a
    /// list, standard input) from its first line that is not blank: a search
    /// hit (a `_source` object with `_index` or `_id`, no key but a hit's) is
    /// elasticdump, an object of one key `index`, `create`, `update` or
    /// `delete` holding an object is bulk, a dead-letter entry (no key but an
    /// entry's) is dead-letter, anything else plain; the log and --check say
    /// what was decided. Name the format to read records that merely look
    /// like dumps as they are. Example: --jsonl-format dead-letter
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
    /// or dead-letter (decided or named) always use one. Into a JSON-lines file the chunks
    /// are cut by one thread and turned into lines by these while the sink
    /// writes: by default as many as the cores this process may use (its CPU
    /// affinity and cgroup CPU quota count); into other sinks 1 by default.
    /// As --csv-threads for CSV. Example: --jsonl-threads 4
    #[arg(long, value_name = "N", help_heading = "NDJSON source")]
    pub jsonl_threads: Option<usize>,

    /// A dead-letter file's in-doubt entries (`"in_doubt": true`: records of
    /// a batch whose commit could not be checked) are loaded too. Without
    /// it they are failed and kept whole in --dead-letter, and the run says
    /// how many and their xid: the batch may have committed. Give it once
    /// the transaction is known
    /// rolled back (XA RECOVER does not list the xid, its rows are not in
    /// the table). Example: --jsonl-replay-in-doubt
    #[arg(long, help_heading = "NDJSON source")]
    pub jsonl_replay_in_doubt: bool,

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
        if self.jsonl_replay_in_doubt
            && !matches!(
                self.jsonl_format,
                JsonlFormat::DeadLetter | JsonlFormat::Auto
            )
        {
            return Err(PipelineError::Config(format!(
                "--jsonl-replay-in-doubt is for dead-letter files; --jsonl-format {} reads none: remove one of them",
                clap::ValueEnum::to_possible_value(&self.jsonl_format)
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default()
            )));
        }
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
            replay_in_doubt: self.jsonl_replay_in_doubt,
            once: None,
        })
    }
}
