//! Field names -> column names. A MySQL/MariaDB column name is 1 to 64
//! characters of the Basic Multilingual Plane without NUL, does not end with
//! a space, and compares case-insensitively; anything else is allowed, as
//! the sink quotes every name with backticks (a backtick doubled). A field
//! name that is such a name is its column's name; any other gets a legal
//! one, deterministically: NUL and characters beyond the BMP become `_`,
//! trailing spaces go, an empty name is `_empty`, and a name longer than 64
//! characters keeps its first 55 followed by `_` and 8 hex digits of the
//! FNV-1a hash of the whole field name, so two long names that share their
//! first 64 characters never meet. Two fields never share a column: a
//! second one (compared case-insensitively) gets the hash suffix too.
//!
//! A column whose name differs from its field's records the field name in
//! its COMMENT ([`comment_for`]), and matching a table looks there first, so
//! a later run finds the same columns.

use std::collections::HashSet;

/// The most characters a column name may have.
pub(super) const MAX_CHARS: usize = 64;

/// Characters kept of a name that gets a hash suffix.
const STEM_CHARS: usize = 55;

/// The start of the COMMENT of a column whose name differs from its field's.
pub(super) const COMMENT_PREFIX: &str = "pipeline-cli field: ";

/// Why `name` cannot be a MySQL column name as it is, if it cannot.
pub(super) fn problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an empty name")
    } else if name.chars().count() > MAX_CHARS {
        Some("longer than 64 characters")
    } else if name.ends_with(' ') {
        Some("ends with a space")
    } else if name.contains('\0') {
        Some("contains a NUL character")
    } else if name.chars().any(|c| u32::from(c) > 0xFFFF) {
        Some("has a character outside the Basic Multilingual Plane")
    } else {
        None
    }
}

