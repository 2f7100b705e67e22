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
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use crate::cluster::Segmentation;
use crate::compare::{assign, Comparison};
use crate::error::{Error, Result};
use crate::month::Month;
use crate::partition;
use crate::rundir::{read_manifest, read_parquet};
use crate::schema::{column, file, Manifest};

/// Overlap thresholds (see the module docs).
const MAJORITY: f64 = 0.5;
const MIN_OVERLAP: u64 = 3;

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
        })
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
    /// The next unused segment ID per method (IDs are never reused).
    pub next_ids: BTreeMap<String, u32>,
    /// Previous segment ID per current account, per method.
    #[serde(skip)]
    pub previous_segment: BTreeMap<String, Vec<Option<u32>>>,
    #[serde(skip)]
    pub previous_suggested_tier: Vec<Option<String>>,
    #[serde(skip)]
    pub previous_exception: Vec<Option<String>>,
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
/// them: each segmentation gets its stable IDs and each profile its ID and (for
/// a survivor) last month's name. Without a previous run, IDs are 1, 2, … in
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
        let (new_ids, transitions, survived, next) =
            match_segments(pm, &prev_labels, &seg.labels, &seg.sizes, &medians);
        seg.ids = new_ids;
        // Names carry over for survivors.
        for p in profiles.iter_mut().filter(|p| p.method == seg.method) {
            let id = seg.ids[p.segment];
            if let Some(old) = survived.get(&id) {
                if let Some(name) = pm.names.get(old) {
                    p.name = name.clone();
                }
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
        next_ids: BTreeMap::new(),
        previous_segment: BTreeMap::new(),
        previous_suggested_tier: Vec::new(),
        previous_exception: Vec::new(),
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
                    (true, true, false) => ch.resolved += 1,
                    (true, true, true) => ch.continuing += 1,
                    _ => {}
                }
            }
            history.exceptions = Some(ch);
        }
    }
    history
}

/// Match one method's segments; returns (ID per current label, transitions,
/// current ID → previous ID for survivors, next unused ID).
fn match_segments(
    pm: &PreviousMethod,
    prev_labels: &[Option<u32>],
    labels: &[usize],
    sizes: &[usize],
    profiles: &[Vec<(String, f64)>],
) -> (Vec<u32>, Vec<Transition>, BTreeMap<u32, u32>, u32) {
    let k = sizes.len();
    let ov = Overlap::new(pm, prev_labels, labels, k);
    let (heir, by_profile) = ov.heirs(pm, profiles);
    let mut next = pm.next_id.max(ov.prev_ids.last().map_or(1, |m| m + 1));
    // New IDs in label order (largest first), so they are deterministic.
    let ids: Vec<u32> = (0..k)
        .map(|c| match heir[c] {
            Some(p) => ov.prev_ids[p],
            None => {
                next += 1;
                next - 1
            }
        })
        .collect();
    let (transitions, survived) = ov.transitions(&ids, &heir, &by_profile, sizes);
    (ids, transitions, survived, next)
}

/// Last month's segments against this month's: the accounts in both of each
/// pair, and which pairs are linked (enough accounts, a majority of one side).
struct Overlap {
    /// Last month's IDs, ascending; `p` indexes them.
    prev_ids: Vec<u32>,
    /// Accounts in previous segment `p` and current label `c`.
    n: Vec<Vec<u64>>,
    /// The current labels each previous segment is linked to, and back.
    links_p: Vec<Vec<usize>>,
    links_c: Vec<Vec<usize>>,
}

