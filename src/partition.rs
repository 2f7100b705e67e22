//! Comparing two partitions of the same accounts.
//!
//! A partition is a label per account. Two partitions — k-means segments and
//! CS tiers, or this month's and last month's segments — are compared through
//! their contingency table `n[i][j]` (accounts with label `i` in the first and
//! `j` in the second). Every score here is computed from that table and follows
//! scikit-learn's definitions, including its conventions for degenerate cases
//! (a single cluster on both sides scores 1.0), so numbers can be checked against
//! `sklearn.metrics`:
//!
//! * adjusted Rand index (Hubert & Arabie 1985);
//! * mutual information, NMI with the arithmetic mean of the entropies, and AMI
//!   corrected by the expected MI under the hypergeometric model (Vinh, Epps &
//!   Bailey 2010);
//! * homogeneity, completeness and V-measure (Rosenberg & Hirschberg 2007);
//! * purity.
//!
//! Cost: O(n) to build the table, O(k₁·k₂) for the scores, and for AMI
//! O(k₁·k₂·min(cluster size)) for the expected MI.

use std::collections::BTreeMap;

use serde::Serialize;

/// Map arbitrary labels to dense ids 0..k in order of first appearance.
pub fn dense<T: Ord + Clone>(labels: &[T]) -> (Vec<usize>, Vec<T>) {
    let mut ids: BTreeMap<T, usize> = BTreeMap::new();
    let mut names = Vec::new();
    let out = labels
        .iter()
        .map(|l| {
            *ids.entry(l.clone()).or_insert_with(|| {
                names.push(l.clone());
                names.len() - 1
            })
        })
        .collect();
    (out, names)
}

/// The contingency table of two dense labelings of the same items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contingency {
    /// `table[i][j]`: items with label i in `a` and j in `b`.
    pub table: Vec<Vec<u64>>,
    pub rows: Vec<u64>,
    pub cols: Vec<u64>,
    pub n: u64,
}

impl Contingency {
    /// Build from two dense labelings (`a[i] < ka`, `b[i] < kb`).
    pub fn new(a: &[usize], b: &[usize]) -> Contingency {
        assert_eq!(a.len(), b.len(), "partitions of different lengths");
        let ka = a.iter().max().map_or(0, |m| m + 1);
        let kb = b.iter().max().map_or(0, |m| m + 1);
        let mut table = vec![vec![0u64; kb]; ka];
        for (&i, &j) in a.iter().zip(b) {
            table[i][j] += 1;
        }
        let rows: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
        let cols: Vec<u64> = (0..kb).map(|j| table.iter().map(|r| r[j]).sum()).collect();
        Contingency {
            table,
            rows,
            cols,
            n: a.len() as u64,
        }
    }
    fn cells(&self) -> impl Iterator<Item = (usize, usize, u64)> + '_ {
        self.table.iter().enumerate().flat_map(|(i, r)| {
            r.iter()
                .enumerate()
                .filter(|(_, v)| **v > 0)
                .map(move |(j, v)| (i, j, *v))
        })
    }
}

fn comb2(x: u64) -> f64 {
    let x = x as f64;
    x * (x - 1.0) / 2.0
}

/// Entropy (nats) of a labeling given its cluster sizes.
pub fn entropy(sizes: &[u64]) -> f64 {
    let n: u64 = sizes.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    -sizes
        .iter()
        .filter(|s| **s > 0)
        .map(|&s| {
            let p = s as f64 / n;
            p * p.ln()
        })
        .sum::<f64>()
}

