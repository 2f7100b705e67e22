//! Ingestion: the user's sources in, one row per account out.
//!
//! A pipeline names an *account table* (one row per account) and any number of
//! child sources: usage, survey responses, revenue, tickets, … Each child reaches
//! an account either directly (`account = "account_id"`) or through another
//! source (`via = "subscriptions"`, `link = "subscription_id"`), so a schema where
//! usage is keyed by subscription works without writing code.
//!
//! The stage runs in four steps, collecting findings in a [`QualityReport`]
//! instead of stopping at the first problem:
//!
//! 1. **read** each source (only the columns the pipeline uses) — see [`load`];
//! 2. **prepare** it: parse dates, make keys text, convert numbers, check NaN/inf,
//!    nulls and the pipeline's range checks, apply the source's `filter`;
//! 3. **link** every row to an account: duplicates of ids and keys are dropped
//!    (keeping the latest row), orphans are reported and dropped;
//! 4. **aggregate** each feature over its time window per account (one Polars
//!    group-by per source and window, run on all threads over parts of the
//!    rows cut at account boundaries, so each account's values come from the
//!    same rows in the same layout whatever the thread count), attach them to
//!    the account table by account number, then evaluate the row-level
//!    features in the order they are declared.
//!
//! Every date column `d` of a source gains a column `months_since_d`: whole months
//! from `d` to the as-of month (0 = the as-of month itself, negative = later).
//! Windows are measured on the `time` column's one; expressions may use them too
//! (tenure = `months_since_customer_since`). Rows dated after the as-of month never
//! count, so re-running an old month gives the same features.

mod aggregate;
pub mod dates;
mod derive;
mod frame;
mod link;
pub mod load;
mod lookup;
mod parts;
mod prepare;
mod probe;
mod read;
mod table;

pub use aggregate::over_no_rows_value;
use aggregate::Aggregated;
use derive::build_features;
pub(crate) use derive::feature_finding;
pub use frame::{AccountFrame, ACCOUNT, AID};
use link::{dedupe, frame_key_map, link_source};
use prepare::finish_prepare;
pub use probe::{probe, Shape};
use read::{needed_columns, read_and_prepare};
pub use table::{from_table, parquet_files, SOURCE as FEATURE_TABLE};

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use crate::config::{Link, Pipeline, Source};
use crate::error::{Error, Result};
use crate::month::Month;
use crate::quality::{self, Severity};
use load::finding;
use quality::QualityReport;

use crate::memory::{trace, tracing};

/// A frame's rows and estimated size, for [`trace`] (measured only when tracing).
fn size(df: Option<&DataFrame>) -> String {
    match df {
        Some(d) if tracing() => format!(" ({} rows, {} MB)", d.height(), d.estimated_size() >> 20),
        _ => String::new(),
    }
}

/// Ingestion's output: the frame (when no error stopped it) and the report.
pub struct Ingested {
    pub frame: Option<AccountFrame>,
    pub report: QualityReport,
    /// The month the data was read as of.
    pub as_of: Month,
    /// How the as-of month was found, when it was taken from the data.
    pub as_of_note: Option<String>,
}

