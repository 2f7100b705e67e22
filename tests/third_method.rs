//! A third segment-discovery method, defined here and nowhere in the library,
//! flows through compare, history, the exports and the report: the later
//! stages iterate over the run's methods instead of naming k-means and
//! communities (issue 12). The run goes through the library (the only way to
//! bring a method of one's own); `strata report` and `strata history` are
//! the real binary on the run's real files.

mod common;
use common::*;

use std::path::Path;

use ndarray::ArrayView2;
use strata::cluster::{
    kmeans, ClusterConfig, Details, Draw, Method, Methods, Segmentation, Shared,
};
use strata::run::{self, RunOptions, Silent};

/// Quadrants of the first two matrix columns around their medians: a
/// trivial method, deterministic and seed-free.
#[derive(Debug)]
struct Quadrants;

fn quadrants(x: ArrayView2<f64>) -> Vec<usize> {
    let median = |j: usize| {
        let mut v: Vec<f64> = x.column(j).to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m0, m1) = (median(0), median(1));
    let raw: Vec<usize> = x
        .outer_iter()
        .map(|r| usize::from(r[0] > m0) * 2 + usize::from(r[1] > m1))
        .collect();
    // Label 0 = largest, as every method's labels are.
    kmeans::canonical(&raw).0
}

impl Method for Quadrants {
    fn name(&self) -> &'static str {
        "quadrants"
    }
    fn label(&self) -> &'static str {
        "quadrants"
    }
    fn fit(
        &self,
        x: ArrayView2<f64>,
        _cfg: &ClusterConfig,
        seed: u64,
        _previous: Option<&[Option<u32>]>,
    ) -> strata::Result<Segmentation> {
        let labels = quadrants(x);
        Ok(Segmentation {
            method: self.name().into(),
            sizes: strata::cluster::sizes(&labels),
            ids: strata::cluster::first_ids(&labels),
            labels,
            seed,
            seconds: 0.0,
            details: Details::Other {
                values: [("columns".to_string(), 2.0)].into_iter().collect(),
            },
            stability: None,
            neighbours: None,
            reuse: None,
        })
    }
    fn refit(
        &self,
        draw: Draw<'_>,
        _shared: &Shared,
        _fitted: &Segmentation,
        _cfg: &ClusterConfig,
        _seed: u64,
    ) -> strata::Result<Vec<usize>> {
        Ok(quadrants(draw.x))
    }
}

static QUADRANTS: Quadrants = Quadrants;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_method_of_ones_own_reaches_compare_history_exports_and_report() {
    let dir = months_fixture(600);
    let pipeline = dir.path().join("pipeline.toml");
    let p = strata::config::load(&pipeline).unwrap();
    let out = dir.path().join("out");
    for month in ["2026-10", "2026-11"] {
        let opts = RunOptions {
            as_of: strata::month::Month::parse(month),
            output: Some(out.clone()),
            methods: Methods::with(&QUADRANTS),
            ..RunOptions::default()
        };
        let summary = run::run(&p, &opts, &Silent).unwrap();
        let names: Vec<&str> = summary
            .segmentations
            .iter()
            .map(|s| s.method.as_ref())
            .collect();
        assert_eq!(names, ["kmeans", "community", "quadrants"]);
        assert!(run::summary_text(&summary).contains("quadrants: 4 segments"));
    }
    let run_dir = out.join("2026-11");

    // compare: agreement with the tiers, the mapping, the profiles.
    let c = json(&run_dir.join("comparison.json"));
    let mc = c["comparison"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "quadrants")
        .expect("quadrants compared with the tiers");
    assert!(mc["agreement"]["ari"].is_number(), "{mc}");
    assert_eq!(mc["mapping"].as_array().unwrap().len(), 4);
    let profiles = c["comparison"]["profiles"].as_array().unwrap();
    assert_eq!(
        profiles
            .iter()
            .filter(|p| p["method"] == "quadrants")
            .count(),
        4
    );
    let seg = c["segmentations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["method"] == "quadrants")
        .unwrap();
    assert_eq!(seg["details"]["kind"], "other");
    assert!(seg["stability"]["ari_mean"].is_number(), "{seg}");

    // history: matched to last month, drift measured.
    let mh = c["history"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "quadrants")
        .expect("quadrants tracked month over month");
    assert!(mh["drift_ari"].as_f64().unwrap() > 0.5, "{mh}");

    // The written frames and the CRM exports carry its columns.
    let a = read_parquet(&run_dir.join("assignments.parquet"));
    for col in [
        "quadrants_segment",
        "quadrants_name",
        "previous_quadrants_segment",
    ] {
        assert!(a.column(col).is_ok(), "assignments.parquet lacks {col}");
    }
    assert!(a.column("previous_quadrants_segment").unwrap().null_count() < a.height());
    let csv_head = std::fs::read_to_string(run_dir.join("assignments.csv")).unwrap();
    assert!(csv_head
        .lines()
        .next()
        .unwrap()
        .contains("quadrants_segment,quadrants_segment_name"));

    // The real binary: the report has its sections, history its columns.
    let o = strata(&["report", run_dir.to_str().unwrap()], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(
        html.matches("<h3>quadrants</h3>").count() >= 3,
        "profiles, sizes and tiers each show quadrants"
    );
    let o = strata(&["history", out.to_str().unwrap()], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let head = o.stdout.lines().next().unwrap_or("");
    assert!(
        head.contains("quadrants/tiers") && head.contains("drift ARI quadrants"),
        "{}",
        o.stdout
    );
}
