//! Exact k nearest neighbours by parallel brute force (O(n²·d)), for small
//! data and as the reference NN-descent's recall is measured against.

use rayon::prelude::*;

use super::distance::{dist, insert, EMPTY};
use super::nn_descent::Lists;
use super::Knn;

/// Exact kNN by brute force (parallel over points). Where the CPU has AVX2,
/// eight candidates are measured at once from a copy of the matrix laid out
/// eight points per block, feature-major ([`Lanes`]): each SIMD lane runs
/// [`dist`]'s own sequence of operations for one candidate, so every
/// distance is the same bits as [`dist`]'s, and only candidates at or below
/// the current k-th distance reach the sorted list. The lists are the
/// portable loop's exactly (`tests::lane_kernel_is_the_portable_one`).
pub fn exact(x: &[f32], n: usize, d: usize, k: usize) -> Knn {
    let k = k.min(n.saturating_sub(1)).max(1);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && d > 0 {
        let lanes = Lanes::new(x, n, d);
        let rows: Vec<Vec<(f32, u32)>> = (0..n)
            .into_par_iter()
            // SAFETY: the CPU supports AVX2 (checked above).
            .map(|i| unsafe { lanes.row_avx2(&x[i * d..(i + 1) * d], i, k) })
            .collect();
        return pack(rows, k, "exact", 0);
    }
    let rows: Vec<Vec<(f32, u32)>> = (0..n)
        .into_par_iter()
        .map(|i| portable_row(x, n, d, k, i))
        .collect();
    pack(rows, k, "exact", 0)
}

/// Row `i`'s k nearest by [`dist`], one candidate at a time.
pub(super) fn portable_row(x: &[f32], n: usize, d: usize, k: usize, i: usize) -> Vec<(f32, u32)> {
    let xi = &x[i * d..(i + 1) * d];
    let mut list = vec![EMPTY; k];
    let mut flags = vec![0u8; k];
    for j in (0..n).filter(|&j| j != i) {
        insert(
            &mut list,
            &mut flags,
            dist(xi, &x[j * d..(j + 1) * d]),
            j as u32,
            0,
        );
    }
    list
}

/// The matrix in blocks of eight points, feature-major within a block:
/// `t[(b·d + f)·8 + l]` is feature `f` of point `8b + l` (zeros past `n`).
struct Lanes {
    n: usize,
    d: usize,
    t: Vec<f32>,
}

impl Lanes {
    fn new(x: &[f32], n: usize, d: usize) -> Self {
        let mut t = vec![0f32; n.div_ceil(8) * 8 * d];
        for (j, row) in x.chunks_exact(d).take(n).enumerate() {
            let (b, l) = (j / 8, j % 8);
            for (f, &v) in row.iter().enumerate() {
                t[(b * d + f) * 8 + l] = v;
            }
        }
        Lanes { n, d, t }
    }

