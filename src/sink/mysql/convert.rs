//! Record values to column types, before the server sees them: a value
//! that does not fit fails its record with the reason. Nothing is changed
//! silently: numbers keep their exact digits (exponents are written out, a
//! fraction is never rounded), and text with leading zeros (`00151`) is a
//! code, which a number column refuses rather than store as 151.

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime};
use mysql_async::Value as MyValue;

use crate::config::EpochUnit;
use crate::record::Value;

use super::table::{Column, Kind};

impl Column {
    /// Converts a record value for this column, or says why it does not fit.
    pub fn convert(&self, v: &Value) -> Result<MyValue, String> {
        self.convert_as(v, None)
    }

    /// [`Column::convert`] for a field whose numbers are epoch times in
    /// `epoch` units (`--date-format`), where the column is a date.
    pub fn convert_as(&self, v: &Value, epoch: Option<EpochUnit>) -> Result<MyValue, String> {
        if let Value::Raw(raw) = v {
            return self.convert_raw(raw, v, epoch);
        }
        // An empty CSV field means "no value" for every non-text column.
        let empty_text = matches!(v, Value::Str(s) if s.is_empty());
        let is_text = matches!(
            self.kind,
            Kind::Text { .. } | Kind::Binary { .. } | Kind::Other
        );
        if matches!(v, Value::Null | Value::Json(serde_json::Value::Null))
            || (empty_text && !is_text)
        {
            return if self.nullable || self.auto_increment || self.default_on_null {
                Ok(MyValue::NULL)
            } else {
                Err("no value for a NOT NULL column".into())
            };
        }
        match &self.kind {
            Kind::Int { min, max } => int_value(v, *min, *max),
            Kind::Bool => to_bool(v).map(|b| MyValue::Int(i64::from(b))),
            Kind::Decimal { precision, scale } => {
                let text = number_text(v)?;
                check_decimal(&text, *precision, *scale)?;
                Ok(MyValue::Bytes(text.into_bytes()))
            }
            Kind::Float => {
                let f = to_float(v)?;
                Ok(MyValue::Double(f))
            }
            Kind::Date => date_value(v, epoch),
            Kind::DateTime { fsp } => datetime_value(v, *fsp, epoch),
            Kind::Time { fsp } => time_value(v, *fsp),
            Kind::Json => json_value(v),
            Kind::Text {
                max_chars,
                max_bytes,
            } => text_value(v, *max_chars, *max_bytes),
            Kind::Binary { max_bytes } => {
                let s = text_ref(v);
                check_bytes(&s, *max_bytes)?;
                Ok(MyValue::Bytes(s.into_owned().into_bytes()))
            }
            Kind::Other => Ok(MyValue::Bytes(text_of(v).into_bytes())),
        }
    }

    /// A document value, kept as its JSON text: a JSON string into a JSON
    /// column is that JSON string (`"abc"`, not the text `abc` read as
    /// JSON), and a number or boolean into a text column is its JSON text as
    /// given (`1.50`, `true`, `-0`). Anything else converts as its typed value.
    fn convert_raw(
        &self,
        raw: &str,
        v: &Value,
        epoch: Option<EpochUnit>,
    ) -> Result<MyValue, String> {
        let typed = v.checked_typed()?;
        match (&self.kind, &*typed) {
            (Kind::Json, Value::Str(s)) => {
                let text = serde_json::to_string(s).map_err(|e| e.to_string())?;
                Ok(MyValue::Bytes(text.into_bytes()))
            }
            (
                Kind::Text { .. } | Kind::Binary { .. } | Kind::Other,
                Value::Bool(_) | Value::Int(_) | Value::Decimal(_),
            ) => self.convert(&Value::Str(raw.trim().to_owned())),
            (_, typed) => self.convert_as(typed, epoch),
        }
    }
}

/// An integer column's value, within its range `min..=max`.
fn int_value(v: &Value, min: i128, max: i128) -> Result<MyValue, String> {
    let i = to_integer(v)?;
    if i < min || i > max {
        return Err(format!("{i} is out of range ({min} to {max})"));
    }
    Ok(if i < 0 {
        MyValue::Int(i as i64)
    } else {
        MyValue::UInt(i as u64)
    })
}

/// A DATE column's value: a date, or a date and time at midnight.
fn date_value(v: &Value, epoch: Option<EpochUnit>) -> Result<MyValue, String> {
    let d = to_datetime(v, epoch)?;
    if d.time() != chrono::NaiveTime::MIN {
        return Err(format!(
            "{} has a time of day; the column is a DATE",
            text_of(v)
        ));
    }
    Ok(MyValue::Bytes(sql_datetime(&d, false)))
}

/// A DATETIME or TIMESTAMP column's value, keeping `fsp` digits of a second.
fn datetime_value(v: &Value, fsp: u32, epoch: Option<EpochUnit>) -> Result<MyValue, String> {
    use chrono::Timelike;
    let d = to_datetime(v, epoch)?;
    // Fractional seconds the column cannot keep would be
    // rounded: refused, as DECIMAL rounding is.
    let nanos = d.nanosecond() % 1_000_000_000;
    if nanos % 10u32.pow(9 - fsp.min(6)) != 0 {
        return Err(fraction_refused(&text_of(v), fsp));
    }
    Ok(MyValue::Bytes(sql_datetime(&d, true)))
}

