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

pub mod dates;
pub mod load;
pub use crate::quality;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use polars::prelude::*;

use crate::config::{Feature, Kind, Link, Month, Pipeline, Severity, Source, Window};
use crate::error::{Error, Result};
use load::{example_at, finding, guard, ROW};
use quality::{Example, QualityReport, SourceSummary};

use crate::memory::{trace, tracing};

/// A frame's rows and estimated size, for [`trace`] (measured only when tracing).
fn size(df: Option<&DataFrame>) -> String {
    match df {
        Some(d) if tracing() => format!(" ({} rows, {} MB)", d.height(), d.estimated_size() >> 20),
        _ => String::new(),
    }
}

/// Column holding the account id (as text) in every prepared source.
pub const ACCOUNT: &str = "__account";
/// Column holding the account's row number in the account table (u32): the
/// key of every join and group-by, far cheaper to hash than text ids.
pub const AID: &str = "__aid";
pub use crate::schema::ACCOUNT_ID;
/// Account table with `since`/`until`: a customer at the end of the as-of month.
const ACTIVE: &str = "__active";
/// Account table with `since`: a customer by the end of the as-of month (gone or not).
const STARTED: &str = "__started";

/// The result of ingestion: one row per account, sorted by id.
#[derive(Debug, Clone)]
pub struct AccountFrame {
    /// `account_id` (text) and one column per feature (numeric as f64, categorical as text).
    pub df: DataFrame,
    pub as_of: Month,
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

fn months_since(col_name: &str) -> String {
    format!("months_since_{col_name}")
}

/// Columns each source must provide, with the reason each is needed.
fn needed_columns(p: &Pipeline) -> BTreeMap<String, BTreeMap<String, String>> {
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
    for f in &p.features {
        let src = f.source.clone().unwrap_or_else(|| account.clone());
        let row_level = f.source.is_none() || src == account;
        for r in f.expr.clone().meta().root_names() {
            if row_level && defined.contains(r.as_str()) {
                continue;
            }
            add(&src, &r, format!("feature `{}`", f.name));
        }
        defined.insert(f.name.clone());
    }
    need
}

/// The account-table column the tiers come from, when it is not a feature.
fn tier_column(p: &Pipeline) -> Option<&str> {
    match p.tiers.as_ref().map(|t| &t.source) {
        Some(crate::config::TierSource::Column(c)) => Some(c.as_str()),
        _ => None,
    }
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

    // 2: lookups first (deduplicated by key); every other source gets its
    // months-since columns, the lookups' columns and its filter when it is
    // taken (`Sources::take`).
    let mut lookups: HashMap<String, DataFrame> = HashMap::new();
    for s in p.sources.iter().filter(|s| s.is_lookup()) {
        let Some(df) = source.take_read(s, &mut report) else {
            continue;
        };
        let key = s.key.as_deref().expect("validated: a lookup has a key");
        let df = dedupe(p, s, df, key, &mut report)?;
        if let Some(df) = finish_prepare(p, s, df, as_of, &lookups, &mut report) {
            lookups.insert(s.name.clone(), df);
        }
    }

    // 3: link every source to accounts, parents before children.
    let acc_src = p.account_source();
    // Linked sources kept for their children (`via`); the account table.
    let mut linked: HashMap<String, DataFrame> = HashMap::new();
    let mut aggregated = Aggregated::default();
    if let Some(df) = source.take(acc_src, as_of, &lookups, &mut report) {
        let df = dedupe(p, acc_src, df, acc_id_col(acc_src), &mut report)?;
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
            let Some(df) = source.take(s, as_of, &lookups, &mut report) else {
                continue;
            };
            let Some(ids) = &account_ids else {
                continue;
            };
            let t = std::time::Instant::now();
            let linked_df = link_source(p, s, df, ids, account_map.as_ref(), &linked, &mut report)?;
            trace(&format!("link {}{}", s.name, size(linked_df.as_ref())), t);
            crate::memory::release_freed();
            let Some(df) = linked_df else {
                continue;
            };
            if let Some(sum) = report.sources.iter_mut().find(|x| x.name == s.name) {
                sum.rows_used = df.height();
                sum.accounts_with_rows = Some(df.column(AID)?.n_unique()?);
                sum.accounts = Some(ids.height());
            }
            // Aggregated now, so its rows are freed before the next source
            // is read: ingestion holds one source's rows at a time.
            let t = std::time::Instant::now();
            aggregated.add(p, s, &df, &mut report)?;
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
        }
    }
    // Children of a source that could not be read: read for their own
    // problems, then reported as unlinked.
    for s in pending {
        let read = source.take(s, as_of, &lookups, &mut report).is_some();
        if !read || account_ids.is_none() {
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
    // Summaries in the pipeline's order, however the sources were read.
    report
        .sources
        .sort_by_key(|x| p.sources.iter().position(|s| s.name == x.name));
    if let Some(sum) = report.sources.iter_mut().find(|x| x.name == acc_src.name) {
        sum.rows_used = linked.get(&acc_src.name).map_or(0, DataFrame::height);
    }
    for (name, df) in &lookups {
        if let Some(sum) = report.sources.iter_mut().find(|x| &x.name == name) {
            sum.rows_used = df.height();
        }
    }

    // Stop before the features are derived if the data cannot be trusted.
    let accounts = linked.remove(&acc_src.name);
    drop(linked);
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

/// Steps 1 and 2 for one source.
fn read_and_prepare(
    p: &Pipeline,
    s: &Source,
    need: &BTreeMap<String, String>,
    as_of: Option<Month>,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    let max_ex = p.quality.max_examples;
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
        return None;
    }
    if !s.path.is_file() {
        // Only possible for `{as_of}` paths: fixed paths are checked with the pipeline file.
        report.push(finding(
            s,
            Severity::Error,
            "missing_file",
            None,
            0,
            match as_of {
                Some(m) => format!("no file for as-of {m}"),
                None => "the file does not exist".to_string(),
            },
            "check that this month's data drop has arrived, or run another month with --as-of",
        ));
        return None;
    }
    if load::is_empty_file(&s.path) {
        report.push(finding(
            s,
            Severity::Error,
            "empty_file",
            None,
            0,
            "the file is empty",
            "export the data again; a CSV needs a header line and at least one row",
        ));
        return None;
    }
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
    // A file with one wide column whose name holds another separator was
    // exported with that separator.
    let other_separator = (header.len() == 1 && s.format == crate::config::Format::Csv)
        .then(|| {
            [(b';', "\";\""), (b'\t', "\"\\t\""), (b'|', "\"|\"")]
                .into_iter()
                .find(|(c, _)| *c != s.separator && header[0].contains(*c as char))
        })
        .flatten();
    if let Some((c, shown)) = other_separator {
        let n = header[0].split(c as char).count();
        report.push(finding(
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
        ));
        return None;
    }
    for (col, why) in need {
        if !header.contains(col) {
            missing = true;
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
            report.push(finding(
                s,
                Severity::Error,
                "missing_column",
                Some(col),
                1,
                format!("column `{col}` (needed for {why}) is not in the file"),
                format!("{guess}the file has: {}; rename the column in the file or change the pipeline file", header.join(", ")),
            ));
        }
    }
    if missing {
        return None;
    }
    let cols: BTreeSet<String> = need.keys().cloned().collect();
    let mut df = match load::read(s, &cols, &p.quality) {
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
    let rows = row_numbers(&df);

    // Keys as text; nulls in keys are errors.
    let mut keys: Vec<&str> = Vec::new();
    match &s.link {
        Link::Accounts { id } => keys.push(id),
        Link::Direct { account } => keys.push(account),
        Link::Via { column, .. } => keys.push(column),
        Link::Lookup { .. } => {}
    }
    if let Some(k) = &s.key {
        keys.push(k);
    }
    for k in &keys {
        let c = df
            .column(k)
            .expect("projected")
            .cast(&DataType::String)
            .ok()?;
        let nulls = null_rows(&c);
        if !nulls.is_empty() {
            let mut f = finding(
                s,
                Severity::Error,
                "null_id",
                Some(k),
                nulls.len(),
                format!("{} row(s) have no value in key column `{k}`", nulls.len()),
                "fill in the id or remove these rows",
            );
            f.examples = nulls
                .iter()
                .take(max_ex)
                .map(|&i| example_at(s, rows[i], None))
                .collect();
            report.push(f);
        }
        df.with_column(c).ok()?;
    }

    // Columns a lookup matches on are compared as text, like keys (but may be empty).
    for l in &p.sources {
        if let Link::Lookup { target, on, .. } = &l.link {
            if target == &s.name && !keys.contains(&on.as_str()) {
                let c = df.column(on).ok()?.cast(&DataType::String).ok()?;
                df.with_column(c).ok()?;
                keys.push(on);
            }
        }
    }

    // Dates.
    let date_cols = s.date_columns();
    for d in &date_cols {
        if let Some(parsed) = parse_dates(s, &df, d, &rows, max_ex, report) {
            df.with_column(parsed).ok()?;
        }
    }

    // Numbers stored as text, NaN/inf, nulls.
    for col in need.keys() {
        if keys.contains(&col.as_str()) || date_cols.contains(col) {
            continue;
        }
        let c = df.column(col).expect("projected").clone();
        let mut c = c.as_materialized_series().clone();
        if c.dtype() == &DataType::String {
            if let Some(num) = numeric_from_text(s, &c, col, &rows, max_ex, report) {
                c = num;
                df.with_column(c.clone().into_column()).ok()?;
            } else if c.null_count() == c.len() || c.dtype() == &DataType::Null {
                // An empty column has no type to infer: read it as missing
                // numbers, so expressions over it work (and give missing values).
                c = c.cast(&DataType::Float64).ok()?;
                df.with_column(c.clone().into_column()).ok()?;
            }
        } else if c.dtype() == &DataType::Null {
            c = c.cast(&DataType::Float64).ok()?;
            df.with_column(c.clone().into_column()).ok()?;
        }
        if c.dtype().is_float() {
            let f = c.cast(&DataType::Float64).ok()?;
            let bad: Vec<usize> = f
                .f64()
                .ok()?
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.filter(|x| !x.is_finite()).map(|_| i))
                .collect();
            if !bad.is_empty() {
                let ca = f.f64().ok()?;
                let mut x = finding(
                    s,
                    p.quality.non_finite,
                    "non_finite",
                    Some(col),
                    bad.len(),
                    format!("{} value(s) are NaN or infinite", bad.len()),
                    "replace them with a real number, or leave the cell empty for a missing value",
                );
                x.examples = bad
                    .iter()
                    .take(max_ex)
                    .map(|&i| example_at(s, rows[i], ca.get(i).map(|v| v.to_string())))
                    .collect();
                report.push(x);
            }
        }
        let nulls = c.null_count();
        if nulls > 0 {
            let idx = null_rows(&c.clone().into());
            let message = if nulls == rows_read {
                format!("every value is empty (all {rows_read} rows)")
            } else {
                format!("{nulls} of {rows_read} value(s) are empty")
            };
            let mut x = finding(s, p.quality.nulls, "null_value", Some(col), nulls, message, "empty values are left out of aggregates and imputed per the feature's `missing` policy; fill them in if they should not be empty");
            x.examples = idx
                .iter()
                .take(max_ex)
                .map(|&i| example_at(s, rows[i], None))
                .collect();
            report.push(x);
        }
    }

    // The pipeline's own checks.
    for c in p.checks.iter().filter(|c| c.source == s.name) {
        run_check(s, &df, c, &rows, max_ex, report);
    }

    Some(df)
}

/// Step 2, once the as-of month is known: the `months_since_<date>` columns,
/// the columns of lookups joined onto this source, and the source's filter.
fn finish_prepare(
    p: &Pipeline,
    s: &Source,
    mut df: DataFrame,
    as_of: Month,
    lookups: &HashMap<String, DataFrame>,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    let date_cols = s.date_columns();
    // months_since_<date> helper columns, straight from the days of each date.
    let idx = as_of.index();
    for d in &date_cols {
        let Ok(days) = df
            .column(d)
            .and_then(|c| c.date().map(|c| c.physical().clone()))
        else {
            continue;
        };
        let ms = days
            .apply_values(|v| idx - dates::month_index(v))
            .with_name(months_since(d).into());
        if let Err(e) = df.with_column(ms.into_column()) {
            report.push(finding(
                s,
                Severity::Error,
                "internal",
                None,
                0,
                format!("could not compute months since dates: {e}"),
                "",
            ));
            return None;
        }
    }

    // The account table's lifetime: a customer at the end of the as-of month
    // became one in or before it (`since`) and had not stopped by its end (`until`).
    if matches!(s.link, Link::Accounts { .. }) && (s.since.is_some() || s.until.is_some()) {
        let mut active = lit(true);
        if let Some(d) = &s.since {
            let m = col(months_since(d).as_str());
            active = active.and(m.clone().is_null().or(m.gt_eq(lit(0))));
        }
        if let Some(d) = &s.until {
            let m = col(months_since(d).as_str());
            active = active.and(m.clone().is_null().or(m.lt(lit(0))));
        }
        let since_ok = match &s.since {
            Some(d) => {
                let m = col(months_since(d).as_str());
                m.clone().is_null().or(m.gt_eq(lit(0)))
            }
            None => lit(true),
        };
        df = match guard(|| {
            df.clone()
                .lazy()
                .with_columns([
                    active.clone().alias(ACTIVE),
                    since_ok.clone().alias(STARTED),
                ])
                .collect()
        }) {
            Ok(df) => df,
            Err(e) => {
                report.push(finding(
                    s,
                    Severity::Error,
                    "bad_lifetime",
                    None,
                    0,
                    format!("could not tell who was a customer: {e}"),
                    "check the `since` and `until` columns",
                ));
                return None;
            }
        };
    }

    // Lookups onto this source, before its filter (which may use their columns).
    for l in p
        .sources
        .iter()
        .filter(|l| matches!(&l.link, Link::Lookup { target, .. } if target == &s.name))
    {
        let Some(table) = lookups.get(&l.name) else {
            continue; // its own problems are reported
        };
        df = join_lookup(p, l, table, s, df, report)?;
    }

    // The source's filter.
    if let Some(f) = &s.filter {
        match guard(|| df.clone().lazy().filter(f.clone()).collect()) {
            Ok(out) => df = out,
            Err(e) => {
                report.push(finding(
                    s,
                    Severity::Error,
                    "bad_filter",
                    None,
                    0,
                    format!(
                        "filter `{}` failed: {e}",
                        s.filter_text.as_deref().unwrap_or("")
                    ),
                    "fix the source's `filter` expression",
                ));
                return None;
            }
        }
    }
    Some(df)
}

/// Join lookup `l`'s columns onto the rows of `t` (prepared as `df`) where
/// `t.on` equals `l`'s key; report the rows that find no key (an error past
/// `quality.max_orphans`).
fn join_lookup(
    p: &Pipeline,
    l: &Source,
    table: &DataFrame,
    t: &Source,
    df: DataFrame,
    report: &mut QualityReport,
) -> Option<DataFrame> {
    let Link::Lookup { on, columns, .. } = &l.link else {
        return Some(df);
    };
    let key = l.key.as_deref()?;
    for c in columns {
        if df.column(c).is_ok() {
            report.push(finding(
                l,
                Severity::Error,
                "lookup_column_clash",
                Some(c),
                0,
                format!("column `{c}` is already a column of source `{}`, so the lookup cannot add it there", t.name),
                format!("rename one of them, or leave `{c}` out of sources.{}.columns", l.name),
            ));
            return None;
        }
    }
    let mut right: Vec<Column> = vec![table
        .column(key)
        .ok()?
        .cast(&DataType::String)
        .ok()?
        .with_name("__lookup_key".into())];
    for c in columns {
        right.push(table.column(c).ok()?.clone());
    }
    let right = DataFrame::new_infer_height(right)
        .ok()?
        .lazy()
        .with_column(lit(true).alias("__lookup_hit"));
    let on_text = df
        .column(on)
        .ok()?
        .cast(&DataType::String)
        .ok()?
        .with_name("__lookup_on".into());
    let mut left = df.clone();
    left.with_column(on_text).ok()?;
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    let joined = match guard(|| {
        left.clone()
            .lazy()
            .join(
                right.clone(),
                [col("__lookup_on")],
                [col("__lookup_key")],
                args.clone(),
            )
            .collect()
    }) {
        Ok(j) => j,
        Err(e) => {
            report.push(finding(
                l,
                Severity::Error,
                "bad_lookup",
                Some(on),
                0,
                format!("joining onto source `{}` failed: {e}", t.name),
                "check that `key` and `on` name columns of the same kind of value",
            ));
            return None;
        }
    };
    let has_on = joined.column("__lookup_on").ok()?.is_not_null();
    let hit = joined.column("__lookup_hit").ok()?.is_not_null();
    let missed: Vec<usize> = has_on
        .iter()
        .zip(hit.iter())
        .enumerate()
        .filter_map(|(i, (o, h))| (o == Some(true) && h != Some(true)).then_some(i))
        .collect();
    let n = joined.height();
    if let Some(sum) = report.sources.iter_mut().find(|x| x.name == l.name) {
        sum.target_rows = Some(n);
        sum.target_rows_matched = Some(n - missed.len());
    }
    if !missed.is_empty() {
        let share = missed.len() as f64 / n.max(1) as f64;
        let rows = row_numbers(&joined);
        let values = joined.column("__lookup_on").ok()?.str().ok()?.clone();
        let severity = if share > p.quality.max_orphans {
            Severity::Error
        } else {
            Severity::Warning
        };
        let mut f = finding(
            t,
            severity,
            "unmatched_lookup",
            Some(on),
            missed.len(),
            format!(
                "{} of {n} row(s) ({:.0}%) have a `{on}` that is not a `{key}` of lookup `{}`; its columns are empty there",
                missed.len(),
                share * 100.0,
                l.name
            ),
            format!("check that `{on}` and `{key}` hold the same values (format, leading zeros, stray spaces); past quality.max_orphans = {} this is an error", p.quality.max_orphans),
        );
        f.examples = missed
            .iter()
            .take(p.quality.max_examples)
            .map(|&i| example_at(t, rows[i], values.get(i).map(|v| format!("{v:?}"))))
            .collect();
        report.push(f);
    }
    Some(joined.drop_many(["__lookup_on", "__lookup_hit"]))
}

fn row_numbers(df: &DataFrame) -> Vec<usize> {
    df.column(ROW)
        .ok()
        .and_then(|c| c.cast(&DataType::UInt64).ok())
        .and_then(|c| {
            c.u64()
                .ok()
                .map(|ca| ca.iter().map(|v| v.unwrap_or(0) as usize).collect())
        })
        .unwrap_or_default()
}

fn null_rows(c: &Column) -> Vec<usize> {
    if c.null_count() == 0 {
        return Vec::new();
    }
    c.is_null()
        .iter()
        .enumerate()
        .filter_map(|(i, v)| (v == Some(true)).then_some(i))
        .collect()
}

/// Parse a date column; report values that do not parse.
fn parse_dates(
    s: &Source,
    df: &DataFrame,
    d: &str,
    rows: &[usize],
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
    let (fmt, suffix) = if dates::month_only(&chosen) {
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
            dates::describe(&chosen),
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
fn bad_dates(
    s: &Source,
    d: &str,
    bad: &[usize],
    values: &StringChunked,
    rows: &[usize],
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
        .map(|&i| example_at(s, rows[i], values.get(i).map(str::to_string)))
        .collect();
    f
}

/// The format of date column `d` when the source declares none: the one that
/// reads every value of an evenly spaced sample of up to 100,000 rows (see
/// [`dates`]). Returns the format and whether values are dates alone (exact
/// match) or dates followed by a time. A non-ISO format is used and reported
/// as a warning; an ambiguous one, or none at all, is an error and `None`.
fn detect_format(
    s: &Source,
    df: &DataFrame,
    d: &str,
    rows: &[usize],
    max_ex: usize,
    hint: &str,
    report: &mut QualityReport,
) -> Option<(&'static str, bool)> {
    let c = df.column(d).ok()?.str().ok()?.clone();
    let n = c.len();
    let step = n.div_ceil(100_000).max(1);
    let sample: Vec<&str> = (0..n).step_by(step).filter_map(|i| c.get(i)).collect();
    let with_time = sample.iter().any(|v| dates::has_time(v));
    let first_row =
        |value: &str| -> Option<usize> { c.iter().position(|v| v == Some(value)).map(|i| rows[i]) };
    match dates::detect(sample.iter().copied().filter(|v| !v.trim().is_empty())) {
        dates::Detected::Format(f) | dates::Detected::Partial(f) => {
            if f != dates::ISO {
                let example = sample
                    .iter()
                    .find(|v| dates::parse(v, f).is_some())
                    .copied()
                    .unwrap_or("");
                let read = dates::parse(example, f)
                    .map(|x| x.to_string())
                    .unwrap_or_default();
                let mut x = finding(
                    s,
                    Severity::Warning,
                    "date_format_detected",
                    Some(d),
                    0,
                    format!(
                        "dates are not ISO (YYYY-MM-DD); read as {f} ({}), the only format that fits them: `{example}` = {read}",
                        dates::describe(f)
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
        dates::Detected::Ambiguous {
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
                    dates::describe(first.0),
                    second.0,
                    dates::describe(second.0),
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
        dates::Detected::Nothing => {
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

/// A text column that is mostly numbers is a numeric column with bad values:
/// report them and return the converted column. A column that is mostly text
/// (a categorical such as industry) is left alone.
fn numeric_from_text(
    s: &Source,
    c: &Series,
    col_name: &str,
    rows: &[usize],
    max_ex: usize,
    report: &mut QualityReport,
) -> Option<Series> {
    let text = c.str().ok()?;
    let num = c.cast(&DataType::Float64).ok()?;
    let nonnull = text.len() - text.null_count();
    let bad: Vec<usize> = text
        .iter()
        .zip(num.f64().ok()?.iter())
        .enumerate()
        .filter_map(|(i, (t, n))| (t.is_some() && n.is_none()).then_some(i))
        .collect();
    if nonnull == 0 || bad.len() * 2 > nonnull {
        return None;
    }
    if !bad.is_empty() {
        let mut f = finding(s, Severity::Error, "wrong_type", Some(col_name), bad.len(), format!("{} value(s) are not numbers in a numeric column", bad.len()), "correct these values (numbers use a dot as decimal separator and no thousands separator), or leave the cell empty for a missing value");
        f.examples = bad
            .iter()
            .take(max_ex)
            .map(|&i| example_at(s, rows[i], text.get(i).map(|v| format!("{v:?}"))))
            .collect();
        report.push(f);
    }
    // Integers stay integers when every value is whole.
    Some(num.with_name(col_name.into()))
}

fn run_check(
    s: &Source,
    df: &DataFrame,
    c: &crate::config::Check,
    rows: &[usize],
    max_ex: usize,
    report: &mut QualityReport,
) {
    let Ok(column) = df.column(&c.column) else {
        return;
    };
    if c.min.is_some() || c.max.is_some() {
        let Ok(vals) = column.cast(&DataType::Float64) else {
            return;
        };
        let Ok(ca) = vals.f64() else { return };
        let bad: Vec<(usize, f64)> = ca
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.filter(|x| {
                    x.is_finite()
                        && (c.min.is_some_and(|m| *x < m) || c.max.is_some_and(|m| *x > m))
                })
                .map(|x| (i, x))
            })
            .collect();
        if !bad.is_empty() {
            let range = match (c.min, c.max) {
                (Some(a), Some(b)) => format!("[{a}, {b}]"),
                (Some(a), None) => format!(">= {a}"),
                (None, Some(b)) => format!("<= {b}"),
                _ => unreachable!(),
            };
            let mut f = finding(s, c.severity, "out_of_range", Some(&c.column), bad.len(), format!("{} value(s) outside the allowed range {range}", bad.len()), "correct the values at the source, or widen the [[check]] in the pipeline file if they are valid");
            f.examples = bad
                .iter()
                .take(max_ex)
                .map(|&(i, v)| example_at(s, rows[i], Some(v.to_string())))
                .collect();
            report.push(f);
        }
    }
    if !c.allowed.is_empty() {
        let Ok(vals) = column.cast(&DataType::String) else {
            return;
        };
        let Ok(ca) = vals.str() else { return };
        let bad: Vec<(usize, String)> = ca
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.filter(|x| !c.allowed.iter().any(|a| a == x))
                    .map(|x| (i, x.to_string()))
            })
            .collect();
        if !bad.is_empty() {
            let mut f = finding(
                s,
                c.severity,
                "not_allowed",
                Some(&c.column),
                bad.len(),
                format!(
                    "{} value(s) not among the allowed: {}",
                    bad.len(),
                    c.allowed.join(", ")
                ),
                "correct the values, or add them to the check's `allowed` list",
            );
            f.examples = bad
                .iter()
                .take(max_ex)
                .map(|(i, v)| example_at(s, rows[*i], Some(format!("{v:?}"))))
                .collect();
            report.push(f);
        }
    }
}

/// Could `keys` hold a duplicate? False means certainly not. O(n log n) on
/// 64-bit hashes (parallel sort), much cheaper than hashing strings into a set.
fn maybe_duplicated(keys: &StringChunked) -> bool {
    use rayon::slice::ParallelSliceMut;
    use std::hash::{Hash, Hasher};
    let mut hashes: Vec<u64> = keys
        .iter()
        .map(|k| {
            let mut h = std::hash::DefaultHasher::new();
            k.hash(&mut h);
            h.finish()
        })
        .collect();
    hashes.par_sort_unstable();
    hashes.windows(2).any(|w| w[0] == w[1])
}

/// Keep one row per value of `key` (the latest by `latest_by`, else the last in
/// the file) and report the duplicates. Adds the account column for the account table.
fn dedupe(
    p: &Pipeline,
    s: &Source,
    df: DataFrame,
    key: &str,
    report: &mut QualityReport,
) -> Result<DataFrame> {
    let with_account = |mut out: DataFrame| -> Result<DataFrame> {
        if matches!(s.link, Link::Accounts { .. }) {
            let id = out.column(key)?.clone().with_name(ACCOUNT.into());
            out.with_column(id)?;
        }
        Ok(out)
    };
    // Fast path: no two keys share a 64-bit hash, so there are no duplicates
    // (the usual case). A shared hash sends us to the exact, sort-based path.
    if !maybe_duplicated(df.column(key)?.str()?) {
        return with_account(df);
    }
    let mut by = vec![col(key)];
    if let Some(l) = &s.latest_by {
        by.push(col(l.as_str()));
    }
    by.push(col(ROW));
    let sorted = guard(|| {
        df.clone()
            .lazy()
            .sort_by_exprs(
                by.clone(),
                SortMultipleOptions::default()
                    .with_nulls_last(false)
                    .with_maintain_order(true),
            )
            .collect()
    })
    .map_err(Error::Internal)?;
    let keys = sorted.column(key)?.str()?.clone();
    let rows = row_numbers(&sorted);
    let n = keys.len();
    let mut keep = Vec::with_capacity(n);
    let mut dup_examples = Vec::new();
    let mut dup_rows = 0usize;
    let mut dup_keys = 0usize;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && keys.get(j) == keys.get(i) {
            j += 1;
        }
        for k in i..j {
            keep.push(k == j - 1);
        }
        if j - i > 1 {
            dup_keys += 1;
            dup_rows += j - i - 1;
            if dup_examples.len() < p.quality.max_examples {
                let place: Vec<String> = (i..j).map(|k| (rows[k] + 1).to_string()).collect();
                dup_examples.push(Example {
                    row: Some(rows[j - 1] + 1),
                    line: None,
                    value: Some(format!(
                        "{:?} in rows {} (kept row {})",
                        keys.get(i).unwrap_or(""),
                        place.join(", "),
                        rows[j - 1] + 1
                    )),
                });
            }
        }
        i = j;
    }
    if dup_keys > 0 {
        let latest = s
            .latest_by
            .as_ref()
            .map(|l| format!("the greatest `{l}`"))
            .unwrap_or_else(|| "the last one in the file".into());
        let share = dup_rows as f64 / n as f64;
        let mut f = finding(s, p.quality.duplicates, "duplicate_id", Some(key), dup_rows, format!("{dup_keys} id(s) appear more than once; kept {latest} and dropped {dup_rows} of {n} row(s) ({:.0}%)", share * 100.0), "remove the stale rows at the source, or set `latest_by` to the column that says which row is current");
        if share > p.quality.max_duplicates {
            // So many "duplicates" mean the column is not a key at all.
            f.severity = Severity::Error;
            let field = match s.link {
                Link::Accounts { .. } => "id",
                _ => "key",
            };
            let unique = unique_columns(s, key);
            f.hint = format!(
                "`{key}` is not unique per row, so it cannot be this source's `{field}` (over quality.max_duplicates = {}){}",
                p.quality.max_duplicates,
                match unique.first() {
                    Some(u) => format!("; `{u}` is unique in every row: did you mean {field} = \"{u}\"?"),
                    None => String::new(),
                }
            );
        }
        f.examples = dup_examples;
        report.push(f);
        if let Some(sum) = report.sources.iter_mut().find(|x| x.name == s.name) {
            sum.rows_duplicate = dup_rows;
        }
    }
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    with_account(sorted.filter(&mask)?)
}

/// `keys` → `ids`, for [`look_up_in`]; `None` if `keys` has a duplicate
/// (a join would then repeat rows) or a null. Built once for the accounts and
/// used by every source linked to them.
fn key_map<'a>(keys: &'a StringChunked, ids: &IdxCa) -> Option<PlHashMap<&'a str, IdxSize>> {
    if keys.null_count() > 0 || ids.null_count() > 0 {
        return None;
    }
    let mut map: PlHashMap<&str, IdxSize> = PlHashMap::with_capacity(keys.len());
    for (k, v) in keys.iter().flatten().zip(ids.iter().flatten()) {
        if map.insert(k, v).is_some() {
            return None;
        }
    }
    Some(map)
}

/// [`key_map`] of `df`'s text column `key` to its `AID`; `None` if either is
/// missing or of another type.
fn frame_key_map<'a>(df: &'a DataFrame, key: &str) -> Option<PlHashMap<&'a str, IdxSize>> {
    match (
        df.column(key).map(|c| c.str()),
        df.column(AID).map(|c| c.idx()),
    ) {
        (Ok(Ok(keys)), Ok(Ok(ids))) => key_map(keys, ids),
        _ => None,
    }
}

/// Linking's hash lookup: each of `links` through `map` ([`key_map`]), as its
/// row's account number, null where it names none. The same result as a left
/// join of `links` on the keys, without gathering the other columns; one hash
/// probe per row, in parallel over blocks of rows.
fn look_up_in(links: &StringChunked, map: &PlHashMap<&str, IdxSize>) -> IdxCa {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 16;
    let chunks: Vec<_> = links.downcast_iter().collect();
    let blocks: Vec<(usize, usize)> = chunks
        .iter()
        .enumerate()
        .flat_map(|(c, a)| (0..a.len()).step_by(BLOCK).map(move |start| (c, start)))
        .collect();
    let parts: Vec<Vec<Option<IdxSize>>> = blocks
        .par_iter()
        .map(|&(c, start)| {
            let a = chunks[c];
            (start..(start + BLOCK).min(a.len()))
                .map(|i| a.get(i).and_then(|v| map.get(v).copied()))
                .collect()
        })
        .collect();
    IdxCa::from_iter_options(AID.into(), parts.into_iter().flatten())
}

/// Give every row of a child source its account; drop and report orphans.
fn link_source(
    p: &Pipeline,
    s: &Source,
    df: DataFrame,
    accounts: &DataFrame,
    account_map: Option<&PlHashMap<&str, IdxSize>>,
    linked: &HashMap<String, DataFrame>,
    report: &mut QualityReport,
) -> Result<Option<DataFrame>> {
    let t = std::time::Instant::now();
    let df = match &s.key {
        Some(k) => dedupe(p, s, df, k, report)?,
        None => df,
    };
    trace(&format!("dedupe {}", s.name), t);
    // Join each row to the account (directly, or through the parent's key);
    // rows left without one are orphans.
    let (map, left, what) = match &s.link {
        Link::Direct { account } => (
            accounts
                .select([ACCOUNT, AID])?
                .rename(ACCOUNT, "__link".into())?
                .clone(),
            account.clone(),
            "an account".to_string(),
        ),
        Link::Via { parent, column } => {
            let Some(parent_df) = linked.get(parent) else {
                return Ok(None);
            };
            let parent_src = p.source(parent).expect("validated");
            let pkey = match (&parent_src.key, &parent_src.link) {
                (Some(k), _) => k.clone(),
                (None, Link::Accounts { id }) => id.clone(),
                _ => unreachable!("validated: via parent has a key"),
            };
            let mut map = parent_df.select([pkey.as_str(), AID])?;
            map.rename(pkey.as_str(), "__link".into())?;
            (
                map,
                column.clone(),
                format!("a `{pkey}` of source `{parent}`"),
            )
        }
        Link::Accounts { .. } | Link::Lookup { .. } => unreachable!("not linked"),
    };
    // The link column is left out of the joined rows unless something reads
    // it later (at a million accounts a monthly source's text ids are a few
    // hundred MB, and this join is ingestion's memory peak).
    let mut dropped = vec!["__link".to_string()];
    if !used_after_link(p, s, &left) {
        dropped.push(left.clone());
    }
    // The accounts' map when linking to them, else one over the parent's keys.
    let parents;
    let keys = match (&s.link, account_map) {
        (Link::Direct { .. }, Some(m)) => Some(m),
        _ => {
            parents = frame_key_map(&map, "__link");
            parents.as_ref()
        }
    };
    let fast = match (keys, df.column(&left).map(|l| l.str())) {
        (Some(m), Ok(Ok(l))) => Some(look_up_in(l, m)),
        _ => None,
    };
    let joined = match fast {
        // Same rows, in the same order, as the join below.
        Some(aid) => {
            let kept: Vec<PlSmallStr> = df
                .get_column_names()
                .into_iter()
                .filter(|c| !dropped.iter().any(|d| d.as_str() == c.as_str()))
                .cloned()
                .collect();
            let mut out = df.select(kept)?;
            out.with_column(aid.into_column())?;
            out
        }
        None => guard(|| {
            df.clone()
                .lazy()
                .join(
                    map.clone().lazy(),
                    [col(left.as_str())],
                    [col("__link")],
                    JoinArgs::new(JoinType::Left).with_coalesce(JoinCoalesce::KeepColumns),
                )
                .drop(cols(dropped.clone()))
                .collect()
        })
        .map_err(Error::Internal)?,
    };
    let prepared = df;
    let mut df = joined;
    let n_orphan = df.column(AID)?.null_count();
    if n_orphan > 0 {
        let orphan = df.column(AID)?.is_null();
        let share = n_orphan as f64 / df.height().max(1) as f64;
        // The link values that name an account (as text).
        let keys: HashSet<String> = map
            .column("__link")
            .ok()
            .and_then(|c| {
                let c = c.cast(&DataType::String).ok()?;
                Some(c.str().ok()?.iter().flatten().map(str::to_string).collect())
            })
            .unwrap_or_default();
        let mut f = finding(s, p.quality.orphans, "orphan_id", Some(&left), n_orphan, format!("{n_orphan} of {} row(s) ({:.0}%) name {what} that does not exist; they are left out", df.height(), share * 100.0), "check that the id columns match (same format, no stray spaces); rows of deleted accounts can be removed at the source");
        if share > p.quality.max_orphans {
            // Most rows linking nowhere means the wrong column links them.
            f.severity = Severity::Error;
            let field = match &s.link {
                Link::Via { .. } => "link",
                _ => "account",
            };
            let better = better_link_column(s, &left, &keys, 1.0 - share);
            f.hint = format!(
                "`{left}` does not hold {what} for most rows (over quality.max_orphans = {}){}",
                p.quality.max_orphans,
                match better {
                    Some((c, m)) => format!(
                        "; column `{c}` matches {:.0}% of rows: did you mean {field} = \"{c}\"?",
                        m * 100.0
                    ),
                    None =>
                        "; check that the id columns match (same format, no stray spaces)".into(),
                }
            );
        }
        if let Some(sum) = report.sources.iter_mut().find(|x| x.name == s.name) {
            sum.rows_orphan = n_orphan;
        }
        // Examples from the prepared rows (in their order, as the join keeps
        // it): those whose link value names no account.
        let rows = row_numbers(&prepared);
        let links = prepared.column(&left)?.cast(&DataType::String)?;
        f.examples = links
            .str()?
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_none_or(|v| !keys.contains(v)))
            .take(p.quality.max_examples)
            .map(|(i, v)| example_at(s, rows[i], v.map(|v| format!("{v:?}"))))
            .collect();
        report.push(f);
        df = df.filter(&!orphan)?;
    }
    mark_if_in_account_order(&mut df)?;
    Ok(Some(df))
}

/// Flags `AID` as sorted when the rows are in account order, as exports often
/// are: Polars then groups them by runs of rows instead of hashing every id.
/// One pass over the ids; nothing changes when they are not in order.
fn mark_if_in_account_order(df: &mut DataFrame) -> Result<()> {
    let c = df.column(AID)?;
    let ids = c.idx()?;
    if ids.null_count() > 0 {
        return Ok(());
    }
    let mut prev = 0;
    let in_order = ids
        .downcast_iter()
        .flat_map(|a| a.values().iter())
        .all(|&v| {
            let ok = v >= prev;
            prev = v;
            ok
        });
    if in_order {
        let mut s = c.as_materialized_series().clone();
        s.set_sorted_flag(polars::series::IsSorted::Ascending);
        df.with_column(s.into_column())?;
    }
    Ok(())
}

/// Whether `df`'s accounts (`AID`) are flagged ascending
/// ([`mark_if_in_account_order`]).
fn is_flagged_sorted(df: &DataFrame) -> bool {
    df.column(AID)
        .is_ok_and(|c| c.is_sorted_flag() == polars::series::IsSorted::Ascending)
}

/// Rows per part of [`account_parts`]: small enough that a million accounts'
/// monthly rows make dozens of parts for the threads to share and each
/// part's window is a small copy, large enough that each part's group-by
/// costs far more than setting it up.
const PART_ROWS: usize = 1 << 18;

/// `df` cut into parts (first row, rows) of about `part_rows` rows, each
/// account's rows whole in one part, when its rows are in account order;
/// else one part. Grouped part by part, each in one contiguous buffer
/// ([`PartPlan::group`]), every account's values are computed over the same
/// rows in the same memory layout whatever the thread count, so the sums come
/// out the same to the last bit (as with the whole frame in one piece).
fn account_parts(df: &DataFrame, part_rows: usize) -> Result<Vec<(usize, usize)>> {
    let n = df.height();
    let part_rows = part_rows.max(1);
    if !is_flagged_sorted(df) || n <= part_rows {
        return Ok(vec![(0, n)]);
    }
    let ids = df.column(AID)?.idx()?;
    let mut parts = Vec::with_capacity(n / part_rows + 1);
    let mut start = 0;
    while start < n {
        let mut end = (start + part_rows).min(n);
        let last = ids.get(end - 1);
        while end < n && ids.get(end) == last {
            end += 1;
        }
        parts.push((start, end - start));
        start = end;
    }
    Ok(parts)
}

/// `f(0..n)` on as many threads as the run has, results in order. Plain
/// threads rather than rayon's: `f` calls Polars, whose own thread pool a
/// rayon worker of another pool would wait on by running further tasks of its
/// own on the same stack, nesting them until it overflows.
fn run_parts<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = rayon::current_num_threads().clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break mine;
                        }
                        mine.push((i, f(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a part's work is guarded"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, v)| v).collect()
}

/// One window of a source in [`Aggregated::add`]: its features, its rows
/// (lazily, whole: what a failed part falls back to) and its group-by by parts.
struct WindowGroup<'a> {
    window: Option<Window>,
    feats: Vec<&'a Feature>,
    rows: LazyFrame,
    /// The `__rows_` column counting each account's rows.
    has_rows: String,
    plan: PartPlan,
}

/// One window's group-by over a part of a linked source's rows.
struct PartPlan {
    /// The columns read: the account, the features' columns, the window's
    /// and the sort's.
    keep: Vec<PlSmallStr>,
    /// The months-since column and the window's bounds (inclusive).
    inside: Option<(String, i32, i32)>,
    /// The stable sort that puts each account's rows in time order.
    by: Option<[String; 3]>,
    /// The features, and the rows per account.
    exprs: Vec<Expr>,
    /// Whether the rows reach the group-by in runs of each account's rows
    /// (in account order, or sorted by `by`) rather than to be hashed.
    in_runs: bool,
}

impl PartPlan {
    /// Rows `start..start + n` of `df`: those in the window, sorted if need
    /// be, in one buffer, grouped by account.
    fn group(&self, df: &DataFrame, start: usize, n: usize) -> PolarsResult<DataFrame> {
        let mut rows = df
            .slice(start as i64, n)
            .select(self.keep.iter().cloned())?;
        if let Some((ms, lo, hi)) = &self.inside {
            let ms = rows.column(ms)?.as_materialized_series().clone();
            rows = rows.filter_seq(&(ms.gt_eq(*lo)? & ms.lt_eq(*hi)?))?;
        }
        if let Some(by) = &self.by {
            rows = rows.sort(
                by.iter().map(String::as_str).collect::<Vec<_>>(),
                SortMultipleOptions::default().with_maintain_order(true),
            )?;
        }
        rows.rechunk_mut();
        if self.in_runs {
            let mut aid = rows.column(AID)?.as_materialized_series().clone();
            aid.set_sorted_flag(polars::series::IsSorted::Ascending);
            rows.with_column(aid.into_column())?;
        }
        rows.lazy()
            .group_by([col(AID)])
            .agg(self.exprs.clone())
            .collect()
    }
}

/// Whether each account's rows already come in the order a stable sort by
/// (`time`, [`ROW`]) gives them, so sorting for `first`/`last` can be skipped
/// without changing any account's rows or their order. One pass, with the
/// latest (time, row) seen per account; `false` if anything is null.
fn in_time_order(df: &DataFrame, time: &str) -> bool {
    let (Ok(ids), Ok(t), Ok(row)) = (df.column(AID), df.column(time), df.column(ROW)) else {
        return false;
    };
    let (Ok(t64), Ok(row64)) = (
        t.to_physical_repr().cast(&DataType::Int64),
        row.cast(&DataType::Int64),
    ) else {
        return false;
    };
    let (Ok(ids), Ok(t), Ok(row)) = (ids.idx(), t64.i64(), row64.i64()) else {
        return false;
    };
    if ids.null_count() + t.null_count() + row.null_count() > 0 {
        return false;
    }
    let n = ids.max().map_or(0, |m| m as usize + 1);
    let mut last = vec![(i64::MIN, i64::MIN); n];
    let in_order = ids
        .into_no_null_iter()
        .zip(t.into_no_null_iter())
        .zip(row.into_no_null_iter())
        .all(|((id, t), r)| {
            let l = &mut last[id as usize];
            let ok = (t, r) >= *l;
            *l = (t, r);
            ok
        });
    in_order
}

/// Whether a child source's link column is read after linking: by one of its
/// features, as its `key` (which its own children link through) or as a date
/// column (the time order of `first`/`last`). Its filter, checks and
/// deduplication have run by then. If not, linking drops it: the account's
/// row number (`__aid`) replaces it, and at a million accounts the text ids
/// of a monthly source take a few hundred MB.
fn used_after_link(p: &Pipeline, s: &Source, column: &str) -> bool {
    let reads = |e: &Expr| {
        e.clone()
            .meta()
            .root_names()
            .iter()
            .any(|r| r.as_str() == column)
    };
    s.key.as_deref() == Some(column)
        || s.date_columns().iter().any(|d| d == column)
        || p.features
            .iter()
            .any(|f| f.source.as_deref() == Some(s.name.as_str()) && reads(&f.expr))
}

/// Every column of a source's file as text (for suggestions on the error
/// path only: it reads the whole file again).
fn all_columns_as_text(s: &Source) -> Option<DataFrame> {
    let header = load::read_columns(s).ok()?;
    let cols: BTreeSet<String> = header.into_iter().collect();
    let policy = crate::config::QualityPolicy {
        truncated: Severity::Ignore,
        ..Default::default()
    };
    let (df, _) = load::read(s, &cols, &policy).ok()?;
    let casted: Vec<Column> = df
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != ROW)
        .filter_map(|c| c.cast(&DataType::String).ok())
        .collect();
    DataFrame::new_infer_height(casted).ok()
}

/// Columns of `s` other than `key` that are unique in every row, id-like names first.
fn unique_columns(s: &Source, key: &str) -> Vec<String> {
    let Some(df) = all_columns_as_text(s) else {
        return Vec::new();
    };
    let mut out: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != key && c.null_count() == 0)
        .filter(|c| c.n_unique().ok() == Some(df.height()))
        .map(|c| c.name().to_string())
        .collect();
    out.sort_by_key(|c| {
        let l = c.to_lowercase();
        !(l.contains("id") || l.contains("key"))
    });
    out
}

