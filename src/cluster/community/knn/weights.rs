//! The kNN lists symmetrised into the weighted similarity graph: shared-
//! nearest-neighbour Jaccard (PhenoGraph, Seurat), gaussian or binary weights.

use rayon::prelude::*;

use super::super::graph::{split_by, Csr};
use super::{Knn, Weighting};

/// Jaccard similarity of two sets given as rows of distinct values padded with
/// `u32::MAX`, in any order, to one width that is a multiple of 8. Every slot of
/// one row is compared with every slot of the other, 8 lanes at a time, and the
/// padding's matches with padding are subtracted: (k+1)² comparisons without a
/// branch, several times faster than a sorted merge, whose branches mispredict.
#[inline(always)]
pub(super) fn padded_jaccard(a: &[u32], b: &[u32]) -> f64 {
    debug_assert!(a.len() == b.len() && a.len() % 8 == 0);
    let mut hits = [0u32; 8];
    for &x in a {
        for c in b.chunks_exact(8) {
            for l in 0..8 {
                hits[l] += (c[l] == x) as u32;
            }
        }
    }
    let w = a.len();
    let pad = |r: &[u32]| r.iter().map(|&x| (x == u32::MAX) as usize).sum::<usize>();
    let (pa, pb) = (pad(a), pad(b));
    let inter = hits.iter().sum::<u32>() as usize - pa * pb;
    let union = (w - pa) + (w - pb) - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Appends the Jaccard weight of `u` with each of `vs` to `out`; `sets` holds
/// every node's padded set, `w` slots each. The neighbours' sets are requested
/// from memory first (each is a likely cache miss); an AVX2 build of this loop
/// measured no faster, the misses being the cost.
pub(super) fn snn_weights(sets: &[u32], w: usize, u: usize, vs: &[(u32, f32)], out: &mut Vec<f64>) {
    #[cfg(target_arch = "x86_64")]
    for &(v, _) in vs {
        // SAFETY: prefetching is a hint; both pointers are in bounds.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(sets.as_ptr().add(v as usize * w) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(sets.as_ptr().add(v as usize * w + w - 1) as *const i8);
        }
    }
    let a = &sets[u * w..(u + 1) * w];
    out.extend(
        vs.iter()
            .map(|&(v, _)| padded_jaccard(a, &sets[v as usize * w..(v as usize + 1) * w])),
    );
}

