//! Types that drift after the sample, against the real MariaDB: a later
//! value that does not fit a column pipeline-cli created widens the column
//! (never narrows it) and loads; a table the user made fails the record,
//! its reason naming --widen-columns, which widens it; --add-columns widens
//! the columns it adds only with --widen-columns.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// The final `pipeline_columns_widened_total` of a run's textfile.
fn widened(textfile: &Path) -> u64 {
    let text = fs::read_to_string(textfile).unwrap();
    text.lines()
        .find(|l| l.starts_with("pipeline_columns_widened_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no pipeline_columns_widened_total in {text}"))
}

/// `COLUMN_TYPE` of `column` in `table`.
fn column_type(db: &mut Db, table: &str, column: &str) -> String {
    db.rows(&format!(
        "SELECT COLUMN_TYPE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = '{table}' AND COLUMN_NAME = '{column}'"
    ))[0][0]
        .clone()
        .unwrap()
}

/// Every value of `column` by id, as text.
fn values(db: &mut Db, table: &str, column: &str) -> Vec<(String, Option<String>)> {
    db.rows(&format!(
        "SELECT CAST(id AS CHAR), CAST(`{column}` AS CHAR) FROM {table} ORDER BY id"
    ))
    .into_iter()
    .map(|r| (r[0].clone().unwrap(), r[1].clone()))
    .collect()
}

/// A decimal's text without the zeros its scale adds (`1.500000` is `1.5`).
fn trimmed(v: &str) -> String {
    let number = v
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == '-');
    if number && v.contains('.') {
        v.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        v.to_string()
    }
}

