//! Louvain and Leiden community detection, maximising modularity with a
//! resolution parameter γ.
//!
//! * **Louvain** (Blondel, Guillaume, Lambiotte & Lefebvre 2008, "Fast unfolding
//!   of communities in large networks"): sweep the nodes in a seeded random
//!   order, moving each to the neighbouring community with the largest modularity
//!   gain until a sweep moves nothing; aggregate every community into one node
//!   and repeat until nothing moves. Sweeps after the first revisit only the
//!   nodes next to a node that moved (pruning, Ozaki et al. 2016).
//! * **Leiden** (Traag, Waltman & van Eck 2019, "From Louvain to Leiden:
//!   guaranteeing well-connected communities"): a queue-based fast local move,
//!   then a *refinement* inside each community that only merges well-connected
//!   nodes into well-connected sub-communities (randomised with θ), and
//!   aggregation of the refined partition with each aggregate node starting in
//!   its community. This guarantees γ-connected communities. The whole algorithm
//!   is iterated from its own result until modularity stops improving.
//!
//! Either way, strata splits any community that is not connected into its
//! components (Louvain can produce such communities; Leiden should not), then
//! merges communities smaller than `min_size` into the neighbouring community
//! they are most strongly connected to, so **every reported community is
//! connected**.
//!
//! Cost: each sweep is O(m) for m edges; the number of levels is small
//! (logarithmic in practice), so one run is about O(m log n). Everything is
//! sequential and driven by one seeded RNG: results do not depend on threads.

use std::collections::VecDeque;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use super::graph::{modularity, split_disconnected, Csr};
use crate::memory::trace;

mod aggregate;
mod refine;
pub use aggregate::aggregate;
use refine::refine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Louvain,
    Leiden,
}

/// Relabel densely in order of first appearance.
pub fn renumber(m: &[usize]) -> (Vec<usize>, usize) {
    let k = m.iter().max().map_or(0, |x| x + 1);
    let mut map = vec![usize::MAX; k.max(1)];
    let mut next = 0;
    let out = m
        .iter()
        .map(|&c| {
            if map[c] == usize::MAX {
                map[c] = next;
                next += 1;
            }
            map[c]
        })
        .collect();
    (out, next)
}

/// The communities a gather touched, in the order first touched, listed
/// without a branch: every label is written at the end of the list and the
/// length grows only when the label is new. Whether a label is new depends
/// on a lookup that is a cache miss on large graphs; as a branch it is
/// mispredicted often enough to stall the next neighbours' lookups behind it,
/// as data they all proceed at once (the same list, in the same order).
struct Touched<T> {
    list: Vec<T>,
    len: usize,
}

impl<T: Copy + Default> Touched<T> {
    fn new() -> Self {
        Touched {
            list: Vec::new(),
            len: 0,
        }
    }
    /// Room for `more` labels past those listed.
    fn reserve(&mut self, more: usize) {
        if self.list.len() < self.len + more {
            self.list.resize(self.len + more, T::default());
        }
    }
    /// Lists `c` when `new` (room reserved).
    #[inline(always)]
    fn push_if(&mut self, c: T, new: bool) {
        self.list[self.len] = c;
        self.len += new as usize;
    }
    fn as_slice(&self) -> &[T] {
        &self.list[..self.len]
    }
    fn clear(&mut self) {
        self.len = 0;
    }
}

