//! The readable summary `strata run` prints at the end of each month.

use super::RunSummary;
use crate::cluster;
use crate::compare;
use crate::history;

/// A readable summary of a run, for the end of `strata run`.
pub fn summary_text(s: &RunSummary) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "run {}: {} accounts, {} matrix columns\n",
        s.as_of, s.accounts, s.matrix_columns
    ));
    segmentations(&mut out, s);
    if let Some(c) = &s.comparison {
        stability(&mut out, s, c);
    }
    let Some(c) = &s.comparison else {
        out.push_str(&format!(
            "  stopped after the features (--until features)\n  outputs: {}\n",
            s.dir.display()
        ));
        return out;
    };
    // The primary method's segments, by name.
    let primary = s.segmentations.first().map_or("", |seg| &seg.method);
    for pr in c.profiles.iter().filter(|p| p.method == primary) {
        out.push_str(&format!(
            "    {} segment {}: {} — {} accounts ({:.0}%)\n",
            cluster::method::label(primary),
            pr.id,
            pr.name,
            pr.size,
            pr.share_accounts * 100.0
        ));
    }
    if let Some(t) = &c.tiers {
        tiers(&mut out, c, t);
    }
    if let Some(d) = &s.decision {
        decision(&mut out, d, c.tiers.is_some());
    }
    if let Some(x) = &c.cross {
        out.push_str(&format!(
            "  k-means vs communities: ARI {:.3}, NMI {:.3}\n",
            x.agreement.ari, x.agreement.nmi
        ));
    }
    for o in &c.outcomes {
        out.push_str(&format!("  outcome {}: {}\n", o.label, o.sentence));
        for claim in o.exceptions.iter().filter_map(|x| x.claim.as_deref()) {
            out.push_str(&format!("    {claim}\n"));
        }
    }
    if let Some(h) = s.history.as_ref().filter(|h| h.previous_as_of.is_some()) {
        since(&mut out, h);
    }
    out.push_str(&format!("  outputs: {}\n", s.dir.display()));
    out
}

/// What to know before acting on the segments: warnings for the leading
/// segmentation, a note for the finer ones.
fn stability(out: &mut String, s: &RunSummary, c: &compare::Comparison) {
    for (i, seg) in s.segmentations.iter().enumerate() {
        let name = |l: usize| {
            c.profile(&seg.method, l)
                .map_or(String::new(), |p| p.name.clone())
        };
        let w = cluster::stability::warnings(seg, name);
        if i == 0 {
            for line in w {
                out.push_str(&format!("  warning: {line}\n"));
            }
        } else if let Some(n) = seg.stability.as_ref().map(|st| {
            st.segment_jaccard
                .iter()
                .flatten()
                .filter(|j| **j < cluster::stability::STABLE)
                .count()
        }) {
            if n == 0 {
                continue;
            }
            out.push_str(&format!(
                "  note: {} of the {} {} are not stable on resampling (the finer view; the report lists them)\n",
                n,
                seg.k(),
                cluster::method::noun(&seg.method)
            ));
        }
    }
}

/// Each method's segments: what it found, sizes and stability.
fn segmentations(out: &mut String, s: &RunSummary) {
    for (method, seg) in s.methods.iter().zip(&s.segmentations) {
        let sizes: Vec<String> = seg.sizes.iter().map(|n| n.to_string()).collect();
        let head = method.describe(seg);
        out.push_str(&format!("  {head}\n    sizes: {}\n", sizes.join(", ")));
        if let Some(st) = &seg.stability {
            let j: Vec<String> = st
                .segment_jaccard
                .iter()
                .map(|j| j.map_or("-".into(), |j| format!("{j:.2}")))
                .collect();
            out.push_str(&format!(
                "    stability: ARI {:.3} mean, {:.3} min over {} runs; Jaccard per segment: {}\n",
                st.ari_mean,
                st.ari_min,
                st.runs,
                j.join(", ")
            ));
        }
    }
}

