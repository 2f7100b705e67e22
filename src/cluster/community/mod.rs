//! Communities: groups of accounts more densely linked to each other than
//! chance in a graph where each account is linked to its most similar
//! accounts. They need no k and follow the shape of the data, at the price of
//! more, smaller groups.
//!
//! The folder: `hyperparams` (the `[graph]` and `[community]` sections and
//! their checks), [`knn`] (the nearest neighbours and the weighted graph, one
//! file per topic), [`graph`] (the graph and modularity), `detect` (Louvain
//! and Leiden), and here the method as the run sees it ([`Communities`]) with
//! what it reports ([`CommunityDetails`]).

mod detect;
pub mod graph;
mod hyperparams;
pub mod knn;

use std::borrow::Cow;
use std::time::Instant;

use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::kmeans::canonical;
use super::method::{Prepared, Shared};
use super::stability::Draw;
use super::{first_ids, sizes, ClusterConfig, Details, Method, Segmentation};
use crate::error::Result;
use crate::schema::Headline;
pub use detect::*;
pub use hyperparams::{CommunityConfig, RawCommunity, RawGraph};
use knn::GraphConfig;

/// Communities of the similarity graph (see [`knn`], [`detect`]).
#[derive(Debug, Clone, Copy)]
pub struct Communities;

impl Method for Communities {
    fn name(&self) -> &'static str {
        "community"
    }
    fn label(&self) -> &'static str {
        "communities"
    }
    fn noun(&self) -> &'static str {
        "communities"
    }
    fn member(&self) -> &'static str {
        "Community"
    }
    fn timing_key(&self) -> &'static str {
        "communities"
    }
    fn wants_previous(&self, cfg: &ClusterConfig) -> bool {
        cfg.community.warm_start
    }
    fn preparation(&self) -> Option<&'static str> {
        Some("similarity graph")
    }
    fn prepare(&self, x: ArrayView2<f64>, cfg: &ClusterConfig, seed: u64) -> Result<Prepared> {
        let made = similarity_graph(x, cfg, seed);
        Ok(Prepared {
            summary: made.summary(),
            value: Some(Box::new(made)),
        })
    }
    fn fit_prepared(
        &self,
        x: ArrayView2<f64>,
        cfg: &ClusterConfig,
        seed: u64,
        previous: Option<&[Option<u32>]>,
        prepared: Prepared,
    ) -> Result<Segmentation> {
        match prepared.take::<SimilarityGraph>() {
            Some(made) => Ok(detect_on(made, cfg, seed, previous)),
            None => self.fit(x, cfg, seed, previous),
        }
    }
    fn fit(
        &self,
        x: ArrayView2<f64>,
        cfg: &ClusterConfig,
        seed: u64,
        previous: Option<&[Option<u32>]>,
    ) -> Result<Segmentation> {
        segment(x, cfg, seed, previous)
    }
    /// The pool's exact neighbour lists, deep enough that each run's lists
    /// are found in them (when the runs would search exactly); the fit's own
    /// when the pool is every account ([`deep_for_stability`]).
    fn refit_shared(
        &self,
        pool: ArrayView2<f64>,
        per_run: usize,
        fitted: &Segmentation,
        cfg: &ClusterConfig,
    ) -> Shared {
        let g = cfg.graph.for_accounts(per_run);
        if per_run >= g.exact_below {
            return None;
        }
        let made = fitted.reuse.clone().filter(|r| {
            r.downcast_ref::<knn::Deep>()
                .is_some_and(|d| d.n() == pool.nrows())
        });
        made.or_else(|| Some(std::sync::Arc::new(knn::Deep::new(pool, g.k))))
    }
    fn refit(
        &self,
        draw: Draw<'_>,
        shared: &Shared,
        _fitted: &Segmentation,
        cfg: &ClusterConfig,
        seed: u64,
    ) -> Result<Vec<usize>> {
        let xs = draw.x;
        let graph_cfg = cfg.graph.for_accounts(xs.nrows());
        let deep = shared.as_ref().and_then(|s| s.downcast_ref::<knn::Deep>());
        let (g, neighbours) = match deep {
            Some(deep) => {
                let neighbours = deep.of(draw.in_pool, graph_cfg.k);
                (knn::graph(&neighbours, graph_cfg.weighting), neighbours)
            }
            None => {
                let (g, neighbours, _) = build_graph(xs, &graph_cfg, seed);
                (g, neighbours)
            }
        };
        let (labels, _) = detect(
            &g,
            cfg.community.algorithm,
            cfg.community.resolutions[0],
            seed,
            cfg.community.size_limits(g.n()),
            cfg.community.iterations,
        );
        Ok(neighbours.to_accounts(labels))
    }
    fn describe(&self, s: &Segmentation) -> String {
        match &s.details {
            Details::Community(CommunityDetails {
                algorithm,
                resolution,
                modularity,
                merged_small,
                graph,
                ..
            }) => format!(
                "{algorithm:?} communities: {} (γ = {resolution}, modularity {modularity:.4}, {merged_small} small merged; graph {} nodes, {} edges, {} neighbours each{}, {} kNN)",
                s.k(),
                graph.nodes,
                graph.edges,
                graph.neighbors,
                graph.scaled_from.map_or(String::new(), |k| format!(
                    " (the default {k} scaled to {} accounts)",
                    graph.nodes
                )),
                graph.knn_label()
            ),
            _ => format!("communities: {}", s.k()),
        }
    }
    fn stage_seconds(&self, s: &Segmentation) -> Vec<(&'static str, f64)> {
        let mut out = vec![(self.timing_key(), s.seconds)];
        if let Details::Community(d) = &s.details {
            out.push(("knn", d.graph.knn_seconds));
            out.push(("graph_weights", d.graph.weight_seconds));
            out.push(("community_detection", d.detect_seconds));
        }
        out
    }
    fn headline(&self, s: &Segmentation, h: &mut Headline) {
        if let Details::Community(d) = &s.details {
            h.modularity = Some(d.modularity);
        }
    }
}

