//! The exceptions: accounts whose tier differs from what their segment and
//! neighbours suggest, as an interactive table.

use std::fmt::Write as _;

use super::format::{esc, md, or_zero, profile_name, word};
use super::load::{Document, RunData};
use crate::cluster::method;
use crate::compare::{Comparison, Exception, ExceptionKind};

/// Exceptions in the interactive table at most (all are in exceptions.csv).
pub const TABLE_EXCEPTIONS: usize = 2000;

pub(super) fn exceptions(h: &mut String, c: &Document) {
    h.push_str("<section id=\"exceptions\"><h2>Exceptions: accounts in the wrong tier</h2>");
    let cmp = &c.comparison;
    let all = &cmp.exceptions;
    let Some(current) = &cmp.tiers else {
        h.push_str("<p>No tiers configured.</p></section>\n");
        return;
    };
    let stake: f64 = all
        .iter()
        .map(|e| e.value_at_stake)
        .filter(|v| v.is_finite())
        .sum();
    let label = cmp.value_label.as_str();
    let unit = cmp.value_unit;
    let ev = cmp.evidence.as_ref();
    let _ = write!(
        h,
        "<p>{} accounts behave like another tier, {} in {} at stake. Each is flagged on its own evidence: the tiers of its {} most similar accounts, against how the accounts of its tier are usually surrounded, with the share of false flags held at {} (Benjamini–Hochberg); on tiers unrelated to behaviour almost nothing is flagged. Confidence estimates the probability that the account behaves like the suggested tier (fitted to the data; it runs optimistic where tiers overlap); in words, <b>strong</b> from {:.2}, <b>likely</b> from {:.2}, and <b>needs review</b> below that or when no feature sets the account apart (only its neighbours do) — those are held back: listed last and never counted as a suggested move. Ranked by band, then by confidence × {} at stake.</p>",
        all.len(),
        esc(&unit.format(stake)),
        esc(label),
        ev.map_or(0, |e| e.neighbours),
        ev.map(|e| e.fdr).filter(|q| q.is_finite()).map_or("–".into(), |q| format!("{:.0}%", q * 100.0)),
        crate::compare::BAND_STRONG,
        crate::compare::BAND_LIKELY,
        esc(label)
    );
    let up = all
        .iter()
        .filter(|e| e.kind == ExceptionKind::Upgrade)
        .count();
    let _ = write!(
        h,
        "<p><b>Upgrade candidates</b>: {up} · <b>Downgrade candidates</b>: {}</p>",
        all.len() - up
    );
    if all.is_empty() {
        h.push_str(
            "<p>None: no account's neighbours point to another tier than its own.</p></section>\n",
        );
        return;
    }
    filters(h, cmp, &current.names);
    let _ = write!(
        h,
        "<table id=\"ex-table\"><thead><tr><th data-key=\"rank\" data-type=\"num\" aria-sort=\"ascending\">#</th><th data-key=\"id\" data-type=\"text\">account</th><th data-key=\"tier\" data-type=\"text\">tier now → suggested</th><th data-key=\"dir\" data-type=\"text\">direction</th><th data-key=\"seg\" data-type=\"num\">segment</th><th data-key=\"conf\" data-type=\"num\">confidence</th><th data-key=\"band\" data-type=\"text\">band</th><th data-key=\"value\" data-type=\"num\">{} at stake</th><th>why</th></tr></thead><tbody>",
        esc(label)
    );
    for (rank, e) in all.iter().take(TABLE_EXCEPTIONS).enumerate() {
        row(h, rank, e, cmp);
    }
    h.push_str("</tbody></table>");
    let more = if all.len() > TABLE_EXCEPTIONS {
        format!(
            "The table holds the {TABLE_EXCEPTIONS} highest-ranked of {}; ",
            all.len()
        )
    } else {
        String::new()
    };
    resolved(h, c);
    let _ = writeln!(h, "<p class=\"note\">{more}every exception is in <code>exceptions.csv</code> (for a CRM import) and <code>assignments.parquet</code> (columns exception, exception_rank, confidence, value_at_stake, reason). Click a column to sort; the controls filter.</p></section>");
}

/// Accounts flagged last month and no longer, and whether they moved as
/// suggested (all in `resolved.csv`).
fn resolved(h: &mut String, c: &Document) {
    let Some(ch) = &c.history.exceptions else {
        return;
    };
    if ch.resolved == 0 {
        return;
    }
    let list = &c.history.resolved;
    let moved = list.iter().filter(|r| r.moved_as_suggested).count();
    let _ = write!(
        h,
        "<details><summary>{} account(s) flagged last month are no longer flagged{}</summary><table><tr><th>account</th><th>last month</th><th>suggested then</th><th>tier now</th></tr>",
        ch.resolved,
        if list.len() as u64 == ch.resolved {
            format!(" ({moved} moved to the tier suggested)")
        } else {
            format!(" (the first {} listed; all in resolved.csv)", list.len())
        }
    );
    for r in list {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            esc(&r.account_id),
            esc(&r.previous_exception),
            esc(r.previous_suggested_tier.as_deref().unwrap_or("–")),
            esc(r.current_tier.as_deref().unwrap_or("–")),
            if r.moved_as_suggested { " ✓" } else { "" }
        );
    }
    h.push_str("</table></details>");
}

