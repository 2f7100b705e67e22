//! The analyst's report: `report.html` (self-contained) and `report.md`.
//!
//! The report is rendered **from a run directory's outputs alone**
//! (`comparison.json`, `manifest.json`, `quality.json`, `features.parquet`,
//! `assignments.parquet`), by the run itself and by `strata report RUN_DIR`, so
//! what an analyst sees is exactly what the files say. The JSON files are read
//! back into the stage types that wrote them ([`Document`], the quality
//! report), never looked up by string key: a field renamed in a stage is a
//! compile error here, and a run directory whose files this strata cannot
//! read gets an error naming the file and asking to re-run that month, not a
//! report with silently empty sections. Rendering is kept apart from IO:
//! [`load`] reads, [`html`] and [`markdown`] are pure functions of [`RunData`].
//!
//! The page is one table of sections ([`SECTIONS`]): each entry gives its
//! anchor, its nav label, its HTML and, if it has one, its part of the
//! Markdown digest and that part's place there. The nav, the page and the
//! digest are generated from the table, so a new section is one entry.
//!
//! The HTML has no external resources: CSS is inline, every chart is inline
//! SVG ([`charts`], plotters' SVG backend) with a tooltip (`<title>`) on every
//! label and cell, and one small inline script ([`SCRIPT`]) makes the
//! exceptions table sortable, filterable and searchable; so it opens from disk,
//! offline, in any browser, and can be attached to an email. The 2-D map shows
//! at most [`MAP_POINTS`] accounts (an even stride through the run's sorted
//! accounts), which keeps the file small at a million accounts.

pub mod charts;

mod assets;
mod decide;
mod decision;
mod exceptions;
mod format;
mod load;
mod map;
mod methods;
mod migration;
mod outcomes;
mod profiles;
mod quality;
mod summary;
mod tiers;

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::schema::file;
use format::{esc, md};

pub use assets::SCRIPT;
pub use load::{load, ClusterSettings, Document, RunData};
pub use map::{Map, MAP_POINTS};

/// One section of the report.
#[derive(Clone, Copy)]
pub struct Section {
    /// Its anchor (`#id`) on the page.
    pub id: &'static str,
    /// Its link in the page's nav bar.
    pub nav: &'static str,
    /// Whether the run has anything for it (a section without is left out,
    /// link and all).
    pub when: fn(&RunData) -> bool,
    /// Appends its HTML (a whole `<section>`) to the page.
    pub html: fn(&mut String, &RunData) -> Result<()>,
    /// Its part of the Markdown digest, if it has one, and that part's place
    /// there (the digest leads with the verdict; parts go in rising order).
    pub markdown: Option<(u8, fn(&mut String, &RunData))>,
}

