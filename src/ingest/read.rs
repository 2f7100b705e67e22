//! Step 1, **read**: which columns each source must provide, and reading
//! them from the file with the file-level checks (a folder, a missing or
//! empty file, a wrong separator, duplicated or missing columns).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polars::prelude::*;

use super::frame::months_since;
use super::load::{self, finding};
use super::prepare::prepare;
use crate::config::{Link, Pipeline, Source};
use crate::month::Month;
use crate::quality::{self, QualityReport, Severity, SourceSummary};

/// Columns each source must provide, with the reason each is needed.
pub(super) fn needed_columns(p: &Pipeline) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut need: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let derived: BTreeSet<String> = p
        .sources
        .iter()
        .flat_map(|s| s.date_columns().into_iter().map(|d| months_since(&d)))
        .collect();
    // Columns a lookup joins onto its target come from the lookup's file.
    let mut provided: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in &p.sources {
        if let Link::Lookup {
            target, columns, ..
        } = &s.link
        {
            provided
                .entry(target.as_str())
                .or_default()
                .extend(columns.iter().map(String::as_str));
        }
    }
    let mut add = |src: &str, col: &str, why: String| {
        let from_lookup = provided.get(src).is_some_and(|c| c.contains(col));
        if !col.is_empty() && !derived.contains(col) && !from_lookup {
            need.entry(src.to_string())
                .or_default()
                .entry(col.to_string())
                .or_insert(why);
        }
    };
    for s in &p.sources {
        match &s.link {
            Link::Accounts { id } => add(&s.name, id, "the account id (`id`)".into()),
            Link::Direct { account } => add(&s.name, account, "the account id (`account`)".into()),
            Link::Via { column, .. } => add(&s.name, column, "the `link` column".into()),
            Link::Lookup {
                target,
                on,
                columns,
            } => {
                add(
                    target,
                    on,
                    format!("the `on` column of lookup `{}`", s.name),
                );
                for c in columns {
                    add(&s.name, c, "the lookup's `columns`".into());
                }
            }
        }
        if let Some(k) = &s.key {
            add(&s.name, k, "the source's `key`".into());
        }
        if let Some(k) = &s.latest_by {
            add(&s.name, k, "`latest_by`".into());
        }
        for d in s.date_columns() {
            add(
                &s.name,
                &d,
                "a date column (`time`, `dates`, `since` or `until`)".into(),
            );
        }
        if let Some(f) = &s.filter {
            for r in f.clone().meta().root_names() {
                add(&s.name, &r, "the source's `filter`".into());
            }
        }
    }
    for c in &p.checks {
        add(&c.source, &c.column, "a [[check]]".into());
    }
    let account = p.account_source().name.clone();
    if let Some(c) = tier_column(p) {
        add(&account, c, "tiers.column".into());
    }
    // Row-level features may refer to every aggregate (they are computed first)
    // and to row-level features declared before them.
    let mut defined: BTreeSet<String> = p
        .features
        .iter()
        .filter(|f| f.source.as_ref().is_some_and(|s| s != &account))
        .map(|f| f.name.clone())
        .collect();
    for (i, f) in p.features.iter().enumerate() {
        let src = f.source.clone().unwrap_or_else(|| account.clone());
        let row_level = f.source.is_none() || src == account;
        for r in f.expr.clone().meta().root_names() {
            if row_level && defined.contains(r.as_str()) {
                continue;
            }
            // A name the file lacks may be a feature declared further down.
            let later = row_level
                && p.features[i + 1..].iter().any(|g| {
                    g.name == r.as_str()
                        && (g.source.is_none() || g.source.as_ref() == Some(&account))
                });
            let why = if later {
                format!("feature `{}`; `{r}` is also a feature, declared after it: a feature can use the aggregates and the row-level features above it, so move the [[feature]] `{r}` above `{}`", f.name, f.name)
            } else {
                format!("feature `{}`", f.name)
            };
            add(&src, &r, why);
        }
        defined.insert(f.name.clone());
    }
    need
}

