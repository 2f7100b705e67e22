//! NN-descent (Dong, Charikar & Li 2011): the neighbour of a neighbour is
//! probably a neighbour. Each round's local join measures every new–new and
//! new–old candidate pair once and proposes it to both ends.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use super::distance::{dist, dist_avx2, insert, EMPTY};
use super::exact::{probe_neighbours, probe_points, probe_recall, RECALL_TARGET};
use super::rp_tree::{mix, rp_tree, Tree, TreeBufs};
use super::{GraphConfig, Knn};
use crate::memory::{huge_vec, trace};

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
    let mut knn = nn_descent_local(xp, n, d, k, &sizes, cfg, seed, scratch);
    knn.order = Some(perm);
    knn
}

/// A proposed neighbour: `(list, squared distance, candidate)`.
pub(super) type Update = (u32, f32, u32);

/// Updates from one producer, bucketed by the slice of lists they touch, so
/// that the buckets can be applied in parallel to disjoint slices.
pub(super) struct Buckets {
    pub(super) per: usize,
    pub(super) b: Vec<Vec<Update>>,
}

impl Buckets {
    pub(super) fn new(parts: usize, per: usize) -> Self {
        Buckets {
            per,
            b: (0..parts).map(|_| Vec::new()).collect(),
        }
    }
    #[inline]
    pub(super) fn push(&mut self, target: u32, d: f32, src: u32) {
        self.b[target as usize / self.per].push((target, d, src));
    }
}

/// The k-nearest-neighbour lists being improved, with per-entry flags:
/// 0 = old (already joined), 1 = new, 2 = inserted this round.
pub(super) struct Lists {
    pub(super) k: usize,
    pub(super) lists: Vec<(f32, u32)>,
    pub(super) flags: Vec<u8>,
    /// Each list's k-th distance, kept beside the lists: the local join reads
    /// it for random points, and one f32 per point stays in cache far better
    /// than the last entry of each list.
    pub(super) thr: Vec<f32>,
    pub(super) parts: usize,
    pub(super) per: usize,
}

/// Points whose local joins are computed before their updates are applied:
/// bounds the memory the pending updates take.
pub(super) const BLOCK: usize = 1 << 15;

