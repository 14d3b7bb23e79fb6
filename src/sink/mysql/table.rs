//! What the MySQL sink knows about its table: the columns read from
//! information_schema and the kind of value each takes. Converting values
//! is in `convert.rs`, the DDL of `--create-table` in `ddl.rs`.

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
    /// DATETIME / TIMESTAMP (UTC on the session), with the digits of a
    /// second's fraction it keeps (0-6).
    DateTime {
        /// Fractional-second digits.
        fsp: u32,
    },
    /// TIME, with the digits of a second's fraction it keeps.
    Time {
        /// Fractional-second digits.
        fsp: u32,
    },
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
    /// Its SQL type as the server reports it (`int(11)`, `varchar(20)`).
    pub sql_type: String,
    /// How values are converted for it.
    pub kind: Kind,
    /// NULL allowed.
    pub nullable: bool,
    /// Filled by the server when a row leaves it out (a default, NULL, auto-increment, generated).
    pub fills_itself: bool,
    /// AUTO_INCREMENT.
    pub auto_increment: bool,
    /// NOT NULL with a default: a record without a value for it (a null, an
    /// empty CSV field) gets the default, as if the field were left out.
    pub default_on_null: bool,
}

/// The table as read from information_schema.
#[derive(Debug)]
pub struct Table {
    /// `db`.`table`, quoted.
    pub quoted: String,
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// For each column, the field name its COMMENT records (a column whose
    /// name differs from its field's, made by `--create-table` or
    /// `--add-columns`).
    pub fields: Vec<Option<String>>,
    /// Primary-key columns (or the first unique key's), in key order.
    pub key: Vec<usize>,
    /// `--create-table` made it (its table COMMENT is [`MADE_BY`]): with
    /// `--create-table`, each of its columns widens for a value.
    pub made: bool,
}

/// The table COMMENT `--create-table` writes.
pub const MADE_BY: &str = "made by pipeline-cli --create-table";

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
    /// COLUMN_COMMENT.
    pub comment: String,
}

/// Whether a field matches a column (both by index), in one pass of
/// [`Table::resolve`].
type Match<'a> = dyn Fn(usize, usize) -> bool + 'a;

impl Table {
    /// The column of each of `fields` (None: the table has none for it).
    /// A field renamed by `renames` goes only to its named column; the
    /// others, in this order: the column whose COMMENT records the field,
    /// the column of that exact name, the column of that name in another
    /// case (MySQL compares column names case-insensitively), the column of
    /// the legal name the field maps to. Two fields never get one column:
    /// the better match takes it.
    pub fn resolve(&self, fields: &[String], renames: &[(String, String)]) -> Vec<Option<usize>> {
        use super::names::{base_column, fold};
        let mut out: Vec<Option<usize>> = vec![None; fields.len()];
        let mut claimed = vec![false; self.columns.len()];
        let folded: Vec<String> = self.columns.iter().map(|c| fold(&c.name)).collect();
        // Per field: its --rename column (folded), its name folded, and its
        // mapped name folded.
        let renamed: Vec<Option<String>> = fields
            .iter()
            .map(|f| {
                renames
                    .iter()
                    .find(|(from, _)| from == f)
                    .map(|(_, to)| fold(to))
            })
            .collect();
        let field_folded: Vec<String> = fields.iter().map(|f| fold(f)).collect();
        let mapped: Vec<String> = fields.iter().map(|f| fold(&base_column(f))).collect();
        // Columns of fields this table's comments record are theirs only.
        let free = |i: usize, c: usize| renamed[i].is_none() && self.fields[c].is_none();
        let passes: [&Match; 5] = [
            &|i, c| renamed[i].as_ref() == Some(&folded[c]),
            &|i, c| renamed[i].is_none() && self.fields[c].as_ref() == Some(&fields[i]),
            &|i, c| free(i, c) && self.columns[c].name == fields[i],
            &|i, c| free(i, c) && folded[c] == field_folded[i],
            &|i, c| free(i, c) && folded[c] == mapped[i],
        ];
        for matches in passes {
            for (i, slot) in out.iter_mut().enumerate() {
                if slot.is_some() {
                    continue;
                }
                if let Some(c) = (0..self.columns.len()).find(|&c| !claimed[c] && matches(i, c)) {
                    claimed[c] = true;
                    *slot = Some(c);
                }
            }
        }
        out
    }

    /// The column of one field, as [`Table::resolve`] finds it alone.
    pub fn column_of(&self, field: &str, renames: &[(String, String)]) -> Option<usize> {
        self.resolve(std::slice::from_ref(&field.to_string()), renames)[0]
    }
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

/// The fractional-second digits of `datetime(3)`, `time(6)`; 0 for `time`.
fn fraction_digits(column_type: &str) -> u32 {
    column_type
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or(0)
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
            "datetime" | "timestamp" => Kind::DateTime {
                fsp: fraction_digits(&c.column_type),
            },
            "time" => Kind::Time {
                fsp: fraction_digits(&c.column_type),
            },
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
            sql_type: c.column_type.clone(),
            kind,
            nullable: c.nullable,
            fills_itself: c.has_default || c.nullable || auto_increment || generated,
            auto_increment,
            default_on_null: !c.nullable && c.has_default && !auto_increment && !generated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[(&str, Option<&str>)]) -> Table {
        Table {
            quoted: "`d`.`t`".into(),
            columns: columns
                .iter()
                .map(|(n, _)| {
                    Column::from_info(&ColumnInfo {
                        name: n.to_string(),
                        data_type: "int".into(),
                        ..Default::default()
                    })
                })
                .collect(),
            fields: columns.iter().map(|(_, f)| f.map(String::from)).collect(),
            key: vec![],
            made: false,
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fields_find_their_columns_and_never_share_one() {
        let long = "l".repeat(70);
        let t = table(&[
            ("id", None),
            ("trailing", Some("trailing ")),
            ("Name", None),
            ("ts", None),
            ("x", None),
        ]);
        type Renames = Vec<(String, String)>;
        let cases: Vec<(Vec<String>, Renames, Vec<Option<usize>>)> = vec![
            // Any case; the exact name first.
            (names(&["ID"]), vec![], vec![Some(0)]),
            (names(&["ID", "id"]), vec![], vec![None, Some(0)]),
            (names(&["name"]), vec![], vec![Some(2)]),
            // The comment is the field's; no other field takes it by name.
            (names(&["trailing "]), vec![], vec![Some(1)]),
            (names(&["trailing"]), vec![], vec![None]),
            // --rename goes to its column only.
            (
                names(&["@timestamp", "ts"]),
                vec![("@timestamp".into(), "TS".into())],
                vec![Some(3), None],
            ),
            // A name mapped to a legal one meets the column of that name.
            (names(&["x "]), vec![], vec![Some(4)]),
            (names(&["x ", "x"]), vec![], vec![None, Some(4)]),
            (names(&[&long]), vec![], vec![None]),
        ];
        for (fields, renames, want) in cases {
            assert_eq!(t.resolve(&fields, &renames), want, "{fields:?} {renames:?}");
        }
    }
}
