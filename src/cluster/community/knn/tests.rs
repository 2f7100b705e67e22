use super::*;
use super::{distance::*, rp_tree::*, weights::*};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

fn blobs(n: usize, d: usize, centers: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 1.0).unwrap();
    let c: Vec<Vec<f32>> = (0..centers)
        .map(|_| (0..d).map(|_| rng.gen_range(-8.0..8.0)).collect())
        .collect();
    let mut x = Vec::with_capacity(n * d);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let l = i % centers;
        labels.push(l);
        for j in 0..d {
            x.push(c[l][j] + normal.sample(&mut rng));
        }
    }
    (x, labels)
}

/// The random-projection tree as first written, the reference for
/// [`rp_tree`]: lists of indices, each node's side gathered from the whole
/// matrix, the same rule and the same draws.
fn reference_leaves(
    x: &[f32],
    d: usize,
    points: Vec<u32>,
    leaf: usize,
    seed: u64,
    depth: usize,
) -> Vec<Vec<u32>> {
    if points.len() <= leaf.max(1) {
        return vec![points];
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let p = points;
    let row = |q: u32| &x[q as usize * d..(q as usize + 1) * d];
    let (mut left, mut right) = (Vec::new(), Vec::new());
    if depth < MAX_DEPTH {
        let a = rng.gen_range(0..p.len());
        let mut b = rng.gen_range(0..p.len() - 1);
        if b >= a {
            b += 1;
        }
        let (xa, xb) = (row(p[a]), row(p[b]));
        for &q in &p {
            let side = dist(row(q), xb) - dist(row(q), xa);
            if side < 0.0 || (side == 0.0 && rng.gen::<bool>()) {
                left.push(q);
            } else {
                right.push(q);
            }
        }
    }
    if left.is_empty() || right.is_empty() {
        let mut all = p;
        let mid = all.len() / 2;
        for i in 0..mid {
            let j = rng.gen_range(i..all.len());
            all.swap(i, j);
        }
        right = all.split_off(mid);
        left = all;
    }
    let (ls, rs) = (mix(seed ^ 0x5151), mix(seed ^ 0xa2a2));
    let mut out = reference_leaves(x, d, left, leaf, ls, depth + 1);
    out.extend(reference_leaves(x, d, right, leaf, rs, depth + 1));
    out
}

#[test]
fn partitioned_tree_has_the_reference_leaves_at_any_thread_count() {
    // Blobs large enough for the parallel paths (halves on two threads,
    // sides in chunks), points with many duplicates (degenerate
    // hyperplanes, halved at random), and exponentially spaced points on
    // a line (very unbalanced splits, down to leaves of one).
    let (blobs, _) = blobs(70_000, 5, 6, 11);
    let dups: Vec<f32> = (0..3_000).flat_map(|i| [(i % 3) as f32, 1.0]).collect();
    let line: Vec<f32> = (0..300).map(|i| 1.1f32.powi(i % 200)).collect();
    for (x, d, leaf) in [
        (&blobs, 5, 64),
        (&blobs, 5, 32),
        (&dups, 2, 8),
        (&line, 1, 1),
    ] {
        let n = x.len() / d;
        let want = reference_leaves(x, d, (0..n as u32).collect(), leaf, 99, 0);
        for threads in [1, 3] {
            let (t, _) = on_threads(threads, || {
                rp_tree(TreeBufs::over(x.clone(), d), d, leaf, 99)
            });
            assert_eq!(t.sizes, want.iter().map(Vec::len).collect::<Vec<_>>());
            assert_eq!(t.ids, want.concat());
            for (slot, &i) in t.ids.iter().enumerate() {
                let i = i as usize;
                assert_eq!(t.rows[slot * d..(slot + 1) * d], x[i * d..(i + 1) * d]);
            }
        }
    }
}

#[test]
fn f32_copy_is_row_major_for_any_layout_and_size() {
    // Sizes around the 4096-row chunks, and a transposed (column-major) view.
    for n in [0, 1, 4095, 4096, 4097, 9000] {
        let a = ndarray::Array2::from_shape_fn((n, 3), |(i, j)| i as f64 * 10.0 + j as f64);
        let want: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        assert_eq!(to_f32(a.view()), want, "{n} rows");
        let t = a.t().to_owned();
        assert_eq!(to_f32(t.t()), want, "{n} rows, column-major");
    }
    assert!(to_f32(ndarray::Array2::<f64>::zeros((5, 0)).view()).is_empty());
}

#[test]
fn avx2_distance_has_the_portable_bits() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        for len in 1..70 {
            let a: Vec<f32> = (0..len).map(|_| rng.gen_range(-50.0..50.0)).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.gen_range(-50.0..50.0)).collect();
            // SAFETY: AVX2 is available (checked above).
            let fast = unsafe { dist_avx2(&a, &b) };
            assert_eq!(fast.to_bits(), dist(&a, &b).to_bits(), "length {len}");
        }
    }
}

