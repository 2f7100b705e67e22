//! Values no real account has: a warning for each numeric feature whose
//! value for some account is more than [`FACTOR`] times a robust scale away
//! from the feature's median (the median absolute deviation, or the mean
//! absolute deviation when over half the accounts share one value). Such a
//! value (an MRR of 1e300, a unit slip of 10⁹) would stretch the feature's
//! scale and could merge or split segments on its own. O(n) per feature
//! (medians by selection, not sorting: this runs on every run, at any size).

use crate::config::{Kind, Pipeline};
use crate::error::Result;
use crate::ingest::{feature_finding, AccountFrame};
use crate::quality::{Example, Finding, Severity};
use crate::schema::ACCOUNT_ID;

/// How many robust scales from the median a value must be to be named.
pub const FACTOR: f64 = 1e6;

/// The `extreme_value` warnings of `frame`'s numeric matrix features.
pub fn extreme_values(p: &Pipeline, frame: &AccountFrame) -> Result<Vec<Finding>> {
    let ids = frame.df.column(ACCOUNT_ID)?.str()?.clone();
    let mut out = Vec::new();
    for f in p
        .features
        .iter()
        .filter(|f| f.in_matrix && f.kind == Kind::Numeric)
    {
        let col = frame.df.column(&f.name)?.f64()?.clone();
        let values: Vec<f64> = col.iter().flatten().filter(|v| v.is_finite()).collect();
        if let Some(c) = constant(p, f, &values) {
            out.push(c);
            continue;
        }
        let Some((median, scale)) = centre_and_scale(&values) else {
            continue;
        };
        let far: Vec<(usize, f64)> = col
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let v = v?;
                ((v - median).abs() > FACTOR * scale).then_some((i, v))
            })
            .collect();
        if far.is_empty() {
            continue;
        }
        let mut finding = feature_finding(
            p,
            f,
            Severity::Warning,
            "extreme_value",
            far.len(),
            format!(
                "{} account(s) have a `{}` more than a million times its typical spread from its median {median} (e.g. {} = {}): such a value stretches the feature's scale and can merge or split segments on its own",
                far.len(),
                f.name,
                ids.get(far[0].0).unwrap_or(""),
                far[0].1
            ),
            &format!(
                "check these accounts' values at the source; `winsorize = [0.01, 0.99]` on feature `{}` caps them, and a [[check]] with `max` on its source column makes them an error",
                f.name
            ),
        );
        finding.examples = far
            .iter()
            .take(p.quality.max_examples)
            .map(|&(i, v)| Example {
                row: None,
                line: None,
                value: Some(format!("{} = {v}", ids.get(i).unwrap_or(""))),
            })
            .collect();
        out.push(finding);
    }
    Ok(out)
}

/// A clustered feature with one value for every account (`0 * seats`, a
/// column that is always the same): it cannot tell accounts apart.
fn constant(p: &Pipeline, f: &crate::config::Feature, values: &[f64]) -> Option<Finding> {
    let first = *values.first()?;
    if values.len() < 2 || values.iter().any(|&v| v != first) {
        return None;
    }
    Some(feature_finding(
        p,
        f,
        Severity::Warning,
        "constant_feature",
        values.len(),
        format!(
            "feature `{}` is {first} for every account that has it ({} accounts): it cannot tell accounts apart, so it adds nothing to the segments",
            f.name,
            values.len()
        ),
        &format!(
            "check its expression (`{}`) and its source column; remove the feature, or set matrix = false if it is kept for the report",
            f.expr_text
        ),
    ))
}

/// The median of `values` and a robust scale around it: the median absolute
/// deviation, or the mean absolute deviation when that is 0; None when both
/// are 0 (every value the same) or there are no values.
fn centre_and_scale(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    let median = select_median(&mut v);
    let mut dev: Vec<f64> = values.iter().map(|x| (x - median).abs()).collect();
    let mad = select_median(&mut dev);
    let scale = if mad > 0.0 {
        mad
    } else {
        dev.iter().sum::<f64>() / dev.len() as f64
    };
    (scale > 0.0 && scale.is_finite()).then_some((median, scale))
}

/// The median of `v` (reordered), by selection: O(n).
fn select_median(v: &mut [f64]) -> f64 {
    let n = v.len();
    let (_, &mut hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        hi
    } else {
        let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo + hi) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_gives_the_sorted_median() {
        let mut rng = 12345u64;
        for n in 1..60 {
            let mut v: Vec<f64> = (0..n)
                .map(|_| {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (rng >> 40) as f64
                })
                .collect();
            let mut sorted = v.clone();
            assert_eq!(
                select_median(&mut v),
                super::super::median(&mut sorted),
                "n = {n}"
            );
        }
    }

    #[test]
    fn the_scale_is_robust_and_falls_back_when_most_values_agree() {
        let (m, s) = centre_and_scale(&[1.0, 2.0, 3.0, 4.0, 1e300]).unwrap();
        assert_eq!((m, s), (3.0, 1.0));
        assert!((1e300 - m).abs() > FACTOR * s);
        // Mostly zeros (tickets, say): the mean absolute deviation, so a
        // busy account is not extreme.
        let mut v = vec![0.0; 90];
        v.extend([3.0; 9]);
        v.push(50.0);
        let (m, s) = centre_and_scale(&v).unwrap();
        assert_eq!(m, 0.0);
        assert!(50.0 < FACTOR * s);
        assert!(centre_and_scale(&[2.0, 2.0]).is_none());
        assert!(centre_and_scale(&[]).is_none());
    }
}