/// Agreement with the tiers and the top exceptions.
fn tiers(out: &mut String, c: &compare::Comparison, t: &compare::CurrentTiers) {
    for mc in &c.methods {
        out.push_str(&match (&mc.agreement, mc.verdict) {
            (Some(a), Some(v)) => format!(
                "  {} vs tiers: {}\n    ARI {:.3}, AMI {:.3}, NMI {:.3}, purity {:.3}\n",
                mc.method,
                v.sentence(),
                a.ari,
                a.ami,
                a.nmi,
                a.purity
            ),
            _ => format!(
                "  {} vs tiers: not measured (fewer than {} accounts have a known tier)\n",
                mc.method,
                compare::MIN_TIERED_ACCOUNTS
            ),
        });
    }
    let up = c
        .exceptions
        .iter()
        .filter(|e| e.kind == compare::ExceptionKind::Upgrade)
        .count();
    let how = c.evidence.as_ref().map_or(String::new(), |ev| {
        format!(
            " (each on its {} neighbours' tiers, false discoveries held at {:.0}%)",
            ev.neighbours,
            ev.fdr * 100.0
        )
    });
    let band = |b: compare::Band| c.exceptions.iter().filter(|e| e.band == b).count();
    out.push_str(&format!(
        "  exceptions: {} upgrade and {} downgrade candidates among {} accounts with a tier{how}; {} strong, {} likely, {} held back for review\n",
        up,
        c.exceptions.len() - up,
        t.labels.iter().filter(|l| l.is_some()).count(),
        band(compare::Band::Strong),
        band(compare::Band::Likely),
        band(compare::Band::NeedsReview)
    ));
    for e in c.exceptions.iter().take(5) {
        out.push_str(&format!(
            "    {} {} → {} ({:?}, {}, confidence {:.2}, {} at stake {}): {}\n",
            e.account_id,
            e.current_tier,
            e.suggested_tier,
            e.kind,
            e.band.word(),
            e.confidence,
            c.value_label,
            e.value_text,
            e.reason_text()
        ));
    }
    if !t.unknown.is_empty() {
        out.push_str(&format!(
            "  tiers not in tiers.order (ignored): {:?}\n",
            t.unknown
        ));
    }
}

/// The proposed rule, the staffing and the segments as thresholds.
fn decision(out: &mut String, d: &crate::decide::Decision, has_tiers: bool) {
    if let Some(r) = &d.rule {
        out.push_str(&format!("  tier rule: {}\n", r.sentence));
        if r.useful {
            for l in &r.lines {
                out.push_str(&format!(
                    "    {} → {} ({} accounts)\n",
                    l.text, l.tier, l.accounts
                ));
            }
            out.push_str(&format!(
                "    otherwise → {} ({} accounts); written to {} and {}\n",
                r.default,
                r.default_accounts,
                crate::schema::file::TIER_RULES_TOML,
                crate::schema::file::TIER_RULES_SQL
            ));
        }
    }
    match &d.capacity {
        Some(cap) => out.push_str(&format!("  staffing: {}\n", cap.sentence)),
        None if has_tiers => out.push_str("  staffing: no [capacity] ratios set, so CSMs per tier are not computed (see the report's Staffing section)\n"),
        None => {}
    }
    for e in &d.explained {
        out.push_str(&format!("  {} as thresholds: {}\n", e.method, e.sentence));
    }
}

/// Since last month: accounts in both months, segment changes, exceptions.
fn since(out: &mut String, h: &history::History) {
    out.push_str(&format!(
        "  since {}: {} accounts in both months, {} new, {} gone\n",
        h.previous_as_of.as_deref().unwrap_or_default(),
        h.common_accounts,
        h.new_accounts,
        h.lost_accounts
    ));
    for mh in &h.methods {
        let changes: Vec<&str> = mh
            .transitions
            .iter()
            .filter(|t| t.kind != history::TransitionKind::Survived || t.renamed_from.is_some())
            .map(|t| t.text.as_str())
            .collect();
        out.push_str(&format!(
            "    {}: drift ARI {:.3}, {} accounts changed segment; {}\n",
            mh.method,
            mh.drift_ari,
            mh.moved,
            if changes.is_empty() {
                "every segment survived".to_string()
            } else {
                changes.join("; ")
            }
        ));
    }
    if let Some(t) = &h.track_record {
        out.push_str(&format!("    last month's suggestions: {}\n", t.sentence));
    }
    if let Some(e) = &h.exceptions {
        out.push_str(&format!(
            "    exceptions: {} newly flagged, {} resolved, {} still flagged, {} among new accounts\n",
            e.newly_flagged, e.resolved, e.continuing, e.new_accounts_flagged
        ));
    }
}
