//! Prediction strength (Tibshirani & Walther 2005, "Cluster validation by
//! prediction strength", JCGS 14(3)), estimated until it is settled.
//!
//! One half-split draws its own seeded sample of `selection_sample` accounts
//! from all of them, splits it into two random halves, fits k on each (plain
//! k-means++, at least 10 restarts, so a local minimum does not read as
//! instability), assigns the test half to the training half's centroids, and
//! scores the worst test cluster: the share of its pairs the training
//! centroids keep together. A k's prediction strength is the mean over its
//! half-splits.
//!
//! **Why each split draws its own sample.** With one sample for every split, the
//! mean converges to that sample's value, and the sample itself is a draw: on
//! the generated data (5 segments planted) k = 6 averaged 0.64 on some
//! 5,000-account samples and 0.92 on others, so whether it passed 0.8 depended
//! on which accounts the run's seed happened to pick, and the chosen k differed
//! between 100k, 1M and 10M accounts of the same population. Fresh samples
//! make the mean converge to the population's value at this sample size, which
//! does not depend on N.
//!
//! **How many splits.** A split's score is often bimodal (a borderline segment
//! re-appears in both halves, 0.9–1.0, or does not, 0.5–0.7), so a fixed five
//! splits decide by luck. Splits are added until the mean is settled, [`MORE`]
//! at a time up to [`MAX`]: a k **passes** when its mean is at least
//! [`THRESHOLD`] by [`PASS_SE`] standard errors (its segments are shown to
//! re-appear), and **fails** once the mean is below the threshold by
//! [`FAIL_SE`] standard error, or when [`MAX`] splits have not shown that it
//! passes. A pass needs the stricter margin because a wrong pass adds a
//! segment the data does not support; a wrong early fail is rare (the mean of
//! a k that passes sits far above the threshold).
//!
//! **Which k's get how many** ([`along_the_range`]). The k's are scored in
//! order, each from [`FIRST`] splits, until the first unbroken run of
//! passing k's ends. Five splits are too few to tell a borderline k: when
//! all five happen to land in its good mode (about one run in fifty on the
//! generated data's sixth segment) their spread is small and it passes. That
//! matters only for the k that would be chosen, the top of the run, so it is
//! confirmed on at least [`CONFIRM`] splits; if it fails, the run ends below
//! it and the k below is confirmed in turn. In 4,000 simulated runs drawing
//! their splits from 1,440 measured ones of each of the 100k, 1M and 10M
//! benchmark data this chose the planted 5 in 98.7–99.6% of runs, with about
//! 40 splits over k = 2..7 against about 60 when every k starts with ten
//! (the old rule, five splits of one fixed sample, chose 5 on 15, 18 and 15
//! of 24 re-drawn samples). Cost: one split is two k-means fits on half the
//! sample, 10–26 ms of CPU for k = 2..6 at 5,000 accounts of 25 columns here.
//!
//! Everything depends only on the rows, k, the seed and the split's index: the
//! splits run in parallel and their scores are summed in split order, so the
//! result does not depend on the thread count.

use ndarray::ArrayView2;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use rayon::prelude::*;

use super::algorithm::{fit_seeded, nearest, take_rows, Seeding};
use super::KMeansConfig;
use crate::error::Result;

/// Prediction strength a k needs (Tibshirani & Walther's 0.8).
pub const THRESHOLD: f64 = 0.8;
/// Half-splits every scored k gets.
pub const FIRST: usize = 5;
/// Half-splits the chosen k needs.
pub const CONFIRM: usize = 10;
/// Half-splits added while the mean is not settled.
pub const MORE: usize = 5;
/// At most this many half-splits per k; unsettled by then, the k fails.
pub const MAX: usize = 30;
/// A k passes when its mean less this many standard errors is at least [`THRESHOLD`].
pub const PASS_SE: f64 = 2.0;
/// A k fails once its mean plus this many standard errors is below [`THRESHOLD`].
pub const FAIL_SE: f64 = 1.0;

/// One k's prediction strength: the mean over its half-splits, its standard
/// error and how many splits there were (NaN, NaN, 0 when not scored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Strength {
    pub mean: f64,
    pub se: f64,
    pub splits: usize,
}

impl Strength {
    /// Not scored (too few rows for k, or a k after the run of passing k's).
    pub const NONE: Strength = Strength {
        mean: f64::NAN,
        se: f64::NAN,
        splits: 0,
    };

