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
    /// Accounts flagged last month and no longer.
    pub const RESOLVED_CSV: &str = "resolved.csv";
    /// The analyst's report.
    pub const REPORT_HTML: &str = "report.html";
    /// The proposed tier rule as a `[tiers]` section, and as SQL.
    pub const TIER_RULES_TOML: &str = "tier_rules.toml";
    pub const TIER_RULES_SQL: &str = "tier_rules.sql";
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
    /// The tier the proposed rule gives (when it is useful).
    pub const RULE_TIER: &str = "rule_tier";
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
    /// The segment-history table's file that holds this month's rows, so a
    /// later run can tell whether the table is up to date with this month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_history_file: Option<String>,
    /// Every parameter of the run: the pipeline file verbatim, the resolved
    /// cluster parameters and the learned feature transforms.
    pub pipeline_text: String,
    pub cluster: C,
    pub features: F,
    /// Wall seconds per stage (the one part that differs between re-runs).
    pub stage_seconds: BTreeMap<String, f64>,
    /// `features` when the run stopped after the feature matrix, else `all`.
    pub until: String,
    /// The route the features came by: `sources` (strata's own ingestion)
    /// or `feature table <path>` (an engine's output, `strata run --features`).
    #[serde(default = "sources_route")]
    pub features_from: String,
}

fn sources_route() -> String {
    "sources".into()
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
    /// Each outcome's verdict in a sentence, by outcome label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outcomes: BTreeMap<String, String>,
    /// Last month's flagged accounts followed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followed_up: Option<FollowedUp>,
}

/// Last month's flagged accounts one month on, against the unflagged
/// accounts of the same tiers.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct FollowedUp {
    pub flagged: u64,
    pub left: u64,
    /// Moved to the suggested tier (CS acted).
    pub acted: u64,
    pub unflagged: u64,
    pub unflagged_left: u64,
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

/// `comparison.json`: the segmentations, their comparison with the tiers and
/// the history, as the run wrote them. `C`: the resolved cluster parameters;
/// `S`: the segmentations, `M`: the comparison, `H`: the history (the run
/// writes references to its own stage types, `strata report` reads the same
/// types back; a reader that does not need a block leaves it as
/// [`serde::de::IgnoredAny`] or a JSON value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComparisonFile<C, S, M, H, D> {
    pub as_of: String,
    pub config: C,
    pub segmentations: S,
    pub comparison: M,
    pub history: H,
    /// What the decide stage adds: the proposed rule, the segments as
    /// thresholds, the staffing table ([`crate::decide::Decision`]).
    #[serde(default)]
    pub decision: D,
}

/// JSON has no NaN: serde_json writes a non-finite number as `null`. The
/// readers of the run's files take that `null` back as NaN, through these
/// (`#[serde(deserialize_with = "crate::schema::real::one")]` and friends).
pub mod real {
    use serde::{Deserialize, Deserializer};

    fn nan(v: Option<f64>) -> f64 {
        v.unwrap_or(f64::NAN)
    }
    /// One number.
    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Option::<f64>::deserialize(d).map(nan)
    }
    /// A list of numbers.
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Option<f64>>::deserialize(d).map(|v| v.into_iter().map(nan).collect())
    }
    /// A list of lists of numbers (rows).
    pub fn rows<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        Vec::<Vec<Option<f64>>>::deserialize(d).map(|v| {
            v.into_iter()
                .map(|r| r.into_iter().map(nan).collect())
                .collect()
        })
    }
    /// Named numbers (`[["arr", 1.5], …]`).
    pub fn named<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64)>, D::Error> {
        Vec::<(String, Option<f64>)>::deserialize(d)
            .map(|v| v.into_iter().map(|(k, x)| (k, nan(x))).collect())
    }
    /// Numbers paired with an index (`[[0, 0.9], …]`).
    pub fn indexed<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(usize, f64)>, D::Error> {
        Vec::<(usize, Option<f64>)>::deserialize(d)
            .map(|v| v.into_iter().map(|(k, x)| (k, nan(x))).collect())
    }
    /// Numbers under two names (`[["industry", "SaaS", 0.4], …]`).
    pub fn levels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String, f64)>, D::Error> {
        Vec::<(String, String, Option<f64>)>::deserialize(d)
            .map(|v| v.into_iter().map(|(a, b, x)| (a, b, nan(x))).collect())
    }
    /// Numbers by name (`{"arr": 1.5, …}`).
    pub fn map<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<std::collections::BTreeMap<String, f64>, D::Error> {
        std::collections::BTreeMap::<String, Option<f64>>::deserialize(d)
            .map(|v| v.into_iter().map(|(k, x)| (k, nan(x))).collect())
    }
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
            segment_history_file: None,
            pipeline_text: "[run]".into(),
            cluster: vec![1, 2],
            features: vec!["arr".into()],
            stage_seconds: BTreeMap::new(),
            until: "all".into(),
            features_from: "sources".into(),
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
    fn a_non_finite_number_reads_back_as_nan() {
        #[derive(Serialize, Deserialize)]
        struct T {
            #[serde(deserialize_with = "real::one")]
            a: f64,
            #[serde(deserialize_with = "real::list")]
            b: Vec<f64>,
            #[serde(deserialize_with = "real::named")]
            c: Vec<(String, f64)>,
        }
        let text = serde_json::to_string(&T {
            a: f64::NAN,
            b: vec![1.5, f64::INFINITY],
            c: vec![("x".into(), f64::NAN)],
        })
        .unwrap();
        assert_eq!(text, r#"{"a":null,"b":[1.5,null],"c":[["x",null]]}"#);
        let back: T = serde_json::from_str(&text).unwrap();
        assert!(back.a.is_nan() && back.b[0] == 1.5 && back.b[1].is_nan() && back.c[0].1.is_nan());
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
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
