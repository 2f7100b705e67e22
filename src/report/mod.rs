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
//! The HTML has no external resources: CSS is inline, every chart is inline
//! SVG ([`charts`], plotters' SVG backend) with a tooltip (`<title>`) on every
//! label and cell, and one small inline script ([`SCRIPT`]) makes the
//! exceptions table sortable, filterable and searchable; so it opens from disk,
//! offline, in any browser, and can be attached to an email. The 2-D map shows
//! at most [`MAP_POINTS`] accounts (an even stride through the run's sorted
//! accounts), which keeps the file small at a million accounts.

pub mod charts;

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::de::IgnoredAny;

use crate::cluster::kmeans::KScore;
use crate::cluster::{method, Details, Segmentation};
use crate::compare::profile::Profile;
use crate::compare::{Comparison, ExceptionKind, MethodComparison, Verdict};
use crate::error::{Error, Result};
use crate::features::ColumnInfo;
use crate::history::{History, TransitionKind};
use crate::partition::Agreement;
use crate::quality::{QualityReport, Severity};
use crate::rundir::{read_json, read_manifest, read_parquet};
use crate::schema::{column, file, ComparisonFile, Manifest};

/// Accounts drawn on the 2-D map at most.
pub const MAP_POINTS: usize = 3000;
/// Exceptions in the interactive table at most (all are in exceptions.csv).
pub const TABLE_EXCEPTIONS: usize = 2000;

/// The 2-D projection of the accounts.
#[derive(Debug, Clone)]
pub struct Map {
    /// (pc1, pc2, k-means segment index into `groups`)
    pub points: Vec<(f64, f64, usize)>,
    pub groups: Vec<String>,
    pub total: usize,
    /// Share of variance of each component.
    pub explained: [f64; 2],
}

/// `comparison.json` read back into the stage types that wrote it (the
/// cluster parameters are in the manifest, so the report skips them).
pub type Document = ComparisonFile<IgnoredAny, Vec<Segmentation>, Comparison, History>;

/// Everything the report shows, read from a run directory.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub comparison: Document,
    pub manifest: Manifest<IgnoredAny, Vec<ColumnInfo>>,
    pub quality: QualityReport,
    pub map: Option<Map>,
}

/// Read a run directory (staged or committed).
pub fn load(dir: &Path) -> Result<RunData> {
    for f in [file::COMPARISON, file::MANIFEST, file::QUALITY] {
        if !dir.join(f).is_file() {
            return Err(Error::Usage(format!(
                "{} has no {f}: give a run directory made by `strata run` (e.g. out/sample/2026-11), not one made with --until features",
                dir.display()
            )));
        }
    }
    let comparison: Document = read_json(&dir.join(file::COMPARISON))?;
    let map = map(dir, &comparison)?;
    Ok(RunData {
        dir: dir.to_path_buf(),
        manifest: read_manifest(dir)?,
        quality: read_json(&dir.join(file::QUALITY))?,
        comparison,
        map,
    })
}

