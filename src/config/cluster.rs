//! `[kmeans]`, `[graph]`, `[community]`, `[stability]`: each checked by its
//! own method's folder (`cluster/kmeans/hyperparams.rs`, …), gathered here.

use super::raw::*;
use crate::cluster::community::knn::GraphConfig;
use crate::cluster::community::CommunityConfig;
use crate::cluster::kmeans::KMeansConfig;
use crate::cluster::stability::StabilityConfig;
use crate::cluster::ClusterConfig;
use crate::settings::Problems;

pub(super) fn validate(raw: &RawPipeline, problems: &mut Problems) -> ClusterConfig {
    ClusterConfig {
        kmeans: KMeansConfig::check(raw.kmeans.as_ref(), problems),
        graph: GraphConfig::check(raw.graph.as_ref(), problems),
        community: CommunityConfig::check(raw.community.as_ref(), problems),
        stability: StabilityConfig::check(raw.stability.as_ref(), problems),
        methods: Default::default(),
    }
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
