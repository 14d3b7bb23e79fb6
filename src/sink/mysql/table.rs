//! What the MySQL sink knows about its table: the columns read from
//! information_schema, the conversion of record values to each column's type
//! (so a value that does not fit fails that record with the reason, before
//! the server sees it), and the DDL `--create-table` infers from a batch.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use mysql_async::Value as MyValue;

use crate::record::{Record, Value};

/// `name` quoted as a MySQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The kinds of column the sink converts values for.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// An integer type with its range.
    Int {
        /// Smallest value.
        min: i128,
        /// Largest value.
        max: i128,
    },
    /// BOOLEAN / TINYINT(1) / BIT(1).
    Bool,
    /// DECIMAL(precision, scale).
    Decimal {
        /// Total digits.
        precision: u32,
        /// Digits after the point.
        scale: u32,
    },
    /// FLOAT / DOUBLE.
    Float,
    /// DATE.
    Date,
    /// DATETIME / TIMESTAMP (UTC on the session).
    DateTime,
    /// JSON (MySQL's type, or MariaDB's LONGTEXT with a json_valid check).
    Json,
    /// CHAR / VARCHAR / TEXT, limited in characters or bytes.
    Text {
        /// Longest value in characters (CHAR/VARCHAR).
        max_chars: Option<u64>,
        /// Longest value in bytes (TEXT types).
        max_bytes: Option<u64>,
    },
    /// BINARY / VARBINARY / BLOB.
    Binary {
        /// Longest value in bytes.
        max_bytes: Option<u64>,
    },
    /// Anything else (TIME, YEAR, ENUM, SET …): sent as text for the server to check.
    Other,
}

/// One column of the table.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// How values are converted for it.
    pub kind: Kind,
    /// NULL allowed.
    pub nullable: bool,
    /// Filled by the server when a row leaves it out (a default, NULL, auto-increment, generated).
    pub fills_itself: bool,
    /// AUTO_INCREMENT.
    pub auto_increment: bool,
}

/// The table as read from information_schema.
#[derive(Debug)]
pub struct Table {
    /// `db`.`table`, quoted.
    pub quoted: String,
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Column index by name.
    pub by_name: HashMap<String, usize>,
    /// Primary-key columns (or the first unique key's), in key order.
    pub key: Vec<usize>,
}

/// One row of information_schema.COLUMNS, everything as text.
#[derive(Debug, Clone, Default)]
pub struct ColumnInfo {
    /// COLUMN_NAME.
    pub name: String,
    /// DATA_TYPE, lower case.
    pub data_type: String,
    /// COLUMN_TYPE, lower case (e.g. `tinyint(1)`, `int(10) unsigned`).
    pub column_type: String,
    /// IS_NULLABLE = YES.
    pub nullable: bool,
    /// COLUMN_DEFAULT is not NULL.
    pub has_default: bool,
    /// CHARACTER_MAXIMUM_LENGTH.
    pub max_chars: Option<u64>,
    /// CHARACTER_OCTET_LENGTH.
    pub max_bytes: Option<u64>,
    /// NUMERIC_PRECISION.
    pub precision: Option<u32>,
    /// NUMERIC_SCALE.
    pub scale: Option<u32>,
    /// EXTRA (auto_increment, VIRTUAL GENERATED …).
    pub extra: String,
    /// COLUMN_KEY (PRI, UNI …).
    pub key: String,
    /// A CHECK constraint makes it JSON (MariaDB).
    pub json_check: bool,
}

fn int_range(data_type: &str, unsigned: bool) -> Option<(i128, i128)> {
    let bits = match data_type {
        "tinyint" => 8,
        "smallint" => 16,
        "mediumint" => 24,
        "int" | "integer" => 32,
        "bigint" => 64,
        _ => return None,
    };
    Some(if unsigned {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    })
}

