//! The account-similarity graph: k nearest neighbours, symmetrised and weighted.
//!
//! **Neighbours.** Below `exact_below` accounts the k nearest neighbours are
//! found exactly (parallel brute force, O(n²·d)). Above it strata uses
//! **NN-descent** (Dong, Charikar & Li 2011, "Efficient k-nearest neighbor graph
//! construction for generic similarity measures") started from a forest of
//! random-projection trees (Dasgupta & Freund 2008), the way pynndescent does:
//! the neighbour of a neighbour is probably a neighbour. Each round every point
//! samples at most 2k *new* candidates (forward and reverse neighbours added
//! since they were last joined) and 2k *old* ones, and the **local join** measures
//! every new–new and new–old pair among them once, proposing the pair to both
//! ends when it beats their current k-th neighbour. Rounds stop when fewer than
//! `delta · n · k` list entries changed. A round costs O(n · k² · d) and a handful
//! suffice, so the whole is near-linear in n.
//!
//! **Recall check.** NN-descent then measures itself: the exact neighbours of
//! 200 points spread over the data (one blocked pass, O(200 · n · d)) give the
//! share of true neighbours its lists hold ([`Knn::recall`], reported with the
//! graph). Below [`RECALL_TARGET`] — data of high intrinsic dimension, such as
//! isotropic 32-dimensional blobs, where 15-entry lists stall near 0.70 at 1M
//! points — the lists grow to ⌈1.5k⌉ + 1 entries, keep what was found, and
//! NN-descent goes on (Dong et al.'s and pynndescent's advice: search more
//! neighbours than you keep); the k nearest are kept. On 1M × 32 blobs this
//! lifts recall@15 from 0.70 to 0.88 (pynndescent: 0.73); the sample pipeline's
//! features reach 0.99 in the first pass and pay only the check.
//!
//! The points are renumbered in the leaf order of one random-projection tree
//! first, so that neighbours sit close together in memory (NN-descent is bound by
//! random memory access); the graph keeps that numbering for community detection
//! ([`Knn::to_accounts`] maps labels back). Trees are built by partitioning the
//! rows themselves, level by level between two buffers, so each split is a
//! sequential pass rather than a gather from a matrix far larger than the
//! cache, and the forest's leaves are joined from their own contiguous rows.
//!
//! Determinism: proposals are computed in parallel and applied in parallel to
//! disjoint slices of the lists. The k smallest distinct `(distance, index)`
//! pairs of a list and its proposals do not depend on the order the proposals
//! arrive in, candidate samples come from a hash of the pair and the round (no
//! shared random stream), and tree nodes seed their own hyperplanes — so the
//! graph is the same whatever the number of threads. Distances are squared
//! Euclidean in f32 (the features are already scaled; f32 halves the memory
//! traffic), summed in a fixed lane order so the AVX2 and portable paths agree
//! to the bit.
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
use crate::memory::{huge_vec, trace};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    Snn,
    Gaussian,
    Binary,
}

/// The most neighbours per account a pipeline may ask for.
pub const MAX_NEIGHBORS: usize = 100;

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
///
/// Points are numbered as *nodes*: when `order` is set (NN-descent), node `p`
/// is row `order[p]` of the matrix and the lists hold node numbers — the
/// numbering the graph and community detection keep. [`Knn::to_accounts`] maps
/// node labels back to rows; [`Knn::in_account_order`] maps the lists.
#[derive(Debug, Clone)]
pub struct Knn {
    pub k: usize,
    pub idx: Vec<u32>,
    /// Squared Euclidean distances.
    pub dist: Vec<f32>,
    /// How the lists were found, and NN-descent's rounds.
    pub method: &'static str,
    pub rounds: usize,
    /// A locality-preserving order of the points (node → matrix row), when one
    /// was computed: neighbours are then close in memory, which NN-descent and
    /// community detection rely on for speed.
    pub order: Option<Vec<u32>>,
    /// NN-descent's recall: the share of the true k nearest neighbours of
    /// 200 points spread over the data that its lists hold (exact search: None).
    pub recall: Option<f64>,
}

impl Knn {
    pub fn n(&self) -> usize {
        self.idx.len() / self.k.max(1)
    }
    pub fn row(&self, i: usize) -> &[u32] {
        &self.idx[i * self.k..(i + 1) * self.k]
    }
}

/// Each account's nearest neighbours, by row of the feature matrix
/// (`u32::MAX` pads a short list).
#[derive(Debug, Clone, Default)]
pub struct Neighbours {
    pub k: usize,
    pub idx: Vec<u32>,
}

impl Neighbours {
    pub fn row(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.idx[i * self.k..(i + 1) * self.k]
            .iter()
            .filter(|&&j| j != u32::MAX)
            .map(|&j| j as usize)
    }
}

/// Row-major f32 copy of the feature matrix, written on all threads (its
/// first touch is most of its cost: see [`huge_vec`]).
pub fn to_f32(x: ArrayView2<f64>) -> Vec<f32> {
    const ROWS: usize = 4096;
    let (n, d) = x.dim();
    if d == 0 {
        return Vec::new();
    }
    let mut out = huge_vec(n * d, 0f32);
    out.par_chunks_mut(ROWS * d)
        .zip(x.axis_chunks_iter(ndarray::Axis(0), ROWS).into_par_iter())
        .for_each(|(o, rows)| {
            for (o, &v) in o.iter_mut().zip(rows.iter()) {
                *o = v as f32;
            }
        });
    out
}

/// Squared Euclidean distance, summed in eight interleaved lanes (element `i`
/// into lane `i mod 8`) and the lanes added in a fixed order, so that
/// [`dist_avx2`] gives the same bits as this portable version.
#[inline(always)]
fn dist(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let full = a.len().min(b.len()) / 8 * 8;
    for (x, y) in a[..full].chunks_exact(8).zip(b[..full].chunks_exact(8)) {
        for l in 0..8 {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    finish_lanes(acc, &a[full..], &b[full..])
}

/// Adds the tail (fewer than eight elements) into the first lanes and sums the lanes.
#[inline(always)]
fn finish_lanes(mut acc: [f32; 8], ra: &[f32], rb: &[f32]) -> f32 {
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        let t = x - y;
        acc[l] += t * t;
    }
    // The order of a 128-bit horizontal sum: halves, then pairs two apart.
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// [`dist`] in 256-bit registers (the compiler does not vectorise the portable
/// loop's lanes well on its own). Multiply and add stay separate, as in `dist`.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dist_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let full = a.len().min(b.len()) / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i < full {
        // SAFETY: i + 8 <= full <= len of both slices.
        let t = unsafe {
            _mm256_sub_ps(
                _mm256_loadu_ps(a.as_ptr().add(i)),
                _mm256_loadu_ps(b.as_ptr().add(i)),
            )
        };
        acc = _mm256_add_ps(acc, _mm256_mul_ps(t, t));
        i += 8;
    }
    if full == a.len() {
        // No tail: sum the lanes in registers, in `finish_lanes`' order.
        let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let t = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps::<1>(t, t)));
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds eight f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    finish_lanes(lanes, &a[full..], &b[full..])
}

/// Insert `(d, j)` into a sorted list of fixed length if it is closer than the
/// last entry and not already present, with flag `flag`. Returns whether it was inserted.
#[inline]
fn insert(list: &mut [(f32, u32)], flags: &mut [u8], d: f32, j: u32, flag: u8) -> bool {
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
    flags[pos] = flag;
    true
}

const EMPTY: (f32, u32) = (f32::INFINITY, u32::MAX);

