//! The account-similarity graph: k nearest neighbours, symmetrised and weighted.
//!
//! **Neighbours.** Below `exact_below` accounts the k nearest neighbours are
//! found exactly (parallel brute force, O(n²·d)). Above it strata uses
//! **NN-descent** (Dong, Charikar & Li 2011, "Efficient k-nearest neighbor graph
//! construction for generic similarity measures"), started from a forest of
//! random-projection trees (Dasgupta & Freund 2008) as pynndescent does: the
//! neighbour of a neighbour is probably a neighbour, so each round every account
//! looks at its neighbours' neighbours (forward and reverse lists, only through
//! links that are new since the last round) and keeps the k closest. Rounds stop
//! when fewer than `delta · n · k` lists changed. Each round is about
//! O(n · k² · d) and a handful of rounds suffice, so the whole is near-linear in n.
//!
//! Each round computes every account's new list from the previous round's lists
//! only (no shared writes), and ties are broken by account index, so the graph
//! is the same whatever the number of threads. Distances are squared Euclidean,
//! computed in f32 (the features are already scaled; f32 halves the memory traffic).
//!
//! **Weights.** The directed kNN lists are symmetrised (an edge when either is
//! among the other's neighbours) and weighted by **shared-nearest-neighbour
//! Jaccard** (as PhenoGraph and Seurat do): `|S(u) ∩ S(v)| / |S(u) ∪ S(v)|` with
//! `S(x)` = x and its k neighbours. Two accounts that merely sit near each other
//! on the edge of two groups share few neighbours and get a weak edge, which is
//! what community detection needs; the weight needs no bandwidth. `gaussian`
//! (exp(−d²/σ_u σ_v), σ = distance to the k-th neighbour, Zelnik-Manor & Perona
//! 2004) and `binary` (as the igraph peer) are available too.

use ndarray::ArrayView2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::Serialize;

use super::graph::Csr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    Snn,
    Gaussian,
    Binary,
}

/// Checked graph parameters.
#[derive(Debug, Clone, Serialize)]
pub struct GraphConfig {
    pub k: usize,
    pub weighting: Weighting,
    pub exact_below: usize,
    pub trees: usize,
    pub max_rounds: usize,
    pub delta: f64,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            k: 15,
            weighting: Weighting::Snn,
            exact_below: 20_000,
            trees: 4,
            max_rounds: 12,
            delta: 0.001,
        }
    }
}

/// k nearest neighbours of every point, sorted by (distance, index), self excluded.
#[derive(Debug, Clone)]
pub struct Knn {
    pub k: usize,
    pub idx: Vec<u32>,
    /// Squared Euclidean distances.
    pub dist: Vec<f32>,
    /// How the lists were found, and NN-descent's rounds.
    pub method: &'static str,
    pub rounds: usize,
    /// A locality-preserving order of the points (position → point), when one
    /// was computed: later stages number graph nodes in it for cache-friendly access.
    pub order: Option<Vec<u32>>,
}

impl Knn {
    pub fn n(&self) -> usize {
        self.idx.len() / self.k.max(1)
    }
    pub fn row(&self, i: usize) -> &[u32] {
        &self.idx[i * self.k..(i + 1) * self.k]
    }
}

/// Row-major f32 copy of the feature matrix.
pub fn to_f32(x: ArrayView2<f64>) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

