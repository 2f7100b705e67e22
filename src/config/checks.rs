//! `[[check]]` (range and allowed-value checks on source columns) and `[quality]` (the built-in checks' severities and thresholds).

use std::collections::BTreeSet;

use super::raw::*;
use super::*;

const SEVERITIES: &[(&str, Severity)] = &[
    ("error", Severity::Error),
    ("warning", Severity::Warning),
    ("ignore", Severity::Ignore),
];

pub(super) fn checks(
    raw_checks: &[RawCheck],
    sources: &[Source],
    problems: &mut Problems,
) -> Vec<Check> {
    let names: BTreeSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    let mut checks = Vec::new();
    for (i, c) in raw_checks.iter().enumerate() {
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

    checks
}

pub(super) fn quality(q: Option<RawQuality>, problems: &mut Problems) -> QualityPolicy {
    let q = q.unwrap_or_default();
    let d = QualityPolicy::default();
    let severity = |problems: &mut Problems, key: &str, v: &Option<String>, default| {
        choice(problems, key, v.as_deref(), default, SEVERITIES)
    };
    QualityPolicy {
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
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dir_with, problems, MINIMAL};

    #[test]
    fn quality_shares_must_be_shares_and_checks_need_a_bound() {
        let d = dir_with(&["accounts.csv"]);
        let text = format!(
            "{MINIMAL}\n[[check]]\nsource = \"accounts\"\ncolumn = \"employees\"\n[quality]\nmax_orphans = 1.5\ntruncated = \"loud\"\n"
        );
        let ps = problems(&text, &d);
        let keys: Vec<&str> = ps.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"check[0].column"), "{ps:?}");
        assert!(keys.contains(&"quality.max_orphans"), "{ps:?}");
        assert!(keys.contains(&"quality.truncated"), "{ps:?}");
    }
}
