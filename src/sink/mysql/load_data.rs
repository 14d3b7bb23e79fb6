//! LOAD DATA LOCAL INFILE, streamed from memory (no temporary file).
use std::borrow::Cow;

use bytes::Bytes;
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value as MyValue};

use super::conn::{bounded, classify, DbError};
use super::insert::info_number;
use super::rows::Row;
use super::table::Table;
use crate::sink::api::BatchResult;

/// LOAD DATA LOCAL INFILE of one group, streamed from memory, duplicates
/// skipped. Returns false (and the caller redoes the batch with INSERT) when
/// the server reports warnings other than the skipped duplicates.
pub(super) async fn load_group(
    conn: &mut Conn,
    table: &Table,
    rows: &[Row],
    tally: &mut BatchResult,
    (limit, max_packet): (std::time::Duration, usize),
) -> Result<bool, DbError> {
    let mut data = Vec::with_capacity(rows.len() * 128);
    for row in rows {
        for (i, v) in row.values.iter().enumerate() {
            if i > 0 {
                data.push(b'\t');
            }
            encode_load_value(v, &mut data);
        }
        data.push(b'\n');
    }
    // The data goes as one packet per chunk: each under max_allowed_packet.
    let data = Bytes::from(data);
    let step = (max_packet / 2).clamp(4096, 8 << 20);
    let chunks: Vec<std::io::Result<Bytes>> = (0..data.len())
        .step_by(step)
        .map(|at| Ok(data.slice(at..(at + step).min(data.len()))))
        .collect();
    conn.set_infile_handler(async move { Ok(futures_util::stream::iter(chunks).boxed()) });
    let sql = format!(
        "LOAD DATA LOCAL INFILE 'pipeline-cli-batch' IGNORE INTO TABLE {} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' {}",
        table.quoted, rows[0].map.load_columns
    );
    match bounded(limit, conn.query_drop(sql)).await? {
        Ok(()) => {}
        Err(e) => {
            return match classify(&e) {
                DbError::Data(..) => Ok(false),
                other => Err(other),
            }
        }
    }
    let info: Cow<'_, str> = conn.info();
    let records = info_number(&info, "Records").unwrap_or(rows.len() as u64);
    let skipped = info_number(&info, "Skipped").unwrap_or(0);
    let warnings = u64::from(conn.get_warnings());
    if records != rows.len() as u64 || warnings != skipped {
        return Ok(false);
    }
    tally.inserted += records - skipped;
    tally.skipped += skipped;
    Ok(true)
}

/// The bytes a row of `values` takes on the wire at most: as LOAD DATA
/// escapes it (a backslash, tab, newline, carriage return or NUL is two
/// bytes), with its separators. A prepared INSERT sends values as they are,
/// so this bounds both load modes, and a row is refused or kept the same in
/// both. Bytes are only counted where twice their length (the most they
/// take escaped) with the statement's 1 KiB would not be under `limit`.
pub(super) fn escaped_size(values: &[MyValue], limit: usize) -> usize {
    let bound = values
        .iter()
        .map(|v| match v {
            MyValue::Bytes(b) => 2 * b.len() + 9,
            _ => 32,
        })
        .sum::<usize>();
    if bound.saturating_add(1024) <= limit {
        return bound;
    }
    values
        .iter()
        .map(|v| match v {
            MyValue::Bytes(b) => {
                b.len()
                    + b.iter()
                        .filter(|c| matches!(c, b'\\' | b'\t' | b'\n' | b'\r' | 0))
                        .count()
                    + 9
            }
            _ => 32,
        })
        .sum::<usize>()
}

/// One value in LOAD DATA's default text format: `\N` for NULL, and
/// backslash escapes for the backslash, tab, newline, carriage return and NUL.
pub(super) fn encode_load_value(v: &MyValue, out: &mut Vec<u8>) {
    match v {
        MyValue::NULL => out.extend_from_slice(b"\\N"),
        MyValue::Int(i) => push_int(out, i.unsigned_abs(), *i < 0),
        MyValue::UInt(u) => push_int(out, *u, false),
        MyValue::Double(f) => out.extend_from_slice(f.to_string().as_bytes()),
        MyValue::Float(f) => out.extend_from_slice(f.to_string().as_bytes()),
        MyValue::Bytes(b) => {
            let special = |c: &u8| matches!(c, b'\\' | b'\t' | b'\n' | b'\r' | 0);
            if !b.iter().any(special) {
                out.extend_from_slice(b);
                return;
            }
            for &c in b {
                match c {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    0 => out.extend_from_slice(b"\\0"),
                    _ => out.push(c),
                }
            }
        }
        other => out.extend_from_slice(other.as_sql(true).trim_matches('\'').as_bytes()),
    }
}

/// Writes a whole number in decimal, without an allocation.
fn push_int(out: &mut Vec<u8>, mut v: u64, negative: bool) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_sized_as_escaped() {
        let plain = MyValue::Bytes(b"abc".to_vec());
        let special = MyValue::Bytes(b"\\\t\n\r\0x".to_vec());
        // Counted exactly near the limit; bounded (twice the bytes) far below it.
        assert_eq!(escaped_size(std::slice::from_ref(&plain), 0), 3 + 9);
        assert_eq!(escaped_size(&[plain], 1 << 20), 2 * 3 + 9);
        let mut out = Vec::new();
        encode_load_value(&special, &mut out);
        assert_eq!(
            escaped_size(std::slice::from_ref(&special), 0),
            out.len() + 9
        );
        assert_eq!(
            escaped_size(&[MyValue::Int(i64::MIN), MyValue::NULL], 0),
            64
        );
    }

    #[test]
    fn load_data_escaping() {
        let mut out = Vec::new();
        for v in [
            MyValue::NULL,
            MyValue::Bytes(b"a\tb\nc\\d\re\0f \\N".to_vec()),
            MyValue::Int(-3),
            MyValue::Int(i64::MIN),
            MyValue::UInt(u64::MAX),
            MyValue::UInt(0),
        ] {
            encode_load_value(&v, &mut out);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\\N|a\\tb\\nc\\\\d\\re\\0f \\\\N|-3|-9223372036854775808|18446744073709551615|0|"
        );
    }
}
