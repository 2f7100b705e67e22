//! End-to-end runs of the real binary on real files.

mod common;
use common::*;
use polars::prelude::*;

/// The run's assignments joined with the generator's truth table.
fn assignments_with_truth(fx: &Fixture) -> DataFrame {
    let a = read_parquet(&fx.path("out/2026-10/assignments.parquet"));
    let truth = read_csv(&fx.path("data/truth.csv"));
    a.lazy()
        .join(
            truth.lazy(),
            [col("account_id")],
            [col("account_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .collect()
        .unwrap()
}

#[test]
fn committed_sample_runs_with_the_readme_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let out = strata(
        &[
            "run",
            "pipelines/sample.toml",
            "--months",
            "2026-10..2026-11",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &repo(),
    );
    out.assert_clean();
    assert_eq!(out.code, 0, "{}", out.text());
    assert!(out_dir.join("2026-11/_SUCCESS").is_file());
    let run = out_dir.join("2026-10");
    for f in ["features.parquet", "quality.json", "manifest.json"] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let features = read_parquet(&run.join("features.parquet"));
    let ids: std::collections::BTreeSet<String> =
        std::fs::read_to_string(repo().join("data/sample/2026-10/accounts.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect();
    assert_eq!(features.height(), ids.len(), "one row per distinct account");
    assert!(features.column("arr").is_ok() && features.column("x__arr").is_ok());
    assert!(features.column("x__industry=Software").is_ok());
    // Matrix columns are finite.
    for c in features
        .columns()
        .iter()
        .filter(|c| c.name().starts_with("x__"))
    {
        let v = c.f64().unwrap();
        assert_eq!(v.null_count(), 0, "{}", c.name());
        assert!(v.iter().all(|x| x.unwrap().is_finite()), "{}", c.name());
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["as_of"], "2026-10");
    assert_eq!(manifest["accounts"].as_u64().unwrap() as usize, ids.len());
    // The sample's realistic mess is reported, not fatal.
    let quality: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("quality.json")).unwrap()).unwrap();
    let codes: Vec<&str> = quality["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"duplicate_id"), "{codes:?}");
}

#[test]
fn features_match_the_generated_truth() {
    // ARR from revenue.csv at the as-of month equals the feature, for every account.
    let fx = Fixture::new(300, "csv");
    let out = fx.run(&["run", "pipeline.toml"]);
    assert_eq!(out.code, 0, "{}", out.text());
    let f = read_parquet(&fx.path("out/2026-10/features.parquet"));
    let rev = read_csv(&fx.path("data/revenue.csv"));
    let expected = rev
        .lazy()
        .filter(col("month").eq(lit("2026-10-01")))
        .group_by([col("account_id")])
        .agg([(col("mrr").sum() * lit(12.0)).alias("expected")])
        .collect()
        .unwrap();
    let joined = f
        .lazy()
        .join(
            expected.lazy(),
            [col("account_id")],
            [col("account_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .collect()
        .unwrap();
    assert!(joined.height() > 250);
    let a = joined.column("arr").unwrap().f64().unwrap();
    let e = joined.column("expected").unwrap().f64().unwrap();
    for (x, y) in a.iter().zip(e.iter()) {
        assert!((x.unwrap() - y.unwrap()).abs() < 1e-6);
    }
}

#[test]
fn second_schema_works_by_pipeline_file_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = strata(
        &[
            "sample",
            "--schema",
            "alt",
            "--accounts",
            "250",
            "--out",
            "data/alt",
        ],
        tmp.path(),
    );
    assert_eq!(out.code, 0, "{}", out.text());
    assert!(tmp.path().join("data/alt/billing.parquet").exists());
    let text = std::fs::read_to_string(repo().join("pipelines/alt_schema.toml"))
        .unwrap()
        .replace("../data/alt/", "data/alt/")
        .replace("../out/alt", "out");
    std::fs::write(tmp.path().join("alt.toml"), text).unwrap();
    let out = strata(&["run", "alt.toml"], tmp.path());
    out.assert_clean();
    assert_eq!(out.code, 0, "{}", out.text());
    let f = read_parquet(&tmp.path().join("out/2026-10/features.parquet"));
    assert_eq!(f.height(), 250);
    // Usage reached through subscriptions: most accounts have events.
    let depth = f.column("usage_depth").unwrap().f64().unwrap();
    let active = depth.iter().filter(|v| v.unwrap_or(0.0) > 0.0).count();
    assert!(active > 200, "{active} of 250 accounts have usage");
    let util = f.column("seat_utilisation").unwrap().f64().unwrap();
    assert!(util.iter().flatten().all(|v| (0.0..=1.0).contains(&v)));
}

#[test]
fn same_inputs_give_byte_identical_outputs_whatever_the_thread_count() {
    let fx = Fixture::new(400, "csv");
    let run = |threads: &str, out: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["run", "pipeline.toml", "--out", out])
            .current_dir(fx.dir.path())
            .env("RAYON_NUM_THREADS", threads)
            .env("POLARS_MAX_THREADS", threads)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run("1", "o1");
    run("2", "o2");
    // Every file but the manifest (which records the thread count and the
    // timings): with two threads features.parquet is written beside the
    // clustering and the account frame read back from it for the comparison,
    // with one it is held, so this also proves the frame comes back whole.
    let mut names: Vec<String> = std::fs::read_dir(fx.path("o1/2026-10"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.json")
        .collect();
    names.sort();
    for must in [
        "features.parquet",
        "assignments.parquet",
        "comparison.json",
        "exceptions.csv",
    ] {
        assert!(names.iter().any(|n| n == must), "{must} not in {names:?}");
    }
    for f in &names {
        let fa = std::fs::read(fx.path(&format!("o1/2026-10/{f}"))).unwrap();
        let fb = std::fs::read(fx.path(&format!("o2/2026-10/{f}")))
            .unwrap_or_else(|e| panic!("{f} with 2 threads: {e}"));
        assert!(fa == fb, "{f} differs between 1 and 2 threads");
    }
    let threads = |o: &str| -> serde_json::Value {
        serde_json::from_str(&fx.read(&format!("{o}/2026-10/manifest.json"))).unwrap()
    };
    assert_eq!(threads("o1")["threads"], 1);
    assert_eq!(threads("o2")["threads"], 2);
}

/// Exports come in any order of accounts: each account's rows together, in
/// the order the file has them, are what every feature is computed from, so
/// a file with its accounts in another order gives the same outputs to the
/// byte (strata used to hash out-of-order rows in one piece, and sums came
/// out different in the last bits).
#[test]
fn the_order_of_accounts_in_an_export_changes_nothing() {
    let fx = Fixture::new(600, "csv");
    let o = fx.run(&["run", "pipeline.toml", "--out", "o1", "-q"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let names = ["usage", "revenue", "nps", "tickets"];
    // Each export's header and its accounts' blocks of rows, in file order.
    let exports: Vec<(String, Vec<Vec<String>>)> = names
        .iter()
        .map(|name| {
            let text = fx.read(&format!("data/{name}.csv"));
            let mut lines = text.lines();
            let header = lines.next().unwrap().to_string();
            let at = header.split(',').position(|c| c == "account_id").unwrap();
            let mut ids: Vec<String> = Vec::new();
            let mut blocks: Vec<Vec<String>> = Vec::new();
            for line in lines {
                let id = line.split(',').nth(at).unwrap().to_string();
                match ids.iter().position(|i| *i == id) {
                    Some(b) => blocks[b].push(line.to_string()),
                    None => {
                        ids.push(id);
                        blocks.push(vec![line.to_string()]);
                    }
                }
            }
            assert!(blocks.len() > 100, "{name}");
            (header, blocks)
        })
        .collect();
    // Accounts last-seen first (rows gathered in account order), then in
    // file order but the first account's rows last (as `A10000000` sorts
    // among `A1000000…`: the rows rejoined in a few runs).
    let orders: [(&str, fn(usize) -> Vec<usize>); 2] = [
        ("o2", |n| (0..n).rev().collect()),
        ("o3", |n| (1..n).chain([0]).collect()),
    ];
    for (out, order) in orders {
        for (name, (header, blocks)) in names.iter().zip(&exports) {
            let mut text = header.clone() + "\n";
            for b in order(blocks.len()) {
                for r in &blocks[b] {
                    text.push_str(r);
                    text.push('\n');
                }
            }
            fx.write(&format!("data/{name}.csv"), &text);
        }
        let o = fx.run(&["run", "pipeline.toml", "--out", out, "-q"]);
        assert_eq!(o.code, 0, "{}", o.text());
        for f in ["features.parquet", "assignments.parquet", "comparison.json"] {
            let a = std::fs::read(fx.path(&format!("o1/2026-10/{f}"))).unwrap();
            let b = std::fs::read(fx.path(&format!("{out}/2026-10/{f}"))).unwrap();
            assert!(
                a == b,
                "{f} differs when the exports list accounts in another order ({out})"
            );
        }
    }
}

#[test]
fn planted_segments_are_recovered() {
    let fx = Fixture::new(1500, "csv");
    let out = fx.run(&["run", "pipeline.toml"]);
    assert_eq!(out.code, 0, "{}", out.text());
    let j = assignments_with_truth(&fx);
    assert_eq!(j.height(), 1500);
    let planted: Vec<usize> = j
        .column("planted_segment")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap() as usize)
        .collect();
    let scores: Vec<(&str, strata::partition::Agreement)> = ["kmeans_segment", "community_segment"]
        .into_iter()
        .map(|method| {
            let labels: Vec<usize> = j
                .column(method)
                .unwrap()
                .u32()
                .unwrap()
                .iter()
                .map(|v| v.unwrap() as usize)
                .collect();
            let s = strata::partition::agreement(&planted, &labels);
            eprintln!(
                "{method}: ARI {:.3} NMI {:.3} vs planted segments",
                s.ari, s.nmi
            );
            (method, s)
        })
        .collect();
    // k-means recovers the planted segments; communities are finer and must
    // each sit inside one planted segment (specialised sub-segments).
    assert!(
        scores[0].1.ari > 0.65,
        "{}: ARI {:.3}",
        scores[0].0,
        scores[0].1.ari
    );
    assert!(
        scores[1].1.homogeneity > 0.9,
        "{}: each community inside one planted segment: {:.3}",
        scores[1].0,
        scores[1].1.homogeneity
    );
    let clusters: serde_json::Value =
        serde_json::from_str(&fx.read("out/2026-10/comparison.json")).unwrap();
    let segs = clusters["segmentations"].as_array().unwrap();
    assert_eq!(segs.len(), 2);
    assert!(
        segs[0]["details"]["k_scores"].as_array().unwrap().len() >= 5,
        "every k's scores are kept"
    );
    assert!(segs[1]["details"]["modularity"].as_f64().unwrap() > 0.3);
    assert!(segs
        .iter()
        .all(|s| s["stability"]["ari_mean"].as_f64().is_some()));
}

#[test]
fn sample_is_deterministic_per_seed() {
    let tmp = tempfile::tempdir().unwrap();
    for d in ["a", "b"] {
        let out = strata(
            &["sample", "--accounts", "100", "--seed", "9", "--out", d],
            tmp.path(),
        );
        assert_eq!(out.code, 0);
    }
    for f in [
        "accounts.csv",
        "usage.csv",
        "nps.csv",
        "revenue.csv",
        "tickets.csv",
        "truth.csv",
    ] {
        assert_eq!(
            std::fs::read(tmp.path().join("a").join(f)).unwrap(),
            std::fs::read(tmp.path().join("b").join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn help_shows_examples() {
    let out = strata(&["--help"], &repo());
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("Examples:") && out.stdout.contains("strata run pipelines/sample.toml")
    );
}

/// Exceptions found on the sample vs the generator's planted mis-tiered accounts.
#[test]
fn planted_mis_tiered_accounts_are_found_as_exceptions() {
    let fx = Fixture::new(2000, "csv");
    let out = fx.run(&["run", "pipeline.toml"]);
    assert_eq!(out.code, 0, "{}", out.text());
    assert!(
        out.stdout.contains("vs tiers: strong agreement") && out.stdout.contains("upgrade and"),
        "{}",
        out.stdout
    );
    let j = assignments_with_truth(&fx);
    let found: Vec<Option<&str>> = j
        .column("exception")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    let planted: Vec<&str> = j
        .column("planted_exception")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let tp = found
        .iter()
        .zip(&planted)
        .filter(|(f, p)| f.is_some() && f.unwrap() == **p)
        .count();
    let flagged = found.iter().filter(|f| f.is_some()).count();
    let actual = planted.iter().filter(|p| **p != "none").count();
    let precision = tp as f64 / flagged.max(1) as f64;
    let recall = tp as f64 / actual.max(1) as f64;
    eprintln!("exceptions: {flagged} flagged, {actual} planted, {tp} right: precision {precision:.3}, recall {recall:.3}");
    assert!(recall >= 0.9, "recall {recall:.3}");
    assert!(precision >= 0.9, "precision {precision:.3}");
    // Every exception has a reason in plain units.
    let reasons = j.column("reason").unwrap().str().unwrap().clone();
    for (f, r) in found.iter().zip(reasons.iter()) {
        if f.is_some() {
            let r = r.unwrap();
            assert!(
                r.contains("typical") || r.starts_with("needs review"),
                "a move's reason without the tiers' typical values: {r}"
            );
        }
    }
    let segments = read_parquet(&fx.path("out/2026-10/segments.parquet"));
    let names: Vec<&str> = segments
        .column("name")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.is_empty()));
    let cmp: serde_json::Value =
        serde_json::from_str(&fx.read("out/2026-10/comparison.json")).unwrap();
    let m = &cmp["comparison"]["methods"][0];
    assert_eq!(m["method"], "kmeans");
    assert!(m["agreement"]["ari"].as_f64().unwrap() > 0.2);
    assert_eq!(
        m["contingency"][0].as_array().unwrap().len(),
        3,
        "segment × 3 tiers"
    );
    assert!(cmp["comparison"]["cross"]["contingency"]
        .as_array()
        .is_some());
}

#[test]
fn tiers_from_rules_work() {
    let fx = Fixture::new(600, "csv");
    let text = std::fs::read_to_string(repo().join("pipelines/tier_rules.toml"))
        .unwrap()
        .replace("../data/sample/{as_of}/", "data/")
        .replace("as_of = \"2026-11\"", "as_of = \"2026-10\"")
        .replace("../out/sample-rules", "out");
    fx.write("rules.toml", &text);
    let out = fx.run(&["run", "rules.toml"]);
    out.assert_clean();
    assert_eq!(out.code, 0, "{}", out.text());
    let a = read_parquet(&fx.path("out/2026-10/assignments.parquet"));
    let f = read_parquet(&fx.path("out/2026-10/features.parquet"));
    let tiers: Vec<&str> = a
        .column("current_tier")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let arr: Vec<Option<f64>> = f.column("arr").unwrap().f64().unwrap().iter().collect();
    for (t, v) in tiers.iter().zip(arr) {
        let expected = match v {
            Some(v) if v >= 100000.0 => "High Touch",
            Some(v) if v >= 20000.0 => "Hybrid",
            _ => "Tech Touch",
        };
        assert_eq!(*t, expected, "arr {v:?}");
    }
}

/// `tiers.column` naming an account-table column that is no feature: the
/// column is read as it is (no helper feature, nothing in the matrix), and
/// the comparison is the same as with the tier declared as a feature.
#[test]
fn tiers_from_an_account_table_column_that_is_no_feature() {
    let fx = Fixture::new(600, "csv");
    let base = fx.pipeline();
    let feature =
        "[[feature]]\nname = \"current_tier\"\nexpr = \"cs_tier\"\nkind = \"categorical\"\n";
    let start = base
        .find(feature)
        .expect("the sample declares the tier as a feature");
    let end = start + base[start..].find("\n\n").unwrap();
    let text = format!("{}{}", &base[..start], &base[end..])
        .replace("column = \"current_tier\"", "column = \"cs_tier\"")
        .replace("\"out\"", "\"out-column\"");
    assert!(!text.contains("name = \"current_tier\""));
    fx.write("column.toml", &text);
    for p in ["pipeline.toml", "column.toml"] {
        let out = fx.run(&["run", p]);
        out.assert_clean();
        assert_eq!(out.code, 0, "{p}: {}", out.text());
    }
    let json = |rel: &str| -> serde_json::Value { serde_json::from_str(&fx.read(rel)).unwrap() };
    let (a, b) = (
        json("out/2026-10/comparison.json"),
        json("out-column/2026-10/comparison.json"),
    );
    assert_eq!(a["comparison"]["tiers"], b["comparison"]["tiers"]);
    assert_eq!(a["comparison"]["methods"], b["comparison"]["methods"]);
    assert_eq!(a["comparison"]["exceptions"], b["comparison"]["exceptions"]);
    let tiers = |dir: &str| -> Vec<Option<String>> {
        let a = read_parquet(&fx.path(&format!("{dir}/2026-10/assignments.parquet")));
        a.column("current_tier")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    };
    assert_eq!(tiers("out"), tiers("out-column"));
    // The raw column rides along in features.parquet under its own name; the
    // matrix and the manifest's feature list know nothing of it.
    let f = read_parquet(&fx.path("out-column/2026-10/features.parquet"));
    assert!(f.column("cs_tier").is_ok());
    assert!(f.column("current_tier").is_err());
    let m = json("out-column/2026-10/manifest.json");
    assert!(m["features"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["feature"] != "cs_tier" && c["feature"] != "current_tier"));
}

#[test]
fn a_feature_may_read_its_sources_link_column() {
    // Linking drops a child source's link column (the account's row number
    // replaces it) unless something still reads it: here a feature does.
    let fx = Fixture::new(600, "csv");
    let extra = "[[feature]]\nname = \"tickets_by_link\"\nsource = \"tickets\"\nexpr = \"count(account_id) / 6.0\"\nwindow = 6\nmissing = \"zero\"\nmatrix = false\n\n[[feature]]\nname = \"tenure_months\"";
    let text = fx
        .pipeline()
        .replacen("[[feature]]\nname = \"tenure_months\"", extra, 1);
    assert!(text.contains("tickets_by_link"));
    fx.write("link.toml", &text);
    let out = fx.run(&["run", "link.toml"]);
    out.assert_clean();
    assert_eq!(out.code, 0, "{}", out.text());
    let f = read_parquet(&fx.path("out/2026-10/features.parquet"));
    let col = |name: &str| -> Vec<Option<f64>> {
        let c = f
            .column(name)
            .unwrap()
            .cast(&polars::prelude::DataType::Float64)
            .unwrap();
        c.f64().unwrap().iter().collect()
    };
    assert_eq!(col("tickets_by_link"), col("tickets_per_month"));
    assert!(col("tickets_by_link")
        .iter()
        .any(|v| v.is_some_and(|x| x > 0.0)));
}
