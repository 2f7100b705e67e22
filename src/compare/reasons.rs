//! An exception's reasons: the features that tell the account's current
//! tier from the suggested one, read from each tier's medians (raw and in
//! matrix units) and robust spread.

use super::{CurrentTiers, Reason};
use crate::config::{Kind, Pipeline};
use crate::error::{Error, Result};
use crate::features::{median, quantiles, FeatureMatrix};
use crate::ingest::AccountFrame;
use polars::prelude::Float64Chunked;
use rayon::prelude::*;

/// The numeric matrix features' raw values and per-tier medians (raw and in
/// matrix units), from which an exception's reasons are read.
pub(super) struct TierMedians<'a> {
    numeric: Vec<&'a crate::config::Feature>,
    /// Each feature's column, in one chunk (a value is an offset lookup).
    raw: Vec<Float64Chunked>,
    /// Each feature's matrix column (`usize::MAX`: none).
    scaled: Vec<usize>,
    med_raw: Vec<Vec<f64>>,
    med_x: Vec<Vec<f64>>,
    /// Each tier's robust spread in matrix units (IQR ÷ 1.349, a standard
    /// deviation under normality).
    spread_x: Vec<Vec<f64>>,
}

/// How far apart two tiers' medians must be, in their pooled robust
/// standard deviations, for a feature to be a reason (a medium effect).
pub const MIN_SEPARATION: f64 = 0.5;
/// And how far apart in plain units: medians within 10% of each other (83%
/// against 78%) read as the same to a CSM, however tight the tiers.
pub const MIN_RELATIVE_GAP: f64 = 0.1;