    /// The mean and standard error of the split scores `v`, summed in order.
    pub fn of(v: &[f64]) -> Strength {
        let n = v.len();
        if n == 0 {
            return Strength::NONE;
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let se = if n > 1 {
            let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
            (ss / (n - 1) as f64).sqrt() / (n as f64).sqrt()
        } else {
            f64::NAN
        };
        Strength {
            mean,
            se,
            splits: n,
        }
    }

    /// At least [`THRESHOLD`] by [`PASS_SE`] standard errors.
    pub fn passes(&self) -> bool {
        passes(self.mean, self.se)
    }

    /// Settled: passes, or below [`THRESHOLD`] by [`FAIL_SE`] standard errors.
    fn settled(&self) -> bool {
        self.passes() || self.mean + FAIL_SE * self.se < THRESHOLD
    }
}

/// Whether a prediction strength `mean` with standard error `se` passes (a
/// run written before the standard error was kept reads it as 0: the old
/// rule, mean at least [`THRESHOLD`]).
pub fn passes(mean: f64, se: f64) -> bool {
    mean - PASS_SE * se >= THRESHOLD
}

/// The choice of k's first rule: the largest k of the first unbroken run of
/// k's (in k order) that pass, from `(k, passes)` pairs; None when none does.
pub fn top_of_first_run(passing: impl IntoIterator<Item = (usize, bool)>) -> Option<usize> {
    let mut top = None;
    for (k, passes) in passing {
        if passes {
            top = Some(k);
        } else if top.is_some() {
            break;
        }
    }
    top
}

/// Scores half-splits `range` of k ([`split_scores`] on the run's rows).
type Splits<'a> = dyn Fn(usize, std::ops::Range<usize>) -> Result<Vec<f64>> + 'a;

/// One k's half-split scores so far, in split order.
struct Estimate {
    k: usize,
    scores: Vec<f64>,
}

impl Estimate {
    fn new(k: usize) -> Estimate {
        Estimate {
            k,
            scores: Vec::new(),
        }
    }

    fn strength(&self) -> Strength {
        Strength::of(&self.scores)
    }

