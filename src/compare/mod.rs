//! Comparison with the business's tiers: do our tiers match how customers
//! behave, and which accounts sit in the wrong tier?
//!
//! For each segmentation (k-means, communities) this stage computes
//!
//! * **agreement** with the current tiers — contingency table, ARI, AMI, NMI,
//!   homogeneity, completeness, V-measure, purity ([`crate::partition`]) — and
//!   a **verdict** ([`Verdict`]) from the chance-corrected AMI and the G-test
//!   of independence (`G = 2·N·MI`, χ² with (r − 1)(c − 1) degrees of
//!   freedom): `none` when the p-value is above 0.001 or AMI below 0.05, then
//!   `weak` below 0.15, `moderate` below 0.35, `strong` above. At `none` the
//!   tiers do not follow behaviour and strata says so;
//! * a **segment → tier mapping by enrichment**: a segment maps to a tier only
//!   where that tier is over-represented against its base rate — the one-sided
//!   hypergeometric (Fisher) test, Benjamini–Hochberg over all segment × tier
//!   cells at q = 0.05, and an odds ratio of at least 2 (inside the segment
//!   against outside it) so that a significant sliver (26% against a base of
//!   25%) does not count. Otherwise the segment is **mixed** and suggests no
//!   tier. Lift (share in the segment ÷ base rate) is reported per cell;
//! * **exceptions from per-account evidence** ([`evidence`]): the tiers of each
//!   account's behavioural neighbours against the base rates, with
//!   false-discovery-rate control (`tiers.fdr`) and a calibrated confidence;
//!   direction from the tier order (towards a higher-touch tier: upgrade);
//!   in **bands** ([`Band`]: strong, likely, needs review — a low confidence
//!   or no feature reason; held back, never a suggested move), ranked by band
//!   then confidence × value at stake. Each exception's **reasons** are the
//!   features that separate its current tier from the suggested one (medians
//!   at least [`MIN_SEPARATION`] robust standard deviations apart) and on
//!   which it sits past the midpoint, on the suggested tier's side; it
//!   always says how many of its neighbours are in the suggested tier;
//! * **profiles** ([`profile`]): size, shares, medians, distinguishing features
//!   and a generated name for every segment;
//! * the **k-means × community cross-map**.

pub mod assign;
pub mod evidence;
pub mod outcome_stats;
pub mod outcomes;
pub mod profile;
mod reasons;
pub mod stats;

use std::borrow::Cow;
use std::collections::BTreeMap;

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::cluster::Segmentation;
use crate::config::{Pipeline, TierSource, Tiers};
use crate::error::{Error, Result};
use crate::features::FeatureMatrix;
use crate::guard::guard;
use crate::ingest::AccountFrame;
use crate::memory::trace;
use crate::partition::{agreement, Agreement, Contingency};
use profile::Profile;
use reasons::TierMedians;
pub use reasons::{MIN_RELATIVE_GAP, MIN_SEPARATION};

/// Each account's current tier (index into `names`, None when unknown).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CurrentTiers {
    pub names: Vec<String>,
    #[serde(skip)]
    pub labels: Vec<Option<usize>>,
    /// Values seen in the data that are not in `tiers.order`, with counts.
    pub unknown: BTreeMap<String, usize>,
}

