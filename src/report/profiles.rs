//! Segment profiles (heatmaps of standardised differences) and sizes.

use std::fmt::Write as _;

use super::charts;
use super::format::{esc, methods, or_zero, primary, shown_profiles};
use super::load::Document;
use crate::cluster::method;
use crate::error::{Error, Result};
use crate::features::ColumnInfo;

pub(super) fn profile_heatmaps(
    h: &mut String,
    c: &Document,
    features: &[ColumnInfo],
) -> Result<()> {
    h.push_str("<section id=\"profiles\"><h2>Segment profiles</h2><p class=\"note\">Each cell: how far the segment's mean is from the other accounts', in pooled standard deviations (orange above, blue below). Columns: the features that distinguish segments most.</p>");
    let columns: Vec<String> = features.iter().map(|f| f.name.clone()).collect();
    // A column's readable label (manifests before labels: its name).
    let label_of = |f: &ColumnInfo| -> String {
        if f.label.is_empty() {
            f.name.clone()
        } else {
            f.label.clone()
        }
    };
    for method in methods(c) {
        let (ps, note) = shown_profiles(&c.comparison, method);
        if ps.is_empty() {
            continue;
        }
        // The top distinguishing columns of every segment, in matrix order.
        let mut wanted: Vec<usize> = Vec::new();
        for p in &ps {
            for d in p.distinguishing.iter().take(3) {
                if let Some(i) = columns.iter().position(|c| *c == d.column) {
                    if !wanted.contains(&i) {
                        wanted.push(i);
                    }
                }
            }
        }
        wanted.sort_unstable();
        wanted.truncate(16);
        let rows: Vec<String> = ps
            .iter()
            .map(|p| format!("{} {}: {}", method::member(method), p.id, p.name))
            .collect();
        // Columns by their readable labels (manifests before labels: the name).
        let cols: Vec<String> = wanted.iter().map(|&i| label_of(&features[i])).collect();
        let effects: Vec<Vec<f64>> = ps
            .iter()
            .map(|p| p.effects.iter().copied().map(or_zero).collect())
            .collect();
        let svg = charts::heatmap(
            &rows,
            &cols,
            &|i, j| {
                let e = effects[i].get(wanted[j]).copied().unwrap_or(0.0);
                (charts::diverging(e / 2.0), format!("{e:+.1}"))
            },
            46,
        )
        .map_err(Error::Internal)?;
        let _ = write!(h, "<h3>{}</h3>{note}{svg}", method::label(method));
        if method == primary(c) {
            h.push_str("<table><tr><th>segment</th><th>name</th><th>accounts</th><th>what stands out (median; standardised difference from the rest)</th><th>typical levels</th></tr>");
            for p in &ps {
                let dist: Vec<String> = p
                    .distinguishing
                    .iter()
                    .take(4)
                    .map(|d| {
                        let name = d.column.as_str();
                        let info = features.iter().find(|c| c.name == name);
                        let label = info.map_or_else(|| name.to_string(), label_of);
                        // A number in its unit (ARR $241k), with the
                        // standardised difference beside it.
                        let median = p
                            .medians
                            .iter()
                            .find(|(f, _)| {
                                info.is_some_and(|c| c.role == "numeric" && &c.feature == f)
                            })
                            .map(|(_, m)| *m)
                            .filter(|m| m.is_finite());
                        match (median, info) {
                            (Some(m), Some(c)) => format!(
                                "{label} {} ({:+.1} sd)",
                                c.unit.format(m),
                                or_zero(d.effect)
                            ),
                            _ => format!("{label} ({:+.1} sd)", or_zero(d.effect)),
                        }
                    })
                    .collect();
                let levels: Vec<String> = p
                    .top_levels
                    .iter()
                    .filter(|(_, _, share)| share.is_finite())
                    .map(|(feature, level, share)| {
                        // The level column's label ("industry: Retail"), else the raw names.
                        let label = features
                            .iter()
                            .find(|c| c.feature == *feature && c.level.as_deref() == Some(level))
                            .map_or_else(
                                || format!("{}: {level}", feature.replace('_', " ")),
                                label_of,
                            );
                        format!("{label} ({:.0}%)", share * 100.0)
                    })
                    .collect();
                let _ = write!(h, "<tr><td class=n>{}</td><td>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
                    p.id, esc(&p.name), p.size, esc(&dist.join(", ")), esc(&levels.join(", ")));
            }
            h.push_str("</table>");
        }
    }
    h.push_str("</section>\n");
    Ok(())
}

pub(super) fn sizes(h: &mut String, c: &Document) -> Result<()> {
    let label = esc(&c.comparison.value_label);
    let _ = write!(h, "<section id=\"sizes\"><h2>Segment sizes and {label} share</h2><p class=\"legend\"><span style=\"background:#0072B2\"></span>share of accounts<span style=\"background:#E69F00\"></span>share of {label} (the value feature)</p>");
    for method in methods(c) {
        let (ps, note) = shown_profiles(&c.comparison, method);
        if ps.is_empty() {
            continue;
        }
        let labels: Vec<String> = ps
            .iter()
            .map(|p| format!("{} · {}", p.id, p.name))
            .collect();
        let acc: Vec<f64> = ps.iter().map(|p| or_zero(p.share_accounts)).collect();
        let val: Option<Vec<f64>> = ps
            .iter()
            .map(|p| p.share_value.filter(|v| v.is_finite()))
            .collect();
        let svg = charts::shares(&labels, &acc, val.as_deref()).map_err(Error::Internal)?;
        let _ = write!(h, "<h3>{}</h3>{note}{svg}", method::label(method));
    }
    h.push_str("</section>\n");
    Ok(())
}
