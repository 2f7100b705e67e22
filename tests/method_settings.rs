//! A method written as the built-in ones are — one folder with its settings
//! section and checks beside it (`tests/quantiles/`), one registration line —
//! reaches the pipeline file's checks, the run summary, the report (through
//! the real binary) and the history, with its settings in the manifest.

mod common;
mod quantiles;

use common::*;
use quantiles::QUANTILES;
use strata::cluster::Methods;
use strata::run::{self, RunOptions, Silent};

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_method_with_its_own_section_reaches_summary_report_and_history() {
    let dir = months_fixture(400);
    let pipeline = dir.path().join("pipeline.toml");
    let text = std::fs::read_to_string(&pipeline).unwrap() + "\n[quantiles]\nbands = 4\n";
    std::fs::write(&pipeline, text).unwrap();
    let methods = Methods::with(&QUANTILES);
    let p = strata::config::load_with(&pipeline, &methods).unwrap();
    let out = dir.path().join("out");
    for month in ["2026-10", "2026-11"] {
        let opts = RunOptions {
            as_of: strata::month::Month::parse(month),
            output: Some(out.clone()),
            methods: methods.clone(),
            ..RunOptions::default()
        };
        let summary = run::run(&p, &opts, &Silent).unwrap();
        let text = run::summary_text(&summary);
        assert!(text.contains("quantile bands: 4 bands"), "{text}");
    }
    let run_dir = out.join("2026-11");
    let manifest = json(&run_dir.join("manifest.json"));
    assert_eq!(
        manifest["cluster"]["methods"]["quantiles"],
        serde_json::json!({"bands": 4, "column": 0})
    );
    assert_eq!(manifest["headline"]["segments"]["quantiles"], 4);
    let c = json(&run_dir.join("comparison.json"));
    let mh = c["history"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "quantiles")
        .expect("quantile bands tracked month over month");
    assert!(mh["drift_ari"].as_f64().unwrap() > 0.5, "{mh}");

    // The real binary re-renders the report from the files alone: the method
    // (which the binary's registry does not know, so it is called by its
    // name) has its section, with its settings.
    let o = strata(&["report", run_dir.to_str().unwrap()], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("<a href=\"#other-methods\">Other methods</a>"));
    assert!(
        html.contains("<h3>quantiles</h3><p>4 segments.</p>"),
        "no section"
    );
    assert!(html.contains("<td>quantiles.bands</td><td>4</td>"));
    let o = strata(&["history", out.to_str().unwrap()], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(o.stdout.contains("quantiles/tiers"), "{}", o.stdout);
}

#[test]
fn its_section_is_checked_with_the_pipeline_file() {
    let dir = months_fixture(100);
    let pipeline = dir.path().join("pipeline.toml");
    let base = std::fs::read_to_string(&pipeline).unwrap();
    let methods = Methods::with(&QUANTILES);
    let problems = |extra: &str| -> Vec<(String, String)> {
        std::fs::write(&pipeline, format!("{base}\n{extra}")).unwrap();
        match strata::config::load_with(&pipeline, &methods) {
            Err(strata::Error::Config(p)) => {
                p.problems.into_iter().map(|p| (p.key, p.message)).collect()
            }
            Err(e) => panic!("{e}"),
            Ok(_) => Vec::new(),
        }
    };
    let p = problems("[quantiles]\nbands = 1\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "quantiles.bands");
    let p = problems("[quantiles]\nband = 4\n");
    assert_eq!(p[0].0, "quantiles.band");
    assert!(p[0].1.contains("did you mean `bands`?"), "{p:?}");
    assert!(problems("[quantiles]\nbands = 5\n").is_empty());
    // Without the method, its section is a key the pipeline file does not know.
    std::fs::write(&pipeline, format!("{base}\n[quantiles]\nbands = 5\n")).unwrap();
    match strata::config::load(&pipeline) {
        Err(strata::Error::Config(p)) => assert_eq!(p.problems[0].key, "quantiles"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // And the registry's methods run as before with it registered and no section.
    std::fs::write(&pipeline, &base).unwrap();
    let p = strata::config::load_with(&pipeline, &methods).unwrap();
    assert!(p
        .cluster
        .settings::<quantiles::QuantileSettings>("quantiles")
        .is_some());
}
