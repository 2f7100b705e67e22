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
use std::sync::Arc;

use polars::prelude::*;

use crate::config::{Format, QualityPolicy, Source};
use crate::guard::guard;
use crate::quality::Severity;
use crate::quality::{Example, Finding};

/// Name of the row-number column added to every source (0-based data row).
pub const ROW: &str = "__row";

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
        code: code.into(),
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
            let headers = rdr.byte_headers().map_err(|e| e.to_string())?;
            headers
                .iter()
                .enumerate()
                .map(|(i, h)| match std::str::from_utf8(h) {
                    Ok(h) => Ok(h.trim().to_string()),
                    Err(_) => Err(format!(
                        "line 1 (the header), column {}: the bytes are not UTF-8 text ({}); save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
                        i + 1,
                        String::from_utf8_lossy(h)
                    )),
                })
                .collect()
        }
        Format::Parquet => guard(|| {
            let f = File::open(&src.path)?;
            let schema = ParquetReader::new(f).schema()?;
            Ok(schema.iter_names().map(|n| n.to_string()).collect())
        }),
    }
}

/// Header names that occur more than once, each with its 1-based positions.
pub fn duplicated_columns(header: &[String]) -> Vec<(String, Vec<usize>)> {
    let mut at: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (i, h) in header.iter().enumerate() {
        at.entry(h.as_str()).or_default().push(i + 1);
    }
    at.into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(h, v)| (h.to_string(), v))
        .collect()
}

/// Read `columns` of `src` plus the row-number column: with the inferred
/// schema, or with every column as text when the typed read fails on values
/// (the caller then converts and reports them). On failure returns the
/// findings that explain it.
pub fn read(
    src: &Source,
    columns: &BTreeSet<String>,
    policy: &QualityPolicy,
) -> Result<(DataFrame, Vec<Finding>), Vec<Finding>> {
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
            out.map(|df| (df, Vec::new())).map_err(|msg| {
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
            let structural = scan_structure(src, policy);
            let stop = structural.iter().any(|f| f.severity == Severity::Error);
            if stop {
                return Err(structural);
            }
            let typed = guard(|| csv_reader(src, &cols, Some(10_000)))
                .or_else(|_| guard(|| csv_reader(src, &cols, Some(0))));
            match typed {
                // Warnings of the structural scan (a missing final line break
                // the policy allows) travel with the frame.
                Ok(df) => Ok((df, structural)),
                Err(msg) => Err(vec![finding(
                    src,
                    Severity::Error,
                    "unreadable_file",
                    None,
                    1,
                    format!("cannot be read as CSV: {msg}"),
                    "check the file's encoding (UTF-8), separator and quoting",
                )]),
            }
        }
    }
}

