//! `strata history`: one line per committed month of an output folder.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::rundir::read_manifest;
use crate::schema::Manifest;

/// One line of `strata history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub as_of: String,
    pub accounts: u64,
    pub segments: BTreeMap<String, u64>,
    pub ari_vs_tiers: BTreeMap<String, f64>,
    /// The verdict on agreement with the tiers, per method.
    pub verdict: BTreeMap<String, String>,
    pub exceptions: Option<u64>,
    pub drift_ari: BTreeMap<String, f64>,
    pub new_accounts: Option<u64>,
    pub lost_accounts: Option<u64>,
    /// Each outcome's verdict, by outcome label.
    pub outcomes: BTreeMap<String, String>,
    /// Last month's flagged accounts followed up.
    pub followed_up: Option<crate::schema::FollowedUp>,
}

/// Read the headline of every committed run under `root`, oldest first.
pub fn list(root: &Path) -> Result<Vec<HistoryRow>> {
    let mut rows = Vec::new();
    for (m, dir) in crate::rundir::committed_runs(root)? {
        let v: Manifest = read_manifest(&dir)?;
        let h = v.headline;
        rows.push(HistoryRow {
            as_of: m.to_string(),
            accounts: v.accounts as u64,
            segments: h.segments.into_iter().map(|(k, n)| (k, n as u64)).collect(),
            ari_vs_tiers: h.ari_vs_tiers,
            verdict: h.verdict,
            exceptions: h.exceptions.map(|n| n as u64),
            drift_ari: h.drift_ari,
            new_accounts: h.new_accounts,
            lost_accounts: h.lost_accounts,
            outcomes: h.outcomes,
            followed_up: h.followed_up,
        });
    }
    Ok(rows)
}

/// `strata history` as a table: a column group per method the runs used
/// (registered methods in the registry's order, others after them by name).
pub fn history_text(rows: &[HistoryRow]) -> String {
    use crate::cluster::method;
    let mut names: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.segments.keys().chain(r.ari_vs_tiers.keys()))
        .map(String::as_str)
        .collect();
    let rank = |n: &str| {
        method::REGISTRY
            .iter()
            .position(|m| m.name() == n)
            .unwrap_or(usize::MAX)
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    names.dedup();
    if names.is_empty() {
        names = method::REGISTRY.iter().map(|m| m.name()).collect();
    }
    let labels: Vec<String> = names.iter().map(|n| method::label(n)).collect();
    // (header, width) per column after the as-of and account columns.
    let mut head: Vec<(String, usize)> = Vec::new();
    for l in &labels {
        head.push((l.clone(), l.chars().count().max(7)));
    }
    for l in &labels {
        let h = format!("{l}/tiers");
        let w = h.chars().count().max(16);
        head.push((h, w));
    }
    head.push(("exceptions".into(), 10));
    for l in &labels {
        let h = format!("drift ARI {l}");
        let w = h.chars().count().max(17);
        head.push((h, w));
    }
    head.push(("new".into(), 5));
    head.push(("lost".into(), 5));
    let follow = rows.iter().any(|r| r.followed_up.is_some());
    if follow {
        head.push(("last month's flags: left · acted".into(), 32));
    }
    let mut out = String::from("as-of     accounts");
    for (i, (h, w)) in head.iter().enumerate() {
        if i + 1 == head.len() {
            out.push_str(&format!("  {h}\n"));
        } else {
            out.push_str(&format!("  {h:<w$}"));
        }
    }
    let f = |m: &BTreeMap<String, f64>, k: &str| {
        m.get(k).map_or("-".to_string(), |v| format!("{v:.3}"))
    };
    let u = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    // The verdict with the ARI behind it: "strong (0.514)".
    let agreement = |r: &HistoryRow, k: &str| match (r.verdict.get(k), r.ari_vs_tiers.get(k)) {
        (Some(v), Some(a)) => format!("{v} ({a:.3})"),
        (None, Some(a)) => format!("{a:.3}"),
        (Some(v), None) => v.clone(),
        (None, None) => "-".into(),
    };
    for r in rows {
        let mut cells: Vec<String> = Vec::new();
        cells.extend(names.iter().map(|n| u(r.segments.get(*n).copied())));
        cells.extend(names.iter().map(|n| agreement(r, n)));
        cells.push(u(r.exceptions));
        cells.extend(names.iter().map(|n| f(&r.drift_ari, n)));
        cells.push(u(r.new_accounts));
        cells.push(u(r.lost_accounts));
        if follow {
            cells.push(r.followed_up.map_or("-".into(), followed_up));
        }
        out.push_str(&format!("{:<9} {:>8}", r.as_of, r.accounts));
        for (c, (_, w)) in cells.iter().zip(&head) {
            out.push_str(&format!("  {c:>w$}"));
        }
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no committed runs)\n");
    }
    out
}

/// "5/98 left (unflagged 1.4%) · 3 acted".
fn followed_up(f: crate::schema::FollowedUp) -> String {
    let pct = |k: u64, n: u64| {
        if n == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * k as f64 / n as f64)
        }
    };
    format!(
        "{}/{} left (unflagged {}) · {} acted",
        f.left,
        f.flagged,
        pct(f.unflagged_left, f.unflagged),
        f.acted
    )
}
