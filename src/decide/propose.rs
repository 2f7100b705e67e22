//! The proposed tier rule: a shallow tree over the features in business
//! units that reproduces the suggested tiering (today's tiers with the
//! exceptions applied), written as `[[tiers.rule]]` tables and as SQL.
//!
//! The tree is grown on two thirds of (a sample of at most
//! [`FIT_ACCOUNTS`]) the accounts with a suggested tier and judged on the
//! other third: it is called **useful** only when its held-out agreement
//! beats the most common tier and Cohen's κ there is at least
//! [`MIN_KAPPA`] ("fair", Landis & Koch 1977). Otherwise — shuffled tiers,
//! tiers no feature explains — the report says no useful rule exists
//! instead of printing a tree that fits noise. Its agreement over all
//! accounts is then measured by evaluating the written rules exactly as
//! `strata run` would with them ([`crate::compare::current_tiers`]), so the
//! table in the report and next month's run cannot disagree.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::table;
use super::tree::{self, Condition, Leaf};
use crate::compare::{self, CurrentTiers};
use crate::config::{Pipeline, TierSource, Tiers};
use crate::error::Result;
use crate::ingest::AccountFrame;

/// Most accounts the tree is grown and judged on; the written rules are then
/// evaluated on every account.
pub const FIT_ACCOUNTS: usize = 150_000;
/// Held-out Cohen's κ a rule needs to be proposed.
pub const MIN_KAPPA: f64 = 0.2;
/// Misplaced accounts listed in `comparison.json` (all are in `assignments`).
pub const LISTED: usize = 50;

/// One line of the rule: a tier and the conditions that give it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleLine {
    pub tier: String,
    pub conditions: Vec<Condition>,
    /// "ARR ≥ $120k and features used ≥ 19".
    pub text: String,
    /// The `when` of the `[[tiers.rule]]` table (Polars SQL).
    pub when: String,
    /// Accounts this line gives its tier (first match), and how many of them
    /// the suggested tiering puts elsewhere.
    pub accounts: usize,
    pub disagree: usize,
}

/// An account the rule puts elsewhere than the suggested tiering.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Misplaced {
    pub account_id: String,
    pub rule_tier: String,
    pub suggested_tier: String,
    pub current_tier: String,
}

/// The proposed rule and how faithful it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProposedRule {
    /// Whether the rule explains the tiering better than chance (see the
    /// module's docs); when false, `lines` is what the tree found and is not
    /// offered for adoption.
    pub useful: bool,
    /// The verdict in words, for the report.
    pub sentence: String,
    pub depth: usize,
    pub min_leaf: f64,
    /// Rules in tier order (highest touch first), then the default.
    pub lines: Vec<RuleLine>,
    pub default: String,
    pub default_accounts: usize,
    pub default_disagree: usize,
    /// Share of accounts with a suggested tier that the rule gives that tier.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub agreement_suggested: f64,
    /// The same against today's tiers.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub agreement_current: f64,
    /// The most common suggested tier's share: what "everyone in one tier" scores.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub majority_share: f64,
    /// On the held-out accounts: agreement and Cohen's κ.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub holdout_agreement: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub holdout_kappa: f64,
    pub fit_accounts: usize,
    pub holdout_accounts: usize,
    /// Accounts the rule puts elsewhere than the suggested tiering.
    pub misplaced: usize,
    /// The first [`LISTED`] of them, highest value first.
    pub misplaced_listed: Vec<Misplaced>,
    /// Each account's tier by the rule (row order).
    #[serde(skip)]
    pub tiers: Vec<Option<usize>>,
}

