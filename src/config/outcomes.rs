//! `[[outcome]]`: what happened to the accounts afterwards (a feature never
//! clustered on), whether it is a rate or a number, and which way is good.

use super::raw::*;
use super::*;

pub(super) fn validate(
    raw: &[RawOutcome],
    features: &[Feature],
    problems: &mut Problems,
) -> Vec<Outcome> {
    let mut seen = BTreeSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let key = |k: &str| format!("outcome[{i}].{k}");
            if !seen.insert(o.feature.as_str()) {
                problems.push(key("feature"), format!("`{}` is already an outcome", o.feature));
            }
            let Some(f) = features.iter().find(|f| f.name == o.feature) else {
                let names: Vec<&str> = features.iter().map(|f| f.name.as_str()).collect();
                problems.push(
                    key("feature"),
                    format!(
                        "no feature named `{}`: declare it as a [[feature]] with matrix = false; features: {}",
                        o.feature,
                        names.join(", ")
                    ),
                );
                return None;
            };
            if f.in_matrix {
                problems.push(key("feature"), format!("feature `{}` is clustered on: an outcome must never shape the segments it judges; set matrix = false on it", f.name));
            }
            if f.kind == Kind::Categorical {
                problems.push(key("feature"), format!("feature `{}` is categorical: an outcome is a 0/1 flag (kind = \"binary\") or a number", f.name));
            }
            let kind = choice(
                problems,
                &key("kind"),
                o.kind.as_deref(),
                OutcomeKind::Binary,
                &[("binary", OutcomeKind::Binary), ("numeric", OutcomeKind::Numeric)],
            );
            if o.good.is_none() {
                problems.push(key("good"), "say which way is good: good = \"low\" (churn, say) or good = \"high\" (renewal, expansion)");
            }
            let good = choice(
                problems,
                &key("good"),
                o.good.as_deref(),
                Good::Low,
                &[("low", Good::Low), ("high", Good::High)],
            );
            Some(Outcome {
                feature: f.name.clone(),
                label: o.label.clone().unwrap_or_else(|| f.label.clone()),
                unit: f.unit,
                kind,
                good,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dir_with, problems, MINIMAL};

    fn keys(extra: &str) -> Vec<String> {
        let d = dir_with(&["accounts.csv"]);
        problems(&format!("{MINIMAL}{extra}"), &d)
            .into_iter()
            .map(|p| p.key)
            .collect()
    }

    const CHURN: &str = "[[feature]]\nname = \"churned\"\nexpr = \"churned\"\nmatrix = false\n";

    #[test]
    fn an_outcome_is_a_feature_never_clustered_on_with_a_good_direction() {
        assert!(keys(&format!(
            "{CHURN}[[outcome]]\nfeature = \"churned\"\ngood = \"low\"\n"
        ))
        .is_empty());
        assert_eq!(
            keys("[[outcome]]\nfeature = \"size\"\ngood = \"low\"\n"),
            ["outcome[0].feature"],
            "size is clustered on"
        );
        assert_eq!(
            keys("[[outcome]]\nfeature = \"gone\"\ngood = \"low\"\n"),
            ["outcome[0].feature"]
        );
        assert_eq!(
            keys(&format!("{CHURN}[[outcome]]\nfeature = \"churned\"\n")),
            ["outcome[0].good"]
        );
        assert_eq!(
            keys(&format!(
                "{CHURN}[[outcome]]\nfeature = \"churned\"\ngood = \"low\"\nkind = \"ratio\"\n"
            )),
            ["outcome[0].kind"]
        );
    }
}