/// What community detection reports beyond its labels (`comparison.json`'s details).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommunityDetails {
    pub algorithm: Algorithm,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub resolution: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub modularity: f64,
    pub merged_small: usize,
    pub sweep: Vec<ResolutionScore>,
    pub graph: GraphStats,
    /// Seconds for community detection over all resolutions.
    #[serde(skip)]
    pub detect_seconds: f64,
    /// Started from the previous month's communities (tried whenever
    /// there is a previous run; kept when its modularity is within 1% of a
    /// fresh run's).
    pub warm_start: bool,
}

/// One γ of a resolution sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolutionScore {
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub resolution: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub modularity: f64,
    pub communities: usize,
    pub merged_small: usize,
}

/// Statistics of the similarity graph.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphStats {
    pub nodes: usize,
    pub edges: usize,
    pub neighbors: usize,
    pub knn_method: Cow<'static, str>,
    pub knn_rounds: usize,
    /// NN-descent's recall on sampled accounts ([`knn::Knn::recall`]; None
    /// for exact search, and in runs written before it was measured).
    #[serde(default)]
    pub knn_recall: Option<f64>,
    pub weighting: knn::Weighting,
    /// The default neighbour count, when it was scaled down to few accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled_from: Option<usize>,
    pub connected_components: usize,
    /// Seconds to find the neighbours and to build the weighted graph.
    #[serde(skip)]
    pub knn_seconds: f64,
    #[serde(skip)]
    pub weight_seconds: f64,
}

impl GraphStats {
    /// How the neighbours were found, for people: "exact", or
    /// "nn-descent (recall 0.991 on 200 sampled accounts)".
    pub fn knn_label(&self) -> String {
        match self.knn_recall {
            Some(r) => format!("{} (recall {r:.3} on sampled accounts)", self.knn_method),
            None => self.knn_method.to_string(),
        }
    }
}

/// Build the similarity graph of a matrix; also returns the seconds spent on
/// the neighbours and on the weighted graph. The graph's nodes are numbered in
/// the neighbours' locality order when they have one: map node labels back to
/// rows with [`knn::Knn::to_accounts`].
pub fn build_graph(
    x: ndarray::ArrayView2<f64>,
    cfg: &GraphConfig,
    seed: u64,
) -> (graph::Csr, knn::Knn, [f64; 2]) {
    let (n, d) = x.dim();
    let t = Instant::now();
    let xf = knn::to_f32(x);
    // The kNN takes the copy: NN-descent builds its first tree in it.
    let neighbours = knn::knn(xf, n, d, cfg, seed);
    crate::memory::trace("knn", t);
    weigh(neighbours, cfg, t.elapsed().as_secs_f64())
}