/// Adjusted Rand index.
pub fn ari(c: &Contingency) -> f64 {
    let n = c.n;
    let sum_comb: f64 = c.cells().map(|(_, _, v)| comb2(v)).sum();
    let sum_a: f64 = c.rows.iter().map(|&v| comb2(v)).sum();
    let sum_b: f64 = c.cols.iter().map(|&v| comb2(v)).sum();
    let total = comb2(n);
    // sklearn's special cases: both trivial or perfectly matching singletons.
    let nonzero_rows = c.rows.iter().filter(|v| **v > 0).count();
    let nonzero_cols = c.cols.iter().filter(|v| **v > 0).count();
    if (nonzero_rows == nonzero_cols) && (nonzero_rows == 1 || nonzero_rows as u64 == n)
        || total == 0.0
    {
        return 1.0;
    }
    let expected = sum_a * sum_b / total;
    let max = (sum_a + sum_b) / 2.0;
    if max == expected {
        return 1.0;
    }
    (sum_comb - expected) / (max - expected)
}

/// Mutual information (nats).
pub fn mutual_info(c: &Contingency) -> f64 {
    let n = c.n as f64;
    c.cells()
        .map(|(i, j, v)| {
            let v = v as f64;
            v / n * (n * v / (c.rows[i] as f64 * c.cols[j] as f64)).ln()
        })
        .sum::<f64>()
        .max(0.0)
}

/// Expected mutual information of two random labelings with these cluster sizes.
///
/// Vinh, Epps & Bailey (2010), eq. 24b, as scikit-learn computes it: for
/// each pair of cluster sizes (a, b), the sum over the hypergeometric
/// n_ij ∈ [max(1, a+b−n), min(a, b)]. The hypergeometric is log-concave,
/// so its terms are non-negligible only in a window around its mode:
/// terms whose probability underflows to exactly 0.0 (ln p below −745)
/// add exactly nothing, and only the window where ln p ≥ [`NEGLIGIBLE`] is
/// summed, found by bisection from the mode. The sum is the full sum to the
/// bit, in O(√(ab/n)) terms per pair instead of O(min(a, b)): at a million
/// accounts, ~15× fewer.
pub fn expected_mutual_info(c: &Contingency) -> f64 {
    let n = c.n;
    let nf = n as f64;
    let lg = |x: u64| libm::lgamma(x as f64 + 1.0);
    let lg_n = lg(n);
    let mut emi = 0.0;
    for &a in c.rows.iter().filter(|v| **v > 0) {
        for &b in c.cols.iter().filter(|v| **v > 0) {
            let lo = (a + b).saturating_sub(n).max(1);
            let hi = a.min(b);
            if lo > hi {
                continue;
            }
            let base = lg(a) + lg(b) + lg(n - a) + lg(n - b) - lg_n;
            let logp = |nij: u64| base - lg(nij) - lg(a - nij) - lg(b - nij) - lg(n - a - b + nij);
            let mode = (((a + 1) as f64 * (b + 1) as f64 / (n + 2) as f64) as u64).clamp(lo, hi);
            let (first, last) = if logp(mode) < NEGLIGIBLE {
                (lo, hi) // not expected (the mode carries the most mass): sum all
            } else {
                // The first n_ij at or after `lo` whose term counts, and the last one.
                let (mut l, mut r) = (lo, mode);
                while l < r {
                    let mid = l + (r - l) / 2;
                    if logp(mid) >= NEGLIGIBLE {
                        r = mid;
                    } else {
                        l = mid + 1;
                    }
                }
                let first = l;
                let (mut l, mut r) = (mode, hi);
                while l < r {
                    let mid = l + (r - l).div_ceil(2);
                    if logp(mid) >= NEGLIGIBLE {
                        l = mid;
                    } else {
                        r = mid - 1;
                    }
                }
                (first, l)
            };
            for nij in first..=last {
                let term = nij as f64 / nf * (nf * nij as f64 / (a as f64 * b as f64)).ln();
                emi += term * logp(nij).exp();
            }
        }
    }
    emi
}

/// Below this ln-probability a hypergeometric term of the expected mutual
/// information is exactly 0.0 once exponentiated (e^−745.2 is the smallest
/// subnormal double); the margin covers rounding in ln p itself.
const NEGLIGIBLE: f64 = -760.0;

