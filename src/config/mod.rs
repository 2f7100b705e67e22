//! Pipeline files: TOML in, a validated [`Pipeline`] out.
//!
//! A pipeline file describes *the user's* data, not ours: which files hold the
//! accounts and their usage, survey and revenue history, which column links each
//! table to an account (directly or through another table), and how each
//! per-account feature is computed from them as a Polars SQL expression. The file
//! is parsed once, every problem in it is collected (unknown keys with a
//! suggestion, missing files, impossible values, expressions that do not parse),
//! and the result is a [`Pipeline`] whose fields later stages can trust without
//! checking again.
//!
//! Relative paths in a pipeline file are resolved from the folder that holds the
//! file, so a pipeline runs the same from any working directory.

mod raw;
mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use types::*;

use crate::cluster::community::Algorithm;
use crate::cluster::knn::{self, Weighting};
use crate::cluster::{kmeans, ClusterConfig};
use crate::error::{Error, Result};
use raw::*;

/// One problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `sources.usage.time` or `feature[3].scale`.
    pub key: String,
    pub message: String,
}

/// All problems found in a pipeline file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigProblems {
    pub file: PathBuf,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pipeline file {} has {} problem(s):",
            self.file.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            if p.key.is_empty() {
                writeln!(f, "  - {}", p.message)?;
            } else {
                writeln!(f, "  - {}: {}", p.key, p.message)?;
            }
        }
        write!(
            f,
            "See README.md, section \"Pipeline file reference\", for every key and its allowed values."
        )
    }
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }
}

/// `base/rel` with `x/..` pairs removed, so messages show `data/sample/usage.csv`
/// rather than `pipelines/../data/sample/usage.csv`. Purely lexical.
fn resolve(base: &Path, rel: &str) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// Read, parse and validate a pipeline file.
pub fn load(path: &Path) -> Result<Pipeline> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Config(ConfigProblems {
                file: path.to_path_buf(),
                problems: vec![ConfigProblem {
                    key: String::new(),
                    message: "the pipeline file does not exist (check the path; examples are in pipelines/)".into(),
                }],
            })
        } else {
            Error::io("reading pipeline file", path, e)
        }
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, path, &base)
}

/// Parse and validate pipeline text; `base` is the folder relative paths start from.
pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Pipeline> {
    let fail = |problems: Vec<ConfigProblem>| {
        Error::Config(ConfigProblems {
            file: file.to_path_buf(),
            problems,
        })
    };
    let mut problems = Problems::default();
    let de = toml::Deserializer::new(text);
    let mut unknown = Vec::new();
    let raw: RawPipeline = match serde_ignored::deserialize(de, |p| unknown.push(p.to_string())) {
        Ok(r) => r,
        Err(e) => {
            return Err(fail(vec![ConfigProblem {
                key: String::new(),
                message: format!("not valid: {}", e.to_string().trim_end()),
            }]))
        }
    };
    for key in unknown {
        problems.push(key.clone(), unknown_key_message(&key));
    }
    let pipeline = validate(raw, text, file, base, &mut problems);
    if problems.0.is_empty() {
        Ok(pipeline.expect("validate returns a pipeline when there are no problems"))
    } else {
        Err(fail(problems.0))
    }
}