/// The order nodes are visited in: random, and on large graphs random by
/// blocks of consecutive nodes. The kNN graph numbers its nodes so that
/// neighbours are close together (see [`super::knn::graph`]); walking a block
/// in order keeps its nodes' neighbour lists and labels in cache, while the
/// shuffled blocks keep the randomisation the local moves rely on. Up to 8191
/// nodes the blocks are single nodes (a plain shuffle).
fn visit_order(n: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<usize> {
    let b = (n / 4096).max(1);
    let mut blocks: Vec<usize> = (0..n.div_ceil(b)).collect();
    blocks.shuffle(rng);
    blocks
        .into_iter()
        .flat_map(|s| s * b..((s + 1) * b).min(n))
        .collect()
}

/// Each community's weight from the node being moved beside its total
/// strength (`acc[c] = [weight, total]`: every neighbouring community needs
/// both, so one cache line serves them), with the communities touched. A
/// community is listed the first time its weight leaves zero (edge weights
/// are positive; zero weights are skipped), so the weights double as marks.
struct Gathered {
    acc: Vec<[f64; 2]>,
    touched: Touched<u32>,
}

impl Gathered {
    /// Totals of the communities in `lab` (labels < n).
    fn new(g: &Csr, k: &[f64], lab: &[u32]) -> Self {
        let mut acc = vec![[0.0f64; 2]; g.n()];
        for (i, &c) in lab.iter().enumerate() {
            acc[c as usize][1] += k[i];
        }
        Gathered {
            acc,
            touched: Touched::new(),
        }
    }
    /// Gathers `v`'s weight to each neighbouring community.
    fn gather(&mut self, g: &Csr, v: usize, lab: &[u32]) {
        self.touched.reserve(g.offsets[v + 1] - g.offsets[v]);
        let (acc, touched) = (&mut self.acc, &mut self.touched);
        g.for_each_neighbor(v, |u, w| {
            if w <= 0.0 {
                return; // contributes nothing; keeps a zero weight meaning "unseen"
            }
            let c = lab[u];
            let e = &mut acc[c as usize][0];
            touched.push_if(c, *e == 0.0);
            *e += w;
        });
    }
    /// The gathered community with the largest modularity gain for a node of
    /// strength `kv` (`scale` = γ / 2m) taken out of `current`, staying there
    /// unless another is strictly better. Returns the community and its gain.
    fn best(&self, current: usize, kv: f64, scale: f64) -> (usize, f64) {
        let mut best = current;
        let mut best_gain = self.acc[current][0] - scale * self.acc[current][1] * kv;
        for &c in self.touched.as_slice() {
            let [w, tot] = self.acc[c as usize];
            let gain = w - scale * tot * kv;
            if gain > best_gain + 1e-12 {
                best = c as usize;
                best_gain = gain;
            }
        }
        (best, best_gain)
    }
    fn clear(&mut self) {
        for &c in self.touched.as_slice() {
            self.acc[c as usize][0] = 0.0;
        }
        self.touched.clear();
    }
}

/// A hint to bring the first element of `s` into cache (nothing off
/// x86-64, or when `s` is empty).
#[inline(always)]
fn prefetch<T>(s: &[T]) {
    if !s.is_empty() {
        prefetch_address(s.as_ptr() as *const u8);
    }
}

/// [`prefetch`] of the cache line at `p`.
fn prefetch_address(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Louvain's local moving phase: sweeps until no node moves. Returns whether any node moved.
///
/// The memory is laid out for large graphs, where every community lookup is
/// a cache miss: labels are u32, and weights and totals side by side
/// ([`Gathered`]).
fn sweep_moves(g: &Csr, memb: &mut [usize], gamma: f64, rng: &mut Xoshiro256PlusPlus) -> bool {
    let n = g.n();
    let k = g.strengths();
    let scale = gamma / g.total_weight();
    let mut lab: Vec<u32> = memb.iter().map(|&c| c as u32).collect();
    let mut nb = Gathered::new(g, &k, &lab);
    let order = visit_order(n, rng);
    let mut any = false;
    // Pruning (Ozaki, Tezuka & Inaba 2016): after the first sweep only nodes
    // whose neighbourhood changed can improve, so each sweep visits just the
    // nodes marked by a neighbour's move in the previous one (in the same order).
    let mut active = vec![true; n];
    for _ in 0..1000 {
        let mut moved = 0usize;
        let mut next = vec![false; n];
        for &v in &order {
            if !active[v] {
                continue;
            }
            let a = lab[v] as usize;
            nb.gather(g, v, &lab);
            let kv = k[v];
            nb.acc[a][1] -= kv;
            let (best, _) = nb.best(a, kv, scale);
            nb.acc[best][1] += kv;
            lab[v] = best as u32;
            if best != a {
                moved += 1;
                for (u, _) in g.neighbors(v) {
                    if lab[u] as usize != best {
                        next[u] = true;
                    }
                }
            }
            nb.clear();
        }
        if moved == 0 {
            break;
        }
        active = next;
        any = true;
    }
    for (m, &l) in memb.iter_mut().zip(&lab) {
        *m = l as usize;
    }
    any
}

/// Louvain. Returns dense labels (not yet split or merged).
pub fn louvain(g: &Csr, gamma: f64, seed: u64) -> Vec<usize> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut graph = g.clone();
    let mut node: Vec<usize> = (0..g.n()).collect();
    loop {
        let mut memb: Vec<usize> = (0..graph.n()).collect();
        if !sweep_moves(&graph, &mut memb, gamma, &mut rng) {
            break;
        }
        let (memb, k) = renumber(&memb);
        for c in node.iter_mut() {
            *c = memb[*c];
        }
        if k == graph.n() {
            break;
        }
        graph = aggregate(&graph, &memb, k);
    }
    renumber(&node).0
}

/// Leiden's fast local move (queue based). `memb` labels are < n.
///
/// Laid out as [`sweep_moves`] is, for large graphs: u32 labels and
/// [`Gathered`]. The same moves as with separate arrays, in half the memory:
/// at 1M accounts the first level visits 7.5M nodes for 2M moves.
///
/// Returns the number of node visits and of edge entries those visits read
/// (each visit reads the node's whole adjacency list), for the trace's
/// edges-per-second figure.
fn move_nodes_fast(
    g: &Csr,
    memb: &mut [usize],
    gamma: f64,
    rng: &mut Xoshiro256PlusPlus,
) -> (u64, u64) {
    let n = g.n();
    let k = g.strengths();
    let scale = gamma / g.total_weight();
    let mut size = vec![0u32; n];
    for &c in memb.iter() {
        size[c] += 1;
    }
    let mut lab: Vec<u32> = memb.iter().map(|&c| c as u32).collect();
    let mut nb = Gathered::new(g, &k, &lab);
    let mut empty: Vec<u32> = (0..n as u32).filter(|&c| size[c as usize] == 0).collect();
    empty.reverse();
    let order = visit_order(n, rng);
    let mut queue: VecDeque<u32> = order.into_iter().map(|v| v as u32).collect();
    // One bit per node: the neighbours checked after a move are close in
    // number, so their bits share cache lines.
    let mut queued = vec![u64::MAX; n.div_ceil(64)];
    let is_queued = |q: &[u64], u: usize| q[u / 64] >> (u % 64) & 1 == 1;
    let (mut visits, mut read) = (0u64, 0u64);
    while let Some(v) = queue.pop_front() {
        let v = v as usize;
        // The next visits' first reads, started now: the next node's list
        // (its offset was fetched a visit ago), and the one after's offset.
        if let Some(&next) = queue.front() {
            let at = g.offsets[next as usize];
            prefetch(&g.targets[at..]);
            prefetch_address(g.weights.address(at));
            prefetch(&k[next as usize..]);
            prefetch(&lab[next as usize..]);
            if let Some(&after) = queue.get(1) {
                prefetch(&g.offsets[after as usize..]);
            }
        }
        queued[v / 64] &= !(1 << (v % 64));
        visits += 1;
        read += (g.offsets[v + 1] - g.offsets[v]) as u64;
        let a = lab[v] as usize;
        nb.gather(g, v, &lab);
        let kv = k[v];
        nb.acc[a][1] -= kv;
        size[a] -= 1;
        let (mut best, best_gain) = nb.best(a, kv, scale);
        // An empty community has gain 0.
        if best_gain < -1e-12 && size[a] > 0 {
            if let Some(&e) = empty.last() {
                best = e as usize;
            }
        }
        if best != a && size[best] == 0 {
            empty.pop();
        }
        nb.acc[best][1] += kv;
        size[best] += 1;
        lab[v] = best as u32;
        if size[a] == 0 && a != best {
            empty.push(a as u32);
        }
        if best != a {
            for (u, _) in g.neighbors(v) {
                if !is_queued(&queued, u) && lab[u] as usize != best {
                    queued[u / 64] |= 1 << (u % 64);
                    queue.push_back(u as u32);
                }
            }
        }
        nb.clear();
    }
    for (m, &l) in memb.iter_mut().zip(&lab) {
        *m = l as usize;
    }
    (visits, read)
}

/// One pass of Leiden from an initial partition of `g`'s nodes. Returns the
/// partition and the pass's chain of aggregations: `levels[0]` maps `g`'s
/// nodes to the nodes of the second level's graph, `levels[i]` level i's
/// nodes to level i + 1's (each a refined partition, or the partition itself
/// when refinement merged nothing), so every community of the result is a
/// union of the groups at any level.
fn leiden_pass(
    g: &Csr,
    init: &[usize],
    gamma: f64,
    theta: f64,
    rng: &mut Xoshiro256PlusPlus,
) -> (Vec<usize>, Vec<Vec<usize>>) {
    // The first level works on `g` itself (no copy of the largest graph).
    let mut graph: std::borrow::Cow<'_, Csr> = std::borrow::Cow::Borrowed(g);
    let mut levels: Vec<Vec<usize>> = Vec::new();
    let mut memb: Vec<usize> = renumber(init).0;
    loop {
        let t = std::time::Instant::now();
        let (nodes, edges) = (graph.n(), graph.edges());
        let (visits, read) = move_nodes_fast(&graph, &mut memb, gamma, rng);
        let (part, k) = renumber(&memb);
        // One STRATA_TRACE line per level of a large graph: moves, refinement, aggregation.
        let level_trace = |what: String| {
            if nodes >= 10_000 {
                trace(
                    &format!(
                        "Leiden level {} ({nodes} nodes, {edges} edges): {what}",
                        levels.len()
                    ),
                    t,
                );
            }
        };
        let moved = t.elapsed().as_secs_f64();
        // Local moves run on one thread: edge entries read per second.
        let rate = format!(
            "{visits} node visits reading {read} edge entries, {:.1}M per s",
            read as f64 / moved.max(1e-9) / 1e6
        );
        if k == graph.n() {
            level_trace(format!("local moves {moved:.2} s ({rate}), nothing merged"));
            memb = part;
            break;
        }
        let refined = refine(&graph, &part, gamma, theta, rng);
        let (refined, kr) = renumber(&refined);
        let refining = t.elapsed().as_secs_f64() - moved;
        let (groups, coarse) = if kr == graph.n() {
            // No merge possible in refinement: aggregate by the partition itself.
            memb = (0..k).collect();
            (part, k)
        } else {
            let mut next = vec![0usize; kr];
            for v in 0..graph.n() {
                next[refined[v]] = part[v];
            }
            memb = next;
            (refined, kr)
        };
        graph = std::borrow::Cow::Owned(aggregate(&graph, &groups, coarse));
        level_trace(format!(
            "local moves {moved:.2} s ({rate}) to {k} communities, refinement {refining:.2} s \
             to {kr}, aggregation {:.2} s",
            t.elapsed().as_secs_f64() - moved - refining
        ));
        levels.push(groups);
    }
    let labels: Vec<usize> = (0..g.n())
        .map(|v| memb[levels.iter().fold(v, |a, l| l[a])])
        .collect();
    (renumber(&labels).0, levels)
}

/// Leiden, iterated from its own result until modularity stops improving (at most `max_iterations`).
pub fn leiden(g: &Csr, gamma: f64, seed: u64, max_iterations: usize) -> Vec<usize> {
    leiden_from(
        g,
        &(0..g.n()).collect::<Vec<_>>(),
        gamma,
        seed,
        max_iterations,
    )
}

/// Leiden started from a given partition instead of singletons (as
/// leidenalg's `initial_membership`): nodes move away from their starting
/// community only when that raises modularity, so a partition that still fits
/// is kept. Used to warm-start a month from the previous month's communities.
pub fn leiden_from(
    g: &Csr,
    init: &[usize],
    gamma: f64,
    seed: u64,
    max_iterations: usize,
) -> Vec<usize> {
    leiden_run(g, init, gamma, seed, max_iterations).0
}

/// [`leiden_from`], with the chain of aggregations (see [`leiden_pass`]) of
/// the pass whose result is returned (empty when no pass improved on `init`).
fn leiden_run(
    g: &Csr,
    init: &[usize],
    gamma: f64,
    seed: u64,
    max_iterations: usize,
) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let theta = 0.01;
    let mut best: Vec<usize> = renumber(init).0;
    let mut best_q = modularity(g, &best, gamma);
    let mut levels = Vec::new();
    for _ in 0..max_iterations.max(1) {
        let t = std::time::Instant::now();
        let (next, chain) = leiden_pass(g, &best, gamma, theta, &mut rng);
        let q = modularity(g, &next, gamma);
        if g.n() >= 10_000 {
            trace(&format!("Leiden pass (modularity {q:.4})"), t);
        }
        if q <= best_q + 1e-12 {
            break;
        }
        best = next;
        best_q = q;
        levels = chain;
    }
    (best, levels)
}