/// Exact kNN by brute force (parallel over points).
pub fn exact(x: &[f32], n: usize, d: usize, k: usize) -> Knn {
    let k = k.min(n.saturating_sub(1)).max(1);
    let rows: Vec<Vec<(f32, u32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
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
        recall: None,
    }
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash. Used to derive each tree
/// node's seed from its parent's and each candidate's sampling priority, so no
/// random stream is shared between threads.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Tree nodes larger than this split their two halves on separate threads.
const PAR_SPLIT: usize = 20_000;
/// Past this depth a node is halved at random instead of by a hyperplane, which
/// bounds the recursion however unbalanced the hyperplane splits are.
const MAX_DEPTH: usize = 64;

/// One random-projection tree: its leaves' points, left to right (`ids`),
/// the leaves' sizes, and the points' rows in that order (`rows`, row-major),
/// so that each leaf's rows are contiguous.
struct Tree {
    ids: Vec<u32>,
    sizes: Vec<usize>,
    rows: Vec<f32>,
}

/// A random-projection tree over the rows in `bufs.cur` (leaves of at most
/// `leaf` points), built by partitioning the rows themselves rather than lists
/// of indices into the matrix: each node's rows are contiguous, so splitting a node is
/// one sequential pass over its rows (into a second buffer, the two buffers
/// trading places level by level) instead of a gather from all over the
/// matrix. At millions of points the matrix is far larger than the cache and
/// a gather misses it on nearly every row of every level; this keeps the
/// tree O(n log n) in sequential memory traffic. Memory: `bufs`, the rows
/// twice; the second copy is returned as the tree's, the first as scratch.
///
/// Every node draws its hyperplane from its own seed (derived from its
/// parent's), so the tree is the same however rayon schedules the halves.
/// The leaves are those of `tests::reference_leaves`, which splits lists of
/// indices by the same rule (a test checks them equal).
fn rp_tree(bufs: TreeBufs, d: usize, leaf: usize, seed: u64) -> (Tree, TreeBufs) {
    let TreeBufs {
        mut cur,
        mut cur_ids,
        mut rows,
        mut ids,
    } = bufs;
    let sizes = tree_node(
        Part {
            rows: &mut cur,
            ids: &mut cur_ids,
        },
        Part {
            rows: &mut rows,
            ids: &mut ids,
        },
        false,
        d,
        leaf,
        seed,
        0,
    );
    (Tree { ids, sizes, rows }, TreeBufs::scratch(cur, cur_ids))
}

/// The memory [`rp_tree`] works in: the points' rows (in `cur`, numbered by
/// `cur_ids`) and a second buffer of the same size, which becomes the tree's.
/// Fresh memory is dear at millions of points (the kernel zeroes every page,
/// and on these virtual machines a page first touched costs far more: 2 GB
/// took 7.9 s to touch where rewriting it took 0.16 s), so the buffers are
/// reused: the first tree partitions the caller's own copy of the matrix, and
/// the forest's trees share one pair.
struct TreeBufs {
    cur: Vec<f32>,
    cur_ids: Vec<u32>,
    rows: Vec<f32>,
    ids: Vec<u32>,
}

impl TreeBufs {
    /// Buffers for a tree over the rows `x` (n rows of d), which it takes.
    fn over(x: Vec<f32>, d: usize) -> Self {
        let n = x.len() / d.max(1);
        TreeBufs {
            cur: x,
            cur_ids: (0..n as u32).collect(),
            rows: huge_vec(n * d, 0f32),
            ids: vec![0; n],
        }
    }
    /// The rows of `x` copied in, for the next tree.
    fn load(&mut self, x: &[f32], d: usize) {
        const CHUNK: usize = 4096;
        self.cur
            .par_chunks_mut(d * CHUNK)
            .zip(x.par_chunks(d * CHUNK))
            .for_each(|(o, i)| o.copy_from_slice(i));
        self.cur_ids
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = i as u32);
    }
    /// A tree's buffers given back with its scratch: room for the next tree.
    fn reuse(tree: Tree, scratch: TreeBufs) -> Self {
        TreeBufs {
            rows: tree.rows,
            ids: tree.ids,
            ..scratch
        }
    }
    /// Only the scratch half: the output half is filled in by [`Self::reuse`].
    fn scratch(cur: Vec<f32>, cur_ids: Vec<u32>) -> Self {
        TreeBufs {
            cur,
            cur_ids,
            rows: Vec::new(),
            ids: Vec::new(),
        }
    }
}

/// A node's points and their rows (`ids.len()` rows of `d`).
struct Part<'a> {
    rows: &'a mut [f32],
    ids: &'a mut [u32],
}

impl<'a> Part<'a> {
    fn split_at(self, at: usize, d: usize) -> (Part<'a>, Part<'a>) {
        let (rl, rr) = self.rows.split_at_mut(at * d);
        let (il, ir) = self.ids.split_at_mut(at);
        (Part { rows: rl, ids: il }, Part { rows: rr, ids: ir })
    }
}

