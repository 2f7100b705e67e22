//! The summary section: what was found, agreement with the tiers, and what
//! changed since last month.

use std::fmt::Write as _;

use super::format::{esc, f3, md, profiles, verdict_sentence, verdict_word};
use super::load::RunData;
use crate::cluster::method;
use crate::history::{History, TransitionKind};
use crate::partition::Agreement;

pub(super) fn summary(h: &mut String, r: &RunData) {
    let c = &r.comparison;
    let m = &r.manifest;
    h.push_str("<section id=\"summary\"><h2>Summary</h2>");
    stability_warnings(h, r);
    h.push_str("<div class=\"cards\">");
    let _ = write!(h, "<div class=\"card\">accounts<b>{}</b></div>", m.accounts);
    for s in &c.segmentations {
        let method = s.method.as_ref();
        let _ = write!(
            h,
            "<div class=\"card\">{}<b>{}</b></div>",
            if method::noun(method) == "segments" {
                format!("{} segments", method::label(method))
            } else {
                method::label(method)
            },
            s.sizes.len()
        );
    }
    for mc in &c.comparison.methods {
        let _ = write!(
            h,
            "<div class=\"card\">{} vs tiers<b>{}</b></div>",
            method::label(&mc.method),
            esc(verdict_word(mc, "not measured"))
        );
    }
    let _ = write!(
        h,
        "<div class=\"card\">tier exceptions<b>{}</b></div>",
        c.comparison.exceptions.len()
    );
    h.push_str("</div>");
    for s in &c.segmentations {
        if let crate::cluster::Details::KMeans(d) = &s.details {
            let _ = write!(
                h,
                "<p class=\"note\">{}: k = {} — {}.</p>",
                method::label(&s.method),
                s.k(),
                esc(&d.chosen_by)
            );
        }
    }
    let methods = &c.comparison.methods;
    h.push_str("<h3>Agreement with today's tiers</h3><ul class=\"verdicts\">");
    for mc in methods {
        let _ = write!(
            h,
            "<li><b>{}</b>: {}</li>",
            method::label(&mc.method),
            esc(&verdict_sentence(mc))
        );
    }
    h.push_str("</ul>");
    if !methods.is_empty() {
        h.push_str("<p class=\"note\">The agreement metrics (ARI, AMI, NMI, …) are in <a href=\"#agreement\">Agreement metrics</a>.</p>");
    }
    h.push_str("<h3>What changed since last month</h3>");
    h.push_str(&change_text(&c.history, true));
    h.push_str("</section>\n");
}

/// The leading segmentation's stability warnings (a k no test supported, a
/// segmentation or segments that change on resampling), as a box; the finer
/// segmentations' unstable segments as a note.
fn stability_warnings(h: &mut String, r: &RunData) {
    let (lead, finer) = stability_lines(r);
    if !lead.is_empty() {
        h.push_str("<div class=\"stability-warning\"><b>Before acting on these segments</b><ul>");
        for l in &lead {
            let _ = write!(h, "<li>{}</li>", esc(l));
        }
        h.push_str("</ul></div>");
    }
    if !finer.is_empty() {
        let _ = write!(
            h,
            "<details class=\"note\"><summary>{} finer segment(s) are not stable on resampling</summary><ul>{}</ul></details>",
            finer.len(),
            finer.iter().map(|l| format!("<li>{}</li>", esc(l))).collect::<String>()
        );
    }
}

/// (warnings for the leading segmentation, notes for the others).
pub(super) fn stability_lines(r: &RunData) -> (Vec<String>, Vec<String>) {
    let c = &r.comparison;
    let mut lead = Vec::new();
    let mut finer = Vec::new();
    for (i, seg) in c.segmentations.iter().enumerate() {
        let name = |l: usize| {
            c.comparison
                .profile(&seg.method, l)
                .map_or(String::new(), |p| p.name.clone())
        };
        let w = crate::cluster::stability::warnings(seg, name);
        if i == 0 {
            lead = w;
        } else {
            finer.extend(w);
        }
    }
    (lead, finer)
}

