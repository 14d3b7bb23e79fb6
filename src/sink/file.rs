//! The JSON-lines file sink: one JSON object per record per line. A file is
//! written as `<path>.partial` beside the target and renamed onto the target
//! only when the run completes, so the target only ever holds a whole output;
//! a failed or interrupted run leaves what it wrote in `<path>.partial`.
//! `-` writes standard output.
//!
//! Each batch is written with its own write calls (no buffer in between),
//! so a record is counted as inserted only once its line has been handed to
//! the operating system, and a reader of a live output sees every batch.
//! When a write fails part way (a full disk), the records whose lines were
//! written whole stay counted, the file is cut back to its last whole line,
//! and every other record of the batch is failed and dead-lettered.
//!
//! The `.partial` file is locked (`flock`) for the whole run: a second run
//! on the same output exits 75 instead of writing into the same file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::{FileSinkConfig, OutputCompression, OutputPath};
use crate::error::{ErrorType, PipelineError};
use crate::gzip_members;
use crate::json_line::record_into;
use crate::metrics::Metrics;
use crate::record::{Lines, Record};
use crate::safe_fs::partial_path;

use super::api::{BatchError, BatchResult, BatchWriter, Rejected, Sink};

/// A batch buffer that grew past this (a huge record) is given back.
const KEEP_BUFFER: usize = 4 << 20;

enum Out {
    File(File),
    Stdout(io::Stdout),
}

/// The open output and what has been written to it.
struct OutState {
    out: Option<Out>,
    /// Bytes written to the file so far (where a cut-back goes).
    written: u64,
    /// Set once a write failed: later batches are not written.
    broken: Option<String>,
    /// With numbered batches (several workers): the next one to write.
    next_seq: u64,
    /// Numbered batches past `next_seq` that will not be written.
    skipped: std::collections::BTreeSet<u64>,
}

impl OutState {
    /// Batch `seq` is written (or never will be): the next may go.
    fn done_with(&mut self, seq: u64) {
        if seq != self.next_seq {
            self.skipped.insert(seq);
            return;
        }
        self.next_seq += 1;
        while self.skipped.remove(&self.next_seq) {
            self.next_seq += 1;
        }
    }
}

/// A numbered batch's turn: when it ends, however it ends (a panic
/// included), the batches after it may be written.
struct Turn {
    shared: Arc<Shared>,
    seq: Option<u64>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(seq) = self.seq {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.done_with(seq);
            drop(state);
            self.shared.turn.notify_all();
        }
    }
}

struct Shared {
    state: Mutex<OutState>,
    /// Signalled when a numbered batch is done.
    turn: std::sync::Condvar,
    target: Option<PathBuf>,
    partial: Option<PathBuf>,
    /// Each batch written as one gzip member or zstd frame.
    compression: Option<OutputCompression>,
}

/// An opened JSON-lines output.
pub struct FileSink {
    shared: Arc<Shared>,
}

