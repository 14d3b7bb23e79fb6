//! The JSON-lines file sink: one JSON object per record per line. A file is
//! written as `<path>.partial` beside the target and renamed onto the target
//! only when the run completes, so the target only ever holds a whole output;
//! a failed or interrupted run leaves what it wrote in `<path>.partial`.
//! `-` writes standard output.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::{FileSinkConfig, OutputPath};
use crate::error::{ErrorType, PipelineError};
use crate::metrics::Metrics;
use crate::record::Record;

use super::{BatchError, BatchResult, BatchWriter, Sink};

enum Out {
    File(BufWriter<File>),
    Stdout(BufWriter<io::Stdout>),
}

impl Out {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Out::File(w) => w,
            Out::Stdout(w) => w,
        }
    }
}

struct Shared {
    out: Mutex<Option<Out>>,
    target: Option<PathBuf>,
    partial: Option<PathBuf>,
}

/// An opened JSON-lines output.
pub struct FileSink {
    shared: Arc<Shared>,
}

/// `<path>.partial`, the file written while a run lasts.
pub fn partial_path(target: &std::path::Path) -> PathBuf {
    let mut p = target.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

impl FileSink {
    /// Creates `<path>.partial` (or takes standard output). An unwritable
    /// path is a configuration error, found before anything is read.
    pub fn open(config: &FileSinkConfig) -> Result<FileSink, PipelineError> {
        let (out, target, partial) = match &config.output {
            OutputPath::Stdout => (
                Out::Stdout(BufWriter::with_capacity(256 * 1024, io::stdout())),
                None,
                None,
            ),
            OutputPath::File(path) => {
                let partial = partial_path(path);
                if path.is_dir() {
                    return Err(PipelineError::OpenOutput {
                        what: "--output-file",
                        path: path.clone(),
                        source: io::Error::other("it is a directory"),
                    });
                }
                let file = File::create(&partial).map_err(|source| PipelineError::OpenOutput {
                    what: "--output-file",
                    path: path.clone(),
                    source,
                })?;
                (
                    Out::File(BufWriter::with_capacity(256 * 1024, file)),
                    Some(path.clone()),
                    Some(partial),
                )
            }
        };
        Ok(FileSink {
            shared: Arc::new(Shared {
                out: Mutex::new(Some(out)),
                target,
                partial,
            }),
        })
    }
}

struct FileWriter {
    shared: Arc<Shared>,
    buf: Vec<u8>,
}

impl BatchWriter for FileWriter {
    fn write_batch(&mut self, batch: &[Record]) -> Result<BatchResult, BatchError> {
        let io_err = |e: io::Error| BatchError {
            error_type: ErrorType::Io,
            message: format!("writing the output: {e}"),
        };
        // Serialise outside the lock so several workers encode in parallel.
        self.buf.clear();
        for record in batch {
            record.write_json(&mut self.buf).map_err(io_err)?;
            self.buf.push(b'\n');
        }
        let mut out = self.shared.out.lock().expect("output lock");
        let out = out
            .as_mut()
            .ok_or_else(|| io_err(io::Error::other("output already closed")))?;
        out.writer().write_all(&self.buf).map_err(io_err)?;
        Ok(BatchResult {
            inserted: batch.len() as u64,
            ..Default::default()
        })
    }
}

impl Sink for FileSink {
    fn writer(
        &self,
        _metrics: &Arc<Metrics>,
        _shutdown: &crate::shutdown::Shutdown,
    ) -> Result<Box<dyn BatchWriter>, PipelineError> {
        Ok(Box::new(FileWriter {
            shared: self.shared.clone(),
            buf: Vec::with_capacity(256 * 1024),
        }))
    }

    fn finish(&self, complete: bool) -> Result<Option<String>, PipelineError> {
        let out = self.shared.out.lock().expect("output lock").take();
        let flushed = match out {
            Some(Out::File(mut w)) => w.flush().and_then(|_| w.get_ref().sync_all()),
            Some(Out::Stdout(mut w)) => w.flush(),
            None => Ok(()),
        };
        let (Some(target), Some(partial)) = (&self.shared.target, &self.shared.partial) else {
            return flushed
                .map(|_| None)
                .map_err(|e| PipelineError::Sink(format!("writing standard output: {e}")));
        };
        let left = || format!("output so far left in {}", partial.display());
        if let Err(e) = flushed {
            return Err(PipelineError::Sink(format!(
                "writing {}: {e}; {}",
                partial.display(),
                left()
            )));
        }
        if !complete {
            return Ok(Some(left()));
        }
        std::fs::rename(partial, target).map_err(|e| {
            PipelineError::Sink(format!(
                "cannot move {} to {}: {e}",
                partial.display(),
                target.display()
            ))
        })?;
        Ok(Some(format!("output in {}", target.display())))
    }
}