/// All agreement scores of two partitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Agreement {
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub ari: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub ami: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub nmi: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub homogeneity: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub completeness: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub v_measure: f64,
    /// Share of items in the majority `b` label of their `a` cluster.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub purity: f64,
}

/// Normalised mutual information (arithmetic mean normalisation, as sklearn).
pub fn nmi(c: &Contingency) -> f64 {
    let (ha, hb) = (entropy(&c.rows), entropy(&c.cols));
    if ha == 0.0 && hb == 0.0 {
        return 1.0;
    }
    let norm = (ha + hb) / 2.0;
    (mutual_info(c) / norm.max(f64::EPSILON)).clamp(0.0, 1.0)
}

/// Adjusted mutual information (arithmetic mean normalisation, as sklearn).
pub fn ami(c: &Contingency) -> f64 {
    let nonzero_rows = c.rows.iter().filter(|v| **v > 0).count();
    let nonzero_cols = c.cols.iter().filter(|v| **v > 0).count();
    if (nonzero_rows == nonzero_cols) && (nonzero_rows == 1 || nonzero_rows as u64 == c.n) {
        return 1.0;
    }
    let mi = mutual_info(c);
    let emi = expected_mutual_info(c);
    let norm = (entropy(&c.rows) + entropy(&c.cols)) / 2.0;
    let mut denom = norm - emi;
    if denom < 0.0 {
        denom = denom.min(-f64::EPSILON);
    } else {
        denom = denom.max(f64::EPSILON);
    }
    (mi - emi) / denom
}

/// Every score, with `a` as the "true" labels for homogeneity/completeness
/// (sklearn's `labels_true`) and `b` as the predicted ones. Purity is of `b`'s
/// clusters with respect to `a`.
pub fn agreement(a: &[usize], b: &[usize]) -> Agreement {
    let c = Contingency::new(a, b);
    let (ha, hb) = (entropy(&c.rows), entropy(&c.cols));
    let mi = mutual_info(&c);
    let homogeneity = if ha == 0.0 { 1.0 } else { mi / ha };
    let completeness = if hb == 0.0 { 1.0 } else { mi / hb };
    let v_measure = if homogeneity + completeness == 0.0 {
        0.0
    } else {
        2.0 * homogeneity * completeness / (homogeneity + completeness)
    };
    let purity = (0..c.cols.len())
        .map(|j| c.table.iter().map(|r| r[j]).max().unwrap_or(0))
        .sum::<u64>() as f64
        / c.n.max(1) as f64;
    Agreement {
        ari: ari(&c),
        ami: ami(&c),
        nmi: nmi(&c),
        homogeneity,
        completeness,
        v_measure,
        purity,
    }
}