    /// Add splits (scored by `split`) until there are at least `at_least`
    /// and the mean is settled (or [`MAX`]); whether it passes.
    fn settle(&mut self, split: &Splits<'_>, at_least: usize) -> Result<bool> {
        loop {
            let have = self.scores.len();
            let s = self.strength();
            if have >= at_least && (s.settled() || have >= MAX) {
                return Ok(s.passes());
            }
            let to = at_least.max(have + MORE).min(MAX);
            let new = split(self.k, have..to)?;
            if new.is_empty() {
                // Too few rows for k: not scored (asking again costs nothing).
                return Ok(false);
            }
            self.scores.extend(new);
        }
    }
}

/// The prediction strength of each of `ks` (in increasing order) as the
/// choice of k needs them: scored in order until the first unbroken run of
/// passing k's ends, its top confirmed on [`CONFIRM`] splits (and, when it
/// fails, the k below it, down the run); [`Strength::NONE`] for the k's not
/// scored. The run's top after this is the largest k of the first run of
/// k's whose [`Strength::passes`] holds.
pub fn along_the_range(
    x: ArrayView2<f64>,
    ks: &[usize],
    cfg: &KMeansConfig,
    seed: u64,
) -> Result<Vec<Strength>> {
    along_the_range_by(ks, &|k, r| split_scores(x, k, cfg, seed, r))
}

/// [`along_the_range`] with the splits scored by `split`.
fn along_the_range_by(ks: &[usize], split: &Splits<'_>) -> Result<Vec<Strength>> {
    let mut est: Vec<Estimate> = ks.iter().map(|&k| Estimate::new(k)).collect();
    // The first and the last index of the run of passing k's so far.
    let mut run: Option<(usize, usize)> = None;
    let mut chosen = false;
    let mut i = 0;
    while i < est.len() && !chosen {
        if est[i].settle(split, FIRST)? {
            run = Some((run.map_or(i, |r| r.0), i));
        } else if let Some((first, last)) = run {
            chosen = confirm_top(&mut est, first, last, split)?.is_some();
            // Every k of the run failed on more splits: look for a run after k_i.
            run = run.filter(|_| chosen);
        }
        i += 1;
    }
    if let (Some((first, last)), false) = (run, chosen) {
        // The range ended inside the run: confirm its top all the same.
        confirm_top(&mut est, first, last, split)?;
    }
    Ok(est.iter().map(Estimate::strength).collect())
}

/// Confirm the run `first..=last`'s top on [`CONFIRM`] splits, stepping down
/// while it fails; the index that holds, if any.
fn confirm_top(
    est: &mut [Estimate],
    first: usize,
    last: usize,
    split: &Splits<'_>,
) -> Result<Option<usize>> {
    for top in (first..=last).rev() {
        if est[top].settle(split, CONFIRM)? {
            return Ok(Some(top));
        }
    }
    Ok(None)
}

/// The scores of half-splits `splits` (by index) of k, in index order; empty
/// when a split's sample would have fewer than 4k rows.
pub fn split_scores(
    x: ArrayView2<f64>,
    k: usize,
    cfg: &KMeansConfig,
    seed: u64,
    splits: std::ops::Range<usize>,
) -> Result<Vec<f64>> {
    let n = x.nrows();
    let m = cfg.selection_sample.min(n);
    if m < 4 * k {
        return Ok(Vec::new());
    }
    // Local minima would read as instability: fit the halves with at least 10 restarts.
    let cfg = &KMeansConfig {
        restarts: cfg.restarts.max(10),
        ..cfg.clone()
    };
    // The splits at once, each fitting its halves at once (at a few thousand
    // rows one fit cannot keep two cores busy).
    splits
        .into_par_iter()
        .map(|s| {
            let (train, test) = halves(n, m, seed, s);
            let (xtr, xte) = (take_rows(x, &train), take_rows(x, &test));
            let (trained, tested) = rayon::join(
                || {
                    fit_seeded(
                        xtr.view(),
                        k,
                        cfg,
                        seed.wrapping_add(s as u64),
                        Seeding::PlusPlus,
                    )
                },
                || {
                    fit_seeded(
                        xte.view(),
                        k,
                        cfg,
                        seed.wrapping_add(100 + s as u64),
                        Seeding::PlusPlus,
                    )
                },
            );
            let ((_, ctr, _), (lte, _, _)) = (trained?, tested?);
            // Assign test points to the training centroids.
            let (pred, _) = nearest(xte.view(), &ctr);
            let c = crate::partition::Contingency::new(&lte, &pred);
            Ok((0..c.rows.len())
                .filter(|&j| c.rows[j] > 1)
                .map(|j| {
                    let nj = c.rows[j] as f64;
                    let same: f64 = c.table[j]
                        .iter()
                        .map(|&v| v as f64 * (v as f64 - 1.0))
                        .sum();
                    same / (nj * (nj - 1.0))
                })
                .fold(1.0, f64::min))
        })
        .collect()
}

/// Split `s`'s two halves: a seeded sample of `m` of the rows `0..n`, in a
/// random order, cut in two (the first `m / 2` train), each half sorted.
fn halves(n: usize, m: usize, seed: u64, s: usize) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Xoshiro256Plus::seed_from_u64(seed ^ (0x9e37 + s as u64));
    let mut idx = rand::seq::index::sample(&mut rng, n, m).into_vec();
    rand::seq::SliceRandom::shuffle(idx.as_mut_slice(), &mut rng);
    let mut test = idx.split_off(m / 2);
    idx.sort_unstable();
    test.sort_unstable();
    (idx, test)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand_distr::{Distribution, Normal};

    /// Prediction strength of k on the rows of `x`, settled on at least
    /// `at_least` half-splits (see the module doc); [`Strength::NONE`] when the
    /// sample is smaller than 4k rows.
    fn prediction_strength(
        x: ArrayView2<f64>,
        k: usize,
        cfg: &KMeansConfig,
        seed: u64,
        at_least: usize,
    ) -> Result<Strength> {
        let mut e = Estimate::new(k);
        e.settle(&|k, r| split_scores(x, k, cfg, seed, r), at_least)?;
        Ok(e.strength())
    }

    /// `sizes` Gaussian blobs in 2-D, centres `centres`, unit noise.
    fn blobs(centres: &[(f64, f64)], sizes: &[usize], seed: u64) -> Array2<f64> {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let mut data = Vec::new();
        for (&(cx, cy), &size) in centres.iter().zip(sizes) {
            for _ in 0..size {
                data.push(cx + noise.sample(&mut rng));
                data.push(cy + noise.sample(&mut rng));
            }
        }
        Array2::from_shape_vec((data.len() / 2, 2), data).unwrap()
    }

