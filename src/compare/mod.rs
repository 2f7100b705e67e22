//! Comparison with the business's tiers: do our tiers match how customers
//! behave, and which accounts sit in the wrong tier?
//!
//! For each segmentation (k-means, communities) this stage computes
//!
//! * **agreement** with the current tiers — contingency table, ARI, AMI, NMI,
//!   homogeneity, completeness, V-measure, purity ([`crate::partition`]);
//! * a **segment → tier mapping**: each segment's most common current tier and
//!   its share (many segments may map to one tier), plus the one-to-one optimal
//!   assignment by overlap (Hungarian, [`assign`]) for side-by-side views;
//! * **exceptions**: accounts whose current tier differs from the tier their
//!   segment maps to. An account whose segment maps to a *higher-touch* tier is
//!   an upgrade candidate; to a lower-touch tier, a downgrade candidate. Each
//!   gets a confidence and the few features that explain it, in plain units;
//! * **profiles** ([`profile`]): size, shares, medians, distinguishing features
//!   and a generated name for every segment;
//! * the **k-means × community cross-map**.
//!
//! ### Exception confidence
//!
//! `confidence = purity × typicality × agreement`, each in [0, 1]:
//! *purity* is the share of the segment's accounts that are in the suggested
//! tier (a segment that is 90% High Touch says more than one at 40%);
//! *typicality* is how clearly the account belongs to its k-means segment,
//! `(d₂ − d₁) / (d₂ + d₁)` with d₁, d₂ the distances to its own and the
//! nearest other centroid, mapped to [0.5, 1]; *agreement* is 1 when the other
//! method's segment of the account maps to the same tier, else 0.7.
//! Exceptions are ranked by `confidence × value at stake` (ARR by default).

pub mod assign;
pub mod profile;

use std::collections::BTreeMap;

use ndarray::ArrayView2;
use polars::prelude::*;
use serde::Serialize;

use crate::cluster::{Details, Segmentation};
use crate::config::{Kind, Pipeline, TierSource, Tiers};
use crate::error::{Error, Result};
use crate::features::{median, FeatureMatrix};
use crate::ingest::load::guard;
use crate::ingest::AccountFrame;
use crate::partition::{agreement, Agreement, Contingency};
use profile::Profile;

/// Each account's current tier (index into `names`, None when unknown).
#[derive(Debug, Clone, Serialize)]
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
        TierSource::Feature(name) => frame
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
) -> Vec<(crate::config::Severity, &'static str, String, String)> {
    use crate::config::Severity;
    let known = tiers.labels.iter().flatten().count();
    let mut seen: Vec<(&String, &usize)> = tiers.unknown.iter().collect();
    seen.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let listed = seen
        .iter()
        .take(8)
        .map(|(v, n)| format!("`{v}` ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
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
    let guess = if guesses.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {})", guesses.join(", "))
    };
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
        let from_data = matches!(t.source, TierSource::Feature(_));
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

/// One segment's tier mapping.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentTier {
    /// The segment's index (label) in this run.
    pub segment: usize,
    /// Its stable ID (the one shown to analysts; see [`crate::history`]).
    pub id: u32,
    pub size: usize,
    /// The most common current tier among the segment's accounts.
    pub tier: String,
    /// That tier's share of the segment's accounts with a known tier.
    pub share: f64,
    /// The tier paired with this segment by the one-to-one assignment, if any.
    pub matched_tier: Option<String>,
}

/// One segmentation compared with the tiers.
#[derive(Debug, Clone, Serialize)]
pub struct MethodComparison {
    pub method: &'static str,
    /// Agreement with the tiers (tiers as the "true" labels), on accounts with
    /// a known tier; None (`null`) when fewer than [`MIN_TIERED_ACCOUNTS`] have one.
    pub agreement: Option<Agreement>,
    /// segment × tier account counts.
    pub contingency: Vec<Vec<u64>>,
    pub mapping: Vec<SegmentTier>,
}

/// Why an account looks like another tier, for one feature.
#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    pub feature: String,
    pub value: f64,
    pub current_tier_median: f64,
    pub suggested_tier_median: f64,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExceptionKind {
    Upgrade,
    Downgrade,
}

/// An account in the wrong tier.
#[derive(Debug, Clone, Serialize)]
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
    pub confidence: f64,
    pub value_at_stake: f64,
    /// The value at stake in plain units ("$389k").
    pub value_text: String,
    pub reasons: Vec<Reason>,
}

