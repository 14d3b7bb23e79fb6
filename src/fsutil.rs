//! Files pipeline-cli writes besides its output: the one atomic write
//! (temporary file beside the target, fsync, rename) for the state file and
//! the metrics textfile, and the check, before anything is opened for
//! writing, that no two paths of a run name the same file and that every
//! file the run will write at its end can be written.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, OutputPath, SinkConfig, SourceConfig};
use crate::error::PipelineError;
use crate::safe_fs::{create_temp_beside, dir_of, not_regular, partial_path};

/// Writes `bytes` to `path` atomically: a new temporary file in the same
/// directory (hidden, so collectors that read `*.prom` ignore it; its name
/// unpredictable and created with `O_EXCL`, so nothing planted there is
/// written through), fsync, rename over `path`. On error the temporary file
/// is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    stage_atomic(path, bytes)?.commit()
}

/// The first half of [`write_atomic`]: `bytes` written and synced to a new
/// temporary file beside `path`, put into place by [`Staged::commit`]. A
/// staged file that is dropped uncommitted is removed.
pub fn stage_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<Staged> {
    let (mut f, tmp) = create_temp_beside(path, "tmp")?;
    let staged = Staged {
        tmp: Some(tmp),
        path: path.to_path_buf(),
    };
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(staged)
}

/// A file written beside its place, not yet renamed onto it.
pub struct Staged {
    tmp: Option<PathBuf>,
    path: PathBuf,
}

