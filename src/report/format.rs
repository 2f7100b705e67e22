//! Formatting shared by every section: escaping for HTML and Markdown,
//! numbers, verdict words, and which profiles a section shows.

use super::load::Document;
use crate::cluster::method;
use crate::compare::profile::Profile;
use crate::compare::{Comparison, MethodComparison, Verdict};

/// A number for a chart: a missing one (NaN; `null` in the file) as 0.
pub(super) fn or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// A number as the run's JSON files write it (`1.0`, `0.5`; `null` if missing).
pub(super) fn json_number(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_default()
}

/// A value's name as the run's JSON files write it (`leiden`, `upgrade`, …).
pub(super) fn word<T: serde::Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(super) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

pub(super) fn profile_name(c: &Comparison, method: &str, id: u32) -> String {
    profiles(c, method)
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.name.clone())
        .unwrap_or_default()
}

pub(super) fn profiles<'a>(c: &'a Comparison, method: &str) -> Vec<&'a Profile> {
    let mut v: Vec<&Profile> = c.profiles.iter().filter(|p| p.method == method).collect();
    v.sort_by_key(|p| p.id);
    v
}

/// Segments drawn per chart at most: with more (communities at a million
/// accounts number 100+), the largest are shown and the page says so.
pub const MAX_SHOWN: usize = 30;

/// The profiles a chart shows (the [`MAX_SHOWN`] largest, in ID order) and a
/// note when some are left out.
pub(super) fn shown_profiles<'a>(c: &'a Comparison, method: &str) -> (Vec<&'a Profile>, String) {
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

/// The methods of the run, the leading one first (see [`primary`]), then
/// the others in the run's order.
pub(super) fn methods(c: &Document) -> Vec<&str> {
    let mut v: Vec<&str> = c.segmentations.iter().map(|s| s.method.as_ref()).collect();
    if let Some(i) = v.iter().position(|m| *m == c.comparison.exceptions_from) {
        let lead = v.remove(i);
        v.insert(0, lead);
    }
    v
}

/// The run's leading segmentation, the one the reader is given: the method
/// the exceptions come from (`tiers.exceptions_from`, k-means by default),
/// else the run's first. Its segments name the exceptions' segments, colour
/// the map and get the profile table in business units; the others are the
/// analyst's second view, cross-mapped to it.
pub(super) fn primary(c: &Document) -> &str {
    methods(c).first().copied().unwrap_or("")
}

/// A method's verdict on agreement with the tiers, in words (from the
/// comparison's own sentence), with the AMI behind it.
pub(super) fn verdict_sentence(mc: &MethodComparison) -> String {
    match &mc.verdict_text {
        Some(text) => format!("{text} (AMI {})", f3(mc.agreement.map(|a| a.ami))),
        None => "not measured: too few accounts have a known tier".into(),
    }
}

/// A method's verdict in one word (`none` … `strong`), or `missing`.
pub(super) fn verdict_word(mc: &MethodComparison, missing: &'static str) -> &'static str {
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

pub(super) fn f3(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or("–".into(), |x| format!("{x:.3}"))
}

pub(super) fn pct(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or("–".into(), |x| format!("{:.0}%", x * 100.0))
}
