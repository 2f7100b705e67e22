//! CRM-ready CSV exports of a run: `exceptions.csv` and `assignments.csv`.
//!
//! A CS-ops person imports these into Salesforce or HubSpot to update tiers,
//! so they are plain: UTF-8 without a byte-order mark, a header row,
//! RFC 4180 quoting (a field with a comma, quote or line break is quoted, a
//! quote doubled), `\n` line ends, numbers in full precision with a dot, empty
//! for missing. Text that a spreadsheet would run as a formula — starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return (OWASP's CSV injection list) —
//! gets a leading `'`, which spreadsheets show as text. Each export is a pure
//! function of the run's assignments frame.

use std::borrow::Cow;
use std::io::Write;

use rayon::prelude::*;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::schema::column;

/// Columns of `exceptions.csv`, (output name, assignments column), for a
/// run of `methods` (each method's segment and its name follow the tier
/// columns, in the run's method order).
pub fn exception_columns(methods: &[&str]) -> Vec<(String, String)> {
    let mut cols: Vec<(String, String)> = [
        ("as_of", "as_of"),
        ("rank", "exception_rank"),
        ("account_id", "account_id"),
        ("current_tier", "current_tier"),
        ("suggested_tier", "suggested_tier"),
        ("direction", "exception"),
        ("band", "band"),
        ("confidence", "confidence"),
        ("value_at_stake", "value_at_stake"),
        ("status", "status"),
        ("first_flagged", "first_flagged"),
        ("reason_short", "reason_short"),
        ("reason", "reason"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    cols.extend(segment_columns(methods));
    cols
}

/// Columns of `assignments.csv` for a run of `methods`.
pub fn assignment_columns(methods: &[&str]) -> Vec<(String, String)> {
    let mut cols = vec![
        ("as_of".to_string(), "as_of".to_string()),
        ("account_id".to_string(), "account_id".to_string()),
    ];
    cols.extend(segment_columns(methods));
    for c in [
        "current_tier",
        "suggested_tier",
        "exception",
        "band",
        "confidence",
        "reason_short",
        "rule_tier",
    ] {
        cols.push((c.to_string(), c.to_string()));
    }
    cols
}

fn segment_columns(methods: &[&str]) -> Vec<(String, String)> {
    methods
        .iter()
        .flat_map(|m| {
            [
                (column::segment(m), column::segment(m)),
                (format!("{}_name", column::segment(m)), column::name(m)),
            ]
        })
        .collect()
}

/// Decimals a numeric CSV column is written with (None: as it is).
fn decimals(column: &str) -> Option<i32> {
    match column {
        "confidence" => Some(3),
        "value_at_stake" => Some(2),
        _ => None,
    }
}

/// A text cell a spreadsheet will not evaluate.
pub fn safe_cell(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

/// `columns` of `df` (those it has) as CSV into `out`, rows in `df`'s
/// order. Blocks of rows are formatted on all threads and written in order,
/// a window of blocks at a time: the bytes are those of one writer going
/// row by row, and memory holds one window, not the whole file. Each block
/// turns its own rows of each column into text, so no column is ever held
/// as text whole (at 10M accounts, some 25 columns of 10M strings each).
pub fn csv<S: AsRef<str>>(df: &DataFrame, columns: &[(S, S)], out: &mut dyn Write) -> Result<()> {
    let present: Vec<(&str, &str)> = columns
        .iter()
        .map(|(a, b)| (a.as_ref(), b.as_ref()))
        .filter(|(_, c)| df.column(c).is_ok())
        .collect();
    // Rows `range` of column `c` as text, and whether it was text already.
    let text_of = |c: &str, range: &std::ops::Range<usize>| -> Result<(bool, StringChunked)> {
        let col = df.column(c)?.slice(range.start as i64, range.len());
        let text = col.dtype() == &DataType::String;
        // Numbers as a CRM field holds them: a probability to 3 decimals,
        // money to the cent (no 388871.27999999997).
        let col = match decimals(c) {
            Some(d) if col.dtype().is_float() => {
                let f = col.cast(&DataType::Float64)?;
                let scale = 10f64.powi(d);
                let rounded: Float64Chunked =
                    f.f64()?.apply_values(|v| (v * scale).round() / scale);
                rounded.into_series().into_column()
            }
            _ => col,
        };
        let s = col.cast(&DataType::String)?;
        // One chunk: a cell is then an offset lookup, not a search of chunks.
        Ok((text, s.str()?.rechunk().into_owned()))
    };
    let err = |e: csv::Error| Error::Internal(format!("writing CSV: {e}"));
    let writer = || {
        csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new())
    };
    let mut w = writer();
    w.write_record(present.iter().map(|(name, _)| *name))
        .map_err(err)?;
    let header = w.into_inner().map_err(|e| err(e.into_error().into()))?;
    out.write_all(&header).map_err(write_error)?;
    let rows = |range: std::ops::Range<usize>| -> Result<Vec<u8>> {
        let cells: Vec<(bool, StringChunked)> = present
            .iter()
            .map(|(_, c)| text_of(c, &range))
            .collect::<Result<_>>()?;
        let mut w = writer();
        let mut record: Vec<Cow<str>> = Vec::with_capacity(present.len());
        for i in 0..range.len() {
            record.clear();
            for (text, ca) in &cells {
                let v = ca.get(i).unwrap_or("");
                record.push(if *text {
                    safe_cell(v)
                } else {
                    Cow::Borrowed(v)
                });
            }
            w.write_record(record.iter().map(|c| c.as_bytes()))
                .map_err(err)?;
        }
        w.into_inner().map_err(|e| err(e.into_error().into()))
    };
    let n = df.height();
    let window = CSV_BLOCK * 4 * rayon::current_num_threads();
    for start in (0..n).step_by(window) {
        let end = (start + window).min(n);
        let blocks: Vec<Vec<u8>> = (start..end)
            .step_by(CSV_BLOCK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|b| rows(b..(b + CSV_BLOCK).min(end)))
            .collect::<Result<_>>()?;
        for b in blocks {
            out.write_all(&b).map_err(write_error)?;
        }
    }
    Ok(())
}

/// Rows per block of a CSV formatted in parallel.
const CSV_BLOCK: usize = 16_384;

/// A failed write to the CSV's destination (the caller names the file).
fn write_error(e: std::io::Error) -> Error {
    Error::Internal(format!("writing CSV: {e}"))
}

/// The exceptions of an assignments frame, by rank, as `exceptions.csv`.
pub fn exceptions_csv(assignments: &DataFrame, methods: &[&str]) -> Result<Vec<u8>> {
    let df = match assignments.column("exception_rank") {
        Ok(rank) => {
            let keep = rank.is_not_null();
            let only = assignments.filter(&keep)?;
            only.sort(["exception_rank"], SortMultipleOptions::default())?
        }
        Err(_) => assignments.clear(),
    };
    let mut out = Vec::new();
    csv(&df, &exception_columns(methods), &mut out)?;
    Ok(out)
}

/// Every account's segments and tiers, as `assignments.csv`, into `out`.
pub fn assignments_csv(
    assignments: &DataFrame,
    methods: &[&str],
    out: &mut dyn Write,
) -> Result<()> {
    csv(assignments, &assignment_columns(methods), out)
}

/// `resolved.csv`: every account flagged last month and not this month,
/// with last month's flag, its tier now and whether it moved as suggested.
pub fn resolved_csv(
    assignments: &DataFrame,
    as_of: &str,
    history: &crate::history::History,
) -> Result<Vec<u8>> {
    let ids = assignments.column("account_id")?.str()?.clone();
    let now = assignments.column("exception")?.str()?.clone();
    let tier = assignments.column("current_tier")?.str()?.clone();
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let err = |e: csv::Error| Error::Internal(format!("writing CSV: {e}"));
    w.write_record([
        "as_of",
        "account_id",
        "previous_exception",
        "previous_suggested_tier",
        "current_tier",
        "moved_as_suggested",
    ])
    .map_err(err)?;
    for i in 0..ids.len() {
        let Some(Some(before)) = history.previous_exception.get(i) else {
            continue;
        };
        if now.get(i).is_some() {
            continue;
        }
        let suggested = history
            .previous_suggested_tier
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_default();
        let current = tier.get(i).unwrap_or("");
        let moved = !current.is_empty() && current == suggested;
        w.write_record([
            as_of,
            &safe_cell(ids.get(i).unwrap_or("")),
            before.as_str(),
            &safe_cell(&suggested),
            &safe_cell(current),
            if moved { "yes" } else { "no" },
        ])
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Internal(format!("writing CSV: {e}")))
}

/// Longest reason a standard CRM text field holds.
pub const SHORT_REASON: usize = 255;

/// An exception's reason for a CRM text field: what it means and its
/// strongest reason (or the neighbours' evidence), at most
/// [`SHORT_REASON`] characters, cut at a word with "…". `full` is the
/// exception's [`reason_text`](crate::compare::Exception::reason_text), which
/// the caller has already built.
pub fn short_reason(e: &crate::compare::Exception, full: &str) -> String {
    let lead = full.split(": ").next().unwrap_or("");
    let first = e
        .reasons
        .first()
        .map_or(e.evidence.as_str(), |r| r.text.as_str());
    let text = format!("{lead}: {first}");
    if text.chars().count() <= SHORT_REASON {
        return text;
    }
    let mut out = String::new();
    for w in text.split(' ') {
        if out.chars().count() + w.chars().count() + 2 > SHORT_REASON {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_fields_quoted() {
        let df = df!(
            "account_id" => ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "plain, with comma", "line\nbreak", "quote \" inside"],
            "value_at_stake" => [-5.5f64, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        )
        .unwrap();
        let mut bytes = Vec::new();
        let columns = [("account_id", "account_id"), ("value", "value_at_stake")];
        csv(&df, &columns, &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let want = "account_id,value\n\
                    \"'=HYPERLINK(\"\"x\"\")\",-5.5\n\
                    '+1,1.0\n\
                    '-2,2.0\n\
                    '@SUM(A1),3.0\n\
                    \"plain, with comma\",4.0\n\
                    \"line\nbreak\",5.0\n\
                    \"quote \"\" inside\",6.0\n";
        assert_eq!(text, want);
        // Numbers stay numbers: a negative value is not prefixed.
        assert!(text.contains(",-5.5\n"));
    }

    #[test]
    fn blocks_formatted_in_parallel_are_the_rows_in_order() {
        // Across several blocks and windows, with quoting in some rows.
        let n = 2 * CSV_BLOCK * 4 * rayon::current_num_threads() + 7;
        let ids: Vec<String> = (0..n)
            .map(|i| match i % 5 {
                0 => format!("={i}"),
                1 => format!("a,{i}"),
                _ => format!("id{i}"),
            })
            .collect();
        let value: Vec<Option<f64>> = (0..n)
            .map(|i| (i % 3 != 0).then_some(i as f64 / 7.0))
            .collect();
        let df = df!("account_id" => &ids, "value_at_stake" => &value).unwrap();
        let mut got = Vec::new();
        csv(
            &df,
            &[("account_id", "account_id"), ("value", "value_at_stake")],
            &mut got,
        )
        .unwrap();
        // One writer, row by row, on the same cells.
        let cents: Vec<Option<f64>> = value
            .iter()
            .map(|v| v.map(|v| (v * 100.0).round() / 100.0))
            .collect();
        let text = Column::new("v".into(), cents)
            .cast(&DataType::String)
            .unwrap();
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(["account_id", "value"]).unwrap();
        for (i, id) in ids.iter().enumerate() {
            let v = text.str().unwrap().get(i).unwrap_or("");
            w.write_record([safe_cell(id).as_ref(), v]).unwrap();
        }
        let want = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }

    #[test]
    fn exceptions_come_by_rank_and_others_are_left_out() {
        let df = df!(
            "account_id" => ["a", "b", "c"],
            "exception" => [Some("upgrade"), None, Some("downgrade")],
            "exception_rank" => [Some(2u32), None, Some(1)],
        )
        .unwrap();
        let text = String::from_utf8(exceptions_csv(&df, &["kmeans"]).unwrap()).unwrap();
        assert_eq!(
            text,
            "rank,account_id,direction\n1,c,downgrade\n2,a,upgrade\n"
        );
    }
}