    /// The k nearest of `xi` (point `i`) among all points.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_avx2(&self, xi: &[f32], i: usize, k: usize) -> Vec<(f32, u32)> {
        let mut list = vec![EMPTY; k];
        let mut flags = vec![0u8; k];
        // SAFETY: the caller's promise.
        unsafe { self.fill_avx2(xi, i, 0, &mut list, &mut flags) };
        list
    }

    /// Insert into `list` (sorted, as [`insert`] keeps it) every one of
    /// these points nearer than its last entry, numbered from `base`, except
    /// point `skip` (by that numbering).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_avx2(
        &self,
        xi: &[f32],
        skip: usize,
        base: usize,
        list: &mut [(f32, u32)],
        flags: &mut [u8],
    ) {
        use std::arch::x86_64::*;
        let (n, d) = (self.n, self.d);
        let k = list.len();
        let mut limit = _mm256_set1_ps(list[k - 1].0);
        let mut out = [0f32; 8];
        for (b, block) in self.t.chunks_exact(8 * d).enumerate() {
            let p = block.as_ptr();
            // Lane l of acc[m] is dist's acc[m] for candidate 8b + l:
            // feature f is added into acc[f mod 8], in feature order.
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut f = 0;
            while f + 8 <= d {
                for (m, a) in acc.iter_mut().enumerate() {
                    // SAFETY: (f + m)·8 + 8 <= 8d, the block's length.
                    let y = unsafe { _mm256_loadu_ps(p.add((f + m) * 8)) };
                    let t = _mm256_sub_ps(_mm256_set1_ps(xi[f + m]), y);
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(t, t));
                }
                f += 8;
            }
            for (m, a) in acc.iter_mut().enumerate().take(d - f) {
                // SAFETY: f + m < d.
                let y = unsafe { _mm256_loadu_ps(p.add((f + m) * 8)) };
                let t = _mm256_sub_ps(_mm256_set1_ps(xi[f + m]), y);
                *a = _mm256_add_ps(*a, _mm256_mul_ps(t, t));
            }
            // finish_lanes' order: ((0+4) + (2+6)) + ((1+5) + (3+7)).
            let s = _mm256_add_ps(
                _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6])),
                _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7])),
            );
            // Candidates not above the k-th distance (NaN included, as
            // `insert` would take it), the rest cannot enter the list.
            let mut near = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NGT_UQ>(s, limit)) as u32;
            if near == 0 {
                continue;
            }
            // SAFETY: `out` holds eight f32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
            while near != 0 {
                let l = near.trailing_zeros() as usize;
                near &= near - 1;
                let j = b * 8 + l;
                if j < n && base + j != skip {
                    insert(list, flags, out[l], (base + j) as u32, 0);
                }
            }
            limit = _mm256_set1_ps(list[k - 1].0);
        }
    }
}

/// Exact neighbour lists of a pool of points, deep enough to give the exact
/// k-nearest lists of any subset of the pool without measuring again — what
/// the stability runs, each a subsample of one pool, share.
///
/// A subset's k nearest of a point are the first k entries of its pool list
/// that lie in the subset, whenever the list holds k of them: every point
/// outside the list is farther (or as far, with a higher index) than all in
/// it, and keeping the subset in pool order keeps the `(distance, index)`
/// order. A point with fewer than k of its list in the subset is measured
/// against the subset as [`exact`] would. The lists are [`exact`]'s to the
/// bit (`tests::a_subset_of_deep_lists_is_the_exact_search`).
pub struct Deep {
    lists: Knn,
    x: Vec<f32>,
    d: usize,
}

impl Deep {
    /// The pool's lists, `2k + 10` deep: a run keeping 80% of the pool finds
    /// fewer than k of them in its subsample with probability 8e-10 per
    /// point at k = 15 (the binomial tail; 1e-8 at k = 5).
    pub fn new(pool: ndarray::ArrayView2<f64>, k: usize) -> Deep {
        let (n, d) = pool.dim();
        let x = super::to_f32(pool);
        let lists = exact(&x, n, d, 2 * k + 10);
        Deep { lists, x, d }
    }

    /// Points in the pool.
    pub fn n(&self) -> usize {
        self.lists.n()
    }

    /// The exact k-nearest lists of the pool points `in_pool` (sorted),
    /// numbered by their position in it.
    pub fn of(&self, in_pool: &[usize], k: usize) -> Knn {
        let (m, d) = (in_pool.len(), self.d);
        let k = k.min(m.saturating_sub(1)).max(1);
        let mut at = vec![u32::MAX; self.lists.n()];
        for (r, &p) in in_pool.iter().enumerate() {
            at[p] = r as u32;
        }
        let sub: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
        let rows: Vec<Vec<(f32, u32)>> = (0..m)
            .into_par_iter()
            .map(|r| {
                let p = in_pool[r];
                let deep = self.lists.k;
                let found: Vec<(f32, u32)> = (p * deep..(p + 1) * deep)
                    .map(|e| (self.lists.dist[e], self.lists.idx[e]))
                    .filter(|&(_, j)| j != u32::MAX && at[j as usize] != u32::MAX)
                    .map(|(dd, j)| (dd, at[j as usize]))
                    .take(k)
                    .collect();
                if found.len() == k {
                    return found;
                }
                let xs = sub.get_or_init(|| {
                    in_pool
                        .iter()
                        .flat_map(|&q| self.x[q * d..(q + 1) * d].iter().copied())
                        .collect()
                });
                portable_row(xs, m, d, k, r)
            })
            .collect();
        pack(rows, k, "exact", 0)
    }
}

