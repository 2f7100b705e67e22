//! Segment discovery: two independent views of the same feature matrix.
//!
//! * **k-means** ([`kmeans`]) partitions accounts into k compact, roughly
//!   spherical groups around centroids — easy to explain ("accounts like this
//!   centroid"), with k chosen from the data when asked.
//! * **Communities** ([`knn`], [`graph`], [`community`]) come from a graph in
//!   which each account is linked to its most similar accounts; Louvain or Leiden
//!   then find groups that are more densely linked inside than chance. They need
//!   no k and follow the shape of the data, at the price of more, smaller groups.
//!
//! Where the two agree the segments are solid; where they differ the cross-map
//! (compare stage) shows which communities specialise which k-means segment.
//! [`stability`] measures how much each segment can be trusted.
//!
//! Each method's result is one typed [`Segmentation`] carried to the next stage
//! and written into the run's outputs, with its parameters and seed beside it.

pub mod community;
pub mod graph;
pub mod kmeans;
pub mod knn;
pub mod lloyd;
pub mod method;
pub mod stability;

use std::borrow::Cow;
use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use community::Algorithm;
use kmeans::{KMeansConfig, KScore};
use knn::GraphConfig;
pub use method::{Method, Methods};
use stability::{Stability, StabilityConfig};

/// Community-detection parameters.
#[derive(Debug, Clone, Serialize)]
pub struct CommunityConfig {
    pub algorithm: Algorithm,
    /// The resolutions to run; the first one's communities are the
    /// segmentation. With Leiden the others start from the first one's
    /// partition and run one pass (they are reported, not used).
    pub resolutions: Vec<f64>,
    /// Smallest community kept (smaller ones merge into their most-connected
    /// neighbour); None: `min_share` of the accounts, at least 10.
    pub min_size: Option<usize>,
    /// With `min_size` None: the smallest community as a share of accounts.
    pub min_share: f64,
    /// At most this many communities: the smallest merge until there are.
    pub max_communities: usize,
    /// Leiden: passes from the previous result, stopping early when modularity stops improving.
    pub iterations: usize,
    /// Leiden: start from the previous month's communities when there is a
    /// previous run (keeps communities stable month over month).
    pub warm_start: bool,
}

impl Default for CommunityConfig {
    fn default() -> Self {
        CommunityConfig {
            algorithm: Algorithm::Leiden,
            resolutions: vec![1.0],
            min_size: None,
            min_share: 0.0025,
            max_communities: 40,
            iterations: 2,
            warm_start: true,
        }
    }
}

impl CommunityConfig {
    /// (smallest community, most communities) on `n` accounts: a CS team can
    /// staff a bounded number of segments of actionable size at any scale.
    pub fn size_limits(&self, n: usize) -> (usize, usize) {
        let min = self
            .min_size
            .unwrap_or_else(|| ((self.min_share * n as f64).ceil() as usize).max(10));
        (min, self.max_communities)
    }
}

/// Everything the cluster stage needs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterConfig {
    pub kmeans: KMeansConfig,
    pub graph: GraphConfig,
    pub community: CommunityConfig,
    pub stability: StabilityConfig,
}

/// One γ of a resolution sweep.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ResolutionScore {
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub resolution: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub modularity: f64,
    pub communities: usize,
    pub merged_small: usize,
}

/// Statistics of the similarity graph.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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

/// Method-specific details.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Details {
    KMeans {
        #[serde(deserialize_with = "crate::schema::real::one")]
        inertia: f64,
        chosen_by: String,
        k_scores: Vec<KScore>,
        /// Centroids in matrix units, one row per segment.
        #[serde(deserialize_with = "crate::schema::real::rows")]
        centroids: Vec<Vec<f64>>,
        /// Seconds spent choosing k (in the manifest's timings, not here).
        #[serde(skip)]
        choose_seconds: f64,
    },
    Community {
        algorithm: Algorithm,
        #[serde(deserialize_with = "crate::schema::real::one")]
        resolution: f64,
        #[serde(deserialize_with = "crate::schema::real::one")]
        modularity: f64,
        merged_small: usize,
        sweep: Vec<ResolutionScore>,
        graph: GraphStats,
        /// Seconds for community detection over all resolutions.
        #[serde(skip)]
        detect_seconds: f64,
        /// Started from the previous month's communities (tried whenever
        /// there is a previous run; kept when its modularity is within 1% of a
        /// fresh run's).
        warm_start: bool,
    },
    /// A method with nothing of its own to show beyond its settings and
    /// scores, by name (a library user's own method, say).
    Other {
        #[serde(deserialize_with = "crate::schema::real::map")]
        values: std::collections::BTreeMap<String, f64>,
    },
}