/// PCA of the normalised matrix (all accounts for the axes, a stride sample
/// for the points). Cost O(n·d² + d³).
fn map(dir: &Path, comparison: &Document) -> Result<Option<Map>> {
    let fpath = dir.join(file::FEATURES);
    let apath = dir.join(file::ASSIGNMENTS);
    if !fpath.is_file() || !apath.is_file() {
        return Ok(None);
    }
    let schema_cols: Vec<String> = {
        let f = File::open(&fpath).map_err(|e| Error::io("opening", &fpath, e))?;
        let mut r = ParquetReader::new(f);
        r.schema()?
            .iter_names()
            .filter(|n| n.starts_with(column::MATRIX_PREFIX))
            .map(|n| n.to_string())
            .collect()
    };
    if schema_cols.is_empty() {
        return Ok(None);
    }
    let df = read_parquet(&fpath, Some(schema_cols.clone()))?;
    // The map colours the primary method's segments.
    let primary = primary(comparison);
    let column = column::segment(primary);
    let a = read_parquet(&apath, Some(vec![column.clone()]))?;
    let seg = a
        .column(&column)?
        .as_materialized_series()
        .cast(&DataType::UInt32)?;
    let seg: Vec<Option<u32>> = seg.u32()?.iter().collect();
    let n = df.height();
    let d = schema_cols.len();
    let cols: Vec<Vec<f64>> = df
        .columns()
        .iter()
        .map(|c| -> Result<Vec<f64>> {
            let s = c.as_materialized_series().cast(&DataType::Float64)?;
            Ok(s.f64()?.iter().map(|v| v.unwrap_or(0.0)).collect())
        })
        .collect::<Result<_>>()?;
    if n < 3 {
        return Ok(None);
    }
    let mean: Vec<f64> = cols
        .iter()
        .map(|c| c.iter().sum::<f64>() / n as f64)
        .collect();
    let mut cov = vec![vec![0.0; d]; d];
    for a in 0..d {
        for b in a..d {
            let s: f64 = (0..n)
                .map(|i| (cols[a][i] - mean[a]) * (cols[b][i] - mean[b]))
                .sum::<f64>()
                / (n - 1) as f64;
            cov[a][b] = s;
            cov[b][a] = s;
        }
    }
    let total_var: f64 = (0..d).map(|i| cov[i][i]).sum::<f64>().max(1e-300);
    let (v1, l1) = top_eigen(&cov);
    // Deflate and take the second component.
    let mut cov2 = cov.clone();
    for a in 0..d {
        for b in 0..d {
            cov2[a][b] -= l1 * v1[a] * v1[b];
        }
    }
    let (v2, l2) = top_eigen(&cov2);
    let stride = n.div_ceil(MAP_POINTS).max(1);
    let ids: Vec<u32> = comparison
        .segmentations
        .iter()
        .find(|m| m.method == primary)
        .map(|m| m.ids.clone())
        .unwrap_or_default();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort_unstable();
    let groups: Vec<String> = sorted_ids
        .iter()
        .map(|id| {
            let name = profile_name(&comparison.comparison, primary, *id);
            format!("{} {id}: {name}", method::member(primary))
        })
        .collect();
    let points = (0..n)
        .step_by(stride)
        .filter_map(|i| {
            let g = sorted_ids.iter().position(|&id| Some(id) == seg[i])?;
            let (mut x, mut y) = (0.0, 0.0);
            for j in 0..d {
                let c = cols[j][i] - mean[j];
                x += c * v1[j];
                y += c * v2[j];
            }
            Some((round3(x), round3(y), g))
        })
        .collect();
    Ok(Some(Map {
        points,
        groups,
        total: n,
        explained: [l1 / total_var, l2 / total_var],
    }))
}

/// A number for a chart: a missing one (NaN; `null` in the file) as 0.
fn or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// Counts as chart values, rows.
fn matrix(rows: &[Vec<u64>]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect()
}

/// A number as the run's JSON files write it (`1.0`, `0.5`; `null` if missing).
fn json_number(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_default()
}

/// A value's name as the run's JSON files write it (`leiden`, `upgrade`, …).
fn word<T: serde::Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Largest eigenvalue and its unit eigenvector of a symmetric PSD matrix (power
/// iteration from a fixed start, so the result is deterministic; sign fixed so
/// the largest component is positive).
fn top_eigen(m: &[Vec<f64>]) -> (Vec<f64>, f64) {
    let d = m.len();
    let mut v: Vec<f64> = (0..d).map(|i| 1.0 + i as f64 * 1e-3).collect();
    let mut lambda = 0.0;
    for _ in 0..500 {
        let w: Vec<f64> = (0..d)
            .map(|i| (0..d).map(|j| m[i][j] * v[j]).sum())
            .collect();
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm < 1e-300 {
            break;
        }
        let next: Vec<f64> = w.iter().map(|x| x / norm).collect();
        let diff: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
        v = next;
        lambda = norm;
        if diff < 1e-12 {
            break;
        }
    }
    let big = v
        .iter()
        .copied()
        .max_by(|a, b| a.abs().total_cmp(&b.abs()))
        .unwrap_or(1.0);
    if big < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    (v, lambda)
}

fn profile_name(c: &Comparison, method: &str, id: u32) -> String {
    profiles(c, method)
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.name.clone())
        .unwrap_or_default()
}

