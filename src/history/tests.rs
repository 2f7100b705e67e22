use super::matching::match_segments;
use super::migration::drift;
use super::*;
use std::collections::BTreeSet;

fn prev_method(ids: &[u32], medians: &[(u32, f64)]) -> PreviousMethod {
    let mut names = BTreeMap::new();
    let mut med = BTreeMap::new();
    for &(id, m) in medians {
        names.insert(id, format!("old {id}"));
        med.insert(
            id,
            vec![("arr".to_string(), m), ("seats".to_string(), m / 10.0)],
        );
    }
    PreviousMethod {
        ids: ids.iter().map(|&i| Some(i)).collect(),
        names,
        medians: med,
        next_id: medians.iter().map(|m| m.0).max().unwrap_or(0) + 1,
    }
}

fn sizes(labels: &[usize]) -> Vec<usize> {
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut s = vec![0; k];
    for &l in labels {
        s[l] += 1;
    }
    s
}

fn profiles(ms: &[f64]) -> Vec<Vec<(String, f64)>> {
    ms.iter()
        .map(|&m| vec![("arr".to_string(), m), ("seats".to_string(), m / 10.0)])
        .collect()
}

fn kinds(t: &[Transition]) -> Vec<(TransitionKind, Vec<u32>, Vec<u32>)> {
    let mut v: Vec<_> = t
        .iter()
        .map(|t| (t.kind, t.previous.clone(), t.current.clone()))
        .collect();
    v.sort_by_key(|x| format!("{x:?}"));
    v
}

fn rep(blocks: &[(u32, usize)]) -> Vec<u32> {
    blocks
        .iter()
        .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
        .collect()
}

#[test]
fn relabelled_segments_keep_their_ids() {
    // Last month: IDs 4 (20 accounts) and 9 (10). This month the same groups
    // come out with labels swapped; IDs must follow the accounts, not labels.
    let prev = rep(&[(4, 20), (9, 10)]);
    let pm = prev_method(&prev, &[(4, 100.0), (9, 500.0)]);
    let labels: Vec<usize> = prev.iter().map(|&p| if p == 4 { 1 } else { 0 }).collect();
    let prev_labels: Vec<Option<u32>> = prev.iter().map(|&p| Some(p)).collect();
    let (ids, t, survived, next) = match_segments(
        &pm,
        &prev_labels,
        &labels,
        &sizes(&labels),
        &profiles(&[500.0, 100.0]),
    );
    assert_eq!(ids, vec![9, 4]);
    assert_eq!(next, 10);
    assert_eq!(survived.len(), 2);
    assert!(t.iter().all(|t| t.kind == TransitionKind::Survived));
}

