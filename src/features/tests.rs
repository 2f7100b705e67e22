use super::*;
use crate::config::{Feature, Kind, Missing, Scale, Transform};

fn feature(name: &str) -> Feature {
    Feature {
        name: name.into(),
        source: None,
        expr_text: name.into(),
        expr: polars::prelude::col(name),
        window: None,
        kind: Kind::Numeric,
        transform: Transform::None,
        winsorize: None,
        scale: Scale::ZScore,
        missing: Missing::Median,
        indicator: false,
        weight: 1.0,
        group: None,
        max_levels: 12,
        in_matrix: true,
        description: None,
        label: name.into(),
        unit: crate::config::Unit::Number,
        high: None,
        low: None,
    }
}

#[test]
fn quantiles_match_numpy_linear() {
    let s = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(quantile_sorted(&s, 0.5), 2.5);
    assert_eq!(quantile_sorted(&s, 0.25), 1.75);
    assert_eq!(quantile_sorted(&s, 1.0), 4.0);
}

#[test]
fn selected_quantiles_are_the_sorted_ones_to_the_bit() {
    let mut rng = 99u64;
    let mut next = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rng >> 33
    };
    for n in 1..80 {
        // Few distinct values, signed zeros and fractions: ties everywhere.
        let v: Vec<f64> = (0..n)
            .map(|_| match next() % 5 {
                0 => -0.0,
                1 => 0.0,
                _ => (next() % 7) as f64 / 3.0 - 1.0,
            })
            .collect();
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        for qs in [
            &[0.5][..],
            &[0.25, 0.5, 0.75],
            &[0.0, 0.05, 0.95, 1.0],
            &[0.75, 0.25, 0.9, 0.1],
        ] {
            let mut w = v.clone();
            let got = quantiles(&mut w, qs);
            for (q, g) in qs.iter().zip(got) {
                let want = quantile_sorted(&sorted, *q);
                assert_eq!(g.to_bits(), want.to_bits(), "n = {n}, q = {q}");
            }
        }
    }
    assert!(quantiles(&mut [], &[0.5])[0].is_nan());
}

#[test]
fn zscore_has_zero_mean_unit_population_std() {
    let f = feature("a");
    let raw = vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)];
    let cols = numeric_columns(&f, &raw, 1.0);
    let v = &cols[0].1;
    let mean: f64 = v.iter().sum::<f64>() / 4.0;
    let var: f64 = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
    assert!(mean.abs() < 1e-12);
    assert!((var - 1.0).abs() < 1e-12);
}

#[test]
fn median_imputation_and_indicator() {
    let mut f = feature("a");
    f.indicator = true;
    f.scale = Scale::None;
    let raw = vec![Some(1.0), None, Some(3.0), Some(10.0)];
    let cols = numeric_columns(&f, &raw, 1.0);
    assert_eq!(cols[0].1, vec![1.0, 3.0, 3.0, 10.0]);
    assert_eq!(cols[0].0.imputed_value, Some(3.0));
    assert_eq!(cols[1].1, vec![0.0, 1.0, 0.0, 0.0]);
    assert_eq!(cols[1].0.name, "a__missing");
}

#[test]
fn log1p_keeps_sign_and_robust_scaling_uses_iqr() {
    let mut f = feature("arr");
    f.transform = Transform::Log1p;
    f.scale = Scale::Robust;
    let raw = vec![
        Some(-(std::f64::consts::E - 1.0)),
        Some(0.0),
        Some(std::f64::consts::E - 1.0),
        Some(1e6),
    ];
    let cols = numeric_columns(&f, &raw, 1.0);
    let info = &cols[0].0;
    // transformed: -1, 0, 1, ln(1e6+1); median 0.5, IQR = q75 - q25
    assert!((info.center - 0.5).abs() < 1e-12);
    let t = [-1.0, 0.0, 1.0, (1e6f64).ln_1p()];
    let iqr = quantile_sorted(&t, 0.75) - quantile_sorted(&t, 0.25);
    assert!((info.scale - iqr).abs() < 1e-12);
}

#[test]
fn winsorize_clips_at_quantiles() {
    let mut f = feature("a");
    f.winsorize = Some([0.0, 0.5]);
    f.scale = Scale::None;
    let raw: Vec<Option<f64>> = [1.0, 2.0, 3.0, 100.0, 5.0]
        .iter()
        .map(|v| Some(*v))
        .collect();
    let cols = numeric_columns(&f, &raw, 1.0);
    assert_eq!(cols[0].1, vec![1.0, 2.0, 3.0, 3.0, 3.0]);
}

#[test]
fn one_hot_distance_is_independent_of_level_count() {
    let mut f = feature("industry");
    f.kind = Kind::Categorical;
    for n_levels in [2usize, 20] {
        let names: Vec<String> = (0..n_levels).map(|i| format!("L{i:02}")).collect();
        let raw: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
        f.max_levels = 50;
        let cols = categorical_columns(&f, &raw, 1.0);
        assert_eq!(cols.len(), n_levels);
        // squared distance between account 0 and 1
        let d2: f64 = cols.iter().map(|(_, c)| (c[0] - c[1]).powi(2)).sum();
        assert!((d2 - 1.0).abs() < 1e-12, "{n_levels} levels: {d2}");
    }
}

#[test]
fn rare_levels_become_other_and_missing_is_a_level() {
    let raw = vec![Some("a"), Some("a"), Some("b"), Some("c"), None];
    let (levels, fill) = levels(&raw, 1, Missing::Median);
    assert_eq!(levels, vec!["a", OTHER, MISSING]);
    assert!(fill.is_none());
    let (levels, fill) = super::levels(&raw, 5, Missing::Mode);
    assert_eq!(levels, vec!["a", "b", "c"]);
    assert_eq!(fill.as_deref(), Some("a"));
}

#[test]
fn a_group_contributes_its_weight_squared_whatever_its_size() {
    for members in [1usize, 4, 9] {
        let factor = group_factor(2.0, members);
        // `members` z-scored features: each column has variance factor².
        let raw: Vec<Option<f64>> = (0..10).map(|i| Some(i as f64)).collect();
        let total: f64 = (0..members)
            .map(|_| {
                let col = &numeric_columns(&feature("a"), &raw, factor)[0].1;
                col.iter().map(|v| v * v).sum::<f64>() / col.len() as f64
            })
            .sum();
        assert!((total - 4.0).abs() < 1e-9, "{members} features: {total}");
    }
}
