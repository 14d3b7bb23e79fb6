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