/// Opens `partial` for this run alone: created if missing, locked, and only
/// then emptied. A run that finds it locked gets [`PipelineError::Busy`].
fn open_locked(
    partial: &Path,
    target: &Path,
    keep: Option<(u64, Option<&str>)>,
) -> Result<File, PipelineError> {
    use std::os::unix::fs::MetadataExt;
    let open_err = |source: io::Error| PipelineError::OpenOutput {
        what: "--output-file",
        path: target.to_path_buf(),
        source: io::Error::new(source.kind(), format!("{}: {source}", partial.display())),
    };
    loop {
        // Never through a link planted at the name, never a FIFO.
        let file = crate::safe_fs::open_in_place(
            partial,
            OpenOptions::new().write(true).create(true).truncate(false),
            false,
        )
        .map_err(open_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(PipelineError::Busy(format!(
                    "another run is writing {} (its {} is locked); wait for it to end or choose another --output-file",
                    target.display(),
                    partial.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
        }
        // The run that held the lock may have renamed this very file onto
        // the target just before letting go: then start over with a new one.
        let ours = file.metadata().map_err(open_err)?;
        match std::fs::symlink_metadata(partial) {
            Ok(m) if m.dev() == ours.dev() && m.ino() == ours.ino() => {
                // A resumed run keeps what the checkpoint says was written,
                // once it is sure the file is the one the checkpoint means.
                let (keep, tail) = keep.unwrap_or((0, None));
                if let Some(want) = tail {
                    if ours.len() >= keep
                        && crate::checkpoint::tail_of(partial, keep).ok().as_deref() != Some(want)
                    {
                        return Err(PipelineError::Config(format!(
                            "{} is not what the checkpoint says was written (its bytes before {keep} differ): another run wrote it since; --restart to write the output from the start",
                            partial.display()
                        )));
                    }
                }
                if ours.len() < keep {
                    return Err(PipelineError::Config(format!(
                        "{} holds {} bytes but the checkpoint says {keep} were written: it was cut or replaced since; --restart to write the output from the start",
                        partial.display(),
                        ours.len()
                    )));
                }
                file.set_len(keep).map_err(open_err)?;
                let mut file = file;
                io::Seek::seek(&mut file, io::SeekFrom::Start(keep)).map_err(open_err)?;
                return Ok(file);
            }
            Ok(_) | Err(_) => continue,
        }
    }
}

impl FileSink {
    /// For `--check`: the sink as it would be, creating nothing (the
    /// directory was checked with the other paths).
    pub fn dry(config: &FileSinkConfig) -> FileSink {
        let target = match &config.output {
            OutputPath::File(p) => Some(p.clone()),
            OutputPath::Stdout => None,
        };
        FileSink {
            shared: Arc::new(Shared {
                state: Mutex::new(OutState {
                    out: None,
                    written: 0,
                    broken: None,
                    next_seq: 0,
                    skipped: Default::default(),
                }),
                turn: Default::default(),
                partial: target.as_deref().map(partial_path),
                target,
                compression: config.compression,
            }),
        }
    }

    /// Creates and locks `<path>.partial` (or takes standard output). An
    /// unwritable path is a configuration error, a path another run is
    /// writing is [`PipelineError::Busy`]; both are found before anything
    /// is read.
    pub fn open(config: &FileSinkConfig) -> Result<FileSink, PipelineError> {
        let (out, target, partial) = match &config.output {
            OutputPath::Stdout => (Out::Stdout(io::stdout()), None, None),
            OutputPath::File(path) => {
                if path.is_dir() {
                    return Err(PipelineError::OpenOutput {
                        what: "--output-file",
                        path: path.clone(),
                        source: io::Error::other("it is a directory"),
                    });
                }
                let partial = partial_path(path);
                if config.resume_bytes.is_some() && !partial.exists() {
                    return Err(PipelineError::Config(format!(
                        "the checkpoint goes on writing {} but it is gone (moved, or the output completed and was renamed); --restart to write the output from the start",
                        partial.display()
                    )));
                }
                let keep = config
                    .resume_bytes
                    .map(|len| (len, config.resume_tail.as_deref()));
                let file = open_locked(&partial, path, keep)?;
                (Out::File(file), Some(path.clone()), Some(partial))
            }
        };
        let mut out = out;
        let mut written = config.resume_bytes.unwrap_or(0);
        if let (Some(kind), None) = (config.compression, config.resume_bytes) {
            // An empty member (frame) first: the output is a valid stream
            // from the start, whenever the run ends and however few records
            // it wrote (an empty file is not a valid gzip or zstd file).
            let mut empty = Vec::new();
            let wrote = pack(kind, b"", &mut empty).and_then(|()| match &mut out {
                Out::File(f) => f.write_all(&empty),
                Out::Stdout(s) => s.lock().write_all(&empty),
            });
            wrote.map_err(|source| PipelineError::OpenOutput {
                what: "--output-file",
                path: target.clone().unwrap_or_else(|| PathBuf::from("-")),
                source,
            })?;
            written = empty.len() as u64;
        }
        Ok(FileSink {
            shared: Arc::new(Shared {
                state: Mutex::new(OutState {
                    out: Some(out),
                    written,
                    broken: None,
                    next_seq: 0,
                    skipped: Default::default(),
                }),
                turn: Default::default(),
                target,
                partial,
                compression: config.compression,
            }),
        })
    }
}

struct FileWriter {
    shared: Arc<Shared>,
    /// A batch's write to a file holds a second signal's exit back.
    shutdown: crate::shutdown::Shutdown,
    /// A batch compressed (gzip member, zstd frame).
    packed: Vec<u8>,
    buf: Vec<u8>,
    /// End offset in `buf` of each record's line.
    ends: Vec<usize>,
    /// The output's length right after this writer's last batch.
    end: std::cell::Cell<Option<u64>>,
}

/// Writes `buf` to `out`, returning how many bytes went out before an error.
fn write_counted(out: &mut dyn Write, buf: &[u8]) -> (usize, Option<io::Error>) {
    let mut done = 0;
    while done < buf.len() {
        match out.write(&buf[done..]) {
            Ok(0) => return (done, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Some(e)),
        }
    }
    match out.flush() {
        Ok(()) => (done, None),
        Err(e) => (done, Some(e)),
    }
}

/// Compresses `lines` into `out` as one gzip member or zstd frame: a file
/// of such batches is one valid stream, and one cut after any batch too.
fn pack(kind: OutputCompression, lines: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    match kind {
        OutputCompression::Gzip => {
            // Each member says its size in its header, so a reader can
            // inflate the members in parallel (pipeline-cli does).
            let start = out.len();
            let mut enc = flate2::GzBuilder::new()
                .extra(gzip_members::SIZE_FIELD.to_vec())
                .write(&mut *out, flate2::Compression::new(6));
            enc.write_all(lines)?;
            enc.finish()?;
            gzip_members::set_size(&mut out[start..]);
        }
        OutputCompression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out, 3)?;
            enc.write_all(lines)?;
            enc.finish()?;
        }
    }
    Ok(())
}

/// Records `indexes` of a batch, failed unwritten.
fn not_written(indexes: std::ops::Range<usize>, reason: &str) -> Vec<Rejected> {
    indexes
        .map(|index| Rejected {
            index,
            error_type: ErrorType::Io,
            reason: reason.to_string(),
        })
        .collect()
}

impl BatchWriter for FileWriter {
    fn write_batch(&mut self, batch: &[Record]) -> Result<BatchResult, BatchError> {
        self.write_batch_at(None, batch)
    }

    fn position(&self) -> Option<u64> {
        self.end.get()
    }

    fn skip(&mut self, seq: Option<u64>) {
        drop(Turn {
            shared: self.shared.clone(),
            seq,
        });
    }

    fn write_batch_at(
        &mut self,
        seq: Option<u64>,
        batch: &[Record],
    ) -> Result<BatchResult, BatchError> {
        let turn = Turn {
            shared: self.shared.clone(),
            seq,
        };
        // Serialise outside the lock so several workers encode in parallel.
        self.buf.clear();
        self.ends.clear();
        for record in batch {
            record_into(&mut self.buf, record);
            self.buf.push(b'\n');
            self.ends.push(self.buf.len());
        }
        let buf = std::mem::take(&mut self.buf);
        let ends = std::mem::take(&mut self.ends);
        let result = self.write_encoded(seq, &buf, &ends);
        (self.buf, self.ends) = (buf, ends);
        drop(turn);
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::with_capacity(256 * 1024);
        }
        Ok(result)
    }

    fn write_lines_at(
        &mut self,
        seq: Option<u64>,
        lines: &Lines,
    ) -> Result<BatchResult, BatchError> {
        let turn = Turn {
            shared: self.shared.clone(),
            seq,
        };
        let result = self.write_encoded(seq, &lines.bytes, &lines.ends);
        drop(turn);
        Ok(result)
    }
}