impl Lists {
    /// Whether any list holds an old entry (one already joined).
    fn has_old(&self) -> bool {
        self.lists
            .par_iter()
            .zip(&self.flags)
            .any(|(e, &f)| f == 0 && e.1 != u32::MAX)
    }
    pub(super) fn new(n: usize, k: usize) -> Self {
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
    pub(super) fn fill_runs(&mut self, x: &[f32], d: usize, sizes: &[usize]) {
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
    pub(super) fn truncated(self, k: usize) -> Lists {
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
    pub(super) fn threshold(&self, p: u32) -> f32 {
        self.thr[p as usize]
    }

    /// Runs `produce` for every item of `items` in parallel, then applies all
    /// the updates it proposed. The k smallest distinct `(distance, index)`
    /// pairs of a list and its candidates do not depend on the order in which
    /// the candidates arrive, so the result is the same for any thread count.
    pub(super) fn run<F>(&mut self, items: std::ops::Range<usize>, min_len: usize, produce: F)
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
pub(super) fn nn_descent_local(
    x: Vec<f32>,
    n: usize,
    d: usize,
    k: usize,
    sizes: &[usize],
    cfg: &GraphConfig,
    seed: u64,
    scratch: TreeBufs,
) -> Knn {
    let k = k.min(n.saturating_sub(1)).max(1);
    let t = std::time::Instant::now();
    let mut g = Lists::new(n, k);
    trace("kNN: lists allocated", t);

    // Initialise from the leaves of a few RP trees: every pair in a leaf.
    // The numbering's own tree comes first: its leaves are runs of consecutive
    // points, so each leaf fills its own lists directly, in parallel.
    let t = std::time::Instant::now();
    g.fill_runs(&x, d, sizes);
    // Then the other trees, the points given back in their order.
    let x = other_trees(&mut g, x, scratch, d, cfg.trees, seed);
    let row = |p: u32| &x[p as usize * d..(p as usize + 1) * d];
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
    let rounds = descend(&mut g, &x, n, d, cfg, seed, 0);
    let t = std::time::Instant::now();
    let probes = probe_points(n);
    let exact = probe_neighbours(&x, d, &probes, k);
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
        rounds += descend(&mut h, &x, n, d, cfg, seed, rounds);
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

/// NN-descent's rounds on lists `g` whose new entries are flagged, until
/// fewer than `delta · n · k` entries change or `max_rounds` have run; `first`
/// numbers the first round (the candidate samples are hashed with it).
/// Returns the number of rounds run.
pub(super) fn descend(
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
    // The old candidates are allocated in the first round that has any: a
    // first pass starts from lists that are all new, so its first round,
    // where the reverse lists are longest, does without them (1.2 GB at
    // 10M points).
    let (mut new_c, mut old_c) = (huge_vec(n * mc, u32::MAX), Vec::new());
    let mut produced = Vec::new();
    for round in first..first + cfg.max_rounds {
        rounds += 1;
        let t = std::time::Instant::now();
        if old_c.is_empty() && g.has_old() {
            old_c = huge_vec(n * mc, u32::MAX);
        }
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
                let old = |v: usize| old_c.get(v * mc..(v + 1) * mc).unwrap_or(&[]);
                if v + 1 < n && is_active(v + 1) {
                    prefetch_rows(x, d, &new_c[(v + 1) * mc..(v + 2) * mc]);
                    prefetch_rows(x, d, old(v + 1));
                }
                let nc = valid(&new_c[v * mc..(v + 1) * mc]);
                let oc = valid(old(v));
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

/// The forest's trees after the first (`trees - 1` of them), one at a time,
/// their leaves' pairs joined into `g` from the tree's own contiguous rows.
/// Each tree partitions the points `x` themselves, with the first tree's
/// `scratch` as its second buffer, and the points are then put back in
/// their order from the tree's rows: two copies of the points at any time,
/// not three (0.9 GB less at 10M accounts × 24 features). Returns the
/// points, in their order.
fn other_trees(
    g: &mut Lists,
    mut x: Vec<f32>,
    scratch: TreeBufs,
    d: usize,
    trees: usize,
    seed: u64,
) -> Vec<f32> {
    let n = g.thr.len();
    let leaf = (2 * g.k).max(32);
    let TreeBufs {
        cur: mut spare,
        cur_ids: mut spare_ids,
        ..
    } = scratch;
    for tree in 1..trees.max(1) {
        let t = std::time::Instant::now();
        let s = mix(seed.wrapping_add(tree as u64 * 7919));
        spare.resize(n * d, 0.0);
        spare_ids.resize(n, 0);
        let mut ids = std::mem::take(&mut spare_ids);
        ids.par_iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = i as u32);
        let bufs = TreeBufs {
            cur: std::mem::take(&mut x),
            cur_ids: ids,
            rows: std::mem::take(&mut spare),
            ids: vec![0; n],
        };
        let (tr, scratch) = rp_tree(bufs, d, leaf, s);
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
        // The points back in their order, into the scratch buffer: where
        // each one is in the tree (the scratch's ids, free now), then each
        // row gathered from there.
        let TreeBufs {
            cur: mut back,
            cur_ids: mut at,
            ..
        } = scratch;
        for (i, &p) in tr.ids.iter().enumerate() {
            at[p as usize] = i as u32;
        }
        back.par_chunks_mut(d)
            .zip(at.par_iter())
            .for_each(|(row, &i)| {
                row.copy_from_slice(&tr.rows[i as usize * d..(i as usize + 1) * d])
            });
        x = back;
        (spare, spare_ids) = (tr.rows, at);
    }
    x
}

/// One run of consecutive points `start..start + t.len()` with its lists `l`,
/// flags `f` and thresholds `t`.
pub(super) struct Run<'a> {
    pub(super) start: usize,
    pub(super) l: &'a mut [(f32, u32)],
    pub(super) f: &'a mut [u8],
    pub(super) t: &'a mut [f32],
}

/// Every pair of the run's points, inserted into their lists.
#[inline(always)]
pub(super) fn fill_run_impl(
    x: &[f32],
    d: usize,
    k: usize,
    run: Run,
    dist: impl Fn(&[f32], &[f32]) -> f32,
) {
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

pub(super) fn fill_run(x: &[f32], d: usize, k: usize, run: Run) {
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
pub(super) fn join_impl(
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
pub(super) fn propose(g: &Lists, out: &mut Buckets, (p, tp): (u32, f32), q: u32, dd: f32) {
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
pub(super) unsafe fn join_avx2(
    g: &Lists,
    x: &[f32],
    d: usize,
    new: &[u32],
    old: &[u32],
    out: &mut Buckets,
) {
    // SAFETY: this function only runs where AVX2 is available.
    join_impl(g, x, d, new, old, out, |a, b| unsafe { dist_avx2(a, b) })
}

pub(super) fn join(g: &Lists, x: &[f32], d: usize, new: &[u32], old: &[u32], out: &mut Buckets) {
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
pub(super) fn join_leaf(g: &Lists, rows: &[f32], ids: &[u32], d: usize, out: &mut Buckets) {
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
pub(super) fn prefetch_rows(x: &[f32], d: usize, ids: &[u32]) {
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
pub(super) fn valid(row: &[u32]) -> &[u32] {
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
pub(super) fn sample_candidates(
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
    // Each slice's old candidates: none at all when `old_c` is empty (no
    // list has an old entry yet).
    let mut olds: Vec<&mut [u32]> = old_c.chunks_mut(per * mc).collect();
    olds.resize_with(new_c.len().div_ceil(per * mc), || &mut []);
    new_c
        .par_chunks_mut(per * mc)
        .zip(olds)
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
                let nr = &mut nr[r * mc..(r + 1) * mc];
                let or = or.get_mut(r * mc..(r + 1) * mc).unwrap_or(&mut []);
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
                debug_assert!(ob.is_empty() || !or.is_empty(), "old candidates have rows");
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
