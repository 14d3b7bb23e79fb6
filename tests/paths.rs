//! Paths that would make a run destroy its own input or another file: each
//! is refused with exit 2 before anything is opened for writing, and the
//! files involved are left exactly as they were. Files written only at the
//! end of a run (metrics textfile, state file) are checked up front.

mod common;

use std::path::Path;

use common::*;

const INPUT: &str = "id,name\n1,a\n2,b\n";

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs with `args` and checks: exit 2, `needle` in the one error line, the
/// input untouched, no output or temporary output created.
fn refused(dir: &Path, args: &[&str], needle: &str) {
    let out = run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected '{needle}' in: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("in.csv")).unwrap(),
        INPUT,
        "{args:?}: the input was changed"
    );
    assert!(!dir.join("out.jsonl.partial").exists(), "{args:?}");
}

#[test]
fn an_output_that_is_the_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, INPUT).unwrap();
    let out = dir.path().join("out.jsonl");
    let (i, o) = (p(&input), p(&out));

    refused(dir.path(), &csv_to_file(i, i), "is the input file");
    // The same file through a hard link and through a symlink.
    let hard = dir.path().join("hard.jsonl");
    std::fs::hard_link(&input, &hard).unwrap();
    refused(dir.path(), &csv_to_file(i, p(&hard)), "is the input file");
    let soft = dir.path().join("soft.jsonl");
    std::os::unix::fs::symlink(&input, &soft).unwrap();
    refused(dir.path(), &csv_to_file(i, p(&soft)), "is the input file");

    let mut args = csv_to_file(i, o);
    args.extend(["--dead-letter", i]);
    refused(dir.path(), &args, "--dead-letter");
    let mut args = csv_to_file(i, o);
    args.extend(["--dead-letter", o]);
    refused(dir.path(), &args, "name the same file");
    let mut args = csv_to_file(i, o);
    args.extend(["--lock-file", i]);
    refused(dir.path(), &args, "--lock-file");
    let mut args = csv_to_file(i, o);
    args.extend(["--metrics-textfile", i]);
    refused(dir.path(), &args, "--metrics-textfile");
}

/// A glob that also matches the previous run's output (or a `.partial`
/// a crashed run left) would read it and overwrite it: refused, whichever
/// file of the list it is.
#[test]
fn a_glob_matching_the_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), INPUT).unwrap();
    for name in ["a.jsonl", "z.jsonl", "all.jsonl"] {
        std::fs::write(dir.path().join(name), "{\"id\":1}\n").unwrap();
    }
    let glob = format!("{}/*.jsonl*", dir.path().display());
    let out = dir.path().join("all.jsonl");
    let args = [
        "--source-type",
        "jsonl",
        "--jsonl-file",
        &glob,
        "--sink-type",
        "file",
        "--output-file",
        p(&out),
    ];
    refused(dir.path(), &args, "is the input file (--jsonl-file)");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":1}\n");
    std::fs::rename(&out, dir.path().join("all.jsonl.partial")).unwrap();
    let err = stderr(&run(&args));
    assert!(
        err.contains("is the temporary file of --output-file"),
        "{err}"
    );
}

#[test]
fn an_input_named_like_the_temporary_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), INPUT).unwrap();
    let input = dir.path().join("out.jsonl.partial");
    std::fs::write(&input, INPUT).unwrap();
    let out = run(&csv_to_file(p(&input), p(&dir.path().join("out.jsonl"))));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("temporary file of --output-file"), "{err}");
    assert_eq!(std::fs::read_to_string(&input).unwrap(), INPUT);
}

#[test]
fn existing_files_that_are_not_ours_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, INPUT).unwrap();
    let out = dir.path().join("out.jsonl");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "my notes\n").unwrap();
    for flag in ["--lock-file", "--metrics-textfile"] {
        let mut args = csv_to_file(p(&input), p(&out));
        args.extend([flag, p(&notes)]);
        refused(dir.path(), &args, "holds other data");
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
    }
    // A lock file and a textfile written by an earlier run are fine.
    let lock = dir.path().join("run.lock");
    let prom = dir.path().join("run.prom");
    let mut args = csv_to_file(p(&input), p(&out));
    args.extend(["--lock-file", p(&lock), "--metrics-textfile", p(&prom)]);
    for _ in 0..2 {
        let again = run(&args);
        assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    }
}

#[test]
fn files_written_at_the_end_are_checked_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, INPUT).unwrap();
    let out = dir.path().join("out.jsonl");
    // A directory that cannot exist: its parent is a file.
    let nowhere = dir.path().join("in.csv").join("metrics.prom");
    let mut args = csv_to_file(p(&input), p(&out));
    args.extend(["--metrics-textfile", p(&nowhere)]);
    refused(dir.path(), &args, "--metrics-textfile");
    assert!(!out.exists());

    // The state file of an incremental Elasticsearch run, before any
    // connection is made (nothing listens on this port).
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let es = |state: &str| {
        run(&[
            "--source-type",
            "elasticsearch",
            "--es-url",
            &url,
            "--es-index",
            "docs",
            "--es-since-field",
            "updated",
            "--state-file",
            state,
            "--sink-type",
            "file",
            "--output-file",
            p(&out),
        ])
    };
    let unwritable = dir.path().join("in.csv").join("state.json");
    let r = es(p(&unwritable));
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("--state-file"), "{}", stderr(&r));
    let r = es(p(&out));
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("name the same file"), "{}", stderr(&r));
    let r = es(p(&input));
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert_eq!(std::fs::read_to_string(&input).unwrap(), INPUT);
}

#[test]
fn a_missing_output_directory_is_named_first() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, INPUT).unwrap();
    let missing = dir.path().join("out");
    let output = missing.join("x.jsonl");
    let mut args = csv_to_file(p(&input), p(&output));
    let textfile = missing.join("x.prom");
    args.extend(["--metrics-textfile", p(&textfile)]);
    let out = run(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--output-file")
            && err.contains("the directory")
            && err.contains("does not exist"),
        "{err}"
    );
    assert!(!missing.exists());
}

/// Messages name the flag as it is spelled: `--dead-letter`.
#[test]
fn messages_name_the_dead_letter_flag_as_spelled() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), INPUT).unwrap();
    let input = dir.path().join("in.csv");
    let out = dir.path().join("out.jsonl");
    let dl = dir.path().join("dl-{slice}.jsonl");
    let mut args = csv_to_file(p(&input), p(&out));
    args.extend(["--dead-letter", p(&dl)]);
    let r = run(&args);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("--dead-letter '"), "{err}");
    assert!(!err.contains("--dead-letter-file"), "{err}");
    // The help says the same.
    let help = run(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--dead-letter"), "{text}");
    assert!(!text.contains("--dead-letter-file"), "{text}");
}
