//! Lloyd's k-means iterations and plain k-means++ seeding: the same algorithm
//! as linfa-clustering's `KMeans` (its centroid update and stopping rule,
//! its k-means++ draws from the same RNG), computed faster.
//!
//! linfa computes every row's distance to every centroid on every pass, row by
//! row through ndarray, and sums the centroids in one sequential loop. Here:
//!
//! * **Hamerly's bounds** (G. Hamerly 2010, "Making k-means even faster", SIAM
//!   SDM): each row keeps an upper bound on the distance to its centroid and a
//!   lower bound on the distance to any other; after the centroids move by δ the
//!   bounds move by δ too, and a row whose upper bound is below
//!   max(lower bound, half the distance from its centroid to the nearest other)
//!   cannot change centroid, so its distances are not computed. The
//!   assignments are exactly Lloyd's: the bounds only skip work whose outcome is
//!   known. A small relative margin keeps rounding from ever skipping a row that
//!   a full scan would move.
//! * Centroid sums over fixed blocks of rows, in parallel, added in block
//!   order: the result does not depend on the thread count.
//! * k-means++ keeps each row's distance to the nearest seed so far and updates
//!   it with the new seed only (linfa recomputes it against every seed: O(k²)
//!   passes instead of O(k)); the minimum is exact, so the draws are linfa's.
//!
//! The update is linfa's "m_k-means" (Tang & Monteleoni 2016): each new centroid
//! is the mean of its rows *and the old centroid*, so an empty cluster keeps its
//! place instead of becoming NaN. A run stops when the Frobenius norm of the
//! centroids' change is below `tol`, or after `max_iter` passes.
//!
//! Cost per pass: O(n·d) for the sums and bounds plus O(m·k·d) for the m rows
//! the bounds cannot settle (all n on the first pass, a few percent near
//! convergence). `tests` checks the centroids against linfa's on Iris, Wine
//! and blobs.

use ndarray::{Array2, ArrayView2};
use rand::distributions::{Distribution, WeightedIndex};
use rand_xoshiro::Xoshiro256Plus;
use rayon::prelude::*;

/// Rows per block of parallel work (fixed, so sums do not depend on threads).
pub(crate) const BLOCK: usize = 4096;
/// Below this many rows a pass runs on the calling thread: handing a few
/// blocks to the thread pool costs more than it saves, and the choice of k
/// already runs its fits in parallel. The blocks, and so the sums, are the same.
const PARALLEL_FROM: usize = 16 * BLOCK;

/// `body(block index, labels, upper, lower)` over the blocks of three per-row
/// arrays, in parallel for large inputs.
fn each_block<F>(par: bool, a: &mut [u32], b: &mut [f64], c: &mut [f64], body: F)
where
    F: Fn(usize, &mut [u32], &mut [f64], &mut [f64]) + Sync + Send,
{
    if par {
        a.par_chunks_mut(BLOCK)
            .zip(b.par_chunks_mut(BLOCK))
            .zip(c.par_chunks_mut(BLOCK))
            .enumerate()
            .for_each(|(i, ((a, b), c))| body(i, a, b, c));
    } else {
        a.chunks_mut(BLOCK)
            .zip(b.chunks_mut(BLOCK))
            .zip(c.chunks_mut(BLOCK))
            .enumerate()
            .for_each(|(i, ((a, b), c))| body(i, a, b, c));
    }
}

/// `f(block index, labels)` for each block, results in block order.
fn map_blocks<T: Send, F>(par: bool, labels: &[u32], f: F) -> Vec<T>
where
    F: Fn(usize, &[u32]) -> T + Sync + Send,
{
    if par {
        labels
            .par_chunks(BLOCK)
            .enumerate()
            .map(|(i, l)| f(i, l))
            .collect()
    } else {
        labels
            .chunks(BLOCK)
            .enumerate()
            .map(|(i, l)| f(i, l))
            .collect()
    }
}
/// Bounds must clear the skip test by this relative margin (rounding guard).
const MARGIN: f64 = 1e-9;

