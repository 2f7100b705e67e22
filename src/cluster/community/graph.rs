//! Weighted undirected graphs in compressed sparse row form, and modularity.
//!
//! Community detection runs on [`Csr`]: for node `i`, its neighbours are
//! `targets[offsets[i]..offsets[i + 1]]` with weights alongside, each undirected
//! edge stored in both directions. Self-loops (which appear when communities are
//! aggregated into nodes) are kept apart in `loops[i]`, counted as `A_ii`, i.e.
//! twice the weight of the undirected loop — the convention under which a node's
//! strength is `k_i = Σ_j A_ij` and the total is `2m = Σ_i k_i`.
//!
//! The account-similarity graph is also offered as a `petgraph` graph
//! ([`Csr::to_petgraph`]) for users of that ecosystem.

use petgraph::graph::UnGraph;

/// A weighted undirected graph in CSR form.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub offsets: Vec<usize>,
    pub targets: Vec<u32>,
    pub weights: Weights,
    /// `A_ii` for each node (twice the undirected loop weight).
    pub loops: Vec<f64>,
}

impl Csr {
    pub fn n(&self) -> usize {
        self.offsets.len() - 1
    }
    /// Number of undirected edges (without loops).
    pub fn edges(&self) -> usize {
        self.targets.len() / 2
    }
    pub fn neighbors(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.offsets[i]..self.offsets[i + 1];
        self.targets[r.clone()]
            .iter()
            .map(|&t| t as usize)
            .zip(self.weights.row(r))
    }
    /// `f(j, w)` for each neighbour `j` of `i` and the edge's weight, in
    /// order: [`Self::neighbors`] for the hot loops, with the weights' form
    /// decided once a node rather than once an entry.
    #[inline(always)]
    pub fn for_each_neighbor(&self, i: usize, mut f: impl FnMut(usize, f64)) {
        let r = self.offsets[i]..self.offsets[i + 1];
        let targets = &self.targets[r.clone()];
        match &self.weights {
            Weights::Plain(w) => {
                for (&j, &w) in targets.iter().zip(&w[r]) {
                    f(j as usize, w);
                }
            }
            Weights::Coded { codes, values } => {
                for (&j, &c) in targets.iter().zip(&codes[r]) {
                    f(j as usize, values[c as usize]);
                }
            }
        }
    }
    /// Node strengths `k_i`.
    pub fn strengths(&self) -> Vec<f64> {
        (0..self.n())
            .map(|i| {
                self.weights
                    .row(self.offsets[i]..self.offsets[i + 1])
                    .sum::<f64>()
                    + self.loops[i]
            })
            .collect()
    }
    /// `2m`.
    pub fn total_weight(&self) -> f64 {
        self.weights.row(0..self.weights.len()).sum::<f64>() + self.loops.iter().sum::<f64>()
    }

    /// Build from undirected weighted edges `(u, v, w)`; duplicates are summed,
    /// `u == v` becomes a loop. Neighbour lists are sorted by target.
    pub fn from_edges(n: usize, edges: &[(u32, u32, f64)]) -> Csr {
        let mut loops = vec![0.0; n];
        let mut deg = vec![0usize; n];
        for &(u, v, _) in edges {
            if u != v {
                deg[u as usize] += 1;
                deg[v as usize] += 1;
            }
        }
        let mut offsets = vec![0usize; n + 1];
        for i in 0..n {
            offsets[i + 1] = offsets[i] + deg[i];
        }
        let mut fill = offsets.clone();
        let mut pairs = vec![(0u32, 0.0f64); offsets[n]];
        for &(u, v, w) in edges {
            if u == v {
                loops[u as usize] += 2.0 * w;
            } else {
                pairs[fill[u as usize]] = (v, w);
                fill[u as usize] += 1;
                pairs[fill[v as usize]] = (u, w);
                fill[v as usize] += 1;
            }
        }
        // Sort each list and merge duplicates.
        let mut targets = Vec::with_capacity(pairs.len());
        let mut weights = Vec::with_capacity(pairs.len());
        let mut new_offsets = vec![0usize; n + 1];
        for i in 0..n {
            let list = &mut pairs[offsets[i]..offsets[i + 1]];
            list.sort_by_key(|p| p.0);
            let mut last: Option<u32> = None;
            for &(t, w) in list.iter() {
                if last == Some(t) {
                    *weights.last_mut().expect("pushed") += w;
                } else {
                    targets.push(t);
                    weights.push(w);
                    last = Some(t);
                }
            }
            new_offsets[i + 1] = targets.len();
        }
        Csr {
            offsets: new_offsets,
            targets,
            weights: Weights::Plain(weights),
            loops,
        }
    }

