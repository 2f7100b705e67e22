//! The validated pipeline: what every later stage receives.

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::Expr;

use crate::month::Month;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Parquet,
}

/// How a source's rows reach an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// This source is the account table; `id` is its account id column.
    Accounts { id: String },
    /// Each row names its account in `account`.
    Direct { account: String },
    /// Each row names a row of `parent` (by that source's `key`) in `column`.
    Via { parent: String, column: String },
    /// A lookup table (one row per `key`): its `columns` are joined onto the
    /// rows of source `target` where `target.on` equals this source's key
    /// (population by zip code onto the account table, say).
    Lookup {
        target: String,
        on: String,
        columns: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub path: PathBuf,
    /// The same data as a table of the engine that `strata sql`'s query runs
    /// on (`lake.usage`): the query reads it instead of `path`, which strata
    /// still reads for its own route and for the types and date formats.
    pub table: Option<String>,
    pub format: Format,
    pub separator: u8,
    pub link: Link,
    /// A unique key of this source's rows (needed when another source links `via` it).
    pub key: Option<String>,
    /// For duplicate ids/keys: keep the row with the greatest value here (default: the last row in the file).
    pub latest_by: Option<String>,
    /// The date column that windows are measured on.
    pub time: Option<String>,
    /// Further columns to parse as dates.
    pub dates: Vec<String>,
    pub date_format: Option<String>,
    pub filter_text: Option<String>,
    pub filter: Option<Expr>,
    /// Account table only: the date an account became a customer (accounts
    /// that became customers after the as-of month are left out).
    pub since: Option<String>,
    /// Account table only: the date an account stopped being a customer
    /// (accounts gone by the end of the as-of month are left out).
    pub until: Option<String>,
    /// Account table only: the file has many rows per account (orders,
    /// invoices, events) and the accounts are its distinct ids; each
    /// account-level column takes its latest or most common value.
    pub per_account: Option<PerAccount>,
}

/// How an account table with many rows per account gives each account one
/// value of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerAccount {
    /// The value on the account's latest row (by `latest_by`, else the last
    /// in the file).
    Latest,
    /// The account's most common value (ties: the latest).
    Mode,
}

impl Source {
    /// Every date column of this source (the time column first).
    pub fn date_columns(&self) -> Vec<String> {
        let mut out: Vec<String> = self.time.iter().cloned().collect();
        for d in self.dates.iter().chain(&self.since).chain(&self.until) {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }
    pub fn is_lookup(&self) -> bool {
        matches!(self.link, Link::Lookup { .. })
    }
}

/// A window of whole months ending `offset` months before the as-of month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Window {
    pub months: u32,
    pub offset: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Numeric,
    Categorical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    None,
    Log1p,
    Sqrt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    ZScore,
    Robust,
    MinMax,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Missing {
    Median,
    Mean,
    Mode,
    Value(f64),
}

impl Missing {
    /// As written in a pipeline file.
    pub fn describe(self) -> String {
        match self {
            Missing::Median => "\"median\"".into(),
            Missing::Mean => "\"mean\"".into(),
            Missing::Mode => "\"mode\"".into(),
            Missing::Value(v) => format!("{v}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Feature {
    pub name: String,
    /// `None`: a row-level expression over the account table and earlier features.
    pub source: Option<String>,
    pub expr_text: String,
    pub expr: Expr,
    pub window: Option<Window>,
    pub kind: Kind,
    pub transform: Transform,
    pub winsorize: Option<[f64; 2]>,
    pub scale: Scale,
    pub missing: Missing,
    pub indicator: bool,
    pub weight: f64,
    pub group: Option<String>,
    pub max_levels: usize,
    /// false: a helper feature, computed and kept in the frame but not clustered on.
    pub in_matrix: bool,
    pub description: Option<String>,
    /// Readable name for reports (default: the name with spaces).
    pub label: String,
    pub unit: Unit,
    /// Words for a segment that is high / low on this feature ("promoters").
    pub high: Option<String>,
    pub low: Option<String>,
}

/// How a feature's raw values are shown to people.
///
/// ```
/// use strata::config::Unit;
/// assert_eq!(Unit::Usd.format(182_400.0), "$182k");
/// assert_eq!(Unit::Usd.format(999_815.0), "$1.0M");
/// assert_eq!(Unit::Percent.format(0.453), "45%");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Number,
    Usd,
    Percent,
    Months,
    Count,
}

impl Unit {
    /// A value in plain units: $182k, 45%, 14 months, 3.2.
    pub fn format(self, v: f64) -> String {
        if !v.is_finite() {
            return "n/a".into();
        }
        match self {
            Unit::Usd => {
                let a = v.abs();
                let sign = if v < 0.0 { "-" } else { "" };
                if a >= 999_500.0 {
                    format!("{sign}${:.1}M", a / 1e6)
                } else if a >= 1e4 {
                    format!("{sign}${:.0}k", a / 1e3)
                } else if a >= 1e3 {
                    format!("{sign}${:.1}k", a / 1e3)
                } else {
                    format!("{sign}${a:.0}")
                }
            }
            Unit::Percent => format!("{:.0}%", v * 100.0),
            Unit::Months => format!("{v:.0} months"),
            Unit::Count => {
                if v.abs() >= 100.0 || (v - v.round()).abs() < 1e-9 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            }
            Unit::Number => {
                let a = v.abs();
                if a >= 100.0 {
                    format!("{v:.0}")
                } else if a >= 10.0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.2}")
                }
            }
        }
    }
}

/// Where the current tier of each account comes from.
#[derive(Debug, Clone)]
pub enum TierSource {
    /// A categorical feature.
    Feature(String),
    /// A column of the account table that is not a feature: ingest carries it
    /// into the account frame under its own name, as text, beside the
    /// features (never into the matrix).
    Column(String),
    /// Ordered rules over features: first match wins, then the default.
    Rules {
        rules: Vec<(String, String, Expr)>,
        default: String,
    },
}

/// An outcome: a feature never clustered on, whose values say what happened
/// to each account (churned, renewed, expanded; ARR change, NPS next period).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The feature holding it (`matrix = false`).
    pub feature: String,
    pub label: String,
    /// The feature's unit, for medians of a numeric outcome.
    pub unit: Unit,
    pub kind: OutcomeKind,
    /// Which direction is good: "low" for churn, "high" for expansion.
    pub good: Good,
}

