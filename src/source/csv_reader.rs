//! The CSV row reader: `csv_core` (the parser under the `csv` crate, so
//! fields come out byte for byte the same) driven over one buffer that also
//! keeps the raw bytes of the row being read, for the dead-letter file.
//!
//! Driving the parser directly lets the reader see what the `csv` crate
//! hides: a quoted field still open at the end of the input (a parse error,
//! not a field that swallows the rest of the file), and a quoted field that
//! grows past `--csv-max-field-bytes` or spans more than
//! `--csv-max-field-lines` lines (probably a stray quote: the row is
//! rejected and reading goes on from the line after the one it started on;
//! an unquoted field past the byte limit is rejected the same way, called
//! too long). Memory stays bounded by those limits. A live pipe (standard input, a
//! named pipe, compressed or not) is read through [`super::live`], so a
//! stop is seen even when the writer has paused in the middle of a row.

use std::io::{self, Read};

use csv_core::ReadRecordResult;

use super::live::{is_stopped, Live};

/// Bytes asked of the input per read.
const READ_SIZE: usize = 128 * 1024;
/// The most raw text kept for a row given up on.
const MAX_RAW: usize = 1 << 20;
/// Bytes before the current row kept before the buffer is compacted.
const RETAIN_SLACK: usize = 256 * 1024;

/// One parsed row: its fields' bytes back to back, and where each ends.
#[derive(Debug, Default, Clone)]
pub struct Row {
    fields: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    /// The line the row starts on (1-based).
    pub line: u64,
}

impl Row {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Fills the row with the fields of `body` that end at `cuts` (each
    /// followed by one delimiter byte, the last by the end of `body`).
    pub fn fill_split(&mut self, body: &[u8], cuts: &[usize]) {
        self.fields.clear();
        self.ends.clear();
        let mut from = 0;
        for &to in cuts {
            self.fields.extend_from_slice(&body[from..to]);
            self.ends.push(self.fields.len());
            from = to + 1;
        }
        self.len = cuts.len();
    }

    /// The byte range of field `i` in [`Row::as_slice`].
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[i]
    }

    /// Field `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        &self.fields[self.range(i)]
    }

    /// Field `i` as text, taking the row's buffer (which is then empty):
    /// for a field too large to copy. The row must have been checked to be
    /// valid UTF-8 with `i` on character boundaries.
    pub fn take_field(&mut self, i: usize) -> String {
        let range = self.range(i);
        let mut bytes = std::mem::take(&mut self.fields);
        bytes.truncate(range.end);
        bytes.drain(..range.start);
        String::from_utf8(bytes).expect("checked UTF-8")
    }

    /// Every field's bytes, back to back.
    pub fn as_slice(&self) -> &[u8] {
        let end = if self.len == 0 {
            0
        } else {
            self.ends[self.len - 1]
        };
        &self.fields[..end]
    }
}

/// What [`RowReader::read_row`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A row, in the `Row` passed in.
    Row,
    /// A row that cannot be one: its start line, raw text and why.
    Bad {
        line: u64,
        raw: Vec<u8>,
        reason: String,
    },
    /// The end of the input (or of a live input, once stopped).
    End,
}

/// The end of filling the buffer.
enum Fill {
    /// More bytes are buffered.
    More,
    /// The input has ended.
    Eof,
    /// A live input had nothing more while the run was stopping.
    Stopped,
}

/// Reads rows from a byte stream; see the module documentation.
pub struct RowReader {
    input: Box<dyn Read + Send>,
    /// Bytes read and not yet let go of, `buf[..end]`; `buf[0]` is stream
    /// offset `base`. The rest of `buf` is room for the next read (kept, so
    /// it is not zeroed again for every read).
    buf: Vec<u8>,
    end: usize,
    base: u64,
    /// Next byte to parse.
    pos: usize,
    eof: bool,
    core: csv_core::Reader,
    delimiter: u8,
    live: Option<Live>,
    max_field_bytes: u64,
    max_field_lines: u64,
    /// The start of the input is still to be checked for a UTF-8 BOM.
    at_start: bool,
    /// After a row given up on a line with no end in sight: skip to the
    /// next line end before reading on.
    skip_line: bool,
    /// A live input was left by the stop signal.
    stopped: bool,
    /// The input ended inside a quoted field.
    ended_open: bool,
}

