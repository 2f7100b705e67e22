//! Step 4's end: the aggregates attached to the account table, the
//! customers at as-of kept, the row-level features derived in declaration
//! order, and the frame checked and typed.

use std::collections::{BTreeSet, HashMap};

use polars::prelude::*;

use super::aggregate::{Aggregated, Part};
use super::frame::{ACCOUNT, ACTIVE, AID, STARTED};
use super::load::finding;
use super::read::tier_column;
use crate::config::{Feature, Kind, Pipeline};
use crate::error::{Error, Result};
use crate::guard::guard;
use crate::month::Month;
use crate::quality::{self, QualityReport, Severity};
use crate::schema::ACCOUNT_ID;

/// A finding about feature `f` (named by its source, the account table's if none).
pub(crate) fn feature_finding(
    p: &Pipeline,
    f: &Feature,
    sev: Severity,
    code: &'static str,
    count: usize,
    msg: String,
    hint: &str,
) -> quality::Finding {
    quality::Finding {
        severity: sev,
        code: code.into(),
        source: f
            .source
            .clone()
            .unwrap_or_else(|| p.account_source().name.clone()),
        file: p.file.display().to_string(),
        column: Some(f.name.clone()),
        count,
        message: msg,
        hint: hint.to_string(),
        examples: Vec::new(),
    }
}

/// Step 4's end: the aggregates joined onto the account table (`accounts`,
/// linked), the accounts that are customers at as-of kept, the row-level
/// features derived, and the frame checked and typed.
pub(super) fn build_features(
    p: &Pipeline,
    accounts: DataFrame,
    aggregated: Aggregated<'_>,
    as_of: Month,
    report: &mut QualityReport,
) -> Result<Option<DataFrame>> {
    let Aggregated {
        mut parts,
        ranges,
        failed,
        ..
    } = aggregated;
    if failed {
        return Ok(None);
    }
    let t = std::time::Instant::now();
    let mut current = accounts;
    let mut no_rows: Vec<Expr> = Vec::new();
    for part in &mut parts {
        current = attach(current, std::mem::take(&mut part.agg))?;
        no_rows.append(&mut part.no_rows);
    }
    crate::memory::trace("features: aggregates joined", t);
    let Some(current) = customers_at(p, current, as_of, report)? else {
        return Ok(None);
    };
    if outside_the_data(p, &current, &parts, &ranges, as_of, report)? {
        return Ok(None);
    }
    let t = std::time::Instant::now();
    let current = fill_no_rows(current, no_rows, &parts)?;
    let Some(current) = derive_row_level(p, current, report) else {
        return Ok(None);
    };
    crate::memory::trace("features: row-level features derived", t);
    let t = std::time::Instant::now();
    let Some(df) = typed_frame(p, &current, report)? else {
        return Ok(None);
    };
    crate::memory::trace("features: typed", t);
    if empty_or_mostly_missing(p, &df, &ranges, as_of, report)? {
        return Ok(None);
    }
    let t = std::time::Instant::now();
    let df = df.sort([ACCOUNT_ID], SortMultipleOptions::default())?;
    crate::memory::trace("features: sorted by account id", t);
    Ok(Some(df))
}

/// Only customers at the end of the as-of month are accounts of the run
/// (when the account table has `since`/`until`); `None` when there are none.
fn customers_at(
    p: &Pipeline,
    mut current: DataFrame,
    as_of: Month,
    report: &mut QualityReport,
) -> Result<Option<DataFrame>> {
    let acc_src = p.account_source();
    if let Ok(active) = current.column(ACTIVE).map(|c| c.bool().cloned()) {
        let active = active?;
        let started = current.column(STARTED)?.bool()?.clone();
        let customers = active.sum().unwrap_or(0) as usize;
        let started_n = started.sum().unwrap_or(0) as usize;
        report.lifetime = Some(quality::Lifetime {
            as_of: as_of.to_string(),
            customers,
            not_yet: current.height() - started_n,
            gone: started_n - customers,
        });
        current = current.filter(&active)?;
        if current.height() == 0 {
            report.push(finding(
                acc_src,
                Severity::Error,
                "no_customers",
                None,
                0,
                format!("no account was a customer at the end of {as_of} (per `since`/`until`)"),
                "run a month the accounts cover with --as-of, or check the `since` and `until` columns",
            ));
            return Ok(None);
        }
    }

    Ok(Some(current))
}

