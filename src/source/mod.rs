//! Sources: where records come from. A source reads until its input ends, the
//! run's stop signal is raised, or `--limit` is reached, and hands what it
//! read to its [`SourceOutput`], which sends it to the sinks and counts it
//! (records, bytes, fetch timings, rejected rows, `--limit`, progress).

mod after_load;
pub mod csv;
mod csv_lines;
mod csv_parallel;
mod csv_reader;
mod csv_row;
pub mod elasticsearch;
mod files;
mod follow;
mod gzip_parallel;
pub mod input;
mod json_object;
pub mod jsonl;
mod jsonl_detect;
mod jsonl_line;
mod jsonl_parallel;
mod jsonl_replay;
mod live;
mod once;
mod once_state;
mod output;
mod parallel;

use crate::config::SourceConfig;
use crate::error::PipelineError;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

pub use output::SourceOutput;

/// What a source saves for the next run, written but not yet in place.
pub struct StagedCommit {
    /// The file, renamed into place by [`StagedCommit::commit`].
    pub file: crate::fsutil::Staged,
    /// What names the file in an error (`--state-file 'PATH'`).
    pub what: String,
    /// Said and exported once the file is in place.
    pub then: Box<dyn FnOnce(&Metrics) + Send>,
}

impl StagedCommit {
    /// Puts the file into place.
    pub fn commit(self, metrics: &Metrics) -> Result<(), PipelineError> {
        self.file.commit().map_err(|e| {
            PipelineError::Source(
                crate::error::ErrorType::Io,
                format!("cannot save {file}: {e}", file = self.what),
            )
        })?;
        (self.then)(metrics);
        Ok(())
    }
}

/// A source that has been opened (so its configuration errors have been seen)
/// and is ready to read.
pub trait Source: Send {
    /// Reads until the input ends, `out` is at `--limit` or the run says
    /// stop, handing every row to `out` (as a record, a JSON line or a
    /// rejected row). An `Err` ends the run as failed.
    fn run(&mut self, out: &mut SourceOutput) -> Result<(), PipelineError>;

    /// Called once the whole run has succeeded (every record written), before
    /// the output is put into place, so a source can save what the next run
    /// starts from: written to a temporary file now, put into place right
    /// after the output ([`StagedCommit`]), so the two go together. An `Err`
    /// keeps the output out of place and fails the run. Nothing by default.
    fn stage_commit(&mut self) -> Result<Option<StagedCommit>, PipelineError> {
        Ok(None)
    }

    /// Called once the run has ended, after the output and what
    /// [`Source::stage_commit`] staged were put into place (`committed`)
    /// or not: a source that acts on its inputs once they are loaded
    /// (`--after-load`) does it now. Returns what the summary should say
    /// of it; an `Err` fails the run (what was committed stays so).
    fn finished(&mut self, _committed: bool) -> Result<Option<String>, PipelineError> {
        Ok(None)
    }

    /// True when the source fills records the sinks are done with
    /// ([`SourceOutput::spare_record`]) instead of allocating new ones.
    fn reuses_records(&self) -> bool {
        false
    }

    /// The sink writes each record as its JSON line: a source that can
    /// write those lines itself, byte for byte as the sink would, may send
    /// [`crate::record::Lines`] of up to `batch` records from now on
    /// ([`SourceOutput::send_lines`]) instead of records. Returns whether it
    /// will.
    fn write_json_lines(&mut self, _batch: usize) -> bool {
        false
    }

    /// `--checkpoint`: the run follows a checkpoint, resuming `resume`
    /// when there is one. A source that cannot go on from a saved position
    /// refuses it now, before anything is read or written (exit 2).
    fn checkpointed(
        &mut self,
        _resume: Option<&crate::checkpoint::Resume>,
    ) -> Result<(), PipelineError> {
        Ok(())
    }

    /// The records come from `origin`, one of several input files: their
    /// schemas say so (for dead-letter entries). Called before `run`.
    fn set_origin(&mut self, _origin: std::sync::Arc<str>) {}

    /// Total bytes to read, when known in advance (for the progress bar).
    fn size_hint(&self) -> Option<u64>;

    /// The field names every record will have, when known before reading
    /// (a CSV header), so sinks can check them against a table up front.
    fn fields(&self) -> Option<Vec<String>>;

    /// True when the input turned out, on opening, to hold nothing at all
    /// (a CSV input without even a header: 0 bytes, compressed nothing, a
    /// byte-order mark or line ends only). It reads as nothing; the source
    /// has said so.
    fn empty(&self) -> bool {
        false
    }

    /// What reading it means, for `--check`: one line per fact.
    fn describe(&self) -> Vec<String>;

    /// What was decided from the input's content when it was opened (the
    /// format of NDJSON read with `--jsonl-format auto`), for `--check` to
    /// say of each file of a list.
    fn detected(&self) -> Option<String> {
        None
    }
}

