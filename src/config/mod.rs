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
mod expr;
mod features;
mod outcomes;
mod raw;
mod rules;
mod run_section;
mod sources;
mod tiers;
mod types;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use rules::MAX_DEPTH as MAX_RULE_DEPTH;
pub use types::*;

use crate::cluster::method::{Methods, Settings};
use crate::error::{Error, Result};
use crate::quality::Severity;
use crate::settings::{choice, share, unknown_key, Problems};
use expr::parse_expr;
use raw::*;

pub use crate::error::{ConfigProblem, ConfigProblems};

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

/// Read, parse and validate a pipeline file, for the registry's methods.
pub fn load(path: &Path) -> Result<Pipeline> {
    load_with(path, &Methods::default())
}

/// Read, parse and validate a pipeline file for a run of `methods`: a
/// method with a section of its own ([`crate::cluster::Method::section`])
/// checks it.
pub fn load_with(path: &Path, methods: &Methods) -> Result<Pipeline> {
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
    parse_with(&text, path, &base, methods)
}

/// Parse and validate pipeline text; `base` is the folder relative paths start from.
pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Pipeline> {
    parse_with(text, file, base, &Methods::default())
}

/// [`parse`] for a run of `methods` (see [`load_with`]).
pub fn parse_with(text: &str, file: &Path, base: &Path, methods: &Methods) -> Result<Pipeline> {
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
    // Keys under a method's own section are that method's to check.
    let sections: Vec<&str> = methods.iter().filter_map(|m| m.section()).collect();
    for key in unknown {
        // serde_ignored writes an optional table's path with `?` for the
        // Option (`kmeans.?.restrats`); the user wrote `kmeans.restrats`.
        let key: String = key
            .split('.')
            .filter(|p| *p != "?")
            .collect::<Vec<_>>()
            .join(".");
        let top = key.split('.').next().unwrap_or("");
        if !sections.contains(&top) {
            problems.push(key.clone(), unknown_key_message(&key));
        }
    }
    let mut pipeline = validate(raw, text, file, base, &mut problems);
    let settings = method_settings(text, methods, &mut problems);
    if let Some(p) = pipeline.as_mut() {
        p.cluster.methods = settings;
    }
    if problems.0.is_empty() {
        Ok(pipeline.expect("validate returns a pipeline when there are no problems"))
    } else {
        Err(fail(problems.0))
    }
}

/// Each method's own section checked into its settings, by method name.
fn method_settings(
    text: &str,
    methods: &Methods,
    problems: &mut Problems,
) -> std::collections::BTreeMap<String, Settings> {
    let mut out = std::collections::BTreeMap::new();
    if methods.iter().all(|m| m.section().is_none()) {
        return out;
    }
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    for m in methods.iter() {
        let Some(section) = m.section() else {
            continue;
        };
        if let Some(s) = m.settings(table.get(section), problems) {
            out.insert(m.name().to_string(), s);
        }
    }
    out
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
        ["outcome", _, _] => RawOutcome::KEYS,
        ["rules", _] => RawRules::KEYS,
        ["capacity", _] => RawCapacity::KEYS,
        _ => &[],
    };
    unknown_key(last, allowed)
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

    let outcomes = outcomes::validate(&raw.outcome, &features, problems);
    let rules = rules::rules(raw.rules.as_ref(), problems);
    let capacity = raw
        .capacity
        .as_ref()
        .and_then(|c| rules::capacity(c, tiers.as_ref(), problems));
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
        excel_csv: run.excel_csv,
        sources,
        features,
        groups: raw.groups.clone(),
        checks,
        quality,
        cluster,
        tiers,
        outcomes,
        rules,
        capacity,
    })
}

#[cfg(test)]
mod tests;

/// A tier rule's `when`, parsed as `[[tiers.rule]]` tables are (the proposed
/// rule is evaluated through this, so it reads exactly as a run reads it).
pub fn parse_rule(text: &str) -> Result<polars::prelude::Expr> {
    let mut problems = Problems::default();
    parse_expr(&mut problems, "tiers.rule.when", text).ok_or_else(|| {
        Error::Usage(format!(
            "the rule `{text}` does not parse: {}",
            problems.0.first().map(|p| p.message.as_str()).unwrap_or("")
        ))
    })
}
