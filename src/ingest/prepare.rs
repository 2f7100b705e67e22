//! Step 2, **prepare**: values made usable (keys as text, numbers stored as
//! text, NaN/inf, nulls, the pipeline's `[[check]]`s), then, once the month
//! is known, the months-since columns, the customer lifetime, the lookups
//! and the source's `filter`.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use super::dates::{self, parse_dates};
use super::frame::{months_since, null_rows, RowNumbers, ACTIVE, STARTED};
use super::load::{self, example_at, finding};
use super::lookup::join_lookup;
use crate::config::{Link, Pipeline, Source};
use crate::guard::guard;
use crate::month::Month;
use crate::quality::{QualityReport, Severity};

/// Step 2's first half, on a source just read: keys as text (nulls in keys
/// are errors), dates parsed, numbers stored as text converted, NaN/inf and
/// nulls reported, then the pipeline's own checks.
pub(super) fn prepare(
    p: &Pipeline,
    s: &Source,
    need: &BTreeMap<String, String>,
    mut df: DataFrame,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    let max_ex = p.quality.max_examples;
    let rows = RowNumbers::of(&df);
    let keys = keys_as_text(p, s, &mut df, &rows, report)?;
    let date_cols = s.date_columns();
    for d in &date_cols {
        if let Some(parsed) = parse_dates(s, &df, d, &rows, max_ex, report) {
            df.with_column(parsed).ok()?;
        }
    }

    for col in need.keys() {
        if keys.contains(&col.as_str()) || date_cols.contains(col) {
            continue;
        }
        check_values(p, s, &mut df, col, &rows, report)?;
    }

    // The pipeline's own checks.
    for c in p.checks.iter().filter(|c| c.source == s.name) {
        run_check(s, &df, c, &rows, max_ex, report);
    }

    Some(df)
}

/// The source's key columns (its link, its `key`, the columns lookups match
/// on) as text; a key without a value is an error. Returns their names.
fn keys_as_text<'a>(
    p: &'a Pipeline,
    s: &'a Source,
    df: &mut DataFrame,
    rows: &RowNumbers,
    report: &mut QualityReport,
) -> Option<Vec<&'a str>> {
    let max_ex = p.quality.max_examples;
    let mut keys: Vec<&str> = Vec::new();
    match &s.link {
        Link::Accounts { id } => keys.push(id),
        Link::Direct { account } => keys.push(account),
        Link::Via { column, .. } => keys.push(column),
        Link::Lookup { .. } => {}
    }
    if let Some(k) = &s.key {
        keys.push(k);
    }
    for k in &keys {
        let c = df
            .column(k)
            .expect("projected")
            .cast(&DataType::String)
            .ok()?;
        let nulls = null_rows(&c);
        if !nulls.is_empty() {
            let mut f = finding(
                s,
                Severity::Error,
                "null_id",
                Some(k),
                nulls.len(),
                format!("{} row(s) have no value in key column `{k}`", nulls.len()),
                "fill in the id or remove these rows",
            );
            f.examples = nulls
                .iter()
                .take(max_ex)
                .map(|&i| example_at(s, rows.at(i), None))
                .collect();
            report.push(f);
        }
        df.with_column(c).ok()?;
    }

    // Columns a lookup matches on are compared as text, like keys (but may be empty).
    for l in &p.sources {
        if let Link::Lookup { target, on, .. } = &l.link {
            if target == &s.name && !keys.contains(&on.as_str()) {
                let c = df.column(on).ok()?.cast(&DataType::String).ok()?;
                df.with_column(c).ok()?;
                keys.push(on);
            }
        }
    }

    Some(keys)
}

