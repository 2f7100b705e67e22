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

pub(super) fn row_numbers(df: &DataFrame) -> Vec<usize> {
    df.column(ROW)
        .ok()
        .and_then(|c| c.cast(&DataType::UInt64).ok())
        .and_then(|c| {
            c.u64()
                .ok()
                .map(|ca| ca.iter().map(|v| v.unwrap_or(0) as usize).collect())
        })
        .unwrap_or_default()
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