fn profiles<'a>(c: &'a Comparison, method: &str) -> Vec<&'a Profile> {
    let mut v: Vec<&Profile> = c.profiles.iter().filter(|p| p.method == method).collect();
    v.sort_by_key(|p| p.id);
    v
}

/// Segments drawn per chart at most: with more (communities at a million
/// accounts number 100+), the largest are shown and the page says so.
pub const MAX_SHOWN: usize = 30;

/// The profiles a chart shows (the [`MAX_SHOWN`] largest, in ID order) and a
/// note when some are left out.
fn shown_profiles<'a>(c: &'a Comparison, method: &str) -> (Vec<&'a Profile>, String) {
    let mut ps = profiles(c, method);
    let total = ps.len();
    if total <= MAX_SHOWN {
        return (ps, String::new());
    }
    ps.sort_by_key(|p| std::cmp::Reverse(p.size));
    ps.truncate(MAX_SHOWN);
    ps.sort_by_key(|p| p.id);
    let note = format!(
        "<p class=\"note\">Showing the {MAX_SHOWN} largest of {total} {}; every one is in segments.parquet.</p>",
        method::noun(method)
    );
    (ps, note)
}

/// The methods of the run, in its order (the primary one first).
fn methods(c: &Document) -> Vec<&str> {
    c.segmentations.iter().map(|s| s.method.as_ref()).collect()
}

/// The run's primary method: its segments colour the map and get the table.
fn primary(c: &Document) -> &str {
    methods(c).first().copied().unwrap_or("")
}

/// A method's verdict on agreement with the tiers, in words (from the
/// comparison's own sentence), with the AMI behind it.
fn verdict_sentence(mc: &MethodComparison) -> String {
    match &mc.verdict_text {
        Some(text) => format!("{text} (AMI {})", f3(mc.agreement.map(|a| a.ami))),
        None => "not measured: too few accounts have a known tier".into(),
    }
}

