//! `[rules]` (the shape of the proposed tier rule) and `[capacity]` (how many
//! accounts, and how much value, one CSM covers in each tier).

use std::collections::BTreeMap;

use super::raw::*;
use super::*;

/// Deepest tree the proposed rule may grow: beyond five levels a rule has up
/// to 32 leaves and is no longer something a CRM admin maintains by hand.
pub const MAX_DEPTH: usize = 5;

pub(super) fn rules(raw: Option<&RawRules>, problems: &mut Problems) -> RuleSettings {
    let mut s = RuleSettings::default();
    let Some(r) = raw else {
        return s;
    };
    if let Some(d) = r.depth {
        if (1..=MAX_DEPTH).contains(&d) {
            s.depth = d;
        } else {
            problems.push(
                "rules.depth",
                format!("{d} must be between 1 and {MAX_DEPTH} (levels of conditions in one rule; 3 reads well)"),
            );
        }
    }
    if let Some(m) = r.min_leaf {
        if m > 0.0 && m < 0.5 {
            s.min_leaf = m;
        } else {
            problems.push(
                "rules.min_leaf",
                format!("{m} must be a share of accounts above 0 and below 0.5, e.g. 0.01 (every rule covers at least 1% of accounts)"),
            );
        }
    }
    s
}

pub(super) fn capacity(
    raw: &RawCapacity,
    tiers: Option<&Tiers>,
    problems: &mut Problems,
) -> Option<CapacitySettings> {
    let Some(t) = tiers else {
        problems.push(
            "capacity",
            "capacity is planned per tier: declare [tiers] first",
        );
        return None;
    };
    let Some(accounts) = &raw.accounts_per_csm else {
        problems.push(
            "capacity.accounts_per_csm",
            format!(
                "say how many accounts one CSM covers in each tier, e.g. accounts_per_csm = {{ {} }}",
                example(&t.order)
            ),
        );
        return None;
    };
    let accounts_per_csm = per_tier("capacity.accounts_per_csm", accounts, &t.order, problems);
    let value_per_csm = raw.value_per_csm.as_ref().map(|v| {
        if t.value.is_none() {
            problems.push(
                "capacity.value_per_csm",
                "coverage by value needs the value feature: set tiers.value (usually ARR)",
            );
        }
        per_tier("capacity.value_per_csm", v, &t.order, problems)
    });
    Some(CapacitySettings {
        accounts_per_csm,
        value_per_csm,
    })
}

/// `"High Touch" = 12, "Hybrid" = 50, …` for the messages.
fn example(order: &[String]) -> String {
    let typical = [12.0, 50.0, 500.0, 1000.0];
    order
        .iter()
        .enumerate()
        .map(|(i, o)| format!("\"{o}\" = {}", typical[i.min(typical.len() - 1)]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One positive number for every tier of `order`, in that order.
fn per_tier(
    key: &str,
    table: &BTreeMap<String, f64>,
    order: &[String],
    problems: &mut Problems,
) -> Vec<f64> {
    for name in table.keys() {
        if !order.contains(name) {
            let near = order
                .iter()
                .map(|o| {
                    (
                        strsim::levenshtein(&o.to_lowercase(), &name.to_lowercase()),
                        o,
                    )
                })
                .filter(|(d, _)| *d <= 3)
                .min()
                .map(|(_, o)| format!("; did you mean `{o}`?"))
                .unwrap_or_default();
            problems.push(
                format!("{key}.{name}"),
                format!(
                    "`{name}` is not in tiers.order ({}){near}",
                    order.join(", ")
                ),
            );
        }
    }
    order
        .iter()
        .map(|o| match table.get(o) {
            Some(&v) if v > 0.0 && v.is_finite() => v,
            Some(&v) => {
                problems.push(
                    format!("{key}.{o}"),
                    format!("{v} must be a positive number (per CSM)"),
                );
                1.0
            }
            None => {
                problems.push(
                    key,
                    format!("tier `{o}` has no ratio: every tier of tiers.order needs one"),
                );
                1.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dir_with, problems, MINIMAL};

    const TIERS: &str = "\n[tiers]\norder = [\"High\", \"Low\"]\ncolumn = \"tier\"\n";

    #[test]
    fn rules_depth_and_leaf_share_are_bounded() {
        let d = dir_with(&["accounts.csv"]);
        let ps = problems(
            &format!("{MINIMAL}\n[rules]\ndepth = 9\nmin_leaf = 0.7\n"),
            &d,
        );
        assert!(ps.iter().any(|p| p.key == "rules.depth"), "{ps:?}");
        assert!(ps.iter().any(|p| p.key == "rules.min_leaf"), "{ps:?}");
        let ps = problems(&format!("{MINIMAL}\n[rules]\ndeep = 2\n"), &d);
        assert!(
            ps.iter()
                .any(|p| p.message.contains("did you mean `depth`")),
            "{ps:?}"
        );
    }

    #[test]
    fn capacity_needs_tiers_and_a_ratio_for_every_tier() {
        let d = dir_with(&["accounts.csv"]);
        let ps = problems(
            &format!("{MINIMAL}\n[capacity]\naccounts_per_csm = {{ High = 10 }}\n"),
            &d,
        );
        assert!(ps.iter().any(|p| p.key == "capacity"), "{ps:?}");
        let text =
            format!("{MINIMAL}{TIERS}\n[capacity]\naccounts_per_csm = {{ High = 10, Lwo = 0 }}\n");
        let ps = problems(&text, &d);
        assert!(
            ps.iter().any(|p| p.key == "capacity.accounts_per_csm.Lwo"
                && p.message.contains("did you mean `Low`")),
            "{ps:?}"
        );
        assert!(
            ps.iter()
                .any(|p| p.key == "capacity.accounts_per_csm" && p.message.contains("`Low`")),
            "{ps:?}"
        );
        let ps = problems(&format!("{MINIMAL}{TIERS}\n[capacity]\n"), &d);
        assert!(
            ps.iter().any(|p| p.message.contains("\"High\" = 12")),
            "{ps:?}"
        );
    }
}
