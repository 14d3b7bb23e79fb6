//! Compressed output (a gzip member or zstd frame per batch, by the file
//! name or --output-compression) decompresses to the plain output.
//! Compressed CSV input is known by its first bytes, not by its name: gzip
//! (several members read as one) and zstd files (also starting with a
//! skippable frame, as pzstd writes them) and standard input give
//! exactly what the plain file gives; a stream cut short fails the run
//! saying so, keeping the rows read before the cut in the `.partial` file.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// 20,000 rows, some quoted with line feeds and quotes, non-ASCII text.
fn plain_csv() -> Vec<u8> {
    let mut csv = String::from("id,name,note\n");
    for i in 0..20_000 {
        if i % 97 == 5 {
            csv.push_str(&format!("{i},\"Zoë \"\"{i}\"\"\",\"two\nlines\"\n"));
        } else {
            csv.push_str(&format!("{i},name {i},note {i:06}\n"));
        }
    }
    csv.into_bytes()
}

/// Runs the file (or standard input, for `-`) to JSON lines: (exit code,
/// output or what is left in .partial, stderr).
fn to_lines(
    dir: &Path,
    input: &str,
    stdin: Option<&Path>,
    tag: &str,
) -> (Option<i32>, String, String) {
    let out = dir.join(format!("{tag}.jsonl"));
    let mut cmd = Command::new(bin());
    cmd.args(csv_to_file(input, p(&out)));
    cmd.stdin(match stdin {
        Some(f) => Stdio::from(fs::File::open(f).unwrap()),
        None => Stdio::null(),
    });
    let res = cmd.output().unwrap();
    let written = fs::read_to_string(&out)
        .or_else(|_| fs::read_to_string(dir.join(format!("{tag}.jsonl.partial"))))
        .unwrap_or_default();
    (res.status.code(), written, stderr(&res))
}

#[test]
fn gzip_and_zstd_input_read_as_the_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = plain_csv();
    let plain = dir.path().join("orders.csv");
    fs::write(&plain, &csv).unwrap();
    let (code, want, err) = to_lines(dir.path(), p(&plain), None, "plain");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(want.lines().count(), 20_000);

    // Two gzip members back to back (what `cat a.gz b.gz` gives) are one stream.
    let half = csv.iter().position(|&b| b == b'\n').unwrap() + 1 + 400_000;
    let half = half + csv[half..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut two = gzip(&csv[..half]);
    two.extend(gzip(&csv[half..]));
    // What pzstd writes: each frame after a skippable frame holding its size.
    let pzstd = Command::new("pzstd")
        .args(["-q", "-c", "-p", "2"])
        .arg(&plain)
        .output()
        .expect("pzstd (Debian package zstd) is needed");
    assert!(pzstd.status.success());
    assert_eq!(
        &pzstd.stdout[1..4],
        &[0x2a, 0x4d, 0x18],
        "a skippable frame first"
    );
    // A skippable frame with the last magic number of its range, 0x184D2A5F.
    let mut skippable = vec![0x5f, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, b'a', b'b', b'c'];
    skippable.extend(zstd::encode_all(&csv[..], 3).unwrap());
    let cases = [
        ("gz", gzip(&csv)),
        ("members", two),
        ("zst", zstd::encode_all(&csv[..], 3).unwrap()),
        ("pzstd", pzstd.stdout),
        ("skippable", skippable),
    ];
    for (tag, bytes) in cases {
        // Named as if plain: the content decides.
        let file = dir.path().join(format!("{tag}.csv"));
        fs::write(&file, &bytes).unwrap();
        let (code, got, err) = to_lines(dir.path(), p(&file), None, tag);
        assert_eq!(code, Some(0), "{tag}: {err}");
        assert!(
            got == want,
            "{tag}: the output differs from the plain file's"
        );
        let (code, got, err) = to_lines(dir.path(), "-", Some(&file), &format!("{tag}-stdin"));
        assert_eq!(code, Some(0), "{tag} on stdin: {err}");
        assert!(got == want, "{tag} on stdin: the output differs");
    }
}

#[test]
fn a_compressed_stream_cut_short_fails_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let csv = plain_csv();
    for (tag, bytes) in [
        ("gz", gzip(&csv)),
        ("zst", zstd::encode_all(&csv[..], 3).unwrap()),
    ] {
        let file = dir.path().join(format!("cut.csv.{tag}"));
        fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let (code, got, err) = to_lines(dir.path(), p(&file), None, &format!("cut-{tag}"));
        assert_eq!(code, Some(1), "{tag}: {err}");
        let kind = if tag == "gz" {
            "gzip input"
        } else {
            "zstd input"
        };
        assert!(
            err.contains(kind) && err.contains("cut.csv"),
            "{tag}: {err}"
        );
        let kept = got.lines().count();
        assert!(kept > 0 && kept < 20_000, "{tag}: {kept} lines kept");
        assert_eq!(summary_number(&err, "inserted"), kept as u64, "{err}");
    }
}

