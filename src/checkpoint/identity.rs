//! What a checkpoint belongs to: the job (what is read, how, and where it
//! goes) and each input file as it was (device, inode, size, modification
//! and change time, a hash of its first block). A checkpoint of another job, or of an
//! input that changed, cannot say which rows are done: it is refused.

use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};

use crate::config::{Config, InputPath, SinkConfig, SourceConfig};
use crate::error::PipelineError;

/// Bytes of an input's start that are hashed.
const HEAD: usize = 64 * 1024;

/// A job, as a checkpoint knows it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The parts that decide which rows are read and where they go, in
    /// words (`; `-separated), without secrets.
    pub text: String,
    /// A hash of `text`.
    pub hash: String,
    /// Each input file as it is now.
    pub inputs: Json,
}

/// FNV-1a, 64 bits: stable across runs and versions.
pub(super) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The job `config` runs.
pub fn job_of(config: &Config) -> Result<Identity, PipelineError> {
    let mut parts: Vec<String> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let refuse = |what: &str| {
        PipelineError::Config(format!(
            "--checkpoint needs an input that can be read again from its start; {what} is read once"
        ))
    };
    match &config.source {
        SourceConfig::Csv(c) => {
            if c.list.is_none() && c.input == InputPath::Stdin {
                return Err(refuse("standard input"));
            }
            files = config.source.input_files().1;
            parts.push("source=csv".into());
            parts.push(format!("delimiter={:?}", c.delimiter as char));
            parts.push(format!("header={}", c.has_header));
            parts.push(format!("infer-types={}", c.infer_types));
        }
        SourceConfig::Jsonl(c) => {
            if c.list.is_none() && c.input == InputPath::Stdin {
                return Err(refuse("standard input"));
            }
            files = config.source.input_files().1;
            parts.push("source=ndjson".into());
            parts.push(format!("format={:?}", c.format));
        }
        SourceConfig::Elasticsearch(c) => {
            let hosts: Vec<String> = c
                .urls
                .iter()
                .map(|u| {
                    format!(
                        "{}://{}:{}{}",
                        u.scheme(),
                        u.host_str().unwrap_or(""),
                        u.port_or_known_default().unwrap_or(0),
                        u.path()
                    )
                })
                .collect();
            parts.push("source=elasticsearch".into());
            parts.push(format!("servers={}", hosts.join(",")));
            parts.push(format!("index={}", c.index));
            parts.push(format!("query={}", c.query));
            parts.push(format!("fields={:?}", c.fields));
            parts.push(format!("meta-fields={:?}", c.meta_fields));
            parts.push(format!("slices={}", c.slices));
            if let Some(id) = c.slice_id {
                parts.push(format!("slice-id={id}"));
            }
        }
    }
    // A link to a regular file is read again like the file; a named pipe
    // or a device is read once.
    for f in &files {
        if let Ok(meta) = std::fs::metadata(f) {
            if !meta.is_file() && !meta.is_dir() {
                return Err(refuse(&format!("{} (not a regular file)", f.display())));
            }
        }
    }
    if !files.is_empty() {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        parts.push(format!("files={}", names.join(",")));
    }
    match &config.sink {
        SinkConfig::Mysql(m) => {
            parts.push(format!(
                "sink=mysql {}:{}/{}.{}",
                m.host, m.port, m.database, m.table
            ));
            parts.push(format!("on-duplicate={:?}", m.on_duplicate));
            parts.push(format!("key={}", m.key.join(",")));
        }
        SinkConfig::File(f) => {
            parts.push(format!("sink=file {:?}", f.output));
            parts.push(format!("compression={:?}", f.compression));
        }
    }
    if let Some(flatten) = &config.flatten {
        parts.push(format!("flatten={flatten:?}"));
    }
    if let Some((i, n)) = config.slice {
        parts.push(format!("shard={i}/{n}"));
    }
    let text = parts.join("; ");
    let inputs = files
        .iter()
        .map(|f| input_now(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(f, e)| PipelineError::OpenInput {
            what: "input file",
            path: f,
            source: e,
        })?;
    Ok(Identity {
        hash: format!("{:016x}", fnv(text.as_bytes())),
        text,
        inputs: Json::Array(inputs),
    })
}

/// An input file as it is now.
fn input_now(path: &Path) -> Result<Json, (PathBuf, std::io::Error)> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let err = |e| (path.to_path_buf(), e);
    let mut f = std::fs::File::open(path).map_err(err)?;
    let meta = f.metadata().map_err(err)?;
    let mut head = vec![0u8; HEAD];
    let mut got = 0;
    while got < HEAD {
        match f.read(&mut head[got..]).map_err(err)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(json!({
        "path": path.display().to_string(),
        "device": meta.dev(),
        "inode": meta.ino(),
        "size": meta.size(),
        "modified_ns": meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        // Changed by any write, and cannot be set back.
        "changed_ns": meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        "head_fnv": format!("{:016x}", fnv(&head[..got])),
    }))
}

impl Identity {
    /// True when every input has the size and first block it had (its
    /// times or inode may differ).
    pub fn same_content(&self, saved: &Json) -> bool {
        let empty = Vec::new();
        let now = self.inputs.as_array().unwrap_or(&empty);
        let was = saved.as_array().unwrap_or(&empty);
        now.len() == was.len()
            && now
                .iter()
                .zip(was)
                .all(|(n, w)| n["size"] == w["size"] && n["head_fnv"] == w["head_fnv"])
    }

    /// Refuses the checkpoint at `path` when an input is not as it was
    /// when the checkpoint was first written.
    pub fn check_inputs(&self, saved: &Json, path: &Path) -> Result<(), PipelineError> {
        let empty = Vec::new();
        let now = self.inputs.as_array().unwrap_or(&empty);
        let was = saved.as_array().unwrap_or(&empty);
        for (now, was) in now.iter().zip(was) {
            let name = now["path"].as_str().unwrap_or("?");
            let change = if now["size"] != was["size"] {
                Some(format!(
                    "its size was {} bytes and is {} (appended to, or cut)",
                    was["size"], now["size"]
                ))
            } else if now["device"] != was["device"] || now["inode"] != was["inode"] {
                Some("it is another file now (replaced)".to_string())
            } else if now["head_fnv"] != was["head_fnv"] {
                Some("its content is not the same".to_string())
            } else if now["modified_ns"] != was["modified_ns"]
                || now["changed_ns"] != was["changed_ns"]
            {
                Some(
                    "it was modified (its modification or change time is not the same)".to_string(),
                )
            } else {
                None
            };
            if let Some(change) = change {
                return Err(PipelineError::Config(format!(
                    "input {name} changed since --checkpoint '{}' was written ({change}): which of its rows are loaded cannot be told; --restart to load it from the start",
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

/// The parts of job text `a` that are not in `b` (what differs).
pub(super) fn differs(a: &str, b: &str) -> String {
    let theirs: Vec<&str> = b.split("; ").collect();
    let ours: Vec<&str> = a.split("; ").filter(|p| !theirs.contains(p)).collect();
    if ours.is_empty() {
        a.to_string()
    } else {
        ours.join("; ")
    }
}