/// The report's sections, in page order.
pub static SECTIONS: &[Section] = &[
    Section {
        id: "decision",
        nav: "Decision",
        when: decision::has_decision,
        html: decision::decision,
        markdown: Some((0, decision::decision_md)),
    },
    Section {
        id: "summary",
        nav: "Summary",
        when: always,
        html: |h, r| {
            summary::summary(h, r);
            Ok(())
        },
        markdown: Some((0, summary::summary_md)),
    },
    Section {
        id: "capacity",
        nav: "Staffing",
        when: decide::has_tiers,
        html: decide::capacity,
        markdown: Some((1, decide::capacity_md)),
    },
    Section {
        id: "rule",
        nav: "Tier rule",
        when: decide::has_rule,
        html: decide::rule,
        markdown: Some((1, decide::rule_md)),
    },
    Section {
        id: "quality",
        nav: "Data quality",
        when: always,
        html: |h, r| {
            quality::quality(h, r);
            Ok(())
        },
        markdown: Some((4, quality::quality_md)),
    },
    Section {
        id: "k-selection",
        nav: "Choosing k",
        when: always,
        html: |h, r| methods::k_choice(h, &r.comparison),
        markdown: None,
    },
    Section {
        id: "modularity",
        nav: "Communities",
        when: always,
        html: |h, r| methods::modularity(h, &r.comparison),
        markdown: None,
    },
    Section {
        id: "profiles",
        nav: "Profiles",
        when: always,
        html: |h, r| profiles::profile_heatmaps(h, &r.comparison, &r.manifest.features),
        markdown: None,
    },
    Section {
        id: "segment-rules",
        nav: "Segments as thresholds",
        when: decide::has_explained,
        html: decide::explained,
        markdown: None,
    },
    Section {
        id: "sizes",
        nav: "Sizes",
        when: always,
        html: |h, r| profiles::sizes(h, &r.comparison),
        markdown: None,
    },
    Section {
        id: "agreement",
        nav: "Agreement metrics",
        when: decision::has_decision,
        html: summary::agreement,
        markdown: None,
    },
    Section {
        id: "tiers",
        nav: "Segments × tiers",
        when: always,
        html: |h, r| tiers::tiers(h, &r.comparison),
        markdown: Some((1, tiers::tiers_md)),
    },
    Section {
        id: "exceptions",
        nav: "Exceptions",
        when: always,
        html: |h, r| {
            exceptions::exceptions(h, &r.comparison);
            Ok(())
        },
        markdown: Some((3, exceptions::exceptions_md)),
    },
    Section {
        id: "outcomes",
        nav: "Outcomes",
        when: outcomes::has_outcomes,
        html: outcomes::outcomes,
        markdown: Some((3, outcomes::outcomes_md)),
    },
    Section {
        id: "migration",
        nav: "Since last month",
        when: always,
        html: |h, r| migration::migration(h, &r.comparison),
        markdown: Some((2, migration::migration_md)),
    },
    Section {
        id: "map",
        nav: "Map",
        when: always,
        html: map::map_section,
        markdown: None,
    },
    Section {
        id: "other-methods",
        nav: "Other methods",
        when: methods::has_other_methods,
        html: methods::other_methods,
        markdown: None,
    },
];

/// Every run has something for the section.
fn always(_: &RunData) -> bool {
    true
}

/// The report as one self-contained HTML page.
pub fn html(r: &RunData) -> Result<String> {
    page(r, SECTIONS)
}

/// The page with those of `sections` the run has something for, in their
/// order: the header, a nav bar linking each, then each section.
pub fn page(r: &RunData, sections: &[Section]) -> Result<String> {
    let sections: Vec<&Section> = sections.iter().filter(|s| (s.when)(r)).collect();
    let as_of = r.comparison.as_of.as_str();
    let name = r.manifest.pipeline_name.as_str();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>strata segments · {} · {}</title><style>{}</style></head><body>\n",
        esc(name),
        esc(as_of),
        assets::CSS
    );
    let _ = write!(
        h,
        "<header><h1>Customer segments vs CS tiers — {}</h1><p>pipeline “{}” · strata {} · seed {}</p></header>\n",
        esc(as_of),
        esc(name),
        esc(r.manifest.strata_version.as_str()),
        r.manifest.seed
    );
    h.push_str("<nav>");
    for s in &sections {
        let _ = write!(h, "<a href=\"#{}\">{}</a>", s.id, esc(s.nav));
    }
    h.push_str("</nav>\n<main>\n");
    for s in sections {
        (s.html)(&mut h, r)?;
    }
    let _ = writeln!(h, "</main><script>{SCRIPT}</script></body></html>");
    Ok(h)
}

/// The headline content as Markdown (for email or chat).
pub fn markdown(r: &RunData) -> String {
    digest(r, SECTIONS)
}

