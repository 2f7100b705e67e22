//! Step 4, **aggregate**: each feature over its source's rows in its time
//! window, per account, run as each source is linked so its rows can be
//! freed before the next is read.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use super::derive::feature_finding;
use super::frame::{months_since, AID};
use super::load::ROW;
use super::parts::{
    account_parts, in_time_order, is_flagged_sorted, run_parts, PartPlan, PART_ROWS,
};
use crate::config::{Feature, Pipeline, Source, Window};
use crate::error::{Error, Result};
use crate::guard::guard;
use crate::memory::trace;
use crate::quality::{QualityReport, Severity};

/// One window of a source in [`Aggregated::add`]: its features, its rows
/// (lazily, whole: what a failed part falls back to) and its group-by by parts.
pub(super) struct WindowGroup<'a> {
    pub(super) window: Option<Window>,
    pub(super) feats: Vec<&'a Feature>,
    pub(super) rows: LazyFrame,
    /// The `__rows_` column counting each account's rows.
    pub(super) has_rows: String,
    pub(super) plan: PartPlan,
}

/// Step 4: aggregate child sources per account and window, then row-level features.
/// One group-by of a source: the aggregate features of one window, per account.
pub(super) struct Part<'a> {
    /// `__aid`, one column per feature, and `has_rows` (rows per account).
    pub(super) agg: DataFrame,
    pub(super) has_rows: String,
    pub(super) source: &'a str,
    pub(super) window: Option<Window>,
    pub(super) features: Vec<&'a Feature>,
    /// Each feature's value over no rows, for the accounts without rows.
    pub(super) no_rows: Vec<Expr>,
}

/// The aggregate features of every source linked so far (step 4's group-bys,
/// run as each source is linked so its rows can be freed before the next).
#[derive(Default)]
pub(super) struct Aggregated<'a> {
    pub(super) parts: Vec<Part<'a>>,
    /// Each time-indexed source's date range, for the hint of an empty window.
    pub(super) ranges: HashMap<String, (String, String, String)>,
    /// An expression failed (reported): no frame.
    pub(super) failed: bool,
    /// Groups started so far (window by source), which numbers their
    /// `__rows_` columns.
    pub(super) groups: usize,
}

impl<'a> Aggregated<'a> {
    /// Aggregates the features over linked source `src` (rows `df`), one
    /// group-by per window, every window's parts ([`account_parts`]) on all
    /// threads at once.
    pub(super) fn add(
        &mut self,
        p: &'a Pipeline,
        src: &'a Source,
        df: &DataFrame,
        report: &mut QualityReport,
    ) -> Result<()> {
        // A time column that could not be read as dates has no months-since
        // column: its error is reported, and every windowed feature of the
        // source would only add a follow-on error about an internal column.
        if let Some(t) = &src.time {
            if df.column(&months_since(t)).is_err() && report.has_errors() {
                self.failed = true;
                return Ok(());
            }
        }
        if let Some(r) = date_range(src, df) {
            self.ranges.insert(src.name.clone(), r);
        }
        let mut windows: BTreeMap<Option<Window>, Vec<&'a Feature>> = BTreeMap::new();
        for f in &p.features {
            if f.source.as_deref() == Some(src.name.as_str()) {
                windows.entry(f.window).or_default().push(f);
            }
        }
        // Whether the rows are already in time order: one pass, at most once per source.
        let mut time_ordered: Option<bool> = None;
        let groups: Vec<WindowGroup<'a>> = windows
            .into_iter()
            .map(|(window, feats)| self.window_group(src, df, window, feats, &mut time_ordered))
            .collect();
        let together = group_in_parts(src, df, &groups)?;
        for (g, done) in groups.into_iter().zip(together) {
            self.finish(p, src, df, g, done, report)?;
        }
        Ok(())
    }

