//! Interrupting the binary again and again at random moments, for the
//! resumable-run tests: a small seeded RNG (the seed is printed, and
//! `PIPELINE_TEST_SEED` repeats it), one run stopped after a delay by a
//! signal sent to its PID, a loop of such runs, and a run to the end.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Output};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::binary::{Bin, Running};

/// xorshift64*: enough randomness for kill moments, no crate needed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `PIPELINE_TEST_SEED` or the clock; prints the seed.
    pub fn seeded(test: &str) -> Rng {
        let seed = std::env::var("PIPELINE_TEST_SEED")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                let t = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap();
                t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
            });
        eprintln!("{test}: seed {seed} (PIPELINE_TEST_SEED={seed} repeats these kill moments)");
        Rng::from_seed(seed)
    }

    /// A generator from a fixed seed.
    pub fn from_seed(seed: u64) -> Rng {
        // splitmix64 once, so that small or zero seeds still give a
        // non-zero xorshift state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi);
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// How a run is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL: no chance to clean up.
    Kill,
    /// SIGINT (Ctrl+C): a graceful stop, exit 130.
    Int,
    /// SIGTERM: a graceful stop, exit 143.
    Term,
}

impl Stop {
    fn signal(self) -> i32 {
        match self {
            Stop::Kill => libc::SIGKILL,
            Stop::Int => libc::SIGINT,
            Stop::Term => libc::SIGTERM,
        }
    }

    /// The exit code of a run this stop ended gracefully.
    fn graceful_code(self) -> Option<i32> {
        match self {
            Stop::Kill => None,
            Stop::Int => Some(130),
            Stop::Term => Some(143),
        }
    }
}

/// How a run that was to be stopped ended.
pub struct Stopped {
    /// The stop sent (or meant to be sent).
    pub stop: Stop,
    /// How long after the start it was sent.
    pub after: Duration,
    /// Whether the run had already exited when the stop was due.
    pub exited_first: bool,
    /// The run's exit status and stderr (stdout is not kept).
    pub out: Output,
}

impl Stopped {
    /// The run read everything and ended by itself (exit 0), before the
    /// stop or in spite of it.
    pub fn completed(&self) -> bool {
        self.out.status.code() == Some(0)
    }

    /// The run ended because of the stop: killed by the signal, or its
    /// graceful exit code.
    pub fn interrupted(&self) -> bool {
        let s = &self.out.status;
        s.signal() == Some(self.stop.signal())
            || (self.stop.graceful_code().is_some() && s.code() == self.stop.graceful_code())
    }

