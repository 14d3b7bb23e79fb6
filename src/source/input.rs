//! Opening a file input (CSV or NDJSON): a regular file, a named pipe or
//! standard input, read through a gzip or zstd decoder when its first bytes
//! say it is compressed: the content decides, not the name.
//!
//! The first bytes are read before the source's reader exists and are handed
//! to it as already-buffered input ([`Opened::head`]). On standard input they
//! are read with a buffer larger than `Stdin`'s own, which is then bypassed:
//! nothing sits in a buffer a live reader's poll on the descriptor cannot
//! see. A pipe is read through [`LiveRead`], so the first bytes, and the
//! decoder thread of a compressed pipe, stop at once with the run.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};

use crate::config::InputPath;
use crate::error::PipelineError;
use crate::shutdown::Shutdown;

use super::gzip_parallel;
use super::live::{is_stopped, ready, stopped, Live, LiveRead, POLL_MS};

/// How much is read at once to look at the first bytes.
const HEAD_READ: usize = 64 * 1024;

/// The compression an input was found to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (RFC 1952), one member or several back to back.
    Gzip,
    /// Zstandard frames.
    Zstd,
}

impl Compression {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The compression the first bytes `head` announce: the gzip magic
    /// number, a zstd frame's, or a zstd skippable frame's (0x184D2A50 to
    /// 0x184D2A5F, little-endian: what pzstd writes first; the decoder steps
    /// over such frames).
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || Compression::skippable(head) {
            Some(Compression::Zstd)
        } else {
            None
        }
    }

    /// `head` starts with the magic number of a zstd skippable frame.
    fn skippable(head: &[u8]) -> bool {
        head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18]
    }

    /// True while `head` could still turn out to be a magic number.
    fn undecided(head: &[u8]) -> bool {
        let skippable_start = head.first().is_none_or(|b| b & 0xf0 == 0x50)
            && [0x2a, 0x4d, 0x18].starts_with(head.get(1..).unwrap_or(&[]));
        Compression::sniff(head).is_none()
            && head.len() < 4
            && ([0x1f, 0x8b].starts_with(head)
                || [0x28, 0xb5, 0x2f, 0xfd].starts_with(head)
                || skippable_start)
    }
}

/// An opened input.
pub struct Opened {
    /// What to read after `head`.
    pub reader: Box<dyn Read + Send>,
    /// Bytes already read from the start of the input (empty when they went
    /// into a decoder).
    pub head: Vec<u8>,
    /// The size of a regular, uncompressed file.
    pub size: Option<u64>,
    /// A pipe (standard input, a named pipe), which may be fed slowly: it
    /// is read in short polls that end on the stop signal ([`LiveRead`]),
    /// and tells whether reading on would wait.
    pub live: Option<Live>,
    /// gzip or zstd, read through a decoder.
    pub compression: Option<Compression>,
}

/// The input's name in messages.
pub fn display_name(input: &InputPath) -> String {
    match input {
        InputPath::Stdin => "standard input".into(),
        InputPath::File(p) => p.display().to_string(),
    }
}

/// True when `input` is a regular file, which can be opened again and read
/// from the start (a sample before the run, each file's header checked up
/// front). Anything else (standard input, a named pipe, `/dev/stdin`, a
/// process substitution, a socket) is opened once, read once, as it comes.
pub fn reopenable(input: &InputPath) -> bool {
    match input {
        InputPath::Stdin => false,
        InputPath::File(p) => std::fs::metadata(p).is_ok_and(|m| m.is_file()),
    }
}

/// True when `input` exists and is neither a regular file nor a directory
/// (standard input, a named pipe, `/dev/stdin`, a process substitution, a
/// socket): what it holds can be read only once. A path that cannot be
/// looked at is not one (opening it reports why).
pub fn read_once(input: &InputPath) -> bool {
    match input {
        InputPath::Stdin => true,
        InputPath::File(p) => std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()),
    }
}

