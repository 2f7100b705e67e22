//! The features in their business units, as a tree reads them: numeric
//! features as they are (ARR in dollars, not the log-scaled matrix column),
//! categorical features as one 0/1 column per common level.

use ndarray::Array2;
use polars::prelude::*;

use crate::config::{Kind, Pipeline, TierSource, Unit};
use crate::error::Result;
use crate::ingest::AccountFrame;

/// Most levels of one categorical feature a rule may test.
pub const MAX_LEVELS: usize = 12;

/// One column of the table.
#[derive(Debug, Clone)]
pub struct Column {
    pub feature: String,
    pub label: String,
    pub unit: Unit,
    /// The level this 0/1 column marks, for a categorical feature.
    pub level: Option<String>,
    /// Every value of the column on the accounts it was built for, sorted,
    /// for placing a rounded threshold between two of them.
    pub sorted: Vec<f64>,
}

impl Column {
    /// Feature `f`'s column (of `level`, for a categorical one) holding `v`.
    fn of(f: &crate::config::Feature, level: Option<&str>, v: &[f64]) -> Column {
        let mut sorted = v.to_vec();
        sorted.sort_by(f64::total_cmp);
        Column {
            feature: f.name.clone(),
            label: f.label.clone(),
            unit: f.unit,
            level: level.map(str::to_string),
            sorted,
        }
    }
}

/// Rows (accounts) × columns in business units.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<Column>,
    pub x: Array2<f64>,
}

/// The features a rule may use: clustered on (never an outcome or a helper),
/// and not the tier itself.
pub fn rule_features(p: &Pipeline) -> Vec<&crate::config::Feature> {
    let tier = match p.tiers.as_ref().map(|t| &t.source) {
        Some(TierSource::Feature(f)) | Some(TierSource::Column(f)) => Some(f.as_str()),
        _ => None,
    };
    p.features
        .iter()
        .filter(|f| f.in_matrix && Some(f.name.as_str()) != tier)
        .collect()
}

/// The table of `rows` (indices into the frame). A missing number is the
/// median of the others (a rule's test on it then follows the typical
/// account); a missing level is no level.
pub fn build(p: &Pipeline, frame: &AccountFrame, rows: &[usize]) -> Result<Table> {
    let mut columns = Vec::new();
    let mut values: Vec<Vec<f64>> = Vec::new();
    for f in rule_features(p) {
        let col = frame.df.column(&f.name)?;
        match f.kind {
            Kind::Numeric => {
                let ca = col.cast(&DataType::Float64)?;
                let ca = ca.f64()?;
                let raw: Vec<Option<f64>> = rows
                    .iter()
                    .map(|&i| ca.get(i).filter(|v| v.is_finite()))
                    .collect();
                let mut seen: Vec<f64> = raw.iter().flatten().copied().collect();
                if seen.is_empty() {
                    continue;
                }
                let fill = crate::features::median(&mut seen);
                let v: Vec<f64> = raw.iter().map(|x| x.unwrap_or(fill)).collect();
                columns.push(Column::of(f, None, &v));
                values.push(v);
            }
            Kind::Categorical => {
                let ca = col.str()?;
                let raw: Vec<Option<&str>> = rows.iter().map(|&i| ca.get(i)).collect();
                let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
                for v in raw.iter().flatten() {
                    *counts.entry(v).or_default() += 1;
                }
                let mut levels: Vec<(&str, usize)> = counts.into_iter().collect();
                levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                // One level of two carries all there is to say.
                let keep = if levels.len() == 2 { 1 } else { MAX_LEVELS };
                for (level, _) in levels.into_iter().take(keep) {
                    let v: Vec<f64> = raw
                        .iter()
                        .map(|x| f64::from(u8::from(*x == Some(level))))
                        .collect();
                    columns.push(Column::of(f, Some(level), &v));
                    values.push(v);
                }
            }
        }
    }
    // Column-major: a tree reads one column at a time.
    use ndarray::ShapeBuilder;
    let shape = (rows.len(), columns.len()).f();
    let x = Array2::from_shape_vec(shape, values.concat()).expect("one value per row and column");
    Ok(Table { columns, x })
}

