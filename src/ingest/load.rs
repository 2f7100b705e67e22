//! Reading one source file into a Polars frame, guarded.
//!
//! The fast path is Polars' own CSV/Parquet reader with schema inference and a
//! projection of the columns the pipeline uses. When it fails, strata works out
//! *why* in terms a user can act on: a structural scan of the CSV (with the
//! `csv` crate) finds rows with the wrong number of fields; otherwise the file is
//! read again with every column as text and each column is converted with the
//! offending values collected. Polars calls run under [`guard`], so a panic deep
//! inside a reader becomes a finding rather than a crash.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use polars::prelude::*;

use super::quality::{Example, Finding};
use crate::config::{Format, Severity, Source};

/// Name of the row-number column added to every source (0-based data row).
pub const ROW: &str = "__row";

static GUARDS: AtomicUsize = AtomicUsize::new(0);

/// True while a guarded call runs: the CLI's panic hook stays quiet then,
/// because the panic is turned into a finding.
pub fn guarded_call_active() -> bool {
    GUARDS.load(Ordering::SeqCst) > 0
}

/// Run `f`, turning a panic into an error message.
pub fn guard<T>(f: impl FnOnce() -> PolarsResult<T>) -> Result<T, String> {
    GUARDS.fetch_add(1, Ordering::SeqCst);
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDS.fetch_sub(1, Ordering::SeqCst);
    match out {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("the reader failed unexpectedly ({msg})"))
        }
    }
}

/// A finding about `src`, with defaults for the rest.
pub fn finding(
    src: &Source,
    severity: Severity,
    code: &'static str,
    column: Option<&str>,
    count: usize,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> Finding {
    Finding {
        severity,
        code,
        source: src.name.clone(),
        file: src.path.display().to_string(),
        column: column.map(str::to_string),
        count,
        message: message.into(),
        hint: hint.into(),
        examples: Vec::new(),
    }
}

/// An example at 0-based data row `row` of `src`.
pub fn example_at(src: &Source, row: usize, value: Option<String>) -> Example {
    Example {
        row: Some(row + 1),
        line: (src.format == Format::Csv).then_some(row + 2),
        value,
    }
}

/// The column names of a source, from its header or Parquet schema.
pub fn read_columns(src: &Source) -> Result<Vec<String>, String> {
    match src.format {
        Format::Csv => {
            let mut rdr = csv::ReaderBuilder::new()
                .delimiter(src.separator)
                .has_headers(true)
                .from_path(&src.path)
                .map_err(|e| e.to_string())?;
            let headers = rdr.headers().map_err(|e| e.to_string())?;
            Ok(headers.iter().map(|h| h.trim().to_string()).collect())
        }
        Format::Parquet => guard(|| {
            let f = File::open(&src.path)?;
            let schema = ParquetReader::new(f).schema()?;
            Ok(schema.iter_names().map(|n| n.to_string()).collect())
        }),
    }
}

/// Read `columns` of `src` plus the row-number column: with the inferred
/// schema, or with every column as text when the typed read fails on values
/// (the caller then converts and reports them). On failure returns the
/// findings that explain it.
pub fn read(
    src: &Source,
    columns: &BTreeSet<String>,
    max_examples: usize,
) -> Result<DataFrame, Vec<Finding>> {
    let cols: Vec<String> = columns.iter().cloned().collect();
    match src.format {
        Format::Parquet => {
            let out = guard(|| {
                let f = File::open(&src.path)?;
                ParquetReader::new(f)
                    .with_columns(Some(cols.clone()))
                    .with_row_index(Some(RowIndex {
                        name: ROW.into(),
                        offset: 0,
                    }))
                    .finish()
            });
            out.map_err(|msg| {
                vec![finding(
                    src,
                    Severity::Error,
                    "unreadable_file",
                    None,
                    1,
                    format!("cannot be read as Parquet: {msg}"),
                    "the file may be truncated or not Parquet at all; export it again, or set format = \"csv\" if it is CSV",
                )]
            })
        }
        Format::Csv => {
            // Polars fills short rows with nulls and, with a projection, skips
            // surplus fields without a word: check the structure first.
            let ragged = scan_structure(src, max_examples);
            if !ragged.is_empty() {
                return Err(ragged);
            }
            let typed = guard(|| csv_reader(src, &cols, Some(10_000)));
            match typed {
                Ok(df) => Ok(df),
                Err(first) => guard(|| csv_reader(src, &cols, Some(0))).map_err(|msg| {
                    vec![finding(
                        src,
                        Severity::Error,
                        "unreadable_file",
                        None,
                        1,
                        format!("cannot be read as CSV: {msg} (first attempt: {first})"),
                        "check the file's encoding (UTF-8), separator and quoting",
                    )]
                }),
            }
        }
    }
}

fn csv_reader(src: &Source, cols: &[String], infer: Option<usize>) -> PolarsResult<DataFrame> {
    let names: Arc<[PlSmallStr]> = cols.iter().map(|c| PlSmallStr::from(c.as_str())).collect();
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(infer)
        .with_columns(Some(names))
        .with_row_index(Some(RowIndex {
            name: ROW.into(),
            offset: 0,
        }))
        .with_parse_options(CsvParseOptions::default().with_separator(src.separator))
        .try_into_reader_with_file_path(Some(src.path.clone()))?
        .finish()
}

/// Find rows whose number of fields differs from the header's, and rows that
/// are not valid CSV (e.g. not UTF-8 is left to Polars). One pass over the file.
pub fn scan_structure(src: &Source, max_examples: usize) -> Vec<Finding> {
    let mut rdr = match csv::ReaderBuilder::new()
        .delimiter(src.separator)
        .has_headers(true)
        .flexible(true)
        .from_path(&src.path)
    {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    let width = match rdr.headers() {
        Ok(h) => h.len(),
        Err(_) => return Vec::new(),
    };
    let mut bad = finding(
        src,
        Severity::Error,
        "malformed_row",
        None,
        0,
        format!("rows do not have the header's {width} fields"),
        "fix or remove these rows (a stray separator or an unquoted comma inside a value is the usual cause)",
    );
    let mut broken: Option<Finding> = None;
    let mut record = csv::ByteRecord::new();
    let mut row = 0usize;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                if record.len() != width {
                    bad.count += 1;
                    if bad.examples.len() < max_examples {
                        let line = record.position().map(|p| p.line() as usize);
                        bad.examples.push(Example {
                            row: Some(row + 1),
                            line,
                            value: Some(format!("{} field(s)", record.len())),
                        });
                    }
                }
            }
            Err(e) => {
                let f = broken.get_or_insert_with(|| {
                    finding(
                        src,
                        Severity::Error,
                        "malformed_row",
                        None,
                        0,
                        "rows cannot be parsed as CSV",
                        "check quoting and the file's encoding (UTF-8)",
                    )
                });
                f.count += 1;
                if f.examples.len() < max_examples {
                    f.examples.push(Example {
                        row: Some(row + 1),
                        line: e.position().map(|p| p.line() as usize),
                        value: Some(e.to_string()),
                    });
                }
                if f.count > 1000 {
                    break;
                }
            }
        }
        row += 1;
    }
    let mut out: Vec<Finding> = broken.into_iter().collect();
    if bad.count > 0 {
        out.push(bad);
    }
    out
}

/// Is `path` an empty file (no bytes, or only whitespace)?
pub fn is_empty_file(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => true,
        Ok(m) if m.len() < 4096 => std::fs::read(path)
            .map(|b| b.iter().all(u8::is_ascii_whitespace))
            .unwrap_or(false),
        _ => false,
    }
}
