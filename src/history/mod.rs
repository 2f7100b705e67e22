//! Month over month: stable segment IDs, transitions and migration.
//!
//! Clustering labels are arbitrary: this month's k-means segment 2 need not be
//! last month's segment 2. Analysts need "Segment 3" to keep meaning the same
//! customers, so each run is matched to the **previous committed run** (the
//! latest month before this one in the same output folder) and segments
//! inherit IDs and names.
//!
//! ## Matching (after Greene, Doyle & Cunningham 2010 and MONIC, Spiliopoulou et al. 2006)
//!
//! On the accounts present in both months, for previous segment `p` and current
//! segment `c` with `n` accounts in common:
//!
//! * `f = n / |p|`: the share of `p` that went to `c`;
//! * `g = n / |c|`: the share of `c` that came from `p`.
//!
//! `p` and `c` are **linked** when `f ≥ ½` or `g ≥ ½` (a majority either way)
//! and `n ≥ 3`. Each previous segment has at most one majority destination and
//! each current segment at most one majority origin, so the links are few and
//! clear. Then:
//!
//! * **survived**: `p` and `c` are linked only to each other; `c` keeps `p`'s
//!   ID and name;
//! * **split**: `p` is linked to several current segments; the one holding most
//!   of `p` keeps its ID, the others get new IDs;
//! * **merged**: several previous segments are linked to `c`; `c` keeps the ID
//!   of the one contributing most;
//! * **emerged**: `c` is linked to nothing (a new ID) — unless the profile
//!   fallback below pairs it;
//! * **disappeared**: `p` is linked to nothing (its accounts scattered or left).
//!
//! The ID-keeping pairs are chosen by the Hungarian method on the overlap among
//! linked pairs, so no ID is given twice. **Fallback**: a segment that overlap
//! cannot place (mostly new accounts, say) is paired with an unplaced previous
//! segment when the two are mutual nearest neighbours in profile space (median
//! of each numeric feature, scaled by that feature's spread across segments)
//! and closer than half the median distance between last month's segments.
//! IDs are never reused: new IDs continue from the highest ever issued.
//!
//! ## Migration
//!
//! Per account: the previous segment under each method and the previous
//! suggested tier and exception. Per method: the previous × current migration
//! matrix with accounts new this month and lost since, and the drift
//! (ARI between the two months on the accounts in both). Tiers: the previous ×
//! current suggested-tier matrix, and exceptions newly flagged or resolved.
//!
//! Cost: O(n) to align accounts (a hash map of last month's IDs) and O(n + k²)
//! per method.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use crate::cluster::Segmentation;
use crate::compare::Comparison;
use crate::error::{Error, Result};
use crate::month::Month;
use crate::rundir::{read_manifest, read_parquet};
use crate::schema::{column, file};

mod listing;
mod matching;
mod migration;
mod track_record;

pub use listing::{history_text, list, HistoryRow};
use matching::match_segments;
use migration::{drift, migration, tier_migration};
pub use track_record::{track_record, TrackRecord, TrackRow};

/// What one method's segments looked like last month.
#[derive(Debug, Clone)]
pub struct PreviousMethod {
    /// Segment ID per previous account (null when the account had none).
    pub ids: Vec<Option<u32>>,
    pub names: BTreeMap<u32, String>,
    /// Numeric feature medians per segment, for the profile fallback.
    pub medians: BTreeMap<u32, Vec<(String, f64)>>,
    /// The next unused segment ID.
    pub next_id: u32,
}

/// The previous committed run, as read back from its outputs.
#[derive(Debug, Clone)]
pub struct PreviousRun {
    pub as_of: Month,
    pub dir: PathBuf,
    pub accounts: Vec<String>,
    pub methods: BTreeMap<String, PreviousMethod>,
    pub suggested_tier: Option<Vec<Option<String>>>,
    pub exception: Option<Vec<Option<String>>>,
    /// Each account's tier that month (None without tiers).
    pub current_tier: Option<Vec<Option<String>>>,
    /// The month each flagged account was first flagged (None in runs
    /// written before the column).
    pub first_flagged: Option<Vec<Option<String>>>,
}

fn strings(df: &DataFrame, name: &str) -> Result<Option<Vec<Option<String>>>> {
    let Ok(c) = df.column(name) else {
        return Ok(None);
    };
    let s = c.as_materialized_series().cast(&DataType::String)?;
    Ok(Some(
        s.str()?.iter().map(|v| v.map(str::to_owned)).collect(),
    ))
}