/// Splits the node held in `cur` into `other` (left half first) and recurses
/// with the two trading places; a leaf ends up in the output buffer (`cur` is
/// the output when `cur_is_out`). Returns the leaves' sizes, left to right.
#[allow(clippy::too_many_arguments)]
fn tree_node(
    cur: Part,
    other: Part,
    cur_is_out: bool,
    d: usize,
    leaf: usize,
    seed: u64,
    depth: usize,
) -> Vec<usize> {
    let len = cur.ids.len();
    if len <= leaf.max(1) {
        if !cur_is_out {
            other.rows.copy_from_slice(cur.rows);
            other.ids.copy_from_slice(cur.ids);
        }
        return vec![len];
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let nl = partition(
        &cur,
        &mut Part {
            rows: other.rows,
            ids: other.ids,
        },
        d,
        depth >= MAX_DEPTH,
        &mut rng,
    );
    let (ls, rs) = (mix(seed ^ 0x5151), mix(seed ^ 0xa2a2));
    // The children's rows are now in `other`; `cur` is their scratch.
    let (ol, or) = other.split_at(nl, d);
    let (cl, cr) = cur.split_at(nl, d);
    let go = |o, c, s| tree_node(o, c, !cur_is_out, d, leaf, s, depth + 1);
    let (mut a, b) = if len > PAR_SPLIT {
        rayon::join(|| go(ol, cl, ls), || go(or, cr, rs))
    } else {
        (go(ol, cl, ls), go(or, cr, rs))
    };
    a.extend(b);
    a
}

/// Writes the node's points into `dst`, those on the left of the hyperplane
/// halfway between two random members first, each side in its original order
/// (or halved at random when `halve`, or when the hyperplane leaves one side
/// empty). Returns how many went left.
fn partition(
    src: &Part,
    dst: &mut Part,
    d: usize,
    halve: bool,
    rng: &mut Xoshiro256PlusPlus,
) -> usize {
    let len = src.ids.len();
    let mut left = Vec::new();
    let mut nl = 0;
    if !halve {
        let a = rng.gen_range(0..len);
        let mut b = rng.gen_range(0..len - 1);
        if b >= a {
            b += 1;
        }
        let (xa, xb) = (&src.rows[a * d..(a + 1) * d], &src.rows[b * d..(b + 1) * d]);
        left = sides(src.rows, d, xa, xb)
            .into_iter()
            .map(|side| side < 0.0 || (side == 0.0 && rng.gen::<bool>()))
            .collect();
        nl = left.iter().filter(|&&l| l).count();
    }
    if nl == 0 || nl == len {
        // Degenerate split (duplicates) or too deep: halve at random.
        let mut all: Vec<u32> = (0..len as u32).collect();
        let mid = len / 2;
        for i in 0..mid {
            let j = rng.gen_range(i..len);
            all.swap(i, j);
        }
        for (slot, &i) in all.iter().enumerate() {
            let i = i as usize;
            dst.rows[slot * d..(slot + 1) * d].copy_from_slice(&src.rows[i * d..(i + 1) * d]);
            dst.ids[slot] = src.ids[i];
        }
        return mid;
    }
    // Stable partition, in chunks on all threads for large nodes: each
    // chunk's left and right points go to their own consecutive places.
    const CHUNK: usize = 65_536;
    let chunks = len.div_ceil(CHUNK);
    let lefts: Vec<usize> = left
        .par_chunks(CHUNK)
        .map(|c| c.iter().filter(|&&l| l).count())
        .collect();
    let lefts = &lefts;
    let sizes = move |side_left: bool| {
        (0..chunks).map(move |c| {
            let m = CHUNK.min(len - c * CHUNK);
            if side_left {
                lefts[c]
            } else {
                m - lefts[c]
            }
        })
    };
    let (dl, dr) = dst.rows.split_at_mut(nl * d);
    let (il, ir) = dst.ids.split_at_mut(nl);
    let (rows_l, rows_r) = (
        pieces(dl, sizes(true).map(|m| m * d)),
        pieces(dr, sizes(false).map(|m| m * d)),
    );
    let (ids_l, ids_r) = (pieces(il, sizes(true)), pieces(ir, sizes(false)));
    let copy = |((((rl, rr), (il, ir)), go), (src_rows, src_ids)): (
        (
            ((&mut [f32], &mut [f32]), (&mut [u32], &mut [u32])),
            &[bool],
        ),
        (&[f32], &[u32]),
    )| {
        let (mut l, mut r) = (0, 0);
        for (i, &goes_left) in go.iter().enumerate() {
            let row = &src_rows[i * d..(i + 1) * d];
            if goes_left {
                rl[l * d..(l + 1) * d].copy_from_slice(row);
                il[l] = src_ids[i];
                l += 1;
            } else {
                rr[r * d..(r + 1) * d].copy_from_slice(row);
                ir[r] = src_ids[i];
                r += 1;
            }
        }
    };
    rows_l
        .into_par_iter()
        .zip(rows_r)
        .zip(ids_l.into_par_iter().zip(ids_r))
        .zip(left.par_chunks(CHUNK))
        .zip(
            src.rows
                .par_chunks(CHUNK * d)
                .zip(src.ids.par_chunks(CHUNK)),
        )
        .for_each(copy);
    nl
}

/// `s` cut into consecutive pieces of the given lengths (which sum to its length).
fn pieces<T>(mut s: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut out = Vec::new();
    for m in lens {
        let (head, rest) = std::mem::take(&mut s).split_at_mut(m);
        out.push(head);
        s = rest;
    }
    debug_assert!(s.is_empty(), "the pieces cover the slice");
    out
}

/// `|q − b|² − |q − a|²` for every row q of `rows` (in parallel for large
/// nodes: each value depends on its row alone).
fn sides(rows: &[f32], d: usize, xa: &[f32], xb: &[f32]) -> Vec<f32> {
    #[inline(always)]
    fn imp(
        rows: &[f32],
        d: usize,
        xa: &[f32],
        xb: &[f32],
        dist: impl Fn(&[f32], &[f32]) -> f32,
    ) -> Vec<f32> {
        rows.chunks_exact(d)
            .map(|xq| dist(xq, xb) - dist(xq, xa))
            .collect()
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(rows: &[f32], d: usize, xa: &[f32], xb: &[f32]) -> Vec<f32> {
        // SAFETY: only called where AVX2 is available.
        imp(rows, d, xa, xb, |a, b| unsafe { dist_avx2(a, b) })
    }
    let one = |rows: &[f32]| {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(rows, d, xa, xb) };
        }
        imp(rows, d, xa, xb, dist)
    };
    const CHUNK: usize = 16_384;
    if rows.len() / d > 4 * CHUNK {
        rows.par_chunks(d * CHUNK).flat_map_iter(one).collect()
    } else {
        one(rows)
    }
}

/// Approximate kNN by NN-descent from a random-projection forest.
///
/// The points are first renumbered in the leaf order of one random-projection
/// tree, so that neighbours (and neighbours of neighbours) sit close together in
/// memory: NN-descent is bound by random memory access, and this locality makes
/// it several times faster. The lists stay in that numbering (see [`Knn`]).
/// That tree (leaves of at most 64) is also the first of the forest whose leaves
/// start the lists; `cfg.trees - 1` more (leaves of at most max(2k, 32)) follow.
///
/// Point indices are u32 with one bit kept for a flag: n must stay below 2³¹
/// (an f32 matrix that size is hundreds of gigabytes).
pub fn nn_descent(x: Vec<f32>, n: usize, d: usize, k: usize, cfg: &GraphConfig, seed: u64) -> Knn {
    assert!(
        n < 1 << 31,
        "NN-descent indexes points with 31 bits; {n} points is too many"
    );
    let t = std::time::Instant::now();
    let (tree, scratch) = rp_tree(TreeBufs::over(x, d), d, 64, mix(seed ^ 0x10ca1));
    let Tree {
        ids: perm,
        sizes,
        rows: xp,
    } = tree;
    trace("kNN: locality order and the points in it", t);
    let mut knn = nn_descent_local(&xp, n, d, k, &sizes, cfg, seed, scratch);
    knn.order = Some(perm);
    knn
}

/// A proposed neighbour: `(list, squared distance, candidate)`.
type Update = (u32, f32, u32);

/// Updates from one producer, bucketed by the slice of lists they touch, so
/// that the buckets can be applied in parallel to disjoint slices.
struct Buckets {
    per: usize,
    b: Vec<Vec<Update>>,
}

impl Buckets {
    fn new(parts: usize, per: usize) -> Self {
        Buckets {
            per,
            b: (0..parts).map(|_| Vec::new()).collect(),
        }
    }
    #[inline]
    fn push(&mut self, target: u32, d: f32, src: u32) {
        self.b[target as usize / self.per].push((target, d, src));
    }
}

/// The k-nearest-neighbour lists being improved, with per-entry flags:
/// 0 = old (already joined), 1 = new, 2 = inserted this round.
struct Lists {
    k: usize,
    lists: Vec<(f32, u32)>,
    flags: Vec<u8>,
    /// Each list's k-th distance, kept beside the lists: the local join reads
    /// it for random points, and one f32 per point stays in cache far better
    /// than the last entry of each list.
    thr: Vec<f32>,
    parts: usize,
    per: usize,
}

/// Points whose local joins are computed before their updates are applied:
/// bounds the memory the pending updates take.
const BLOCK: usize = 1 << 15;

impl Lists {
    fn new(n: usize, k: usize) -> Self {
        let parts = n.clamp(1, 256);
        Lists {
            k,
            lists: huge_vec(n * k, EMPTY),
            flags: huge_vec(n * k, 0),
            thr: huge_vec(n, f32::INFINITY),
            parts,
            per: n.div_ceil(parts).max(1),
        }
    }

