//! `[[feature]]` and `[groups]`: each feature's expression, source, window, transforms, weight and labels.

use std::collections::{BTreeMap, BTreeSet};

use super::raw::*;
use super::*;

pub(super) fn validate(
    raw_features: &[RawFeature],
    groups: &BTreeMap<String, f64>,
    sources: &[Source],
    problems: &mut Problems,
) -> Vec<Feature> {
    let mut seen = BTreeMap::new();
    if raw_features.is_empty() {
        problems.push(
            "feature",
            "no features declared; add [[feature]] tables (see pipelines/sample.toml)",
        );
    }
    let features: Vec<Feature> = raw_features
        .iter()
        .enumerate()
        .map(|(i, f)| feature(i, f, groups, sources, &mut seen, problems))
        .collect();
    if !features.is_empty() && !features.iter().any(|f| f.in_matrix) {
        problems.push(
            "feature",
            "every feature has matrix = false: at least one must go into the feature matrix",
        );
    }
    for (g, w) in groups {
        if !(w.is_finite() && *w >= 0.0) {
            problems.push(
                format!("groups.{g}"),
                format!("{w} must be a finite number >= 0"),
            );
        }
        if !raw_features.iter().any(|f| f.group.as_deref() == Some(g)) {
            problems.push(
                format!("groups.{g}"),
                "no feature is in this group (set group = \"...\" on a feature)",
            );
        }
    }
    features
}

/// `feature[i]` checked on its own; `seen`: the names so far, with their place.
fn feature(
    i: usize,
    f: &RawFeature,
    groups: &BTreeMap<String, f64>,
    sources: &[Source],
    seen: &mut BTreeMap<String, usize>,
    problems: &mut Problems,
) -> Feature {
    let key = |k: &str| format!("feature[{i}].{k}");
    let fname = f.name.clone();
    check_name(i, &fname, seen, problems);
    let source = source_of(i, f, sources, problems);
    if f.offset.is_some() && f.window.is_none() {
        problems.push(key("offset"), "`offset` shifts a window: set `window` too");
    }
    if f.window == Some(0) {
        problems.push(key("window"), "must be at least 1 month");
    }
    let expr = parse_expr(problems, &key("expr"), &f.expr);
    let (kind, transform, scale) = kinds(i, f, problems);
    let missing = missing_of(i, f, kind, problems);
    if let Some([lo, hi]) = f.winsorize {
        if !(0.0..1.0).contains(&lo) || !(lo < hi && hi <= 1.0) {
            problems.push(
                key("winsorize"),
                format!(
                    "[{lo}, {hi}] must be two quantiles 0 <= low < high <= 1, e.g. [0.01, 0.99]"
                ),
            );
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
        if !groups.contains_key(g) {
            problems.push(
                key("group"),
                format!(
                    "no group `{g}` in [groups]; declare it there with its weight, e.g. {g} = 1.0"
                ),
            );
        }
    }
    if f.max_levels == Some(0) {
        problems.push(key("max_levels"), "must be at least 1");
    }
    Feature {
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
    }
}

/// A feature's name is usable, not reserved, and not taken.
fn check_name(i: usize, fname: &str, seen: &mut BTreeMap<String, usize>, problems: &mut Problems) {
    let key = |k: &str| format!("feature[{i}].{k}");
    if fname == crate::schema::ACCOUNT_ID {
        problems.push(
            key("name"),
            "`account_id` is reserved for the id column of the outputs; choose another name",
        );
    }
    if fname.is_empty() || fname.starts_with("__") || fname.contains(['.', '"', '`']) {
        problems.push(
            key("name"),
            format!(
                "`{fname}` is not a usable name: use letters, digits and _ (not starting with __)"
            ),
        );
    }
    if let Some(prev) = seen.insert(fname.to_string(), i) {
        problems.push(
            key("name"),
            format!("`{fname}` is already the name of feature[{prev}]"),
        );
    }
}

/// The feature's kind, transform and scale, by name.
fn kinds(i: usize, f: &RawFeature, problems: &mut Problems) -> (Kind, Transform, Scale) {
    let key = |k: &str| format!("feature[{i}].{k}");
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
    (kind, transform, scale)
}

/// The feature's source, when it names one that exists and is not a lookup
/// (a window needs the source's `time`).
fn source_of(
    i: usize,
    f: &RawFeature,
    sources: &[Source],
    problems: &mut Problems,
) -> Option<String> {
    let key = |k: &str| format!("feature[{i}].{k}");
    let names: BTreeSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    match &f.source {
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
    }
}

/// What a missing value becomes: "median", "mean", "zero", "mode"
/// (categoricals only) or a number.
fn missing_of(i: usize, f: &RawFeature, kind: Kind, problems: &mut Problems) -> Missing {
    let key = |k: &str| format!("feature[{i}].{k}");
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
    missing
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dir_with, problems, MINIMAL};

    fn keys(extra: &str) -> Vec<String> {
        let d = dir_with(&["accounts.csv"]);
        let mut ks: Vec<String> = problems(&format!("{MINIMAL}{extra}"), &d)
            .into_iter()
            .map(|p| p.key)
            .collect();
        ks.sort();
        ks
    }

    #[test]
    fn names_must_be_usable_and_unique() {
        assert_eq!(
            keys("[[feature]]\nname = \"size\"\nexpr = \"x\"\n"),
            ["feature[1].name"]
        );
        assert_eq!(
            keys("[[feature]]\nname = \"account_id\"\nexpr = \"x\"\n"),
            ["feature[1].name"]
        );
        assert_eq!(
            keys("[[feature]]\nname = \"__x\"\nexpr = \"x\"\n"),
            ["feature[1].name"]
        );
    }

    #[test]
    fn a_source_must_exist_and_a_window_needs_its_time() {
        assert_eq!(
            keys("[[feature]]\nname = \"u\"\nsource = \"usage\"\nexpr = \"sum(x)\"\n"),
            ["feature[1].source"]
        );
        assert_eq!(
            keys("[[feature]]\nname = \"u\"\nsource = \"accounts\"\nexpr = \"x\"\nwindow = 3\n"),
            ["feature[1].window"]
        );
        assert_eq!(
            keys("[[feature]]\nname = \"u\"\nexpr = \"x\"\noffset = 1\n"),
            ["feature[1].offset"]
        );
    }

    #[test]
    fn transforms_missing_values_and_weights_are_checked() {
        assert_eq!(
            keys(
                "[[feature]]\nname = \"u\"\nexpr = \"x\"\ntransform = \"cube\"\nscale = \"max\"\n"
            ),
            ["feature[1].scale", "feature[1].transform"]
        );
        assert_eq!(
            keys("[[feature]]\nname = \"u\"\nexpr = \"x\"\nkind = \"categorical\"\nmissing = 0\n"),
            ["feature[1].missing"]
        );
        assert_eq!(
            keys("[[feature]]\nname = \"u\"\nexpr = \"x\"\nwinsorize = [0.5, 0.2]\nweight = -1.0\nmax_levels = 0\n"),
            ["feature[1].max_levels", "feature[1].weight", "feature[1].winsorize"]
        );
        assert!(keys(
            "[[feature]]\nname = \"u\"\nexpr = \"x\"\nmissing = \"mean\"\nunit = \"usd\"\n"
        )
        .is_empty());
    }

    #[test]
    fn groups_need_members_and_a_weight() {
        assert_eq!(keys("[groups]\nusage = 1.0\n"), ["groups.usage"]);
        assert_eq!(
            keys("[[feature]]\nname = \"u\"\nexpr = \"x\"\ngroup = \"usage\"\n"),
            ["feature[1].group"]
        );
    }
}