#[inline]
fn dist(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Insert `(d, j)` into a sorted list of fixed length if it is closer than the
/// last entry and not already present. Returns whether it was inserted.
#[inline]
fn insert(list: &mut [(f32, u32)], flags: &mut [bool], d: f32, j: u32) -> bool {
    let k = list.len();
    let last = list[k - 1];
    if (d, j) >= last {
        return false;
    }
    if list.iter().any(|e| e.1 == j) {
        return false;
    }
    let mut pos = k - 1;
    while pos > 0 && (d, j) < list[pos - 1] {
        list[pos] = list[pos - 1];
        flags[pos] = flags[pos - 1];
        pos -= 1;
    }
    list[pos] = (d, j);
    flags[pos] = true;
    true
}

const EMPTY: (f32, u32) = (f32::INFINITY, u32::MAX);

thread_local! {
    /// Per-thread "already looked at" marks for NN-descent (one slot per point).
    static STAMP: std::cell::RefCell<(Vec<u32>, u32)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// Exact kNN by brute force (parallel over points).
pub fn exact(x: &[f32], n: usize, d: usize, k: usize) -> Knn {
    let k = k.min(n.saturating_sub(1)).max(1);
    let rows: Vec<Vec<(f32, u32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let xi = &x[i * d..(i + 1) * d];
            let mut list = vec![EMPTY; k];
            let mut flags = vec![false; k];
            for j in 0..n {
                if j != i {
                    insert(
                        &mut list,
                        &mut flags,
                        dist(xi, &x[j * d..(j + 1) * d]),
                        j as u32,
                    );
                }
            }
            list
        })
        .collect();
    pack(rows, k, "exact", 0)
}

fn pack(rows: Vec<Vec<(f32, u32)>>, k: usize, method: &'static str, rounds: usize) -> Knn {
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
    }
}

/// Leaves of one random-projection tree over `points`.
fn rp_leaves(
    x: &[f32],
    d: usize,
    points: Vec<u32>,
    leaf: usize,
    rng: &mut Xoshiro256PlusPlus,
    out: &mut Vec<Vec<u32>>,
) {
    let mut stack = vec![points];
    while let Some(p) = stack.pop() {
        if p.len() <= leaf {
            out.push(p);
            continue;
        }
        let a = p[rng.gen_range(0..p.len())] as usize;
        let mut b = p[rng.gen_range(0..p.len())] as usize;
        if a == b {
            b = p[(p.iter().position(|&q| q as usize == a).unwrap_or(0) + 1) % p.len()] as usize;
        }
        let (xa, xb) = (&x[a * d..(a + 1) * d], &x[b * d..(b + 1) * d]);
        let normal: Vec<f32> = xa.iter().zip(xb).map(|(u, v)| u - v).collect();
        let offset: f32 = normal
            .iter()
            .zip(xa.iter().zip(xb))
            .map(|(nm, (u, v))| nm * (u + v) / 2.0)
            .sum();
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for &q in &p {
            let xq = &x[q as usize * d..(q as usize + 1) * d];
            let side: f32 = normal.iter().zip(xq).map(|(nm, v)| nm * v).sum::<f32>() - offset;
            if side < 0.0 || (side == 0.0 && rng.gen::<bool>()) {
                left.push(q);
            } else {
                right.push(q);
            }
        }
        if left.is_empty() || right.is_empty() {
            // Degenerate split (duplicates): halve at random.
            let mut all = p;
            let mid = all.len() / 2;
            for i in 0..mid {
                let j = rng.gen_range(i..all.len());
                all.swap(i, j);
            }
            right = all.split_off(mid);
            left = all;
        }
        stack.push(right);
        stack.push(left);
    }
}

/// Approximate kNN by NN-descent from a random-projection forest.
///
/// The points are first renumbered in the leaf order of one random-projection
/// tree, so that neighbours (and neighbours of neighbours) sit close together in
/// memory: NN-descent is bound by random memory access, and this locality makes
/// it several times faster. Results are mapped back and ties re-sorted by the
/// original index.
pub fn nn_descent(x: &[f32], n: usize, d: usize, k: usize, cfg: &GraphConfig, seed: u64) -> Knn {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x10ca1);
    let mut leaves = Vec::new();
    rp_leaves(x, d, (0..n as u32).collect(), 64, &mut rng, &mut leaves);
    let perm: Vec<u32> = leaves.concat();
    let mut inv = vec![0u32; n];
    for (new, &old) in perm.iter().enumerate() {
        inv[old as usize] = new as u32;
    }
    let xp: Vec<f32> = perm
        .iter()
        .flat_map(|&o| x[o as usize * d..(o as usize + 1) * d].iter().copied())
        .collect();
    let inner = nn_descent_local(&xp, n, d, k, cfg, seed);
    drop(xp);
    let kk = inner.k;
    let rows: Vec<Vec<(f32, u32)>> = (0..n)
        .into_par_iter()
        .map(|old| {
            let new = inv[old] as usize;
            let mut r: Vec<(f32, u32)> = (0..kk)
                .map(|s| {
                    let j = inner.idx[new * kk + s];
                    (
                        inner.dist[new * kk + s],
                        if j == u32::MAX {
                            u32::MAX
                        } else {
                            perm[j as usize]
                        },
                    )
                })
                .collect();
            r.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            r
        })
        .collect();
    let mut out = pack(rows, kk, "nn-descent", inner.rounds);
    out.order = Some(perm);
    out
}