impl Exception {
    pub fn reason_text(&self) -> String {
        self.reasons
            .iter()
            .map(|r| r.text.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Which community segments sit inside which k-means segments.
#[derive(Debug, Clone, Serialize)]
pub struct CrossMap {
    pub agreement: Agreement,
    /// kmeans segment × community segment counts.
    pub contingency: Vec<Vec<u64>>,
    /// For each community: the k-means segment holding most of it, and that share.
    pub community_in_kmeans: Vec<(usize, f64)>,
}

/// Everything the compare stage found.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// None when the pipeline declares no [tiers].
    pub tiers: Option<CurrentTiers>,
    pub methods: Vec<MethodComparison>,
    pub cross: Option<CrossMap>,
    pub exceptions_from: &'static str,
    pub exceptions: Vec<Exception>,
    pub profiles: Vec<Profile>,
    /// Suggested tier per account (None without a comparison).
    #[serde(skip)]
    pub suggested: Vec<Option<usize>>,
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
    let agreement = (known.len() >= MIN_TIERED_ACCOUNTS).then(|| agreement(&a, &b));
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
    let mapping = (0..k)
        .map(|s| {
            let total: u64 = table[s].iter().sum();
            // Most common tier; ties go to the higher-touch tier (lower index).
            let (best, count) =
                table[s]
                    .iter()
                    .enumerate()
                    .fold((0, 0), |acc, (j, &v)| if v > acc.1 { (j, v) } else { acc });
            SegmentTier {
                segment: s,
                id: seg.ids[s],
                size: seg.sizes[s],
                tier: tiers.names[best].clone(),
                share: if total > 0 {
                    count as f64 / total as f64
                } else {
                    0.0
                },
                matched_tier: matched[s].map(|j| tiers.names[j].clone()),
            }
        })
        .collect();
    MethodComparison {
        method: seg.method,
        agreement,
        contingency: table,
        mapping,
    }
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

/// Typicality of each account for its k-means segment, in [0.5, 1].
fn typicality(x: ArrayView2<f64>, seg: &Segmentation) -> Vec<f64> {
    let Details::KMeans { centroids, .. } = &seg.details else {
        return vec![1.0; x.nrows()];
    };
    x.outer_iter()
        .zip(&seg.labels)
        .map(|(row, &l)| {
            let d = |c: &Vec<f64>| {
                row.iter()
                    .zip(c)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    .sqrt()
            };
            let d1 = d(&centroids[l]);
            let d2 = centroids
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != l)
                .map(|(_, c)| d(c))
                .fold(f64::INFINITY, f64::min);
            if !d2.is_finite() || d1 + d2 == 0.0 {
                1.0
            } else {
                0.5 + 0.5 * ((d2 - d1) / (d2 + d1)).clamp(0.0, 1.0)
            }
        })
        .collect()
}

/// Run the compare stage.
pub fn compare(
    p: &Pipeline,
    frame: &AccountFrame,
    m: &FeatureMatrix,
    segs: &[Segmentation],
) -> Result<Comparison> {
    let km = segs.iter().find(|s| s.method == "kmeans");
    let cm = segs.iter().find(|s| s.method == "community");
    let cross = match (km, cm) {
        (Some(a), Some(b)) => Some(cross_map(a, b)),
        _ => None,
    };
    let value: Option<Vec<Option<f64>>> = match p.tiers.as_ref().and_then(|t| t.value.as_ref()) {
        Some(v) => Some(frame.df.column(v)?.f64()?.iter().collect()),
        None => None,
    };
    let profiles: Vec<Profile> = segs
        .iter()
        .flat_map(|s| profile::profiles(p, frame, m, s, value.as_deref()))
        .collect();
    let Some(t) = &p.tiers else {
        return Ok(Comparison {
            tiers: None,
            methods: Vec::new(),
            cross,
            exceptions_from: "kmeans",
            exceptions: Vec::new(),
            profiles,
            suggested: vec![None; m.ids.len()],
        });
    };
    let tiers = current_tiers(t, frame)?;
    let value_unit = t
        .value
        .as_ref()
        .and_then(|v| p.features.iter().find(|f| &f.name == v))
        .map_or(crate::config::Unit::Number, |f| f.unit);
    let methods: Vec<MethodComparison> = segs.iter().map(|s| compare_method(s, &tiers)).collect();
    let primary = segs
        .iter()
        .position(|s| s.method == t.exceptions_from)
        .unwrap_or(0);
    let other = segs.iter().position(|s| s.method != t.exceptions_from);
    let tier_of =
        |mc: &MethodComparison, s: usize| tiers.names.iter().position(|n| *n == mc.mapping[s].tier);
    let seg = &segs[primary];
    // Too few known tiers to compare with: no suggestion, so no exception.
    let measured = methods[primary].agreement.is_some();
    let suggested: Vec<Option<usize>> = seg
        .labels
        .iter()
        .map(|&s| tier_of(&methods[primary], s).filter(|_| measured))
        .collect();
    let typical = typicality(m.x.view(), seg);

    // Raw values and per-tier medians of the numeric matrix features, for reasons.
    let numeric: Vec<&crate::config::Feature> = p
        .features
        .iter()
        .filter(|f| f.in_matrix && f.kind == Kind::Numeric)
        .collect();
    let raw: Vec<Vec<Option<f64>>> = numeric
        .iter()
        .map(|f| {
            frame
                .df
                .column(&f.name)
                .and_then(|c| c.f64().map(|c| c.iter().collect()))
                .map_err(Error::from)
        })
        .collect::<Result<_>>()?;
    let scaled: Vec<usize> = numeric
        .iter()
        .map(|f| {
            m.columns
                .iter()
                .position(|c| c.feature == f.name && c.role == "numeric")
                .unwrap_or(usize::MAX)
        })
        .collect();
    let nt = tiers.names.len();
    let mut med_raw = vec![vec![f64::NAN; nt]; numeric.len()];
    let mut med_x = vec![vec![f64::NAN; nt]; numeric.len()];
    let mut tier_rows: Vec<Vec<usize>> = vec![Vec::new(); nt];
    for (i, t) in tiers.labels.iter().enumerate() {
        if let Some(t) = t {
            tier_rows[*t].push(i);
        }
    }
    for fi in 0..numeric.len() {
        for (ti, rows) in tier_rows.iter().enumerate() {
            let mut r: Vec<f64> = rows.iter().filter_map(|&i| raw[fi][i]).collect();
            med_raw[fi][ti] = median(&mut r);
            if scaled[fi] != usize::MAX {
                let mut xs: Vec<f64> = rows.iter().map(|&i| m.x[[i, scaled[fi]]]).collect();
                med_x[fi][ti] = median(&mut xs);
            }
        }
    }

    let mut exceptions = Vec::new();
    for i in 0..seg.labels.len() {
        let (Some(cur), Some(sug)) = (tiers.labels[i], suggested[i]) else {
            continue;
        };
        if cur == sug {
            continue;
        }
        let s = seg.labels[i];
        let purity = methods[primary].mapping[s].share;
        let agree = match other {
            Some(o) => {
                if tier_of(&methods[o], segs[o].labels[i]) == Some(sug) {
                    1.0
                } else {
                    0.7
                }
            }
            None => 1.0,
        };
        let confidence = purity * typical[i] * agree;
        // Reasons: features on which the account is closer to the suggested tier.
        let mut scored: Vec<(f64, usize)> = (0..numeric.len())
            .filter(|&fi| scaled[fi] != usize::MAX && raw[fi][i].is_some())
            .map(|fi| {
                let xv = m.x[[i, scaled[fi]]];
                (
                    (xv - med_x[fi][cur]).abs() - (xv - med_x[fi][sug]).abs(),
                    fi,
                )
            })
            .filter(|(sc, _)| *sc > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let reasons = scored
            .iter()
            .take(3)
            .map(|&(_, fi)| {
                let f = numeric[fi];
                let v = raw[fi][i].unwrap_or(f64::NAN);
                Reason {
                    feature: f.name.clone(),
                    value: v,
                    current_tier_median: med_raw[fi][cur],
                    suggested_tier_median: med_raw[fi][sug],
                    text: format!(
                        "{} {} vs {} median {} ({} median {})",
                        f.label,
                        f.unit.format(v),
                        tiers.names[cur],
                        f.unit.format(med_raw[fi][cur]),
                        tiers.names[sug],
                        f.unit.format(med_raw[fi][sug])
                    ),
                }
            })
            .collect();
        exceptions.push(Exception {
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
            confidence,
            value_at_stake: value.as_ref().and_then(|v| v[i]).unwrap_or(0.0),
            value_text: value_unit.format(value.as_ref().and_then(|v| v[i]).unwrap_or(0.0)),
            reasons,
        });
    }
    exceptions.sort_by(|a, b| {
        let pa = a.confidence * a.value_at_stake.max(1.0);
        let pb = b.confidence * b.value_at_stake.max(1.0);
        pb.total_cmp(&pa)
            .then_with(|| a.account_id.cmp(&b.account_id))
    });
    Ok(Comparison {
        tiers: Some(tiers),
        methods,
        cross,
        exceptions_from: t.exceptions_from,
        exceptions,
        profiles,
        suggested,
    })
}