impl RowReader {
    /// A reader of `input` with `delimiter` and the field limits.
    pub fn new(
        input: Box<dyn Read + Send>,
        delimiter: u8,
        max_field_bytes: u64,
        max_field_lines: u64,
    ) -> RowReader {
        RowReader {
            input,
            buf: Vec::new(),
            end: 0,
            base: 0,
            pos: 0,
            eof: false,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            delimiter,
            live: None,
            max_field_bytes,
            max_field_lines,
            at_start: true,
            skip_line: false,
            stopped: false,
            ended_open: false,
        }
    }

    /// A reader of `input` that starts in the middle of a CSV stream, at the
    /// start of a row on `line` (no byte-order mark is looked for).
    pub fn starting_at(
        input: Box<dyn Read + Send>,
        delimiter: u8,
        max_field_bytes: u64,
        max_field_lines: u64,
        line: u64,
    ) -> RowReader {
        let mut r = RowReader::new(input, delimiter, max_field_bytes, max_field_lines);
        r.at_start = false;
        r.core.set_line(line);
        r
    }

    /// A reader of a chunk already in memory that starts at a row start on
    /// `line` and ends with the chunk (read in place, not copied).
    pub fn from_bytes(
        bytes: Vec<u8>,
        delimiter: u8,
        max_field_bytes: u64,
        max_field_lines: u64,
        line: u64,
    ) -> RowReader {
        let mut r = RowReader::starting_at(
            Box::new(io::empty()),
            delimiter,
            max_field_bytes,
            max_field_lines,
            line,
        );
        r.end = bytes.len();
        r.buf = bytes;
        r.eof = true;
        r
    }

    /// Hands the reader bytes already read from the start of its input,
    /// parsed before anything is read from it. Only before the first row.
    pub fn prefill(&mut self, head: Vec<u8>) {
        debug_assert!(self.end == 0 && self.base == 0);
        self.end = head.len();
        self.buf = head;
    }

    /// The bytes read ahead and not parsed yet, and the input after them,
    /// for a reader that goes on from here; this reader then has nothing.
    pub fn take_input(&mut self) -> (Vec<u8>, Box<dyn Read + Send>) {
        let ahead = self.buf[self.pos..self.end].to_vec();
        self.base += self.pos as u64;
        self.buf = Vec::new();
        self.pos = 0;
        self.end = 0;
        self.eof = true;
        let input = std::mem::replace(&mut self.input, Box::new(io::empty()));
        (ahead, input)
    }

    /// The line the next row starts on.
    pub fn line(&self) -> u64 {
        self.core.line()
    }

    /// True once the input has ended inside a quoted field.
    pub fn ended_open(&self) -> bool {
        self.ended_open
    }

    /// Marks the input as live (a pipe, see [`super::live`]), for
    /// [`RowReader::would_block`].
    pub fn set_live(&mut self, live: Live) {
        self.live = Some(live);
    }

