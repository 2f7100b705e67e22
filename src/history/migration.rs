//! Migration between the two months: per method the previous × current
//! matrix and the drift, and the suggested tiers' migration.

use std::collections::HashMap;

use super::{Migration, PreviousMethod, TierMigration};
use crate::cluster::Segmentation;
use crate::partition;

pub(super) fn migration(
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
pub(super) fn drift(prev_labels: &[Option<u32>], seg: &Segmentation) -> (f64, u64) {
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

pub(super) fn tier_migration(
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