/// The column of `s` whose values are found in `targets` for the largest
/// share of rows, when it beats the current column's share `current` by far.
fn better_link_column(
    s: &Source,
    current: &str,
    targets: &HashSet<String>,
    current_share: f64,
) -> Option<(String, f64)> {
    if targets.is_empty() {
        return None;
    }
    let df = all_columns_as_text(s)?;
    df.columns()
        .iter()
        .filter(|c| c.name().as_str() != current)
        .filter_map(|c| {
            let ca = c.str().ok()?;
            let n = ca.len().max(1);
            let hit = ca.iter().flatten().filter(|v| targets.contains(*v)).count();
            Some((c.name().to_string(), hit as f64 / n as f64))
        })
        .filter(|(_, m)| *m >= 0.5 && *m >= current_share + 0.3)
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Step 4: aggregate child sources per account and window, then row-level features.
/// One group-by of a source: the aggregate features of one window, per account.
struct Part<'a> {
    /// `__aid`, one column per feature, and `has_rows` (rows per account).
    agg: DataFrame,
    has_rows: String,
    source: &'a str,
    window: Option<Window>,
    features: Vec<&'a Feature>,
    /// Each feature's value over no rows, for the accounts without rows.
    no_rows: Vec<Expr>,
}

/// The aggregate features of every source linked so far (step 4's group-bys,
/// run as each source is linked so its rows can be freed before the next).
#[derive(Default)]
struct Aggregated<'a> {
    parts: Vec<Part<'a>>,
    /// Each time-indexed source's date range, for the hint of an empty window.
    ranges: HashMap<String, (String, String, String)>,
    /// An expression failed (reported): no frame.
    failed: bool,
    /// Groups started so far (window by source), which numbers their
    /// `__rows_` columns.
    groups: usize,
}

