//! How much the choice of k depends on the seed it is made with:
//! `cargo run --release --example k_spread -- RUN/features.parquet SEEDS [K_FROM K_TO]`,
//! SEEDS one run seed (`42`) or a range (`0..12`), k from 2 to 7 by default.
//!
//! The run scores the k's in order by prediction strength, the mean over 5
//! to 30 half-splits, each on its own seeded sample of `selection_sample`
//! accounts (5,000 by default), added until the mean is settled, and picks
//! the largest k of the first run of k's that pass (at least 0.8 by two
//! standard errors), that k confirmed on at least 10 splits
//! (`strata::cluster::kmeans::prediction`). This does the same on the run's
//! matrix (the `x__` columns of its features.parquet) as runs with the seeds
//! SEEDS would (the run's own is `run.seed`, 42 in the sample pipelines, which
//! reproduces its values), and prints each k's mean, standard error, number
//! of splits and the splits' range (— for a k not scored), so a k near the
//! threshold shows as one. Used to explain a chosen k; never by tests.

use polars::prelude::*;
use strata::cluster::kmeans::{prediction, KMeansConfig};

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
    let k_from: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2);
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
        "{n} accounts, {} matrix columns; prediction strength over {}..={} half-splits of {} accounts each (mean ± standard error, splits, their range)",
        names.len(),
        prediction::FIRST,
        prediction::MAX,
        cfg.selection_sample
    );
    let ks: Vec<usize> = (k_from..=k_to).collect();
    for seed in seeds {
        let strengths =
            prediction::along_the_range(x.view(), &ks, &cfg, seed).unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(1);
            });
        // The top of the first run of passing k's (the run's rule).
        let chosen =
            prediction::top_of_first_run(ks.iter().zip(&strengths).map(|(&k, s)| (k, s.passes())));
        let cells: Vec<String> = ks
            .iter()
            .zip(&strengths)
            .map(|(&k, s)| {
                if s.splits == 0 {
                    return format!("k={k} —");
                }
                let per = prediction::split_scores(x.view(), k, &cfg, seed, 0..s.splits)
                    .unwrap_or_default();
                let (lo, hi) = per
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                let mark = if s.passes() { "*" } else { " " };
                format!(
                    "k={k} {:.2}±{:.2}{mark} n={:<2} [{lo:.2}–{hi:.2}]",
                    s.mean, s.se, s.splits
                )
            })
            .collect();
        let chosen = chosen.map_or("none passes".to_string(), |k| format!("k = {k}"));
        println!("seed {seed}: {}   → {chosen}", cells.join("   "));
    }
    println!(
        "* passes: at least {} by {} standard errors",
        prediction::THRESHOLD,
        prediction::PASS_SE
    );
}