/// Evaluate where each account's tier comes from.
pub fn current_tiers(t: &Tiers, frame: &AccountFrame) -> Result<CurrentTiers> {
    let values: Vec<Option<String>> = match &t.source {
        TierSource::Feature(name) | TierSource::Column(name) => frame
            .df
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        TierSource::Rules { rules, default } => {
            let mut expr: Option<Expr> = None;
            for (tier, _, cond) in rules.iter().rev() {
                let otherwise = expr.take().unwrap_or_else(|| lit(default.clone()));
                expr = Some(
                    when(cond.clone())
                        .then(lit(tier.clone()))
                        .otherwise(otherwise),
                );
            }
            let expr = expr.unwrap_or_else(|| lit(default.clone())).alias("__tier");
            let out = guard(|| frame.df.clone().lazy().select([expr.clone()]).collect()).map_err(
                |e| {
                    Error::Usage(format!(
                        "tier rules failed: {e} (rules are Polars SQL over the features)"
                    ))
                },
            )?;
            out.column("__tier")?
                .str()?
                .iter()
                .map(|v| v.map(str::to_string))
                .collect()
        }
    };
    let mut unknown = BTreeMap::new();
    let labels = values
        .iter()
        .map(|v| match v {
            Some(v) => match t.order.iter().position(|o| o == v) {
                Some(i) => Some(i),
                None => {
                    *unknown.entry(v.clone()).or_default() += 1;
                    None
                }
            },
            None => None,
        })
        .collect();
    Ok(CurrentTiers {
        names: t.order.clone(),
        labels,
        unknown,
    })
}

/// Fewest accounts with a known tier on which agreement with the tiers is
/// measured; below it no agreement is reported and no exception flagged.
pub const MIN_TIERED_ACCOUNTS: usize = 20;

/// What the tiers in the data say about the pipeline's `tiers` section, as
/// (severity, code, message, hint): no known tier at all is an error (every
/// metric would be computed on nothing); too few for agreement, and values
/// outside `tiers.order`, are warnings.
pub fn tier_findings(
    t: &Tiers,
    tiers: &CurrentTiers,
    max_unknown: f64,
) -> Vec<(crate::quality::Severity, &'static str, String, String)> {
    use crate::quality::Severity;
    let known = tiers.labels.iter().flatten().count();
    let mut seen: Vec<(&String, &usize)> = tiers.unknown.iter().collect();
    seen.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let listed = seen
        .iter()
        .take(8)
        .map(|(v, n)| format!("`{v}` ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    let guess = tier_guesses(t, &seen);
    let order = t.order.join(", ");
    let mut out = Vec::new();
    if known == 0 {
        let message = if seen.is_empty() {
            "no account has a tier: the tier is empty for every account".to_string()
        } else {
            format!("no account has a tier named in tiers.order ({order}); the data has {listed}{guess}")
        };
        out.push((
            Severity::Error,
            "no_known_tier",
            message,
            "make tiers.order list the tier names exactly as the data writes them".into(),
        ));
        return out;
    }
    // A tier of `order` nobody has is a misspelling when the tiers come from
    // the data (rules may legitimately match nobody this month).
    out.extend(unseen_tiers(t, tiers, &seen));
    if known < MIN_TIERED_ACCOUNTS {
        out.push((
            Severity::Warning,
            "few_tiered_accounts",
            format!("only {known} account(s) have a tier in tiers.order: too few to measure agreement with the tiers, so none is reported and no exceptions are flagged"),
            format!("at least {MIN_TIERED_ACCOUNTS} accounts need a known tier"),
        ));
    }
    if !seen.is_empty() {
        let n: usize = seen.iter().map(|(_, n)| **n).sum();
        let share = n as f64 / tiers.labels.len().max(1) as f64;
        out.push((
            if share > max_unknown { Severity::Error } else { Severity::Warning },
            "unknown_tier",
            format!("{n} account(s) ({:.0}%) have a tier not in tiers.order ({order}) and are left out of the comparison: {listed}{guess}", share * 100.0),
            format!("add those tiers to tiers.order, or correct them in the data (more than quality.max_unknown_tiers = {max_unknown} of accounts is an error)"),
        ));
    }
    out
}

/// " (did you mean `Hybird` → `Hybrid`?, …)" for tiers in the data near
/// one of `order`.
fn tier_guesses(t: &Tiers, seen: &[(&String, &usize)]) -> String {
    let guesses: Vec<String> = seen
        .iter()
        .filter_map(|(v, _)| {
            t.order
                .iter()
                .map(|o| (strsim::levenshtein(&o.to_lowercase(), &v.to_lowercase()), o))
                .filter(|(d, _)| *d <= 3)
                .min()
                .map(|(_, o)| format!("`{v}` → `{o}`?"))
        })
        .take(5)
        .collect();
    if guesses.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {})", guesses.join(", "))
    }
}