/// The groups of the deepest level of `levels` (see [`leiden_pass`]) that
/// has at least `want` of them, as dense labels of the `n` original nodes,
/// and their count; every node its own group when no level has enough.
fn groups_at_least(levels: &[Vec<usize>], n: usize, want: usize) -> (Vec<usize>, usize) {
    let count = |l: &Vec<usize>| l.iter().max().map_or(0, |m| m + 1);
    let depth = levels.iter().take_while(|l| count(l) >= want).count();
    if depth == 0 {
        return ((0..n).collect(), n);
    }
    let chain = &levels[..depth];
    let groups = (0..n).map(|v| chain.iter().fold(v, |a, l| l[a])).collect();
    (groups, count(&chain[depth - 1]))
}

/// Merge communities smaller than `min_size` into their most-connected
/// neighbour (ties: the larger, then the lower label), smallest first, and go
/// on merging the smallest while there are more than `max_count`. A community
/// with no edges to another (an isolated component) is left as it is.
/// Returns the new dense labels and how many were merged away.
///
/// Cost: O(n + Σ edges of the merged communities · α(n)).
pub fn merge_small(
    g: &Csr,
    memb: &[usize],
    min_size: usize,
    max_count: usize,
) -> (Vec<usize>, usize) {
    let (memb, k) = renumber(memb);
    if k <= 1 || (min_size <= 1 && k <= max_count) {
        return (memb, 0);
    }
    let mut parent: Vec<usize> = (0..k).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (v, &c) in memb.iter().enumerate() {
        members[c].push(v);
    }
    // Every community by size; the isolated ones that cannot merge aside.
    let mut live: std::collections::BTreeSet<(usize, usize)> =
        (0..k).map(|c| (members[c].len(), c)).collect();
    let mut isolated = 0usize;
    let mut merged = 0;
    let mut link: std::collections::BTreeMap<usize, f64> = std::collections::BTreeMap::new();
    while let Some(&(size, small)) = live.first() {
        let too_many = live.len() + isolated > max_count.max(1);
        if size >= min_size && !too_many {
            break;
        }
        live.remove(&(size, small));
        link.clear();
        for &v in &members[small] {
            for (u, w) in g.neighbors(v) {
                let c = find(&mut parent, memb[u]);
                if c != small {
                    *link.entry(c).or_default() += w;
                }
            }
        }
        let target = link
            .iter()
            .max_by(|a, b| {
                a.1.total_cmp(b.1)
                    .then(members[*a.0].len().cmp(&members[*b.0].len()))
                    .then(b.0.cmp(a.0))
            })
            .map(|(c, _)| *c);
        let Some(target) = target else {
            isolated += 1;
            continue;
        };
        live.remove(&(members[target].len(), target));
        let moved = std::mem::take(&mut members[small]);
        members[target].extend(moved);
        parent[small] = target;
        merged += 1;
        live.insert((members[target].len(), target));
    }
    let out: Vec<usize> = memb.iter().map(|&c| find(&mut parent, c)).collect();
    (renumber(&out).0, merged)
}