/// Opens `input` (`what`: the option that named it, for messages) and reads
/// its first bytes, the ones that say whether it is compressed, from the
/// descriptor that is then read on. A file that cannot be opened is a
/// configuration error. Input that is not a regular file stops being waited
/// on once `stop` is raised.
pub fn open(
    input: &InputPath,
    what: &'static str,
    stop: &Shutdown,
) -> Result<Opened, PipelineError> {
    // A regular file's own handle, kept to read its gzip members by offset.
    let mut regular_file = None;
    let (mut raw, size, live): (Box<dyn Read + Send>, Option<u64>, Option<RawFd>) = match input {
        InputPath::Stdin => (Box::new(io::stdin()), None, Some(libc::STDIN_FILENO)),
        InputPath::File(path) => {
            let open_err = |source| PipelineError::OpenInput {
                what,
                path: path.clone(),
                source,
            };
            let file = open_path(path, stop).map_err(open_err)?;
            let meta = file.metadata().map_err(open_err)?;
            if meta.is_dir() {
                return Err(open_err(io::Error::other("it is a directory")));
            }
            // Anything but a regular file (a named pipe, `/dev/stdin`, a
            // process substitution's `/dev/fd/N`, a socket, a terminal) is
            // read once, as it comes, and may be fed slowly.
            let regular = meta.is_file();
            let fd = file.as_raw_fd();
            let size = regular.then_some(meta.len());
            if regular {
                regular_file = file.try_clone().ok().map(|f| (f, meta.len()));
            }
            (Box::new(file), size, (!regular).then_some(fd))
        }
    };
    if let Some(fd) = live {
        raw = Box::new(LiveRead::new(raw, fd, stop.clone()));
    }
    let read_err = |e: io::Error| {
        PipelineError::Config(format!(
            "cannot read {}: {e}; check the file and its permissions",
            display_name(input)
        ))
    };
    let mut head = Vec::new();
    loop {
        let start = head.len();
        head.resize(start + HEAD_READ, 0);
        let n = loop {
            match raw.read(&mut head[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Stopped before the input said what it is: its reader
                // answers the same at once.
                Err(e) if is_stopped(&e) => break 0,
                Err(e) => return Err(read_err(e)),
            }
        };
        head.truncate(start + n);
        if n == 0 || !Compression::undecided(&head) {
            break;
        }
    }
    let compression = Compression::sniff(&head);
    let Some(kind) = compression else {
        return Ok(Opened {
            reader: raw,
            head,
            size,
            live: live.map(Live::Fd),
            compression: None,
        });
    };
    let decoder = decoder(input, kind, head, raw, regular_file).map_err(read_err)?;
    // Decompressed on a thread of its own, as `zcat file |` would be: the
    // reader parses while the next block is inflated.
    let threaded = Threaded::spawn(decoder, live);
    let live = live.map(|_| Live::Blocks(threaded.blocks.clone()));
    let reader: Box<dyn Read + Send> = Box::new(threaded);
    tracing::debug!(
        "{}: {}-compressed, read through a decoder",
        display_name(input),
        kind.name()
    );
    Ok(Opened {
        reader,
        head: Vec::new(),
        size: None,
        live,
        compression,
    })
}

/// The decoder of `kind` for an input that starts with `head` and goes on
/// with `raw`. `regular`: the input's own handle and size when it is a
/// regular file, which a gzip file whose members say their size is read by.
fn decoder(
    input: &InputPath,
    kind: Compression,
    head: Vec<u8>,
    raw: Box<dyn Read + Send>,
    regular: Option<(File, u64)>,
) -> io::Result<Box<dyn Read + Send>> {
    let parallel = match regular {
        Some(file) if kind == Compression::Gzip && gzip_parallel::splittable(&head) => Some(file),
        _ => None,
    };
    let whole: Box<dyn Read + Send> = Box::new(io::Cursor::new(head).chain(raw));
    Ok(match (kind, parallel) {
        // Members that say their size (BGZF, pipeline-cli's own output)
        // inflate on several threads.
        (Compression::Gzip, Some((file, len))) => {
            let threads = gzip_parallel::default_threads();
            tracing::debug!(
                "{}: gzip members that say their size, inflated on {threads} threads",
                display_name(input)
            );
            let reader = gzip_parallel::ParallelGzip::new(file, len, threads);
            Box::new(Decoding(kind, reader))
        }
        // Several gzip members back to back (`cat a.gz b.gz`) are one
        // stream, inflated by one decoder.
        (Compression::Gzip, None) => {
            Box::new(Decoding(kind, flate2::read::MultiGzDecoder::new(whole)))
        }
        (Compression::Zstd, _) => {
            Box::new(Decoding(kind, zstd::stream::read::Decoder::new(whole)?))
        }
    })
}

/// Opens `path`. A socket cannot be opened by a path, not even
/// `/dev/stdin` or `/dev/fd/N` naming one this process holds: such a path
/// is then read from a copy of that descriptor.
///
/// The path is opened without blocking: opening a named pipe that has no
/// writer yet would wait for one, deaf to the stop signal. A pipe is then
/// waited on in short polls until its writer has sent something or come
/// and gone, or until `stop` is raised (the input then reads as stopped:
/// nothing), and is read blocking from then on.
fn open_path(path: &std::path::Path, stop: &Shutdown) -> io::Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    match opened {
        Ok(file) => {
            if file.metadata()?.file_type().is_fifo() {
                // On Linux a reader that came before any writer is not
                // told of a hang-up until a writer has come and gone, so
                // this waits for one.
                while !stop.is_requested() && !ready(file.as_raw_fd(), POLL_MS) {}
            }
            set_blocking(&file)?;
            Ok(file)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            let Some(fd) = own_descriptor(path) else {
                return Err(e);
            };
            // SAFETY: fcntl only reads `fd` (an invalid one is EBADF); a
            // copy it returns is a new descriptor that nothing else owns.
            let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if copy < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(copy) })
        }
        Err(e) => Err(e),
    }
}

