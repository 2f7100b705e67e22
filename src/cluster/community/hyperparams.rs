//! `[graph]` and `[community]`: the similarity graph's and community
//! detection's settings as written, and checked into a [`GraphConfig`] and a
//! [`CommunityConfig`] (only checked settings can be fitted).

use serde::{Deserialize, Serialize};

use super::knn::{GraphConfig, Weighting, MAX_NEIGHBORS};
use super::Algorithm;
use crate::section;
use crate::settings::{choice, positive, Problems};

section! {
    /// `[graph]` as written.
    #[derive(Debug, Deserialize, Default)]
    pub struct RawGraph {
        pub neighbors: Option<usize>,
        pub weighting: Option<String>,
        pub exact_below: Option<usize>,
        pub trees: Option<usize>,
        pub max_rounds: Option<usize>,
    }
}

section! {
    /// `[community]` as written.
    #[derive(Debug, Deserialize, Default)]
    pub struct RawCommunity {
        pub algorithm: Option<String>,
        pub resolution: Option<toml::Value>,
        pub min_size: Option<usize>,
        pub min_share: Option<f64>,
        pub max_communities: Option<usize>,
        pub iterations: Option<usize>,
        pub warm_start: Option<bool>,
    }
}

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

    /// `[community]` checked (`None`: absent, every default).
    pub fn check(raw: Option<&RawCommunity>, problems: &mut Problems) -> CommunityConfig {
        let mut c = CommunityConfig::default();
        let Some(m) = raw else {
            return c;
        };
        c.algorithm = choice(
            problems,
            "community.algorithm",
            m.algorithm.as_deref(),
            Algorithm::Leiden,
            &[
                ("leiden", Algorithm::Leiden),
                ("louvain", Algorithm::Louvain),
            ],
        );
        if let Some(r) = &m.resolution {
            match resolutions(r) {
                Some(l) => c.resolutions = l,
                None => problems.push(
                    "community.resolution",
                    format!(
                        "`{r}` must be a number > 0 or a list of them, e.g. 1.0 or [0.5, 1.0, 2.0]"
                    ),
                ),
            }
        }
        if let Some(v) = m.min_size {
            c.min_size = Some(v);
        }
        if let Some(v) = m.min_share {
            if !(0.0..0.5).contains(&v) {
                problems.push(
                    "community.min_share",
                    format!("{v} must be a share from 0 to 0.5, e.g. 0.0025 (0.25% of accounts)"),
                );
            }
            c.min_share = v;
        }
        positive(
            problems,
            "community.max_communities",
            m.max_communities,
            &mut c.max_communities,
        );
        positive(
            problems,
            "community.iterations",
            m.iterations,
            &mut c.iterations,
        );
        if let Some(w) = m.warm_start {
            c.warm_start = w;
        }
        c
    }
}

/// `resolution` as a list of numbers > 0 (one number is a list of one).
fn resolutions(r: &toml::Value) -> Option<Vec<f64>> {
    let number = |v: &toml::Value| match v {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    };
    let list: Option<Vec<f64>> = match r {
        toml::Value::Array(a) => a.iter().map(number).collect(),
        v => number(v).map(|x| vec![x]),
    };
    list.filter(|l| !l.is_empty() && l.iter().all(|x| *x > 0.0 && x.is_finite()))
}

impl GraphConfig {
    /// `[graph]` checked (`None`: absent, every default).
    pub fn check(raw: Option<&RawGraph>, problems: &mut Problems) -> GraphConfig {
        let mut c = GraphConfig::default();
        let Some(g) = raw else {
            return c;
        };
        positive(problems, "graph.neighbors", g.neighbors, &mut c.k);
        c.k_set = g.neighbors.is_some();
        if c.k > MAX_NEIGHBORS {
            problems.push(
                "graph.neighbors",
                format!(
                    "{} is more than {MAX_NEIGHBORS}: each account is linked to this many similar accounts, typically 10 to 30",
                    c.k
                ),
            );
        }
        c.weighting = choice(
            problems,
            "graph.weighting",
            g.weighting.as_deref(),
            Weighting::Snn,
            &[
                ("snn", Weighting::Snn),
                ("gaussian", Weighting::Gaussian),
                ("binary", Weighting::Binary),
            ],
        );
        if let Some(v) = g.exact_below {
            c.exact_below = v;
        }
        positive(problems, "graph.trees", g.trees, &mut c.trees);
        positive(
            problems,
            "graph.max_rounds",
            g.max_rounds,
            &mut c.max_rounds,
        );
        c
    }

    /// What these settings cannot do on `n` accounts.
    pub fn problems_for(&self, n: usize) -> Option<(&'static str, String)> {
        (self.k >= n).then(|| {
            (
                "graph.neighbors",
                format!(
                    "{} neighbours per account, but there are only {n} accounts: use fewer than {n}, typically 10 to 30",
                    self.k
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_are_one_number_or_a_list_of_positive_ones() {
        let v = |s: &str| -> toml::Value {
            toml::from_str::<toml::Table>(&format!("r = {s}")).unwrap()["r"].clone()
        };
        assert_eq!(resolutions(&v("1")), Some(vec![1.0]));
        assert_eq!(resolutions(&v("[0.5, 2.0]")), Some(vec![0.5, 2.0]));
        assert_eq!(resolutions(&v("[]")), None);
        assert_eq!(resolutions(&v("[1.0, 0]")), None);
        assert_eq!(resolutions(&v("\"high\"")), None);
    }

    #[test]
    fn graph_and_community_problems_name_their_keys() {
        let mut p = Problems::default();
        let g: RawGraph = toml::from_str("neighbors = 5000\nweighting = \"cosine\"").unwrap();
        GraphConfig::check(Some(&g), &mut p);
        let keys: Vec<&str> = p.0.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["graph.neighbors", "graph.weighting"]);
        let c: RawCommunity = toml::from_str("min_share = 0.7\niterations = 0").unwrap();
        let mut p = Problems::default();
        CommunityConfig::check(Some(&c), &mut p);
        let keys: Vec<&str> = p.0.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["community.min_share", "community.iterations"]);
        assert!(GraphConfig::default().problems_for(10).is_some());
        assert!(GraphConfig::default().problems_for(100).is_none());
    }
}