fn u32s(df: &DataFrame, name: &str) -> Result<Option<Vec<Option<u32>>>> {
    let Ok(c) = df.column(name) else {
        return Ok(None);
    };
    let s = c.as_materialized_series().cast(&DataType::UInt32)?;
    Ok(Some(s.u32()?.iter().collect()))
}

impl PreviousRun {
    /// Read a committed run's assignments, segments and ID counters.
    pub fn load(as_of: Month, dir: &Path) -> Result<PreviousRun> {
        let a = read_parquet(&dir.join(file::ASSIGNMENTS), None)?;
        let s = read_parquet(&dir.join(file::SEGMENTS), None)?;
        let accounts: Vec<String> = strings(&a, crate::schema::ACCOUNT_ID)?
            .ok_or_else(|| Error::Usage(format!("{} has no account_id column", dir.display())))?
            .into_iter()
            .map(|v| v.unwrap_or_default())
            .collect();
        // ID counters from the (small) manifest; comparison.json has them too
        // but runs to tens of MB at a million accounts.
        let next: BTreeMap<String, u32> =
            read_manifest::<serde::de::IgnoredAny, serde::de::IgnoredAny>(dir)
                .map(|m| m.next_segment_ids)
                .unwrap_or_default();
        let seg_method = strings(&s, column::METHOD)?.unwrap_or_default();
        let seg_id = u32s(&s, column::SEGMENT)?.unwrap_or_default();
        let seg_name = strings(&s, column::NAME)?.unwrap_or_default();
        let median_cols: Vec<(String, Vec<Option<f64>>)> = s
            .columns()
            .iter()
            .filter_map(|c| {
                let f = c.name().strip_prefix(column::MEDIAN_PREFIX)?.to_string();
                let v = c.as_materialized_series().cast(&DataType::Float64).ok()?;
                let v: Vec<Option<f64>> = v.f64().ok()?.iter().collect();
                Some((f, v))
            })
            .collect();
        let mut methods = BTreeMap::new();
        // Every method segments.parquet lists, whatever produced it.
        let names: std::collections::BTreeSet<&str> =
            seg_method.iter().flatten().map(String::as_str).collect();
        for method in names {
            let Some(ids) = u32s(&a, &column::segment(method))? else {
                continue;
            };
            let mut names = BTreeMap::new();
            let mut medians = BTreeMap::new();
            for (r, m) in seg_method.iter().enumerate() {
                if m.as_deref() != Some(method) {
                    continue;
                }
                let Some(id) = seg_id.get(r).copied().flatten() else {
                    continue;
                };
                names.insert(id, seg_name[r].clone().unwrap_or_default());
                medians.insert(
                    id,
                    median_cols
                        .iter()
                        .filter_map(|(f, v)| Some((f.clone(), v[r]?)))
                        .collect(),
                );
            }
            let max_id = ids
                .iter()
                .flatten()
                .chain(names.keys())
                .max()
                .copied()
                .unwrap_or(0);
            let next_id = next.get(method).copied().unwrap_or(0).max(max_id + 1);
            methods.insert(
                method.to_string(),
                PreviousMethod {
                    ids,
                    names,
                    medians,
                    next_id,
                },
            );
        }
        Ok(PreviousRun {
            as_of,
            dir: dir.to_path_buf(),
            accounts,
            methods,
            suggested_tier: strings(&a, column::SUGGESTED_TIER)?,
            exception: strings(&a, column::EXCEPTION)?,
            current_tier: strings(&a, column::CURRENT_TIER)?,
            first_flagged: strings(&a, "first_flagged")?,
        })
    }
}