    /// The graph as a petgraph `UnGraph` (node weight = index, edge weight = w).
    pub fn to_petgraph(&self) -> UnGraph<u32, f64> {
        let mut g = UnGraph::with_capacity(self.n(), self.edges());
        for i in 0..self.n() {
            g.add_node(i as u32);
        }
        for i in 0..self.n() {
            for (j, w) in self.neighbors(i) {
                if i < j {
                    g.add_edge((i as u32).into(), (j as u32).into(), w);
                }
            }
        }
        g
    }

    /// Build from a petgraph `UnGraph` with f64 edge weights.
    pub fn from_petgraph<N>(g: &UnGraph<N, f64>) -> Csr {
        let edges: Vec<(u32, u32, f64)> = g
            .raw_edges()
            .iter()
            .map(|e| {
                (
                    e.source().index() as u32,
                    e.target().index() as u32,
                    e.weight,
                )
            })
            .collect();
        Csr::from_edges(g.node_count(), &edges)
    }
}

/// A graph's edge weights, one for each entry of its `targets`.
///
/// The similarity graph's weights take few distinct values: a Jaccard weight
/// of two lists of k neighbours is one of a few dozen fractions, a binary
/// weight is 1. Those are held as a byte each, an index into the values, an
/// eighth of the memory of one `f64` each (1.7 GB at 10M accounts, 106M
/// edges, against 0.2 GB), read back as the very same `f64`s, so every sum
/// over them, and every result, is the same to the bit. Aggregated graphs'
/// weights are sums, held as they are.
#[derive(Debug, Clone)]
pub enum Weights {
    Plain(Vec<f64>),
    /// `values[codes[e]]` is entry `e`'s weight.
    Coded {
        codes: Vec<u8>,
        values: Box<[f64; 256]>,
    },
}

impl Weights {
    pub fn len(&self) -> usize {
        match self {
            Weights::Plain(w) => w.len(),
            Weights::Coded { codes, .. } => codes.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The weights of entries `r`, in order.
    #[inline]
    pub fn row(&self, r: std::ops::Range<usize>) -> Row<'_> {
        match self {
            Weights::Plain(w) => Row::Plain(w[r].iter()),
            Weights::Coded { codes, values } => Row::Coded(codes[r].iter(), values),
        }
    }
    /// Every weight, in order, as `f64`s.
    pub fn to_vec(&self) -> Vec<f64> {
        self.row(0..self.len()).collect()
    }
    /// The address of entry `at`'s weight (`at` at most the length), for a
    /// prefetch.
    #[inline]
    pub fn address(&self, at: usize) -> *const u8 {
        match self {
            Weights::Plain(w) => w[at..].as_ptr() as *const u8,
            Weights::Coded { codes, .. } => codes[at..].as_ptr(),
        }
    }
}

/// Equal when every weight is equal, however each side holds them.
impl PartialEq for Weights {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.row(0..self.len()).eq(other.row(0..other.len()))
    }
}

/// The weights of a run of entries ([`Weights::row`]).
pub enum Row<'a> {
    Plain(std::slice::Iter<'a, f64>),
    Coded(std::slice::Iter<'a, u8>, &'a [f64; 256]),
}

impl Iterator for Row<'_> {
    type Item = f64;
    #[inline]
    fn next(&mut self) -> Option<f64> {
        match self {
            Row::Plain(w) => w.next().copied(),
            Row::Coded(c, values) => c.next().map(|&c| values[c as usize]),
        }
    }
    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Row::Plain(w) => w.size_hint(),
            Row::Coded(c, _) => c.size_hint(),
        }
    }
}

/// `s` cut into consecutive slices of the given lengths (which sum to its
/// length): one per thread, for writing a graph's rows in parallel.
pub(crate) fn split_by<T>(mut s: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut out = Vec::new();
    for len in lens {
        let (head, tail) = s.split_at_mut(len);
        out.push(head);
        s = tail;
    }
    out
}