#[test]
fn split_merge_emerge_disappear() {
    // Previous: 1 (40), 2 (20), 3 (20), 4 (12).
    // Current: 1 splits into labels 0 (20) and 3 (20); 2 and 3 merge into
    // label 1 (40); 4's accounts scatter 4/4/4 over labels 0, 1, 3; label 2 is
    // 30 new accounts with a profile unlike any old segment.
    let mut prev_labels = Vec::new();
    let mut labels = Vec::new();
    let mut push = |p: Option<u32>, c: usize, n: usize| {
        for _ in 0..n {
            prev_labels.push(p);
            labels.push(c);
        }
    };
    push(Some(1), 0, 20);
    push(Some(1), 3, 20);
    push(Some(2), 1, 20);
    push(Some(3), 1, 20);
    push(Some(4), 0, 4);
    push(Some(4), 1, 4);
    push(Some(4), 3, 4);
    push(None, 2, 30);
    let pm = prev_method(
        &prev_labels.iter().flatten().copied().collect::<Vec<_>>(),
        &[(1, 100.0), (2, 200.0), (3, 300.0), (4, 400.0)],
    );
    let (ids, t, _, next) = match_segments(
        &pm,
        &prev_labels,
        &labels,
        &sizes(&labels),
        &profiles(&[100.0, 250.0, 5000.0, 100.0]),
    );
    // Label 0 or 3 keeps 1 (equal halves: Hungarian picks one), label 1 keeps
    // 2 or 3, label 2 is new.
    assert!(ids[0] == 1 || ids[3] == 1, "{ids:?}");
    assert!(ids[1] == 2 || ids[1] == 3, "{ids:?}");
    assert!(ids[2] >= 5, "new IDs continue past the old ones: {ids:?}");
    let unique: BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 4, "no ID given twice: {ids:?}");
    assert_eq!(next, 7);
    let k = kinds(&t);
    let has = |kind: TransitionKind| k.iter().filter(|x| x.0 == kind).count();
    assert_eq!(has(TransitionKind::Split), 1, "{k:?}");
    assert_eq!(has(TransitionKind::Merged), 1, "{k:?}");
    assert_eq!(has(TransitionKind::Emerged), 1, "{k:?}");
    assert_eq!(has(TransitionKind::Disappeared), 1, "{k:?}");
    assert_eq!(has(TransitionKind::Survived), 0, "{k:?}");
    let merged = t.iter().find(|t| t.kind == TransitionKind::Merged).unwrap();
    assert_eq!(merged.previous, vec![2, 3]);
    let gone = t
        .iter()
        .find(|t| t.kind == TransitionKind::Disappeared)
        .unwrap();
    assert_eq!(gone.previous, vec![4]);
}

#[test]
fn profile_fallback_pairs_a_segment_of_new_accounts() {
    // Segment 7 lost all its accounts; this month a segment of new accounts
    // with almost the same profile appears: it inherits 7 by profile.
    let prev_labels: Vec<Option<u32>> = rep(&[(5, 30), (6, 30)])
        .into_iter()
        .map(Some)
        .chain(std::iter::repeat_n(None, 25))
        .collect();
    let labels: Vec<usize> = rep(&[(0, 30), (1, 30), (2, 25)])
        .into_iter()
        .map(|v| v as usize)
        .collect();
    let pm = prev_method(
        &rep(&[(5, 30), (6, 30), (7, 25)]),
        &[(5, 100.0), (6, 1000.0), (7, 3000.0)],
    );
    let (ids, t, survived, _) = match_segments(
        &pm,
        &prev_labels,
        &labels,
        &sizes(&labels),
        &profiles(&[100.0, 1000.0, 3050.0]),
    );
    assert_eq!(ids, vec![5, 6, 7]);
    assert_eq!(survived.get(&7), Some(&7));
    let by_profile: Vec<_> = t.iter().filter(|t| t.matched_by == "profile").collect();
    assert_eq!(by_profile.len(), 1);
    // Far away in profile: a new ID instead.
    let (ids, _, _, _) = match_segments(
        &pm,
        &prev_labels,
        &labels,
        &sizes(&labels),
        &profiles(&[100.0, 1000.0, 90_000.0]),
    );
    assert_eq!(ids[2], 8);
}

#[test]
fn drift_is_one_for_identical_partitions_under_relabelling() {
    let prev: Vec<Option<u32>> = rep(&[(3, 10), (8, 10), (2, 5)])
        .into_iter()
        .map(Some)
        .collect();
    let labels: Vec<usize> = rep(&[(1, 10), (0, 10), (2, 5)])
        .into_iter()
        .map(|v| v as usize)
        .collect();
    let seg = Segmentation {
        method: "kmeans".into(),
        sizes: sizes(&labels),
        labels,
        ids: vec![8, 3, 2],
        seed: 0,
        seconds: 0.0,
        details: crate::cluster::Details::KMeans(crate::cluster::kmeans::KMeansDetails {
            inertia: 0.0,
            chosen_by: String::new(),
            k_scores: vec![],
            centroids: vec![],
            choose_seconds: 0.0,
        }),
        stability: None,
        neighbours: None,
        reuse: None,
    };
    let (ari, moved) = drift(&prev, &seg);
    assert!((ari - 1.0).abs() < 1e-12);
    assert_eq!(moved, 0);
}
