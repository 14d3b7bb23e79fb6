//! One parsed CSV row as a record: its text checked (field count, UTF-8),
//! its values typed, or why it cannot be one. Shared by the one-thread
//! reader (`csv.rs`), the parallel one (`csv_parallel.rs`), the JSON-lines
//! encoder (`csv_lines.rs`).

use std::sync::Arc;

use crate::error::ErrorType;
use crate::record::{Record, Schema, Value};

use super::csv_reader::Row;

/// A field at least this long becomes its value without being copied.
const BIG_FIELD: usize = 1 << 20;

/// The row's text, checked against `schema`: as many fields as it has, all
/// valid UTF-8, each field whole characters; or why the row cannot be a
/// record.
pub(super) fn row_text<'r>(schema: &Schema, row: &'r Row) -> Result<&'r str, (ErrorType, String)> {
    if row.len() != schema.len() {
        return Err((
            ErrorType::Parse,
            format!("expected {} fields, found {}", schema.len(), row.len()),
        ));
    }
    // One UTF-8 check for the whole row; fields split at ASCII
    // delimiters, so each field's range is a valid slice of it.
    let all = match crate::utf8::text(row.as_slice()) {
        Ok(all) => all,
        Err(e) => {
            let bad = e.valid_up_to();
            let field = (0..row.len())
                .find(|&i| row.range(i).contains(&bad))
                .unwrap_or(0);
            let start = row.range(field).start;
            return Err((
                ErrorType::Parse,
                format!(
                    "invalid UTF-8 in field {} ({}) at byte {}",
                    field + 1,
                    schema.names()[field],
                    bad - start
                ),
            ));
        }
    };
    // The row is valid as a whole, but a field may still split a character
    // in two (the bytes of the delimiter are not in `all`).
    for i in 0..row.len() {
        let range = row.range(i);
        if !all.is_char_boundary(range.start) || !all.is_char_boundary(range.end) {
            return Err((
                ErrorType::Parse,
                format!(
                    "invalid UTF-8 in field {} ({}): a character is cut by the delimiter",
                    i + 1,
                    schema.names()[i]
                ),
            ));
        }
    }
    Ok(all)
}

/// A parsed row as a record of `schema` (typed with `infer`), filling the
/// strings of `reuse` where one is given; or why it cannot be one.
pub(super) fn to_record(
    schema: &Arc<Schema>,
    infer: bool,
    row: &mut Row,
    reuse: Option<Record>,
) -> Result<Record, (ErrorType, String)> {
    let schema = schema.clone();
    let line = row.line;
    let all = row_text(&schema, row)?;
    // A very large field takes the row's buffer instead of a copy of
    // it (below), so a 50 MB field is not held twice.
    let big = if row.as_slice().len() >= BIG_FIELD {
        (0..row.len())
            .max_by_key(|&i| row.range(i).len())
            .filter(|&i| row.range(i).len() >= BIG_FIELD)
    } else {
        None
    };
    let typed = |text: String| {
        if infer {
            Value::infer(text)
        } else {
            Value::Str(text)
        }
    };
    let mut values = match reuse {
        Some(r) => r.values,
        None => Vec::with_capacity(row.len()),
    };
    values.truncate(row.len());
    let reused = values.len();
    for i in 0..row.len() {
        let range = row.range(i);
        if !infer && Some(i) != big {
            // Strings: the old string filled again in place.
            if let Some(Value::Str(s)) = values.get_mut(i) {
                s.clear();
                s.push_str(&all[range]);
                continue;
            }
        }
        let value = if Some(i) == big {
            Value::Null
        } else if i < reused {
            // The old value's string, emptied and filled again.
            let mut text = match std::mem::replace(&mut values[i], Value::Null) {
                Value::Str(s) | Value::Decimal(s) => s,
                _ => String::new(),
            };
            text.clear();
            text.push_str(&all[range]);
            typed(text)
        } else {
            typed(all[range].to_owned())
        };
        if i < reused {
            values[i] = value;
        } else {
            values.push(value);
        }
    }
    if let Some(i) = big {
        values[i] = typed(row.take_field(i));
    }
    Ok(Record {
        schema,
        values,
        position: line,
    })
}

/// A row's bytes without the line terminators around it (with CRLF input the
/// reader's record start can sit on the previous row's `\n`).
pub(super) fn trim_line_end(raw: &[u8]) -> &[u8] {
    let is_eol = |b: &u8| *b == b'\n' || *b == b'\r';
    let start = raw.iter().take_while(|b| is_eol(b)).count();
    let end = raw.len() - raw[start..].iter().rev().take_while(|b| is_eol(b)).count();
    &raw[start..end]
}
