//! Several input files (paths and globs, gzip mixed in) read in name order as
//! one stream, each record's file and line in the dead-letter file;
//! `--input-shard I/N` splits the files over processes (by a hash of each
//! file's name) so that together they read each file once.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::*;
use serde_json::Value;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Day files day-01 … day-05 of 1000 rows each (ids day*10000 + row);
/// day-03 is gzip-compressed, day-02 has a bad row on line 11, and a file
/// that does not match the glob sits beside them.
fn days(dir: &Path) {
    for day in 1..=5u64 {
        let mut csv = String::from("id,day\n");
        for row in 0..1000u64 {
            if day == 2 && row == 9 {
                csv.push_str("bad,row,extra\n");
                continue;
            }
            csv.push_str(&format!("{},{day}\n", day * 10_000 + row));
        }
        let name = format!("day-{day:02}.csv");
        if day == 3 {
            fs::write(dir.join(name + ".gz"), gzip(csv.as_bytes())).unwrap();
        } else {
            fs::write(dir.join(name), csv).unwrap();
        }
    }
    fs::write(dir.join("other.csv"), "id,day\n1,1\n").unwrap();
}

fn ids(path: &Path) -> Vec<u64> {
    read_jsonl(path)
        .iter()
        .map(|v| v["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn files_and_globs_are_read_in_name_order_as_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    days(dir.path());
    let glob = format!("{}/day-0[3-5]*", dir.path().display());
    let first = dir.path().join("day-01.csv");
    let second = dir.path().join("day-02.csv");
    let (out, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    // Given out of order, and day-01 twice (through the glob too): read once each, in name order.
    let res = run(&[
        "--source-type",
        "csv",
        "--csv-file",
        p(&second),
        &glob,
        p(&first),
        p(&first),
        "--sink-type",
        "file",
        "--output-file",
        p(&out),
        "--dead-letter",
        p(&dead),
    ]);
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert_eq!(summary_number(&err, "read"), 5000, "{err}");
    assert_eq!(summary_number(&err, "inserted"), 4999, "{err}");
    let want: Vec<u64> = (1..=5u64)
        .flat_map(|d| {
            (0..1000u64)
                .filter(move |&r| !(d == 2 && r == 9))
                .map(move |r| d * 10_000 + r)
        })
        .collect();
    assert_eq!(ids(&out), want);
    let rejects = read_jsonl(&dead);
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0]["file"], p(&second), "{}", rejects[0]);
    assert_eq!(rejects[0]["position"], 11, "{}", rejects[0]);

    // --limit counts across files.
    let lim = dir.path().join("limit.jsonl");
    let res = run(&[
        "--source-type",
        "csv",
        "--csv-file",
        &format!("{}/day-*", dir.path().display()),
        "--sink-type",
        "file",
        "--output-file",
        p(&lim),
        "--limit",
        "2500",
    ]);
    assert_eq!(
        summary_number(&stderr(&res), "read"),
        2500,
        "{}",
        stderr(&res)
    );
    assert_eq!(ids(&lim).len(), 2499);
}

#[test]
fn shards_split_the_files_and_together_read_each_once() {
    let dir = tempfile::tempdir().unwrap();
    days(dir.path());
    let glob = format!("{}/day-*", dir.path().display());
    let mut all: BTreeMap<u64, u32> = BTreeMap::new();
    let mut read = 0;
    for i in 0..3 {
        let out = dir.path().join(format!("shard-{i}.jsonl"));
        let out_pattern = dir.path().join("shard-{slice}.jsonl");
        let res = Bin::new(&[
            "--source-type",
            "csv",
            "--csv-file",
            &glob,
            "--sink-type",
            "file",
            "--output-file",
            p(&out_pattern),
            "--summary-json",
            "-",
        ])
        .env("PIPELINE_INPUT_SHARD", &format!("{i}/3"))
        .no_stdin()
        .spawn();
        let res = wait_with_limit(res, std::time::Duration::from_secs(60));
        let summary: Value = serde_json::from_slice(&res.stdout).unwrap();
        read += summary["read"].as_u64().unwrap();
        for id in ids(&out) {
            *all.entry(id).or_default() += 1;
        }
    }
    assert_eq!(read, 5000);
    assert_eq!(all.len(), 4999);
    assert!(all.values().all(|&n| n == 1), "an id read twice");
    // A shard that no file falls to reads nothing and succeeds (day-01.csv
    // falls to shard 1 of 2: FNV-1a of its name is odd).
    let out = dir.path().join("none.jsonl");
    let res = run(&[
        "--source-type",
        "csv",
        "--csv-file",
        p(&dir.path().join("day-01.csv")),
        "--input-shard",
        "0/2",
        "--sink-type",
        "file",
        "--output-file",
        p(&out),
    ]);
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert_eq!(summary_number(&stderr(&res), "read"), 0);
    assert!(stderr(&res).contains("none of the 1 file(s) falls to this shard"));
    assert_eq!(fs::read_to_string(&out).unwrap(), "");
}

#[test]
fn ndjson_files_by_glob() {
    let dir = tempfile::tempdir().unwrap();
    for f in 0..3 {
        let text: String = (0..100)
            .map(|i| format!("{{\"f\":{f},\"i\":{i}}}\n"))
            .collect();
        let text = if f == 1 {
            text.replace("{\"f\":1,\"i\":50}", "{oops")
        } else {
            text
        };
        fs::write(dir.path().join(format!("part-{f}.jsonl")), text).unwrap();
    }
    let (out, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
    let res = run(&[
        "--source-type",
        "jsonl",
        "--jsonl-file",
        &format!("{}/part-*.jsonl", dir.path().display()),
        "--sink-type",
        "file",
        "--output-file",
        p(&out),
        "--dead-letter",
        p(&dead),
    ]);
    assert_eq!(res.status.code(), Some(1), "{}", stderr(&res));
    let lines = read_jsonl(&out);
    assert_eq!(lines.len(), 299);
    assert_eq!(lines[0]["f"], 0);
    assert_eq!(lines[298]["f"], 2);
    let rejects = read_jsonl(&dead);
    assert_eq!(rejects[0]["position"], 51);
    assert!(
        rejects[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("part-1.jsonl"),
        "{}",
        rejects[0]
    );
}

/// NDJSON files of every kind in one list, read with `--jsonl-threads 3`
/// in small chunks: a plain file (a bad line, a blank one), a gzip file and
/// a `_bulk` file (each read by one thread), an elasticdump file (in
/// chunks). One stream in name order, as records and as lines, `--limit`
/// spanning the files, a rejected line with its file and line.
#[test]
fn ndjson_files_of_every_kind_on_several_threads() {
    let dir = tempfile::tempdir().unwrap();
    let line = |f: u32, i: u32| format!("{{\"f\":{f},\"i\":{i}}}");
    let mut plain: String = (0..100).map(|i| line(0, i) + "\n").collect();
    plain = plain.replace(&line(0, 50), "{oops") + "\n";
    fs::write(dir.path().join("part-0.jsonl"), plain).unwrap();
    let gz: String = (0..100).map(|i| line(1, i) + "\r\n").collect();
    fs::write(dir.path().join("part-1.jsonl.gz"), gzip(gz.as_bytes())).unwrap();
    let bulk: String = (0..100)
        .map(|i| format!("{{\"index\":{{\"_id\":\"{i}\"}}}}\n{}\n", line(2, i)))
        .collect();
    fs::write(dir.path().join("part-2.jsonl"), bulk).unwrap();
    let dump: String = (0..100)
        .map(|i| {
            format!(
                "{{\"_index\":\"x\",\"_id\":\"{i}\",\"_source\":{}}}\n",
                line(3, i)
            )
        })
        .collect();
    fs::write(dir.path().join("part-3.jsonl"), dump).unwrap();
    let want: Vec<(u64, u64)> = (0..4u64)
        .flat_map(|f| (0..100u64).map(move |i| (f, i)))
        .filter(|&fi| fi != (0, 50))
        .collect();
    for (extra, limit) in [
        (None, None),
        (Some("--flatten"), None),
        (None, Some(250)),
        (Some("--flatten"), Some(250)),
    ] {
        let (out, dead) = (dir.path().join("out.jsonl"), dir.path().join("dead.jsonl"));
        let _ = fs::remove_file(&dead);
        let glob = format!("{}/part-*", dir.path().display());
        let mut args = vec!["--source-type", "jsonl", "--jsonl-file", &glob];
        args.extend(["--jsonl-threads", "3", "--jsonl-chunk-bytes", "64"]);
        args.extend(["--sink-type", "file", "--output-file", p(&out)]);
        args.extend(["--dead-letter", p(&dead)]);
        args.extend(extra);
        let limit_text = limit.map(|l: usize| l.to_string());
        if let Some(l) = &limit_text {
            args.extend(["--limit", l]);
        }
        let res = run(&args);
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(1), "{extra:?} {limit:?}: {err}");
        let got: Vec<(u64, u64)> = read_jsonl(&out)
            .iter()
            .map(|v| (v["f"].as_u64().unwrap(), v["i"].as_u64().unwrap()))
            .collect();
        // --limit 250: 100 lines of part-0 (one bad), 100 of part-1, 50 of part-2.
        let n = limit.map_or(want.len(), |_| 249);
        assert_eq!(got, want[..n], "{extra:?} {limit:?}");
        assert_eq!(
            summary_number(&err, "read"),
            limit.map_or(400, |l| l as u64)
        );
        let rejects = read_jsonl(&dead);
        assert_eq!(rejects.len(), 1, "{rejects:?}");
        assert_eq!(rejects[0]["position"], 51);
        assert_eq!(rejects[0]["raw"], "{oops");
        assert!(rejects[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("part-0.jsonl"));
    }
}

#[test]
fn inputs_that_cannot_work_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    days(dir.path());
    let out = dir.path().join("out.jsonl");
    let missing = dir.path().join("day-09.csv");
    let glob = format!("{}/nothing-*.csv", dir.path().display());
    let one = dir.path().join("day-01.csv");
    for (files, extra, says) in [
        (vec![glob.as_str()], vec![], "matches no file"),
        (vec![p(&one), p(&missing)], vec![], "day-09.csv"),
        (
            vec!["-", p(&one)],
            vec![],
            "standard input cannot be read together",
        ),
        (vec![p(&one)], vec!["--input-shard", "2/2"], "is not I/N"),
        (
            vec!["-"],
            vec!["--input-shard", "0/2"],
            "standard input cannot be split",
        ),
    ] {
        let mut args = vec!["--source-type", "csv", "--csv-file"];
        args.extend(&files);
        args.extend(["--sink-type", "file", "--output-file", p(&out)]);
        args.extend(&extra);
        let res = run(&args);
        assert_eq!(res.status.code(), Some(2), "{files:?}: {}", stderr(&res));
        assert!(stderr(&res).contains(says), "{files:?}: {}", stderr(&res));
        assert!(!out.exists());
    }
}

/// A record the MySQL sink rejects names its file too.
#[test]
fn a_sink_rejection_names_the_file_of_its_record() {
    let mut db = Db::connect();
    let table = table_name("many_files");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY, n INT)"));
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.csv"), "id,n\n1,1\n2,2\n").unwrap();
    fs::write(dir.path().join("b.csv"), "id,n\n3,3\n4,not a number\n").unwrap();
    let dead = dir.path().join("dead.jsonl");
    let url = mysql_url();
    let glob = format!("{}/*.csv", dir.path().display());
    let res = run(&csv_to_mysql(
        &glob,
        &url,
        &table,
        &["--dead-letter", p(&dead)],
    ));
    assert_eq!(res.status.code(), Some(1), "{}", stderr(&res));
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 3);
    let rejects = read_jsonl(&dead);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0]["stage"], "sink");
    assert_eq!(rejects[0]["position"], 3);
    assert!(
        rejects[0]["file"].as_str().unwrap().ends_with("b.csv"),
        "{}",
        rejects[0]
    );
    db.exec(&format!("DROP TABLE {table}"));
}

