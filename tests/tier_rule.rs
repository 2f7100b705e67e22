//! From segments to a tiering a CS team can adopt: the proposed rule round
//! trips through `strata validate` and `strata run`; shuffled tiers give "no
//! useful rule"; the staffing section computes CSMs from the ratios, and
//! says how to set them when there are none.

mod common;
use common::*;

use std::path::Path;

/// The committed sample's last month and its pipeline in a temp dir, with
/// `edit` applied to the month's files and `pipeline` to the pipeline text.
fn sample_copy(edit: impl Fn(&Path), pipeline: impl Fn(String) -> String) -> tempfile::TempDir {
    committed_sample(&["2026-11"], |_, to| edit(to), pipeline)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `text` with its `[tiers]` section (and its `[[tiers.rule]]` tables)
/// replaced by `with`.
fn replace_tiers(text: &str, with: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            inside = t.starts_with("[tiers]") || t.starts_with("[[tiers.");
            if t.starts_with("[tiers]") {
                out.push_str(with);
                out.push('\n');
            }
        }
        if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn the_proposed_rule_round_trips_through_validate_and_run() {
    let dir = sample_copy(|_| {}, |t| t);
    let o = strata(&["run", "pipeline.toml", "-q"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let month = dir.path().join("out/2026-11");
    let c = json(&month.join("comparison.json"));
    let rule = &c["decision"]["rule"];
    assert_eq!(rule["useful"], true, "{rule}");
    let agreement = rule["agreement_suggested"].as_f64().unwrap();
    assert!(agreement >= 0.9, "{agreement}");
    assert!(rule["agreement_suggested"].as_f64() > rule["majority_share"].as_f64());
    // Every line reads in business units and says what it covers.
    for l in rule["lines"].as_array().unwrap() {
        assert!(!l["text"].as_str().unwrap().is_empty());
        assert!(l["accounts"].as_u64().unwrap() > 0, "{l}");
    }
    let block = std::fs::read_to_string(month.join("tier_rules.toml")).unwrap();
    let sql = std::fs::read_to_string(month.join("tier_rules.sql")).unwrap();
    assert!(
        sql.contains("CASE\n") && sql.contains("ELSE 'Tech Touch'"),
        "{sql}"
    );

    // Adopted as it is: the pipeline with the emitted [tiers] block.
    let text = std::fs::read_to_string(dir.path().join("pipeline.toml")).unwrap();
    let adopted = replace_tiers(&text, &block).replace("\"out\"", "\"out-rule\"");
    std::fs::write(dir.path().join("adopted.toml"), &adopted).unwrap();
    let v = strata(&["validate", "adopted.toml"], dir.path());
    assert_eq!(v.code, 0, "{}\n{adopted}", v.text());
    let o = strata(&["run", "adopted.toml", "-q"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let first = read_parquet(&month.join("assignments.parquet"));
    let again = read_parquet(&dir.path().join("out-rule/2026-11/assignments.parquet"));
    assert_eq!(strings(&first, "account_id"), strings(&again, "account_id"));
    let by_rule = strings(&first, "rule_tier");
    let assigned = strings(&again, "current_tier");
    let differ = by_rule
        .iter()
        .zip(&assigned)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differ, 0,
        "the run with the rule assigns other tiers than the rule table"
    );
    // The CRM file carries the rule's tier too.
    let csv = read_csv(&month.join("assignments.csv"));
    assert!(csv.column("rule_tier").is_ok());
}

/// The sample's tiers shuffled across accounts: a tree would fit noise, so
/// no rule is offered and no rule file is written.
#[test]
fn shuffled_tiers_give_no_useful_rule() {
    let dir = sample_copy(
        |to| {
            let path = to.join("accounts.csv");
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rows: Vec<Vec<String>> = text
                .lines()
                .map(|l| l.split(',').map(str::to_string).collect())
                .collect();
            let at = rows[0].iter().position(|h| h == "cs_tier").unwrap();
            let mut tiers: Vec<String> = rows[1..].iter().map(|r| r[at].clone()).collect();
            let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
            for i in (1..tiers.len()).rev() {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                tiers.swap(i, (s >> 33) as usize % (i + 1));
            }
            for (r, t) in rows[1..].iter_mut().zip(tiers) {
                r[at] = t;
            }
            let body: Vec<String> = rows.iter().map(|r| r.join(",")).collect();
            std::fs::write(&path, body.join("\n") + "\n").unwrap();
        },
        |t| t,
    );
    let o = strata(&["run", "pipeline.toml", "-q"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let month = dir.path().join("out/2026-11");
    let c = json(&month.join("comparison.json"));
    let rule = &c["decision"]["rule"];
    assert_eq!(rule["useful"], false, "{rule}");
    assert!(rule["holdout_kappa"].as_f64().unwrap() < 0.2, "{rule}");
    assert!(
        rule["sentence"]
            .as_str()
            .unwrap()
            .starts_with("no useful rule"),
        "{rule}"
    );
    assert!(!month.join("tier_rules.toml").exists());
    assert!(!month.join("tier_rules.sql").exists());
    let html = std::fs::read_to_string(month.join("report.html")).unwrap();
    assert!(html.contains("No useful rule"), "report lacks the verdict");
    assert!(read_parquet(&month.join("assignments.parquet"))
        .column("rule_tier")
        .is_err());
}

#[test]
fn staffing_is_accounts_over_the_ratio_and_explained_when_unset() {
    let dir = sample_copy(|_| {}, |t| t);
    let o = strata(&["run", "pipeline.toml", "-q"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let month = dir.path().join("out/2026-11");
    let c = json(&month.join("comparison.json"));
    let cap = &c["decision"]["capacity"];
    // Today's FTE recomputed from the assignments' tiers and the ratios.
    let df = read_parquet(&month.join("assignments.parquet"));
    let ratio = |t: &str| match t {
        "High Touch" => 12.0,
        "Hybrid" => 50.0,
        _ => 500.0,
    };
    let fte = |col: &str| -> f64 {
        strings(&df, col)
            .iter()
            .flatten()
            .map(|t| 1.0 / ratio(t))
            .sum()
    };
    // After the moves: the suggested tier, but flags held for review stay.
    let band = strings(&df, "band");
    let moved: f64 = strings(&df, "suggested_tier")
        .iter()
        .zip(strings(&df, "current_tier"))
        .zip(&band)
        .filter_map(|((s, c), b)| {
            if b.as_deref() == Some("needs review") {
                c
            } else {
                s.clone()
            }
        })
        .map(|t| 1.0 / ratio(&t))
        .sum();
    let today = cap["today"]["csms"].as_f64().unwrap();
    let after = cap["after_moves"]["csms"].as_f64().unwrap();
    assert!((today - fte("current_tier")).abs() < 1e-9, "{today}");
    assert!((after - moved).abs() < 1e-9, "{after}");
    assert!(band.iter().any(|b| b.as_deref() == Some("needs review")));
    let html = std::fs::read_to_string(month.join("report.html")).unwrap();
    let (staffing, quality) = (
        html.find("id=\"capacity\"").unwrap(),
        html.find("id=\"quality\"").unwrap(),
    );
    assert!(staffing < quality, "the staffing table sits near the top");
    let md = std::fs::read_to_string(month.join("report.md")).unwrap();
    assert!(md.contains("## Staffing"), "{md}");

    // Without ratios: no numbers invented, and the section says how.
    let dir = sample_copy(
        |_| {},
        |t| t[..t.find("# CSM coverage per tier").unwrap()].to_string(),
    );
    let o = strata(&["run", "pipeline.toml", "-q"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let month = dir.path().join("out/2026-11");
    let c = json(&month.join("comparison.json"));
    assert!(c["decision"].get("capacity").is_none());
    let html = std::fs::read_to_string(month.join("report.html")).unwrap();
    assert!(html.contains("No coverage ratios are set"));
    assert!(html.contains("accounts_per_csm = { &quot;High Touch&quot; = 12"));
}