/// The weighted graph of `neighbours` (found in `t_knn` seconds), as
/// [`build_graph`] returns it.
fn weigh(neighbours: knn::Knn, cfg: &GraphConfig, t_knn: f64) -> (graph::Csr, knn::Knn, [f64; 2]) {
    let t = Instant::now();
    let g = knn::graph(&neighbours, cfg.weighting);
    crate::memory::trace("graph weights", t);
    (g, neighbours, [t_knn, t.elapsed().as_secs_f64()])
}

/// The stability runs' deep neighbour lists of every account, when their
/// pool is every account and both they and the fit search exactly: the fit's
/// lists are then read from them ([`knn::Deep::of`]: the exact search's lists
/// to the bit) rather than searched a second time, and the runs reuse them.
fn deep_for_stability(
    x: ArrayView2<f64>,
    cfg: &ClusterConfig,
    graph_cfg: &GraphConfig,
) -> Option<knn::Deep> {
    let n = x.nrows();
    let per_run = cfg.stability.per_run(n);
    let runs = cfg.graph.for_accounts(per_run);
    (cfg.stability.pool_is_all(n) && n < graph_cfg.exact_below && per_run < runs.exact_below)
        .then(|| knn::Deep::new(x, runs.k))
}

/// Run community detection on the similarity graph. `warm`: last month's
/// community per account (None for new accounts) to start Leiden from, so
/// communities that still fit keep their members (see [`crate::history`]).
pub fn segment(
    x: ArrayView2<f64>,
    cfg: &ClusterConfig,
    seed: u64,
    warm: Option<&[Option<u32>]>,
) -> Result<Segmentation> {
    Ok(detect_on(similarity_graph(x, cfg, seed), cfg, seed, warm))
}

/// The similarity graph of the accounts, with what the fit keeps of its
/// making: [`segment`]'s first part, on every core (the kNN and the weights).
pub struct SimilarityGraph {
    g: graph::Csr,
    neighbours: knn::Knn,
    stats: GraphStats,
    deep: Option<knn::Deep>,
    seconds: f64,
}

impl SimilarityGraph {
    /// "1000000 accounts, 10750802 edges": the progress line.
    fn summary(&self) -> String {
        format!("{} accounts, {} edges", self.g.n(), self.g.edges())
    }
}

/// [`segment`]'s first part: the graph.
pub fn similarity_graph(x: ArrayView2<f64>, cfg: &ClusterConfig, seed: u64) -> SimilarityGraph {
    let t = Instant::now();
    let graph_cfg = cfg.graph.for_accounts(x.nrows());
    let deep = deep_for_stability(x, cfg, &graph_cfg);
    let (g, neighbours, [knn_seconds, weight_seconds]) = match &deep {
        Some(deep) => {
            let all: Vec<usize> = (0..x.nrows()).collect();
            let neighbours = deep.of(&all, graph_cfg.k);
            crate::memory::trace("knn (from the deep lists)", t);
            weigh(neighbours, &graph_cfg, t.elapsed().as_secs_f64())
        }
        None => build_graph(x, &graph_cfg, seed),
    };
    let components = graph::split_disconnected(&g, &vec![0; g.n()])
        .iter()
        .max()
        .map_or(0, |c| c + 1);
    let stats = GraphStats {
        nodes: g.n(),
        edges: g.edges(),
        neighbors: neighbours.k,
        knn_method: neighbours.method.into(),
        knn_rounds: neighbours.rounds,
        knn_recall: neighbours.recall,
        weighting: cfg.graph.weighting,
        scaled_from: (graph_cfg.k != cfg.graph.k).then_some(cfg.graph.k),
        connected_components: components,
        knn_seconds,
        weight_seconds,
    };
    SimilarityGraph {
        g,
        neighbours,
        stats,
        deep,
        seconds: t.elapsed().as_secs_f64(),
    }
}