/// `--config` naming files and `--csv-file` / `--jsonl-file` on the command
/// line: the command line's files are read instead of the config's, never
/// after them; a list in the config is several files.
#[test]
fn files_on_the_command_line_replace_the_configs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("a.csv"), "id\n1\n2\n").unwrap();
    fs::write(d.join("b.csv"), "id\n3\n").unwrap();
    fs::write(d.join("y.csv"), "id\n7\n8\n9\n").unwrap();
    fs::write(d.join("a.jsonl"), "{\"id\":\"1\"}\n{\"id\":\"2\"}\n").unwrap();
    fs::write(d.join("y.jsonl"), "{\"id\":\"7\"}\n").unwrap();
    let out = d.join("out.jsonl");
    for (kind, in_config, on_line, want) in [
        ("csv", "[\"a.csv\", \"b.csv\"]", None, vec![1, 2, 3]),
        (
            "csv",
            "[\"a.csv\", \"b.csv\"]",
            Some("y.csv"),
            vec![7, 8, 9],
        ),
        ("csv", "\"a.csv\"", Some("y.csv"), vec![7, 8, 9]),
        ("jsonl", "\"a.jsonl\"", Some("y.jsonl"), vec![7]),
        ("jsonl", "[\"a.jsonl\"]", None, vec![1, 2]),
    ] {
        let conf = d.join("job.toml");
        let in_config = in_config.replace('"', "").replace(['[', ']'], "");
        let listed: Vec<String> = in_config
            .split(", ")
            .map(|f| format!("{:?}", p(&d.join(f))))
            .collect();
        fs::write(
            &conf,
            format!(
                "source-type = \"{kind}\"\n{kind}-file = [{}]\nsink-type = \"file\"\noutput-file = {:?}\n",
                listed.join(", "),
                p(&out)
            ),
        )
        .unwrap();
        let flag = format!("--{kind}-file");
        let line_file = on_line.map(|f| d.join(f));
        let mut args = vec!["--config", p(&conf)];
        if let Some(f) = &line_file {
            args.extend([flag.as_str(), p(f)]);
        }
        let run_out = run(&args);
        assert_eq!(run_out.status.code(), Some(0), "{}", stderr(&run_out));
        assert_eq!(ids(&out), want, "{kind} {in_config} {on_line:?}");
        assert_eq!(
            summary_number(&stderr(&run_out), "read"),
            want.len() as u64,
            "{}",
            stderr(&run_out)
        );
    }
}