impl<'a> TierMedians<'a> {
    pub(super) fn new(
        p: &'a Pipeline,
        frame: &AccountFrame,
        m: &FeatureMatrix,
        tiers: &CurrentTiers,
    ) -> Result<TierMedians<'a>> {
        let nt = tiers.names.len();
        let numeric: Vec<&crate::config::Feature> = p
            .features
            .iter()
            .filter(|f| f.in_matrix && f.kind == Kind::Numeric)
            .collect();
        let raw: Vec<Float64Chunked> = numeric
            .iter()
            .map(|f| {
                frame
                    .df
                    .column(&f.name)
                    .and_then(|c| c.f64().map(|c| c.rechunk().into_owned()))
                    .map_err(Error::from)
            })
            .collect::<Result<_>>()?;
        let scaled: Vec<usize> = numeric
            .iter()
            .map(|f| {
                m.columns
                    .iter()
                    .position(|c| c.feature == f.name && c.role == "numeric")
                    .unwrap_or(usize::MAX)
            })
            .collect();
        let mut tier_size = vec![0usize; nt];
        for t in tiers.labels.iter().flatten() {
            tier_size[*t] += 1;
        }
        // Each account's tier as 4 bytes (u32::MAX: none), read once per
        // feature instead of the 16 of an Option<usize>.
        let tier_of: Vec<u32> = tiers
            .labels
            .par_iter()
            .map(|t| t.map_or(u32::MAX, |t| t as u32))
            .collect();
        // Per feature, per tier: the raw median, and the matrix median and
        // robust spread. Features in parallel, each one pass over the
        // accounts in order; quantiles by selection.
        type PerTier = (Vec<f64>, Vec<f64>, Vec<f64>);
        let per_feature: Vec<PerTier> = (0..numeric.len())
            .into_par_iter()
            .map(|fi| {
                let by_tier = || -> Vec<Vec<f64>> {
                    tier_size.iter().map(|&s| Vec::with_capacity(s)).collect()
                };
                let (mut r, mut xs) = (by_tier(), by_tier());
                let column = (scaled[fi] != usize::MAX).then(|| m.x.column(scaled[fi]));
                for (i, (&t, v)) in tier_of.iter().zip(raw[fi].iter()).enumerate() {
                    if t == u32::MAX {
                        continue;
                    }
                    let t = t as usize;
                    if let Some(v) = v {
                        r[t].push(v);
                    }
                    if let Some(c) = &column {
                        xs[t].push(c[i]);
                    }
                }
                let mut med_raw = vec![f64::NAN; nt];
                let (mut med_x, mut spread_x) = (vec![f64::NAN; nt], vec![f64::NAN; nt]);
                for ti in 0..nt {
                    med_raw[ti] = median(&mut r[ti]);
                    if scaled[fi] != usize::MAX {
                        let q = quantiles(&mut xs[ti], &[0.25, 0.5, 0.75]);
                        med_x[ti] = q[1];
                        spread_x[ti] = (q[2] - q[0]) / 1.349;
                    }
                }
                (med_raw, med_x, spread_x)
            })
            .collect();
        let mut med_raw = Vec::with_capacity(numeric.len());
        let mut med_x = Vec::with_capacity(numeric.len());
        let mut spread_x = Vec::with_capacity(numeric.len());
        for (r, x, s) in per_feature {
            med_raw.push(r);
            med_x.push(x);
            spread_x.push(s);
        }
        Ok(TierMedians {
            numeric,
            raw,
            scaled,
            med_raw,
            med_x,
            spread_x,
        })
    }

    /// The features that tell account `i`'s current tier from the suggested
    /// one and on which it looks like the suggested tier: the two tiers'
    /// medians at least [`MIN_SEPARATION`] pooled robust standard deviations
    /// apart and more than [`MIN_RELATIVE_GAP`] apart in plain units, and the account past
    /// the midpoint between them, on the suggested tier's side. Ranked by
    /// that separation, at most three.
    pub(super) fn reasons(
        &self,
        i: usize,
        cur: usize,
        sug: usize,
        m: &FeatureMatrix,
        tiers: &CurrentTiers,
    ) -> Vec<Reason> {
        let mut scored: Vec<(f64, usize)> = (0..self.numeric.len())
            .filter(|&fi| self.scaled[fi] != usize::MAX && self.raw[fi].get(i).is_some())
            .filter_map(|fi| {
                let f = self.numeric[fi];
                let gap = self.med_x[fi][sug] - self.med_x[fi][cur];
                let pooled = ((self.spread_x[fi][cur].powi(2) + self.spread_x[fi][sug].powi(2))
                    / 2.0)
                    .sqrt()
                    .max(1e-9);
                let separation = gap.abs() / pooled;
                let (a, b) = (self.med_raw[fi][cur], self.med_raw[fi][sug]);
                let same = f.unit.format(a) == f.unit.format(b)
                    || (a - b).abs() <= MIN_RELATIVE_GAP * a.abs().max(b.abs());
                if !separation.is_finite() || separation < MIN_SEPARATION || same {
                    return None;
                }
                // Past the midpoint, towards the suggested tier's median, in
                // matrix units and in raw ones (a transform is monotone).
                let mid = (self.med_x[fi][sug] + self.med_x[fi][cur]) / 2.0;
                let toward = (m.x[[i, self.scaled[fi]]] - mid) * gap.signum();
                let raw_mid = (self.med_raw[fi][sug] + self.med_raw[fi][cur]) / 2.0;
                let raw_toward = (self.raw[fi].get(i)? - raw_mid)
                    * (self.med_raw[fi][sug] - self.med_raw[fi][cur]);
                (toward > 0.0 && raw_toward > 0.0).then_some((separation, fi))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .iter()
            .take(3)
            .map(|&(_, fi)| {
                let f = self.numeric[fi];
                let v = self.raw[fi].get(i).unwrap_or(f64::NAN);
                Reason {
                    feature: f.name.clone(),
                    value: v,
                    current_tier_median: self.med_raw[fi][cur],
                    suggested_tier_median: self.med_raw[fi][sug],
                    text: format!(
                        "{} {} (typical {} {}, {} {})",
                        f.label,
                        f.unit.format(v),
                        tiers.names[sug],
                        f.unit.format(self.med_raw[fi][sug]),
                        tiers.names[cur],
                        f.unit.format(self.med_raw[fi][cur])
                    ),
                }
            })
            .collect()
    }
}
