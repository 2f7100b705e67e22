//! Which date format a text column is written in, decided from the data.
//!
//! Without `date_format`, strata does not let the parser guess value by value
//! (a guess turned `11/30/2025` into nulls and `03/04/2026` into the wrong
//! month). Instead it tries a fixed list of common formats on the column's
//! distinct values (from an evenly spaced sample of rows) and takes the one
//! that reads every value. When two formats read every value but disagree on
//! some date (`03/04/2026`: 3 April or 4 March?) the column is ambiguous and the
//! user must say which with `date_format`. Years outside 1900–2200 do not count
//! as read, so `%Y` cannot swallow a two-digit year.

use std::collections::HashSet;

use polars::prelude::*;

use super::frame::RowNumbers;
use super::load::{example_at, finding};
use crate::config::Source;
use crate::guard::guard;
use crate::quality::{self, QualityReport, Severity};

use chrono::{Datelike, NaiveDate};

/// The formats tried, ISO first (ties go to the earlier one).
pub const CANDIDATES: &[&str] = &[
    "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%m/%d/%Y", "%d/%m/%Y", "%m-%d-%Y", "%d-%m-%Y",
    "%d.%m.%Y", "%m/%d/%y", "%d/%m/%y", "%d-%b-%Y", "%d %b %Y", "%b %d %Y", "%Y-%m", "%Y/%m",
    "%m/%Y",
];

/// The ISO format, which needs no word to the user.
pub const ISO: &str = "%Y-%m-%d";

/// Whether `fmt` names a month without a day (read as the month's first day).
pub fn month_only(fmt: &str) -> bool {
    !fmt.contains("%d") && !fmt.contains("%j")
}

/// The date part of a value: before a time (`2026-10-01T12:00:00Z`,
/// `11/30/2025 14:05`), trimmed.
pub fn date_token(v: &str) -> &str {
    let v = v.trim();
    for (i, c) in v.char_indices() {
        if (c == 'T' || c == ' ') && i >= 6 {
            let rest = &v[i + c.len_utf8()..];
            if rest.len() >= 4 && rest.as_bytes()[0].is_ascii_digit() && rest.contains(':') {
                return &v[..i];
            }
        }
    }
    v
}

/// Whether some value has a time after its date.
pub fn has_time(v: &str) -> bool {
    date_token(v).len() < v.trim().len()
}

/// `v` read with `fmt`, if it reads and its year is plausible.
pub fn parse(v: &str, fmt: &str) -> Option<NaiveDate> {
    let token = date_token(v);
    let d = if month_only(fmt) {
        NaiveDate::parse_from_str(&format!("{token}-01"), &format!("{fmt}-%d")).ok()?
    } else {
        NaiveDate::parse_from_str(token, fmt).ok()?
    };
    (1900..=2200).contains(&d.year()).then_some(d)
}