impl PreviousRun {
    /// Feature `name`'s raw value per previous account (from its
    /// `features.parquet`, aligned to [`PreviousRun::accounts`]); None when
    /// that run has no such column.
    pub fn values(&self, name: &str) -> Result<Option<Vec<Option<f64>>>> {
        let cols = vec![crate::schema::ACCOUNT_ID.to_string(), name.to_string()];
        let Ok(df) = read_parquet(&self.dir.join(file::FEATURES), Some(cols)) else {
            return Ok(None);
        };
        let ids = strings(&df, crate::schema::ACCOUNT_ID)?.unwrap_or_default();
        let v = df.column(name)?.cast(&DataType::Float64)?;
        let by_id: HashMap<&str, Option<f64>> = ids
            .iter()
            .zip(v.f64()?.iter())
            .filter_map(|(id, v)| Some((id.as_deref()?, v)))
            .collect();
        Ok(Some(
            self.accounts
                .iter()
                .map(|a| by_id.get(a.as_str()).copied().flatten())
                .collect(),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    Survived,
    Split,
    Merged,
    Emerged,
    Disappeared,
}

/// One segment's fate between the two months.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Transition {
    pub kind: TransitionKind,
    /// Previous segment IDs involved.
    pub previous: Vec<u32>,
    /// Current segment IDs involved.
    pub current: Vec<u32>,
    /// `overlap` or `profile` (the fallback).
    pub matched_by: Cow<'static, str>,
    /// Accounts in common between the previous and current segments involved.
    pub accounts: u64,
    pub text: String,
    /// A survivor whose name changed with its profile: last month's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
}

/// Previous × current counts for one method.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Migration {
    pub previous_ids: Vec<u32>,
    pub current_ids: Vec<u32>,
    /// `counts[i][j]`: accounts in previous segment i now in current segment j.
    pub counts: Vec<Vec<u64>>,
    /// Accounts new this month, per current segment.
    pub new: Vec<u64>,
    /// Accounts gone since last month, per previous segment.
    pub lost: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct MethodHistory {
    pub method: Cow<'static, str>,
    pub transitions: Vec<Transition>,
    pub migration: Migration,
    /// ARI between the months on the accounts in both.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub drift_ari: f64,
    /// Accounts in both months whose segment ID changed.
    pub moved: u64,
}

/// Previous × current suggested tier (names, with `none` for no tier).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TierMigration {
    pub tiers: Vec<String>,
    pub counts: Vec<Vec<u64>>,
    /// Accounts in both months whose suggested tier changed.
    pub moved: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ExceptionChanges {
    /// Flagged this month, not last month (accounts in both months).
    pub newly_flagged: u64,
    /// Flagged last month, not any more.
    pub resolved: u64,
    /// Flagged both months.
    pub continuing: u64,
    /// Flagged this month and new this month.
    pub new_accounts_flagged: u64,
}

/// Everything month-over-month, written into `comparison.json` as `history`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct History {
    pub previous_as_of: Option<String>,
    /// The previous run's folder, relative to the output folder.
    pub previous_dir: Option<String>,
    pub common_accounts: u64,
    pub new_accounts: u64,
    pub lost_accounts: u64,
    pub methods: Vec<MethodHistory>,
    pub tiers: Option<TierMigration>,
    pub exceptions: Option<ExceptionChanges>,
    /// Last month's suggestions followed up (with tiers and a previous run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_record: Option<TrackRecord>,
    /// The next unused segment ID per method (IDs are never reused).
    pub next_ids: BTreeMap<String, u32>,
    /// Previous segment ID per current account, per method.
    #[serde(skip)]
    pub previous_segment: BTreeMap<String, Vec<Option<u32>>>,
    #[serde(skip)]
    pub previous_suggested_tier: Vec<Option<String>>,
    #[serde(skip)]
    pub previous_exception: Vec<Option<String>>,
    /// When each account still flagged was first flagged (last month's
    /// record; None for accounts not flagged last month).
    #[serde(skip)]
    pub previous_first_flagged: Vec<Option<String>>,
    /// Accounts flagged last month and no longer (at most
    /// [`RESOLVED_LISTED`]; all are in `resolved.csv`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<Resolved>,
}

/// Resolved accounts listed in `comparison.json` at most.
pub const RESOLVED_LISTED: usize = 200;

/// An account flagged last month that is not flagged this month.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Resolved {
    pub account_id: String,
    /// Last month's flag (upgrade / downgrade) and suggested tier.
    pub previous_exception: String,
    pub previous_suggested_tier: Option<String>,
    /// Its tier now, and whether that is the tier suggested last month.
    pub current_tier: Option<String>,
    pub moved_as_suggested: bool,
}

/// Last month's segment ID under `method` for each current account (None for
/// accounts that are new), aligned to `ids`.
pub fn previous_labels(
    prev: &PreviousRun,
    ids: &[String],
    method: &str,
) -> Option<Vec<Option<u32>>> {
    let pm = prev.methods.get(method)?;
    Some(
        align(prev, ids)
            .into_iter()
            .map(|r| r.and_then(|r| pm.ids[r]))
            .collect(),
    )
}