    /// True once a live input was left by the stop signal (what it had
    /// sent before was read).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Bytes consumed so far (the stream offset of the next byte to parse).
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// True when reading on would wait for a live writer: the buffer is
    /// (nearly) empty and the pipe has nothing to say right now.
    pub fn would_block(&self, below: usize) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| self.end - self.pos < below && l.would_block())
    }

    /// After a row that made the buffer large: lets go of the bytes already
    /// parsed and of the extra capacity, so one huge row does not stay in
    /// memory for the rest of the run.
    pub fn release(&mut self) {
        if self.buf.len() > 8 * READ_SIZE {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
            self.buf.truncate(self.end.max(2 * READ_SIZE));
            self.buf.shrink_to_fit();
        }
    }

    /// The raw bytes between two stream offsets, as far as they are kept
    /// (always, for the row just read).
    pub fn raw(&self, start: u64, end: u64) -> &[u8] {
        let s = start.saturating_sub(self.base).min(self.end as u64) as usize;
        let e = end.saturating_sub(self.base).min(self.end as u64) as usize;
        &self.buf[s..e.max(s)]
    }

    fn fill(&mut self) -> io::Result<Fill> {
        if self.eof {
            return Ok(Fill::Eof);
        }
        if self.stopped {
            return Ok(Fill::Stopped);
        }
        if self.buf.len() - self.end < READ_SIZE {
            self.buf.resize(self.end + READ_SIZE, 0);
        }
        let n = loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_stopped(&e) => {
                    self.stopped = true;
                    return Ok(Fill::Stopped);
                }
                Err(e) => return Err(e),
            }
        };
        self.end += n;
        if n == 0 {
            self.eof = true;
            return Ok(Fill::Eof);
        }
        Ok(Fill::More)
    }

    /// A line end passed outside the parser: the parser counts the lines.
    fn next_line(&mut self) {
        self.core.set_line(self.core.line() + 1);
    }

    /// Lets go of the bytes before `pos` once there are enough of them.
    fn compact(&mut self) {
        // Nothing more will be read in: no room to make.
        if self.pos >= RETAIN_SLACK && !self.eof {
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
    }

    /// Skips line ends (and the BOM, at the start) before a row. False at
    /// the end of the input.
    fn skip_to_row(&mut self) -> io::Result<Option<Fill>> {
        loop {
            if self.pos == self.end {
                match self.fill()? {
                    Fill::More => {}
                    other => return Ok(Some(other)),
                }
                continue;
            }
            if self.at_start {
                if self.end < 3 && !self.eof {
                    match self.fill()? {
                        Fill::Stopped => return Ok(Some(Fill::Stopped)),
                        _ => continue,
                    }
                }
                self.at_start = false;
                if self.buf[..self.end].starts_with(b"\xEF\xBB\xBF") {
                    self.pos = 3;
                }
                continue;
            }
            if self.skip_line {
                match memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                    Some(i) => {
                        self.pos += i + 1;
                        self.next_line();
                        self.skip_line = false;
                    }
                    None => {
                        // Nothing of this line is needed: let it all go.
                        self.base += self.end as u64;
                        self.end = 0;
                        self.pos = 0;
                    }
                }
                continue;
            }
            match self.buf[self.pos] {
                b'\n' => {
                    self.pos += 1;
                    self.next_line();
                }
                b'\r' => self.pos += 1,
                _ => return Ok(None),
            }
        }
    }

    /// True when nothing but line ends is left before the end of the
    /// input (they are consumed, as the next row would skip them). False
    /// when a row follows, or when a live input was stopped first.
    pub fn at_end(&mut self) -> io::Result<bool> {
        self.compact();
        Ok(matches!(self.skip_to_row()?, Some(Fill::Eof)))
    }

    /// Reads the next row into `row`.
    pub fn read_row(&mut self, row: &mut Row) -> io::Result<Next> {
        self.compact();
        match self.skip_to_row()? {
            None => {}
            Some(Fill::Stopped | Fill::Eof | Fill::More) => return Ok(Next::End),
        }
        let start = self.pos;
        let start_line = self.core.line();
        row.line = start_line;
        row.len = 0;
        if row.fields.is_empty() {
            row.fields.resize(1024, 0);
        }
        if row.ends.is_empty() {
            row.ends.resize(64, 0);
        }
        if self.plain_row(row) {
            return Ok(Next::Row);
        }
        let (mut nout, mut nends) = (0usize, 0usize);
        let mut at_end = false;
        loop {
            let input = if at_end {
                &[][..]
            } else {
                &self.buf[self.pos..self.end]
            };
            let (res, nin, no, ne) =
                self.core
                    .read_record(input, &mut row.fields[nout..], &mut row.ends[nends..]);
            self.pos += nin;
            nout += no;
            nends += ne;
            match res {
                ReadRecordResult::Record => {
                    row.len = nends;
                    if at_end && unclosed_quote(&self.buf[start..self.pos], self.delimiter) {
                        return Ok(self.unclosed_at_end(start, start_line));
                    }
                    return Ok(Next::Row);
                }
                ReadRecordResult::End => return Ok(Next::End),
                ReadRecordResult::OutputEndsFull => {
                    let n = row.ends.len();
                    row.ends.resize(n * 2, 0);
                }
                ReadRecordResult::OutputFull | ReadRecordResult::InputEmpty => {
                    let field_start = if nends == 0 { 0 } else { row.ends[nends - 1] };
                    let field_len = (nout - field_start) as u64;
                    let lines = self.core.line() - start_line;
                    if field_len > self.max_field_bytes || lines > self.max_field_lines {
                        return Ok(self.give_up(start, start_line, field_len, lines));
                    }
                    if res == ReadRecordResult::OutputFull {
                        let n = row.fields.len();
                        row.fields.resize(n * 2, 0);
                        continue;
                    }
                    match self.fill()? {
                        Fill::More => {}
                        Fill::Eof => at_end = true,
                        Fill::Stopped => {
                            self.core.reset();
                            return Ok(Next::Bad {
                                line: start_line,
                                raw: self.buf[start..self.pos].to_vec(),
                                reason: "incomplete row: cut short by the stop signal".into(),
                            });
                        }
                    }
                }
            }
        }
    }

    /// The next row when it is a plain line (see `plain_row`), borrowed
    /// from the buffer: its line number and its bytes without the line
    /// end, split at the delimiter by the caller. `None`: the next row is
    /// for [`RowReader::read_row`] (which also tells the end of the input).
    pub fn next_plain(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        self.compact();
        if self.skip_to_row()?.is_some() {
            return Ok(None);
        }
        let rest = &self.buf[self.pos..self.end];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return Ok(None);
        };
        let line = &rest[..nl];
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        if body.len() as u64 > self.max_field_bytes || memchr::memchr2(b'"', b'\r', body).is_some()
        {
            return Ok(None);
        }
        let (start, len, line_no) = (self.pos, body.len(), self.core.line());
        self.pos += nl + 1;
        self.next_line();
        Ok(Some((line_no, &self.buf[start..start + len])))
    }

    /// The common row, read without the parser: a whole line already
    /// buffered, with no quote and no carriage return but a last one before
    /// the line feed, split at the delimiter. The parser reads such a line
    /// the same way, byte for byte; any other row is left to it.
    fn plain_row(&mut self, row: &mut Row) -> bool {
        let rest = &self.buf[self.pos..self.end];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return false;
        };
        let line = &rest[..nl];
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        if body.len() as u64 > self.max_field_bytes || memchr::memchr2(b'"', b'\r', body).is_some()
        {
            return false;
        }
        if row.fields.len() < body.len() {
            row.fields.resize(body.len().next_power_of_two(), 0);
        }
        let mut n = 0;
        let mut from = 0;
        let mut out = 0;
        let mut put = |to: usize, row: &mut Row| {
            let field = &body[from..to];
            row.fields[out..out + field.len()].copy_from_slice(field);
            out += field.len();
            if n == row.ends.len() {
                row.ends.resize(n * 2, 0);
            }
            row.ends[n] = out;
            n += 1;
            from = to + 1;
        };
        for d in memchr::memchr_iter(self.delimiter, body) {
            put(d, row);
        }
        put(body.len(), row);
        row.len = n;
        self.pos += nl + 1;
        self.next_line();
        true
    }

    fn unclosed_at_end(&mut self, start: usize, start_line: u64) -> Next {
        self.ended_open = true;
        Next::Bad {
            line: start_line,
            raw: self.buf[start..self.pos].to_vec(),
            reason: format!(
                "unclosed quote: a quoted field that starts in the row on line {start_line} is still open at the end of the input"
            ),
        }
    }

    /// A quoted field grew past a limit: reject the row's first line and
    /// read on from the line after it.
    fn give_up(&mut self, start: usize, start_line: u64, bytes: u64, lines: u64) -> Next {
        self.core.reset();
        // Only a quoted field can span lines; one that grew too long
        // without a quote around it is just too long.
        let quoted = unclosed_quote(&self.buf[start..self.pos], self.delimiter);
        let first_line_end = memchr::memchr(b'\n', &self.buf[start..self.end]).map(|i| start + i);
        let raw_end = first_line_end.unwrap_or(self.end);
        // The raw text kept for the dead-letter file is cut at a size that
        // can be read.
        let raw = self.buf[start..raw_end.min(start + MAX_RAW)].to_vec();
        let cut = if raw_end - start > MAX_RAW {
            format!(" (the raw text kept is its first {MAX_RAW} bytes)")
        } else {
            String::new()
        };
        match first_line_end {
            Some(i) => {
                self.pos = i + 1;
                self.core.set_line(start_line + 1);
            }
            None => {
                self.pos = self.end;
                self.core.set_line(start_line);
                self.skip_line = true;
            }
        }
        self.release();
        let next = start_line + 1;
        if !quoted {
            return Next::Bad {
                line: start_line,
                raw,
                reason: format!(
                    "a field longer than --csv-max-field-bytes {} (more than {bytes} bytes, not quoted) in the row that starts on line {start_line}; the row is rejected and reading goes on from line {next}{cut}",
                    self.max_field_bytes
                ),
            };
        }
        let why = if bytes > self.max_field_bytes {
            format!(
                "a quoted field grew past {bytes} bytes (--csv-max-field-bytes {})",
                self.max_field_bytes
            )
        } else {
            format!(
                "a quoted field spans more than {lines} lines (--csv-max-field-lines {})",
                self.max_field_lines
            )
        };
        Next::Bad {
            line: start_line,
            raw,
            reason: format!(
                "probably an unclosed quote in the row that starts on line {start_line}: {why}; the row is rejected and reading goes on from line {next}{cut}"
            ),
        }
    }
}