fn unknown_key_message(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    let last = parts.last().copied().unwrap_or("");
    let allowed: &[&str] = match parts.as_slice() {
        [_] => RawPipeline::KEYS,
        ["run", _] => RawRun::KEYS,
        ["sources", _, _] => RawSource::KEYS,
        ["feature", _, _] => RawFeature::KEYS,
        ["check", _, _] => RawCheck::KEYS,
        ["quality", _] => RawQuality::KEYS,
        ["kmeans", _] => RawKMeans::KEYS,
        ["graph", _] => RawGraph::KEYS,
        ["community", _] => RawCommunity::KEYS,
        ["stability", _] => RawStability::KEYS,
        ["tiers", _] => RawTiers::KEYS,
        ["tiers", "rule", _, _] => RawRule::KEYS,
        _ => &[],
    };
    let mut msg = "unknown key".to_string();
    if let Some(best) = allowed
        .iter()
        .map(|k| (strsim::levenshtein(k, last), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
    {
        msg.push_str(&format!("; did you mean `{}`?", best.1));
    }
    if !allowed.is_empty() {
        msg.push_str(&format!(" Allowed here: {}", allowed.join(", ")));
    }
    msg
}

fn choice<T: Copy>(
    problems: &mut Problems,
    key: &str,
    value: Option<&str>,
    default: T,
    options: &[(&str, T)],
) -> T {
    match value {
        None => default,
        Some(v) => match options.iter().find(|(name, _)| *name == v) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                problems.push(
                    key,
                    format!("`{v}` is not allowed; use one of: {}", names.join(", ")),
                );
                default
            }
        },
    }
}

