//! `[kmeans]`, `[graph]`, `[community]`, `[stability]`: the clustering parameters, with the limits that need no data.

use super::raw::*;
use super::*;

pub(super) fn validate(raw: &RawPipeline, problems: &mut Problems) -> ClusterConfig {
    let mut c = ClusterConfig::default();
    if let Some(k) = &raw.kmeans {
        match &k.k {
            None => {}
            Some(toml::Value::String(s)) if s == "auto" => c.kmeans.k = None,
            Some(toml::Value::Integer(v)) if *v >= 1 => c.kmeans.k = Some(*v as usize),
            Some(other) => problems.push(
                "kmeans.k",
                format!("`{other}` is not allowed; use \"auto\" or a whole number >= 1"),
            ),
        }
        if let Some([lo, hi]) = k.k_range {
            if lo < 2 || hi < lo {
                problems.push(
                    "kmeans.k_range",
                    format!(
                        "[{lo}, {hi}] must be two whole numbers 2 <= low <= high, e.g. [2, 10]"
                    ),
                );
            } else if hi > kmeans::MAX_AUTO_K {
                problems.push(
                    "kmeans.k_range",
                    format!(
                        "[{lo}, {hi}]: choosing k fits and scores every k in the range, so the high end is at most {}; for a fixed, larger number of segments set k instead",
                        kmeans::MAX_AUTO_K
                    ),
                );
            }
            c.kmeans.k_min = lo;
            c.kmeans.k_max = hi;
            c.kmeans.k_range_set = true;
        }
        positive(
            problems,
            "kmeans.restarts",
            k.restarts,
            &mut c.kmeans.restarts,
        );
        if let Some(v) = k.max_iter {
            if v == 0 {
                problems.push("kmeans.max_iter", "must be at least 1");
            }
            c.kmeans.max_iter = v;
        }
        if let Some(t) = k.tolerance {
            if !(t > 0.0 && t.is_finite()) {
                problems.push(
                    "kmeans.tolerance",
                    format!("{t} must be a number > 0, e.g. 1e-4"),
                );
            }
            c.kmeans.tolerance = t;
        }
        positive(
            problems,
            "kmeans.selection_sample",
            k.selection_sample,
            &mut c.kmeans.selection_sample,
        );
        positive(
            problems,
            "kmeans.silhouette_sample",
            k.silhouette_sample,
            &mut c.kmeans.silhouette_sample,
        );
    }
    if let Some(g) = &raw.graph {
        positive(problems, "graph.neighbors", g.neighbors, &mut c.graph.k);
        if c.graph.k > knn::MAX_NEIGHBORS {
            problems.push(
                "graph.neighbors",
                format!(
                    "{} is more than {}: each account is linked to this many similar accounts, typically 10 to 30",
                    c.graph.k,
                    knn::MAX_NEIGHBORS
                ),
            );
        }
        c.graph.weighting = choice(
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
            c.graph.exact_below = v;
        }
        positive(problems, "graph.trees", g.trees, &mut c.graph.trees);
        positive(
            problems,
            "graph.max_rounds",
            g.max_rounds,
            &mut c.graph.max_rounds,
        );
    }
    if let Some(m) = &raw.community {
        c.community.algorithm = choice(
            problems,
            "community.algorithm",
            m.algorithm.as_deref(),
            Algorithm::Leiden,
            &[
                ("leiden", Algorithm::Leiden),
                ("louvain", Algorithm::Louvain),
            ],
        );
        let number = |v: &toml::Value| match v {
            toml::Value::Float(f) => Some(*f),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        if let Some(r) = &m.resolution {
            let list: Option<Vec<f64>> = match r {
                toml::Value::Array(a) => a.iter().map(number).collect(),
                v => number(v).map(|x| vec![x]),
            };
            match list {
                Some(l) if !l.is_empty() && l.iter().all(|x| *x > 0.0 && x.is_finite()) => {
                    c.community.resolutions = l
                }
                _ => problems.push(
                    "community.resolution",
                    format!(
                        "`{r}` must be a number > 0 or a list of them, e.g. 1.0 or [0.5, 1.0, 2.0]"
                    ),
                ),
            }
        }
        if let Some(v) = m.min_size {
            c.community.min_size = Some(v);
        }
        if let Some(v) = m.min_share {
            if !(0.0..0.5).contains(&v) {
                problems.push(
                    "community.min_share",
                    format!("{v} must be a share from 0 to 0.5, e.g. 0.0025 (0.25% of accounts)"),
                );
            }
            c.community.min_share = v;
        }
        positive(
            problems,
            "community.max_communities",
            m.max_communities,
            &mut c.community.max_communities,
        );
        positive(
            problems,
            "community.iterations",
            m.iterations,
            &mut c.community.iterations,
        );
        if let Some(w) = m.warm_start {
            c.community.warm_start = w;
        }
    }
    if let Some(s) = &raw.stability {
        if let Some(r) = s.runs {
            c.stability.runs = r;
        }
        if let Some(f) = s.subsample {
            if !(f > 0.0 && f <= 1.0) {
                problems.push(
                    "stability.subsample",
                    format!("{f} must be a share in (0, 1], e.g. 0.8"),
                );
            }
            c.stability.subsample = f;
        }
        positive(
            problems,
            "stability.sample",
            s.sample,
            &mut c.stability.sample,
        );
    }
    c
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dir_with, problems, MINIMAL};

    #[test]
    fn too_many_segments_or_neighbours_are_refused_without_data() {
        let d = dir_with(&["accounts.csv"]);
        let ps = problems(&format!("{MINIMAL}\n[kmeans]\nk_range = [2, 5000]\n"), &d);
        assert!(
            ps.iter()
                .any(|p| p.key == "kmeans.k_range" && p.message.contains("at most 50")),
            "{ps:?}"
        );
        let ps = problems(&format!("{MINIMAL}\n[graph]\nneighbors = 5000\n"), &d);
        assert!(ps.iter().any(|p| p.key == "graph.neighbors"), "{ps:?}");
    }
}
