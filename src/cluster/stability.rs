//! How far to trust each segment: re-cluster subsamples and see what survives.
//!
//! Following Hennig (2007, "Cluster-wise assessment of cluster stability", R's
//! `fpc::clusterboot`), each method is re-run `runs` times, each time on a
//! seeded random `subsample` share of the accounts and with another seed. For
//! every run strata records
//!
//! * the **ARI** between the re-clustering and the original labels on the
//!   accounts of that subsample, and
//! * for every original segment, the **Jaccard** similarity to its best-matching
//!   segment of the re-clustering.
//!
//! A segment's stability is its mean Jaccard over runs. Hennig's reading:
//! ≥ 0.85 highly stable, ≥ 0.75 stable, 0.6–0.75 a pattern but unsure, below
//! 0.5 the segment dissolves. To bound the cost for millions of accounts the
//! runs use a seeded pool of at most `sample` accounts; what the runs can
//! share is made once on that pool (`Method::refit_shared`: the community
//! method's exact neighbour lists, from which each run's lists are read
//! instead of searched again).

use ndarray::ArrayView2;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;
use std::borrow::Cow;

use super::kmeans::{sample_indices, take_rows};
use crate::error::Result;
use crate::partition::{agreement, Contingency};
use crate::section;
use crate::settings::{positive, Problems};

section! {
    /// `[stability]` as written.
    #[derive(Debug, serde::Deserialize, Default)]
    pub struct RawStability {
        pub runs: Option<usize>,
        pub subsample: Option<f64>,
        pub sample: Option<usize>,
    }
}

/// Checked stability settings.
#[derive(Debug, Clone, Serialize)]
pub struct StabilityConfig {
    pub runs: usize,
    pub subsample: f64,
    pub sample: usize,
}

impl Default for StabilityConfig {
    fn default() -> Self {
        StabilityConfig {
            runs: 5,
            subsample: 0.8,
            sample: 10_000,
        }
    }
}

impl StabilityConfig {
    /// Accounts each run re-clusters, from a pool of `pool` accounts.
    pub fn per_run(&self, pool: usize) -> usize {
        ((pool as f64 * self.subsample).round() as usize).clamp(1, pool.max(1))
    }

    /// Whether the runs' pool is every one of `n` accounts, in row order
    /// (at most `sample` of them): then what a method built on all of
    /// them for its fit is built on the pool too.
    pub fn pool_is_all(&self, n: usize) -> bool {
        self.runs > 0 && n <= self.sample
    }

    /// `[stability]` checked (`None`: absent, every default).
    pub fn check(raw: Option<&RawStability>, problems: &mut Problems) -> StabilityConfig {
        let mut c = StabilityConfig::default();
        let Some(s) = raw else {
            return c;
        };
        if let Some(r) = s.runs {
            c.runs = r;
        }
        if let Some(f) = s.subsample {
            if !(f > 0.0 && f <= 1.0) {
                problems.push(
                    "stability.subsample",
                    format!("{f} must be a share in (0, 1], e.g. 0.8"),
                );
            }
            c.subsample = f;
        }
        positive(problems, "stability.sample", s.sample, &mut c.sample);
        c
    }
}

/// Stability of one segmentation.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Stability {
    pub runs: usize,
    pub accounts_per_run: usize,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub ari_mean: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub ari_min: f64,
    /// Mean best-match Jaccard per segment (None: not present in the sample).
    pub segment_jaccard: Vec<Option<f64>>,
    /// Hennig's reading of each segment's Jaccard.
    pub segment_rating: Vec<Cow<'static, str>>,
}

pub fn rating(j: Option<f64>) -> &'static str {
    match j {
        None => "not assessed",
        Some(j) if j >= 0.85 => "highly stable",
        Some(j) if j >= 0.75 => "stable",
        Some(j) if j >= 0.6 => "pattern, unsure",
        Some(j) if j >= 0.5 => "weak",
        Some(_) => "dissolves",
    }
}

/// One stability run's accounts: their rows, and their positions (sorted)
/// in the pool that every run draws from.
pub struct Draw<'a> {
    pub x: ArrayView2<'a, f64>,
    pub in_pool: &'a [usize],
}

