//! `--lock-file`: one run at a time. An exclusive `flock` is held for the
//! whole run; the kernel releases it when the process ends however it ends,
//! so a killed run never leaves a stale lock behind. The file records who
//! holds it, for the message a second run prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A held lock; released when dropped (or when the process exits).
pub struct RunLock {
    file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; what it wrote about itself.
    Held(String),
    /// The file could not be opened or locked.
    Io(std::io::Error),
}

impl RunLock {
    /// Takes the lock without waiting.
    pub fn acquire(path: &Path) -> Result<RunLock, LockError> {
        let mut file = crate::safe_fs::open_in_place(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
            false,
        )
        .map_err(LockError::Io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held(if holder.is_empty() {
                    "another process".into()
                } else {
                    holder.to_string()
                }));
            }
            Err(TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        // Only who and since when: the command line may hold secrets.
        let me = format!(
            "pid {} since {} (pipeline-cli {})",
            std::process::id(),
            chrono::DateTime::from_timestamp(crate::metrics::unix_now() as i64, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
            env!("CARGO_PKG_VERSION")
        );
        file.set_len(0).map_err(LockError::Io)?;
        file.seek(SeekFrom::Start(0)).map_err(LockError::Io)?;
        file.write_all(me.as_bytes()).map_err(LockError::Io)?;
        file.flush().map_err(LockError::Io)?;
        Ok(RunLock { file })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        let first = RunLock::acquire(&path).unwrap();
        match RunLock::acquire(&path) {
            Err(LockError::Held(who)) => assert!(
                who.contains(&format!("pid {}", std::process::id())),
                "{who}"
            ),
            Err(LockError::Io(e)) => panic!("expected Held, got {e}"),
            Ok(_) => panic!("expected Held, got the lock"),
        }
        drop(first);
        assert!(RunLock::acquire(&path).is_ok());
    }
}