impl Overlap {
    fn new(
        pm: &PreviousMethod,
        prev_labels: &[Option<u32>],
        labels: &[usize],
        k: usize,
    ) -> Overlap {
        let prev_ids: Vec<u32> = pm
            .names
            .keys()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let pi: HashMap<u32, usize> = prev_ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i))
            .collect();
        let kp = prev_ids.len();
        let mut n = vec![vec![0u64; k]; kp];
        let mut prev_common = vec![0u64; kp];
        let mut cur_common = vec![0u64; k];
        for (&c, p) in labels.iter().zip(prev_labels) {
            if let Some(&p) = p.as_ref().and_then(|p| pi.get(p)) {
                n[p][c] += 1;
                prev_common[p] += 1;
                cur_common[c] += 1;
            }
        }
        let linked = |p: usize, c: usize| -> bool {
            let v = n[p][c];
            v >= MIN_OVERLAP
                && (v as f64 >= MAJORITY * prev_common[p] as f64
                    || v as f64 >= MAJORITY * cur_common[c] as f64)
        };
        let links_p: Vec<Vec<usize>> = (0..kp)
            .map(|p| (0..k).filter(|&c| linked(p, c)).collect())
            .collect();
        let links_c: Vec<Vec<usize>> = (0..k)
            .map(|c| (0..kp).filter(|&p| linked(p, c)).collect())
            .collect();
        Overlap {
            prev_ids,
            n,
            links_p,
            links_c,
        }
    }

    fn linked(&self, p: usize, c: usize) -> bool {
        self.links_p[p].contains(&c)
    }

    /// Each current label's heir (previous index): ID-keeping pairs by the
    /// Hungarian method on overlap among linked pairs, then a profile match
    /// for what overlap leaves unplaced (flagged in the second vector).
    fn heirs(
        &self,
        pm: &PreviousMethod,
        profiles: &[Vec<(String, f64)>],
    ) -> (Vec<Option<usize>>, Vec<bool>) {
        let (k, kp) = (self.links_c.len(), self.prev_ids.len());
        let (n, links_p, links_c, prev_ids) =
            (&self.n, &self.links_p, &self.links_c, &self.prev_ids);
        let linked = |p: usize, c: usize| self.linked(p, c);
        let score: Vec<Vec<f64>> = (0..kp)
            .map(|p| {
                (0..k)
                    .map(|c| if linked(p, c) { n[p][c] as f64 } else { 0.0 })
                    .collect()
            })
            .collect();
        let mut heir: Vec<Option<usize>> = vec![None; k]; // current label → previous index
        for (p, c) in assign::maximise(&score).into_iter().enumerate() {
            if let Some(c) = c {
                if linked(p, c) {
                    heir[c] = Some(p);
                }
            }
        }
        // Profile fallback for what overlap leaves unplaced.
        let mut by_profile = vec![false; k];
        let unplaced_c: Vec<usize> = (0..k).filter(|&c| links_c[c].is_empty()).collect();
        let unplaced_p: Vec<usize> = (0..kp).filter(|&p| links_p[p].is_empty()).collect();
        if !unplaced_c.is_empty() && !unplaced_p.is_empty() {
            let prev_prof: Vec<&Vec<(String, f64)>> = prev_ids
                .iter()
                .map(|id| pm.medians.get(id).expect("every previous id has medians"))
                .collect();
            for (c, p) in profile_pairs(&prev_prof, profiles, &unplaced_p, &unplaced_c) {
                heir[c] = Some(p);
                by_profile[c] = true;
            }
        }
        (heir, by_profile)
    }

    /// What became of each segment (survived, split, merged, disappeared,
    /// emerged), and the surviving pairs (current ID → previous ID).
    fn transitions(
        &self,
        ids: &[u32],
        heir: &[Option<usize>],
        by_profile: &[bool],
        sizes: &[usize],
    ) -> (Vec<Transition>, BTreeMap<u32, u32>) {
        let (k, kp) = (self.links_c.len(), self.prev_ids.len());
        let (n, links_p, links_c, prev_ids) =
            (&self.n, &self.links_p, &self.links_c, &self.prev_ids);
        let mut transitions = Vec::new();
        let mut survived = BTreeMap::new();
        let mut done_c = vec![false; k];
        for p in 0..kp {
            let pid = prev_ids[p];
            let lp = &links_p[p];
            if lp.len() >= 2 {
                let cur: Vec<u32> = lp.iter().map(|&c| ids[c]).collect();
                transitions.push(Transition {
                    kind: TransitionKind::Split,
                    previous: vec![pid],
                    accounts: lp.iter().map(|&c| n[p][c]).sum(),
                    text: format!("segment {pid} split into {}", join_ids(&cur)),
                    current: cur,
                    matched_by: "overlap".into(),
                });
            } else if lp.len() == 1 && links_c[lp[0]].len() == 1 {
                let c = lp[0];
                done_c[c] = true;
                survived.insert(ids[c], pid);
                transitions.push(Transition {
                    kind: TransitionKind::Survived,
                    previous: vec![pid],
                    current: vec![ids[c]],
                    matched_by: "overlap".into(),
                    accounts: n[p][c],
                    text: if ids[c] == pid {
                        format!("segment {pid} survived")
                    } else {
                        format!("segment {pid} survived as {}", ids[c])
                    },
                });
            } else if lp.is_empty() {
                if let Some(c) = (0..k).find(|&c| by_profile[c] && heir[c] == Some(p)) {
                    done_c[c] = true;
                    survived.insert(ids[c], pid);
                    transitions.push(Transition {
                        kind: TransitionKind::Survived,
                        previous: vec![pid],
                        current: vec![ids[c]],
                        matched_by: "profile".into(),
                        accounts: n[p][c],
                        text: format!("segment {pid} survived (matched by profile)"),
                    });
                } else {
                    transitions.push(Transition {
                        kind: TransitionKind::Disappeared,
                        previous: vec![pid],
                        current: vec![],
                        matched_by: "overlap".into(),
                        accounts: 0,
                        text: format!("segment {pid} disappeared"),
                    });
                }
            }
        }
        for c in 0..k {
            let lc = &links_c[c];
            if lc.len() >= 2 {
                let prev: Vec<u32> = lc.iter().map(|&p| prev_ids[p]).collect();
                transitions.push(Transition {
                    kind: TransitionKind::Merged,
                    accounts: lc.iter().map(|&p| n[p][c]).sum(),
                    text: format!("segments {} merged into {}", join_ids(&prev), ids[c]),
                    previous: prev,
                    current: vec![ids[c]],
                    matched_by: "overlap".into(),
                });
            } else if lc.is_empty() && !done_c[c] {
                transitions.push(Transition {
                    kind: TransitionKind::Emerged,
                    previous: vec![],
                    current: vec![ids[c]],
                    matched_by: "overlap".into(),
                    accounts: 0,
                    text: format!("segment {} emerged ({} accounts)", ids[c], sizes[c]),
                });
            }
        }
        (transitions, survived)
    }
}

