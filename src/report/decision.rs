//! The decision, first: for the CS leader, on the first screen of
//! report.html and at the top of report.md — the verdict in a sentence, the
//! value at stake split into under- and over-served accounts, the top moves
//! with their strongest reason, the tier headcounts today → after the moves
//! (with CSMs when `[capacity]` is set), and one line each on the outcomes
//! and the proposed rule. The methods and metrics follow for the analyst.

use std::fmt::Write as _;

use super::format::{esc, md};
use super::load::RunData;
use crate::compare::{Comparison, Exception, ExceptionKind, Verdict};
use crate::decide::capacity::signed;

/// Moves shown in the box.
pub const TOP_MOVES: usize = 7;

/// Whether the run compares with tiers (the box needs them).
pub(super) fn has_decision(r: &RunData) -> bool {
    r.comparison.comparison.tiers.is_some()
}

/// (under-served value, accounts; over-served value, accounts; held back).
fn split(c: &Comparison) -> (f64, usize, f64, usize, usize) {
    let (mut up, mut nu, mut down, mut nd, mut held) = (0.0, 0, 0.0, 0, 0);
    for e in &c.exceptions {
        if !e.band.suggests() {
            held += 1;
            continue;
        }
        let v = if e.value_at_stake.is_finite() {
            e.value_at_stake
        } else {
            0.0
        };
        match e.kind {
            ExceptionKind::Upgrade => {
                up += v;
                nu += 1;
            }
            ExceptionKind::Downgrade => {
                down += v;
                nd += 1;
            }
        }
    }
    (up, nu, down, nd, held)
}

/// The leading method's verdict, in plain words.
fn verdict(c: &Comparison) -> String {
    let lead = c
        .methods
        .iter()
        .find(|m| m.method == c.exceptions_from)
        .or(c.methods.first());
    match lead.and_then(|m| m.verdict) {
        Some(Verdict::None) => "Today's tiers do not follow how these accounts behave: behaviour gives no reason to move accounts between tiers.".into(),
        Some(Verdict::Weak) => "Today's tiers follow behaviour only slightly.".into(),
        Some(Verdict::Moderate) => "Today's tiers partly follow how accounts behave.".into(),
        Some(Verdict::Strong) => "Today's tiers largely follow how accounts behave; a few accounts sit in the wrong tier.".into(),
        None => "Too few accounts have a known tier to judge the tiers.".into(),
    }
}

/// The strongest reason of a move, short.
fn why(e: &Exception) -> &str {
    e.reasons
        .first()
        .map_or(e.evidence.as_str(), |r| r.text.as_str())
}

fn moves(c: &Comparison) -> Vec<&Exception> {
    c.exceptions
        .iter()
        .filter(|e| e.band.suggests())
        .take(TOP_MOVES)
        .collect()
}

pub(super) fn decision(h: &mut String, r: &RunData) -> crate::error::Result<()> {
    let c = &r.comparison.comparison;
    let d = &r.comparison.decision;
    let money = |v: f64| c.value_unit.format(v);
    let (up, nu, down, nd, held) = split(c);
    h.push_str("<section id=\"decision\" class=\"decision\"><h2>The decision</h2>");
    let _ = write!(
        h,
        "<p class=\"verdict-line\"><b>{}</b></p>",
        esc(&verdict(c))
    );
    let _ = write!(
        h,
        "<div class=\"cards stake\"><div class=\"card\">{} at stake<b>{}</b></div><div class=\"card\">under-served: move up<b>{}</b><span>{nu} account(s)</span></div><div class=\"card\">over-served: move down<b>{}</b><span>{nd} account(s)</span></div>{}</div>",
        esc(&c.value_label),
        esc(&money(up + down)),
        esc(&money(up)),
        esc(&money(down)),
        if held > 0 {
            format!("<div class=\"card\">needs review<b>{held}</b><span>held back, not counted</span></div>")
        } else {
            String::new()
        }
    );
    let top = moves(c);
    if !top.is_empty() {
        let _ = write!(
            h,
            "<h3>Top moves</h3><table class=\"moves\"><tr><th>account</th><th>move</th><th>{} at stake</th><th>how sure</th><th>why</th></tr>",
            esc(&c.value_label)
        );
        for e in top {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{} → <b>{}</b></td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.account_id),
                esc(&e.current_tier),
                esc(&e.suggested_tier),
                esc(&e.value_text),
                e.band.word(),
                esc(why(e))
            );
        }
        h.push_str("</table>");
    }
    tiers_table(h, r);
    let mut lines: Vec<String> = Vec::new();
    if let Some(o) = c.outcomes.first() {
        lines.push(format!("Outcome — {}: {}", o.label, o.sentence));
    }
    if let Some(rule) = d.rule.as_ref() {
        lines.push(format!("Tier rule: {}.", rule.sentence));
    }
    if !lines.is_empty() {
        h.push_str("<ul class=\"decision-notes\">");
        for l in lines {
            let _ = write!(h, "<li>{}</li>", esc(&l));
        }
        h.push_str("</ul>");
    }
    h.push_str("<p class=\"note\">Every move is in the Exceptions section and <code>exceptions.csv</code>; how the segments were found and how well they agree with the tiers follow below.</p></section>\n");
    Ok(())
}

