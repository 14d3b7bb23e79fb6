//! A regular gzip file whose members say their own size (see
//! [`crate::gzip_members`]), inflated a member per thread on several
//! threads and read back in order.
//!
//! A scanner thread reads the file member by member, finding where each
//! ends from its header, and hands whole members to the inflating threads;
//! the reader takes their output in file order. A few members are in
//! flight at most (one per thread and two). From the first member that does not say its size (a
//! gzip file appended after), that is too large, or that does not inflate
//! exactly and cleanly (corrupt, cut short, a CRC mismatch, a size that
//! lies), the rest of the file is read by one decoder from that member's
//! start: what comes out, and the error it ends with, are what reading the
//! whole file by one decoder gives.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::gzip_members::member_size;

/// A member larger than this, compressed or inflated, is read by the one
/// decoder.
const MAX_MEMBER: u64 = 16 << 20;

/// Bytes of a member's start read to find its size.
const HEADER_READ: usize = 4096;

/// A member in file order, as the reader takes it.
enum Item {
    /// A member at `offset`, inflated (`None`: it did not inflate cleanly).
    Member {
        offset: u64,
        out: Receiver<Option<Vec<u8>>>,
    },
    /// From `offset` on, the file is read by one decoder.
    Rest(u64),
    /// The file ended after the last member.
    End,
}

/// A member to inflate: its bytes, its inflated size, where the result goes.
type Job = (Vec<u8>, u32, Sender<Option<Vec<u8>>>);

/// Reads a gzip file's inflated bytes, its members inflated in parallel.
pub struct ParallelGzip {
    file: Arc<File>,
    items: Option<Receiver<Item>>,
    current: Vec<u8>,
    at: usize,
    rest: Option<Box<dyn Read + Send>>,
}

/// Whether a gzip file that starts with `head` is read by [`ParallelGzip`]:
/// its first member says its size.
pub fn splittable(head: &[u8]) -> bool {
    member_size(head).is_some()
}

/// Threads that inflate members: one per core, 16 at most.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(16))
}

impl ParallelGzip {
    /// Reads `file` (a regular file of `len` bytes, read by offset: its
    /// position does not matter) on `threads` inflating threads.
    pub fn new(file: File, len: u64, threads: usize) -> ParallelGzip {
        let file = Arc::new(file);
        let threads = threads.max(1);
        // Each member's place goes to the reader after the member went to
        // the threads: members in flight are bounded by the places waiting.
        let (items_tx, items) = bounded(threads + 1);
        let (jobs_tx, jobs) = bounded::<Job>(threads);
        for i in 0..threads {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("gzip-inflate-{i}"))
                .spawn(move || {
                    let mut inflater = Inflater::new();
                    for (member, size, out) in jobs.iter() {
                        let data = inflater.as_mut().and_then(|i| i.inflate(&member, size));
                        let _ = out.send(data);
                    }
                })
                .expect("spawn a gzip inflating thread");
        }
        let scanned = Arc::clone(&file);
        std::thread::Builder::new()
            .name("gzip-scan".into())
            .spawn(move || scan(&scanned, len, &items_tx, &jobs_tx))
            .expect("spawn the gzip member scanner");
        ParallelGzip {
            file,
            items: Some(items),
            current: Vec::new(),
            at: 0,
            rest: None,
        }
    }

    /// Reads on from `offset` by one decoder; the threads stop.
    fn fall_back(&mut self, offset: u64) {
        tracing::debug!("gzip members: from byte {offset} on, read by one decoder");
        self.items = None;
        let from = At {
            file: Arc::clone(&self.file),
            offset,
        };
        let reader = BufReader::with_capacity(256 * 1024, from);
        self.rest = Some(Box::new(flate2::bufread::MultiGzDecoder::new(reader)));
    }
}

impl Read for ParallelGzip {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.current.len() {
                let n = buf.len().min(self.current.len() - self.at);
                buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if let Some(rest) = &mut self.rest {
                return rest.read(buf);
            }
            let Some(items) = &self.items else {
                return Ok(0);
            };
            match items.recv() {
                Ok(Item::Member { offset, out }) => match out.recv() {
                    Ok(Some(data)) => {
                        self.current = data;
                        self.at = 0;
                    }
                    _ => self.fall_back(offset),
                },
                Ok(Item::Rest(offset)) => self.fall_back(offset),
                Ok(Item::End) => self.items = None,
                Err(_) => return Err(io::Error::other("the gzip member scanner stopped")),
            }
        }
    }
}

/// Walks the members of `file`, handing each to the inflating threads and
/// its place to the reader, until the file ends or a member cannot be
/// found by its size (then the rest is the reader's to read).
fn scan(file: &File, len: u64, items: &Sender<Item>, jobs: &Sender<Job>) {
    let mut offset = 0;
    let mut header = vec![0; HEADER_READ];
    while offset < len {
        let Some((member, size)) = read_member(file, len, offset, &mut header) else {
            let _ = items.send(Item::Rest(offset));
            return;
        };
        let step = member.len() as u64;
        let (tx, out) = bounded(1);
        if jobs.send((member, size, tx)).is_err()
            || items.send(Item::Member { offset, out }).is_err()
        {
            return;
        }
        offset += step;
    }
    let _ = items.send(Item::End);
}

