//! Time per Lloyd pass against the memory-bandwidth bound:
//! `cargo run --release --example lloyd_bench -- N D K [RUNS]`.
//!
//! Gaussian blobs (K centres, N × D, f64). Fits RUNS k-means runs of
//! `strata::cluster::kmeans::lloyd` from k-means++ seeds and prints the seconds per
//! run, per pass, and what one pass would cost if it only had to stream the
//! matrix once from memory at the bandwidth measured here (a parallel sum over
//! the same matrix). Used by benches/; never by tests.

use std::time::Instant;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::{Xoshiro256Plus, Xoshiro256PlusPlus};
use rayon::prelude::*;
use strata::cluster::kmeans::lloyd;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (n, d, k, runs) = (arg(0, 1_000_000), arg(1, 32), arg(2, 8), arg(3, 3));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let centres: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..d).map(|_| normal.sample(&mut rng) * 4.0).collect())
        .collect();
    let mut x = Array2::<f64>::zeros((n, d));
    for mut row in x.rows_mut() {
        let c = rng.gen_range(0..k);
        for (j, v) in row.iter_mut().enumerate() {
            *v = centres[c][j] + normal.sample(&mut rng);
        }
    }
    // Bandwidth: the best of five parallel sums over the whole matrix.
    let xs = x.as_slice().unwrap();
    let stream = (0..5)
        .map(|_| {
            let t = Instant::now();
            let s: f64 = xs.par_chunks(1 << 16).map(|c| c.iter().sum::<f64>()).sum();
            std::hint::black_box(s);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    let bytes = (n * d * 8) as f64;
    println!(
        "matrix {n} × {d} f64 = {:.0} MB; one streaming read: {:.4} s ({:.1} GB/s)",
        bytes / 1e6,
        stream,
        bytes / stream / 1e9
    );
    let var: f64 = x.var_axis(ndarray::Axis(0), 0.0).mean().unwrap();
    let tol = (1e-4 * var).sqrt();
    let mut seeds = Xoshiro256Plus::seed_from_u64(42);
    for r in 0..runs {
        let t = Instant::now();
        let init = lloyd::plus_plus(x.view(), k, &mut seeds);
        let t_init = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let run = lloyd::lloyd(x.view(), init, 300, tol);
        let secs = t.elapsed().as_secs_f64();
        let per = secs / run.passes as f64;
        println!(
            "run {r}: k-means++ {t_init:.3} s; {} passes in {secs:.3} s = {per:.4} s a pass \
             ({:.1}× one streaming read); inertia {:.1}",
            run.passes,
            per / stream,
            run.inertia
        );
    }
}
