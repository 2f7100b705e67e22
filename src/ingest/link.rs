//! Step 3, **link**: duplicates of ids and keys dropped (keeping the latest
//! row), every row given its account number (directly or through its
//! parent source), orphans reported and dropped; and the suggestions the
//! error path makes (a unique column, a better link column).

use std::collections::{BTreeSet, HashMap, HashSet};

use polars::prelude::*;

use super::frame::{RowNumbers, ACCOUNT, AID};
use super::load::{self, example_at, finding, ROW};
use crate::config::{Link, Pipeline, Source};
use crate::error::{Error, Result};
use crate::guard::guard;
use crate::memory::trace;
use crate::quality::{self, Example, QualityReport, Severity};

/// Could `keys` hold a duplicate? False means certainly not. O(n log n) on
/// 64-bit hashes (parallel sort), much cheaper than hashing strings into a set.
pub(super) fn maybe_duplicated(keys: &StringChunked) -> bool {
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
pub(super) fn dedupe(
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
    let rows = RowNumbers::of(&sorted);
    let n = keys.len();
    let Runs {
        keep,
        examples: dup_examples,
        rows: dup_rows,
        keys: dup_keys,
    } = Runs::of(&keys, &rows, p.quality.max_examples);
    if let Some(how) = s.per_account {
        // Many rows per account are this source's shape, not duplicates.
        let one = per_account_values(p, s, &sorted, key, &keep, how, report)?;
        return with_account(one);
    }
    if dup_keys > 0 {
        let examples = (dup_examples, dup_rows, dup_keys, n);
        report.push(duplicate_finding(p, s, key, examples));
        if let Some(sum) = report.sources.iter_mut().find(|x| x.name == s.name) {
            sum.rows_duplicate = dup_rows;
        }
    }
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    with_account(sorted.filter(&mask)?)
}

/// The account table of a source with many rows per account: one row per
/// account (its latest), each column's value its latest or its most common
/// (`how`), and a `varying_attribute` warning per column whose value differs
/// within accounts. `sorted` is sorted by key then recency; `keep` marks the
/// last row of each key.
fn per_account_values(
    p: &Pipeline,
    s: &Source,
    sorted: &DataFrame,
    key: &str,
    keep: &[bool],
    how: crate::config::PerAccount,
    report: &mut QualityReport,
) -> Result<DataFrame> {
    let dates = s.date_columns();
    let attributes: Vec<String> = sorted
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| c != key && c != ROW && !c.starts_with("__") && !dates.contains(c))
        // Derived from a date column (months since it): not an attribute.
        .filter(|c| !dates.iter().any(|d| *c == super::frame::months_since(d)))
        .filter(|c| Some(c) != s.latest_by.as_ref())
        .collect();
    let accounts = keep.iter().filter(|k| **k).count();
    let mut out = sorted.filter(&BooleanChunked::from_slice("keep".into(), keep))?;
    for c in &attributes {
        let original = sorted.column(c)?;
        let text = original.cast(&DataType::String)?;
        let text = text.str()?;
        let (mut varying, mut start) = (0usize, 0usize);
        let mut chosen: Vec<Option<String>> = Vec::with_capacity(accounts);
        for (i, &last) in keep.iter().enumerate() {
            if !last {
                continue;
            }
            let run: Vec<Option<&str>> = (start..=i).map(|r| text.get(r)).collect();
            if run.iter().any(|v| *v != run[run.len() - 1]) {
                varying += 1;
            }
            chosen.push(match how {
                crate::config::PerAccount::Latest => run[run.len() - 1].map(str::to_string),
                crate::config::PerAccount::Mode => mode(&run),
            });
            start = i + 1;
        }
        if varying > 0 {
            let share = varying as f64 / accounts.max(1) as f64;
            let took = match how {
                crate::config::PerAccount::Latest => match &s.latest_by {
                    Some(l) => format!("its value on the account's latest row (by `{l}`)"),
                    None => "its value on the account's last row in the file".to_string(),
                },
                crate::config::PerAccount::Mode => "the account's most common value".to_string(),
            };
            let rows_source = s.name.trim_end_matches(" (accounts)");
            report.push(finding(
                s,
                Severity::Warning,
                "varying_attribute",
                Some(c),
                varying,
                format!("`{c}` differs between the rows of {varying} of {accounts} account(s) ({:.0}%); each account takes {took}", share * 100.0),
                format!("that is right for an attribute of the account; to use the mix instead, add a feature with source = \"{rows_source}\" that aggregates it, e.g. a share: avg(CASE WHEN \"{c}\" = '…' THEN 1.0 ELSE 0.0 END)"),
            ));
        }
        if how == crate::config::PerAccount::Mode {
            let col = Column::new(c.as_str().into(), chosen).cast(original.dtype())?;
            out.with_column(col)?;
        }
    }
    let _ = p;
    Ok(out)
}