/// Community detection with the guarantees strata reports: connected communities,
/// none smaller than `min_size` (unless isolated) and at most `max_count`.
/// Returns labels and merges done.
pub fn detect(
    g: &Csr,
    algorithm: Algorithm,
    gamma: f64,
    seed: u64,
    limits: (usize, usize),
    iterations: usize,
) -> (Vec<usize>, usize) {
    detect_from(g, algorithm, gamma, seed, limits, iterations, None)
}

/// [`detect`], optionally warm-started from a partition (Leiden only; Louvain
/// always starts from singletons).
pub fn detect_from(
    g: &Csr,
    algorithm: Algorithm,
    gamma: f64,
    seed: u64,
    limits: (usize, usize),
    iterations: usize,
    init: Option<&[usize]>,
) -> (Vec<usize>, usize) {
    let d = detect_run(g, algorithm, gamma, seed, limits, iterations, init);
    (d.labels, d.merged)
}

/// One community detection, kept for the other resolutions of a sweep.
pub struct Detected {
    /// Dense labels of `g`'s nodes (connected, sizes within the limits).
    pub labels: Vec<usize>,
    /// Communities merged away for being too small or too many.
    pub merged: usize,
    /// Leiden: the chain of aggregations of the final pass (see
    /// [`leiden_pass`]), which [`detect_near`] starts from.
    levels: Option<Vec<Vec<usize>>>,
    /// The partition before the size limits were applied.
    raw: Vec<usize>,
    /// The resolution it ran at.
    gamma: f64,
}