fn validate(
    mut raw: RawPipeline,
    text: &str,
    file: &Path,
    base: &Path,
    problems: &mut Problems,
) -> Option<Pipeline> {
    let hash = format!("{:x}", Sha256::digest(text.as_bytes()));

    // --- run -----------------------------------------------------------------
    let run = raw.run.take().unwrap_or_default();
    let as_of = match run.as_of.as_deref() {
        Some(s) => match Month::parse(s) {
            Some(m) => Some(m),
            None => {
                problems.push(
                    "run.as_of",
                    format!("`{s}` is not a month; write it as YYYY-MM, e.g. \"2026-10\""),
                );
                None
            }
        },
        None => None,
    };
    if run.threads == Some(0) {
        problems.push(
            "run.threads",
            "must be at least 1 (leave it out to use every core)",
        );
    }
    let name = run.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into())
    });
    let output = resolve(base, run.output.as_deref().unwrap_or("out"));

    // --- sources ---------------------------------------------------------------
    if raw.sources.is_empty() {
        problems.push("sources", "no sources declared; declare at least the account table, e.g. [sources.accounts] with path and id");
    }
    let mut sources = Vec::new();
    for (sname, s) in &raw.sources {
        let key = |k: &str| format!("sources.{sname}.{k}");
        let path = resolve(base, &s.path);
        let templated = s.path.contains("{as_of}");
        if templated {
            // Checked at ingestion, once the month is known.
        } else if !path.exists() {
            problems.push(
                key("path"),
                format!(
                    "file not found: {} (relative paths start from the pipeline file's folder {})",
                    path.display(),
                    resolve(base, ".").display()
                ),
            );
        } else if path.is_dir() {
            problems.push(
                key("path"),
                format!(
                    "{} is a folder, not a file: point `path` at the CSV or Parquet file inside it",
                    path.display()
                ),
            );
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let format = match s.format.as_deref().unwrap_or(ext.as_str()) {
            "csv" | "txt" | "tsv" => Format::Csv,
            "parquet" | "pq" => Format::Parquet,
            // A folder has no extension; that problem is reported above.
            _ if s.format.is_none() && !templated && path.is_dir() => Format::Csv,
            other => {
                problems.push(
                    key("format"),
                    format!("cannot tell the format of `{}` (`{other}`); set format = \"csv\" or \"parquet\"", s.path),
                );
                Format::Csv
            }
        };
        let separator = match s.separator.as_deref() {
            None if ext == "tsv" => b'\t',
            None => b',',
            Some("\\t") | Some("\t") => b'\t',
            Some(sep) if sep.len() == 1 => sep.as_bytes()[0],
            Some(sep) => {
                problems.push(
                    key("separator"),
                    format!("`{sep}` must be a single character such as \",\", \";\" or \"\\t\""),
                );
                b','
            }
        };
        let link = match (&s.id, &s.account, &s.via) {
            _ if s.lookup.is_some() => {
                if s.id.is_some() || s.account.is_some() || s.via.is_some() {
                    problems.push(
                        sname.clone(),
                        "a `lookup` source is joined by its `key`: leave out `id`, `account` and `via`",
                    );
                }
                if s.key.is_none() {
                    problems.push(key("key"), "a `lookup` source needs `key`: its column that `on` matches (one row per key)");
                }
                if s.on.is_none() {
                    problems.push(key("on"), format!("a `lookup` source needs `on`: the column of source `{}` that matches this source's key", s.lookup.as_deref().unwrap_or("")));
                }
                if s.columns.is_empty() {
                    problems.push(
                        key("columns"),
                        "list the columns this lookup provides, e.g. columns = [\"population\"]",
                    );
                }
                Link::Lookup {
                    target: s.lookup.clone().unwrap_or_default(),
                    on: s.on.clone().unwrap_or_default(),
                    columns: s.columns.clone(),
                }
            }
            (Some(id), None, None) => Link::Accounts { id: id.clone() },
            (None, Some(a), None) => Link::Direct { account: a.clone() },
            (None, None, Some(via)) => match &s.link {
                Some(l) => Link::Via {
                    parent: via.clone(),
                    column: l.clone(),
                },
                None => {
                    problems.push(key("link"), format!("`via = \"{via}\"` needs `link`: the column of this source that matches the `key` of {via}"));
                    Link::Direct {
                        account: String::new(),
                    }
                }
            },
            (None, None, None) => {
                problems.push(
                    sname.clone(),
                    "says nothing about how its rows reach an account: set `id` (this is the account table), `account` (the column with the account id) or `via` + `link` (through another source)",
                );
                Link::Direct {
                    account: String::new(),
                }
            }
            _ => {
                problems.push(sname.clone(), "set only one of `id`, `account` and `via`");
                Link::Direct {
                    account: String::new(),
                }
            }
        };
        if s.link.is_some() && s.via.is_none() {
            problems.push(key("link"), "`link` only makes sense together with `via`");
        }
        if s.lookup.is_none() && (s.on.is_some() || !s.columns.is_empty()) {
            problems.push(
                key("on"),
                "`on` and `columns` only make sense together with `lookup`",
            );
        }
        let is_accounts = matches!(link, Link::Accounts { .. });
        if !is_accounts {
            for (k, v) in [("since", &s.since), ("until", &s.until)] {
                if v.is_some() {
                    problems.push(key(k), format!("`{k}` belongs on the account table (the source with `id`): it says when an account was a customer"));
                }
            }
        }
        if is_accounts && s.time.is_some() {
            problems.push(key("time"), "the account table has no `time`: windows are measured on the rows of other sources. To say when an account became (or stopped being) a customer, use `since` (and `until`); other dates go in `dates`");
        }
        let filter = s
            .filter
            .as_ref()
            .and_then(|f| parse_expr(problems, &key("filter"), f));
        sources.push(Source {
            name: sname.clone(),
            path,
            format,
            separator,
            link,
            key: s.key.clone(),
            latest_by: s.latest_by.clone(),
            time: s.time.clone(),
            dates: s.dates.clone(),
            date_format: s.date_format.clone(),
            filter_text: s.filter.clone(),
            filter,
            since: s.since.clone(),
            until: s.until.clone(),
        });
    }
    let account_sources: Vec<&Source> = sources
        .iter()
        .filter(|s| matches!(s.link, Link::Accounts { .. }))
        .collect();
    if account_sources.len() > 1 {
        let names: Vec<&str> = account_sources.iter().map(|s| s.name.as_str()).collect();
        problems.push(
            "sources",
            format!(
                "only one source may be the account table (have `id`); found {}",
                names.join(", ")
            ),
        );
    } else if account_sources.is_empty() && !raw.sources.is_empty() {
        problems.push(
            "sources",
            "no account table: give the source with one row per account `id = \"<its id column>\"`",
        );
    }
    let names: BTreeSet<&str> = raw.sources.keys().map(String::as_str).collect();
    for s in &sources {
        if let Link::Via { parent, .. } = &s.link {
            match raw.sources.get(parent) {
                None => problems.push(
                    format!("sources.{}.via", s.name),
                    format!("no source named `{parent}`; declared: {}", names.iter().copied().collect::<Vec<_>>().join(", ")),
                ),
                Some(p) if p.key.is_none() && p.id.is_none() => problems.push(
                    format!("sources.{}.via", s.name),
                    format!("source `{parent}` has no `key`: set `key` there to the column that `{}` links to", s.name),
                ),
                _ => {}
            }
        }
    }
    for s in &sources {
        if let Link::Lookup {
            target, columns, ..
        } = &s.link
        {
            match sources.iter().find(|t| &t.name == target) {
                None => problems.push(
                    format!("sources.{}.lookup", s.name),
                    format!("no source named `{target}`; declared: {}", names.iter().copied().collect::<Vec<_>>().join(", ")),
                ),
                Some(t) if t.is_lookup() => problems.push(
                    format!("sources.{}.lookup", s.name),
                    format!("`{target}` is itself a lookup; a lookup joins onto the account table or a source linked to it"),
                ),
                Some(_) => {}
            }
            for c in columns {
                if let Some(other) = sources.iter().find(|o| {
                    o.name != s.name
                        && matches!(&o.link, Link::Lookup { target: t2, columns: c2, .. } if t2 == target && c2.contains(c))
                }) {
                    if s.name < other.name {
                        problems.push(
                            format!("sources.{}.columns", s.name),
                            format!("`{c}` is also provided to `{target}` by lookup `{}`", other.name),
                        );
                    }
                }
            }
        }
        if let Link::Via { parent, .. } = &s.link {
            if sources.iter().any(|p| &p.name == parent && p.is_lookup()) {
                problems.push(
                    format!("sources.{}.via", s.name),
                    format!("`{parent}` is a lookup; link `via` the source it is joined onto"),
                );
            }
        }
    }
    // A `via` chain must end at the account table (no cycles).
    for s in &sources {
        let mut seen = BTreeSet::new();
        let mut cur = s;
        while let Link::Via { parent, .. } = &cur.link {
            if !seen.insert(cur.name.clone()) {
                problems.push(
                    format!("sources.{}.via", s.name),
                    "the `via` chain loops back on itself",
                );
                break;
            }
            match sources.iter().find(|p| &p.name == parent) {
                Some(p) => cur = p,
                None => break,
            }
        }
    }

    // --- features --------------------------------------------------------------
    let mut features = Vec::new();
    let mut seen = BTreeMap::new();
    if raw.feature.is_empty() {
        problems.push(
            "feature",
            "no features declared; add [[feature]] tables (see pipelines/sample.toml)",
        );
    }
    for (i, f) in raw.feature.iter().enumerate() {
        let key = |k: &str| format!("feature[{i}].{k}");
        let fname = f.name.clone();
        if fname == crate::ingest::ACCOUNT_ID {
            problems.push(
                key("name"),
                "`account_id` is reserved for the id column of the outputs; choose another name",
            );
        }
        if fname.is_empty() || fname.starts_with("__") || fname.contains(['.', '"', '`']) {
            problems.push(key("name"), format!("`{fname}` is not a usable name: use letters, digits and _ (not starting with __)"));
        }
        if let Some(prev) = seen.insert(fname.clone(), i) {
            problems.push(
                key("name"),
                format!("`{fname}` is already the name of feature[{prev}]"),
            );
        }
        let source = match &f.source {
            None => None,
            Some(sn) => match sources.iter().find(|s| &s.name == sn) {
                Some(s) if s.is_lookup() => {
                    let target = match &s.link {
                        Link::Lookup { target, .. } => target.as_str(),
                        _ => "",
                    };
                    problems.push(key("source"), format!("`{sn}` is a lookup: its columns are columns of `{target}`, so aggregate over `{target}` (or, for the account table, leave `source` out)"));
                    None
                }
                Some(s) => {
                    if f.window.is_some() && s.time.is_none() {
                        problems.push(key("window"), format!("source `{sn}` has no `time` column, so a window cannot be applied; set sources.{sn}.time"));
                    }
                    Some(sn.clone())
                }
                None => {
                    problems.push(
                        key("source"),
                        format!(
                            "no source named `{sn}`; declared: {}",
                            names.iter().copied().collect::<Vec<_>>().join(", ")
                        ),
                    );
                    None
                }
            },
        };
        if f.offset.is_some() && f.window.is_none() {
            problems.push(key("offset"), "`offset` shifts a window: set `window` too");
        }
        if f.window == Some(0) {
            problems.push(key("window"), "must be at least 1 month");
        }
        let expr = parse_expr(problems, &key("expr"), &f.expr);
        let kind = choice(
            problems,
            &key("kind"),
            f.kind.as_deref(),
            Kind::Numeric,
            &[
                ("numeric", Kind::Numeric),
                ("categorical", Kind::Categorical),
            ],
        );
        let transform = choice(
            problems,
            &key("transform"),
            f.transform.as_deref(),
            Transform::None,
            &[
                ("none", Transform::None),
                ("log1p", Transform::Log1p),
                ("sqrt", Transform::Sqrt),
            ],
        );
        let scale = choice(
            problems,
            &key("scale"),
            f.scale.as_deref(),
            Scale::ZScore,
            &[
                ("zscore", Scale::ZScore),
                ("robust", Scale::Robust),
                ("minmax", Scale::MinMax),
                ("none", Scale::None),
            ],
        );
        let missing = match &f.missing {
            None => Missing::Median,
            Some(toml::Value::String(s)) => choice(
                problems,
                &key("missing"),
                Some(s.as_str()),
                Missing::Median,
                &[
                    ("median", Missing::Median),
                    ("mean", Missing::Mean),
                    ("zero", Missing::Value(0.0)),
                    ("mode", Missing::Mode),
                ],
            ),
            Some(toml::Value::Float(v)) => Missing::Value(*v),
            Some(toml::Value::Integer(v)) => Missing::Value(*v as f64),
            Some(other) => {
                problems.push(key("missing"), format!("`{other}` is not allowed; use \"median\", \"mean\", \"zero\", \"mode\" (categoricals) or a number"));
                Missing::Median
            }
        };
        if kind == Kind::Categorical
            && matches!(missing, Missing::Median | Missing::Mean | Missing::Value(_))
            && f.missing.is_some()
        {
            problems.push(key("missing"), "a categorical feature can only use missing = \"mode\" (missing values otherwise form their own level \"(missing)\")");
        }
        if let Some([lo, hi]) = f.winsorize {
            if !(0.0..1.0).contains(&lo) || !(lo < hi && hi <= 1.0) {
                problems.push(key("winsorize"), format!("[{lo}, {hi}] must be two quantiles 0 <= low < high <= 1, e.g. [0.01, 0.99]"));
            }
        }
        let weight = f.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight >= 0.0) {
            problems.push(
                key("weight"),
                format!("{weight} must be a finite number >= 0"),
            );
        }
        if let Some(g) = &f.group {
            if !raw.groups.contains_key(g) {
                problems.push(key("group"), format!("no group `{g}` in [groups]; declare it there with its weight, e.g. {g} = 1.0"));
            }
        }
        if f.max_levels == Some(0) {
            problems.push(key("max_levels"), "must be at least 1");
        }
        features.push(Feature {
            name: fname,
            source,
            expr_text: f.expr.clone(),
            expr: expr.unwrap_or_else(|| polars::prelude::lit(0)),
            window: f.window.map(|months| Window {
                months,
                offset: f.offset.unwrap_or(0),
            }),
            kind,
            transform,
            winsorize: f.winsorize,
            scale,
            missing,
            indicator: f.indicator.unwrap_or(false),
            weight,
            group: f.group.clone(),
            max_levels: f.max_levels.unwrap_or(12),
            in_matrix: f.matrix.unwrap_or(true),
            description: f.description.clone(),
            label: f.label.clone().unwrap_or_else(|| f.name.replace('_', " ")),
            unit: choice(
                problems,
                &key("unit"),
                f.unit.as_deref(),
                Unit::Number,
                &[
                    ("number", Unit::Number),
                    ("usd", Unit::Usd),
                    ("percent", Unit::Percent),
                    ("months", Unit::Months),
                    ("count", Unit::Count),
                ],
            ),
            high: f.high.clone(),
            low: f.low.clone(),
        });
    }
    if !features.is_empty() && !features.iter().any(|f| f.in_matrix) {
        problems.push(
            "feature",
            "every feature has matrix = false: at least one must go into the feature matrix",
        );
    }
    for (g, w) in &raw.groups {
        if !(w.is_finite() && *w >= 0.0) {
            problems.push(
                format!("groups.{g}"),
                format!("{w} must be a finite number >= 0"),
            );
        }
        if !raw.feature.iter().any(|f| f.group.as_deref() == Some(g)) {
            problems.push(
                format!("groups.{g}"),
                "no feature is in this group (set group = \"...\" on a feature)",
            );
        }
    }

    // --- checks -----------------------------------------------------------------
    let mut checks = Vec::new();
    for (i, c) in raw.check.iter().enumerate() {
        let key = |k: &str| format!("check[{i}].{k}");
        if !names.contains(c.source.as_str()) {
            problems.push(key("source"), format!("no source named `{}`", c.source));
        }
        if let (Some(lo), Some(hi)) = (c.min, c.max) {
            if lo > hi {
                problems.push(key("min"), format!("min {lo} is above max {hi}"));
            }
        }
        if c.min.is_none() && c.max.is_none() && c.allowed.is_empty() {
            problems.push(key("column"), "a check needs `min`, `max` or `allowed`");
        }
        let severity = choice(
            problems,
            &key("severity"),
            c.severity.as_deref(),
            Severity::Error,
            SEVERITIES,
        );
        checks.push(Check {
            source: c.source.clone(),
            column: c.column.clone(),
            min: c.min,
            max: c.max,
            allowed: c.allowed.clone(),
            severity,
        });
    }

    let q = raw.quality.take().unwrap_or_default();
    let d = QualityPolicy::default();
    let severity = |problems: &mut Problems, key: &str, v: &Option<String>, default| {
        choice(problems, key, v.as_deref(), default, SEVERITIES)
    };
    let quality = QualityPolicy {
        duplicates: severity(problems, "quality.duplicates", &q.duplicates, d.duplicates),
        orphans: severity(problems, "quality.orphans", &q.orphans, d.orphans),
        nulls: severity(problems, "quality.nulls", &q.nulls, d.nulls),
        non_finite: severity(problems, "quality.non_finite", &q.non_finite, d.non_finite),
        truncated: severity(problems, "quality.truncated", &q.truncated, d.truncated),
        max_examples: q.max_examples.unwrap_or(d.max_examples),
        max_orphans: share(
            problems,
            "quality.max_orphans",
            q.max_orphans,
            d.max_orphans,
        ),
        max_duplicates: share(
            problems,
            "quality.max_duplicates",
            q.max_duplicates,
            d.max_duplicates,
        ),
        max_unknown_tiers: share(
            problems,
            "quality.max_unknown_tiers",
            q.max_unknown_tiers,
            d.max_unknown_tiers,
        ),
        max_imputed: share(
            problems,
            "quality.max_imputed",
            q.max_imputed,
            d.max_imputed,
        ),
        max_empty_window: share(
            problems,
            "quality.max_empty_window",
            q.max_empty_window,
            d.max_empty_window,
        ),
    };

    let cluster = cluster_config(&raw, problems);
    let tiers = raw
        .tiers
        .as_ref()
        .and_then(|t| tiers_config(t, &mut features, problems));

    if !problems.0.is_empty() {
        return None;
    }
    Some(Pipeline {
        name,
        file: file.to_path_buf(),
        hash,
        text: text.to_string(),
        as_of,
        seed: run.seed.unwrap_or(42),
        threads: run.threads,
        output,
        sources,
        features,
        groups: raw.groups.clone(),
        checks,
        quality,
        cluster,
        tiers,
    })
}