/// One value column: numbers stored as text converted (the bad ones
/// reported), an empty column read as missing numbers, NaN/inf and empty
/// values reported.
fn check_values(
    p: &Pipeline,
    s: &Source,
    df: &mut DataFrame,
    col: &str,
    rows: &RowNumbers,
    report: &mut QualityReport,
) -> Option<()> {
    let max_ex = p.quality.max_examples;
    let rows_read = df.height();
    let c = df.column(col).expect("projected").clone();
    let mut c = c.as_materialized_series().clone();
    if c.dtype() == &DataType::String {
        if let Some(num) = numeric_from_text(s, &c, col, rows, max_ex, report) {
            c = num;
            df.with_column(c.clone().into_column()).ok()?;
        } else if c.null_count() == c.len() || c.dtype() == &DataType::Null {
            // An empty column has no type to infer: read it as missing
            // numbers, so expressions over it work (and give missing values).
            c = c.cast(&DataType::Float64).ok()?;
            df.with_column(c.clone().into_column()).ok()?;
        }
    } else if c.dtype() == &DataType::Null {
        c = c.cast(&DataType::Float64).ok()?;
        df.with_column(c.clone().into_column()).ok()?;
    }
    if c.dtype().is_float() {
        let f = c.cast(&DataType::Float64).ok()?;
        let bad: Vec<usize> = f
            .f64()
            .ok()?
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|x| !x.is_finite()).map(|_| i))
            .collect();
        if !bad.is_empty() {
            let ca = f.f64().ok()?;
            let mut x = finding(
                s,
                p.quality.non_finite,
                "non_finite",
                Some(col),
                bad.len(),
                format!("{} value(s) are NaN or infinite", bad.len()),
                "replace them with a real number, or leave the cell empty for a missing value",
            );
            // The values as written ("1e400", not "inf"), read again as text
            // on this error path only.
            let written = (s.format == crate::config::Format::Csv)
                .then(|| guard(|| load::csv_reader(s, &[col.to_string()], Some(0))).ok())
                .flatten()
                .and_then(|all| all.column(col).ok()?.str().ok().cloned());
            x.examples = bad
                .iter()
                .take(max_ex)
                .map(|&i| {
                    let text = written
                        .as_ref()
                        .and_then(|w| w.get(rows.at(i)).map(str::to_string))
                        .or_else(|| ca.get(i).map(|v| v.to_string()));
                    example_at(s, rows.at(i), text)
                })
                .collect();
            report.push(x);
        }
    }
    let nulls = c.null_count();
    if nulls > 0 {
        let idx = null_rows(&c.clone().into());
        let message = if nulls == rows_read {
            format!("every value is empty (all {rows_read} rows)")
        } else {
            format!("{nulls} of {rows_read} value(s) are empty")
        };
        let mut x = finding(s, p.quality.nulls, "null_value", Some(col), nulls, message, "empty values are left out of aggregates and imputed per the feature's `missing` policy; fill them in if they should not be empty");
        x.examples = idx
            .iter()
            .take(max_ex)
            .map(|&i| example_at(s, rows.at(i), None))
            .collect();
        report.push(x);
    }
    Some(())
}

/// Step 2, once the as-of month is known: the `months_since_<date>` columns,
/// the columns of lookups joined onto this source, and the source's filter.
pub(super) fn finish_prepare(
    p: &Pipeline,
    s: &Source,
    mut df: DataFrame,
    as_of: Month,
    lookups: &HashMap<String, DataFrame>,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    let date_cols = s.date_columns();
    // months_since_<date> helper columns, straight from the days of each date.
    let idx = as_of.index();
    for d in &date_cols {
        let Ok(days) = df
            .column(d)
            .and_then(|c| c.date().map(|c| c.physical().clone()))
        else {
            continue;
        };
        let ms = days
            .apply_values(|v| idx - dates::month_index(v))
            .with_name(months_since(d).into());
        if let Err(e) = df.with_column(ms.into_column()) {
            report.push(finding(
                s,
                Severity::Error,
                "internal",
                None,
                0,
                format!("could not compute months since dates: {e}"),
                "",
            ));
            return None;
        }
    }

    // The account table's lifetime: a customer at the end of the as-of month
    // became one in or before it (`since`) and had not stopped by its end (`until`).
    if matches!(s.link, Link::Accounts { .. }) && (s.since.is_some() || s.until.is_some()) {
        df = lifetime_columns(s, df, report)?;
    }

    // Lookups onto this source, before its filter (which may use their columns).
    for l in p
        .sources
        .iter()
        .filter(|l| matches!(&l.link, Link::Lookup { target, .. } if target == &s.name))
    {
        let Some(table) = lookups.get(&l.name) else {
            continue; // its own problems are reported
        };
        df = join_lookup(p, l, table, s, df, report)?;
    }

    // The source's filter.
    if let Some(f) = &s.filter {
        df = filtered(s, df, f, report)?;
    }
    Some(df)
}

/// The account table with `__active` (a customer at the end of the as-of
/// month) and `__started` (a customer by then, gone or not).
fn lifetime_columns(
    s: &Source,
    mut df: DataFrame,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    // A lifetime column that was not read as dates has its own finding
    // (unparsable dates, say); no second one in Polars' words.
    for (key, d) in [("since", &s.since), ("until", &s.until)] {
        let Some(d) = d else { continue };
        if df.column(months_since(d).as_str()).is_ok() {
            continue;
        }
        let said = report.findings.iter().any(|f| {
            f.source == s.name
                && f.column.as_deref() == Some(d.as_str())
                && f.severity == Severity::Error
        });
        if !said {
            report.push(finding(
                s,
                Severity::Error,
                "bad_lifetime",
                Some(d),
                0,
                format!("`{key}` column `{d}` could not be read as dates, so strata cannot tell who was a customer at the end of the month"),
                format!("point `{key}` at the column with the date the account became (or stopped being) a customer, written as dates (YYYY-MM-DD, or set date_format)"),
            ));
        }
        return None;
    }
    let mut active = lit(true);
    if let Some(d) = &s.since {
        let m = col(months_since(d).as_str());
        active = active.and(m.clone().is_null().or(m.gt_eq(lit(0))));
    }
    if let Some(d) = &s.until {
        let m = col(months_since(d).as_str());
        active = active.and(m.clone().is_null().or(m.lt(lit(0))));
    }
    let since_ok = match &s.since {
        Some(d) => {
            let m = col(months_since(d).as_str());
            m.clone().is_null().or(m.gt_eq(lit(0)))
        }
        None => lit(true),
    };
    df = match guard(|| {
        df.clone()
            .lazy()
            .with_columns([
                active.clone().alias(ACTIVE),
                since_ok.clone().alias(STARTED),
            ])
            .collect()
    }) {
        Ok(df) => df,
        Err(e) => {
            report.push(finding(
                s,
                Severity::Error,
                "bad_lifetime",
                None,
                0,
                format!("could not tell who was a customer: {e}"),
                "check the `since` and `until` columns",
            ));
            return None;
        }
    };
    Some(df)
}