/// One method's segmentation of the accounts.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Segmentation {
    /// The method's name ([`Method::name`]).
    pub method: Cow<'static, str>,
    /// Segment per account (row order of the feature matrix), 0 = largest.
    #[serde(skip)]
    pub labels: Vec<usize>,
    /// Stable segment ID per label (see [`crate::history`]): IDs carry over
    /// from the previous month's run; 1, 2, … (largest first) on a first run.
    #[serde(rename = "segment_ids")]
    pub ids: Vec<u32>,
    pub sizes: Vec<usize>,
    pub seed: u64,
    /// Wall time; kept out of `comparison.json` (which must be byte-identical
    /// across re-runs) and recorded in the manifest instead.
    #[serde(skip)]
    pub seconds: f64,
    pub details: Details,
    pub stability: Option<Stability>,
    /// Each account's nearest neighbours (row order), when the method built
    /// them: the compare stage reads the tiers around each account from them.
    #[serde(skip)]
    pub neighbours: Option<std::sync::Arc<knn::Neighbours>>,
}

impl Segmentation {
    pub fn k(&self) -> usize {
        self.sizes.len()
    }
}

/// Accounts per label.
pub fn sizes(labels: &[usize]) -> Vec<usize> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut s = vec![0; k];
    for &l in labels {
        s[l] += 1;
    }
    s
}

/// IDs 1, 2, … in label order: a first run's IDs, before any history.
pub fn first_ids(labels: &[usize]) -> Vec<u32> {
    (1..=sizes(labels).len() as u32).collect()
}

/// Fewest accounts strata segments: below this no segment is worth a CS team's
/// time, and the neighbour graph has nothing to link.
pub const MIN_ACCOUNTS: usize = 20;

impl ClusterConfig {
    /// What this configuration cannot do on `n` accounts, as (pipeline key,
    /// message) pairs. `strata validate` and `strata run` both check it once
    /// the accounts are counted, so they accept the same pipelines; a default
    /// k range is narrowed to the data instead (see [`kmeans::run`]).
    pub fn problems_for(&self, n: usize) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if n < MIN_ACCOUNTS {
            out.push((
                "sources",
                format!("the account table has {n} account(s); strata needs at least {MIN_ACCOUNTS} to find segments"),
            ));
            return out;
        }
        let most = n / kmeans::MIN_ACCOUNTS_PER_SEGMENT;
        let per = kmeans::MIN_ACCOUNTS_PER_SEGMENT;
        match self.kmeans.k {
            Some(k) if k > most => out.push((
                "kmeans.k",
                format!("k = {k} segments for {n} accounts: at most {most} (at least {per} accounts per segment on average)"),
            )),
            Some(_) => {}
            None if self.kmeans.k_range_set && self.kmeans.k_max > most => out.push((
                "kmeans.k_range",
                format!(
                    "[{}, {}] for {n} accounts: the high end can be at most {most} (at least {per} accounts per segment on average)",
                    self.kmeans.k_min, self.kmeans.k_max
                ),
            )),
            None if self.kmeans.k_min > most => out.push((
                "kmeans.k_range",
                format!(
                    "the low end {} is more than {most} segments for {n} accounts (at least {per} accounts per segment on average)",
                    self.kmeans.k_min
                ),
            )),
            None => {}
        }
        if self.graph.k >= n {
            out.push((
                "graph.neighbors",
                format!(
                    "{} neighbours per account, but there are only {n} accounts: use fewer than {n}, typically 10 to 30",
                    self.graph.k
                ),
            ));
        }
        out
    }
}

/// Run k-means on the feature matrix `x` (accounts × columns).
pub fn run_kmeans(
    x: ndarray::ArrayView2<f64>,
    cfg: &KMeansConfig,
    seed: u64,
) -> Result<Segmentation> {
    let t = Instant::now();
    let r = kmeans::run(x, cfg, seed)?;
    Ok(Segmentation {
        method: "kmeans".into(),
        sizes: sizes(&r.labels),
        ids: first_ids(&r.labels),
        labels: r.labels,
        seed,
        seconds: t.elapsed().as_secs_f64(),
        details: Details::KMeans {
            inertia: r.inertia,
            chosen_by: r.chosen_by,
            k_scores: r.scores,
            centroids: r.centroids.outer_iter().map(|c| c.to_vec()).collect(),
            choose_seconds: r.choose_seconds,
        },
        stability: None,
        neighbours: None,
    })
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
    let t_knn = t.elapsed().as_secs_f64();
    crate::memory::trace("knn", t);
    let t = Instant::now();
    let g = knn::graph(&neighbours, cfg.weighting);
    crate::memory::trace("graph weights", t);
    (g, neighbours, [t_knn, t.elapsed().as_secs_f64()])
}

