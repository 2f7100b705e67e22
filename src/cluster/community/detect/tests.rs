//! Reference values on the classic graphs in tests/data (see its README for sources).

use super::*;
use crate::cluster::community::graph::all_connected;
use crate::partition;
use rand::Rng;

/// Load `<name>_edges.tsv` and the ground-truth column of `<name>_nodes.tsv`.
fn load(name: &str, truth_col: &str) -> (Csr, Vec<usize>) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let nodes = std::fs::read_to_string(dir.join(format!("{name}_nodes.tsv"))).unwrap();
    let mut lines = nodes.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = header.iter().position(|h| *h == truth_col).unwrap();
    let mut ids = std::collections::HashMap::new();
    let mut truth = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        ids.insert(f[0].to_string(), ids.len() as u32);
        truth.push(f[col].to_string());
    }
    let edges_text = std::fs::read_to_string(dir.join(format!("{name}_edges.tsv"))).unwrap();
    let edges: Vec<(u32, u32, f64)> = edges_text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (ids[f[0]], ids[f[1]], 1.0)
        })
        .collect();
    (
        Csr::from_edges(ids.len(), &edges),
        partition::dense(&truth).0,
    )
}

const KARATE_OPT: f64 = 0.4197896120973046;

#[test]
fn karate_leiden_reaches_the_optimum() {
    let (g, _) = load("karate", "faction_value");
    assert_eq!((g.n(), g.edges()), (34, 78));
    let best = (0..5)
        .map(|s| modularity(&g, &leiden(&g, 1.0, s, 10), 1.0))
        .fold(0.0, f64::max);
    assert!(
        (best - KARATE_OPT).abs() < 1e-7,
        "best Leiden modularity {best}"
    );
}

#[test]
fn karate_louvain_best_reaches_optimum_and_median_is_high() {
    let (g, _) = load("karate", "faction_value");
    let mut qs: Vec<f64> = (0..21)
        .map(|s| modularity(&g, &louvain(&g, 1.0, s), 1.0))
        .collect();
    qs.sort_by(f64::total_cmp);
    assert!((qs[20] - KARATE_OPT).abs() < 1e-7, "best {}", qs[20]);
    assert!(qs[10] >= 0.418, "median {}", qs[10]);
}

#[test]
fn karate_other_resolutions() {
    let (g, _) = load("karate", "faction_value");
    for (gamma, expected) in [(0.5, 0.6217948717948718), (2.0, 0.16452991452991447)] {
        let best = (0..5)
            .map(|s| modularity(&g, &leiden(&g, gamma, s, 10), gamma))
            .fold(f64::MIN, f64::max);
        assert!((best - expected).abs() < 1e-7, "γ = {gamma}: {best}");
    }
}

#[test]
fn football_communities_match_conferences() {
    let (g, truth) = load("football", "conference_value");
    let labels = leiden(&g, 1.0, 1, 10);
    let nmi = partition::agreement(&truth, &labels).nmi;
    assert!(nmi >= 0.85, "NMI {nmi}");
    let q = modularity(&g, &labels, 1.0);
    assert!(q >= 0.60, "modularity {q}");
}

#[test]
fn dolphins_louvain_is_near_igraph() {
    let (g, _) = load("dolphins", "split_value");
    let mut qs: Vec<f64> = (0..11)
        .map(|s| modularity(&g, &louvain(&g, 1.0, s), 1.0))
        .collect();
    qs.sort_by(f64::total_cmp);
    // igraph's median over shuffled runs is 0.5196.
    assert!(qs[5] >= 0.51, "median {}", qs[5]);
}

#[test]
fn every_detected_community_is_connected_and_big_enough() {
    for name in ["karate", "football", "dolphins"] {
        let col = match name {
            "karate" => "faction_value",
            "football" => "conference_value",
            _ => "split_value",
        };
        let (g, _) = load(name, col);
        for alg in [Algorithm::Louvain, Algorithm::Leiden] {
            for seed in 0..5 {
                let (labels, _) = detect(&g, alg, 1.0, seed, (3, usize::MAX), 10);
                assert!(all_connected(&g, &labels), "{name} {alg:?} {seed}");
                let k = labels.iter().max().unwrap() + 1;
                for c in 0..k {
                    assert!(labels.iter().filter(|&&l| l == c).count() >= 3);
                }
            }
        }
    }
}