pub(super) fn pack(
    rows: Vec<Vec<(f32, u32)>>,
    k: usize,
    method: &'static str,
    rounds: usize,
) -> Knn {
    let mut idx = Vec::with_capacity(rows.len() * k);
    let mut dist = Vec::with_capacity(rows.len() * k);
    for r in rows {
        for (d, j) in r {
            idx.push(j);
            dist.push(d);
        }
    }
    Knn {
        k,
        idx,
        dist,
        method,
        rounds,
        order: None,
        recall: None,
    }
}

/// NN-descent grows its lists when the sampled recall of its first pass is
/// below this.
pub const RECALL_TARGET: f64 = 0.9;

/// Points whose exact neighbours check NN-descent: 200 (3,000 neighbours to
/// find at k = 15, so the estimate's binomial standard error is under 0.01),
/// spread evenly over the locality order, so over the data.
pub(super) fn probe_points(n: usize) -> Vec<u32> {
    let m = n.min(200);
    (0..m).map(|i| ((2 * i + 1) * n / (2 * m)) as u32).collect()
}

/// The exact k nearest neighbours of each probe: one parallel pass over the
/// points in blocks, each block keeping its own lists for all probes, then
/// the blocks' lists merged (the k smallest distinct `(distance, index)` pairs,
/// whatever the order). Where the CPU has AVX2, each block is laid out as
/// [`Lanes`] once and every probe measures eight of its points at a time
/// (the same bits as [`dist`]). O(probes · n · d).
pub(super) fn probe_neighbours(
    x: &[f32],
    d: usize,
    probes: &[u32],
    k: usize,
) -> Vec<Vec<(f32, u32)>> {
    let block = |rows: std::ops::Range<usize>| {
        let mut out = vec![vec![EMPTY; k]; probes.len()];
        let mut flags = vec![0u8; k];
        let row = |p: usize| &x[p * d..(p + 1) * d];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && d > 0 {
            let lanes = Lanes::new(&x[rows.start * d..rows.end * d], rows.len(), d);
            for (list, &p) in out.iter_mut().zip(probes) {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe {
                    lanes.fill_avx2(row(p as usize), p as usize, rows.start, list, &mut flags)
                };
            }
            return out;
        }
        for j in rows {
            for (list, &p) in out.iter_mut().zip(probes) {
                if p as usize != j {
                    insert(list, &mut flags, dist(row(p as usize), row(j)), j as u32, 0);
                }
            }
        }
        out
    };
    let n = x.len() / d.max(1);
    // A block's lanes (2,048 points) stay in cache while every probe reads them.
    const ROWS: usize = 2048;
    (0..n.div_ceil(ROWS))
        .into_par_iter()
        .map(|b| block(b * ROWS..((b + 1) * ROWS).min(n)))
        .reduce(
            || vec![vec![EMPTY; k]; probes.len()],
            |mut a, b| {
                let mut flags = vec![0u8; k];
                for (la, lb) in a.iter_mut().zip(b) {
                    for (dd, j) in lb {
                        insert(la, &mut flags, dd, j, 0);
                    }
                }
                a
            },
        )
}

/// Share of the probes' exact neighbours that the lists hold.
pub(super) fn probe_recall(g: &Lists, probes: &[u32], exact: &[Vec<(f32, u32)>]) -> f64 {
    let k = g.k;
    let (mut hits, mut all) = (0usize, 0usize);
    for (&p, truth) in probes.iter().zip(exact) {
        let list = &g.lists[p as usize * k..(p as usize + 1) * k];
        for e in truth.iter().filter(|e| e.1 != u32::MAX) {
            all += 1;
            hits += list.iter().any(|l| l.1 == e.1) as usize;
        }
    }
    if all == 0 {
        1.0
    } else {
        hits as f64 / all as f64
    }
}
