//! The mean silhouette coefficient (Rousseeuw 1987), exact: O(n²·d), so
//! strata calls it on a sample (`silhouette_sample`, 4,000 accounts).
//!
//! Choosing k scores every k's fit on one sample, so [`silhouettes`] takes
//! all the labelings at once: each pair's distance is computed once and
//! added to every labeling's sums. Per row, the distances to every other row
//! are measured first ([`Rows::distances`]: four rows per AVX2 register where
//! the CPU has it, each sum still added in feature order, so each distance is
//! [`lloyd::sq`]'s to the bit), then added into each labeling's per-segment
//! sums in row order. Every value is the one-row-at-a-time loop's to the bit
//! (`tests::the_fast_silhouettes_are_the_plain_loop_to_the_bit`), whatever
//! the thread count.

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::lloyd;

/// Mean silhouette coefficient (exact, O(n²·d): call it on a sample).
pub fn silhouette(x: ArrayView2<f64>, labels: &[usize], k: usize) -> f64 {
    silhouettes(x, &[(labels, k)])[0]
}

/// [`silhouette`] of several labelings of the same rows (`(labels, k)` each),
/// from one pass over the pairs: each distance is computed once and added to
/// every labeling's sums, in the same order as one labeling at a time, so
/// each value is bit for bit [`silhouette`]'s.
pub fn silhouettes(x: ArrayView2<f64>, labelings: &[(&[usize], usize)]) -> Vec<f64> {
    let n = x.nrows();
    let sizes = sizes(labelings);
    let rows = Rows::new(x);
    // Each row's segment in every labeling, as a place in one flat array of
    // sums (labeling m's sums start at base[m]).
    let m = labelings.len();
    let mut base = vec![0usize; m + 1];
    for (i, (_, k)) in labelings.iter().enumerate() {
        base[i + 1] = base[i] + k;
    }
    let at: Vec<u32> = (0..n)
        .flat_map(|j| {
            let base = &base;
            labelings
                .iter()
                .enumerate()
                .map(move |(i, (labels, _))| (base[i] + labels[j]) as u32)
        })
        .collect();
    let per_row: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map_init(
            || (vec![0.0; rows.padded()], vec![0.0; base[m]]),
            |(r, sums), i| {
                rows.distances(i, r);
                sums.iter_mut().for_each(|s| *s = 0.0);
                for (j, (at, &rj)) in at.chunks_exact(m.max(1)).zip(r.iter()).enumerate() {
                    if j != i {
                        for &a in at {
                            sums[a as usize] += rj;
                        }
                    }
                }
                labelings
                    .iter()
                    .enumerate()
                    .map(|(l, (labels, k))| {
                        one_silhouette(&sums[base[l]..base[l + 1]], &sizes[l], labels[i], *k)
                    })
                    .collect()
            },
        )
        .collect();
    means(&per_row, &sizes, n)
}

/// Each labeling's segment sizes.
fn sizes(labelings: &[(&[usize], usize)]) -> Vec<Vec<usize>> {
    labelings
        .iter()
        .map(|(labels, k)| {
            let mut sizes = vec![0usize; *k];
            for &l in labels.iter() {
                sizes[l] += 1;
            }
            sizes
        })
        .collect()
}

/// Each labeling's mean over rows (NaN with fewer than two segments).
fn means(per_row: &[Vec<f64>], sizes: &[Vec<usize>], n: usize) -> Vec<f64> {
    (0..sizes.len())
        .map(|m| {
            if sizes[m].iter().filter(|s| **s > 0).count() < 2 {
                return f64::NAN;
            }
            per_row.iter().map(|r| r[m]).sum::<f64>() / n as f64
        })
        .collect()
}

/// One row's silhouette from its summed distances to each segment.
fn one_silhouette(sum: &[f64], sizes: &[usize], own: usize, k: usize) -> f64 {
    if sizes[own] <= 1 {
        return 0.0;
    }
    let a = sum[own] / (sizes[own] - 1) as f64;
    let b = (0..k)
        .filter(|&c| c != own && sizes[c] > 0)
        .map(|c| sum[c] / sizes[c] as f64)
        .fold(f64::INFINITY, f64::min);
    if a.max(b) == 0.0 {
        0.0
    } else {
        (b - a) / a.max(b)
    }
}