/// A finding per tier of `order` no account has (`seen`: the tiers in the
/// data not in `order`, with counts).
fn unseen_tiers(
    t: &Tiers,
    tiers: &CurrentTiers,
    seen: &[(&String, &usize)],
) -> Vec<(crate::quality::Severity, &'static str, String, String)> {
    use crate::quality::Severity;
    let mut out = Vec::new();
    let mut count = vec![0usize; t.order.len()];
    for l in tiers.labels.iter().flatten() {
        count[*l] += 1;
    }
    for (name, _) in t.order.iter().zip(&count).filter(|(_, c)| **c == 0) {
        let like = seen
            .iter()
            .map(|(v, _)| {
                (
                    strsim::levenshtein(&v.to_lowercase(), &name.to_lowercase()),
                    *v,
                )
            })
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, v)| format!("; did you mean `{v}` (in the data)?"))
            .unwrap_or_default();
        let from_data = matches!(t.source, TierSource::Feature(_) | TierSource::Column(_));
        out.push((
            if from_data {
                Severity::Error
            } else {
                Severity::Warning
            },
            "unseen_tier",
            format!("no account has tier `{name}` of tiers.order{like}"),
            if from_data {
                "write the tier in tiers.order exactly as the data does, or remove it".into()
            } else {
                "no rule gives this tier to any account: check the rules".into()
            },
        ));
    }
    out
}

/// One segment's tier mapping.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SegmentTier {
    /// The segment's index (label) in this run.
    pub segment: usize,
    /// Its stable ID (the one shown to analysts; see [`crate::history`]).
    pub id: u32,
    pub size: usize,
    /// The tier significantly over-represented in the segment; None: the
    /// segment is mixed and suggests no tier.
    pub tier: Option<String>,
    /// The segment's most common current tier, and its share of the
    /// segment's accounts with a known tier.
    pub most_common: String,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub share: f64,
    /// Per tier: its share in the segment ÷ its share of all accounts.
    #[serde(deserialize_with = "crate::schema::real::list")]
    pub lift: Vec<f64>,
    /// Per tier: the Benjamini–Hochberg q-value of its over-representation.
    #[serde(deserialize_with = "crate::schema::real::list")]
    pub q_value: Vec<f64>,
    /// The tier paired with this segment by the one-to-one assignment, if any.
    pub matched_tier: Option<String>,
    /// A close call: another significantly over-represented tier's lift is
    /// within [`CLOSE_CALL`] of the mapped tier's, so the mapping could as
    /// well have gone to it (`close_to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_to: Option<String>,
}

/// Relative lift difference under which a mapping is a close call.
pub const CLOSE_CALL: f64 = 0.05;

/// How well a segmentation follows the tiers, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    None,
    Weak,
    Moderate,
    Strong,
}

/// Above this p-value of the G-test the agreement is called `none`.
pub const VERDICT_P: f64 = 0.001;
/// AMI thresholds: below the first `none`, then `weak`, `moderate`, `strong`.
pub const VERDICT_AMI: [f64; 3] = [0.05, 0.15, 0.35];
/// Cell q-value and odds ratio a segment → tier mapping needs.
pub const MAPPING_Q: f64 = 0.05;
pub const MAPPING_ODDS: f64 = 2.0;

impl Verdict {
    pub fn of(ami: f64, p_value: f64) -> Verdict {
        if p_value > VERDICT_P || ami < VERDICT_AMI[0] {
            Verdict::None
        } else if ami < VERDICT_AMI[1] {
            Verdict::Weak
        } else if ami < VERDICT_AMI[2] {
            Verdict::Moderate
        } else {
            Verdict::Strong
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            Verdict::None => "none",
            Verdict::Weak => "weak",
            Verdict::Moderate => "moderate",
            Verdict::Strong => "strong",
        }
    }
    /// A sentence for the summary and the report.
    pub fn sentence(self) -> &'static str {
        match self {
            Verdict::None => "no agreement: today's tiers do not follow how these accounts behave (at chance level, or not significant), so behaviour gives no reason to move accounts between tiers; only accounts with strong evidence of their own are listed as exceptions",
            Verdict::Weak => "weak agreement: today's tiers follow behaviour only slightly",
            Verdict::Moderate => "moderate agreement: today's tiers partly follow behaviour",
            Verdict::Strong => "strong agreement: today's tiers largely follow behaviour",
        }
    }
}

