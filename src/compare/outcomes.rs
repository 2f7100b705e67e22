//! Does acting on it pay off? Each declared outcome (`[[outcome]]`: churn,
//! renewal, ARR change, …) by group and against the exceptions:
//!
//! * **by group**: for every tier and every segment of every method, the
//!   accounts with a value, and the rate with its Wilson 95% interval (binary)
//!   or the median with its order-statistics interval (numeric). Groups under
//!   [`SMALL_GROUP`] accounts are marked small, not hidden.
//! * **which separates it better**: on the same accounts, Pearson's χ² test
//!   of independence with Cramér's V (binary) or Kruskal–Wallis with ε²
//!   (numeric), for the tiers and for each method, and one sentence saying
//!   which grouping separates the outcome more strongly, or that none does.
//!   A grouping is said to separate an outcome when p < [`ALPHA`] and the
//!   effect reaches [`MIN_V`] (V) or [`MIN_EPSILON2`] (ε²), so a shuffled
//!   outcome is "no association".
//! * **the exceptions**: within each tier, upgrade candidates and downgrade
//!   candidates against the unflagged accounts of that tier (Fisher's exact
//!   test, or Mann–Whitney for numbers), Benjamini–Hochberg adjusted over
//!   the outcome's comparisons. A claim is made only when both groups have at
//!   least [`MIN_CLAIM`] accounts and q < [`CLAIM_Q`].
//!
//! Cost: O(n log n) per numeric outcome and grouping (each group's values
//! sorted for its median); the ranks of all the accounts with a value are
//! made once per outcome ([`Ordered`]) and shared by every grouping that
//! covers them all (a grouping of fewer accounts ranks its own).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::outcome_stats::{
    chi2_independence, fisher_exact, kruskal_wallis, kruskal_wallis_ranked, mann_whitney,
    median_ci, ranks_of_sorted, wilson,
};
use super::stats::bh_adjust;
use super::{CurrentTiers, Exception, ExceptionKind, Profile};
use crate::cluster::{method, Segmentation};
use crate::config::{Good, Outcome, OutcomeKind, Pipeline};
use crate::error::Result;
use crate::ingest::AccountFrame;

/// Groups with fewer accounts (with a value) are marked small.
pub const SMALL_GROUP: usize = 30;
/// Significance for "separates the outcome".
pub const ALPHA: f64 = 0.001;
/// Smallest Cramér's V (binary) that counts as separating.
pub const MIN_V: f64 = 0.1;
/// Smallest ε² (numeric) that counts as separating.
pub const MIN_EPSILON2: f64 = 0.01;
/// Fewest accounts on each side of an exception-vs-rest claim.
pub const MIN_CLAIM: usize = 10;
/// Largest BH q-value of a claim.
pub const CLAIM_Q: f64 = 0.01;

/// One outcome, analysed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutcomeAnalysis {
    pub feature: String,
    pub label: String,
    pub kind: OutcomeKind,
    pub good: Good,
    /// The unit medians are shown in (numeric outcomes).
    pub unit: crate::config::Unit,
    /// All accounts with a value.
    pub overall: GroupOutcome,
    /// The tiers first (when configured), then each method.
    pub groupings: Vec<Grouping>,
    /// Which grouping separates the outcome best, in one sentence.
    pub sentence: String,
    /// Exceptions against the rest of their tier.
    pub exceptions: Vec<ExceptionOutcome>,
}

/// One grouping of the accounts (the tiers, or a method's segments).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grouping {
    /// `tiers`, or the method's name.
    pub grouping: String,
    pub groups: Vec<GroupOutcome>,
    pub test: Option<Association>,
}

/// The outcome in one group of accounts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupOutcome {
    pub group: String,
    /// Accounts with a value.
    pub n: usize,
    /// The rate (binary) or the median (numeric), and its 95% interval.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub value: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub lo: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub hi: f64,
    /// Under [`SMALL_GROUP`] accounts: read with care.
    pub small: bool,
}