/// The account-table column the tiers come from, when it is not a feature.
pub(super) fn tier_column(p: &Pipeline) -> Option<&str> {
    match p.tiers.as_ref().map(|t| &t.source) {
        Some(crate::config::TierSource::Column(c)) => Some(c.as_str()),
        _ => None,
    }
}

/// Steps 1 and 2 for one source: the file read, then its values prepared
/// (see [`super::prepare::prepare`]).
pub(super) fn read_and_prepare(
    p: &Pipeline,
    s: &Source,
    need: &BTreeMap<String, String>,
    as_of: Option<Month>,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    let df = read(p, s, need, as_of, report)?;
    prepare(p, s, need, df, report)
}

/// Step 1: the file checked (a file, there, not empty), its header checked
/// (duplicated columns, another separator, missing columns), then the
/// needed columns read.
fn read(
    p: &Pipeline,
    s: &Source,
    need: &BTreeMap<String, String>,
    as_of: Option<Month>,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    if !file_is_there(s, as_of, report) {
        return None;
    }
    header(s, need, report)?;
    let cols: BTreeSet<String> = need.keys().cloned().collect();
    let df = match load::read(s, &cols, &p.quality) {
        Ok((df, warnings)) => {
            for f in warnings {
                report.push(f);
            }
            df
        }
        Err(findings) => {
            for f in findings {
                report.push(f);
            }
            return None;
        }
    };

    let rows_read = df.height();
    report.sources.push(SourceSummary::new(
        &s.name,
        &s.path.display().to_string(),
        rows_read,
    ));
    if rows_read == 0 {
        report.push(finding(
            s,
            Severity::Error,
            "empty_file",
            None,
            0,
            "the file has a header but no data rows",
            "export the data again",
        ));
        return None;
    }
    Some(df)
}

/// Whether `s.path` is a file with something in it; if not, the finding.
fn file_is_there(s: &Source, as_of: Option<Month>, report: &mut QualityReport) -> bool {
    if s.path.is_dir() {
        report.push(finding(
            s,
            Severity::Error,
            "not_a_file",
            None,
            0,
            "the path is a folder, not a file",
            "point `path` at the CSV or Parquet file inside it",
        ));
        return false;
    }
    if !s.path.is_file() {
        // Only possible for `{as_of}` paths: fixed paths are checked with the pipeline file.
        report.push(missing_file(s, as_of));
        return false;
    }
    if load::is_empty_file(&s.path) {
        report.push(finding(
            s,
            Severity::Error,
            "empty_file",
            None,
            0,
            "the file is empty (0 bytes)",
            match s.format {
                crate::config::Format::Csv => {
                    "export the data again; a CSV needs a header line and at least one row"
                }
                crate::config::Format::Parquet => {
                    "export the data again; a Parquet file has at least its header and footer"
                }
            },
        ));
        return false;
    }
    true
}

/// The `missing_file` error of a `{as_of}` source. A missing folder is named
/// rather than the file: a month's folder that is not there lists the
/// months that are (one finding for every source in it), and a misspelt
/// folder gets the nearest existing name.
fn missing_file(s: &Source, as_of: Option<Month>) -> quality::Finding {
    let month = as_of.map_or_else(String::new, |m| format!(" for as-of {m}"));
    // The first folder on the path that does not exist, and its parent.
    let missing = s
        .path
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty() && !a.exists())
        .last()
        .filter(|a| *a != s.path.as_path());
    let Some(folder) = missing else {
        return finding(
            s,
            Severity::Error,
            "missing_file",
            None,
            0,
            format!("no file{month}"),
            "check that this month's data drop has arrived, or run another month with --as-of",
        );
    };
    let parent = folder
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = folder
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let siblings: Vec<String> = std::fs::read_dir(parent)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let (message, hint) = if Month::parse(&name).is_some() {
        let mut months: Vec<&String> = siblings
            .iter()
            .filter(|n| Month::parse(n).is_some())
            .collect();
        months.sort();
        (
            format!("no data{month}: folder {} does not exist", folder.display()),
            if months.is_empty() {
                "check that this month's data drop has arrived".to_string()
            } else {
                format!(
                    "months with data: {}; run one of them with --as-of, or check that this month's drop has arrived",
                    months.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
                )
            },
        )
    } else {
        let near = siblings
            .iter()
            .map(|n| (strsim::levenshtein(n, &name), n))
            .filter(|(d, _)| *d <= 3)
            .min();
        (
            format!("folder {} does not exist", folder.display()),
            match near {
                Some((_, n)) => format!(
                    "did you mean `{}`? fix the source's `path`",
                    folder.with_file_name(n).display()
                ),
                None => "fix the source's `path`".to_string(),
            },
        )
    };
    let mut f = finding(s, Severity::Error, "missing_file", None, 0, message, hint);
    // Named by the folder, so the sources inside it share one finding.
    f.file = folder.display().to_string();
    f
}

