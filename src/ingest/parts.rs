//! How step 4 runs on all threads: a linked source's rows cut into parts at
//! account boundaries, and one window's group-by over one part, so every
//! account's values come from the same rows in the same layout whatever the
//! thread count.

use polars::prelude::*;

use super::frame::AID;
use super::load::ROW;
use crate::error::Result;

/// Whether `df`'s accounts (`AID`) are flagged ascending
/// ([`put_in_account_order`](super::link::put_in_account_order)).
pub(super) fn is_flagged_sorted(df: &DataFrame) -> bool {
    df.column(AID)
        .is_ok_and(|c| c.is_sorted_flag() == polars::series::IsSorted::Ascending)
}

/// Rows per part of [`account_parts`]: small enough that a million accounts'
/// monthly rows make dozens of parts for the threads to share and each
/// part's window is a small copy, large enough that each part's group-by
/// costs far more than setting it up.
pub(super) const PART_ROWS: usize = 1 << 18;

/// `df` cut into parts (first row, rows) of about `part_rows` rows, each
/// account's rows whole in one part, when its rows are in account order;
/// else one part. Grouped part by part, each in one contiguous buffer
/// ([`PartPlan::group`]), every account's values are computed over the same
/// rows in the same memory layout whatever the thread count, so the sums come
/// out the same to the last bit (as with the whole frame in one piece).
pub(super) fn account_parts(df: &DataFrame, part_rows: usize) -> Result<Vec<(usize, usize)>> {
    let n = df.height();
    let part_rows = part_rows.max(1);
    if !is_flagged_sorted(df) || n <= part_rows {
        return Ok(vec![(0, n)]);
    }
    let ids = df.column(AID)?.idx()?;
    let mut parts = Vec::with_capacity(n / part_rows + 1);
    let mut start = 0;
    while start < n {
        let mut end = (start + part_rows).min(n);
        let last = ids.get(end - 1);
        while end < n && ids.get(end) == last {
            end += 1;
        }
        parts.push((start, end - start));
        start = end;
    }
    Ok(parts)
}

/// `f(0..n)` on as many threads as the run has, results in order. Plain
/// threads rather than rayon's: `f` calls Polars, whose own thread pool a
/// rayon worker of another pool would wait on by running further tasks of its
/// own on the same stack, nesting them until it overflows.
pub(super) fn run_parts<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = rayon::current_num_threads().clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break mine;
                        }
                        mine.push((i, f(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a part's work is guarded"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, v)| v).collect()
}

/// One window's group-by over a part of a linked source's rows.
pub(super) struct PartPlan {
    /// The columns read: the account, the features' columns, the window's
    /// and the sort's.
    pub(super) keep: Vec<PlSmallStr>,
    /// The months-since column and the window's bounds (inclusive).
    pub(super) inside: Option<(String, i32, i32)>,
    /// The stable sort that puts each account's rows in time order.
    pub(super) by: Option<[String; 3]>,
    /// The features, and the rows per account.
    pub(super) exprs: Vec<Expr>,
    /// Whether the rows reach the group-by in runs of each account's rows
    /// (in account order, or sorted by `by`) rather than to be hashed.
    pub(super) in_runs: bool,
}

impl PartPlan {
    /// Rows `start..start + n` of `df`: those in the window, sorted if need
    /// be, in one buffer, grouped by account.
    pub(super) fn group(&self, df: &DataFrame, start: usize, n: usize) -> PolarsResult<DataFrame> {
        let mut rows = df
            .slice(start as i64, n)
            .select(self.keep.iter().cloned())?;
        if let Some((ms, lo, hi)) = &self.inside {
            let ms = rows.column(ms)?.as_materialized_series().clone();
            rows = rows.filter_seq(&(ms.gt_eq(*lo)? & ms.lt_eq(*hi)?))?;
        }
        if let Some(by) = &self.by {
            rows = rows.sort(
                by.iter().map(String::as_str).collect::<Vec<_>>(),
                SortMultipleOptions::default().with_maintain_order(true),
            )?;
        }
        rows.rechunk_mut();
        if self.in_runs {
            let mut aid = rows.column(AID)?.as_materialized_series().clone();
            aid.set_sorted_flag(polars::series::IsSorted::Ascending);
            rows.with_column(aid.into_column())?;
        }
        rows.lazy()
            .group_by([col(AID)])
            .agg(self.exprs.clone())
            .collect()
    }
}

/// Whether each account's rows already come in the order a stable sort by
/// (`time`, [`ROW`]) gives them, so sorting for `first`/`last` can be skipped
/// without changing any account's rows or their order. One pass, with the
/// latest (time, row) seen per account; `false` if anything is null.
pub(super) fn in_time_order(df: &DataFrame, time: &str) -> bool {
    let (Ok(ids), Ok(t), Ok(row)) = (df.column(AID), df.column(time), df.column(ROW)) else {
        return false;
    };
    let (Ok(t64), Ok(row64)) = (
        t.to_physical_repr().cast(&DataType::Int64),
        row.cast(&DataType::Int64),
    ) else {
        return false;
    };
    let (Ok(ids), Ok(t), Ok(row)) = (ids.idx(), t64.i64(), row64.i64()) else {
        return false;
    };
    if ids.null_count() + t.null_count() + row.null_count() > 0 {
        return false;
    }
    let n = ids.max().map_or(0, |m| m as usize + 1);
    let mut last = vec![(i64::MIN, i64::MIN); n];
    let in_order = ids
        .into_no_null_iter()
        .zip(t.into_no_null_iter())
        .zip(row.into_no_null_iter())
        .all(|((id, t), r)| {
            let l = &mut last[id as usize];
            let ok = (t, r) >= *l;
            *l = (t, r);
            ok
        });
    in_order
}