/// A column name as MySQL compares it (case-insensitively).
pub(super) fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// 8 hex digits of the 32-bit FNV-1a hash of `name`'s UTF-8 bytes.
pub(super) fn hash8(name: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// `stem` cut to its first 55 characters (no trailing space), then `_` and
/// the hash of `field`: at most 64 characters.
fn with_hash(stem: &str, field: &str) -> String {
    let cut: String = stem.chars().take(STEM_CHARS).collect();
    format!("{}_{}", cut.trim_end_matches(' '), hash8(field))
}

/// The column name `field` gets on its own: itself when MySQL takes it,
/// else a legal one derived from it.
pub(super) fn base_column(field: &str) -> String {
    if problem(field).is_none() {
        return field.to_string();
    }
    let cleaned: String = field
        .chars()
        .map(|c| {
            if c == '\0' || u32::from(c) > 0xFFFF {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim_end_matches(' ');
    if cleaned.is_empty() {
        "_empty".into()
    } else if cleaned.chars().count() > MAX_CHARS {
        with_hash(cleaned, field)
    } else {
        cleaned.to_string()
    }
}

/// A column name for `field` that `taken` (folded names) does not hold:
/// its base name, else the base name with the field's hash.
pub(super) fn unique_column(field: &str, taken: &HashSet<String>) -> String {
    let base = base_column(field);
    if !taken.contains(&fold(&base)) {
        return base;
    }
    let hashed = with_hash(&base, field);
    if !taken.contains(&fold(&hashed)) {
        return hashed;
    }
    (2u32..)
        .map(|n| with_hash(&base, &format!("{field}\0{n}")))
        .find(|c| !taken.contains(&fold(c)))
        .expect("some suffix is free")
}

/// The columns of new `fields` (in their order), none on a name `taken`
/// holds (folded; extended with the names given) and no two on one: a
/// renamed field gets its `--rename` column, a field MySQL takes as a name
/// keeps it (claimed before the derived names, so field `a` keeps `a` even
/// after `a ` came first), the others get [`unique_column`].
pub(super) fn assign(
    fields: &[String],
    renames: &[(String, String)],
    taken: &mut HashSet<String>,
) -> Vec<String> {
    let renamed = |f: &str| renames.iter().find(|(from, _)| from == f).map(|(_, to)| to);
    let mut out: Vec<Option<String>> = vec![None; fields.len()];
    for (i, f) in fields.iter().enumerate() {
        if let Some(to) = renamed(f) {
            taken.insert(fold(to));
            out[i] = Some(to.clone());
        }
    }
    for (i, f) in fields.iter().enumerate() {
        if out[i].is_none() && problem(f).is_none() && taken.insert(fold(f)) {
            out[i] = Some(f.clone());
        }
    }
    fields
        .iter()
        .zip(out)
        .map(|(f, c)| {
            c.unwrap_or_else(|| {
                let c = unique_column(f, taken);
                taken.insert(fold(&c));
                c
            })
        })
        .collect()
}

/// The longest column COMMENT MySQL and MariaDB keep, in characters.
const MAX_COMMENT_CHARS: usize = 1024;

/// ` COMMENT '…'` recording `field` on its column when the column's name
/// differs; empty when it does not, or when the field name is too long for
/// a comment (its column, derived from the name alone, is found again by
/// that name).
pub(super) fn comment_for(field: &str, column: &str) -> String {
    if field == column || COMMENT_PREFIX.len() + field.chars().count() > MAX_COMMENT_CHARS {
        return String::new();
    }
    let text = format!("{COMMENT_PREFIX}{field}")
        .replace('\\', "\\\\")
        .replace('\'', "''")
        .replace('\0', "\\0");
    format!(" COMMENT '{text}'")
}

/// The field a column's COMMENT records, if it records one.
pub(super) fn field_in_comment(comment: &str) -> Option<&str> {
    comment.strip_prefix(COMMENT_PREFIX)
}

/// Checks `--rename FIELD=COLUMN` pairs: each column a legal name, no two
/// fields onto one column, no field renamed twice.
pub(crate) fn check_renames(renames: &[(String, String)]) -> Result<(), String> {
    let mut columns: HashSet<String> = HashSet::new();
    let mut fields: HashSet<&str> = HashSet::new();
    for (field, column) in renames {
        if let Some(why) = problem(column) {
            return Err(format!(
                "--rename {field}={column}: '{column}' cannot be a MySQL column name ({why})"
            ));
        }
        if !fields.insert(field) {
            return Err(format!("--rename: field '{field}' is renamed twice"));
        }
        if !columns.insert(fold(column)) {
            return Err(format!(
                "--rename: two fields onto the column '{column}' (column names compare case-insensitively)"
            ));
        }
    }
    Ok(())
}

/// The fields whose column differs from their name, as `'field' -> `column``
/// for the log and `--check`.
pub(super) fn changed(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    pairs
        .into_iter()
        .filter(|(f, c)| f != c)
        .map(|(f, c)| format!("'{}' -> `{c}`", f.escape_debug()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_mysql_cannot_take() {
        assert!(problem("").is_some());
        assert!(problem(&"x".repeat(65)).is_some());
        assert!(problem(&"é".repeat(64)).is_none());
        assert!(problem("name ").is_some());
        assert!(problem(" name").is_none());
        assert!(problem("a\0b").is_some());
        assert!(problem("smile 😀").is_some());
        assert!(problem("select").is_none());
        assert!(problem("we`ird").is_none());
        assert!(problem("@timestamp").is_none());
        assert!(problem("!?.-").is_none());
    }

    #[test]
    fn base_names_are_legal_and_deterministic() {
        let long300 = "a".repeat(300);
        let cases: Vec<(String, String)> = vec![
            ("id".into(), "id".into()),
            ("@timestamp".into(), "@timestamp".into()),
            ("x".repeat(64), "x".repeat(64)),
            ("é".repeat(64), "é".repeat(64)),
            ("trailing ".into(), "trailing".into()),
            ("".into(), "_empty".into()),
            ("   ".into(), "_empty".into()),
            ("a\0b".into(), "a_b".into()),
            ("smile 😀".into(), "smile _".into()),
            (
                "x".repeat(65),
                format!("{}_{}", "x".repeat(55), hash8(&"x".repeat(65))),
            ),
            (
                long300.clone(),
                format!("{}_{}", "a".repeat(55), hash8(&long300)),
            ),
        ];
        for (field, want) in cases {
            let got = base_column(&field);
            assert_eq!(got, want, "{field:?}");
            assert!(problem(&got).is_none(), "{got:?}");
            assert_eq!(base_column(&field), got, "deterministic");
        }
        // Characters, not bytes: 70 two-byte characters are cut to 55.
        let accents = "é".repeat(70);
        let got = base_column(&accents);
        assert_eq!(got.chars().count(), 64);
        assert!(got.starts_with(&"é".repeat(55)));
        // A cut that ends in a space does not end the name with one.
        let spaced = format!("{} {}", "b".repeat(54), "c".repeat(20));
        assert!(base_column(&spaced).starts_with(&format!("{}_", "b".repeat(54))));
    }

    #[test]
    fn two_long_names_sharing_64_characters_get_two_columns() {
        let stem = "s".repeat(64);
        let fields = strs(&[&format!("{stem}one"), &format!("{stem}two")]);
        let cols = assign(&fields, &[], &mut HashSet::new());
        assert_ne!(fold(&cols[0]), fold(&cols[1]));
        assert!(cols.iter().all(|c| problem(c).is_none()));
    }

    #[test]
    fn assignment_is_unique_case_insensitively() {
        let fields = strs(&["a ", "a", "ID", "id", "", "  ", "B", "b"]);
        let mut taken = HashSet::new();
        let cols = assign(&fields, &[], &mut taken);
        // Legal names keep themselves, the first of a case-pair included.
        assert_eq!(cols[1], "a");
        assert_eq!(cols[2], "ID");
        assert_eq!(cols[6], "B");
        assert_eq!(cols[0], format!("a_{}", hash8("a ")));
        assert_eq!(cols[3], format!("id_{}", hash8("id")));
        assert_eq!(cols[4], "_empty");
        assert_eq!(cols[5], format!("_empty_{}", hash8("  ")));
        assert_eq!(cols[7], format!("b_{}", hash8("b")));
        let folded: HashSet<String> = cols.iter().map(|c| fold(c)).collect();
        assert_eq!(folded.len(), cols.len(), "{cols:?}");
        assert!(cols.iter().all(|c| problem(c).is_none()));
        // Names already in the table are taken too.
        let mut existing: HashSet<String> = [fold("Name")].into();
        assert_eq!(
            assign(&strs(&["name"]), &[], &mut existing),
            [format!("name_{}", hash8("name"))]
        );
    }

    #[test]
    fn renames_win_and_are_checked() {
        let renames = vec![("a".to_string(), "alpha".to_string())];
        let cols = assign(&strs(&["alpha", "a"]), &renames, &mut HashSet::new());
        assert_eq!(cols[1], "alpha");
        assert_eq!(cols[0], format!("alpha_{}", hash8("alpha")));
        assert!(check_renames(&renames).is_ok());
        let bad = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            check_renames(&pairs).unwrap_err()
        };
        assert!(bad(&[("a", "")]).contains("--rename"));
        assert!(bad(&[("a", "x ")]).contains("space"));
        assert!(bad(&[("a", &"x".repeat(65))]).contains("64"));
        assert!(bad(&[("a", "X"), ("b", "x")]).contains("two fields"));
        assert!(bad(&[("a", "x"), ("a", "y")]).contains("twice"));
    }

    #[test]
    fn comments_record_a_differing_field() {
        assert_eq!(comment_for("a", "a"), "");
        let c = comment_for("it's \\ ", "it's \\");
        assert_eq!(c, " COMMENT 'pipeline-cli field: it''s \\\\ '");
        assert_eq!(field_in_comment("pipeline-cli field: x "), Some("x "));
        // Too long for a comment: none (the column is found by its name).
        let huge = "h".repeat(1100);
        assert_eq!(comment_for(&huge, &base_column(&huge)), "");
        assert!(!comment_for(&"h".repeat(300), "h").is_empty());
        assert_eq!(field_in_comment("price in cents"), None);
        assert_eq!(
            changed([("a".into(), "a".into()), ("b ".into(), "b".into())]),
            ["'b ' -> `b`"]
        );
    }
}