/// Runs the binary into MySQL, with a dead-letter file and a metrics
/// textfile in `dir`: the output, stderr, and the textfile's path.
fn load(
    dir: &Path,
    input: &Path,
    table: &str,
    extra: &[&str],
) -> (i32, String, std::path::PathBuf) {
    let textfile = dir.join(format!("{table}.prom"));
    let dead = dir.join(format!("{table}.dead.jsonl"));
    // The records this run failed only.
    let _ = fs::remove_file(&dead);
    let kind = if input.extension().is_some_and(|e| e == "csv") {
        ["--source-type", "csv", "--csv-file"]
    } else {
        ["--source-type", "jsonl", "--jsonl-file"]
    };
    let url = mysql_url();
    let mut args = vec![
        kind[0],
        kind[1],
        kind[2],
        input.to_str().unwrap(),
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        table,
        "--dead-letter",
        dead.to_str().unwrap(),
        "--metrics-textfile",
        textfile.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = run(&args);
    (out.status.code().unwrap_or(-1), stderr(&out), textfile)
}

/// The reasons in a run's dead-letter file.
fn reasons(dir: &Path, table: &str) -> Vec<String> {
    let dead = dir.join(format!("{table}.dead.jsonl"));
    if !dead.exists() {
        return vec![];
    }
    read_jsonl(&dead)
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A case of drift in column `v`: its name, the input file's extension and
/// content, the column's type wanted after the run, its values wanted by id.
type Drift<'a> = (&'a str, &'a str, String, &'a str, Vec<&'a str>);

#[test]
fn columns_created_by_pipeline_cli_widen_for_later_values() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let long = "y".repeat(300);
    let cases: Vec<Drift> = vec![
        (
            "string",
            "csv",
            format!("id,v\n1,ab\n2,cd\n3,{long}\n4,e\n"),
            "varchar(600)",
            vec!["ab", "cd", &long, "e"],
        ),
        (
            "past_bigint",
            "csv",
            "id,v\n1,5\n2,6\n3,123456789012345678901234\n4,-7\n".into(),
            "decimal(65,0)",
            vec!["5", "6", "123456789012345678901234", "-7"],
        ),
        (
            "past_bigint_json",
            "jsonl",
            "{\"id\":1,\"v\":5}\n{\"id\":2,\"v\":6}\n{\"id\":3,\"v\":-98765432109876543210}\n"
                .into(),
            "decimal(65,0)",
            vec!["5", "6", "-98765432109876543210"],
        ),
        (
            "scale",
            "csv",
            "id,v\n1,1.5\n2,2.25\n3,3.14159\n4,12345678901234567890.5\n".into(),
            "decimal(65,6)",
            vec!["1.5", "2.25", "3.14159", "12345678901234567890.5"],
        ),
        (
            "text_in_numbers",
            "csv",
            "id,v\n1,7\n2,8\n3,x12\n4,9\n".into(),
            "varchar(255)",
            vec!["7", "8", "x12", "9"],
        ),
        (
            "fractional_seconds",
            "jsonl",
            "{\"id\":1,\"v\":\"2026-01-02\"}\n{\"id\":2,\"v\":\"2026-01-03\"}\n\
             {\"id\":3,\"v\":\"2026-01-04T10:15:00.123456Z\"}\n"
                .into(),
            "datetime(6)",
            vec![
                "2026-01-02 00:00:00.000000",
                "2026-01-03 00:00:00.000000",
                "2026-01-04 10:15:00.123456",
            ],
        ),
    ];
    for (name, ext, content, want_type, want) in cases {
        let column = "v";
        let table = table_name(&format!("drift_{name}"));
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        let input = dir.path().join(format!("{name}.{ext}"));
        fs::write(&input, content).unwrap();
        let (code, err, textfile) = load(
            dir.path(),
            &input,
            &table,
            &[
                "--create-table",
                "--db-key",
                "id",
                "--create-table-sample",
                "2",
                "--batch-size",
                "2",
            ],
        );
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(column_type(&mut db, &table, column), want_type, "{name}");
        let got: Vec<String> = values(&mut db, &table, column)
            .into_iter()
            .map(|(_, v)| trimmed(&v.unwrap()))
            .collect();
        let want: Vec<String> = want.iter().map(|v| trimmed(v)).collect();
        assert_eq!(got, want, "{name}: every row with its exact value");
        assert_eq!(widened(&textfile), 1, "{name}: {err}");
        assert!(err.contains("widening column `v`"), "{name}: {err}");
        db.exec(&format!("DROP TABLE {table}"));
    }
}

#[test]
fn a_column_never_narrows() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("drift_narrow");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let input = dir.path().join("a.csv");
    let rows: Vec<String> = ["ab", "cd", &"y".repeat(300), "e", "f", "g"]
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{},{v},{}", i + 1, ["1.12345", "2"][i % 2]))
        .collect();
    fs::write(&input, format!("id,v,n\n{}\n", rows.join("\n"))).unwrap();
    let flags = [
        "--create-table",
        "--db-key",
        "id",
        "--create-table-sample",
        "2",
        "--batch-size",
        "1",
    ];
    let (code, err, textfile) = load(dir.path(), &input, &table, &flags);
    assert_eq!(code, 0, "{err}");
    assert_eq!(column_type(&mut db, &table, "v"), "varchar(600)");
    assert_eq!(column_type(&mut db, &table, "n"), "decimal(38,6)");
    assert_eq!(widened(&textfile), 1, "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 6);
    // A later run of short values and small numbers into the widened table.
    let input = dir.path().join("b.csv");
    fs::write(&input, "id,v,n\n7,h,1\n8,i,2\n").unwrap();
    let (code, err, textfile) = load(dir.path(), &input, &table, &flags);
    assert_eq!(code, 0, "{err}");
    assert_eq!(column_type(&mut db, &table, "v"), "varchar(600)");
    assert_eq!(column_type(&mut db, &table, "n"), "decimal(38,6)");
    assert_eq!(widened(&textfile), 0, "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 8);
    db.exec(&format!("DROP TABLE {table}"));
}

/// A later run with `--create-table` widens every column of a table an
/// earlier `--create-table` made (its table COMMENT says so); in a table
/// made otherwise, only the columns whose COMMENT records their field.
#[test]
fn a_later_run_widens_the_columns_pipeline_cli_made() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(300);
    let later = dir.path().join("b.csv");
    fs::write(&later, format!("id,note,plain\n3,{long},e\n4,f,{long}\n")).unwrap();
    let flags = ["--create-table", "--db-key", "id"];

    // Made by --create-table: both columns widen.
    let table = table_name("drift_made");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let first = dir.path().join("a.csv");
    fs::write(&first, "id,note,plain\n1,a,b\n2,c,d\n").unwrap();
    let (code, err, _) = load(
        dir.path(),
        &first,
        &table,
        &[&flags[..], &["--rename", "note=memo"]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, err, textfile) = load(dir.path(), &later, &table, &flags);
    assert_eq!(code, 0, "{err}");
    assert_eq!(column_type(&mut db, &table, "memo"), "varchar(600)");
    assert_eq!(column_type(&mut db, &table, "plain"), "varchar(600)");
    assert_eq!(widened(&textfile), 2, "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 4);
    db.exec(&format!("DROP TABLE {table}"));

    // Made by hand: `memo` records its field `note` in its comment and
    // widens; `plain` records nothing and does not.
    let table = table_name("drift_comment");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, \
         memo VARCHAR(255) COMMENT 'pipeline-cli field: note', plain VARCHAR(255))"
    ));
    let (code, err, textfile) = load(dir.path(), &later, &table, &flags);
    assert_eq!(code, 1, "{err}");
    assert_eq!(column_type(&mut db, &table, "memo"), "varchar(600)");
    assert_eq!(column_type(&mut db, &table, "plain"), "varchar(255)");
    assert_eq!(widened(&textfile), 1, "{err}");
    let ids = db.rows(&format!("SELECT id FROM {table} ORDER BY id"));
    assert_eq!(ids.len(), 1, "{ids:?}");
    let why = reasons(dir.path(), &table);
    assert!(
        why.len() == 1
            && why[0].contains("--widen-columns would widen `plain` varchar(255) to VARCHAR(600)"),
        "{why:?}"
    );
    db.exec(&format!("DROP TABLE {table}"));
}

