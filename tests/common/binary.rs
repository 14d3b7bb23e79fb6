//! Running the binary under test: start it, wait for it with a limit, send
//! it signals, read what it wrote.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pipeline-cli")
}

/// Runs the binary to the end with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("PIPELINE_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run pipeline-cli")
}

/// Starts the binary with `args`, stdin piped, stdout/stderr captured.
pub fn spawn(args: &[&str]) -> Running {
    Bin::new(args).spawn()
}

/// How to start the binary: arguments, environment, standard input.
pub struct Bin {
    cmd: Command,
}

impl Bin {
    /// The binary with `args`, `PIPELINE_LOG` unset, every stream piped.
    pub fn new(args: &[&str]) -> Bin {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .env_remove("PIPELINE_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Bin { cmd }
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Bin {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: &str) -> Bin {
        self.cmd.env_remove(key);
        self
    }

    /// Standard input from nothing.
    pub fn no_stdin(mut self) -> Bin {
        self.cmd.stdin(Stdio::null());
        self
    }

    /// Standard output discarded (when a test does not read it).
    pub fn no_stdout(mut self) -> Bin {
        self.cmd.stdout(Stdio::null());
        self
    }

    /// Starts it; the process is killed if the test ends without waiting.
    pub fn spawn(mut self) -> Running {
        Running(Some(self.cmd.spawn().expect("start pipeline-cli")))
    }
}

/// A started binary, killed (by PID) when dropped unless waited for.
pub struct Running(Option<Child>);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("running")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }
}

impl From<Running> for Child {
    fn from(mut r: Running) -> Child {
        r.0.take().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The standard CSV -> file arguments.
pub fn csv_to_file<'a>(input: &'a str, output: &'a str) -> Vec<&'a str> {
    vec![
        "--source-type",
        "csv",
        "--csv-file",
        input,
        "--sink-type",
        "file",
        "--output-file",
        output,
    ]
}

/// The standard NDJSON -> file arguments, then `extra`.
pub fn jsonl_to_file<'a>(input: &'a str, output: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--source-type", "jsonl", "--jsonl-file", input];
    args.extend(["--sink-type", "file", "--output-file", output]);
    args.extend(extra);
    args
}

/// The standard CSV -> MySQL arguments, then `extra`.
pub fn csv_to_mysql<'a>(
    input: &'a str,
    url: &'a str,
    table: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "--source-type",
        "csv",
        "--csv-file",
        input,
        "--sink-type",
        "mysql",
        "--db-url",
        url,
        "--db-table",
        table,
    ];
    args.extend(extra);
    args
}

/// Sends a signal by name (INT, TERM) to a child.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} failed");
}

/// Waits for a child at most `limit`, killing it (and failing) past that.
pub fn wait_with_limit(child: impl Into<Child>, limit: Duration) -> Output {
    let mut child: Child = child.into();
    let t = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "pipeline-cli did not exit within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a JSON-lines file into values, failing on any invalid line.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("read output");
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: invalid JSON ({e}): {l}", path.display(), i + 1))
        })
        .collect()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Quotes a CSV field the RFC 4180 way; `force` quotes even when not needed.
pub fn csv_field(s: &str, force: bool) -> String {
    if force || s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A stderr line without the ` run_id=…` that ends every text line (it
/// differs from run to run).
pub fn without_run_id(line: &str) -> &str {
    match line.rsplit_once(" run_id=") {
        Some((rest, id)) if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) => rest,
        _ => line,
    }
}

/// Dead-letter lines without their `"run_id"` (it differs from run to
/// run), to compare two runs' files.
pub fn without_run_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(",\"run_id\":\"") {
        out.push_str(&rest[..at]);
        let after = &rest[at + ",\"run_id\":\"".len()..];
        rest = after.find('"').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// The number after `key=` in a summary line.
pub fn summary_number(err: &str, key: &str) -> u64 {
    err.split(&format!(" {key}="))
        .nth(1)
        .or_else(|| err.split(&format!("{key}=")).nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in summary: {err}"))
}

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}