    #[test]
    fn the_standard_error_is_the_sample_deviation_over_root_n() {
        let s = Strength::of(&[0.5, 1.0, 1.0, 0.5]);
        assert_eq!(s.mean, 0.75);
        // sample variance 1/12, n = 4
        assert!((s.se - (1.0f64 / 12.0).sqrt() / 2.0).abs() < 1e-15);
        assert_eq!(s.splits, 4);
        assert!(!s.passes());
        // An old run's score (no standard error kept) passes as before.
        assert!(passes(0.8, 0.0) && !passes(0.79, 0.0));
        assert!(!passes(f64::NAN, f64::NAN) && !Strength::NONE.passes());
    }

    #[test]
    fn clear_ks_settle_in_the_first_splits_and_an_arbitrary_cut_fails() {
        // Three well separated blobs: k = 3 re-appears in every split; k = 4
        // cuts one blob arbitrarily and does not.
        let x = blobs(&[(0.0, 0.0), (12.0, 0.0), (0.0, 12.0)], &[400, 300, 300], 1);
        let cfg = KMeansConfig::default();
        let three = prediction_strength(x.view(), 3, &cfg, 7, CONFIRM).unwrap();
        assert!(three.passes(), "{three:?}");
        assert_eq!(three.splits, CONFIRM, "{three:?}");
        let four = prediction_strength(x.view(), 4, &cfg, 7, CONFIRM).unwrap();
        assert!(!four.passes(), "{four:?}");
        assert!(four.splits >= CONFIRM && four.splits <= MAX);
    }

