//! `--delete-missing`: the MySQL sink deletes the rows whose key a full
//! read did not see, within the bound `--max-delete`.

/// `--max-delete` when not given: at most this share of the table's rows.
pub const DEFAULT_MAX_DELETE: &str = "10%";

/// How many rows `--delete-missing` may delete in one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDelete {
    /// At most this many rows.
    Rows(u64),
    /// At most this percentage (0-100) of the table's rows before the delete.
    Percent(f64),
}

impl MaxDelete {
    /// Parses `N` (rows) or `P%` (a percentage of the table's rows).
    pub fn parse(text: &str) -> Result<MaxDelete, String> {
        let t = text.trim();
        let bad = || {
            format!(
                "--max-delete '{text}': expected a number of rows (--max-delete 500) or a percentage of the table's rows (--max-delete 10%)"
            )
        };
        if let Some(p) = t.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!(
                    "--max-delete '{text}': a percentage is between 0% and 100%"
                ));
            }
            return Ok(MaxDelete::Percent(p));
        }
        t.parse().map(MaxDelete::Rows).map_err(|_| bad())
    }

    /// Whether deleting `missing` of `total` rows stays within the bound.
    pub fn allows(&self, missing: u64, total: u64) -> bool {
        match *self {
            MaxDelete::Rows(n) => missing <= n,
            MaxDelete::Percent(p) => missing as f64 <= total as f64 * p / 100.0,
        }
    }

    /// As given: `500` or `10%`.
    pub fn shown(&self) -> String {
        match *self {
            MaxDelete::Rows(n) => n.to_string(),
            MaxDelete::Percent(p) => format!("{p}%"),
        }
    }
}

/// The settings of `--delete-missing`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeleteMissing {
    /// `--max-delete`.
    pub max_delete: MaxDelete,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_delete_takes_rows_or_a_percentage() {
        assert_eq!(MaxDelete::parse("500"), Ok(MaxDelete::Rows(500)));
        assert_eq!(MaxDelete::parse("0"), Ok(MaxDelete::Rows(0)));
        assert_eq!(MaxDelete::parse("10%"), Ok(MaxDelete::Percent(10.0)));
        assert_eq!(MaxDelete::parse(" 2.5 %"), Ok(MaxDelete::Percent(2.5)));
        assert_eq!(
            MaxDelete::parse(DEFAULT_MAX_DELETE),
            Ok(MaxDelete::Percent(10.0))
        );
        for bad in ["", "-1", "ten", "10%%", "101%", "-5%", "1e3x"] {
            let e = MaxDelete::parse(bad).unwrap_err();
            assert!(e.starts_with("--max-delete"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_bound_is_inclusive() {
        let p = MaxDelete::Percent(10.0);
        assert!(p.allows(10, 100));
        assert!(!p.allows(11, 100));
        assert!(p.allows(0, 0));
        assert!(!p.allows(1, 0));
        let n = MaxDelete::Rows(3);
        assert!(n.allows(3, 1_000_000));
        assert!(!n.allows(4, 1_000_000));
        assert_eq!(n.shown(), "3");
        assert_eq!(MaxDelete::Percent(12.5).shown(), "12.5%");
    }
}