/// Run ingestion. Data problems go into the report; only I/O and internal
/// failures are returned as errors. `{as_of}` in source paths is replaced by
/// the month. Without an as-of month (`--as-of`, `run.as_of`) it is taken from
/// the data: the latest month with rows in every time-indexed source
/// ([`as_of_from_data`]); paths with `{as_of}` need it given.
pub fn ingest(p: &Pipeline, as_of: Option<Month>) -> Result<Ingested> {
    let p = &match as_of {
        Some(m) => p.for_month(m),
        None => {
            if let Some(s) = p
                .sources
                .iter()
                .find(|s| s.path.to_string_lossy().contains("{as_of}"))
            {
                return Err(Error::Usage(format!(
                    "sources.{}.path contains {{as_of}}, so the month must be given: --as-of YYYY-MM, or run.as_of in the pipeline file",
                    s.name
                )));
            }
            p.clone()
        }
    };
    let mut report = QualityReport::default();
    let need = needed_columns(p);

    // 1: read each source and prepare its values. With the month known, a
    // source is read only when it is about to be linked (step 3), so only the
    // linked form of the sources before it is held while it is read; without
    // it, every source is read first to find the month in the dates.
    let mut source = Sources {
        p,
        need: &need,
        as_of,
        read: HashMap::new(),
    };
    let (as_of, as_of_note) = match as_of {
        Some(m) => (m, None),
        None => {
            for s in &p.sources {
                source.read_now(s, &mut report);
            }
            let (m, note) = as_of_from_data(p, &source.read);
            (m, Some(note))
        }
    };

    let lookups = prepare_lookups(p, &mut source, as_of, &mut report)?;
    let (accounts, aggregated) = link_all(p, &mut source, as_of, &lookups, &mut report)?;
    // Summaries in the pipeline's order, however the sources were read.
    report
        .sources
        .sort_by_key(|x| p.sources.iter().position(|s| s.name == x.name));
    let acc_src = p.account_source();
    if let Some(sum) = report.sources.iter_mut().find(|x| x.name == acc_src.name) {
        sum.rows_used = accounts.as_ref().map_or(0, DataFrame::height);
    }
    for (name, df) in &lookups {
        if let Some(sum) = report.sources.iter_mut().find(|x| &x.name == name) {
            sum.rows_used = df.height();
        }
    }

    // Stop before the features are derived if the data cannot be trusted.
    let Some(accounts) = accounts.filter(|_| !report.has_errors()) else {
        report.sort();
        return Ok(Ingested {
            frame: None,
            report,
            as_of,
            as_of_note,
        });
    };

    // 4: join the aggregates and derive the row-level features.
    let t = std::time::Instant::now();
    let frame = build_features(p, accounts, aggregated, as_of, &mut report)?;
    trace("join and derive features", t);
    report.sort();
    Ok(Ingested {
        frame: if report.has_errors() {
            None
        } else {
            frame.map(|df| AccountFrame { df, as_of })
        },
        report,
        as_of,
        as_of_note,
    })
}

/// Step 2 for the lookups, first: each read, deduplicated by its key and
/// finished, by name.
fn prepare_lookups(
    p: &Pipeline,
    source: &mut Sources,
    as_of: Month,
    report: &mut QualityReport,
) -> Result<HashMap<String, DataFrame>> {
    let mut lookups: HashMap<String, DataFrame> = HashMap::new();
    for s in p.sources.iter().filter(|s| s.is_lookup()) {
        let Some(df) = source.take_read(s, report) else {
            continue;
        };
        let key = s.key.as_deref().expect("validated: a lookup has a key");
        let df = dedupe(p, s, df, key, report)?;
        if let Some(df) = finish_prepare(p, s, df, as_of, &lookups, report) {
            lookups.insert(s.name.clone(), df);
        }
    }

    Ok(lookups)
}

