//! The second route into a run: a **feature table** an engine computed
//! (the query of `strata sql`, run on Spark or DuckDB) instead of the
//! sources. One row per account with `account_id` and every feature's raw
//! value, exactly the raw columns of `features.parquet`; from here the run is
//! the same (transforms, clustering, comparison, history, report).
//!
//! The table is a Parquet file, a folder of Parquet part files (what Spark
//! and DuckDB write), or a Delta table (a folder with `_delta_log/`: the
//! files its log's JSON commits leave added). The checks that need the raw
//! rows (ranges, orphans, duplicates, empty windows) did not run on this
//! route; the quality report says so.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::frame::AccountFrame;
use super::Ingested;
use crate::config::{Kind, Pipeline};
use crate::error::{Error, Result};
use crate::month::Month;
use crate::quality::{Finding, QualityReport, Severity, SourceSummary};
use crate::schema::ACCOUNT_ID;

/// The name the feature table goes by in the quality report and manifest.
pub const SOURCE: &str = "feature table";

/// The account frame read from the feature table at `path`, for a run of `p`
/// as of `as_of` (the table has no dates to take a month from). Problems of
/// the table (a missing feature, text where a number belongs, duplicate or
/// empty account ids) are findings, all of them, not a first error.
pub fn from_table(p: &Pipeline, path: &Path, as_of: Month) -> Result<Ingested> {
    let files = parquet_files(path)?;
    let mut report = QualityReport::default();
    let mut parts: Vec<DataFrame> = Vec::new();
    for f in &files {
        let file = File::open(f).map_err(|e| Error::io("opening", f, e))?;
        let df = ParquetReader::new(file).finish().map_err(|e| {
            Error::Usage(format!(
                "{} is not a readable Parquet file ({e}); give the feature table as a Parquet file, a folder of Parquet part files or a Delta table",
                f.display()
            ))
        })?;
        report.sources.push(SourceSummary {
            name: SOURCE.into(),
            file: f.display().to_string(),
            rows_read: df.height(),
            rows_used: df.height(),
            ..SourceSummary::default()
        });
        parts.push(df);
    }
    let finding =
        |severity, code: &str, column: Option<&str>, count, message: String, hint: &str| Finding {
            severity,
            code: code.to_string().into(),
            source: SOURCE.into(),
            file: path.display().to_string(),
            column: column.map(str::to_string),
            count,
            message,
            hint: hint.to_string(),
            examples: Vec::new(),
        };
    let mut wanted: Vec<(&str, Kind)> = p
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    if let Some(t) = super::read::tier_column(p) {
        wanted.push((t, Kind::Categorical));
    }
    // Every part's columns; a column some part lacks counts as missing.
    let mut missing: BTreeSet<&str> = BTreeSet::new();
    for df in &parts {
        for name in std::iter::once(ACCOUNT_ID).chain(wanted.iter().map(|w| w.0)) {
            if df.column(name).is_err() {
                missing.insert(name);
            }
        }
    }
    for name in &missing {
        report.push(finding(
            Severity::Error,
            "missing_feature",
            Some(name),
            0,
            format!("the feature table has no column `{name}`, which the pipeline needs"),
            "make the table with this pipeline's query (`strata sql PIPELINE --dialect spark|duckdb`); a table made for another pipeline, or before a feature was added, lacks it",
        ));
    }
    if !missing.is_empty() || parts.is_empty() {
        if parts.is_empty() {
            report.push(finding(
                Severity::Error,
                "empty_table",
                None,
                0,
                "the feature table has no Parquet files".into(),
                "point --features at the Parquet file or folder the query wrote",
            ));
        }
        return Ok(stopped(report, as_of));
    }
    // One frame, each column in the type the run expects.
    let mut cols: Vec<Column> = Vec::new();
    let names: Vec<(&str, Kind)> = std::iter::once((ACCOUNT_ID, Kind::Categorical))
        .chain(wanted.iter().copied())
        .collect();
    for (name, kind) in &names {
        let mut all: Option<Series> = None;
        for df in &parts {
            let s = df.column(name)?.as_materialized_series().clone();
            let typed = match kind {
                Kind::Categorical => s.cast(&DataType::String),
                Kind::Numeric
                    if s.dtype().is_primitive_numeric()
                        || s.dtype() == &DataType::Null
                        || s.dtype() == &DataType::Boolean =>
                {
                    s.cast(&DataType::Float64)
                }
                Kind::Numeric => {
                    report.push(finding(
                        Severity::Error,
                        "bad_feature",
                        Some(name),
                        0,
                        format!("`{name}` holds {} values in the feature table, not numbers", s.dtype()),
                        "cast it to a number in the query (the pipeline declares it numeric), or set kind = \"categorical\"",
                    ));
                    continue;
                }
            }?;
            match all.as_mut() {
                Some(a) => {
                    a.append(&typed)?;
                }
                None => all = Some(typed),
            }
        }
        if let Some(s) = all {
            cols.push(s.with_name((*name).into()).into_column());
        }
    }
    if report.has_errors() {
        return Ok(stopped(report, as_of));
    }
    let mut df = DataFrame::new_infer_height(cols)?;
    // Numbers as the sources route leaves them: NaN and infinity are missing.
    for (name, kind) in &wanted {
        if *kind != Kind::Numeric {
            continue;
        }
        let c = df.column(name)?.f64()?.clone();
        let bad = c
            .iter()
            .filter(|v| v.is_some_and(|v| !v.is_finite()))
            .count();
        if bad > 0 {
            report.push(finding(
                Severity::Warning,
                "non_finite_feature",
                Some(name),
                bad,
                format!("{bad} account(s) have NaN or infinity for `{name}`; treated as missing"),
                "use nullif(x, 0) in divisions in the query",
            ));
            let cleaned: Float64Chunked = c.iter().map(|v| v.filter(|v| v.is_finite())).collect();
            df.with_column(cleaned.with_name((*name).into()).into_column())?;
        }
    }
    let ids = df.column(ACCOUNT_ID)?.clone();
    let empty = ids.null_count();
    if empty > 0 {
        report.push(finding(
            Severity::Error,
            "null_key",
            Some(ACCOUNT_ID),
            empty,
            format!("{empty} row(s) have no account_id"),
            "every row of the feature table is one account: give each its id",
        ));
    }
    let distinct = ids.n_unique()?;
    if empty == 0 && distinct < df.height() {
        let dup = df.height() - distinct;
        report.push(finding(Severity::Error, "duplicate_id", Some(ACCOUNT_ID), dup, format!("{dup} account id(s) appear on more than one row"), "the table must have one row per account: check the query's joins (or run it on one month's data)"));
    }
    let note = format!(
        "features read from the feature table {} ({} file(s), {} accounts) for {as_of}; the checks that need the raw rows (ranges, orphans, duplicates, empty windows) are not run on this route",
        path.display(),
        files.len(),
        df.height()
    );
    if report.has_errors() {
        return Ok(stopped(report, as_of));
    }
    report.sort();
    let df = df.sort([ACCOUNT_ID], SortMultipleOptions::default())?;
    Ok(Ingested {
        frame: Some(AccountFrame { df, as_of }),
        report,
        as_of,
        as_of_note: Some(note),
    })
}

