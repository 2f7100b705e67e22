//! The data-quality section: what was read, and every finding.

use std::fmt::Write as _;

use super::format::{esc, word};
use super::load::RunData;
use crate::quality::Severity;

pub(super) fn quality(h: &mut String, r: &RunData) {
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

/// The digest's data-quality line.
pub(super) fn quality_md(m: &mut String, r: &RunData) {
    let findings = &r.quality.findings;
    let warn = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let _ = writeln!(m, "\n## Data quality\n\n{} warning(s){}\n\nFull report: report.html in the run directory for {}.", warn,
        if findings.is_empty() { String::new() } else {
            format!(": {}", findings.iter().map(|f| f.code.as_ref()).collect::<Vec<_>>().join(", "))
        },
        r.comparison.as_of);
}