/// Several files into MySQL: every file's header is checked before anything
/// is written. An empty file (0 bytes, or compressed nothing) is skipped with
/// a warning, not taken for a file without fields; a later file's field with
/// no column is refused up front (exit 2, nothing written), like the first
/// file's; headers that differ are named in a warning.
#[test]
fn every_files_header_is_checked_before_anything_is_written() {
    let mut db = Db::connect();
    let table = table_name("headers");
    let url = mysql_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reset = |db: &mut Db| {
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, n INT NOT NULL)"
        ));
    };

    // An empty first file (a cron job's export that had nothing that night).
    fs::create_dir(d.join("empty-first")).unwrap();
    fs::write(d.join("empty-first/a.csv"), "").unwrap();
    fs::write(d.join("empty-first/b.csv"), "id,n\n1,1\n2,2\n").unwrap();
    fs::write(d.join("empty-first/c.csv.gz"), gzip(b"")).unwrap();
    fs::write(d.join("empty-first/d.csv"), "n,id\n3,3\n").unwrap();
    reset(&mut db);
    let glob = format!("{}/empty-first/*", d.display());
    let res = run(&csv_to_mysql(&glob, &url, &table, &[]));
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(0), "{err}");
    assert_eq!(summary_number(&err, "read"), 3, "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 3);
    for f in ["a.csv", "c.csv.gz"] {
        assert!(
            err.lines()
                .any(|l| l.contains("WARN") && l.contains(f) && l.contains("empty")),
            "{f}: {err}"
        );
    }
    assert!(
        err.lines()
            .any(|l| l.contains("WARN") && l.contains("d.csv") && l.contains("header")),
        "{err}"
    );

    // A later file with a field the table has no column for.
    fs::create_dir(d.join("extra-later")).unwrap();
    fs::write(d.join("extra-later/a.csv"), "id,n\n1,1\n").unwrap();
    fs::write(d.join("extra-later/b.csv"), "id,n,extra\n2,2,x\n").unwrap();
    reset(&mut db);
    let glob = format!("{}/extra-later/*", d.display());
    let res = run(&csv_to_mysql(&glob, &url, &table, &[]));
    let err = stderr(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("extra"), "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 0);
    db.exec(&format!("DROP TABLE {table}"));
}

/// A `latest.csv` symlink repointed to a new day's file between two pods'
/// starts (FNV-1a mod 2: latest.csv 0, orders-01 0, orders-02 1,
/// orders-03 0): each file is sharded by its real name, so every file that
/// was there before both started is read by exactly one of them, whichever
/// starts first, and the alias is never read as a file of its own.
#[test]
fn a_repointed_latest_symlink_moves_no_file_between_shards() {
    for first in [0u32, 1] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("in");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("orders-01.csv"), "id,day\n101,1\n").unwrap();
        fs::write(d.join("orders-02.csv"), "id,day\n201,2\n").unwrap();
        std::os::unix::fs::symlink("orders-02.csv", d.join("latest.csv")).unwrap();
        let glob = format!("{}/*.csv", d.display());
        let mut all: BTreeMap<u64, u32> = BTreeMap::new();
        for (step, shard) in [first, 1 - first].into_iter().enumerate() {
            if step == 1 {
                fs::write(d.join("orders-03.csv"), "id,day\n301,3\n").unwrap();
                fs::remove_file(d.join("latest.csv")).unwrap();
                std::os::unix::fs::symlink("orders-03.csv", d.join("latest.csv")).unwrap();
            }
            let out = dir.path().join(format!("shard-{shard}.jsonl"));
            let res = run(&[
                "--source-type",
                "csv",
                "--csv-file",
                &glob,
                "--input-shard",
                &format!("{shard}/2"),
                "--sink-type",
                "file",
                "--output-file",
                p(&out),
            ]);
            assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
            for id in ids(&out) {
                *all.entry(id).or_default() += 1;
            }
        }
        assert_eq!(all.get(&101), Some(&1), "shard {first} first: {all:?}");
        assert_eq!(all.get(&201), Some(&1), "shard {first} first: {all:?}");
        assert!(all.get(&301).is_none_or(|&n| n == 1), "{all:?}");
    }
}

