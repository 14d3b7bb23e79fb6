//! Every kind of input a file source can be given, for CSV and NDJSON, into
//! every sink: a regular file, a symlink, a hard link, one file named twice,
//! a named pipe fed by another process, `/dev/stdin`, a process substitution
//! (`<(…)`, a `/dev/fd/N` pipe), a gzip pipe, and lists mixing pipes with
//! files. Each run must read every record exactly once (nothing lost, nothing
//! doubled), keep the header, say so in its counts (read = inserted +
//! updated + skipped + failed, output rows = inserted) and exit with the
//! code that tells the truth.
//!
//! The table is [`kinds`]: a new input kind is one more entry, and runs
//! against both formats and every sink.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Format {
    Csv,
    Ndjson,
}

impl Format {
    fn source(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "jsonl",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Format::Csv => "--csv-file",
            Format::Ndjson => "--jsonl-file",
        }
    }

    /// Records `name` = "n<id>", `id` for each id, with the CSV header.
    fn text(self, ids: std::ops::Range<u64>) -> String {
        match self {
            Format::Csv => {
                let mut s = String::from("name,id\n");
                for i in ids {
                    s.push_str(&format!("n{i},{i}\n"));
                }
                s
            }
            Format::Ndjson => ids
                .map(|i| format!("{{\"name\":\"n{i}\",\"id\":{i}}}\n"))
                .collect(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Sink {
    /// JSON lines into a file.
    File,
    /// MySQL, into a table that exists.
    Mysql,
    /// MySQL, the table created by `--create-table` (types from a sample,
    /// or from the first batch for input that can be read only once).
    MysqlCreate,
}

/// Where one case runs.
struct Setup {
    dir: PathBuf,
    fmt: Format,
    /// Records per data file.
    rows: u64,
}

impl Setup {
    /// A data file `name` holding the records `ids`.
    fn file(&self, name: &str, ids: std::ops::Range<u64>) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, self.fmt.text(ids)).unwrap();
        path
    }

    /// A file `name` holding `bytes` (no record).
    fn empty(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    /// A named pipe `name` that a child process fills with `from`'s bytes.
    fn fifo(&self, name: &str, from: &Path) -> (PathBuf, Child) {
        self.fifo_from(name, "cat", from)
    }

    /// A named pipe `name` that `program from` (a child process) fills.
    fn fifo_from(&self, name: &str, program: &str, from: &Path) -> (PathBuf, Child) {
        let path = self.dir.join(name);
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let writer = Command::new("sh")
            .args(["-c", &format!("exec {program} \"$1\" > \"$2\""), "sh"])
            .arg(from)
            .arg(&path)
            .spawn()
            .unwrap();
        (path, writer)
    }

    /// A socket for standard input that a child process fills with
    /// `from`'s bytes.
    fn socket(&self, from: &Path) -> (Stdio, Child) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let writer = Command::new("cat")
            .arg(from)
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .spawn()
            .unwrap();
        (Stdio::from(std::os::fd::OwnedFd::from(ours)), writer)
    }

    /// A pipe for standard input that `program args` writes.
    fn pipe(&self, program: &str, args: &[&str]) -> (Stdio, Child) {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        (Stdio::from(out), child)
    }
}

/// What a case gives pipeline-cli.
struct Given {
    /// The input arguments; shell words (`<(cat …)`) when `shell`.
    inputs: Vec<String>,
    shell: bool,
    stdin: Stdio,
    /// Processes that write the pipes; ended by PID after the run.
    writers: Vec<Child>,
    /// Every id the run must read, in the order it must read them.
    ids: Vec<u64>,
    /// What its log must say.
    says: Option<&'static str>,
}

impl Given {
    fn files(inputs: Vec<String>, ids: Vec<u64>) -> Given {
        Given {
            inputs,
            shell: false,
            stdin: Stdio::null(),
            writers: Vec::new(),
            ids,
            says: None,
        }
    }
}

/// An input with nothing in it (no header, no record): read as nothing,
/// with a warning, exit 0.
fn empty(inputs: Vec<String>) -> Given {
    Given {
        says: Some("empty"),
        ..Given::files(inputs, Vec::new())
    }
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// One kind of input.
struct Kind {
    name: &'static str,
    make: fn(&Setup) -> Given,
}

/// The table of input kinds.
fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            name: "a regular file",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                Given::files(vec![p(&f)], (1..s.rows + 1).collect())
            },
        },
        Kind {
            name: "a symlink to the file",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let link = s.dir.join("latest.data");
                std::os::unix::fs::symlink(&f, &link).unwrap();
                Given::files(vec![p(&link)], (1..s.rows + 1).collect())
            },
        },
        Kind {
            name: "a hard link to the file",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let link = s.dir.join("b.data");
                fs::hard_link(&f, &link).unwrap();
                Given::files(vec![p(&link)], (1..s.rows + 1).collect())
            },
        },
        Kind {
            name: "the same file twice, two spellings",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                fs::create_dir(s.dir.join("sub")).unwrap();
                let other = s.dir.join("sub").join("..").join("a.data");
                Given {
                    says: Some("is the same file as"),
                    ..Given::files(vec![p(&f), p(&other)], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "a file and its hard link",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let link = s.dir.join("b.data");
                fs::hard_link(&f, &link).unwrap();
                Given {
                    says: Some("is the same file as"),
                    ..Given::files(vec![p(&f), p(&link)], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "a glob matching a file and a symlink to it",
            make: |s| {
                let f = s.file("2026-12-01.data", 1..s.rows + 1);
                std::os::unix::fs::symlink(&f, s.dir.join("latest.data")).unwrap();
                let glob = format!("{}/*.data", s.dir.display());
                Given {
                    says: Some("is the same file as"),
                    ..Given::files(vec![glob], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "a file with glob characters in its name, beside one they match",
            make: |s| {
                let f = s.file("a[1].data", 1..s.rows + 1);
                s.file("a1.data", s.rows + 1..s.rows + 2);
                Given::files(vec![p(&f)], (1..s.rows + 1).collect())
            },
        },
        Kind {
            name: "a named pipe (FIFO) fed by another process",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let (fifo, writer) = s.fifo("in.pipe", &f);
                Given {
                    writers: vec![writer],
                    ..Given::files(vec![p(&fifo)], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "/dev/stdin, a pipe",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let (stdin, writer) = s.pipe("cat", &[&p(&f)]);
                Given {
                    stdin,
                    writers: vec![writer],
                    ..Given::files(vec!["/dev/stdin".into()], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "/dev/stdin, a regular file",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                Given {
                    stdin: Stdio::from(fs::File::open(&f).unwrap()),
                    ..Given::files(vec!["/dev/stdin".into()], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "/dev/stdin, a socket",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let (stdin, writer) = s.socket(&f);
                Given {
                    stdin,
                    writers: vec![writer],
                    ..Given::files(vec!["/dev/stdin".into()], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "standard input (-), a socket",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let (stdin, writer) = s.socket(&f);
                Given {
                    stdin,
                    writers: vec![writer],
                    ..Given::files(vec!["-".into()], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "standard input (-), a pipe",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let (stdin, writer) = s.pipe("cat", &[&p(&f)]);
                Given {
                    stdin,
                    writers: vec![writer],
                    ..Given::files(vec!["-".into()], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "a process substitution <(cat file)",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                Given {
                    shell: true,
                    ..Given::files(
                        vec![format!("<(cat {})", quote(&p(&f)))],
                        (1..s.rows + 1).collect(),
                    )
                }
            },
        },
        Kind {
            name: "a gzip pipe on standard input (-)",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let (stdin, writer) = s.pipe("gzip", &["-c", &p(&f)]);
                Given {
                    stdin,
                    writers: vec![writer],
                    ..Given::files(vec!["-".into()], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "a gzip process substitution <(gzip -c file)",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                Given {
                    shell: true,
                    ..Given::files(
                        vec![format!("<(gzip -c {})", quote(&p(&f)))],
                        (1..s.rows + 1).collect(),
                    )
                }
            },
        },
        Kind {
            name: "a pzstd pipe on /dev/stdin (skippable frames)",
            make: |s| {
                let f = s.file("a.data", 1..s.rows + 1);
                let (stdin, writer) = s.pipe("pzstd", &["-q", "-c", &p(&f)]);
                Given {
                    stdin,
                    writers: vec![writer],
                    ..Given::files(vec!["/dev/stdin".into()], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "a file, then a gzip FIFO",
            make: |s| {
                let k = s.rows / 2;
                let a = s.file("a.data", 1..k + 1);
                let b = s.file("b.data", k + 1..2 * k + 1);
                let (f, w) = s.fifo_from("in.pipe", "gzip -c", &b);
                Given {
                    writers: vec![w],
                    ..Given::files(vec![p(&a), p(&f)], (1..2 * k + 1).collect())
                }
            },
        },
        Kind {
            name: "two FIFOs and a file, read in command-line order",
            make: |s| {
                let k = s.rows / 4;
                let z = s.file("z.data", 1..k + 1);
                let a = s.file("a.data", k + 1..2 * k + 1);
                let m = s.file("m.data", 2 * k + 1..3 * k + 1);
                let (zf, zw) = s.fifo("z.pipe", &z);
                let (af, aw) = s.fifo("a.pipe", &a);
                Given {
                    writers: vec![zw, aw],
                    ..Given::files(vec![p(&zf), p(&af), p(&m)], (1..3 * k + 1).collect())
                }
            },
        },
        Kind {
            name: "a file, a FIFO and a file, read in command-line order",
            make: |s| {
                let k = s.rows / 4;
                let a = s.file("a.data", 1..k + 1);
                let piped = s.file("piped.data", k + 1..2 * k + 1);
                let b = s.file("b.data", 2 * k + 1..3 * k + 1);
                let (f, w) = s.fifo("in.pipe", &piped);
                Given {
                    writers: vec![w],
                    ..Given::files(vec![p(&a), p(&f), p(&b)], (1..3 * k + 1).collect())
                }
            },
        },
        Kind {
            name: "an empty file, then the file",
            make: |s| {
                let empty = s.dir.join("0-empty.data");
                fs::write(&empty, "").unwrap();
                let f = s.file("a.data", 1..s.rows + 1);
                Given {
                    says: Some("is empty"),
                    ..Given::files(vec![p(&empty), p(&f)], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "an empty FIFO, then the file, then an empty FIFO",
            make: |s| {
                let empty = s.dir.join("empty.data");
                fs::write(&empty, "").unwrap();
                let (first, w1) = s.fifo("first.pipe", &empty);
                let (last, w2) = s.fifo("last.pipe", &empty);
                let f = s.file("a.data", 1..s.rows + 1);
                Given {
                    // A pipe's CSV header is read when its turn comes: none there.
                    says: (s.fmt == Format::Csv).then_some("is empty"),
                    writers: vec![w1, w2],
                    ..Given::files(vec![p(&first), p(&f), p(&last)], (1..s.rows + 1).collect())
                }
            },
        },
        Kind {
            name: "an empty file alone",
            make: |s| empty(vec![p(&s.empty("empty.data", b""))]),
        },
        Kind {
            name: "a file holding only a byte-order mark",
            make: |s| empty(vec![p(&s.empty("bom.data", b"\xEF\xBB\xBF"))]),
        },
        Kind {
            name: "a blank file (line ends only)",
            make: |s| empty(vec![p(&s.empty("blank.data", b"\n\r\n\n"))]),
        },
        Kind {
            name: "a file of one line of blanks",
            make: |s| empty(vec![p(&s.empty("blanks.data", b" \t \r\n\n"))]),
        },
        Kind {
            name: "a process substitution <(true), then an empty file",
            make: |s| Given {
                shell: true,
                ..empty(vec![
                    "<(true)".into(),
                    quote(&p(&s.empty("empty.data", b""))),
                ])
            },
        },
        Kind {
            name: "a gzip file of nothing",
            make: |s| empty(vec![p(&s.empty("empty.data.gz", &gzip(b"")))]),
        },
        Kind {
            name: "an empty file as a one-element glob",
            make: |s| {
                s.empty("empty.data", b"");
                empty(vec![format!("{}/empty.dat[a]", s.dir.display())])
            },
        },
        Kind {
            name: "two empty files",
            make: |s| {
                let a = s.empty("a.data", b"");
                let b = s.empty("b.data.gz", &gzip(b""));
                empty(vec![p(&a), p(&b)])
            },
        },
        Kind {
            name: "an empty named pipe alone",
            make: |s| {
                let (f, w) = s.fifo("in.pipe", &s.empty("empty.data", b""));
                Given {
                    writers: vec![w],
                    ..empty(vec![p(&f)])
                }
            },
        },
        Kind {
            name: "standard input (-), an empty pipe",
            make: |s| {
                let (stdin, writer) = s.pipe("true", &[]);
                Given {
                    stdin,
                    writers: vec![writer],
                    ..empty(vec!["-".into()])
                }
            },
        },
        Kind {
            name: "standard input (-), /dev/null",
            make: |_| empty(vec!["-".into()]),
        },
        Kind {
            name: "/dev/stdin, a gzip pipe of nothing",
            make: |s| {
                let e = s.empty("empty.data", b"");
                let (stdin, writer) = s.pipe("gzip", &["-c", &p(&e)]);
                Given {
                    stdin,
                    writers: vec![writer],
                    ..empty(vec!["/dev/stdin".into()])
                }
            },
        },
        Kind {
            name: "a process substitution <(true)",
            make: |_| Given {
                shell: true,
                ..empty(vec!["<(true)".into()])
            },
        },
        Kind {
            name: "two process substitutions and a file, read in command-line order",
            make: |s| {
                let k = s.rows / 4;
                let one = s.file("one.data", 1..k + 1);
                let two = s.file("two.data", k + 1..2 * k + 1);
                let three = s.file("three.data", 2 * k + 1..3 * k + 1);
                Given {
                    shell: true,
                    ..Given::files(
                        vec![
                            format!("<(cat {})", quote(&p(&one))),
                            format!("<(cat {})", quote(&p(&two))),
                            quote(&p(&three)),
                        ],
                        (1..3 * k + 1).collect(),
                    )
                }
            },
        },
    ]
}

/// `s` as one shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Waits for `child` at most `limit`; past that, kills it and says so.
fn wait_for(mut child: Child, limit: Duration) -> Result<Output, String> {
    let t = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Ok(child.wait_with_output().unwrap());
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return Err(format!(
                "did not exit within {limit:?} (it hung); stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The id of an output line or row, whether text or a number.
fn id_of(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Runs one case; `Err` says what went wrong.
fn run_case(kind: &Kind, fmt: Format, sink: Sink, db: &mut Db, n: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let rows = if sink == Sink::MysqlCreate {
        // Enough that a sample read to the end of a pipe leaves a visible
        // remainder (a pipe holds 64 KiB).
        20_000
    } else {
        2_000
    };
    let setup = Setup {
        dir: dir.path().to_path_buf(),
        fmt,
        rows,
    };
    let mut given = (kind.make)(&setup);
    let out = dir.path().join("out.jsonl");
    let summary = dir.path().join("summary.json");
    let table = table_name(&format!("ik_{}_{n}", format!("{sink:?}").to_lowercase()));
    let url = mysql_url();
    let mut args: Vec<String> = vec![
        "--source-type".into(),
        fmt.source().into(),
        fmt.flag().into(),
    ];
    let first_input = args.len();
    args.extend(given.inputs.iter().cloned());
    let inputs_end = args.len();
    match sink {
        Sink::File => args.extend([
            "--sink-type".into(),
            "file".into(),
            "--output-file".into(),
            p(&out),
        ]),
        Sink::Mysql | Sink::MysqlCreate => {
            db.exec(&format!("DROP TABLE IF EXISTS {table}"));
            if sink == Sink::Mysql {
                db.exec(&format!(
                    "CREATE TABLE {table} (name VARCHAR(32) NOT NULL, id BIGINT PRIMARY KEY)"
                ));
            }
            args.extend(
                [
                    "--sink-type",
                    "mysql",
                    "--db-url",
                    &url,
                    "--db-table",
                    &table,
                ]
                .map(String::from),
            );
            if sink == Sink::MysqlCreate {
                args.extend(["--create-table", "--db-key", "id"].map(String::from));
            }
        }
    }
    args.extend(["--summary-json".into(), p(&summary)]);
    let mut cmd = if given.shell {
        let words: Vec<String> = args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if (first_input..inputs_end).contains(&i) {
                    a.clone()
                } else {
                    quote(a)
                }
            })
            .collect();
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!("exec {} {}", quote(bin()), words.join(" ")));
        c
    } else {
        let mut c = Command::new(bin());
        c.args(&args);
        c
    };
    let stdin = std::mem::replace(&mut given.stdin, Stdio::null());
    let child = cmd
        .env_remove("PIPELINE_LOG")
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let res = wait_for(child, Duration::from_secs(60));
    for mut w in given.writers.drain(..) {
        let _ = w.kill();
        let _ = w.wait();
    }
    let res = res?;
    let err = stderr(&res);
    let mut check = || -> Result<(), String> {
        if res.status.code() != Some(0) {
            return Err(format!("exit {:?}", res.status.code()));
        }
        if let Some(says) = given.says {
            if !err.contains(says) {
                return Err(format!("the log does not say '{says}'"));
            }
        }
        let s: Value = serde_json::from_str(
            &fs::read_to_string(&summary).map_err(|e| format!("no summary: {e}"))?,
        )
        .map_err(|e| format!("summary: {e}"))?;
        let count = |k: &str| s[k].as_u64().unwrap_or(0);
        let want = given.ids.len() as u64;
        let accounted = count("inserted")
            + count("updated")
            + count("skipped")
            + count("failed")
            + count("in_doubt");
        if count("read") != accounted {
            return Err(format!(
                "read {} != inserted + updated + skipped + failed + in doubt {accounted}",
                count("read")
            ));
        }
        if count("read") != want || count("inserted") != want {
            return Err(format!(
                "read {} inserted {}, want {want} of each",
                count("read"),
                count("inserted")
            ));
        }
        match sink {
            Sink::File => {
                let lines = read_jsonl(&out);
                if lines.len() as u64 != count("inserted") {
                    return Err(format!(
                        "{} output rows, {} inserted",
                        lines.len(),
                        count("inserted")
                    ));
                }
                for (i, l) in lines.iter().enumerate() {
                    let keys: Vec<&str> =
                        l.as_object().unwrap().keys().map(String::as_str).collect();
                    if keys != ["name", "id"] {
                        return Err(format!(
                            "line {}: fields {keys:?}, want [name, id]: {l}",
                            i + 1
                        ));
                    }
                }
                let got: Vec<u64> = lines.iter().filter_map(|l| id_of(&l["id"])).collect();
                if got != given.ids {
                    let first_off = got.iter().zip(&given.ids).position(|(a, b)| a != b);
                    return Err(format!(
                        "ids read are not the ids given, in their order: {} read, first difference at {first_off:?}",
                        got.len()
                    ));
                }
            }
            Sink::Mysql | Sink::MysqlCreate => {
                let columns: Vec<String> = db
                    .rows(&format!(
                        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
                    ))
                    .into_iter()
                    .map(|r| r[0].clone().unwrap())
                    .collect();
                // Nothing read: --create-table has no types to create a
                // table from.
                let none = given.ids.is_empty() && sink == Sink::MysqlCreate;
                if none && columns.is_empty() {
                    return Ok(());
                }
                if columns != ["name", "id"] {
                    return Err(format!("table columns {columns:?}, want [name, id]"));
                }
                let mut got: Vec<u64> = db
                    .rows(&format!(
                        "SELECT id FROM {table} WHERE name = CONCAT('n', id)"
                    ))
                    .into_iter()
                    .map(|r| r[0].as_deref().unwrap().parse().unwrap())
                    .collect();
                got.sort_unstable();
                let rows_in_table = db.count(&format!("SELECT COUNT(*) FROM {table}"));
                if rows_in_table != count("inserted") {
                    return Err(format!(
                        "{rows_in_table} rows in the table, {} inserted",
                        count("inserted")
                    ));
                }
                let mut want_ids = given.ids.clone();
                want_ids.sort_unstable();
                if got != want_ids {
                    return Err(format!(
                        "the table holds {} of the {} ids given",
                        got.len(),
                        want_ids.len()
                    ));
                }
            }
        }
        Ok(())
    };
    let result = check().map_err(|e| format!("{e}\nstderr:\n{err}"));
    if sink != Sink::File {
        db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    }
    result
}

/// Runs every kind in both formats into `sink`; fails listing every case
/// that went wrong.
fn every_kind_into(sink: Sink) {
    let mut db = Db::connect();
    let mut failures = Vec::new();
    let mut n = 0;
    for kind in kinds() {
        for fmt in [Format::Csv, Format::Ndjson] {
            n += 1;
            if let Err(e) = run_case(&kind, fmt, sink, &mut db, n) {
                failures.push(format!("{fmt:?}, {} -> {sink:?}: {e}", kind.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_input_kind_into_a_file() {
    every_kind_into(Sink::File);
}

#[test]
fn every_input_kind_into_mysql() {
    every_kind_into(Sink::Mysql);
}

#[test]
fn every_input_kind_into_mysql_with_create_table() {
    every_kind_into(Sink::MysqlCreate);
}

/// With `--input-shard`, an input that is not a regular file (read once,
/// by one process) is refused like `-`, in every shard: exit 2, one line,
/// nothing read, nothing written.
#[test]
fn input_shard_refuses_every_input_that_is_not_a_regular_file() {
    let mut failures = Vec::new();
    for fmt in [Format::Csv, Format::Ndjson] {
        for name in [
            "a named pipe",
            "a glob matching a named pipe",
            "/dev/stdin, a pipe",
            "/dev/stdin, a socket",
            "/dev/fd/0",
            "a process substitution",
        ] {
            for shard in ["0/2", "1/2"] {
                let dir = tempfile::tempdir().unwrap();
                let setup = Setup {
                    dir: dir.path().to_path_buf(),
                    fmt,
                    rows: 100,
                };
                let a = setup.file("a.data", 1..101);
                let b = setup.file("b.data", 101..201);
                let mut writers = Vec::new();
                let mut stdin = Stdio::null();
                let mut shell = false;
                let other = match name {
                    "a named pipe" | "a glob matching a named pipe" => {
                        let (f, w) = setup.fifo("in.pipe", &b);
                        writers.push(w);
                        if name == "a named pipe" {
                            p(&f)
                        } else {
                            format!("{}/in.*", dir.path().display())
                        }
                    }
                    "/dev/stdin, a pipe" | "/dev/fd/0" => {
                        let (i, w) = setup.pipe("cat", &[&p(&b)]);
                        (stdin, writers) = (i, vec![w]);
                        if name == "/dev/fd/0" {
                            "/dev/fd/0"
                        } else {
                            "/dev/stdin"
                        }
                        .into()
                    }
                    "/dev/stdin, a socket" => {
                        let (i, w) = setup.socket(&b);
                        (stdin, writers) = (i, vec![w]);
                        "/dev/stdin".into()
                    }
                    _ => {
                        shell = true;
                        format!("<(cat {})", quote(&p(&b)))
                    }
                };
                let out = dir.path().join("out.jsonl");
                let args: Vec<String> = [
                    "--source-type",
                    fmt.source(),
                    fmt.flag(),
                    &p(&a),
                    &other,
                    "--input-shard",
                    shard,
                    "--sink-type",
                    "file",
                    "--output-file",
                    &p(&out),
                    "--quiet",
                ]
                .map(String::from)
                .to_vec();
                let mut cmd = if shell {
                    let words: Vec<String> = args
                        .iter()
                        .map(|a| {
                            if a.starts_with("<(") {
                                a.clone()
                            } else {
                                quote(a)
                            }
                        })
                        .collect();
                    let mut c = Command::new("bash");
                    c.arg("-c")
                        .arg(format!("exec {} {}", quote(bin()), words.join(" ")));
                    c
                } else {
                    let mut c = Command::new(bin());
                    c.args(&args);
                    c
                };
                let child = cmd
                    .env_remove("PIPELINE_LOG")
                    .stdin(stdin)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let res = wait_for(child, Duration::from_secs(30));
                for mut w in writers {
                    let _ = w.kill();
                    let _ = w.wait();
                }
                let case = format!("{fmt:?}, {name}, --input-shard {shard}");
                let res = match res {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(format!("{case}: {e}"));
                        continue;
                    }
                };
                let err = stderr(&res);
                if res.status.code() != Some(2)
                    || !err.contains("cannot be split")
                    || err.trim().lines().count() != 1
                    || out.exists()
                {
                    failures.push(format!(
                        "{case}: exit {:?}, output written {}, stderr:\n{err}",
                        res.status.code(),
                        out.exists()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