/// For each current account, its row in the previous run (None when new).
fn align(prev: &PreviousRun, ids: &[String]) -> Vec<Option<usize>> {
    let index: HashMap<&str, usize> = prev
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), i))
        .collect();
    ids.iter().map(|a| index.get(a.as_str()).copied()).collect()
}

/// One method's match to last month, decided right after clustering.
#[derive(Debug, Clone)]
pub struct MethodMatch {
    pub transitions: Vec<Transition>,
    /// Last month's segment ID per current account (None for new accounts).
    pub previous_labels: Vec<Option<u32>>,
    /// The next unused segment ID.
    pub next_id: u32,
}

/// The segmentations with their stable IDs, the profiles with those IDs and
/// the names that carry over, and how each method was matched.
pub struct Identified {
    pub segmentations: Vec<Segmentation>,
    pub profiles: Vec<crate::compare::profile::Profile>,
    pub matches: BTreeMap<String, MethodMatch>,
}

/// Match this run's segments to the previous run's, before anything else reads
/// them: each segmentation gets its stable IDs and each profile its ID; names
/// are this month's, and a survivor whose name changed is marked renamed. Without a previous run, IDs are 1, 2, … in
/// label order (largest segment first). Takes the clusters and profiles and
/// gives them back identified, so no later stage sees provisional IDs.
pub fn identify(
    prev: Option<&PreviousRun>,
    ids: &[String],
    mut segs: Vec<Segmentation>,
    mut profiles: Vec<crate::compare::profile::Profile>,
) -> Identified {
    let cur_to_prev: Vec<Option<usize>> = match prev {
        Some(p) => align(p, ids),
        None => vec![None; ids.len()],
    };
    let mut matches: BTreeMap<String, MethodMatch> = BTreeMap::new();
    for seg in segs.iter_mut() {
        let pm = prev.and_then(|p| p.methods.get(seg.method.as_ref()));
        let Some(pm) = pm else {
            seg.ids = (1..=seg.k() as u32).collect();
            matches.insert(
                seg.method.to_string(),
                MethodMatch {
                    transitions: Vec::new(),
                    previous_labels: vec![None; ids.len()],
                    next_id: seg.k() as u32 + 1,
                },
            );
            continue;
        };
        let prev_labels: Vec<Option<u32>> = cur_to_prev
            .iter()
            .map(|r| r.and_then(|r| pm.ids[r]))
            .collect();
        let medians: Vec<Vec<(String, f64)>> = (0..seg.k())
            .map(|s| {
                profiles
                    .iter()
                    .find(|p| p.method == seg.method && p.segment == s)
                    .map(|p| p.medians.clone())
                    .unwrap_or_default()
            })
            .collect();
        let (new_ids, mut transitions, survived, next) =
            match_segments(pm, &prev_labels, &seg.labels, &seg.sizes, &medians);
        seg.ids = new_ids;
        // Names are this month's profile's; a survivor whose profile now
        // reads differently is said to be renamed (its ID stays).
        for p in profiles.iter().filter(|p| p.method == seg.method) {
            let id = seg.ids[p.segment];
            let Some(old) = survived.get(&id).and_then(|old| pm.names.get(old)) else {
                continue;
            };
            if *old == p.name || old.is_empty() {
                continue;
            }
            if let Some(t) = transitions
                .iter_mut()
                .find(|t| t.kind == TransitionKind::Survived && t.current == [id])
            {
                t.renamed_from = Some(old.clone());
                t.text
                    .push_str(&format!(", renamed from “{old}” to “{}”", p.name));
            }
        }
        matches.insert(
            seg.method.to_string(),
            MethodMatch {
                transitions,
                previous_labels: prev_labels,
                next_id: next,
            },
        );
    }
    for p in profiles.iter_mut() {
        if let Some(seg) = segs.iter().find(|s| s.method == p.method) {
            p.id = seg.ids[p.segment];
        }
    }
    Identified {
        segmentations: segs,
        profiles,
        matches,
    }
}

