//! The pipeline file as written: serde structs, no validation.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawPipeline {
    pub run: Option<RawRun>,
    #[serde(default)]
    pub sources: BTreeMap<String, RawSource>,
    #[serde(default)]
    pub feature: Vec<RawFeature>,
    #[serde(default)]
    pub groups: BTreeMap<String, f64>,
    #[serde(default)]
    pub check: Vec<RawCheck>,
    pub quality: Option<RawQuality>,
    pub kmeans: Option<RawKMeans>,
    pub graph: Option<RawGraph>,
    pub community: Option<RawCommunity>,
    pub stability: Option<RawStability>,
    pub tiers: Option<RawTiers>,
}
impl RawPipeline {
    pub const KEYS: &'static [&'static str] = &[
        "run",
        "sources",
        "feature",
        "groups",
        "check",
        "quality",
        "kmeans",
        "graph",
        "community",
        "stability",
        "tiers",
    ];
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawKMeans {
    pub k: Option<toml::Value>,
    pub k_range: Option<[usize; 2]>,
    pub restarts: Option<usize>,
    pub max_iter: Option<u64>,
    pub tolerance: Option<f64>,
    pub selection_sample: Option<usize>,
    pub silhouette_sample: Option<usize>,
}
impl RawKMeans {
    pub const KEYS: &'static [&'static str] = &[
        "k",
        "k_range",
        "restarts",
        "max_iter",
        "tolerance",
        "selection_sample",
        "silhouette_sample",
    ];
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawGraph {
    pub neighbors: Option<usize>,
    pub weighting: Option<String>,
    pub exact_below: Option<usize>,
    pub trees: Option<usize>,
    pub max_rounds: Option<usize>,
}
impl RawGraph {
    pub const KEYS: &'static [&'static str] = &[
        "neighbors",
        "weighting",
        "exact_below",
        "trees",
        "max_rounds",
    ];
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawCommunity {
    pub algorithm: Option<String>,
    pub resolution: Option<toml::Value>,
    pub min_size: Option<usize>,
    pub min_share: Option<f64>,
    pub max_communities: Option<usize>,
    pub iterations: Option<usize>,
    pub warm_start: Option<bool>,
}
impl RawCommunity {
    pub const KEYS: &'static [&'static str] = &[
        "algorithm",
        "resolution",
        "min_size",
        "min_share",
        "max_communities",
        "iterations",
        "warm_start",
    ];
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawStability {
    pub runs: Option<usize>,
    pub subsample: Option<f64>,
    pub sample: Option<usize>,
}
impl RawStability {
    pub const KEYS: &'static [&'static str] = &["runs", "subsample", "sample"];
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawRun {
    pub name: Option<String>,
    pub as_of: Option<String>,
    pub seed: Option<u64>,
    pub output: Option<String>,
    pub threads: Option<usize>,
}
impl RawRun {
    pub const KEYS: &'static [&'static str] = &["name", "as_of", "seed", "output", "threads"];
}

#[derive(Debug, Deserialize)]
pub(super) struct RawSource {
    pub path: String,
    pub format: Option<String>,
    pub separator: Option<String>,
    pub id: Option<String>,
    pub account: Option<String>,
    pub via: Option<String>,
    pub link: Option<String>,
    pub key: Option<String>,
    pub latest_by: Option<String>,
    pub time: Option<String>,
    #[serde(default)]
    pub dates: Vec<String>,
    pub date_format: Option<String>,
    pub filter: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub lookup: Option<String>,
    pub on: Option<String>,
    #[serde(default)]
    pub columns: Vec<String>,
}
impl RawSource {
    pub const KEYS: &'static [&'static str] = &[
        "path",
        "format",
        "separator",
        "id",
        "account",
        "via",
        "link",
        "key",
        "latest_by",
        "time",
        "dates",
        "date_format",
        "filter",
        "since",
        "until",
        "lookup",
        "on",
        "columns",
    ];
}

#[derive(Debug, Deserialize)]
pub(super) struct RawFeature {
    pub name: String,
    pub source: Option<String>,
    pub expr: String,
    pub window: Option<u32>,
    pub offset: Option<u32>,
    pub kind: Option<String>,
    pub transform: Option<String>,
    pub winsorize: Option<[f64; 2]>,
    pub scale: Option<String>,
    pub missing: Option<toml::Value>,
    pub indicator: Option<bool>,
    pub weight: Option<f64>,
    pub group: Option<String>,
    pub max_levels: Option<usize>,
    pub matrix: Option<bool>,
    pub description: Option<String>,
    pub label: Option<String>,
    pub unit: Option<String>,
    pub high: Option<String>,
    pub low: Option<String>,
}
impl RawFeature {
    pub const KEYS: &'static [&'static str] = &[
        "name",
        "source",
        "expr",
        "window",
        "offset",
        "kind",
        "transform",
        "winsorize",
        "scale",
        "missing",
        "indicator",
        "weight",
        "group",
        "max_levels",
        "matrix",
        "description",
        "label",
        "unit",
        "high",
        "low",
    ];
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawTiers {
    #[serde(default)]
    pub order: Vec<String>,
    pub column: Option<String>,
    #[serde(default)]
    pub rule: Vec<RawRule>,
    pub default: Option<String>,
    pub value: Option<String>,
    pub exceptions_from: Option<String>,
    pub fdr: Option<f64>,
}
impl RawTiers {
    pub const KEYS: &'static [&'static str] = &[
        "order",
        "column",
        "rule",
        "default",
        "value",
        "exceptions_from",
        "fdr",
    ];
}

#[derive(Debug, Deserialize)]
pub(super) struct RawRule {
    pub tier: String,
    pub when: String,
}
impl RawRule {
    pub const KEYS: &'static [&'static str] = &["tier", "when"];
}

#[derive(Debug, Deserialize)]
pub(super) struct RawCheck {
    pub source: String,
    pub column: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    #[serde(default)]
    pub allowed: Vec<String>,
    pub severity: Option<String>,
}
impl RawCheck {
    pub const KEYS: &'static [&'static str] =
        &["source", "column", "min", "max", "allowed", "severity"];
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct RawQuality {
    pub duplicates: Option<String>,
    pub orphans: Option<String>,
    pub nulls: Option<String>,
    pub non_finite: Option<String>,
    pub truncated: Option<String>,
    pub max_examples: Option<usize>,
    pub max_orphans: Option<f64>,
    pub max_duplicates: Option<f64>,
    pub max_unknown_tiers: Option<f64>,
    pub max_imputed: Option<f64>,
    pub max_empty_window: Option<f64>,
}
impl RawQuality {
    pub const KEYS: &'static [&'static str] = &[
        "duplicates",
        "orphans",
        "nulls",
        "non_finite",
        "truncated",
        "max_examples",
        "max_orphans",
        "max_duplicates",
        "max_unknown_tiers",
        "max_imputed",
        "max_empty_window",
    ];
}
