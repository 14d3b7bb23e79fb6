//! `--after-load`: input files moved or deleted once their records are
//! committed. A move never replaces a file: the first free name of
//! `NAME`, `STEM-1.EXT`, `STEM-2.EXT` … is taken (STEM: the name up to its
//! first dot), by a rename that refuses to replace (`RENAME_NOREPLACE`, or
//! a hard link where the file system lacks it); across file systems the
//! file is copied to a hidden temporary file in the directory, synced,
//! given its name the same way, and only then removed.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::safe_fs::{create_temp_beside, dir_of};

/// The `n`th name tried for a file called `name`: `name` itself, then
/// `STEM-n.EXT`.
fn candidate(name: &std::ffi::OsStr, n: u32) -> OsString {
    if n == 0 {
        return name.to_os_string();
    }
    let text = name.to_string_lossy();
    // A leading dot belongs to the stem (`.hidden` -> `.hidden-1`).
    let cut = text[1.min(text.len())..]
        .find('.')
        .map_or(text.len(), |i| i + 1);
    format!("{}-{n}{}", &text[..cut], &text[cut..]).into()
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists` then).
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: two valid C strings that live through the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // The file system cannot refuse to replace: a hard link can.
        Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP) => {
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        _ => Err(e),
    }
}

/// Syncs the directory of `path`, so a rename or removal there is on disk.
fn sync_dir_of(path: &Path) {
    if let Ok(d) = std::fs::File::open(dir_of(path)) {
        let _ = d.sync_all();
    }
}

/// Gives `from` the first free name in `dir` for `name`.
fn place(from: &Path, dir: &Path, name: &std::ffi::OsStr) -> io::Result<PathBuf> {
    for n in 0..10_000 {
        let to = dir.join(candidate(name, n));
        match rename_noreplace(from, &to) {
            Ok(()) => return Ok(to),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free name left in the directory"))
}

/// Moves `file` into `dir`, never over a file there; returns where it went.
pub(super) fn move_into(file: &Path, dir: &Path) -> io::Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    match place(file, dir, name) {
        Ok(to) => {
            sync_dir_of(&to);
            sync_dir_of(file);
            Ok(to)
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy_into(file, dir, name),
        Err(e) => Err(e),
    }
}

/// [`move_into`] across file systems: copy, sync, name, remove.
fn copy_into(file: &Path, dir: &Path, name: &std::ffi::OsStr) -> io::Result<PathBuf> {
    let (mut out, tmp) = create_temp_beside(&dir.join(name), "moving")?;
    let copied = (|| {
        let mut input = std::fs::File::open(file)?;
        io::copy(&mut input, &mut out)?;
        out.sync_all()?;
        if let Ok(t) = input.metadata().and_then(|m| m.modified()) {
            let _ = out.set_modified(t);
        }
        place(&tmp, dir, name)
    })();
    let to = match copied {
        Ok(to) => to,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    sync_dir_of(&to);
    std::fs::remove_file(file)?;
    sync_dir_of(file);
    Ok(to)
}

/// Removes `file` (and syncs its directory).
pub(super) fn delete(file: &Path) -> io::Result<()> {
    std::fs::remove_file(file)?;
    sync_dir_of(file);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tried_keep_the_extensions() {
        let names: Vec<String> = ["a.csv", "orders.2026.csv.gz", ".hidden", "plain"]
            .iter()
            .map(|n| {
                candidate(std::ffi::OsStr::new(n), 2)
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            ["a-2.csv", "orders-2.2026.csv.gz", ".hidden-2", "plain-2"]
        );
    }

    #[test]
    fn a_move_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        std::fs::create_dir(&done).unwrap();
        std::fs::write(done.join("a.csv"), "old").unwrap();
        std::fs::write(done.join("a-1.csv"), "older").unwrap();
        for (sub, text) in [("x", "one"), ("y", "two")] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join("a.csv"), text).unwrap();
        }
        let to = move_into(&dir.path().join("x/a.csv"), &done).unwrap();
        assert_eq!(to, done.join("a-2.csv"));
        let to = move_into(&dir.path().join("y/a.csv"), &done).unwrap();
        assert_eq!(to, done.join("a-3.csv"));
        for (n, text) in [
            ("a.csv", "old"),
            ("a-1.csv", "older"),
            ("a-2.csv", "one"),
            ("a-3.csv", "two"),
        ] {
            assert_eq!(std::fs::read_to_string(done.join(n)).unwrap(), text, "{n}");
        }
        assert!(!dir.path().join("x/a.csv").exists());
        // Across file systems (/dev/shm is a tmpfs): copied, then removed.
        let far = tempfile::tempdir_in("/dev/shm").unwrap();
        std::fs::write(far.path().join("a.csv"), "far").unwrap();
        let to = move_into(&far.path().join("a.csv"), &done).unwrap();
        assert_eq!(to, done.join("a-4.csv"));
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "far");
        assert!(!far.path().join("a.csv").exists());
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&done).unwrap().count(), 5);
    }
}