#[test]
fn small_communities_merge_into_their_strongest_neighbour() {
    // A 4-clique {0..3} with a pendant 4 attached to 0, and a triangle {5,6,7} linked to 3.
    let e = [
        (0, 1, 1.0),
        (0, 2, 1.0),
        (0, 3, 1.0),
        (1, 2, 1.0),
        (1, 3, 1.0),
        (2, 3, 1.0),
        (0, 4, 1.0),
        (5, 6, 1.0),
        (6, 7, 1.0),
        (5, 7, 1.0),
        (3, 5, 0.5),
    ];
    let g = Csr::from_edges(8, &e);
    let (m, merged) = merge_small(&g, &[0, 0, 0, 0, 1, 2, 2, 2], 2, usize::MAX);
    assert_eq!(merged, 1);
    assert_eq!(m, vec![0, 0, 0, 0, 0, 1, 1, 1]);
    // At most two communities: the smallest left (the three) joins the four.
    let (m, merged) = merge_small(&g, &[0, 0, 0, 0, 1, 2, 2, 2], 2, 2);
    assert_eq!(merged, 1);
    assert_eq!(m, vec![0, 0, 0, 0, 0, 1, 1, 1]);
    let (m, merged) = merge_small(&g, &[0, 0, 0, 0, 1, 2, 2, 2], 1, 1);
    assert_eq!(merged, 2);
    assert_eq!(m, vec![0; 8]);
}

#[test]
fn same_seed_same_labels_and_relabelling_invariance() {
    let (g, _) = load("football", "conference_value");
    assert_eq!(leiden(&g, 1.0, 3, 10), leiden(&g, 1.0, 3, 10));
    assert_eq!(louvain(&g, 1.0, 3), louvain(&g, 1.0, 3));
}

#[test]
fn warm_started_leiden_improves_on_its_start() {
    // From the two factions (a good but not optimal start) Leiden must climb
    // to at least the start's modularity and near the optimum; from an
    // arbitrary coarse start it must still improve.
    let (g, truth) = load("karate", "faction_value");
    let q_truth = modularity(&g, &truth, 1.0);
    let warm = leiden_from(&g, &truth, 1.0, 1, 10);
    let q_warm = modularity(&g, &warm, 1.0);
    assert!(q_warm >= q_truth - 1e-12, "{q_warm} < start {q_truth}");
    assert!(q_warm > 0.40, "warm start stuck at {q_warm}");
    let halves: Vec<usize> = (0..g.n()).map(|v| v * 2 / g.n()).collect();
    let q_halves = modularity(&g, &halves, 1.0);
    let from_halves = modularity(&g, &leiden_from(&g, &halves, 1.0, 1, 10), 1.0);
    assert!(
        from_halves > q_halves + 0.05,
        "{from_halves} vs start {q_halves}"
    );
    assert!(from_halves > 0.39, "from halves: {from_halves}");
}

/// A two-level planted partition: `blocks` blocks of `subs` sub-blocks of
/// `size` nodes; each node draws `d_sub` edges inside its sub-block, `d_block`
/// inside its block and `d_out` anywhere (unit weights, duplicates summed).
pub(in crate::cluster::community) fn nested_planted(
    blocks: usize,
    subs: usize,
    size: usize,
    seed: u64,
) -> Csr {
    let (d_sub, d_block, d_out) = (6, 3, 1);
    let n = blocks * subs * size;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut edges = Vec::new();
    for v in 0..n {
        let sub = v / size;
        let block = v / (size * subs);
        let mut add = |lo: usize, len: usize, d: usize, rng: &mut Xoshiro256PlusPlus| {
            for _ in 0..d {
                let u = lo + rng.gen_range(0..len);
                if u != v {
                    edges.push((v as u32, u as u32, 1.0));
                }
            }
        };
        add(sub * size, size, d_sub, &mut rng);
        add(block * size * subs, size * subs, d_block, &mut rng);
        add(0, n, d_out, &mut rng);
    }
    Csr::from_edges(n, &edges)
}

#[test]
fn a_sweep_resolution_near_the_main_one_is_about_as_good_as_a_fresh_run() {
    // Coarser (blocks) and finer (sub-blocks) structure than γ = 1 picks:
    // detect_near must reach nearly a fresh run's modularity at each γ,
    // while working on a much smaller graph than g.
    let g = nested_planted(12, 4, 60, 7);
    let limits = (1, usize::MAX);
    let main = detect_run(&g, Algorithm::Leiden, 1.0, 3, limits, 10, None);
    let communities = main.raw.iter().max().unwrap() + 1;
    let (_, k) = groups_at_least(
        main.levels.as_ref().unwrap(),
        g.n(),
        communities * NEAR_GROUPS_PER_COMMUNITY,
    );
    assert!(
        k >= communities * NEAR_GROUPS_PER_COMMUNITY && k * 2 < g.n(),
        "{k} groups for {communities} communities of {} nodes",
        g.n()
    );
    for gamma in [0.3, 0.5, 2.0, 4.0, 8.0] {
        let near = detect_near(&g, &main, gamma, 3, limits, 10);
        assert!(all_connected(&g, &near.labels));
        let q_near = modularity(&g, &near.labels, gamma);
        let fresh = detect_run(&g, Algorithm::Leiden, gamma, 3, limits, 10, None);
        let q_fresh = modularity(&g, &fresh.labels, gamma);
        assert!(
            q_near >= q_fresh - 0.01 * q_fresh.abs(),
            "γ {gamma}: near {q_near} vs fresh {q_fresh}"
        );
    }
}

