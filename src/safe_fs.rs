//! Opening the files a run writes so that nobody who can write their
//! directory can lead the run into writing another file: a file written in
//! place (the output's `.partial`, the dead-letter file, the lock file) is
//! opened with `O_NOFOLLOW` and must be a regular file with no other hard
//! link; a temporary file (of an atomic write) gets an unpredictable name
//! and is created with `O_EXCL`, so a link or file planted under any name
//! is never written through.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `<path>.partial`, the file an output is written to while a run lasts.
pub fn partial_path(target: &Path) -> PathBuf {
    let mut p = target.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// What an existing path is, in words, when it is not a regular file
/// (`None` for a regular file or a missing path).
pub fn not_regular(path: &Path, devices_ok: bool) -> Option<&'static str> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if devices_ok && meta.file_type().is_symlink() && planted_by_owner(path) {
        return None;
    }
    describe(&meta, devices_ok)
}

/// True when the link `path` is one of the system's own names under
/// `/dev` or `/proc` (`/dev/stderr`, `/proc/self/fd/2`), in a directory
/// that only root or this process's own user can write (not `/dev/shm`):
/// nobody else can have planted it, so it may be followed where a device is
/// acceptable (the dead-letter file).
fn planted_by_owner(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    if !(path.starts_with("/dev") || path.starts_with("/proc")) {
        return false;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(meta) = std::fs::metadata(dir) else {
        return false;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    (meta.uid() == 0 || meta.uid() == me) && meta.permissions().mode() & 0o022 == 0
}

fn describe(meta: &std::fs::Metadata, devices_ok: bool) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_symlink() {
        Some("a symbolic link")
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() && devices_ok {
        None
    } else {
        Some("a device")
    }
}

/// The refusal of a path that is not a regular file of its own.
fn refusal(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}; pipeline-cli writes only regular files and never through links: remove it or give another path"),
    )
}

/// Opens `path` for writing where it is, with `options` (create, append,
/// …), never through a symbolic link in its last component and never a
/// FIFO, socket or directory (opening a FIFO would block, writing it would
/// hand the output to whoever reads it), nor a regular file that has other
/// hard links (another name of someone else's file). `devices_ok` lets a
/// character device through (`/dev/null`).
pub fn open_in_place(path: &Path, options: &mut OpenOptions, devices_ok: bool) -> io::Result<File> {
    // A link only its owner could have planted (`/dev/stderr`) is followed
    // where a device is acceptable: it leads where the user pointed it.
    let trusted_link = devices_ok
        && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        && planted_by_owner(path);
    if trusted_link {
        let file = options.custom_flags(libc::O_CLOEXEC).open(path)?;
        if file.metadata()?.is_dir() {
            return Err(refusal("a directory"));
        }
        return Ok(file);
    }
    // O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking.
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refusal("a symbolic link"),
            Some(libc::ENXIO) | Some(libc::EISDIR) => match not_regular(path, devices_ok) {
                Some(what) => refusal(what),
                None => e,
            },
            _ => e,
        })?;
    let meta = file.metadata()?;
    if let Some(what) = describe(&meta, devices_ok) {
        return Err(refusal(what));
    }
    if meta.file_type().is_file() && meta.nlink() > 1 {
        return Err(refusal("a regular file with other hard links"));
    }
    set_blocking(&file)?;
    Ok(file)
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns, reading
    // and then setting its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A name no one can guess: 64 random bits (std's hasher keys are drawn
/// from the operating system's randomness) mixed with a per-process count.
fn random_suffix() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Reads a file this run wrote before (a previous textfile), never through
/// a link planted at its name.
pub fn read_own(path: &Path) -> io::Result<String> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(refusal("not a regular file"));
    }
    let mut text = String::new();
    io::Read::read_to_string(&mut f, &mut text)?;
    Ok(text)
}

/// The directory of `path` (`.` for a bare name).
pub fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates a new, hidden file beside `path`, `.<name>.<random>.<tag>`, with
/// `O_EXCL` (a name that exists, a planted link included, is never opened:
/// another name is drawn). The caller removes it if it does not rename it.
pub fn create_temp_beside(path: &Path, tag: &str) -> io::Result<(File, PathBuf)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pipeline".into());
    let mut last = None;
    for _ in 0..16 {
        let tmp = dir_of(path).join(format!(".{name}.{}.{tag}", random_suffix()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary name left")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_in_place(path: &Path) -> io::Result<File> {
        open_in_place(path, OpenOptions::new().append(true).create(true), false)
    }

    #[test]
    fn links_fifos_and_other_names_of_a_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = write_in_place(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // A dangling link is not created through either.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("new"), &dangling).unwrap();
        assert!(write_in_place(&dangling).is_err());
        assert!(!dir.path().join("new").exists());
        let hard = dir.path().join("hard");
        std::fs::hard_link(&victim, &hard).unwrap();
        let e = write_in_place(&hard).unwrap_err();
        assert!(e.to_string().contains("hard links"), "{e}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = write_in_place(&fifo).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = write_in_place(dir.path()).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        // Regular files, new or existing, are opened.
        let mut f = write_in_place(&dir.path().join("fresh")).unwrap();
        io::Write::write_all(&mut f, b"x").unwrap();
        assert!(write_in_place(&dir.path().join("fresh")).is_ok());
        // A character device only where allowed.
        let null = Path::new("/dev/null");
        assert!(write_in_place(null).is_err());
        assert!(open_in_place(null, OpenOptions::new().append(true), true).is_ok());
    }

    #[test]
    fn temporary_names_are_new_and_unpredictable() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state.json");
        let (_, a) = create_temp_beside(&target, "tmp").unwrap();
        let (_, b) = create_temp_beside(&target, "tmp").unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(".state.json.") && name.ends_with(".tmp"),
            "{name}"
        );
        let random = &name[".state.json.".len()..name.len() - ".tmp".len()];
        assert_eq!(random.len(), 16, "{name}");
        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    }
}
