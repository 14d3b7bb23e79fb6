//! A file source's inputs (`--csv-file`, `--jsonl-file`): `-`, or paths and
//! globs expanded into the list of inputs, in the order they are read, cut
//! to `--input-shard` (each file by a hash of its real name: [`shard_of`],
//! [`dedup`]).
//!
//! Regular files are read in name order. An input that is not a regular
//! file (a named pipe, `/dev/stdin`, a process substitution `<(…)`, a
//! socket) can be read only once, as it comes, and is read at its place on
//! the command line; it cannot be split between shards.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::config::InputPath;
use crate::error::PipelineError;

/// A file source's inputs: `-` alone is standard input; otherwise paths and
/// globs (a path that exists is taken as it is, even with `*`, `?` or `[`
/// in its name; only one that does not exist is expanded), each file once
/// ([`dedup`]), put in order ([`order`]), cut to the files of `shard` I of
/// N ([`shard_of`] of the file's real name). One plain path is read as
/// before; anything more is a list. What the run should warn about goes to
/// `notes` (logging has not started yet).
#[cfg(test)]
pub(crate) fn inputs(
    kind: &str,
    flag: &str,
    given: &[String],
    shard: Option<(u32, u32)>,
    notes: &mut Vec<String>,
) -> Result<(InputPath, Option<Vec<PathBuf>>), PipelineError> {
    inputs_of(kind, (flag, given), shard, false, notes)
}

/// [`inputs`], where a pattern that matches no file is an error unless
/// `none_ok` (files loaded once: a directory whose files were all moved
/// away has nothing new, and the run reads nothing).
pub(crate) fn inputs_of(
    kind: &str,
    (flag, given): (&str, &[String]),
    shard: Option<(u32, u32)>,
    none_ok: bool,
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
        // A name that exists (a file called `data[1].csv`, passed by the
        // shell's own expansion) is that file, never a pattern.
        if !g.contains(['*', '?', '[']) || Path::new(g).symlink_metadata().is_ok() {
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
        if matched == 0 && none_ok {
            notes.push(format!("{flag} '{g}' matches no file: nothing new to load"));
        } else if matched == 0 {
            return Err(cfg(format!("{flag} '{g}' matches no file")));
        }
    }
    let names = dedup(&mut files, flag, notes);
    if shard.is_some() {
        if let Some(f) = files.iter().find(|f| read_once(f) || descriptor(f)) {
            return Err(cfg(format!(
                "--input-shard splits input files; {flag} '{}' is not a regular file (a pipe, standard input, a socket or a device) and cannot be split",
                f.display()
            )));
        }
    }
    order(&mut files);
    if files.len() == 1 && !globbed && shard.is_none() {
        return Ok((InputPath::File(files.remove(0)), None));
    }
    let all = files.len();
    if let Some((i, n)) = shard {
        files.retain(|f| shard_of(names.get(f).map_or(f.as_os_str(), |n| n), n) == i);
        if files.is_empty() {
            notes.push(format!("--input-shard {i}/{n}: none of the {all} file(s) falls to this shard; nothing to read"));
        }
    }
    let first = files.first().cloned().unwrap_or_default();
    Ok((InputPath::File(first), Some(files)))
}