    /// stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    /// Whether the run said it resumed from a checkpoint.
    pub fn resumed(&self) -> bool {
        self.stderr().contains("resuming from checkpoint")
    }
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Waits for a started run at most `limit` (then kills it by PID and
/// fails), its stderr drained meanwhile so that it never blocks on it.
fn finish(mut child: Running, err: JoinHandle<Vec<u8>>, limit: Duration) -> (ExitStatus, Vec<u8>) {
    let t = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap_or_default();
            panic!(
                "pipeline-cli did not exit within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, err.join().unwrap_or_default())
}

fn start(args: &[&str], env: &[(&str, &str)]) -> (Running, JoinHandle<Vec<u8>>) {
    let mut bin = Bin::new(args).no_stdin().no_stdout();
    for (k, v) in env {
        bin = bin.env(k, v);
    }
    let mut child = bin.spawn();
    let err = drain(child.stderr.take().expect("stderr piped"));
    (child, err)
}

/// Starts a run, sends `stop` to its PID `after` its start (unless it has
/// exited by then), and waits for it (at most `limit`).
pub fn stop_after(
    args: &[&str],
    env: &[(&str, &str)],
    stop: Stop,
    after: Duration,
    limit: Duration,
) -> Stopped {
    let (child, err) = start(args, env);
    stop_when(child, err, stop, limit, |t| t.elapsed() >= after)
}

/// Starts a run and sends `stop` to its PID as soon as `ready()` says so
/// (polled every 5 ms), then waits for it (at most `limit`). Fails if `ready` stays false for
/// `limit`.
pub fn stop_when_ready(
    args: &[&str],
    env: &[(&str, &str)],
    stop: Stop,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Stopped {
    let (child, err) = start(args, env);
    stop_when(child, err, stop, limit, |_| ready())
}

fn stop_when(
    mut child: Running,
    err: JoinHandle<Vec<u8>>,
    stop: Stop,
    limit: Duration,
    mut due: impl FnMut(Instant) -> bool,
) -> Stopped {
    let t = Instant::now();
    let mut exited_first = false;
    loop {
        if child.try_wait().expect("wait").is_some() {
            exited_first = true;
            break;
        }
        if due(t) {
            break;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap_or_default();
            panic!(
                "the moment to stop pipeline-cli never came within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = t.elapsed();
    if !exited_first {
        // By PID; a child that exited meanwhile is a zombie until waited
        // for, so the PID cannot have been reused.
        // SAFETY: signalling our own child by its PID.
        let rc = unsafe { libc::kill(child.id() as i32, stop.signal()) };
        assert_eq!(rc, 0, "kill -{} {}", stop.signal(), child.id());
    }
    let (status, stderr) = finish(child, err, limit);
    Stopped {
        stop,
        after,
        exited_first,
        out: Output {
            status,
            stdout: Vec::new(),
            stderr,
        },
    }
}

/// Runs to the end (at most `limit`); stdout is discarded.
pub fn run_to_end(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let (child, err) = start(args, env);
    let (status, stderr) = finish(child, err, limit);
    Output {
        status,
        stdout: Vec::new(),
        stderr,
    }
}

/// What a kill loop did.
pub struct Loop {
    /// Every stopped run, in order.
    pub runs: Vec<Stopped>,
    /// The run that completed inside the loop, if one did (the loop ends
    /// there: a run started after a completed one would start over).
    pub completed: Option<Output>,
}

impl Loop {
    /// How many runs said they resumed from a checkpoint.
    pub fn resumed_runs(&self) -> usize {
        self.runs.iter().filter(|r| r.resumed()).count()
    }
}

/// Starts `args` up to `stops.len()` times, stopping run `i` with
/// `stops[i]` after a random delay in `window_ms` (inclusive, in ms). A run
/// that exits by itself with 0 ends the loop (it completed); one that
/// exits otherwise on its own, or with a code its stop does not explain,
/// fails the test.
pub fn kill_loop(
    what: &str,
    args: &[&str],
    env: &[(&str, &str)],
    rng: &mut Rng,
    stops: &[Stop],
    window_ms: (u64, u64),
) -> Loop {
    let mut runs = Vec::new();
    for (i, &stop) in stops.iter().enumerate() {
        let after = Duration::from_millis(rng.between(window_ms.0, window_ms.1));
        let r = stop_after(args, env, stop, after, Duration::from_secs(120));
        eprintln!(
            "{what}: run {i}: {stop:?} after {after:?}{} -> {}{}",
            if r.exited_first { " (had exited)" } else { "" },
            r.out.status,
            if r.resumed() { ", resumed" } else { "" }
        );
        if r.completed() {
            let out = r.out.clone();
            runs.push(r);
            return Loop {
                runs,
                completed: Some(out),
            };
        }
        assert!(
            r.interrupted() && !r.exited_first,
            "{what}: run {i} ({stop:?} after {after:?}) ended {} on its own; stderr:\n{}",
            r.out.status,
            r.stderr()
        );
        runs.push(r);
    }
    Loop {
        runs,
        completed: None,
    }
}

/// True when the checkpoint at `path` says its job completed.
pub fn marked_complete(path: &std::path::Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["complete"] == true)
}
