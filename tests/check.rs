//! `--check` says what a run would do and writes nothing (no output, no
//! table, no rows, no lock, no state file moved); `--create-table` infers its
//! types from a sample read before the run, not from the first batch.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file in `dir`, by name.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn check_maps_fields_to_columns_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(&input, "id,amount,note,extra\n1,2.50,a,x\n").unwrap();
    let table = table_name("check_map");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, amount DECIMAL(10,2) NOT NULL, note VARCHAR(20), loaded TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
    ));
    let lock = dir.path().join("run.lock");
    let textfile = dir.path().join("m.prom");
    // Nothing is written, not even a probe of the textfile's directory:
    // its entries and its modification time stay as they were.
    let listing = |d: &Path| {
        let mut names: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        (names, fs::metadata(d).unwrap().modified().unwrap())
    };
    let before = listing(dir.path());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = run(&csv_to_mysql(
        p(&input),
        &mysql_url(),
        &table,
        &[
            "--ignore-fields",
            "extra",
            "--lock-file",
            p(&lock),
            "--metrics-textfile",
            p(&textfile),
            "--dead-letter",
            p(&dir.path().join("dead.jsonl")),
            "--check",
        ],
    ));
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert_eq!(
        listing(dir.path()),
        before,
        "--check wrote in the directory"
    );
    assert!(
        said.contains("4 fields from the header: id, amount, note, extra"),
        "{said}"
    );
    assert!(
        said.contains("id -> `id` int(11), key, NOT NULL: whole number"),
        "{said}"
    );
    assert!(
        said.contains(
            "amount -> `amount` decimal(10,2), NOT NULL: exact decimal, at most 10 digits, 2 after"
        ),
        "{said}"
    );
    assert!(
        said.contains("note -> `note` varchar(20): text, at most 20 characters"),
        "{said}"
    );
    assert!(said.contains("extra: ignored (--ignore-fields)"), "{said}");
    assert!(
        said.contains("(no field) -> `loaded`: left to its default"),
        "{said}"
    );
    assert!(said.contains("load mode "), "{said}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 0);
    assert_eq!(files(dir.path()), ["in.csv"], "--check wrote a file");
    db.exec(&format!("DROP TABLE {table}"));

    // Wrong credentials: exit 2 with the reason, still nothing written.
    let url = mysql_url().replace("root@", "root:wrong@");
    let out = run(&csv_to_mysql(p(&input), &url, &table, &["--check"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("access denied"), "{}", stderr(&out));
}

#[test]
fn check_prints_the_ddl_and_creates_no_table() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(
        &input,
        "id,price,when\n1,9.99,2026-01-02\n2,10,2026-01-03\n",
    )
    .unwrap();
    let table = table_name("check_ddl");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let out = run(&csv_to_mysql(
        p(&input),
        &mysql_url(),
        &table,
        &["--create-table", "--db-key", "id", "--check"],
    ));
    let said = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert!(
        said.contains("does not exist; --create-table creates it"),
        "{said}"
    );
    assert!(
        said.contains("would run --create-table: types inferred from 2 records: CREATE TABLE"),
        "{said}"
    );
    assert!(said.contains("`price` DECIMAL(38,2) NULL"), "{said}");
    assert!(said.contains("`when` DATE NULL"), "{said}");
    let exists = db.count(&format!(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{table}'"
    ));
    assert_eq!(exists, 0, "--check created the table");
}

#[test]
fn create_table_sees_row_11000_not_only_the_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut csv = String::from("id,code,note\n");
    for i in 1..=12_000 {
        let code = if i == 11_500 {
            "A12".to_string()
        } else {
            i.to_string()
        };
        let note = if i == 11_000 {
            "n".repeat(300)
        } else {
            format!("note {i}")
        };
        csv.push_str(&format!("{i},{code},{note}\n"));
    }
    fs::write(&input, csv).unwrap();
    let table = table_name("sample_ddl");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let out = run(&csv_to_mysql(
        p(&input),
        &mysql_url(),
        &table,
        &["--create-table", "--db-key", "id", "--csv-infer-types"],
    ));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(summary_number(&err, "inserted"), 12_000, "{err}");
    assert!(
        err.contains("types inferred from 12000 records"),
        "the DDL is logged: {err}"
    );
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 12_000);
    let long = db.count(&format!(
        "SELECT LENGTH(note) FROM {table} WHERE id = 11000"
    ));
    assert_eq!(long, 300);
    let code = db.rows(&format!("SELECT code FROM {table} WHERE id = 11500"));
    assert_eq!(code[0][0].as_deref(), Some("A12"));
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn check_on_elasticsearch_counts_and_leaves_the_state_file() {
    for kind in ES_KINDS {
        let es = EsServer::start(kind);
        let docs: Vec<_> = (0..25)
            .map(|i| (format!("d{i}"), serde_json::json!({"n": i, "at": 1000 + i})))
            .collect();
        es.bulk("chk", &docs);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        fs::write(
            &state,
            r#"{"field":"at","since":1010,"ids_at_since":["d10"],"saved_at":1}"#,
        )
        .unwrap();
        let before = fs::read(&state).unwrap();
        let output = dir.path().join("out.jsonl");
        let out = run(&[
            "--source-type",
            "elasticsearch",
            "--es-url",
            &es.url(),
            "--es-index",
            "chk",
            "--es-since-field",
            "at",
            "--state-file",
            p(&state),
            "--sink-type",
            "file",
            "--output-file",
            p(&output),
            "--check",
        ]);
        let said = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{kind:?}: {said}{}",
            stderr(&out)
        );
        assert!(
            said.contains("index chk: 14 matching documents"),
            "{kind:?}: {said}"
        );
        assert!(
            said.contains("only documents with at >= 1010"),
            "{kind:?}: {said}"
        );
        assert_eq!(
            fs::read(&state).unwrap(),
            before,
            "{kind:?}: the state file moved"
        );
        assert_eq!(
            files(dir.path()),
            ["state.json"],
            "{kind:?}: --check wrote a file"
        );
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(p(path)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// `--check` with `args` and standard input `stdin`, within 10 s.
fn check_within(args: &[&str], stdin: std::process::Stdio) -> std::process::Output {
    let child = std::process::Command::new(bin())
        .args(args)
        .arg("--check")
        .env_remove("PIPELINE_LOG")
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_with_limit(child, std::time::Duration::from_secs(10))
}

/// `--check` never opens nor reads an input that is not a regular file (a
/// named pipe, standard input, `/dev/stdin`), alone or in a list: what it
/// holds is read once, by the run. A writer feeding a named pipe is left
/// waiting, unharmed, and the run that follows reads every row; a named
/// pipe with no writer, or a pipe on standard input that sends nothing,
/// does not hold `--check` up.
#[test]
fn check_reads_no_pipe_and_leaves_its_writer_to_the_run() {
    for (kind, flag) in [("csv", "--csv-file"), ("jsonl", "--jsonl-file")] {
        let dir = tempfile::tempdir().unwrap();
        let rows = 20_000u64;
        let mut text = String::new();
        if kind == "csv" {
            text.push_str("id,name\n");
        }
        for i in 0..rows {
            text.push_str(&match kind {
                "csv" => format!("{i},name {i}\n"),
                _ => format!("{{\"id\":{i},\"name\":\"name {i}\"}}\n"),
            });
        }
        let data = dir.path().join(format!("data.{kind}"));
        fs::write(&data, &text).unwrap();
        let out = dir.path().join("out.jsonl");
        let sink = ["--sink-type", "file", "--output-file", p(&out)];
        let fifo = dir.path().join("in.pipe");
        for with_file in [false, true] {
            let _ = fs::remove_file(&fifo);
            mkfifo(&fifo);
            let mut writer = std::process::Command::new("sh")
                .args(["-c", "exec cat \"$1\" > \"$2\"", "sh", p(&data), p(&fifo)])
                .spawn()
                .unwrap();
            let mut inputs = vec![p(&fifo)];
            if with_file {
                inputs.push(p(&data));
            }
            let mut args = vec!["--source-type", kind, flag];
            args.extend(&inputs);
            args.extend(sink);
            let checked = check_within(&args, std::process::Stdio::null());
            let said = stdout(&checked);
            let what = format!("{kind}, with a file: {with_file}");
            assert_eq!(
                checked.status.code(),
                Some(0),
                "{what}: {said}{}",
                stderr(&checked)
            );
            assert!(said.contains("not read by --check"), "{what}: {said}");
            std::thread::sleep(std::time::Duration::from_millis(200));
            assert!(
                writer.try_wait().unwrap().is_none(),
                "{what}: the pipe's writer ended: {:?}",
                writer.try_wait()
            );
            assert!(!out.exists(), "{what}: --check wrote the output");
            let ran = run(&args);
            assert_eq!(ran.status.code(), Some(0), "{what}: {}", stderr(&ran));
            assert!(writer.wait().unwrap().success(), "{what}");
            let want = if with_file { 2 * rows } else { rows };
            assert_eq!(read_jsonl(&out).len() as u64, want, "{what}");
            fs::remove_file(&out).unwrap();
        }
        // A named pipe nobody writes, a pipe on standard input that sends
        // nothing (its writer still open): --check answers at once.
        let _ = fs::remove_file(&fifo);
        mkfifo(&fifo);
        let mut args = vec!["--source-type", kind, flag, p(&fifo)];
        args.extend(sink);
        let checked = check_within(&args, std::process::Stdio::null());
        assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
        for input in ["-", "/dev/stdin"] {
            let (reader, writer) = std::io::pipe().unwrap();
            let mut args = vec!["--source-type", kind, flag, input];
            args.extend(sink);
            let checked = check_within(&args, reader.into());
            assert_eq!(
                checked.status.code(),
                Some(0),
                "{input}: {}",
                stderr(&checked)
            );
            assert!(stdout(&checked).contains("not read by --check"), "{input}");
            drop(writer);
        }
    }
}

/// An input with nothing in it (no header at all) checks as empty into a
/// table whose NOT NULL columns no field could fill: exit 0, said to be
/// empty, alone or as every file of a list.
#[test]
fn check_on_empty_inputs_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("check_empty");
    let mut db = Db::connect();
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (name VARCHAR(20) NOT NULL, id INT NOT NULL PRIMARY KEY)"
    ));
    let empty = dir.path().join("empty.csv");
    fs::write(&empty, "").unwrap();
    let bom = dir.path().join("bom.csv.gz");
    fs::write(&bom, gzip(b"\xEF\xBB\xBF\r\n")).unwrap();
    let url = mysql_url();
    for (inputs, says) in [
        (vec![p(&empty)], "empty (no header, no records)"),
        (vec![p(&bom)], "empty (no header, no records)"),
        (vec![p(&empty), p(&bom)], "every file is empty"),
    ] {
        let mut args = vec!["--source-type", "csv", "--csv-file"];
        args.extend(&inputs);
        args.extend([
            "--sink-type",
            "mysql",
            "--db-url",
            &url,
            "--db-table",
            &table,
            "--check",
        ]);
        let out = run(&args);
        let said = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{inputs:?}: {said}{}",
            stderr(&out)
        );
        assert!(said.contains(says), "{inputs:?}: {said}");
    }
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
}

/// A missing input or a directory is a configuration error for `--check`
/// as for the run (exit 2), alone or in a list beside a pipe: it is not
/// taken for an input that is read once.
#[test]
fn check_refuses_a_missing_input_beside_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    fs::write(&good, "id\n1\n").unwrap();
    let missing = dir.path().join("missing.csv");
    let out = dir.path().join("out.jsonl");
    for inputs in [
        vec![p(&missing)],
        vec![p(&good), p(&missing)],
        vec!["/dev/stdin", p(&missing)],
        vec![p(dir.path())],
    ] {
        let mut args = vec!["--source-type", "csv", "--csv-file"];
        args.extend(&inputs);
        args.extend(["--sink-type", "file", "--output-file", p(&out)]);
        let checked = check_within(&args, std::process::Stdio::null());
        assert_eq!(
            checked.status.code(),
            Some(2),
            "{inputs:?}: {}",
            stdout(&checked)
        );
    }
}
