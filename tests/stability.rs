//! Stability is said, not only computed: on uniform noise (no segments to
//! find) the run summary, report.html and report.md warn before anyone acts
//! on the segments; on the sample, whose k-means segments are stable, they
//! do not.

mod common;
use common::*;

/// 600 accounts with three uniform features and a random tier.
fn noise() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut csv = String::from("id,a,b,c,tier\n");
    for i in 0..600 {
        let (a, b, c) = (next(), next(), next());
        let tier = if next() < 0.5 { "Gold" } else { "Silver" };
        csv.push_str(&format!("N{i:04},{a:.4},{b:.4},{c:.4},{tier}\n"));
    }
    std::fs::write(dir.path().join("accounts.csv"), csv).unwrap();
    let mut p = String::from(
        "[run]\nas_of = \"2026-10\"\noutput = \"out\"\n[sources.accounts]\npath = \"accounts.csv\"\nid = \"id\"\n",
    );
    for f in ["a", "b", "c"] {
        p.push_str(&format!("[[feature]]\nname = \"{f}\"\nexpr = \"{f}\"\n"));
    }
    p.push_str("[[feature]]\nname = \"tier\"\nexpr = \"tier\"\nkind = \"categorical\"\nmatrix = false\n[tiers]\norder = [\"Gold\", \"Silver\"]\ncolumn = \"tier\"\n");
    std::fs::write(dir.path().join("p.toml"), p).unwrap();
    dir
}

#[test]
fn uniform_noise_warns_before_anyone_acts_on_its_segments() {
    let dir = noise();
    let o = strata(&["run", "p.toml"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let warnings: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.starts_with("  warning: k-means"))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("prediction-strength test")),
        "no word on the silhouette fallback:\n{}",
        o.stdout
    );
    let html = std::fs::read_to_string(dir.path().join("out/2026-10/report.html")).unwrap();
    assert!(
        html.contains("class=\"stability-warning\""),
        "no warning box"
    );
    let md = std::fs::read_to_string(dir.path().join("out/2026-10/report.md")).unwrap();
    assert!(md.contains("## Before acting on these segments"), "{md}");
}

#[test]
fn the_samples_stable_segments_carry_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = strata(
        &[
            "run",
            repo().join("pipelines/sample.toml").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        !o.stdout.contains("  warning:"),
        "a stability warning on the sample:\n{}",
        o.stdout
    );
    let html = std::fs::read_to_string(out.join("2026-11/report.html")).unwrap();
    assert!(!html.contains("class=\"stability-warning\""));
    // The finer view's unstable communities are a note, not a warning.
    assert!(o.stdout.contains("  note: "), "{}", o.stdout);
}