/// Binary outcomes are rates (0/1 per account), numeric ones medians.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    Binary,
    Numeric,
}

/// Which direction of an outcome is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Good {
    Low,
    High,
}

/// The business's tiers, highest touch first.
#[derive(Debug, Clone)]
pub struct Tiers {
    pub order: Vec<String>,
    pub source: TierSource,
    /// The feature whose value is "at stake" in an exception (ARR).
    pub value: Option<String>,
    /// Which segmentation's segments exceptions are shown in.
    pub exceptions_from: &'static str,
    /// The false discovery rate of tier exceptions (Benjamini–Hochberg).
    pub fdr: f64,
}

use crate::quality::Severity;

#[derive(Debug, Clone)]
pub struct Check {
    pub source: String,
    pub column: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub allowed: Vec<String>,
    pub severity: Severity,
}

/// Severity of each built-in class of data-quality finding.
#[derive(Debug, Clone)]
pub struct QualityPolicy {
    pub duplicates: Severity,
    pub orphans: Severity,
    pub nulls: Severity,
    pub non_finite: Severity,
    /// A CSV file whose last line has no line break (it may have been cut off).
    pub truncated: Severity,
    pub max_examples: usize,
    /// Share of a source's rows that may fail to link (orphans) before it is an error.
    pub max_orphans: f64,
    /// Share of a source's rows that may be dropped as duplicates before it is an error.
    pub max_duplicates: f64,
    /// Share of accounts whose tier is not in `tiers.order` before it is an error.
    pub max_unknown_tiers: f64,
    /// Share of accounts a feature may be missing for (and imputed) before a warning.
    pub max_imputed: f64,
    /// Share of accounts a windowed feature may be empty for before it is an error.
    pub max_empty_window: f64,
}

impl Default for QualityPolicy {
    fn default() -> Self {
        QualityPolicy {
            duplicates: Severity::Warning,
            orphans: Severity::Warning,
            nulls: Severity::Warning,
            non_finite: Severity::Error,
            truncated: Severity::Error,
            max_examples: 5,
            max_orphans: 0.5,
            max_duplicates: 0.5,
            max_unknown_tiers: 0.1,
            max_imputed: 0.5,
            max_empty_window: 0.95,
        }
    }
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub file: PathBuf,
    /// sha256 of the pipeline file's text.
    pub hash: String,
    /// The pipeline file's text, recorded verbatim in each run's manifest.
    pub text: String,
    /// The as-of month given in the file, if any (the CLI may override it).
    pub as_of: Option<Month>,
    pub seed: u64,
    pub threads: Option<usize>,
    pub output: PathBuf,
    /// CSV files with a UTF-8 byte-order mark, for opening in Excel
    /// (`run.csv = "excel"`); without one by default, as importers want.
    pub excel_csv: bool,
    pub sources: Vec<Source>,
    pub features: Vec<Feature>,
    pub groups: BTreeMap<String, f64>,
    pub checks: Vec<Check>,
    pub quality: QualityPolicy,
    /// k-means, graph, community and stability parameters.
    pub cluster: crate::cluster::ClusterConfig,
    /// The tiers to compare with (None: no comparison stage).
    pub tiers: Option<Tiers>,
    /// What happened to the accounts afterwards (churn, expansion, …), to
    /// judge the segments, the tiers and the exceptions by (`[[outcome]]`).
    pub outcomes: Vec<Outcome>,
    /// How the proposed tier rule is grown (`[rules]`).
    pub rules: RuleSettings,
    /// CSM coverage per tier (`[capacity]`; None: no capacity section).
    pub capacity: Option<CapacitySettings>,
}

/// The proposed tier rule's shape: a decision tree of at most `depth`
/// levels whose every leaf covers at least `min_leaf` of the accounts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RuleSettings {
    pub depth: usize,
    pub min_leaf: f64,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            depth: 3,
            min_leaf: 0.01,
        }
    }
}

/// How many accounts (and how much value) one CSM covers in each tier, in
/// `tiers.order`'s order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacitySettings {
    pub accounts_per_csm: Vec<f64>,
    /// Value (usually ARR) per CSM, when coverage is also planned by value.
    pub value_per_csm: Option<Vec<f64>>,
}

impl Pipeline {
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }
    pub fn account_source(&self) -> &Source {
        self.sources
            .iter()
            .find(|s| matches!(s.link, Link::Accounts { .. }))
            .expect("validated pipeline has an account table")
    }

    /// The pipeline with `{as_of}` in source paths replaced by the month, so one
    /// pipeline file serves monthly data drops (`data/{as_of}/accounts.csv`).
    pub fn for_month(&self, as_of: Month) -> Pipeline {
        let mut p = self.clone();
        let m = as_of.to_string();
        for s in &mut p.sources {
            let text = s.path.to_string_lossy();
            if text.contains("{as_of}") {
                s.path = PathBuf::from(text.replace("{as_of}", &m));
            }
        }
        p
    }
}
