//! Matching this month's segments to last month's: overlap links, the
//! Hungarian pairing that keeps IDs, the profile fallback, and what became
//! of each segment (see the module doc, [`super`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{PreviousMethod, Transition, TransitionKind};
use crate::compare::assign;

/// Overlap thresholds (see the module docs).
pub(super) const MAJORITY: f64 = 0.5;

pub(super) const MIN_OVERLAP: u64 = 3;

/// Match one method's segments; returns (ID per current label, transitions,
/// current ID → previous ID for survivors, next unused ID).
pub(super) fn match_segments(
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
pub(super) struct Overlap {
    /// Last month's IDs, ascending; `p` indexes them.
    pub(super) prev_ids: Vec<u32>,
    /// Accounts in previous segment `p` and current label `c`.
    pub(super) n: Vec<Vec<u64>>,
    /// The current labels each previous segment is linked to, and back.
    pub(super) links_p: Vec<Vec<usize>>,
    pub(super) links_c: Vec<Vec<usize>>,
}

impl Overlap {
    pub(super) fn new(
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

    pub(super) fn linked(&self, p: usize, c: usize) -> bool {
        self.links_p[p].contains(&c)
    }

    /// Each current label's heir (previous index): ID-keeping pairs by the
    /// Hungarian method on overlap among linked pairs, then a profile match
    /// for what overlap leaves unplaced (flagged in the second vector).
    pub(super) fn heirs(
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
    pub(super) fn transitions(
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
                    renamed_from: None,
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
                    renamed_from: None,
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
                        renamed_from: None,
                        accounts: n[p][c],
                        text: format!("segment {pid} survived (matched by profile)"),
                    });
                } else {
                    transitions.push(Transition {
                        kind: TransitionKind::Disappeared,
                        previous: vec![pid],
                        current: vec![],
                        matched_by: "overlap".into(),
                        renamed_from: None,
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
                    renamed_from: None,
                });
            } else if lc.is_empty() && !done_c[c] {
                transitions.push(Transition {
                    kind: TransitionKind::Emerged,
                    previous: vec![],
                    current: vec![ids[c]],
                    matched_by: "overlap".into(),
                    renamed_from: None,
                    accounts: 0,
                    text: format!("segment {} emerged ({} accounts)", ids[c], sizes[c]),
                });
            }
        }
        (transitions, survived)
    }
}

pub(super) fn join_ids(ids: &[u32]) -> String {
    let s: Vec<String> = ids.iter().map(u32::to_string).collect();
    match s.len() {
        0 => String::new(),
        1 => s[0].clone(),
        _ => format!("{} and {}", s[..s.len() - 1].join(", "), s[s.len() - 1]),
    }
}

/// Mutual nearest (previous, current) pairs in scaled profile space, closer
/// than half the median distance between the previous segments.
pub(super) fn profile_pairs(
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
