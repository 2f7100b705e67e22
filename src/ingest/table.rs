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
    let parts = read_parts(&files, &mut report)?;
    let mut wanted: Vec<(&str, Kind)> = vec![(ACCOUNT_ID, Kind::Categorical)];
    wanted.extend(p.features.iter().map(|f| (f.name.as_str(), f.kind)));
    if let Some(t) = super::read::tier_column(p) {
        wanted.push((t, Kind::Categorical));
    }
    // Every part's columns; a column some part lacks counts as missing.
    let missing: BTreeSet<&str> = wanted
        .iter()
        .map(|w| w.0)
        .filter(|name| parts.iter().any(|df| df.column(name).is_err()))
        .collect();
    for name in &missing {
        report.push(finding(
            path,
            Severity::Error,
            "missing_feature",
            Some(name),
            0,
            format!("the feature table has no column `{name}`, which the pipeline needs"),
            "make the table with this pipeline's query (`strata sql PIPELINE --dialect spark|duckdb`); a table made for another pipeline, or before a feature was added, lacks it",
        ));
    }
    if parts.is_empty() {
        report.push(finding(
            path,
            Severity::Error,
            "empty_table",
            None,
            0,
            "the feature table has no Parquet files".into(),
            "point --features at the Parquet file or folder the query wrote",
        ));
    }
    if report.has_errors() {
        return Ok(stopped(report, as_of));
    }
    let df = typed_frame(&parts, &wanted, path, &mut report)?;
    check_ids(&df, path, &mut report)?;
    if report.has_errors() {
        return Ok(stopped(report, as_of));
    }
    let note = format!(
        "features read from the feature table {} ({} file(s), {} accounts) for {as_of}; the checks that need the raw rows (ranges, orphans, duplicates, empty windows) are not run on this route",
        path.display(),
        files.len(),
        df.height()
    );
    report.sort();
    let df = df.sort([ACCOUNT_ID], SortMultipleOptions::default())?;
    Ok(Ingested {
        frame: Some(AccountFrame { df, as_of }),
        report,
        as_of,
        as_of_note: Some(note),
    })
}

/// A finding about the feature table at `path`.
fn finding(
    path: &Path,
    severity: Severity,
    code: &str,
    column: Option<&str>,
    count: usize,
    message: String,
    hint: &str,
) -> Finding {
    Finding {
        severity,
        code: code.to_string().into(),
        source: SOURCE.into(),
        file: path.display().to_string(),
        column: column.map(str::to_string),
        count,
        message,
        hint: hint.to_string(),
        examples: Vec::new(),
    }
}

