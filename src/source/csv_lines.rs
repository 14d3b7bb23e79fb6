//! CSV rows straight to JSON lines, for a sink that writes JSON lines: the
//! very bytes the file sink would write for the rows' records, without
//! making the records (written by [`RowEncoder`]), handed over in batches.

use std::sync::Arc;

use crate::error::ErrorType;
use crate::json_line::RowEncoder;
use crate::record::{Lines, Schema};

use super::csv_reader::Row;
use super::csv_row::row_text;

/// Checks rows as [`super::csv_row::to_record`] does and writes the good
/// ones as the JSON lines the file sink writes for their records.
pub(super) struct LineEncoder {
    row: RowEncoder,
}

impl LineEncoder {
    pub(super) fn new(schema: Arc<Schema>, infer: bool) -> LineEncoder {
        LineEncoder {
            row: RowEncoder::new(schema, infer),
        }
    }

    /// The lines' schema.
    pub(super) fn schema(&self) -> &Arc<Schema> {
        self.row.schema()
    }

    /// Appends the row to `out` as one line, or says why it cannot be a
    /// record (exactly as [`super::csv_row::to_record`] would; nothing is
    /// appended then).
    pub(super) fn encode(&self, row: &Row, out: &mut Lines) -> Result<(), (ErrorType, String)> {
        let all = row_text(self.schema(), row)?;
        self.row
            .write(&mut out.bytes, all, (0..row.len()).map(|i| row.range(i)));
        out.end_line(row.line);
        Ok(())
    }

    /// [`LineEncoder::encode`] for a quote-free line as it is in the input
    /// (see [`super::csv_reader::RowReader::next_plain`]), split here at
    /// `delimiter`; `cuts` is room for the field ends.
    pub(super) fn encode_plain(
        &self,
        (line, body): (u64, &[u8]),
        delimiter: u8,
        cuts: &mut Vec<usize>,
        out: &mut Lines,
    ) -> Result<(), (ErrorType, String)> {
        cuts.clear();
        cuts.extend(memchr::memchr_iter(delimiter, body));
        cuts.push(body.len());
        let text = match crate::utf8::text(body) {
            Ok(t)
                if cuts.len() == self.schema().len()
                    && cuts.iter().all(|&c| t.is_char_boundary(c)) =>
            {
                t
            }
            // As any other row (and its error worded the same).
            _ => {
                let mut row = Row::default();
                row.fill_split(body, cuts);
                row.line = line;
                return self.encode(&row, out);
            }
        };
        let ranges = cuts.iter().enumerate().map(|(i, &end)| {
            let start = if i == 0 { 0 } else { cuts[i - 1] + 1 };
            start..end
        });
        self.row.write(&mut out.bytes, text, ranges);
        out.end_line(line);
        Ok(())
    }
}

/// Rows written as lines, handed over a batch at a time.
pub(super) struct LineBatches {
    encoder: LineEncoder,
    batch: usize,
    current: Lines,
    /// Room for the field ends of a quote-free line.
    cuts: Vec<usize>,
}

impl LineBatches {
    pub(super) fn new(schema: Arc<Schema>, infer: bool, batch: usize) -> LineBatches {
        LineBatches {
            current: Lines::new(schema.clone(), batch),
            encoder: LineEncoder::new(schema, infer),
            batch,
            cuts: Vec::new(),
        }
    }

    /// Writes a parsed row (see [`LineEncoder::encode`]).
    pub(super) fn row(&mut self, row: &Row) -> Result<(), (ErrorType, String)> {
        self.encoder.encode(row, &mut self.current)
    }

    /// Writes a quote-free line (see [`LineEncoder::encode_plain`]).
    pub(super) fn plain(
        &mut self,
        plain: (u64, &[u8]),
        delimiter: u8,
    ) -> Result<(), (ErrorType, String)> {
        self.encoder
            .encode_plain(plain, delimiter, &mut self.cuts, &mut self.current)
    }

    /// The lines to hand over now: a full batch, or, before a rejected
    /// row (`before_rejected`) or at the end, whatever there is.
    pub(super) fn ready(&mut self, before_rejected: bool) -> Option<Lines> {
        let n = self.current.len();
        if n == 0 || (n < self.batch && !before_rejected) {
            return None;
        }
        let next = Lines::new(self.encoder.schema().clone(), self.batch);
        Some(std::mem::replace(&mut self.current, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::csv::header_names;
    use crate::source::csv_reader::{Next, RowReader};
    use crate::source::csv_row::to_record;

    /// Every row of `input` (after its header) through both ways: records
    /// then the file sink's encoding, and the line encoder (plain lines
    /// straight from the input, others from the parsed row).
    fn both_ways(input: &[u8], delimiter: u8, infer: bool) {
        let mut header = Row::default();
        let mut reader = RowReader::from_bytes(input.to_vec(), delimiter, 1 << 20, 100, 1);
        assert_eq!(reader.read_row(&mut header).unwrap(), Next::Row);
        let schema = Arc::new(Schema::new(header_names(&header, "t").unwrap()));
        let encoder = LineEncoder::new(schema.clone(), infer);
        let (mut lines, mut cuts, mut row) =
            (Lines::new(schema.clone(), 4), Vec::new(), Row::default());
        let mut records = Vec::new();
        loop {
            let (want, got) = match reader.next_plain().unwrap() {
                Some(plain) => {
                    let mut row = Row::default();
                    let cut: Vec<usize> = memchr::memchr_iter(delimiter, plain.1)
                        .chain([plain.1.len()])
                        .collect();
                    row.fill_split(plain.1, &cut);
                    row.line = plain.0;
                    let want = to_record(&schema, infer, &mut row, None);
                    let got = encoder.encode_plain(plain, delimiter, &mut cuts, &mut lines);
                    (want, got)
                }
                None => match reader.read_row(&mut row).unwrap() {
                    Next::Row => {
                        let want = to_record(&schema, infer, &mut row, None);
                        (want, encoder.encode(&row, &mut lines))
                    }
                    Next::End => break,
                    Next::Bad { reason, .. } => panic!("{reason}"),
                },
            };
            match want {
                Ok(r) => {
                    assert_eq!(got, Ok(()));
                    records.push(r);
                }
                Err(e) => assert_eq!(got, Err(e)),
            }
        }
        let mut expected = Vec::new();
        for r in &records {
            crate::json_line::record_into(&mut expected, r);
            expected.push(b'\n');
        }
        assert_eq!(
            String::from_utf8_lossy(&lines.bytes),
            String::from_utf8_lossy(&expected)
        );
        let positions: Vec<u64> = records.iter().map(|r| r.position).collect();
        assert_eq!(lines.positions, positions);
    }

    #[test]
    fn lines_are_written_exactly_as_the_records_would_be() {
        let input = "id,name,n,q\r\n1,Zoë,007,\"a \"\"b\"\"\nc\"\r\n2,tab\there\\,-0,x\n\n3,,TRUE,\"\"\n4,a,b\n5,\u{1},1.50,\u{7f}\nlast,no,line,end";
        for infer in [false, true] {
            both_ways(input.as_bytes(), b',', infer);
            both_ways(input.replace(',', ";").as_bytes(), b';', infer);
        }
        // A character cut by a non-ASCII delimiter byte, invalid UTF-8.
        both_ways(b"a\xa7b\nx\xc2\xa7y\nok\xa7fine\n", 0xa7, false);
        both_ways(b"a,b\n\xff,x\nok,fine\n", b',', true);
    }
}