/// Propose a rule for the suggested tiering `suggested` (a tier per account,
/// row order). None when no account has one.
pub fn propose(
    p: &Pipeline,
    frame: &AccountFrame,
    ids: &[String],
    current: &CurrentTiers,
    suggested: &[Option<usize>],
    value: Option<&[Option<f64>]>,
) -> Result<Option<ProposedRule>> {
    let Some(t) = &p.tiers else {
        return Ok(None);
    };
    let mut rows: Vec<usize> = (0..suggested.len())
        .filter(|&i| suggested[i].is_some())
        .collect();
    if rows.len() < compare::MIN_TIERED_ACCOUNTS {
        return Ok(None);
    }
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(p.seed ^ 0x7275_6c65);
    rows.shuffle(&mut rng);
    rows.truncate(FIT_ACCOUNTS);
    let cut = rows.len() * 2 / 3;
    let (fit, held) = rows.split_at(cut);
    let mut fit = fit.to_vec();
    fit.sort_unstable();
    let table = table::build(p, frame, &fit)?;
    let y: Vec<usize> = fit.iter().map(|&i| suggested[i].expect("kept")).collect();
    let min_leaf = ((p.rules.min_leaf * fit.len() as f64).ceil() as usize).max(5);
    let leaves = tree::grow(&table, &y, p.rules.depth, min_leaf);
    let (lines, default) = lines_of(&leaves, &t.order);
    let tiers = evaluate(t, &lines, &default, frame)?;

    let held_pairs: Vec<(usize, usize)> = held
        .iter()
        .filter_map(|&i| Some((tiers.labels[i]?, suggested[i]?)))
        .collect();
    let (holdout_agreement, holdout_kappa) = kappa(&held_pairs, t.order.len());
    let all: Vec<(usize, usize)> = (0..suggested.len())
        .filter_map(|i| Some((tiers.labels[i]?, suggested[i]?)))
        .collect();
    let agreement_suggested = share(all.iter().filter(|(a, b)| a == b).count(), all.len());
    let now: Vec<(usize, usize)> = (0..suggested.len())
        .filter_map(|i| Some((tiers.labels[i]?, current.labels[i]?)))
        .collect();
    let agreement_current = share(now.iter().filter(|(a, b)| a == b).count(), now.len());
    let majority_share = top_share(suggested.iter().flatten().copied(), t.order.len());
    let held_majority = top_share(held_pairs.iter().map(|&(_, s)| s), t.order.len());
    let useful = lines.iter().any(|l| !l.conditions.is_empty())
        && holdout_kappa >= MIN_KAPPA
        && holdout_agreement > held_majority;
    let sentence = if useful {
        format!(
            "a {}-line rule gives {:.0}% of accounts the tier the data suggests ({:.0}% on accounts it was not grown on; putting everyone in {} would give {:.0}%)",
            lines.len() + 1,
            agreement_suggested * 100.0,
            holdout_agreement * 100.0,
            t.order[tree::majority(&suggested.iter().flatten().copied().collect::<Vec<_>>())],
            majority_share * 100.0
        )
    } else {
        format!(
            "no useful rule: no simple rule over the features reproduces the suggested tiers better than chance (on accounts it was not grown on it agrees {:.0}% of the time against {:.0}% for putting everyone in the most common tier; Cohen's κ {:.2} < {MIN_KAPPA}), so the tiers are best kept as they are or set by judgement",
            holdout_agreement * 100.0,
            held_majority * 100.0,
            holdout_kappa
        )
    };
    let default_index = t.order.iter().position(|o| *o == default);
    let (lines, default_accounts, default_disagree) =
        count_lines(lines, default_index, suggested, t, frame)?;
    let (misplaced, misplaced_listed) =
        misplaced_accounts(t, ids, current, suggested, &tiers.labels, value);
    Ok(Some(ProposedRule {
        useful,
        sentence,
        depth: p.rules.depth,
        min_leaf: p.rules.min_leaf,
        lines,
        default,
        default_accounts,
        default_disagree,
        agreement_suggested,
        agreement_current,
        majority_share,
        holdout_agreement,
        holdout_kappa,
        fit_accounts: fit.len(),
        holdout_accounts: held_pairs.len(),
        misplaced,
        misplaced_listed,
        tiers: tiers.labels,
    }))
}

/// The most common class's share of `classes`.
fn top_share(classes: impl Iterator<Item = usize>, k: usize) -> f64 {
    let mut counts = vec![0usize; k];
    for c in classes {
        counts[c] += 1;
    }
    share(
        counts.iter().copied().max().unwrap_or(0),
        counts.iter().sum(),
    )
}

/// The accounts the rule puts elsewhere than the suggestion: how many, and
/// the first [`LISTED`] by value.
fn misplaced_accounts(
    t: &Tiers,
    ids: &[String],
    current: &CurrentTiers,
    suggested: &[Option<usize>],
    by_rule: &[Option<usize>],
    value: Option<&[Option<f64>]>,
) -> (usize, Vec<Misplaced>) {
    let mut wrong: Vec<usize> = (0..suggested.len())
        .filter(|&i| suggested[i].is_some() && by_rule[i] != suggested[i])
        .collect();
    if let Some(v) = value {
        wrong.sort_by(|&a, &b| {
            v[b].unwrap_or(0.0)
                .total_cmp(&v[a].unwrap_or(0.0))
                .then(a.cmp(&b))
        });
    }
    let name = |x: Option<usize>| x.map_or_else(|| "—".to_string(), |i| t.order[i].clone());
    let listed = wrong
        .iter()
        .take(LISTED)
        .map(|&i| Misplaced {
            account_id: ids[i].clone(),
            rule_tier: name(by_rule[i]),
            suggested_tier: name(suggested[i]),
            current_tier: name(current.labels[i]),
        })
        .collect();
    (wrong.len(), listed)
}