/// The most common value of `run` (ties: the latest, i.e. last).
fn mode(run: &[Option<&str>]) -> Option<String> {
    let mut counts: Vec<(Option<&str>, usize, usize)> = Vec::new();
    for (i, v) in run.iter().enumerate() {
        match counts.iter_mut().find(|(x, _, _)| x == v) {
            Some(e) => {
                e.1 += 1;
                e.2 = i;
            }
            None => counts.push((*v, 1, i)),
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(_, n, last)| (n, last))
        .and_then(|(v, _, _)| v.map(str::to_string))
}

/// Runs of equal keys in sorted rows: which row of each run is kept (the
/// last), the duplicates as examples (at most `max_examples`), and how many
/// rows and keys were duplicated.
struct Runs {
    keep: Vec<bool>,
    examples: Vec<Example>,
    rows: usize,
    keys: usize,
}

impl Runs {
    fn of(keys: &StringChunked, rows: &RowNumbers, max_examples: usize) -> Runs {
        let n = keys.len();
        let mut keep = Vec::with_capacity(n);
        let mut examples = Vec::new();
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
                if examples.len() < max_examples {
                    let place: Vec<String> = (i..j).map(|k| (rows.at(k) + 1).to_string()).collect();
                    examples.push(Example {
                        row: Some(rows.at(j - 1) + 1),
                        line: None,
                        value: Some(format!(
                            "{:?} in rows {} (kept row {})",
                            keys.get(i).unwrap_or(""),
                            place.join(", "),
                            rows.at(j - 1) + 1
                        )),
                    });
                }
            }
            i = j;
        }
        Runs {
            keep,
            examples,
            rows: dup_rows,
            keys: dup_keys,
        }
    }
}

/// The `duplicate_id` finding: a warning (by default), an error when so many
/// rows repeat a key that the column is not a key at all.
fn duplicate_finding(
    p: &Pipeline,
    s: &Source,
    key: &str,
    (dup_examples, dup_rows, dup_keys, n): (Vec<Example>, usize, usize, usize),
) -> quality::Finding {
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
        f.hint = match s.link {
            // Many rows per id: an order or event export, whose accounts are
            // its distinct ids (a unique row id would make every row one).
            Link::Accounts { .. } => format!(
                "`{key}` repeats on {:.0}% of rows: if each row is an order, invoice or event of an account, the accounts are the distinct `{key}`s — set per_account = \"latest\" (or \"mode\") on this source, and aggregate its rows with features whose source is this one (README: \"Order-level exports\"); if `{key}` should be unique, the file holds stale copies (over quality.max_duplicates = {})",
                share * 100.0,
                p.quality.max_duplicates
            ),
            _ => format!(
                "`{key}` is not unique per row, so it cannot be this source's `{field}` (over quality.max_duplicates = {}){}",
                p.quality.max_duplicates,
                match unique.first() {
                    Some(u) => format!("; `{u}` is unique in every row: did you mean {field} = \"{u}\"?"),
                    None => String::new(),
                }
            ),
        };
    }
    f.examples = dup_examples;
    f
}