    /// The group-by of one window of `src`'s features: the window's rows
    /// (`inside`), in time order within each account when first()/last()
    /// read them (`by`), and the columns it reads.
    fn window_group(
        &mut self,
        src: &'a Source,
        df: &DataFrame,
        window: Option<Window>,
        feats: Vec<&'a Feature>,
        time_ordered: &mut Option<bool>,
    ) -> WindowGroup<'a> {
        let mut inside: Option<(String, i32, i32)> = None;
        let mut by: Option<[String; 3]> = None;
        let mut lf = df.clone().lazy();
        if let Some(t) = &src.time {
            let ms = months_since(t);
            let (lo, hi) = match window {
                Some(w) => (w.offset as i32, (w.offset + w.months - 1) as i32),
                None => (0, i32::MAX),
            };
            lf = lf.filter(
                col(ms.as_str())
                    .gt_eq(lit(lo))
                    .and(col(ms.as_str()).lt_eq(lit(hi))),
            );
            inside = Some((ms, lo, hi));
            // first()/last() mean earliest/latest: order by time, but only when used.
            let ordered = feats.iter().any(|f| {
                let e = f.expr_text.to_ascii_lowercase();
                e.contains("first") || e.contains("last")
            });
            if ordered && !*time_ordered.get_or_insert_with(|| in_time_order(df, t)) {
                // Each account's rows as a stable sort by (time, row)
                // orders them, led by the account.
                let b = [AID.to_string(), t.clone(), ROW.to_string()];
                lf = lf.sort_by_exprs(
                    b.iter().map(|c| col(c.as_str())).collect::<Vec<_>>(),
                    SortMultipleOptions::default().with_maintain_order(true),
                );
                by = Some(b);
            }
        }
        // Which accounts have rows in this group: the others get each
        // expression's value over no rows.
        let has_rows = format!("__rows_{}", self.groups);
        self.groups += 1;
        let mut exprs: Vec<Expr> = feats
            .iter()
            .map(|f| f.expr.clone().alias(f.name.as_str()))
            .collect();
        exprs.push(len().alias(has_rows.as_str()));
        // The columns the group-by reads.
        let mut keep: Vec<PlSmallStr> = vec![AID.into()];
        let named = exprs
            .iter()
            .flat_map(|e| e.clone().meta().root_names())
            .chain(inside.iter().map(|i| i.0.as_str().into()))
            .chain(by.iter().flatten().map(|c| c.as_str().into()));
        for c in named {
            if !keep.contains(&c) && df.column(&c).is_ok() {
                keep.push(c);
            }
        }
        let in_runs = is_flagged_sorted(df) || by.is_some();
        WindowGroup {
            window,
            feats,
            rows: lf,
            has_rows,
            plan: PartPlan {
                keep,
                inside,
                by,
                exprs,
                in_runs,
            },
        }
    }

    /// A window's aggregates (`done`: from its parts, `None` when a part
    /// failed, then it runs whole to name what fails), checked, with each
    /// feature's value over no rows, kept as a [`Part`].
    fn finish(
        &mut self,
        p: &'a Pipeline,
        src: &'a Source,
        df: &DataFrame,
        g: WindowGroup<'a>,
        done: Option<DataFrame>,
        report: &mut QualityReport,
    ) -> Result<()> {
        let WindowGroup {
            window,
            feats,
            rows: lf,
            has_rows,
            plan,
        } = g;
        let agg = match done {
            Some(a) => Ok(a),
            None => {
                let t_group = std::time::Instant::now();
                let agg = guard(|| lf.clone().group_by([col(AID)]).agg(plan.exprs).collect());
                trace(&format!("aggregate {} {window:?}", src.name), t_group);
                agg
            }
        };
        let agg = match agg {
            Ok(a) => a,
            Err(e) => {
                name_failing(p, src, &lf, &feats, &e, report)?;
                self.failed = true;
                return Ok(());
            }
        };
        let mut no_rows = Vec::new();
        for f in &feats {
            if let Ok(c) = agg.column(&f.name) {
                if matches!(c.dtype(), DataType::List(_)) {
                    self.failed = true;
                    report.push(feature_finding(p, f, Severity::Error, "not_an_aggregate", 0, format!("`{}` gives several values per account; features over source `{}` must aggregate its rows", f.expr_text, src.name), "wrap it in an aggregate such as sum(...), avg(...), max(...), last(...) or count(*)"));
                } else if let Some(v) = over_no_rows(df, f) {
                    no_rows.push(
                        when(col(has_rows.as_str()).is_null())
                            .then(lit(v))
                            .otherwise(col(f.name.as_str()))
                            .alias(f.name.as_str()),
                    );
                }
            }
        }
        self.parts.push(Part {
            agg,
            has_rows,
            source: &src.name,
            window,
            features: feats,
            no_rows,
        });
        Ok(())
    }
}