/// How many times more groups than `main` has communities [`detect_near`]
/// keeps at least, times how many times finer its resolution is: room for a
/// finer resolution to split communities many ways.
const NEAR_GROUPS_PER_COMMUNITY: usize = 10;

/// The finest resolution, relative to `main`'s, that [`detect_near`] runs on
/// groups: a much finer one splits them (γ 8 on [`detect_near`]'s test graph
/// lost 8% of a fresh run's modularity, γ 4 under 1%), so it gets a fresh run.
const NEAR_FINER_MAX: f64 = 4.0;

/// [`detect_from`], keeping what [`detect_near`] starts from.
pub fn detect_run(
    g: &Csr,
    algorithm: Algorithm,
    gamma: f64,
    seed: u64,
    limits: (usize, usize),
    iterations: usize,
    init: Option<&[usize]>,
) -> Detected {
    let (raw, levels) = match (algorithm, init) {
        (Algorithm::Louvain, _) => (louvain(g, gamma, seed), None),
        (Algorithm::Leiden, init) => {
            let singletons: Vec<usize>;
            let init = match init {
                Some(i) => i,
                None => {
                    singletons = (0..g.n()).collect();
                    &singletons
                }
            };
            let (raw, levels) = leiden_run(g, init, gamma, seed, iterations);
            (raw, Some(levels))
        }
    };
    Detected::finish(g, raw, levels, gamma, limits)
}

