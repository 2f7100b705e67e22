//! What `strata sql` must know of the sources to write a query with
//! strata's own reading of them: for each column the pipeline reads, whether
//! strata reads it as a number or as text, and each date column's format
//! (found the way ingestion finds it, [`super::dates::detect`]). Read with
//! ingestion's own reader ([`super::load::read`]: types inferred from the
//! first 10,000 rows); the data itself stays where it is.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::dates::{self, Detected};
use super::read::needed_columns;
use crate::config::{Pipeline, Source};
use crate::error::{Error, Result};

/// How strata reads one source's columns.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// Columns read as numbers (numbers stored as text included).
    pub numeric: BTreeSet<String>,
    /// Date columns and their format (`None`: already dates in the file).
    pub dates: BTreeMap<String, Option<String>>,
    /// Every column strata reads from the source's file.
    pub columns: BTreeSet<String>,
}

/// Each source's [`Shape`], by source name. Errors name the source and what
/// to do (an unreadable file, a date column no format reads).
pub fn probe(p: &Pipeline) -> Result<BTreeMap<String, Shape>> {
    let need = needed_columns(p);
    let mut out = BTreeMap::new();
    for s in &p.sources {
        let cols: BTreeSet<String> = need
            .get(&s.name)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        out.insert(s.name.clone(), shape(p, s, &cols)?);
    }
    Ok(out)
}

fn shape(p: &Pipeline, s: &Source, cols: &BTreeSet<String>) -> Result<Shape> {
    let (df, _) = super::load::read(s, cols, &p.quality).map_err(|f| {
        Error::Usage(format!(
            "sources.{} ({}): {}",
            s.name,
            s.path.display(),
            f.first()
                .map_or("cannot be read".to_string(), |f| f.message.clone())
        ))
    })?;
    let mut shape = Shape::default();
    let date_cols = s.date_columns();
    for c in cols {
        let Ok(col) = df.column(c) else { continue };
        shape.columns.insert(c.clone());
        let series = col.as_materialized_series();
        if date_cols.contains(c) {
            let fmt = match series.dtype() {
                DataType::Date | DataType::Datetime(..) => None,
                _ => Some(date_format(s, c, series)?),
            };
            shape.dates.insert(c.clone(), fmt);
        } else if series.dtype().is_primitive_numeric() || series.dtype() == &DataType::Null {
            shape.numeric.insert(c.clone());
        } else if series.dtype() == &DataType::String {
            let text = series.str()?;
            let all_numbers = text.null_count() < text.len()
                && text
                    .iter()
                    .flatten()
                    .all(|v| v.trim().parse::<f64>().is_ok());
            if all_numbers {
                shape.numeric.insert(c.clone());
            }
        }
    }
    Ok(shape)
}

/// The format of a text date column: the source's `date_format`, else the
/// one [`dates::detect`] finds on (up to 20,000 of) its values.
fn date_format(s: &Source, c: &str, series: &Series) -> Result<String> {
    if let Some(f) = &s.date_format {
        return Ok(f.clone());
    }
    let text = series.cast(&DataType::String)?;
    let text = text.str()?;
    let values: Vec<&str> = text
        .iter()
        .flatten()
        .take(20_000)
        .map(dates::date_token)
        .collect();
    match dates::detect(values) {
        Detected::Format(f) | Detected::Partial(f) => Ok(f.to_string()),
        Detected::Nothing => Err(Error::Usage(format!(
            "sources.{}: no date format reads column `{c}`; set date_format on the source",
            s.name
        ))),
        Detected::Ambiguous { value, .. } => Err(Error::Usage(format!(
            "sources.{}: column `{c}` reads as two date formats (`{value}`); set date_format on the source",
            s.name
        ))),
    }
}