/// `PIPELINE_INPUT_SHARD` beats `input-shard` in a --config file, and
/// `--input-shard` on the command line beats both (mod 2: a.csv 0,
/// b.csv 1); the file's setting left out is logged, naming the variable,
/// not its value.
#[test]
fn the_environment_beats_the_config_file_and_the_command_line_beats_both() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("a.csv"), "id,day\n1,1\n").unwrap();
    fs::write(d.join("b.csv"), "id,day\n2,2\n").unwrap();
    let out = d.join("out.jsonl");
    let conf = d.join("job.toml");
    fs::write(
        &conf,
        format!(
            "source-type = \"csv\"\ninput-shard = \"0/2\"\ncsv-file = [{:?}, {:?}]\nsink-type = \"file\"\noutput-file = {:?}\n",
            p(&d.join("a.csv")),
            p(&d.join("b.csv")),
            p(&out)
        ),
    )
    .unwrap();
    for (env, line, want) in [
        (None, None, vec![1]),
        (Some("1/2"), None, vec![2]),
        (Some(""), None, vec![1]),
        (Some("1/2"), Some("0/2"), vec![1]),
        (None, Some("1/2"), vec![2]),
    ] {
        let mut args = vec!["--config", p(&conf)];
        if let Some(l) = line {
            args.extend(["--input-shard", l]);
        }
        let mut bin = Bin::new(&args)
            .no_stdin()
            .env_remove("PIPELINE_INPUT_SHARD");
        if let Some(e) = env {
            bin = bin.env("PIPELINE_INPUT_SHARD", e);
        }
        let res = wait_with_limit(bin.spawn(), std::time::Duration::from_secs(60));
        let err = stderr(&res);
        assert_eq!(res.status.code(), Some(0), "{env:?} {line:?}: {err}");
        assert_eq!(ids(&out), want, "{env:?} {line:?}: {err}");
        let noted: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("PIPELINE_INPUT_SHARD"))
            .collect();
        if env == Some("1/2") && line.is_none() {
            assert_eq!(noted.len(), 1, "{err}");
            assert!(noted[0].contains("'input-shard'"), "{err}");
            assert!(
                !noted[0].contains("1/2") && !noted[0].contains("0/2"),
                "{err}"
            );
        } else {
            assert!(noted.is_empty(), "{env:?} {line:?}: {err}");
        }
    }
}

