//! The tests the outcome analysis needs, each checked against scipy or
//! statsmodels (reference values in the tests):
//!
//! * [`wilson`]: the Wilson score 95% interval of a proportion (Wilson 1927;
//!   statsmodels' `proportion_confint(method="wilson")`), which stays inside
//!   [0, 1] and is honest for small groups and rates near 0 or 1.
//! * [`median_ci`]: a distribution-free 95% interval of a median from order
//!   statistics (Conover, *Practical Nonparametric Statistics*, 1999, §3.2;
//!   exact binomial ranks up to 1,000 values, the normal approximation above).
//! * [`chi2_independence`]: Pearson's χ² test of independence on a
//!   contingency table (no continuity correction, as scipy's
//!   `chi2_contingency` on tables larger than 2×2) with Cramér's V.
//! * [`kruskal_wallis`]: the Kruskal–Wallis H test with the tie correction
//!   (scipy's `kruskal`) and its effect size ε² = H / (n − 1)
//!   (Tomczak & Tomczak 2014).
//! * [`fisher_exact`]: Fisher's exact test of a 2×2 table, two-sided (tables
//!   no more likely than the observed one; scipy's `fisher_exact`).
//! * [`mann_whitney`]: the Mann–Whitney U test, two-sided, normal
//!   approximation with tie and continuity corrections (scipy's
//!   `mannwhitneyu(method="asymptotic")`).
//!
//! Each is O(n log n) at most (ranks); Fisher's sums over the table's
//! support, O(min of its margins).

use super::stats::chi2_sf;
use rayon::prelude::*;

/// z of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score 95% interval of `k` successes in `n`.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let (k, n) = (k as f64, n as f64);
    let z2 = Z95 * Z95;
    let p = k / n;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The median of `sorted` (ascending) and a 95% interval for it from order
/// statistics: ranks l and n + 1 − l (1-based) with l the largest rank such
/// that P(Binomial(n, ½) < l) ≤ 2.5%. Below 6 values there is no such rank:
/// the interval is the range.
pub fn median_ci(sorted: &[f64]) -> (f64, f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let l = lower_rank(n);
    if l == 0 {
        return (median, sorted[0], sorted[n - 1]);
    }
    (median, sorted[l - 1], sorted[n - l])
}

/// The largest l ≥ 1 with P(Binomial(n, ½) ≤ l − 1) ≤ 0.025, or 0.
fn lower_rank(n: usize) -> usize {
    if n > 1000 {
        let l = (n as f64 / 2.0 - Z95 * (n as f64).sqrt() / 2.0).floor();
        return l.max(0.0) as usize;
    }
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut cdf = 0.0;
    let mut l = 0;
    for j in 0..=n {
        // P(X = j) = C(n, j) / 2^n
        cdf += (ln_choose(n as f64, j as f64) + ln_half_n).exp();
        if cdf <= 0.025 {
            l = j + 1;
        } else {
            break;
        }
    }
    l
}

fn ln_choose(n: f64, k: f64) -> f64 {
    libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
}

/// P(Z > z) for a standard normal Z.
fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// A test of independence on a contingency table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Independence {
    pub chi2: f64,
    pub df: f64,
    pub p: f64,
    /// Cramér's V: √(χ² / (n · (min(r, c) − 1))), 0 (none) to 1.
    pub cramers_v: f64,
    pub n: u64,
}

/// Pearson's χ² test of independence of the rows and columns of `table`
/// (empty rows and columns left out); `None` with fewer than two of either.
pub fn chi2_independence(table: &[Vec<u64>]) -> Option<Independence> {
    let cols = table.first().map_or(0, Vec::len);
    let row_sum: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
    let col_sum: Vec<u64> = (0..cols)
        .map(|j| table.iter().map(|r| r[j]).sum())
        .collect();
    let rows_used: Vec<usize> = (0..table.len()).filter(|&i| row_sum[i] > 0).collect();
    let cols_used: Vec<usize> = (0..cols).filter(|&j| col_sum[j] > 0).collect();
    if rows_used.len() < 2 || cols_used.len() < 2 {
        return None;
    }
    let n: u64 = row_sum.iter().sum();
    let mut chi2 = 0.0;
    for &i in &rows_used {
        for &j in &cols_used {
            let expected = row_sum[i] as f64 * col_sum[j] as f64 / n as f64;
            let d = table[i][j] as f64 - expected;
            chi2 += d * d / expected;
        }
    }
    let (r, c) = (rows_used.len(), cols_used.len());
    let df = ((r - 1) * (c - 1)) as f64;
    Some(Independence {
        chi2,
        df,
        p: chi2_sf(chi2, df),
        cramers_v: (chi2 / (n as f64 * (r.min(c) - 1) as f64)).sqrt(),
        n,
    })
}