impl FileWriter {
    /// Writes a batch's lines, compressed first (outside the lock, so
    /// several workers compress in parallel) when the output is.
    fn write_encoded(&mut self, seq: Option<u64>, buf: &[u8], ends: &[usize]) -> BatchResult {
        let Some(kind) = self.shared.compression else {
            return self.write_in_turn(seq, buf, ends, 1);
        };
        self.packed.clear();
        if let Err(e) = pack(kind, buf, &mut self.packed) {
            // Nothing was written: the batch fails, the output goes on.
            let reason = format!("not written: {} compression failed: {e}", kind.name());
            return BatchResult {
                rejected: not_written(0..ends.len(), &reason),
                ..Default::default()
            };
        }
        let packed = std::mem::take(&mut self.packed);
        let result = self.write_in_turn(seq, &packed, &[packed.len()], ends.len());
        self.packed = packed;
        if self.packed.capacity() > KEEP_BUFFER {
            self.packed = Vec::new();
        }
        result
    }

    /// Writes encoded lines (`buf`, each ending at `ends`) when it is batch
    /// `seq`'s turn.
    /// `per_end` records end at each of `ends` (1 for lines; a whole
    /// batch for a compressed member, which is written whole or not at all).
    fn write_in_turn(
        &self,
        seq: Option<u64>,
        buf: &[u8],
        ends: &[usize],
        per_end: usize,
    ) -> BatchResult {
        let state = self.shared.state.lock().expect("output lock");
        // Numbered batches go out in their order.
        let mut state = match seq {
            Some(seq) => self
                .shared
                .turn
                .wait_while(state, |s| s.next_seq != seq)
                .expect("output lock"),
            None => state,
        };
        let result = self.write_locked(&mut state, buf, ends, per_end);
        self.end.set(Some(state.written));
        result
    }

