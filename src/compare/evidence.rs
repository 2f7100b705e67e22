//! Per-account evidence that an account sits in the wrong tier: the tiers of
//! its behavioural neighbours.
//!
//! Each account's nearest neighbours in the feature matrix come from the
//! similarity graph (the community method's kNN lists). If tiers follow
//! behaviour, an account's neighbours are mostly in its own tier; an account
//! in the wrong tier has neighbours mostly in another one. For account `i` in
//! tier `c` with `K` neighbours of known tier, `n_t` of them in tier `t`:
//!
//! 1. **Test.** Under the null that tiers are unrelated to behaviour, the
//!    neighbours' tiers are draws at the base rates `π_t`, so
//!    `p_t = P(Binomial(K, π_t) ≥ n_t)` for each other tier `t`; the account's
//!    p-value is the smallest, times the number of other tiers (Bonferroni),
//!    and the suggested tier is that `t`. Benjamini–Hochberg over all accounts
//!    controls the share of false flags at `q` (`tiers.fdr`, default 0.05): on
//!    tiers unrelated to behaviour (shuffled), almost nothing is flagged.
//! 2. **Direction.** The account is flagged only when it also looks more like
//!    `t` than like `c`: the posterior below gives `t` more weight than `c`.
//! 3. **Confidence** is that posterior, P(tier = t | neighbours' tiers): a
//!    naive-Bayes classifier whose likelihoods are learned from the data
//!    (empirical Bayes): `θ_s`, the average tier mix of the neighbours of
//!    accounts now in tier `s` (add-one smoothed), and prior `π`. It is
//!    P(behaves like `t`) given how each tier's accounts are surrounded, so a
//!    middle tier that is no segment's majority but whose accounts neighbour
//!    each other is not flagged wholesale, and a minority tier in its own
//!    corner of the data is not pulled into the majority.
//!
//! Cost: O(n·K·T) for n accounts, K neighbours and T tiers, plus a sort for
//! Benjamini–Hochberg; the posterior and the p-value are computed once per
//! distinct (tier, neighbours' tier counts), of which there are at most
//! (T+1)·C(K+T, T) (3,264 for 15 neighbours and 3 tiers), not once per
//! account.

use rayon::prelude::*;
use serde::Serialize;
use std::sync::Arc;

use super::stats::{bh_adjust, binomial_sf};
use crate::cluster::community::knn::Neighbours;

/// What one account's neighbours say.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Neighbours per tier (those of unknown tier not counted). Shared by
    /// the accounts with the same tier and counts, as is `posterior`.
    pub counts: Arc<[u32]>,
    /// The tier the neighbours point to, other than the account's own.
    pub suggested: usize,
    /// Bonferroni-corrected p-value of that tier's over-representation.
    pub p_value: f64,
    /// Its Benjamini–Hochberg q-value over all accounts.
    pub q_value: f64,
    /// P(tier | neighbours' tiers) for every tier.
    pub posterior: Arc<[f64]>,
}

impl Evidence {
    /// Flagged: significant at `fdr`, and more like the suggested tier than its own.
    pub fn flags(&self, current: usize, fdr: f64) -> bool {
        self.q_value <= fdr && self.posterior[self.suggested] > self.posterior[current]
    }
}

/// Every account's evidence, held once per group of accounts with the same
/// tier and neighbours' tier counts, beside each account's q-value: at 10M
/// accounts a copy per account would be 0.5 GB, and 20M reference counts
/// moved on the few groups most accounts share.
#[derive(Debug, Clone)]
pub struct Table {
    /// Per group; its `q_value` is not used (see `q`).
    groups: Vec<Option<Evidence>>,
    group_of: Vec<u32>,
    /// Each account's q-value (1 when untested).
    q: Vec<f64>,
}

