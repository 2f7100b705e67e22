//! Does acting on it pay off? The sample's planted outcome (under-served
//! accounts churn and shrink) is found; a shuffled outcome gives "no
//! association" and no claim; last month's suggestions are followed up, and
//! the figures equal a recomputation in Python from the two months' files.

mod common;
use common::*;

use std::path::{Path, PathBuf};

/// The committed sample's two months and its pipeline in a temp dir, with
/// `edit` applied to each month's files first.
fn sample_copy(edit: impl Fn(&str, &Path)) -> tempfile::TempDir {
    committed_sample(&["2026-10", "2026-11"], edit, |t| t)
}

fn run(dir: &Path, months: &str) -> PathBuf {
    let o = strata(&["run", "pipeline.toml", "--months", months, "-q"], dir);
    assert_eq!(o.code, 0, "{}", o.text());
    dir.join("out")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn outcome<'a>(c: &'a serde_json::Value, feature: &str) -> &'a serde_json::Value {
    c["comparison"]["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["feature"] == feature)
        .unwrap_or_else(|| panic!("no outcome {feature}"))
}

fn separates(o: &serde_json::Value, grouping: &str) -> bool {
    o["groupings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grouping"] == grouping)
        .unwrap()["test"]["separates"]
        == true
}

#[test]
fn the_planted_outcome_is_found_and_reported() {
    let dir = sample_copy(|_, _| {});
    let out = run(dir.path(), "2026-10..2026-11");
    let c = json(&out.join("2026-11/comparison.json"));
    let churn = outcome(&c, "churned_3m");
    // Segments separate churn (the at-risk segment churns most)…
    assert!(separates(churn, "kmeans"), "{}", churn["groupings"]);
    assert!(
        churn["sentence"]
            .as_str()
            .unwrap()
            .starts_with("k-means segments separate 3-month churn"),
        "{}",
        churn["sentence"]
    );
    // …and the upgrade candidates left in a low-touch tier churn more, and
    // shrink, than the rest of their tier: the planted direction.
    let up: Vec<&serde_json::Value> = churn["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "upgrade" && x["claim"].is_string())
        .collect();
    assert!(!up.is_empty(), "{}", churn["exceptions"]);
    for x in &up {
        assert!(
            x["flagged"]["value"].as_f64() > x["rest"]["value"].as_f64(),
            "{x}"
        );
        assert!(x["q"].as_f64().unwrap() < 0.01, "{x}");
    }
    let arr = outcome(&c, "arr_change_3m");
    assert!(arr["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["kind"] == "upgrade"
            && x["claim"].is_string()
            && x["flagged"]["value"].as_f64() < x["rest"]["value"].as_f64()));
    // Every group is there, small ones marked rather than hidden.
    for g in churn["groupings"].as_array().unwrap() {
        for x in g["groups"].as_array().unwrap() {
            assert_eq!(x["small"], x["n"].as_u64().unwrap() < 30, "{x}");
        }
    }
    // The report, report.md, the manifest's headline and `strata history`.
    let html = std::fs::read_to_string(out.join("2026-11/report.html")).unwrap();
    assert!(html.contains("<a href=\"#outcomes\">Outcomes</a>"));
    assert!(
        html.contains("Tech Touch upgrade candidates: 3-month churn"),
        "claim missing"
    );
    assert!(html.contains("Last month's suggestions, followed up"));
    let md = std::fs::read_to_string(out.join("2026-11/report.md")).unwrap();
    assert!(
        md.contains("## Outcomes") && md.contains("- **3-month churn**: k-means segments"),
        "{md}"
    );
    let m = json(&out.join("2026-11/manifest.json"));
    assert!(
        m["headline"]["outcomes"]["3-month churn"].is_string(),
        "{}",
        m["headline"]
    );
    assert!(m["headline"]["followed_up"]["flagged"].as_u64().unwrap() > 0);
    let h = strata(&["history", out.to_str().unwrap()], dir.path());
    assert_eq!(h.code, 0, "{}", h.text());
    assert!(
        h.stdout.contains("last month's flags: left · acted"),
        "{}",
        h.stdout
    );
    let hj = strata(&["history", out.to_str().unwrap(), "--json"], dir.path());
    assert!(
        hj.stdout
            .contains("k-means segments separate 3-month churn"),
        "{}",
        hj.stdout
    );
}

/// Each month's outcomes shuffled across accounts (a fixed permutation):
/// nothing separates them and no exception claim is made.
#[test]
fn a_shuffled_outcome_is_no_association_and_no_claim() {
    let dir = sample_copy(|_, to| {
        let path = to.join("outcomes.csv");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        let header = lines.remove(0);
        let ids: Vec<&str> = lines.iter().map(|l| l.split(',').next().unwrap()).collect();
        let mut rest: Vec<&str> = lines.iter().map(|l| l.split_once(',').unwrap().1).collect();
        // Fisher–Yates with a fixed LCG.
        let mut s: u64 = 0x2545_f491_4f6c_dd1d;
        for i in (1..rest.len()).rev() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            rest.swap(i, (s >> 33) as usize % (i + 1));
        }
        let body: Vec<String> = ids
            .iter()
            .zip(&rest)
            .map(|(a, r)| format!("{a},{r}"))
            .collect();
        std::fs::write(&path, format!("{header}\n{}\n", body.join("\n"))).unwrap();
    });
    let out = run(dir.path(), "2026-10..2026-11");
    for month in ["2026-10", "2026-11"] {
        let c = json(&out.join(month).join("comparison.json"));
        for feature in ["churned_3m", "arr_change_3m"] {
            let o = outcome(&c, feature);
            assert!(
                o["sentence"].as_str().unwrap().starts_with("Neither"),
                "{month} {feature}: {}",
                o["sentence"]
            );
            for x in o["exceptions"].as_array().unwrap() {
                assert!(x["claim"].is_null(), "{month} {feature}: {x}");
            }
        }
    }
}

