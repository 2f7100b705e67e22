//! Decide: from segments to a tiering a CS team can adopt.
//!
//! * a **proposed tier rule** ([`propose`]): a shallow decision tree over the
//!   features in business units that reproduces the suggested tiering
//!   (today's tiers with the exceptions applied), written as `[[tiers.rule]]`
//!   tables and a SQL `CASE WHEN`, with its agreement and the accounts it
//!   misplaces — or, on tiers no simple rule explains, the statement that
//!   none is useful;
//! * **segments explained by thresholds** ([`explain`]): IMM's threshold tree
//!   for k-means with its price of explainability ([`imm`]), a classification
//!   tree for communities;
//! * **capacity** ([`capacity`]): accounts, value and CSM FTE per tier today,
//!   after the suggested moves and under the rule, at the pipeline's
//!   coverage ratios.
//!
//! Runs after [`crate::compare`], from its [`Comparison`]; written as
//! `decision` in `comparison.json`.

pub mod capacity;
pub mod explain;
pub mod imm;
pub mod propose;
pub mod table;
pub mod tree;

use crate::cluster::Segmentation;
use crate::compare::{self, Comparison};
use crate::config::Pipeline;
use crate::error::Result;
use crate::features::FeatureMatrix;
use crate::ingest::AccountFrame;

/// What the decide stage found (`decision` in `comparison.json`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    /// The proposed tier rule (None without tiers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<propose::ProposedRule>,
    /// Each segmentation explained by thresholds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explained: Vec<explain::Explained>,
    /// CSMs per tier today, after the moves and under the rule (None
    /// without `[capacity]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<capacity::Capacity>,
    /// Accounts and value per tier, today and after the suggested moves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<capacity::TierChange>,
}

/// The proposed rule, the explanations and the capacity table for a
/// comparison. The explanations and the rule are fitted at once: each tree
/// is the same on any number of threads, so this changes no result, and
/// one tree's serial steps leave a core to the others.
pub fn decide(
    p: &Pipeline,
    frame: &AccountFrame,
    m: &FeatureMatrix,
    segs: &[Segmentation],
    comparison: &Comparison,
) -> Result<Decision> {
    // A rule needs tiers and at least one suggested tier.
    let tiers = comparison
        .tiers
        .as_ref()
        .filter(|_| comparison.suggested.iter().any(Option::is_some));
    let (explained, proposed) = rayon::join(
        || {
            let t = std::time::Instant::now();
            let explained = explain::explain(p, frame, m, segs);
            crate::memory::trace("segments explained by thresholds", t);
            explained
        },
        || -> Result<_> {
            let Some(current) = tiers else {
                return Ok(None);
            };
            let value = compare::value_column(p, frame)?;
            let t = std::time::Instant::now();
            let rule = propose::propose(
                p,
                frame,
                &m.ids,
                current,
                &comparison.suggested,
                value.as_deref(),
            )?;
            crate::memory::trace("proposed tier rule", t);
            Ok(Some((current, value, rule)))
        },
    );
    let mut d = Decision {
        explained: explained?,
        ..Decision::default()
    };
    let Some((current, value, rule)) = proposed? else {
        return Ok(d);
    };
    d.tiers = capacity::headcounts(
        &current.names,
        &current.labels,
        &comparison.suggested,
        value.as_deref(),
    );
    d.rule = rule;
    if let Some(s) = &p.capacity {
        let rule = d
            .rule
            .as_ref()
            .filter(|r| r.useful)
            .map(|r| r.tiers.as_slice());
        d.capacity = Some(capacity::capacity(
            s,
            &current.names,
            &current.labels,
            &comparison.suggested,
            rule,
            value.as_deref(),
        ));
    }
    Ok(d)
}
