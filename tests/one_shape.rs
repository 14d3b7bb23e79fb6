//! One shape whichever way the input is read: generated CSV and NDJSON
//! inputs (quotes, doubled quotes, CRLF, multi-line fields, escapes, control
//! characters, invalid UTF-8, wrong field counts, number-like text, a BOM,
//! blank lines; nested JSON, long numbers, invalid lines, non-objects) are
//! run through every read path: a regular file on one thread and on several
//! (small batches), standard input (records, not lines), a gzip-compressed
//! file. Every path must write the same output bytes, the same dead-letter
//! entries and the same counts, and the output must hold what the input
//! holds (each good row or object, and a rejection for each bad one). The
//! flags that change what is written vary too: `--csv-infer-types`,
//! `--csv-delimiter`, `--jsonl-max-line-bytes` and `--limit`.
//!
//! `PROPTEST_CASES` sets the number of cases (48 by default); a failure is
//! shrunk to a small input, printed with its flags.

mod common;

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{bin, gzip, summary_number, without_run_ids};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value as Json;

/// What one run left: output bytes, dead-letter bytes, counts (read,
/// inserted, failed).
struct Outcome {
    output: Vec<u8>,
    dead: Vec<u8>,
    counts: [u64; 3],
}

impl Outcome {
    /// Where `other` differs from this one, shortly: the counts, or the
    /// first line of the output or dead-letter file that differs.
    fn differs(&self, other: &Outcome) -> Option<String> {
        if self.counts != other.counts {
            return Some(format!(
                "counts (read, inserted, failed) {:?} against {:?}",
                self.counts, other.counts
            ));
        }
        for (what, a, b) in [
            ("output", &self.output, &other.output),
            ("dead-letter file", &self.dead, &other.dead),
        ] {
            if a == b {
                continue;
            }
            let (la, lb) = (a.split(|&c| c == b'\n'), b.split(|&c| c == b'\n'));
            let mut pairs = la
                .map(Some)
                .chain(std::iter::repeat(None))
                .zip(lb.map(Some).chain(std::iter::repeat(None)));
            let (line, (x, y)) = (1..)
                .zip(&mut pairs)
                .find(|(_, (x, y))| x != y)
                .expect("some line differs");
            let show =
                |l: Option<&[u8]>| l.map_or("(none)".to_string(), |l| l.escape_ascii().to_string());
            return Some(format!(
                "{what} line {line}:\n  {}\nagainst\n  {}",
                show(x),
                show(y)
            ));
        }
        None
    }
}

/// One way to read the input.
#[derive(Debug, Clone, Copy)]
enum ReadPath {
    /// A regular file, with these `--csv-threads` or `--jsonl-threads`,
    /// `--batch-size`, `--workers` and (NDJSON) `--jsonl-chunk-bytes`.
    File(&'static str, &'static str, &'static str, &'static str),
    /// Standard input (a pipe), with this `--batch-size`.
    Stdin(&'static str),
    /// A gzip-compressed regular file.
    Gzip,
}

/// The paths every input is run through; the first is the reference.
const PATHS: [ReadPath; 6] = [
    ReadPath::File("1", "1000", "1", "1"),
    ReadPath::File("2", "7", "1", "7"),
    ReadPath::File("3", "1", "2", "16"),
    ReadPath::File("4", "3", "3", "64"),
    ReadPath::Stdin("5"),
    ReadPath::Gzip,
];

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs the binary on `input` read the way `how` says; `source` is
/// `csv` or `jsonl`, `flags` the value-changing flags of the case.
fn run_path(
    dir: &Path,
    (n, how): (usize, ReadPath),
    source: &str,
    input: &[u8],
    flags: &[String],
) -> Outcome {
    let file_flag = format!("--{source}-file");
    let output = dir.join(format!("out-{n}.jsonl"));
    let dead = dir.join(format!("dead-{n}.jsonl"));
    let mut args: Vec<String> = ["--source-type", source, "--sink-type", "file"]
        .map(String::from)
        .to_vec();
    args.extend(["--output-file".into(), p(&output).into()]);
    args.extend(["--dead-letter".into(), p(&dead).into()]);
    args.extend(flags.iter().cloned());
    let mut stdin = None;
    match how {
        ReadPath::File(threads, batch, workers, chunk) => {
            let file = dir.join(format!("in-{n}.{source}"));
            fs::write(&file, input).unwrap();
            args.extend([file_flag, p(&file).into()]);
            args.extend([format!("--{source}-threads"), threads.into()]);
            if source == "jsonl" {
                // Chunks of a few bytes: cuts fall everywhere.
                args.extend(["--jsonl-chunk-bytes".into(), chunk.into()]);
            }
            args.extend(["--batch-size".into(), batch.into()]);
            args.extend(["--workers".into(), workers.into()]);
        }
        ReadPath::Stdin(batch) => {
            args.extend([file_flag, "-".into(), "--batch-size".into(), batch.into()]);
            stdin = Some(input.to_vec());
        }
        ReadPath::Gzip => {
            let file = dir.join(format!("in-{n}.{source}.gz"));
            fs::write(&file, gzip(input)).unwrap();
            args.extend([file_flag, p(&file).into()]);
        }
    }
    let mut child = Command::new(bin())
        .args(&args)
        .env_remove("PIPELINE_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pipeline-cli");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().expect("wait for pipeline-cli");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{how:?} {flags:?}: exit {:?}\n{err}",
        out.status.code()
    );
    let counts = ["read", "inserted", "failed"].map(|k| summary_number(&err, k));
    let read = |f: &PathBuf| fs::read(f).unwrap_or_default();
    let outcome = Outcome {
        output: read(&output),
        dead: without_run_ids(&String::from_utf8_lossy(&read(&dead))).into_bytes(),
        counts,
    };
    let _ = fs::remove_file(&output);
    let _ = fs::remove_file(&dead);
    outcome
}