impl Table {
    /// No evidence for any of `n` accounts.
    pub fn none(n: usize) -> Table {
        Table {
            groups: vec![None],
            group_of: vec![0; n],
            q: vec![1.0; n],
        }
    }
    /// Account `i`'s evidence (None: unknown tier, or no neighbour with one).
    pub fn get(&self, i: usize) -> Option<Evidence> {
        let mut e = self.groups[self.group_of[i] as usize].clone()?;
        e.q_value = self.q[i];
        Some(e)
    }
    /// Whether account `i`, of tier `current`, is flagged ([`Evidence::flags`]).
    pub fn flags(&self, i: usize, current: usize, fdr: f64) -> bool {
        self.groups[self.group_of[i] as usize]
            .as_ref()
            .is_some_and(|e| self.q[i] <= fdr && e.posterior[e.suggested] > e.posterior[current])
    }
}

/// How the evidence was gathered, for the outputs.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EvidenceSummary {
    pub neighbours: usize,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub fdr: f64,
    /// Accounts with a known tier and at least one neighbour of known tier.
    pub tested: usize,
    pub flagged: usize,
    /// Average neighbour tier mix of each tier's accounts (rows: tier now).
    #[serde(deserialize_with = "crate::schema::real::rows")]
    pub neighbour_mix: Vec<Vec<f64>>,
    /// The likelihood temperature fitted to the data (see [`temperature`]).
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub temperature: f64,
}