/// Jaccard similarity of two sets given as sorted slices without repeats.
pub fn jaccard_sorted<T: Ord>(a: &[T], b: &[T]) -> f64 {
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-7
    }

    #[test]
    fn sklearn_documented_values() {
        let a = [0, 0, 0, 1, 1, 1];
        let b = [0, 0, 1, 1, 2, 2];
        let s = agreement(&a, &b);
        assert!(close(s.ari, 0.24242424), "{}", s.ari);
        assert!(close(s.ami, 0.29879246), "{}", s.ami);
        assert!(close(s.nmi, 0.51580374), "{}", s.nmi);
        // sklearn: homogeneity_score(a, b) = 0.6666667, completeness = 0.420619835
        assert!(close(s.homogeneity, 0.66666667), "{}", s.homogeneity);
        assert!(close(s.completeness, 0.42061983), "{}", s.completeness);
        assert!(close(s.v_measure, 0.51580374), "{}", s.v_measure);
    }

    #[test]
    fn identical_partitions_score_one_and_permutation_does_not_matter() {
        let a = [0, 0, 1, 1, 2, 2, 2, 3];
        let b = [3, 3, 0, 0, 1, 1, 1, 2];
        let s = agreement(&a, &b);
        for v in [
            s.ari,
            s.ami,
            s.nmi,
            s.homogeneity,
            s.completeness,
            s.v_measure,
            s.purity,
        ] {
            assert!(close(v, 1.0), "{s:?}");
        }
    }

    #[test]
    fn symmetric_scores_are_symmetric() {
        let a = [0, 1, 1, 2, 2, 2, 0, 1, 2, 0, 0];
        let b = [1, 1, 0, 0, 2, 2, 1, 0, 2, 2, 1];
        let (x, y) = (agreement(&a, &b), agreement(&b, &a));
        assert!(
            close(x.ari, y.ari)
                && close(x.ami, y.ami)
                && close(x.nmi, y.nmi)
                && close(x.v_measure, y.v_measure)
        );
        assert!(close(x.homogeneity, y.completeness));
    }

    /// Every term of eq. 24b, as before the window.
    fn emi_every_term(c: &Contingency) -> f64 {
        let (n, nf) = (c.n, c.n as f64);
        let lg = |x: u64| libm::lgamma(x as f64 + 1.0);
        let mut emi = 0.0;
        for &a in c.rows.iter().filter(|v| **v > 0) {
            for &b in c.cols.iter().filter(|v| **v > 0) {
                let base = lg(a) + lg(b) + lg(n - a) + lg(n - b) - lg(n);
                for nij in (a + b).saturating_sub(n).max(1)..=a.min(b) {
                    let term = nij as f64 / nf * (nf * nij as f64 / (a as f64 * b as f64)).ln();
                    let logp = base - lg(nij) - lg(a - nij) - lg(b - nij) - lg(n - a - b + nij);
                    emi += term * logp.exp();
                }
            }
        }
        emi
    }

    #[test]
    fn the_windowed_expected_mutual_information_is_every_term_to_the_bit() {
        let sizes: [&[u64]; 6] = [
            &[1],
            &[3, 1, 1],
            &[500, 300, 200],
            &[999_000, 1_000],
            &[400_000, 350_000, 250_000],
            &[60_000, 25_000, 25_000, 900, 100, 1],
        ];
        for rows in sizes {
            for cols in sizes {
                let n: u64 = rows.iter().sum();
                if cols.iter().sum::<u64>() != n {
                    continue;
                }
                let c = Contingency {
                    table: Vec::new(),
                    rows: rows.to_vec(),
                    cols: cols.to_vec(),
                    n,
                };
                let (got, want) = (expected_mutual_info(&c), emi_every_term(&c));
                assert_eq!(got.to_bits(), want.to_bits(), "{rows:?} x {cols:?}");
            }
        }
        // Many small clusters against a few large ones, as communities
        // against tiers: sizes summing to 1M both ways.
        let rows: Vec<u64> = (0..40).map(|i| 20_000 + 500 * (i % 7)).collect();
        let n: u64 = rows.iter().sum();
        let cols = vec![n / 2, n / 3, n - n / 2 - n / 3];
        let c = Contingency {
            table: Vec::new(),
            rows,
            cols,
            n,
        };
        assert_eq!(
            expected_mutual_info(&c).to_bits(),
            emi_every_term(&c).to_bits()
        );
    }

    #[test]
    fn degenerate_cases_follow_sklearn() {
        assert_eq!(ari(&Contingency::new(&[0, 0, 0], &[0, 0, 0])), 1.0);
        assert_eq!(ari(&Contingency::new(&[0, 1, 2], &[0, 1, 2])), 1.0);
        // sklearn: adjusted_rand_score([0,0,1,1],[0,1,0,1]) = -0.5
        assert!(close(
            ari(&Contingency::new(&[0, 0, 1, 1], &[0, 1, 0, 1])),
            -0.5
        ));
    }

    #[test]
    fn jaccard() {
        assert_eq!(jaccard_sorted(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard_sorted::<usize>(&[], &[]), 1.0);
    }
}
