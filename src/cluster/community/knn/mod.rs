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

use rayon::prelude::*;
use serde::Serialize;

mod distance;
mod exact;
mod nn_descent;
mod rp_tree;
mod weights;

pub use distance::to_f32;
pub use exact::{exact, Deep, RECALL_TARGET};
pub use nn_descent::nn_descent;
pub use weights::graph;

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
    /// Whether the pipeline set `graph.neighbors` (a default is scaled down
    /// on few accounts: [`GraphConfig::for_accounts`]).
    #[serde(skip)]
    pub k_set: bool,
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
            k_set: false,
            weighting: Weighting::Snn,
            exact_below: 20_000,
            trees: 4,
            max_rounds: 12,
            delta: 0.001,
        }
    }
}

/// Accounts per neighbour below which the default neighbour count is
/// scaled down: 15 neighbours from 300 accounts up, one in 20 below (at
/// least [`MIN_SCALED_NEIGHBORS`]), so 99 accounts get 5, not 15% of them.
pub const ACCOUNTS_PER_NEIGHBOR: usize = 20;
pub const MIN_SCALED_NEIGHBORS: usize = 5;

impl GraphConfig {
    /// These settings on `n` accounts: a neighbour count the pipeline did
    /// not set is at most one in [`ACCOUNTS_PER_NEIGHBOR`] accounts.
    pub fn for_accounts(&self, n: usize) -> GraphConfig {
        let mut c = self.clone();
        if !self.k_set {
            c.k = self
                .k
                .min((n / ACCOUNTS_PER_NEIGHBOR).max(MIN_SCALED_NEIGHBORS));
        }
        c
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

/// Account labels from labels of a graph's nodes, node `p` being matrix row
/// `order[p]` (the graph from [`graph`] numbers its nodes in [`Knn::order`]
/// when there is one; without one, node and row are the same).
pub fn to_accounts(order: Option<&[u32]>, node_labels: Vec<usize>) -> Vec<usize> {
    match order {
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

impl Knn {
    /// Account labels from labels of the graph's nodes (see [`to_accounts`]).
    pub fn to_accounts(&self, node_labels: Vec<usize>) -> Vec<usize> {
        to_accounts(self.order.as_deref(), node_labels)
    }

    /// The lists numbered by matrix row (row `order[p]` is node `p`), each
    /// sorted by (distance, row): for comparing with exact search. Graph
    /// building needs no such copy.
    pub fn in_account_order(&self) -> std::borrow::Cow<'_, Knn> {
        let Some(order) = &self.order else {
            return std::borrow::Cow::Borrowed(self);
        };
        let (n, k) = (self.n(), self.k);
        let inv = inverse(order);
        let mut idx = vec![u32::MAX; n * k];
        let mut dist = vec![f32::INFINITY; n * k];
        idx.par_chunks_mut(k)
            .zip(dist.par_chunks_mut(k))
            .enumerate()
            .for_each_init(Vec::new, |r, (row, (ir, dr))| {
                self.row_by_row(order, inv[row] as usize, r);
                for (s, &(dd, j)) in r.iter().enumerate() {
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

    /// Each account's neighbours by matrix row, as [`Knn::in_account_order`]
    /// lists them, without the distances (which the compare stage does not
    /// read): half the memory, taken before community detection so that the
    /// lists by node can be dropped.
    pub fn by_row(&self) -> Neighbours {
        let k = self.k;
        let Some(order) = &self.order else {
            return Neighbours {
                k,
                idx: self.idx.clone(),
            };
        };
        let inv = inverse(order);
        let mut idx = vec![u32::MAX; self.n() * k];
        idx.par_chunks_mut(k)
            .enumerate()
            .for_each_init(Vec::new, |r, (row, ir)| {
                self.row_by_row(order, inv[row] as usize, r);
                for (s, &(_, j)) in r.iter().enumerate() {
                    ir[s] = j;
                }
            });
        Neighbours { k, idx }
    }

    /// Node `node`'s list as (distance, matrix row), sorted, into `r`.
    fn row_by_row(&self, order: &[u32], node: usize, r: &mut Vec<(f32, u32)>) {
        let k = self.k;
        r.clear();
        r.extend(
            (node * k..(node + 1) * k)
                .filter(|&s| self.idx[s] != u32::MAX)
                .map(|s| (self.dist[s], order[self.idx[s] as usize])),
        );
        r.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    }
}

/// Node of each matrix row, from the row of each node.
fn inverse(order: &[u32]) -> Vec<u32> {
    let mut inv = vec![0u32; order.len()];
    for (p, &v) in order.iter().enumerate() {
        inv[v as usize] = p as u32;
    }
    inv
}

#[cfg(test)]
mod tests;