/// Opens the configured source (`--limit` is applied by the
/// [`SourceOutput`] it runs with).
/// Retries made while opening (an ES server still starting) are counted in
/// `metrics`. A pipe waited on (for its first bytes, a CSV header) stops
/// being waited on once `stop` is raised: the run's stop signal.
pub fn open(
    config: &SourceConfig,
    metrics: &Metrics,
    stop: &Shutdown,
) -> Result<Box<dyn Source>, PipelineError> {
    match config {
        SourceConfig::Csv(c) => several(
            config,
            (&c.list, &c.once),
            (c.clone(), stop.clone()),
            csv_one,
        )
        .unwrap_or_else(|| Ok(Box::new(csv::CsvSource::open(c, stop)?))),
        SourceConfig::Jsonl(c) => several(
            config,
            (&c.list, &c.once),
            (c.clone(), stop.clone()),
            jsonl_one,
        )
        .unwrap_or_else(|| Ok(Box::new(jsonl::JsonlSource::open(c, stop)?))),
        SourceConfig::Elasticsearch(c) => Ok(Box::new(elasticsearch::EsSource::open(c, metrics)?)),
    }
}

/// True when every input of the source can be opened and read again from
/// its start (the sample `--create-table` reads before the run): regular
/// files and Elasticsearch. Standard input, a named pipe, `/dev/stdin` or a
/// process substitution is read once.
pub fn read_twice(config: &SourceConfig) -> bool {
    let all = |input: &crate::config::InputPath, list: &Option<Vec<std::path::PathBuf>>| match list
    {
        Some(list) => list
            .iter()
            .all(|f| input::reopenable(&crate::config::InputPath::File(f.clone()))),
        None => input::reopenable(input),
    };
    match config {
        SourceConfig::Csv(c) => all(&c.input, &c.list),
        SourceConfig::Jsonl(c) => all(&c.input, &c.list),
        SourceConfig::Elasticsearch(_) => true,
    }
}

/// The source as `--check` opens it: without its inputs that are not
/// regular files (standard input, a named pipe, `/dev/stdin`, `<(…)`),
/// which are read once, when the run starts, and never before (a path that
/// does not exist is kept: opening it says so). Returns the
/// names of those left out, and what is left to open (`None`: nothing).
pub fn regular_inputs(config: &SourceConfig) -> (Option<SourceConfig>, Vec<String>) {
    use crate::config::InputPath;
    fn split(
        input: &mut InputPath,
        list: &mut Option<Vec<std::path::PathBuf>>,
    ) -> (bool, Vec<String>) {
        match list {
            None if !input::read_once(input) => (true, Vec::new()),
            None => (false, vec![input::display_name(input)]),
            Some(files) => {
                let (kept, left): (Vec<_>, Vec<_>) = std::mem::take(files)
                    .into_iter()
                    .partition(|f| !input::read_once(&InputPath::File(f.clone())));
                let any = !kept.is_empty();
                if let Some(first) = kept.first() {
                    *input = InputPath::File(first.clone());
                }
                *files = kept;
                // An empty list (a shard with no file) is still opened.
                let keep = any || left.is_empty();
                (keep, left.iter().map(|f| f.display().to_string()).collect())
            }
        }
    }
    let mut config = config.clone();
    let (keep, left) = match &mut config {
        SourceConfig::Csv(c) => split(&mut c.input, &mut c.list),
        SourceConfig::Jsonl(c) => split(&mut c.input, &mut c.list),
        SourceConfig::Elasticsearch(_) => (true, Vec::new()),
    };
    (keep.then_some(config), left)
}

/// Opens one file with a copy of the source's settings.
type OpenWith<C> = fn(&mut C, &crate::config::InputPath) -> Result<Box<dyn Source>, PipelineError>;

/// Several files of one kind: each opened by `open` from its own copy of
/// the source's settings `c`.
fn file_list<C: Clone + Send + 'static>(
    list: &[std::path::PathBuf],
    c: C,
    open: OpenWith<C>,
) -> Result<Box<dyn Source>, PipelineError> {
    let one: files::OpenOne = Box::new(move |input| open(&mut c.clone(), input));
    Ok(Box::new(files::FileList::open(list.to_vec(), one)?))
}

/// One file of a CSV list.
fn csv_one(
    (c, stop): &mut (crate::config::CsvConfig, Shutdown),
    input: &crate::config::InputPath,
) -> Result<Box<dyn Source>, PipelineError> {
    c.input = input.clone();
    Ok(Box::new(csv::CsvSource::open(c, stop)?))
}

/// One file of an NDJSON list.
fn jsonl_one(
    (c, stop): &mut (crate::config::JsonlConfig, Shutdown),
    input: &crate::config::InputPath,
) -> Result<Box<dyn Source>, PipelineError> {
    c.input = input.clone();
    Ok(Box::new(jsonl::JsonlSource::open(c, stop)?))
}

/// A file source of several files (`list`), or of the files not loaded
/// before (`--state-file`: `once`), each opened by `open` from its own copy
/// of `c`; `None` for one file read as it is.
fn several<C: Clone + Send + 'static>(
    config: &SourceConfig,
    (list, once): (
        &Option<Vec<std::path::PathBuf>>,
        &Option<crate::config::FilesOnce>,
    ),
    c: C,
    open: OpenWith<C>,
) -> Option<Result<Box<dyn Source>, PipelineError>> {
    match (list, once) {
        (_, Some(once)) => {
            let one: files::OpenOne = Box::new(move |input| open(&mut c.clone(), input));
            Some(once::open(config.input_files().1, once, one))
        }
        (Some(list), None) => Some(file_list(list, c, open)),
        (None, None) => None,
    }
}