/// The rows of `df` that pass the source's filter `f`.
fn filtered(s: &Source, df: DataFrame, f: &Expr, report: &mut QualityReport) -> Option<DataFrame> {
    match guard(|| df.clone().lazy().filter(f.clone()).collect()) {
        Ok(out) => Some(out),
        Err(e) => {
            report.push(finding(
                s,
                Severity::Error,
                "bad_filter",
                None,
                0,
                format!(
                    "filter `{}` failed: {e}",
                    s.filter_text.as_deref().unwrap_or("")
                ),
                "fix the source's `filter` expression",
            ));
            None
        }
    }
}

/// A text column that is mostly numbers is a numeric column with bad values:
/// report them and return the converted column. A column that is mostly text
/// (a categorical such as industry) is left alone.
pub(super) fn numeric_from_text(
    s: &Source,
    c: &Series,
    col_name: &str,
    rows: &RowNumbers,
    max_ex: usize,
    report: &mut QualityReport,
) -> Option<Series> {
    let text = c.str().ok()?;
    let num = c.cast(&DataType::Float64).ok()?;
    let nonnull = text.len() - text.null_count();
    let bad: Vec<usize> = text
        .iter()
        .zip(num.f64().ok()?.iter())
        .enumerate()
        .filter_map(|(i, (t, n))| (t.is_some() && n.is_none()).then_some(i))
        .collect();
    if nonnull == 0 || bad.len() * 2 > nonnull {
        return None;
    }
    if !bad.is_empty() {
        let mut f = finding(s, Severity::Error, "wrong_type", Some(col_name), bad.len(), format!("{} value(s) are not numbers in a numeric column", bad.len()), "correct these values (numbers use a dot as decimal separator and no thousands separator), or leave the cell empty for a missing value");
        f.examples = bad
            .iter()
            .take(max_ex)
            .map(|&i| example_at(s, rows.at(i), text.get(i).map(|v| format!("{v:?}"))))
            .collect();
        report.push(f);
    }
    // Integers stay integers when every value is whole.
    Some(num.with_name(col_name.into()))
}

pub(super) fn run_check(
    s: &Source,
    df: &DataFrame,
    c: &crate::config::Check,
    rows: &RowNumbers,
    max_ex: usize,
    report: &mut QualityReport,
) {
    let Ok(column) = df.column(&c.column) else {
        return;
    };
    if c.min.is_some() || c.max.is_some() {
        let Ok(vals) = column.cast(&DataType::Float64) else {
            return;
        };
        let Ok(ca) = vals.f64() else { return };
        let bad: Vec<(usize, f64)> = ca
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.filter(|x| {
                    x.is_finite()
                        && (c.min.is_some_and(|m| *x < m) || c.max.is_some_and(|m| *x > m))
                })
                .map(|x| (i, x))
            })
            .collect();
        if !bad.is_empty() {
            let range = match (c.min, c.max) {
                (Some(a), Some(b)) => format!("[{a}, {b}]"),
                (Some(a), None) => format!(">= {a}"),
                (None, Some(b)) => format!("<= {b}"),
                _ => unreachable!(),
            };
            let mut f = finding(s, c.severity, "out_of_range", Some(&c.column), bad.len(), format!("{} value(s) outside the allowed range {range}", bad.len()), "correct the values at the source, or widen the [[check]] in the pipeline file if they are valid");
            f.examples = bad
                .iter()
                .take(max_ex)
                .map(|&(i, v)| example_at(s, rows.at(i), Some(v.to_string())))
                .collect();
            report.push(f);
        }
    }
    if !c.allowed.is_empty() {
        let Ok(vals) = column.cast(&DataType::String) else {
            return;
        };
        let Ok(ca) = vals.str() else { return };
        let bad: Vec<(usize, String)> = ca
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.filter(|x| !c.allowed.iter().any(|a| a == x))
                    .map(|x| (i, x.to_string()))
            })
            .collect();
        if !bad.is_empty() {
            let mut f = finding(
                s,
                c.severity,
                "not_allowed",
                Some(&c.column),
                bad.len(),
                format!(
                    "{} value(s) not among the allowed: {}",
                    bad.len(),
                    c.allowed.join(", ")
                ),
                "correct the values, or add them to the check's `allowed` list",
            );
            f.examples = bad
                .iter()
                .take(max_ex)
                .map(|(i, v)| example_at(s, rows.at(*i), Some(format!("{v:?}"))))
                .collect();
            report.push(f);
        }
    }
}