impl Detected {
    /// The guarantees of [`detect`] on partition `raw` of `g`: communities
    /// split until connected, then held to the size limits.
    fn finish(
        g: &Csr,
        raw: Vec<usize>,
        levels: Option<Vec<Vec<usize>>>,
        gamma: f64,
        (min_size, max_count): (usize, usize),
    ) -> Detected {
        let t = std::time::Instant::now();
        let connected = split_disconnected(g, &raw);
        let (labels, merged) = merge_small(g, &connected, min_size, max_count);
        if g.n() >= 10_000 {
            trace("communities made connected and held to the size limits", t);
        }
        Detected {
            labels,
            merged,
            levels,
            raw,
            gamma,
        }
    }
}

/// Whether [`detect_near`] at γ starts from `main` on an aggregate graph
/// (Leiden, γ at most [`NEAR_FINER_MAX`] times `main`'s) rather than making
/// a fresh run on the whole graph.
pub fn starts_near(main: &Detected, gamma: f64) -> bool {
    main.levels.is_some() && gamma <= NEAR_FINER_MAX * main.gamma
}

/// Another resolution γ of a sweep, near the one `main` ran at (Leiden):
/// Leiden on `g` aggregated by one level of `main`'s final pass, started
/// from `main`'s communities. The level is the deepest with at least
/// [`NEAR_GROUPS_PER_COMMUNITY`] groups per community of `main`, times
/// ⌈γ / `main`'s γ⌉ (a finer resolution gets smaller groups); its groups
/// are refined (well-connected) pieces of `main`'s communities, so a γ near
/// `main`'s finds its partition among unions of them while the sweeps over
/// every node of the lower levels, the bulk of a run, are not repeated. The
/// price: a community at γ cannot split a group. With no such level (a small
/// graph) the run is on `g` itself. The partition is then made connected and
/// held to the size limits on `g`, as [`detect`] does. Louvain, or γ more
/// than [`NEAR_FINER_MAX`] times `main`'s: a fresh run.
///
/// Cost: O(n · levels + m) to compose the groups and aggregate `g`, Leiden
/// on the aggregate graph (n' groups, m' edges: O(m' log n') per pass), and
/// O(m α(n)) to check connectivity and limits on `g`.
pub fn detect_near(
    g: &Csr,
    main: &Detected,
    gamma: f64,
    seed: u64,
    limits: (usize, usize),
    iterations: usize,
) -> Detected {
    let Some(levels) = main.levels.as_ref().filter(|_| starts_near(main, gamma)) else {
        let algorithm = match main.levels {
            Some(_) => Algorithm::Leiden,
            None => Algorithm::Louvain,
        };
        return detect_run(g, algorithm, gamma, seed, limits, iterations, None);
    };
    let communities = main.raw.iter().max().map_or(0, |m| m + 1);
    let finer = (gamma / main.gamma).ceil().clamp(1.0, 1e6) as usize;
    let want = communities
        .saturating_mul(NEAR_GROUPS_PER_COMMUNITY)
        .saturating_mul(finer);
    let (groups, k) = groups_at_least(levels, g.n(), want);
    let coarse = aggregate(g, &groups, k);
    // A coarser resolution starts from `main`'s communities (every group
    // lies in one), a finer one from the groups themselves, as Leiden's own
    // next level would.
    let init: Vec<usize> = if gamma <= main.gamma {
        let mut init = vec![0usize; k];
        for (v, &r) in groups.iter().enumerate() {
            init[r] = main.raw[v];
        }
        init
    } else {
        (0..k).collect()
    };
    let (coarse_labels, _) = leiden_run(&coarse, &init, gamma, seed, iterations);
    drop(coarse);
    let raw: Vec<usize> = groups.iter().map(|&r| coarse_labels[r]).collect();
    Detected::finish(g, raw, None, gamma, limits)
}

#[cfg(test)]
pub(super) mod tests;
