//! The pipeline's expressions (features, filters, tier rules): Polars SQL,
//! parsed once when the file is read, and kept to the declared sources'
//! columns.

use crate::settings::Problems;

/// Parse a Polars SQL expression, recording a problem when it does not parse.
///
/// Only expressions over the declared sources' columns are allowed: a
/// subquery (`x IN (SELECT c FROM read_csv('…'))`) would be run by Polars while
/// parsing and could read files the pipeline does not declare, so it is
/// rejected before Polars sees it.
pub(super) fn parse_expr(
    problems: &mut Problems,
    key: &str,
    text: &str,
) -> Option<polars::prelude::Expr> {
    if let Some(word) = sql_outside_expressions(text) {
        problems.push(
            key,
            format!("`{text}` uses `{word}`: expressions may only use the columns of declared sources (no subqueries); declare another file as a source instead"),
        );
        return None;
    }
    let parsed = std::panic::catch_unwind(|| polars::sql::sql_expr(text));
    match parsed {
        Ok(Ok(e)) => Some(e),
        Ok(Err(e)) => {
            let first = crate::error::polars_message(&e.to_string());
            let quoting = if text.contains(' ') {
                " (a column name with spaces or other characters must be in double quotes: \"Tenure in Months\" > 12)"
            } else {
                ""
            };
            problems.push(
                key,
                format!("`{text}` is not a Polars SQL expression: {first}{quoting}"),
            );
            None
        }
        Err(_) => {
            problems.push(
                key,
                format!("`{text}` could not be parsed as a Polars SQL expression"),
            );
            None
        }
    }
}

/// `SELECT`, if `text` has it outside string literals and quoted identifiers:
/// every subquery needs it, and only a subquery can reach beyond the
/// expression's own columns (a table function such as `read_csv` stands in a
/// subquery's FROM). `FROM` alone is fine (`EXTRACT(YEAR FROM d)`).
pub(super) fn sql_outside_expressions(text: &str) -> Option<String> {
    let mut bare = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' || c == '`' => {
                quote = Some(c);
                bare.push(' ');
            }
            None => bare.push(c),
        }
    }
    bare.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|w| w.eq_ignore_ascii_case("select"))
        .map(str::to_string)
}