/// CS moved some of October's upgrade candidates to the suggested tier in
/// November: the track record counts them, and equals a recomputation in
/// Python from the two months' assignments and features.
#[test]
fn the_track_record_follows_last_months_flags_and_matches_python() {
    // October's run first, to know whom it flagged.
    let probe = sample_copy(|_, _| {});
    let out = run(probe.path(), "2026-10..2026-10");
    let flagged = read_csv(&out.join("2026-10/exceptions.csv"));
    let ids = flagged.column("account_id").unwrap().str().unwrap().clone();
    let to = flagged
        .column("suggested_tier")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    let moves: Vec<(String, String)> = ids
        .iter()
        .zip(to.iter())
        .take(10)
        .map(|(a, t)| (a.unwrap().to_string(), t.unwrap().to_string()))
        .collect();
    let dir = sample_copy(|month, to| {
        if month != "2026-11" {
            return;
        }
        let path = to.join("accounts.csv");
        let text = std::fs::read_to_string(&path).unwrap();
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let tier_col = header.iter().position(|h| *h == "cs_tier").unwrap();
        let edited: Vec<String> = text
            .lines()
            .map(|l| {
                let mut cells: Vec<String> = l.split(',').map(str::to_string).collect();
                if let Some((_, t)) = moves.iter().find(|(a, _)| *a == cells[0]) {
                    cells[tier_col] = t.clone();
                }
                cells.join(",")
            })
            .collect();
        std::fs::write(&path, edited.join("\n") + "\n").unwrap();
    });
    let out = run(dir.path(), "2026-10..2026-11");
    let m = json(&out.join("2026-11/manifest.json"));
    let f = &m["headline"]["followed_up"];
    assert!(f["acted"].as_u64().unwrap() >= 8, "{f}");
    let (ok, text) = python(
        "tests/track_record.py",
        &[
            out.join("2026-10").as_os_str(),
            out.join("2026-11").as_os_str(),
            std::ffi::OsStr::new("arr"),
        ],
    );
    assert!(ok, "{text}");
    assert!(text.contains("same"), "{text}");
}

/// A binary outcome with another value than 0 or 1 is an error naming it.
#[test]
fn a_binary_outcome_must_be_zero_or_one() {
    let dir = sample_copy(|_, _| {});
    let p = dir.path().join("pipeline.toml");
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "feature = \"arr_change_3m\"\nlabel = \"3-month ARR change\"\nkind = \"numeric\"",
        "feature = \"arr_change_3m\"\nlabel = \"3-month ARR change\"\nkind = \"binary\"",
    );
    std::fs::write(&p, text).unwrap();
    let o = strata(&["validate", "pipeline.toml"], dir.path());
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.stderr.contains("outcome_not_binary") && o.stderr.contains("arr_change_3m"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("panicked"));
}