/// How strongly a grouping separates the outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Association {
    /// `chi2` (binary) or `kruskal` (numeric).
    pub test: String,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub statistic: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub df: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub p: f64,
    /// Cramér's V or ε².
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub effect: f64,
    pub effect_name: String,
    /// p < [`ALPHA`] and the effect at least [`MIN_V`] / [`MIN_EPSILON2`].
    pub separates: bool,
}

/// One tier's upgrade or downgrade candidates against the rest of the tier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExceptionOutcome {
    pub tier: String,
    pub kind: ExceptionKind,
    pub flagged: GroupOutcome,
    pub rest: GroupOutcome,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub p: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub q: f64,
    /// The claim in words, when the groups are large enough and q small enough.
    pub claim: Option<String>,
}

/// Every outcome of `p`, analysed on the accounts of `frame` (row order of
/// the segmentations' labels).
pub fn analyse(
    p: &Pipeline,
    frame: &AccountFrame,
    segs: &[Segmentation],
    tiers: Option<&CurrentTiers>,
    exceptions: &[Exception],
    profiles: &[Profile],
) -> Result<Vec<OutcomeAnalysis>> {
    // The outcomes at once (each is the same on any number of threads), in
    // their order, the first error first.
    let each: Vec<Result<OutcomeAnalysis>> = p
        .outcomes
        .par_iter()
        .map(|o| {
            let values: Vec<Option<f64>> = frame
                .df
                .column(&o.feature)?
                .cast(&polars::prelude::DataType::Float64)?
                .f64()?
                .iter()
                .map(|v| v.filter(|x| x.is_finite()))
                .collect();
            Ok(analyse_one(o, &values, segs, tiers, exceptions, profiles))
        })
        .collect();
    each.into_iter().collect()
}

fn analyse_one(
    o: &Outcome,
    values: &[Option<f64>],
    segs: &[Segmentation],
    tiers: Option<&CurrentTiers>,
    exceptions: &[Exception],
    profiles: &[Profile],
) -> OutcomeAnalysis {
    let ordered = (o.kind == OutcomeKind::Numeric).then(|| Ordered::new(values));
    let ordered = ordered.as_ref();
    // The tiers, then each segmentation: the groupings are independent, so
    // they are analysed in parallel (and kept in this order).
    let segmentation = |s: &Segmentation| {
        let names: Vec<String> = (0..s.k())
            .map(|l| {
                let name = profiles
                    .iter()
                    .find(|p| p.method == s.method && p.segment == l)
                    .map_or("", |p| p.name.as_str());
                format!("{} {} · {name}", method::member(&s.method), s.ids[l])
            })
            .collect();
        let labels: Vec<Option<usize>> = s.labels.iter().map(|&l| Some(l)).collect();
        grouping(o, &s.method, values, ordered, &labels, &names)
    };
    let ((tier_grouping, exceptions), seg_groupings) = rayon::join(
        || match tiers {
            Some(t) => (
                Some(grouping(o, "tiers", values, ordered, &t.labels, &t.names)),
                against_exceptions(o, values, t, exceptions),
            ),
            None => (None, Vec::new()),
        },
        || segs.par_iter().map(segmentation).collect::<Vec<_>>(),
    );
    let groupings: Vec<Grouping> = tier_grouping.into_iter().chain(seg_groupings).collect();
    OutcomeAnalysis {
        feature: o.feature.clone(),
        label: o.label.clone(),
        kind: o.kind,
        good: o.good,
        unit: o.unit,
        overall: summary(
            o,
            "all accounts",
            match ordered {
                Some(ord) => ord.pairs.iter().map(|p| p.0).collect(),
                None => values.iter().flatten().copied().collect(),
            },
        ),
        sentence: sentence(o, &groupings),
        groupings,
        exceptions,
    }
}

/// A numeric outcome's accounts with a value, sorted once by (value, row),
/// and each account's mid-rank among them: the overall median reads the
/// sorted values, and every grouping that covers all the accounts with a
/// value (each segmentation; the tiers when every account has one) takes
/// its Kruskal–Wallis ranks from here instead of ranking them again.
struct Ordered {
    pairs: Vec<(f64, u32)>,
    /// By row; NaN for a row without a value.
    ranks: Vec<f64>,
    ties: f64,
}