fn share(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Agreement and Cohen's κ of (rule, suggested) pairs.
pub fn kappa(pairs: &[(usize, usize)], k: usize) -> (f64, f64) {
    if pairs.is_empty() {
        return (0.0, 0.0);
    }
    let n = pairs.len() as f64;
    let po = pairs.iter().filter(|(a, b)| a == b).count() as f64 / n;
    let (mut ra, mut rb) = (vec![0.0; k], vec![0.0; k]);
    for &(a, b) in pairs {
        ra[a] += 1.0;
        rb[b] += 1.0;
    }
    let pe: f64 = (0..k).map(|j| ra[j] / n * rb[j] / n).sum();
    let kappa = if pe >= 1.0 {
        0.0
    } else {
        (po - pe) / (1.0 - pe)
    };
    (po, kappa)
}

/// The leaves as rule lines in tier order (highest touch first, larger
/// first within a tier), the tier with the most leaves' accounts being the
/// default that needs no line.
fn lines_of(leaves: &[Leaf], order: &[String]) -> (Vec<RuleLine>, String) {
    let mut per_tier = vec![0usize; order.len()];
    for l in leaves {
        per_tier[l.class] += 1;
    }
    // The default: the tier with the most leaves (the lowest-touch on a tie),
    // so the fewest lines are written.
    let default = (0..order.len())
        .max_by(|&a, &b| per_tier[a].cmp(&per_tier[b]).then(a.cmp(&b)))
        .unwrap_or(0);
    let mut lines: Vec<(usize, RuleLine)> = leaves
        .iter()
        .filter(|l| l.class != default)
        .map(|l| {
            let when = l
                .conditions
                .iter()
                .map(|c| c.sql())
                .collect::<Vec<_>>()
                .join(" AND ");
            (
                l.class,
                RuleLine {
                    tier: order[l.class].clone(),
                    text: l
                        .conditions
                        .iter()
                        .map(|c| c.text())
                        .collect::<Vec<_>>()
                        .join(" and "),
                    conditions: l.conditions.clone(),
                    when,
                    accounts: 0,
                    disagree: 0,
                },
            )
        })
        .collect();
    lines.sort_by_key(|(c, _)| *c);
    (
        lines.into_iter().map(|(_, l)| l).collect(),
        order[default].clone(),
    )
}

/// The written rules evaluated exactly as a run with them would.
fn evaluate(
    t: &Tiers,
    lines: &[RuleLine],
    default: &str,
    frame: &AccountFrame,
) -> Result<CurrentTiers> {
    let mut rules = Vec::new();
    for l in lines {
        let expr = crate::config::parse_rule(&l.when)?;
        rules.push((l.tier.clone(), l.when.clone(), expr));
    }
    let tiers = Tiers {
        source: TierSource::Rules {
            rules,
            default: default.to_string(),
        },
        ..t.clone()
    };
    compare::current_tiers(&tiers, frame)
}

/// Each line's accounts (first match) and disagreements; then the
/// default's (every account no line takes).
fn count_lines(
    mut lines: Vec<RuleLine>,
    default: Option<usize>,
    suggested: &[Option<usize>],
    t: &Tiers,
    frame: &AccountFrame,
) -> Result<(Vec<RuleLine>, usize, usize)> {
    use polars::prelude::*;
    let mut taken = vec![false; suggested.len()];
    let tally = |taken: &mut Vec<bool>, hit: &dyn Fn(usize) -> bool, tier: Option<usize>| {
        let (mut n, mut off) = (0, 0);
        for (i, s) in suggested.iter().enumerate() {
            if !taken[i] && hit(i) {
                taken[i] = true;
                n += 1;
                if s.is_some() && *s != tier {
                    off += 1;
                }
            }
        }
        (n, off)
    };
    for l in &mut lines {
        let expr = crate::config::parse_rule(&l.when)?;
        let out = crate::guard::guard(|| {
            frame
                .df
                .clone()
                .lazy()
                .select([expr.clone().fill_null(lit(false)).alias("__hit")])
                .collect()
        })
        .map_err(|e| {
            crate::error::Error::Usage(format!("the proposed rule `{}` failed: {e}", l.when))
        })?;
        let hit: Vec<bool> = out
            .column("__hit")?
            .bool()?
            .iter()
            .map(|h| h == Some(true))
            .collect();
        let tier = t.order.iter().position(|o| *o == l.tier);
        (l.accounts, l.disagree) = tally(&mut taken, &|i| hit[i], tier);
    }
    let (n, off) = tally(&mut taken, &|_| true, default);
    Ok((lines, n, off))
}

/// The features a rule uses, each with how the pipeline computes it, as
/// comment lines (`prefix` starts each).
fn definitions(rule: &ProposedRule, p: &Pipeline, prefix: &str) -> String {
    let mut used: Vec<&str> = rule
        .lines
        .iter()
        .flat_map(|l| l.conditions.iter().map(|c| c.feature.as_str()))
        .collect();
    used.sort_unstable();
    used.dedup();
    let mut out = String::new();
    for name in used {
        let Some(f) = p.features.iter().find(|f| f.name == name) else {
            continue;
        };
        let from = match (&f.source, &f.window) {
            (Some(s), Some(w)) if w.offset == 0 => {
                format!(" over source `{s}`, the last {} month(s)", w.months)
            }
            (Some(s), Some(w)) => format!(
                " over source `{s}`, {} month(s) ending {} month(s) before the as-of",
                w.months, w.offset
            ),
            (Some(s), None) => format!(" over source `{s}`"),
            (None, _) => " (per account)".to_string(),
        };
        out.push_str(&format!(
            "{prefix}  {name} ({}): {}{from}\n",
            f.label, f.expr_text
        ));
    }
    out
}

fn header(rule: &ProposedRule, p: &Pipeline, as_of: &str, c: &str) -> String {
    format!(
        "{c} strata's proposed tier rule for pipeline \"{}\", as of {as_of}.\n\
         {c} {}.\n\
         {c} It explains the suggested tiering (today's tiers with the exceptions applied); it is not a\n\
         {c} new truth: the {} account(s) it places differently are in comparison.json and in\n\
         {c} assignments.csv (column rule_tier). Accounts missing a value a rule tests get the default.\n\
         {c} The columns are strata's features, computed per account as the pipeline defines them:\n{}",
        p.name,
        rule.sentence,
        rule.misplaced,
        definitions(rule, p, c)
    )
}

/// `tier_rules.toml`: the `[tiers]` section with the rule, ready to replace
/// the pipeline's own (order, value and the other settings kept).
pub fn toml_section(rule: &ProposedRule, p: &Pipeline, t: &Tiers, as_of: &str) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = header(rule, p, as_of, "#");
    out.push_str(
        "# To adopt it, replace the pipeline's [tiers] section with the lines below.\n\n[tiers]\n",
    );
    out.push_str(&format!(
        "order = [{}]\ndefault = {}\n",
        t.order.iter().map(|o| q(o)).collect::<Vec<_>>().join(", "),
        q(&rule.default)
    ));
    if let Some(v) = &t.value {
        out.push_str(&format!("value = {}\n", q(v)));
    }
    out.push_str(&format!(
        "exceptions_from = {}\nfdr = {}\n",
        q(t.exceptions_from),
        t.fdr
    ));
    for l in &rule.lines {
        out.push_str(&format!(
            "\n# {}: {} account(s), {} of them suggested another tier\n[[tiers.rule]]\ntier = {}\nwhen = {}\n",
            l.text,
            l.accounts,
            l.disagree,
            q(&l.tier),
            q(&l.when)
        ));
    }
    out
}

