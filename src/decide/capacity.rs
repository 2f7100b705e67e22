//! What the suggested moves cost in CSMs: per tier, accounts and value
//! today, after the suggested moves and under the proposed rule, and the
//! CSMs each needs at the pipeline's coverage ratios (`[capacity]`).
//!
//! CSMs needed in a tier = its accounts ÷ accounts per CSM; with
//! `value_per_csm` too, the larger of that and its value ÷ value per CSM
//! (a tier is staffed for whichever runs out first). Fractions are FTE.

use serde::{Deserialize, Serialize};

use crate::config::CapacitySettings;

/// One tier's coverage under one tiering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub accounts: usize,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub value: f64,
    /// CSM FTE needed.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub csms: f64,
    /// Value per CSM (0 when no CSM is needed).
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub value_per_csm: f64,
}

/// One tier's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TierCapacity {
    pub tier: String,
    pub accounts_per_csm: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_per_csm: Option<f64>,
    pub today: Coverage,
    pub after_moves: Coverage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_rule: Option<Coverage>,
}

/// The capacity table and its totals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capacity {
    pub tiers: Vec<TierCapacity>,
    pub today: Coverage,
    pub after_moves: Coverage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_rule: Option<Coverage>,
    /// "The suggested moves need +3.4 CSM FTE (High Touch +4.1, …)".
    pub sentence: String,
}

/// One tier's accounts and value today and after the suggested moves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TierChange {
    pub tier: String,
    pub today: Coverage,
    pub after_moves: Coverage,
}

/// Accounts and value per tier, today and after the moves (no ratios: the
/// CSM columns stay 0).
pub fn headcounts(
    names: &[String],
    current: &[Option<usize>],
    suggested: &[Option<usize>],
    value: Option<&[Option<f64>]>,
) -> Vec<TierChange> {
    let k = names.len();
    let none = CapacitySettings {
        accounts_per_csm: vec![f64::INFINITY; k],
        value_per_csm: None,
    };
    let (a, b) = (
        coverage(&none, current, value, k),
        coverage(&none, suggested, value, k),
    );
    (0..k)
        .map(|j| TierChange {
            tier: names[j].clone(),
            today: Coverage {
                csms: 0.0,
                value_per_csm: 0.0,
                ..a[j]
            },
            after_moves: Coverage {
                csms: 0.0,
                value_per_csm: 0.0,
                ..b[j]
            },
        })
        .collect()
}

/// Coverage of every tier when account `i` is in `tier[i]`.
fn coverage(
    s: &CapacitySettings,
    tiers: &[Option<usize>],
    value: Option<&[Option<f64>]>,
    k: usize,
) -> Vec<Coverage> {
    let mut out = vec![Coverage::default(); k];
    for (i, t) in tiers.iter().enumerate() {
        if let Some(t) = *t {
            out[t].accounts += 1;
            out[t].value += value
                .and_then(|v| v[i])
                .filter(|v| v.is_finite())
                .unwrap_or(0.0);
        }
    }
    for (j, c) in out.iter_mut().enumerate() {
        let by_accounts = c.accounts as f64 / s.accounts_per_csm[j];
        let by_value = s.value_per_csm.as_ref().map_or(0.0, |v| c.value / v[j]);
        c.csms = by_accounts.max(by_value);
        c.value_per_csm = if c.csms > 0.0 { c.value / c.csms } else { 0.0 };
    }
    out
}

fn total(c: &[Coverage]) -> Coverage {
    let accounts = c.iter().map(|c| c.accounts).sum();
    let value = c.iter().map(|c| c.value).sum();
    let csms = c.iter().map(|c| c.csms).sum::<f64>();
    Coverage {
        accounts,
        value,
        csms,
        value_per_csm: if csms > 0.0 { value / csms } else { 0.0 },
    }
}

/// "+3.4", "−0.2", "0.0".
pub fn signed(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r > 0.0 {
        format!("+{r:.1}")
    } else if r < 0.0 {
        format!("−{:.1}", -r)
    } else {
        "0.0".into()
    }
}

