//! Decide: what the suggested moves cost in CSMs, the tier rule a CRM can
//! run, and the segments told by thresholds (see [`crate::decide`]).

use std::fmt::Write as _;

use super::format::{esc, md, profile_name};
use super::load::RunData;
use crate::cluster::method;
use crate::compare::Comparison;
use crate::decide::capacity::{signed, Coverage};
use crate::decide::propose::ProposedRule;
use crate::schema::file;

/// Tiers are compared, so staffing can be planned (or how to is said).
pub(super) fn has_tiers(r: &RunData) -> bool {
    r.comparison.comparison.tiers.is_some()
}

pub(super) fn has_rule(r: &RunData) -> bool {
    r.comparison.decision.rule.is_some()
}

pub(super) fn has_explained(r: &RunData) -> bool {
    !r.comparison.decision.explained.is_empty()
}

fn money(c: &Comparison, v: f64) -> String {
    c.value_unit.format(v)
}

/// "12 → 15", or "12" when equal.
fn change<T: PartialEq + std::fmt::Display>(a: T, b: T) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a} → {b}")
    }
}

fn fte(v: f64) -> String {
    format!("{v:.1}")
}

/// How to set `[capacity]` for the run's tiers.
fn how_to(c: &Comparison) -> String {
    let names: Vec<String> = c
        .tiers
        .as_ref()
        .map(|t| t.names.clone())
        .unwrap_or_default();
    let typical = [12, 50, 500, 1000];
    let pairs: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("\"{n}\" = {}", typical[i.min(3)]))
        .collect();
    format!("[capacity]\naccounts_per_csm = {{ {} }}", pairs.join(", "))
}

pub(super) fn capacity(h: &mut String, r: &RunData) -> crate::error::Result<()> {
    let c = &r.comparison.comparison;
    let d = &r.comparison.decision;
    h.push_str("<section id=\"capacity\"><h2>Staffing: what the moves cost in CSMs</h2>");
    let Some(cap) = &d.capacity else {
        let _ = write!(
            h,
            "<p>No coverage ratios are set, so CSMs per tier are not computed (strata assumes none). Add how many accounts one CSM covers in each tier to the pipeline, e.g.</p><pre>{}</pre><p class=\"note\">Practitioners' rules of thumb are about 8–15 accounts per CSM in high touch, 30–75 pooled, 500 or more in tech touch; add <code>value_per_csm</code> (e.g. 2000000 for $2M of ARR per CSM) to staff by value as well. Use your own team's ratios.</p></section>\n",
            esc(&how_to(c))
        );
        return Ok(());
    };
    let _ = write!(h, "<p><b>{}</b></p>", esc(&capitalise(&cap.sentence)));
    let rule = cap.under_rule.is_some();
    let _ = write!(
        h,
        "<table class=\"capacity\"><tr><th>tier</th><th>accounts per CSM</th><th>accounts today → after the moves</th><th>{} today → after</th><th>CSM FTE today → after</th><th>change</th>{}<th>{} per CSM after</th></tr>",
        esc(&c.value_label),
        if rule { "<th>under the rule: accounts · FTE</th>" } else { "" },
        esc(&c.value_label)
    );
    let row = |h: &mut String,
               name: &str,
               ratio: String,
               a: &Coverage,
               b: &Coverage,
               u: Option<&Coverage>| {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{ratio}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n><b>{}</b></td>{}<td class=n>{}</td></tr>",
            esc(name),
            change(a.accounts, b.accounts),
            esc(&change(money(c, a.value), money(c, b.value))),
            change(fte(a.csms), fte(b.csms)),
            signed(b.csms - a.csms),
            u.map(|u| format!("<td class=n>{} · {}</td>", u.accounts, fte(u.csms))).unwrap_or_default(),
            esc(&money(c, b.value_per_csm))
        );
    };
    for t in &cap.tiers {
        let ratio = match t.value_per_csm {
            Some(v) => format!("{} · {}", t.accounts_per_csm, esc(&money(c, v))),
            None => t.accounts_per_csm.to_string(),
        };
        row(
            h,
            &t.tier,
            ratio,
            &t.today,
            &t.after_moves,
            t.under_rule.as_ref(),
        );
    }
    row(
        h,
        "all tiers",
        String::new(),
        &cap.today,
        &cap.after_moves,
        cap.under_rule.as_ref(),
    );
    h.push_str("</table><p class=\"note\">CSMs needed = accounts ÷ accounts per CSM (with a value ratio too, the larger of that and value ÷ value per CSM), in full-time equivalents; <i>after the moves</i> applies every listed exception; accounts without a tier are not counted.</p></section>\n");
    Ok(())
}

pub(super) fn capacity_md(m: &mut String, r: &RunData) {
    m.push_str("## Staffing\n\n");
    let Some(cap) = &r.comparison.decision.capacity else {
        m.push_str("No coverage ratios are set, so CSMs per tier are not computed: add a `[capacity]` section with `accounts_per_csm` for every tier (README, \"Pipeline file reference\"; report.html shows the lines for these tiers).\n\n");
        return;
    };
    let _ = writeln!(m, "**{}**\n", md(&capitalise(&cap.sentence)));
    m.push_str("| tier | accounts per CSM | accounts | FTE | change |\n|---|---|---|---|---|\n");
    for t in &cap.tiers {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} |",
            md(&t.tier),
            t.accounts_per_csm,
            change(t.today.accounts, t.after_moves.accounts),
            change(fte(t.today.csms), fte(t.after_moves.csms)),
            signed(t.after_moves.csms - t.today.csms)
        );
    }
    m.push('\n');
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