/// The title, then the Markdown part of each of `sections` that has one
/// (and something to show), in the order of their places.
pub fn digest(r: &RunData, sections: &[Section]) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Customer segments vs CS tiers — {}\n\npipeline “{}”, {} accounts, strata {}\n",
        md(&r.comparison.as_of),
        md(r.manifest.pipeline_name.as_str()),
        r.manifest.accounts,
        r.manifest.strata_version.as_str()
    );
    let mut parts: Vec<(u8, fn(&mut String, &RunData))> = sections
        .iter()
        .filter(|s| (s.when)(r))
        .filter_map(|s| s.markdown)
        .collect();
    parts.sort_by_key(|(place, _)| *place);
    for (_, part) in parts {
        part(&mut m, r);
    }
    m
}

/// Render `report.html` and `report.md` into a run directory. Returns the
/// HTML size in bytes.
/// Each file is written beside its final name and renamed over it, so
/// re-rendering a committed run never leaves half a report.
pub fn write(dir: &Path) -> Result<usize> {
    write_with(dir, None)
}

/// [`write`], with the run's feature matrix when the caller holds it (the
/// run, just after writing it to `features.parquet`): the map reads it in
/// place instead of reading a second copy from the file.
pub fn write_with(dir: &Path, matrix: Option<ndarray::ArrayView2<'_, f64>>) -> Result<usize> {
    let data = load::load_with(dir, matrix)?;
    let t = std::time::Instant::now();
    let page = html(&data)?;
    crate::memory::trace("report: html", t);
    for (name, text) in [
        (file::REPORT_HTML, page.as_str()),
        (file::REPORT_MD, markdown(&data).as_str()),
    ] {
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(name);
        let written = crate::rundir::write_file(&tmp, text.as_bytes()).and_then(|()| {
            std::fs::rename(&tmp, &path).map_err(|e| Error::io("writing", &path, e))
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
    }
    Ok(page.len())
}

#[cfg(test)]
mod tests {
    use super::format::{md, shown_profiles};
    use super::map::top_eigen;
    use crate::compare::Comparison;

    #[test]
    fn markdown_escapes_cells_html_and_line_breaks() {
        assert_eq!(
            md("a|b\nc <script>x</script>"),
            "a\\|b c \\<script\\>x\\</script\\>"
        );
        assert_eq!(md("A_1 *bold* [x](y)"), "A\\_1 \\*bold\\* \\[x\\](y)");
        assert_eq!(md("plain text 1.5"), "plain text 1.5");
    }

    #[test]
    fn many_communities_show_the_largest_with_a_note() {
        let profiles: Vec<serde_json::Value> = (1..=40)
            .map(|id| {
                serde_json::json!({
                    "method": "community", "segment": 40 - id, "id": id, "name": format!("c{id}"),
                    "size": id * 10, "share_accounts": 0.01, "share_value": null, "medians": [],
                    "top_levels": [], "distinguishing": [], "effects": []
                })
            })
            .collect();
        // The comparison as comparison.json holds it (read back typed).
        let c: Comparison = serde_json::from_value(serde_json::json!({
            "tiers": null, "methods": [], "cross": null, "exceptions_from": "community",
            "exceptions": [], "evidence": null, "value_label": "ARR", "value_unit": "usd",
            "profiles": profiles
        }))
        .unwrap();
        let (shown, note) = shown_profiles(&c, "community");
        let ids: Vec<u32> = shown.iter().map(|p| p.id).collect();
        assert_eq!(
            ids,
            (11..=40).collect::<Vec<u32>>(),
            "the 30 largest, in ID order"
        );
        assert!(note.contains("30 largest of 40 communities"), "{note}");
        let (all, none) = shown_profiles(&c, "kmeans");
        assert!(all.is_empty() && none.is_empty());
    }

    #[test]
    fn pca_axis_of_a_diagonal_covariance_is_the_largest_variance() {
        let (v, l) = top_eigen(&[vec![1.0, 0.0], vec![0.0, 4.0]]);
        assert!((l - 4.0).abs() < 1e-9);
        assert!((v[1] - 1.0).abs() < 1e-6 && v[0].abs() < 1e-6);
    }
}