fn join_ids(ids: &[u32]) -> String {
    let s: Vec<String> = ids.iter().map(u32::to_string).collect();
    match s.len() {
        0 => String::new(),
        1 => s[0].clone(),
        _ => format!("{} and {}", s[..s.len() - 1].join(", "), s[s.len() - 1]),
    }
}

/// Mutual nearest (previous, current) pairs in scaled profile space, closer
/// than half the median distance between the previous segments.
fn profile_pairs(
    prev: &[&Vec<(String, f64)>],
    cur: &[Vec<(String, f64)>],
    unplaced_p: &[usize],
    unplaced_c: &[usize],
) -> Vec<(usize, usize)> {
    // Features present on both sides, scaled by their spread over all segments.
    let features: Vec<&str> = prev
        .first()
        .map(|p| {
            p.iter()
                .map(|(f, _)| f.as_str())
                .filter(|f| cur.iter().all(|c| c.iter().any(|(g, _)| g == f)))
                .collect()
        })
        .unwrap_or_default();
    if features.is_empty() {
        return Vec::new();
    }
    let get = |prof: &Vec<(String, f64)>, f: &str| -> f64 {
        prof.iter()
            .find(|(g, _)| g == f)
            .map_or(f64::NAN, |(_, v)| *v)
    };
    let scale: Vec<f64> = features
        .iter()
        .map(|f| {
            let v: Vec<f64> = prev
                .iter()
                .map(|p| get(p, f))
                .chain(cur.iter().map(|c| get(c, f)))
                .filter(|v| v.is_finite())
                .collect();
            let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
            let sd =
                (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt();
            if sd > 0.0 {
                sd
            } else {
                f64::INFINITY
            }
        })
        .collect();
    let dist = |a: &Vec<(String, f64)>, b: &Vec<(String, f64)>| -> f64 {
        let mut s = 0.0;
        for (f, sc) in features.iter().zip(&scale) {
            let d = (get(a, f) - get(b, f)) / sc;
            if d.is_finite() {
                s += d * d;
            }
        }
        (s / features.len() as f64).sqrt()
    };
    let mut between: Vec<f64> = Vec::new();
    for i in 0..prev.len() {
        for j in i + 1..prev.len() {
            between.push(dist(prev[i], prev[j]));
        }
    }
    if between.is_empty() {
        return Vec::new();
    }
    between.sort_by(f64::total_cmp);
    let limit = 0.5 * between[between.len() / 2];
    let nearest_p = |c: usize| {
        unplaced_p
            .iter()
            .copied()
            .min_by(|&a, &b| dist(prev[a], &cur[c]).total_cmp(&dist(prev[b], &cur[c])))
    };
    let nearest_c = |p: usize| {
        unplaced_c
            .iter()
            .copied()
            .min_by(|&a, &b| dist(prev[p], &cur[a]).total_cmp(&dist(prev[p], &cur[b])))
    };
    unplaced_c
        .iter()
        .filter_map(|&c| {
            let p = nearest_p(c)?;
            (nearest_c(p) == Some(c) && dist(prev[p], &cur[c]) < limit).then_some((c, p))
        })
        .collect()
}

fn migration(
    pm: &PreviousMethod,
    prev_labels: &[Option<u32>],
    seg: &Segmentation,
    cur_to_prev: &[Option<usize>],
    prev_n: usize,
) -> Migration {
    let previous_ids: Vec<u32> = pm.names.keys().copied().collect();
    let mut current_ids: Vec<u32> = seg.ids.clone();
    current_ids.sort_unstable();
    let pi: HashMap<u32, usize> = previous_ids
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i))
        .collect();
    let ci: HashMap<u32, usize> = current_ids
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i))
        .collect();
    let mut counts = vec![vec![0u64; current_ids.len()]; previous_ids.len()];
    let mut new = vec![0u64; current_ids.len()];
    let mut lost = vec![0u64; previous_ids.len()];
    let mut seen = vec![false; prev_n];
    for (i, &l) in seg.labels.iter().enumerate() {
        let c = ci[&seg.ids[l]];
        match (cur_to_prev[i], prev_labels[i].and_then(|p| pi.get(&p))) {
            (Some(r), Some(&p)) => {
                seen[r] = true;
                counts[p][c] += 1;
            }
            (Some(r), None) => seen[r] = true,
            (None, _) => new[c] += 1,
        }
    }
    for (r, s) in seen.iter().enumerate() {
        if !s {
            if let Some(&p) = pm.ids[r].and_then(|id| pi.get(&id)) {
                lost[p] += 1;
            }
        }
    }
    Migration {
        previous_ids,
        current_ids,
        counts,
        new,
        lost,
    }
}