fn tiers_config(
    t: &RawTiers,
    features: &mut Vec<Feature>,
    problems: &mut Problems,
) -> Option<Tiers> {
    if t.order.is_empty() {
        problems.push("tiers.order", "list the tiers, highest touch first, e.g. order = [\"High Touch\", \"Hybrid\", \"Tech Touch\"]");
    }
    let mut seen = BTreeSet::new();
    for o in &t.order {
        if !seen.insert(o) {
            problems.push("tiers.order", format!("`{o}` is listed twice"));
        }
    }
    let known = |tier: &str, key: &str, problems: &mut Problems| {
        if !t.order.iter().any(|o| o == tier) {
            problems.push(
                key.to_string(),
                format!("`{tier}` is not in tiers.order ({})", t.order.join(", ")),
            );
        }
    };
    let source = match (&t.column, t.rule.is_empty()) {
        (Some(c), true) => {
            if t.default.is_some() {
                problems.push(
                    "tiers.default",
                    "`default` goes with rules; with `column` accounts keep the tier in the column",
                );
            }
            match features.iter().find(|f| &f.name == c) {
                Some(f) if f.kind == Kind::Categorical => TierSource::Feature(c.clone()),
                Some(_) => {
                    problems.push("tiers.column", format!("feature `{c}` is numeric; the tier column must be text (kind = \"categorical\")"));
                    TierSource::Feature(c.clone())
                }
                None => {
                    // An account-table column: read it as a helper feature.
                    let name = "current_tier".to_string();
                    if features.iter().any(|f| f.name == name) {
                        problems.push("tiers.column", format!("`{c}` is not a feature, and the name `current_tier` is taken; name the feature holding the tier in tiers.column"));
                    }
                    let helper = Feature {
                        name: name.clone(),
                        source: None,
                        expr_text: c.clone(),
                        expr: polars::prelude::col(c.as_str()),
                        window: None,
                        kind: Kind::Categorical,
                        transform: Transform::None,
                        winsorize: None,
                        scale: Scale::None,
                        missing: Missing::Mode,
                        indicator: false,
                        weight: 0.0,
                        group: None,
                        max_levels: usize::MAX,
                        in_matrix: false,
                        description: Some(format!("the tier in account-table column `{c}`")),
                        label: "current tier".into(),
                        unit: Unit::Number,
                        high: None,
                        low: None,
                    };
                    features.push(helper);
                    TierSource::Feature(name)
                }
            }
        }
        (None, false) => {
            let mut rules = Vec::new();
            for (i, r) in t.rule.iter().enumerate() {
                known(&r.tier, &format!("tiers.rule[{i}].tier"), problems);
                if let Some(e) = parse_expr(problems, &format!("tiers.rule[{i}].when"), &r.when) {
                    rules.push((r.tier.clone(), r.when.clone(), e));
                }
            }
            let default = match &t.default {
                Some(d) => {
                    known(d, "tiers.default", problems);
                    d.clone()
                }
                None => {
                    problems.push(
                        "tiers.default",
                        "rules need a `default` tier for accounts no rule matches",
                    );
                    String::new()
                }
            };
            TierSource::Rules { rules, default }
        }
        (Some(_), false) => {
            problems.push(
                "tiers",
                "set either `column` or [[tiers.rule]] tables, not both",
            );
            return None;
        }
        (None, true) => {
            problems.push("tiers", "say where each account's tier comes from: `column = \"cs_tier\"` or [[tiers.rule]] tables with a default");
            return None;
        }
    };
    if let Some(v) = &t.value {
        match features.iter().find(|f| &f.name == v) {
            Some(f) if f.kind == Kind::Numeric => {}
            _ => problems.push(
                "tiers.value",
                format!("`{v}` must be a numeric feature (the value at stake, usually ARR)"),
            ),
        }
    }
    let value = t.value.clone().or_else(|| {
        features
            .iter()
            .find(|f| f.name == "arr" && f.kind == Kind::Numeric)
            .map(|f| f.name.clone())
    });
    let exceptions_from = choice(
        problems,
        "tiers.exceptions_from",
        t.exceptions_from.as_deref(),
        "kmeans",
        &[("kmeans", "kmeans"), ("community", "community")],
    );
    let fdr = match t.fdr {
        None => 0.05,
        Some(q) if q > 0.0 && q < 1.0 => q,
        Some(q) => {
            problems.push(
                "tiers.fdr",
                format!("{q} must be a share strictly between 0 and 1, e.g. 0.05"),
            );
            0.05
        }
    };
    Some(Tiers {
        order: t.order.clone(),
        source,
        value,
        exceptions_from,
        fdr,
    })
}

