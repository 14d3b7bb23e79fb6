//! The record of files loaded (`--state-file` with a CSV or NDJSON
//! source): one entry per file, under its real path, with what it was when
//! it was loaded (size, modification time, a SHA-256 of its first 64 KiB),
//! so that the file is known again on the next run, and a file since
//! changed under the same name is told apart from it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::PipelineError;

/// The bytes of a file's start that its identity hashes.
pub(super) const HEAD_BYTES: usize = 64 << 10;

/// What the state file says it is, so another kind of state file is
/// refused rather than overwritten.
const KIND: &str = "pipeline-cli files loaded";

/// What a file is: what tells it apart from a file written since under
/// its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Identity {
    /// Its size in bytes.
    pub(super) size: u64,
    /// Its modification time, in nanoseconds since the epoch.
    pub(super) modified_ns: i64,
    /// SHA-256 of its first 64 KiB (all of it when smaller), in hex.
    pub(super) head_sha256: String,
}

impl Identity {
    /// Of the file at `path` (symbolic links followed), from one opening:
    /// its size and time as they were when its start was read.
    pub(super) fn of(path: &Path) -> std::io::Result<Identity> {
        let f = std::fs::File::open(path)?;
        let meta = f.metadata()?;
        let mut head = Vec::with_capacity(HEAD_BYTES);
        f.take(HEAD_BYTES as u64).read_to_end(&mut head)?;
        Ok(Identity {
            size: meta.len(),
            modified_ns: modified_ns(&meta),
            head_sha256: hex(&sha2::Sha256::digest(&head)),
        })
    }

    /// What differs from `then`, in words.
    pub(super) fn differences(&self, then: &Identity) -> String {
        let mut what = Vec::new();
        if self.size != then.size {
            what.push(format!(
                "its size went from {} to {} bytes",
                then.size, self.size
            ));
        }
        if self.modified_ns != then.modified_ns {
            what.push("its modification time changed".to_string());
        }
        if self.head_sha256 != then.head_sha256 {
            what.push("its first 64 KiB differ".to_string());
        }
        what.join(", ")
    }
}

/// The modification time of `meta` in nanoseconds since the epoch.
pub(super) fn modified_ns(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One file loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Entry {
    /// Its real path (symbolic links resolved).
    pub(super) path: String,
    /// What it was when it was loaded.
    #[serde(flatten)]
    pub(super) identity: Identity,
    /// When it was loaded (UTC).
    pub(super) loaded_at: String,
    /// The run that loaded it.
    pub(super) run_id: String,
}

/// The state file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Loaded {
    kind: String,
    /// The files loaded, in the order they were recorded.
    pub(super) files: Vec<Entry>,
}

/// The key a file is recorded under: its real path.
pub(super) fn key(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

impl Loaded {
    /// What `path` holds; nothing when it does not exist yet. A file that
    /// is not such a record is refused (exit 2).
    pub(super) fn read(path: &Path) -> Result<Loaded, PipelineError> {
        let bad = |why: String| {
            PipelineError::Config(format!("--state-file '{}' {why}; give another --state-file, or remove it to load every file again", path.display()))
        };
        let text = match crate::safe_fs::read_own(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
            Err(e) => return Err(bad(format!("cannot be read: {e}"))),
        };
        let not_ours = || {
            bad("holds something else than the files a CSV or NDJSON source loaded (an Elasticsearch position?)".into())
        };
        let loaded: Loaded = serde_json::from_str(&text).map_err(|_| not_ours())?;
        if loaded.kind != KIND {
            return Err(not_ours());
        }
        Ok(loaded)
    }

    /// The entry of the file recorded under `key`.
    pub(super) fn get(&self, key: &str) -> Option<&Entry> {
        self.files.iter().find(|e| e.path == key)
    }

    /// Records `entry`, replacing the entry of its path.
    pub(super) fn put(&mut self, entry: Entry) {
        match self.files.iter_mut().find(|e| e.path == entry.path) {
            Some(e) => *e = entry,
            None => self.files.push(entry),
        }
    }

    /// Leaves out the entries of files no longer at their path: a new file
    /// written there later is a new file. Returns how many.
    pub(super) fn forget_gone(&mut self) -> usize {
        let before = self.files.len();
        self.files.retain(|e| {
            !matches!(std::fs::symlink_metadata(&e.path), Err(err) if err.kind() == std::io::ErrorKind::NotFound)
        });
        before - self.files.len()
    }

    /// The state file's text.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(&serde_json::json!({
            "kind": KIND,
            "files": self.files,
        }))
        .expect("serializable");
        out.push(b'\n');
        out
    }
}

/// The entry of a file loaded now, by this run.
pub(super) fn entry(path: &Path, identity: Identity) -> Entry {
    let secs = crate::metrics::unix_now() as i64;
    Entry {
        path: key(path),
        identity,
        loaded_at: chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default(),
        run_id: crate::report::run_id().to_string(),
    }
}

/// The real paths of `files`, for the log: the first and the last.
pub(super) fn named(files: &[PathBuf]) -> String {
    match files {
        [] => String::new(),
        [one] => one.display().to_string(),
        [first, .., last] => format!("{} … {}", first.display(), last.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_rewritten_with_the_same_size_and_time_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.csv");
        std::fs::write(&f, "id\n1\n").unwrap();
        let then = Identity::of(&f).unwrap();
        assert_eq!(then, Identity::of(&f).unwrap());
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        std::fs::write(&f, "id\n2\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let now = Identity::of(&f).unwrap();
        assert_eq!((now.size, now.modified_ns), (then.size, then.modified_ns));
        assert_eq!(now.differences(&then), "its first 64 KiB differ");
        // Past the first block, a change of the same size and time is not seen.
        let big = dir.path().join("big.csv");
        let mut text = vec![b'x'; HEAD_BYTES + 10];
        std::fs::write(&big, &text).unwrap();
        let then = Identity::of(&big).unwrap();
        let mtime = std::fs::metadata(&big).unwrap().modified().unwrap();
        text[HEAD_BYTES + 5] = b'y';
        std::fs::write(&big, &text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&big)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(Identity::of(&big).unwrap(), then);
    }

    #[test]
    fn a_state_file_of_another_kind_is_refused_and_a_round_trip_keeps_entries() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.state");
        assert!(Loaded::read(&state).unwrap().files.is_empty());
        for other in [
            "{\"value\":\"2026-01-01\"}",
            "not json",
            "{\"kind\":\"x\",\"files\":[]}",
        ] {
            std::fs::write(&state, other).unwrap();
            let e = Loaded::read(&state).unwrap_err().to_string();
            assert!(e.contains("holds something else"), "{other}: {e}");
        }
        let f = dir.path().join("a.csv");
        std::fs::write(&f, "id\n1\n").unwrap();
        let mut l = Loaded::default();
        l.put(entry(&f, Identity::of(&f).unwrap()));
        std::fs::write(&state, l.to_bytes()).unwrap();
        let back = Loaded::read(&state).unwrap();
        assert_eq!(back.files.len(), 1);
        assert_eq!(
            back.get(&key(&f)).unwrap().identity,
            Identity::of(&f).unwrap()
        );
        std::fs::remove_file(&f).unwrap();
        let mut back = back;
        assert_eq!(back.forget_gone(), 1);
    }
}
