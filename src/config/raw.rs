//! The pipeline file as written: serde structs, no validation.

use std::collections::BTreeMap;

use serde::Deserialize;

pub(super) use crate::cluster::community::{RawCommunity, RawGraph};
pub(super) use crate::cluster::kmeans::RawKMeans;
pub(super) use crate::cluster::stability::RawStability;
use crate::section;

section! {
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
        #[serde(default)]
        pub outcome: Vec<RawOutcome>,
        pub rules: Option<RawRules>,
        pub capacity: Option<RawCapacity>,
    }
}

section! {
    #[derive(Debug, Deserialize)]
    pub(super) struct RawRules {
        pub depth: Option<usize>,
        pub min_leaf: Option<f64>,
    }
}

section! {
    #[derive(Debug, Deserialize)]
    pub(super) struct RawCapacity {
        pub accounts_per_csm: Option<BTreeMap<String, f64>>,
        pub value_per_csm: Option<BTreeMap<String, f64>>,
    }
}

section! {
    #[derive(Debug, Deserialize)]
    pub(super) struct RawOutcome {
        pub feature: String,
        pub kind: Option<String>,
        pub good: Option<String>,
        pub label: Option<String>,
    }
}

section! {
    #[derive(Debug, Deserialize, Default)]
    pub(super) struct RawRun {
        pub name: Option<String>,
        pub as_of: Option<String>,
        pub seed: Option<u64>,
        pub output: Option<String>,
        pub threads: Option<usize>,
        pub csv: Option<String>,
    }
}

section! {
    #[derive(Debug, Deserialize)]
    pub(super) struct RawSource {
        pub path: String,
        pub table: Option<String>,
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
        pub per_account: Option<String>,
        pub lookup: Option<String>,
        pub on: Option<String>,
        #[serde(default)]
        pub columns: Vec<String>,
    }
}

section! {
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
}

section! {
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
}

section! {
    #[derive(Debug, Deserialize)]
    pub(super) struct RawRule {
        pub tier: String,
        pub when: String,
    }
}

section! {
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
}

section! {
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
}