/// The G-test of independence between segments and tiers.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct IndependenceTest {
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub g: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub df: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub p_value: f64,
}

/// One segmentation compared with the tiers.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct MethodComparison {
    pub method: Cow<'static, str>,
    /// Agreement with the tiers (tiers as the "true" labels), on accounts with
    /// a known tier; None (`null`) when fewer than [`MIN_TIERED_ACCOUNTS`] have one.
    pub agreement: Option<Agreement>,
    /// The G-test of independence, and the verdict (None with the agreement).
    pub test: Option<IndependenceTest>,
    pub verdict: Option<Verdict>,
    /// The verdict in words ([`Verdict::sentence`]), for the report.
    pub verdict_text: Option<Cow<'static, str>>,
    /// segment × tier account counts.
    pub contingency: Vec<Vec<u64>>,
    pub mapping: Vec<SegmentTier>,
}

/// Why an account looks like another tier, for one feature.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Reason {
    pub feature: String,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub value: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub current_tier_median: f64,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub suggested_tier_median: f64,
    pub text: String,
}

/// How far a CSM can lean on a flag, in words: *strong* (confidence of at
/// least [`BAND_STRONG`] and at least two features that say so), *likely*
/// (confidence of at least [`BAND_LIKELY`] and one feature) and *needs
/// review* — a lower confidence, or no feature that says so (only the
/// neighbours do). Flags needing review are held back: listed after the
/// others, never counted as a suggested move.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Strong,
    #[default]
    Likely,
    NeedsReview,
}

/// Confidence of a strong flag, and of a likely one.
pub const BAND_STRONG: f64 = 0.95;
pub const BAND_LIKELY: f64 = 0.8;

impl Band {
    pub fn of(confidence: f64, reasons: usize) -> Band {
        if reasons == 0 || !(confidence >= BAND_LIKELY) {
            Band::NeedsReview
        } else if confidence >= BAND_STRONG && reasons >= 2 {
            Band::Strong
        } else {
            Band::Likely
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            Band::Strong => "strong",
            Band::Likely => "likely",
            Band::NeedsReview => "needs review",
        }
    }
    /// Whether the flag is a move strata suggests (strong or likely).
    pub fn suggests(self) -> bool {
        self != Band::NeedsReview
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExceptionKind {
    Upgrade,
    Downgrade,
}

/// An account in the wrong tier.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Exception {
    pub account_id: String,
    #[serde(skip)]
    pub row: usize,
    pub kind: ExceptionKind,
    pub current_tier: String,
    pub suggested_tier: String,
    /// Index (label) of the account's segment in the method exceptions come from.
    pub segment: usize,
    /// That segment's stable ID.
    pub segment_id: u32,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub confidence: f64,
    /// The confidence in words, and whether the flag is held back.
    #[serde(default)]
    pub band: Band,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub value_at_stake: f64,
    /// The value at stake in plain units ("$389k").
    pub value_text: String,
    /// Features on which the account sits on the suggested tier's side of
    /// its current tier's median (may be none).
    pub reasons: Vec<Reason>,
    /// What its neighbours say: "12 of its 15 most similar accounts are High
    /// Touch (12% of all accounts are)".
    pub evidence: String,
    /// Benjamini–Hochberg q-value of that evidence.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub q_value: f64,
}

impl Exception {
    /// What the flag means for service, the reasons, then the neighbours'
    /// evidence, in one line: "needs more attention, like High Touch: ARR
    /// $389k (typical High Touch $241k, Hybrid $46k); 12 of its 15 most
    /// similar accounts are High Touch (12% of all accounts are)".
    pub fn reason_text(&self) -> String {
        let lead = match (self.band, self.kind) {
            (Band::NeedsReview, _) if self.reasons.is_empty() => {
                "needs review: no feature sets it apart from its tier".to_string()
            }
            (Band::NeedsReview, _) => format!("needs review, may be {}", self.suggested_tier),
            (_, ExceptionKind::Upgrade) => {
                format!("needs more attention, like {}", self.suggested_tier)
            }
            (_, ExceptionKind::Downgrade) => {
                format!("needs less attention, like {}", self.suggested_tier)
            }
        };
        let mut parts: Vec<&str> = self.reasons.iter().map(|r| r.text.as_str()).collect();
        parts.push(&self.evidence);
        format!("{lead}: {}", parts.join("; "))
    }
}

/// Which community segments sit inside which k-means segments.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CrossMap {
    pub agreement: Agreement,
    /// kmeans segment × community segment counts.
    pub contingency: Vec<Vec<u64>>,
    /// For each community: the k-means segment holding most of it, and that share.
    #[serde(deserialize_with = "crate::schema::real::indexed")]
    pub community_in_kmeans: Vec<(usize, f64)>,
}