/// Link values → account numbers, for [`look_up_in`]: a hash map, and the
/// keys themselves when they are in ascending order and numbered by their
/// place (the accounts' ids are: the account table is sorted by id and
/// numbered in that order).
pub(super) struct KeyIndex<'a> {
    map: PlHashMap<&'a str, IdxSize>,
    /// The keys, one chunk, strictly ascending, key `i` numbered `i`.
    in_order: Option<&'a StringChunked>,
}

/// [`KeyIndex`] of `keys` → `ids`; `None` if `keys` has a duplicate (a join
/// would then repeat rows) or a null. Built once for the accounts and used
/// by every source linked to them.
pub(super) fn key_map<'a>(keys: &'a StringChunked, ids: &IdxCa) -> Option<KeyIndex<'a>> {
    if keys.null_count() > 0 || ids.null_count() > 0 {
        return None;
    }
    let mut map: PlHashMap<&str, IdxSize> = PlHashMap::with_capacity(keys.len());
    for (k, v) in keys.iter().flatten().zip(ids.iter().flatten()) {
        if map.insert(k, v).is_some() {
            return None;
        }
    }
    let numbered_in_order = keys.chunks().len() == 1
        && ids
            .iter()
            .enumerate()
            .all(|(i, id)| id == Some(i as IdxSize))
        && keys.iter().zip(keys.iter().skip(1)).all(|(a, b)| a < b);
    Some(KeyIndex {
        map,
        in_order: numbered_in_order.then_some(keys),
    })
}

/// [`key_map`] of `df`'s text column `key` to its `AID`; `None` if either is
/// missing or of another type.
pub(super) fn frame_key_map<'a>(df: &'a DataFrame, key: &str) -> Option<KeyIndex<'a>> {
    match (
        df.column(key).map(|c| c.str()),
        df.column(AID).map(|c| c.idx()),
    ) {
        (Ok(Ok(keys)), Ok(Ok(ids))) => key_map(keys, ids),
        _ => None,
    }
}

/// Linking's lookup: each of `links` through `index` ([`key_map`]), as its
/// row's account number, null where it names none. The same result as a left
/// join of `links` on the keys, without gathering the other columns; in
/// parallel over blocks of rows, one lookup per run of equal links (an
/// export lists an account's rows together).
///
/// When the keys are in order, a link at or just past the last one found is
/// found by stepping along them (a merge: an export in account order reads
/// the sorted ids once, in order); any other (rows out of order, a jump
/// past [`STEPS`] keys) is a hash probe, which also puts the walk back in
/// step. At 10M accounts each probe into the 10M-key map misses the cache;
/// the steps do not.
pub(super) fn look_up_in(links: &StringChunked, index: &KeyIndex) -> IdxCa {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 16;
    let keys = index.in_order.and_then(|k| k.downcast_iter().next());
    // Each block fills its own stretch of one array of account numbers and
    // returns where it found none (orphans, rare): at 124M rows a list of
    // `Option`s per block, then collected, was 1.5 GB on top of the 0.5 GB
    // column, and linking revenue at 10M accounts was ingestion's peak.
    let mut values = vec![0 as IdxSize; links.len()];
    // Blocks of rows: (their chunk, first row in it, first row in the column,
    // the block's stretch of `values`).
    let mut stretches = Vec::new();
    let (mut rest, mut offset): (&mut [IdxSize], usize) = (&mut values, 0);
    for a in links.downcast_iter() {
        for start in (0..a.len()).step_by(BLOCK) {
            let (head, tail) = rest.split_at_mut((a.len() - start).min(BLOCK));
            let len = head.len();
            stretches.push((a, start, offset, head));
            offset += len;
            rest = tail;
        }
    }
    let none: Vec<usize> = stretches
        .into_par_iter()
        .flat_map_iter(|(a, start, offset, out)| {
            let mut last: Option<(&str, Option<IdxSize>)> = None;
            // Every key before `at` is below the last link found.
            let mut at = 0usize;
            let mut find = |v: &str| -> Option<IdxSize> {
                if let Some(keys) = keys {
                    let n = keys.len();
                    if at == 0 || keys.value(at - 1) < v {
                        let mut i = at;
                        while i < n && i - at < STEPS && keys.value(i) < v {
                            i += 1;
                        }
                        if i == n || keys.value(i) >= v {
                            at = i;
                            return (i < n && keys.value(i) == v).then_some(i as IdxSize);
                        }
                    }
                }
                let id = index.map.get(v).copied();
                if let Some(id) = id {
                    at = id as usize;
                }
                id
            };
            let mut none = Vec::new();
            for (k, slot) in out.iter_mut().enumerate() {
                let id = a.get(start + k).and_then(|v| match last {
                    Some((l, id)) if l == v => id,
                    _ => {
                        let id = find(v);
                        last = Some((v, id));
                        id
                    }
                });
                match id {
                    Some(id) => *slot = id,
                    None => none.push(offset + k),
                }
            }
            none
        })
        .collect();
    if none.is_empty() {
        return IdxCa::from_vec(AID.into(), values);
    }
    // The rows without an account as nulls: a validity bit per row beside
    // the values (`none` is in row order), not a second copy of them.
    let mut next = none.iter().copied().peekable();
    let valid = BooleanChunked::from_iter_values(
        "valid".into(),
        (0..values.len()).map(|i| next.next_if_eq(&i).is_none()),
    );
    let bits = valid.downcast_iter().next().expect("one chunk").values();
    IdxCa::from_vec(AID.into(), values).with_validity(Some(bits.clone()))
}

