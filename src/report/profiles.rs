//! Segment profiles (heatmaps of standardised differences) and sizes.

use std::fmt::Write as _;

use super::charts;
use super::format::{esc, methods, or_zero, primary, shown_profiles};
use super::load::Document;
use crate::cluster::method;
use crate::error::Result;
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
        let heat = charts::heatmap(&rows, &cols, &|i, j| {
            let e = effects[i].get(wanted[j]).copied().unwrap_or(0.0);
            (charts::diverging(e / 2.0), signed_tenth(e))
        });
        let _ = write!(h, "<h3>{}</h3>{note}{heat}", method::label(method));
        if method != primary(c) {
            h.push_str(&cross_map(c, method));
        }
        if method == primary(c) {
            h.push_str(&medians_table(&ps, features, &rows));
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

/// How the communities sit in the k-means segments (from the comparison's
/// cross-map): per k-means segment, the communities most of whose accounts
/// it holds, with that share. Shown under the second view's heatmap, so the
/// analyst reads it as a finer (or coarser) cut of the leading one.
fn cross_map(c: &Document, method: &str) -> String {
    let Some(x) = &c.comparison.cross else {
        return String::new();
    };
    let (km, cm) = ("kmeans", "community");
    if ![km, cm].contains(&method) || !methods(c).contains(&km) || !methods(c).contains(&cm) {
        return String::new();
    }
    let comm = super::format::profiles(&c.comparison, cm);
    let mut rows = String::new();
    for k in super::format::profiles(&c.comparison, km) {
        let mut inside: Vec<(&crate::compare::profile::Profile, f64)> = comm
            .iter()
            .filter_map(|p| {
                let (best, share) = *x.community_in_kmeans.get(p.segment)?;
                (best == k.segment).then_some((*p, share))
            })
            .collect();
        inside.sort_by(|a, b| b.0.size.cmp(&a.0.size).then(a.0.id.cmp(&b.0.id)));
        let list: Vec<String> = inside
            .iter()
            .map(|(p, share)| {
                format!(
                    "{} {} · {} ({} accounts, {:.0}% of them here)",
                    method::member(cm),
                    p.id,
                    esc(&p.name),
                    p.size,
                    share * 100.0
                )
            })
            .collect();
        let _ = write!(
            rows,
            "<tr><td>{} {} · {}</td><td class=n>{}</td><td>{}</td></tr>",
            method::member(km),
            k.id,
            esc(&k.name),
            k.size,
            if list.is_empty() {
                "–".to_string()
            } else {
                list.join("<br>")
            }
        );
    }
    let lead_is_km = primary(c) == km;
    format!(
        "<h3>{}</h3><p class=\"note\">Each community under the k-means segment that holds most of its accounts (ARI between the two {:.2}). {}</p><table><tr><th>k-means segment</th><th>accounts</th><th>communities mostly inside it</th></tr>{rows}</table>",
        if lead_is_km { "The communities as a finer view of the k-means segments" } else { "The k-means segments as a coarser view of the communities" },
        x.agreement.ari,
        if lead_is_km {
            "The report leads with k-means (the exceptions, names and map come from it; set <code>tiers.exceptions_from = \"community\"</code> to lead with communities); the communities split its segments further, by who resembles whom."
        } else {
            "The report leads with the communities (<code>tiers.exceptions_from</code>); k-means groups them into fewer, broader segments."
        }
    )
}

/// "+1.2", and "0.0" rather than "-0.0" for what rounds to nothing.
fn signed_tenth(e: f64) -> String {
    if (e * 10.0).round() == 0.0 {
        "0.0".to_string()
    } else {
        format!("{e:+.1}")
    }
}

/// The leading segmentation's profile in business units: each segment's
/// median of every numeric feature clustered on, in the feature's unit
/// (ARR $241k, seat utilisation 92%), shaded by the same standardised
/// difference as the heatmap above so the two read together.
fn medians_table(
    ps: &[&crate::compare::profile::Profile],
    features: &[ColumnInfo],
    rows: &[String],
) -> String {
    let numeric: Vec<(usize, &ColumnInfo)> = features
        .iter()
        .enumerate()
        .filter(|(_, f)| f.role == "numeric")
        .collect();
    if numeric.is_empty() {
        return String::new();
    }
    let cols: Vec<String> = numeric
        .iter()
        .map(|(_, f)| {
            if f.label.is_empty() {
                f.name.clone()
            } else {
                f.label.clone()
            }
        })
        .collect();
    let table = charts::heatmap(rows, &cols, &|i, j| {
        let (col, info) = numeric[j];
        let median = ps[i]
            .medians
            .iter()
            .find(|(f, _)| *f == info.feature)
            .map(|(_, m)| *m)
            .filter(|m| m.is_finite());
        let e = or_zero(ps[i].effects.get(col).copied().unwrap_or(0.0));
        match median {
            Some(m) => (charts::diverging(e / 2.0), info.unit.format(m)),
            None => (plotters::style::colors::WHITE, "–".to_string()),
        }
    });
    format!("<h3>Medians in business units</h3><p class=\"note\">Each segment's median of every numeric feature it was found on, in the feature's own unit, shaded as above.</p>{table}")
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
        let bars = charts::shares(&labels, &acc, val.as_deref());
        let _ = write!(h, "<h3>{}</h3>{note}{bars}", method::label(method));
    }
    h.push_str("</section>\n");
    Ok(())
}