/// The member at `offset` and its inflated size (from its trailer), when
/// its header says its size and that size fits in the file and in
/// [`MAX_MEMBER`].
fn read_member(file: &File, len: u64, offset: u64, header: &mut [u8]) -> Option<(Vec<u8>, u32)> {
    let n = read_at_most(file, header, offset).ok()?;
    let size = member_size(&header[..n])?;
    if !(20..=MAX_MEMBER).contains(&size) || size > len - offset {
        return None;
    }
    let mut member = vec![0; usize::try_from(size).ok()?];
    file.read_exact_at(&mut member, offset).ok()?;
    let tail = &member[member.len() - 4..];
    let inflated = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    (u64::from(inflated) <= MAX_MEMBER).then_some((member, inflated))
}

/// Reads from `offset` until `buf` is full or the file ends.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// libdeflate's decompressor: a whole gzip member into a buffer of its
/// size, about twice as fast as a streaming decoder.
struct Inflater(std::ptr::NonNull<libdeflate_sys::libdeflate_decompressor>);

// SAFETY: a decompressor is used by one thread at a time (`&mut self`).
unsafe impl Send for Inflater {}

impl Inflater {
    /// `None`: out of memory (the members are then read by one decoder).
    fn new() -> Option<Inflater> {
        // SAFETY: allocates a decompressor that nothing else holds.
        std::ptr::NonNull::new(unsafe { libdeflate_sys::libdeflate_alloc_decompressor() })
            .map(Inflater)
    }

    /// Inflates `member`, one whole gzip member of `size` inflated bytes:
    /// `None` unless it inflates to exactly that, its CRC matches and
    /// nothing follows its trailer.
    fn inflate(&mut self, member: &[u8], size: u32) -> Option<Vec<u8>> {
        let mut out = vec![0u8; size as usize];
        let (mut read, mut written) = (0usize, 0usize);
        // SAFETY: the pointers and lengths are those of `member` and `out`,
        // which outlive the call; libdeflate writes within `out` only.
        let result = unsafe {
            libdeflate_sys::libdeflate_gzip_decompress_ex(
                self.0.as_ptr(),
                member.as_ptr().cast(),
                member.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut read,
                &mut written,
            )
        };
        let whole = read == member.len() && written == out.len();
        (result == libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS && whole).then_some(out)
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// A file read from `offset` on, by offset.
struct At {
    file: Arc<File>,
    offset: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gzip_members::sized_member;
    use std::io::Write;

    fn read_all(bytes: &[u8], threads: usize) -> io::Result<Vec<u8>> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        let mut out = Vec::new();
        ParallelGzip::new(file, bytes.len() as u64, threads)
            .read_to_end(&mut out)
            .map(|_| out)
    }

    #[test]
    fn a_clean_member_inflates_whole_and_a_bad_one_does_not() {
        let mut inflater = Inflater::new().unwrap();
        let mut inflate = |m: &[u8], size| inflater.inflate(m, size);
        let member = sized_member(b"id,name\n1,x\n");
        let size = 12;
        assert_eq!(
            inflate(&member, size).as_deref(),
            Some(&b"id,name\n1,x\n"[..])
        );
        assert_eq!(inflate(&member, size - 1), None, "a size that lies");
        let mut longer = member.clone();
        longer.push(0);
        assert_eq!(inflate(&longer, size), None, "bytes after the trailer");
        let mut crc = member.clone();
        let at = crc.len() - 8;
        crc[at] ^= 1;
        assert_eq!(inflate(&crc, size), None, "a CRC mismatch");
        assert_eq!(
            inflate(&member[..member.len() - 3], size),
            None,
            "cut short"
        );
    }

    #[test]
    fn members_come_back_in_order_and_the_rest_by_one_decoder() {
        let parts: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("{i},{}\n", "v".repeat(i * 100)).into_bytes())
            .collect();
        let mut file: Vec<u8> = parts.iter().flat_map(|p| sized_member(p)).collect();
        file.extend(sized_member(b""));
        let want: Vec<u8> = parts.concat();
        for threads in [1, 3] {
            assert_eq!(read_all(&file, threads).unwrap(), want);
        }
        // A gzip(1) member appended: read on by one decoder.
        let mut enc = flate2::write::GzEncoder::new(file.clone(), flate2::Compression::new(1));
        enc.write_all(b"tail\n").unwrap();
        let appended = enc.finish().unwrap();
        let mut both = want.clone();
        both.extend(b"tail\n");
        assert_eq!(read_all(&appended, 2).unwrap(), both);
        // A corrupt member in the middle: what came before it, then the error.
        let mut corrupt = file.clone();
        let second = sized_member(&parts[0]).len();
        corrupt[second + 30] ^= 0xff;
        assert!(read_all(&corrupt, 2).is_err());
        let mut garbage = file;
        garbage.extend(b"not gzip");
        assert!(read_all(&garbage, 2).is_err());
    }
}
