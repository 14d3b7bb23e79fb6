//! `--csv-threads N` reads a file in chunks on N threads (a compressed
//! file as its decoder gives it), and `--workers N`
//! encodes file batches on N threads; both must give
//! exactly what one thread gives: the same output bytes in the same order,
//! the same dead-letter entries, the same counts, with bad rows, multi-line
//! quoted fields, a stray quote the chunk cutter cannot follow, `--limit`
//! and `--max-errors`.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// About 3 MB: several 1 MiB chunks. Bad rows every 997 rows; a quoted
/// field with line feeds every 500 rows; from row `stray` on, a stray quote
/// in an unquoted field (`5" screen`), which inverts the cutter's view of
/// the quotes.
fn write_input(path: &Path, rows: usize, stray: Option<usize>) {
    let mut csv = String::from("id,name,note\n");
    for i in 0..rows {
        if i % 997 == 13 {
            csv.push_str(&format!("{i},too,many,fields\n"));
        } else if i % 500 == 7 {
            csv.push_str(&format!("{i},\"multi\nline \"\"{i}\"\"\",n{i}\n"));
        } else if stray == Some(i) {
            csv.push_str(&format!("{i},tv,5\" screen\n"));
        } else {
            csv.push_str(&format!("{i},name {i},plain note number {i:07}\n"));
        }
    }
    fs::write(path, csv).unwrap();
}

/// Output, dead-letter file and stderr of one run.
fn run_with(input: &Path, dir: &Path, threads: &str, extra: &[&str]) -> (String, String, String) {
    run_logged(input, dir, threads, extra, "")
}

/// [`run_with`], logging at `log` (`PIPELINE_LOG`; "": the default).
fn run_logged(
    input: &Path,
    dir: &Path,
    threads: &str,
    extra: &[&str],
    log: &str,
) -> (String, String, String) {
    let output = dir.join(format!("out-{threads}.jsonl"));
    let dead = dir.join(format!("dead-{threads}.jsonl"));
    let _ = fs::remove_file(&dead);
    let mut args = csv_to_file(p(input), p(&output));
    args.extend(["--csv-threads", threads, "--dead-letter", p(&dead)]);
    args.extend(extra);
    let bin = match log {
        "" => Bin::new(&args).env_remove("PIPELINE_LOG"),
        log => Bin::new(&args).env("PIPELINE_LOG", log),
    };
    let out = wait_with_limit(bin.no_stdin().spawn(), std::time::Duration::from_secs(120));
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let read = |f: &Path| fs::read_to_string(f).unwrap_or_default();
    let written = if output.exists() {
        read(&output)
    } else {
        read(&dir.join(format!("out-{threads}.jsonl.partial")))
    };
    (written, without_run_ids(&read(&dead)), stderr(&out))
}

fn counts(err: &str) -> Vec<u64> {
    ["read", "inserted", "failed"]
        .iter()
        .map(|k| summary_number(err, k))
        .collect()
}

fn assert_same(input: &Path, dir: &Path, extra: &[&str]) {
    let (one, dead_one, err_one) = run_with(input, dir, "1", extra);
    for threads in ["2", "4"] {
        let (many, dead_many, err_many) = run_with(input, dir, threads, extra);
        assert_eq!(counts(&err_one), counts(&err_many), "{extra:?}: {err_many}");
        assert!(
            one == many,
            "{extra:?}: the output differs with {threads} threads"
        );
        assert_eq!(
            dead_one, dead_many,
            "{extra:?}: the dead-letter file differs"
        );
    }
    assert!(!one.is_empty());
}

/// A pipe is read by one thread into records, which the file sink
/// encodes; a file into JSON lines written by the parse threads: the same
/// output bytes, dead-letter entries and counts.
#[test]
fn lines_from_a_file_equal_records_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    for stray in [None, Some(33_333)] {
        let input = dir.path().join("in.csv");
        write_input(&input, 60_000, stray);
        let extras: [&[&str]; 4] = [
            &[],
            &["--csv-infer-types"],
            &["--limit", "41234"],
            &["--max-errors", "30"],
        ];
        for extra in extras {
            let (lines, dead_lines, err_lines) = run_with(&input, dir.path(), "2", extra);
            let (output, dead) = (
                dir.path().join("pipe.jsonl"),
                dir.path().join("pipe-dead.jsonl"),
            );
            let _ = fs::remove_file(&dead);
            let mut args = csv_to_file("-", p(&output));
            args.extend(["--dead-letter", p(&dead)]);
            args.extend(extra);
            let out = std::process::Command::new(bin())
                .args(&args)
                .stdin(fs::File::open(&input).unwrap())
                .output()
                .unwrap();
            let err = stderr(&out);
            let read = |f: &Path| fs::read_to_string(f).unwrap_or_default();
            let records = match output.exists() {
                true => read(&output),
                false => read(&dir.path().join("pipe.jsonl.partial")),
            };
            assert_eq!(
                counts(&err_lines),
                counts(&err),
                "{stray:?} {extra:?}: {err}"
            );
            assert!(lines == records, "{stray:?} {extra:?}: the outputs differ");
            assert_eq!(
                dead_lines,
                without_run_ids(&read(&dead)),
                "{stray:?} {extra:?}"
            );
            assert!(!records.is_empty());
        }
    }
}

