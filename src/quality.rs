//! The data-quality report (a leaf module): every problem found while reading the sources,
//! with its severity, a count and a few examples that name file, row and column.
//!
//! Ingestion never stops at the first problem: each check records findings here
//! and carries on with what it can, so one `strata validate` shows the user all
//! there is to fix. Error findings stop `strata run`; warnings are reported.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// How serious a finding is (and a pipeline file sets per check).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ignore,
    Warning,
    Error,
}

/// One example of a finding: where it is and the offending value.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Example {
    /// 1-based data row (the header is not counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
    /// 1-based line in a CSV file (the header is line 1), when it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Example {
    pub fn value(v: impl Into<String>) -> Self {
        Example {
            row: None,
            line: None,
            value: Some(v.into()),
        }
    }
}

impl fmt::Display for Example {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(r) = self.row {
            parts.push(format!("row {r}"));
        }
        if let Some(l) = self.line {
            parts.push(format!("line {l}"));
        }
        let place = parts.join(", ");
        match (&self.value, place.is_empty()) {
            (Some(v), true) => write!(f, "{v}"),
            (Some(v), false) => write!(f, "{place}: {v}"),
            (None, _) => write!(f, "{place}"),
        }
    }
}

/// One kind of problem in one place (a source, maybe a column), with a count.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable machine-readable class, e.g. `missing_column`, `duplicate_id`.
    pub code: Cow<'static, str>,
    pub source: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// How many rows (or values) are affected.
    pub count: usize,
    pub message: String,
    /// What the user can do about it.
    pub hint: String,
    pub examples: Vec<Example>,
}

/// What was read from one source.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct SourceSummary {
    pub name: String,
    pub file: String,
    pub rows_read: usize,
    pub rows_used: usize,
    /// Rows dropped as duplicates of an id or `key`.
    pub rows_duplicate: usize,
    /// Rows dropped because they name no existing account (or parent row).
    pub rows_orphan: usize,
    /// A child source: accounts with at least one row, of `accounts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts_with_rows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<usize>,
    /// A lookup: rows of its target that found a key here, of `target_rows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rows_matched: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rows: Option<usize>,
}

impl SourceSummary {
    pub fn new(name: &str, file: &str, rows_read: usize) -> SourceSummary {
        SourceSummary {
            name: name.to_string(),
            file: file.to_string(),
            rows_read,
            rows_used: 0,
            rows_duplicate: 0,
            rows_orphan: 0,
            accounts_with_rows: None,
            accounts: None,
            target_rows_matched: None,
            target_rows: None,
        }
    }
}

/// All findings of one ingestion.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct QualityReport {
    pub sources: Vec<SourceSummary>,
    /// With `since`/`until` on the account table: who counted as a customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<Lifetime>,
    pub findings: Vec<Finding>,
}

/// Accounts left out because they were not customers at the as-of month.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Lifetime {
    pub as_of: String,
    /// Customers at the end of the as-of month (the accounts of the run).
    pub customers: usize,
    /// `since` after the as-of month: not yet customers.
    pub not_yet: usize,
    /// `until` in or before the as-of month: no longer customers.
    pub gone: usize,
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} customers at the end of {}; left out: {} not yet customers (`since` after {}), {} no longer customers (`until` by {})",
            self.customers, self.as_of, self.not_yet, self.as_of, self.gone, self.as_of
        )
    }
}

impl QualityReport {
    /// Add a finding. A finding about a file's structure that another
    /// source reading the same file already reported (same file, code,
    /// column and message) is not listed twice.
    pub fn push(&mut self, finding: Finding) {
        if finding.severity == Severity::Ignore {
            return;
        }
        // The same finding on the same file (two sources reading one file,
        // or one check reached twice) is said once.
        let same = |f: &Finding| {
            f.file == finding.file
                && f.code == finding.code
                && f.column == finding.column
                && f.message == finding.message
        };
        if !finding.file.is_empty() && self.findings.iter().any(same) {
            return;
        }
        self.findings.push(finding);
    }
    pub fn error_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
    pub fn warning_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }
    /// Promote every warning to an error (`--strict`).
    pub fn make_strict(&mut self) {
        for f in &mut self.findings {
            if f.severity == Severity::Warning {
                f.severity = Severity::Error;
            }
        }
    }
    /// Findings in a stable order: errors first, then by source, column, code.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.source.cmp(&b.source))
                .then_with(|| a.column.cmp(&b.column))
                .then_with(|| a.code.cmp(&b.code))
        });
    }
}

impl fmt::Display for QualityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "data quality: {} error(s), {} warning(s)",
            self.error_count(),
            self.warning_count()
        )?;
        let pct = |a: usize, b: usize| {
            if b == 0 {
                "-".to_string()
            } else {
                format!("{:.0}%", 100.0 * a as f64 / b as f64)
            }
        };
        for s in &self.sources {
            let mut extra = Vec::new();
            if s.rows_duplicate > 0 {
                extra.push(format!("{} duplicate(s) dropped", s.rows_duplicate));
            }
            if s.rows_orphan > 0 {
                extra.push(format!("{} orphan row(s) dropped", s.rows_orphan));
            }
            if let (Some(a), Some(n)) = (s.accounts_with_rows, s.accounts) {
                extra.push(format!("{a} of {n} accounts ({}) have rows", pct(a, n)));
            }
            if let (Some(a), Some(n)) = (s.target_rows_matched, s.target_rows) {
                extra.push(format!("matched {a} of {n} rows ({})", pct(a, n)));
            }
            writeln!(
                f,
                "  source {:<14} {:>10} rows read, {:>10} used  ({}){}",
                s.name,
                s.rows_read,
                s.rows_used,
                s.file,
                if extra.is_empty() {
                    String::new()
                } else {
                    format!("; {}", extra.join(", "))
                }
            )?;
        }
        if let Some(l) = &self.lifetime {
            writeln!(f, "  accounts: {l}")?;
        }
        for x in &self.findings {
            let sev = match x.severity {
                Severity::Error => "ERROR",
                Severity::Warning => "warning",
                Severity::Ignore => "ignored",
            };
            let col = x
                .column
                .as_ref()
                .map(|c| format!(", column `{c}`"))
                .unwrap_or_default();
            writeln!(f, "{sev:>7} [{}] {}{col}: {}", x.code, x.file, x.message)?;
            if !x.examples.is_empty() {
                let ex: Vec<String> = x.examples.iter().map(ToString::to_string).collect();
                writeln!(f, "          e.g. {}", ex.join("; "))?;
            }
            if !x.hint.is_empty() {
                writeln!(f, "          what to do: {}", x.hint)?;
            }
        }
        Ok(())
    }
}