/// A user table whose columns are too narrow for the input.
const USER_DDL: &str = "(id VARCHAR(10) PRIMARY KEY, name VARCHAR(10) NOT NULL DEFAULT 'x' \
    COMMENT 'the name', n INT, d DECIMAL(10,2), at DATETIME)";

#[test]
fn a_user_table_widens_only_with_widen_columns() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("drift_user");
    let name = "n".repeat(37);
    let input = dir.path().join("a.csv");
    fs::write(
        &input,
        format!(
            "id,name,n,d,at\n\
             a,ann,1,1.5,2026-01-02 03:04:05\n\
             b,{name},2,2.5,2026-01-02 03:04:05\n\
             c,cy,3000000000,3.5,2026-01-02 03:04:05\n\
             d,di,4,4.125,2026-01-02 03:04:05\n\
             e,ed,5,5.5,2026-01-02T03:04:05.25Z\n\
             an_id_of_20_chars_xx,fi,6,6.5,2026-01-02 03:04:05\n"
        ),
    )
    .unwrap();
    let wanted: [(&str, &str, &str, &str); 5] = [
        (
            "name",
            "varchar(10)",
            "varchar(255)",
            "--widen-columns would widen `name` varchar(10) to VARCHAR(255)",
        ),
        (
            "n",
            "int(11)",
            "bigint(20)",
            "--widen-columns would widen `n` int(11) to BIGINT",
        ),
        (
            "d",
            "decimal(10,2)",
            "decimal(38,4)",
            "--widen-columns would widen `d` decimal(10,2) to DECIMAL(38,4)",
        ),
        (
            "at",
            "datetime",
            "datetime(6)",
            "--widen-columns would widen `at` datetime to DATETIME(6)",
        ),
        (
            "id",
            "varchar(10)",
            "varchar(255)",
            "--widen-columns would widen `id` varchar(10) to VARCHAR(255)",
        ),
    ];
    // Without the flag: nothing changes, each record fails naming it.
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!("CREATE TABLE {table} {USER_DDL}"));
    let (code, err, textfile) = load(dir.path(), &input, &table, &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 1);
    let why = reasons(dir.path(), &table);
    assert_eq!(why.len(), 5, "{why:?}");
    for (column, before, _, hint) in wanted {
        assert_eq!(column_type(&mut db, &table, column), before);
        assert!(why.iter().any(|r| r.contains(hint)), "{hint}: {why:?}");
    }
    assert_eq!(widened(&textfile), 0);
    // With it: every record loads, the columns are wider, and what the
    // definition says besides the type stays.
    db.exec(&format!("DELETE FROM {table}"));
    let (code, err, textfile) = load(dir.path(), &input, &table, &["--widen-columns"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 6);
    for (column, _, after, _) in wanted {
        assert_eq!(column_type(&mut db, &table, column), after, "{err}");
    }
    assert_eq!(widened(&textfile), 5, "{err}");
    let kept = db.rows(&format!(
        "SELECT IS_NULLABLE, COLUMN_DEFAULT, COLUMN_COMMENT FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = '{table}' AND COLUMN_NAME = 'name'"
    ));
    assert_eq!(
        kept[0],
        vec![
            Some("NO".into()),
            Some("'x'".into()),
            Some("the name".into())
        ]
    );
    let got = db.rows(&format!(
        "SELECT name, CAST(n AS CHAR), CAST(d AS CHAR), CAST(at AS CHAR) FROM {table} WHERE id IN ('b', 'c', 'd', 'e') ORDER BY id"
    ));
    assert_eq!(got[0][0].as_deref(), Some(name.as_str()));
    assert_eq!(got[1][1].as_deref(), Some("3000000000"));
    assert_eq!(got[2][2].as_deref(), Some("4.1250"));
    assert_eq!(got[3][3].as_deref(), Some("2026-01-02 03:04:05.250000"));
    // A key past what an index holds: the record fails with the reason.
    let input = dir.path().join("b.csv");
    fs::write(&input, format!("id,name\n{},z\n", "k".repeat(1000))).unwrap();
    let (code, err, _) = load(dir.path(), &input, &table, &["--widen-columns"]);
    assert_eq!(code, 1, "{err}");
    let why = reasons(dir.path(), &table);
    assert!(
        why.len() == 1 && why[0].contains("`id` cannot be widened") && why[0].contains("768"),
        "{why:?}"
    );
    assert_eq!(column_type(&mut db, &table, "id"), "varchar(255)");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn added_columns_widen_only_with_widen_columns() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.csv");
    let long = "z".repeat(300);
    fs::write(&input, format!("id,note\n1,a\n2,b\n3,{long}\n")).unwrap();
    // (flags, exit code, the added column's type after, rows)
    let cases: [(&[&str], i32, &str, u64); 2] = [
        (&["--add-columns"], 1, "varchar(255)", 2),
        (&["--add-columns", "--widen-columns"], 0, "varchar(600)", 3),
    ];
    for (flags, want_code, want_type, rows) in cases {
        let table = table_name("drift_added");
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
        db.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY)"));
        let mut args = flags.to_vec();
        args.extend(["--batch-size", "2", "--workers", "1"]);
        let (code, err, textfile) = load(dir.path(), &input, &table, &args);
        assert_eq!(code, want_code, "{flags:?}: {err}");
        assert_eq!(column_type(&mut db, &table, "note"), want_type, "{flags:?}");
        assert_eq!(
            db.count(&format!("SELECT COUNT(*) FROM {table}")),
            rows,
            "{flags:?}"
        );
        assert_eq!(widened(&textfile), rows - 2, "{flags:?}");
        if want_code == 1 {
            let why = reasons(dir.path(), &table);
            assert!(
                why.len() == 1 && why[0].contains("--widen-columns would widen `note`"),
                "{why:?}"
            );
        }
        db.exec(&format!("DROP TABLE {table}"));
    }
}

