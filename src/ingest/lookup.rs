//! Lookup tables (`lookup`/`on`/`columns`) joined onto the rows of their
//! target source, with the rows that find no key reported.

use polars::prelude::*;

use super::frame::RowNumbers;
use super::load::{example_at, finding};
use crate::config::{Link, Pipeline, Source};
use crate::guard::guard;
use crate::quality::{self, QualityReport, Severity};

/// Join lookup `l`'s columns onto the rows of `t` (prepared as `df`) where
/// `t.on` equals `l`'s key; report the rows that find no key (an error past
/// `quality.max_orphans`).
pub(super) fn join_lookup(
    p: &Pipeline,
    l: &Source,
    table: &DataFrame,
    t: &Source,
    df: DataFrame,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    let Link::Lookup { on, columns, .. } = &l.link else {
        return Some(df);
    };
    let key = l.key.as_deref()?;
    for c in columns {
        if df.column(c).is_ok() {
            report.push(finding(
                l,
                Severity::Error,
                "lookup_column_clash",
                Some(c),
                0,
                format!("column `{c}` is already a column of source `{}`, so the lookup cannot add it there", t.name),
                format!("rename one of them, or leave `{c}` out of sources.{}.columns", l.name),
            ));
            return None;
        }
    }
    let right = lookup_table(table, key, columns)?;
    let on_text = df
        .column(on)
        .ok()?
        .cast(&DataType::String)
        .ok()?
        .with_name("__lookup_on".into());
    let mut left = df.clone();
    left.with_column(on_text).ok()?;
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    let joined = match guard(|| {
        left.clone()
            .lazy()
            .join(
                right.clone(),
                [col("__lookup_on")],
                [col("__lookup_key")],
                args.clone(),
            )
            .collect()
    }) {
        Ok(j) => j,
        Err(e) => {
            report.push(finding(
                l,
                Severity::Error,
                "bad_lookup",
                Some(on),
                0,
                format!("joining onto source `{}` failed: {e}", t.name),
                "check that `key` and `on` name columns of the same kind of value",
            ));
            return None;
        }
    };
    let has_on = joined.column("__lookup_on").ok()?.is_not_null();
    let hit = joined.column("__lookup_hit").ok()?.is_not_null();
    let missed: Vec<usize> = has_on
        .iter()
        .zip(hit.iter())
        .enumerate()
        .filter_map(|(i, (o, h))| (o == Some(true) && h != Some(true)).then_some(i))
        .collect();
    let n = joined.height();
    if let Some(sum) = report.sources.iter_mut().find(|x| x.name == l.name) {
        sum.target_rows = Some(n);
        sum.target_rows_matched = Some(n - missed.len());
    }
    if !missed.is_empty() {
        report.push(unmatched(p, (l, key), t, on, &joined, &missed)?);
    }
    Some(joined.drop_many(["__lookup_on", "__lookup_hit"]))
}

/// The lookup's rows to join: its key as text (`__lookup_key`), its
/// `columns`, and `__lookup_hit` to tell a match.
fn lookup_table(table: &DataFrame, key: &str, columns: &[String]) -> Option<LazyFrame> {
    let mut right: Vec<Column> = vec![table
        .column(key)
        .ok()?
        .cast(&DataType::String)
        .ok()?
        .with_name("__lookup_key".into())];
    for c in columns {
        right.push(table.column(c).ok()?.clone());
    }
    Some(
        DataFrame::new_infer_height(right)
            .ok()?
            .lazy()
            .with_column(lit(true).alias("__lookup_hit")),
    )
}

/// The `unmatched_lookup` finding for the rows `missed` of the joined rows
/// (an error past `quality.max_orphans`), with examples.
fn unmatched(
    p: &Pipeline,
    (l, key): (&Source, &str),
    t: &Source,
    on: &str,
    joined: &DataFrame,
    missed: &[usize],
) -> Option<quality::Finding> {
    let n = joined.height();
    let share = missed.len() as f64 / n.max(1) as f64;
    let rows = RowNumbers::of(joined);
    let values = joined.column("__lookup_on").ok()?.str().ok()?.clone();
    let severity = if share > p.quality.max_orphans {
        Severity::Error
    } else {
        Severity::Warning
    };
    let mut f = finding(
        t,
        severity,
        "unmatched_lookup",
        Some(on),
        missed.len(),
        format!(
            "{} of {n} row(s) ({:.0}%) have a `{on}` that is not a `{key}` of lookup `{}`; its columns are empty there",
            missed.len(),
            share * 100.0,
            l.name
        ),
        format!("check that `{on}` and `{key}` hold the same values (format, leading zeros, stray spaces); past quality.max_orphans = {} this is an error", p.quality.max_orphans),
    );
    f.examples = missed
        .iter()
        .take(p.quality.max_examples)
        .map(|&i| example_at(t, rows.at(i), values.get(i).map(|v| format!("{v:?}"))))
        .collect();
    Some(f)
}
