//! `--lock-file`: one run at a time. An exclusive `flock` is held for the
//! whole run; the kernel releases it when the process ends however it ends,
//! so a killed run never leaves a stale lock behind. The file records who
//! holds it, for the message a second run prints.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped (or when the process exits).
pub struct RunLock {
    file: File,
    path: PathBuf,
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
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(LockError::Io)?;
        // SAFETY: flock on a file descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held(if holder.is_empty() {
                    "another process".into()
                } else {
                    holder.to_string()
                }));
            }
            return Err(LockError::Io(err));
        }
        // Only who and since when: the command line may hold secrets.
        let me = format!(
            "pid {} since {} (pipeline-cli {})",
            std::process::id(),
            crate::metrics::unix_now() as u64,
            env!("CARGO_PKG_VERSION")
        );
        file.set_len(0).map_err(LockError::Io)?;
        file.seek(SeekFrom::Start(0)).map_err(LockError::Io)?;
        file.write_all(me.as_bytes()).map_err(LockError::Io)?;
        file.flush().map_err(LockError::Io)?;
        Ok(RunLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        // SAFETY: unlocking the descriptor this value owns.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
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
            other => panic!(
                "expected Held, got {:?}",
                other.map(|l| l.path().to_path_buf())
            ),
        }
        drop(first);
        assert!(RunLock::acquire(&path).is_ok());
    }
}