/// Runs every path and checks they agree; returns the reference outcome.
fn every_path(source: &str, input: &[u8], flags: &[String]) -> Result<Outcome, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let first = run_path(dir.path(), (0, PATHS[0]), source, input, flags);
    for (n, how) in PATHS.iter().enumerate().skip(1) {
        let other = run_path(dir.path(), (n, *how), source, input, flags);
        if let Some(diff) = first.differs(&other) {
            return Err(TestCaseError::fail(format!(
                "{:?} against {how:?}: {diff}",
                PATHS[0]
            )));
        }
    }
    let [read, inserted, failed] = first.counts;
    prop_assert_eq!(read, inserted + failed, "the counts do not reconcile");
    let dead_lines = first.dead.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    prop_assert_eq!(
        dead_lines.count() as u64,
        failed,
        "one dead letter per failure"
    );
    Ok(first)
}

/// The output's lines as JSON values.
fn output_values(out: &Outcome) -> Result<Vec<Json>, TestCaseError> {
    let text = std::str::from_utf8(&out.output)
        .map_err(|e| TestCaseError::fail(format!("output not UTF-8: {e}")))?;
    text.lines()
        .map(|l| {
            serde_json::from_str(l).map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {l}")))
        })
        .collect()
}

/// A proptest runner: `PROPTEST_CASES` cases (48 unless set), a bounded
/// shrink (each step runs the binary a few times), nothing persisted.
fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    TestRunner::new(Config {
        cases,
        max_shrink_iters: 256,
        failure_persistence: None,
        ..Config::default()
    })
}

/// `--limit N`, when set (rows or lines read, rejected ones included).
fn limit_flag(limit: Option<usize>) -> Vec<String> {
    limit.map_or(Vec::new(), |n| vec!["--limit".into(), n.to_string()])
}

// ---------------------------------------------------------------- CSV

/// Header names: quotes, backslashes, a control character and non-ASCII
/// text, so keys are escaped too.
const NAMES: [&str; 5] = ["id", "na\"me", "é\\x", "tab\tkey", "n"];

/// Texts that inference reads in different ways.
const NUMBERISH: [&str; 16] = [
    "",
    "-0",
    "007",
    "1.50",
    "0",
    "42",
    "-7",
    "true",
    "FALSE",
    "True",
    "1e5",
    " 1",
    "+3",
    "123456789012345678901234567890",
    "9223372036854775808",
    "-0.0",
];