fn cluster_config(raw: &RawPipeline, problems: &mut Problems) -> ClusterConfig {
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

/// A share in [0, 1], or `default`.
fn share(problems: &mut Problems, key: &str, value: Option<f64>, default: f64) -> f64 {
    match value {
        None => default,
        Some(v) if (0.0..=1.0).contains(&v) => v,
        Some(v) => {
            problems.push(
                key,
                format!("{v} must be a share between 0 and 1, e.g. {default}"),
            );
            default
        }
    }
}

fn positive(problems: &mut Problems, key: &str, value: Option<usize>, target: &mut usize) {
    if let Some(v) = value {
        if v == 0 {
            problems.push(key, "must be at least 1");
        }
        *target = v;
    }
}

const SEVERITIES: &[(&str, Severity)] = &[
    ("error", Severity::Error),
    ("warning", Severity::Warning),
    ("ignore", Severity::Ignore),
];

/// Parse a Polars SQL expression, recording a problem when it does not parse.
///
/// Only expressions over the declared sources' columns are allowed: a
/// subquery (`x IN (SELECT c FROM read_csv('…'))`) would be run by Polars while
/// parsing and could read files the pipeline does not declare, so it is
/// rejected before Polars sees it.
fn parse_expr(problems: &mut Problems, key: &str, text: &str) -> Option<polars::prelude::Expr> {
    if let Some(word) = sql_outside_expressions(text) {
        problems.push(
            key,
            format!("`{text}` uses `{word}`: expressions may only use the columns of declared sources (no subqueries); declare another file as a source instead"),
        );
        return None;
    }
    let parsed = std::panic::catch_unwind(|| polars::sql::sql_expr(text));
    match parsed {
        Ok(Ok(e)) => Some(e),
        Ok(Err(e)) => {
            let first = crate::ingest::load::plain(&e.to_string());
            let quoting = if text.contains(' ') {
                " (a column name with spaces or other characters must be in double quotes: \"Tenure in Months\" > 12)"
            } else {
                ""
            };
            problems.push(
                key,
                format!("`{text}` is not a Polars SQL expression: {first}{quoting}"),
            );
            None
        }
        Err(_) => {
            problems.push(
                key,
                format!("`{text}` could not be parsed as a Polars SQL expression"),
            );
            None
        }
    }
}

/// `SELECT`, if `text` has it outside string literals and quoted identifiers:
/// every subquery needs it, and only a subquery can reach beyond the
/// expression's own columns (a table function such as `read_csv` stands in a
/// subquery's FROM). `FROM` alone is fine (`EXTRACT(YEAR FROM d)`).
fn sql_outside_expressions(text: &str) -> Option<String> {
    let mut bare = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' || c == '`' => {
                quote = Some(c);
                bare.push(' ');
            }
            None => bare.push(c),
        }
    }
    bare.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|w| w.eq_ignore_ascii_case("select"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