/// The run stops at the table's findings: no frame.
fn stopped(mut report: QualityReport, as_of: Month) -> Ingested {
    report.sort();
    Ingested {
        frame: None,
        report,
        as_of,
        as_of_note: None,
    }
}

/// The Parquet files of the table at `path`: the file itself; a Delta
/// table's live files (its JSON commits replayed: added minus removed); or
/// every `*.parquet` in a folder (not `_`/`.` files such as `_SUCCESS`), in
/// name order.
pub fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Error::Usage(format!(
            "feature table {} does not exist; give the Parquet file, folder of part files or Delta table the query wrote",
            path.display()
        )));
    }
    let log = path.join("_delta_log");
    if log.is_dir() {
        return delta_files(path, &log);
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(|e| Error::io("listing", &dir, e))? {
            let e = e.map_err(|e| Error::io("listing", &dir, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                stack.push(p); // partition folders (col=value)
            } else if name.ends_with(".parquet") {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A Delta table's live data files, from its JSON commits in version order.
fn delta_files(root: &Path, log: &Path) -> Result<Vec<PathBuf>> {
    let mut commits: Vec<PathBuf> = std::fs::read_dir(log)
        .map_err(|e| Error::io("listing", log, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    let first = commits
        .first()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().to_string());
    if first.as_deref().and_then(|s| s.parse::<u64>().ok()) != Some(0) {
        return Err(Error::Usage(format!(
            "the Delta table {} has no commit 0 left in its log (older commits were checkpointed away); write the features as plain Parquet, or as a fresh Delta table",
            root.display()
        )));
    }
    let mut live: Vec<String> = Vec::new();
    for c in &commits {
        let text = std::fs::read_to_string(c).map_err(|e| Error::io("reading", c, e))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| Error::Usage(format!("{} is not a Delta log ({e})", c.display())))?;
            if let Some(p) = v.pointer("/add/path").and_then(|p| p.as_str()) {
                live.push(unescape(p));
            } else if let Some(p) = v.pointer("/remove/path").and_then(|p| p.as_str()) {
                let p = unescape(p);
                live.retain(|x| *x != p);
            }
        }
    }
    live.sort();
    Ok(live.into_iter().map(|p| root.join(p)).collect())
}

/// A Delta log path is URL-encoded (`%20` for a space, `%3D` for `=`).
fn unescape(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&p[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_paths_are_unescaped() {
        assert_eq!(unescape("part%3D1/a%20b.parquet"), "part=1/a b.parquet");
        assert_eq!(unescape("plain.parquet"), "plain.parquet");
    }

    #[test]
    fn a_delta_log_is_replayed_added_minus_removed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("_delta_log");
        std::fs::create_dir(&log).unwrap();
        std::fs::write(
            log.join("00000000000000000000.json"),
            "{\"add\":{\"path\":\"a.parquet\"}}\n{\"add\":{\"path\":\"b.parquet\"}}\n",
        )
        .unwrap();
        std::fs::write(
            log.join("00000000000000000001.json"),
            "{\"remove\":{\"path\":\"a.parquet\"}}\n{\"add\":{\"path\":\"c.parquet\"}}\n",
        )
        .unwrap();
        let files = parquet_files(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, ["b.parquet", "c.parquet"]);
    }
}