/// Pieces a field's text is made of.
fn pieces() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "a",
        "xyz 12",
        "\"",
        "\"\"",
        "\\",
        "\\n",
        "\\\"",
        "\n",
        "\r\n",
        "\r",
        "\t",
        "\u{1}",
        "\u{1f}",
        "\u{7f}",
        "é",
        "東京",
        "🚀",
        ",",
        ";",
        "|",
        " ",
        "-0",
        "1.50",
        "0x",
        "a longer run of plain text without anything to escape",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(vec![0xff]);
    v.push(vec![0xc3]);
    v
}

fn field() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::sample::select(NUMBERISH.to_vec()).prop_map(|s| s.as_bytes().to_vec()),
        3 => prop::collection::vec(prop::sample::select(pieces()), 0..5).prop_map(|p| p.concat()),
    ]
}

/// One line of a CSV body.
#[derive(Clone, Debug)]
enum CsvRow {
    Blank,
    /// The fields and, for each, whether it is quoted when it need not be.
    Fields(Vec<(Vec<u8>, bool)>),
}

#[derive(Clone)]
struct CsvCase {
    delimiter: u8,
    infer: bool,
    bom: bool,
    columns: usize,
    /// Each row with its line end (CRLF when true).
    rows: Vec<(CsvRow, bool)>,
    /// The last row ends in a line end.
    ends_with_newline: bool,
    /// The body is repeated past a few read chunks (256 KiB each).
    big: bool,
    /// `--limit`, when set.
    limit: Option<usize>,
}

fn csv_case() -> impl Strategy<Value = CsvCase> {
    (1..=NAMES.len()).prop_flat_map(|columns| {
        let count = prop_oneof![
            8 => Just(columns),
            1 => Just(columns + 1),
            1 => Just(columns.saturating_sub(1).max(1)),
        ];
        let row = prop_oneof![
            1 => Just(CsvRow::Blank),
            12 => count.prop_flat_map(|n| {
                prop::collection::vec((field(), prop::bool::weighted(0.2)), n)
                    .prop_map(CsvRow::Fields)
            }),
        ];
        (
            prop::sample::select(vec![b',', b';', b'|']),
            any::<bool>(),
            prop::bool::weighted(0.2),
            Just(columns),
            prop::collection::vec((row, prop::bool::weighted(0.3)), 0..12),
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.1),
            prop::option::weighted(0.15, 1..10usize),
        )
            .prop_map(
                |(delimiter, infer, bom, columns, rows, ends_with_newline, big, limit)| CsvCase {
                    delimiter,
                    infer,
                    bom,
                    columns,
                    rows,
                    ends_with_newline,
                    big,
                    limit,
                },
            )
    })
}

impl CsvCase {
    fn flags(&self) -> Vec<String> {
        let mut f = vec![
            "--csv-delimiter".to_string(),
            (self.delimiter as char).into(),
        ];
        if self.infer {
            f.push("--csv-infer-types".into());
        }
        f.extend(limit_flag(self.limit));
        f
    }

    /// A field as it is written: quoted (quotes doubled) when it must be or
    /// when asked to.
    fn quote(&self, field: &[u8], force: bool, alone: bool) -> Vec<u8> {
        let must = field.first() == Some(&b'"')
            || field
                .iter()
                .any(|&b| b == self.delimiter || b == b'\n' || b == b'\r')
            // A row of one empty field would be a blank line.
            || (alone && field.is_empty());
        if !(must || force) {
            return field.to_vec();
        }
        let mut q = vec![b'"'];
        for &b in field {
            q.push(b);
            if b == b'"' {
                q.push(b'"');
            }
        }
        q.push(b'"');
        q
    }

    fn line(&self, row: &CsvRow) -> Vec<u8> {
        match row {
            CsvRow::Blank => Vec::new(),
            CsvRow::Fields(fields) => {
                let quoted: Vec<Vec<u8>> = fields
                    .iter()
                    .map(|(f, force)| self.quote(f, *force, fields.len() == 1))
                    .collect();
                quoted.join(&self.delimiter)
            }
        }
    }

    /// The body's rows, repeated when the case is big.
    fn body(&self) -> Vec<(CsvRow, bool)> {
        let size: usize = self.rows.iter().map(|(r, _)| self.line(r).len() + 2).sum();
        let times = if self.big && size > 0 {
            400_000 / size + 1
        } else {
            1
        };
        let mut rows = Vec::with_capacity(self.rows.len() * times);
        for _ in 0..times {
            rows.extend(self.rows.iter().cloned());
        }
        rows
    }