/// Tier headcounts (and value) today → after the moves, with CSMs when set.
fn tiers_table(h: &mut String, r: &RunData) {
    let c = &r.comparison.comparison;
    let d = &r.comparison.decision;
    if d.tiers.is_empty() {
        return;
    }
    let cap = d.capacity.as_ref();
    let _ = write!(
        h,
        "<h3>Tiers after the moves</h3><table class=\"headcounts\"><tr><th>tier</th><th>accounts today → after</th><th>{} today → after</th>{}</tr>",
        esc(&c.value_label),
        if cap.is_some() { "<th>CSM FTE today → after</th>" } else { "" }
    );
    for (j, t) in d.tiers.iter().enumerate() {
        let csm = cap
            .and_then(|k| k.tiers.get(j))
            .map(|k| {
                format!(
                    "<td class=n>{:.1} → {:.1} ({})</td>",
                    k.today.csms,
                    k.after_moves.csms,
                    signed(k.after_moves.csms - k.today.csms)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{} → {}</td><td class=n>{} → {}</td>{csm}</tr>",
            esc(&t.tier),
            t.today.accounts,
            t.after_moves.accounts,
            esc(&c.value_unit.format(t.today.value)),
            esc(&c.value_unit.format(t.after_moves.value))
        );
    }
    h.push_str("</table>");
    if cap.is_none() {
        h.push_str("<p class=\"note\">Set <code>[capacity]</code> ratios to see the CSMs each tier needs (see Staffing).</p>");
    }
}

pub(super) fn decision_md(m: &mut String, r: &RunData) {
    let c = &r.comparison.comparison;
    let d = &r.comparison.decision;
    let money = |v: f64| c.value_unit.format(v);
    let (up, nu, down, nd, held) = split(c);
    let _ = writeln!(m, "## The decision\n\n**{}**\n", md(&verdict(c)));
    let _ = writeln!(
        m,
        "- {} at stake: **{}** — under-served (move up) {} in {nu} account(s), over-served (move down) {} in {nd}{}\n",
        md(&c.value_label),
        md(&money(up + down)),
        md(&money(up)),
        md(&money(down)),
        if held > 0 { format!("; {held} more need review") } else { String::new() }
    );
    let top = moves(c);
    if !top.is_empty() {
        m.push_str("| account | move | at stake | how sure | why |\n|---|---|---|---|---|\n");
        for e in top {
            let _ = writeln!(
                m,
                "| {} | {} → {} | {} | {} | {} |",
                md(&e.account_id),
                md(&e.current_tier),
                md(&e.suggested_tier),
                md(&e.value_text),
                e.band.word(),
                md(why(e))
            );
        }
        m.push('\n');
    }
    if !d.tiers.is_empty() {
        m.push_str("| tier | accounts today → after | value today → after |\n|---|---|---|\n");
        for t in &d.tiers {
            let _ = writeln!(
                m,
                "| {} | {} → {} | {} → {} |",
                md(&t.tier),
                t.today.accounts,
                t.after_moves.accounts,
                md(&money(t.today.value)),
                md(&money(t.after_moves.value))
            );
        }
        m.push('\n');
    }
    if let Some(cap) = &d.capacity {
        let _ = writeln!(m, "Staffing: {}.\n", md(&cap.sentence));
    }
    if let Some(o) = c.outcomes.first() {
        let _ = writeln!(m, "Outcome — {}: {}\n", md(&o.label), md(&o.sentence));
    }
    if let Some(rule) = &d.rule {
        let _ = writeln!(m, "Tier rule: {}.\n", md(&rule.sentence));
    }
}