    #[test]
    fn the_estimate_does_not_depend_on_the_thread_count_and_is_prefix_stable() {
        let x = blobs(&[(0.0, 0.0), (5.0, 0.0), (0.0, 5.0)], &[300, 200, 150], 2);
        let cfg = KMeansConfig::default();
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| along_the_range(x.view(), &[2, 3, 4, 5], &cfg, 3).unwrap())
        };
        let bits = |v: &[Strength]| -> Vec<(u64, u64, usize)> {
            v.iter()
                .map(|s| (s.mean.to_bits(), s.se.to_bits(), s.splits))
                .collect()
        };
        let one = on(1);
        assert_eq!(bits(&one), bits(&on(2)));
        assert_eq!(bits(&one), bits(&on(4)));
        // A split's score depends on its index, not on the batch it ran in.
        let all = split_scores(x.view(), 4, &cfg, 3, 0..12).unwrap();
        let mut parts = split_scores(x.view(), 4, &cfg, 3, 0..5).unwrap();
        parts.extend(split_scores(x.view(), 4, &cfg, 3, 5..12).unwrap());
        assert_eq!(all, parts);
        // Each estimate is the mean of its own splits.
        for (k, s) in (2..=5).zip(&one) {
            let own = split_scores(x.view(), k, &cfg, 3, 0..s.splits).unwrap();
            assert_eq!(bits(&[*s]), bits(&[Strength::of(&own)]), "k = {k}");
        }
    }

    /// Split scores from a table: `table[k]` lists k's scores by split index.
    fn by_table(
        table: &[(usize, Vec<f64>)],
    ) -> impl Fn(usize, std::ops::Range<usize>) -> Result<Vec<f64>> + '_ {
        move |k, r| {
            let v = &table.iter().find(|t| t.0 == k).unwrap().1;
            Ok(r.map(|i| v[i % v.len()]).collect())
        }
    }

    #[test]
    fn a_top_that_passed_on_five_lucky_splits_is_confirmed_or_dropped() {
        let clean = vec![0.97, 0.98, 0.96, 0.99, 0.97];
        // k = 4 looks clean on its first five splits, then shows its bad mode.
        let lucky = vec![0.97, 0.98, 0.96, 0.99, 0.97, 0.55, 0.6, 0.97, 0.52, 0.58];
        let bad = vec![0.55, 0.6, 0.52, 0.58, 0.62];
        let table = vec![
            (2, clean.clone()),
            (3, clean.clone()),
            (4, lucky),
            (5, bad.clone()),
            (6, clean.clone()),
        ];
        let s = along_the_range_by(&[2, 3, 4, 5, 6], &by_table(&table)).unwrap();
        let passes: Vec<bool> = s.iter().map(Strength::passes).collect();
        // 4 failed on ten splits, 3 held on ten; 6 is past the run's end.
        assert_eq!(passes, [true, true, false, false, false]);
        let splits: Vec<usize> = s.iter().map(|s| s.splits).collect();
        assert_eq!(splits[..2], [FIRST, CONFIRM]);
        assert!(splits[2] >= CONFIRM && splits[3] >= FIRST);
        assert_eq!(splits[4], 0, "not scored");

        // A run whose every k fails on more splits gives way to a later run.
        let table = vec![
            (
                2,
                vec![0.97, 0.98, 0.96, 0.99, 0.97, 0.5, 0.5, 0.5, 0.5, 0.5],
            ),
            (3, bad.clone()),
            (4, clean.clone()),
            (5, clean.clone()),
            (6, bad),
        ];
        let s = along_the_range_by(&[2, 3, 4, 5, 6], &by_table(&table)).unwrap();
        let passes: Vec<bool> = s.iter().map(Strength::passes).collect();
        assert_eq!(passes, [false, false, true, true, false]);
        assert_eq!(s[3].splits, CONFIRM, "the chosen k is confirmed");

        // A range that ends inside the run confirms its top all the same.
        let table = vec![(2, clean.clone()), (3, clean)];
        let s = along_the_range_by(&[2, 3], &by_table(&table)).unwrap();
        assert_eq!((s[0].splits, s[1].splits), (FIRST, CONFIRM));
    }

    #[test]
    fn each_split_draws_its_own_sample_from_all_rows() {
        use std::collections::HashSet;
        let (n, m) = (100_000, 5_000);
        let mut seen = HashSet::new();
        let mut first = Vec::new();
        for s in 0..4 {
            let (train, test) = halves(n, m, 42, s);
            assert_eq!((train.len(), test.len()), (m / 2, m - m / 2));
            assert!(train.windows(2).all(|w| w[0] < w[1]) && test.windows(2).all(|w| w[0] < w[1]));
            let both: HashSet<usize> = train.iter().chain(&test).copied().collect();
            assert_eq!(both.len(), m, "the halves are disjoint");
            assert!(both.iter().all(|&i| i < n));
            if s == 0 {
                first = train.clone();
            }
            seen.extend(both);
        }
        // Four samples of 5,000 from 100,000 share few accounts (about 5% pairwise).
        assert!(seen.len() > 3 * m, "{} distinct accounts", seen.len());
        // The same split index draws the same halves.
        assert_eq!(halves(n, m, 42, 0).0, first);
        // Below the sample size every split uses every row, in new halves.
        let (a, b) = halves(300, 300, 42, 1);
        assert_eq!(a.len() + b.len(), 300);
        assert_ne!(a, halves(300, 300, 42, 2).0);
        // Too few rows for k: not scored.
        let x = blobs(&[(0.0, 0.0), (8.0, 0.0)], &[6, 5], 4);
        let cfg = KMeansConfig::default();
        assert!(split_scores(x.view(), 3, &cfg, 5, 0..3).unwrap().is_empty());
        let none = prediction_strength(x.view(), 3, &cfg, 5, CONFIRM).unwrap();
        assert!(none.splits == 0 && none.mean.is_nan() && !none.passes());
    }

    #[test]
    fn pure_noise_passes_no_k() {
        // The negative control: isotropic Gaussian noise in 8-D has no
        // segments, so no cut of it re-appears on fresh halves.
        let mut rng = Xoshiro256Plus::seed_from_u64(11);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let x = Array2::from_shape_fn((3_000, 8), |_| noise.sample(&mut rng));
        let cfg = KMeansConfig::default();
        for k in 2..=5 {
            let s = prediction_strength(x.view(), k, &cfg, 42, CONFIRM).unwrap();
            assert!(!s.passes(), "k = {k}: {s:?}");
        }
    }

    #[test]
    fn a_small_distinct_segment_beside_a_large_one_is_found() {
        // Skewed data: 95% of accounts in one mass, 5% apart from it. k = 2
        // re-appears on fresh halves and is the top of the run; k = 3 cuts
        // the mass arbitrarily and ends it.
        let x = blobs(&[(0.0, 0.0), (10.0, 10.0)], &[1_900, 100], 6);
        let cfg = KMeansConfig::default();
        let s = along_the_range(x.view(), &[2, 3, 4], &cfg, 42).unwrap();
        assert!(s[0].passes() && s[0].splits >= CONFIRM, "{s:?}");
        assert!(!s[1].passes(), "{s:?}");
        assert_eq!(s[2].splits, 0, "past the run's end: {s:?}");
    }
}