/// Modularity with resolution γ (Newman & Girvan 2004; Reichardt & Bornholdt 2006):
/// `Q = 1/2m Σ_c [Σ_in(c) − γ Σ_tot(c)² / 2m]`.
pub fn modularity(g: &Csr, membership: &[usize], gamma: f64) -> f64 {
    let k = membership.iter().max().map_or(0, |m| m + 1);
    let mut inside = vec![0.0; k];
    let mut tot = vec![0.0; k];
    let strengths = g.strengths();
    for i in 0..g.n() {
        let c = membership[i];
        tot[c] += strengths[i];
        inside[c] += g.loops[i];
        for (j, w) in g.neighbors(i) {
            if membership[j] == c {
                inside[c] += w;
            }
        }
    }
    let m2 = g.total_weight();
    if m2 == 0.0 {
        return 0.0;
    }
    (0..k)
        .map(|c| inside[c] - gamma * tot[c] * tot[c] / m2)
        .sum::<f64>()
        / m2
}

/// Split every community into its connected components; returns dense labels,
/// numbered in order of each component's lowest node (as a depth-first search
/// from node 0 upwards would number them).
///
/// A concurrent union-find (each undirected edge inside a community unites its
/// ends, on every thread; a root is only ever linked under a lower root, so
/// every component's root is its lowest node whatever order the unions run
/// in) and one ordered pass that numbers the roots: the labels do not depend
/// on the threads. A depth-first search did this on one thread and jumped
/// across the graph: 2.4–3.9 s per call on the 10M-account graph against
/// 0.6–0.7 s now (two threads), called once for the graph and once per
/// resolution.
///
/// Cost: O(m α(n)) for m edges, in parallel, and O(n).
pub fn split_disconnected(g: &Csr, membership: &[usize]) -> Vec<usize> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    let n = g.n();
    let parent: Vec<AtomicU32> = (0..n as u32).map(AtomicU32::new).collect();
    // The root of x, halving the path on the way (every parent is lower
    // than its child, so any parent seen is still an ancestor).
    let find = |mut x: u32| loop {
        let p = parent[x as usize].load(Relaxed);
        if p == x {
            return x;
        }
        let gp = parent[p as usize].load(Relaxed);
        if gp != p {
            let _ = parent[x as usize].compare_exchange_weak(p, gp, Relaxed, Relaxed);
        }
        x = p;
    };
    const CHUNK: usize = 1 << 14;
    (0..n.div_ceil(CHUNK)).into_par_iter().for_each(|c| {
        for u in c * CHUNK..((c + 1) * CHUNK).min(n) {
            for (v, _) in g.neighbors(u) {
                if v <= u || membership[v] != membership[u] {
                    continue;
                }
                let (mut a, mut b) = (find(u as u32), find(v as u32));
                while a != b {
                    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
                    match parent[hi as usize].compare_exchange(hi, lo, Relaxed, Relaxed) {
                        Ok(_) => break,
                        // `hi` was linked meanwhile: retry from the roots.
                        Err(_) => (a, b) = (find(hi), find(lo)),
                    }
                }
            }
        }
    });
    // Roots in node order: a component's root is its lowest node, so it is
    // numbered before any other node of the component is reached.
    let root: Vec<u32> = (0..n as u32).into_par_iter().map(find).collect();
    drop(parent);
    let mut out = vec![usize::MAX; n];
    let mut next = 0;
    for v in 0..n {
        let r = root[v] as usize;
        out[v] = if r == v {
            next += 1;
            next - 1
        } else {
            out[r]
        };
    }
    out
}

