//! The dead-letter file: every rejected record, one JSON object per line, with
//! where it came from, what it was and why it was rejected, so nothing is
//! silently dropped. Each entry carries the `run_id` of the run that wrote
//! it, as its log lines do.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::json;

use crate::error::{ErrorType, PipelineError, Stage};
use crate::record::{Record, Value};

/// Appends rejected records to `--dead-letter PATH`; a no-op without it.
///
/// Each entry is one write of one whole line, so a record counted as failed
/// is in the file even if the process is ended before the run finishes.
/// When a write fails (a full disk), the file is cut back to its last whole
/// line and every later entry is counted in [`DeadLetter::lost`] instead.
pub struct DeadLetter {
    path: Option<PathBuf>,
    out: Option<Mutex<Appender>>,
    lost: AtomicU64,
    /// An entry being written holds a second signal's exit back.
    shutdown: Option<crate::shutdown::Shutdown>,
}

struct Appender {
    file: File,
    /// Length of the file: where a torn entry is cut back to.
    len: u64,
    /// Set once a write failed.
    broken: bool,
    line: Vec<u8>,
}

impl DeadLetter {
    /// Opens (creating or appending to) the dead-letter file, if one is asked for.
    pub fn open(path: Option<&Path>) -> Result<DeadLetter, PipelineError> {
        let Some(path) = path else {
            return Ok(DeadLetter {
                path: None,
                out: None,
                lost: AtomicU64::new(0),
                shutdown: None,
            });
        };
        // Never through a link or into another file's hard link; a
        // character device (`/dev/null`) is taken as it is.
        let file =
            crate::safe_fs::open_in_place(path, OpenOptions::new().create(true).append(true), true)
                .map_err(|source| PipelineError::OpenOutput {
                    what: "--dead-letter",
                    path: path.to_path_buf(),
                    source,
                })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(DeadLetter {
            path: Some(path.to_path_buf()),
            out: Some(Mutex::new(Appender {
                file,
                len,
                broken: false,
                line: Vec::with_capacity(1024),
            })),
            lost: AtomicU64::new(0),
            shutdown: None,
        })
    }

    /// A second signal waits for the entry being written (so the file
    /// never ends in a torn entry), as it waits for a sink's batch.
    pub fn holding_exit(mut self, shutdown: &crate::shutdown::Shutdown) -> DeadLetter {
        self.shutdown = Some(shutdown.clone());
        self
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A source row that could not be turned into a record. `raw` is the row
    /// as read; bytes that are not UTF-8 are also given in hex so nothing is lost.
    pub fn source_row(
        &self,
        (position, tag): (u64, Option<&str>),
        file: Option<&str>,
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
            "position": position,
            "reason": reason,
            "raw": String::from_utf8_lossy(raw),
        });
        if std::str::from_utf8(raw).is_err() {
            entry["raw_hex"] = json!(hex(raw));
        }
        if let Some(f) = file {
            entry["file"] = json!(f);
        }
        if let Some(t) = tag {
            entry["checkpoint"] = json!(t);
        }
        self.write(entry)
    }

    /// A record a sink rejected.
    /// `tag`: the row's name with `--checkpoint` (`id:stream:ordinal`).
    pub fn sink_record(
        &self,
        record: &Record,
        error_type: ErrorType,
        reason: &str,
        tag: Option<&str>,
    ) -> std::io::Result<()> {
        if self.out.is_none() {
            return Ok(());
        }
        let mut entry = sink_entry(record, error_type, reason, None);
        if let Some(t) = tag {
            entry["checkpoint"] = json!(t);
        }
        self.write(entry)
    }

    /// A record of a batch whose commit is in doubt: `"in_doubt": true` and
    /// the transaction id, so it is replayed only if that transaction was
    /// rolled back (a later run commits it when it was prepared).
    pub fn sink_record_in_doubt(
        &self,
        record: &Record,
        xid: &str,
        reason: &str,
    ) -> std::io::Result<()> {
        if self.out.is_none() {
            return Ok(());
        }
        self.write(sink_entry(record, ErrorType::Connection, reason, Some(xid)))
    }

    fn write(&self, mut entry: serde_json::Value) -> std::io::Result<()> {
        let Some(out) = &self.out else {
            return Ok(());
        };
        entry["run_id"] = json!(crate::report::run_id());
        let mut out = out.lock().expect("dead-letter lock");
        let out = &mut *out;
        if out.broken {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        out.line.clear();
        serde_json::to_writer(&mut out.line, &entry)?;
        out.line.push(b'\n');
        let _writing = self.shutdown.as_ref().map(|s| s.critical());
        match out.file.write_all(&out.line) {
            Ok(()) => {
                out.len += out.line.len() as u64;
                Ok(())
            }
            Err(e) => {
                out.broken = true;
                self.lost.fetch_add(1, Ordering::Relaxed);
                let _ = out.file.set_len(out.len);
                Err(e)
            }
        }
    }

    /// Failed records that could not be kept because writing the file failed.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Syncs the file to disk.
    pub fn flush(&self) -> std::io::Result<()> {
        if let Some(out) = &self.out {
            let out = out.lock().expect("dead-letter lock");
            // A character device (`/dev/null`) has nothing to sync.
            if out.file.metadata()?.is_file() {
                out.file.sync_data()?;
            }
        }
        Ok(())
    }
}

/// Every key an entry may have. `--jsonl-format auto` takes a file for a
/// dead-letter file only when its first entry has no other key: a key added
/// to the entries is added here too.
pub const ENTRY_KEYS: [&str; 13] = [
    "stage",
    "error_type",
    "position",
    "reason",
    "record",
    "values",
    "raw",
    "raw_hex",
    "file",
    "in_doubt",
    "xid",
    "run_id",
    "checkpoint",
];

/// The entry of a record a sink rejected (`xid`: its batch is in doubt).
/// `"values": "text"` says its strings are text as a CSV file holds it, not
/// JSON strings (a JSON column takes such a text as JSON), so a replay
/// gives the sink the same values.
fn sink_entry(
    record: &Record,
    error_type: ErrorType,
    reason: &str,
    xid: Option<&str>,
) -> serde_json::Value {
    let mut entry = json!({
        "stage": Stage::Sink.as_str(),
        "error_type": error_type.as_str(),
        "position": record.position,
        "reason": reason,
    });
    if let Some(xid) = xid {
        entry["in_doubt"] = json!(true);
        entry["xid"] = json!(xid);
    }
    entry["record"] = record.to_json();
    if record.values.iter().any(|v| matches!(v, Value::Str(_))) {
        entry["values"] = json!("text");
    }
    if let Some(f) = record.schema.origin() {
        entry["file"] = json!(f);
    }
    entry
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