/// ARI between months on common accounts, and how many changed segment ID.
fn drift(prev_labels: &[Option<u32>], seg: &Segmentation) -> (f64, u64) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut moved = 0;
    for (p, &l) in prev_labels.iter().zip(&seg.labels) {
        if let Some(p) = p {
            a.push(*p);
            b.push(l);
            if *p != seg.ids[l] {
                moved += 1;
            }
        }
    }
    if a.is_empty() {
        return (f64::NAN, 0);
    }
    let (a, _) = partition::dense(&a);
    let c = partition::Contingency::new(&a, &b);
    (partition::ari(&c), moved)
}

fn tier_migration(
    names: &[String],
    prev: &[Option<String>],
    cur: &[Option<usize>],
    cur_to_prev: &[Option<usize>],
) -> TierMigration {
    let mut tiers: Vec<String> = names.to_vec();
    tiers.push("none".into());
    let none = names.len();
    let idx = |s: &Option<String>| -> usize {
        s.as_ref()
            .and_then(|s| names.iter().position(|n| n == s))
            .unwrap_or(none)
    };
    let mut counts = vec![vec![0u64; tiers.len()]; tiers.len()];
    let mut moved = 0;
    for i in 0..cur.len() {
        if cur_to_prev[i].is_none() {
            continue;
        }
        let a = idx(&prev[i]);
        let b = cur[i].unwrap_or(none);
        counts[a][b] += 1;
        if a != b {
            moved += 1;
        }
    }
    TierMigration {
        tiers,
        counts,
        moved,
    }
}

