//! Features: the per-account frame in, a weighted numeric matrix out.
//!
//! Clustering measures distances, so every column must be on a comparable
//! scale and weighted on purpose. For each feature that goes into the matrix
//! (`matrix = true`, the default):
//!
//! * **numeric** — `transform` (`log1p`, `sqrt`: both sign-preserving, so
//!   refunds stay negative), then `winsorize` at two quantiles, then the
//!   `missing` policy (median, mean, zero or a number, in the transformed units),
//!   then `scale` (`zscore` with the population standard deviation, `robust` =
//!   (x − median) / IQR, `minmax`, or `none`). With `indicator = true` a 0/1
//!   column `<name>__missing` records which values were imputed.
//! * **categorical** — one column per level (the `max_levels` most frequent;
//!   the rest become `(other)`, missing values `(missing)` unless
//!   `missing = "mode"`). Each one-hot column is multiplied by 1/√2, so two
//!   accounts in different categories are as far apart as two accounts one
//!   standard deviation apart on a z-scored feature — however many levels
//!   there are. That is what keeps a 20-level industry from swamping ARR.
//!
//! Every column is finally multiplied by the feature's `weight` and, for a
//! feature in a `group`, by `group weight / √(features in the group)`, so a
//! group's total contribution to squared distances is its weight², whatever
//! the number of features in it.
//!
//! Every parameter learned here (centre, scale, imputed value, levels) is kept
//! in [`ColumnInfo`] and written beside the results, as scanpy keeps its
//! parameters with its data.

pub mod extreme;

use std::collections::BTreeMap;

use ndarray::Array2;
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{Feature, Kind, Missing, Pipeline, Scale, Transform};
use crate::error::{Error, Result};
use crate::ingest::AccountFrame;
use crate::schema::ACCOUNT_ID;

/// What one matrix column is and how it was computed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnInfo {
    /// Column name in the matrix (and `x__<name>` in features.parquet).
    pub name: String,
    /// The readable name, from the feature's `label` ("ARR", "industry: Retail");
    /// empty in manifests written before labels.
    #[serde(default)]
    pub label: String,
    /// The feature it comes from.
    pub feature: String,
    /// `numeric`, `indicator` or `level`.
    pub role: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Subtracted after transform and imputation.
    pub center: f64,
    /// Divided by after centring.
    pub scale: f64,
    /// Final multiplier (weight × group factor, × 1/√2 for levels).
    pub multiplier: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imputed_value: Option<f64>,
    pub missing: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<[f64; 2]>,
    /// The feature's unit, for showing its values in business terms
    /// (`number` in manifests written before it).
    #[serde(default = "number_unit")]
    pub unit: crate::config::Unit,
}

fn number_unit() -> crate::config::Unit {
    crate::config::Unit::Number
}

/// The feature matrix handed to clustering.
#[derive(Debug, Clone)]
pub struct FeatureMatrix {
    /// Account ids, in row order (sorted).
    pub ids: Vec<String>,
    pub columns: Vec<ColumnInfo>,
    /// n_accounts × n_columns, ndarray 0.16 (the version linfa uses).
    pub x: Array2<f64>,
}

impl FeatureMatrix {
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

fn transform(t: Transform, v: f64) -> f64 {
    match t {
        Transform::None => v,
        Transform::Log1p => v.signum() * v.abs().ln_1p(),
        Transform::Sqrt => v.signum() * v.abs().sqrt(),
    }
}

/// Quantile by linear interpolation (numpy's default) of sorted data.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Median (linear interpolation); reorders `v`. NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    quantiles(v, &[0.5])[0]
}

/// The quantiles `qs` of `v`, reordered, by selection: each is
/// [`quantile_sorted`] of `v` sorted, to the bit, in O(n) per quantile
/// instead of a sort (less for each after the first when `qs` ascend).
/// NaN when `v` is empty.
pub fn quantiles(v: &mut [f64], qs: &[f64]) -> Vec<f64> {
    if v.is_empty() {
        return vec![f64::NAN; qs.len()];
    }
    // Everything before `from` is at or below everything from it on.
    let mut from = 0;
    qs.iter()
        .map(|&q| {
            let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            // Ascending quantiles select within what is left above the last
            // one; one below it selects over the whole slice again.
            let start = if lo >= from { from } else { 0 };
            v[start..].select_nth_unstable_by(lo - start, f64::total_cmp);
            let at_lo = v[lo];
            let at_hi = if hi == lo {
                at_lo
            } else {
                v[lo + 1..]
                    .iter()
                    .copied()
                    .min_by(|a, b| a.total_cmp(b))
                    .expect("hi is in range")
            };
            from = lo;
            at_lo + (at_hi - at_lo) * (pos - lo as f64)
        })
        .collect()
}