/// Symmetrise and weight the kNN lists into a graph: `u` and `v` are joined
/// when either lists the other. The graph's nodes are the lists' nodes (in the
/// locality order when there is one; [`Knn::to_accounts`] maps labels back).
///
/// Each node's list is the sorted union of its own neighbours and of the points
/// that list it, built in parallel: O(n·k log k), no global sort.
pub fn graph(knn: &Knn, weighting: Weighting) -> Csr {
    let n = knn.n();
    let k = knn.k;
    // S(x) = x and its neighbours, padded to a multiple of 8 for Jaccard.
    let w = (k + 1).next_multiple_of(8);
    let sets: Vec<u32> = if weighting == Weighting::Snn {
        let mut sets = vec![u32::MAX; n * w];
        sets.par_chunks_mut(w).enumerate().for_each(|(i, s)| {
            s[..k].copy_from_slice(knn.row(i));
            s[k] = i as u32;
        });
        sets
    } else {
        Vec::new()
    };
    let sigma: Vec<f32> = if weighting == Weighting::Gaussian {
        (0..n)
            .map(|i| {
                let r = &knn.dist[i * k..(i + 1) * k];
                let last = r.iter().rposition(|d| d.is_finite()).map_or(0.0, |s| r[s]);
                last.sqrt().max(1e-12)
            })
            .collect()
    } else {
        Vec::new()
    };
    // Who lists v, with the distance, in CSR form, in order of the lister.
    // The nodes are cut into one range per thread; each counts, then fills,
    // the lists of its own nodes from one ordered read of all the lists, so
    // every list comes out as one pass in order would write it.
    let parts = rayon::current_num_threads().clamp(1, n.max(1));
    let range = |p: usize| p * n / parts..(p + 1) * n / parts;
    let mut off = vec![0usize; n + 1];
    split_by(&mut off[1..], (0..parts).map(|p| range(p).len()))
        .into_par_iter()
        .enumerate()
        .for_each(|(p, mine)| {
            let r = range(p);
            for &j in &knn.idx {
                if r.contains(&(j as usize)) {
                    mine[j as usize - r.start] += 1;
                }
            }
        });
    for i in 0..n {
        off[i + 1] += off[i];
    }
    let mut rev = vec![(0u32, 0f32); off[n]];
    split_by(
        &mut rev,
        (0..parts).map(|p| off[range(p).end] - off[range(p).start]),
    )
    .into_par_iter()
    .enumerate()
    .for_each(|(p, mine)| {
        let r = range(p);
        let mut fill: Vec<usize> = off[r.clone()].iter().map(|o| o - off[r.start]).collect();
        for (pos, &j) in knn.idx.iter().enumerate() {
            if r.contains(&(j as usize)) {
                let f = &mut fill[j as usize - r.start];
                mine[*f] = ((pos / k) as u32, knn.dist[pos]);
                *f += 1;
            }
        }
    });
    let gaussian = |u: usize, v: usize, d2: f32| {
        (-(d2 as f64) / (sigma[u] as f64 * sigma[v] as f64))
            .exp()
            .max(1e-12)
    };
    const CHUNK: usize = 4096;
    let parts: Vec<(Vec<usize>, Vec<u32>, Vec<f64>)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (mut deg, mut targets, mut weights) = (Vec::new(), Vec::new(), Vec::new());
            let mut both: Vec<(u32, f32)> = Vec::new();
            for u in c * CHUNK..((c + 1) * CHUNK).min(n) {
                both.clear();
                both.extend(
                    (u * k..(u + 1) * k)
                        .filter(|&s| knn.idx[s] != u32::MAX)
                        .map(|s| (knn.idx[s], knn.dist[s])),
                );
                both.extend_from_slice(&rev[off[u]..off[u + 1]]);
                both.sort_unstable_by_key(|e| e.0);
                both.dedup_by_key(|e| e.0);
                deg.push(both.len());
                targets.extend(both.iter().map(|e| e.0));
                match weighting {
                    Weighting::Snn => snn_weights(&sets, w, u, &both, &mut weights),
                    Weighting::Binary => weights.extend(both.iter().map(|_| 1.0)),
                    Weighting::Gaussian => {
                        weights.extend(both.iter().map(|&(v, d2)| gaussian(u, v as usize, d2)))
                    }
                }
            }
            (deg, targets, weights)
        })
        .collect();
    // The sets and reverse lists freed first, then the chunks' rows copied
    // into place, each chunk freed once copied: from a million accounts up
    // the run's memory peaks here or in Leiden, and the graph is never held
    // twice.
    drop((sets, sigma, rev, off));
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0);
    for dg in parts.iter().flat_map(|p| &p.0) {
        offsets.push(offsets.last().expect("pushed") + dg);
    }
    let total = offsets[n];
    // Each chunk's rows copied into place, on every thread (2.5 GB at 10M
    // accounts, into freshly mapped pages).
    let (mut targets, mut weights) = (vec![0u32; total], vec![0f64; total]);
    let lens = || parts.iter().map(|p| p.1.len());
    split_by(&mut targets, lens())
        .into_par_iter()
        .zip(split_by(&mut weights, lens()))
        .zip(parts.into_par_iter())
        .for_each(|((t, w), (_, pt, pw))| {
            t.copy_from_slice(&pt);
            w.copy_from_slice(&pw);
        });
    Csr {
        offsets,
        targets,
        weights,
        loops: vec![0.0; n],
    }
}