/// How many keys [`look_up_in`] steps over before it asks the hash map.
const STEPS: usize = 8;

/// Give every row of a child source its account; drop and report orphans.
pub(super) fn link_source(
    p: &Pipeline,
    s: &Source,
    df: DataFrame,
    accounts: &DataFrame,
    account_map: Option<&KeyIndex>,
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
    let Some((map, left, what)) = link_map(p, s, accounts, linked)? else {
        return Ok(None);
    };
    let joined = join_accounts(p, s, &df, (&map, &left), account_map)?;
    let mut linked = drop_orphans(p, s, joined, &df, &map, &left, &what, report)?;
    // The rows as read are not needed past here: free them before any
    // reordering copies columns.
    drop(df);
    put_in_account_order(&mut linked)?;
    Ok(Some(linked))
}

/// The link of `s`'s rows: a frame of link values (`__link`) and account
/// numbers (the accounts', or the parent source's), the column of `s` that
/// holds the link, and what a link value names (for messages); `None` when
/// the parent was not linked.
fn link_map(
    p: &Pipeline,
    s: &Source,
    accounts: &DataFrame,
    linked: &HashMap<String, DataFrame>,
) -> Result<Option<(DataFrame, String, String)>> {
    Ok(Some(match &s.link {
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
    }))
}

/// `df`'s rows with their account number (`AID`, null for an orphan), in
/// their order: through a hash map of the link values when one can be built
/// (the accounts' own, or one over the parent's keys), else a left join.
/// The link column is dropped unless something reads it later.
fn join_accounts(
    p: &Pipeline,
    s: &Source,
    df: &DataFrame,
    (map, left): (&DataFrame, &str),
    account_map: Option<&KeyIndex>,
) -> Result<DataFrame> {
    // The link column is left out of the joined rows unless something reads
    // it later (at a million accounts a monthly source's text ids are a few
    // hundred MB, and this join is ingestion's memory peak).
    let mut dropped = vec!["__link".to_string()];
    if !used_after_link(p, s, left) {
        dropped.push(left.to_string());
    }
    // The accounts' map when linking to them, else one over the parent's keys.
    let parents;
    let keys = match (&s.link, account_map) {
        (Link::Direct { .. }, Some(m)) => Some(m),
        _ => {
            parents = frame_key_map(map, "__link");
            parents.as_ref()
        }
    };
    let fast = match (keys, df.column(left).map(|l| l.str())) {
        (Some(m), Ok(Ok(l))) => Some(look_up_in(l, m)),
        _ => None,
    };
    Ok(match fast {
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
                    [col(left)],
                    [col("__link")],
                    JoinArgs::new(JoinType::Left).with_coalesce(JoinCoalesce::KeepColumns),
                )
                .drop(cols(dropped.clone()))
                .collect()
        })
        .map_err(Error::Internal)?,
    })
}

