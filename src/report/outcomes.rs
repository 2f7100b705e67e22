//! Does acting on it pay off? Each declared outcome by tier and by segment,
//! which grouping separates it, the exceptions against the rest of their
//! tier, and last month's suggestions followed up (see
//! [`crate::compare::outcomes`] and [`crate::history`]).

use std::fmt::Write as _;

use super::format::{esc, md};
use super::load::RunData;
use crate::cluster::method;
use crate::compare::outcomes::{p_text, GroupOutcome, Grouping, OutcomeAnalysis};
use crate::compare::ExceptionKind;
use crate::config::{Good, OutcomeKind};
use crate::error::Result;

/// Whether the pipeline declares outcomes.
pub(super) fn has_outcomes(r: &RunData) -> bool {
    !r.comparison.comparison.outcomes.is_empty()
}

pub(super) fn outcomes(h: &mut String, r: &RunData) -> Result<()> {
    h.push_str("<section id=\"outcomes\"><h2>Outcomes: does acting on it pay off?</h2>");
    h.push_str("<p class=\"note\">What happened to the accounts afterwards, by today's tier and by segment, with 95% intervals (Wilson for rates, order statistics for medians); groups under 30 accounts are marked ◦. A grouping <i>separates</i> an outcome when the test of independence (χ² with Cramér's V for rates, Kruskal–Wallis with ε² for numbers) gives p &lt; 0.001 and a V of 0.1 or an ε² of 0.01 or more.</p>");
    for o in &r.comparison.comparison.outcomes {
        outcome(h, o);
    }
    if let Some(t) = &r.comparison.history.track_record {
        track_record(h, t);
    }
    h.push_str("</section>\n");
    Ok(())
}

fn outcome(h: &mut String, o: &OutcomeAnalysis) {
    let good = match (o.kind, o.good) {
        (OutcomeKind::Binary, Good::Low) => "a rate; lower is better",
        (OutcomeKind::Binary, Good::High) => "a rate; higher is better",
        (OutcomeKind::Numeric, Good::Low) => "a median; lower is better",
        (OutcomeKind::Numeric, Good::High) => "a median; higher is better",
    };
    let _ = write!(
        h,
        "<h3>{} <span class=\"note\">({good}; {} overall, {} accounts)</span></h3><p><b>{}</b></p><div class=\"outcome-groups\">",
        esc(&o.label),
        esc(&o.show(o.overall.value)),
        o.overall.n,
        esc(&o.sentence)
    );
    for g in &o.groupings {
        grouping(h, o, g);
    }
    h.push_str("</div>");
    if o.exceptions.is_empty() {
        return;
    }
    h.push_str("<table><tr><th>tier</th><th>candidates</th><th>flagged</th><th>rest of the tier</th><th>p</th><th>what it says</th></tr>");
    for x in &o.exceptions {
        let kind = match x.kind {
            ExceptionKind::Upgrade => "upgrade",
            ExceptionKind::Downgrade => "downgrade",
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{kind}</td><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(&x.tier),
            cell(o, &x.flagged),
            cell(o, &x.rest),
            esc(&p_text(x.p)),
            esc(x.claim.as_deref().unwrap_or("no claim: too few accounts or no clear difference"))
        );
    }
    h.push_str("</table>");
}

/// "12.3% [9.9–15.1%] · 801" (◦ when small).
fn cell(o: &OutcomeAnalysis, g: &GroupOutcome) -> String {
    format!(
        "{} [{}–{}] · {}{}",
        esc(&o.show(g.value)),
        esc(&o.show(g.lo)),
        esc(&o.show(g.hi)),
        g.n,
        if g.small { " ◦" } else { "" }
    )
}

fn grouping(h: &mut String, o: &OutcomeAnalysis, g: &Grouping) {
    let title = if g.grouping == "tiers" {
        "today's tiers".to_string()
    } else {
        method::label(&g.grouping)
    };
    let test = g.test.as_ref().map_or("not tested".to_string(), |t| {
        format!(
            "{} {:.1}, df {}, {}; {} {:.2}{}",
            if t.test == "chi2" { "χ²" } else { "H" },
            t.statistic,
            t.df,
            p_text(t.p),
            t.effect_name,
            t.effect,
            if t.separates { " — separates" } else { "" }
        )
    });
    let _ = write!(
        h,
        "<table><caption>{} <span class=\"note\">{}</span></caption><tr><th>group</th><th>{}</th></tr>",
        esc(&title),
        esc(&test),
        esc(&o.label)
    );
    for x in &g.groups {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&x.group),
            cell(o, x)
        );
    }
    h.push_str("</table>");
}

fn track_record(h: &mut String, t: &crate::history::TrackRecord) {
    let _ = write!(
        h,
        "<h3>Last month's suggestions, followed up</h3><p>{}</p><table><tr><th>accounts of {}</th><th>accounts</th><th>left</th><th>moved to the suggested tier</th><th>tier changed otherwise</th><th>median {} change</th></tr>",
        esc(&t.sentence),
        esc(&t.previous_as_of),
        esc(&t.value_label)
    );
    for row in &t.rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&row.group),
            row.accounts,
            share(row.left, row.accounts),
            share(row.moved_as_suggested, row.accounts),
            share(row.moved_otherwise, row.accounts),
            esc(&row.value_change_text)
        );
    }
    h.push_str("</table>");
}

fn share(k: u64, n: u64) -> String {
    if n == 0 {
        "–".into()
    } else {
        format!("{k} ({:.0}%)", 100.0 * k as f64 / n as f64)
    }
}

/// The digest's outcome lines: the sentence and the claims of each outcome.
pub(super) fn outcomes_md(m: &mut String, r: &RunData) {
    m.push_str("\n## Outcomes\n\n");
    for o in &r.comparison.comparison.outcomes {
        let _ = writeln!(m, "- **{}**: {}", md(&o.label), md(&o.sentence));
        for claim in o.exceptions.iter().filter_map(|x| x.claim.as_deref()) {
            let _ = writeln!(m, "  - {}", md(claim));
        }
    }
    if let Some(t) = &r.comparison.history.track_record {
        let _ = writeln!(m, "- **Last month's suggestions**: {}", md(&t.sentence));
    }
}
