//! Were last month's suggestions right? The previous committed month's
//! accounts, by tier and by what strata said of them (upgrade candidates,
//! downgrade candidates, unflagged), followed one month on: how many left
//! (no longer in the account table), how many moved to the suggested tier
//! (CS acted) or to another one, and the median relative change of the
//! value feature (ARR) of those still there. Unflagged accounts of the same
//! tier are the baseline a flag is judged against. O(n) with the accounts
//! aligned by id.

use serde::{Deserialize, Serialize};

use super::PreviousRun;
use crate::compare::Comparison;
use crate::error::Result;

/// Last month's suggestions, followed up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrackRecord {
    pub previous_as_of: String,
    pub value_label: String,
    /// The follow-up in one sentence.
    pub sentence: String,
    pub rows: Vec<TrackRow>,
}

/// One group of last month's accounts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrackRow {
    /// Last month's tier.
    pub tier: String,
    /// `upgrade`, `downgrade` or `unflagged`.
    pub flag: String,
    /// "High Touch · upgrade candidates".
    pub group: String,
    pub accounts: u64,
    pub left: u64,
    pub moved_as_suggested: u64,
    pub moved_otherwise: u64,
    /// Median of (value now − value then) / value then over the accounts
    /// still there with a positive value then (None: none).
    pub value_change: Option<f64>,
    pub value_change_text: String,
}

/// The follow-up of `prev`'s suggestions by this month's accounts `ids`,
/// their tiers (`cmp`) and values (`values` now, `prev_values` then, by
/// account in each month's order).
pub fn track_record(
    prev: &PreviousRun,
    ids: &[String],
    cmp: &Comparison,
    values: Option<&[Option<f64>]>,
    prev_values: Option<&[Option<f64>]>,
) -> Result<Option<TrackRecord>> {
    let (Some(t), Some(prev_tier), Some(prev_exc)) =
        (&cmp.tiers, &prev.current_tier, &prev.exception)
    else {
        return Ok(None);
    };
    let now: std::collections::HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), i))
        .collect();
    let tier_now = |i: usize| t.labels[i].map(|l| t.names[l].as_str());
    let mut rows = Vec::new();
    for tier in &t.names {
        let in_tier: Vec<usize> = (0..prev.accounts.len())
            .filter(|&r| prev_tier[r].as_deref() == Some(tier.as_str()))
            .collect();
        if !in_tier.iter().any(|&r| prev_exc[r].is_some()) {
            continue;
        }
        for flag in ["upgrade", "downgrade", "unflagged"] {
            let group: Vec<usize> = in_tier
                .iter()
                .copied()
                .filter(|&r| prev_exc[r].as_deref().unwrap_or("unflagged") == flag)
                .collect();
            if group.is_empty() {
                continue;
            }
            let mut row = TrackRow {
                tier: tier.clone(),
                flag: flag.to_string(),
                group: format!(
                    "{tier} · {}",
                    if flag == "unflagged" {
                        "unflagged".to_string()
                    } else {
                        format!("{flag} candidates")
                    }
                ),
                accounts: group.len() as u64,
                left: 0,
                moved_as_suggested: 0,
                moved_otherwise: 0,
                value_change: None,
                value_change_text: "–".into(),
            };
            let mut changes = Vec::new();
            for &r in &group {
                let Some(&i) = now.get(prev.accounts[r].as_str()) else {
                    row.left += 1;
                    continue;
                };
                let suggested = prev.suggested_tier.as_ref().and_then(|s| s[r].as_deref());
                match tier_now(i) {
                    Some(x) if x == tier => {}
                    Some(x) if flag != "unflagged" && Some(x) == suggested => {
                        row.moved_as_suggested += 1
                    }
                    _ => row.moved_otherwise += 1,
                }
                if let (Some(v), Some(pv)) = (values, prev_values) {
                    if let (Some(a), Some(b)) = (v[i], pv[r]) {
                        if b > 0.0 {
                            changes.push((a - b) / b);
                        }
                    }
                }
            }
            changes.sort_by(f64::total_cmp);
            row.value_change =
                (!changes.is_empty()).then(|| crate::features::quantile_sorted(&changes, 0.5));
            row.value_change_text = row.value_change.map_or("–".into(), |c| {
                signed(crate::config::Unit::Percent.format(c))
            });
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(TrackRecord {
        previous_as_of: prev.as_of.to_string(),
        value_label: cmp.value_label.clone(),
        sentence: sentence(&rows),
        rows,
    }))
}

fn signed(s: String) -> String {
    if s.starts_with('-') || s.starts_with('–') {
        s
    } else {
        format!("+{s}")
    }
}

/// "Of last month's 98 flagged accounts, 5 (5.1%) have left (unflagged
/// accounts of the same tiers: 1.4%) and 3 moved to the suggested tier."
fn sentence(rows: &[TrackRow]) -> String {
    let sum = |flagged: bool, f: fn(&TrackRow) -> u64| -> u64 {
        rows.iter()
            .filter(|r| (r.flag != "unflagged") == flagged)
            .map(f)
            .sum()
    };
    let (n, left, acted) = (
        sum(true, |r| r.accounts),
        sum(true, |r| r.left),
        sum(true, |r| r.moved_as_suggested),
    );
    let (base_n, base_left) = (sum(false, |r| r.accounts), sum(false, |r| r.left));
    let pct = |k: u64, n: u64| {
        if n == 0 {
            "–".to_string()
        } else {
            format!("{:.1}%", 100.0 * k as f64 / n as f64)
        }
    };
    format!(
        "Of last month's {n} flagged account(s), {left} ({}) have left (unflagged accounts of the same tiers: {}) and {acted} moved to the suggested tier.",
        pct(left, n),
        pct(base_left, base_n)
    )
}