    /// Writes encoded lines to the output, the lock held.
    fn write_locked(
        &self,
        state: &mut OutState,
        buf: &[u8],
        ends: &[usize],
        per_end: usize,
    ) -> BatchResult {
        let records = ends.len() * per_end;
        if let Some(why) = &state.broken {
            let reason = format!("not written: the output failed earlier ({why})");
            return BatchResult {
                rejected: not_written(0..records, &reason),
                ..Default::default()
            };
        }
        // Exiting in the middle of this write (a second Ctrl+C) would tear
        // the last line: the exit waits for it, and for the cut-back below.
        // Standard output is not waited for: a reader that stopped reading
        // must not hold the exit.
        let _writing = matches!(state.out, Some(Out::File(_))).then(|| self.shutdown.critical());
        let (done, error) = match state.out.as_mut() {
            Some(Out::File(f)) => write_counted(f, buf),
            Some(Out::Stdout(s)) => write_counted(&mut s.lock(), buf),
            None => (0, Some(io::Error::other("the output is already closed"))),
        };
        let whole_ends = ends.partition_point(|&end| end <= done);
        let whole = whole_ends * per_end;
        let result = match error {
            None => {
                state.written += done as u64;
                BatchResult {
                    inserted: records as u64,
                    ..Default::default()
                }
            }
            Some(e) => {
                let kept = if whole_ends == 0 {
                    0
                } else {
                    ends[whole_ends - 1]
                };
                let mut why = format!("writing the output: {e}");
                match state.out.as_mut() {
                    // Cut a torn last line off, so the file holds whole lines.
                    Some(Out::File(f)) => {
                        if let Err(cut) = f.set_len(state.written + kept as u64) {
                            why.push_str(&format!(
                                "; the last line may be torn (cannot cut it off: {cut})"
                            ));
                        }
                        state.written += kept as u64;
                    }
                    Some(Out::Stdout(_)) if done > kept => {
                        why.push_str("; the last line written to standard output is torn");
                    }
                    _ => {}
                }
                let reason = format!("not written: {why}");
                state.broken = Some(why.clone());
                BatchResult {
                    inserted: whole as u64,
                    rejected: not_written(whole..records, &reason),
                    broken: Some(BatchError {
                        error_type: ErrorType::Io,
                        message: why,
                    }),
                    ..Default::default()
                }
            }
        };
        result
    }
}

impl Sink for FileSink {
    fn ordered(&self) -> bool {
        true
    }

    fn output_position(&self) -> Option<u64> {
        let state = self.shared.state.lock().expect("output lock");
        matches!(state.out, Some(Out::File(_))).then_some(state.written)
    }

    fn takes_lines(&self) -> bool {
        true
    }

    fn plan(&self) -> Vec<String> {
        match (&self.shared.target, &self.shared.partial) {
            (Some(t), Some(p)) => vec![format!(
                "sink: JSON lines into {}{} (written as {}, renamed when the run succeeds)",
                t.display(),
                self.shared.compression.map_or(String::new(), |c| format!(
                    ", {}-compressed, a member per batch",
                    c.name()
                )),
                p.display()
            )],
            _ => vec!["sink: JSON lines on standard output".into()],
        }
    }

