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

mod checks;
mod cluster;
mod features;
mod raw;
mod run_section;
mod sources;
mod tiers;
mod types;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use types::*;

use crate::cluster::community::Algorithm;
use crate::cluster::knn::{self, Weighting};
use crate::cluster::{kmeans, ClusterConfig};
use crate::error::{Error, Result};
use raw::*;

pub use crate::error::{ConfigProblem, ConfigProblems};

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

    // Each section has its own validator (and tests) beside this file.
    let run = run_section::validate(raw.run.take().unwrap_or_default(), file, base, problems);
    let sources = sources::validate(&raw.sources, base, problems);
    let features = features::validate(&raw.feature, &raw.groups, &sources, problems);
    let checks = checks::checks(&raw.check, &sources, problems);
    let quality = checks::quality(raw.quality.take(), problems);

    let cluster = cluster::validate(&raw, problems);
    let tiers = raw
        .tiers
        .as_ref()
        .and_then(|t| tiers::validate(t, &features, problems));

    if !problems.0.is_empty() {
        return None;
    }
    Some(Pipeline {
        name: run.name,
        file: file.to_path_buf(),
        hash,
        text: text.to_string(),
        as_of: run.as_of,
        seed: run.seed,
        threads: run.threads,
        output: run.output,
        sources,
        features,
        groups: raw.groups.clone(),
        checks,
        quality,
        cluster,
        tiers,
    })
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
            let first = crate::error::polars_message(&e.to_string());
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