impl<'a> Aggregated<'a> {
    /// Aggregates the features over linked source `src` (rows `df`), one
    /// group-by per window, every window's parts ([`account_parts`]) on all
    /// threads at once.
    fn add(
        &mut self,
        p: &'a Pipeline,
        src: &'a Source,
        df: &DataFrame,
        report: &mut QualityReport,
    ) -> Result<()> {
        if let Some(r) = date_range(src, df) {
            self.ranges.insert(src.name.clone(), r);
        }
        let mut windows: BTreeMap<Option<Window>, Vec<&'a Feature>> = BTreeMap::new();
        for f in &p.features {
            if f.source.as_deref() == Some(src.name.as_str()) {
                windows.entry(f.window).or_default().push(f);
            }
        }
        // Whether the rows are already in time order: one pass, at most once per source.
        let mut time_ordered: Option<bool> = None;
        let mut groups = Vec::with_capacity(windows.len());
        for (window, feats) in windows {
            // The window's rows (`inside`), in time order within each account
            // when first()/last() read them (`by`).
            let mut inside: Option<(String, i32, i32)> = None;
            let mut by: Option<[String; 3]> = None;
            let mut lf = df.clone().lazy();
            if let Some(t) = &src.time {
                let ms = months_since(t);
                let (lo, hi) = match window {
                    Some(w) => (w.offset as i32, (w.offset + w.months - 1) as i32),
                    None => (0, i32::MAX),
                };
                lf = lf.filter(
                    col(ms.as_str())
                        .gt_eq(lit(lo))
                        .and(col(ms.as_str()).lt_eq(lit(hi))),
                );
                inside = Some((ms, lo, hi));
                // first()/last() mean earliest/latest: order by time, but only when used.
                let ordered = feats.iter().any(|f| {
                    let e = f.expr_text.to_ascii_lowercase();
                    e.contains("first") || e.contains("last")
                });
                if ordered && !*time_ordered.get_or_insert_with(|| in_time_order(df, t)) {
                    // Each account's rows as a stable sort by (time, row)
                    // orders them, led by the account.
                    let b = [AID.to_string(), t.clone(), ROW.to_string()];
                    lf = lf.sort_by_exprs(
                        b.iter().map(|c| col(c.as_str())).collect::<Vec<_>>(),
                        SortMultipleOptions::default().with_maintain_order(true),
                    );
                    by = Some(b);
                }
            }
            // Which accounts have rows in this group: the others get each
            // expression's value over no rows.
            let has_rows = format!("__rows_{}", self.groups);
            self.groups += 1;
            let mut exprs: Vec<Expr> = feats
                .iter()
                .map(|f| f.expr.clone().alias(f.name.as_str()))
                .collect();
            exprs.push(len().alias(has_rows.as_str()));
            // The columns the group-by reads.
            let mut keep: Vec<PlSmallStr> = vec![AID.into()];
            let named = exprs
                .iter()
                .flat_map(|e| e.clone().meta().root_names())
                .chain(inside.iter().map(|i| i.0.as_str().into()))
                .chain(by.iter().flatten().map(|c| c.as_str().into()));
            for c in named {
                if !keep.contains(&c) && df.column(&c).is_ok() {
                    keep.push(c);
                }
            }
            let in_runs = is_flagged_sorted(df) || by.is_some();
            groups.push(WindowGroup {
                window,
                feats,
                rows: lf,
                has_rows,
                plan: PartPlan {
                    keep,
                    inside,
                    by,
                    exprs,
                    in_runs,
                },
            });
        }
        // Every window over every part of the rows at once, on all threads;
        // each window's parts stacked in order. Should a part fail, its
        // window on its own below, whole, which names the expression that
        // failed.
        let t_all = std::time::Instant::now();
        let parts = account_parts(df, PART_ROWS)?;
        let tasks: Vec<(usize, (usize, usize))> = (0..groups.len())
            .flat_map(|w| parts.iter().map(move |&r| (w, r)))
            .collect();
        let done = run_parts(tasks.len(), |i| {
            let (w, (start, n)) = tasks[i];
            guard(|| groups[w].plan.group(df, start, n)).ok()
        });
        let mut done = done.into_iter();
        let together: Vec<Option<DataFrame>> = groups
            .iter()
            .map(|_| {
                let mut all: Option<DataFrame> = None;
                let mut ok = true;
                for part in done.by_ref().take(parts.len()) {
                    match (part, all.as_mut()) {
                        (Some(p), Some(a)) => ok &= a.vstack_mut_owned(p).is_ok(),
                        (Some(p), None) => all = Some(p),
                        (None, _) => ok = false,
                    }
                }
                all.filter(|_| ok)
            })
            .collect();
        if together.iter().any(Option::is_some) {
            trace(
                &format!(
                    "aggregate {}'s {} window(s) in {} part(s)",
                    src.name,
                    together.len(),
                    parts.len()
                ),
                t_all,
            );
        }
        for (g, done) in groups.into_iter().zip(together) {
            let WindowGroup {
                window,
                feats,
                rows: lf,
                has_rows,
                plan,
            } = g;
            let agg = match done {
                Some(a) => Ok(a),
                None => {
                    let t_group = std::time::Instant::now();
                    let agg = guard(|| lf.clone().group_by([col(AID)]).agg(plan.exprs).collect());
                    trace(&format!("aggregate {} {window:?}", src.name), t_group);
                    agg
                }
            };
            let agg = match agg {
                Ok(a) => a,
                Err(e) => {
                    let before = report.findings.len();
                    for f in &feats {
                        // Find which expression fails, one at a time, to name it.
                        let single = guard(|| {
                            lf.clone()
                                .group_by([col(AID)])
                                .agg([f.expr.clone().alias(f.name.as_str())])
                                .collect()
                        });
                        if let Err(e1) = single {
                            report.push(feature_finding(p, f, Severity::Error, "bad_feature", 0, format!("`{}` over source `{}` failed: {e1}", f.expr_text, src.name), "fix the expression; it is Polars SQL evaluated per account over the source's rows in the window"));
                        }
                    }
                    if report.findings.len() == before && !report.has_errors() {
                        return Err(Error::Internal(format!(
                            "aggregating source {}: {e}",
                            src.name
                        )));
                    }
                    self.failed = true;
                    continue;
                }
            };
            let mut no_rows = Vec::new();
            for f in &feats {
                if let Ok(c) = agg.column(&f.name) {
                    if matches!(c.dtype(), DataType::List(_)) {
                        self.failed = true;
                        report.push(feature_finding(p, f, Severity::Error, "not_an_aggregate", 0, format!("`{}` gives several values per account; features over source `{}` must aggregate its rows", f.expr_text, src.name), "wrap it in an aggregate such as sum(...), avg(...), max(...), last(...) or count(*)"));
                    } else if let Some(v) = over_no_rows(df, f) {
                        no_rows.push(
                            when(col(has_rows.as_str()).is_null())
                                .then(lit(v))
                                .otherwise(col(f.name.as_str()))
                                .alias(f.name.as_str()),
                        );
                    }
                }
            }
            self.parts.push(Part {
                agg,
                has_rows,
                source: &src.name,
                window,
                features: feats,
                no_rows,
            });
        }
        Ok(())
    }
}