/// The table's filters: account search, tier, direction, segment,
/// confidence and value at stake.
fn filters(h: &mut String, cmp: &Comparison, tiers: &[String]) {
    let all = &cmp.exceptions;
    let label = cmp.value_label.as_str();
    let method = cmp.exceptions_from.as_ref();
    let options = |values: &mut dyn Iterator<Item = (String, String)>| -> String {
        values
            .map(|(v, text)| format!("<option value=\"{}\">{}</option>", esc(&v), esc(&text)))
            .collect()
    };
    let mut segs: Vec<u32> = all.iter().map(|e| e.segment_id).collect();
    segs.sort_unstable();
    segs.dedup();
    let _ = write!(
        h,
        "<div class=\"filters\"><label>account <input type=\"search\" id=\"ex-search\" placeholder=\"account id\"></label>\
         <label>tier now <select id=\"ex-tier\"><option value=\"\">all</option>{}</select></label>\
         <label>direction <select id=\"ex-dir\"><option value=\"\">both</option><option value=\"upgrade\">upgrade</option><option value=\"downgrade\">downgrade</option></select></label>\
         <label>{} segment <select id=\"ex-seg\"><option value=\"\">all</option>{}</select></label>\
         <label>confidence ≥ <input type=\"number\" id=\"ex-conf\" min=\"0\" max=\"1\" step=\"0.05\" value=\"0\"></label>\
         <label>{} at stake ≥ <input type=\"text\" inputmode=\"decimal\" id=\"ex-value\" placeholder=\"e.g. 100k\" value=\"0\"></label></div>\
         <p class=\"note\" id=\"ex-count\">showing {} of {}</p>",
        options(&mut tiers.iter().map(|t| (t.to_string(), t.to_string()))),
        method::label(method),
        options(&mut segs.iter().map(|&s| (s.to_string(), format!("{s} · {}", profile_name(cmp, method, s))))),
        esc(label),
        all.len().min(TABLE_EXCEPTIONS),
        all.len().min(TABLE_EXCEPTIONS)
    );
}

/// One exception's row, with its data attributes for sorting and filtering.
fn row(h: &mut String, rank: usize, e: &Exception, cmp: &Comparison) {
    let method = cmp.exceptions_from.as_ref();
    let reasons: Vec<String> = e
        .reasons
        .iter()
        .map(|r| esc(&r.text))
        .chain(std::iter::once(esc(&e.evidence)))
        .collect();
    let id = e.account_id.as_str();
    let tier = e.current_tier.as_str();
    let seg = e.segment_id;
    let conf = or_zero(e.confidence);
    let value = or_zero(e.value_at_stake);
    let dir = word(&e.kind);
    let _ = write!(
        h,
        "<tr data-rank=\"{}\" data-id=\"{}\" data-tier=\"{}\" data-dir=\"{}\" data-seg=\"{seg}\" data-conf=\"{conf}\" data-band=\"{}\" data-value=\"{value}\"><td class=n>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td>{seg} · {}</td><td class=n>{conf:.2}</td><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
        rank + 1,
        esc(id),
        esc(tier),
        esc(&dir),
        e.band.word(),
        rank + 1,
        esc(id),
        esc(tier),
        esc(&e.suggested_tier),
        esc(&dir),
        esc(&profile_name(cmp, method, seg)),
        e.band.word(),
        esc(&e.value_text),
        reasons.join("<br>")
    );
}

/// The digest's ten top-ranked exceptions.
pub(super) fn exceptions_md(m: &mut String, r: &RunData) {
    let cmp = &r.comparison.comparison;
    let label = md(&cmp.value_label);
    let all = &cmp.exceptions;
    let _ = writeln!(m, "\n## Top exceptions ({} in all)\n\n| account | now → suggested | band (confidence) | {label} at stake | why |\n|---|---|---|---|---|", all.len());
    for e in all.iter().take(10) {
        let why = e
            .reasons
            .first()
            .map_or(e.evidence.as_str(), |r| r.text.as_str());
        let _ = writeln!(
            m,
            "| {} | {} → {} | {} ({:.2}) | {} | {} |",
            md(&e.account_id),
            md(&e.current_tier),
            md(&e.suggested_tier),
            e.band.word(),
            or_zero(e.confidence),
            md(&e.value_text),
            md(why)
        );
    }
}
