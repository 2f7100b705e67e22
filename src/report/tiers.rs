//! Segments against tiers: the mapping of each segment to a tier.

use std::fmt::Write as _;

use super::charts;
use super::format::{esc, md, or_zero, pct, primary, profile_name, profiles, shown_profiles};
use super::load::{Document, RunData};
use super::map::matrix;
use crate::cluster::method;
use crate::compare::Verdict;
use crate::error::Result;

pub(super) fn tiers(h: &mut String, c: &Document) -> Result<()> {
    h.push_str("<section id=\"tiers\"><h2>Segments × tiers</h2>");
    let Some(current) = &c.comparison.tiers else {
        h.push_str("<p>No tiers configured (<code>[tiers]</code> in the pipeline file), so there is nothing to compare with.</p></section>\n");
        return Ok(());
    };
    let tier_names = &current.names;
    h.push_str("<p class=\"note\">Accounts per segment (rows) and current tier (columns). Shading is the <b>lift</b>: the tier's share in the segment divided by its share of all accounts (white: as common as anywhere, dark: three times as common or more), so a small tier stands out where it is concentrated, whatever its size. A segment maps to a tier only where that tier is significantly over-represented (one-sided hypergeometric test, Benjamini–Hochberg q ≤ 0.05, odds ratio ≥ 2); otherwise it is <i>mixed</i>.</p>");
    for mc in &c.comparison.methods {
        let method = mc.method.as_ref();
        let mapping = &mc.mapping;
        let table: Vec<Vec<f64>> = matrix(&mc.contingency);
        // Rows in ID order, the shown segments only.
        let (shown, note) = shown_profiles(&c.comparison, method);
        let shown_ids: Vec<u32> = shown.iter().map(|p| p.id).collect();
        let mut order: Vec<usize> = (0..mapping.len())
            .filter(|&i| shown_ids.contains(&mapping[i].id))
            .collect();
        order.sort_by_key(|&i| mapping[i].id);
        let rows: Vec<String> = order
            .iter()
            .map(|&i| {
                format!(
                    "{} {} · {}",
                    method::member(method),
                    mapping[i].id,
                    profile_name(&c.comparison, method, mapping[i].id)
                )
            })
            .collect();
        let lifts: Vec<Vec<f64>> = order
            .iter()
            .map(|&i| mapping[i].lift.iter().copied().map(or_zero).collect())
            .collect();
        let heat = charts::heatmap(&rows, tier_names, &|i, j| {
            let v = table[order[i]].get(j).copied().unwrap_or(0.0);
            let lift = lifts[i].get(j).copied().unwrap_or(0.0);
            // log lift: 1 is white, 3 or more the darkest.
            let shade = (lift.max(1e-9).ln() / 3f64.ln()).clamp(0.0, 1.0);
            (charts::sequential(shade), format!("{v:.0} ×{lift:.1}"))
        });
        let _ = write!(h, "<h3>{}</h3>{note}{heat}", method::label(method));
        h.push_str("<table><tr><th>segment</th><th>accounts</th><th>maps to</th><th>its lift</th><th>most common tier (share)</th><th>paired tier (one-to-one)</th></tr>");
        // A one-to-one pairing says something only where segments follow
        // the tiers: not under verdict none, nor for a mixed segment.
        let agrees = c
            .comparison
            .methods
            .iter()
            .find(|x| x.method == method)
            .and_then(|x| x.verdict)
            .is_some_and(|v| v != Verdict::None);
        for &i in &order {
            let m = &mapping[i];
            let mapped = m.tier.as_deref();
            let paired = m
                .matched_tier
                .as_deref()
                .filter(|_| agrees && mapped.is_some());
            let lift = mapped
                .and_then(|t| tier_names.iter().position(|n| n == t))
                .and_then(|j| m.lift.get(j).copied())
                .filter(|l| l.is_finite())
                .map_or("–".into(), |l| format!("×{l:.2}"));
            let close = m.close_to.as_deref().map_or(String::new(), |t| {
                format!(" <span class=\"warning\" title=\"a close call: {} is almost as over-represented\">≈ {}</span>", esc(t), esc(t))
            });
            let _ = write!(h, "<tr><td class=n>{}</td><td class=n>{}</td><td>{}{close}</td><td class=n>{}</td><td>{} ({})</td><td>{}</td></tr>",
                m.id, m.size, mapped.map_or("<i>mixed</i>".into(), esc), lift, esc(&m.most_common), pct(Some(m.share)), esc(paired.unwrap_or("–")));
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
    Ok(())
}

/// The digest's table of the primary method's segments and their tiers.
pub(super) fn tiers_md(m: &mut String, r: &RunData) {
    let c = &r.comparison;
    let cmp = &c.comparison;
    let label = md(&cmp.value_label);
    let primary = primary(c);
    let _ = writeln!(m, "\n## {} {}\n\n| segment | name | accounts | {label} share | maps to tier |\n|---|---|---|---|---|", method::label(primary), method::noun(primary));
    let mapping = cmp
        .methods
        .iter()
        .find(|x| x.method == primary)
        .map(|x| &x.mapping);
    for p in profiles(cmp, primary) {
        let tier = mapping
            .and_then(|mp| mp.iter().find(|x| x.id == p.id))
            .map(|x| match &x.tier {
                Some(t) => match &x.close_to {
                    Some(o) => format!("{} (a close call with {})", md(t), md(o)),
                    None => md(t),
                },
                None => format!(
                    "mixed (most common: {}, {})",
                    md(&x.most_common),
                    pct(Some(x.share))
                ),
            })
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            m,
            "| {} | {} | {} ({}) | {} | {} |",
            p.id,
            md(&p.name),
            p.size,
            pct(Some(p.share_accounts)),
            pct(p.share_value),
            tier
        );
    }
}
