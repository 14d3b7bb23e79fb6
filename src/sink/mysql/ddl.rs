//! The CREATE TABLE statement `--create-table` infers from a batch. Types
//! never lose data: integers beyond 64 bits are DECIMAL(65,0) (or text past
//! 65 digits), codes with leading zeros are text, and a column whose values
//! disagree widens (integer -> decimal -> double -> text).

use chrono::NaiveDate;

use crate::record::{Record, Value};

use super::convert::parse_datetime;
use super::names::{assign, comment_for};
use super::table::{quote_ident, Column, Kind};

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
        Value::Raw(_) => classify(&v.typed()),
    }
}

/// The shape of a number's exact text: digits before and after the point
/// (an integer too large for 64 bits has no fraction); `None` for a number
/// with an exponent, which only a DOUBLE is sure to hold.
fn decimal_shape(d: &str) -> Option<Seen> {
    let digits = d.trim_start_matches(['-', '+']);
    if digits.contains(['e', 'E']) {
        return None;
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    Some(Seen::Decimal {
        int: int.trim_start_matches('0').len().max(1) as u32,
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

/// The DECIMAL scale for values with `frac` digits after the point: the
/// next of 2, 4, 6, 9, 12, 18, 30.
fn scale_for(frac: u32) -> u32 {
    [2, 4, 6, 9, 12, 18, 30]
        .into_iter()
        .find(|&s| s >= frac)
        .unwrap_or(30)
}

fn sql_type(seen: Seen, is_key: bool) -> String {
    match seen {
        Seen::Int => "BIGINT".into(),
        // Whole numbers beyond 64 bits: exact, with all the room there is.
        Seen::Decimal { int, frac: 0 } if int <= 65 => "DECIMAL(65,0)".into(),
        Seen::Decimal { int, frac } if frac <= 30 && int + scale_for(frac) <= 65 => {
            // Fixed steps, so similar data always gives the same type, with
            // room for larger values than the sample held.
            let scale = scale_for(frac);
            let precision = if int + scale <= 38 { 38 } else { 65 };
            format!("DECIMAL({precision},{scale})")
        }
        // More digits than any DECIMAL holds: kept exactly, as text.
        Seen::Decimal { .. } if is_key => "VARCHAR(255)".into(),
        Seen::Decimal { .. } => "MEDIUMTEXT".into(),
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

/// Elasticsearch's document id (`--es-meta-fields`): a string, whatever it
/// looks like.
const ID_FIELD: &str = "_id";

/// An `_id` value: text of its length, even when it looks like a number.
fn id_seen(v: &Value) -> Seen {
    match v {
        Value::Null | Value::Json(serde_json::Value::Null) => Seen::Nothing,
        v => Seen::Text {
            chars: super::convert::text_of(v).chars().count() as u64,
        },
    }
}

/// The column type of `_id`: VARCHAR with room for twice the longest id of
/// the sample (at least 255 characters, at most 768, which a key can hold).
fn id_type(seen: Seen) -> String {
    let chars = match seen {
        Seen::Text { chars } => chars,
        _ => 0,
    };
    format!("VARCHAR({})", (chars * 2).clamp(255, 768))
}

/// What the values of each field look like, from records seen one at a
/// time: fields in order of first appearance. Holds no record.
#[derive(Debug, Default)]
pub struct Inference {
    names: Vec<String>,
    seen: Vec<Seen>,
    index: std::collections::HashMap<String, usize>,
    records: u64,
}

impl Inference {
    /// Takes one record into account.
    pub fn add(&mut self, r: &Record) {
        self.records += 1;
        for (name, v) in r.schema.names().iter().zip(&r.values) {
            let i = match self.index.get(name.as_str()) {
                Some(&i) => i,
                None => {
                    self.names.push(name.clone());
                    self.seen.push(Seen::Nothing);
                    self.index.insert(name.clone(), self.names.len() - 1);
                    self.names.len() - 1
                }
            };
            let seen = if name == ID_FIELD {
                id_seen(v)
            } else {
                classify(v)
            };
            self.seen[i] = merge(self.seen[i], seen);
        }
    }

    /// Records taken into account.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn of(batch: &[Record]) -> Inference {
        let mut inf = Inference::default();
        for r in batch {
            inf.add(r);
        }
        inf
    }
}

/// The column types `--add-columns` gives the fields `wanted`, inferred
/// from the batch.
pub fn column_types(batch: &[Record], wanted: &[String]) -> Vec<(String, String)> {
    let inf = Inference::of(batch);
    inf.names
        .into_iter()
        .zip(inf.seen)
        .filter(|(n, _)| wanted.contains(n))
        .map(|(n, s)| {
            let t = if n == ID_FIELD {
                id_type(s)
            } else {
                sql_type(s, false)
            };
            (n, t)
        })
        .collect()
}

/// Whether a value is one at all (not null, not an empty CSV field): only
/// a value can call for a wider column.
pub fn is_value(v: &Value) -> bool {
    classify(v) != Seen::Nothing
}

/// A column's type as the inference sees it: what its values look like at
/// most. `None` for the types pipeline-cli never widens (JSON, TIME,
/// binary, ENUM …).
fn seen_of(kind: &Kind) -> Option<Seen> {
    Some(match *kind {
        Kind::Int { min, max } if min >= i128::from(i64::MIN) && max <= i128::from(i64::MAX) => {
            Seen::Int
        }
        Kind::Int { max, .. } => Seen::Decimal {
            int: max.to_string().len() as u32,
            frac: 0,
        },
        Kind::Decimal { precision, scale } => Seen::Decimal {
            int: precision.saturating_sub(scale).max(1),
            frac: scale,
        },
        Kind::Float => Seen::Float,
        Kind::Bool => Seen::Bool,
        Kind::Date => Seen::Date,
        Kind::DateTime { .. } => Seen::DateTime,
        // A TEXT type's size is kept by `text_type`.
        Kind::Text { max_chars, .. } => Seen::Text {
            chars: max_chars.unwrap_or(0),
        },
        Kind::Json | Kind::Time { .. } | Kind::Binary { .. } | Kind::Other => return None,
    })
}

/// The text type for values of up to `chars` characters, with room for
/// twice as many: VARCHAR up to 768 characters (what a key can hold), then
/// TEXT, MEDIUMTEXT, LONGTEXT by their size in bytes (4 a character), never
/// smaller than the TEXT type `old` already is.
fn text_type(chars: u64, old: &Kind, is_key: bool) -> Result<String, String> {
    let want = chars.saturating_mul(2);
    if is_key {
        if chars > 768 {
            return Err(format!(
                "a key column holds at most 768 characters (the index limit of 3072 bytes), the value has {chars}"
            ));
        }
        return Ok(format!("VARCHAR({})", want.clamp(255, 768)));
    }
    let old_bytes = match old {
        Kind::Text {
            max_chars: None,
            max_bytes: Some(b),
        } => *b,
        _ => 0,
    };
    if want <= 768 && old_bytes == 0 {
        return Ok(format!("VARCHAR({})", want.clamp(255, 768)));
    }
    Ok(match want.saturating_mul(4).max(old_bytes) {
        0..=65_535 => "TEXT",
        65_536..=16_777_215 => "MEDIUMTEXT",
        _ => "LONGTEXT",
    }
    .into())
}

/// `sql_type` as the server writes it, for comparing: lower case, an
/// integer's display width left out (`bigint(20)` is `bigint`).
fn canonical(sql_type: &str) -> String {
    let t = sql_type.trim().to_ascii_lowercase();
    match t.split_once('(') {
        Some((base, rest)) if base.ends_with("int") => {
            let after = rest.split_once(')').map_or("", |(_, a)| a);
            format!("{base}{after}")
        }
        _ => t,
    }
}

/// The column type that holds both what `column` holds and `values`, by
/// the inference of `--create-table` (integer -> decimal -> double -> text,
/// DATE -> DATETIME(6), text sized with room to spare): never narrower than
/// the column. `Err` says why the column cannot be widened for them.
pub fn widened_type<'a>(
    column: &Column,
    values: impl Iterator<Item = &'a Value>,
    is_key: bool,
    field: &str,
) -> Result<String, String> {
    let start = seen_of(&column.kind)
        .ok_or_else(|| format!("pipeline-cli does not widen {} columns", column.sql_type))?;
    let mut seen = start;
    let mut longest = 0;
    for v in values {
        let one = if field == ID_FIELD {
            id_seen(v)
        } else {
            classify(v)
        };
        seen = merge(seen, one);
        longest = longest.max(super::convert::text_of(v).chars().count() as u64);
    }
    let new = match seen {
        // As text, a value is as long as it is, whatever it looks like.
        Seen::Text { chars } => text_type(chars.max(longest), &column.kind, is_key)?,
        Seen::DateTime if column.sql_type.starts_with("timestamp") => "TIMESTAMP(6)".into(),
        s => sql_type(s, is_key),
    };
    if canonical(&new) == canonical(&column.sql_type) {
        return Err(format!(
            "{} is as wide as pipeline-cli makes such a column",
            column.sql_type
        ));
    }
    Ok(new)
}

/// A field `--date-format` names, and the unit of its epoch times.
type EpochField = (String, crate::config::EpochUnit);

/// One column `--create-table` makes.
#[derive(Debug, Clone)]
pub struct PlannedColumn {
    /// The field it holds.
    pub field: String,
    /// Its name (see [`assign`]).
    pub column: String,
    /// Its SQL type, as written in the DDL.
    pub sql_type: String,
    /// Part of the primary key (NOT NULL).
    pub key: bool,
}

/// The columns `--create-table` makes: one per field seen (in order of
/// first appearance), named as [`assign`] says, types inferred from the
/// values; a field `--date-format` names holds epoch times: DATETIME(6).
pub fn planned_columns(
    key: &[String],
    (renames, epochs): (&[(String, String)], &[EpochField]),
    inference: &Inference,
) -> Result<Vec<PlannedColumn>, String> {
    let (names, seen) = (&inference.names, &inference.seen);
    for k in key {
        if !names.contains(k) {
            return Err(format!(
                "--db-key column '{k}' is not a field of the records (fields: {})",
                names.join(", ")
            ));
        }
    }
    let columns = assign(names, renames, &mut Default::default());
    Ok(names
        .iter()
        .zip(seen)
        .zip(columns)
        .map(|((n, s), column)| {
            let is_key = key.contains(n);
            let sql_type = if n == ID_FIELD {
                id_type(*s)
            } else if epochs.iter().any(|(f, _)| f == n) {
                sql_type(Seen::DateTime, is_key)
            } else {
                sql_type(*s, is_key)
            };
            PlannedColumn {
                field: n.clone(),
                column,
                sql_type,
                key: is_key,
            }
        })
        .collect())
}

/// The CREATE TABLE statement `--create-table` runs: the
/// [`planned_columns`] (a column named otherwise than its field records the
/// field in its COMMENT), the fields `key` as the primary key, utf8mb4 with
/// a binary collation so keys compare exactly as the source wrote them.
/// Also returns each field with its column.
pub fn create_table_ddl(
    database: &str,
    table: &str,
    key: &[String],
    names: (&[(String, String)], &[EpochField]),
    inference: &Inference,
) -> Result<(String, Vec<(String, String)>), String> {
    let planned = planned_columns(key, names, inference)?;
    let mut cols: Vec<String> = planned
        .iter()
        .map(|p| {
            format!(
                "{} {}{}{}",
                quote_ident(&p.column),
                p.sql_type,
                if p.key { " NOT NULL" } else { " NULL" },
                comment_for(&p.field, &p.column)
            )
        })
        .collect();
    if !key.is_empty() {
        let key_columns: Vec<String> = key
            .iter()
            .filter_map(|k| planned.iter().find(|p| &p.field == k))
            .map(|p| quote_ident(&p.column))
            .collect();
        cols.push(format!("PRIMARY KEY ({})", key_columns.join(", ")));
    }
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {}.{} ({}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='{}'",
        quote_ident(database),
        quote_ident(table),
        cols.join(", "),
        super::table::MADE_BY
    );
    Ok((
        ddl,
        planned.into_iter().map(|p| (p.field, p.column)).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        let ddl = create_table_ddl(
            "test",
            "t",
            &["id".into()],
            (&[], &[]),
            &Inference::of(&batch),
        )
        .unwrap()
        .0;
        assert_eq!(
            ddl,
            "CREATE TABLE IF NOT EXISTS `test`.`t` (`id` BIGINT NOT NULL, `amount` DECIMAL(38,2) NULL, \
             `when` DATETIME(6) NULL, `ok` BOOLEAN NULL, `name` VARCHAR(255) NULL, `doc` JSON NULL, \
             PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='made by pipeline-cli --create-table'"
        );
        assert!(create_table_ddl(
            "test",
            "t",
            &["nope".into()],
            (&[], &[]),
            &Inference::of(&batch)
        )
        .is_err());
    }

    #[test]
    fn similar_data_gives_the_same_types_and_a_stray_value_widens() {
        let schema = Arc::new(crate::record::Schema::new(vec!["n".into(), "code".into()]));
        let ddl_of = |rows: &[(&str, &str)]| {
            let mut inf = Inference::default();
            for (n, code) in rows {
                inf.add(&Record {
                    schema: schema.clone(),
                    values: vec![Value::Str(n.to_string()), Value::Str(code.to_string())],
                    position: 0,
                });
            }
            create_table_ddl("d", "t", &[], (&[], &[]), &inf).unwrap().0
        };
        let a = ddl_of(&[("1.5", "12"), ("22.75", "13")]);
        let b = ddl_of(&[("3.125", "99"), ("100.1", "7")]);
        assert!(a.contains("`n` DECIMAL(38,2)"), "{a}");
        assert!(b.contains("`n` DECIMAL(38,4)"), "{b}");
        assert!(a.contains("`code` BIGINT"), "{a}");
        // `A12` among numbers: text, never a number column that rejects it.
        let c = ddl_of(&[("1", "12"), ("2", "A12"), ("3", "14")]);
        assert!(c.contains("`code` VARCHAR(255)"), "{c}");
        // A long note far into the sample: MEDIUMTEXT, not VARCHAR.
        let note = "x".repeat(300);
        let d = ddl_of(&[("1", "a"), ("2", &note)]);
        assert!(d.contains("`code` MEDIUMTEXT"), "{d}");
    }

    #[test]
    fn big_integers_and_codes_keep_every_digit() {
        let schema = Arc::new(crate::record::Schema::new(vec![
            "id".into(),
            "zip".into(),
            "huge".into(),
        ]));
        let rec = |id: &str, zip: &str, huge: &str| Record {
            schema: schema.clone(),
            values: vec![
                Value::infer(id.into()),
                Value::infer(zip.into()),
                Value::infer(huge.into()),
            ],
            position: 1,
        };
        let batch = [
            rec("123456789012345678901234", "12345", &"9".repeat(70)),
            rec("123456789012345678901235", "00151", "1"),
        ];
        let ddl = create_table_ddl("d", "t", &["id".into()], (&[], &[]), &Inference::of(&batch))
            .unwrap()
            .0;
        assert!(ddl.contains("`id` DECIMAL(65,0) NOT NULL"), "{ddl}");
        assert!(ddl.contains("`zip` VARCHAR("), "{ddl}");
        assert!(ddl.contains("`huge` MEDIUMTEXT"), "{ddl}");
    }

    #[test]
    fn ids_are_text_and_names_are_mapped_with_their_field_in_the_comment() {
        let long = "n".repeat(70);
        let schema = Arc::new(crate::record::Schema::new(vec![
            "_id".into(),
            "@timestamp".into(),
            long.clone(),
            "x ".into(),
        ]));
        let rec = |id: &str| Record {
            schema: schema.clone(),
            values: vec![
                Value::infer(id.into()),
                Value::Str("2026-01-03T10:15:00Z".into()),
                Value::Int(1),
                Value::Int(2),
            ],
            position: 1,
        };
        let inf = Inference::of(&[rec("12"), rec("13")]);
        let renames = [("x ".to_string(), "ex".to_string())];
        let (ddl, mapped) =
            create_table_ddl("d", "t", &["_id".into()], (&renames, &[]), &inf).unwrap();
        assert!(ddl.contains("`_id` VARCHAR(255) NOT NULL"), "{ddl}");
        assert!(ddl.contains("`@timestamp` DATETIME(6) NULL,"), "{ddl}");
        let col = super::super::names::base_column(&long);
        assert!(
            ddl.contains(&format!(
                "`{col}` BIGINT NULL COMMENT 'pipeline-cli field: {long}'"
            )),
            "{ddl}"
        );
        assert!(
            ddl.contains("`ex` BIGINT NULL COMMENT 'pipeline-cli field: x '"),
            "{ddl}"
        );
        assert_eq!(mapped[3], ("x ".to_string(), "ex".to_string()));
        // A long id: room for twice its length.
        let inf = Inference::of(&[rec(&"7".repeat(200))]);
        let (ddl, _) = create_table_ddl("d", "t", &[], (&[], &[]), &inf).unwrap();
        assert!(ddl.contains("`_id` VARCHAR(400) NULL"), "{ddl}");
    }

    #[test]
    fn a_column_widens_to_hold_both_its_values_and_the_new_one_never_narrower() {
        use super::super::table::ColumnInfo;
        let column = |data_type: &str, column_type: &str, chars: Option<u64>, ps: (u32, u32)| {
            Column::from_info(&ColumnInfo {
                name: "c".into(),
                data_type: data_type.into(),
                column_type: column_type.into(),
                nullable: true,
                max_chars: chars,
                max_bytes: chars.map(|c| {
                    if data_type.ends_with("text") {
                        c
                    } else {
                        c * 4
                    }
                }),
                precision: Some(ps.0),
                scale: Some(ps.1),
                ..Default::default()
            })
        };
        let varchar = |n: u64| column("varchar", &format!("varchar({n})"), Some(n), (0, 0));
        let text = |t: &str, bytes: u64| {
            Column::from_info(&ColumnInfo {
                name: "c".into(),
                data_type: t.into(),
                column_type: t.into(),
                max_bytes: Some(bytes),
                ..Default::default()
            })
        };
        let s = |t: &str| Value::Str(t.to_string());
        let long = |n: usize| s(&"x".repeat(n));
        // (column, value, key, the type it widens to or a word of why not)
        let cases: Vec<(Column, Value, bool, Result<&str, &str>)> = vec![
            (varchar(10), long(37), false, Ok("VARCHAR(255)")),
            (varchar(255), long(300), false, Ok("VARCHAR(600)")),
            (varchar(700), long(800), false, Ok("TEXT")),
            (varchar(255), long(300), true, Ok("VARCHAR(600)")),
            (varchar(700), long(800), true, Err("768 characters")),
            (text("text", 65_535), long(70_000), false, Ok("MEDIUMTEXT")),
            (
                text("mediumtext", 16_777_215),
                long(20),
                false,
                Err("as wide"),
            ),
            (
                text("mediumtext", 16_777_215),
                long(5_000_000),
                false,
                Ok("LONGTEXT"),
            ),
            (text("tinytext", 255), long(300), false, Ok("TEXT")),
            (varchar(100), s(&"9".repeat(150)), false, Ok("VARCHAR(300)")),
            (
                column("int", "int(11)", None, (10, 0)),
                s("3000000000"),
                false,
                Ok("BIGINT"),
            ),
            (
                column("int", "int(10) unsigned", None, (10, 0)),
                s("-1"),
                false,
                Ok("BIGINT"),
            ),
            (
                column("bigint", "bigint(20)", None, (19, 0)),
                s(&"9".repeat(20)),
                false,
                Ok("DECIMAL(65,0)"),
            ),
            (
                column("bigint", "bigint(20) unsigned", None, (20, 0)),
                s("-1"),
                false,
                Ok("DECIMAL(65,0)"),
            ),
            (
                column("bigint", "bigint(20)", None, (19, 0)),
                s("1.5"),
                false,
                Ok("DECIMAL(38,2)"),
            ),
            (
                column("bigint", "bigint(20)", None, (19, 0)),
                s("abc"),
                false,
                Ok("VARCHAR(255)"),
            ),
            (
                column("bigint", "bigint(20)", None, (19, 0)),
                Value::Decimal("1.5e-3".into()),
                false,
                Ok("DOUBLE"),
            ),
            (
                column("decimal", "decimal(38,2)", None, (38, 2)),
                s("1.12345"),
                false,
                Ok("DECIMAL(65,6)"),
            ),
            (
                column("decimal", "decimal(10,2)", None, (10, 2)),
                s("1.125"),
                false,
                Ok("DECIMAL(38,4)"),
            ),
            (
                column("decimal", "decimal(65,30)", None, (65, 30)),
                s("0.1234567890123456789012345678901"),
                false,
                Ok("MEDIUMTEXT"),
            ),
            (
                column("double", "double", None, (22, 0)),
                Value::Decimal("1e400".into()),
                false,
                Err("as wide"),
            ),
            (
                column("datetime", "datetime", None, (0, 0)),
                s("2026-01-02T03:04:05.123Z"),
                false,
                Ok("DATETIME(6)"),
            ),
            (
                column("timestamp", "timestamp(3)", None, (0, 0)),
                s("2026-01-02T03:04:05.1234Z"),
                false,
                Ok("TIMESTAMP(6)"),
            ),
            (
                column("datetime", "datetime(6)", None, (0, 0)),
                s("2026-01-02T03:04:05.1234567Z"),
                false,
                Err("as wide"),
            ),
            (
                column("date", "date", None, (0, 0)),
                s("2026-01-02T03:04:05Z"),
                false,
                Ok("DATETIME(6)"),
            ),
            (
                column("json", "json", None, (0, 0)),
                s("{nope"),
                false,
                Err("does not widen"),
            ),
            (
                column("time", "time", None, (0, 0)),
                s("10:00:00.5"),
                false,
                Err("does not widen"),
            ),
        ];
        for (col, v, key, want) in cases {
            let got = widened_type(&col, std::iter::once(&v), key, "f");
            match (want, &got) {
                (Ok(t), Ok(g)) => assert_eq!(g, t, "{} + {v:?}", col.sql_type),
                (Err(w), Err(g)) => assert!(g.contains(w), "{} + {v:?}: {g}", col.sql_type),
                _ => panic!(
                    "{} + {v:?} (key {key}): {got:?}, want {want:?}",
                    col.sql_type
                ),
            }
        }
    }

    #[test]
    fn a_field_of_epoch_times_is_a_datetime_column() {
        let schema = Arc::new(crate::record::Schema::new(vec![
            "id".into(),
            "at".into(),
            "n".into(),
        ]));
        let batch = vec![Record {
            schema,
            values: vec![
                Value::Int(1),
                Value::Int(1_700_000_000_123),
                Value::Int(1_700_000_000_123),
            ],
            position: 1,
        }];
        let epochs = [("at".to_string(), crate::config::EpochUnit::Millis)];
        let (ddl, _) =
            create_table_ddl("d", "t", &[], (&[], &epochs), &Inference::of(&batch)).unwrap();
        assert!(ddl.contains("`at` DATETIME(6) NULL"), "{ddl}");
        assert!(ddl.contains("`n` BIGINT NULL"), "{ddl}");
    }
}