/// The file's header, when it has every needed column, no duplicated name
/// and the declared separator; else the findings and `None`.
fn header(
    s: &Source,
    need: &BTreeMap<String, String>,
    report: &mut QualityReport,
) -> Option<Vec<String>> {
    let header = match load::read_columns(s) {
        Ok(h) => h,
        Err(msg) => {
            report.push(finding(
                s,
                Severity::Error,
                "unreadable_file",
                None,
                1,
                format!("cannot be read: {msg}"),
                "check that the file is complete and in the declared format",
            ));
            return None;
        }
    };
    // A duplicated or missing column stops the source, after every such
    // problem is reported.
    let mut missing = false;
    for (col, places) in load::duplicated_columns(&header) {
        missing = true;
        let places: Vec<String> = places.iter().map(usize::to_string).collect();
        report.push(finding(
            s,
            Severity::Error,
            "duplicate_column",
            Some(&col),
            places.len(),
            format!(
                "column `{col}` appears {} times in the header (columns {}), so which one is meant is ambiguous",
                places.len(),
                places.join(", ")
            ),
            "rename or remove the extra columns in the file",
        ));
    }
    if let Some(f) = wrong_separator(s, &header) {
        report.push(f);
        return None;
    }
    for (col, why) in need {
        if !header.contains(col) {
            missing = true;
            report.push(missing_column(s, col, why, &header));
        }
    }
    if missing {
        return None;
    }
    Some(header)
}

/// A header of one wide column whose name holds another separator: the file
/// was exported with that separator.
fn wrong_separator(s: &Source, header: &[String]) -> Option<quality::Finding> {
    let other_separator = (header.len() == 1 && s.format == crate::config::Format::Csv)
        .then(|| {
            [(b';', "\";\""), (b'\t', "\"\\t\""), (b'|', "\"|\"")]
                .into_iter()
                .find(|(c, _)| *c != s.separator && header[0].contains(*c as char))
        })
        .flatten();
    let (c, shown) = other_separator?;
    let n = header[0].split(c as char).count();
    Some(finding(
        s,
        Severity::Error,
        "wrong_separator",
        None,
        0,
        format!(
            "the header is one column, but it splits into {n} at `{}`: the file is separated by `{}`, not `{}`",
            (c as char).escape_default(),
            (c as char).escape_default(),
            (s.separator as char).escape_default()
        ),
        format!("set separator = {shown} on sources.{}", s.name),
    ))
}

/// The `missing_column` error for `col` (needed for `why`), suggesting the
/// nearest header name.
fn missing_column(s: &Source, col: &str, why: &str, header: &[String]) -> quality::Finding {
    let guess = header
        .iter()
        .map(|h| {
            let (a, b) = (h.to_lowercase(), col.to_lowercase());
            let d = if a.contains(&b) || b.contains(&a) {
                0
            } else {
                strsim::levenshtein(&a, &b)
            };
            (d, h)
        })
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, h)| {
            let plain = h.chars().all(|c| c.is_alphanumeric() || c == '_');
            if plain {
                format!("did you mean `{h}`? ")
            } else {
                format!("did you mean `{h}`? (in an expression a name with spaces or other characters goes in double quotes: \"{h}\") ")
            }
        })
        .unwrap_or_default();
    finding(
        s,
        Severity::Error,
        "missing_column",
        Some(col),
        1,
        format!("column `{col}` (needed for {why}) is not in the file"),
        format!(
            "{guess}the file has: {}; rename the column in the file or change the pipeline file",
            header.join(", ")
        ),
    )
}