#[test]
fn compressed_output_decompresses_to_the_plain_output() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("orders.csv");
    fs::write(&plain, plain_csv()).unwrap();
    let (code, want, err) = to_lines(dir.path(), p(&plain), None, "plain");
    assert_eq!(code, Some(0), "{err}");
    let unzstd = |b: &[u8]| String::from_utf8(zstd::decode_all(b).unwrap()).unwrap();
    let gunzip = |b: &[u8]| {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(b), &mut s).unwrap();
        s
    };
    for (name, extra, gz) in [
        ("out.jsonl.gz", vec![], true),
        ("out.jsonl.zst", vec![], false),
        ("out.data", vec!["--output-compression", "gzip"], true),
        (
            "out.dat2",
            vec!["--output-compression", "zstd", "--batch-size", "7"],
            false,
        ),
    ] {
        let out = dir.path().join(name);
        let mut args = csv_to_file(p(&plain), p(&out));
        args.extend(&extra);
        let res = Command::new(bin()).args(&args).output().unwrap();
        assert_eq!(res.status.code(), Some(0), "{name}: {}", stderr(&res));
        let bytes = fs::read(&out).unwrap();
        assert!(
            bytes.len() * 3 < want.len(),
            "{name}: {} bytes, not compressed",
            bytes.len()
        );
        let got = if gz { gunzip(&bytes) } else { unzstd(&bytes) };
        assert!(got == want, "{name}: decompresses to other lines");
        if gz {
            // The system's gzip reads the members as one stream too.
            let z = Command::new("gzip").arg("-dc").arg(&out).output().unwrap();
            assert!(
                z.status.success() && z.stdout == want.as_bytes(),
                "{name}: gzip -dc"
            );
        }
    }
    // A name ending in .gz written plain when asked; standard output
    // compressed when asked.
    let out = dir.path().join("plain.gz");
    let mut args = csv_to_file(p(&plain), p(&out));
    args.extend(["--output-compression", "none"]);
    assert_eq!(run(&args).status.code(), Some(0));
    assert!(fs::read_to_string(&out).unwrap() == want);
    let mut args = csv_to_file(p(&plain), "-");
    args.extend(["--output-compression", "zstd"]);
    let res = run(&args);
    assert_eq!(res.status.code(), Some(0), "{}", stderr(&res));
    assert!(unzstd(&res.stdout) == want, "zstd on standard output");
}

/// gzip members of `data` cut at `cuts` (byte offsets, anywhere, even
/// inside a record), each saying its size in its header as `id` does:
/// `BC` (BGZF: 2 bytes, size less one) or `PC` (pipeline-cli: 4 bytes).
fn sized_members(data: &[u8], cuts: &[usize], id: &[u8; 2]) -> Vec<u8> {
    use std::io::Write;
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied().filter(|&c| c <= data.len()));
    bounds.push(data.len());
    let mut file = Vec::new();
    for w in bounds.windows(2) {
        let len: u16 = if id == b"BC" { 2 } else { 4 };
        let mut extra = id.to_vec();
        extra.extend(len.to_le_bytes());
        extra.resize(4 + usize::from(len), 0);
        let mut enc = flate2::GzBuilder::new()
            .extra(extra)
            .write(Vec::new(), flate2::Compression::new(6));
        enc.write_all(&data[w[0]..w[1]]).unwrap();
        let mut member = enc.finish().unwrap();
        let size = member.len();
        if id == b"BC" {
            assert!(size <= 1 << 16, "a BGZF block holds 64 KiB at most");
            member[16..18].copy_from_slice(&((size - 1) as u16).to_le_bytes());
        } else {
            member[16..20].copy_from_slice(&(size as u32).to_le_bytes());
        }
        file.extend(member);
    }
    file
}

/// Runs `input` (`-`: `stdin`) of `kind` (csv, jsonl) to JSON lines, with
/// the input's debug lines on: (exit code, output or what .partial holds,
/// the error line and the counts, stderr).
fn convert(
    dir: &Path,
    kind: &str,
    input: &str,
    stdin: Option<&Path>,
    tag: &str,
) -> (Option<i32>, String, String, String) {
    let out = dir.join(format!("{tag}.jsonl"));
    let flag = format!("--{kind}-file");
    let mut cmd = Command::new(bin());
    cmd.args(["--source-type", kind, &flag, input, "--sink-type", "file"]);
    cmd.args(["--output-file", p(&out)]);
    cmd.env(
        "PIPELINE_LOG",
        "warn,pipeline_cli::source::input=debug,pipeline_cli::source::gzip_parallel=debug",
    );
    cmd.stdin(match stdin {
        Some(f) => Stdio::from(fs::File::open(f).unwrap()),
        None => Stdio::null(),
    });
    let res = cmd.output().unwrap();
    let written = fs::read_to_string(&out)
        .or_else(|_| fs::read_to_string(dir.join(format!("{tag}.jsonl.partial"))))
        .unwrap_or_default();
    let err = stderr(&res);
    // What must not depend on how the input was read: the error and the
    // counts (the name aside).
    let outcome: String = err
        .lines()
        .filter(|l| l.starts_with("pipeline-cli: "))
        .map(|l| {
            let l = without_run_id(l).split(" in ").next().unwrap();
            let named = if stdin.is_some() {
                l.into()
            } else {
                l.replace(input, "standard input")
            };
            named + "\n"
        })
        .collect();
    (res.status.code(), written, outcome, err)
}