/// The rows that name no account (`AID` null in `df`, the joined rows of
/// `prepared`) reported — an error past `quality.max_orphans`, with the
/// column that would link better — and dropped.
#[allow(clippy::too_many_arguments)]
fn drop_orphans(
    p: &Pipeline,
    s: &Source,
    mut df: DataFrame,
    prepared: &DataFrame,
    map: &DataFrame,
    left: &str,
    what: &str,
    report: &mut QualityReport,
) -> Result<DataFrame> {
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
        let mut f = finding(s, p.quality.orphans, "orphan_id", Some(left), n_orphan, format!("{n_orphan} of {} row(s) ({:.0}%) name {what} that does not exist; they are left out", df.height(), share * 100.0), "check that the id columns match (same format, no stray spaces); rows of deleted accounts can be removed at the source");
        if share > p.quality.max_orphans {
            // Most rows linking nowhere means the wrong column links them.
            f.severity = Severity::Error;
            let field = match &s.link {
                Link::Via { .. } => "link",
                _ => "account",
            };
            let better = better_link_column(s, left, &keys, 1.0 - share);
            f.hint = format!(
                "`{left}` does not hold {what} for most rows (over quality.max_orphans = {}){}",
                p.quality.max_orphans,
                match (better, &s.link) {
                    (Some((c, m)), _) => format!(
                        "; column `{c}` matches {:.0}% of rows: did you mean {field} = \"{c}\"?",
                        m * 100.0
                    ),
                    (None, Link::Via { parent, .. }) => format!(
                        "; if `{}` is a table keyed by something many `{parent}` rows share (population by zip code), it is a lookup, not a `via`: lookup = \"{parent}\", key = \"{left}\", on = \"<the `{parent}` column it matches>\", columns = [\"…\"] (README: `lookup`)",
                        s.name
                    ),
                    (None, _) =>
                        "; check that the id columns match (same format, no stray spaces)".into(),
                }
            );
        }
        if let Some(sum) = report.sources.iter_mut().find(|x| x.name == s.name) {
            sum.rows_orphan = n_orphan;
        }
        // Examples from the prepared rows (in their order, as the join keeps
        // it): those whose link value names no account.
        let rows = RowNumbers::of(&prepared);
        let links = prepared.column(left)?.cast(&DataType::String)?;
        f.examples = links
            .str()?
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_none_or(|v| !keys.contains(v)))
            .take(p.quality.max_examples)
            .map(|(i, v)| example_at(s, rows.at(i), v.map(|v| format!("{v:?}"))))
            .collect();
        report.push(f);
        df = df.filter(&!orphan)?;
    }
    Ok(df)
}