/// [`segment`]'s second part: communities of the graph (Leiden's local
/// moves and refinement run on one core).
fn detect_on(
    made: SimilarityGraph,
    cfg: &ClusterConfig,
    seed: u64,
    warm: Option<&[Option<u32>]>,
) -> Segmentation {
    let SimilarityGraph {
        g,
        neighbours,
        stats,
        deep,
        seconds: graph_seconds,
    } = made;
    let t_detect = Instant::now();
    // The compare stage's lists by row, taken now: community detection
    // needs only the order of the nodes, so the lists by node (and their
    // distances) are dropped before it: 1.2 GB at 10M accounts, where the
    // lists by row take 0.6.
    let neighbours_by_row = neighbours.by_row();
    let mut neighbours = neighbours;
    let order = neighbours.order.take();
    drop(neighbours);
    let found = sweep(&g, order.as_deref(), cfg, seed, warm);
    let detect_seconds = t_detect.elapsed().as_secs_f64();
    let labels = found.labels;
    Segmentation {
        method: "community".into(),
        sizes: sizes(&labels),
        ids: first_ids(&labels),
        labels,
        seed,
        seconds: graph_seconds + t_detect.elapsed().as_secs_f64(),
        details: Details::Community(CommunityDetails {
            algorithm: cfg.community.algorithm,
            resolution: found.resolution,
            modularity: found.modularity,
            merged_small: found.merged_small,
            sweep: found.sweep,
            graph: stats,
            detect_seconds,
            warm_start: found.warm_used,
        }),
        stability: None,
        neighbours: Some(std::sync::Arc::new(neighbours_by_row)),
        reuse: deep
            .map(|d| std::sync::Arc::new(d) as std::sync::Arc<dyn std::any::Any + Send + Sync>),
    }
}

/// The communities of the first resolution (labels in account order) and
/// the whole sweep.
struct Found {
    labels: Vec<usize>,
    resolution: f64,
    modularity: f64,
    merged_small: usize,
    sweep: Vec<ResolutionScore>,
    warm_used: bool,
}

/// Community detection at every resolution of `cfg.community`: the first
/// one's communities are the segmentation; the others start from it on a
/// smaller graph ([`detect_near`]; they are reported, not used).
fn sweep(
    g: &graph::Csr,
    order: Option<&[u32]>,
    cfg: &ClusterConfig,
    seed: u64,
    warm: Option<&[Option<u32>]>,
) -> Found {
    let init = warm.map(|w| start_partition(w, order));
    let mut warm_used = false;
    let limits = cfg.community.size_limits(g.n());
    // Returns (canonical labels in account order, modularity) of a detection.
    let score = |d: &Detected, gamma: f64| -> (Vec<usize>, f64) {
        let q = graph::modularity(g, &d.labels, gamma);
        let (labels, _) = canonical(&knn::to_accounts(order, d.labels.clone()));
        (labels, q)
    };
    let (&gamma, others) = cfg
        .community
        .resolutions
        .split_first()
        .expect("at least one resolution (validated)");
    // The first resolution's detection: its communities are the segmentation.
    let t_gamma = Instant::now();
    let run = |init: Option<&[usize]>| {
        let d = detect_run(
            g,
            cfg.community.algorithm,
            gamma,
            seed,
            limits,
            cfg.community.iterations,
            init,
        );
        let s = score(&d, gamma);
        (d, s)
    };
    let cold = run(None);
    // A warm start is kept only when it fits this month's graph about as
    // well as a fresh run (modularity within 1%): stability must not cost
    // segment quality.
    let (main, (labels, q)) = match init.as_deref() {
        Some(init) if cfg.community.algorithm == Algorithm::Leiden => {
            let warm = run(Some(init));
            if warm.1 .1 >= cold.1 .1 - 0.01 * cold.1 .1.abs() {
                warm_used = true;
                warm
            } else {
                cold
            }
        }
        _ => cold,
    };
    let traced = |gamma: f64, t: Instant| {
        crate::memory::trace(&format!("community detection at resolution {gamma}"), t)
    };
    traced(gamma, t_gamma);
    let score_of = |gamma: f64, q: f64, labels: &[usize], d: &Detected| ResolutionScore {
        resolution: gamma,
        modularity: q,
        communities: labels.iter().max().map_or(0, |m| m + 1),
        merged_small: d.merged,
    };
    let mut sweep = vec![score_of(gamma, q, &labels, &main)];
    // The sweep's other resolutions each start from the main detection on a
    // smaller graph (`detect_near`; they are reported, not used). Those are
    // run side by side: each reads only `g`, `main` and the run's seed, so
    // its result does not depend on the others or on the thread count. By
    // then the main detection, and at 10M accounts k-means beside it, are
    // done and a core would sit idle: there the two took 10.7 and 10.8 s
    // side by side, against 6.4 + 6.8 s one after the other in a run of the
    // old code in an hour as fast (docs/PERFORMANCE.md). A resolution far
    // from the main one (or any, with Louvain) is a fresh run on the whole
    // graph; those run one at a time, as two would hold two working sets of
    // the largest graph at once.
    let one = |gamma: f64| {
        let t = Instant::now();
        let d = detect_near(g, &main, gamma, seed, limits, cfg.community.iterations);
        let (labels, q) = score(&d, gamma);
        traced(gamma, t);
        score_of(gamma, q, &labels, &d)
    };
    let mut scored: Vec<Option<ResolutionScore>> = others.iter().map(|_| None).collect();
    scored
        .par_iter_mut()
        .zip(others)
        .filter(|(_, &gamma)| starts_near(&main, gamma))
        .for_each(|(slot, &gamma)| *slot = Some(one(gamma)));
    for (slot, &gamma) in scored.iter_mut().zip(others) {
        if slot.is_none() {
            *slot = Some(one(gamma));
        }
    }
    sweep.extend(scored.into_iter().flatten());
    Found {
        labels,
        resolution: gamma,
        modularity: q,
        merged_small: main.merged,
        sweep,
        warm_used,
    }
}