#[test]
fn workers_widening_at_once_load_every_row() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("drift_workers");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(5), n INT)"
    ));
    let input = dir.path().join("a.csv");
    let rows: Vec<String> = (0..3000u64)
        .map(|i| {
            format!(
                "{i},{},{}",
                "w".repeat(1 + (i % 900) as usize),
                i * 1_000_000
            )
        })
        .collect();
    fs::write(&input, format!("id,v,n\n{}\n", rows.join("\n"))).unwrap();
    let flags = ["--widen-columns", "--workers", "4", "--batch-size", "50"];
    let (code, err, textfile) = load(dir.path(), &input, &table, &flags);
    assert_eq!(code, 0, "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 3000);
    let exact = db.count(&format!(
        "SELECT COUNT(*) FROM {table} WHERE CHAR_LENGTH(v) = 1 + id % 900 AND n = id * 1000000"
    ));
    assert_eq!(exact, 3000);
    assert_eq!(column_type(&mut db, &table, "n"), "bigint(20)");
    assert!(widened(&textfile) >= 2, "{err}");
    db.exec(&format!("DROP TABLE {table}"));
}

#[test]
fn check_says_when_columns_widen() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.csv");
    fs::write(&input, "id,v\n1,a\n").unwrap();
    let url = mysql_url();
    let table = table_name("drift_check");
    let cases: [(&[&str], &str); 2] = [
        (
            &["--create-table", "--db-key", "id"],
            "columns created by pipeline-cli widen when a value does not fit",
        ),
        (
            &["--create-table", "--db-key", "id", "--widen-columns"],
            "--widen-columns: a column a value does not fit widens",
        ),
    ];
    for (flags, line) in cases {
        let mut args = csv_to_mysql(input.to_str().unwrap(), &url, &table, flags);
        args.push("--check");
        let out = run(&args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains(line), "{flags:?}: {text}");
    }
}