/// Step 3: every source linked to accounts, parents before children, each
/// aggregated as soon as it is linked. Returns the account table (numbered
/// by account, `None` when it could not be read) and the aggregates.
fn link_all<'a>(
    p: &'a Pipeline,
    source: &mut Sources,
    as_of: Month,
    lookups: &HashMap<String, DataFrame>,
    report: &mut QualityReport,
) -> Result<(Option<DataFrame>, Aggregated<'a>)> {
    let acc_src = p.account_source();
    // Linked sources kept for their children (`via`); the account table.
    let mut linked: HashMap<String, DataFrame> = HashMap::new();
    let mut aggregated = Aggregated::default();
    if let Some(df) = source.take(acc_src, as_of, lookups, report) {
        let df = dedupe(p, acc_src, df, acc_id_col(acc_src), report)?;
        let df = df
            .sort([ACCOUNT], SortMultipleOptions::default())?
            .with_row_index(AID.into(), None)?;
        linked.insert(acc_src.name.clone(), df);
    }
    let account_ids: Option<DataFrame> = match linked.get(&acc_src.name) {
        Some(df) => Some(df.select([ACCOUNT, AID])?),
        None => None,
    };
    // Account id → number, hashed once for every source linked to accounts
    // directly (at a million accounts, 0.1-0.2 s a source).
    let account_map = account_ids
        .as_ref()
        .and_then(|ids| frame_key_map(ids, ACCOUNT));
    // In dependency order: a source is ready once its `via` parent is linked.
    let mut pending: Vec<&Source> = p
        .sources
        .iter()
        .filter(|s| !s.is_lookup() && s.name != acc_src.name)
        .collect();
    loop {
        let (ready, rest): (Vec<&Source>, Vec<&Source>) =
            pending.into_iter().partition(|s| match &s.link {
                Link::Via { parent, .. } => linked.contains_key(parent),
                _ => true,
            });
        pending = rest;
        if ready.is_empty() {
            break;
        }
        // Read before, all at once: smallest first, since a linked source no
        // longer carries its text ids, the largest, linked last, meets the
        // least memory in use. Read now: in the pipeline's order.
        let mut ready = ready;
        ready.sort_by_key(|s| source.read.get(&s.name).map_or(0, DataFrame::height));
        for s in ready {
            let Some(df) = source.take(s, as_of, lookups, report) else {
                continue;
            };
            let Some(ids) = &account_ids else {
                continue;
            };
            let map = account_map.as_ref();
            link_one(p, s, df, (ids, map), &mut linked, &mut aggregated, report)?;
        }
    }
    let readable = account_ids.is_some();
    report_unlinked(source, pending, readable, as_of, lookups, report);
    Ok((linked.remove(&acc_src.name), aggregated))
}

/// One source linked (`accounts`: the accounts' ids and their number, and
/// the id → number map), its summary filled in, its aggregates computed, and
/// its rows kept only when a child links through it.
fn link_one<'a>(
    p: &'a Pipeline,
    s: &'a Source,
    df: DataFrame,
    (ids, account_map): (&DataFrame, Option<&link::KeyIndex>),
    linked: &mut HashMap<String, DataFrame>,
    aggregated: &mut Aggregated<'a>,
    report: &mut QualityReport,
) -> Result<()> {
    let t = std::time::Instant::now();
    let linked_df = link_source(p, s, df, ids, account_map, linked, report)?;
    trace(&format!("link {}{}", s.name, size(linked_df.as_ref())), t);
    crate::memory::release_freed();
    let Some(df) = linked_df else {
        return Ok(());
    };
    if let Some(sum) = report.sources.iter_mut().find(|x| x.name == s.name) {
        sum.rows_used = df.height();
        sum.accounts_with_rows = Some(df.column(AID)?.n_unique()?);
        sum.accounts = Some(ids.height());
    }
    // Aggregated now, so its rows are freed before the next source
    // is read: ingestion holds one source's rows at a time.
    let t = std::time::Instant::now();
    aggregated.add(p, s, &df, report)?;
    trace(&format!("aggregate {}", s.name), t);
    if p.sources
        .iter()
        .any(|c| matches!(&c.link, Link::Via { parent, .. } if parent == &s.name))
    {
        linked.insert(s.name.clone(), df);
    } else {
        drop(df);
    }
    crate::memory::release_freed();
    Ok(())
}

/// Children of a source that could not be read: read for their own
/// problems, then reported as unlinked.
fn report_unlinked(
    source: &mut Sources,
    pending: Vec<&Source>,
    accounts_read: bool,
    as_of: Month,
    lookups: &HashMap<String, DataFrame>,
    report: &mut QualityReport,
) {
    for s in pending {
        let read = source.take(s, as_of, lookups, report).is_some();
        if !read || !accounts_read {
            continue;
        }
        if let Link::Via { parent, .. } = &s.link {
            report.push(finding(
                s,
                Severity::Error,
                "unlinked_source",
                None,
                0,
                format!("cannot be linked to accounts because source `{parent}` could not be read"),
                format!("fix the problems reported for `{parent}`"),
            ));
        }
    }
}