/// A TIME column's value, keeping `fsp` digits of a second.
fn time_value(v: &Value, fsp: u32) -> Result<MyValue, String> {
    let text = text_of(v);
    if !is_time(&text) {
        return Err(format!("'{text}' is not a time ([-][D ]HH:MM:SS[.ffffff])"));
    }
    let frac = text.split_once('.').map_or("", |(_, f)| f);
    if frac.trim_end_matches('0').len() as u32 > fsp.min(6) {
        return Err(fraction_refused(&text, fsp));
    }
    Ok(MyValue::Bytes(text.into_bytes()))
}

/// A JSON column's value: other values written as JSON (a JSON string as
/// that string, quoted). Text (a CSV field) is JSON text, stored as it is
/// once it parses: the one way a CSV file holds an object, so text that is
/// not JSON (`abc`, `{nope`) is refused rather than guessed to be a string.
fn json_value(v: &Value) -> Result<MyValue, String> {
    let text = match v {
        Value::Str(s) => {
            serde_json::from_str::<serde_json::Value>(s).map_err(|e| {
                format!(
                    "not valid JSON: {e} (text for a JSON column is JSON text: a string is written quoted, \"abc\")"
                )
            })?;
            s.clone()
        }
        other => other.to_json().to_string(),
    };
    Ok(MyValue::Bytes(text.into_bytes()))
}

/// A text column's value, within its length in characters and in bytes.
fn text_value(
    v: &Value,
    max_chars: Option<u64>,
    max_bytes: Option<u64>,
) -> Result<MyValue, String> {
    let s = text_ref(v);
    // Never more characters than bytes: count only when the
    // bytes alone could be too many.
    if let Some(max) = max_chars.filter(|&max| s.len() as u64 > max) {
        let n = s.chars().count() as u64;
        if n > max {
            return Err(format!("too long: {n} characters, the column holds {max}"));
        }
    }
    check_bytes(&s, max_bytes)?;
    Ok(MyValue::Bytes(s.into_owned().into_bytes()))
}

fn check_bytes(s: &str, max: Option<u64>) -> Result<(), String> {
    match max {
        Some(max) if s.len() as u64 > max => Err(format!(
            "too long: {} bytes, the column holds {max}",
            s.len()
        )),
        _ => Ok(()),
    }
}

/// [`text_of`], borrowed where the value holds its text.
fn text_ref(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Str(s) | Value::Decimal(s) | Value::Json(serde_json::Value::String(s)) => {
            Cow::Borrowed(s)
        }
        other => Cow::Owned(text_of(other)),
    }
}

/// A date (`YYYY-MM-DD`) or date-time (`YYYY-MM-DD HH:MM:SS[.ffffff]`) as
/// MySQL reads it, written digit by digit (chrono's formatter reads its
/// format string again for every value).
fn sql_datetime(d: &NaiveDateTime, with_time: bool) -> Vec<u8> {
    use chrono::{Datelike, Timelike};
    if !(0..=9999).contains(&d.year()) || d.nanosecond() >= 1_000_000_000 {
        let fmt = match (with_time, d.nanosecond()) {
            (false, _) => "%Y-%m-%d",
            (true, 0) => "%Y-%m-%d %H:%M:%S",
            (true, _) => "%Y-%m-%d %H:%M:%S%.6f",
        };
        return d.format(fmt).to_string().into_bytes();
    }
    fn digits(out: &mut Vec<u8>, v: u32, width: usize) {
        let mut buf = [b'0'; 10];
        let mut v = v;
        for i in (0..width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&buf[..width]);
    }
    let mut out = Vec::with_capacity(26);
    digits(&mut out, d.year() as u32, 4);
    out.push(b'-');
    digits(&mut out, d.month(), 2);
    out.push(b'-');
    digits(&mut out, d.day(), 2);
    if with_time {
        out.push(b' ');
        digits(&mut out, d.hour(), 2);
        out.push(b':');
        digits(&mut out, d.minute(), 2);
        out.push(b':');
        digits(&mut out, d.second(), 2);
        if d.nanosecond() != 0 {
            out.push(b'.');
            digits(&mut out, d.nanosecond() / 1000, 6);
        }
    }
    out
}

/// The value as text (how it is written to a text column).
pub fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Decimal(d) => d.clone(),
        Value::Str(s) => s.clone(),
        Value::Json(serde_json::Value::String(s)) => s.clone(),
        Value::Json(j) => j.to_string(),
        Value::Raw(_) => text_of(&v.typed()),
    }
}

fn to_integer(v: &Value) -> Result<i128, String> {
    match v {
        Value::Int(i) => Ok(i128::from(*i)),
        Value::Bool(b) => Ok(i128::from(*b)),
        other => {
            let s = number_text(other)?;
            let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
            if !frac.bytes().all(|b| b == b'0') {
                return Err(format!("'{}' is not a whole number", text_of(other)));
            }
            int.parse::<i128>()
                .map_err(|_| format!("'{}' is not a whole number", text_of(other)))
        }
    }
}

/// True for text such as `007` or `-00.5`: digits after a leading zero,
/// which make it a code (a zip code, an id), not a quantity.
fn leading_zero(s: &str) -> bool {
    let b = s.trim_start_matches(['-', '+']).as_bytes();
    b.len() > 1 && b[0] == b'0' && b[1].is_ascii_digit()
}