/// Mid-ranks (1-based) of `values` and Σ(t³ − t) over groups of ties.
fn ranks(values: &[f64]) -> (Vec<f64>, f64) {
    // Sorted by value, each with its position (ties share a rank, so their
    // order among themselves does not matter).
    let mut keyed: Vec<(f64, u32)> = values.iter().zip(0u32..).map(|(&v, i)| (v, i)).collect();
    keyed.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut ranks = vec![0.0; values.len()];
    let ties = ranks_of_sorted(&keyed, &mut ranks);
    (ranks, ties)
}

/// Mid-ranks from `(value, position)` pairs sorted by value (`total_cmp`):
/// `ranks[position]`, 1-based, ties (`==`) sharing their mean rank; returns
/// the tie term Σ (t³ − t) of the tie correction.
pub fn ranks_of_sorted(sorted: &[(f64, u32)], ranks: &mut [f64]) -> f64 {
    let mut ties = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0;
        for &(_, o) in &sorted[i..j] {
            ranks[o as usize] = mid;
        }
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    ties
}

/// The Kruskal–Wallis test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KruskalWallis {
    pub h: f64,
    pub df: f64,
    pub p: f64,
    /// ε² = H / (n − 1): the share of rank variance between groups.
    pub epsilon2: f64,
    pub n: u64,
}

/// The Kruskal–Wallis H test of `groups` (empty groups left out); `None`
/// with fewer than two groups or when every value is the same.
pub fn kruskal_wallis(groups: &[Vec<f64>]) -> Option<KruskalWallis> {
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    if groups.len() < 2 {
        return None;
    }
    let all: Vec<f64> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let (r, ties) = ranks(&all);
    let mut at = 0;
    let sums: Vec<(f64, usize)> = groups
        .iter()
        .map(|g| {
            let sum: f64 = r[at..at + g.len()].iter().sum();
            at += g.len();
            (sum, g.len())
        })
        .collect();
    kruskal_wallis_ranked(&sums, ties)
}

/// The Kruskal–Wallis H test from each group's rank sum and size (empty
/// groups left out; the ranks among all the groups' values) and the tie term
/// of [`ranks_of_sorted`].
pub fn kruskal_wallis_ranked(sums: &[(f64, usize)], ties: f64) -> Option<KruskalWallis> {
    let groups: Vec<&(f64, usize)> = sums.iter().filter(|g| g.1 > 0).collect();
    if groups.len() < 2 {
        return None;
    }
    let n = groups.iter().map(|g| g.1).sum::<usize>() as f64;
    let mut h = 0.0;
    for &&(sum, len) in &groups {
        h += sum * sum / len as f64;
    }
    h = 12.0 / (n * (n + 1.0)) * h - 3.0 * (n + 1.0);
    let correction = 1.0 - ties / (n * n * n - n);
    if correction <= 0.0 {
        return None;
    }
    h /= correction;
    let df = (groups.len() - 1) as f64;
    Some(KruskalWallis {
        h,
        df,
        p: chi2_sf(h.max(0.0), df),
        epsilon2: h / (n - 1.0),
        n: n as u64,
    })
}

/// Fisher's exact test, two-sided, of the 2×2 table [[a, b], [c, d]].
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let (r1, c1, n) = (a + b, a + c, a + b + c + d);
    let lo = (r1 + c1).saturating_sub(n);
    let hi = r1.min(c1);
    // ln P(X = x) for X ~ Hypergeometric(n, c1, r1).
    let ln_p = |x: u64| {
        ln_choose(c1 as f64, x as f64) + ln_choose((n - c1) as f64, (r1 - x) as f64)
            - ln_choose(n as f64, r1 as f64)
    };
    let observed = ln_p(a);
    let mut p = 0.0;
    for x in lo..=hi {
        let l = ln_p(x);
        if l <= observed + 1e-7 {
            p += l.exp();
        }
    }
    p.min(1.0)
}