/// Every window of `groups` over every part of `df`'s rows at once, on all
/// threads; each window's parts stacked in order, `None` for a window one of
/// whose parts failed.
fn group_in_parts(
    src: &Source,
    df: &DataFrame,
    groups: &[WindowGroup<'_>],
) -> Result<Vec<Option<DataFrame>>> {
    let t_all = std::time::Instant::now();
    let parts = account_parts(df, PART_ROWS)?;
    let tasks: Vec<(usize, (usize, usize))> = (0..groups.len())
        .flat_map(|w| parts.iter().map(move |&r| (w, r)))
        .collect();
    let done = run_parts(tasks.len(), |i| {
        let (w, (start, n)) = tasks[i];
        guard(|| groups[w].plan.group(df, start, n)).ok()
    });
    let mut done = done.into_iter();
    let together: Vec<Option<DataFrame>> = groups
        .iter()
        .map(|_| {
            let mut all: Option<DataFrame> = None;
            let mut ok = true;
            for part in done.by_ref().take(parts.len()) {
                match (part, all.as_mut()) {
                    (Some(p), Some(a)) => ok &= a.vstack_mut_owned(p).is_ok(),
                    (Some(p), None) => all = Some(p),
                    (None, _) => ok = false,
                }
            }
            all.filter(|_| ok)
        })
        .collect();
    if together.iter().any(Option::is_some) {
        trace(
            &format!(
                "aggregate {}'s {} window(s) in {} part(s)",
                src.name,
                together.len(),
                parts.len()
            ),
            t_all,
        );
    }
    Ok(together)
}

/// Which of a failed window's expressions fail, run one at a time to name
/// each; an internal error when none does on its own.
fn name_failing(
    p: &Pipeline,
    src: &Source,
    lf: &LazyFrame,
    feats: &[&Feature],
    e: &str,
    report: &mut QualityReport,
) -> Result<()> {
    let before = report.findings.len();
    for f in feats {
        // Find which expression fails, one at a time, to name it.
        let single = guard(|| {
            lf.clone()
                .group_by([col(AID)])
                .agg([f.expr.clone().alias(f.name.as_str())])
                .collect()
        });
        if let Err(e1) = single {
            report.push(feature_finding(p, f, Severity::Error, "bad_feature", 0, format!("`{}` over source `{}` failed: {e1}", f.expr_text, src.name), "fix the expression; it is Polars SQL evaluated per account over the source's rows in the window"));
        }
    }
    if report.findings.len() == before && !report.has_errors() {
        return Err(Error::Internal(format!(
            "aggregating source {}: {e}",
            src.name
        )));
    }
    Ok(())
}

/// What aggregate feature `f` is over no rows of `df`'s source, when that is a
/// number: 0 for `sum(...)` and `count(*)` (and `sum(mrr) * 12`), while `avg`,
/// `max`, `last`, … have no value over no rows (None: the account stays
/// missing and is imputed per `missing`). SQL's SUM is NULL over no rows, so
/// the expression is evaluated with SUM read as TOTAL (a sum that is 0 then).
pub(super) fn over_no_rows(df: &DataFrame, f: &Feature) -> Option<f64> {
    let empty = df.clear();
    let expr = polars::sql::sql_expr(sums_as_totals(&f.expr_text)).ok()?;
    let out = guard(|| {
        empty
            .lazy()
            .select([expr.clone().alias("__none")])
            .collect()
    })
    .ok()?;
    if out.height() != 1 {
        return None;
    }
    let v = out.column("__none").ok()?.cast(&DataType::Float64).ok()?;
    v.f64().ok()?.get(0).filter(|x| x.is_finite())
}

/// [`over_no_rows`] for a feature alone (no source read): over an empty
/// frame of its columns as numbers. For `strata sql`, which writes this
/// value for the accounts without rows.
pub fn over_no_rows_value(f: &Feature) -> Option<f64> {
    let mut names = f.expr.clone().meta().root_names();
    names.sort();
    names.dedup();
    let cols: Vec<Column> = names
        .into_iter()
        .map(|n| Column::new_empty(n, &DataType::Float64))
        .collect();
    let df = DataFrame::new_infer_height(cols).ok()?;
    over_no_rows(&df, f)
}

/// `text` with every call of SQL `sum(` written `total(` (outside string
/// literals and quoted names).
pub(super) fn sums_as_totals(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
                i += 1;
                continue;
            }
            None if c == '\'' || c == '"' || c == '`' => {
                quote = Some(c);
                out.push(c);
                i += 1;
                continue;
            }
            None => {}
        }
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let is_sum = starts_word
            && i + 3 <= chars.len()
            && chars[i..i + 3]
                .iter()
                .collect::<String>()
                .eq_ignore_ascii_case("sum");
        if is_sum {
            let mut j = i + 3;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j < chars.len() && chars[j] == '(' {
                out.push_str("total");
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Why a feature may be empty for every account, from its source's dates.
/// A time-indexed source's time column and its earliest and latest value.
pub(super) fn date_range(s: &Source, df: &DataFrame) -> Option<(String, String, String)> {
    let t = s.time.as_deref()?;
    let c = df.column(t).ok()?.as_materialized_series().clone();
    let lo = c.min_reduce().ok()?.value().to_string();
    let hi = c.max_reduce().ok()?.value().to_string();
    Some((t.to_string(), lo, hi))
}

#[cfg(test)]
mod no_rows_tests {
    use super::*;

    #[test]
    fn a_feature_alone_knows_its_value_over_no_rows() {
        let p = crate::config::parse(
            "[sources.a]\npath = \"data/sample/2026-11/accounts.csv\"\nid = \"account_id\"\n[sources.r]\npath = \"data/sample/2026-11/revenue.csv\"\naccount = \"account_id\"\ntime = \"month\"\n[[feature]]\nname = \"arr\"\nsource = \"r\"\nexpr = \"sum(mrr) * 12\"\nwindow = 1\n[[feature]]\nname = \"late\"\nsource = \"r\"\nexpr = \"avg(invoices_paid_late)\"\nwindow = 1\n",
            std::path::Path::new("t.toml"),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        )
        .unwrap();
        assert_eq!(over_no_rows_value(&p.features[0]), Some(0.0));
        assert_eq!(over_no_rows_value(&p.features[1]), None);
    }
}
