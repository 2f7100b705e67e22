//! The few tests the comparison needs, exact where it matters.
//!
//! * [`binomial_sf`]: P(X ≥ k) for X ~ Binomial(n, p) — an account's
//!   neighbours in a tier against that tier's base rate.
//! * [`hypergeom_sf`]: P(X ≥ k) for X ~ Hypergeometric(N, K, n) — a tier's
//!   accounts in a segment against its base rate (Fisher's one-sided test).
//! * [`chi2_sf`]: the χ² survival function, for the G-test of independence of
//!   segments and tiers (G = 2·N·MI is asymptotically χ² with
//!   (r − 1)(c − 1) degrees of freedom; Sokal & Rohlf, *Biometry*, 1995).
//! * [`bh_adjust`]: Benjamini–Hochberg q-values (Benjamini & Hochberg 1995),
//!   which control the false discovery rate over many tests.
//!
//! Probabilities are summed in log space from the first term of the tail,
//! each term from the previous one by the ratio of successive pmfs, so a tail
//! of 1e-300 is as exact as one of 0.3. Each costs O(terms until negligible).

use rayon::prelude::*;

/// ln Γ(x) for x > 0.
fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ln C(n, k).
fn ln_choose(n: f64, k: f64) -> f64 {
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
}

/// Sum a tail whose first term is exp(`ln_first`) and whose next term is the
/// previous one times `ratio(i)` (i = 0 for the second term), for `terms` terms.
fn tail(ln_first: f64, terms: u64, ratio: impl Fn(u64) -> f64) -> f64 {
    let first = ln_first.exp();
    if terms == 0 {
        return 0.0;
    }
    let mut sum = 1.0;
    let mut term = 1.0;
    for i in 0..terms - 1 {
        term *= ratio(i);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    (first * sum).min(1.0)
}

/// P(X ≥ k) for X ~ Binomial(n, p).
pub fn binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (nf, kf) = (n as f64, k as f64);
    let ln_first = ln_choose(nf, kf) + kf * p.ln() + (nf - kf) * (1.0 - p).ln();
    let odds = p / (1.0 - p);
    // pmf(j + 1) / pmf(j) = (n − j) / (j + 1) · p / (1 − p), from j = k.
    tail(ln_first, n - k + 1, |i| {
        let j = (k + i) as f64;
        (nf - j) / (j + 1.0) * odds
    })
}

/// P(X ≥ k) for X ~ Hypergeometric(population `big_n`, `big_k` successes in
/// it, `n` drawn): the one-sided Fisher test of over-representation.
pub fn hypergeom_sf(k: u64, big_n: u64, big_k: u64, n: u64) -> f64 {
    let lo = (n + big_k).saturating_sub(big_n);
    let hi = n.min(big_k);
    if k <= lo {
        return 1.0;
    }
    if k > hi {
        return 0.0;
    }
    let (nn, kk, n_, k_) = (big_n as f64, big_k as f64, n as f64, k as f64);
    let ln_first = ln_choose(kk, k_) + ln_choose(nn - kk, n_ - k_) - ln_choose(nn, n_);
    // pmf(x + 1) / pmf(x) = (K − x)(n − x) / ((x + 1)(N − K − n + x + 1)).
    tail(ln_first, hi - k + 1, |i| {
        let x = (k + i) as f64;
        (kk - x) * (n_ - x) / ((x + 1.0) * (nn - kk - n_ + x + 1.0))
    })
}

/// The regularised upper incomplete gamma function Q(a, x) (Numerical
/// Recipes §6.2: the series below a + 1, Lentz's continued fraction above).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_pre = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut ap, mut sum, mut del) = (a, 1.0 / a, 1.0 / a);
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * ln_pre.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (ln_pre.exp() * h).clamp(0.0, 1.0)
    }
}

/// P(χ²(df) ≥ x).
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if df <= 0.0 {
        return 1.0;
    }
    gamma_q(df / 2.0, x / 2.0)
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the input's order.
pub fn bh_adjust(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    // Sorted by (p, position): a total order, so an unstable parallel sort
    // of the pairs gives the same order as a stable sort by p.
    let mut order: Vec<(f64, usize)> = p.iter().copied().zip(0..m).collect();
    order.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &(pi, i)) in order.iter().enumerate().rev() {
        let v = (pi * m as f64 / (rank + 1) as f64).min(1.0);
        running = running.min(v);
        q[i] = running;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    /// Exact sums over small n, by direct enumeration.
    fn choose(n: u64, k: u64) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn binomial_tail_matches_direct_sums() {
        for &(n, p) in &[(15u64, 0.12f64), (15, 0.5), (40, 0.03), (200, 0.9)] {
            for k in 0..=n {
                let direct: f64 = (k..=n)
                    .map(|j| choose(n, j) * p.powi(j as i32) * (1.0 - p).powi((n - j) as i32))
                    .sum();
                assert!(
                    close(binomial_sf(k, n, p), direct.min(1.0), 1e-9),
                    "n {n} p {p} k {k}"
                );
            }
        }
        // scipy.stats.binom.sf(14, 15, 0.12) = 0.12**15
        assert!(close(binomial_sf(15, 15, 0.12), 0.12f64.powi(15), 1e-12));
    }

    #[test]
    fn hypergeometric_tail_matches_direct_sums() {
        let (big_n, big_k, n) = (60u64, 20u64, 15u64);
        for k in 0..=n {
            let direct: f64 = (k..=n.min(big_k))
                .map(|x| choose(big_k, x) * choose(big_n - big_k, n - x) / choose(big_n, n))
                .sum();
            assert!(
                close(hypergeom_sf(k, big_n, big_k, n), direct.min(1.0), 1e-9),
                "k {k}"
            );
        }
        // Fisher's tea-tasting: 4 of 4 cups right out of 8 (4 with milk first): 1/70.
        assert!(close(hypergeom_sf(4, 8, 4, 4), 1.0 / 70.0, 1e-12));
        // A large segment far from its base rate: tiny, finite, exact in log space.
        let p = hypergeom_sf(30_000, 1_000_000, 120_000, 100_000);
        assert!(p < 1e-100, "{p}");
        assert!(hypergeom_sf(12_000, 1_000_000, 120_000, 100_000) > 0.4);
    }

    #[test]
    fn chi_square_survival_has_its_closed_forms() {
        // df = 2: exp(−x/2); df = 1: erfc(√(x/2)).
        for &x in &[0.1, 1.0, 3.84, 10.0, 50.0, 200.0] {
            assert!(
                close(chi2_sf(x, 2.0), (-x / 2.0).exp(), 1e-10),
                "df 2, x {x}"
            );
            assert!(
                close(chi2_sf(x, 1.0), libm::erfc((x / 2.0).sqrt()), 1e-9),
                "df 1, x {x}"
            );
        }
        // The 5% critical value of χ²(4) is 9.4877.
        assert!(close(chi2_sf(9.487729, 4.0), 0.05, 1e-5));
    }

    #[test]
    fn bh_matches_the_textbook_example() {
        // p-values and their BH q-values (R's p.adjust(p, "BH")).
        let p = [0.01, 0.04, 0.03, 0.005];
        let q = bh_adjust(&p);
        let want = [0.02, 0.04, 0.04, 0.02];
        for (a, b) in q.iter().zip(want) {
            assert!(close(*a, b, 1e-12), "{q:?}");
        }
        assert!(bh_adjust(&[]).is_empty());
    }
}