    fn input(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        let header: Vec<(Vec<u8>, bool)> = NAMES[..self.columns]
            .iter()
            .map(|n| (n.as_bytes().to_vec(), n.contains('"')))
            .collect();
        let header = CsvRow::Fields(header);
        let body = self.body();
        let rows = std::iter::once((&header, false)).chain(body.iter().map(|(r, c)| (r, *c)));
        let n = body.len() + 1;
        for (i, (row, crlf)) in rows.enumerate() {
            out.extend(self.line(row));
            if i + 1 < n || self.ends_with_newline {
                out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
        }
        out
    }

    /// The output's records (as JSON) and the number of rejected rows.
    fn expected(&self) -> (Vec<Json>, u64) {
        let (mut records, mut failed) = (Vec::new(), 0);
        let rows = self.body().into_iter().filter_map(|(row, _)| match row {
            CsvRow::Fields(fields) => Some(fields),
            CsvRow::Blank => None,
        });
        for fields in rows.take(self.limit.unwrap_or(usize::MAX)) {
            let texts: Result<Vec<&str>, _> =
                fields.iter().map(|(f, _)| std::str::from_utf8(f)).collect();
            match texts {
                Ok(texts) if texts.len() == self.columns => {
                    let object = NAMES.iter().zip(texts).map(|(name, text)| {
                        let value = match self.infer {
                            true => inferred(text),
                            false => Json::String(text.to_string()),
                        };
                        (name.to_string(), value)
                    });
                    records.push(Json::Object(object.collect()));
                }
                _ => failed += 1,
            }
        }
        (records, failed)
    }
}

/// A field's value under --csv-infer-types, as docs/usage.md states the rule:
/// empty is null; `-?(0|[1-9][0-9]*)(\.[0-9]+)?` is a number (a whole one
/// that fits 64 bits as that integer, any other with its exact digits);
/// `true` / `false` in any case is a boolean; anything else is text.
fn inferred(text: &str) -> Json {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let number =
        all_digits(int) && (int == "0" || !int.starts_with('0')) && frac.is_none_or(all_digits);
    if text.is_empty() {
        Json::Null
    } else if number {
        match text.parse::<i64>() {
            Ok(i) if frac.is_none() => Json::from(i),
            _ => serde_json::from_str(text).expect("a JSON number"),
        }
    } else if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
        Json::Bool(text.eq_ignore_ascii_case("true"))
    } else {
        Json::String(text.to_string())
    }
}

impl fmt::Debug for CsvCase {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut shown = self.clone();
        shown.big = false;
        write!(
            f,
            "flags {:?}{}, input:\n{}",
            self.flags(),
            if self.big {
                " (body repeated past 400 KB)"
            } else {
                ""
            },
            shown.input().escape_ascii()
        )
    }
}

#[test]
fn every_csv_read_path_writes_the_same_bytes() {
    let result = runner().run(&csv_case(), |case| {
        let out = every_path("csv", &case.input(), &case.flags())?;
        let (records, failed) = case.expected();
        prop_assert_eq!(out.counts[2], failed, "rejected rows");
        prop_assert_eq!(output_values(&out)?, records, "the records written");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------- NDJSON

fn json_leaf() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "-0",
        "1.50",
        "1.0e5",
        "-1E-7",
        "123456789012345678901234567890123",
        "18446744073709551616",
        "3",
        "true",
        "false",
        "null",
        "\"\"",
        "\"x y\"",
        "\"q\\\"uote\"",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude80\"",
        "\"\\/\"",
        "\"tab\\t\\n\"",
        "\"é東🚀\"",
        "\"back\\\\slash\"",
        "\"\\u0001\"",
    ])
    .prop_map(String::from)
}

/// Whitespace JSON allows between tokens.
fn space() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "  ", "\t", " \r"])
}

const KEYS: [&str; 6] = [
    "\"a\"",
    "\"b\"",
    "\"caf\\u00e9\"",
    "\"café\"",
    "\"q\\\"k\"",
    "\"_id\"",
];

fn json_value() -> impl Strategy<Value = String> {
    json_leaf().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec((inner.clone(), space()), 0..4).prop_map(|items| {
                let parts: Vec<String> = items.iter().map(|(v, s)| format!("{s}{v}{s}")).collect();
                format!("[{}]", parts.join(","))
            }),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner, space()), 0..4)
                .prop_map(|members| {
                    let parts: Vec<String> = members
                        .iter()
                        .map(|(k, v, s)| format!("{k}{s}:{s}{v}"))
                        .collect();
                    format!("{{{}}}", parts.join(","))
                }),
        ]
    })
}