#[test]
fn gzip_members_that_say_their_size_read_as_one_decoder_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let csv = plain_csv();
    let plain = dir.path().join("plain.csv");
    fs::write(&plain, &csv).unwrap();
    let (code, lines, _, err) = convert(dir.path(), "csv", p(&plain), None, "plain-csv");
    assert_eq!(code, Some(0), "{err}");
    let ndjson = lines.into_bytes();
    // pipeline-cli's own gzip output, a member per batch of 500.
    let own = dir.path().join("own.jsonl.gz");
    let mut args = csv_to_file(p(&plain), p(&own));
    args.extend(["--batch-size", "500"]);
    assert_eq!(run(&args).status.code(), Some(0));
    let own = fs::read(&own).unwrap();

    for (kind, data) in [("csv", csv), ("jsonl", ndjson)] {
        let input = dir.path().join(format!("plain.{kind}"));
        fs::write(&input, &data).unwrap();
        let (code, want, _, err) = convert(dir.path(), kind, p(&input), None, "want");
        assert_eq!(code, Some(0), "{err}");
        let n = data.len();
        let cuts: Vec<usize> = (1..n / 100_000 + 1).map(|i| i * 100_000 + i * 7).collect();
        let pc = sized_members(&data, &cuts, b"PC");
        // BGZF blocks, some holding nothing, and bgzip's empty last block.
        let mut bgzf_cuts: Vec<usize> = (1..n / 60_000 + 1).map(|i| i * 60_000).collect();
        bgzf_cuts.extend([0, 0, 60_000, n]);
        bgzf_cuts.sort();
        let bgzf = sized_members(&data, &bgzf_cuts, b"BC");
        let second = sized_members(&data[..cuts[0]], &[], b"PC").len();
        let mut corrupt = pc.clone();
        corrupt[second + 500] ^= 0x55;
        let mut crc = pc.clone();
        let third = second + sized_members(&data[cuts[0]..cuts[1]], &[], b"PC").len();
        crc[third - 8] ^= 1;
        let mut garbage = pc.clone();
        garbage.extend(b"trailing garbage\n");
        let mut pc_then_gzip = sized_members(&data[..n / 2], &cuts, b"PC");
        pc_then_gzip.extend(gzip(&data[n / 2..]));
        let mut gzip_then_pc = gzip(&data[..n / 2]);
        gzip_then_pc.extend(sized_members(&data[n / 2..], &cuts, b"PC"));
        let mut cases = vec![
            ("pc", pc.clone(), true),
            ("bgzf", bgzf, true),
            ("huge", sized_members(&data, &[], b"PC"), true),
            ("pc-then-gzip", pc_then_gzip, true),
            ("gzip-then-pc", gzip_then_pc, true),
            ("corrupt", corrupt, false),
            ("crc", crc, false),
            ("truncated", pc[..pc.len() * 2 / 3].to_vec(), false),
            ("garbage", garbage, false),
        ];
        if kind == "jsonl" {
            cases.push(("own-output", own.clone(), true));
        }
        for (tag, bytes, ok) in cases {
            let file = dir.path().join(format!("{tag}.{kind}.gz"));
            fs::write(&file, &bytes).unwrap();
            let (code, got, outcome, err) =
                convert(dir.path(), kind, p(&file), None, &format!("{kind}-{tag}"));
            let threads = err.contains("inflated on");
            assert_eq!(threads, tag != "gzip-then-pc", "{kind} {tag}: {err}");
            // Members that inflate cleanly all do so on the threads.
            let one_decoder = err.contains("read by one decoder");
            let all_sized = ok && tag != "pc-then-gzip";
            assert_eq!(one_decoder, threads && !all_sized, "{kind} {tag}: {err}");
            // Standard input is read by one decoder.
            let (s_code, s_got, s_outcome, s_err) = convert(
                dir.path(),
                kind,
                "-",
                Some(&file),
                &format!("{kind}-{tag}-in"),
            );
            assert!(!s_err.contains("inflated on"), "{s_err}");
            assert_eq!(code, s_code, "{kind} {tag}: {err}\n{s_err}");
            assert_eq!(outcome, s_outcome, "{kind} {tag}");
            assert!(
                got == s_got,
                "{kind} {tag}: other output than one decoder's"
            );
            if ok {
                assert_eq!(code, Some(0), "{kind} {tag}: {err}");
                assert!(
                    got == want,
                    "{kind} {tag}: other output than the plain file's"
                );
            } else {
                assert_eq!(code, Some(1), "{kind} {tag}: {err}");
                assert!(outcome.contains("gzip input: "), "{kind} {tag}: {err}");
                let kept = got.lines().count();
                // Garbage after the last member: every record is read first.
                let all = tag == "garbage";
                assert_eq!(
                    kept == want.lines().count(),
                    all,
                    "{kind} {tag}: {kept} lines"
                );
                assert!(
                    want.starts_with(&got),
                    "{kind} {tag}: the lines kept differ"
                );
            }
        }
    }
}
