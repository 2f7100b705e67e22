//! Times the cluster stages on Gaussian blobs: `cargo run --release --example cluster_bench -- N D K`.
//! Prints k-means, kNN (with recall on a sample against exact search), graph and
//! Louvain/Leiden timings and modularity. Used by benches/; never by tests.
//!
//! Environment: `X_F32=path` reads the matrix (raw little-endian f32, n × d)
//! instead of generating blobs, to run on exactly the data another tool saw;
//! `TREES=n` sets the NN-descent forest; `ONLY_KNN=1` stops after the kNN (and its recall),
//! `ONLY_GRAPH=1` after the graph (timed with SNN and with binary weights);
//! `NO_RECALL=1` skips the brute-force recall check (slow at 1M); `ALGORITHM=leiden` (or
//! `louvain`) runs only that community detection.

use std::time::Instant;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use strata::cluster::community::{self, graph, knn};
use strata::cluster::kmeans;

/// The allocator the `strata` binary uses, so that timings match the pipeline's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let (n, d, k) = (
        args.first().copied().unwrap_or(100_000),
        args.get(1).copied().unwrap_or(32),
        args.get(2).copied().unwrap_or(8),
    );
    let mut x = Array2::<f64>::zeros((n, d));
    if let Ok(path) = std::env::var("X_F32") {
        // A raw little-endian f32 matrix of n × d (to compare with another tool on the same data).
        let bytes = std::fs::read(&path).expect("X_F32 file");
        assert!(
            bytes.len() >= n * d * 4,
            "{path} holds fewer than {n} × {d} f32 values"
        );
        for (i, c) in bytes.chunks_exact(4).enumerate().take(n * d) {
            x[[i / d, i % d]] = f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64;
        }
    } else {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let centers: Vec<Vec<f64>> = (0..k)
            .map(|_| (0..d).map(|_| normal.sample(&mut rng) * 4.0).collect())
            .collect();
        for i in 0..n {
            let c = rng.gen_range(0..k);
            for j in 0..d {
                x[[i, j]] = centers[c][j] + normal.sample(&mut rng);
            }
        }
    }
    let t = Instant::now();
    let cfg = kmeans::KMeansConfig {
        k: Some(k),
        restarts: 1,
        ..Default::default()
    };
    let (_, _, inertia) = kmeans::fit(x.view(), k, &cfg, 42).unwrap();
    println!(
        "kmeans: {:.2} s, inertia {inertia:.1}",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let xf = knn::to_f32(x.view());
    let gcfg = knn::GraphConfig {
        trees: std::env::var("TREES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(knn::GraphConfig::default().trees),
        ..Default::default()
    };
    // The kNN takes its copy of the matrix (as the pipeline's does); the
    // recall check below needs one of its own.
    let keep = std::env::var_os("NO_RECALL").is_none().then(|| xf.clone());
    let nn = knn::knn(xf, n, d, &gcfg, 42);
    let xf = keep.unwrap_or_default();
    println!(
        "knn ({}): {:.2} s, {} rounds, its own recall estimate {:?}",
        nn.method,
        t.elapsed().as_secs_f64(),
        nn.rounds,
        nn.recall
    );
    // Recall on a sample of 1000 points against brute force.
    let probes = if std::env::var_os("NO_RECALL").is_some() {
        0
    } else {
        1000.min(n)
    };
    let by_row = nn.in_account_order();
    let sample: Vec<usize> = (0..probes).map(|i| i * (n / 1000.min(n))).collect();
    use rayon::prelude::*;
    let hits: usize = sample
        .par_iter()
        .map(|&i| {
            let xi = &xf[i * d..(i + 1) * d];
            let mut all: Vec<(f32, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    (
                        xf[j * d..(j + 1) * d]
                            .iter()
                            .zip(xi)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f32>(),
                        j,
                    )
                })
                .collect();
            all.select_nth_unstable_by(nn.k, |a, b| a.partial_cmp(b).unwrap());
            let truth: Vec<usize> = all[..nn.k].iter().map(|p| p.1).collect();
            truth
                .iter()
                .filter(|j| by_row.row(i).contains(&(**j as u32)))
                .count()
        })
        .sum();
    if !sample.is_empty() {
        println!(
            "knn recall@{}: {:.4}",
            nn.k,
            hits as f64 / (sample.len() * nn.k) as f64
        );
    }
    if std::env::var_os("ONLY_KNN").is_some() {
        return;
    }
    let timed_graph = |weighting: knn::Weighting| {
        let t = Instant::now();
        let g = knn::graph(&nn, weighting);
        println!(
            "graph ({weighting:?}): {:.2} s, {} edges",
            t.elapsed().as_secs_f64(),
            g.edges()
        );
        g
    };
    let g = timed_graph(knn::Weighting::Snn);
    if std::env::var_os("ONLY_GRAPH").is_some() {
        timed_graph(knn::Weighting::Binary);
        return;
    }
    for (name, alg) in [
        ("louvain", community::Algorithm::Louvain),
        ("leiden", community::Algorithm::Leiden),
    ] {
        if std::env::var("ALGORITHM").is_ok_and(|a| a != name) {
            continue;
        }
        let t = Instant::now();
        let (labels, _) = community::detect(&g, alg, 1.0, 42, (1, usize::MAX), 2);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{name}: {secs:.2} s, {} communities, modularity {:.4}",
            labels.iter().max().unwrap() + 1,
            graph::modularity(&g, &labels, 1.0)
        );
    }
}