/// Puts the rows in account order and flags `AID` as sorted: Polars then
/// groups them by runs of rows instead of hashing every id, and step 4 cuts
/// them into parts for the threads ([`super::parts::account_parts`]).
/// Exports often come in account order already (one pass over the ids sees
/// it); otherwise a stable counting sort by account, O(rows + accounts),
/// keeps each account's rows in their order, so every aggregate is the one
/// the rows in account order give, whatever order the file had (at 10M
/// accounts one id out of place, `A10000000` between `A1000000` and
/// `A1000001`, had revenue's 124M rows grouped in one piece: 31 s, against
/// 7 s in parts plus 13 s for this reordering). When the order is a few
/// runs of consecutive rows (at most [`MAX_RUNS`]: an export in order but
/// for a block), the frame is cut at the runs and rejoined, copying nothing
/// (at 10M: linking revenue's 124M rows took 16.8 s gathering them). Else
/// columns are reordered one at a time (made contiguous, then gathered), so
/// the copy costs about two columns, not the frame. Nothing changes when an
/// id is missing.
pub(super) fn put_in_account_order(df: &mut DataFrame) -> Result<()> {
    let c = df.column(AID)?;
    let ids = c.idx()?;
    if ids.null_count() > 0 {
        return Ok(());
    }
    let values = || ids.downcast_iter().flat_map(|a| a.values().iter().copied());
    let mut prev = 0;
    let in_order = values().all(|v| {
        let ok = v >= prev;
        prev = v;
        ok
    });
    if !in_order {
        let top = values().max().unwrap_or(0) as usize;
        let mut at = vec![0 as IdxSize; top + 2];
        for v in values() {
            at[v as usize + 1] += 1;
        }
        for i in 1..at.len() {
            at[i] += at[i - 1];
        }
        let mut order = vec![0 as IdxSize; ids.len()];
        for (i, v) in values().enumerate() {
            order[at[v as usize] as usize] = i as IdxSize;
            at[v as usize] += 1;
        }
        drop(at);
        // The order as runs of consecutive rows: an export in order but for
        // a few blocks (at 10M, one account's rows at the end) is cut at
        // the runs and put back together without copying a row.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &o in &order {
            match runs.last_mut() {
                Some((start, len)) if *start + *len == o as usize => *len += 1,
                _ => {
                    if runs.len() > MAX_RUNS {
                        break;
                    }
                    runs.push((o as usize, 1));
                }
            }
        }
        if runs.len() <= MAX_RUNS {
            let whole = std::mem::replace(df, DataFrame::empty());
            let mut joined = whole.slice(runs[0].0 as i64, runs[0].1);
            for &(start, len) in &runs[1..] {
                joined.vstack_mut(&whole.slice(start as i64, len))?;
            }
            *df = joined;
            return flag_sorted(df);
        }
        let order = IdxCa::from_vec("order".into(), order);
        let height = df.height();
        let columns = std::mem::replace(df, DataFrame::empty()).into_columns();
        // One contiguous buffer per column first, rather than gathering
        // from many chunks (looking up each row's chunk). Linking 10M
        // accounts' revenue took 37 s and peaked at 15.4 GiB gathering from
        // the chunks with the rows as read still held; 21 s and 10.7 GiB
        // this way, with them freed first (both changed at once).
        let columns = columns
            .into_iter()
            .map(|c| c.rechunk().take(&order))
            .collect::<PolarsResult<Vec<_>>>()?;
        *df = DataFrame::new(height, columns)?;
    }
    flag_sorted(df)
}

/// Runs of rows [`put_in_account_order`] joins without copying (one chunk
/// each); more, and the rows are gathered into one buffer per column.
const MAX_RUNS: usize = 64;

/// Flags `AID` ascending (the caller has put the rows in account order).
fn flag_sorted(df: &mut DataFrame) -> Result<()> {
    let mut s = df.column(AID)?.as_materialized_series().clone();
    s.set_sorted_flag(polars::series::IsSorted::Ascending);
    df.with_column(s.into_column())?;
    Ok(())
}

/// Whether a child source's link column is read after linking: by one of its
/// features, as its `key` (which its own children link through) or as a date
/// column (the time order of `first`/`last`). Its filter, checks and
/// deduplication have run by then. If not, linking drops it: the account's
/// row number (`__aid`) replaces it, and at a million accounts the text ids
/// of a monthly source take a few hundred MB.
pub(super) fn used_after_link(p: &Pipeline, s: &Source, column: &str) -> bool {
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
pub(super) fn all_columns_as_text(s: &Source) -> Option<DataFrame> {
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
pub(super) fn unique_columns(s: &Source, key: &str) -> Vec<String> {
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
pub(super) fn better_link_column(
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
