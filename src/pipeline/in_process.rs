//! The pipeline driven in-process, as the binary drives it: `prepare` then
//! `run`, with the stop raised by the test instead of a signal. A stop
//! mid-run, the error budget, and a fatal error (the dead-letter file
//! cannot be written) each end with counts that add up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::app::{exit_code, Ending};
use crate::config::{
    Config, CsvConfig, FileSinkConfig, InputPath, OutputPath, SinkConfig, SourceConfig,
};
use crate::error::{ExitCode, PipelineError};
use crate::metrics::Metrics;
use crate::pipeline::{self, Outcome, RunSummary};
use crate::shutdown::Shutdown;

fn config(input: &Path, output: &Path) -> Config {
    let source = SourceConfig::Csv(CsvConfig {
        input: InputPath::File(input.to_path_buf()),
        list: None,
        delimiter: b',',
        has_header: true,
        infer_types: false,
        max_field_bytes: 64 << 20,
        max_field_lines: 10_000,
        threads: None,
        once: None,
    });
    let sink = SinkConfig::File(FileSinkConfig {
        output: OutputPath::File(output.to_path_buf()),
        compression: None,
        resume_bytes: None,
        resume_tail: None,
    });
    let mut c = Config::new(source, sink);
    c.quiet = true;
    c.batch_size = 50;
    c
}

fn run(config: &Config, shutdown: Shutdown, metrics: std::sync::Arc<Metrics>) -> RunSummary {
    pipeline::prepare(config, metrics, shutdown)
        .expect("prepare")
        .run()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

fn partial(output: &Path) -> PathBuf {
    let mut p = output.as_os_str().to_owned();
    p.push(".partial");
    p.into()
}

#[test]
fn a_stop_raised_mid_run_writes_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in.csv");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let output = dir.path().join("out.jsonl");
    let cfg = config(&fifo, &output);
    let shutdown = Shutdown::new();
    let metrics = Metrics::new(
        "inproc",
        crate::config::SourceKind::Csv,
        crate::config::SinkKind::File,
    );
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let writer_fifo = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(writer_fifo)
            .unwrap();
        writeln!(f, "id,name").unwrap();
        for i in 0..3000 {
            writeln!(f, "{i},row {i}").unwrap();
        }
        f.flush().unwrap();
        // Hold the pipe open (more may come) until the test has stopped
        // the run.
        release_rx.recv().unwrap();
    });
    let (stop, m) = (shutdown.clone(), metrics.clone());
    let stopper = std::thread::spawn(move || {
        let t = Instant::now();
        while m.counts().inserted < 2048 {
            assert!(t.elapsed() < Duration::from_secs(30), "rows never written");
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.request(Some(libc::SIGTERM));
        release_tx.send(()).unwrap();
    });
    let summary = run(&cfg, shutdown, metrics);
    stopper.join().unwrap();
    writer.join().unwrap();
    assert_eq!(summary.outcome, Outcome::Interrupted(libc::SIGTERM));
    assert_eq!(exit_code(Ending::Run(&summary)), ExitCode::Terminated);
    // The stop ends the read at the next chunk; everything read is written.
    let c = summary.counts;
    assert!(c.read >= 2048 && c.read <= 3000, "{c:?}");
    assert_eq!(c.inserted, c.read, "{c:?}");
    assert!(summary.counts.reconciles());
    assert!(
        !output.exists(),
        "an interrupted run must not create the target"
    );
    assert_eq!(lines(&partial(&output)) as u64, c.read);
}

#[test]
fn the_error_budget_stops_the_run_with_counts_that_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.csv");
    let mut text = String::from("a,b\n");
    for i in 0..5000 {
        // Every other row has one field too many.
        if i % 2 == 0 {
            text.push_str(&format!("{i},x\n"));
        } else {
            text.push_str(&format!("{i},x,extra\n"));
        }
    }
    std::fs::write(&input, text).unwrap();
    let output = dir.path().join("out.jsonl");
    let mut cfg = config(&input, &output);
    cfg.max_errors = Some(10);
    let summary = run(
        &cfg,
        Shutdown::new(),
        Metrics::new(
            "budget",
            crate::config::SourceKind::Csv,
            crate::config::SinkKind::File,
        ),
    );
    assert_eq!(summary.outcome, Outcome::Failed);
    assert!(
        matches!(summary.error, Some(PipelineError::TooManyErrors(10))),
        "{:?}",
        summary.error
    );
    // The budget is checked on every rejected row: the read stops at the
    // tenth.
    assert_eq!(summary.counts.failed, 10, "{:?}", summary.counts);
    assert!(
        summary.counts.read < 5000,
        "the budget did not stop the read"
    );
    assert!(summary.counts.reconciles(), "{:?}", summary.counts);
    assert_eq!(lines(&partial(&output)) as u64, summary.counts.inserted);
}

#[test]
fn a_dead_letter_file_that_cannot_be_written_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "a,b\n1,x\n2,x,extra\n3,x\n").unwrap();
    let output = dir.path().join("out.jsonl");
    let mut cfg = config(&input, &output);
    // Every write to /dev/full fails with ENOSPC.
    cfg.dead_letter = Some(PathBuf::from("/dev/full"));
    let summary = run(
        &cfg,
        Shutdown::new(),
        Metrics::new(
            "dl",
            crate::config::SourceKind::Csv,
            crate::config::SinkKind::File,
        ),
    );
    assert_eq!(summary.outcome, Outcome::Failed);
    let error = summary
        .error
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(error.contains("dead-letter"), "{error}");
    assert_eq!(summary.dead_letter_lost, 1);
    assert_eq!(
        (
            summary.counts.read,
            summary.counts.inserted,
            summary.counts.failed
        ),
        // The fatal error stops the read at the bad row.
        (2, 1, 1)
    );
    assert!(!output.exists(), "a failed run must not create the target");
}