/// Assess `reference` (labels of all rows of `x`, k segments) by re-clustering
/// subsamples with `recluster(draw, shared, seed)`, where `shared` is what
/// `prepare(pool rows, accounts per run)` made once for all runs (the
/// community method's neighbour lists; nothing for k-means).
pub fn assess<S: Sync>(
    x: ArrayView2<f64>,
    reference: &[usize],
    cfg: &StabilityConfig,
    seed: u64,
    prepare: impl FnOnce(ArrayView2<f64>, usize) -> S,
    recluster: impl Fn(Draw<'_>, &S, u64) -> Result<Vec<usize>> + Sync,
) -> Result<Stability> {
    use rayon::prelude::*;
    let k = reference.iter().max().map_or(0, |m| m + 1);
    let pool = sample_indices(x.nrows(), cfg.sample, seed ^ 0x57ab);
    let per_run = cfg.per_run(pool.len());
    let t = std::time::Instant::now();
    let shared = prepare(take_rows(x, &pool).view(), per_run);
    crate::memory::trace("stability's shared work", t);
    // The runs at once (each depends only on its own seed; at small N one
    // run's fits cannot keep the cores busy), summed in run order, so the
    // result is the same whatever the thread count.
    let runs: Vec<(f64, Vec<Option<f64>>)> = (0..cfg.runs)
        .into_par_iter()
        .map(|r| {
            let run_seed = seed.wrapping_add(1 + r as u64 * 1_000_003);
            let in_pool = {
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(run_seed);
                let mut v = rand::seq::index::sample(&mut rng, pool.len(), per_run).into_vec();
                v.sort_unstable();
                v
            };
            let pick: Vec<usize> = in_pool.iter().map(|&i| pool[i]).collect();
            let xs = take_rows(x, &pick);
            let draw = Draw {
                x: xs.view(),
                in_pool: &in_pool,
            };
            let labels = recluster(draw, &shared, run_seed)?;
            let truth: Vec<usize> = pick.iter().map(|&i| reference[i]).collect();
            let c = Contingency::new(&truth, &labels);
            let best: Vec<Option<f64>> = (0..k)
                .map(|seg| {
                    let row = c.table.get(seg)?;
                    (c.rows[seg] > 0).then(|| {
                        row.iter()
                            .enumerate()
                            .map(|(j, &nij)| nij as f64 / (c.rows[seg] + c.cols[j] - nij) as f64)
                            .fold(0.0, f64::max)
                    })
                })
                .collect();
            Ok((agreement(&truth, &labels).ari, best))
        })
        .collect::<Result<_>>()?;
    let mut aris = Vec::new();
    let mut jac_sum = vec![0.0; k];
    let mut jac_n = vec![0usize; k];
    for (ari, best) in runs {
        aris.push(ari);
        for (seg, b) in best.into_iter().enumerate() {
            if let Some(b) = b {
                jac_sum[seg] += b;
                jac_n[seg] += 1;
            }
        }
    }
    let segment_jaccard: Vec<Option<f64>> = (0..k)
        .map(|s| (jac_n[s] > 0).then(|| jac_sum[s] / jac_n[s] as f64))
        .collect();
    Ok(Stability {
        runs: cfg.runs,
        accounts_per_run: per_run,
        ari_mean: aris.iter().sum::<f64>() / aris.len().max(1) as f64,
        ari_min: aris.iter().copied().fold(f64::INFINITY, f64::min),
        segment_rating: segment_jaccard.iter().map(|j| rating(*j).into()).collect(),
        segment_jaccard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn well_separated_groups_are_stable_and_noise_is_not() {
        // Two far-apart groups on a line.
        let n = 400;
        let x = Array2::from_shape_fn((n, 1), |(i, _)| {
            if i < n / 2 {
                i as f64 * 0.01
            } else {
                100.0 + i as f64 * 0.01
            }
        });
        let reference: Vec<usize> = (0..n).map(|i| usize::from(i >= n / 2)).collect();
        let cfg = StabilityConfig {
            runs: 3,
            subsample: 0.8,
            sample: 1000,
        };
        let s = assess(
            x.view(),
            &reference,
            &cfg,
            1,
            |_, _| (),
            |d, _, _| {
                Ok(d.x
                    .column(0)
                    .iter()
                    .map(|&v| usize::from(v > 50.0))
                    .collect())
            },
        )
        .unwrap();
        assert_eq!(s.ari_mean, 1.0);
        assert_eq!(s.segment_jaccard, vec![Some(1.0), Some(1.0)]);
        assert_eq!(s.segment_rating, vec!["highly stable", "highly stable"]);
        // A re-clustering that ignores the data: alternating labels.
        let s = assess(
            x.view(),
            &reference,
            &cfg,
            1,
            |_, _| (),
            |d, _, _| Ok((0..d.x.nrows()).map(|i| i % 2).collect()),
        )
        .unwrap();
        assert!(s.ari_mean < 0.05);
        assert!(s.segment_jaccard.iter().all(|j| j.unwrap() < 0.5));
    }
}

/// Jaccard and ARI at and above which a segment, or a segmentation, is
/// stable on resampling (Hennig 2007); below [`DISSOLVES`] a segment
/// dissolves.
pub const STABLE: f64 = 0.75;
pub const DISSOLVES: f64 = 0.5;

/// What a reader must know before acting on `seg`'s segments, one sentence
/// each: a k that no prediction-strength test supported, a segmentation that
/// changes on resampling, and each segment below [`STABLE`] (`name` gives a
/// segment's name by label).
pub fn warnings(seg: &super::Segmentation, name: impl Fn(usize) -> String) -> Vec<String> {
    // Two decimals would show 0.747 as 0.75, the threshold itself.
    let label = super::method::label(&seg.method);
    let mut out = Vec::new();
    if let super::Details::KMeans(d) = &seg.details {
        if d.chosen_by.starts_with("no k reached") {
            out.push(format!(
                "{label}: no number of segments passed the prediction-strength test, so k = {} was taken by the highest silhouette; the data may have no clear segments ({})",
                seg.k(),
                d.chosen_by
            ));
        }
    }
    let Some(st) = &seg.stability else {
        return out;
    };
    if st.ari_mean < STABLE {
        out.push(format!(
            "{label}: the segments change when the accounts are resampled (stability ARI {:.3} mean over {} runs; {STABLE} and above is stable)",
            st.ari_mean, st.runs
        ));
    }
    for (label_i, j) in st.segment_jaccard.iter().enumerate() {
        if let Some(j) = j.filter(|j| *j < STABLE) {
            let id = seg.ids.get(label_i).copied().unwrap_or(0);
            out.push(format!(
                "{label} {} {id} ({}) is {} on resampling: Jaccard {j:.3} ({STABLE} and above is stable, below {DISSOLVES} it dissolves); check it before acting on it",
                super::method::member(&seg.method).to_lowercase(),
                name(label_i),
                if j < DISSOLVES { "not reproduced" } else { "only partly reproduced" }
            ));
        }
    }
    out
}
