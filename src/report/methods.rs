//! Each method's own section: choosing k for k-means, modularity and the
//! resolution sweep for communities.

use std::fmt::Write as _;

use super::charts;
use super::format::{esc, f3, json_number, or_zero, word};
use super::load::{Document, RunData};
use crate::cluster::kmeans::KScore;
use crate::cluster::{method, Details};
use crate::error::{Error, Result};

pub(super) fn k_choice(h: &mut String, c: &Document) -> Result<()> {
    h.push_str("<section id=\"k-selection\"><h2>Choosing k (k-means)</h2>");
    let found = c.segmentations.iter().find_map(|s| match &s.details {
        Details::KMeans(d) => Some((s.sizes.len(), &d.chosen_by, &d.k_scores)),
        Details::Community(_) | Details::Other { .. } => None,
    });
    let Some((chosen, chosen_by, scores)) = found else {
        h.push_str("<p>No k-means in this run.</p></section>\n");
        return Ok(());
    };
    let _ = write!(h, "<p>k = <b>{chosen}</b>: {}.</p>", esc(chosen_by));
    if scores.len() > 1 {
        let ks: Vec<f64> = scores.iter().map(|s| s.k as f64).collect();
        let get = |f: fn(&KScore) -> f64| -> Vec<f64> { scores.iter().map(f).collect() };
        let mut series = vec![
            ("silhouette", get(|s| s.silhouette), Some(true)),
            (
                "Calinski–Harabasz",
                get(|s| s.calinski_harabasz),
                Some(true),
            ),
            ("Davies–Bouldin", get(|s| s.davies_bouldin), Some(false)),
            ("inertia (elbow)", get(|s| s.inertia), None),
        ];
        let ps = get(|s| s.prediction_strength);
        if ps.iter().any(|v| v.is_finite()) {
            series.push(("prediction strength", ps, Some(true)));
        }
        let svg =
            charts::small_multiples(&ks, "k", &series, chosen as f64).map_err(Error::Internal)?;
        let _ = write!(h, "<div class=\"charts\">{svg}</div><p class=\"note\">The black dot marks the chosen k.</p>");
        strength_table(h, scores);
    } else {
        h.push_str(
            "<p class=\"note\">k was fixed in the pipeline file, so no other k was scored.</p>",
        );
    }
    h.push_str("</section>\n");
    Ok(())
}

/// Each scored k's prediction strength with its standard error and the
/// half-splits it took, and whether it passed (runs written before the
/// standard error was kept show none).
fn strength_table(h: &mut String, scores: &[KScore]) {
    let scored: Vec<&KScore> = scores
        .iter()
        .filter(|s| s.prediction_strength_splits > 0)
        .collect();
    if scored.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<details><summary>Prediction strength by k (a k passes at {} or more by {} standard errors)</summary><table class=\"strength\"><tr><th>k</th><th>prediction strength</th><th>standard error</th><th>half-splits</th><th>passes</th></tr>",
        crate::cluster::kmeans::prediction::THRESHOLD,
        crate::cluster::kmeans::prediction::PASS_SE
    );
    for s in scored {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.k,
            f3(Some(s.prediction_strength)),
            f3(Some(s.prediction_strength_se)),
            s.prediction_strength_splits,
            if s.passes() { "yes" } else { "no" }
        );
    }
    h.push_str("</table></details>");
}

pub(super) fn modularity(h: &mut String, c: &Document) -> Result<()> {
    h.push_str("<section id=\"modularity\"><h2>Communities: modularity and resolution</h2>");
    let found = c.segmentations.iter().find_map(|s| match &s.details {
        Details::Community(d) => Some((
            &d.algorithm,
            d.resolution,
            d.modularity,
            &d.sweep,
            &d.graph,
            d.warm_start,
        )),
        Details::KMeans(_) | Details::Other { .. } => None,
    });
    let Some((algorithm, resolution, modularity, sweep, g, warm_start)) = found else {
        h.push_str("<p>No community detection in this run.</p></section>\n");
        return Ok(());
    };
    let _ = write!(
        h,
        "<p>{} on a {}-nearest-neighbour similarity graph ({} accounts, {} edges, {} kNN, {} weights, {} connected component(s)). Chosen resolution γ = {}: modularity <b>{}</b>{}.</p>",
        esc(&word(algorithm)),
        g.neighbors, g.nodes, g.edges,
        esc(&g.knn_label()),
        esc(&word(&g.weighting)),
        g.connected_components,
        json_number(resolution), f3(Some(modularity)),
        if warm_start { ", started from last month's communities" } else { "" }
    );
    if sweep.len() > 1 {
        let xs: Vec<f64> = sweep.iter().map(|s| or_zero(s.resolution)).collect();
        let q: Vec<f64> = sweep.iter().map(|s| s.modularity).collect();
        let k: Vec<f64> = sweep.iter().map(|s| s.communities as f64).collect();
        let svg = charts::small_multiples(
            &xs,
            "resolution γ",
            &[("modularity", q, None), ("communities", k, None)],
            if resolution.is_finite() {
                resolution
            } else {
                1.0
            },
        )
        .map_err(Error::Internal)?;
        let _ = write!(h, "<div class=\"charts\">{svg}</div>");
    }
    h.push_str("<table><tr><th>γ</th><th>modularity</th><th>communities</th><th>small ones merged</th></tr>");
    for s in sweep {
        let _ =
            write!(
            h,
            "<tr><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            json_number(s.resolution), f3(Some(s.modularity)), s.communities, s.merged_small
        );
    }
    h.push_str("</table><p class=\"note\">Modularity above about 0.3 means clearly more links inside communities than chance. A larger γ gives more, smaller communities; list several in <code>community.resolution</code> to compare.</p></section>\n");
    Ok(())
}

/// Whether a method the report has no section of its own for (its details
/// are `Other`: a library user's method, say) took part in the run.
pub(super) fn has_other_methods(r: &RunData) -> bool {
    r.comparison
        .segmentations
        .iter()
        .any(|s| matches!(s.details, Details::Other { .. }))
}

/// Each such method: what it found, its settings (its own pipeline section,
/// from the manifest) and the values it reports.
pub(super) fn other_methods(h: &mut String, r: &RunData) -> Result<()> {
    h.push_str("<section id=\"other-methods\"><h2>Other methods</h2>");
    for s in &r.comparison.segmentations {
        let Details::Other { values } = &s.details else {
            continue;
        };
        let name = s.method.as_ref();
        let _ = write!(
            h,
            "<h3>{}</h3><p>{} {}.</p><table><tr><th>setting or value</th><th></th></tr>",
            esc(&method::label(name)),
            s.k(),
            method::noun(name)
        );
        let settings = r.manifest.cluster.methods.get(name);
        for (k, v) in settings.and_then(|v| v.as_object()).into_iter().flatten() {
            let _ = write!(
                h,
                "<tr><td>{}.{}</td><td>{}</td></tr>",
                esc(name),
                esc(k),
                esc(&v.to_string())
            );
        }
        for (k, v) in values {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=n>{}</td></tr>",
                esc(k),
                json_number(*v)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
    Ok(())
}