/// `-?digits[.digits]`: what [`plain_decimal`] gives back unchanged (a
/// leading zero aside, refused before).
fn simple_decimal(s: &str) -> bool {
    let b = s.strip_prefix('-').unwrap_or(s).as_bytes();
    let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
    int > 0
        && match &b[int..] {
            [] => true,
            [b'.', frac @ ..] => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
            _ => false,
        }
}

/// A number written out as plain decimal text, exactly (`1.5e-7` becomes
/// `0.00000015`, `1e+3` becomes `1000`); `None` when `s` is not a number.
fn plain_decimal(s: &str) -> Option<String> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        || exp.abs() > 100
    {
        return None;
    }
    let digits: String = format!("{int}{frac}");
    // The position of the decimal point within `digits`.
    let point = int.len() as i64 + exp;
    let (mut int_part, frac_part) = if point <= 0 {
        (
            "0".to_string(),
            format!("{}{digits}", "0".repeat((-point) as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        let (i, f) = digits.split_at(point as usize);
        (i.to_string(), f.to_string())
    };
    let trimmed = int_part.trim_start_matches('0');
    int_part = if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    };
    let sign = if neg { "-" } else { "" };
    Some(if frac_part.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    })
}

fn to_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Int(0) => Ok(false),
        Value::Int(1) => Ok(true),
        Value::Json(serde_json::Value::Bool(b)) => Ok(*b),
        other => {
            let s = text_of(other);
            match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(format!("'{s}' is not a boolean (true, false, 1 or 0)")),
            }
        }
    }
}

fn to_float(v: &Value) -> Result<f64, String> {
    let f = match v {
        Value::Int(i) => *i as f64,
        other => {
            let s = text_of(other);
            if leading_zero(&s) {
                return Err(leading_zero_refusal(&s));
            }
            s.parse::<f64>()
                .map_err(|_| format!("'{s}' is not a number"))?
        }
    };
    if f.is_finite() {
        Ok(f)
    } else {
        Err(format!("{f} is not a finite number"))
    }
}

fn leading_zero_refusal(s: &str) -> String {
    format!("'{s}' has a leading zero: it is a code, not a number, and a number column would drop the zero (use a text column)")
}

/// The exact decimal text of a value for a number column.
fn number_text(v: &Value) -> Result<String, String> {
    match v {
        Value::Bool(b) => Ok(u8::from(*b).to_string()),
        Value::Int(i) => Ok(i.to_string()),
        other => {
            let text = text_ref(other);
            let b = text.as_bytes();
            // Trim only where an end may be white space (any non-ASCII
            // byte may start or end a Unicode space).
            let spacy = |c: &u8| c.is_ascii_whitespace() || *c >= 0x80;
            let s = if b.first().is_some_and(spacy) || b.last().is_some_and(spacy) {
                text.trim()
            } else {
                &text
            };
            if leading_zero(s) {
                return Err(leading_zero_refusal(s));
            }
            if simple_decimal(s) {
                return Ok(s.to_string());
            }
            plain_decimal(s).ok_or_else(|| format!("'{s}' is not a number"))
        }
    }
}

/// Checks `-?digits[.digits]` against DECIMAL(precision, scale), exactly:
/// a value that would be rounded or overflow fails instead.
fn check_decimal(text: &str, precision: u32, scale: u32) -> Result<(), String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let valid = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && frac.is_empty());
    if !valid {
        return Err(format!("'{text}' is not a decimal number"));
    }
    let int_digits = int.trim_start_matches('0').len() as u32;
    let frac_digits = frac.trim_end_matches('0').len() as u32;
    if int_digits > precision.saturating_sub(scale) {
        return Err(format!("{text} does not fit DECIMAL({precision},{scale})"));
    }
    if frac_digits > scale {
        return Err(format!(
            "{text} has more than {scale} decimal places (DECIMAL({precision},{scale}))"
        ));
    }
    Ok(())
}

/// ISO 8601: `2026-01-03`, `2026-01-03T10:15:00`, `2026-01-03 10:15:00.123`,
/// `2026-01-03T10:15:00Z`, `2026-01-03T10:15:00+02:00` (converted to UTC).
pub(super) fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.naive_utc());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(d);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(chrono::NaiveTime::MIN))
}

/// The instant `plain` (a number as [`plain_decimal`] writes it, given as
/// `s`) counts in `unit` since 1970-01-01T00:00:00Z, to the nanosecond.
fn from_epoch(s: &str, plain: &str, unit: EpochUnit) -> Result<NaiveDateTime, String> {
    let (neg, digits) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, plain),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = frac.trim_end_matches('0');
    // Nanoseconds in one unit, and the fraction digits they hold.
    let (per_unit, places) = match unit {
        EpochUnit::Millis => (1_000_000i128, 6),
        EpochUnit::Seconds => (1_000_000_000i128, 9),
    };
    let out_of_range = || format!("'{s}' is out of the range of dates as an epoch time");
    if frac.len() > places {
        return Err(format!("'{s}' is finer than a nanosecond as an epoch time"));
    }
    if int.len() > 20 {
        return Err(out_of_range());
    }
    let int: i128 = int.parse().map_err(|_| out_of_range())?;
    let frac: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<places$}")
            .parse()
            .map_err(|_| out_of_range())?
    };
    let nanos = (int * per_unit + frac) * if neg { -1 } else { 1 };
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| out_of_range())?;
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, sub)
        .map(|d| d.naive_utc())
        .ok_or_else(out_of_range)
}