#[test]
fn several_threads_read_exactly_what_one_reads() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_input(&input, 60_000, None);
    assert_same(&input, dir.path(), &[]);
    assert_same(&input, dir.path(), &["--csv-infer-types"]);
    assert_same(&input, dir.path(), &["--limit", "41234"]);
    assert_same(&input, dir.path(), &["--max-errors", "30"]);
}

#[test]
fn a_stray_quote_hands_the_rest_to_one_thread_with_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_input(&input, 60_000, Some(30_000));
    assert_same(&input, dir.path(), &[]);
    let (out, dead, err) = run_with(&input, dir.path(), "4", &[]);
    assert!(
        out.contains("5\\\" screen"),
        "the stray quote is kept as text"
    );
    assert!(dead.lines().count() as u64 == summary_number(&err, "failed"));
    // The cut after the stray quote was caught, in the middle of the file.
    let output = dir.path().join("debug.jsonl");
    let args = csv_to_file(p(&input), p(&output));
    let mut args = args.clone();
    args.extend(["--csv-threads", "4"]);
    let child = Bin::new(&args)
        .env("PIPELINE_LOG", "debug")
        .no_stdin()
        .spawn();
    let done = wait_with_limit(child, std::time::Duration::from_secs(60));
    let log = stderr(&done);
    let from = log
        .lines()
        .find_map(|l| l.split("cannot follow near line ").nth(1))
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no hand-over to one thread: {log}"));
    assert!((10_000..45_000).contains(&from), "{from}");
}

/// A compressed file is cut in chunks as its decoder gives it: the same
/// output, dead-letter entries and counts as the plain file read by one
/// thread, with a stray quote in the first chunk (the chunks in flight are
/// read again by one thread from what was kept of them) or later, with
/// `--limit` and `--max-errors`.
#[test]
fn a_compressed_file_is_cut_as_its_decoder_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    for stray in [None, Some(50), Some(33_333)] {
        write_input(&input, 60_000, stray);
        let plain = fs::read(&input).unwrap();
        let extras: &[&[&str]] = match stray {
            Some(33_333) => &[&[], &["--limit", "41234"], &["--max-errors", "30"]],
            _ => &[&[]],
        };
        for &extra in extras {
            let want = run_with(&input, dir.path(), "1", extra);
            for (tag, bytes) in [
                ("gz", gzip(&plain)),
                ("zst", zstd::encode_all(&plain[..], 3).unwrap()),
            ] {
                let file = dir.path().join(format!("in.csv.{tag}"));
                fs::write(&file, &bytes).unwrap();
                for threads in ["2", "4"] {
                    let (got, dead, err) = run_logged(&file, dir.path(), threads, extra, "debug");
                    let case = format!("{tag} {threads} threads, stray {stray:?} {extra:?}");
                    assert!(err.contains("parse threads"), "{case}: not chunked: {err}");
                    // (--max-errors 30 stops the read before row 33,333.)
                    assert_eq!(
                        err.contains("cannot follow"),
                        stray.is_some() && !extra.contains(&"--max-errors"),
                        "{case}: {err}"
                    );
                    // The summary's counts (the debug log counts batches too).
                    let summary = err.lines().rfind(|l| l.starts_with("pipeline-cli:"));
                    assert_eq!(
                        counts(&want.2),
                        counts(summary.unwrap_or("")),
                        "{case}: {err}"
                    );
                    assert!(got == want.0, "{case}: the output differs");
                    assert_eq!(dead, want.1, "{case}: the dead-letter file differs");
                }
            }
        }
    }
}