/// Shards of a directory loaded once (`--state-file` with `{slice}`: each
/// shard keeps its own record): over runs with new files between them,
/// every record is written once by one of the shards, and a run that finds
/// nothing new writes nothing.
#[test]
fn shards_with_their_own_state_load_each_file_once_over_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    fs::create_dir(&input).unwrap();
    fs::create_dir(&out).unwrap();
    let glob = format!("{}/day-*.csv", input.display());
    let state = format!("{}/orders.{{slice}}.loaded", dir.path().display());
    let output = format!("{}/{{slice}}-{{run_id}}.jsonl", out.display());
    let mut want = Vec::new();
    for (n, new_days) in [vec![1, 2, 3u64], vec![4, 5, 6], vec![7], vec![]]
        .into_iter()
        .enumerate()
    {
        for &day in &new_days {
            let rows: Vec<String> = (0..20)
                .map(|r| format!("{},{day}\n", day * 100 + r))
                .collect();
            fs::write(
                input.join(format!("day-{day:02}.csv")),
                format!("id,day\n{}", rows.concat()),
            )
            .unwrap();
            want.extend((0..20).map(|r| day * 100 + r));
        }
        let mut read = 0;
        for shard in ["0/3", "1/3", "2/3"] {
            let mut args = csv_to_file(&glob, &output);
            args.extend(["--input-shard", shard, "--state-file", &state]);
            let res = run(&args);
            let err = stderr(&res);
            assert_eq!(res.status.code(), Some(0), "run {n}, shard {shard}: {err}");
            read += summary_number(&err, "read");
        }
        assert_eq!(read, 20 * new_days.len() as u64, "run {n}");
        let mut got: Vec<u64> = fs::read_dir(&out)
            .unwrap()
            .flat_map(|f| ids(&f.unwrap().path()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "run {n}");
    }
}