/// `--input-shard I/N`.
pub(crate) fn parse_shard(text: &str) -> Result<(u32, u32), PipelineError> {
    let bad = || {
        PipelineError::Config(format!(
            "--input-shard '{text}' is not I/N with 0 <= I < N; give it as, e.g., 2/4"
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
/// processes' starts moves no other file to another shard. `path` is the
/// file's real name ([`dedup`]), never an alias's.
fn shard_of(path: &OsStr, n: u32) -> u32 {
    use std::os::unix::ffi::OsStrExt;
    let name = Path::new(path).file_name().unwrap_or(path);
    (fnv1a64(name.as_bytes()) % u64::from(n)) as u32
}

/// FNV-1a, 64 bits: a fixed, documented function (std's hasher may differ
/// between builds, and every process of a job must agree).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The name a file is known by wherever it is listed: the file name of its
/// resolved path (a symlink's target, `latest.csv` -> `orders-03.csv`), or
/// its own when it cannot be resolved.
fn real_name(path: &Path) -> OsString {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|c| c.file_name().map(OsStr::to_os_string))
        .or_else(|| path.file_name().map(OsStr::to_os_string))
        .unwrap_or_else(|| path.as_os_str().to_os_string())
}

/// Keeps one of the inputs that are one file (the same device and inode:
/// `./a.csv` and `/data/a.csv`, a `latest.csv` symlink matched by the same
/// glob as its target, a hard link), so no file is read twice; each one
/// left out is named in `notes` (unless it is the same path again). Returns
/// each kept input's real name, the one its shard is decided by: a
/// symlink's target's name, never the alias's, so repointing an alias moves
/// no file between shards; for a file with several names of its own (hard
/// links) the smallest of them seen. The spelling kept is, of the file's
/// spellings, the first that is not a symlink and has that name (else the
/// first that is not a symlink, else the first), so an alias repointed
/// while the run lists the files cannot swap the file read.
fn dedup(
    files: &mut Vec<PathBuf>,
    flag: &str,
    notes: &mut Vec<String>,
) -> HashMap<PathBuf, OsString> {
    use std::os::unix::fs::MetadataExt;
    let mut paths = std::collections::HashSet::new();
    files.retain(|f| paths.insert(f.clone()));
    // The spellings of each file, in the order first met.
    let mut groups: Vec<Vec<(usize, PathBuf)>> = Vec::new();
    let mut by_inode: HashMap<(u64, u64), usize> = HashMap::new();
    for (at, f) in files.drain(..).enumerate() {
        // A path that cannot be looked at is kept: opening it says why.
        let Ok(meta) = std::fs::metadata(&f) else {
            groups.push(vec![(at, f)]);
            continue;
        };
        match by_inode.entry((meta.dev(), meta.ino())) {
            std::collections::hash_map::Entry::Occupied(g) => groups[*g.get()].push((at, f)),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(groups.len());
                groups.push(vec![(at, f)]);
            }
        }
    }
    let is_link = |f: &Path| {
        f.symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
    };
    let mut names = HashMap::new();
    let mut left_out: Vec<(usize, String)> = Vec::new();
    for group in groups {
        let name = group
            .iter()
            .map(|(_, f)| real_name(f))
            .min()
            .unwrap_or_default();
        let kept = group
            .iter()
            .position(|(_, f)| !is_link(f) && f.file_name() == Some(name.as_os_str()))
            .or_else(|| group.iter().position(|(_, f)| !is_link(f)))
            .unwrap_or(0);
        let kept_path = group[kept].1.clone();
        for (k, (at, f)) in group.into_iter().enumerate() {
            if k != kept {
                let note = format!(
                    "{flag} '{}' is the same file as '{}'; it is read once",
                    f.display(),
                    kept_path.display()
                );
                left_out.push((at, note));
            }
        }
        names.insert(kept_path.clone(), name);
        files.push(kept_path);
    }
    // Named in the order they were given.
    left_out.sort_by_key(|(at, _)| *at);
    notes.extend(left_out.into_iter().map(|(_, n)| n));
    names
}

/// True for an input that is neither a regular file nor a directory: a
/// pipe, a socket, a device, read once as it comes. Only looked at, never
/// opened (opening a named pipe would wait for its writer).
fn read_once(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// True for a name of one of this process's descriptors (`/dev/stdin`,
/// `/dev/fd/N`, `/proc/self/fd/N`, or a link straight to one): whatever it
/// is, it is this process's own, not a file that other processes list.
fn descriptor(path: &Path) -> bool {
    let own = |p: &Path| {
        ["/dev/stdin", "/dev/stdout", "/dev/stderr"]
            .iter()
            .any(|d| p == Path::new(d))
            || ["/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"]
                .iter()
                .any(|d| p.starts_with(d))
    };
    own(path) || std::fs::read_link(path).is_ok_and(|to| own(&to))
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
                    [3, 4, 7].map(|n| shard_of(path.as_os_str(), n)),
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

    /// The shards of the files `given` matches, for N processes.
    fn shards(given: &[String], n: u32) -> Vec<Vec<PathBuf>> {
        (0..n)
            .map(|i| {
                inputs("csv", "--csv-file", given, Some((i, n)), &mut Vec::new())
                    .unwrap()
                    .1
                    .unwrap()
            })
            .collect()
    }

    /// A `latest.csv` symlink repointed between two processes' starts
    /// (FNV-1a mod 2: latest.csv 0, orders-01 0, orders-02 1, orders-03 0)
    /// moves no file: each is sharded by its target's name, so every file
    /// that was there before both started is read by exactly one of them,
    /// whichever starts first.
    #[test]
    fn a_repointed_symlink_moves_no_file_between_shards() {
        for first in [0u32, 1] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            std::fs::write(d.join("orders-01.csv"), "x\n").unwrap();
            std::fs::write(d.join("orders-02.csv"), "x\n").unwrap();
            std::os::unix::fs::symlink("orders-02.csv", d.join("latest.csv")).unwrap();
            let given = [format!("{}/*.csv", d.display())];
            let one = shards(&given, 2).swap_remove(first as usize);
            std::fs::write(d.join("orders-03.csv"), "x\n").unwrap();
            std::fs::remove_file(d.join("latest.csv")).unwrap();
            std::os::unix::fs::symlink("orders-03.csv", d.join("latest.csv")).unwrap();
            let other = shards(&given, 2).swap_remove(1 - first as usize);
            let read: Vec<String> = one
                .iter()
                .chain(&other)
                .map(|f| real_name(f).to_string_lossy().into_owned())
                .collect();
            for name in ["orders-01.csv", "orders-02.csv"] {
                assert_eq!(
                    read.iter().filter(|r| *r == name).count(),
                    1,
                    "shard {first} first: {name} in {one:?} + {other:?}"
                );
            }
            // The alias is never what is read: its target's own name is.
            assert!(
                !one.iter().chain(&other).any(|f| f.ends_with("latest.csv")),
                "{one:?} {other:?}"
            );
        }
    }

    /// Two names of one file (hard links; mod 2: data.csv 1, copy.csv 0):
    /// the smallest name decides, however the names are given.
    #[test]
    fn hard_links_are_sharded_by_their_smallest_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("data.csv"), "x\n").unwrap();
        std::fs::hard_link(d.join("data.csv"), d.join("copy.csv")).unwrap();
        let path = |n: &str| d.join(n).display().to_string();
        for given in [
            vec![path("data.csv"), path("copy.csv")],
            vec![path("copy.csv"), path("data.csv")],
            vec![format!("{}/*.csv", d.display())],
            vec![path("data.csv")],
        ] {
            let got = shards(&given, 2);
            let want = usize::from(given.len() == 1 && given[0].ends_with("data.csv"));
            assert_eq!(got[want].len(), 1, "{given:?}: {got:?}");
            assert!(got[1 - want].is_empty(), "{given:?}: {got:?}");
        }
    }

    /// A path that exists is that file, even with glob characters in its
    /// name; only one that does not exist is a pattern.
    #[test]
    fn an_existing_name_with_glob_characters_is_taken_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for n in ["data[1].csv", "data1.csv", "d*.csv", "dx.csv"] {
            std::fs::write(d.join(n), "x\n").unwrap();
        }
        let list = |given: &[&str]| -> Vec<String> {
            let given: Vec<String> = given
                .iter()
                .map(|g| d.join(g).display().to_string())
                .collect();
            let (first, list) = inputs("csv", "--csv-file", &given, None, &mut Vec::new()).unwrap();
            let files = list.unwrap_or_else(|| match first {
                InputPath::File(f) => vec![f],
                InputPath::Stdin => panic!("stdin"),
            });
            files
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(list(&["data[1].csv"]), ["data[1].csv"]);
        assert_eq!(list(&["d*.csv"]), ["d*.csv"]);
        assert_eq!(
            list(&["data[1].csv", "data1.csv"]),
            ["data1.csv", "data[1].csv"]
        );
        // Not a file: expanded.
        assert_eq!(list(&["data[12].csv"]), ["data1.csv"]);
        assert_eq!(list(&["d?.csv"]), ["d*.csv", "dx.csv"]);
    }

    /// With --input-shard, an input that is not a regular file, or is one
    /// of this process's descriptors, is refused like `-`.
    #[test]
    fn input_shard_refuses_inputs_that_are_not_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.csv"), "x\n").unwrap();
        let fifo = d.join("in.pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let a = d.join("a.csv").display().to_string();
        for other in [
            fifo.display().to_string(),
            format!("{}/in.*", d.display()),
            "/dev/stdin".into(),
            "/dev/fd/0".into(),
            "/proc/self/fd/0".into(),
        ] {
            for shard in [(0, 2), (1, 2)] {
                let given = [a.clone(), other.clone()];
                let e = inputs("csv", "--csv-file", &given, Some(shard), &mut Vec::new())
                    .unwrap_err()
                    .to_string();
                assert!(
                    e.contains("is not a regular file") && e.contains("cannot be split"),
                    "{other}: {e}"
                );
                assert_eq!(e.lines().count(), 1, "{e}");
            }
        }
        assert!(inputs("csv", "--csv-file", &[a], Some((0, 2)), &mut Vec::new()).is_ok());
    }
}