fn nn_descent_local(x: &[f32], n: usize, d: usize, k: usize, cfg: &GraphConfig, seed: u64) -> Knn {
    let k = k.min(n.saturating_sub(1)).max(1);
    let mut lists: Vec<(f32, u32)> = vec![EMPTY; n * k];
    let mut flags: Vec<bool> = vec![false; n * k];

    // Initialise from the leaves of a few RP trees (each tree's leaves partition
    // the points, so updates within a tree touch disjoint lists).
    let leaf = (2 * k).max(32);
    for t in 0..cfg.trees.max(1) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_add(t as u64 * 7919));
        let mut leaves = Vec::new();
        rp_leaves(x, d, (0..n as u32).collect(), leaf, &mut rng, &mut leaves);
        let updates: Vec<Vec<(u32, Vec<(f32, u32)>)>> = leaves
            .par_iter()
            .map(|leaf| {
                leaf.iter()
                    .map(|&p| {
                        let xp = &x[p as usize * d..(p as usize + 1) * d];
                        let c: Vec<(f32, u32)> = leaf
                            .iter()
                            .filter(|&&q| q != p)
                            .map(|&q| (dist(xp, &x[q as usize * d..(q as usize + 1) * d]), q))
                            .collect();
                        (p, c)
                    })
                    .collect()
            })
            .collect();
        // Apply per point (each point is in exactly one leaf per tree).
        let mut by_point: Vec<Option<Vec<(f32, u32)>>> = vec![None; n];
        for leaf_updates in updates {
            for (p, c) in leaf_updates {
                by_point[p as usize] = Some(c);
            }
        }
        lists
            .par_chunks_mut(k)
            .zip(flags.par_chunks_mut(k))
            .zip(by_point.into_par_iter())
            .for_each(|((list, fl), cands)| {
                for (dd, q) in cands.unwrap_or_default() {
                    insert(list, fl, dd, q);
                }
            });
    }
    // Points still short of k neighbours (tiny leaves) get seeded random ones.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xabcdef);
    for p in 0..n {
        let mut tries = 0;
        while lists[p * k + k - 1].1 == u32::MAX && tries < 10 * k {
            let q = rng.gen_range(0..n);
            if q != p {
                let dd = dist(&x[p * d..(p + 1) * d], &x[q * d..(q + 1) * d]);
                insert(
                    &mut lists[p * k..(p + 1) * k],
                    &mut flags[p * k..(p + 1) * k],
                    dd,
                    q as u32,
                );
            }
            tries += 1;
        }
    }

    let mut rounds = 0;
    for _ in 0..cfg.max_rounds {
        rounds += 1;
        // Reverse lists: for each v, up to k points u that list v (closest first).
        let mut rev_count = vec![0usize; n + 1];
        for e in &lists {
            if e.1 != u32::MAX {
                rev_count[e.1 as usize + 1] += 1;
            }
        }
        for i in 0..n {
            rev_count[i + 1] += rev_count[i];
        }
        let mut rev: Vec<(f32, u32, bool)> = vec![(0.0, 0, false); rev_count[n]];
        let mut fill = rev_count.clone();
        for u in 0..n {
            for s in 0..k {
                let (dd, v) = lists[u * k + s];
                if v != u32::MAX {
                    rev[fill[v as usize]] = (dd, u as u32, flags[u * k + s]);
                    fill[v as usize] += 1;
                }
            }
        }
        let rev_lists: Vec<Vec<(u32, bool)>> = (0..n)
            .into_par_iter()
            .map(|v| {
                let mut r = rev[rev_count[v]..rev_count[v + 1]].to_vec();
                r.sort_by(|a, b| {
                    (a.0, a.1)
                        .partial_cmp(&(b.0, b.1))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                r.truncate(2 * k);
                r.into_iter().map(|(_, u, f)| (u, f)).collect()
            })
            .collect();
        drop(rev);
        // General neighbourhood of v: forward and reverse, with "new" flags.
        let general = |v: usize| {
            let fwd = lists[v * k..(v + 1) * k]
                .iter()
                .zip(&flags[v * k..(v + 1) * k])
                .filter(|(e, _)| e.1 != u32::MAX)
                .map(|(e, f)| (e.1, *f));
            fwd.chain(rev_lists[v].iter().copied())
        };
        let next: Vec<(Vec<(f32, u32)>, Vec<bool>, usize)> = (0..n)
            .into_par_iter()
            .map(|u| {
                STAMP.with(|cell| {
                    let (stamp, counter) = &mut *cell.borrow_mut();
                    if stamp.len() < n {
                        stamp.resize(n, 0);
                    }
                    *counter = counter.wrapping_add(1);
                    if *counter == 0 {
                        stamp.iter_mut().for_each(|s| *s = 0);
                        *counter = 1;
                    }
                    let mark = *counter;
                    let mut list = lists[u * k..(u + 1) * k].to_vec();
                    let mut fl = vec![false; k];
                    let xu = &x[u * d..(u + 1) * d];
                    stamp[u] = mark;
                    for e in &list {
                        if e.1 != u32::MAX {
                            stamp[e.1 as usize] = mark;
                        }
                    }
                    let mut changed = 0;
                    for (v, new_uv) in general(u) {
                        for (w, new_vw) in general(v as usize) {
                            if !(new_uv || new_vw) || stamp[w as usize] == mark {
                                continue;
                            }
                            stamp[w as usize] = mark;
                            let dd = dist(xu, &x[w as usize * d..(w as usize + 1) * d]);
                            if insert(&mut list, &mut fl, dd, w) {
                                changed += 1;
                            }
                        }
                    }
                    (list, fl, changed)
                })
            })
            .collect();
        let mut changed = 0usize;
        for (u, (list, fl, c)) in next.into_iter().enumerate() {
            lists[u * k..(u + 1) * k].copy_from_slice(&list);
            flags[u * k..(u + 1) * k].copy_from_slice(&fl);
            changed += c;
        }
        if (changed as f64) < cfg.delta * (n * k) as f64 {
            break;
        }
    }
    let rows: Vec<Vec<(f32, u32)>> = lists.chunks(k).map(|c| c.to_vec()).collect();
    pack(rows, k, "nn-descent", rounds)
}

/// kNN as configured: exact below the threshold, NN-descent above.
pub fn knn(x: &[f32], n: usize, d: usize, cfg: &GraphConfig, seed: u64) -> Knn {
    if n < cfg.exact_below {
        exact(x, n, d, cfg.k)
    } else {
        nn_descent(x, n, d, cfg.k, cfg, seed)
    }
}

/// Share of the exact neighbours that `approx` found (for tests and benchmarks).
pub fn recall(approx: &Knn, exact: &Knn) -> f64 {
    let n = exact.n();
    let hits: usize = (0..n)
        .into_par_iter()
        .map(|i| {
            exact
                .row(i)
                .iter()
                .filter(|j| approx.row(i).contains(j))
                .count()
        })
        .sum();
    hits as f64 / (n * exact.k) as f64
}

/// Symmetrise and weight the kNN lists into a graph.
pub fn graph(knn: &Knn, weighting: Weighting) -> Csr {
    let n = knn.n();
    let k = knn.k;
    // S(x) = x and its neighbours, sorted by index, for Jaccard.
    let sets: Vec<Vec<u32>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut s: Vec<u32> = knn
                .row(i)
                .iter()
                .copied()
                .filter(|&j| j != u32::MAX)
                .collect();
            s.push(i as u32);
            s.sort_unstable();
            s
        })
        .collect();
    let sigma: Vec<f32> = (0..n)
        .map(|i| knn.dist[i * k + k - 1].sqrt().max(1e-12))
        .collect();
    let edges: Vec<(u32, u32, f64)> = (0..n)
        .into_par_iter()
        .flat_map_iter(|u| {
            let sets = &sets;
            let sigma = &sigma;
            knn.row(u).iter().enumerate().filter_map(move |(s, &v)| {
                if v == u32::MAX {
                    return None;
                }
                let vi = v as usize;
                // Emit each undirected edge once: from the smaller index, or from
                // u when v does not list u.
                if vi < u && knn.row(vi).contains(&(u as u32)) {
                    return None;
                }
                let w = match weighting {
                    Weighting::Binary => 1.0,
                    Weighting::Gaussian => {
                        let d2 = knn.dist[u * k + s] as f64;
                        (-d2 / (sigma[u] as f64 * sigma[vi] as f64))
                            .exp()
                            .max(1e-12)
                    }
                    Weighting::Snn => crate::partition::jaccard_sorted(&sets[u], &sets[vi]),
                };
                Some((u.min(vi) as u32, u.max(vi) as u32, w))
            })
        })
        .collect();
    Csr::from_edges(n, &edges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    fn blobs(n: usize, d: usize, centers: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, 1.0).unwrap();
        let c: Vec<Vec<f32>> = (0..centers)
            .map(|_| (0..d).map(|_| rng.gen_range(-8.0..8.0)).collect())
            .collect();
        let mut x = Vec::with_capacity(n * d);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let l = i % centers;
            labels.push(l);
            for j in 0..d {
                x.push(c[l][j] + normal.sample(&mut rng));
            }
        }
        (x, labels)
    }

    #[test]
    fn exact_neighbours_of_a_line() {
        let x: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let knn = exact(&x, 10, 1, 2);
        assert_eq!(knn.row(0), &[1, 2]);
        // Ties broken by index: 5's neighbours at distance 1 are 4 and 6.
        assert_eq!(knn.row(5), &[4, 6]);
    }

    #[test]
    fn nn_descent_recall_is_high() {
        let (x, _) = blobs(6000, 16, 10, 3);
        let cfg = GraphConfig::default();
        let approx = nn_descent(&x, 6000, 16, 15, &cfg, 1);
        let truth = exact(&x, 6000, 16, 15);
        let r = recall(&approx, &truth);
        assert!(r > 0.95, "recall {r}");
    }

    #[test]
    fn nn_descent_is_deterministic_across_thread_counts() {
        let (x, _) = blobs(3000, 8, 5, 4);
        let cfg = GraphConfig::default();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| nn_descent(&x, 3000, 8, 10, &cfg, 9))
        };
        let (a, b) = (run(1), run(2));
        assert_eq!(a.idx, b.idx);
        assert_eq!(a.dist, b.dist);
    }

    #[test]
    fn graph_is_symmetric_with_jaccard_weights() {
        let (x, _) = blobs(500, 4, 3, 5);
        let knn = exact(&x, 500, 4, 10);
        let g = graph(&knn, Weighting::Snn);
        for u in 0..g.n() {
            for (v, w) in g.neighbors(u) {
                assert!(w > 0.0 && w <= 1.0);
                let back = g.neighbors(v).find(|(t, _)| *t == u).map(|(_, w)| w);
                assert_eq!(back, Some(w), "edge {u}-{v} not symmetric");
            }
        }
        // Every kNN pair is an edge.
        for u in 0..500 {
            for &v in knn.row(u) {
                assert!(g.neighbors(u).any(|(t, _)| t == v as usize));
            }
        }
    }
}