/// Everything the compare stage found.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Comparison {
    /// None when the pipeline declares no [tiers].
    pub tiers: Option<CurrentTiers>,
    pub methods: Vec<MethodComparison>,
    pub cross: Option<CrossMap>,
    pub exceptions_from: Cow<'static, str>,
    pub exceptions: Vec<Exception>,
    /// How the per-account evidence was gathered (None without tiers or neighbours).
    pub evidence: Option<evidence::EvidenceSummary>,
    /// The value at stake's label and unit ("ARR", usd), from the value feature.
    pub value_label: String,
    pub value_unit: crate::config::Unit,
    pub profiles: Vec<Profile>,
    /// Suggested tier per account (None without a comparison).
    #[serde(skip)]
    pub suggested: Vec<Option<usize>>,
    /// Each declared outcome by group and against the exceptions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<outcomes::OutcomeAnalysis>,
}

impl Comparison {
    /// The profile of one method's segment (by label, not ID).
    pub fn profile(&self, method: &str, segment: usize) -> Option<&Profile> {
        self.profiles
            .iter()
            .find(|p| p.method == method && p.segment == segment)
    }
}

fn compare_method(seg: &Segmentation, tiers: &CurrentTiers) -> MethodComparison {
    let known: Vec<usize> = (0..seg.labels.len())
        .filter(|&i| tiers.labels[i].is_some())
        .collect();
    let a: Vec<usize> = known
        .iter()
        .map(|&i| tiers.labels[i].expect("known"))
        .collect();
    let b: Vec<usize> = known.iter().map(|&i| seg.labels[i]).collect();
    let measured = known.len() >= MIN_TIERED_ACCOUNTS;
    let agreement = measured.then(|| agreement(&a, &b));
    let test = measured.then(|| independence_test(&b, &a));
    let verdict = match (&agreement, &test) {
        (Some(ag), Some(t)) => Some(Verdict::of(ag.ami, t.p_value)),
        _ => None,
    };
    let k = seg.k();
    let t = tiers.names.len();
    let mut table = vec![vec![0u64; t]; k];
    for (&s, &ti) in b.iter().zip(&a) {
        table[s][ti] += 1;
    }
    let score: Vec<Vec<f64>> = table
        .iter()
        .map(|r| r.iter().map(|&v| v as f64).collect())
        .collect();
    let matched = assign::maximise(&score);
    // Enrichment of every tier in every segment, corrected over all cells.
    let n = known.len() as u64;
    let tier_total: Vec<u64> = (0..t).map(|j| table.iter().map(|r| r[j]).sum()).collect();
    let seg_total: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
    let q = enrichment_q(&table, n, &tier_total, &seg_total);
    let share_of = |v: u64, of: u64| if of > 0 { v as f64 / of as f64 } else { 0.0 };
    let mapping = (0..k)
        .map(|s| {
            let total = seg_total[s];
            // Most common tier; ties go to the higher-touch tier (lower index).
            let (best, count) =
                table[s]
                    .iter()
                    .enumerate()
                    .fold((0, 0), |acc, (j, &v)| if v > acc.1 { (j, v) } else { acc });
            let lift: Vec<f64> = (0..t)
                .map(|j| {
                    let base = share_of(tier_total[j], n);
                    if base > 0.0 {
                        share_of(table[s][j], total) / base
                    } else {
                        0.0
                    }
                })
                .collect();
            // Odds of tier j inside the segment against outside it, with
            // Haldane–Anscombe's ½ in every cell.
            let odds = |j: usize| {
                let inside = table[s][j] as f64;
                let inside_not = (total - table[s][j]) as f64;
                let outside = (tier_total[j] - table[s][j]) as f64;
                let outside_not = (n - total) as f64 - outside;
                ((inside + 0.5) * (outside_not + 0.5)) / ((inside_not + 0.5) * (outside + 0.5))
            };
            let significant: Vec<usize> = (0..t)
                .filter(|&j| q[s * t + j] <= MAPPING_Q && odds(j) >= MAPPING_ODDS)
                .collect();
            let mapped = significant
                .iter()
                .copied()
                .max_by(|&x, &y| lift[x].total_cmp(&lift[y]).then(y.cmp(&x)));
            let close_to = mapped.and_then(|best| {
                significant
                    .iter()
                    .copied()
                    .filter(|&j| j != best && lift[j] >= lift[best] * (1.0 - CLOSE_CALL))
                    .max_by(|&x, &y| lift[x].total_cmp(&lift[y]))
            });
            SegmentTier {
                segment: s,
                id: seg.ids[s],
                size: seg.sizes[s],
                tier: mapped.filter(|_| measured).map(|j| tiers.names[j].clone()),
                most_common: tiers.names[best].clone(),
                share: share_of(count, total),
                lift,
                q_value: q[s * t..(s + 1) * t].to_vec(),
                matched_tier: matched[s].map(|j| tiers.names[j].clone()),
                close_to: close_to
                    .filter(|_| measured)
                    .map(|j| tiers.names[j].clone()),
            }
        })
        .collect();
    MethodComparison {
        method: seg.method.clone(),
        agreement,
        test,
        verdict,
        verdict_text: verdict.map(|v| v.sentence().into()),
        contingency: table,
        mapping,
    }
}