/// True when `raw` (one row, RFC 4180) ends inside a quoted field.
fn unclosed_quote(raw: &[u8], delimiter: u8) -> bool {
    let mut quoted = false;
    let mut field_start = true;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if quoted {
            if b == b'"' {
                if raw.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else if field_start && b == b'"' {
            quoted = true;
            field_start = false;
        } else {
            field_start = b == delimiter || b == b'\n' || b == b'\r';
        }
        i += 1;
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(input: &[u8], max_bytes: u64, max_lines: u64) -> Vec<Result<Vec<Vec<u8>>, String>> {
        let mut r = RowReader::new(
            Box::new(input.to_vec().leak() as &[u8]),
            b',',
            max_bytes,
            max_lines,
        );
        let mut row = Row::default();
        let mut out = Vec::new();
        loop {
            match r.read_row(&mut row).unwrap() {
                Next::Row => out.push(Ok((0..row.len()).map(|i| row.get(i).to_vec()).collect())),
                Next::Bad { line, reason, .. } => out.push(Err(format!("{line}: {reason}"))),
                Next::End => return out,
            }
        }
    }

    /// The same rows as the `csv` crate (flexible, no header) gives.
    fn csv_crate(input: &[u8]) -> Vec<Result<Vec<Vec<u8>>, String>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        r.byte_records()
            .map(|rec| Ok(rec.unwrap().iter().map(<[u8]>::to_vec).collect()))
            .collect()
    }

    #[test]
    fn valid_input_parses_exactly_as_the_csv_crate_does() {
        let cases: [&[u8]; 12] = [
            b"a,b\n1,2\n",
            b"a,b\r\n1,2\r\n3,4",
            b"\xEF\xBB\xBFid,name\n1,x\n",
            b"a,\"b,c\",\"d\"\"e\"\n\"multi\nline\",x,\"\"\n",
            b"\n\na,b\n\n\nc,d\n\n",
            b"x,\"y\r\nz\",w\r\n",
            b"a,,b,\n,,,\n",
            b" a , b \n\"\",\"\"\"\"\n",
            b"one\n",
            b"",
            b"a,\"q\"x,b\n",
            b"\"\xc3\xa9t\xc3\xa9\",\xe6\x9d\xb1\n",
        ];
        for input in cases {
            assert_eq!(
                rows(input, 1 << 20, 1000),
                csv_crate(input),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // A large input across many buffer refills.
        let mut big = Vec::new();
        for i in 0..50_000 {
            big.extend_from_slice(
                format!("{i},\"name, {i}\",\"say \"\"hi\"\"\nnext\",{}\r\n", i * 7).as_bytes(),
            );
        }
        assert_eq!(rows(&big, 1 << 20, 1000), csv_crate(&big));
    }

    #[test]
    fn a_quote_still_open_at_the_end_is_an_error_not_a_field() {
        let got = rows(b"a,b\n1,\"x\n2,y\n3,z\n", 1 << 20, 1000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok(vec![b"a".to_vec(), b"b".to_vec()]));
        let err = got[1].clone().unwrap_err();
        assert!(err.starts_with("2: unclosed quote"), "{err}");
    }

    #[test]
    fn a_quoted_field_past_the_limits_is_given_up_and_reading_goes_on() {
        let mut input = b"a,b\n1,\"stray\n".to_vec();
        for i in 2..200 {
            input.extend_from_slice(format!("{i},v\n").as_bytes());
        }
        let got = rows(&input, 1 << 20, 10);
        let err = got[1].clone().unwrap_err();
        assert!(err.starts_with("2: probably an unclosed quote"), "{err}");
        assert!(err.contains("--csv-max-field-lines 10"), "{err}");
        assert_eq!(got.len(), 2 + 198);
        assert_eq!(got[2], Ok(vec![b"2".to_vec(), b"v".to_vec()]));
        assert_eq!(got[199], Ok(vec![b"199".to_vec(), b"v".to_vec()]));
        // By size, on one long line.
        let mut input = b"a,b\n1,\"".to_vec();
        input.extend(std::iter::repeat_n(b'x', 5000));
        input.extend_from_slice(b"\n2,v\n");
        let got = rows(&input, 1000, 1000);
        let err = got[1].clone().unwrap_err();
        assert!(err.contains("--csv-max-field-bytes 1000"), "{err}");
        assert_eq!(got[2], Ok(vec![b"2".to_vec(), b"v".to_vec()]));
    }

    /// A field with no quote around it (a quote inside it is a plain
    /// character) past --csv-max-field-bytes is said to be too long, not
    /// taken for an unclosed quote; reading goes on from the next line.
    #[test]
    fn a_long_unquoted_field_is_called_too_long_not_an_unclosed_quote() {
        for (lead, field) in [
            ("", "x"),
            ("\"quoted, closed\",", "y"),
            ("1,", "a\"b"),
            ("1,\"\",", "z"),
        ] {
            let mut input = format!("a,b\n{lead}").into_bytes();
            while input.len() < 5000 {
                input.extend_from_slice(field.as_bytes());
            }
            input.extend_from_slice(b"\n2,v\n");
            let got = rows(&input, 1000, 1000);
            let err = got[1].clone().unwrap_err();
            assert!(!err.contains("unclosed"), "{lead}{field}: {err}");
            assert!(
                err.starts_with("2: a field longer than --csv-max-field-bytes 1000"),
                "{lead}{field}: {err}"
            );
            assert_eq!(got[2], Ok(vec![b"2".to_vec(), b"v".to_vec()]), "{lead}");
            assert_eq!(got.len(), 3, "{lead}");
        }
    }

    #[test]
    fn open_quotes_are_found_per_field() {
        assert!(unclosed_quote(b"1,\"abc", b','));
        assert!(!unclosed_quote(b"1,\"a\"\"c\"", b','));
        assert!(unclosed_quote(b"1,\"a\"\"c", b','));
        assert!(!unclosed_quote(b"1,a\"c", b','));
        assert!(!unclosed_quote(b"\"a\nb\",c", b','));
    }
}