/// The rows, as given and in blocks of four laid out feature-major
/// (`quads[(b·d + f)·4 + l]` is feature `f` of row `4b + l`, zeros past `n`),
/// so one feature of four rows is one load.
struct Rows {
    n: usize,
    d: usize,
    x: Vec<f64>,
    quads: Vec<f64>,
}

impl Rows {
    fn new(x: ArrayView2<f64>) -> Rows {
        let (n, d) = x.dim();
        let x: Vec<f64> = x.as_standard_layout().iter().copied().collect();
        let mut quads = vec![0.0; n.div_ceil(4) * 4 * d];
        for (j, row) in x.chunks_exact(d.max(1)).take(n).enumerate() {
            for (f, &v) in row.iter().enumerate() {
                quads[((j / 4) * d + f) * 4 + j % 4] = v;
            }
        }
        Rows { n, d, x, quads }
    }

    /// Length of a distance buffer: `n` rounded up to four.
    fn padded(&self) -> usize {
        self.n.div_ceil(4) * 4
    }

    /// `out[j]`: the distance from row `i` to row `j` (`√`[`lloyd::sq`]),
    /// for every `j` (what lies past `n` is left over).
    fn distances(&self, i: usize, out: &mut [f64]) {
        let xi = &self.x[i * self.d..(i + 1) * self.d];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && self.d > 0 {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { self.distances_avx2(xi, out) };
            return;
        }
        lloyd::sq_each(xi, &self.x, self.n, |j, v| out[j] = v.sqrt());
    }

    /// [`Rows::distances`] four rows per register: lane `l` runs
    /// [`lloyd::sq`]'s additions, in feature order, for row `4b + l`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn distances_avx2(&self, xi: &[f64], out: &mut [f64]) {
        use std::arch::x86_64::*;
        let d = self.d;
        for (quad, o) in self.quads.chunks_exact(4 * d).zip(out.chunks_exact_mut(4)) {
            let p = quad.as_ptr();
            let mut acc = _mm256_setzero_pd();
            for (f, &a) in xi.iter().enumerate() {
                // SAFETY: f·4 + 4 <= 4d, the block's length.
                let y = unsafe { _mm256_loadu_pd(p.add(f * 4)) };
                let t = _mm256_sub_pd(_mm256_set1_pd(a), y);
                acc = _mm256_add_pd(acc, _mm256_mul_pd(t, t));
            }
            // SAFETY: `o` holds four f64.
            unsafe { _mm256_storeu_pd(o.as_mut_ptr(), _mm256_sqrt_pd(acc)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};

    /// The plain loop: one labeling, one pair at a time, in row order.
    fn plain(x: ArrayView2<f64>, labels: &[usize], k: usize) -> f64 {
        let n = x.nrows();
        let sizes = &sizes(&[(labels, k)])[0];
        let per_row: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let mut sum = vec![0.0; k];
                for j in (0..n).filter(|&j| j != i) {
                    let a = x.row(i).to_vec();
                    let b = x.row(j).to_vec();
                    sum[labels[j]] += lloyd::sq(&a, &b).sqrt();
                }
                vec![one_silhouette(&sum, sizes, labels[i], k)]
            })
            .collect();
        means(&per_row, std::slice::from_ref(sizes), n)[0]
    }

    #[test]
    fn the_fast_silhouettes_are_the_plain_loop_to_the_bit() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        // Row counts around the blocks of four; feature counts below, at and
        // past a register's worth.
        for (n, d) in [(5, 1), (22, 3), (37, 4), (64, 9), (131, 25)] {
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-3.0..3.0));
            let labelings: Vec<(Vec<usize>, usize)> = (2..=5)
                .map(|k| ((0..n).map(|_| rng.gen_range(0..k)).collect(), k))
                .collect();
            let of: Vec<(&[usize], usize)> =
                labelings.iter().map(|(l, k)| (l.as_slice(), *k)).collect();
            let fast = silhouettes(x.view(), &of);
            for ((labels, k), got) in labelings.iter().zip(&fast) {
                let want = plain(x.view(), labels, *k);
                assert_eq!(got.to_bits(), want.to_bits(), "n = {n}, d = {d}, k = {k}");
            }
        }
    }
}