/// The columns `cols` of a CSV source (with the row index); `infer`: rows
/// to infer types from (`Some(0)`: every column as text).
pub(super) fn csv_reader(
    src: &Source,
    cols: &[String],
    infer: Option<usize>,
) -> PolarsResult<DataFrame> {
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

/// The structural scan of a CSV file, one pass with the `csv` crate, before
/// Polars reads it (Polars fills short rows with nulls, skips surplus fields
/// under a projection, and reports encoding and quoting errors without a line):
///
/// * rows whose number of fields differs from the header's;
/// * rows that are not UTF-8 text (a Latin-1 or Windows-1252 export);
/// * a quote opened in the last row and never closed;
/// * a last line without a line break: the file may have been cut off while
///   it was written or copied (severity `quality.truncated`).
pub fn scan_structure(src: &Source, policy: &QualityPolicy) -> Vec<Finding> {
    let max_examples = policy.max_examples;
    let mut rdr = match csv::ReaderBuilder::new()
        .delimiter(src.separator)
        .has_headers(true)
        .flexible(true)
        .from_path(&src.path)
    {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    let width = match rdr.byte_headers() {
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
    let mut not_utf8 = finding(
        src,
        Severity::Error,
        "not_utf8",
        None,
        0,
        "rows are not UTF-8 text (the file looks like Latin-1 or Windows-1252)",
        "save or export the file as UTF-8 (for example `iconv -f latin1 -t utf-8 in.csv > out.csv`)",
    );
    let mut broken: Option<Finding> = None;
    let mut record = csv::ByteRecord::new();
    let mut last_start: Option<(u64, u64)> = None;
    let mut last_multiline = false;
    let mut last_fields = 0usize;
    let mut row = 0usize;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line() as usize);
                last_start = record.position().map(|p| (p.byte(), p.line()));
                last_multiline = record.as_slice().contains(&b'\n');
                last_fields = record.len();
                if record.len() != width {
                    bad.count += 1;
                    if bad.examples.len() < max_examples {
                        bad.examples.push(Example {
                            row: Some(row + 1),
                            line,
                            value: Some(format!("{} field(s)", record.len())),
                        });
                    }
                }
                if std::str::from_utf8(record.as_slice()).is_err() {
                    not_utf8.count += 1;
                    if not_utf8.examples.len() < max_examples {
                        let field = record
                            .iter()
                            .position(|f| std::str::from_utf8(f).is_err())
                            .unwrap_or(0);
                        not_utf8.examples.push(Example {
                            row: Some(row + 1),
                            line,
                            value: Some(format!(
                                "field {}: {}",
                                field + 1,
                                String::from_utf8_lossy(&record[field])
                            )),
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
    if let Some((byte, line)) = last_start {
        let last = Tail {
            start: byte,
            line: line as usize,
            rows: row,
            multiline: last_multiline,
            short: last_fields < width,
        };
        out.extend(check_tail(src, policy, last));
    }
    if not_utf8.count > 0 {
        out.push(not_utf8);
    }
    if bad.count > 0 {
        out.push(bad);
    }
    out
}

/// Where a CSV file's last record starts (byte `start`, line `line`, 1-based
/// data row `rows`), whether it runs over a line break, and whether it has
/// fewer fields than the header.
struct Tail {
    start: u64,
    line: usize,
    rows: usize,
    multiline: bool,
    short: bool,
}

/// Checks on the last record: an unterminated quote, and a last row cut
/// short (fewer fields than the header and no final line break). A complete
/// last row without a final line break is an ordinary export (spreadsheets
/// and BI tools often omit it) and says nothing.
fn check_tail(src: &Source, policy: &QualityPolicy, last: Tail) -> Vec<Finding> {
    let Tail {
        start,
        line,
        rows,
        multiline,
        short,
    } = last;
    use std::io::{Read, Seek, SeekFrom};
    let mut tail = Vec::new();
    let read = File::open(&src.path).and_then(|mut f| {
        f.seek(SeekFrom::Start(start))?;
        f.read_to_end(&mut tail)
    });
    if read.is_err() || tail.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let shown = || {
        let text = String::from_utf8_lossy(&tail);
        let first = text.lines().next().unwrap_or("").to_string();
        if first.chars().count() > 80 {
            format!("{}…", first.chars().take(80).collect::<String>())
        } else {
            first
        }
    };
    let example = Example {
        row: Some(rows),
        line: Some(line),
        value: Some(shown()),
    };
    let unterminated_line = !tail.ends_with(b"\n") && !tail.ends_with(b"\r");
    // A doubled quote inside a quoted field counts twice, so an odd count
    // means a quote that never closes, when the last value runs over a line
    // break or to the end of an unterminated line (a lone `"` inside an
    // unquoted value, as in `5" screen`, is a literal quote).
    let odd = tail.iter().filter(|&&b| b == b'"').count() % 2 == 1;
    if odd && (multiline || unterminated_line) {
        let mut f = finding(
            src,
            Severity::Error,
            "unterminated_quote",
            None,
            1,
            format!("a quote opened on line {line} is never closed: everything after it reads as one value"),
            "close the quote (or remove it); if the file was cut off, export it again",
        );
        f.examples.push(example.clone());
        out.push(f);
    } else if unterminated_line && short && policy.truncated != Severity::Ignore {
        let mut f = finding(
            src,
            policy.truncated,
            "truncated_file",
            None,
            1,
            format!("the last row (line {line}) has fewer fields than the header and no line break at its end: the file was probably cut off while it was written or copied"),
            "export or copy the file again; if the row is complete as it is, add the missing fields (or set quality.truncated = \"warning\")",
        );
        f.examples.push(example);
        out.push(f);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicated_header_names_are_found_with_positions() {
        let h: Vec<String> = ["a", "b", "a", "c", "b"].map(String::from).to_vec();
        assert_eq!(
            duplicated_columns(&h),
            vec![("a".to_string(), vec![1, 3]), ("b".to_string(), vec![2, 5])]
        );
    }
}