/// A finding about feature `f` (named by its source, the account table's if none).
fn feature_finding(
    p: &Pipeline,
    f: &Feature,
    sev: Severity,
    code: &'static str,
    count: usize,
    msg: String,
    hint: &str,
) -> quality::Finding {
    quality::Finding {
        severity: sev,
        code: code.into(),
        source: f
            .source
            .clone()
            .unwrap_or_else(|| p.account_source().name.clone()),
        file: p.file.display().to_string(),
        column: Some(f.name.clone()),
        count,
        message: msg,
        hint: hint.to_string(),
        examples: Vec::new(),
    }
}

/// Step 4's end: the aggregates joined onto the account table (`accounts`,
/// linked), the accounts that are customers at as-of kept, the row-level
/// features derived, and the frame checked and typed.
fn build_features(
    p: &Pipeline,
    accounts: DataFrame,
    aggregated: Aggregated<'_>,
    as_of: Month,
    report: &mut QualityReport,
) -> Result<Option<DataFrame>> {
    let acc_src = p.account_source();
    let feature_finding = |f: &Feature, sev, code, count, msg, hint: &str| {
        feature_finding(p, f, sev, code, count, msg, hint)
    };
    let Aggregated {
        mut parts,
        ranges,
        failed,
        ..
    } = aggregated;
    if failed {
        return Ok(None);
    }
    let mut current = accounts;
    let mut no_rows: Vec<Expr> = Vec::new();
    for part in &mut parts {
        current = attach(current, std::mem::take(&mut part.agg))?;
        no_rows.append(&mut part.no_rows);
    }

    // Only customers at the end of the as-of month are accounts of the run.
    if let Ok(active) = current.column(ACTIVE).map(|c| c.bool().cloned()) {
        let active = active?;
        let started = current.column(STARTED)?.bool()?.clone();
        let customers = active.sum().unwrap_or(0) as usize;
        let started_n = started.sum().unwrap_or(0) as usize;
        report.lifetime = Some(quality::Lifetime {
            as_of: as_of.to_string(),
            customers,
            not_yet: current.height() - started_n,
            gone: started_n - customers,
        });
        current = current.filter(&active)?;
        if current.height() == 0 {
            report.push(finding(
                acc_src,
                Severity::Error,
                "no_customers",
                None,
                0,
                format!("no account was a customer at the end of {as_of} (per `since`/`until`)"),
                "run a month the accounts cover with --as-of, or check the `since` and `until` columns",
            ));
            return Ok(None);
        }
    }

    // A window with rows for (almost) no account lies outside the data: its
    // features would be empty, or 0 for every account, and say nothing.
    let n = current.height();
    let mut outside = false;
    for part in &parts {
        let (Some(_), has_rows, src_name) = (part.window, &part.has_rows, part.source) else {
            continue;
        };
        let without = current.column(has_rows)?.null_count();
        let share = without as f64 / n.max(1) as f64;
        if n > 0 && share >= p.quality.max_empty_window {
            outside = true;
            for f in &part.features {
                report.push(feature_finding(
                    f,
                    Severity::Error,
                    "empty_feature",
                    without,
                    format!(
                        "{without} of the {n} accounts ({:.0}%) have no rows of source `{src_name}` in the window of `{}`",
                        share * 100.0,
                        f.name
                    ),
                    &empty_feature_hint(p, f, &ranges, as_of),
                ));
            }
        }
    }
    if outside {
        return Ok(None);
    }
    // Accounts without rows get each expression's value over no rows.
    current = guard(|| {
        current
            .clone()
            .lazy()
            .with_columns(no_rows.clone())
            .drop(cols(parts.iter().map(|i| i.has_rows.as_str())))
            .collect()
    })
    .map_err(Error::Internal)?;

    // Row-level features, in declaration order.
    for f in p
        .features
        .iter()
        .filter(|f| f.source.is_none() || f.source.as_deref() == Some(acc_src.name.as_str()))
    {
        let available: BTreeSet<String> = current
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let missing: Vec<String> = f
            .expr
            .clone()
            .meta()
            .root_names()
            .into_iter()
            .map(|r| r.to_string())
            .filter(|r| !available.contains(r))
            .collect();
        if !missing.is_empty() {
            report.push(feature_finding(f, Severity::Error, "bad_feature", 0, format!("`{}` refers to {} which is neither a column of the account table nor a feature defined before it", f.expr_text, missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")), "define that feature earlier in the file, or fix the name"));
            return Ok(None);
        }
        let expr = f.expr.clone().alias(f.name.as_str());
        match guard(|| current.clone().lazy().with_column(expr.clone()).collect()) {
            Ok(df) => current = df,
            Err(e) => {
                report.push(feature_finding(
                    f,
                    Severity::Error,
                    "bad_feature",
                    0,
                    format!("`{}` failed: {e}", f.expr_text),
                    "fix the expression (Polars SQL over the account table and earlier features)",
                ));
                return Ok(None);
            }
        }
    }

    // Final frame: id + features, typed, sorted by id.
    let mut cols: Vec<Column> = vec![current
        .column(ACCOUNT)?
        .clone()
        .with_name(ACCOUNT_ID.into())];
    for f in &p.features {
        let c = current.column(&f.name)?.clone();
        let c = match f.kind {
            Kind::Categorical => c.cast(&DataType::String)?,
            Kind::Numeric => {
                if !(c.dtype().is_primitive_numeric()
                    || c.dtype() == &DataType::Boolean
                    || c.dtype() == &DataType::Null)
                {
                    report.push(feature_finding(
                        f,
                        Severity::Error,
                        "bad_feature",
                        0,
                        format!("`{}` gives {} values, not numbers", f.expr_text, c.dtype()),
                        "set kind = \"categorical\" for text features, or fix the expression",
                    ));
                    return Ok(None);
                }
                let x = c.cast(&DataType::Float64)?;
                let ca = x.f64()?;
                let bad = ca
                    .iter()
                    .filter(|v| v.is_some_and(|v| !v.is_finite()))
                    .count();
                if bad > 0 {
                    report.push(feature_finding(f, Severity::Warning, "non_finite_feature", bad, format!("{bad} account(s) got NaN or infinity from `{}` (a division by zero?); treated as missing", f.expr_text), "use nullif(x, 0) in divisions to make the intent explicit"));
                    let cleaned: Float64Chunked =
                        ca.iter().map(|v| v.filter(|v| v.is_finite())).collect();
                    cleaned.with_name(f.name.as_str().into()).into_column()
                } else {
                    x
                }
            }
        };
        cols.push(c);
    }
    // The tier column, when it is an account-table column and not a feature:
    // carried as text under its own name for the compare stage.
    if let Some(t) = tier_column(p) {
        cols.push(current.column(t)?.cast(&DataType::String)?);
    }
    let df = DataFrame::new_infer_height(cols)?;
    // A feature with no value for any account carries nothing and would be
    // imputed into a constant: it is always a mistake (a window outside the
    // data, a wrong as-of, an empty column).
    // A windowed one empty for almost every account (a window outside most
    // of the data) is as much a mistake; a feature missing for many accounts
    // is imputed for them, which is worth a word.
    let mut empty = false;
    let n = df.height();
    for f in &p.features {
        let missing = df.column(&f.name)?.null_count();
        if n == 0 || missing == 0 {
            continue;
        }
        let share = missing as f64 / n as f64;
        if missing == n {
            empty = true;
            report.push(feature_finding(
                f,
                Severity::Error,
                "empty_feature",
                missing,
                format!("`{}` has no value for any of the {n} accounts", f.name),
                &empty_feature_hint(p, f, &ranges, as_of),
            ));
        } else if share > p.quality.max_imputed && f.in_matrix {
            let fill = match (f.kind, f.missing) {
                (Kind::Categorical, crate::config::Missing::Mode) => {
                    "the most common level".to_string()
                }
                (Kind::Categorical, _) => "their own level \"(missing)\"".to_string(),
                (_, m) => format!("an imputed value (missing = {})", m.describe()),
            };
            report.push(feature_finding(
                f,
                Severity::Warning,
                "mostly_missing",
                missing,
                format!(
                    "`{}` has no value for {missing} of the {n} accounts ({:.0}%); they get {fill}, so the feature says little about them",
                    f.name,
                    share * 100.0
                ),
                "check the feature's source and window, or set `missing` to what no data means (e.g. missing = 0); quality.max_imputed sets when this is said",
            ));
        }
    }
    if empty {
        return Ok(None);
    }
    let df = df.sort([ACCOUNT_ID], SortMultipleOptions::default())?;
    Ok(Some(df))
}

/// `accounts` with the columns of `agg` (one row per account that has rows,
/// keyed by `AID`) beside them: what a left join on `AID` gives, null for the
/// accounts without rows, found through an array indexed by account rather
/// than a hash table (the accounts are numbered 0..n when linked).
fn attach(accounts: DataFrame, agg: DataFrame) -> Result<DataFrame> {
    let Some(take) = rows_of_accounts(&accounts, &agg)? else {
        return join_on_aid(accounts, agg);
    };
    let columns: Vec<Column> = agg
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != AID)
        .map(|c| c.take(&take))
        .collect::<PolarsResult<_>>()?;
    let mut out = accounts;
    for c in columns {
        out.with_column(c)?;
    }
    Ok(out)
}

/// Each account's row in `agg` (null: none), or None when a left join has
/// more to say: a column name both have, a key missing, twice or not an
/// account.
fn rows_of_accounts(accounts: &DataFrame, agg: &DataFrame) -> Result<Option<IdxCa>> {
    let clash = agg
        .get_column_names()
        .into_iter()
        .any(|c| c.as_str() != AID && accounts.column(c).is_ok());
    let ids = accounts.column(AID)?.idx()?;
    let keys = agg.column(AID)?.idx()?;
    if clash || keys.null_count() > 0 || ids.null_count() > 0 {
        return Ok(None);
    }
    let size = ids.max().map_or(0, |m| m as usize + 1);
    let mut row: Vec<Option<IdxSize>> = vec![None; size];
    for (i, k) in keys.into_no_null_iter().enumerate() {
        match row.get_mut(k as usize) {
            Some(r @ None) => *r = Some(i as IdxSize),
            _ => return Ok(None),
        }
    }
    Ok(Some(
        ids.into_no_null_iter().map(|a| row[a as usize]).collect(),
    ))
}

/// [`attach`] as a left join, for what the fast path does not cover.
fn join_on_aid(accounts: DataFrame, agg: DataFrame) -> Result<DataFrame> {
    guard(|| {
        accounts
            .lazy()
            .join(
                agg.lazy(),
                [col(AID)],
                [col(AID)],
                JoinArgs::new(JoinType::Left),
            )
            .collect()
    })
    .map_err(Error::Internal)
}

/// What aggregate feature `f` is over no rows of `df`'s source, when that is a
/// number: 0 for `sum(...)` and `count(*)` (and `sum(mrr) * 12`), while `avg`,
/// `max`, `last`, … have no value over no rows (None: the account stays
/// missing and is imputed per `missing`). SQL's SUM is NULL over no rows, so
/// the expression is evaluated with SUM read as TOTAL (a sum that is 0 then).
fn over_no_rows(df: &DataFrame, f: &Feature) -> Option<f64> {
    let empty = df.clear();
    let expr = polars::sql::sql_expr(sums_as_totals(&f.expr_text)).ok()?;
    let out = guard(|| {
        empty
            .lazy()
            .select([expr.clone().alias("__none")])
            .collect()
    })
    .ok()?;
    if out.height() != 1 {
        return None;
    }
    let v = out.column("__none").ok()?.cast(&DataType::Float64).ok()?;
    v.f64().ok()?.get(0).filter(|x| x.is_finite())
}

/// `text` with every call of SQL `sum(` written `total(` (outside string
/// literals and quoted names).
fn sums_as_totals(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
                i += 1;
                continue;
            }
            None if c == '\'' || c == '"' || c == '`' => {
                quote = Some(c);
                out.push(c);
                i += 1;
                continue;
            }
            None => {}
        }
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let is_sum = starts_word
            && i + 3 <= chars.len()
            && chars[i..i + 3]
                .iter()
                .collect::<String>()
                .eq_ignore_ascii_case("sum");
        if is_sum {
            let mut j = i + 3;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if j < chars.len() && chars[j] == '(' {
                out.push_str("total");
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Why a feature may be empty for every account, from its source's dates.
/// A time-indexed source's time column and its earliest and latest value.
fn date_range(s: &Source, df: &DataFrame) -> Option<(String, String, String)> {
    let t = s.time.as_deref()?;
    let c = df.column(t).ok()?.as_materialized_series().clone();
    let lo = c.min_reduce().ok()?.value().to_string();
    let hi = c.max_reduce().ok()?.value().to_string();
    Some((t.to_string(), lo, hi))
}

fn empty_feature_hint(
    p: &Pipeline,
    f: &Feature,
    ranges: &HashMap<String, (String, String, String)>,
    as_of: Month,
) -> String {
    let src = f.source.as_deref().and_then(|n| p.source(n));
    let range = src.and_then(|s| {
        let (t, lo, hi) = ranges.get(&s.name)?.clone();
        Some((s.name.clone(), t, lo, hi))
    });
    match (range, f.window) {
        (Some((s, t, lo, hi)), Some(w)) => {
            let last = as_of.add(-(w.offset as i32));
            let first = last.add(-(w.months as i32 - 1));
            format!("its window is {first}..{last} (as-of {as_of}), but the rows of source `{s}` are dated {lo} to {hi} (column `{t}`): run with --as-of set to a month the data covers, or fix the window")
        }
        (Some((s, t, lo, hi)), None) => format!(
            "the rows of source `{s}` are dated {lo} to {hi} (column `{t}`), up to as-of {as_of}: check the expression and the source's filter"
        ),
        (None, _) => "check the expression and the columns it reads: every value is empty".into(),
    }
}

#[cfg(test)]
mod tests;