    /// Every pair within each run of consecutive points of `sizes` (which
    /// cover all points), written straight into the runs' own lists.
    fn fill_runs(&mut self, x: &[f32], d: usize, sizes: &[usize]) {
        let k = self.k;
        let mut runs = Vec::with_capacity(sizes.len());
        let (mut l, mut f, mut t) = (&mut self.lists[..], &mut self.flags[..], &mut self.thr[..]);
        let mut start = 0;
        for &len in sizes {
            let (lh, lr) = std::mem::take(&mut l).split_at_mut(len * k);
            let (fh, fr) = std::mem::take(&mut f).split_at_mut(len * k);
            let (th, trest) = std::mem::take(&mut t).split_at_mut(len);
            runs.push(Run {
                start,
                l: lh,
                f: fh,
                t: th,
            });
            (l, f, t, start) = (lr, fr, trest, start + len);
        }
        debug_assert!(l.is_empty(), "the runs cover every point");
        runs.into_par_iter().for_each(|run| fill_run(x, d, k, run));
    }

    /// The first `k` entries of every list (its k nearest found).
    fn truncated(self, k: usize) -> Lists {
        let kk = self.k;
        let mut out = Lists::new(self.thr.len(), k);
        out.lists
            .par_chunks_mut(k)
            .zip(self.lists.par_chunks(kk))
            .zip(out.thr.par_iter_mut())
            .for_each(|((l, old), t)| {
                l.copy_from_slice(&old[..k]);
                *t = l[k - 1].0;
            });
        out
    }

    /// Squared distance to the current k-th neighbour of `p`.
    #[inline]
    fn threshold(&self, p: u32) -> f32 {
        self.thr[p as usize]
    }

    /// Runs `produce` for every item of `items` in parallel, then applies all
    /// the updates it proposed. The k smallest distinct `(distance, index)`
    /// pairs of a list and its candidates do not depend on the order in which
    /// the candidates arrive, so the result is the same for any thread count.
    fn run<F>(&mut self, items: std::ops::Range<usize>, min_len: usize, produce: F)
    where
        F: Fn(&Self, usize, &mut Buckets) + Sync,
    {
        let (parts, per, k) = (self.parts, self.per, self.k);
        let produced: Vec<Buckets> = {
            let this = &*self;
            items
                .into_par_iter()
                .with_min_len(min_len)
                .fold(
                    || Buckets::new(parts, per),
                    |mut b, i| {
                        produce(this, i, &mut b);
                        b
                    },
                )
                .collect()
        };
        self.lists
            .par_chunks_mut(per * k)
            .zip(self.flags.par_chunks_mut(per * k))
            .zip(self.thr.par_chunks_mut(per))
            .enumerate()
            .for_each(|(p, ((l, f), thr))| {
                let base = p * per;
                for bucket in &produced {
                    for &(t, dd, s) in &bucket.b[p] {
                        let r = t as usize - base;
                        let i = r * k;
                        if insert(&mut l[i..i + k], &mut f[i..i + k], dd, s, 2) {
                            thr[r] = l[i + k - 1].0;
                        }
                    }
                }
            });
    }
}

/// NN-descent on points numbered in the leaf order of a random-projection
/// tree whose leaves have `sizes` (consecutive runs of points); `scratch` is
/// memory of that tree's to build the others in.
#[allow(clippy::too_many_arguments)]
fn nn_descent_local(
    x: &[f32],
    n: usize,
    d: usize,
    k: usize,
    sizes: &[usize],
    cfg: &GraphConfig,
    seed: u64,
    scratch: TreeBufs,
) -> Knn {
    let k = k.min(n.saturating_sub(1)).max(1);
    let row = |p: u32| &x[p as usize * d..(p as usize + 1) * d];
    let t = std::time::Instant::now();
    let mut g = Lists::new(n, k);
    trace("kNN: lists allocated", t);

    // Initialise from the leaves of a few RP trees: every pair in a leaf.
    // The numbering's own tree comes first: its leaves are runs of consecutive
    // points, so each leaf fills its own lists directly, in parallel.
    let t = std::time::Instant::now();
    g.fill_runs(x, d, sizes);
    // The other trees one at a time (each holds two copies of the points),
    // their leaves joined from the tree's own contiguous rows.
    let leaf = (2 * k).max(32);
    let mut bufs = (cfg.trees > 1).then(|| TreeBufs {
        rows: huge_vec(n * d, 0f32),
        ids: vec![0; n],
        ..scratch
    });
    for tree in 1..cfg.trees.max(1) {
        let t = std::time::Instant::now();
        let s = mix(seed.wrapping_add(tree as u64 * 7919));
        let mut b = bufs.take().expect("buffers");
        b.load(x, d);
        let (tr, scratch) = rp_tree(b, d, leaf, s);
        trace(&format!("kNN: tree {tree} built"), t);
        let t = std::time::Instant::now();
        let mut starts = Vec::with_capacity(tr.sizes.len() + 1);
        starts.push(0);
        for len in &tr.sizes {
            starts.push(starts.last().unwrap() + len);
        }
        let mut first = 0;
        while first < tr.sizes.len() {
            let end = (first + BLOCK / leaf).min(tr.sizes.len());
            g.run(first..end, 64, |g, li, out| {
                let (a, b) = (starts[li], starts[li + 1]);
                join_leaf(g, &tr.rows[a * d..b * d], &tr.ids[a..b], d, out)
            });
            first = end;
        }
        trace(&format!("kNN: tree {tree}'s leaves joined"), t);
        bufs = Some(TreeBufs::reuse(tr, scratch));
    }
    drop(bufs);
    // Points still short of k neighbours (tiny leaves) get seeded random ones.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xabcdef);
    for p in 0..n {
        let mut tries = 0;
        while g.lists[p * k + k - 1].1 == u32::MAX && tries < 10 * k {
            let q = rng.gen_range(0..n);
            if q != p {
                let dd = dist(row(p as u32), row(q as u32));
                insert(
                    &mut g.lists[p * k..(p + 1) * k],
                    &mut g.flags[p * k..(p + 1) * k],
                    dd,
                    q as u32,
                    1,
                );
            }
            tries += 1;
        }
        g.thr[p] = g.lists[p * k + k - 1].0;
    }
    g.flags.par_iter_mut().for_each(|f| *f = (*f != 0) as u8);
    trace(
        &format!("kNN: start from the leaves of {} trees", cfg.trees.max(1)),
        t,
    );
    let rounds = descend(&mut g, x, n, d, cfg, seed, 0);
    let t = std::time::Instant::now();
    let probes = probe_points(n);
    let exact = probe_neighbours(x, d, &probes, k);
    let mut recall = probe_recall(&g, &probes, &exact);
    trace(&format!("kNN: recall check ({recall:.3})"), t);
    let mut rounds = rounds;
    // Data of high intrinsic dimension (isotropic 32-dimensional blobs, say)
    // leaves NN-descent short of its target after its rounds. Longer lists
    // help most there (on 1M × 32 blobs, 24 entries found 0.91 of the true 15
    // where 15 found 0.70): grow them, keep what was found, and go on.
    if recall < RECALL_TARGET && n > k + 1 {
        let longer = (k + k.div_ceil(2) + 1).min(n - 1);
        let mut h = Lists::new(n, longer);
        h.lists
            .par_chunks_mut(longer)
            .zip(h.flags.par_chunks_mut(longer))
            .zip(g.lists.par_chunks(k))
            .for_each(|((l, f), old)| {
                l[..k].copy_from_slice(old);
                // Everything is new again: each entry meets the others once more.
                f[..k]
                    .iter_mut()
                    .zip(old)
                    .for_each(|(f, e)| *f = (e.1 != u32::MAX) as u8);
            });
        drop(g);
        rounds += descend(&mut h, x, n, d, cfg, seed, rounds);
        g = h.truncated(k);
        recall = probe_recall(&g, &probes, &exact);
    }
    let t = std::time::Instant::now();
    let (mut idx, mut dist) = (huge_vec(n * k, 0u32), huge_vec(n * k, 0f32));
    idx.par_chunks_mut(1 << 16)
        .zip(dist.par_chunks_mut(1 << 16))
        .zip(g.lists.par_chunks(1 << 16))
        .for_each(|((i, dd), l)| {
            for ((i, dd), &(e, j)) in i.iter_mut().zip(dd).zip(l) {
                (*i, *dd) = (j, e);
            }
        });
    drop(g);
    trace("kNN: lists handed over", t);
    Knn {
        k,
        idx,
        dist,
        method: "nn-descent",
        rounds,
        order: None,
        recall: Some(recall),
    }
}