impl Ordered {
    fn new(values: &[Option<f64>]) -> Ordered {
        let mut pairs: Vec<(f64, u32)> = values
            .iter()
            .zip(0u32..)
            .filter_map(|(v, i)| Some(((*v)?, i)))
            .collect();
        pairs.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut ranks = vec![f64::NAN; values.len()];
        let ties = ranks_of_sorted(&pairs, &mut ranks);
        Ordered { pairs, ranks, ties }
    }
}

/// The outcome over the accounts `rows` (those without a value left out).
fn group(o: &Outcome, name: &str, values: &[Option<f64>], rows: &[usize]) -> GroupOutcome {
    summary(o, name, rows.iter().filter_map(|&i| values[i]).collect())
}

/// The outcome over the values `v`.
fn summary(o: &Outcome, name: &str, mut v: Vec<f64>) -> GroupOutcome {
    if o.kind == OutcomeKind::Numeric && !v.is_sorted_by(|a, b| a.total_cmp(b).is_le()) {
        v.par_sort_unstable_by(f64::total_cmp); // equal under total_cmp is equal bits
    }
    let n = v.len();
    let (value, lo, hi) = match o.kind {
        OutcomeKind::Binary => {
            let k = v.iter().filter(|&&x| x > 0.5).count() as u64;
            let (lo, hi) = wilson(k, n as u64);
            (if n > 0 { k as f64 / n as f64 } else { f64::NAN }, lo, hi)
        }
        OutcomeKind::Numeric => median_ci(&v),
    };
    GroupOutcome {
        group: name.to_string(),
        n,
        value,
        lo,
        hi,
        small: n < SMALL_GROUP,
    }
}

/// The outcome in each group of `labels` (`names` by label) and the test of
/// whether the groups differ.
fn grouping(
    o: &Outcome,
    grouping: &str,
    values: &[Option<f64>],
    ordered: Option<&Ordered>,
    labels: &[Option<usize>],
    names: &[String],
) -> Grouping {
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (i, l) in labels.iter().enumerate() {
        if let (Some(l), Some(_)) = (l, values[i]) {
            rows[*l].push(i);
        }
    }
    // Each group's values in row order (sorted by `summary`: reading them
    // off the one sort instead looks up every account's group at random,
    // slower at 10M accounts than sorting each group).
    let groups = names
        .iter()
        .zip(&rows)
        .map(|(name, r)| group(o, name, values, r))
        .collect();
    let test = match o.kind {
        OutcomeKind::Binary => {
            let table: Vec<Vec<u64>> = rows
                .iter()
                .map(|r| {
                    let k = r.iter().filter(|&&i| values[i] > Some(0.5)).count() as u64;
                    vec![k, r.len() as u64 - k]
                })
                .collect();
            chi2_independence(&table).map(|t| Association {
                test: "chi2".into(),
                statistic: t.chi2,
                df: t.df,
                p: t.p,
                effect: t.cramers_v,
                effect_name: "Cramér's V".into(),
                separates: t.p < ALPHA && t.cramers_v >= MIN_V,
            })
        }
        OutcomeKind::Numeric => {
            // Every account with a value in a group: their ranks are all the
            // accounts' ranks, summed per group in row order as
            // `kruskal_wallis` sums them.
            let covered = rows.iter().map(Vec::len).sum::<usize>();
            let test = match ordered.filter(|ord| covered == ord.pairs.len()) {
                Some(ord) => {
                    let sums: Vec<(f64, usize)> = rows
                        .iter()
                        .map(|r| (r.iter().map(|&i| ord.ranks[i]).sum(), r.len()))
                        .collect();
                    kruskal_wallis_ranked(&sums, ord.ties)
                }
                None => {
                    let samples: Vec<Vec<f64>> = rows
                        .iter()
                        .map(|r| r.iter().filter_map(|&i| values[i]).collect())
                        .collect();
                    kruskal_wallis(&samples)
                }
            };
            test.map(|t| Association {
                test: "kruskal".into(),
                statistic: t.h,
                df: t.df,
                p: t.p,
                effect: t.epsilon2,
                effect_name: "ε²".into(),
                separates: t.p < ALPHA && t.epsilon2 >= MIN_EPSILON2,
            })
        }
    };
    Grouping {
        grouping: grouping.to_string(),
        groups,
        test,
    }
}