/// Month over month, once the comparison is made: migration matrices, drift,
/// tier migration and exception changes. Reads the identified segmentations
/// and the comparison; changes neither.
pub fn track(
    prev: Option<&PreviousRun>,
    ids: &[String],
    segs: &[Segmentation],
    matches: &BTreeMap<String, MethodMatch>,
    cmp: &Comparison,
) -> History {
    let n = ids.len();
    let cur_to_prev: Vec<Option<usize>> = match prev {
        Some(p) => align(p, ids),
        None => vec![None; n],
    };
    let common = cur_to_prev.iter().flatten().count() as u64;
    let prev_n = prev.map_or(0, |p| p.accounts.len()) as u64;
    let mut history = History {
        previous_as_of: prev.map(|p| p.as_of.to_string()),
        // Relative to the output folder (the months are siblings), so the
        // same month written under another --out is byte-identical.
        previous_dir: prev.map(|p| {
            p.dir
                .file_name()
                .map_or_else(|| p.as_of.to_string(), |n| n.to_string_lossy().into_owned())
        }),
        common_accounts: common,
        new_accounts: n as u64 - common,
        lost_accounts: prev_n - common,
        methods: Vec::new(),
        tiers: None,
        exceptions: None,
        track_record: None,
        next_ids: BTreeMap::new(),
        previous_segment: BTreeMap::new(),
        previous_suggested_tier: Vec::new(),
        previous_exception: Vec::new(),
        previous_first_flagged: Vec::new(),
        resolved: Vec::new(),
    };
    for seg in segs {
        let Some(m) = matches.get(seg.method.as_ref()) else {
            continue;
        };
        history.next_ids.insert(seg.method.to_string(), m.next_id);
        let Some(pm) = prev.and_then(|p| p.methods.get(seg.method.as_ref())) else {
            continue;
        };
        let migration = migration(pm, &m.previous_labels, seg, &cur_to_prev, prev_n as usize);
        let (drift_ari, moved) = drift(&m.previous_labels, seg);
        history.methods.push(MethodHistory {
            method: seg.method.clone(),
            transitions: m.transitions.clone(),
            migration,
            drift_ari,
            moved,
        });
        history
            .previous_segment
            .insert(seg.method.to_string(), m.previous_labels.clone());
    }
    if let Some(p) = prev {
        let pick = |v: &Option<Vec<Option<String>>>| -> Vec<Option<String>> {
            cur_to_prev
                .iter()
                .map(|r| r.and_then(|r| v.as_ref()?.get(r).cloned().flatten()))
                .collect()
        };
        history.previous_suggested_tier = pick(&p.suggested_tier);
        history.previous_exception = pick(&p.exception);
        history.previous_first_flagged = pick(&p.first_flagged);
        // Flagged then without the column: flagged that month at least.
        for (f, e) in history
            .previous_first_flagged
            .iter_mut()
            .zip(&history.previous_exception)
        {
            if f.is_none() && e.is_some() {
                *f = Some(p.as_of.to_string());
            }
        }
        if let Some(t) = &cmp.tiers {
            history.tiers = Some(tier_migration(
                &t.names,
                &history.previous_suggested_tier,
                &cmp.suggested,
                &cur_to_prev,
            ));
            let mut flagged_now = vec![false; n];
            for e in &cmp.exceptions {
                flagged_now[e.row] = true;
            }
            let mut ch = ExceptionChanges {
                newly_flagged: 0,
                resolved: 0,
                continuing: 0,
                new_accounts_flagged: 0,
            };
            for i in 0..n {
                let before = history.previous_exception[i].is_some();
                match (cur_to_prev[i].is_some(), before, flagged_now[i]) {
                    (false, _, true) => ch.new_accounts_flagged += 1,
                    (true, false, true) => ch.newly_flagged += 1,
                    (true, true, false) => {
                        ch.resolved += 1;
                        if history.resolved.len() < RESOLVED_LISTED {
                            history.resolved.push(resolved(&history, t, i, ids));
                        }
                    }
                    (true, true, true) => ch.continuing += 1,
                    _ => {}
                }
            }
            history.exceptions = Some(ch);
        }
    }
    history
}

/// Account `i`, flagged last month, as resolved.
fn resolved(h: &History, t: &crate::compare::CurrentTiers, i: usize, ids: &[String]) -> Resolved {
    let now = t.labels[i].map(|l| t.names[l].clone());
    let before = h.previous_suggested_tier[i].clone();
    Resolved {
        account_id: ids[i].clone(),
        previous_exception: h.previous_exception[i].clone().unwrap_or_default(),
        moved_as_suggested: now.is_some() && now == before,
        previous_suggested_tier: before,
        current_tier: now,
    }
}

#[cfg(test)]
mod tests;