/// NN-descent grows its lists when the sampled recall of its first pass is
/// below this.
pub const RECALL_TARGET: f64 = 0.9;

/// Points whose exact neighbours check NN-descent: 200 (3,000 neighbours to
/// find at k = 15, so the estimate's binomial standard error is under 0.01),
/// spread evenly over the locality order, so over the data.
fn probe_points(n: usize) -> Vec<u32> {
    let m = n.min(200);
    (0..m).map(|i| ((2 * i + 1) * n / (2 * m)) as u32).collect()
}

/// The exact k nearest neighbours of each probe: one parallel pass over the
/// points in blocks, each block keeping its own lists for all probes, then
/// the blocks' lists merged (the k smallest distinct `(distance, index)` pairs,
/// whatever the order). O(probes · n · d).
fn probe_neighbours(x: &[f32], d: usize, probes: &[u32], k: usize) -> Vec<Vec<(f32, u32)>> {
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
fn probe_recall(g: &Lists, probes: &[u32], exact: &[Vec<(f32, u32)>]) -> f64 {
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

/// NN-descent's rounds on lists `g` whose new entries are flagged, until
/// fewer than `delta · n · k` entries change or `max_rounds` have run; `first`
/// numbers the first round (the candidate samples are hashed with it).
/// Returns the number of rounds run.
fn descend(
    g: &mut Lists,
    x: &[f32],
    n: usize,
    d: usize,
    cfg: &GraphConfig,
    seed: u64,
    first: usize,
) -> usize {
    let k = g.k;
    // Candidates per point and round (pynndescent's `max_candidates`, which is
    // k there): 2k joins about four times the pairs per round but needs fewer
    // rounds, and on 200k × 32 blobs lifted recall from 0.80 to 0.89 for ~10% more time.
    let mc = (2 * k).min(60);
    let mut rounds = 0;
    let (mut new_c, mut old_c) = (huge_vec(n * mc, u32::MAX), huge_vec(n * mc, u32::MAX));
    let mut produced = Vec::new();
    for round in first..first + cfg.max_rounds {
        rounds += 1;
        let t = std::time::Instant::now();
        let active = sample_candidates(
            g,
            n,
            mc,
            mix(seed ^ (round as u64 + 1) << 20),
            &mut new_c,
            &mut old_c,
            &mut produced,
        );
        let is_active = |v: usize| active[v / 64] >> (v % 64) & 1 != 0;
        // Sampled new entries have now been joined: mark them old.
        let (lists, k_) = (&g.lists, k);
        g.flags.par_chunks_mut(k).enumerate().for_each(|(u, f)| {
            for s in 0..k_ {
                if f[s] == 0 {
                    continue;
                }
                let v = lists[u * k_ + s].1;
                if v != u32::MAX
                    && (new_c[u * mc..(u + 1) * mc].contains(&v)
                        || new_c[v as usize * mc..(v as usize + 1) * mc].contains(&(u as u32)))
                {
                    f[s] = 0;
                }
            }
        });
        // Local join: every new candidate of v against v's other new and its old
        // candidates; each distance serves both ends. Inactive points have no
        // candidates (and their rows of `new_c` and `old_c` were not rewritten).
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK).min(n);
            g.run(start..end, 1024, |g, v, out| {
                if !is_active(v) {
                    return;
                }
                if v + 1 < n && is_active(v + 1) {
                    prefetch_rows(x, d, &new_c[(v + 1) * mc..(v + 2) * mc]);
                    prefetch_rows(x, d, &old_c[(v + 1) * mc..(v + 2) * mc]);
                }
                let nc = valid(&new_c[v * mc..(v + 1) * mc]);
                let oc = valid(&old_c[v * mc..(v + 1) * mc]);
                join(g, x, d, nc, oc, out);
            });
            start = end;
        }
        let changed: usize = g
            .flags
            .par_iter_mut()
            .map(|f| {
                let c = (*f == 2) as usize;
                if c == 1 {
                    *f = 1;
                }
                c
            })
            .sum();
        trace(
            &format!("kNN: round {} ({changed} entries changed)", round + 1),
            t,
        );
        if (changed as f64) < cfg.delta * (n * k) as f64 {
            break;
        }
    }
    rounds
}

/// One run of consecutive points `start..start + t.len()` with its lists `l`,
/// flags `f` and thresholds `t`.
struct Run<'a> {
    start: usize,
    l: &'a mut [(f32, u32)],
    f: &'a mut [u8],
    t: &'a mut [f32],
}

/// Every pair of the run's points, inserted into their lists.
#[inline(always)]
fn fill_run_impl(x: &[f32], d: usize, k: usize, run: Run, dist: impl Fn(&[f32], &[f32]) -> f32) {
    let Run { start, l, f, t } = run;
    let len = t.len();
    let row = |i: usize| &x[(start + i) * d..(start + i + 1) * d];
    for i in 0..len {
        for j in i + 1..len {
            let dd = dist(row(i), row(j));
            let (li, fi) = (i * k..(i + 1) * k, i * k..(i + 1) * k);
            insert(&mut l[li], &mut f[fi], dd, (start + j) as u32, 1);
            let (lj, fj) = (j * k..(j + 1) * k, j * k..(j + 1) * k);
            insert(&mut l[lj], &mut f[fj], dd, (start + i) as u32, 1);
        }
    }
    for (i, ti) in t.iter_mut().enumerate() {
        *ti = l[i * k + k - 1].0;
    }
}

fn fill_run(x: &[f32], d: usize, k: usize, run: Run) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(x: &[f32], d: usize, k: usize, run: Run) {
        // SAFETY: this function only runs where AVX2 is available.
        fill_run_impl(x, d, k, run, |a, b| unsafe { dist_avx2(a, b) })
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { avx2(x, d, k, run) };
    }
    fill_run_impl(x, d, k, run, dist)
}

/// Local join of one candidate set: every pair within `new` and every pair of
/// one new and one old candidate. Each distance is proposed to both ends when it
/// beats their current k-th neighbour.
#[inline(always)]
fn join_impl(
    g: &Lists,
    x: &[f32],
    d: usize,
    new: &[u32],
    old: &[u32],
    out: &mut Buckets,
    dist: impl Fn(&[f32], &[f32]) -> f32,
) {
    let row = |p: u32| &x[p as usize * d..(p as usize + 1) * d];
    for (a, &p) in new.iter().enumerate() {
        let (tp, xp) = (g.threshold(p), row(p));
        for &q in new[a + 1..].iter().chain(old) {
            if q == p {
                continue;
            }
            propose(g, out, (p, tp), q, dist(xp, row(q)));
        }
    }
}

/// Proposes the pair `p`–`q` at squared distance `dd` to each end whose
/// current k-th neighbour it beats (`tp`: p's, already read).
#[inline(always)]
fn propose(g: &Lists, out: &mut Buckets, (p, tp): (u32, f32), q: u32, dd: f32) {
    if dd < tp {
        out.push(p, dd, q);
    }
    if dd < g.threshold(q) {
        out.push(q, dd, p);
    }
}

