//! The 2-D map of the accounts: the first two principal components of the
//! feature matrix, on an even stride of at most [`MAP_POINTS`] accounts.

use std::fmt::Write as _;

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::rundir::read_parquet;
use crate::schema::{column, file};

use super::charts;
use super::format::{primary, profile_name, round3};
use super::load::{Document, RunData};
use crate::cluster::method;
use crate::error::{Error, Result};

/// Accounts drawn on the 2-D map at most.
pub const MAP_POINTS: usize = 3000;

/// The 2-D projection of the accounts.
#[derive(Debug, Clone)]
pub struct Map {
    /// (pc1, pc2, the leading method's segment index into `groups`)
    pub points: Vec<(f64, f64, usize)>,
    /// Every flagged account (an exception), wherever the stride falls.
    pub flagged: Vec<(f64, f64)>,
    /// The leading method, whose segments colour the points.
    pub method: String,
    pub groups: Vec<String>,
    pub total: usize,
    /// Share of variance of each component.
    pub explained: [f64; 2],
}

/// PCA of the normalised matrix (all accounts for the axes, a stride sample
/// for the points). Cost O(n·d² + d³).
pub(super) fn map(
    dir: &Path,
    comparison: &Document,
    matrix: Option<ndarray::ArrayView2<'_, f64>>,
) -> Result<Option<Map>> {
    let fpath = dir.join(file::FEATURES);
    let apath = dir.join(file::ASSIGNMENTS);
    if !fpath.is_file() || !apath.is_file() {
        return Ok(None);
    }
    let schema_cols: Vec<String> = {
        let f = File::open(&fpath).map_err(|e| Error::io("opening", &fpath, e))?;
        let mut r = ParquetReader::new(f);
        r.schema()?
            .iter_names()
            .filter(|n| n.starts_with(column::MATRIX_PREFIX))
            .map(|n| n.to_string())
            .collect()
    };
    if schema_cols.is_empty() {
        return Ok(None);
    }
    // The matrix in memory when the run holds it (its columns are the
    // file's, in order); else (`strata report`) read back from the file.
    let from_file;
    let x = match matrix.filter(|x| x.ncols() == schema_cols.len()) {
        Some(x) => x.reborrow(),
        None => {
            from_file = read_matrix(&fpath, &schema_cols)?;
            from_file.view()
        }
    };
    // The map colours the primary method's segments.
    let primary = primary(comparison);
    let column = column::segment(primary);
    // The segments, and the exceptions when the run has tiers.
    let has_exceptions = {
        let f = File::open(&apath).map_err(|e| Error::io("opening", &apath, e))?;
        ParquetReader::new(f)
            .schema()?
            .iter_names()
            .any(|n| n.as_str() == column::EXCEPTION)
    };
    let mut wanted = vec![column.clone()];
    if has_exceptions {
        wanted.push(column::EXCEPTION.to_string());
    }
    let a = read_parquet(&apath, Some(wanted))?;
    let flag: Vec<bool> = match a.column(column::EXCEPTION) {
        Ok(e) => e
            .as_materialized_series()
            .is_not_null()
            .iter()
            .map(|v| v.unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    };
    let seg = a
        .column(&column)?
        .as_materialized_series()
        .cast(&DataType::UInt32)?;
    let seg: Vec<Option<u32>> = seg.u32()?.iter().collect();
    let (n, d) = x.dim();
    let cols: Vec<ndarray::ArrayView1<'_, f64>> = x.columns().into_iter().collect();
    if n < 3 {
        return Ok(None);
    }
    let (mean, [(v1, l1), (v2, l2)], total_var) = principal_axes(&cols, n);
    let stride = n.div_ceil(MAP_POINTS).max(1);
    let ids: Vec<u32> = comparison
        .segmentations
        .iter()
        .find(|m| m.method == primary)
        .map(|m| m.ids.clone())
        .unwrap_or_default();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort_unstable();
    let groups: Vec<String> = sorted_ids
        .iter()
        .map(|id| {
            let name = profile_name(&comparison.comparison, primary, *id);
            format!("{} {id}: {name}", method::member(primary))
        })
        .collect();
    let project = |i: usize| {
        let (mut x, mut y) = (0.0, 0.0);
        for j in 0..d {
            let c = cols[j][i] - mean[j];
            x += c * v1[j];
            y += c * v2[j];
        }
        (round3(x), round3(y))
    };
    let points = (0..n)
        .step_by(stride)
        .filter_map(|i| {
            let g = sorted_ids.iter().position(|&id| Some(id) == seg[i])?;
            let (x, y) = project(i);
            Some((x, y, g))
        })
        .collect();
    let flagged = (0..n)
        .filter(|&i| flag.get(i).copied().unwrap_or(false))
        .take(MAP_POINTS)
        .map(project)
        .collect();
    Ok(Some(Map {
        points,
        flagged,
        method: primary.to_string(),
        groups,
        total: n,
        explained: [l1 / total_var, l2 / total_var],
    }))
}

/// The matrix columns `names` of a features file, column-major (a missing
/// value as 0).
fn read_matrix(path: &Path, names: &[String]) -> Result<ndarray::Array2<f64>> {
    use ndarray::ShapeBuilder;
    let df = read_parquet(path, Some(names.to_vec()))?;
    let mut values = Vec::with_capacity(df.height() * df.width());
    for c in df.columns() {
        let s = c.as_materialized_series().cast(&DataType::Float64)?;
        values.extend(s.f64()?.iter().map(|v| v.unwrap_or(0.0)));
    }
    Ok(
        ndarray::Array2::from_shape_vec((df.height(), df.width()).f(), values)
            .expect("one value per row and column"),
    )
}

/// The columns' means, their first two principal axes with their variances
/// (power iteration, then deflation), and the total variance. The
/// covariances are computed at once, each summed in row order, so they do
/// not depend on the thread count.
#[allow(clippy::type_complexity)]
fn principal_axes(
    cols: &[ndarray::ArrayView1<'_, f64>],
    n: usize,
) -> (Vec<f64>, [(Vec<f64>, f64); 2], f64) {
    use rayon::prelude::*;
    let d = cols.len();
    let mean: Vec<f64> = cols
        .iter()
        .map(|c| c.iter().sum::<f64>() / n as f64)
        .collect();
    let pairs: Vec<(usize, usize)> = (0..d).flat_map(|a| (a..d).map(move |b| (a, b))).collect();
    // Each pair's products summed in row order, rows walked once per group
    // of pairs (the matrix in memory is row-major: a row's values are
    // together), one group per thread; a row's centred values are taken
    // once per group, not once per pair (the same values, so the same sums).
    let per = pairs.len().div_ceil(rayon::current_num_threads()).max(1);
    let sums: Vec<f64> = pairs
        .par_chunks(per)
        .flat_map_iter(|group| {
            // -0.0: where `Iterator::sum` starts (so a sum of -0.0s stays -0.0).
            let mut acc = vec![-0.0f64; group.len()];
            let mut used = vec![false; d];
            for &(a, b) in group {
                used[a] = true;
                used[b] = true;
            }
            let used: Vec<usize> = (0..d).filter(|&j| used[j]).collect();
            let mut c = vec![0.0f64; d];
            for i in 0..n {
                for &j in &used {
                    c[j] = cols[j][i] - mean[j];
                }
                for (s, &(a, b)) in acc.iter_mut().zip(group) {
                    *s += c[a] * c[b];
                }
            }
            acc.into_iter().map(|s| s / (n - 1) as f64)
        })
        .collect();
    let mut cov = vec![vec![0.0; d]; d];
    for (&(a, b), &s) in pairs.iter().zip(&sums) {
        cov[a][b] = s;
        cov[b][a] = s;
    }
    let total_var: f64 = (0..d).map(|i| cov[i][i]).sum::<f64>().max(1e-300);
    let (v1, l1) = top_eigen(&cov);
    // Deflate and take the second component.
    let mut cov2 = cov.clone();
    for a in 0..d {
        for b in 0..d {
            cov2[a][b] -= l1 * v1[a] * v1[b];
        }
    }
    let (v2, l2) = top_eigen(&cov2);
    (mean, [(v1, l1), (v2, l2)], total_var)
}

/// Counts as chart values, rows.
pub(super) fn matrix(rows: &[Vec<u64>]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect()
}

/// Largest eigenvalue and its unit eigenvector of a symmetric PSD matrix (power
/// iteration from a fixed start, so the result is deterministic; sign fixed so
/// the largest component is positive).
pub(super) fn top_eigen(m: &[Vec<f64>]) -> (Vec<f64>, f64) {
    let d = m.len();
    let mut v: Vec<f64> = (0..d).map(|i| 1.0 + i as f64 * 1e-3).collect();
    let mut lambda = 0.0;
    for _ in 0..500 {
        let w: Vec<f64> = (0..d)
            .map(|i| (0..d).map(|j| m[i][j] * v[j]).sum())
            .collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < 1e-300 {
            break;
        }
        let next: Vec<f64> = w.iter().map(|x| x / norm).collect();
        let diff: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
        v = next;
        lambda = norm;
        if diff < 1e-12 {
            break;
        }
    }
    let big = v
        .iter()
        .copied()
        .max_by(|a, b| a.abs().total_cmp(&b.abs()))
        .unwrap_or(1.0);
    if big < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    (v, lambda)
}

pub(super) fn map_section(h: &mut String, r: &RunData) -> Result<()> {
    h.push_str("<section id=\"map\"><h2>Map of accounts</h2>");
    match &r.map {
        Some(m) => {
            let svg = charts::scatter(
                &m.points,
                &m.flagged,
                &m.groups,
                "flagged to move tier (upgrade or downgrade candidate)",
                (
                    &format!(
                        "principal component 1 ({:.0}% of variance)",
                        m.explained[0] * 100.0
                    ),
                    &format!(
                        "principal component 2 ({:.0}% of variance)",
                        m.explained[1] * 100.0
                    ),
                ),
            )
            .map_err(Error::Internal)?;
            let _ = write!(
                h,
                "<p class=\"note\">Each dot is an account: the normalised feature matrix projected on its first two principal components (the two directions in which accounts differ most), coloured by {} {}; {} of {} accounts shown{}. Black rings mark the {} flagged accounts{}. Accounts close together behave alike; the map flattens many features into two, so segments can overlap here and still be apart in the data.</p>{svg}",
                method::label(&m.method),
                method::noun(&m.method),
                m.points.len(),
                m.total,
                if m.points.len() < m.total { " (an even sample)" } else { "" },
                m.flagged.len(),
                if m.flagged.len() >= MAP_POINTS { " (the first of them)" } else { "" },
            );
        }
        None => h.push_str("<p>No feature matrix in this run directory.</p>"),
    }
    h.push_str("</section>\n");
    Ok(())
}