/// One line of an NDJSON case, before it is written in the case's shape.
#[derive(Clone, Debug)]
enum JsonLine {
    /// A JSON object (a document, in a dump).
    Object(Vec<u8>),
    /// A line that is no object: rejected whatever the shape.
    Bad(Vec<u8>),
    /// Whitespace only: skipped.
    Blank(Vec<u8>),
    /// An object of about this many bytes, longer than a chunk.
    Long(usize),
}

fn json_line() -> impl Strategy<Value = JsonLine> {
    let object = (
        prop::collection::vec(
            (prop::sample::select(KEYS.to_vec()), json_value(), space()),
            0..5,
        ),
        space(),
    )
        .prop_map(|(members, outer)| {
            let parts: Vec<String> = members
                .iter()
                .map(|(k, v, s)| format!("{s}{k}{s}:{s}{v}{s}"))
                .collect();
            JsonLine::Object(format!("{outer}{{{}}}{outer}", parts.join(",")).into_bytes())
        });
    let bad = prop::sample::select(vec![
        b"{\"a\": 1".to_vec(),
        b"{\"a\": 1} x".to_vec(),
        b"{\"a\":1}{\"b\":2}".to_vec(),
        b"[1, 2]".to_vec(),
        b"\"text\"".to_vec(),
        b"42".to_vec(),
        b"null".to_vec(),
        b"{a: 1}".to_vec(),
        b"{\"a\": \"\xff\"}".to_vec(),
        b"\xc3{}".to_vec(),
    ])
    .prop_map(JsonLine::Bad);
    let blank = prop::sample::select(vec![b"".to_vec(), b"  ".to_vec(), b"\t".to_vec()])
        .prop_map(JsonLine::Blank);
    let long = (1..12_000usize).prop_map(JsonLine::Long);
    prop_oneof![8 => object, 2 => bad, 1 => blank, 1 => long]
}

/// What an NDJSON case's lines hold: objects, elasticdump documents or
/// `_bulk` pairs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Plain,
    Dump,
    Bulk,
}

#[derive(Clone)]
struct JsonCase {
    bom: bool,
    /// Each line with its line end (CRLF when true).
    lines: Vec<(JsonLine, bool)>,
    ends_with_newline: bool,
    /// `--jsonl-max-line-bytes`, when set.
    max_line: Option<usize>,
    /// `--limit`, when set.
    limit: Option<usize>,
    shape: Shape,
    /// `--jsonl-format` names the shape (else auto decides).
    named: bool,
    /// `--flatten`: the sink takes records, not lines the source writes.
    records: bool,
    /// `--max-errors`, when set.
    max_errors: Option<usize>,
}

fn json_case() -> impl Strategy<Value = JsonCase> {
    (
        (
            prop::bool::weighted(0.2),
            prop::collection::vec((json_line(), prop::bool::weighted(0.3)), 0..12),
            prop::bool::weighted(0.8),
            prop::option::weighted(0.2, 40..120usize),
            prop::option::weighted(0.15, 1..10usize),
        ),
        prop::sample::select(vec![Shape::Plain, Shape::Plain, Shape::Dump, Shape::Bulk]),
        any::<bool>(),
        prop::bool::weighted(0.25),
        prop::option::weighted(0.15, 1..4usize),
    )
        .prop_map(
            |(
                (bom, lines, ends_with_newline, max_line, limit),
                shape,
                named,
                records,
                max_errors,
            )| JsonCase {
                bom,
                lines,
                ends_with_newline,
                max_line,
                limit,
                shape,
                named,
                records,
                max_errors,
            },
        )
}

impl JsonCase {
    fn flags(&self) -> Vec<String> {
        let mut f = match self.max_line {
            Some(n) => vec!["--jsonl-max-line-bytes".into(), n.to_string()],
            None => Vec::new(),
        };
        if self.named {
            let name = match self.shape {
                Shape::Plain => "plain",
                Shape::Dump => "elasticdump",
                Shape::Bulk => "bulk",
            };
            f.extend(["--jsonl-format".into(), name.into()]);
        }
        if self.records {
            f.push("--flatten".into());
        }
        if let Some(n) = self.max_errors {
            f.extend(["--max-errors".into(), n.to_string()]);
        }
        f.extend(limit_flag(self.limit));
        f
    }

