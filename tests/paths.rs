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

/// What is planted at a path a run writes.
#[derive(Debug, Clone, Copy)]
enum Plant {
    /// A symbolic link to a victim file.
    Link,
    /// A FIFO (opening it would block, writing it would hand the data over).
    Fifo,
    /// A hard link to a victim file (another name of someone else's file).
    HardLink,
}

/// Whoever can write the output directory must not be able to make a run
/// (a root cron job) write another file: for every path a run writes, a
/// link, FIFO or hard link planted there is refused with exit 2 and one
/// line naming the flag and the path, and the victim is left as it was.
#[test]
fn planted_links_and_fifos_are_never_written_through() {
    let port = free_port().to_string();
    let url = format!("http://127.0.0.1:{port}");
    // (flag, the name planted, extra arguments naming it, plants to try)
    let cases: &[(&str, &str, &[&str], &[Plant])] = &[
        (
            "--output-file",
            "out.jsonl.partial",
            &[],
            &[Plant::Link, Plant::Fifo, Plant::HardLink],
        ),
        (
            "--output-file",
            "out.jsonl",
            &[],
            &[Plant::Link, Plant::Fifo],
        ),
        (
            "--dead-letter",
            "dl.jsonl",
            &["--dead-letter", "dl.jsonl"],
            &[Plant::Link, Plant::Fifo, Plant::HardLink],
        ),
        (
            "--lock-file",
            "run.lock",
            &["--lock-file", "run.lock"],
            &[Plant::Link, Plant::Fifo, Plant::HardLink],
        ),
        (
            "--metrics-textfile",
            "run.prom",
            &["--metrics-textfile", "run.prom"],
            &[Plant::Link, Plant::Fifo],
        ),
        (
            "--summary-json",
            "summary.json",
            &["--summary-json", "summary.json"],
            &[Plant::Link, Plant::Fifo],
        ),
        (
            "--state-file",
            "state.json",
            &["--state-file", "state.json"],
            &[Plant::Link, Plant::Fifo],
        ),
    ];
    for &(flag, name, extra, plants) in cases {
        for &plant in plants {
            let what = format!("{flag} {name} {plant:?}");
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            // A bad row, so a dead-letter file is written to.
            let input = d.join("in.csv");
            std::fs::write(&input, "id,name\n1,a\n2,b,extra\n3,c\n").unwrap();
            // The victim is empty, as a file pipeline-cli could take for
            // its own would be.
            let victim = d.join("victim");
            std::fs::write(&victim, "").unwrap();
            let planted = d.join(name);
            match plant {
                Plant::Link => std::os::unix::fs::symlink(&victim, &planted).unwrap(),
                Plant::HardLink => std::fs::hard_link(&victim, &planted).unwrap(),
                Plant::Fifo => {
                    let ok = std::process::Command::new("mkfifo")
                        .arg(&planted)
                        .status()
                        .unwrap()
                        .success();
                    assert!(ok, "mkfifo");
                }
            }
            let out = d.join("out.jsonl");
            let mut args: Vec<String> = if flag == "--state-file" {
                [
                    "--source-type",
                    "elasticsearch",
                    "--es-url",
                    &url,
                    "--es-index",
                    "docs",
                    "--es-since-field",
                    "updated",
                    "--sink-type",
                    "file",
                    "--output-file",
                    p(&out),
                ]
                .map(String::from)
                .to_vec()
            } else {
                csv_to_file(p(&input), p(&out))
                    .into_iter()
                    .map(String::from)
                    .collect()
            };
            // Flags as they are, file names in the directory.
            args.extend(extra.iter().map(|a| match a.starts_with("--") {
                true => a.to_string(),
                false => d.join(a).to_string_lossy().into_owned(),
            }));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let child = Bin::new(&args).no_stdin().spawn();
            let r = wait_with_limit(child, std::time::Duration::from_secs(20));
            let err = stderr(&r);
            assert_eq!(r.status.code(), Some(2), "{what}: {err}");
            let line = err.lines().last().unwrap_or_default();
            assert!(
                line.contains(flag) && line.contains(p(&planted)),
                "{what}: the line names neither the flag nor the path: {err}"
            );
            assert_eq!(
                std::fs::read(&victim).unwrap(),
                b"",
                "{what}: victim written"
            );
            let kept = std::fs::symlink_metadata(&planted).unwrap().file_type();
            match plant {
                Plant::Link => assert!(kept.is_symlink(), "{what}: the link was replaced"),
                Plant::Fifo => {
                    use std::os::unix::fs::FileTypeExt;
                    assert!(kept.is_fifo(), "{what}: the FIFO was replaced")
                }
                Plant::HardLink => {}
            }
            if flag != "--output-file" {
                assert!(!out.exists(), "{what}: an output was made");
            }
        }
    }
}

/// The temporary files of the atomic writes (textfile, summary) have names
/// no one can plant a link at in advance: links at the names a run's
/// process id would have given are left alone, and so are their victims.
#[test]
fn links_at_predictable_temporary_names_are_not_followed() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let victim = d.join("victim");
    std::fs::write(&victim, "keep\n").unwrap();
    let (out, prom, summary) = (
        d.join("out.jsonl"),
        d.join("run.prom"),
        d.join("summary.json"),
    );
    let mut args = csv_to_file("-", p(&out));
    args.extend([
        "--metrics-textfile",
        p(&prom),
        "--summary-json",
        p(&summary),
    ]);
    // The run waits for its input: the links are planted meanwhile.
    let mut child = Bin::new(&args).no_stdout().spawn();
    let pid = child.id();
    let planted: Vec<_> = ["run.prom", "summary.json"]
        .iter()
        .map(|name| {
            let link = d.join(format!(".{name}.{pid}.tmp"));
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            link
        })
        .collect();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(INPUT.as_bytes()).unwrap();
    drop(stdin);
    let r = wait_with_limit(child, std::time::Duration::from_secs(30));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
    for link in &planted {
        let t = std::fs::symlink_metadata(link).unwrap().file_type();
        assert!(t.is_symlink(), "{}", link.display());
    }
    for written in [&prom, &summary] {
        let t = std::fs::symlink_metadata(written).unwrap().file_type();
        assert!(t.is_file(), "{}", written.display());
    }
    assert!(std::fs::read_to_string(&prom)
        .unwrap()
        .contains("pipeline_records_read_total"));
    assert!(std::fs::read_to_string(&summary)
        .unwrap()
        .contains("\"read\""));
}

/// The system's own names for the standard streams (`/dev/stderr`, a link
/// into `/proc/self/fd`) are taken as the dead-letter file: no user but
/// root can plant a link there, and it leads where the user pointed it.
#[test]
fn dev_stderr_takes_the_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "id,name\n1,a\n2,b,extra\n").unwrap();
    let out = dir.path().join("out.jsonl");
    for dl in ["/dev/stderr", "/proc/self/fd/2"] {
        let mut args = csv_to_file(p(&input), p(&out));
        args.extend(["--dead-letter", dl]);
        let r = run(&args);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{dl}: {err}");
        assert!(
            err.lines()
                .any(|l| l.starts_with('{') && l.contains("\"raw\":\"2,b,extra\"")),
            "{dl}: no dead-letter entry on stderr: {err}"
        );
        assert_eq!(summary_number(&err, "failed"), 1, "{err}");
    }
}