/// One line of `strata history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub as_of: String,
    pub accounts: u64,
    pub segments: BTreeMap<String, u64>,
    pub ari_vs_tiers: BTreeMap<String, f64>,
    /// The verdict on agreement with the tiers, per method.
    pub verdict: BTreeMap<String, String>,
    pub exceptions: Option<u64>,
    pub drift_ari: BTreeMap<String, f64>,
    pub new_accounts: Option<u64>,
    pub lost_accounts: Option<u64>,
}

/// Read the headline of every committed run under `root`, oldest first.
pub fn list(root: &Path) -> Result<Vec<HistoryRow>> {
    let mut rows = Vec::new();
    for (m, dir) in crate::rundir::committed_runs(root)? {
        let v: Manifest = read_manifest(&dir)?;
        let h = v.headline;
        rows.push(HistoryRow {
            as_of: m.to_string(),
            accounts: v.accounts as u64,
            segments: h.segments.into_iter().map(|(k, n)| (k, n as u64)).collect(),
            ari_vs_tiers: h.ari_vs_tiers,
            verdict: h.verdict,
            exceptions: h.exceptions.map(|n| n as u64),
            drift_ari: h.drift_ari,
            new_accounts: h.new_accounts,
            lost_accounts: h.lost_accounts,
        });
    }
    Ok(rows)
}

/// `strata history` as a table: a column group per method the runs used
/// (registered methods in the registry's order, others after them by name).
pub fn history_text(rows: &[HistoryRow]) -> String {
    use crate::cluster::method;
    let mut names: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.segments.keys().chain(r.ari_vs_tiers.keys()))
        .map(String::as_str)
        .collect();
    let rank = |n: &str| {
        method::REGISTRY
            .iter()
            .position(|m| m.name() == n)
            .unwrap_or(usize::MAX)
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    names.dedup();
    if names.is_empty() {
        names = method::REGISTRY.iter().map(|m| m.name()).collect();
    }
    let labels: Vec<String> = names.iter().map(|n| method::label(n)).collect();
    // (header, width) per column after the as-of and account columns.
    let mut head: Vec<(String, usize)> = Vec::new();
    for l in &labels {
        head.push((l.clone(), l.chars().count().max(7)));
    }
    for l in &labels {
        let h = format!("{l}/tiers");
        let w = h.chars().count().max(16);
        head.push((h, w));
    }
    head.push(("exceptions".into(), 10));
    for l in &labels {
        let h = format!("drift ARI {l}");
        let w = h.chars().count().max(17);
        head.push((h, w));
    }
    head.push(("new".into(), 5));
    head.push(("lost".into(), 5));
    let mut out = String::from("as-of     accounts");
    for (i, (h, w)) in head.iter().enumerate() {
        if i + 1 == head.len() {
            out.push_str(&format!("  {h}\n"));
        } else {
            out.push_str(&format!("  {h:<w$}"));
        }
    }
    let f = |m: &BTreeMap<String, f64>, k: &str| {
        m.get(k).map_or("-".to_string(), |v| format!("{v:.3}"))
    };
    let u = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    // The verdict with the ARI behind it: "strong (0.514)".
    let agreement = |r: &HistoryRow, k: &str| match (r.verdict.get(k), r.ari_vs_tiers.get(k)) {
        (Some(v), Some(a)) => format!("{v} ({a:.3})"),
        (None, Some(a)) => format!("{a:.3}"),
        (Some(v), None) => v.clone(),
        (None, None) => "-".into(),
    };
    for r in rows {
        let mut cells: Vec<String> = Vec::new();
        cells.extend(names.iter().map(|n| u(r.segments.get(*n).copied())));
        cells.extend(names.iter().map(|n| agreement(r, n)));
        cells.push(u(r.exceptions));
        cells.extend(names.iter().map(|n| f(&r.drift_ari, n)));
        cells.push(u(r.new_accounts));
        cells.push(u(r.lost_accounts));
        out.push_str(&format!("{:<9} {:>8}", r.as_of, r.accounts));
        for (c, (_, w)) in cells.iter().zip(&head) {
            out.push_str(&format!("  {c:>w$}"));
        }
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no committed runs)\n");
    }
    out
}

#[cfg(test)]
mod tests;