/// A compressed file that breaks (cut short, or corrupt in the middle) read
/// in chunks keeps what one reader of the same bytes on standard input
/// keeps: the same rows, dead letters, counts and exit code, with a stray
/// quote before the break (in the first row, or in the rows the chunks
/// held when the read failed) and with `--limit`.
#[test]
fn a_compressed_file_that_breaks_keeps_what_one_reader_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    for stray in [None, Some(1), Some(9_000)] {
        // No quoted field after the stray quote: the quotes the chunks held
        // when the read failed are odd all the way to the break.
        let mut csv = String::from("id,name,note\n");
        for i in 0..20_000 {
            match stray == Some(i) {
                true => csv.push_str(&format!("{i},tv,5\" screen\n")),
                false => csv.push_str(&format!("{i},n{i},item {}\n", i * 7919 % 10007)),
            }
        }
        fs::write(&input, &csv).unwrap();
        let packed = gzip(csv.as_bytes());
        let mut corrupt = packed.clone();
        for b in &mut corrupt[packed.len() / 2..packed.len() / 2 + 50] {
            *b ^= 0x55;
        }
        for (tag, bytes) in [
            ("cut", packed[..packed.len() / 2].to_vec()),
            ("corrupt", corrupt),
        ] {
            let file = dir.path().join(format!("{tag}.csv.gz"));
            fs::write(&file, &bytes).unwrap();
            let limits: [&[&str]; 2] = [&[], &["--limit", "9500"]];
            for extra in limits {
                let case = format!("{tag}, stray {stray:?} {extra:?}");
                let (output, dead) = (
                    dir.path().join("one.jsonl"),
                    dir.path().join("one-dead.jsonl"),
                );
                let _ = fs::remove_file(&dead);
                let mut args = csv_to_file("-", p(&output));
                args.extend(["--dead-letter", p(&dead)]);
                args.extend(extra);
                let one = std::process::Command::new(bin())
                    .args(&args)
                    .env_remove("PIPELINE_LOG")
                    .stdin(fs::File::open(&file).unwrap())
                    .output()
                    .unwrap();
                let read = |f: &Path| fs::read_to_string(f).unwrap_or_default();
                let one_out = match output.exists() {
                    true => read(&output),
                    false => read(&dir.path().join("one.jsonl.partial")),
                };
                let (got, got_dead, err) = run_with(&file, dir.path(), "2", extra);
                let code = |e: &str| {
                    e.lines()
                        .rfind(|l| l.starts_with("pipeline-cli:"))
                        .map(str::to_owned)
                };
                assert_eq!(counts(&stderr(&one)), counts(&err), "{case}: {err}");
                assert_eq!(
                    code(&stderr(&one)).map(|l| l.split(':').nth(1).map(str::to_owned)),
                    code(&err).map(|l| l.split(':').nth(1).map(str::to_owned)),
                    "{case}: another outcome"
                );
                assert!(got == one_out, "{case}: the rows kept differ");
                assert_eq!(
                    got_dead,
                    without_run_ids(&read(&dead)),
                    "{case}: the dead-letter files differ"
                );
            }
        }
    }
}

#[test]
fn several_file_workers_keep_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_input(&input, 20_000, None);
    let (one, dead_one, _) = run_with(&input, dir.path(), "1", &["--batch-size", "7"]);
    for workers in ["2", "5"] {
        let (many, dead_many, err) = run_with(
            &input,
            dir.path(),
            "2",
            &["--workers", workers, "--batch-size", "7"],
        );
        assert!(
            one == many,
            "--workers {workers}: lines out of order: {err}"
        );
        assert_eq!(dead_one, dead_many);
    }
}

/// The parse threads named in the debug log of a run into a JSON-lines
/// file, started by `taskset -c cpus` when given.
fn parse_threads(input: &Path, dir: &Path, cpus: Option<&str>, extra: &[&str]) -> usize {
    let output = dir.join("threads.jsonl");
    let mut args = csv_to_file(p(input), p(&output));
    args.extend(extra);
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut c = std::process::Command::new("taskset");
            c.args(["-c", cpus, bin()]);
            c
        }
        None => std::process::Command::new(bin()),
    };
    let out = cmd
        .args(&args)
        .env("PIPELINE_LOG", "debug")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pipeline-cli");
    let log = stderr(&out);
    // The input's bad rows make it exit 1.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{log}");
    log.lines()
        .find_map(|l| l.split_once(" parse threads (").map(|(head, _)| head))
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no parse thread count in the log: {log}"))
}

#[test]
fn parse_threads_default_to_the_cores_this_process_may_use() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    write_input(&input, 2_000, None);
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(parse_threads(&input, dir.path(), None, &[]), cores);
    // CPU affinity counts: one allowed core, one parse thread.
    assert_eq!(parse_threads(&input, dir.path(), Some("0"), &[]), 1);
    // The flag wins over the cores.
    let three = ["--csv-threads", "3"];
    assert_eq!(parse_threads(&input, dir.path(), Some("0"), &three), 3);
}