/// Whether a window has rows for (almost) no account: it lies outside the
/// data, its features would be empty, or 0 for every account, and say
/// nothing. Each such feature is an error.
fn outside_the_data(
    p: &Pipeline,
    current: &DataFrame,
    parts: &[Part<'_>],
    ranges: &HashMap<String, (String, String, String)>,
    as_of: Month,
    report: &mut QualityReport,
) -> Result<bool> {
    let n = current.height();
    let mut outside = false;
    for part in parts {
        let (Some(_), has_rows, src_name) = (part.window, &part.has_rows, part.source) else {
            continue;
        };
        let without = current.column(has_rows)?.null_count();
        let share = without as f64 / n.max(1) as f64;
        if n > 0 && share >= p.quality.max_empty_window {
            outside = true;
            for f in &part.features {
                report.push(feature_finding(p, f,
                    Severity::Error,
                    "empty_feature",
                    without,
                    format!(
                        "{without} of the {n} accounts ({:.0}%) have no rows of source `{src_name}` in the window of `{}`",
                        share * 100.0,
                        f.name
                    ),
                    &empty_feature_hint(p, f, ranges, as_of),
                ));
            }
        }
    }
    Ok(outside)
}

/// Accounts without rows get each expression's value over no rows; the
/// rows-per-account columns go.
fn fill_no_rows(current: DataFrame, no_rows: Vec<Expr>, parts: &[Part<'_>]) -> Result<DataFrame> {
    guard(|| {
        current
            .clone()
            .lazy()
            .with_columns(no_rows.clone())
            .drop(cols(parts.iter().map(|i| i.has_rows.as_str())))
            .collect()
    })
    .map_err(Error::Internal)
}

/// The row-level features, in declaration order, over the account table and
/// the features before them; `None` (and the finding) when one fails.
fn derive_row_level(
    p: &Pipeline,
    mut current: DataFrame,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    let acc_src = p.account_source();
    for f in p
        .features
        .iter()
        .filter(|f| f.source.is_none() || f.source.as_deref() == Some(acc_src.name.as_str()))
    {
        let available: BTreeSet<String> = current
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let missing: Vec<String> = f
            .expr
            .clone()
            .meta()
            .root_names()
            .into_iter()
            .map(|r| r.to_string())
            .filter(|r| !available.contains(r))
            .collect();
        if !missing.is_empty() {
            report.push(feature_finding(p, f, Severity::Error, "bad_feature", 0, format!("`{}` refers to {} which is neither a column of the account table nor a feature defined before it", f.expr_text, missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")), "define that feature earlier in the file, or fix the name"));
            return None;
        }
        let expr = f.expr.clone().alias(f.name.as_str());
        match guard(|| current.clone().lazy().with_column(expr.clone()).collect()) {
            Ok(df) => current = df,
            Err(e) if !text_roots(&current, f).is_empty() => {
                report.push(text_column_finding(p, &current, f, &e));
                return None;
            }
            Err(e) => {
                report.push(feature_finding(
                    p,
                    f,
                    Severity::Error,
                    "bad_feature",
                    0,
                    format!("`{}` failed: {e}", f.expr_text),
                    "fix the expression (Polars SQL over the account table and earlier features)",
                ));
                return None;
            }
        }
    }

    Some(current)
}

/// The columns `f` reads that hold text in `current` (the account table
/// and the features before it).
fn text_roots(current: &DataFrame, f: &Feature) -> Vec<String> {
    let mut roots: Vec<String> = f
        .expr
        .clone()
        .meta()
        .root_names()
        .into_iter()
        .filter(|r| {
            current
                .column(r.as_str())
                .is_ok_and(|c| c.dtype() == &DataType::String)
        })
        .map(|r| r.to_string())
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// A row-level feature failed over a text column: the column is blamed (with
/// an example value), not the expression that reads it.
fn text_column_finding(
    p: &Pipeline,
    current: &DataFrame,
    f: &Feature,
    e: &str,
) -> quality::Finding {
    let roots = text_roots(current, f);
    let example = current
        .column(&roots[0])
        .ok()
        .and_then(|c| c.str().ok()?.iter().flatten().next().map(str::to_string))
        .unwrap_or_default();
    let mut finding = feature_finding(
        p,
        f,
        Severity::Error,
        "wrong_type",
        0,
        format!(
            "column `{}` holds text (e.g. {example:?}), so `{}` cannot compute `{}` ({e})",
            roots.join("`, `"),
            f.expr_text,
            f.name
        ),
        &format!(
            "store `{}` as numbers in the file (no units or thousands separators), or treat it as text in the expression",
            roots[0]
        ),
    );
    finding.column = Some(roots[0].clone());
    finding
}

/// The final frame: the id and the features, typed (categorical as text,
/// numeric as f64 with NaN/inf made missing), and the tier column.
fn typed_frame(
    p: &Pipeline,
    current: &DataFrame,
    report: &mut QualityReport,
) -> Result<Option<DataFrame>> {
    let mut cols: Vec<Column> = vec![current
        .column(ACCOUNT)?
        .clone()
        .with_name(ACCOUNT_ID.into())];
    for f in &p.features {
        let c = current.column(&f.name)?.clone();
        let c = match f.kind {
            Kind::Categorical => c.cast(&DataType::String)?,
            Kind::Numeric => {
                if !(c.dtype().is_primitive_numeric()
                    || c.dtype() == &DataType::Boolean
                    || c.dtype() == &DataType::Null)
                {
                    report.push(feature_finding(
                        p,
                        f,
                        Severity::Error,
                        "bad_feature",
                        0,
                        format!("`{}` gives {} values, not numbers", f.expr_text, c.dtype()),
                        "set kind = \"categorical\" for text features, or fix the expression",
                    ));
                    return Ok(None);
                }
                let x = c.cast(&DataType::Float64)?;
                let ca = x.f64()?;
                let bad = ca
                    .iter()
                    .filter(|v| v.is_some_and(|v| !v.is_finite()))
                    .count();
                if bad > 0 {
                    report.push(feature_finding(p, f, Severity::Warning, "non_finite_feature", bad, format!("{bad} account(s) got NaN or infinity from `{}` (a division by zero?); treated as missing", f.expr_text), "use nullif(x, 0) in divisions to make the intent explicit"));
                    let cleaned: Float64Chunked =
                        ca.iter().map(|v| v.filter(|v| v.is_finite())).collect();
                    cleaned.with_name(f.name.as_str().into()).into_column()
                } else {
                    x
                }
            }
        };
        cols.push(c);
    }
    // The tier column, when it is an account-table column and not a feature:
    // carried as text under its own name for the compare stage.
    if let Some(t) = tier_column(p) {
        cols.push(current.column(t)?.cast(&DataType::String)?);
    }
    Ok(Some(DataFrame::new_infer_height(cols)?))
}

/// Whether a feature has no value for any account (an error: it carries
/// nothing and would be imputed into a constant); a feature missing for many
/// accounts is a warning.
fn empty_or_mostly_missing(
    p: &Pipeline,
    df: &DataFrame,
    ranges: &HashMap<String, (String, String, String)>,
    as_of: Month,
    report: &mut QualityReport,
) -> Result<bool> {
    // A feature with no value for any account carries nothing and would be
    // imputed into a constant: it is always a mistake (a window outside the
    // data, a wrong as-of, an empty column).
    // A windowed one empty for almost every account (a window outside most
    // of the data) is as much a mistake; a feature missing for many accounts
    // is imputed for them, which is worth a word.
    let mut empty = false;
    let n = df.height();
    for f in &p.features {
        let missing = df.column(&f.name)?.null_count();
        if n == 0 || missing == 0 {
            continue;
        }
        let share = missing as f64 / n as f64;
        if missing == n {
            empty = true;
            report.push(feature_finding(
                p,
                f,
                Severity::Error,
                "empty_feature",
                missing,
                format!("`{}` has no value for any of the {n} accounts", f.name),
                &empty_feature_hint(p, f, ranges, as_of),
            ));
        } else if share > p.quality.max_imputed && f.in_matrix {
            let fill = match (f.kind, f.missing) {
                (Kind::Categorical, crate::config::Missing::Mode) => {
                    "the most common level".to_string()
                }
                (Kind::Categorical, _) => "their own level \"(missing)\"".to_string(),
                (_, m) => format!("an imputed value (missing = {})", m.describe()),
            };
            report.push(feature_finding(p, f,
                Severity::Warning,
                "mostly_missing",
                missing,
                format!(
                    "`{}` has no value for {missing} of the {n} accounts ({:.0}%); they get {fill}, so the feature says little about them",
                    f.name,
                    share * 100.0
                ),
                "check the feature's source and window, or set `missing` to what no data means (e.g. missing = 0); quality.max_imputed sets when this is said",
            ));
        }
    }
    Ok(empty)
}

/// `accounts` with the columns of `agg` (one row per account that has rows,
/// keyed by `AID`) beside them: what a left join on `AID` gives, null for the
/// accounts without rows, found through an array indexed by account rather
/// than a hash table (the accounts are numbered 0..n when linked).
pub(super) fn attach(accounts: DataFrame, agg: DataFrame) -> Result<DataFrame> {
    let Some(take) = rows_of_accounts(&accounts, &agg)? else {
        return join_on_aid(accounts, agg);
    };
    let columns: Vec<Column> = agg
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != AID)
        .map(|c| c.take(&take))
        .collect::<PolarsResult<_>>()?;
    let mut out = accounts;
    for c in columns {
        out.with_column(c)?;
    }
    Ok(out)
}

/// Each account's row in `agg` (null: none), or None when a left join has
/// more to say: a column name both have, a key missing, twice or not an
/// account.
pub(super) fn rows_of_accounts(accounts: &DataFrame, agg: &DataFrame) -> Result<Option<IdxCa>> {
    let clash = agg
        .get_column_names()
        .into_iter()
        .any(|c| c.as_str() != AID && accounts.column(c).is_ok());
    let ids = accounts.column(AID)?.idx()?;
    let keys = agg.column(AID)?.idx()?;
    if clash || keys.null_count() > 0 || ids.null_count() > 0 {
        return Ok(None);
    }
    let size = ids.max().map_or(0, |m| m as usize + 1);
    let mut row: Vec<Option<IdxSize>> = vec![None; size];
    for (i, k) in keys.into_no_null_iter().enumerate() {
        match row.get_mut(k as usize) {
            Some(r @ None) => *r = Some(i as IdxSize),
            _ => return Ok(None),
        }
    }
    Ok(Some(
        ids.into_no_null_iter().map(|a| row[a as usize]).collect(),
    ))
}

/// [`attach`] as a left join, for what the fast path does not cover.
pub(super) fn join_on_aid(accounts: DataFrame, agg: DataFrame) -> Result<DataFrame> {
    guard(|| {
        accounts
            .lazy()
            .join(
                agg.lazy(),
                [col(AID)],
                [col(AID)],
                JoinArgs::new(JoinType::Left),
            )
            .collect()
    })
    .map_err(Error::Internal)
}

pub(super) fn empty_feature_hint(
    p: &Pipeline,
    f: &Feature,
    ranges: &HashMap<String, (String, String, String)>,
    as_of: Month,
) -> String {
    let src = f.source.as_deref().and_then(|n| p.source(n));
    let range = src.and_then(|s| {
        let (t, lo, hi) = ranges.get(&s.name)?.clone();
        Some((s.name.clone(), t, lo, hi))
    });
    match (range, f.window) {
        (Some((s, t, lo, hi)), Some(w)) => {
            let last = as_of.add(-(w.offset as i32));
            let first = last.add(-(w.months as i32 - 1));
            format!("its window is {first}..{last} (as-of {as_of}), but the rows of source `{s}` are dated {lo} to {hi} (column `{t}`): run with --as-of set to a month the data covers, or fix the window")
        }
        (Some((s, t, lo, hi)), None) => format!(
            "the rows of source `{s}` are dated {lo} to {hi} (column `{t}`), up to as-of {as_of}: check the expression and the source's filter"
        ),
        (None, _) => "check the expression and the columns it reads: every value is empty".into(),
    }
}