pub(super) fn rule(h: &mut String, r: &RunData) -> crate::error::Result<()> {
    let Some(rule) = &r.comparison.decision.rule else {
        return Ok(());
    };
    h.push_str("<section id=\"rule\"><h2>A tier rule the CRM can run</h2>");
    let _ = write!(h, "<p><b>{}</b></p>", esc(&capitalise(&rule.sentence)));
    if !rule.useful {
        h.push_str("<p class=\"note\">No <code>tier_rules.toml</code> or <code>tier_rules.sql</code> is written: a rule that fits noise would move accounts for no reason.</p></section>\n");
        return Ok(());
    }
    h.push_str("<table class=\"rules\"><tr><th>if</th><th>then tier</th><th>accounts</th><th>of which the data suggests another tier</th></tr>");
    for l in &rule.lines {
        let _ = write!(
            h,
            "<tr><td>{}</td><td><b>{}</b></td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&l.text),
            esc(&l.tier),
            l.accounts,
            l.disagree
        );
    }
    let _ = write!(
        h,
        "<tr><td>otherwise</td><td><b>{}</b></td><td class=n>{}</td><td class=n>{}</td></tr></table>",
        esc(&rule.default),
        rule.default_accounts,
        rule.default_disagree
    );
    let _ = write!(
        h,
        "<p>It agrees with the suggested tiering on {} of accounts and with today's tiers on {}; on the {} accounts it was not grown on, {} (Cohen's κ {:.2}). Grown as a decision tree of at most {} levels, each rule covering at least {} of accounts.</p>",
        pct(rule.agreement_suggested),
        pct(rule.agreement_current),
        rule.holdout_accounts,
        pct(rule.holdout_agreement),
        rule.holdout_kappa,
        rule.depth,
        pct(rule.min_leaf)
    );
    let _ = write!(
        h,
        "<p>To adopt it: <code>{}</code> is the <code>[tiers]</code> section, ready to replace the pipeline's own (next month then runs with it); <code>{}</code> is the same as a SQL <code>CASE WHEN</code> for a warehouse or a CRM formula field. Each account's tier by the rule is the <code>rule_tier</code> column of <code>assignments.csv</code>.</p>",
        file::TIER_RULES_TOML,
        file::TIER_RULES_SQL
    );
    misplaced(h, rule);
    h.push_str("<p class=\"note\">The rule explains the suggested tiering in a form a CRM can apply to next week's new customer; it is not a new truth. The exceptions and their evidence stay with the data-driven suggestion.</p></section>\n");
    Ok(())
}

fn misplaced(h: &mut String, rule: &ProposedRule) {
    if rule.misplaced == 0 {
        return;
    }
    let _ = write!(
        h,
        "<details><summary>{} account(s) the rule places differently from the suggestion{}</summary><table><tr><th>account</th><th>by the rule</th><th>suggested</th><th>today</th></tr>",
        rule.misplaced,
        if rule.misplaced > rule.misplaced_listed.len() {
            format!(" (the {} of highest value shown)", rule.misplaced_listed.len())
        } else {
            String::new()
        }
    );
    for x in &rule.misplaced_listed {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&x.account_id),
            esc(&x.rule_tier),
            esc(&x.suggested_tier),
            esc(&x.current_tier)
        );
    }
    h.push_str("</table></details>");
}

pub(super) fn rule_md(m: &mut String, r: &RunData) {
    let Some(rule) = &r.comparison.decision.rule else {
        return;
    };
    m.push_str("## A tier rule the CRM can run\n\n");
    let _ = writeln!(m, "{}\n", md(&capitalise(&rule.sentence)));
    if !rule.useful {
        return;
    }
    m.push_str("| if | then tier | accounts | suggested elsewhere |\n|---|---|---|---|\n");
    for l in &rule.lines {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |",
            md(&l.text),
            md(&l.tier),
            l.accounts,
            l.disagree
        );
    }
    let _ = writeln!(
        m,
        "| otherwise | {} | {} | {} |\n\nReady to adopt: `{}` (the `[tiers]` section) and `{}` (SQL `CASE WHEN`).\n",
        md(&rule.default),
        rule.default_accounts,
        rule.default_disagree,
        file::TIER_RULES_TOML,
        file::TIER_RULES_SQL
    );
}

pub(super) fn explained(h: &mut String, r: &RunData) -> crate::error::Result<()> {
    let c = &r.comparison.comparison;
    let d = &r.comparison.decision;
    h.push_str("<section id=\"segment-rules\"><h2>Segments as thresholds</h2><p class=\"note\">Where each segment's boundary lies in business units. k-means: an IMM threshold tree with one leaf per segment (Dasgupta et al. 2020); its <i>price of explainability</i> is the cost of the tree's partition over k-means' own (1 = as good). Communities: a classification tree on their labels.</p>");
    for e in &d.explained {
        let _ = write!(
            h,
            "<h3>{} <span class=\"note\">({})</span></h3><p>{}</p><table><tr><th>segment</th><th>thresholds</th><th>accounts</th><th>in the segment</th></tr>",
            esc(&method::label(&e.method)),
            esc(&e.tree),
            esc(&capitalise(&e.sentence))
        );
        for l in &e.leaves {
            let _ = write!(
                h,
                "<tr><td>▶ {} {}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                l.segment_id,
                esc(&profile_name(c, &e.method, l.segment_id)),
                esc(&l.text),
                l.accounts,
                pct(l.in_segment as f64 / l.accounts.max(1) as f64)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
    Ok(())
}
