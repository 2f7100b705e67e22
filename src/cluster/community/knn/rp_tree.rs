//! Random-projection trees (Dasgupta & Freund 2008): the points renumbered in
//! leaf order, and the leaves NN-descent starts from. Built by partitioning the
//! rows themselves, level by level between two buffers.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::distance::{dist, dist_avx2};
use crate::memory::huge_vec;

/// SplitMix64's finaliser: a well-mixed 64-bit hash. Used to derive each tree
/// node's seed from its parent's and each candidate's sampling priority, so no
/// random stream is shared between threads.
#[inline]
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Tree nodes larger than this split their two halves on separate threads.
pub(super) const PAR_SPLIT: usize = 20_000;

/// Past this depth a node is halved at random instead of by a hyperplane, which
/// bounds the recursion however unbalanced the hyperplane splits are.
pub(super) const MAX_DEPTH: usize = 64;

/// One random-projection tree: its leaves' points, left to right (`ids`),
/// the leaves' sizes, and the points' rows in that order (`rows`, row-major),
/// so that each leaf's rows are contiguous.
pub(super) struct Tree {
    pub(super) ids: Vec<u32>,
    pub(super) sizes: Vec<usize>,
    pub(super) rows: Vec<f32>,
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
pub(super) fn rp_tree(bufs: TreeBufs, d: usize, leaf: usize, seed: u64) -> (Tree, TreeBufs) {
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
/// the forest's other trees partition the points themselves with the first
/// tree's scratch as their second buffer (see `nn_descent_local`).
pub(super) struct TreeBufs {
    pub(super) cur: Vec<f32>,
    pub(super) cur_ids: Vec<u32>,
    pub(super) rows: Vec<f32>,
    pub(super) ids: Vec<u32>,
}

impl TreeBufs {
    /// Buffers for a tree over the rows `x` (n rows of d), which it takes.
    pub(super) fn over(x: Vec<f32>, d: usize) -> Self {
        let n = x.len() / d.max(1);
        TreeBufs {
            cur: x,
            cur_ids: (0..n as u32).collect(),
            rows: huge_vec(n * d, 0f32),
            ids: vec![0; n],
        }
    }
    /// Only the scratch half: the next tree brings its own output half.
    pub(super) fn scratch(cur: Vec<f32>, cur_ids: Vec<u32>) -> Self {
        TreeBufs {
            cur,
            cur_ids,
            rows: Vec::new(),
            ids: Vec::new(),
        }
    }
}

/// A node's points and their rows (`ids.len()` rows of `d`).
pub(super) struct Part<'a> {
    pub(super) rows: &'a mut [f32],
    pub(super) ids: &'a mut [u32],
}

impl<'a> Part<'a> {
    pub(super) fn split_at(self, at: usize, d: usize) -> (Part<'a>, Part<'a>) {
        let (rl, rr) = self.rows.split_at_mut(at * d);
        let (il, ir) = self.ids.split_at_mut(at);
        (Part { rows: rl, ids: il }, Part { rows: rr, ids: ir })
    }
}

/// Splits the node held in `cur` into `other` (left half first) and recurses
/// with the two trading places; a leaf ends up in the output buffer (`cur` is
/// the output when `cur_is_out`). Returns the leaves' sizes, left to right.
#[allow(clippy::too_many_arguments)]
pub(super) fn tree_node(
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
pub(super) fn partition(
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
pub(super) fn pieces<T>(mut s: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
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
pub(super) fn sides(rows: &[f32], d: usize, xa: &[f32], xb: &[f32]) -> Vec<f32> {
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