/// The capacity table for today's tiers, the suggested ones and (when
/// given) the proposed rule's.
pub fn capacity(
    s: &CapacitySettings,
    names: &[String],
    current: &[Option<usize>],
    suggested: &[Option<usize>],
    rule: Option<&[Option<usize>]>,
    value: Option<&[Option<f64>]>,
) -> Capacity {
    let k = names.len();
    let today = coverage(s, current, value, k);
    let after = coverage(s, suggested, value, k);
    let ruled = rule.map(|r| coverage(s, r, value, k));
    let tiers: Vec<TierCapacity> = (0..k)
        .map(|j| TierCapacity {
            tier: names[j].clone(),
            accounts_per_csm: s.accounts_per_csm[j],
            value_per_csm: s.value_per_csm.as_ref().map(|v| v[j]),
            today: today[j],
            after_moves: after[j],
            under_rule: ruled.as_ref().map(|r| r[j]),
        })
        .collect();
    let (t0, t1) = (total(&today), total(&after));
    let change = t1.csms - t0.csms;
    let parts: Vec<String> = tiers
        .iter()
        .filter(|t| (t.after_moves.csms - t.today.csms).abs() >= 0.05)
        .map(|t| format!("{} {}", t.tier, signed(t.after_moves.csms - t.today.csms)))
        .collect();
    let mut sentence = format!(
        "the suggested moves need {} CSM FTE ({:.1} → {:.1}{})",
        signed(change),
        t0.csms,
        t1.csms,
        if parts.is_empty() {
            String::new()
        } else {
            format!("; {}", parts.join(", "))
        }
    );
    let under_rule = ruled.as_deref().map(total);
    if let Some(r) = &under_rule {
        sentence.push_str(&format!(
            "; the proposed rule would need {} ({:.1})",
            signed(r.csms - t0.csms),
            r.csms
        ));
    }
    Capacity {
        tiers,
        today: t0,
        after_moves: t1,
        under_rule,
        sentence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csms_needed_are_accounts_over_the_ratio_or_value_over_its_ratio() {
        // 3 tiers: 10 accounts per CSM in A, 50 in B, 500 in C.
        let s = CapacitySettings {
            accounts_per_csm: vec![10.0, 50.0, 500.0],
            value_per_csm: None,
        };
        let names: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        // Today: 20 A, 100 B, 1000 C → 2 + 2 + 2 = 6 CSMs.
        let mut current = vec![Some(0); 20];
        current.extend(vec![Some(1); 100]);
        current.extend(vec![Some(2); 1000]);
        // The moves: 5 B accounts up to A, 50 C accounts up to B.
        let mut suggested = current.clone();
        for t in suggested.iter_mut().skip(20).take(5) {
            *t = Some(0);
        }
        for t in suggested.iter_mut().skip(120).take(50) {
            *t = Some(1);
        }
        let c = capacity(&s, &names, &current, &suggested, None, None);
        assert_eq!(c.today.csms, 6.0);
        // A: 25/10 = 2.5; B: 145/50 = 2.9; C: 950/500 = 1.9 → 7.3.
        let after: Vec<f64> = c.tiers.iter().map(|t| t.after_moves.csms).collect();
        assert_eq!(after, vec![2.5, 2.9, 1.9]);
        assert!((c.after_moves.csms - 7.3).abs() < 1e-12);
        assert_eq!(
            c.sentence,
            "the suggested moves need +1.3 CSM FTE (6.0 → 7.3; A +0.5, B +0.9, C −0.1)"
        );
        // By value too: $2M per CSM in A with $3M of value → 1.5 CSMs.
        let s = CapacitySettings {
            accounts_per_csm: vec![10.0, 50.0, 500.0],
            value_per_csm: Some(vec![2e6, 5e6, 1e7]),
        };
        let current = vec![Some(0), Some(0), Some(2)];
        let value = vec![Some(1e6), Some(2e6), Some(1e3)];
        let c = capacity(&s, &names, &current, &current, Some(&current), Some(&value));
        assert_eq!(c.tiers[0].today.csms, 1.5);
        assert_eq!(c.tiers[0].today.value_per_csm, 2e6);
        assert_eq!(c.tiers[2].today.csms, 1.0 / 500.0);
        assert!(
            c.sentence.contains("proposed rule would need 0.0"),
            "{}",
            c.sentence
        );
    }
}