/// The Mann–Whitney U test of `x` against `y`, two-sided p.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> f64 {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    if x.is_empty() || y.is_empty() {
        return f64::NAN;
    }
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let (r, ties) = ranks(&all);
    let r1: f64 = r[..x.len()].iter().sum();
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let u = u1.max(n1 * n2 - u1);
    let n = n1 + n2;
    let sigma = (n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))).sqrt();
    if sigma <= 0.0 {
        return 1.0;
    }
    let z = (u - n1 * n2 / 2.0 - 0.5) / sigma;
    (2.0 * normal_sf(z)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn chi2_and_cramers_v_match_scipy_on_the_telco_contracts() {
        // Churned / stayed by contract (month-to-month, one year, two year).
        let t = vec![vec![1655, 2220], vec![166, 1307], vec![48, 1647]];
        let r = chi2_independence(&t).unwrap();
        assert!(close(r.chi2, 1184.5965720837928, 1e-12), "{r:?}");
        assert_eq!(r.df, 2.0);
        assert!(close(r.p, 5.863038300672725e-258, 1e-6), "{r:?}");
        assert!((r.cramers_v - 0.4101157).abs() < 5e-8, "{r:?}");
        assert!(chi2_independence(&[vec![3, 4], vec![0, 0]]).is_none());
    }

    #[test]
    fn wilson_intervals_match_statsmodels() {
        for (k, n, lo, hi) in [
            (1655, 3875, 0.4116019532373783, 0.4427359963802429),
            (166, 1473, 0.09754355753104996, 0.12986166380453906),
            (48, 1695, 0.02142533413217164, 0.03734498743156174),
        ] {
            let (l, h) = wilson(k, n);
            assert!(
                close(l, lo, 1e-10) && close(h, hi, 1e-10),
                "{k}/{n}: {l} {h}"
            );
        }
        let (l, h) = wilson(0, 10);
        assert!(l == 0.0 && h > 0.2 && h < 0.35, "{h}");
    }

    #[test]
    fn kruskal_wallis_matches_scipy_with_and_without_ties() {
        let r = kruskal_wallis(&[vec![1., 3., 5., 7., 9.], vec![2., 4., 6., 8., 10.]]).unwrap();
        assert!(close(r.h, 0.2727272727272734, 1e-12) && close(r.p, 0.6015081344405895, 1e-9));
        let r = kruskal_wallis(&[
            vec![2.9, 3.0, 2.5, 2.6, 3.2],
            vec![3.8, 2.7, 4.0, 2.4],
            vec![2.8, 3.4, 3.7, 2.2, 2.0],
        ])
        .unwrap();
        assert!(close(r.h, 0.7714285714285722, 1e-12) && close(r.p, 0.6799647735788936, 1e-9));
        let r = kruskal_wallis(&[vec![1., 1., 2., 2.], vec![2., 3., 3., 4.]]).unwrap();
        assert!(close(r.h, 4.397435897435896, 1e-12) && close(r.p, 0.03599300762286007, 1e-9));
        assert!(kruskal_wallis(&[vec![1., 1.], vec![1.]]).is_none());
    }

    #[test]
    fn fisher_and_mann_whitney_match_scipy() {
        assert!(close(fisher_exact(8, 2, 1, 5), 0.034965034965034975, 1e-9));
        assert!(close(
            fisher_exact(120, 1435, 1749, 1813),
            6.818136167504121e-205,
            1e-6
        ));
        assert!(close(fisher_exact(5, 5, 5, 5), 1.0, 1e-9));
        let p = mann_whitney(&[1., 4., 2., 8., 5., 7.], &[3., 9., 10., 6., 12., 11.]);
        assert!(close(p, 0.06555216116550257, 1e-9), "{p}");
        let p = mann_whitney(&[1., 1., 2., 2.], &[2., 3., 3., 4.]);
        assert!(close(p, 0.05150833604880684, 1e-9), "{p}");
    }

    #[test]
    fn a_median_interval_holds_the_median_and_widens_when_few() {
        let mut x = vec![3.1, 1.2, 5.5, 2.2, 8.0, 4.4, 6.1, 7.3, 0.5, 9.9, 2.8];
        x.sort_by(f64::total_cmp);
        let (m, lo, hi) = median_ci(&x);
        assert_eq!(m, 4.4);
        // n = 11: P(X ≤ 1) = 12/2048 ≤ 2.5% < P(X ≤ 2) = 67/2048, so ranks 2 and 10.
        assert_eq!((lo, hi), (x[1], x[9]));
        assert_eq!(median_ci(&[1.0, 2.0, 3.0]), (2.0, 1.0, 3.0));
        let big: Vec<f64> = (0..10_000).map(f64::from).collect();
        let (_, lo, hi) = median_ci(&big);
        assert!(lo < 4999.5 && hi > 4999.5 && hi - lo < 250.0, "{lo} {hi}");
    }
}
