//! A file source's inputs (`--csv-file`, `--jsonl-file`): `-`, or paths and
//! globs expanded into the list of inputs, in the order they are read, cut
//! to `--input-shard` (each file by a hash of its name: [`shard_of`]).
//!
//! Regular files are read in name order. An input that is not a regular
//! file (a named pipe, `/dev/stdin`, a process substitution `<(…)`, a
//! socket) can be read only once, as it comes, and is read at its place on
//! the command line.

use std::path::{Path, PathBuf};

use crate::config::InputPath;
use crate::error::PipelineError;

/// A file source's inputs: `-` alone is standard input; otherwise paths and
/// globs, expanded, each file once ([`dedup`]), put in order ([`order`]),
/// cut to the files of `shard` I of N ([`shard_of`]). One plain path is read
/// as before; anything more is a list. What the run should warn about goes
/// to `notes` (logging has not started yet).
pub(super) fn inputs(
    kind: &str,
    flag: &str,
    given: &[String],
    shard: Option<(u32, u32)>,
    notes: &mut Vec<String>,
) -> Result<(InputPath, Option<Vec<PathBuf>>), PipelineError> {
    let cfg = PipelineError::Config;
    if given.is_empty() {
        return Err(cfg(format!(
            "--source-type {kind} needs {flag} PATH (or `-` for standard input)"
        )));
    }
    if given.iter().any(|g| g == "-") {
        if given.len() > 1 {
            return Err(cfg(format!(
                "{flag} -: standard input cannot be read together with files"
            )));
        }
        if shard.is_some() {
            return Err(cfg(
                "--input-shard splits input files; standard input cannot be split".into(),
            ));
        }
        return Ok((InputPath::Stdin, None));
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let mut globbed = false;
    for g in given {
        if !g.contains(['*', '?', '[']) {
            files.push(PathBuf::from(g));
            continue;
        }
        globbed = true;
        let paths =
            glob::glob(g).map_err(|e| cfg(format!("{flag} '{g}' is not a valid pattern: {e}")))?;
        let mut matched = 0;
        for p in paths {
            let p = p.map_err(|e| cfg(format!("{flag} '{g}': {e}")))?;
            if p.is_file() || p.metadata().is_ok_and(|m| !m.is_dir()) {
                files.push(p);
                matched += 1;
            }
        }
        if matched == 0 {
            return Err(cfg(format!("{flag} '{g}' matches no file")));
        }
    }
    dedup(&mut files, flag, notes);
    order(&mut files);
    if files.len() == 1 && !globbed && shard.is_none() {
        return Ok((InputPath::File(files.remove(0)), None));
    }
    let all = files.len();
    if let Some((i, n)) = shard {
        files.retain(|f| shard_of(f, n) == i);
        if files.is_empty() {
            notes.push(format!("--input-shard {i}/{n}: none of the {all} file(s) falls to this shard; nothing to read"));
        }
    }
    let first = files.first().cloned().unwrap_or_default();
    Ok((InputPath::File(first), Some(files)))
}

/// `--input-shard I/N`.
pub(super) fn parse_shard(text: &str) -> Result<(u32, u32), PipelineError> {
    let bad = || {
        PipelineError::Config(format!(
            "--input-shard '{text}' is not I/N with 0 <= I < N (e.g. 2/4)"
        ))
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u32, u32) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The shard (of `n`) a file falls to: the 64-bit FNV-1a hash of its name
/// (without its directory, which pods may mount in different places) modulo
/// `n`. It depends on that name alone, so a file that arrives between two
/// processes' starts moves no other file to another shard.
fn shard_of(path: &Path, n: u32) -> u32 {
    use std::os::unix::ffi::OsStrExt;
    let name = path.file_name().unwrap_or(path.as_os_str());
    (fnv1a64(name.as_bytes()) % u64::from(n)) as u32
}

/// FNV-1a, 64 bits: a fixed, documented function (std's hasher may differ
/// between builds, and every process of a job must agree).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Keeps the first of the inputs that are one file (the same device and
/// inode: `./a.csv` and `/data/a.csv`, a `latest.csv` symlink matched by the
/// same glob as its target, a hard link), so no file is read twice; each
/// one left out is named in `notes` (unless it is the same path again).
fn dedup(files: &mut Vec<PathBuf>, flag: &str, notes: &mut Vec<String>) {
    use std::os::unix::fs::MetadataExt;
    let mut paths = std::collections::HashSet::new();
    let mut inodes: std::collections::HashMap<(u64, u64), PathBuf> = Default::default();
    files.retain(|f| {
        if !paths.insert(f.clone()) {
            return false;
        }
        // A path that cannot be looked at is kept: opening it says why.
        let Ok(meta) = std::fs::metadata(f) else {
            return true;
        };
        match inodes.entry((meta.dev(), meta.ino())) {
            std::collections::hash_map::Entry::Occupied(first) => {
                notes.push(format!(
                    "{flag} '{}' is the same file as '{}'; it is read once",
                    f.display(),
                    first.get().display()
                ));
                false
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(f.clone());
                true
            }
        }
    });
}

/// True for an input that is neither a regular file nor a directory: a
/// pipe, a socket, a device, read once as it comes. Only looked at, never
/// opened (opening a named pipe would wait for its writer).
fn read_once(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Puts the regular files in name order, in the places regular files hold
/// in `files`; every other input keeps its place (`a.csv <(…) b.csv`: the
/// pipe is read second, whatever its `/dev/fd/N` name).
fn order(files: &mut [PathBuf]) {
    let places: Vec<usize> = (0..files.len())
        .filter(|&i| !read_once(&files[i]))
        .collect();
    let mut regular: Vec<PathBuf> = places.iter().map(|&i| files[i].clone()).collect();
    regular.sort();
    for (i, f) in places.into_iter().zip(regular) {
        files[i] = f;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values computed independently (Python: FNV-1a 64 over the
    /// name's bytes, offset 0xcbf29ce484222325, prime 0x100000001b3).
    #[test]
    fn a_files_shard_is_a_stable_hash_of_its_name() {
        for (name, hash, of3, of4, of7) in [
            ("day-01.csv", 0x1d2ee31df6fb8051u64, 2, 1, 1),
            ("day-02.csv", 0xdcaf9a17bebe5470, 2, 0, 2),
            ("day-03.csv.gz", 0xe69a58cfa651e1e2, 0, 2, 4),
            ("orders-2026-12-01.csv", 0x3da1557f2c8c178b, 0, 3, 0),
            ("a.csv", 0x0eee5bb517eccbf6, 2, 2, 2),
        ] {
            assert_eq!(fnv1a64(name.as_bytes()), hash, "{name}");
            // The directory does not count: pods may mount it elsewhere.
            for dir in ["", "/data/in/", "./"] {
                let path = PathBuf::from(format!("{dir}{name}"));
                assert_eq!(
                    [3, 4, 7].map(|n| shard_of(&path, n)),
                    [of3, of4, of7],
                    "{dir}{name}"
                );
            }
        }
    }

    #[test]
    fn a_file_added_moves_no_other_file_between_shards() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let shards = |n: u32| -> Vec<Vec<PathBuf>> {
            let given = [format!("{}/*.csv", d.display())];
            (0..n)
                .map(|i| {
                    inputs("csv", "--csv-file", &given, Some((i, n)), &mut Vec::new())
                        .unwrap()
                        .1
                        .unwrap()
                })
                .collect()
        };
        for day in [1, 2, 4, 5, 7, 8, 9] {
            std::fs::write(d.join(format!("day-{day:02}.csv")), "x\n").unwrap();
        }
        let before = shards(3);
        // Files arrive, sorting before, between and after the others.
        for day in [0, 3, 6, 10] {
            std::fs::write(d.join(format!("day-{day:02}.csv")), "x\n").unwrap();
        }
        let after = shards(3);
        for (i, (was, is)) in before.iter().zip(&after).enumerate() {
            for f in was {
                assert!(is.contains(f), "{} left shard {i}", f.display());
            }
        }
        // Every file in exactly one shard.
        let mut all: Vec<PathBuf> = after.concat();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 11);
        assert_eq!(after.iter().map(Vec::len).sum::<usize>(), 11);
    }

    #[test]
    fn one_file_named_several_ways_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.csv"), "x\n").unwrap();
        std::fs::write(d.join("b.csv"), "x\n").unwrap();
        std::os::unix::fs::symlink(d.join("a.csv"), d.join("latest.csv")).unwrap();
        std::fs::hard_link(d.join("b.csv"), d.join("b-copy.csv")).unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        let spelled = d.join("sub").join("..").join("a.csv");
        let given: Vec<String> = vec![
            format!("{}/*.csv", d.display()),
            spelled.display().to_string(),
            d.join("a.csv").display().to_string(),
        ];
        let mut notes = Vec::new();
        let (_, list) = inputs("csv", "--csv-file", &given, None, &mut notes).unwrap();
        let names: Vec<_> = list
            .unwrap()
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        // The glob's first match of each file is kept: a.csv, b-copy.csv.
        assert_eq!(names, ["a.csv", "b-copy.csv"]);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("b.csv' is the same file as"), "{notes:?}");
        assert!(
            notes[1].contains("latest.csv' is the same file as"),
            "{notes:?}"
        );
        assert!(
            notes[2].contains("sub/../a.csv' is the same file as"),
            "{notes:?}"
        );
    }

    #[test]
    fn pipes_keep_their_place_and_files_go_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n);
        for n in ["a.csv", "b.csv", "c.csv"] {
            std::fs::write(path(n), "x\n").unwrap();
        }
        for n in ["z.pipe", "y.pipe"] {
            let c = std::ffi::CString::new(path(n).to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
        let mut files: Vec<PathBuf> = ["c.csv", "z.pipe", "b.csv", "y.pipe", "a.csv"]
            .iter()
            .map(|n| path(n))
            .collect();
        order(&mut files);
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.csv", "z.pipe", "b.csv", "y.pipe", "c.csv"]);
    }
}