fn sorted_copy(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.par_sort_unstable_by(f64::total_cmp); // equal under total_cmp is equal bits
    s
}

/// One feature's matrix columns, each as a vector of length n.
fn numeric_columns(f: &Feature, raw: &[Option<f64>], factor: f64) -> Vec<(ColumnInfo, Vec<f64>)> {
    let observed: Vec<f64> = raw
        .iter()
        .flatten()
        .map(|&v| transform(f.transform, v))
        .collect();
    let mut sorted = sorted_copy(&observed);
    let clip = f
        .winsorize
        .filter(|_| !sorted.is_empty())
        .map(|[lo, hi]| [quantile_sorted(&sorted, lo), quantile_sorted(&sorted, hi)]);
    if let Some([lo, hi]) = clip {
        for v in &mut sorted {
            *v = v.clamp(lo, hi);
        }
    }
    let missing = raw.len() - observed.len();
    let fill = match f.missing {
        Missing::Median | Missing::Mode => quantile_sorted(&sorted, 0.5),
        Missing::Mean => sorted.iter().sum::<f64>() / sorted.len().max(1) as f64,
        Missing::Value(v) => transform(f.transform, v),
    };
    // A column with no observed value at all is constant 0.
    let fill = if fill.is_finite() { fill } else { 0.0 };
    let values: Vec<f64> = raw
        .iter()
        .map(|v| match v {
            Some(v) => {
                let t = transform(f.transform, *v);
                clip.map(|[lo, hi]| t.clamp(lo, hi)).unwrap_or(t)
            }
            None => fill,
        })
        .collect();
    let n = values.len().max(1) as f64;
    let (center, scale) = match f.scale {
        Scale::None => (0.0, 1.0),
        Scale::ZScore => {
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            (mean, nonzero(var.sqrt()))
        }
        Scale::Robust => {
            let s = sorted_copy(&values);
            let iqr = quantile_sorted(&s, 0.75) - quantile_sorted(&s, 0.25);
            let scale = if iqr > 0.0 {
                iqr
            } else {
                let mean = values.iter().sum::<f64>() / n;
                nonzero((values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt())
            };
            (quantile_sorted(&s, 0.5), scale)
        }
        Scale::MinMax => {
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, nonzero(hi - lo))
        }
    };
    let multiplier = f.weight * factor;
    let col: Vec<f64> = values
        .iter()
        .map(|v| (v - center) / scale * multiplier)
        .collect();
    let mut out = vec![(
        ColumnInfo {
            name: f.name.clone(),
            label: f.label.clone(),
            feature: f.name.clone(),
            role: "numeric".into(),
            level: None,
            center,
            scale,
            multiplier,
            imputed_value: (missing > 0).then_some(fill),
            missing,
            clip,
            unit: f.unit,
        },
        col,
    )];
    if f.indicator {
        let ind: Vec<f64> = raw
            .iter()
            .map(|v| if v.is_none() { multiplier } else { 0.0 })
            .collect();
        out.push((
            ColumnInfo {
                name: format!("{}__missing", f.name),
                label: format!("{} missing", f.label),
                feature: f.name.clone(),
                role: "indicator".into(),
                level: None,
                center: 0.0,
                scale: 1.0,
                multiplier,
                imputed_value: None,
                missing,
                clip: None,
                unit: f.unit,
            },
            ind,
        ));
    }
    out
}

fn nonzero(s: f64) -> f64 {
    if s.is_finite() && s > 1e-12 {
        s
    } else {
        1.0
    }
}

pub const OTHER: &str = "(other)";
pub const MISSING: &str = "(missing)";

/// The levels kept for a categorical feature: most frequent first, ties by name.
pub fn levels(
    raw: &[Option<&str>],
    max_levels: usize,
    missing: Missing,
) -> (Vec<String>, Option<String>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in raw.iter().flatten() {
        *counts.entry(v).or_default() += 1;
    }
    let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mode = by_count.first().map(|(l, _)| l.to_string());
    let mut levels: Vec<String> = by_count
        .iter()
        .take(max_levels)
        .map(|(l, _)| l.to_string())
        .collect();
    if by_count.len() > max_levels {
        levels.push(OTHER.into());
    }
    let has_missing = raw.iter().any(Option::is_none);
    let fill = if missing == Missing::Mode { mode } else { None };
    if has_missing && fill.is_none() {
        levels.push(MISSING.into());
    }
    (levels, fill)
}