/// The G-test of independence between segments `b` and tiers `a`.
fn independence_test(b: &[usize], a: &[usize]) -> IndependenceTest {
    let c = Contingency::new(b, a);
    let g = 2.0 * c.n as f64 * crate::partition::mutual_info(&c);
    let r = c.rows.iter().filter(|&&v| v > 0).count();
    let k = c.cols.iter().filter(|&&v| v > 0).count();
    let df = ((r.max(1) - 1) * (k.max(1) - 1)) as f64;
    IndependenceTest {
        g,
        df,
        p_value: stats::chi2_sf(g.max(0.0), df),
    }
}

/// Each segment × tier cell's enrichment (hypergeometric upper tail),
/// Benjamini–Hochberg adjusted over all cells, row by row.
fn enrichment_q(table: &[Vec<u64>], n: u64, tier_total: &[u64], seg_total: &[u64]) -> Vec<f64> {
    let mut p = Vec::with_capacity(table.len() * tier_total.len());
    for (s, row) in table.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            p.push(stats::hypergeom_sf(v, n, tier_total[j], seg_total[s]));
        }
    }
    stats::bh_adjust(&p)
}

fn cross_map(km: &Segmentation, cm: &Segmentation) -> CrossMap {
    let c = Contingency::new(&km.labels, &cm.labels);
    let community_in_kmeans = (0..c.cols.len())
        .map(|j| {
            let (best, v) = (0..c.rows.len())
                .map(|i| (i, c.table[i][j]))
                .fold((0, 0), |acc, x| if x.1 > acc.1 { x } else { acc });
            (
                best,
                if c.cols[j] > 0 {
                    v as f64 / c.cols[j] as f64
                } else {
                    0.0
                },
            )
        })
        .collect();
    CrossMap {
        agreement: agreement(&km.labels, &cm.labels),
        contingency: c.table,
        community_in_kmeans,
    }
}