    /// The lines as written, each with its line end (CRLF when true).
    fn rendered(&self) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        for (i, (line, crlf)) in self.lines.iter().enumerate() {
            let object = match line {
                JsonLine::Object(o) => o.clone(),
                JsonLine::Long(n) => format!("{{\"a\":\"{}\"}}", "y".repeat(*n)).into_bytes(),
                JsonLine::Bad(b) | JsonLine::Blank(b) => {
                    out.push((b.clone(), *crlf));
                    continue;
                }
            };
            let meta = format!("{{\"_index\":\"i\",\"_id\":\"{i}\"");
            match self.shape {
                Shape::Plain => out.push((object, *crlf)),
                Shape::Dump => {
                    let mut doc = format!("{meta},\"_source\":").into_bytes();
                    doc.extend(object);
                    doc.push(b'}');
                    out.push((doc, *crlf));
                }
                Shape::Bulk => {
                    out.push((format!("{{\"index\":{meta}}}}}").into_bytes(), *crlf));
                    out.push((object, *crlf));
                }
            }
        }
        out
    }

    fn input(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        let lines = self.rendered();
        for (i, (line, crlf)) in lines.iter().enumerate() {
            out.extend_from_slice(line);
            if i + 1 < lines.len() || self.ends_with_newline {
                out.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
        }
        out
    }

    /// The output's objects and the number of rejected lines, when the
    /// case says them simply: plain objects, or elasticdump documents read
    /// as such, written as they are read (not flattened), all of them
    /// (no `--max-errors`).
    fn expected(&self) -> Option<(Vec<Json>, u64)> {
        if self.max_errors.is_some() {
            return None;
        }
        let dump = match (self.shape, self.named, self.records) {
            (_, _, true) | (Shape::Bulk, _, _) | (Shape::Dump, false, _) => return None,
            (shape, _, _) => shape == Shape::Dump,
        };
        let (mut objects, mut failed, mut taken) = (Vec::new(), 0, 0);
        let lines = self.rendered();
        for (i, (line, crlf)) in lines.iter().enumerate() {
            // The line's own `\r\n`, when it has one.
            let crlf = *crlf && (i + 1 < lines.len() || self.ends_with_newline);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.limit == Some(taken) {
                break;
            }
            taken += 1;
            // The line's content: a `\r` before a bare `\n` is its line end.
            let len = line.len() - usize::from(!crlf && line.last() == Some(&b'\r'));
            let too_long = self.max_line.is_some_and(|max| len > max);
            let object = match std::str::from_utf8(line).map(serde_json::from_str::<Json>) {
                Ok(Ok(Json::Object(o))) if !too_long => o,
                _ => {
                    failed += 1;
                    continue;
                }
            };
            if !dump {
                objects.push(Json::Object(object));
                continue;
            }
            let Some(Json::Object(mut source)) = object.get("_source").cloned() else {
                failed += 1;
                continue;
            };
            source.remove("_id");
            source.remove("_index");
            source.insert("_id".into(), object["_id"].clone());
            source.insert("_index".into(), object["_index"].clone());
            objects.push(Json::Object(source));
        }
        Some((objects, failed))
    }
}

impl fmt::Debug for JsonCase {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "flags {:?}, input:\n{}",
            self.flags(),
            self.input().escape_ascii()
        )
    }
}

/// Every NDJSON read path (a file read in chunks of a few bytes on 1 to 4
/// threads, standard input, gzip) gives the same bytes, in lines or as
/// records (`--flatten`), for plain lines, elasticdump documents and
/// `_bulk` pairs (which one thread reads), up to `--limit` or
/// `--max-errors`.
#[test]
fn every_ndjson_read_path_writes_the_same_bytes() {
    let result = runner().run(&json_case(), |case| {
        let out = every_path("jsonl", &case.input(), &case.flags())?;
        if let Some((objects, failed)) = case.expected() {
            prop_assert_eq!(out.counts[2], failed, "rejected lines");
            prop_assert_eq!(output_values(&out)?, objects, "the objects written");
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