fn categorical_columns(
    f: &Feature,
    raw: &[Option<&str>],
    factor: f64,
) -> Vec<(ColumnInfo, Vec<f64>)> {
    let (levels, fill) = levels(raw, f.max_levels, f.missing);
    let index: BTreeMap<&str, usize> = levels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let other = index.get(OTHER).copied();
    let missing_idx = index.get(MISSING).copied();
    let multiplier = f.weight * factor / std::f64::consts::SQRT_2;
    let mut cols = vec![vec![0.0; raw.len()]; levels.len()];
    let missing = raw.iter().filter(|v| v.is_none()).count();
    for (i, v) in raw.iter().enumerate() {
        let level = match v.or(fill.as_deref()) {
            Some(l) => index.get(l).copied().or(other),
            None => missing_idx,
        };
        if let Some(j) = level {
            cols[j][i] = multiplier;
        }
    }
    levels
        .iter()
        .zip(cols)
        .map(|(l, c)| {
            (
                ColumnInfo {
                    name: format!("{}={}", f.name, l),
                    label: format!("{}: {l}", f.label),
                    feature: f.name.clone(),
                    role: "level".into(),
                    level: Some(l.clone()),
                    center: 0.0,
                    scale: 1.0,
                    multiplier,
                    imputed_value: None,
                    missing,
                    clip: None,
                    unit: f.unit,
                },
                c,
            )
        })
        .collect()
}

/// Multiplier of each feature in a group of `members` features with total
/// weight `group_weight`: the group's contribution to squared distances is
/// `group_weight²` however many features it has.
pub fn group_factor(group_weight: f64, members: usize) -> f64 {
    group_weight / (members.max(1) as f64).sqrt()
}

/// Build the feature matrix from the per-account frame.
pub fn build(p: &Pipeline, frame: &AccountFrame) -> Result<FeatureMatrix> {
    let df = &frame.df;
    let ids: Vec<String> = df
        .column(ACCOUNT_ID)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect();
    let in_matrix: Vec<&Feature> = p.features.iter().filter(|f| f.in_matrix).collect();
    let mut group_sizes: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &in_matrix {
        if let Some(g) = &f.group {
            *group_sizes.entry(g.as_str()).or_default() += 1;
        }
    }
    let factor = |f: &Feature| match &f.group {
        Some(g) => group_factor(
            p.groups.get(g).copied().unwrap_or(1.0),
            group_sizes[g.as_str()],
        ),
        None => 1.0,
    };
    let parts: Vec<Result<Vec<(ColumnInfo, Vec<f64>)>>> = in_matrix
        .par_iter()
        .map(|f| {
            let c = df.column(&f.name)?;
            Ok(match f.kind {
                Kind::Numeric => {
                    let raw: Vec<Option<f64>> = c.f64()?.iter().collect();
                    numeric_columns(f, &raw, factor(f))
                }
                Kind::Categorical => {
                    let raw: Vec<Option<&str>> = c.str()?.iter().collect();
                    categorical_columns(f, &raw, factor(f))
                }
            })
        })
        .collect();
    let mut columns = Vec::new();
    let mut data = Vec::new();
    for part in parts {
        for (info, col) in part? {
            columns.push(info);
            data.push(col);
        }
    }
    let n = ids.len();
    let d = columns.len();
    if d == 0 {
        return Err(Error::Internal("the feature matrix has no columns".into()));
    }
    let mut x = Array2::<f64>::zeros((n, d));
    x.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut row)| {
            for (j, col) in data.iter().enumerate() {
                row[j] = col[i];
            }
        });
    Ok(FeatureMatrix { ids, columns, x })
}

/// The frame written as `features.parquet`: id, raw features, and the matrix
/// columns prefixed `x__`.
pub fn to_frame(frame: &AccountFrame, m: &FeatureMatrix) -> Result<DataFrame> {
    let mut cols: Vec<Column> = frame.df.columns().to_vec();
    // The matrix is row-major: its columns copied out block by block of
    // rows (blocks in parallel), not one strided pass per column.
    const BLOCK: usize = 8192;
    let (n, d) = (m.x.nrows(), m.columns.len());
    let mut x: Vec<Vec<f64>> = vec![vec![0.0; n]; d];
    let mut blocks: Vec<Vec<&mut [f64]>> = (0..n.div_ceil(BLOCK)).map(|_| Vec::new()).collect();
    for col in x.iter_mut() {
        for (b, part) in col.chunks_mut(BLOCK).enumerate() {
            blocks[b].push(part);
        }
    }
    blocks
        .into_par_iter()
        .enumerate()
        .for_each(|(b, mut cols)| {
            let rows =
                m.x.slice(ndarray::s![b * BLOCK..((b + 1) * BLOCK).min(n), ..]);
            for (r, row) in rows.outer_iter().enumerate() {
                for (c, v) in cols.iter_mut().zip(row.iter()) {
                    c[r] = *v;
                }
            }
        });
    for (info, v) in m.columns.iter().zip(x) {
        cols.push(Column::new(format!("x__{}", info.name).into(), v));
    }
    Ok(DataFrame::new_infer_height(cols)?)
}

#[cfg(test)]
mod tests;