/// The analyst's agreement metrics per method, with how the verdict is read.
pub(super) fn agreement(h: &mut String, r: &RunData) -> crate::error::Result<()> {
    let methods = &r.comparison.comparison.methods;
    h.push_str("<section id=\"agreement\"><h2>Agreement metrics</h2>");
    h.push_str("<table><tr><th>method</th><th>verdict</th><th>ARI</th><th>AMI</th><th>NMI</th><th>homogeneity</th><th>completeness</th><th>purity</th><th>G-test p</th></tr>");
    for mc in methods {
        let a = |f: fn(&Agreement) -> f64| f3(mc.agreement.as_ref().map(f));
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            method::label(&mc.method),
            esc(verdict_word(mc, "–")),
            a(|a| a.ari), a(|a| a.ami), a(|a| a.nmi), a(|a| a.homogeneity), a(|a| a.completeness), a(|a| a.purity),
            mc.test.as_ref().map(|t| t.p_value).filter(|p| p.is_finite()).map_or("–".into(), |p| if p < 1e-300 { "< 1e-300".to_string() } else { format!("{p:.1e}") })
        );
    }
    h.push_str("</table><p class=\"note\">The verdict: <i>none</i> when the G-test of independence between segments and tiers is not significant (p above 0.001) or the chance-corrected AMI is below 0.05; then <i>weak</i> below 0.15, <i>moderate</i> below 0.35, <i>strong</i> above. 1.0 means the segments reproduce the tiers exactly; near 0 means they cut the accounts another way. Purity: the share of accounts in their segment's most common tier.</p>");
    h.push_str("</section>\n");
    Ok(())
}

/// Month-over-month headline, as HTML (`html`) or Markdown.
pub(super) fn change_text(hist: &History, html: bool) -> String {
    let Some(prev) = hist.previous_as_of.as_deref() else {
        return if html {
            "<p>This is the first committed run in this output folder: segment IDs start here.</p>"
                .into()
        } else {
            "First committed run in this output folder; segment IDs start here.\n".into()
        };
    };
    let mut lines = vec![format!(
        "Compared with {prev}: {} accounts in both months, {} new, {} gone.",
        hist.common_accounts, hist.new_accounts, hist.lost_accounts
    )];
    for m in &hist.methods {
        let changes: Vec<&str> = m
            .transitions
            .iter()
            .filter(|t| t.kind != TransitionKind::Survived || t.renamed_from.is_some())
            .map(|t| t.text.as_str())
            .collect();
        lines.push(format!(
            "{}: drift ARI {} ({} accounts changed segment); {}.",
            method::label(&m.method),
            f3(Some(m.drift_ari)),
            m.moved,
            match changes.len() {
                0 => "every segment survived".to_string(),
                n if n > 8 => format!(
                    "{}; and {} more changes (all in comparison.json)",
                    changes[..8].join("; "),
                    n - 8
                ),
                _ => changes.join("; "),
            }
        ));
    }
    if let Some(e) = &hist.exceptions {
        lines.push(format!(
            "Exceptions: {} newly flagged, {} resolved, {} still flagged, {} among new accounts.",
            e.newly_flagged, e.resolved, e.continuing, e.new_accounts_flagged
        ));
    }
    if html {
        format!(
            "<ul>{}</ul>",
            lines
                .iter()
                .map(|l| format!("<li>{}</li>", esc(l)))
                .collect::<String>()
        )
    } else {
        lines.iter().map(|l| format!("- {}\n", md(l))).collect()
    }
}

/// The digest's lead: each method's verdict on the tiers, and its agreement.
pub(super) fn summary_md(m: &mut String, r: &RunData) {
    let cmp = &r.comparison.comparison;
    let (lead, _) = stability_lines(r);
    if !lead.is_empty() {
        m.push_str("## Before acting on these segments\n\n");
        for l in &lead {
            let _ = writeln!(m, "- ⚠ {}", md(l));
        }
        m.push('\n');
    }
    m.push_str("## Agreement with today's tiers\n\n");
    for mc in &cmp.methods {
        let _ = writeln!(
            m,
            "- **{}**: {}",
            method::label(&mc.method),
            md(&verdict_sentence(mc))
        );
    }
    m.push_str(
        "\n| method | segments | verdict | ARI | AMI | purity |\n|---|---|---|---|---|---|\n",
    );
    for mc in &cmp.methods {
        let method = mc.method.as_ref();
        let k = profiles(cmp, method).len();
        let a = mc.agreement;
        let _ = writeln!(
            m,
            "| {} | {k} | {} | {} | {} | {} |",
            method::label(method),
            md(verdict_word(mc, "–")),
            f3(a.map(|a| a.ari)),
            f3(a.map(|a| a.ami)),
            f3(a.map(|a| a.purity))
        );
    }
}
