//! Exact k nearest neighbours by parallel brute force (O(n²·d)), for small
//! data and as the reference NN-descent's recall is measured against.

use rayon::prelude::*;

use super::distance::{dist, dist_avx2, insert, EMPTY};
use super::nn_descent::Lists;
use super::Knn;

/// Exact kNN by brute force (parallel over points), with the AVX2 distance
/// where the CPU has it (the same bits as the portable one, see
/// [`super::distance`]).
pub fn exact(x: &[f32], n: usize, d: usize, k: usize) -> Knn {
    let k = k.min(n.saturating_sub(1)).max(1);
    #[inline(always)]
    fn row_impl(
        x: &[f32],
        n: usize,
        d: usize,
        k: usize,
        i: usize,
        dist: impl Fn(&[f32], &[f32]) -> f32,
    ) -> Vec<(f32, u32)> {
        let xi = &x[i * d..(i + 1) * d];
        let mut list = vec![EMPTY; k];
        let mut flags = vec![0u8; k];
        for j in 0..n {
            if j != i {
                insert(
                    &mut list,
                    &mut flags,
                    dist(xi, &x[j * d..(j + 1) * d]),
                    j as u32,
                    0,
                );
            }
        }
        list
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn row_avx2(x: &[f32], n: usize, d: usize, k: usize, i: usize) -> Vec<(f32, u32)> {
        // SAFETY: this function only runs where AVX2 is available.
        row_impl(x, n, d, k, i, |a, b| unsafe { dist_avx2(a, b) })
    }
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    let rows: Vec<Vec<(f32, u32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { row_avx2(x, n, d, k, i) };
            }
            row_impl(x, n, d, k, i, dist)
        })
        .collect();
    pack(rows, k, "exact", 0)
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
/// whatever the order). O(probes · n · d).
pub(super) fn probe_neighbours(
    x: &[f32],
    d: usize,
    probes: &[u32],
    k: usize,
) -> Vec<Vec<(f32, u32)>> {
    #[inline(always)]
    fn block_impl(
        x: &[f32],
        d: usize,
        probes: &[u32],
        k: usize,
        rows: std::ops::Range<usize>,
        dist: impl Fn(&[f32], &[f32]) -> f32,
    ) -> Vec<Vec<(f32, u32)>> {
        let mut out = vec![vec![EMPTY; k]; probes.len()];
        let mut flags = vec![0u8; k];
        let row = |p: usize| &x[p * d..(p + 1) * d];
        for j in rows {
            for (list, &p) in out.iter_mut().zip(probes) {
                if p as usize != j {
                    insert(list, &mut flags, dist(row(p as usize), row(j)), j as u32, 0);
                }
            }
        }
        out
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn block_avx2(
        x: &[f32],
        d: usize,
        probes: &[u32],
        k: usize,
        rows: std::ops::Range<usize>,
    ) -> Vec<Vec<(f32, u32)>> {
        // SAFETY: this function only runs where AVX2 is available.
        block_impl(x, d, probes, k, rows, |a, b| unsafe { dist_avx2(a, b) })
    }
    let block = |rows: std::ops::Range<usize>| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { block_avx2(x, d, probes, k, rows) };
        }
        block_impl(x, d, probes, k, rows, dist)
    };
    let n = x.len() / d.max(1);
    const ROWS: usize = 8192;
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