/// Softmax of ln π_s + τ · loglik_s.
fn posterior(pi: &[f64], loglik: &[f64], tau: f64) -> Vec<f64> {
    let lp: Vec<f64> = pi
        .iter()
        .zip(loglik)
        .map(|(&p, &l)| {
            if p > 0.0 {
                p.ln() + tau * l
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect();
    let top = lp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = lp.iter().map(|l| (l - top).exp()).collect();
    let z: f64 = w.iter().sum();
    w.iter().map(|v| v / z).collect()
}

/// The temperature τ that makes the posterior best predict the tiers the
/// accounts are in (largest log-likelihood over a grid of 0.02 … 1). The
/// neighbours of an account are not independent draws — they are similar to
/// each other — so the plain product of their likelihoods (τ = 1) is far too
/// sure of itself; τ < 1 counts them as fewer, independent ones, which makes
/// the confidence a calibrated probability (checked in benches/tier_controls.py).
/// Read from the distinct (tier, neighbour counts) pairs, each `weight`
/// accounts (a few thousand pairs at most, however many accounts).
fn temperature(groups: &[Group], loglik: &[Vec<f64>], pi: &[f64]) -> f64 {
    let grid: Vec<f64> = (1..=50).map(|i| i as f64 * 0.02).collect();
    let score = |tau: f64| -> f64 {
        groups
            .iter()
            .zip(loglik)
            .filter_map(|(g, ll)| {
                let c = g.tier?;
                Some(g.weight as f64 * posterior(pi, ll, tau)[c].max(1e-300).ln())
            })
            .sum()
    };
    let scores: Vec<f64> = grid.iter().map(|&t| score(t)).collect();
    let best = (0..grid.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
        .expect("grid");
    grid[best]
}

/// Accounts with the same tier and the same neighbour tier counts: they
/// have the same evidence (bar the q-value), computed once.
struct Group {
    tier: Option<usize>,
    counts: Vec<u32>,
    weight: u64,
}

/// Each account's neighbours per tier, `tiers` counts per account, with the
/// tiers held as `T` and an unknown tier as `unknown`.
fn neighbour_counts<T>(
    labels: &[Option<usize>],
    tiers: usize,
    nb: &Neighbours,
    unknown: T,
) -> Vec<u32>
where
    T: Copy + PartialEq + Send + Sync + TryFrom<usize> + Into<usize>,
{
    let compact: Vec<T> = labels
        .iter()
        .map(|l| l.and_then(|t| T::try_from(t).ok()).unwrap_or(unknown))
        .collect();
    let mut counts = vec![0u32; labels.len() * tiers];
    if tiers == 0 {
        return counts;
    }
    counts.par_chunks_mut(tiers).enumerate().for_each(|(i, c)| {
        for j in nb.row(i) {
            if compact[j] != unknown {
                c[compact[j].into()] += 1;
            }
        }
    });
    counts
}

/// Evidence for every account (None: unknown tier, or no neighbour with one).
pub fn gather(
    labels: &[Option<usize>],
    tiers: usize,
    nb: &Neighbours,
    fdr: f64,
) -> (Table, EvidenceSummary) {
    let n = labels.len();
    // The tiers as one byte per account (a word past 254 tiers), so the
    // neighbours' lookups hit a table a sixteenth the size: at 10M accounts
    // they are 150M reads at random.
    let counts: Vec<u32> = if tiers < u8::MAX as usize {
        neighbour_counts(labels, tiers, nb, u8::MAX)
    } else {
        neighbour_counts(labels, tiers, nb, usize::MAX)
    };
    let count = |i: usize| &counts[i * tiers..(i + 1) * tiers];
    let mut base = vec![0u64; tiers];
    let mut mix = vec![vec![1.0f64; tiers]; tiers]; // add-one smoothing
    for (i, l) in labels.iter().enumerate() {
        if let Some(t) = *l {
            base[t] += 1;
            for (s, &c) in count(i).iter().enumerate() {
                mix[t][s] += c as f64;
            }
        }
    }
    // Each account's group, groups in order of first appearance.
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: Vec<u32> = Vec::with_capacity(n);
    {
        let mut index: foldhash::HashMap<(Option<usize>, &[u32]), u32> =
            foldhash::HashMap::default();
        for (i, l) in labels.iter().enumerate() {
            let c = count(i);
            let g = *index.entry((*l, c)).or_insert_with(|| {
                groups.push(Group {
                    tier: *l,
                    counts: c.to_vec(),
                    weight: 0,
                });
                groups.len() as u32 - 1
            });
            groups[g as usize].weight += 1;
            group_of.push(g);
        }
    }
    drop(counts);
    let known: u64 = base.iter().sum();
    let pi: Vec<f64> = base
        .iter()
        .map(|&b| b as f64 / known.max(1) as f64)
        .collect();
    for row in mix.iter_mut() {
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    let ln_theta: Vec<Vec<f64>> = mix
        .iter()
        .map(|r| r.iter().map(|v| v.ln()).collect())
        .collect();
    // ln P(neighbours' tiers | behaves like tier s), per group.
    let loglik: Vec<Vec<f64>> = groups
        .iter()
        .map(|g| {
            (0..tiers)
                .map(|s| {
                    g.counts
                        .iter()
                        .zip(&ln_theta[s])
                        .map(|(&n, l)| n as f64 * l)
                        .sum()
                })
                .collect()
        })
        .collect();
    let temper = temperature(&groups, &loglik, &pi);
    let per_group: Vec<Option<Evidence>> = groups
        .iter()
        .zip(&loglik)
        .map(|(g, loglik)| {
            let c = g.tier?;
            let k: u32 = g.counts.iter().sum();
            if k == 0 || tiers < 2 {
                return None;
            }
            let posterior = posterior(&pi, loglik, temper);
            let suggested = (0..tiers)
                .filter(|&t| t != c)
                .max_by(|&a, &b| posterior[a].total_cmp(&posterior[b]).then(b.cmp(&a)))?;
            // Own tier depleted: P(at most n_c of K neighbours in c) when an
            // account of tier c has each neighbour in c with probability θ_c[c].
            let own = g.counts[c] as u64;
            let p_value = binomial_sf(k as u64 - own, k as u64, 1.0 - mix[c][c]);
            Some(Evidence {
                counts: g.counts.as_slice().into(),
                suggested,
                p_value,
                q_value: 1.0,
                posterior: posterior.into(),
            })
        })
        .collect();
    let of = |i: usize| per_group[group_of[i] as usize].as_ref();
    let tested: Vec<usize> = (0..n).filter(|&i| of(i).is_some()).collect();
    let p: Vec<f64> = tested
        .iter()
        .map(|&i| of(i).expect("tested").p_value)
        .collect();
    let mut q = vec![1.0; n];
    for (&i, qi) in tested.iter().zip(bh_adjust(&p)) {
        q[i] = qi;
    }
    let out = Table {
        groups: per_group,
        group_of,
        q,
    };
    let flagged = tested
        .iter()
        .filter(|&&i| out.flags(i, labels[i].expect("tested"), fdr))
        .count();
    let summary = EvidenceSummary {
        neighbours: nb.k,
        fdr,
        tested: tested.len(),
        flagged,
        neighbour_mix: mix,
        temperature: temper,
    };
    (out, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{seq::SliceRandom, SeedableRng};

    /// Two well-separated groups on a line, each its own tier; neighbours are
    /// the 10 nearest positions in the same group.
    fn two_groups(n: usize) -> (Vec<Option<usize>>, Neighbours) {
        let k = 10;
        let mut idx = Vec::with_capacity(n * k);
        for i in 0..n {
            let g = i / (n / 2);
            let lo = g * (n / 2);
            let hi = lo + n / 2;
            let mut near: Vec<usize> = (lo..hi).filter(|&j| j != i).collect();
            near.sort_by_key(|&j| (j as i64 - i as i64).abs());
            idx.extend(near.iter().take(k).map(|&j| j as u32));
        }
        let labels = (0..n).map(|i| Some(i / (n / 2))).collect();
        (labels, Neighbours { k, idx })
    }

    #[test]
    fn an_account_among_the_other_tier_is_flagged_towards_it() {
        let (mut labels, nb) = two_groups(400);
        labels[50] = Some(1); // in group 0, labelled 1
        labels[300] = Some(0);
        let (ev, sum) = gather(&labels, 2, &nb, 0.05);
        let flagged: Vec<usize> = (0..400)
            .filter(|&i| ev.get(i).is_some_and(|e| e.flags(labels[i].unwrap(), 0.05)))
            .collect();
        assert_eq!(flagged, vec![50, 300]);
        let by_table: Vec<usize> = (0..400)
            .filter(|&i| ev.flags(i, labels[i].unwrap(), 0.05))
            .collect();
        assert_eq!(by_table, flagged);
        assert_eq!(ev.get(50).unwrap().suggested, 0);
        assert!(ev.get(50).unwrap().posterior[0] > 0.9);
        assert!(ev.get(50).unwrap().q_value <= 0.05);
        assert_eq!(sum.flagged, 2);
    }

    #[test]
    fn the_byte_and_word_tier_tables_count_alike() {
        let (mut labels, nb) = two_groups(400);
        labels[7] = None;
        labels[300] = Some(0);
        let byte = neighbour_counts(&labels, 2, &nb, u8::MAX);
        assert_eq!(byte, neighbour_counts(&labels, 2, &nb, usize::MAX));
        // Account 6's ten neighbours: 1..=5 and 7..=11 (7 of unknown tier).
        assert_eq!(&byte[12..14], &[9, 0]);
        // Past 254 tiers, a tier above a byte's range is still counted.
        let wide: Vec<Option<usize>> = (0..400).map(|i| Some(i % 2 * 299)).collect();
        let c = neighbour_counts(&wide, 300, &nb, usize::MAX);
        assert_eq!(c[..300].iter().sum::<u32>(), 10);
        assert!(c[299] > 0);
    }

    #[test]
    fn shuffled_tiers_flag_almost_nothing() {
        let (labels, nb) = two_groups(2000);
        let mut shuffled: Vec<Option<usize>> = labels.clone();
        shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(1));
        let (_, sum) = gather(&shuffled, 2, &nb, 0.05);
        assert!(sum.flagged <= 10, "{} of 2000 flagged", sum.flagged);
    }

    #[test]
    fn relabelling_the_tiers_permutes_the_evidence() {
        let (mut labels, nb) = two_groups(400);
        labels[50] = Some(1);
        let swapped: Vec<Option<usize>> = labels.iter().map(|l| l.map(|t| 1 - t)).collect();
        let (a, _) = gather(&labels, 2, &nb, 0.05);
        let (b, _) = gather(&swapped, 2, &nb, 0.05);
        for i in 0..400 {
            let (x, y) = (a.get(i).unwrap(), b.get(i).unwrap());
            assert_eq!(x.q_value, y.q_value);
            assert_eq!(x.suggested, 1 - y.suggested);
            assert!((x.p_value - y.p_value).abs() < 1e-12);
            assert!((x.posterior[0] - y.posterior[1]).abs() < 1e-9);
        }
    }
}