/// What the data says about its format.
#[derive(Debug, Clone, PartialEq)]
pub enum Detected {
    /// One format reads every value (or the others that do agree with it).
    Format(&'static str),
    /// No format reads every value; this one reads the most (the values it
    /// cannot read are the errors to report).
    Partial(&'static str),
    /// No format reads any value.
    Nothing,
    /// Two formats read every value but give different dates for `value`.
    Ambiguous {
        value: String,
        first: (&'static str, NaiveDate),
        second: (&'static str, NaiveDate),
    },
}

/// Decide the format of `values` (distinct, non-empty).
pub fn detect<'a>(values: impl IntoIterator<Item = &'a str>) -> Detected {
    let values: Vec<&str> = values
        .into_iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut values = values;
    values.sort_unstable();
    if values.is_empty() {
        return Detected::Format(ISO);
    }
    let parsed: Vec<Vec<Option<NaiveDate>>> = CANDIDATES
        .iter()
        .map(|f| values.iter().map(|v| parse(v, f)).collect())
        .collect();
    let counts: Vec<usize> = parsed.iter().map(|p| p.iter().flatten().count()).collect();
    let full: Vec<usize> = (0..CANDIDATES.len())
        .filter(|&i| counts[i] == values.len())
        .collect();
    if let Some(&first) = full.first() {
        for &other in &full[1..] {
            if let Some(j) = (0..values.len()).find(|&j| parsed[first][j] != parsed[other][j]) {
                return Detected::Ambiguous {
                    value: values[j].to_string(),
                    first: (CANDIDATES[first], parsed[first][j].expect("full")),
                    second: (CANDIDATES[other], parsed[other][j].expect("full")),
                };
            }
        }
        return Detected::Format(CANDIDATES[first]);
    }
    // The earliest of the formats that read the most values.
    let best = (0..CANDIDATES.len())
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .expect("candidates");
    if counts[best] == 0 {
        Detected::Nothing
    } else {
        Detected::Partial(CANDIDATES[best])
    }
}

/// A format in words, for messages: `%m/%d/%Y` → `MM/DD/YYYY`.
pub fn describe(fmt: &str) -> String {
    fmt.replace("%Y", "YYYY")
        .replace("%y", "YY")
        .replace("%m", "MM")
        .replace("%d", "DD")
        .replace("%b", "Mon")
}

/// The month of a date stored as days since 1970-01-01 (Polars' `Date`), as
/// `year * 12 + month - 1`: the index [`crate::month::Month::index`] uses.
/// Integer arithmetic only (H. Hinnant's `civil_from_days`,
/// <https://howardhinnant.github.io/date_algorithms.html>), so a column of
/// dates costs a few nanoseconds a row instead of two calendar conversions.
pub fn month_index(days: i32) -> i32 {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // day of the 400-year era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // from 1 March, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year * 12 + month - 1) as i32
}

// Date columns of a source read as dates, with what does not parse reported.

/// Parse a date column; report values that do not parse.
pub(super) fn parse_dates(
    s: &Source,
    df: &DataFrame,
    d: &str,
    rows: &RowNumbers,
    max_ex: usize,
    report: &mut QualityReport,
) -> Option<Column> {
    let c = df.column(d).ok()?.clone();
    match c.dtype() {
        DataType::Date => return None,
        DataType::Datetime(_, _) => return c.cast(&DataType::Date).ok(),
        DataType::String => {}
        other => {
            report.push(finding(
                s,
                Severity::Error,
                "wrong_type",
                Some(d),
                df.height(),
                format!("date column holds {other}, not dates"),
                "store dates as text like 2026-10-31 (or declare date_format) or as a Parquet date",
            ));
            return None;
        }
    }
    let hint = format!(
        "write dates as YYYY-MM-DD, or set date_format on sources.{} (e.g. \"%m/%d/%Y\" for 11/30/2025, \"%d/%m/%Y\" for 30/11/2025)",
        s.name
    );
    let declared = s.date_format.clone();
    let (chosen, exact) = match declared {
        Some(f) => (f, true),
        None => {
            let (f, exact) = detect_format(s, df, d, rows, max_ex, &hint, report)?;
            (f.to_string(), exact)
        }
    };
    let (fmt, suffix) = if month_only(&chosen) {
        (Some(format!("{chosen}-%d")), true)
    } else {
        (Some(chosen.clone()), false)
    };
    let mut input = col(d);
    if suffix {
        input = concat_str([input, lit("-01")], "", false);
    }
    let opts = StrptimeOptions {
        format: fmt.clone().map(Into::into),
        strict: false,
        exact,
        cache: true,
    };
    let parsed = guard(|| {
        df.clone()
            .lazy()
            .select([
                col(d).alias("orig"),
                input.str().to_date(opts.clone()).alias(d),
            ])
            .collect()
    });
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            report.push(finding(
                s,
                Severity::Error,
                "unparsable_date",
                Some(d),
                df.height(),
                format!("dates cannot be parsed: {e}"),
                hint.clone(),
            ));
            return None;
        }
    };
    let orig = parsed.column("orig").ok()?.str().ok()?.clone();
    let out = parsed.column(d).ok()?.clone();
    let bad: Vec<usize> = orig
        .iter()
        .zip(out.is_null().iter())
        .enumerate()
        .filter_map(|(i, (o, n))| (o.is_some() && n == Some(true)).then_some(i))
        .collect();
    if !bad.is_empty() {
        let message = format!(
            "{} value(s) are not dates in format {chosen} ({}{})",
            bad.len(),
            describe(&chosen),
            if s.date_format.is_some() {
                ", the source's date_format"
            } else {
                ", the format most values are in"
            }
        );
        report.push(bad_dates(s, d, &bad, &orig, rows, max_ex, message, hint));
    }
    Some(out)
}

/// The `unparsable_date` error for rows `bad` of date column `d`, with the
/// first `max_ex` of them (line and value) as examples.
#[allow(clippy::too_many_arguments)]
pub(super) fn bad_dates(
    s: &Source,
    d: &str,
    bad: &[usize],
    values: &StringChunked,
    rows: &RowNumbers,
    max_ex: usize,
    message: String,
    hint: String,
) -> quality::Finding {
    let mut f = finding(
        s,
        Severity::Error,
        "unparsable_date",
        Some(d),
        bad.len(),
        message,
        hint,
    );
    f.examples = bad
        .iter()
        .take(max_ex)
        .map(|&i| example_at(s, rows.at(i), values.get(i).map(str::to_string)))
        .collect();
    f
}

/// The format of date column `d` when the source declares none: the one that
/// reads every value of an evenly spaced sample of up to 100,000 rows (see
/// [`dates`]). Returns the format and whether values are dates alone (exact
/// match) or dates followed by a time. A non-ISO format is used and reported
/// as a warning; an ambiguous one, or none at all, is an error and `None`.
pub(super) fn detect_format(
    s: &Source,
    df: &DataFrame,
    d: &str,
    rows: &RowNumbers,
    max_ex: usize,
    hint: &str,
    report: &mut QualityReport,
) -> Option<(&'static str, bool)> {
    let c = df.column(d).ok()?.str().ok()?.clone();
    let n = c.len();
    let step = n.div_ceil(100_000).max(1);
    let sample: Vec<&str> = (0..n).step_by(step).filter_map(|i| c.get(i)).collect();
    let with_time = sample.iter().any(|v| has_time(v));
    let first_row = |value: &str| -> Option<usize> {
        c.iter().position(|v| v == Some(value)).map(|i| rows.at(i))
    };
    match detect(sample.iter().copied().filter(|v| !v.trim().is_empty())) {
        Detected::Format(f) | Detected::Partial(f) => {
            if f != ISO {
                let example = sample
                    .iter()
                    .find(|v| parse(v, f).is_some())
                    .copied()
                    .unwrap_or("");
                let read = parse(example, f).map(|x| x.to_string()).unwrap_or_default();
                let mut x = finding(
                    s,
                    Severity::Warning,
                    "date_format_detected",
                    Some(d),
                    0,
                    format!(
                        "dates are not ISO (YYYY-MM-DD); read as {f} ({}), the only format that fits them: `{example}` = {read}",
                        describe(f)
                    ),
                    format!("set date_format = \"{f}\" on sources.{} to make this explicit", s.name),
                );
                if let Some(r) = first_row(example) {
                    x.examples.push(example_at(s, r, Some(example.to_string())));
                }
                report.push(x);
            }
            Some((f, !with_time))
        }
        Detected::Ambiguous {
            value,
            first,
            second,
        } => {
            let mut x = finding(
                s,
                Severity::Error,
                "ambiguous_date",
                Some(d),
                0,
                format!(
                    "the dates fit both {} ({}) and {} ({}): `{value}` is {} or {}",
                    first.0,
                    describe(first.0),
                    second.0,
                    describe(second.0),
                    first.1,
                    second.1
                ),
                format!(
                    "say which with date_format = \"{}\" or date_format = \"{}\" on sources.{}",
                    first.0, second.0, s.name
                ),
            );
            if let Some(r) = first_row(&value) {
                x.examples.push(example_at(s, r, Some(value.clone())));
            }
            report.push(x);
            None
        }
        Detected::Nothing => {
            let bad: Vec<usize> = (0..n)
                .filter(|&i| c.get(i).is_some_and(|v| !v.trim().is_empty()))
                .collect();
            let message = format!(
                "{} value(s) are not dates in any format strata knows",
                bad.len()
            );
            report.push(bad_dates(
                s,
                d,
                &bad,
                &c,
                rows,
                max_ex,
                message,
                hint.to_string(),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_index_matches_the_calendar() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        // Every day from 1600 to 2400 (leap centuries 1600, 2000, 2400 and
        // the non-leap 1700, 1800, 1900, 2100), and far out on both sides.
        let days = (-135_000..157_000).chain([-3_000_000, -719_468, 2_000_000, 2_932_896]);
        for d in days {
            let date = epoch + chrono::Duration::days(d as i64);
            let want = date.year() * 12 + date.month() as i32 - 1;
            assert_eq!(month_index(d), want, "{date}");
        }
    }

    #[test]
    fn iso_dates_are_iso() {
        assert_eq!(
            detect(["2026-10-01", "2025-01-31"]),
            Detected::Format("%Y-%m-%d")
        );
        assert_eq!(
            detect(["2026-10-01T12:00:00Z", "2025-01-31 00:00:00"]),
            Detected::Format("%Y-%m-%d")
        );
    }

    #[test]
    fn us_dates_are_detected_when_a_day_is_above_12() {
        assert_eq!(
            detect(["11/30/2025", "12/01/2025", "01/02/2026"]),
            Detected::Format("%m/%d/%Y")
        );
        assert_eq!(
            detect(["30/11/2025", "01/12/2025"]),
            Detected::Format("%d/%m/%Y")
        );
        assert_eq!(detect(["30.11.2025"]), Detected::Format("%d.%m.%Y"));
        assert_eq!(detect(["11/30/25"]), Detected::Format("%m/%d/%y"));
        assert_eq!(detect(["2026-10"]), Detected::Format("%Y-%m"));
    }

    #[test]
    fn day_and_month_both_at_most_12_is_ambiguous() {
        match detect(["03/04/2026", "05/06/2026"]) {
            Detected::Ambiguous {
                value,
                first,
                second,
            } => {
                assert_eq!(value, "03/04/2026");
                assert_eq!(first.0, "%m/%d/%Y");
                assert_eq!(second.0, "%d/%m/%Y");
                assert_ne!(first.1, second.1);
            }
            other => panic!("{other:?}"),
        }
        // Dates on which both readings agree are not ambiguous.
        assert_eq!(
            detect(["01/01/2026", "02/02/2026"]),
            Detected::Format("%m/%d/%Y")
        );
    }

    #[test]
    fn a_bad_value_among_good_ones_is_partial() {
        assert_eq!(
            detect(["2026-10-01", "31/02/2026", "2026-11-01"]),
            Detected::Partial("%Y-%m-%d")
        );
        assert_eq!(detect(["soon", "later"]), Detected::Nothing);
    }

    #[test]
    fn two_digit_years_are_not_read_as_year_25() {
        assert_eq!(parse("11/30/25", "%m/%d/%Y"), None);
        assert_eq!(
            parse("11/30/25", "%m/%d/%y"),
            NaiveDate::from_ymd_opt(2025, 11, 30)
        );
    }
}