#[test]
fn groups_at_least_takes_the_deepest_level_with_enough_groups() {
    // 6 nodes → 4 groups → 2 groups.
    let levels = vec![vec![0, 0, 1, 2, 3, 3], vec![0, 1, 1, 0]];
    assert_eq!(groups_at_least(&levels, 6, 2), (vec![0, 0, 1, 1, 0, 0], 2));
    assert_eq!(groups_at_least(&levels, 6, 3), (vec![0, 0, 1, 2, 3, 3], 4));
    assert_eq!(groups_at_least(&levels, 6, 5), ((0..6).collect(), 6));
    assert_eq!(groups_at_least(&[], 3, 1), (vec![0, 1, 2], 3));
}

/// Aggregation as it was first written: every edge between two communities
/// into one list, which [`Csr::from_edges`] sorts and merges.
fn aggregate_by_edge_list(g: &Csr, memb: &[usize], k: usize) -> Csr {
    let mut loops = vec![0.0; k];
    let mut edges = Vec::new();
    for i in 0..g.n() {
        let c = memb[i];
        loops[c] += g.loops[i];
        for (j, w) in g.neighbors(i) {
            let d = memb[j];
            if c == d {
                loops[c] += w;
            } else if c < d {
                edges.push((c as u32, d as u32, w));
            }
        }
    }
    let mut out = Csr::from_edges(k, &edges);
    out.loops = loops;
    out
}

/// Bit-for-bit equality (`PartialEq` on f64 would let -0.0 pass for 0.0).
fn same_bits(a: &Csr, b: &Csr) -> bool {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    a.offsets == b.offsets
        && a.targets == b.targets
        && bits(&a.weights.to_vec()) == bits(&b.weights.to_vec())
        && bits(&a.loops) == bits(&b.loops)
}

#[test]
fn aggregation_gives_the_edge_list_route_to_the_bit() {
    use rand::{Rng, SeedableRng};
    // Karate club by its factions, and by the members' own numbers (every
    // node alone: the graph itself), then random graphs with zero and
    // non-integer weights, loops and communities of every size, some empty.
    let (karate, faction) = load("karate", "faction_value");
    let (f, kf) = renumber(&faction);
    assert!(same_bits(
        &aggregate(&karate, &f, kf),
        &aggregate_by_edge_list(&karate, &f, kf)
    ));
    let alone: Vec<usize> = (0..karate.n()).collect();
    assert!(same_bits(&aggregate(&karate, &alone, karate.n()), &karate));
    for seed in 0..40u64 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let n = rng.gen_range(1..400);
        let edges: Vec<(u32, u32, f64)> = (0..rng.gen_range(0..n * 6))
            .map(|_| {
                let w = match rng.gen_range(0..4) {
                    0 => 0.0,
                    1 => 1.0,
                    _ => rng.gen::<f64>() * 3.0,
                };
                (rng.gen_range(0..n) as u32, rng.gen_range(0..n) as u32, w)
            })
            .collect();
        let g = Csr::from_edges(n, &edges);
        let k = rng.gen_range(1..=n);
        // Label k - 1 unused now and then: an empty community.
        let top = if k > 1 && seed % 3 == 0 { k - 1 } else { k };
        let memb: Vec<usize> = (0..n).map(|_| rng.gen_range(0..top)).collect();
        let slow = aggregate_by_edge_list(&g, &memb, k);
        // The rows are written in one range per thread: any count gives the same.
        for threads in [1, 2, 5] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            let fast = pool.install(|| aggregate(&g, &memb, k));
            assert!(
                same_bits(&fast, &slow),
                "seed {seed}: n {n}, k {k}, {threads} threads"
            );
            assert_eq!(fast.total_weight().to_bits(), slow.total_weight().to_bits());
        }
    }
}

#[test]
fn refinement_stays_inside_communities_and_ignores_the_thread_count() {
    // Sub-blocks planted inside blocks; the blocks as the partition (and a
    // partition cutting across them): every refined community lies inside one
    // community and is connected, merges happen, and the labels are the same
    // on 1, 2 and 5 threads.
    let g = nested_planted(6, 5, 40, 9);
    let n = g.n();
    let blocks: Vec<usize> = (0..n).map(|v| v / 200).collect();
    let striped: Vec<usize> = (0..n).map(|v| (v / 7) % 9).collect();
    for part in [&blocks, &striped] {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
            pool.install(|| refine::refine(&g, part, 1.0, 0.01, &mut rng))
        };
        let one = run(1);
        for threads in [2, 5] {
            assert_eq!(run(threads), one, "{threads} threads");
        }
        let (dense, kr) = renumber(&one);
        assert!(kr < n * 4 / 5, "{kr} refined communities of {n} nodes");
        for v in 0..n {
            assert_eq!(part[one[v]], part[v], "node {v} refined across communities");
        }
        assert!(all_connected(&g, &dense));
    }
}