/// Share of the accounts a threshold's rounding may move to the other side
/// of it (see [`round_threshold`]).
pub const ROUNDING_SHARE: f64 = 0.002;

/// A threshold a person can type: the number with the fewest significant
/// digits that moves at most [`ROUNDING_SHARE`] of the values of `sorted`
/// (at least none) to the other side of `split`. `x >= t` then holds for
/// the values the split sent right, but for those few. The rule written
/// with it is what is measured, so its agreement counts them.
pub fn round_threshold(sorted: &[f64], split: f64) -> f64 {
    let tolerance = (sorted.len() as f64 * ROUNDING_SHARE).floor() as usize;
    let at = sorted.partition_point(|&v| v <= split);
    let (Some(&left), Some(&right)) = (
        at.checked_sub(1).and_then(|i| sorted.get(i)),
        sorted.get(at),
    ) else {
        return split;
    };
    // Values on the other side of `t` than of `split`.
    let moved = |t: f64| {
        if t > split {
            sorted.partition_point(|&v| v < t) - at
        } else {
            at - sorted.partition_point(|&v| v < t)
        }
    };
    let top = left.abs().max(right.abs()).max(f64::MIN_POSITIVE);
    let mut exp = top.log10().floor() as i32 + 1;
    while exp > -12 {
        let step = 10f64.powi(exp);
        let snap = |t: f64| {
            if exp < 0 {
                (t * 10f64.powi(-exp)).round() / 10f64.powi(-exp)
            } else {
                t
            }
        };
        // The multiple of the step inside the gap, else the nearest ones.
        let inside = snap((left / step).floor() * step + step);
        if inside > left && inside <= right {
            return inside;
        }
        let (down, up) = (
            snap((split / step).floor() * step),
            snap((split / step).ceil() * step),
        );
        let best = [down, up]
            .into_iter()
            .filter(|&t| t != 0.0 || left < 0.0)
            .min_by_key(|&t| moved(t));
        if let Some(t) = best.filter(|&t| moved(t) <= tolerance) {
            return t;
        }
        exp -= 1;
    }
    right
}

#[cfg(test)]
mod tests {
    use super::round_threshold;

    #[test]
    fn a_threshold_is_rounded_only_within_its_gap() {
        // ARR values: the split falls between $117,400 and $121,900.
        let arr = [20_000.0, 117_400.0, 121_900.0, 400_000.0];
        assert_eq!(round_threshold(&arr, 119_650.0), 120_000.0);
        // A narrow gap keeps more digits.
        let narrow = [118_230.0, 118_260.0];
        assert_eq!(round_threshold(&narrow, 118_245.0), 118_240.0);
        // Shares.
        assert_eq!(round_threshold(&[0.41, 0.453, 0.47], 0.4615), 0.46);
        // Counts between 18 and 19: 19 itself (x >= 19).
        assert_eq!(round_threshold(&[17.0, 18.0, 19.0, 25.0], 18.5), 19.0);
        // Negative values.
        assert_eq!(round_threshold(&[-40.0, -12.0, 30.0], -26.0), -30.0);
        // 0/1 levels.
        assert_eq!(round_threshold(&[0.0, 0.0, 1.0], 0.5), 1.0);
        // Many values: a rounder threshold may move at most 0.2% of them.
        let many: Vec<f64> = (0..10_000).map(|i| 0.5 + i as f64 * 0.00004).collect();
        let t = round_threshold(&many, 0.854_78);
        assert_eq!(t, 0.855);
        let moved = many.iter().filter(|&&v| v > 0.854_78 && v < t).count();
        assert!(moved <= 20, "{moved}");
    }
}