/// Every segment's profile (before segment identities are matched to last
/// month's, see [`crate::history::identify`], which gives them their IDs and
/// carried-over names).
pub fn profiles(
    p: &Pipeline,
    frame: &AccountFrame,
    m: &FeatureMatrix,
    segs: &[Segmentation],
) -> Result<Vec<Profile>> {
    let t = std::time::Instant::now();
    let value = value_column(p, frame)?;
    let columns = profile::Columns::new(p, frame);
    trace("profiles' columns", t);
    let out = segs
        .iter()
        .flat_map(|s| profile::profiles(p, &columns, m, s, value.as_deref()))
        .collect();
    trace("profiles", t);
    Ok(out)
}

/// The value at stake per account (the tiers' `value` feature).
pub fn value_column(p: &Pipeline, frame: &AccountFrame) -> Result<Option<Vec<Option<f64>>>> {
    Ok(match p.tiers.as_ref().and_then(|t| t.value.as_ref()) {
        Some(v) => Some(frame.df.column(v)?.f64()?.iter().collect()),
        None => None,
    })
}

/// Run the compare stage on identified segmentations and their profiles.
pub fn compare(
    p: &Pipeline,
    frame: &AccountFrame,
    tiers: Option<CurrentTiers>,
    m: &FeatureMatrix,
    segs: &[Segmentation],
    profiles: Vec<Profile>,
) -> Result<Comparison> {
    // The primary method's segments against the second method's groups.
    let cross = match segs {
        [a, b, ..] => Some(cross_map(a, b)),
        _ => None,
    };
    let value = value_column(p, frame)?;
    let value_feature = p
        .tiers
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .and_then(|v| p.features.iter().find(|f| &f.name == v));
    let value_label = value_feature.map_or_else(|| "value".to_string(), |f| f.label.clone());
    let value_unit = value_feature.map_or(crate::config::Unit::Number, |f| f.unit);
    let Some(t) = &p.tiers else {
        let outcomes = outcomes::analyse(p, frame, segs, None, &[], &profiles)?;
        return Ok(Comparison {
            tiers: None,
            methods: Vec::new(),
            cross,
            exceptions_from: segs.first().map_or(Cow::Borrowed(""), |s| s.method.clone()),
            exceptions: Vec::new(),
            evidence: None,
            value_label,
            value_unit,
            profiles,
            suggested: vec![None; m.ids.len()],
            outcomes,
        });
    };
    // The tiers as validation evaluated them; evaluated here for a caller
    // that did not validate.
    let owned = match tiers {
        Some(t) => t,
        None => current_tiers(t, frame)?,
    };
    let tiers = &owned;
    let t0 = std::time::Instant::now();
    let methods: Vec<MethodComparison> = segs.iter().map(|s| compare_method(s, &tiers)).collect();
    trace("tiers against segments", t0);
    let t0 = std::time::Instant::now();
    let primary = segs
        .iter()
        .position(|s| s.method == t.exceptions_from)
        .unwrap_or(0);
    let seg = &segs[primary];
    let nt = tiers.names.len();

    // Per-account evidence: the tiers of each account's neighbours. Too few
    // known tiers to compare with: no evidence, so no exception.
    let measured = methods[primary].agreement.is_some();
    let neighbours = segs.iter().find_map(|s| s.neighbours.clone());
    let (evidence, summary) = match (&neighbours, measured) {
        (Some(nb), true) => {
            let (e, s) = evidence::gather(&tiers.labels, nt, nb, t.fdr);
            (e, Some(s))
        }
        _ => (evidence::Table::none(m.ids.len()), None),
    };
    trace("neighbours' tiers", t0);
    let t0 = std::time::Instant::now();
    let tiers_base = base_rates(tiers);
    let medians = TierMedians::new(p, frame, m, tiers)?;
    trace("tiers' medians", t0);
    let t0 = std::time::Instant::now();
    // The flagged accounts, in row order; their exceptions built in parallel.
    let flagged: Vec<(usize, usize, evidence::Evidence)> = (0..m.ids.len())
        .filter_map(|i| {
            let cur = tiers.labels[i]?;
            evidence
                .flags(i, cur, t.fdr)
                .then(|| Some((i, cur, evidence.get(i)?)))?
        })
        .collect();
    let mut exceptions: Vec<Exception> = flagged
        .par_iter()
        .map(|&(i, cur, ref e)| {
            let v = value.as_ref().and_then(|v| v[i]).unwrap_or(0.0);
            let (seg_ids, units) = ((seg, tiers_base.as_slice()), (v, value_unit));
            exception(i, cur, e, seg_ids, units, m, tiers, &medians)
        })
        .collect();
    let mut suggested: Vec<Option<usize>> = tiers.labels.clone();
    for (x, (i, _, e)) in exceptions.iter().zip(&flagged) {
        if x.band.suggests() {
            suggested[*i] = Some(e.suggested);
        }
    }
    // Strong flags first, then likely ones, then those needing review; by
    // confidence × value at stake within a band.
    exceptions.par_sort_by(|a, b| {
        let pa = a.confidence * a.value_at_stake.max(1.0);
        let pb = b.confidence * b.value_at_stake.max(1.0);
        a.band
            .cmp(&b.band)
            .then(pb.total_cmp(&pa))
            .then_with(|| a.account_id.cmp(&b.account_id))
    });
    trace("exceptions", t0);
    let t0 = std::time::Instant::now();
    let outcomes = outcomes::analyse(p, frame, segs, Some(tiers), &exceptions, &profiles)?;
    trace("outcomes", t0);
    Ok(Comparison {
        tiers: Some(owned),
        methods,
        cross,
        exceptions_from: seg.method.clone(),
        exceptions,
        evidence: summary,
        value_label,
        value_unit,
        profiles,
        suggested,
        outcomes,
    })
}