/// Clears `O_NONBLOCK` on a file this process opened itself.
fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The descriptor of this process a path names: `/dev/stdin` (0),
/// `/dev/fd/N`, `/proc/self/fd/N`.
fn own_descriptor(path: &std::path::Path) -> Option<RawFd> {
    let text = path.to_str()?;
    if text == "/dev/stdin" {
        return Some(libc::STDIN_FILENO);
    }
    text.strip_prefix("/dev/fd/")
        .or_else(|| text.strip_prefix("/proc/self/fd/"))?
        .parse()
        .ok()
}

/// Blocks read ahead from a reader by a thread of its own.
struct Threaded {
    blocks: crossbeam_channel::Receiver<io::Result<Vec<u8>>>,
    /// Handed-back buffers, for the thread to fill again.
    spare: crossbeam_channel::Sender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    ended: bool,
    /// The decoder thread was stopped while its pipe paused.
    stopped: bool,
}

/// Bytes per block read ahead, and blocks in flight.
const BLOCK: usize = 256 * 1024;
const AHEAD: usize = 4;

impl Threaded {
    /// Reads `inner` on a thread. `pipe`: the descriptor of the pipe under
    /// it, if it is one: a block is handed on as soon as the pipe pauses,
    /// however short.
    fn spawn(mut inner: Box<dyn Read + Send>, pipe: Option<RawFd>) -> Threaded {
        let (tx, blocks) = crossbeam_channel::bounded(AHEAD);
        let (spare, spares) = crossbeam_channel::bounded::<Vec<u8>>(AHEAD + 2);
        std::thread::Builder::new()
            .name("input-decoder".into())
            .spawn(move || loop {
                let mut buf = spares.try_recv().unwrap_or_default();
                buf.resize(BLOCK, 0);
                let mut n = 0;
                // Fill the block (a decoder may return little at a time).
                let result = loop {
                    match inner.read(&mut buf[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => {
                            n += k;
                            if n == buf.len() || pipe.is_some_and(|fd| !ready(fd, 0)) {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(n);
                let last = n == 0 || result.is_err();
                let sent = if n > 0 {
                    tx.send(Ok(buf)).is_ok()
                } else {
                    true
                };
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                    return;
                }
                // The reader went away (the run stopped), or the input ended.
                if !sent || last {
                    return;
                }
            })
            .expect("spawn the input decoder");
        Threaded {
            blocks,
            spare,
            current: Vec::new(),
            at: 0,
            ended: false,
            stopped: false,
        }
    }
}

impl Read for Threaded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.stopped {
                return Err(stopped());
            }
            if self.ended {
                return Ok(0);
            }
            match self.blocks.recv() {
                Ok(Ok(block)) => {
                    let used = std::mem::replace(&mut self.current, block);
                    let _ = self.spare.try_send(used);
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    self.stopped = is_stopped(&e);
                    return Err(e);
                }
                Err(_) => {
                    self.ended = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A decoder whose errors say what it was decoding ("gzip input: corrupt
/// deflate stream").
struct Decoding<R>(Compression, R);

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1.read(buf).map_err(|e| {
            if is_stopped(&e) {
                e
            } else {
                io::Error::new(e.kind(), format!("{} input: {e}", self.0.name()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_name_a_descriptor_of_this_process() {
        let fd = |p: &str| own_descriptor(std::path::Path::new(p));
        assert_eq!(fd("/dev/stdin"), Some(0));
        assert_eq!(fd("/dev/fd/63"), Some(63));
        assert_eq!(fd("/proc/self/fd/7"), Some(7));
        assert_eq!(fd("/dev/fd/x"), None);
        assert_eq!(fd("/data/fd/3"), None);
    }

    #[test]
    fn magic_numbers_are_told_apart_from_text() {
        assert_eq!(
            Compression::sniff(b"\x1f\x8b\x08\0"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::sniff(b"\x28\xb5\x2f\xfd rest"),
            Some(Compression::Zstd)
        );
        // A zstd skippable frame (pzstd writes one first), any of its 16
        // magic numbers.
        for low in [0x50u8, 0x5a, 0x5f] {
            assert_eq!(
                Compression::sniff(&[low, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]),
                Some(Compression::Zstd)
            );
        }
        // Text that starts like one is text: "P*M" (0x50 0x2a 0x4d) and on.
        assert_eq!(Compression::sniff(b"P*M,x\n"), None);
        assert_eq!(Compression::sniff(b"\x4f\x2a\x4d\x18"), None);
        assert!(Compression::undecided(b"P*"));
        assert!(Compression::undecided(b"\x5f\x2a\x4d"));
        assert!(!Compression::undecided(b"P,"));
        // A CSV may well start with "(".
        assert_eq!(Compression::sniff(b"(a),b\n"), None);
        assert_eq!(Compression::sniff(b""), None);
        assert!(Compression::undecided(b"\x28\xb5"));
        assert!(!Compression::undecided(b"(a"));
        assert!(!Compression::undecided(b"\x1f\x8b"));
    }
}