/// A record with a value no widening takes (a TIME's fraction) widens
/// nothing, though its other values would widen their columns: it fails,
/// and the table is as it was.
#[test]
fn a_record_that_fails_anyway_widens_nothing() {
    let mut db = Db::connect();
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("drift_blocked");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, d DATE, t TIME, s VARCHAR(3))"
    ));
    let input = dir.path().join("in.jsonl");
    fs::write(
        &input,
        concat!(
            r#"{"id":1,"d":"2026-01-02T03:04:05Z","t":"10:00:00.5","s":"long text"}"#,
            "\n",
            r#"{"id":2,"d":"2026-01-02","t":"10:00:00","s":"longer text"}"#,
            "\n"
        ),
    )
    .unwrap();
    let (code, err, textfile) = load(dir.path(), &input, &table, &["--widen-columns"]);
    assert_eq!(code, 1, "{err}");
    // Record 2 widened `s`; record 1 widened nothing.
    assert_eq!(column_type(&mut db, &table, "d"), "date", "{err}");
    assert_eq!(column_type(&mut db, &table, "s"), "varchar(255)", "{err}");
    assert_eq!(widened(&textfile), 1, "{err}");
    assert_eq!(
        values(&mut db, &table, "s"),
        vec![("2".to_string(), Some("longer text".to_string()))]
    );
    let why = reasons(dir.path(), &table);
    assert!(why.len() == 1 && why[0].contains("`t`"), "{why:?}");
    db.exec(&format!("DROP TABLE {table}"));
}

/// Another run widened a column after this one read the table: this run
/// converts again with the column as it now is and never narrows it.
#[test]
fn a_column_another_run_widened_is_never_narrowed() {
    let mut db = Db::connect();
    let table = table_name("drift_race");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, s VARCHAR(10))"
    ));
    let url = mysql_url();
    let mut child = Bin::new(&[
        "--source-type",
        "jsonl",
        "--jsonl-file",
        "-",
        "--sink-type",
        "mysql",
        "--db-url",
        &url,
        "--db-table",
        &table,
        "--widen-columns",
        "--batch-timeout-ms",
        "100",
    ])
    .no_stdout()
    .spawn();
    let mut input = child.stdin.take().unwrap();
    use std::io::Write;
    writeln!(input, r#"{{"id":1,"s":"ok"}}"#).unwrap();
    input.flush().unwrap();
    let t = std::time::Instant::now();
    while db.count(&format!("SELECT COUNT(*) FROM {table}")) < 1 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "first row"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Another run widens `s` to TEXT meanwhile.
    db.exec(&format!("ALTER TABLE {table} MODIFY COLUMN s TEXT"));
    writeln!(input, r#"{{"id":2,"s":"twenty characters!!!"}}"#).unwrap();
    drop(input);
    let out = wait_with_limit(child, std::time::Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(column_type(&mut db, &table, "s"), "text", "{err}");
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 2);
    db.exec(&format!("DROP TABLE {table}"));
}
