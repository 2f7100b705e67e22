//! Since last month: how accounts moved between segments and tiers.

use std::fmt::Write as _;

use super::charts;
use super::format::MAX_SHOWN;
use super::load::{Document, RunData};
use super::map::matrix;
use super::summary::change_text;
use crate::cluster::method;
use crate::error::Result;

pub(super) fn migration(h: &mut String, c: &Document) -> Result<()> {
    h.push_str("<section id=\"migration\"><h2>Since last month</h2>");
    let hist = &c.history;
    if hist.previous_as_of.is_none() {
        h.push_str("<p>No earlier committed run in this output folder, so there is no migration to show yet. Next month's run will be matched to this one.</p></section>\n");
        return Ok(());
    }
    h.push_str(&change_text(hist, true));
    for m in &hist.methods {
        let method = m.method.as_ref();
        let mig = &m.migration;
        let prev: Vec<String> = mig
            .previous_ids
            .iter()
            .map(|v| format!("was {v}"))
            .chain(std::iter::once("new accounts".to_string()))
            .collect();
        let cur: Vec<String> = mig
            .current_ids
            .iter()
            .map(|v| format!("now {v}"))
            .chain(std::iter::once("gone".to_string()))
            .collect();
        let counts: Vec<Vec<f64>> = matrix(&mig.counts);
        let new: Vec<f64> = mig.new.iter().map(|&v| v as f64).collect();
        let lost: Vec<f64> = mig.lost.iter().map(|&v| v as f64).collect();
        let (np, nc) = (counts.len(), new.len());
        if np.max(nc) > MAX_SHOWN {
            let _ = write!(h, "<h3>{}: migration</h3><p class=\"note\">{np} segments last month and {nc} now: too many for a readable matrix. The full matrix is in comparison.json (history.methods[].migration), and each account's previous segment in assignments.parquet.</p>", method::label(method));
            continue;
        }
        let value = |i: usize, j: usize| -> f64 {
            match (i < np, j < nc) {
                (true, true) => counts[i][j],
                (true, false) => lost.get(i).copied().unwrap_or(0.0),
                (false, true) => new[j],
                (false, false) => 0.0,
            }
        };
        let row_tot: Vec<f64> = (0..=np)
            .map(|i| (0..=nc).map(|j| value(i, j)).sum::<f64>().max(1.0))
            .collect();
        let heat = charts::heatmap(&prev, &cur, &|i, j| {
            let v = value(i, j);
            (
                charts::sequential(v / row_tot[i]),
                if v > 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                },
            )
        });
        let _ = write!(h, "<h3>{}: migration matrix</h3><p class=\"note\">Rows: last month's segment; columns: this month's. Shading is the row share.</p>{heat}", method::label(method));
    }
    if let Some(t) = &hist.tiers {
        let names = &t.tiers;
        let counts: Vec<Vec<f64>> = matrix(&t.counts);
        let rows: Vec<String> = names
            .iter()
            .map(|n| format!("suggested {n} last month"))
            .collect();
        let heat = charts::heatmap(&rows, names, &|i, j| {
            let tot: f64 = counts[i].iter().sum::<f64>().max(1.0);
            let v = counts[i][j];
            (charts::sequential(v / tot), format!("{v:.0}"))
        });
        let _ = write!(h, "<h3>Suggested tier: last month → this month</h3><p class=\"note\">{} accounts' suggested tier changed.</p>{heat}", t.moved);
    }
    h.push_str("</section>\n");
    Ok(())
}

/// The digest's month-over-month headline.
pub(super) fn migration_md(m: &mut String, r: &RunData) {
    m.push_str("\n## Since last month\n\n");
    m.push_str(&change_text(&r.comparison.history, false));
}