/// Whether the lead segmentation (the run's first method) separates the
/// outcome more strongly than today's tiers, in one sentence; another
/// method is named when it separates the outcome and the lead does not.
fn sentence(o: &Outcome, groupings: &[Grouping]) -> String {
    let name = |g: &Grouping| {
        if g.grouping == "tiers" {
            return "today's tiers".to_string();
        }
        let (label, noun) = (method::label(&g.grouping), method::noun(&g.grouping));
        if label == noun {
            label
        } else {
            format!("{label} {noun}")
        }
    };
    let effect = |g: &Grouping| g.test.as_ref().map_or(0.0, |t| t.effect);
    let separates = |g: &Grouping| g.test.as_ref().is_some_and(|t| t.separates);
    let what = match o.kind {
        OutcomeKind::Binary => "Cramér's V",
        OutcomeKind::Numeric => "ε²",
    };
    let label = &o.label;
    let tiers = groupings.iter().find(|g| g.grouping == "tiers");
    let methods: Vec<&Grouping> = groupings.iter().filter(|g| g.grouping != "tiers").collect();
    let lead = methods.first().copied();
    let other = methods.iter().skip(1).copied().find(|g| separates(g));
    match (lead, tiers) {
        (Some(l), Some(t)) if separates(l) && separates(t) => {
            let (el, et) = (effect(l), effect(t));
            let how = if el > et * 1.1 {
                "more strongly than"
            } else if et > el * 1.1 {
                "less strongly than"
            } else {
                "about as strongly as"
            };
            format!("{} separate {label} {how} {} ({what} {el:.2} vs {et:.2}).", capital(&name(l)), name(t))
        }
        (Some(l), Some(t)) if separates(l) => format!(
            "{} separate {label} ({what} {:.2}); {} do not ({what} {:.2}).",
            capital(&name(l)),
            effect(l),
            name(t),
            effect(t)
        ),
        (Some(l), None) if separates(l) => {
            format!("{} separate {label} ({what} {:.2}).", capital(&name(l)), effect(l))
        }
        (_, Some(t)) if separates(t) => format!(
            "Today's tiers separate {label} ({what} {:.2}); the segments do not.",
            effect(t)
        ),
        _ => match other {
            Some(g) => format!(
                "{} separate {label} ({what} {:.2}); the lead segments{} do not.",
                capital(&name(g)),
                effect(g),
                if tiers.is_some() { " and today's tiers" } else { "" }
            ),
            None => format!(
                "Neither the segments nor today's tiers separate {label}: no association (p < {ALPHA} with {what} at least {}).",
                match o.kind {
                    OutcomeKind::Binary => MIN_V,
                    OutcomeKind::Numeric => MIN_EPSILON2,
                }
            ),
        },
    }
}