#[test]
fn padded_jaccard_matches_the_sorted_merge() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
    for _ in 0..500 {
        let mut row = |len: usize| {
            let mut r: Vec<u32> = (0..len).map(|_| rng.gen_range(0..40)).collect();
            r.sort_unstable();
            r.dedup();
            // Any order, padding anywhere (a short kNN list leaves
            // padding before the point itself).
            let mut padded = r.clone();
            padded.reverse();
            padded.insert(len % 5, u32::MAX);
            padded.resize(24, u32::MAX);
            (r, padded)
        };
        let ((a, pa), (b, pb)) = (row(16), row(12));
        assert_eq!(
            padded_jaccard(&pa, &pb),
            crate::partition::jaccard_sorted(&a, &b)
        );
    }
}

#[test]
fn exact_neighbours_of_a_line() {
    let x: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let knn = exact(&x, 10, 1, 2);
    assert_eq!(knn.row(0), &[1, 2]);
    // Ties broken by index: 5's neighbours at distance 1 are 4 and 6.
    assert_eq!(knn.row(5), &[4, 6]);
}

#[test]
fn lane_kernel_is_the_portable_one() {
    // Every n mod 8 and d mod 8 (tails of both), duplicated rows (ties
    // broken by index) and a constant column: the same lists, to the bit.
    for (n, d) in [(9, 1), (30, 7), (41, 8), (64, 13), (100, 25), (77, 40)] {
        let (mut x, _) = blobs(n, d, 3, n as u64);
        x.copy_within(0..d, 5 * d);
        for r in 0..n {
            x[r * d] = 1.5;
        }
        for k in [1, 5, 15] {
            let fast = exact(&x, n, d, k);
            let kk = fast.k;
            for i in 0..n {
                let slow = exact::portable_row(&x, n, d, kk, i);
                let (idx, dist): (Vec<u32>, Vec<f32>) = slow.iter().map(|e| (e.1, e.0)).unzip();
                assert_eq!(fast.row(i), &idx[..], "n {n} d {d} k {k} row {i}");
                let got = &fast.dist[i * kk..(i + 1) * kk];
                assert!(got
                    .iter()
                    .zip(&dist)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }
}

#[test]
fn probes_neighbours_are_the_exact_ones() {
    // Several blocks of points with a short last one, tails of d, duplicated
    // rows (ties broken by index): each probe's list and distances are the
    // exact search's, to the bit.
    for (n, d) in [(5000, 25), (2100, 7), (300, 8)] {
        let (mut x, _) = blobs(n, d, 4, n as u64 + d as u64);
        x.copy_within(0..d, 2049 * d % (n * d));
        let probes = exact::probe_points(n);
        let got = exact::probe_neighbours(&x, d, &probes, 15);
        for (list, &p) in got.iter().zip(&probes) {
            let want = exact::portable_row(&x, n, d, 15, p as usize);
            assert_eq!(list.len(), want.len());
            for (a, b) in list.iter().zip(&want) {
                assert_eq!(
                    (a.0.to_bits(), a.1),
                    (b.0.to_bits(), b.1),
                    "n {n} d {d} probe {p}"
                );
            }
        }
    }
}

#[test]
fn a_subset_of_deep_lists_is_the_exact_search() {
    // Subsets of 80% (the stability runs' share: lists found in the deep
    // ones) and of 10% (most points measured again), with duplicated rows:
    // the same lists and distances as an exact search on the subset.
    let (n, d) = (600, 9);
    let (mut x, _) = blobs(n, d, 4, 11);
    x.copy_within(0..2 * d, 7 * d);
    let pool =
        ndarray::Array2::from_shape_vec((n, d), x.iter().map(|&v| v as f64).collect()).unwrap();
    let deep = Deep::new(pool.view(), 15);
    // And every point (what the fit reads when the runs' pool is all).
    for (share, seed) in [(0.8, 1u64), (0.1, 2), (1.0, 3)] {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut pick: Vec<usize> = (0..n).filter(|_| rng.gen::<f64>() < share).collect();
        pick.sort_unstable();
        let sub: Vec<f32> = pick
            .iter()
            .flat_map(|&p| x[p * d..(p + 1) * d].to_vec())
            .collect();
        let truth = exact(&sub, pick.len(), d, 15);
        let got = deep.of(&pick, 15);
        assert_eq!(got.method, truth.method);
        assert_eq!(got.idx, truth.idx, "share {share}");
        assert!(got
            .dist
            .iter()
            .zip(&truth.dist)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

#[test]
fn nn_descent_recall_is_high() {
    let (x, _) = blobs(6000, 16, 10, 3);
    let cfg = GraphConfig::default();
    let approx = nn_descent(x.clone(), 6000, 16, 15, &cfg, 1);
    let truth = exact(&x, 6000, 16, 15);
    let r = recall(&approx, &truth);
    assert!(r > 0.95, "recall {r}");
}

#[test]
fn nn_descent_measures_its_recall_and_grows_its_lists_when_short() {
    // 32 isotropic dimensions per blob: hard for NN-descent. One round
    // leaves it short of the target, so it must grow its lists and go on.
    let (n, d) = (8000, 32);
    let (x, _) = blobs(n, d, 4, 5);
    let truth = exact(&x, n, d, 15);
    let short = GraphConfig {
        max_rounds: 1,
        ..Default::default()
    };
    let approx = nn_descent(x.clone(), n, d, 15, &short, 1);
    let r = recall(&approx, &truth);
    let estimate = approx.recall.expect("NN-descent reports its recall");
    assert!(
        (estimate - r).abs() < 0.05,
        "estimate {estimate} vs recall {r}"
    );
    assert!(
        approx.rounds == 2,
        "a second pass ran: {} rounds",
        approx.rounds
    );
    assert_eq!(approx.k, 15);
    // Lists of distinct neighbours, without the point itself.
    let by_row = approx.in_account_order();
    for i in 0..n {
        let row = by_row.row(i);
        assert!(!row.contains(&(i as u32)));
        let mut u = row.to_vec();
        u.sort_unstable();
        u.dedup();
        assert_eq!(u.len(), 15);
    }
    // With enough rounds it reaches the target, and says so.
    let full = nn_descent(x.clone(), n, d, 15, &GraphConfig::default(), 1);
    let rf = recall(&full, &truth);
    assert!(
        rf >= RECALL_TARGET - 0.03 && rf > r,
        "recall {rf} (one round a pass: {r})"
    );
    assert!((full.recall.unwrap() - rf).abs() < 0.05);
}

#[test]
fn neighbours_by_row_are_the_lists_in_account_order() {
    // NN-descent numbers its nodes in a locality order; exact search does not.
    let (n, d) = (3000, 8);
    let (x, _) = blobs(n, d, 5, 9);
    for knn in [
        nn_descent(x.clone(), n, d, 10, &GraphConfig::default(), 2),
        exact(&x, n, d, 10),
    ] {
        let by_row = knn.by_row();
        assert_eq!(by_row.k, 10);
        assert_eq!(by_row.idx, knn.in_account_order().idx);
    }
}

/// Runs `f` on a rayon pool of `threads` threads.
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn nn_descent_is_deterministic_across_thread_counts() {
    let (x, _) = blobs(3000, 8, 5, 4);
    let cfg = GraphConfig::default();
    let run = |threads| on_threads(threads, || nn_descent(x.clone(), 3000, 8, 10, &cfg, 9));
    let (a, b) = (run(1), run(2));
    assert_eq!(a.order, b.order);
    assert_eq!(a.idx, b.idx);
    assert_eq!(a.dist, b.dist);
    assert_eq!(a.recall, b.recall);
    // And when the lists grow for a second pass (one round is too few on
    // 32 dimensions).
    let (x, _) = blobs(3000, 32, 3, 4);
    let short = GraphConfig {
        max_rounds: 1,
        ..Default::default()
    };
    let run = |threads| on_threads(threads, || nn_descent(x.clone(), 3000, 32, 15, &short, 9));
    let (a, b) = (run(1), run(3));
    assert_eq!(a.rounds, 2, "the lists grew");
    assert_eq!((a.idx, a.dist, a.recall), (b.idx, b.dist, b.recall));
}

#[test]
fn every_listed_distance_is_the_points_own_after_the_trees() {
    // The trees after the first partition the points themselves and put
    // them back in order: a point put back in the wrong place would show as
    // a listed distance that is not the two points' own.
    let (n, d) = (4000, 6);
    let (x, _) = blobs(n, d, 5, 11);
    for trees in [1, 2, 4] {
        let cfg = GraphConfig {
            trees,
            ..Default::default()
        };
        let knn = nn_descent(x.clone(), n, d, 10, &cfg, 5);
        let order = knn.order.as_ref().expect("a locality order");
        let point = |node: u32| {
            let r = order[node as usize] as usize;
            &x[r * d..(r + 1) * d]
        };
        for (e, (&q, &dd)) in knn.idx.iter().zip(&knn.dist).enumerate() {
            let p = (e / knn.k) as u32;
            assert_ne!(q, u32::MAX, "{trees} trees: node {p}'s list is short");
            let own: f32 = point(p)
                .iter()
                .zip(point(q))
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            assert!(
                (own - dd).abs() <= 1e-4 * own.max(1.0),
                "{trees} trees: node {p} lists {q} at {dd}, its distance is {own}"
            );
        }
    }
}

#[test]
fn locality_numbered_graph_gives_account_labels_independent_of_threads() {
    // Above the exact threshold: NN-descent, the graph numbered in its
    // locality order, Louvain on it, labels mapped back to accounts.
    let n = 24_000;
    let (x, truth) = blobs(n, 8, 6, 11);
    let cfg = GraphConfig::default();
    let run = |threads| {
        on_threads(threads, || {
            let nn = knn(x.clone(), n, 8, &cfg, 5);
            assert_eq!(nn.method, "nn-descent");
            let g = graph(&nn, Weighting::Snn);
            let (labels, _) = super::super::detect(
                &g,
                super::super::Algorithm::Louvain,
                1.0,
                3,
                (1, usize::MAX),
                2,
            );
            (g, nn.to_accounts(labels))
        })
    };
    let ((g1, a), (g2, b)) = (run(1), run(2));
    assert_eq!(g1, g2);
    assert_eq!(a, b);
    let ari = crate::partition::agreement(&a, &truth).ari;
    assert!(ari > 0.95, "planted blobs recovered with ARI {ari}");
}

#[test]
fn the_similarity_graphs_weights_are_a_byte_each_and_the_same_to_the_bit() {
    use crate::cluster::community::graph::Weights;
    let (x, _) = blobs(600, 4, 3, 5);
    let knn = exact(&x, 600, 4, 10);
    let set = |u: usize| {
        let mut s: Vec<u32> = knn.row(u).to_vec();
        s.push(u as u32);
        s.sort_unstable();
        s
    };
    let g = graph(&knn, Weighting::Snn);
    assert!(matches!(g.weights, Weights::Coded { .. }));
    for u in 0..g.n() {
        for (v, w) in g.neighbors(u) {
            let jaccard = crate::partition::jaccard_sorted(&set(u), &set(v));
            assert_eq!(w.to_bits(), jaccard.to_bits(), "edge {u}-{v}");
        }
    }
    let g = graph(&knn, Weighting::Binary);
    assert!(matches!(g.weights, Weights::Coded { .. }));
    assert!(g.weights.to_vec().iter().all(|&w| w == 1.0));
    let g = graph(&knn, Weighting::Gaussian);
    assert!(matches!(g.weights, Weights::Plain(_)));
}

#[test]
fn more_than_256_distinct_weights_are_held_as_they_are() {
    use crate::cluster::community::graph::Weights;
    // Keys of 300 distinct fractions, over two chunks.
    let keys: Vec<u16> = (1..=100u16)
        .flat_map(|union| (0..=union.min(3)).map(move |inter| inter << 8 | union))
        .collect();
    assert!(keys.len() > 256);
    let (a, b) = keys.split_at(150);
    let w = weights_of(vec![Chunk::Keys(a.to_vec()), Chunk::Keys(b.to_vec())]);
    let Weights::Plain(w) = w else {
        panic!("coded with more than 256 values")
    };
    let expected: Vec<f64> = keys.iter().map(|&k| jaccard(k)).collect();
    assert_eq!(w, expected);
    // 256 or fewer: coded, the same values.
    let w = weights_of(vec![Chunk::Keys(keys[..256].to_vec())]);
    assert!(matches!(w, Weights::Coded { .. }));
    assert_eq!(w.to_vec(), expected[..256]);
}

#[test]
fn graph_is_symmetric_with_jaccard_weights() {
    let (x, _) = blobs(500, 4, 3, 5);
    let knn = exact(&x, 500, 4, 10);
    let g = graph(&knn, Weighting::Snn);
    for u in 0..g.n() {
        for (v, w) in g.neighbors(u) {
            assert!(w > 0.0 && w <= 1.0);
            let back = g.neighbors(v).find(|(t, _)| *t == u).map(|(_, w)| w);
            assert_eq!(back, Some(w), "edge {u}-{v} not symmetric");
        }
    }
    // Every kNN pair is an edge.
    for u in 0..500 {
        for &v in knn.row(u) {
            assert!(g.neighbors(u).any(|(t, _)| t == v as usize));
        }
    }
}

#[test]
fn graph_is_the_same_on_any_thread_count() {
    // Every weighting; the lists of who lists whom are built in one range
    // of nodes per thread.
    let (x, _) = blobs(2000, 6, 4, 8);
    let knn = nn_descent(x, 2000, 6, 12, &GraphConfig::default(), 3);
    for weighting in [Weighting::Snn, Weighting::Gaussian, Weighting::Binary] {
        let one = on_threads(1, || graph(&knn, weighting));
        for threads in [2, 3, 7] {
            let g = on_threads(threads, || graph(&knn, weighting));
            assert_eq!(g.offsets, one.offsets, "{weighting:?} {threads}");
            assert_eq!(g.targets, one.targets, "{weighting:?} {threads}");
            let bits = |c: &crate::cluster::community::graph::Csr| {
                c.weights
                    .to_vec()
                    .iter()
                    .map(|w| w.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&g), bits(&one), "{weighting:?} {threads}");
        }
    }
}