/// Run community detection on the similarity graph. `warm`: last month's
/// community per account (None for new accounts) to start Leiden from, so
/// communities that still fit keep their members (see [`crate::history`]).
pub fn run_communities(
    x: ndarray::ArrayView2<f64>,
    cfg: &ClusterConfig,
    seed: u64,
    warm: Option<&[Option<u32>]>,
) -> Result<Segmentation> {
    let t = Instant::now();
    let (g, neighbours, [knn_seconds, weight_seconds]) = build_graph(x, &cfg.graph, seed);
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
        connected_components: components,
        knn_seconds,
        weight_seconds,
    };
    let t_detect = Instant::now();
    // The graph's nodes are numbered in the kNN stage's locality order when
    // there is one (community detection walks neighbours of neighbours, and
    // that order keeps the walk in cache); labels are mapped back to accounts.
    let order = neighbours.order.as_ref();
    // Starting partition: last month's community, new accounts on their own.
    let init: Option<Vec<usize>> = warm.map(|w| {
        let top = w.iter().flatten().max().map_or(0, |&m| m as usize + 1);
        let start = |v: usize| w[v].map_or(top + v, |c| c as usize);
        match order {
            Some(o) => o.iter().map(|&v| start(v as usize)).collect(),
            None => (0..w.len()).map(start).collect(),
        }
    });
    let mut sweep = Vec::new();
    let mut chosen: Option<(Vec<usize>, f64, f64, usize)> = None;
    let mut warm_used = false;
    let limits = cfg.community.size_limits(g.n());
    // Returns (canonical labels in account order, modularity) of a detection.
    let score = |d: &community::Detected, gamma: f64| -> (Vec<usize>, f64) {
        let q = graph::modularity(&g, &d.labels, gamma);
        let (labels, _) = kmeans::canonical(&neighbours.to_accounts(d.labels.clone()));
        (labels, q)
    };
    // The first resolution's detection: the others of the sweep start from
    // it on a smaller graph (`community::detect_near`; they are reported, not
    // used).
    let mut main: Option<community::Detected> = None;
    for &gamma in &cfg.community.resolutions {
        let t_gamma = Instant::now();
        let (d, (labels, q)) = match &main {
            Some(main) => {
                let d =
                    community::detect_near(&g, main, gamma, seed, limits, cfg.community.iterations);
                let s = score(&d, gamma);
                (d, s)
            }
            None => {
                let run = |init: Option<&[usize]>| {
                    let d = community::detect_run(
                        &g,
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
                // A warm start is kept only when it fits this month's graph
                // about as well as a fresh run (modularity within 1%):
                // stability must not cost segment quality.
                match init.as_deref() {
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
                }
            }
        };
        crate::memory::trace(
            &format!("community detection at resolution {gamma}"),
            t_gamma,
        );
        sweep.push(ResolutionScore {
            resolution: gamma,
            modularity: q,
            communities: labels.iter().max().map_or(0, |m| m + 1),
            merged_small: d.merged,
        });
        if chosen.is_none() {
            chosen = Some((labels, gamma, q, d.merged));
            main = Some(d);
        }
    }
    let (labels, resolution, modularity, merged_small) =
        chosen.expect("at least one resolution (validated)");
    let neighbours_by_row = {
        let by_row = neighbours.in_account_order();
        knn::Neighbours {
            k: by_row.k,
            idx: by_row.idx.clone(),
        }
    };
    let detect_seconds = t_detect.elapsed().as_secs_f64();
    Ok(Segmentation {
        method: "community".into(),
        sizes: sizes(&labels),
        ids: first_ids(&labels),
        labels,
        seed,
        seconds: t.elapsed().as_secs_f64(),
        details: Details::Community {
            algorithm: cfg.community.algorithm,
            resolution,
            modularity,
            merged_small,
            sweep,
            graph: stats,
            detect_seconds,
            warm_start: warm_used,
        },
        stability: None,
        neighbours: Some(std::sync::Arc::new(neighbours_by_row)),
    })
}