/// Each Parquet file read whole, with a source summary for the manifest
/// (which hashes each file).
fn read_parts(files: &[PathBuf], report: &mut QualityReport) -> Result<Vec<DataFrame>> {
    let mut parts = Vec::new();
    for f in files {
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
    Ok(parts)
}

/// The parts stacked into one frame of the `wanted` columns, each in the
/// type the run expects (numbers as f64, NaN and infinity missing as on the
/// sources route; categories as text). A numeric feature that holds
/// something else is a finding and left out.
fn typed_frame(
    parts: &[DataFrame],
    wanted: &[(&str, Kind)],
    path: &Path,
    report: &mut QualityReport,
) -> Result<DataFrame> {
    let mut cols: Vec<Column> = Vec::new();
    for &(name, kind) in wanted {
        let mut all: Option<Series> = None;
        for df in parts {
            let s = df.column(name)?.as_materialized_series().clone();
            let numeric = s.dtype().is_primitive_numeric()
                || matches!(s.dtype(), DataType::Null | DataType::Boolean);
            let typed = match kind {
                Kind::Categorical => s.cast(&DataType::String)?,
                Kind::Numeric if numeric => s.cast(&DataType::Float64)?,
                Kind::Numeric => {
                    report.push(finding(
                        path,
                        Severity::Error,
                        "bad_feature",
                        Some(name),
                        0,
                        format!("`{name}` holds {} values in the feature table, not numbers", s.dtype()),
                        "cast it to a number in the query (the pipeline declares it numeric), or set kind = \"categorical\"",
                    ));
                    all = None;
                    break;
                }
            };
            match all.as_mut() {
                Some(a) => {
                    a.append(&typed)?;
                }
                None => all = Some(typed),
            }
        }
        let Some(mut s) = all else { continue };
        if kind == Kind::Numeric {
            let c = s.f64()?;
            let bad = c
                .iter()
                .filter(|v| v.is_some_and(|v| !v.is_finite()))
                .count();
            if bad > 0 {
                report.push(finding(
                    path,
                    Severity::Warning,
                    "non_finite_feature",
                    Some(name),
                    bad,
                    format!(
                        "{bad} account(s) have NaN or infinity for `{name}`; treated as missing"
                    ),
                    "use nullif(x, 0) in divisions in the query",
                ));
                let cleaned: Float64Chunked =
                    c.iter().map(|v| v.filter(|v| v.is_finite())).collect();
                s = cleaned.into_series();
            }
        }
        cols.push(s.with_name(name.into()).into_column());
    }
    Ok(DataFrame::new_infer_height(cols)?)
}

/// Every row one account: no empty id, no id twice.
fn check_ids(df: &DataFrame, path: &Path, report: &mut QualityReport) -> Result<()> {
    let ids = df.column(ACCOUNT_ID)?;
    let empty = ids.null_count();
    if empty > 0 {
        report.push(finding(
            path,
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
        report.push(finding(
            path,
            Severity::Error,
            "duplicate_id",
            Some(ACCOUNT_ID),
            dup,
            format!("{dup} account id(s) appear on more than one row"),
            "the table must have one row per account: check the query's joins (or run it on one month's data)",
        ));
    }
    Ok(())
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

    /// A two-feature pipeline over the committed sample (the table route
    /// reads only the pipeline's feature names and kinds).
    fn pipeline() -> Pipeline {
        crate::config::parse(
            "[sources.a]\npath = \"data/sample/2026-11/accounts.csv\"\nid = \"account_id\"\n[[feature]]\nname = \"employees\"\nexpr = \"employees\"\n[[feature]]\nname = \"industry\"\nexpr = \"industry\"\nkind = \"categorical\"\n",
            Path::new("t.toml"),
            Path::new(env!("CARGO_MANIFEST_DIR")),
        )
        .unwrap()
    }

    /// `df` written as a Parquet file, read back as a feature table.
    fn read_back(dir: &Path, mut df: DataFrame) -> (Ingested, Vec<String>) {
        let path = dir.join("features.parquet");
        ParquetWriter::new(File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        let as_of = Month {
            year: 2026,
            month: 11,
        };
        let got = from_table(&pipeline(), &path, as_of).unwrap();
        let codes = got
            .report
            .findings
            .iter()
            .map(|f| f.code.to_string())
            .collect();
        (got, codes)
    }

    #[test]
    fn every_problem_of_a_table_is_a_finding_not_a_first_error() {
        let dir = tempfile::tempdir().unwrap();
        let df = df!(
            "account_id" => ["a", "a", "b"],
            "employees" => ["12", "x", "3"],
            "industry" => ["Retail", "Media", "Retail"],
        )
        .unwrap();
        let (got, codes) = read_back(dir.path(), df);
        assert!(got.frame.is_none());
        assert_eq!(
            codes,
            ["duplicate_id", "bad_feature"],
            "{:?}",
            got.report.findings
        );
        // Numbers fixed: the duplicate id and the NaN are what is left.
        let df = df!(
            "account_id" => ["b", "a", "a"],
            "employees" => [12.0, f64::NAN, 3.0],
            "industry" => ["Retail", "Media", "Retail"],
        )
        .unwrap();
        let (got, codes) = read_back(dir.path(), df);
        assert!(got.frame.is_none());
        assert!(
            codes.iter().any(|c| c == "duplicate_id")
                && codes.iter().any(|c| c == "non_finite_feature"),
            "{codes:?}"
        );
        // A clean table: sorted by id, numbers as f64, other columns left out.
        let df = df!(
            "account_id" => ["b", "a"],
            "employees" => [12i64, 3],
            "industry" => ["Retail", "Media"],
            "extra" => [1, 2],
        )
        .unwrap();
        let (got, codes) = read_back(dir.path(), df);
        assert!(codes.is_empty(), "{codes:?}");
        let frame = got.frame.expect("a clean table runs");
        assert_eq!(
            frame.df.get_column_names(),
            ["account_id", "employees", "industry"]
        );
        assert_eq!(
            frame.df.column("employees").unwrap().f64().unwrap().get(0),
            Some(3.0)
        );
    }

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