/// The partition a warm start begins from, by graph node: last month's
/// community, new accounts on their own. The graph's nodes are numbered in
/// the kNN stage's locality order (`order`) when there is one (community
/// detection walks neighbours of neighbours, and that order keeps the walk
/// in cache); labels are mapped back to accounts.
fn start_partition(w: &[Option<u32>], order: Option<&[u32]>) -> Vec<usize> {
    let top = w.iter().flatten().max().map_or(0, |&m| m as usize + 1);
    let start = |v: usize| w[v].map_or(top + v, |c| c as usize);
    match order {
        Some(o) => o.iter().map(|&v| start(v as usize)).collect(),
        None => (0..w.len()).map(start).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect::tests::nested_planted;

    #[test]
    fn each_resolution_of_the_sweep_is_its_own_run_from_the_main_one_on_any_thread_count() {
        // The extra resolutions near the main one run side by side, a far
        // one (and every one with Louvain) alone: each must be what it is
        // computed alone from the main detection, listed in the pipeline's
        // order, whatever the number of threads. Sub-blocks inside blocks
        // give coarser and finer structure than γ = 1 picks, so the
        // resolutions differ.
        let g = nested_planted(6, 4, 50, 3);
        for algorithm in [Algorithm::Leiden, Algorithm::Louvain] {
            let mut cfg = ClusterConfig::default();
            cfg.community.algorithm = algorithm;
            cfg.community.resolutions = vec![1.0, 0.5, 5.0, 2.0, 0.25];
            let seed = 7;
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a pool");
                pool.install(|| sweep(&g, None, &cfg, seed, None))
            };
            let c = &cfg.community;
            let limits = c.size_limits(g.n());
            let main = detect_run(&g, algorithm, 1.0, seed, limits, c.iterations, None);
            let near: Vec<bool> = c.resolutions[1..]
                .iter()
                .map(|&r| starts_near(&main, r))
                .collect();
            let leiden = algorithm == Algorithm::Leiden;
            assert_eq!(near, [leiden, false, leiden, leiden], "{algorithm:?}");
            let one = run(1);
            assert_eq!(one.labels, canonical(&main.labels).0);
            let resolutions: Vec<f64> = one.sweep.iter().map(|s| s.resolution).collect();
            assert_eq!(resolutions, c.resolutions);
            let mut counts = Vec::new();
            for s in &one.sweep[1..] {
                let d = detect_near(&g, &main, s.resolution, seed, limits, c.iterations);
                let q = graph::modularity(&g, &d.labels, s.resolution);
                assert_eq!(s.modularity.to_bits(), q.to_bits(), "γ = {}", s.resolution);
                assert_eq!(s.communities, d.labels.iter().max().map_or(0, |m| m + 1));
                assert_eq!(s.merged_small, d.merged);
                counts.push(s.communities);
            }
            assert!(counts.windows(2).any(|w| w[0] != w[1]), "{counts:?}");
            for threads in [2, 4] {
                let other = run(threads);
                assert_eq!(other.labels, one.labels, "{threads} threads");
                for (a, b) in other.sweep.iter().zip(&one.sweep) {
                    assert_eq!(a.resolution.to_bits(), b.resolution.to_bits());
                    assert_eq!(a.modularity.to_bits(), b.modularity.to_bits());
                    assert_eq!(
                        (a.communities, a.merged_small),
                        (b.communities, b.merged_small)
                    );
                }
            }
        }
    }
}
