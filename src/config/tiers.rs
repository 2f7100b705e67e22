//! `[tiers]`: the tier order, where each account's tier comes from (a column or rules), the value at stake and the exceptions' false discovery rate.

use super::raw::*;
use super::*;

pub(super) fn validate(
    t: &RawTiers,
    features: &[Feature],
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
    let source = match (&t.column, t.rule.is_empty()) {
        (Some(c), true) => from_column(t, c, features, problems),
        (None, false) => from_rules(t, problems),
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
        crate::cluster::method::REGISTRY[0].name(),
        &crate::cluster::method::REGISTRY
            .iter()
            .map(|m| (m.name(), m.name()))
            .collect::<Vec<_>>(),
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

/// Tiers read from column `c`: a categorical feature, or an account-table
/// column read as it is.
fn from_column(t: &RawTiers, c: &str, features: &[Feature], problems: &mut Problems) -> TierSource {
    if t.default.is_some() {
        problems.push(
            "tiers.default",
            "`default` goes with rules; with `column` accounts keep the tier in the column",
        );
    }
    match features.iter().find(|f| f.name == c) {
        Some(f) if f.kind == Kind::Categorical => TierSource::Feature(c.to_string()),
        Some(_) => {
            problems.push("tiers.column", format!("feature `{c}` is numeric; the tier column must be text (kind = \"categorical\")"));
            TierSource::Feature(c.to_string())
        }
        // An account-table column, read as it is.
        None => TierSource::Column(c.to_string()),
    }
}

/// Tiers from `[[tiers.rule]]` tables (first match wins) and a default.
fn from_rules(t: &RawTiers, problems: &mut Problems) -> TierSource {
    let known = |tier: &str, key: &str, problems: &mut Problems| {
        if !t.order.iter().any(|o| o == tier) {
            problems.push(
                key.to_string(),
                format!("`{tier}` is not in tiers.order ({})", t.order.join(", ")),
            );
        }
    };
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

#[cfg(test)]
mod tests {
    use super::super::tests::{dir_with, problems, MINIMAL};

    #[test]
    fn fdr_must_be_a_share_and_tiers_need_a_source() {
        let d = dir_with(&["accounts.csv"]);
        let text =
            format!("{MINIMAL}\n[tiers]\norder = [\"A\", \"B\"]\ncolumn = \"tier\"\nfdr = 2\n");
        let ps = problems(&text, &d);
        assert!(ps.iter().any(|p| p.key == "tiers.fdr"), "{ps:?}");
        let ps = problems(&format!("{MINIMAL}\n[tiers]\norder = [\"A\"]\n"), &d);
        assert!(ps.iter().any(|p| p.key == "tiers"), "{ps:?}");
    }
}