fn fraction_refused(text: &str, fsp: u32) -> String {
    format!(
        "{text} has more fractional-second digits than the column keeps ({fsp}); it would be rounded"
    )
}

/// `[-][D ]H[HH]:MM[:SS[.ffffff]]`, or `HHMMSS[.ffffff]`: what a TIME column reads.
fn is_time(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let s = match s.split_once(' ') {
        Some((days, rest)) if !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()) => rest,
        Some(_) => return false,
        None => s,
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (s.contains('.') && frac.is_empty()) {
        return false;
    }
    let parts: Vec<&str> = whole.split(':').collect();
    let digits = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    match parts.as_slice() {
        [n] => digits(n, 7),
        [h, m] => digits(h, 3) && digits(m, 2),
        [h, m, sec] => digits(h, 3) && digits(m, 2) && digits(sec, 2),
        _ => false,
    }
}

/// A date or date-time in UTC that a DATE, DATETIME or TIMESTAMP column can
/// hold: years 0000 to 9999 (after an offset is applied), no leap second.
/// A number is an epoch time in `epoch` units, when the field has them.
fn to_datetime(v: &Value, epoch: Option<EpochUnit>) -> Result<NaiveDateTime, String> {
    use chrono::{Datelike, Timelike};
    let s = text_ref(v);
    let number = plain_decimal(s.trim());
    let d = match (epoch, number) {
        (Some(unit), Some(n)) => from_epoch(&s, &n, unit)?,
        (None, Some(_)) => return Err(format!(
            "'{s}' is a number, not an ISO 8601 date or date-time: if it is an epoch time, give its unit with --date-format FIELD=epoch_millis or FIELD=epoch_second"
        )),
        (_, None) => parse_datetime(&s)
            .ok_or_else(|| format!("'{s}' is not an ISO 8601 date or date-time"))?,
    };
    if !(0..=9999).contains(&d.year()) {
        return Err(format!(
            "'{s}' is {d} in UTC, outside the years 0000 to 9999 a date column holds"
        ));
    }
    if d.nanosecond() >= 1_000_000_000 {
        return Err(format!(
            "'{s}' is a leap second (:60), which a date-time column cannot hold"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::mysql::table::{Column, Kind};

    fn col(kind: Kind, nullable: bool) -> Column {
        Column {
            name: "c".into(),
            sql_type: String::new(),
            kind,
            nullable,
            fills_itself: nullable,
            auto_increment: false,
            default_on_null: false,
        }
    }

    fn bytes(r: Result<MyValue, String>) -> Result<String, String> {
        r.map(|v| match v {
            MyValue::Bytes(b) => String::from_utf8(b).unwrap(),
            MyValue::NULL => "NULL".into(),
            other => other.as_sql(true),
        })
    }

    /// A document's JSON string is a JSON string in a JSON column, even one
    /// whose text looks like JSON; CSV text is JSON text, refused when it is
    /// not JSON rather than guessed to be a string.
    #[test]
    fn json_columns_take_json_strings_as_strings_and_csv_text_as_json() {
        let j = col(Kind::Json, true);
        let raw = |t: &str| Value::Raw(t.into());
        for (value, want) in [
            (raw(r#""abc""#), r#""abc""#),
            (raw(r#""""#), r#""""#),
            (raw(r#""{\"a\":1}""#), r#""{\"a\":1}""#),
            (raw(r#""caf\u00e9 \"q\"\n""#), r#""café \"q\"\n""#),
            (
                raw(r#""2026-01-02T03:04:05Z""#),
                r#""2026-01-02T03:04:05Z""#,
            ),
            (raw(r#"{"a":[1,"x"]}"#), r#"{"a":[1,"x"]}"#),
            (raw("[]"), "[]"),
            (raw("1.50"), "1.50"),
            (raw("12345678901234567890123"), "12345678901234567890123"),
            (raw("true"), "true"),
            (raw("null"), "NULL"),
            (Value::Json(serde_json::json!("abc")), r#""abc""#),
            (Value::Str(r#""abc""#.into()), r#""abc""#),
            (Value::Str(r#"{"a": 1}"#.into()), r#"{"a": 1}"#),
            (Value::Str("42".into()), "42"),
            (Value::Str(String::new()), "NULL"),
            (Value::Int(7), "7"),
            (Value::Bool(false), "false"),
        ] {
            assert_eq!(bytes(j.convert(&value)).as_deref(), Ok(want), "{value:?}");
        }
        for value in [
            Value::Str("abc".into()),
            Value::Str("{nope".into()),
            raw(r#""\ud800""#),
        ] {
            let why = j.convert(&value).unwrap_err();
            assert!(why.contains("not valid JSON"), "{value:?}: {why}");
        }
        let why = j.convert(&Value::Str("abc".into())).unwrap_err();
        assert!(why.contains(r#"quoted, "abc""#), "{why}");
        let not_null = col(Kind::Json, false);
        assert_eq!(
            bytes(not_null.convert(&raw(r#""""#))).as_deref(),
            Ok(r#""""#)
        );
        assert!(not_null.convert(&raw("null")).is_err());
    }

    /// Fractional seconds past the column's precision (0 to 6) are refused,
    /// as DECIMAL rounding is; trailing zeros are not digits it loses.
    #[test]
    fn fractional_seconds_against_every_precision() {
        let s = |t: &str| Value::Str(t.into());
        for fsp in 0..=6u32 {
            let dt = col(Kind::DateTime { fsp }, true);
            let t = col(Kind::Time { fsp }, true);
            for digits in 0..=7usize {
                let frac = &"1234567"[..digits];
                let dot = if digits == 0 { "" } else { "." };
                let at = format!("2024-02-29 23:59:59{dot}{frac}");
                let time = format!("838:59:59{dot}{frac}");
                let padded = format!("2024-02-29T23:59:59.{frac}000+00:00");
                if digits as u32 <= fsp {
                    let want = if digits == 0 {
                        "2024-02-29 23:59:59".to_string()
                    } else {
                        format!("2024-02-29 23:59:59.{frac:0<6}")
                    };
                    assert_eq!(bytes(dt.convert(&s(&at))), Ok(want.clone()), "{at} {fsp}");
                    assert_eq!(bytes(dt.convert(&s(&padded))), Ok(want), "{padded}");
                    assert_eq!(bytes(t.convert(&s(&time))), Ok(time.clone()));
                } else {
                    for (c, v) in [(&dt, &at), (&dt, &padded), (&t, &time)] {
                        let why = c.convert(&s(v)).unwrap_err();
                        assert!(
                            why.contains(&format!("({fsp})")) && why.contains("rounded"),
                            "{v} into {fsp}: {why}"
                        );
                    }
                }
            }
        }
        // Nanoseconds: past any column's six digits.
        let dt6 = col(Kind::DateTime { fsp: 6 }, true);
        assert!(dt6.convert(&s("2026-01-02T03:04:05.123456789Z")).is_err());
        assert!(dt6.convert(&s("2026-01-02T03:04:05.123456000Z")).is_ok());
    }

    /// An offset is applied: the column holds the instant in UTC (the
    /// session's time zone); a date-time without one is taken as given.
    #[test]
    fn offsets_are_converted_to_utc() {
        let dt = col(Kind::DateTime { fsp: 6 }, true);
        let s = |t: &str| Value::Str(t.into());
        for (given, want) in [
            ("2026-01-02T03:04:05+02:00", "2026-01-02 01:04:05"),
            ("2026-01-02T03:04:05Z", "2026-01-02 03:04:05"),
            ("2026-01-02T03:04:05z", "2026-01-02 03:04:05"),
            ("2026-01-02T03:04:05+00:00", "2026-01-02 03:04:05"),
            ("2026-01-02T03:04:05-00:00", "2026-01-02 03:04:05"),
            ("2026-01-02T03:04:05-05:30", "2026-01-02 08:34:05"),
            ("2026-01-02T03:04:05.25+14:00", "2026-01-01 13:04:05.250000"),
            ("2026-01-02T03:04:05-12:00", "2026-01-02 15:04:05"),
            ("2026-01-01T00:30:00+01:00", "2025-12-31 23:30:00"),
            ("2025-12-31T23:30:00-01:00", "2026-01-01 00:30:00"),
            ("2024-02-29T23:00:00-02:00", "2024-03-01 01:00:00"),
            ("2024-03-01T01:00:00+02:00", "2024-02-29 23:00:00"),
            ("2026-01-02 03:04:05+02:00", "2026-01-02 01:04:05"),
            // No offset: as given.
            ("2026-01-02T03:04:05", "2026-01-02 03:04:05"),
            ("2026-01-02 03:04", "2026-01-02 03:04:00"),
            ("2024-02-29", "2024-02-29 00:00:00"),
            // The limits of the years a column holds.
            ("9999-12-31T23:59:59.999999Z", "9999-12-31 23:59:59.999999"),
            ("9999-12-31T23:59:59+00:00", "9999-12-31 23:59:59"),
            ("0000-01-01 00:00:00", "0000-01-01 00:00:00"),
            ("1000-01-01T01:00:00+01:00", "1000-01-01 00:00:00"),
            ("1970-01-01T00:00:01Z", "1970-01-01 00:00:01"),
            (
                "2038-01-19T05:14:07.999999+02:00",
                "2038-01-19 03:14:07.999999",
            ),
        ] {
            assert_eq!(bytes(dt.convert(&s(given))).as_deref(), Ok(want), "{given}");
        }
        for (given, why) in [
            ("9999-12-31T23:30:00-01:00", "outside the years"),
            ("0000-01-01T00:30:00+01:00", "outside the years"),
            ("2016-12-31T23:59:60Z", "leap second"),
            ("2023-02-29T00:00:00Z", "not an ISO 8601"),
            ("2026-01-02T03:04:05+0200", "not an ISO 8601"),
            ("2026-01-02T03:04:05+02", "not an ISO 8601"),
            ("2026-01-02T25:00:00Z", "not an ISO 8601"),
            ("1767323045", "not an ISO 8601"),
        ] {
            let got = dt.convert(&s(given)).unwrap_err();
            assert!(got.contains(why), "{given}: {got}");
        }
        // A DATE takes a date-time at midnight in UTC only.
        let d = col(Kind::Date, true);
        assert_eq!(
            bytes(d.convert(&s("2024-02-29T00:00:00Z"))).as_deref(),
            Ok("2024-02-29")
        );
        assert_eq!(
            bytes(d.convert(&s("2024-03-01T02:00:00+02:00"))).as_deref(),
            Ok("2024-03-01")
        );
        let why = d.convert(&s("2024-03-01T00:00:00+02:00")).unwrap_err();
        assert!(why.contains("time of day"), "{why}");
    }

    /// A document's number or boolean into a text column keeps its JSON
    /// text as given; text keeps its leading zeros.
    #[test]
    fn numbers_and_booleans_into_text_keep_their_json_text() {
        let text = col(
            Kind::Text {
                max_chars: Some(30),
                max_bytes: None,
            },
            true,
        );
        let raw = |t: &str| Value::Raw(t.into());
        for (value, want) in [
            (raw("true"), "true"),
            (raw("false"), "false"),
            (raw("1.50"), "1.50"),
            (raw("-0"), "-0"),
            (raw("1e5"), "1e5"),
            (raw("-2.5E-3"), "-2.5E-3"),
            (raw("0"), "0"),
            (raw("12345678901234567890123"), "12345678901234567890123"),
            (raw(r#""007""#), "007"),
            (raw(r#""true""#), "true"),
            (raw(r#"{"a":1.50}"#), r#"{"a":1.50}"#),
            (raw("[true,1.0]"), "[true,1.0]"),
            (raw("null"), "NULL"),
            (Value::Str("007".into()), "007"),
            (Value::Decimal("1.50".into()), "1.50"),
            (Value::Bool(true), "true"),
        ] {
            assert_eq!(
                bytes(text.convert(&value)).as_deref(),
                Ok(want),
                "{value:?}"
            );
        }
        let short = col(
            Kind::Text {
                max_chars: Some(3),
                max_bytes: None,
            },
            true,
        );
        assert!(short
            .convert(&raw("1.50"))
            .unwrap_err()
            .contains("too long"));
        for kind in [Kind::Binary { max_bytes: None }, Kind::Other] {
            assert_eq!(
                bytes(col(kind, true).convert(&raw("1.50"))).as_deref(),
                Ok("1.50")
            );
        }
    }

    /// `--date-format`: a field's numbers (and numeric strings) are epoch
    /// times in its unit, to the nanosecond, under the same precision and
    /// range rules as text; without it a number in a date column fails with
    /// a reason naming the flag.
    #[test]
    fn epoch_times_with_their_unit() {
        use EpochUnit::{Millis, Seconds};
        let dt = |fsp| col(Kind::DateTime { fsp }, true);
        let raw = |t: &str| Value::Raw(t.into());
        for (fsp, value, unit, want) in [
            (0, raw("0"), Millis, "1970-01-01 00:00:00"),
            (
                3,
                raw("1420070400001"),
                Millis,
                "2015-01-01 00:00:00.001000",
            ),
            (
                3,
                raw(r#""1420070400001""#),
                Millis,
                "2015-01-01 00:00:00.001000",
            ),
            (
                3,
                Value::Str("1420070400001".into()),
                Millis,
                "2015-01-01 00:00:00.001000",
            ),
            (
                3,
                Value::Int(1420070400001),
                Millis,
                "2015-01-01 00:00:00.001000",
            ),
            (
                3,
                Value::Decimal("1.420070400001E12".into()),
                Millis,
                "2015-01-01 00:00:00.001000",
            ),
            (
                6,
                raw("1420070400001.5"),
                Millis,
                "2015-01-01 00:00:00.001500",
            ),
            (3, raw("-1"), Millis, "1969-12-31 23:59:59.999000"),
            (0, raw("1709164800"), Seconds, "2024-02-29 00:00:00"),
            (
                1,
                raw("1420070400.5"),
                Seconds,
                "2015-01-01 00:00:00.500000",
            ),
            (0, raw("-86400"), Seconds, "1969-12-31 00:00:00"),
            (0, raw("2147483647"), Seconds, "2038-01-19 03:14:07"),
            (0, raw("253402300799"), Seconds, "9999-12-31 23:59:59"),
            (0, raw("1767323045.000"), Seconds, "2026-01-02 03:04:05"),
            // A field with a unit may still hold ISO 8601 text.
            (
                0,
                raw(r#""2026-01-02T03:04:05+02:00""#),
                Seconds,
                "2026-01-02 01:04:05",
            ),
        ] {
            assert_eq!(
                bytes(dt(fsp).convert_as(&value, Some(unit))).as_deref(),
                Ok(want),
                "{value:?} {unit:?}"
            );
        }
        for (fsp, value, unit, why) in [
            (0, "1420070400001", Millis, "(0); it would be rounded"),
            (6, "1420070400.0000001", Seconds, "(6); it would be rounded"),
            (6, "1.0000000001", Seconds, "finer than a nanosecond"),
            (0, "253402300800", Seconds, "outside the years 0000 to 9999"),
            (0, "99999999999999999999999", Millis, "out of the range"),
            (0, "12345678901234567890", Seconds, "out of the range"),
            (0, "\"soon\"", Millis, "not an ISO 8601"),
        ] {
            let got = dt(fsp).convert_as(&raw(value), Some(unit)).unwrap_err();
            assert!(got.contains(why), "{value} {unit:?}: {got}");
        }
        let d = col(Kind::Date, true);
        assert_eq!(
            bytes(d.convert_as(&raw("1709164800000"), Some(Millis))).as_deref(),
            Ok("2024-02-29")
        );
        assert!(d
            .convert_as(&raw("1709164801"), Some(Seconds))
            .unwrap_err()
            .contains("time of day"));
        for value in [raw("1420070400001"), raw(r#""1420070400""#), Value::Int(0)] {
            for c in [dt(3), col(Kind::Date, true)] {
                let why = c.convert(&value).unwrap_err();
                assert!(
                    why.contains("is a number") && why.contains("--date-format FIELD=epoch_millis"),
                    "{value:?}: {why}"
                );
            }
        }
        // The unit is for date columns: other columns take the number.
        let text = col(
            Kind::Text {
                max_chars: None,
                max_bytes: None,
            },
            true,
        );
        assert_eq!(
            bytes(text.convert_as(&raw("1420070400001"), Some(Millis))).as_deref(),
            Ok("1420070400001")
        );
    }

    /// A JSON string with a lone surrogate escape has no UTF-8 text: the
    /// record fails rather than storing the escape with its quotes.
    #[test]
    fn raw_json_that_is_not_valid_fails_instead_of_being_stored_as_text() {
        let c = col(
            Kind::Text {
                max_chars: None,
                max_bytes: None,
            },
            true,
        );
        let err = c.convert(&Value::Raw(r#""\ud800""#.into())).unwrap_err();
        assert!(err.contains("not valid JSON text"), "{err}");
        assert_eq!(
            c.convert(&Value::Raw(r#""caf\u00e9""#.into())),
            Ok(MyValue::Bytes("café".into()))
        );
    }

    #[test]
    fn integers_are_range_checked() {
        let c = col(
            Kind::Int {
                min: -128,
                max: 127,
            },
            false,
        );
        assert_eq!(
            c.convert(&Value::Str("-128".into())),
            Ok(MyValue::Int(-128))
        );
        assert!(c
            .convert(&Value::Str("128".into()))
            .unwrap_err()
            .contains("out of range"));
        assert!(c
            .convert(&Value::Str("1.5".into()))
            .unwrap_err()
            .contains("whole number"));
        assert!(c
            .convert(&Value::Str(String::new()))
            .unwrap_err()
            .contains("NOT NULL"));
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        let c = col(
            Kind::Decimal {
                precision: 6,
                scale: 2,
            },
            true,
        );
        assert_eq!(
            c.convert(&Value::Str("1234.50".into())),
            Ok(MyValue::Bytes(b"1234.50".to_vec()))
        );
        assert!(c.convert(&Value::Str("12345.5".into())).is_err());
        assert!(c
            .convert(&Value::Str("1.005".into()))
            .unwrap_err()
            .contains("decimal places"));
        // An exponent is written out exactly; one that needs more places
        // than the column has is refused.
        assert_eq!(
            c.convert(&Value::Str("1e3".into())),
            Ok(MyValue::Bytes(b"1000".to_vec()))
        );
        assert!(c.convert(&Value::Str("1e-3".into())).is_err());
        assert!(c.convert(&Value::Str("1e9".into())).is_err());
        assert_eq!(c.convert(&Value::Str(String::new())), Ok(MyValue::NULL));
    }

    #[test]
    fn fractional_seconds_beyond_the_column_are_refused() {
        let dt0 = col(Kind::DateTime { fsp: 0 }, true);
        let dt3 = col(Kind::DateTime { fsp: 3 }, true);
        let s = |t: &str| Value::Str(t.into());
        assert_eq!(
            dt0.convert(&s("2026-01-03 10:15:00.000")),
            Ok(MyValue::Bytes(b"2026-01-03 10:15:00".to_vec()))
        );
        let why = dt0.convert(&s("2026-01-03T10:15:00.5Z")).unwrap_err();
        assert!(why.contains("(0)") && why.contains("rounded"), "{why}");
        assert!(dt3.convert(&s("2026-01-03 10:15:00.123")).is_ok());
        assert!(dt3.convert(&s("2026-01-03 10:15:00.1230")).is_ok());
        assert!(dt3.convert(&s("2026-01-03 10:15:00.1234")).is_err());
        let dt6 = col(Kind::DateTime { fsp: 6 }, true);
        assert!(dt6.convert(&s("2026-01-03 10:15:00.1234567")).is_err());
        let t0 = col(Kind::Time { fsp: 0 }, true);
        let t2 = col(Kind::Time { fsp: 2 }, true);
        assert_eq!(
            t0.convert(&s("10:15:00")),
            Ok(MyValue::Bytes(b"10:15:00".to_vec()))
        );
        assert!(t0.convert(&s("10:15:00.5")).is_err());
        assert!(t2.convert(&s("-838:59:59.25")).is_ok());
        assert!(t2.convert(&s("1 10:15:00.250")).is_ok());
        assert!(t2.convert(&s("10:15:00.255")).is_err());
        assert!(t2.convert(&s("ten o'clock")).is_err());
        assert_eq!(t2.convert(&s("")), Ok(MyValue::NULL));
    }

    #[test]
    fn dates_and_times_from_iso_8601() {
        let dt = col(Kind::DateTime { fsp: 6 }, true);
        assert_eq!(
            dt.convert(&Value::Str("2026-01-03T10:15:00+02:00".into())),
            Ok(MyValue::Bytes(b"2026-01-03 08:15:00".to_vec()))
        );
        assert_eq!(
            dt.convert(&Value::Str("2026-01-03 10:15:00.25".into())),
            Ok(MyValue::Bytes(b"2026-01-03 10:15:00.250000".to_vec()))
        );
        assert!(dt.convert(&Value::Str("2026-02-30".into())).is_err());
        let d = col(Kind::Date, true);
        assert_eq!(
            d.convert(&Value::Str("2026-01-03".into())),
            Ok(MyValue::Bytes(b"2026-01-03".to_vec()))
        );
    }

    #[test]
    fn booleans_text_and_json() {
        let b = col(Kind::Bool, false);
        assert_eq!(b.convert(&Value::Str("TRUE".into())), Ok(MyValue::Int(1)));
        assert_eq!(b.convert(&Value::Str("0".into())), Ok(MyValue::Int(0)));
        assert!(b.convert(&Value::Str("yes".into())).is_err());
        let t = col(
            Kind::Text {
                max_chars: Some(3),
                max_bytes: None,
            },
            true,
        );
        assert!(t.convert(&Value::Str("äöü".into())).is_ok());
        assert!(t
            .convert(&Value::Str("äöüx".into()))
            .unwrap_err()
            .contains("too long"));
        let j = col(Kind::Json, true);
        assert!(j.convert(&Value::Str("{\"a\":1}".into())).is_ok());
        assert!(j
            .convert(&Value::Str("{nope".into()))
            .unwrap_err()
            .contains("JSON"));
        assert_eq!(
            j.convert(&Value::Json(serde_json::json!({"a": [1, "x"]}))),
            Ok(MyValue::Bytes(b"{\"a\":[1,\"x\"]}".to_vec()))
        );
    }

    #[test]
    fn codes_with_leading_zeros_are_refused_by_number_columns() {
        let int = col(
            Kind::Int {
                min: 0,
                max: 1 << 40,
            },
            true,
        );
        assert!(int
            .convert(&Value::Str("00151".into()))
            .unwrap_err()
            .contains("leading zero"));
        assert!(int.convert(&Value::Str("151".into())).is_ok());
        let dec = col(
            Kind::Decimal {
                precision: 10,
                scale: 2,
            },
            true,
        );
        assert!(dec.convert(&Value::Str("007.5".into())).is_err());
        assert!(dec.convert(&Value::Str("0.5".into())).is_ok());
        assert!(col(Kind::Float, true)
            .convert(&Value::Str("0151".into()))
            .is_err());
    }

    #[test]
    fn exponents_are_written_out_exactly() {
        assert_eq!(plain_decimal("1.5e-7").as_deref(), Some("0.00000015"));
        assert_eq!(plain_decimal("1e+3").as_deref(), Some("1000"));
        assert_eq!(plain_decimal("-2.50E2").as_deref(), Some("-250"));
        assert_eq!(
            plain_decimal("19.999999999999999999").as_deref(),
            Some("19.999999999999999999")
        );
        assert_eq!(plain_decimal("abc"), None);
        let dec = col(
            Kind::Decimal {
                precision: 20,
                scale: 10,
            },
            true,
        );
        assert_eq!(
            dec.convert(&Value::Decimal("1.5e-7".into())).unwrap(),
            MyValue::Bytes(b"0.00000015".to_vec())
        );
        let int = col(
            Kind::Int {
                min: 0,
                max: 1 << 40,
            },
            true,
        );
        assert_eq!(
            int.convert(&Value::Decimal("2.0".into())).unwrap(),
            MyValue::UInt(2)
        );
        assert_eq!(
            int.convert(&Value::Decimal("1e+3".into())).unwrap(),
            MyValue::UInt(1000)
        );
        assert!(int.convert(&Value::Decimal("2.5".into())).is_err());
    }

    #[test]
    fn a_not_null_column_with_a_default_takes_null_for_the_default() {
        let mut c = col(
            Kind::Text {
                max_chars: Some(10),
                max_bytes: None,
            },
            false,
        );
        assert!(c.convert(&Value::Null).is_err());
        c.default_on_null = true;
        assert_eq!(c.convert(&Value::Null).unwrap(), MyValue::NULL);
    }

    #[test]
    fn dates_are_written_as_chrono_writes_them() {
        for text in [
            "2026-01-03T10:15:00Z",
            "2026-01-03 10:15:00.25",
            "0999-12-31 23:59:59.000001",
            "2024-02-29T00:00:00.123456789+02:00",
            "1970-01-01",
        ] {
            let d = parse_datetime(text).unwrap();
            let fmt = if d.nanosecond() == 0 {
                "%Y-%m-%d %H:%M:%S"
            } else {
                "%Y-%m-%d %H:%M:%S%.6f"
            };
            use chrono::Timelike;
            assert_eq!(
                sql_datetime(&d, true),
                d.format(fmt).to_string().into_bytes(),
                "{text}"
            );
            assert_eq!(
                sql_datetime(&d, false),
                d.format("%Y-%m-%d").to_string().into_bytes()
            );
        }
    }

    #[test]
    fn simple_decimals_are_what_plain_decimal_gives() {
        for s in [
            "0",
            "-0",
            "12",
            "-12.50",
            "0.5",
            "123456789012345678901234567890.1",
        ] {
            assert!(simple_decimal(s), "{s}");
            assert_eq!(plain_decimal(s).as_deref(), Some(s));
        }
        for s in ["5.", ".5", "+5", "1e3", "1.2.3", "", "-", "1 "] {
            assert!(!simple_decimal(s), "{s}");
        }
    }
}