impl Staged {
    /// Renames the file onto its place (and syncs the directory).
    pub fn commit(mut self) -> std::io::Result<()> {
        let tmp = self.tmp.take().expect("staged once");
        if let Err(e) = std::fs::rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        // The rename itself reaches the disk with the directory.
        if let Ok(dir) = std::fs::File::open(dir_of(&self.path)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// What a path resolves to: the file itself when it exists (device and
/// inode, so hard links and symlinks are seen through), and the absolute
/// path it would have.
struct Resolved {
    inode: Option<(u64, u64)>,
    absolute: PathBuf,
}

fn resolve(path: &Path) -> Resolved {
    let inode = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| {
        let dir = std::fs::canonicalize(dir_of(path)).unwrap_or_else(|_| dir_of(path).into());
        match path.file_name() {
            Some(name) => dir.join(name),
            None => dir,
        }
    });
    Resolved { inode, absolute }
}

impl Resolved {
    fn same(&self, other: &Resolved) -> bool {
        match (self.inode, other.inode) {
            (Some(a), Some(b)) => a == b,
            _ => self.absolute == other.absolute,
        }
    }
}

/// One path a run writes, with the flag that named it.
struct Written {
    what: String,
    path: PathBuf,
}

fn config_error(msg: String) -> PipelineError {
    PipelineError::Config(msg)
}

/// Refuses (exit 2, before anything is opened for writing) a run whose
/// paths collide: an output that is the input, an input named like the
/// output's `.partial`, two outputs that are one file, a lock file or
/// metrics textfile that already holds something else; and checks that the
/// files written only at the end (textfile, state file) can be written.
pub fn check_paths(config: &Config) -> Result<(), PipelineError> {
    let (flag, inputs) = config.source.input_files();
    let written = written_paths(config);
    check_dirs_exist(&written)?;
    let resolved: Vec<Resolved> = written.iter().map(|w| resolve(&w.path)).collect();
    check_not_inputs(flag, &inputs, &written, &resolved)?;
    check_distinct(&written, &resolved)?;
    check_regular(&written)?;
    check_end_files(config)
}

/// Every path the run writes, in flag order (the output before the files
/// that go with it).
fn written_paths(config: &Config) -> Vec<Written> {
    let mut written: Vec<Written> = Vec::new();
    let mut add = |what: &str, path: &Path| {
        written.push(Written {
            what: what.to_string(),
            path: path.to_path_buf(),
        })
    };
    if let SinkConfig::File(f) = &config.sink {
        if let OutputPath::File(p) = &f.output {
            add("--output-file", p);
            add(
                "the temporary output (--output-file + .partial)",
                &partial_path(p),
            );
        }
    }
    if let Some(p) = &config.dead_letter {
        add("--dead-letter", p);
    }
    if let Some(p) = &config.lock_file {
        add("--lock-file", p);
    }
    if let Some(p) = &config.textfile {
        add("--metrics-textfile", p);
    }
    if let Some(OutputPath::File(p)) = &config.summary_json {
        add("--summary-json", p);
    }
    if let Some(p) = state_file(config) {
        add("--state-file", p);
    }
    if let Some(c) = &config.checkpoint {
        add("--checkpoint", &c.path);
        if config.lock_file.as_ref() != Some(&c.lock) {
            add("the checkpoint's lock (--checkpoint + .lock)", &c.lock);
        }
    }
    written
}

/// `--state-file`, whatever the source does with it.
fn state_file(config: &Config) -> Option<&Path> {
    match &config.source {
        SourceConfig::Elasticsearch(es) => es.state_file.as_deref(),
        other => other.files_once().map(|o| o.state_file.as_path()),
    }
}

/// A missing directory is the real problem, said first, in flag order.
fn check_dirs_exist(written: &[Written]) -> Result<(), PipelineError> {
    for w in written
        .iter()
        .filter(|w| !w.what.starts_with("the temporary"))
    {
        let dir = match w.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(config_error(format!(
                "{} '{}': the directory '{}' does not exist; create it first",
                w.what,
                w.path.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// No written path is one of the input files (`flag`): a glob may well
/// match the previous run's output.
fn check_not_inputs(
    flag: &str,
    inputs: &[PathBuf],
    written: &[Written],
    resolved: &[Resolved],
) -> Result<(), PipelineError> {
    for input in inputs {
        let r = resolve(input);
        for (w, o) in written.iter().zip(resolved) {
            if r.same(o) {
                return Err(config_error(if w.what.starts_with("the temporary") {
                    format!(
                        "{flag} '{}' is the temporary file of --output-file: it would be emptied before it is read; rename it or choose another --output-file",
                        input.display()
                    )
                } else {
                    format!(
                        "{} '{}' is the input file ({flag}): it would be overwritten; choose another path",
                        w.what,
                        w.path.display()
                    )
                }));
            }
        }
    }
    Ok(())
}

/// No two written paths are one file.
fn check_distinct(written: &[Written], resolved: &[Resolved]) -> Result<(), PipelineError> {
    for i in 0..written.len() {
        for j in i + 1..written.len() {
            if resolved[i].same(&resolved[j]) {
                return Err(config_error(format!(
                    "{} and {} name the same file '{}'; give each its own path",
                    written[i].what,
                    written[j].what,
                    written[i].path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Nothing is written through a link, into a FIFO or a device: whoever can
/// write a directory must not be able to point a run elsewhere.
fn check_regular(written: &[Written]) -> Result<(), PipelineError> {
    for w in written {
        if let Some(what) = not_regular(&w.path, w.what == "--dead-letter") {
            return Err(config_error(format!(
                "{} '{}' is {what}; pipeline-cli writes only regular files and never through links: remove it or give another path",
                w.what,
                w.path.display()
            )));
        }
    }
    Ok(())
}

/// The lock file and the metrics textfile hold nothing but what
/// pipeline-cli writes there, and the files written only at the end
/// (textfile, state file) can be written.
fn check_end_files(config: &Config) -> Result<(), PipelineError> {
    if let Some(p) = &config.lock_file {
        check_not_foreign(p, "--lock-file", |text| {
            text.is_empty() || (text.starts_with("pid ") && text.contains("pipeline-cli"))
        })?;
    }
    if let Some(p) = &config.textfile {
        check_not_foreign(p, "--metrics-textfile", |text| {
            text.is_empty() || text.starts_with("# HELP ") || text.starts_with("# TYPE ")
        })?;
        check_writable_dir(p, "--metrics-textfile")?;
    }
    if let Some(p) = state_file(config) {
        if p.is_dir() {
            return Err(config_error(format!(
                "--state-file '{}' is a directory",
                p.display()
            )));
        }
        check_writable_dir(p, "--state-file")?;
    }
    if let Some(once) = config.source.files_once() {
        // --after-load: files are put into DIR and taken from their own.
        if let crate::config::AfterLoad::Move(dir) = &once.after_load {
            check_writable_dir(&dir.join("file"), "--after-load move:DIR")?;
        }
        if once.after_load != crate::config::AfterLoad::Keep {
            for f in config.source.input_files().1 {
                check_writable_dir(&f, "--after-load: the directory of input file")?;
            }
        }
    }
    Ok(())
}

/// An existing file at `path` must look like what pipeline-cli writes there;
/// anything else would be overwritten, so it is refused.
fn check_not_foreign(
    path: &Path,
    what: &str,
    ours: impl Fn(&str) -> bool,
) -> Result<(), PipelineError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if meta.is_dir() {
        return Err(config_error(format!(
            "{what} '{}' is a directory",
            path.display()
        )));
    }
    let mut head = vec![0u8; 256];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]);
    if ours(&text) {
        Ok(())
    } else {
        Err(config_error(format!(
            "{what} '{}' already exists and holds other data; pipeline-cli would overwrite it: choose another path",
            path.display()
        )))
    }
}

/// The directory of `path` must take a new file (how atomic writes work).
/// Asked of the kernel (`faccessat` with the effective ids: permissions,
/// ACLs, a read-only mount), so nothing is written, not even by `--check`.
fn check_writable_dir(path: &Path, what: &str) -> Result<(), PipelineError> {
    use std::os::unix::ffi::OsStrExt;
    let dir = dir_of(path);
    let refused = match std::ffi::CString::new(dir.as_os_str().as_bytes()) {
        Ok(c) => {
            // SAFETY: a valid C string that lives through the call.
            let r = unsafe {
                libc::faccessat(
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    libc::W_OK | libc::X_OK,
                    libc::AT_EACCESS,
                )
            };
            r != 0
        }
        Err(_) => false,
    };
    if refused {
        let e = std::io::Error::last_os_error();
        return Err(config_error(format!(
            "{what} '{}' cannot be written: {e} (in {})",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory in the way: the write fails and leaves no temporary file.
        let blocked = dir.path().join("sub");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"keep").unwrap();
        assert!(write_atomic(&blocked, b"three").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // Staged and dropped: nothing changes, nothing is left behind.
        let staged = stage_atomic(&path, b"four").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        drop(staged);
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        stage_atomic(&path, b"five").unwrap().commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"five");
    }

    #[test]
    fn atomic_writes_never_write_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let path = dir.path().join("state.json");
        // The name the temporary file once had, predictable from the pid.
        let old = dir
            .path()
            .join(format!(".state.json.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(std::fs::symlink_metadata(&old).unwrap().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn the_same_file_is_found_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        std::fs::write(&a, b"x").unwrap();
        let b = dir.path().join("b.csv");
        std::fs::hard_link(&a, &b).unwrap();
        let c = dir.path().join("c.csv");
        std::os::unix::fs::symlink(&a, &c).unwrap();
        assert!(resolve(&a).same(&resolve(&b)));
        assert!(resolve(&a).same(&resolve(&c)));
        let missing = dir.path().join("sub/../missing");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(resolve(&missing).same(&resolve(&dir.path().join("missing"))));
        assert!(!resolve(&a).same(&resolve(&missing)));
    }
}