/// `s` with a capital first letter, unless it is a name such as "k-means".
fn capital(s: &str) -> String {
    if s.chars().nth(1) == Some('-') {
        return s.to_string();
    }
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// Within each tier, its upgrade and its downgrade candidates against the
/// unflagged accounts of the tier.
fn against_exceptions(
    o: &Outcome,
    values: &[Option<f64>],
    t: &CurrentTiers,
    exceptions: &[Exception],
) -> Vec<ExceptionOutcome> {
    let mut flagged_kind: Vec<Option<ExceptionKind>> = vec![None; values.len()];
    for e in exceptions {
        flagged_kind[e.row] = Some(e.kind);
    }
    let mut out = Vec::new();
    for (ti, tier) in t.names.iter().enumerate() {
        let in_tier: Vec<usize> = (0..values.len())
            .filter(|&i| t.labels[i] == Some(ti))
            .collect();
        let rest: Vec<usize> = in_tier
            .iter()
            .copied()
            .filter(|&i| flagged_kind[i].is_none())
            .collect();
        for kind in [ExceptionKind::Upgrade, ExceptionKind::Downgrade] {
            let flagged: Vec<usize> = in_tier
                .iter()
                .copied()
                .filter(|&i| flagged_kind[i] == Some(kind))
                .collect();
            if flagged.is_empty() {
                continue;
            }
            let (f, r) = (
                group(o, tier, values, &flagged),
                group(o, tier, values, &rest),
            );
            let p = difference_p(o, values, &flagged, &rest);
            out.push(ExceptionOutcome {
                tier: tier.clone(),
                kind,
                flagged: f,
                rest: r,
                p,
                q: f64::NAN,
                claim: None,
            });
        }
    }
    let q = bh_adjust(
        &out.iter()
            .map(|x| if x.p.is_finite() { x.p } else { 1.0 })
            .collect::<Vec<_>>(),
    );
    for (x, q) in out.iter_mut().zip(q) {
        x.q = q;
        if x.flagged.n >= MIN_CLAIM && x.rest.n >= MIN_CLAIM && q < CLAIM_Q {
            x.claim = Some(claim(o, x));
        }
    }
    out
}

/// p of the difference between two groups' outcomes.
fn difference_p(o: &Outcome, values: &[Option<f64>], a: &[usize], b: &[usize]) -> f64 {
    let x: Vec<f64> = a.iter().filter_map(|&i| values[i]).collect();
    let y: Vec<f64> = b.iter().filter_map(|&i| values[i]).collect();
    if x.is_empty() || y.is_empty() {
        return f64::NAN;
    }
    match o.kind {
        OutcomeKind::Binary => {
            let k1 = x.iter().filter(|&&v| v > 0.5).count() as u64;
            let k2 = y.iter().filter(|&&v| v > 0.5).count() as u64;
            fisher_exact(k1, x.len() as u64 - k1, k2, y.len() as u64 - k2)
        }
        OutcomeKind::Numeric => mann_whitney(&x, &y),
    }
}

/// "Tech Touch upgrade candidates churned 31% vs 7% of the rest of the tier (p < 1e-10)".
fn claim(o: &Outcome, x: &ExceptionOutcome) -> String {
    let kind = match x.kind {
        ExceptionKind::Upgrade => "upgrade",
        ExceptionKind::Downgrade => "downgrade",
    };
    let show = |v: f64| match o.kind {
        OutcomeKind::Binary => format!("{:.1}%", v * 100.0),
        OutcomeKind::Numeric => format!("median {}", o.unit.format(v)),
    };
    format!(
        "{} {kind} candidates: {} {} vs {} of the rest of the tier ({}; {} vs {} accounts)",
        x.tier,
        o.label,
        show(x.flagged.value),
        show(x.rest.value),
        p_text(x.p),
        x.flagged.n,
        x.rest.n
    )
}

/// "p < 1e-10", "p = 3.2e-4".
pub fn p_text(p: f64) -> String {
    if p < 1e-10 {
        "p < 1e-10".into()
    } else {
        format!("p = {p:.1e}")
    }
}

impl OutcomeAnalysis {
    /// A value of this outcome for people: a rate as a percentage, a median
    /// in the feature's unit.
    pub fn show(&self, v: f64) -> String {
        if !v.is_finite() {
            return "–".into();
        }
        match self.kind {
            OutcomeKind::Binary => format!("{:.1}%", v * 100.0),
            OutcomeKind::Numeric => self.unit.format(v),
        }
    }
}

/// Problems of the outcomes' values: a binary outcome must be 0 or 1 (an
/// error naming accounts that are not), as (severity, code, message, hint).
pub fn findings(
    p: &Pipeline,
    frame: &AccountFrame,
) -> Result<Vec<(crate::quality::Severity, &'static str, String, String)>> {
    let mut out = Vec::new();
    for o in p.outcomes.iter().filter(|o| o.kind == OutcomeKind::Binary) {
        let values = frame
            .df
            .column(&o.feature)?
            .cast(&polars::prelude::DataType::Float64)?;
        let ids = frame.df.column(crate::schema::ACCOUNT_ID)?.str()?.clone();
        let bad: Vec<String> = values
            .f64()?
            .iter()
            .zip(ids.iter())
            .filter_map(|(v, id)| {
                let v = v?;
                (v != 0.0 && v != 1.0).then(|| format!("{} ({v})", id.unwrap_or("")))
            })
            .collect();
        if !bad.is_empty() {
            out.push((
                crate::quality::Severity::Error,
                "outcome_not_binary",
                format!(
                    "outcome `{}` is binary but {} account(s) have another value than 0 or 1, e.g. {}",
                    o.feature,
                    bad.len(),
                    bad.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                ),
                "make the feature a 0/1 flag (e.g. CASE WHEN ... THEN 1 ELSE 0 END), or set kind = \"numeric\" on the [[outcome]]".into(),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Each group's size and its median and interval's bits; the test's H and p bits.
    type Plain = (Vec<(usize, [u64; 3])>, Option<[u64; 2]>);

    /// The groups as the plain way computes them: each group's values in
    /// row order, sorted on their own, and Kruskal–Wallis ranking them anew.
    fn plain(values: &[Option<f64>], labels: &[Option<usize>], k: usize) -> Plain {
        let mut groups: Vec<Vec<f64>> = vec![Vec::new(); k];
        for (v, l) in values.iter().zip(labels) {
            if let (Some(v), Some(l)) = (v, l) {
                groups[*l].push(*v);
            }
        }
        let test = kruskal_wallis(&groups).map(|t| [t.h.to_bits(), t.p.to_bits()]);
        let summaries = groups
            .into_iter()
            .map(|mut g| {
                g.sort_by(f64::total_cmp);
                let (m, lo, hi) = median_ci(&g);
                (g.len(), [m.to_bits(), lo.to_bits(), hi.to_bits()])
            })
            .collect();
        (summaries, test)
    }

    #[test]
    fn one_sort_gives_each_groups_median_and_ranks_to_the_bit() {
        let o = Outcome {
            feature: "arr_change".into(),
            label: "ARR change".into(),
            unit: crate::config::Unit::Usd,
            kind: OutcomeKind::Numeric,
            good: Good::High,
        };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let n = 5000;
        // Ties (values rounded), signed zeros, and accounts without a value.
        let values: Vec<Option<f64>> = (0..n)
            .map(|_| match rng.gen_range(0..20) {
                0 => None,
                1 => Some(-0.0),
                2 => Some(0.0),
                _ => Some((rng.gen::<f64>() * 40.0).round() - 20.0),
            })
            .collect();
        let ordered = Ordered::new(&values);
        let names: Vec<String> = (0..4).map(|g| format!("g{g}")).collect();
        // Every account in a group (the shared ranks), then some without one
        // (ranked anew, as the tiers with untiered accounts are).
        for share_unlabelled in [0.0, 0.1] {
            let labels: Vec<Option<usize>> = (0..n)
                .map(|_| (rng.gen::<f64>() >= share_unlabelled).then(|| rng.gen_range(0..4)))
                .collect();
            let got = grouping(&o, "g", &values, Some(&ordered), &labels, &names);
            let (want, test) = plain(&values, &labels, 4);
            for (g, (len, bits)) in got.groups.iter().zip(&want) {
                assert_eq!(g.n, *len);
                assert_eq!([g.value.to_bits(), g.lo.to_bits(), g.hi.to_bits()], *bits);
            }
            let t = got.test.expect("a test");
            assert_eq!(
                Some([t.statistic.to_bits(), t.p.to_bits()]),
                test,
                "{share_unlabelled}"
            );
        }
    }
}