impl Column {
    /// Classifies a column from its information_schema row.
    pub fn from_info(c: &ColumnInfo) -> Column {
        let unsigned = c.column_type.contains("unsigned");
        let kind = match c.data_type.as_str() {
            "tinyint" if c.column_type.starts_with("tinyint(1)") => Kind::Bool,
            "bit" if c.column_type == "bit(1)" => Kind::Bool,
            "boolean" | "bool" => Kind::Bool,
            t if int_range(t, unsigned).is_some() => {
                let (min, max) = int_range(t, unsigned).expect("checked");
                Kind::Int { min, max }
            }
            "decimal" | "numeric" => Kind::Decimal {
                precision: c.precision.unwrap_or(10),
                scale: c.scale.unwrap_or(0),
            },
            "float" | "double" | "real" => Kind::Float,
            "date" => Kind::Date,
            "datetime" | "timestamp" => Kind::DateTime,
            "json" => Kind::Json,
            "longtext" if c.json_check => Kind::Json,
            "char" | "varchar" => Kind::Text {
                max_chars: c.max_chars,
                max_bytes: None,
            },
            "tinytext" | "text" | "mediumtext" | "longtext" => Kind::Text {
                max_chars: None,
                max_bytes: c.max_bytes,
            },
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                Kind::Binary {
                    max_bytes: c.max_bytes,
                }
            }
            _ => Kind::Other,
        };
        let auto_increment = c.extra.contains("auto_increment");
        let generated = c.extra.contains("generated");
        Column {
            name: c.name.clone(),
            kind,
            nullable: c.nullable,
            fills_itself: c.has_default || c.nullable || auto_increment || generated,
            auto_increment,
        }
    }

    /// Converts a record value for this column, or says why it does not fit.
    pub fn convert(&self, v: &Value) -> Result<MyValue, String> {
        // An empty CSV field means "no value" for every non-text column.
        let empty_text = matches!(v, Value::Str(s) if s.is_empty());
        let is_text = matches!(
            self.kind,
            Kind::Text { .. } | Kind::Binary { .. } | Kind::Other
        );
        if matches!(v, Value::Null | Value::Json(serde_json::Value::Null))
            || (empty_text && !is_text)
        {
            return if self.nullable || self.auto_increment {
                Ok(MyValue::NULL)
            } else {
                Err("no value for a NOT NULL column".into())
            };
        }
        match &self.kind {
            Kind::Int { min, max } => {
                let i = to_integer(v)?;
                if i < *min || i > *max {
                    return Err(format!("{i} is out of range ({min} to {max})"));
                }
                Ok(if i < 0 {
                    MyValue::Int(i as i64)
                } else {
                    MyValue::UInt(i as u64)
                })
            }
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
            Kind::Date => {
                let d = to_datetime(v)?;
                if d.time() != chrono::NaiveTime::MIN {
                    return Err(format!(
                        "{} has a time of day; the column is a DATE",
                        text_of(v)
                    ));
                }
                Ok(MyValue::Bytes(
                    d.format("%Y-%m-%d").to_string().into_bytes(),
                ))
            }
            Kind::DateTime => {
                let d = to_datetime(v)?;
                let fmt = if d.nanosecond() == 0 {
                    "%Y-%m-%d %H:%M:%S"
                } else {
                    "%Y-%m-%d %H:%M:%S%.6f"
                };
                Ok(MyValue::Bytes(d.format(fmt).to_string().into_bytes()))
            }
            Kind::Json => {
                let text = match v {
                    Value::Str(s) => {
                        serde_json::from_str::<serde_json::Value>(s)
                            .map_err(|e| format!("not valid JSON: {e}"))?;
                        s.clone()
                    }
                    other => other.to_json().to_string(),
                };
                Ok(MyValue::Bytes(text.into_bytes()))
            }
            Kind::Text {
                max_chars,
                max_bytes,
            } => {
                let s = text_of(v);
                if let Some(max) = max_chars {
                    let n = s.chars().count() as u64;
                    if n > *max {
                        return Err(format!("too long: {n} characters, the column holds {max}"));
                    }
                }
                check_bytes(&s, *max_bytes)?;
                Ok(MyValue::Bytes(s.into_bytes()))
            }
            Kind::Binary { max_bytes } => {
                let s = text_of(v);
                check_bytes(&s, *max_bytes)?;
                Ok(MyValue::Bytes(s.into_bytes()))
            }
            Kind::Other => Ok(MyValue::Bytes(text_of(v).into_bytes())),
        }
    }
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

/// The value as text (how it is written to a text column).
pub fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Decimal(d) => d.clone(),
        Value::Float(f) => f.to_string(),
        Value::Str(s) => s.clone(),
        Value::Json(serde_json::Value::String(s)) => s.clone(),
        Value::Json(j) => j.to_string(),
    }
}

