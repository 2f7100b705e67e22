//! How much the choice of k depends on the sample it is made on:
//! `cargo run --release --example k_spread -- RUN/features.parquet SEEDS [K_FROM K_TO]`,
//! SEEDS one run seed (`42`) or a range (`0..12`).
//!
//! The run chooses k on one seeded sample of `selection_sample` accounts
//! (5,000 by default): the largest k of the first run of k's whose
//! prediction strength (mean over 5 random half-splits) is at least 0.8.
//! This draws SAMPLES such samples of the run's matrix (the `x__` columns of
//! its features.parquet) as runs with the seeds SEEDS would (the run's own
//! is `run.seed`, 42 in the sample pipelines, which reproduces its value), and
//! prints each k's prediction strength as the run computes it, with the
//! range of its half-splits, so a k near the threshold shows as one. On the
//! generated 1M and 10M data (5 segments planted) k = 6 passes on about a
//! quarter of the samples. Used to explain a chosen k; never by tests.

use polars::prelude::*;
use strata::cluster::kmeans::{self, KMeansConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: Option<std::ops::Range<u64>> = args.get(2).and_then(|s| match s.split_once("..") {
        Some((a, b)) => Some(a.parse().ok()?..b.parse().ok()?),
        None => s.parse().ok().map(|a: u64| a..a + 1),
    });
    let (Some(path), Some(seeds)) = (args.get(1), seeds) else {
        eprintln!(
            "usage: k_spread RUN/features.parquet SEEDS [K_FROM K_TO]   (SEEDS: 42 or 0..12)"
        );
        std::process::exit(2);
    };
    let k_from: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let k_to: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(7);
    let df = LazyFrame::scan_parquet(path.as_str().into(), Default::default())
        .and_then(|lf| lf.collect())
        .unwrap_or_else(|e| {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        });
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .filter(|s| s.starts_with("x__"))
        .collect();
    let n = df.height();
    let mut x = ndarray::Array2::<f64>::zeros((n, names.len()));
    for (j, name) in names.iter().enumerate() {
        let s = df
            .column(name)
            .and_then(|c| c.as_materialized_series().cast(&DataType::Float64))
            .expect("a numeric matrix column");
        for (i, v) in s.f64().expect("cast to f64").iter().enumerate() {
            x[[i, j]] = v.unwrap_or(0.0);
        }
    }
    let cfg = KMeansConfig::default();
    println!(
        "{n} accounts, {} matrix columns; samples of {}, prediction strength over {} half-splits (mean, and the splits' range)",
        names.len(),
        cfg.selection_sample,
        kmeans::PS_SPLITS
    );
    for seed in seeds {
        let idx = kmeans::sample_indices(n, cfg.selection_sample, seed ^ 0x6b);
        let xs = kmeans::take_rows(x.view(), &idx);
        let cells: Vec<String> = (k_from..=k_to)
            .map(|k| {
                let per =
                    kmeans::prediction_strength_splits(xs.view(), k, &cfg, seed, kmeans::PS_SPLITS)
                        .unwrap_or_default();
                let mean = per.iter().sum::<f64>() / per.len().max(1) as f64;
                let (lo, hi) = per
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                let mark = if mean >= kmeans::PS_THRESHOLD {
                    "*"
                } else {
                    " "
                };
                format!("k={k} {mean:.2}{mark} [{lo:.2}–{hi:.2}]")
            })
            .collect();
        println!("seed {seed}: {}", cells.join("   "));
    }
    println!("* at or above the threshold {}", kmeans::PS_THRESHOLD);
}