/// [`join_impl`] compiled for AVX2: the distance lanes fill 256-bit registers.
/// No fused multiply-add is enabled, so the sums are bit-identical to the
/// portable build's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn join_avx2(g: &Lists, x: &[f32], d: usize, new: &[u32], old: &[u32], out: &mut Buckets) {
    // SAFETY: this function only runs where AVX2 is available.
    join_impl(g, x, d, new, old, out, |a, b| unsafe { dist_avx2(a, b) })
}

fn join(g: &Lists, x: &[f32], d: usize, new: &[u32], old: &[u32], out: &mut Buckets) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { join_avx2(g, x, d, new, old, out) };
    }
    join_impl(g, x, d, new, old, out, dist)
}

/// Local join of one leaf whose rows are at hand (contiguous in `rows`, of
/// points `ids`): every pair, proposed to both ends, as [`join`] with only new
/// candidates does it, without reaching into the whole matrix.
fn join_leaf(g: &Lists, rows: &[f32], ids: &[u32], d: usize, out: &mut Buckets) {
    #[inline(always)]
    fn imp(
        g: &Lists,
        rows: &[f32],
        ids: &[u32],
        d: usize,
        out: &mut Buckets,
        dist: impl Fn(&[f32], &[f32]) -> f32,
    ) {
        for (a, &p) in ids.iter().enumerate() {
            let (tp, xp) = (g.threshold(p), &rows[a * d..(a + 1) * d]);
            for (b, &q) in ids.iter().enumerate().skip(a + 1) {
                propose(g, out, (p, tp), q, dist(xp, &rows[b * d..(b + 1) * d]));
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(g: &Lists, rows: &[f32], ids: &[u32], d: usize, out: &mut Buckets) {
        // SAFETY: only called where AVX2 is available.
        imp(g, rows, ids, d, out, |a, b| unsafe { dist_avx2(a, b) })
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { avx2(g, rows, ids, d, out) };
    }
    imp(g, rows, ids, d, out, dist)
}

/// Asks the cache for the rows of `ids` (padding entries are skipped): the
/// next point's candidates are fetched while this point's join runs.
#[inline(always)]
fn prefetch_rows(x: &[f32], d: usize, ids: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    for &p in ids {
        if p == u32::MAX {
            break;
        }
        let row = &x[p as usize * d..(p as usize + 1) * d];
        // 16 f32 per cache line; the last element covers a row's final line.
        for i in (0..d).step_by(16).chain([d - 1]) {
            // SAFETY: prefetching is a hint and the pointer is in bounds.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().add(i) as *const i8);
            }
        }
    }
}

/// The leading entries of a candidate row (rows are padded with `u32::MAX`).
#[inline]
fn valid(row: &[u32]) -> &[u32] {
    let len = row.iter().position(|&j| j == u32::MAX).unwrap_or(row.len());
    &row[..len]
}

/// Each point's candidates for this round's local join (Dong et al.'s sampling,
/// as pynndescent does it): its forward and reverse neighbours, split into
/// those that are new since they were last joined and those that are old, at
/// most `mc` of each, chosen by a hash of the pair and the round (so the sample
/// is uniform yet independent of thread scheduling). Rows are padded with `u32::MAX`.
/// `produced` holds the reverse entries' buckets between rounds. Returns the
/// points that have a new candidate (one bit each, `v % 64` of word `v / 64`):
/// only their rows are written, the others keep last round's.
fn sample_candidates(
    g: &Lists,
    n: usize,
    mc: usize,
    round_seed: u64,
    new_c: &mut [u32],
    old_c: &mut [u32],
    produced: &mut Vec<Vec<Vec<(u32, u32)>>>,
) -> Vec<u64> {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let k = g.k;
    let (parts, per) = (g.parts, g.per);
    // Points with a new candidate either way: only they join this round, so
    // only they need their old candidates (most points, in the late rounds).
    // One bit a point (10M points: 1.25 MB, which stays in cache where a byte
    // a point would not): every list entry of every point is looked up here.
    let active: Vec<AtomicU64> = (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
    let is_active = |i: usize| active[i / 64].load(Relaxed) >> (i % 64) & 1 != 0;
    let set = |i: usize| {
        if !is_active(i) {
            active[i / 64].fetch_or(1 << (i % 64), Relaxed);
        }
    };
    (0..n).into_par_iter().with_min_len(4096).for_each(|u| {
        for s in u * k..(u + 1) * k {
            let v = g.lists[s].1;
            if g.flags[s] != 0 && v != u32::MAX {
                set(u);
                set(v as usize);
            }
        }
    });
    // Reverse entries `(v, u | new << 31)` for "u lists v" where v is active,
    // bucketed by the slice of points v falls in, so that each slice is then
    // sampled by one thread from memory it owns.
    // Fixed ranges of u, one bucket set each, kept from round to round
    // (`produced`): their memory is reused instead of allocated afresh.
    const RANGE: usize = 1 << 16;
    produced.resize_with(n.div_ceil(RANGE), || vec![Vec::new(); parts]);
    produced.par_iter_mut().enumerate().for_each(|(r, b)| {
        b.iter_mut().for_each(Vec::clear);
        for u in r * RANGE..((r + 1) * RANGE).min(n) {
            for s in u * k..(u + 1) * k {
                let v = g.lists[s].1;
                if v != u32::MAX && is_active(v as usize) {
                    b[v as usize / per].push((v, u as u32 | ((g.flags[s] != 0) as u32) << 31));
                }
            }
        }
    });
    let produced = &*produced;
    let prio = |v: usize, j: u32| {
        let (a, b) = (v.min(j as usize) as u64, v.max(j as usize) as u64);
        mix(round_seed ^ (a << 32 | b))
    };
    new_c
        .par_chunks_mut(per * mc)
        .zip(old_c.par_chunks_mut(per * mc))
        .enumerate()
        .for_each(|(p, (nr, or))| {
            let base = p * per;
            let len = nr.len() / mc;
            // This slice's reverse lists in CSR form. The producers cover
            // ascending ranges of u, so each row lists u in ascending order.
            let mut off = vec![0usize; len + 1];
            for b in produced {
                for &(v, _) in &b[p] {
                    off[v as usize - base + 1] += 1;
                }
            }
            for i in 0..len {
                off[i + 1] += off[i];
            }
            let mut fill = off.clone();
            let mut rev = vec![0u32; off[len]];
            for b in produced {
                for &(v, u) in &b[p] {
                    rev[fill[v as usize - base]] = u;
                    fill[v as usize - base] += 1;
                }
            }
            // Forward entries are distinct and so are reverse ones: a candidate
            // is listed twice only when v and j list each other with the same flag.
            let (mut fwd, mut nb, mut ob) = (Vec::new(), Vec::new(), Vec::new());
            let mut ranked: Vec<(u64, u32)> = Vec::new();
            for r in 0..len {
                let v = base + r;
                if !is_active(v) {
                    // No new candidates: nothing to join, old ones are not needed.
                    // Its rows are left as they were: the join skips it (in the
                    // late rounds most points, so most of both arrays).
                    continue;
                }
                let (nr, or) = (&mut nr[r * mc..(r + 1) * mc], &mut or[r * mc..(r + 1) * mc]);
                nr.fill(u32::MAX);
                or.fill(u32::MAX);
                fwd.clear();
                fwd.extend(
                    (v * k..(v + 1) * k)
                        .filter(|&s| g.lists[s].1 != u32::MAX)
                        .map(|s| g.lists[s].1 | ((g.flags[s] != 0) as u32) << 31),
                );
                nb.clear();
                ob.clear();
                for &e in fwd.iter() {
                    if e >> 31 != 0 { &mut nb } else { &mut ob }.push(e & !(1 << 31));
                }
                for &e in &rev[off[r]..off[r + 1]] {
                    // Branch-free membership test: these rows are short.
                    if !fwd.iter().fold(false, |hit, &f| hit | (f == e)) {
                        if e >> 31 != 0 { &mut nb } else { &mut ob }.push(e & !(1 << 31));
                    }
                }
                debug_assert!(!nb.is_empty(), "an active point has a new candidate");
                for (cands, out) in [(&nb, nr), (&ob, or)] {
                    if cands.len() <= mc {
                        out[..cands.len()].copy_from_slice(cands);
                    } else {
                        // Too many: keep the mc of lowest priority.
                        ranked.clear();
                        ranked.extend(cands.iter().map(|&j| (prio(v, j), j)));
                        ranked.select_nth_unstable(mc - 1);
                        for (slot, &(_, j)) in out.iter_mut().zip(&ranked[..mc]) {
                            *slot = j;
                        }
                    }
                }
            }
        });
    active.into_iter().map(AtomicU64::into_inner).collect()
}

/// kNN as configured: exact below the threshold, NN-descent above.
pub fn knn(x: Vec<f32>, n: usize, d: usize, cfg: &GraphConfig, seed: u64) -> Knn {
    if n < cfg.exact_below {
        exact(&x, n, d, cfg.k)
    } else {
        nn_descent(x, n, d, cfg.k, cfg, seed)
    }
}

/// Share of the exact neighbours that `approx` found (for tests and benchmarks).
pub fn recall(approx: &Knn, exact: &Knn) -> f64 {
    let approx = approx.in_account_order();
    let exact = exact.in_account_order();
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

impl Knn {
    /// Account labels from labels of the graph's nodes: the graph from
    /// [`graph`] numbers its nodes in [`Knn::order`] when there is one.
    pub fn to_accounts(&self, node_labels: Vec<usize>) -> Vec<usize> {
        match &self.order {
            Some(o) => {
                let mut out = vec![0usize; node_labels.len()];
                for (p, &v) in o.iter().enumerate() {
                    out[v as usize] = node_labels[p];
                }
                out
            }
            None => node_labels,
        }
    }

    /// The lists numbered by matrix row (row `order[p]` is node `p`), each
    /// sorted by (distance, row): for comparing with exact search. Graph
    /// building needs no such copy.
    pub fn in_account_order(&self) -> std::borrow::Cow<'_, Knn> {
        let Some(order) = &self.order else {
            return std::borrow::Cow::Borrowed(self);
        };
        let (n, k) = (self.n(), self.k);
        let mut inv = vec![0u32; n];
        for (p, &v) in order.iter().enumerate() {
            inv[v as usize] = p as u32;
        }
        let mut idx = vec![u32::MAX; n * k];
        let mut dist = vec![f32::INFINITY; n * k];
        idx.par_chunks_mut(k)
            .zip(dist.par_chunks_mut(k))
            .enumerate()
            .for_each(|(row, (ir, dr))| {
                let node = inv[row] as usize;
                let mut r: Vec<(f32, u32)> = (node * k..(node + 1) * k)
                    .filter(|&s| self.idx[s] != u32::MAX)
                    .map(|s| (self.dist[s], order[self.idx[s] as usize]))
                    .collect();
                r.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
                for (s, (dd, j)) in r.into_iter().enumerate() {
                    ir[s] = j;
                    dr[s] = dd;
                }
            });
        std::borrow::Cow::Owned(Knn {
            k,
            idx,
            dist,
            method: self.method,
            rounds: self.rounds,
            order: None,
            recall: self.recall,
        })
    }
}

/// Jaccard similarity of two sets given as rows of distinct values padded with
/// `u32::MAX`, in any order, to one width that is a multiple of 8. Every slot of
/// one row is compared with every slot of the other, 8 lanes at a time, and the
/// padding's matches with padding are subtracted: (k+1)² comparisons without a
/// branch, several times faster than a sorted merge, whose branches mispredict.
#[inline(always)]
fn padded_jaccard(a: &[u32], b: &[u32]) -> f64 {
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
fn snn_weights(sets: &[u32], w: usize, u: usize, vs: &[(u32, f32)], out: &mut Vec<f64>) {
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
    // Who lists v, with the distance, in CSR form.
    let mut off = vec![0usize; n + 1];
    for &j in &knn.idx {
        if j != u32::MAX {
            off[j as usize + 1] += 1;
        }
    }
    for i in 0..n {
        off[i + 1] += off[i];
    }
    let mut rev = vec![(0u32, 0f32); off[n]];
    let mut fill = off.clone();
    for (pos, &j) in knn.idx.iter().enumerate() {
        if j != u32::MAX {
            rev[fill[j as usize]] = ((pos / k) as u32, knn.dist[pos]);
            fill[j as usize] += 1;
        }
    }
    drop(fill);
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
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0);
    for dg in parts.iter().flat_map(|p| &p.0) {
        offsets.push(offsets.last().expect("pushed") + dg);
    }
    // Copy the chunks' rows into place in parallel.
    let total = offsets[n];
    let (mut targets, mut weights) = (vec![0u32; total], vec![0f64; total]);
    let (mut t_rest, mut w_rest) = (&mut targets[..], &mut weights[..]);
    let mut slots = Vec::with_capacity(parts.len());
    for p in &parts {
        let (t, tr_) = std::mem::take(&mut t_rest).split_at_mut(p.1.len());
        let (w, wr_) = std::mem::take(&mut w_rest).split_at_mut(p.1.len());
        slots.push((p, t, w));
        (t_rest, w_rest) = (tr_, wr_);
    }
    slots.into_par_iter().for_each(|(p, t, w)| {
        t.copy_from_slice(&p.1);
        w.copy_from_slice(&p.2);
    });
    Csr {
        offsets,
        targets,
        weights,
        loops: vec![0.0; n],
    }
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

    /// The random-projection tree as first written, the reference for
    /// [`rp_tree`]: lists of indices, each node's side gathered from the whole
    /// matrix, the same rule and the same draws.
    fn reference_leaves(
        x: &[f32],
        d: usize,
        points: Vec<u32>,
        leaf: usize,
        seed: u64,
        depth: usize,
    ) -> Vec<Vec<u32>> {
        if points.len() <= leaf.max(1) {
            return vec![points];
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let p = points;
        let row = |q: u32| &x[q as usize * d..(q as usize + 1) * d];
        let (mut left, mut right) = (Vec::new(), Vec::new());
        if depth < MAX_DEPTH {
            let a = rng.gen_range(0..p.len());
            let mut b = rng.gen_range(0..p.len() - 1);
            if b >= a {
                b += 1;
            }
            let (xa, xb) = (row(p[a]), row(p[b]));
            for &q in &p {
                let side = dist(row(q), xb) - dist(row(q), xa);
                if side < 0.0 || (side == 0.0 && rng.gen::<bool>()) {
                    left.push(q);
                } else {
                    right.push(q);
                }
            }
        }
        if left.is_empty() || right.is_empty() {
            let mut all = p;
            let mid = all.len() / 2;
            for i in 0..mid {
                let j = rng.gen_range(i..all.len());
                all.swap(i, j);
            }
            right = all.split_off(mid);
            left = all;
        }
        let (ls, rs) = (mix(seed ^ 0x5151), mix(seed ^ 0xa2a2));
        let mut out = reference_leaves(x, d, left, leaf, ls, depth + 1);
        out.extend(reference_leaves(x, d, right, leaf, rs, depth + 1));
        out
    }

    #[test]
    fn partitioned_tree_has_the_reference_leaves_at_any_thread_count() {
        // Blobs large enough for the parallel paths (halves on two threads,
        // sides in chunks), points with many duplicates (degenerate
        // hyperplanes, halved at random), and exponentially spaced points on
        // a line (very unbalanced splits, down to leaves of one).
        let (blobs, _) = blobs(70_000, 5, 6, 11);
        let dups: Vec<f32> = (0..3_000).flat_map(|i| [(i % 3) as f32, 1.0]).collect();
        let line: Vec<f32> = (0..300).map(|i| 1.1f32.powi(i % 200)).collect();
        for (x, d, leaf) in [
            (&blobs, 5, 64),
            (&blobs, 5, 32),
            (&dups, 2, 8),
            (&line, 1, 1),
        ] {
            let n = x.len() / d;
            let want = reference_leaves(x, d, (0..n as u32).collect(), leaf, 99, 0);
            for threads in [1, 3] {
                let (t, _) = on_threads(threads, || {
                    rp_tree(TreeBufs::over(x.clone(), d), d, leaf, 99)
                });
                assert_eq!(t.sizes, want.iter().map(Vec::len).collect::<Vec<_>>());
                assert_eq!(t.ids, want.concat());
                for (slot, &i) in t.ids.iter().enumerate() {
                    let i = i as usize;
                    assert_eq!(t.rows[slot * d..(slot + 1) * d], x[i * d..(i + 1) * d]);
                }
            }
        }
    }

    #[test]
    fn f32_copy_is_row_major_for_any_layout_and_size() {
        // Sizes around the 4096-row chunks, and a transposed (column-major) view.
        for n in [0, 1, 4095, 4096, 4097, 9000] {
            let a = ndarray::Array2::from_shape_fn((n, 3), |(i, j)| i as f64 * 10.0 + j as f64);
            let want: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            assert_eq!(to_f32(a.view()), want, "{n} rows");
            let t = a.t().to_owned();
            assert_eq!(to_f32(t.t()), want, "{n} rows, column-major");
        }
        assert!(to_f32(ndarray::Array2::<f64>::zeros((5, 0)).view()).is_empty());
    }

    #[test]
    fn avx2_distance_has_the_portable_bits() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
            for len in 1..70 {
                let a: Vec<f32> = (0..len).map(|_| rng.gen_range(-50.0..50.0)).collect();
                let b: Vec<f32> = (0..len).map(|_| rng.gen_range(-50.0..50.0)).collect();
                // SAFETY: AVX2 is available (checked above).
                let fast = unsafe { dist_avx2(&a, &b) };
                assert_eq!(fast.to_bits(), dist(&a, &b).to_bits(), "length {len}");
            }
        }
    }

    #[test]
    fn padded_jaccard_matches_the_sorted_merge() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        for _ in 0..500 {
            let mut row = |len: usize| {
                let mut r: Vec<u32> = (0..len).map(|_| rng.gen_range(0..40)).collect();
                r.sort_unstable();
                r.dedup();
                // Any order, padding anywhere (a short kNN list leaves
                // padding before the point itself).
                let mut padded = r.clone();
                padded.reverse();
                padded.insert(len % 5, u32::MAX);
                padded.resize(24, u32::MAX);
                (r, padded)
            };
            let ((a, pa), (b, pb)) = (row(16), row(12));
            assert_eq!(
                padded_jaccard(&pa, &pb),
                crate::partition::jaccard_sorted(&a, &b)
            );
        }
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
        let approx = nn_descent(x.clone(), 6000, 16, 15, &cfg, 1);
        let truth = exact(&x, 6000, 16, 15);
        let r = recall(&approx, &truth);
        assert!(r > 0.95, "recall {r}");
    }

    #[test]
    fn nn_descent_measures_its_recall_and_grows_its_lists_when_short() {
        // 32 isotropic dimensions per blob: hard for NN-descent. One round
        // leaves it short of the target, so it must grow its lists and go on.
        let (n, d) = (8000, 32);
        let (x, _) = blobs(n, d, 4, 5);
        let truth = exact(&x, n, d, 15);
        let short = GraphConfig {
            max_rounds: 1,
            ..Default::default()
        };
        let approx = nn_descent(x.clone(), n, d, 15, &short, 1);
        let r = recall(&approx, &truth);
        let estimate = approx.recall.expect("NN-descent reports its recall");
        assert!(
            (estimate - r).abs() < 0.05,
            "estimate {estimate} vs recall {r}"
        );
        assert!(
            approx.rounds == 2,
            "a second pass ran: {} rounds",
            approx.rounds
        );
        assert_eq!(approx.k, 15);
        // Lists of distinct neighbours, without the point itself.
        let by_row = approx.in_account_order();
        for i in 0..n {
            let row = by_row.row(i);
            assert!(!row.contains(&(i as u32)));
            let mut u = row.to_vec();
            u.sort_unstable();
            u.dedup();
            assert_eq!(u.len(), 15);
        }
        // With enough rounds it reaches the target, and says so.
        let full = nn_descent(x.clone(), n, d, 15, &GraphConfig::default(), 1);
        let rf = recall(&full, &truth);
        assert!(
            rf >= RECALL_TARGET - 0.03 && rf > r,
            "recall {rf} (one round a pass: {r})"
        );
        assert!((full.recall.unwrap() - rf).abs() < 0.05);
    }

    /// Runs `f` on a rayon pool of `threads` threads.
    fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    #[test]
    fn nn_descent_is_deterministic_across_thread_counts() {
        let (x, _) = blobs(3000, 8, 5, 4);
        let cfg = GraphConfig::default();
        let run = |threads| on_threads(threads, || nn_descent(x.clone(), 3000, 8, 10, &cfg, 9));
        let (a, b) = (run(1), run(2));
        assert_eq!(a.order, b.order);
        assert_eq!(a.idx, b.idx);
        assert_eq!(a.dist, b.dist);
        assert_eq!(a.recall, b.recall);
        // And when the lists grow for a second pass (one round is too few on
        // 32 dimensions).
        let (x, _) = blobs(3000, 32, 3, 4);
        let short = GraphConfig {
            max_rounds: 1,
            ..Default::default()
        };
        let run = |threads| on_threads(threads, || nn_descent(x.clone(), 3000, 32, 15, &short, 9));
        let (a, b) = (run(1), run(3));
        assert_eq!(a.rounds, 2, "the lists grew");
        assert_eq!((a.idx, a.dist, a.recall), (b.idx, b.dist, b.recall));
    }

    #[test]
    fn locality_numbered_graph_gives_account_labels_independent_of_threads() {
        // Above the exact threshold: NN-descent, the graph numbered in its
        // locality order, Louvain on it, labels mapped back to accounts.
        let n = 24_000;
        let (x, truth) = blobs(n, 8, 6, 11);
        let cfg = GraphConfig::default();
        let run = |threads| {
            on_threads(threads, || {
                let nn = knn(x.clone(), n, 8, &cfg, 5);
                assert_eq!(nn.method, "nn-descent");
                let g = graph(&nn, Weighting::Snn);
                let (labels, _) = super::super::community::detect(
                    &g,
                    super::super::community::Algorithm::Louvain,
                    1.0,
                    3,
                    (1, usize::MAX),
                    2,
                );
                (g, nn.to_accounts(labels))
            })
        };
        let ((g1, a), (g2, b)) = (run(1), run(2));
        assert_eq!(g1, g2);
        assert_eq!(a, b);
        let ari = crate::partition::agreement(&a, &truth).ari;
        assert!(ari > 0.95, "planted blobs recovered with ARI {ari}");
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