/// `tier_rules.sql`: the rule as a `CASE WHEN` expression.
pub fn sql(rule: &ProposedRule, p: &Pipeline, as_of: &str) -> String {
    let mut out = header(rule, p, as_of, "--");
    out.push_str("-- Use it as a column: SELECT account_id, <this CASE> AS proposed_tier FROM <your account features>.\nCASE\n");
    for l in &rule.lines {
        out.push_str(&format!(
            "  WHEN {} THEN {}\n",
            l.when,
            super::tree::quote_text(&l.tier)
        ));
    }
    out.push_str(&format!(
        "  ELSE {}\nEND\n",
        super::tree::quote_text(&rule.default)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::kappa;

    #[test]
    fn kappa_is_zero_at_chance_and_one_at_perfect_agreement() {
        let perfect = [(0, 0), (1, 1), (2, 2), (1, 1)];
        assert_eq!(kappa(&perfect, 3), (1.0, 1.0));
        // Everyone in tier 0 against a 50/50 truth: agreement 0.5, κ 0.
        let one_tier = [(0, 0), (0, 1), (0, 0), (0, 1)];
        assert_eq!(kappa(&one_tier, 2), (0.5, 0.0));
        // Fleiss' textbook case (Cohen 1960 style): po 0.7, pe 0.5 → κ 0.4.
        let mut pairs = vec![(0, 0); 35];
        pairs.extend(vec![(1, 1); 35]);
        pairs.extend(vec![(0, 1); 15]);
        pairs.extend(vec![(1, 0); 15]);
        let (po, k) = kappa(&pairs, 2);
        assert!(
            (po - 0.7).abs() < 1e-12 && (k - 0.4).abs() < 1e-12,
            "{po} {k}"
        );
    }
}