/// The exception of account `i`: from tier `cur` to the tier its
/// neighbours suggest (`e`), with its segment (`seg`), the value at stake
/// (`v` in `unit`), the reasons and the evidence in words.
#[allow(clippy::too_many_arguments)]
fn exception(
    i: usize,
    cur: usize,
    e: &evidence::Evidence,
    (seg, base): (&Segmentation, &[f64]),
    (v, value_unit): (f64, crate::config::Unit),
    m: &FeatureMatrix,
    tiers: &CurrentTiers,
    medians: &TierMedians,
) -> Exception {
    let sug = e.suggested;
    let reasons = medians.reasons(i, cur, sug, m, tiers);
    let k: u32 = e.counts.iter().sum();
    let evidence_text = format!(
        "{} of its {k} most similar accounts are {} ({:.0}% of all accounts are)",
        e.counts[sug],
        tiers.names[sug],
        base[sug] * 100.0
    );
    let s = seg.labels[i];
    Exception {
        account_id: m.ids[i].clone(),
        row: i,
        kind: if sug < cur {
            ExceptionKind::Upgrade
        } else {
            ExceptionKind::Downgrade
        },
        current_tier: tiers.names[cur].clone(),
        suggested_tier: tiers.names[sug].clone(),
        segment: s,
        segment_id: seg.ids[s],
        confidence: e.posterior[sug],
        band: Band::of(e.posterior[sug], reasons.len()),
        value_at_stake: v,
        value_text: value_unit.format(v),
        reasons,
        evidence: evidence_text,
        q_value: e.q_value,
    }
}

/// Each tier's share of the accounts of known tier.
fn base_rates(tiers: &CurrentTiers) -> Vec<f64> {
    let mut c = vec![0usize; tiers.names.len()];
    for l in tiers.labels.iter().flatten() {
        c[*l] += 1;
    }
    let total: usize = c.iter().sum();
    c.iter().map(|&v| v as f64 / total.max(1) as f64).collect()
}