    fn writer(
        &self,
        _metrics: &Arc<Metrics>,
        shutdown: &crate::shutdown::Shutdown,
    ) -> Result<Box<dyn BatchWriter>, PipelineError> {
        Ok(Box::new(FileWriter {
            shared: self.shared.clone(),
            shutdown: shutdown.clone(),
            packed: Vec::new(),
            buf: Vec::with_capacity(256 * 1024),
            ends: Vec::new(),
            end: Default::default(),
        }))
    }

    fn finish(&self, complete: bool) -> Result<Option<String>, PipelineError> {
        self.finish_with(complete, &mut || Ok(()))
    }

    fn finish_with(
        &self,
        complete: bool,
        then: &mut dyn FnMut() -> Result<(), PipelineError>,
    ) -> Result<Option<String>, PipelineError> {
        let mut state = self.shared.state.lock().expect("output lock");
        // The lock on `.partial` is held until the rename below is done.
        let out = state.out.take();
        let synced = match &out {
            Some(Out::File(f)) => f.sync_all(),
            Some(Out::Stdout(s)) => s.lock().flush(),
            None => Ok(()),
        };
        let (Some(target), Some(partial)) = (&self.shared.target, &self.shared.partial) else {
            synced.map_err(|e| {
                PipelineError::Sink(ErrorType::Io, format!("writing standard output: {e}"))
            })?;
            if complete && state.broken.is_none() {
                then()?;
            }
            return Ok(None);
        };
        let left = || format!("output so far left in {}", partial.display());
        if let Err(e) = synced {
            return Err(PipelineError::Sink(ErrorType::Io, format!(
                "cannot flush {} to disk: {e}; the lines counted as written may not all be on disk; {}",
                partial.display(),
                left()
            )));
        }
        if !complete || state.broken.is_some() {
            return Ok(Some(left()));
        }
        std::fs::rename(partial, target).map_err(|e| {
            PipelineError::Sink(
                ErrorType::Io,
                format!(
                    "cannot move {} to {}: {e}",
                    partial.display(),
                    target.display()
                ),
            )
        })?;
        // What the source saves for the next run (its state file) goes with
        // the output: if it cannot be saved, the output goes back to
        // `.partial` (the lock still held), so the next run, starting from
        // the old state, exports these records once, not twice.
        if let Err(e) = then() {
            return Err(match std::fs::rename(target, partial) {
                // The summary says where the output was left.
                Ok(()) => e,
                Err(back) => PipelineError::Sink(
                    ErrorType::Io,
                    format!(
                        "{e}; the output is in {} but could not be taken back ({back}): the next run exports its records again",
                        target.display()
                    ),
                ),
            });
        }
        drop(out);
        Ok(Some(format!("output in {}", target.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What goes with the output (the source's state) fails to be put into
    /// place: the output is taken back to `.partial`.
    #[test]
    fn an_output_goes_back_when_what_goes_with_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        let config = FileSinkConfig {
            output: OutputPath::File(target.clone()),
            compression: None,
            resume_bytes: None,
            resume_tail: None,
        };
        let sink = FileSink::open(&config).unwrap();
        let lines = b"{\"id\":1}\n";
        let w = FileWriter {
            shared: sink.shared.clone(),
            shutdown: crate::shutdown::Shutdown::new(),
            packed: Vec::new(),
            buf: Vec::new(),
            ends: Vec::new(),
            end: Default::default(),
        };
        let r = w.write_in_turn(None, lines, &[lines.len()], 1);
        assert_eq!(r.inserted, 1);
        let mut then = || Err(PipelineError::Config("the state cannot be saved".into()));
        let e = sink.finish_with(true, &mut then).unwrap_err().to_string();
        assert!(e.contains("the state cannot be saved"), "{e}");
        assert_eq!(
            sink.finish(false).unwrap().unwrap(),
            format!("output so far left in {}", partial_path(&target).display())
        );
        assert!(!target.exists());
        assert_eq!(std::fs::read(partial_path(&target)).unwrap(), lines);
        // Without anything going with it, the output is put into place.
        let sink = FileSink::open(&config).unwrap();
        assert!(sink.finish(true).is_ok());
        assert!(target.exists());
    }
}
