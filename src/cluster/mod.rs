//! Segment discovery: two independent views of the same feature matrix.
//!
//! * **k-means** ([`kmeans`]) partitions accounts into k compact, roughly
//!   spherical groups around centroids — easy to explain ("accounts like this
//!   centroid"), with k chosen from the data when asked.
//! * **Communities** ([`community`]) come from a graph in
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
//!
//! One folder per method, as linfa keeps its algorithms: its settings section
//! and their checks (`hyperparams`), its algorithm files, the [`Method`] the
//! run calls and the details it reports. [`method::REGISTRY`] lists them.

pub mod community;
pub mod kmeans;
pub mod method;
pub mod stability;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use community::knn::GraphConfig;
use community::{CommunityConfig, CommunityDetails};
use kmeans::{KMeansConfig, KMeansDetails};
pub use method::{Method, Methods, Prepared, Shared};
pub use stability::Draw;
use stability::{Stability, StabilityConfig};

/// Everything the cluster stage needs: each built-in method's checked
/// settings, and the stability check's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterConfig {
    pub kmeans: KMeansConfig,
    pub graph: GraphConfig,
    pub community: CommunityConfig,
    pub stability: StabilityConfig,
    /// The checked settings of each method with a section of its own
    /// ([`Method::section`]), by method name; in the manifest when any.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub methods: std::collections::BTreeMap<String, method::Settings>,
}

impl ClusterConfig {
    /// The settings of method `name` (its own section), when they are a `T`.
    pub fn settings<T: std::any::Any>(&self, name: &str) -> Option<&T> {
        self.methods.get(name).and_then(|s| s.get())
    }
}

/// Method-specific details, one variant per built-in method (each method's
/// own type, in its folder), tagged by `kind` in `comparison.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Details {
    KMeans(KMeansDetails),
    Community(CommunityDetails),
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
    pub neighbours: Option<std::sync::Arc<community::knn::Neighbours>>,
    /// Work of the fit that the method's stability runs can reuse (see
    /// [`Method::refit_shared`]): the community method's deep neighbour
    /// lists, when the runs' pool is every account.
    #[serde(skip)]
    pub reuse: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
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
        out.extend(self.kmeans.problems_for(n));
        out.extend(self.graph.problems_for(n));
        out
    }
}