/// Reads sources on demand: each once, prepared (step 1) and, when taken,
/// finished against the lookups and the month (step 2).
struct Sources<'a> {
    p: &'a Pipeline,
    need: &'a BTreeMap<String, BTreeMap<String, String>>,
    as_of: Option<Month>,
    /// Sources read and prepared but not yet taken.
    read: HashMap<String, DataFrame>,
}

impl Sources<'_> {
    /// Step 1 for `s` (its problems go to `report`), kept until taken.
    fn read_now(&mut self, s: &Source, report: &mut QualityReport) {
        let cols = self.need.get(&s.name).cloned().unwrap_or_default();
        let t = std::time::Instant::now();
        let df = read_and_prepare(self.p, s, &cols, self.as_of, report);
        trace(
            &format!("read and prepare {}{}", s.name, size(df.as_ref())),
            t,
        );
        crate::memory::release_freed();
        if let Some(df) = df {
            self.read.insert(s.name.clone(), df);
        }
    }

    /// `s` read and prepared (read now unless it already was), given away.
    fn take_read(&mut self, s: &Source, report: &mut QualityReport) -> Option<DataFrame> {
        if !self.read.contains_key(&s.name) {
            self.read_now(s, report);
        }
        self.read.remove(&s.name)
    }

    /// [`Self::take_read`], then step 2 (months-since columns, lookups, filter).
    fn take(
        &mut self,
        s: &Source,
        as_of: Month,
        lookups: &HashMap<String, DataFrame>,
        report: &mut QualityReport,
    ) -> Option<DataFrame> {
        let df = self.take_read(s, report)?;
        let t = std::time::Instant::now();
        let df = finish_prepare(self.p, s, df, as_of, lookups, report);
        trace(
            &format!("months since, lookups and filter of {}", s.name),
            t,
        );
        df
    }
}

/// The as-of month a pipeline without one runs at: the latest month with
/// rows in every time-indexed source (so no windowed feature starts beyond a
/// source's data), with a sentence saying so for the log. Without time-indexed
/// sources, the current month.
pub fn as_of_from_data(p: &Pipeline, prepared: &HashMap<String, DataFrame>) -> (Month, String) {
    let mut latest: Vec<(String, chrono::NaiveDate)> = Vec::new();
    for s in &p.sources {
        let (Some(t), Some(df)) = (&s.time, prepared.get(&s.name)) else {
            continue;
        };
        let max = df
            .column(t)
            .ok()
            .filter(|c| c.dtype() == &DataType::Date)
            .and_then(|c| c.as_materialized_series().date().ok()?.physical().max());
        if let Some(days) = max {
            let d = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
                + chrono::Duration::days(days as i64);
            latest.push((s.name.clone(), d));
        }
    }
    use chrono::Datelike;
    match latest.iter().min_by_key(|(_, d)| *d) {
        Some((_, d)) => {
            let m = Month {
                year: d.year(),
                month: d.month(),
            };
            let each: Vec<String> = latest.iter().map(|(s, d)| format!("{s} to {d}")).collect();
            (
                m,
                format!(
                    "as-of {m} from the data: the latest month with rows in every time-indexed source ({}); give --as-of (or run.as_of) to run another month",
                    each.join(", ")
                ),
            )
        }
        None => {
            let m = Month::current();
            (
                m,
                format!("as-of {m}, the current month: no source has dated rows (`time`) to take it from; give --as-of (or run.as_of) to run another month"),
            )
        }
    }
}

fn acc_id_col(s: &Source) -> &str {
    match &s.link {
        Link::Accounts { id } => id,
        _ => unreachable!("account source"),
    }
}

#[cfg(test)]
mod tests;
