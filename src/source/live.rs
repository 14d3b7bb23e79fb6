//! Live input: a pipe (standard input, a named pipe, `<(…)`) that may be fed
//! slowly, and the blocks its decoder thread hands on when it is compressed.
//!
//! The one place that waits for a live writer is [`LiveRead`]: it reads the
//! pipe in short polls, so the run's stop signal is seen while the writer
//! pauses, and then answers with the [`stopped`] error instead of waiting
//! on. Every reader above it (the CSV rows, the NDJSON lines, the header
//! read before the run, the decoder thread) takes that error as the end of
//! what it will get, keeps what it read before, and stops at once.
//! [`Live::would_block`] tells a source when reading on would wait, so it
//! hands on what it has first.

use std::io::{self, Read};
use std::os::fd::RawFd;

use crate::shutdown::Shutdown;

/// Longest one poll waits before the stop signal is looked at again.
pub const POLL_MS: i32 = 100;

/// What the [`stopped`] error carries.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the input was left by the stop signal while its writer paused")
    }
}

impl std::error::Error for Stopped {}

/// The error a live input answers with once the stop signal is raised and
/// its writer has nothing more to say right now.
pub fn stopped() -> io::Error {
    io::Error::other(Stopped)
}

/// True for the [`stopped`] error (and only for it).
pub fn is_stopped(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Stopped>())
}

/// True when `fd` becomes readable (data, end or error) within `ms`. A
/// signal arriving meanwhile (the stop signal itself) ends the wait early,
/// with false.
pub fn ready(fd: RawFd, ms: i32) -> bool {
    let mut fds = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut fds, 1, ms) };
    n > 0 || (n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted)
}

/// A pipe read in short polls; see the module documentation.
pub struct LiveRead<R> {
    inner: R,
    fd: RawFd,
    stop: Shutdown,
}

impl<R: Read> LiveRead<R> {
    /// `inner` reads the pipe `fd`; `stop` is the run's stop signal.
    pub fn new(inner: R, fd: RawFd, stop: Shutdown) -> LiveRead<R> {
        LiveRead { inner, fd, stop }
    }
}

impl<R: Read> Read for LiveRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // Once stopping, what the writer has already sent is still
            // taken; a pause ends the input.
            let stopping = self.stop.is_requested();
            if ready(self.fd, if stopping { 0 } else { POLL_MS }) {
                return self.inner.read(buf);
            }
            if stopping {
                return Err(stopped());
            }
        }
    }
}

/// How a source tells whether reading on would wait for a live writer.
#[derive(Clone)]
pub enum Live {
    /// An uncompressed pipe, read by this descriptor.
    Fd(RawFd),
    /// A compressed pipe: the blocks its decoder thread hands on.
    Blocks(crossbeam_channel::Receiver<io::Result<Vec<u8>>>),
}

impl Live {
    /// True when nothing more is there to read right now (a source then
    /// hands on what it has read before reading on).
    pub fn would_block(&self) -> bool {
        match self {
            Live::Fd(fd) => !ready(*fd, 0),
            Live::Blocks(blocks) => blocks.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    #[test]
    fn a_paused_pipe_answers_stopped_soon_after_the_stop_and_keeps_what_was_sent() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let fd = reader.as_raw_fd();
        let stop = Shutdown::new();
        let mut live = LiveRead::new(reader, fd, stop.clone());
        writer.write_all(b"abc").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(live.read(&mut buf).unwrap(), 3);
        assert!(Live::Fd(fd).would_block());
        let raiser = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                stop.request(Some(libc::SIGINT));
            })
        };
        let t = Instant::now();
        let e = live.read(&mut buf).unwrap_err();
        assert!(is_stopped(&e), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        raiser.join().unwrap();
        // Sent after the stop but there: still read, then stopped again.
        writer.write_all(b"de").unwrap();
        assert!(!Live::Fd(fd).would_block());
        assert_eq!(live.read(&mut buf).unwrap(), 2);
        assert!(is_stopped(&live.read(&mut buf).unwrap_err()));
        assert!(!is_stopped(&io::Error::other("x")));
        // The writer gone: the end of the input, not a stop.
        drop(writer);
        assert_eq!(live.read(&mut buf).unwrap(), 0);
    }
}