/// One finished run.
#[derive(Debug, Clone)]
pub struct Run {
    /// k × d centroids after the last update.
    pub centroids: Array2<f64>,
    /// Σ squared distance of each row to its centroid at the last assignment
    /// (before the last update, as linfa reports it).
    pub inertia: f64,
    /// Passes made (assignment + update).
    pub passes: u64,
}

/// Squared Euclidean distance, summed in feature order.
pub(crate) fn sq(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// [`sq`] of four pairs of rows at once. Each of the four sums is still
/// added in feature order, so every value is bit for bit [`sq`]'s; the four
/// independent chains are what make it fast (one chain of dependent
/// additions waits on each addition's latency).
#[inline(always)]
pub(crate) fn sq4(a: [&[f64]; 4], b: [&[f64]; 4]) -> [f64; 4] {
    let d = a[0].len();
    let (a0, a1, a2, a3) = (&a[0][..d], &a[1][..d], &a[2][..d], &a[3][..d]);
    let (b0, b1, b2, b3) = (&b[0][..d], &b[1][..d], &b[2][..d], &b[3][..d]);
    let mut acc = [0.0f64; 4];
    for j in 0..d {
        let (t0, t1, t2, t3) = (a0[j] - b0[j], a1[j] - b1[j], a2[j] - b2[j], a3[j] - b3[j]);
        acc[0] += t0 * t0;
        acc[1] += t1 * t1;
        acc[2] += t2 * t2;
        acc[3] += t3 * t3;
    }
    acc
}

/// `f(i, sq(a(i), b(i)))` for `i` in `0..m`, in order, four pairs at a time.
#[inline(always)]
pub(crate) fn sq_by<'a>(
    m: usize,
    a: impl Fn(usize) -> &'a [f64],
    b: impl Fn(usize) -> &'a [f64],
    mut f: impl FnMut(usize, f64),
) {
    let mut i = 0;
    while i + 4 <= m {
        let v = sq4(
            [a(i), a(i + 1), a(i + 2), a(i + 3)],
            [b(i), b(i + 1), b(i + 2), b(i + 3)],
        );
        for (o, v) in v.into_iter().enumerate() {
            f(i + o, v);
        }
        i += 4;
    }
    while i < m {
        f(i, sq(a(i), b(i)));
        i += 1;
    }
}

/// `f(i, sq(a, row i))` for the `m` rows of `rows` (m × d, row-major), in
/// row order, four at a time.
#[inline(always)]
pub(crate) fn sq_each(a: &[f64], rows: &[f64], m: usize, f: impl FnMut(usize, f64)) {
    let d = a.len();
    sq_by(m, |_| a, |i| &rows[i * d..(i + 1) * d], f);
}

/// Centroids laid out feature-major (d × kp, k padded to a multiple of 4
/// with zeros), so one feature of four centroids is one contiguous load.
pub(crate) struct Centres {
    k: usize,
    kp: usize,
    d: usize,
    t: Vec<f64>,
}

impl Centres {
    /// From `k` row-major centroids of `d` features.
    pub(crate) fn new(c: &[f64], k: usize, d: usize) -> Self {
        let kp = k.div_ceil(4) * 4;
        let mut t = vec![0.0; kp * d];
        for j in 0..k {
            for f in 0..d {
                t[f * kp + j] = c[j * d + f];
            }
        }
        Centres { k, kp, d, t }
    }