/// A method's verdict in one word (`none` … `strong`), or `missing`.
fn verdict_word(mc: &MethodComparison, missing: &'static str) -> &'static str {
    mc.verdict.map_or(missing, Verdict::word)
}

/// HTML-escape.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escape text for Markdown, table cells included: every character Markdown
/// could read as markup (including `|`, which would add a cell, and `<`, which
/// renderers that allow HTML would take as a tag) gets a backslash, and line
/// breaks become spaces (a newline would end the table row).
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn f3(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or("–".into(), |x| format!("{x:.3}"))
}

fn pct(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or("–".into(), |x| format!("{:.0}%", x * 100.0))
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;background:#fafafa;line-height:1.45}
header{background:#0b3c5d;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #ddd;padding:8px 32px;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#0b3c5d;text-decoration:none;font-size:14px}
main{padding:8px 32px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:14px 20px;margin:16px 0}
h2{font-size:18px;margin:4px 0 10px;color:#0b3c5d}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f6f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:10px 14px;min-width:150px;background:#fdfdfd}
.card b{display:block;font-size:22px;color:#0b3c5d}
.charts{display:flex;flex-wrap:wrap;gap:8px}
.note{color:#555;font-size:13px}
.error{color:#b2182b;font-weight:600}.warning{color:#8a5a00;font-weight:600}.info{color:#555}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px -2px 10px;border:1px solid #ccc}
.filters{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:13px;margin:8px 0}
.filters input,.filters select{font:inherit;margin-left:4px}.filters input[type=number]{width:6em}
th.sortable{cursor:pointer;user-select:none}th.sortable:hover{background:#e4ebf2}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
details summary{cursor:pointer}
"#;

/// The exceptions table's behaviour: filter by the controls above it, sort
/// by a clicked header (again: the other way), and say how many rows show.
pub const SCRIPT: &str = r#"
(function () {
  var t = document.getElementById("ex-table");
  if (!t) { return; }
  var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  function q(id) { return document.getElementById(id); }
  function apply() {
    var s = q("ex-search").value.trim().toLowerCase(), tier = q("ex-tier").value,
        dir = q("ex-dir").value, seg = q("ex-seg").value,
        conf = parseFloat(q("ex-conf").value) || 0, val = parseFloat(q("ex-value").value) || 0,
        shown = 0;
    rows.forEach(function (r) {
      var d = r.dataset;
      var ok = (!s || d.id.toLowerCase().indexOf(s) >= 0) && (!tier || d.tier === tier) &&
        (!dir || d.dir === dir) && (!seg || d.seg === seg) && +d.conf >= conf && +d.value >= val;
      r.hidden = !ok;
      if (ok) { shown++; }
    });
    q("ex-count").textContent = "showing " + shown + " of " + rows.length;
  }
  ["ex-search", "ex-tier", "ex-dir", "ex-seg", "ex-conf", "ex-value"].forEach(function (id) {
    q(id).addEventListener("input", apply);
    q(id).addEventListener("change", apply);
  });
  var heads = Array.prototype.slice.call(t.tHead.rows[0].cells);
  heads.forEach(function (th) {
    if (!th.dataset.key) { return; }
    th.tabIndex = 0;
    th.classList.add("sortable");
    function sort() {
      var key = th.dataset.key, num = th.dataset.type === "num",
          asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      rows.sort(function (a, b) {
        var x = a.dataset[key], y = b.dataset[key];
        var c = num ? (+x) - (+y) : x.localeCompare(y);
        if (c === 0) { c = (+a.dataset.rank) - (+b.dataset.rank); return c; }
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
  });
  apply();
})();
"#;

/// The report as one self-contained HTML page.
pub fn html(r: &RunData) -> Result<String> {
    let c = &r.comparison;
    let as_of = c.as_of.as_str();
    let name = r.manifest.pipeline_name.as_str();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>strata segments · {} · {}</title><style>{CSS}</style></head><body>\n",
        esc(name),
        esc(as_of)
    );
    let _ = write!(
        h,
        "<header><h1>Customer segments vs CS tiers — {}</h1><p>pipeline “{}” · strata {} · seed {}</p></header>\n",
        esc(as_of),
        esc(name),
        esc(r.manifest.strata_version.as_str()),
        r.manifest.seed
    );
    h.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#quality\">Data quality</a><a href=\"#k-selection\">Choosing k</a><a href=\"#modularity\">Communities</a><a href=\"#profiles\">Profiles</a><a href=\"#sizes\">Sizes</a><a href=\"#tiers\">Segments × tiers</a><a href=\"#exceptions\">Exceptions</a><a href=\"#migration\">Since last month</a><a href=\"#map\">Map</a></nav>\n<main>\n");
    summary(&mut h, r);
    quality(&mut h, r);
    k_choice(&mut h, c)?;
    modularity(&mut h, c)?;
    profile_heatmaps(&mut h, c, &r.manifest.features)?;
    sizes(&mut h, c)?;
    tiers(&mut h, c)?;
    exceptions(&mut h, c);
    migration(&mut h, c)?;
    map_section(&mut h, r)?;
    let _ = writeln!(h, "</main><script>{SCRIPT}</script></body></html>");
    Ok(h)
}

fn summary(h: &mut String, r: &RunData) {
    let c = &r.comparison;
    let m = &r.manifest;
    h.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">");
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
    h.push_str("</ul><table><tr><th>method</th><th>verdict</th><th>ARI</th><th>AMI</th><th>NMI</th><th>homogeneity</th><th>completeness</th><th>purity</th><th>G-test p</th></tr>");
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
    h.push_str("<h3>What changed since last month</h3>");
    h.push_str(&change_text(&c.history, true));
    h.push_str("</section>\n");
}

/// Month-over-month headline, as HTML (`html`) or Markdown.
fn change_text(hist: &History, html: bool) -> String {
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
            .filter(|t| t.kind != TransitionKind::Survived)
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

fn quality(h: &mut String, r: &RunData) {
    let q = &r.quality;
    h.push_str("<section id=\"quality\"><h2>Data quality</h2>");
    h.push_str("<table><tr><th>source</th><th>file</th><th>rows read</th><th>rows used</th></tr>");
    for s in &q.sources {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&s.name),
            esc(&s.file),
            s.rows_read,
            s.rows_used
        );
    }
    h.push_str("</table>");
    if q.findings.is_empty() {
        h.push_str("<p>No findings: every check passed.</p>");
    } else {
        h.push_str("<table><tr><th>severity</th><th>finding</th><th>where</th><th>count</th><th>what happened</th><th>what to do</th></tr>");
        for f in &q.findings {
            let sev = word(&f.severity);
            let _ = write!(
                h,
                "<tr><td class=\"{sev}\">{sev}</td><td>{}</td><td>{}{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.code),
                esc(&f.file),
                f.column.as_deref().map(|c| format!(" · {}", esc(c))).unwrap_or_default(),
                f.count,
                esc(&f.message),
                esc(&f.hint)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
}

fn k_choice(h: &mut String, c: &Document) -> Result<()> {
    h.push_str("<section id=\"k-selection\"><h2>Choosing k (k-means)</h2>");
    let found = c.segmentations.iter().find_map(|s| match &s.details {
        Details::KMeans {
            chosen_by,
            k_scores,
            ..
        } => Some((s.sizes.len(), chosen_by, k_scores)),
        _ => None,
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
    } else {
        h.push_str(
            "<p class=\"note\">k was fixed in the pipeline file, so no other k was scored.</p>",
        );
    }
    h.push_str("</section>\n");
    Ok(())
}

fn modularity(h: &mut String, c: &Document) -> Result<()> {
    h.push_str("<section id=\"modularity\"><h2>Communities: modularity and resolution</h2>");
    let found = c.segmentations.iter().find_map(|s| match &s.details {
        Details::Community {
            algorithm,
            resolution,
            modularity,
            sweep,
            graph,
            warm_start,
            ..
        } => Some((
            algorithm,
            *resolution,
            *modularity,
            sweep,
            graph,
            *warm_start,
        )),
        _ => None,
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

fn profile_heatmaps(h: &mut String, c: &Document, features: &[ColumnInfo]) -> Result<()> {
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
            h.push_str("<table><tr><th>segment</th><th>name</th><th>accounts</th><th>what stands out</th><th>typical levels</th></tr>");
            for p in &ps {
                let dist: Vec<String> = p
                    .distinguishing
                    .iter()
                    .take(4)
                    .map(|d| {
                        let name = d.column.as_str();
                        let label = features
                            .iter()
                            .find(|c| c.name == name)
                            .map_or_else(|| name.to_string(), label_of);
                        format!("{label} ({:+.1})", or_zero(d.effect))
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

fn sizes(h: &mut String, c: &Document) -> Result<()> {
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

fn tiers(h: &mut String, c: &Document) -> Result<()> {
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
        let svg = charts::heatmap(
            &rows,
            tier_names,
            &|i, j| {
                let v = table[order[i]].get(j).copied().unwrap_or(0.0);
                let lift = lifts[i].get(j).copied().unwrap_or(0.0);
                // log lift: 1 is white, 3 or more the darkest.
                let shade = (lift.max(1e-9).ln() / 3f64.ln()).clamp(0.0, 1.0);
                (charts::sequential(shade), format!("{v:.0} ×{lift:.1}"))
            },
            90,
        )
        .map_err(Error::Internal)?;
        let _ = write!(h, "<h3>{}</h3>{note}{svg}", method::label(method));
        h.push_str("<table><tr><th>segment</th><th>accounts</th><th>maps to</th><th>its lift</th><th>most common tier (share)</th><th>paired tier (one-to-one)</th></tr>");
        for &i in &order {
            let m = &mapping[i];
            let mapped = m.tier.as_deref();
            let lift = mapped
                .and_then(|t| tier_names.iter().position(|n| n == t))
                .and_then(|j| m.lift.get(j).copied())
                .filter(|l| l.is_finite())
                .map_or("–".into(), |l| format!("×{l:.2}"));
            let _ = write!(h, "<tr><td class=n>{}</td><td class=n>{}</td><td>{}</td><td class=n>{}</td><td>{} ({})</td><td>{}</td></tr>",
                m.id, m.size, mapped.map_or("<i>mixed</i>".into(), esc), lift, esc(&m.most_common), pct(Some(m.share)), esc(m.matched_tier.as_deref().unwrap_or("–")));
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
    Ok(())
}

fn exceptions(h: &mut String, c: &Document) {
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
        "<p>{} accounts behave like another tier, {} in {} at stake. Each is flagged on its own evidence: the tiers of its {} most similar accounts, against how the accounts of its tier are usually surrounded, with the share of false flags held at {} (Benjamini–Hochberg); on tiers unrelated to behaviour almost nothing is flagged. Confidence is the probability that the account behaves like the suggested tier, calibrated on the data. Ranked by confidence × {} at stake.</p>",
        all.len(),
        esc(&unit.format(stake)),
        esc(label),
        ev.map_or(0, |e| e.neighbours),
        ev.map(|e| e.fdr).filter(|q| q.is_finite()).map_or("–".into(), |q| format!("{:.0}%", q * 100.0)),
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
    let method = cmp.exceptions_from.as_ref();
    let tiers = &current.names;
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
         <label>{} at stake ≥ <input type=\"number\" id=\"ex-value\" min=\"0\" step=\"any\" value=\"0\"></label></div>\
         <p class=\"note\" id=\"ex-count\">showing {} of {}</p>",
        options(&mut tiers.iter().map(|t| (t.to_string(), t.to_string()))),
        method::label(method),
        options(&mut segs.iter().map(|&s| (s.to_string(), format!("{s} · {}", profile_name(cmp, method, s))))),
        esc(label),
        all.len().min(TABLE_EXCEPTIONS),
        all.len().min(TABLE_EXCEPTIONS)
    );
    let _ = write!(
        h,
        "<table id=\"ex-table\"><thead><tr><th data-key=\"rank\" data-type=\"num\" aria-sort=\"ascending\">#</th><th data-key=\"id\" data-type=\"text\">account</th><th data-key=\"tier\" data-type=\"text\">tier now → suggested</th><th data-key=\"dir\" data-type=\"text\">direction</th><th data-key=\"seg\" data-type=\"num\">segment</th><th data-key=\"conf\" data-type=\"num\">confidence</th><th data-key=\"value\" data-type=\"num\">{} at stake</th><th>why</th></tr></thead><tbody>",
        esc(label)
    );
    for (rank, e) in all.iter().take(TABLE_EXCEPTIONS).enumerate() {
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
            "<tr data-rank=\"{}\" data-id=\"{}\" data-tier=\"{}\" data-dir=\"{}\" data-seg=\"{seg}\" data-conf=\"{conf}\" data-value=\"{value}\"><td class=n>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td><details><summary>{seg}</summary>{}</details></td><td class=n>{conf:.2}</td><td class=n>{}</td><td>{}</td></tr>",
            rank + 1,
            esc(id),
            esc(tier),
            esc(&dir),
            rank + 1,
            esc(id),
            esc(tier),
            esc(&e.suggested_tier),
            esc(&dir),
            esc(&profile_name(cmp, method, seg)),
            esc(&e.value_text),
            reasons.join("<br>")
        );
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
    let _ = writeln!(h, "<p class=\"note\">{more}every exception is in <code>exceptions.csv</code> (for a CRM import) and <code>assignments.parquet</code> (columns exception, exception_rank, confidence, value_at_stake, reason). Click a column to sort; the controls filter.</p></section>");
}

fn migration(h: &mut String, c: &Document) -> Result<()> {
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
        let svg = charts::heatmap(
            &prev,
            &cur,
            &|i, j| {
                let v = value(i, j);
                (
                    charts::sequential(v / row_tot[i]),
                    if v > 0.0 {
                        format!("{v:.0}")
                    } else {
                        String::new()
                    },
                )
            },
            52,
        )
        .map_err(Error::Internal)?;
        let _ = write!(h, "<h3>{}: migration matrix</h3><p class=\"note\">Rows: last month's segment; columns: this month's. Shading is the row share.</p>{svg}", method::label(method));
    }
    if let Some(t) = &hist.tiers {
        let names = &t.tiers;
        let counts: Vec<Vec<f64>> = matrix(&t.counts);
        let rows: Vec<String> = names
            .iter()
            .map(|n| format!("suggested {n} last month"))
            .collect();
        let svg = charts::heatmap(
            &rows,
            names,
            &|i, j| {
                let tot: f64 = counts[i].iter().sum::<f64>().max(1.0);
                let v = counts[i][j];
                (charts::sequential(v / tot), format!("{v:.0}"))
            },
            90,
        )
        .map_err(Error::Internal)?;
        let _ = write!(h, "<h3>Suggested tier: last month → this month</h3><p class=\"note\">{} accounts' suggested tier changed.</p>{svg}", t.moved);
    }
    h.push_str("</section>\n");
    Ok(())
}

fn map_section(h: &mut String, r: &RunData) -> Result<()> {
    h.push_str("<section id=\"map\"><h2>Map of accounts</h2>");
    match &r.map {
        Some(m) => {
            let svg = charts::scatter(
                &m.points,
                &m.groups,
                &format!(
                    "principal component 1 ({:.0}% of variance)",
                    m.explained[0] * 100.0
                ),
                &format!("PC 2 ({:.0}%)", m.explained[1] * 100.0),
            )
            .map_err(Error::Internal)?;
            let _ = write!(
                h,
                "<p class=\"note\">The normalised feature matrix projected on its first two principal components, coloured by k-means segment; {} of {} accounts shown{}.</p>{svg}",
                m.points.len(),
                m.total,
                if m.points.len() < m.total { " (an even sample)" } else { "" }
            );
        }
        None => h.push_str("<p>No feature matrix in this run directory.</p>"),
    }
    h.push_str("</section>\n");
    Ok(())
}

/// The headline content as Markdown (for email or chat).
pub fn markdown(r: &RunData) -> String {
    let c = &r.comparison;
    let cmp = &c.comparison;
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Customer segments vs CS tiers — {}\n\npipeline “{}”, {} accounts, strata {}\n",
        md(&c.as_of),
        md(r.manifest.pipeline_name.as_str()),
        r.manifest.accounts,
        r.manifest.strata_version.as_str()
    );
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
                Some(t) => md(t),
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
    m.push_str("\n## Since last month\n\n");
    m.push_str(&change_text(&c.history, false));
    let all = &cmp.exceptions;
    let _ = writeln!(m, "\n## Top exceptions ({} in all)\n\n| account | now → suggested | confidence | {label} at stake | why |\n|---|---|---|---|---|", all.len());
    for e in all.iter().take(10) {
        let why = e
            .reasons
            .first()
            .map_or(e.evidence.as_str(), |r| r.text.as_str());
        let _ = writeln!(
            m,
            "| {} | {} → {} | {:.2} | {} | {} |",
            md(&e.account_id),
            md(&e.current_tier),
            md(&e.suggested_tier),
            or_zero(e.confidence),
            md(&e.value_text),
            md(why)
        );
    }
    let findings = &r.quality.findings;
    let warn = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let _ = writeln!(m, "\n## Data quality\n\n{} warning(s){}\n\nFull report: report.html in the run directory for {}.", warn,
        if findings.is_empty() { String::new() } else {
            format!(": {}", findings.iter().map(|f| f.code.as_ref()).collect::<Vec<_>>().join(", "))
        },
        c.as_of);
    m
}

/// Render `report.html` and `report.md` into a run directory. Returns the
/// HTML size in bytes.
/// Each file is written beside its final name and renamed over it, so
/// re-rendering a committed run never leaves half a report.
pub fn write(dir: &Path) -> Result<usize> {
    let data = load(dir)?;
    let page = html(&data)?;
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
    use super::*;

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