fn to_integer(v: &Value) -> Result<i128, String> {
    match v {
        Value::Int(i) => Ok(i128::from(*i)),
        Value::Bool(b) => Ok(i128::from(*b)),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e38 => Ok(*f as i128),
        Value::Json(serde_json::Value::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| format!("{n} is not a whole number")),
        other => {
            let s = text_of(other);
            s.parse::<i128>()
                .map_err(|_| format!("'{s}' is not a whole number"))
        }
    }
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
        Value::Float(f) => *f,
        Value::Int(i) => *i as f64,
        other => {
            let s = text_of(other);
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

fn number_text(v: &Value) -> Result<String, String> {
    match v {
        Value::Bool(b) => Ok(u8::from(*b).to_string()),
        Value::Float(f) if f.is_finite() => Ok(f.to_string()),
        other => Ok(text_of(other)),
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
fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
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

fn to_datetime(v: &Value) -> Result<NaiveDateTime, String> {
    let s = text_of(v);
    parse_datetime(&s).ok_or_else(|| format!("'{s}' is not an ISO 8601 date or date-time"))
}

/// What the values of one field look like, for `--create-table`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    Nothing,
    Int,
    Decimal { int: u32, frac: u32 },
    Float,
    Bool,
    Date,
    DateTime,
    Json,
    Text { chars: u64 },
}

fn classify(v: &Value) -> Seen {
    match v {
        Value::Null | Value::Json(serde_json::Value::Null) => Seen::Nothing,
        Value::Bool(_) | Value::Json(serde_json::Value::Bool(_)) => Seen::Bool,
        Value::Int(_) => Seen::Int,
        Value::Float(_) => Seen::Float,
        Value::Decimal(d) => decimal_shape(d).unwrap_or(Seen::Float),
        Value::Json(serde_json::Value::Number(n)) => {
            if n.is_f64() {
                Seen::Float
            } else {
                Seen::Int
            }
        }
        Value::Json(serde_json::Value::String(s)) | Value::Str(s) => classify_text(s),
        Value::Json(_) => Seen::Json,
    }
}

fn decimal_shape(d: &str) -> Option<Seen> {
    let digits = d.strip_prefix('-').unwrap_or(d);
    let (int, frac) = digits.split_once('.')?;
    Some(Seen::Decimal {
        int: int.len() as u32,
        frac: frac.len() as u32,
    })
}

fn classify_text(s: &str) -> Seen {
    if s.is_empty() {
        return Seen::Nothing;
    }
    match Value::infer(s.to_string()) {
        Value::Int(_) => return Seen::Int,
        Value::Decimal(d) => return decimal_shape(&d).unwrap_or(Seen::Text { chars: 65 }),
        Value::Bool(_) => return Seen::Bool,
        _ => {}
    }
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        if s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
            return Seen::Date;
        }
        if parse_datetime(s).is_some() {
            return Seen::DateTime;
        }
    }
    Seen::Text {
        chars: s.chars().count() as u64,
    }
}

fn merge(a: Seen, b: Seen) -> Seen {
    use Seen::*;
    match (a, b) {
        (Nothing, x) | (x, Nothing) => x,
        (x, y) if x == y => x,
        (Int, Decimal { int, frac }) | (Decimal { int, frac }, Int) => Decimal {
            int: int.max(19),
            frac,
        },
        (Decimal { int: i1, frac: f1 }, Decimal { int: i2, frac: f2 }) => Decimal {
            int: i1.max(i2),
            frac: f1.max(f2),
        },
        (Int | Decimal { .. } | Float, Int | Decimal { .. } | Float) => Float,
        (Date, DateTime) | (DateTime, Date) => DateTime,
        (Text { chars: a }, Text { chars: b }) => Text { chars: a.max(b) },
        (Text { chars }, _) | (_, Text { chars }) => Text {
            chars: chars.max(64),
        },
        _ => Text { chars: 255 },
    }
}

fn sql_type(seen: Seen, is_key: bool) -> String {
    match seen {
        Seen::Int => "BIGINT".into(),
        Seen::Decimal { int, frac } => {
            // Room to spare: later batches may hold larger values.
            let scale = (frac + 2).min(30);
            let precision = (int + 10 + scale).min(65);
            format!("DECIMAL({precision},{scale})")
        }
        Seen::Float => "DOUBLE".into(),
        Seen::Bool => "BOOLEAN".into(),
        Seen::Date => "DATE".into(),
        Seen::DateTime => "DATETIME(6)".into(),
        Seen::Json if !is_key => "JSON".into(),
        Seen::Text { chars } if is_key || chars <= 64 => {
            format!("VARCHAR({})", chars.clamp(255, 768))
        }
        // MEDIUMTEXT (16 MiB): later batches may hold longer text than the first.
        Seen::Json | Seen::Text { .. } | Seen::Nothing => {
            if is_key {
                "VARCHAR(255)".into()
            } else {
                "MEDIUMTEXT".into()
            }
        }
    }
}

/// The CREATE TABLE statement `--create-table` runs: one column per field of
/// the batch (in order of first appearance), types inferred from the values,
/// `key` as the primary key, utf8mb4 with a binary collation so keys compare
/// exactly as the source wrote them.
pub fn create_table_ddl(
    database: &str,
    table: &str,
    key: &[String],
    batch: &[Record],
) -> Result<String, String> {
    let mut names: Vec<String> = Vec::new();
    let mut seen: Vec<Seen> = Vec::new();
    for r in batch {
        for (name, v) in r.schema.names().iter().zip(&r.values) {
            let i = match names.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    names.push(name.clone());
                    seen.push(Seen::Nothing);
                    names.len() - 1
                }
            };
            seen[i] = merge(seen[i], classify(v));
        }
    }
    for k in key {
        if !names.contains(k) {
            return Err(format!(
                "--db-key column '{k}' is not a field of the records (fields: {})",
                names.join(", ")
            ));
        }
    }
    let mut cols: Vec<String> = names
        .iter()
        .zip(&seen)
        .map(|(n, s)| {
            let is_key = key.contains(n);
            format!(
                "{} {}{}",
                quote_ident(n),
                sql_type(*s, is_key),
                if is_key { " NOT NULL" } else { " NULL" }
            )
        })
        .collect();
    if !key.is_empty() {
        cols.push(format!(
            "PRIMARY KEY ({})",
            key.iter()
                .map(|k| quote_ident(k))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {}.{} ({}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        quote_ident(database),
        quote_ident(table),
        cols.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn col(kind: Kind, nullable: bool) -> Column {
        Column {
            name: "c".into(),
            kind,
            nullable,
            fills_itself: nullable,
            auto_increment: false,
        }
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
        assert!(c.convert(&Value::Str("1e3".into())).is_err());
        assert_eq!(c.convert(&Value::Str(String::new())), Ok(MyValue::NULL));
    }

    #[test]
    fn dates_and_times_from_iso_8601() {
        let dt = col(Kind::DateTime, true);
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
    fn create_table_infers_types_from_a_batch() {
        let schema = Arc::new(crate::record::Schema::new(
            ["id", "amount", "when", "ok", "name", "doc"]
                .map(String::from)
                .to_vec(),
        ));
        let rec = |vals: [Value; 6]| Record {
            schema: schema.clone(),
            values: vals.to_vec(),
            position: 1,
        };
        let batch = vec![
            rec([
                Value::Str("1".into()),
                Value::Str("12.50".into()),
                Value::Str("2026-01-03T10:15:00Z".into()),
                Value::Str("true".into()),
                Value::Str("Ann".into()),
                Value::Json(serde_json::json!({"a": 1})),
            ]),
            rec([
                Value::Str("2".into()),
                Value::Str("7".into()),
                Value::Str("2026-01-04".into()),
                Value::Str("false".into()),
                Value::Str(String::new()),
                Value::Null,
            ]),
        ];
        let ddl = create_table_ddl("test", "t", &["id".into()], &batch).unwrap();
        assert_eq!(
            ddl,
            "CREATE TABLE IF NOT EXISTS `test`.`t` (`id` BIGINT NOT NULL, `amount` DECIMAL(33,4) NULL, \
             `when` DATETIME(6) NULL, `ok` BOOLEAN NULL, `name` VARCHAR(255) NULL, `doc` JSON NULL, \
             PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        );
        assert!(create_table_ddl("test", "t", &["nope".into()], &batch).is_err());
    }
}
