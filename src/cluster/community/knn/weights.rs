//! The kNN lists symmetrised into the weighted similarity graph: shared-
//! nearest-neighbour Jaccard (PhenoGraph, Seurat), gaussian or binary weights.

use rayon::prelude::*;

use super::super::graph::{split_by, Csr, Weights};
use super::{Knn, Weighting};

/// Jaccard similarity of two sets given as rows of distinct values padded with
/// `u32::MAX`, in any order, to one width that is a multiple of 8, as its
/// key ([`jaccard`]). Every slot of one row is compared with every slot
/// of the other, 8 lanes at a time, and the padding's matches with padding
/// are subtracted: (k+1)² comparisons without a branch, several times faster
/// than a sorted merge, whose branches mispredict.
#[inline(always)]
pub(super) fn padded_jaccard_key(a: &[u32], b: &[u32]) -> u16 {
    debug_assert!(a.len() == b.len() && a.len().is_multiple_of(8) && a.len() <= MAX_WIDTH);
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
    (inter << 8 | union) as u16
}

/// The widest padded set [`padded_jaccard_key`] takes: a key holds the
/// intersection in its high byte and the union (at most twice this) in its
/// low one. The similarity graph has at most 100 neighbours a node, 104 slots.
pub(super) const MAX_WIDTH: usize = 127;
const _: () = assert!((super::MAX_NEIGHBORS + 1).next_multiple_of(8) <= MAX_WIDTH);

/// The Jaccard similarity a key stands for: |A ∩ B| / |A ∪ B|, 1 for two
/// empty sets.
pub(super) fn jaccard(key: u16) -> f64 {
    let (inter, union) = (key >> 8, key & 0xff);
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Jaccard similarity of two padded sets ([`padded_jaccard_key`]).
#[cfg(test)]
pub(super) fn padded_jaccard(a: &[u32], b: &[u32]) -> f64 {
    jaccard(padded_jaccard_key(a, b))
}

/// Appends the Jaccard key of `u` with each of `vs` to `out`; `sets` holds
/// every node's padded set, `w` slots each. The neighbours' sets are requested
/// from memory first (each is a likely cache miss); an AVX2 build of this loop
/// measured no faster, the misses being the cost.
pub(super) fn snn_keys(sets: &[u32], w: usize, u: usize, vs: &[(u32, f32)], out: &mut Vec<u16>) {
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
            .map(|&(v, _)| padded_jaccard_key(a, &sets[v as usize * w..(v as usize + 1) * w])),
    );
}

/// A chunk of rows' weights: Jaccard keys, or the weights themselves.
pub(super) enum Chunk {
    Keys(Vec<u16>),
    Plain(Vec<f64>),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Keys(k) => k.len(),
            Chunk::Plain(w) => w.len(),
        }
    }
}

/// The chunks' weights in one list: a byte each when the keys take at most
/// 256 values (a code in key order, so the same on any thread count), the
/// `f64`s otherwise. Each chunk is freed once copied.
pub(super) fn weights_of(chunks: Vec<Chunk>) -> Weights {
    let sizes: Vec<usize> = chunks.iter().map(Chunk::len).collect();
    let total = sizes.iter().sum();
    // The keys used, a bit each.
    let used = chunks
        .par_iter()
        .map(|c| {
            let mut used = vec![0u64; 1 << 10];
            if let Chunk::Keys(keys) = c {
                for &key in keys {
                    used[key as usize / 64] |= 1 << (key % 64);
                }
            }
            used
        })
        .reduce(
            || vec![0u64; 1 << 10],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a |= b);
                a
            },
        );
    let distinct = used.iter().map(|u| u.count_ones() as usize).sum::<usize>();
    if chunks.iter().any(|c| matches!(c, Chunk::Plain(_))) || distinct > 256 {
        let mut weights = vec![0f64; total];
        split_by(&mut weights, sizes.into_iter())
            .into_par_iter()
            .zip(chunks.into_par_iter())
            .for_each(|(w, c)| match c {
                Chunk::Keys(keys) => {
                    for (w, key) in w.iter_mut().zip(keys) {
                        *w = jaccard(key);
                    }
                }
                Chunk::Plain(p) => w.copy_from_slice(&p),
            });
        return Weights::Plain(weights);
    }
    let mut code = vec![0u8; 1 << 16];
    let mut values = Box::new([0f64; 256]);
    let keys = (0..1usize << 16).filter(|&key| used[key / 64] >> (key % 64) & 1 == 1);
    for (c, key) in keys.enumerate() {
        code[key] = c as u8;
        values[c] = jaccard(key as u16);
    }
    let mut codes = vec![0u8; total];
    split_by(&mut codes, sizes.into_iter())
        .into_par_iter()
        .zip(chunks.into_par_iter())
        .for_each(|(out, c)| {
            if let Chunk::Keys(keys) = c {
                for (o, key) in out.iter_mut().zip(keys) {
                    *o = code[key as usize];
                }
            }
        });
    Weights::Coded { codes, values }
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
    // Binary weights are all 1: the Jaccard key of a set with itself.
    let one = (1u16 << 8) | 1;
    let keyed = weighting != Weighting::Gaussian;
    const CHUNK: usize = 4096;
    let parts: Vec<(Vec<usize>, Vec<u32>, Chunk)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (mut deg, mut targets) = (Vec::new(), Vec::new());
            let (mut keys, mut weights) = (Vec::new(), Vec::new());
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
                    Weighting::Snn => snn_keys(&sets, w, u, &both, &mut keys),
                    Weighting::Binary => keys.extend(both.iter().map(|_| one)),
                    Weighting::Gaussian => {
                        weights.extend(both.iter().map(|&(v, d2)| gaussian(u, v as usize, d2)))
                    }
                }
            }
            let chunk = if keyed {
                Chunk::Keys(keys)
            } else {
                Chunk::Plain(weights)
            };
            (deg, targets, chunk)
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
    // Each chunk's rows copied into place, on every thread (0.85 GB of
    // targets at 10M accounts, into freshly mapped pages).
    let mut targets = vec![0u32; total];
    let (chunk_targets, chunks): (Vec<Vec<u32>>, Vec<Chunk>) =
        parts.into_iter().map(|(_, t, c)| (t, c)).unzip();
    split_by(&mut targets, chunk_targets.iter().map(Vec::len))
        .into_par_iter()
        .zip(chunk_targets.into_par_iter())
        .for_each(|(t, pt)| t.copy_from_slice(&pt));
    Csr {
        offsets,
        targets,
        weights: weights_of(chunks),
        loops: vec![0.0; n],
    }
}
