//! The names and shapes every ingest step shares: the account and row
//! columns added to each source, and the frame ingestion hands on.

use polars::prelude::*;

use super::load::ROW;
use crate::month::Month;

/// Column holding the account id (as text) in every prepared source.
pub const ACCOUNT: &str = "__account";

/// Column holding the account's row number in the account table (u32): the
/// key of every join and group-by, far cheaper to hash than text ids.
pub const AID: &str = "__aid";

/// Account table with `since`/`until`: a customer at the end of the as-of month.
pub(super) const ACTIVE: &str = "__active";

/// Account table with `since`: a customer by the end of the as-of month (gone or not).
pub(super) const STARTED: &str = "__started";

/// The result of ingestion: one row per account, sorted by id.
#[derive(Debug, Clone)]
pub struct AccountFrame {
    /// `account_id` (text) and one column per feature (numeric as f64, categorical as text).
    pub df: DataFrame,
    pub as_of: Month,
}

pub(super) fn months_since(col_name: &str) -> String {
    format!("months_since_{col_name}")
}

/// Each row's 0-based row number in its source file (the row-number column
/// the reader adds), read where an example needs one. A view of the column,
/// not a copy: at 124M rows a `Vec<usize>` of them was 1 GB held through the
/// checks, and 2 GB while it was made.
pub(super) struct RowNumbers(Option<IdxCa>);

impl RowNumbers {
    pub(super) fn of(df: &DataFrame) -> RowNumbers {
        RowNumbers(
            df.column(ROW)
                .ok()
                // The reader's column is already IDX_DTYPE: no copy.
                .and_then(|c| c.cast(&IDX_DTYPE).ok())
                .and_then(|c| c.as_materialized_series().idx().ok().cloned()),
        )
    }

    /// Row `i`'s number in the file (0 where the frame has none).
    pub(super) fn at(&self, i: usize) -> usize {
        self.0.as_ref().and_then(|c| c.get(i)).unwrap_or(0) as usize
    }
}

pub(super) fn null_rows(c: &Column) -> Vec<usize> {
    if c.null_count() == 0 {
        return Vec::new();
    }
    c.is_null()
        .iter()
        .enumerate()
        .filter_map(|(i, v)| (v == Some(true)).then_some(i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row numbers read off the reader's column, through a filter (the
    /// numbers go with their rows), and 0 where a frame has no such column.
    #[test]
    fn row_numbers_are_the_files_own_after_a_filter() {
        let df = df!("v" => [10, 11, 12, 13, 14])
            .unwrap()
            .with_row_index(ROW.into(), Some(0))
            .unwrap();
        let v = df.column("v").unwrap().i32().unwrap();
        let mask: BooleanChunked = v.iter().map(|v| v.map(|v| v % 2 == 1)).collect();
        let kept = df.filter(&mask).unwrap();
        let rows = RowNumbers::of(&kept);
        assert_eq!((rows.at(0), rows.at(1)), (1, 3));
        assert_eq!(RowNumbers::of(&df!("v" => [1]).unwrap()).at(0), 0);
    }
}
