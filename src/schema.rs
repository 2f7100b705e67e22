//! The run directory's schema: its file names, the column names of its
//! Parquet files and the typed manifest, shared by the stage that writes them
//! and the commands that read them back (`strata report`, `strata history`,
//! next month's run). A leaf module: it depends on nothing of strata's, so
//! the parameter blocks the manifest carries are type parameters (the run
//! writes its own types, a reader picks what it needs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Name of the id column in the per-account frame and every output.
pub const ACCOUNT_ID: &str = "account_id";

/// The files of a run directory.
pub mod file {
    /// Run metadata, headline numbers and every parameter ([`super::Manifest`]).
    pub const MANIFEST: &str = "manifest.json";
    /// Segmentations, comparison with the tiers and history, in full.
    pub const COMPARISON: &str = "comparison.json";
    /// The data-quality report.
    pub const QUALITY: &str = "quality.json";
    /// Raw features and the normalised matrix (`x__` columns), per account.
    pub const FEATURES: &str = "features.parquet";
    /// Each account's segments, tiers and exception.
    pub const ASSIGNMENTS: &str = "assignments.parquet";
    /// One row per segment per method, with its profile.
    pub const SEGMENTS: &str = "segments.parquet";
    /// CRM-ready exports.
    pub const EXCEPTIONS_CSV: &str = "exceptions.csv";
    pub const ASSIGNMENTS_CSV: &str = "assignments.csv";
    /// The analyst's report.
    pub const REPORT_HTML: &str = "report.html";
    pub const REPORT_MD: &str = "report.md";
}

/// Column names of the run's Parquet files.
pub mod column {
    /// `assignments.parquet`: a method's segment ID per account.
    pub fn segment(method: &str) -> String {
        format!("{method}_segment")
    }
    /// `assignments.parquet`: a method's segment name per account.
    pub fn name(method: &str) -> String {
        format!("{method}_name")
    }
    /// `assignments.parquet`: last month's segment ID per account.
    pub fn previous_segment(method: &str) -> String {
        format!("previous_{method}_segment")
    }
    /// `features.parquet`: prefix of the normalised matrix columns.
    pub const MATRIX_PREFIX: &str = "x__";
    /// `segments.parquet`: prefix of each numeric feature's median.
    pub const MEDIAN_PREFIX: &str = "median_";
    /// `segments.parquet`: which method a row's segment belongs to.
    pub const METHOD: &str = "method";
    /// `segments.parquet`: the segment's ID and name.
    pub const SEGMENT: &str = "segment";
    pub const NAME: &str = "name";
    /// `assignments.parquet`: tier columns.
    pub const CURRENT_TIER: &str = "current_tier";
    pub const SUGGESTED_TIER: &str = "suggested_tier";
    pub const EXCEPTION: &str = "exception";
    pub const EXCEPTION_RANK: &str = "exception_rank";
}

/// `manifest.json`. `C`: the resolved cluster parameters; `F`: the matrix
/// columns with their learned transforms. Readers that do not need them
/// leave them as JSON values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest<C = serde_json::Value, F = serde_json::Value> {
    pub strata_version: String,
    /// The pipeline file's path, as given.
    pub pipeline: String,
    pub pipeline_name: String,
    pub pipeline_sha256: String,
    pub as_of: String,
    pub seed: u64,
    pub threads: usize,
    pub accounts: usize,
    pub inputs: Vec<Input>,
    /// Headline numbers, read back by `strata history`.
    pub headline: Headline,
    /// The previous committed run this one was matched to, if any.
    pub previous_as_of: Option<String>,
    /// The next unused segment ID per method (read by next month's run).
    pub next_segment_ids: BTreeMap<String, u32>,
    /// Every parameter of the run: the pipeline file verbatim, the resolved
    /// cluster parameters and the learned feature transforms.
    pub pipeline_text: String,
    pub cluster: C,
    pub features: F,
    /// Wall seconds per stage (the one part that differs between re-runs).
    pub stage_seconds: BTreeMap<String, f64>,
    /// `features` when the run stopped after the feature matrix, else `all`.
    pub until: String,
}

/// The manifest's headline: what `strata history` lists per month.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Headline {
    /// Segments per method.
    pub segments: BTreeMap<String, usize>,
    pub ari_vs_tiers: BTreeMap<String, f64>,
    /// The verdict on agreement with the tiers, per method.
    pub verdict: BTreeMap<String, String>,
    pub exceptions: Option<usize>,
    pub modularity: Option<f64>,
    pub drift_ari: BTreeMap<String, f64>,
    pub new_accounts: Option<u64>,
    pub lost_accounts: Option<u64>,
    pub data_warnings: usize,
}

/// One input file of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    pub source: String,
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub rows_read: usize,
    pub rows_used: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_as_written() {
        let m: Manifest<Vec<u8>, Vec<String>> = Manifest {
            strata_version: "0.1.0".into(),
            pipeline: "p.toml".into(),
            pipeline_name: "p".into(),
            pipeline_sha256: "ab".into(),
            as_of: "2026-11".into(),
            seed: 7,
            threads: 2,
            accounts: 3,
            inputs: vec![Input {
                source: "accounts".into(),
                path: "a.csv".into(),
                sha256: "cd".into(),
                bytes: 10,
                rows_read: 3,
                rows_used: 3,
            }],
            headline: Headline {
                segments: [("kmeans".to_string(), 4)].into_iter().collect(),
                exceptions: Some(2),
                ..Headline::default()
            },
            previous_as_of: Some("2026-10".into()),
            next_segment_ids: [("kmeans".to_string(), 5)].into_iter().collect(),
            pipeline_text: "[run]".into(),
            cluster: vec![1, 2],
            features: vec!["arr".into()],
            stage_seconds: BTreeMap::new(),
            until: "all".into(),
        };
        let text = serde_json::to_string(&m).unwrap();
        let back: Manifest<Vec<u8>, Vec<String>> = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        // A reader that leaves the parameter blocks as JSON reads it too.
        let loose: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(loose.headline.segments["kmeans"], 4);
        assert_eq!(loose.cluster, serde_json::json!([1, 2]));
    }

    #[test]
    fn column_names_follow_the_method() {
        assert_eq!(column::segment("kmeans"), "kmeans_segment");
        assert_eq!(column::name("community"), "community_name");
        assert_eq!(
            column::previous_segment("kmeans"),
            "previous_kmeans_segment"
        );
    }
}
