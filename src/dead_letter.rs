//! The dead-letter file: every rejected record, one JSON object per line, with
//! where it came from, what it was and why it was rejected, so nothing is
//! silently dropped.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

use crate::error::{ErrorType, PipelineError, Stage};
use crate::record::Record;

/// Appends rejected records to `--dead-letter PATH`; a no-op without it.
pub struct DeadLetter {
    path: Option<PathBuf>,
    out: Option<Mutex<BufWriter<File>>>,
}

impl DeadLetter {
    /// Opens (creating or appending to) the dead-letter file, if one is asked for.
    pub fn open(path: Option<&Path>) -> Result<DeadLetter, PipelineError> {
        let Some(path) = path else {
            return Ok(DeadLetter {
                path: None,
                out: None,
            });
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| PipelineError::OpenOutput {
                what: "--dead-letter",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(DeadLetter {
            path: Some(path.to_path_buf()),
            out: Some(Mutex::new(BufWriter::new(file))),
        })
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A source row that could not be turned into a record. `raw` is the row
    /// as read; bytes that are not UTF-8 are also given in hex so nothing is lost.
    pub fn source_row(
        &self,
        position: u64,
        raw: &[u8],
        error_type: ErrorType,
        reason: &str,
    ) -> std::io::Result<()> {
        if self.out.is_none() {
            return Ok(());
        }
        let mut entry = json!({
            "stage": Stage::Source.as_str(),
            "error_type": error_type.as_str(),
            "line": position,
            "reason": reason,
            "raw": String::from_utf8_lossy(raw),
        });
        if std::str::from_utf8(raw).is_err() {
            entry["raw_hex"] = json!(hex(raw));
        }
        self.write(&entry)
    }

    /// A record a sink rejected.
    pub fn sink_record(
        &self,
        record: &Record,
        error_type: ErrorType,
        reason: &str,
    ) -> std::io::Result<()> {
        if self.out.is_none() {
            return Ok(());
        }
        self.write(&json!({
            "stage": Stage::Sink.as_str(),
            "error_type": error_type.as_str(),
            "position": record.position,
            "reason": reason,
            "record": record.to_json(),
        }))
    }

    fn write(&self, entry: &serde_json::Value) -> std::io::Result<()> {
        if let Some(out) = &self.out {
            let mut out = out.lock().expect("dead-letter lock");
            serde_json::to_writer(&mut *out, entry)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Flushes buffered entries to disk.
    pub fn flush(&self) -> std::io::Result<()> {
        if let Some(out) = &self.out {
            let mut out = out.lock().expect("dead-letter lock");
            out.flush()?;
            out.get_ref().sync_data()?;
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