    /// For each row `rows[r]`, the nearest centroid (lowest index on a tie),
    /// its squared distance and the second smallest: `f(r, label, d1, d2)`.
    /// Every distance is bit for bit [`sq`]'s.
    pub(crate) fn nearest_two_each(
        &self,
        rows: &[&[f64]],
        mut f: impl FnMut(usize, u32, f64, f64),
    ) {
        let mut out = vec![0.0f64; 4 * self.kp];
        for (q, quad) in rows.chunks(4).enumerate() {
            let pick = |r: usize| quad[r.min(quad.len() - 1)];
            self.tiles([pick(0), pick(1), pick(2), pick(3)], &mut out);
            for r in 0..quad.len() {
                let (mut best, mut b1, mut b2) = (0u32, f64::INFINITY, f64::INFINITY);
                for (j, &v) in out[r * self.kp..r * self.kp + self.k].iter().enumerate() {
                    if v < b1 {
                        b2 = b1;
                        b1 = v;
                        best = j as u32;
                    } else if v < b2 {
                        b2 = v;
                    }
                }
                f(q * 4 + r, best, b1, b2);
            }
        }
    }

    /// Squared distances of four rows to every centroid: `out[r * kp + j]`.
    fn tiles(&self, rows: [&[f64]; 4], out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { self.tiles_avx2(rows, out) };
        }
        self.tiles_any(rows, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn tiles_avx2(&self, rows: [&[f64]; 4], out: &mut [f64]) {
        self.tiles_any(rows, out)
    }

    /// Four rows × four centroids at a time: sixteen independent sums, each
    /// added in feature order (no fused multiply-add, no reordering), so the
    /// vector code gives the scalar code's values.
    #[inline(always)]
    fn tiles_any(&self, rows: [&[f64]; 4], out: &mut [f64]) {
        let (d, kp) = (self.d, self.kp);
        let (r0, r1, r2, r3) = (&rows[0][..d], &rows[1][..d], &rows[2][..d], &rows[3][..d]);
        for g in (0..kp).step_by(4) {
            let mut acc = [[0.0f64; 4]; 4];
            for f in 0..d {
                let c: &[f64; 4] = self.t[f * kp + g..f * kp + g + 4].try_into().expect("4");
                let x = [r0[f], r1[f], r2[f], r3[f]];
                for r in 0..4 {
                    for l in 0..4 {
                        let e = x[r] - c[l];
                        acc[r][l] += e * e;
                    }
                }
            }
            for r in 0..4 {
                out[r * kp + g..r * kp + g + 4].copy_from_slice(&acc[r]);
            }
        }
    }
}

/// Plain k-means++ seeding (Arthur & Vassilvitskii 2007) exactly as linfa
/// draws it: the first seed uniform, each next one with probability ∝ the
/// squared distance to the nearest seed so far.
pub fn plus_plus(x: ArrayView2<f64>, k: usize, rng: &mut Xoshiro256Plus) -> Array2<f64> {
    let x = x.as_standard_layout();
    let (n, d) = x.dim();
    let xs = x.as_slice().expect("standard layout");
    let mut seeds = Array2::<f64>::zeros((k, d));
    let first = WeightedIndex::new(std::iter::repeat_n(1.0f64, n))
        .expect("at least one row")
        .sample(rng);
    seeds.row_mut(0).assign(&x.row(first));
    let mut nearest = vec![f64::INFINITY; n];
    for j in 1..k {
        let seed = seeds.row(j - 1).to_vec();
        let update = |(b, chunk): (usize, &mut [f64])| {
            let rows = &xs[b * BLOCK * d..(b * BLOCK + chunk.len()) * d];
            sq_each(&seed, rows, chunk.len(), |o, v| {
                if v < chunk[o] {
                    chunk[o] = v;
                }
            });
        };
        if n >= PARALLEL_FROM {
            nearest.par_chunks_mut(BLOCK).enumerate().for_each(update);
        } else {
            nearest.chunks_mut(BLOCK).enumerate().for_each(update);
        }
        // Every row on a seed: any row will do (linfa takes the first).
        let pick = WeightedIndex::new(nearest.iter())
            .map(|w| w.sample(rng))
            .unwrap_or(0);
        seeds.row_mut(j).assign(&x.row(pick));
    }
    seeds
}

/// Lloyd iterations from `init` (k × d) until the centroids move less than
/// `tol` (Frobenius norm) or `max_iter` passes.
pub fn lloyd(x: ArrayView2<f64>, init: Array2<f64>, max_iter: u64, tol: f64) -> Run {
    let x = x.as_standard_layout();
    let (n, d) = x.dim();
    let k = init.nrows();
    let xs = x.as_slice().expect("standard layout");
    let mut c: Vec<f64> = init.as_standard_layout().iter().copied().collect();
    let row = |i: usize| &xs[i * d..(i + 1) * d];

    // Per row: centroid, upper bound on its distance, lower bound on any other's.
    let mut label = vec![0u32; n];
    let mut upper = vec![0.0f64; n];
    let mut lower = vec![0.0f64; n];
    let par = n >= PARALLEL_FROM;
    let centres = Centres::new(&c, k, d);
    each_block(par, &mut label, &mut upper, &mut lower, |b, ls, us, lo| {
        let rows: Vec<&[f64]> = (0..ls.len()).map(|o| row(b * BLOCK + o)).collect();
        centres.nearest_two_each(&rows, |o, j, b1, b2| {
            ls[o] = j;
            us[o] = b1.sqrt();
            lo[o] = b2.sqrt();
        });
    });

    let mut passes = 0u64;
    loop {
        // Update: mean of each centroid's rows and the old centroid.
        let partial: Vec<(Vec<f64>, Vec<usize>)> = map_blocks(par, &label, |b, ls| {
            let mut s = vec![0.0f64; k * d];
            let mut cnt = vec![0usize; k];
            for (o, &l) in ls.iter().enumerate() {
                let l = l as usize;
                cnt[l] += 1;
                for (a, v) in s[l * d..(l + 1) * d].iter_mut().zip(row(b * BLOCK + o)) {
                    *a += v;
                }
            }
            (s, cnt)
        });
        let mut sum = vec![0.0f64; k * d];
        let mut count = vec![1usize; k];
        for (s, cnt) in &partial {
            for (a, v) in sum.iter_mut().zip(s) {
                *a += v;
            }
            for (a, v) in count.iter_mut().zip(cnt) {
                *a += v;
            }
        }
        let new: Vec<f64> = (0..k * d)
            .map(|i| (sum[i] + c[i]) / count[i / d] as f64)
            .collect();
        let shift = sq(&c, &new).sqrt();
        passes += 1;
        if shift < tol || passes >= max_iter {
            let inertia = inertia_at(par, xs, d, &label, &c);
            return Run {
                centroids: Array2::from_shape_vec((k, d), new).expect("k × d"),
                inertia,
                passes,
            };
        }
        // Move the bounds by how far the centroids moved.
        let moved: Vec<f64> = (0..k)
            .map(|j| sq(&c[j * d..(j + 1) * d], &new[j * d..(j + 1) * d]).sqrt())
            .collect();
        c = new;
        let (mut m1, mut m1_at, mut m2) = (0.0f64, 0usize, 0.0f64);
        for (j, &m) in moved.iter().enumerate() {
            if m > m1 {
                m2 = m1;
                m1 = m;
                m1_at = j;
            } else if m > m2 {
                m2 = m;
            }
        }
        // Half the distance from each centroid to its nearest other.
        let half: Vec<f64> = (0..k)
            .map(|j| {
                (0..k)
                    .filter(|&o| o != j)
                    .map(|o| sq(&c[j * d..(j + 1) * d], &c[o * d..(o + 1) * d]).sqrt())
                    .fold(f64::INFINITY, f64::min)
                    / 2.0
            })
            .collect();
        let c_ref = &c;
        let centres = Centres::new(&c, k, d);
        each_block(par, &mut label, &mut upper, &mut lower, |b, ls, us, lo| {
            // Rows whose bounds do not settle them get their upper bound
            // tightened to the exact distance, four at a time; rows still
            // unsettled are scanned against every centroid together.
            let mut unsettled: Vec<(usize, f64)> = Vec::new();
            for o in 0..ls.len() {
                let a = ls[o] as usize;
                us[o] += moved[a];
                lo[o] -= if a == m1_at { m2 } else { m1 };
                let bound = half[a].max(lo[o]);
                if us[o] * (1.0 + MARGIN) >= bound {
                    unsettled.push((o, bound));
                }
            }
            let own = |o: usize| {
                let a = ls[o] as usize;
                &c_ref[a * d..(a + 1) * d]
            };
            let mut exact = Vec::with_capacity(unsettled.len());
            sq_by(
                unsettled.len(),
                |t| row(b * BLOCK + unsettled[t].0),
                |t| own(unsettled[t].0),
                |_, v| exact.push(v),
            );
            let mut todo: Vec<usize> = Vec::new();
            for (&(o, bound), v) in unsettled.iter().zip(exact) {
                us[o] = v.sqrt();
                if us[o] * (1.0 + MARGIN) >= bound {
                    todo.push(o);
                }
            }
            let rows: Vec<&[f64]> = todo.iter().map(|&o| row(b * BLOCK + o)).collect();
            centres.nearest_two_each(&rows, |t, j, b1, b2| {
                let o = todo[t];
                ls[o] = j;
                us[o] = b1.sqrt();
                lo[o] = b2.sqrt();
            });
        });
    }
}

/// Σ squared distance of each row to centroid `label`, summed by block in
/// order (independent of the thread count).
fn inertia_at(par: bool, xs: &[f64], d: usize, label: &[u32], c: &[f64]) -> f64 {
    let parts: Vec<f64> = map_blocks(par, label, |b, ls| {
        let mut total = 0.0;
        sq_by(
            ls.len(),
            |o| &xs[(b * BLOCK + o) * d..(b * BLOCK + o + 1) * d],
            |o| &c[ls[o] as usize * d..(ls[o] as usize + 1) * d],
            |_, v| total += v,
        );
        total
    });
    parts.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::prelude::*;
    use linfa_clustering::{KMeans, KMeansInit};
    use rand::{Rng, SeedableRng};

    fn table(csv: &str, standardise: bool) -> Array2<f64> {
        let mut rows = csv.lines();
        let d = rows.next().unwrap().split(',').count() - 1;
        let mut data = Vec::new();
        let mut n = 0;
        for line in rows.filter(|l| !l.trim().is_empty()) {
            let v: Vec<f64> = line.split(',').map(|s| s.parse().unwrap()).collect();
            data.extend_from_slice(&v[..d]);
            n += 1;
        }
        let mut x = Array2::from_shape_vec((n, d), data).unwrap();
        if standardise {
            for mut col in x.columns_mut() {
                let (m, s) = (col.mean().unwrap(), col.std(0.0));
                col.mapv_inplace(|v| (v - m) / s);
            }
        }
        x
    }

    fn blobs(n: usize, d: usize, k: usize, seed: u64) -> Array2<f64> {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let centres: Vec<Vec<f64>> = (0..k)
            .map(|_| (0..d).map(|_| rng.gen_range(-6.0..6.0)).collect())
            .collect();
        Array2::from_shape_fn((n, d), |(i, j)| {
            centres[i % k][j] + rng.gen_range(-1.0..1.0) + rng.gen_range(-1.0..1.0)
        })
    }

    /// linfa's fit of one run from the seeds its own k-means++ draws with `seed`.
    fn linfa_run(x: &Array2<f64>, k: usize, seed: u64, tol: f64) -> (Array2<f64>, f64) {
        let m = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
            .n_runs(1)
            .init_method(KMeansInit::KMeansPlusPlus)
            .max_n_iterations(300)
            .tolerance(tol)
            .fit(&DatasetBase::from(x.view()))
            .unwrap();
        (m.centroids().clone(), m.inertia() * x.nrows() as f64)
    }

    fn close(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
        a.iter()
            .zip(b.iter())
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn same_seeds_and_centroids_as_linfa() {
        let data = [
            (
                "iris",
                table(include_str!("../../../tests/data/iris.csv"), false),
            ),
            (
                "wine",
                table(include_str!("../../../tests/data/wine.csv"), true),
            ),
            ("blobs", blobs(20_000, 12, 6, 5)),
        ];
        for (name, x) in &data {
            for k in [2, 3, 5, 8] {
                for seed in 0..4u64 {
                    let tol = 1e-4;
                    let (want, want_inertia) = linfa_run(x, k, seed, tol);
                    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
                    let init = plus_plus(x.view(), k, &mut rng);
                    let got = lloyd(x.view(), init, 300, tol);
                    let diff = close(&want, &got.centroids);
                    assert!(
                        diff < 1e-9,
                        "{name} k={k} seed={seed}: centroids differ by {diff}"
                    );
                    let rel = (got.inertia - want_inertia).abs() / want_inertia;
                    assert!(
                        rel < 1e-9,
                        "{name} k={k} seed={seed}: inertia {} vs linfa {want_inertia}",
                        got.inertia
                    );
                }
            }
        }
    }

    #[test]
    fn bounds_change_nothing() {
        // With the skip test disabled (every row scanned every pass) the run is
        // the same: the bounds only save work.
        let x = blobs(30_000, 8, 7, 9);
        let mut rng = Xoshiro256Plus::seed_from_u64(3);
        let init = plus_plus(x.view(), 7, &mut rng);
        let fast = lloyd(x.view(), init.clone(), 300, 1e-6);
        let full = naive(x.view(), init, 300, 1e-6);
        assert_eq!(fast.passes, full.passes);
        assert!(close(&fast.centroids, &full.centroids) < 1e-12);
    }

    /// Lloyd with linfa's update, scanning every row every pass.
    fn naive(x: ArrayView2<f64>, init: Array2<f64>, max_iter: u64, tol: f64) -> Run {
        let (n, d) = x.dim();
        let k = init.nrows();
        let mut c = init;
        let mut passes = 0;
        loop {
            let mut sum = Array2::<f64>::zeros((k, d));
            let mut cnt = vec![1usize; k];
            let mut inertia = 0.0;
            for i in 0..n {
                let r = x.row(i);
                let (j, v) = (0..k)
                    .map(|j| (j, sq(r.as_slice().unwrap(), c.row(j).as_slice().unwrap())))
                    .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
                inertia += v;
                cnt[j] += 1;
                let mut s = sum.row_mut(j);
                s += &r;
            }
            let new =
                Array2::from_shape_fn((k, d), |(j, f)| (sum[[j, f]] + c[[j, f]]) / cnt[j] as f64);
            let shift = sq(c.as_slice().unwrap(), new.as_slice().unwrap()).sqrt();
            passes += 1;
            c = new;
            if shift < tol || passes >= max_iter {
                return Run {
                    centroids: c,
                    inertia,
                    passes,
                };
            }
        }
    }

    #[test]
    fn independent_of_thread_count() {
        let x = blobs(3 * PARALLEL_FROM, 10, 5, 1);
        let go = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let mut rng = Xoshiro256Plus::seed_from_u64(11);
                    let init = plus_plus(x.view(), 5, &mut rng);
                    lloyd(x.view(), init, 300, 1e-6)
                })
        };
        let (a, b) = (go(1), go(3));
        assert_eq!(a.centroids, b.centroids);
        assert_eq!(a.inertia.to_bits(), b.inertia.to_bits());
    }

    #[test]
    fn an_empty_cluster_keeps_its_place() {
        // Three identical rows and a far seed that attracts none of them.
        let x = ndarray::array![[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]];
        let init = ndarray::array![[0.0, 0.0], [10.0, 10.0]];
        let r = lloyd(x.view(), init, 300, 1e-9);
        assert!(r.centroids.iter().all(|v| v.is_finite()));
        assert_eq!(r.centroids.row(1).to_vec(), vec![10.0, 10.0]);
        assert_eq!(r.inertia, 0.0);
    }
}