/// Is every community connected?
pub fn all_connected(g: &Csr, membership: &[usize]) -> bool {
    let k = membership.iter().max().map_or(0, |m| m + 1);
    let split = split_disconnected(g, membership);
    split.iter().max().map_or(0, |m| m + 1) == k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_merges_duplicates_and_keeps_loops() {
        let g = Csr::from_edges(3, &[(0, 1, 1.0), (1, 0, 2.0), (1, 2, 1.0), (2, 2, 0.5)]);
        assert_eq!(g.neighbors(0).collect::<Vec<_>>(), vec![(1, 3.0)]);
        assert_eq!(g.loops[2], 1.0);
        assert_eq!(g.total_weight(), 2.0 * 3.0 + 2.0 * 1.0 + 1.0);
        let back = Csr::from_petgraph(&g.to_petgraph());
        assert_eq!(back.targets, g.targets);
    }

    #[test]
    fn modularity_of_two_triangles() {
        // Two triangles joined by one edge: the textbook split has Q = 5/14.
        let e = [
            (0, 1, 1.0),
            (1, 2, 1.0),
            (0, 2, 1.0),
            (3, 4, 1.0),
            (4, 5, 1.0),
            (3, 5, 1.0),
            (2, 3, 1.0),
        ];
        let g = Csr::from_edges(6, &e);
        let q = modularity(&g, &[0, 0, 0, 1, 1, 1], 1.0);
        assert!((q - 5.0 / 14.0).abs() < 1e-12, "{q}");
        assert_eq!(modularity(&g, &[0; 6], 1.0), 0.0);
    }

    /// The same graph with node `order[p]` renumbered `p`.
    fn permuted(g: &Csr, order: &[u32]) -> Csr {
        let n = g.n();
        let mut inv = vec![0u32; n];
        for (p, &v) in order.iter().enumerate() {
            inv[v as usize] = p as u32;
        }
        let mut edges = Vec::with_capacity(g.edges());
        for u in 0..n {
            for (v, w) in g.neighbors(u) {
                if u < v {
                    edges.push((inv[u], inv[v], w));
                }
            }
        }
        let mut out = Csr::from_edges(n, &edges);
        for (p, &v) in order.iter().enumerate() {
            out.loops[p] = g.loops[v as usize];
        }
        out
    }

    #[test]
    fn permutation_keeps_modularity() {
        let e = [
            (0, 1, 1.0),
            (1, 2, 2.0),
            (0, 2, 1.0),
            (3, 4, 1.0),
            (2, 3, 0.5),
        ];
        let g = Csr::from_edges(5, &e);
        let order = [4u32, 2, 0, 3, 1];
        let p = permuted(&g, &order);
        let m = [0, 0, 0, 1, 1];
        let mp: Vec<usize> = order.iter().map(|&v| m[v as usize]).collect();
        assert!((modularity(&g, &m, 1.0) - modularity(&p, &mp, 1.0)).abs() < 1e-12);
        assert_eq!(p.total_weight(), g.total_weight());
    }

    /// The depth-first search [`split_disconnected`] replaced: the labels it gave.
    fn split_by_search(g: &Csr, membership: &[usize]) -> Vec<usize> {
        let mut out = vec![usize::MAX; g.n()];
        let mut next = 0;
        for s in 0..g.n() {
            if out[s] != usize::MAX {
                continue;
            }
            out[s] = next;
            let mut stack = vec![s];
            while let Some(u) = stack.pop() {
                for (v, _) in g.neighbors(u) {
                    if out[v] == usize::MAX && membership[v] == membership[s] {
                        out[v] = next;
                        stack.push(v);
                    }
                }
            }
            next += 1;
        }
        out
    }

    #[test]
    fn split_gives_the_searchs_labels_on_any_threads() {
        // A random sparse graph (many components) with random communities,
        // large enough for several chunks of unions in parallel.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let n = 60_000;
        let edges: Vec<(u32, u32, f64)> = (0..70_000)
            .map(|_| (rng.gen_range(0..n as u32), rng.gen_range(0..n as u32), 1.0))
            .collect();
        let g = Csr::from_edges(n, &edges);
        for communities in [1, 3, 50] {
            let m: Vec<usize> = (0..n).map(|_| rng.gen_range(0..communities)).collect();
            let want = split_by_search(&g, &m);
            assert!(want.iter().max().unwrap() + 1 > communities);
            for threads in [1, 2, 4] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                assert_eq!(
                    pool.install(|| split_disconnected(&g, &m)),
                    want,
                    "{communities} {threads}"
                );
            }
        }
    }

    #[test]
    fn disconnected_communities_are_split() {
        let g = Csr::from_edges(4, &[(0, 1, 1.0), (2, 3, 1.0)]);
        assert!(!all_connected(&g, &[0, 0, 0, 0]));
        assert_eq!(split_disconnected(&g, &[0, 0, 0, 0]), vec![0, 0, 1, 1]);
    }
}
