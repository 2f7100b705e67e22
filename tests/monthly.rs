//! The monthly re-segmentation contract, on the real binary and real files:
//! atomic commits that survive SIGKILL, one writer per output folder,
//! byte-identical re-runs, stable segment IDs and migration between months.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use polars::prelude::*;
use rand::{Rng, SeedableRng};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every file of a run directory, with the manifest's timings blanked (the
/// only part allowed to differ between re-runs).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let mut bytes = std::fs::read(e.path()).unwrap();
        if name == "manifest.json" {
            let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            v["stage_seconds"] = serde_json::Value::Null;
            bytes = serde_json::to_vec(&v).unwrap();
        }
        out.insert(name, bytes);
    }
    out
}

const DATA_FILES: [&str; 8] = [
    "report.html",
    "report.md",
    "assignments.parquet",
    "segments.parquet",
    "features.parquet",
    "comparison.json",
    "quality.json",
    "_SUCCESS",
];

/// No partial month is visible: every YYYY-MM folder is complete.
fn assert_only_complete_months(out: &Path) {
    for e in std::fs::read_dir(out).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // the lock file and staging folders are hidden
        }
        if name == "segment_history" {
            continue; // the Delta table of all months, not a month
        }
        for f in DATA_FILES.iter().chain(&["manifest.json"]) {
            assert!(e.path().join(f).is_file(), "{name} is visible without {f}");
        }
    }
}

#[test]
fn two_months_give_stable_ids_transitions_and_migration() {
    let dir = months_fixture(1500);
    let o = strata(
        &["run", "pipeline.toml", "--months", "2026-10..2026-11"],
        dir.path(),
    );
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    let out = dir.path().join("out");
    let oct = read_parquet(&out.join("2026-10/assignments.parquet"));
    let nov = read_parquet(&out.join("2026-11/assignments.parquet"));
    let cmp = json(&out.join("2026-11/comparison.json"));
    let h = &cmp["history"];
    assert_eq!(h["previous_as_of"], "2026-10");
    assert_eq!(
        h["previous_dir"], "2026-10",
        "relative to the output folder"
    );
    let (common, new, lost) = (
        h["common_accounts"].as_u64().unwrap(),
        h["new_accounts"].as_u64().unwrap(),
        h["lost_accounts"].as_u64().unwrap(),
    );
    assert!(
        new > 0 && lost > 0,
        "the follow-on month has new and churned accounts"
    );
    assert_eq!(common + new, nov.height() as u64);
    assert_eq!(common + lost, oct.height() as u64);

    // The previous segment recorded per account is last month's, by account.
    let prev_of: BTreeMap<String, u32> = oct
        .column("account_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(oct.column("kmeans_segment").unwrap().u32().unwrap().iter())
        .map(|(a, s)| (a.unwrap().to_string(), s.unwrap()))
        .collect();
    let ids = nov.column("account_id").unwrap().str().unwrap();
    let now = nov.column("kmeans_segment").unwrap().u32().unwrap();
    let recorded = nov
        .column("previous_kmeans_segment")
        .unwrap()
        .u32()
        .unwrap();
    let mut same = 0;
    for i in 0..nov.height() {
        let a = ids.get(i).unwrap();
        assert_eq!(
            recorded.get(i),
            prev_of.get(a).copied(),
            "previous segment of {a}"
        );
        if recorded.get(i).is_some() && recorded.get(i) == now.get(i) {
            same += 1;
        }
    }
    // IDs follow the accounts: with ~2% drift most keep their segment ID.
    assert!(
        same as f64 > 0.9 * common as f64,
        "{same} of {common} kept their ID"
    );

    for m in h["methods"].as_array().unwrap() {
        let method = m["method"].as_str().unwrap();
        let mig = &m["migration"];
        let total: u64 = mig["counts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
            .sum();
        assert_eq!(
            total, common,
            "{method}: migration matrix covers the accounts in both months"
        );
        let new_sum: u64 = mig["new"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(new_sum, new);
        let lost_sum: u64 = mig["lost"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(lost_sum, lost);
        let kinds: Vec<&str> = m["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"survived"), "{method}: {kinds:?}");
        // k-means segments barely move with ~2% drift; communities split the
        // planted segments into finer groups whose borders move more.
        let floor = if method == "kmeans" { 0.8 } else { 0.3 };
        assert!(
            m["drift_ari"].as_f64().unwrap() > floor,
            "{method}: drift {}",
            m["drift_ari"]
        );
    }
    // Survivors keep their names; segments.parquet uses the stable IDs.
    let seg_oct = read_parquet(&out.join("2026-10/segments.parquet"));
    let seg_nov = read_parquet(&out.join("2026-11/segments.parquet"));
    let names = |df: &DataFrame| -> BTreeMap<(String, u32), String> {
        let m = df.column("method").unwrap().str().unwrap();
        let s = df.column("segment").unwrap().u32().unwrap();
        let n = df.column("name").unwrap().str().unwrap();
        (0..df.height())
            .map(|i| {
                (
                    (m.get(i).unwrap().into(), s.get(i).unwrap()),
                    n.get(i).unwrap().into(),
                )
            })
            .collect()
    };
    let (no, nn) = (names(&seg_oct), names(&seg_nov));
    let km = &h["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "kmeans")
        .unwrap()["transitions"];
    for t in km
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "survived")
    {
        let p = t["previous"][0].as_u64().unwrap() as u32;
        let c = t["current"][0].as_u64().unwrap() as u32;
        assert_eq!(
            no[&("kmeans".into(), p)],
            nn[&("kmeans".into(), c)],
            "survivor keeps its name"
        );
    }
    // New IDs continue past every ID issued before (read from the manifest).
    let oct_next = &json(&out.join("2026-10/manifest.json"))["next_segment_ids"];
    for ((method, id), _) in nn.iter().filter(|(k, _)| !no.contains_key(*k)) {
        let next = oct_next[method.as_str()].as_u64().unwrap() as u32;
        assert!(
            *id >= next,
            "{method} segment {id} reuses an ID below {next}"
        );
    }
    let nov_ids: BTreeSet<u32> = now.iter().flatten().collect();
    let listed: BTreeSet<u32> = nn.keys().filter(|k| k.0 == "kmeans").map(|k| k.1).collect();
    assert_eq!(nov_ids, listed);
    // Tier migration and exception changes are there.
    assert!(h["tiers"]["counts"].is_array());
    assert!(h["exceptions"]["newly_flagged"].is_u64());

    // `strata history` lists both months, with drift on the second.
    let hist = strata(&["history", "out"], dir.path());
    assert_eq!(hist.code, 0, "{}", hist.text());
    let lines: Vec<&str> = hist.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", hist.stdout);
    assert!(lines[1].starts_with("2026-10") && lines[2].starts_with("2026-11"));
    let hj = strata(&["history", "out", "--json"], dir.path());
    let rows: serde_json::Value = serde_json::from_str(&hj.stdout).unwrap();
    assert!(rows[0]["drift_ari"].as_object().unwrap().is_empty());
    assert!(rows[1]["drift_ari"]["kmeans"].as_f64().unwrap() > 0.8);
    assert_eq!(rows[1]["new_accounts"].as_u64().unwrap(), new);
}

#[test]
fn rerun_of_a_month_is_byte_identical_and_parquet_carries_metadata() {
    let dir = months_fixture(400);
    let run = || {
        let o = strata(&["run", "pipeline.toml", "--as-of", "2026-10"], dir.path());
        assert_eq!(o.code, 0, "{}", o.text());
        snapshot(&dir.path().join("out/2026-10"))
    };
    let a = run();
    let b = run();
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{name} differs between two runs of the same month"
        );
    }
    for f in [
        "assignments.parquet",
        "segments.parquet",
        "features.parquet",
    ] {
        let mut r = ParquetReader::new(
            std::fs::File::open(dir.path().join("out/2026-10").join(f)).unwrap(),
        );
        let md = r.get_metadata().unwrap();
        let kv: BTreeMap<String, String> = md
            .key_value_metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|k| (k.key, k.value.unwrap_or_default()))
            .collect();
        assert_eq!(
            kv.get("strata.as_of").map(String::as_str),
            Some("2026-10"),
            "{f}: {kv:?}"
        );
        assert_eq!(
            kv.get("strata.pipeline_sha256").map(String::len),
            Some(64),
            "{f}"
        );
        assert_eq!(
            kv.get("strata.version").map(String::as_str),
            Some(env!("CARGO_PKG_VERSION")),
            "{f}"
        );
    }
    // The manifest records each input's hash and rows.
    let m = json(&dir.path().join("out/2026-10/manifest.json"));
    let inputs = m["inputs"].as_array().unwrap();
    // accounts, usage, revenue, nps, tickets, outcomes
    assert_eq!(inputs.len(), 6);
    for i in inputs {
        assert_eq!(i["sha256"].as_str().unwrap().len(), 64);
        assert!(i["rows_read"].as_u64().unwrap() > 0);
        assert!(i["path"].as_str().unwrap().contains("2026-10"));
    }
    assert!(m["pipeline_text"]
        .as_str()
        .unwrap()
        .contains("[sources.accounts]"));
    assert!(m["headline"]["segments"]["kmeans"].as_u64().unwrap() >= 2);
}

#[test]
fn concurrent_runs_on_one_output_folder_exactly_one_succeeds() {
    let dir = months_fixture(1500);
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["run", "pipeline.toml", "--as-of", "2026-10"])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ok = results.iter().filter(|r| r.status.success()).count();
    assert_eq!(ok, 1, "exactly one run succeeds");
    for r in results.iter().filter(|r| !r.status.success()) {
        assert_eq!(r.status.code(), Some(1));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.contains("another strata run is writing to out"),
            "{err}"
        );
    }
    assert_only_complete_months(&dir.path().join("out"));
}

#[test]
fn sigkill_at_random_moments_never_damages_a_committed_month() {
    let dir = months_fixture(1000);
    let out = dir.path().join("out");
    let o = strata(&["run", "pipeline.toml", "--as-of", "2026-10"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let committed = snapshot(&out.join("2026-10"));
    // How long a whole run takes here, to spread the kills over it.
    let t = Instant::now();
    let o = strata(&["run", "pipeline.toml", "--as-of", "2026-11"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let mut full = t.elapsed();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(20261123);
    let mut killed_before_end = 0;
    let mut i = 0;
    // Until ten kills have landed mid-run (the machine's speed varies with
    // what else runs, so the delays adapt when a run finishes first).
    while killed_before_end < 10 {
        i += 1;
        assert!(i <= 40, "could not kill a run mid-way in 40 attempts");
        // Alternate a new month and a re-run that replaces a committed one.
        let month = if i % 2 == 0 { "2026-11" } else { "2026-10" };
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["run", "pipeline.toml", "--as-of", month, "-q"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = full.mul_f64(rng.gen_range(0.02..1.0));
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_before_end += 1;
        } else {
            full = full.mul_f64(0.7);
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        assert_only_complete_months(&out);
        let now = snapshot(&out.join("2026-10"));
        for (name, bytes) in &committed {
            assert!(
                bytes == &now[name],
                "kill {i} ({month}, after {delay:?}) changed 2026-10/{name}"
            );
        }
    }
    // The next run cleans up and succeeds.
    let o = strata(&["run", "pipeline.toml", "--as-of", "2026-11"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_only_complete_months(&out);
}

#[test]
fn json_logs_for_schedulers() {
    let dir = months_fixture(300);
    let o = strata(
        &[
            "run",
            "pipeline.toml",
            "--as-of",
            "2026-10",
            "--log-format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(o.code, 0, "{}", o.text());
    let events = json_events(&o.stderr);
    assert!(events
        .iter()
        .any(|e| e["event"] == "done" && e["stage"] == "ingest"));
    assert!(events.iter().any(|e| e["event"] == "finished"));
    // The methods are fitted side by side, and reported in their order.
    let done: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "done")
        .filter_map(|e| e["stage"].as_str())
        .collect();
    assert_eq!(
        done[..7],
        [
            "ingest",
            "features",
            "similarity graph",
            "k-means",
            "communities",
            "stability",
            "compare"
        ],
        "{done:?}"
    );
    // An error is one JSON line too, and the exit code says "fix your input".
    let o = strata(&["run", "missing.toml", "--log-format", "json"], dir.path());
    assert_eq!(o.code, 1);
    let last: serde_json::Value = serde_json::from_str(o.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    // Plain text without a terminal: no spinner control characters.
    let o = strata(&["run", "pipeline.toml", "--as-of", "2026-10"], dir.path());
    assert!(!o.stderr.contains('\u{1b}'), "{}", o.stderr);
    assert!(o.stderr.contains("strata: ingest done"), "{}", o.stderr);
}

#[test]
fn a_features_only_month_is_skipped_when_matching_the_next_month() {
    let dir = months_fixture(300);
    let o = strata(
        &[
            "run",
            "pipeline.toml",
            "--as-of",
            "2026-10",
            "--until",
            "features",
        ],
        dir.path(),
    );
    assert_eq!(o.code, 0, "{}", o.text());
    let o = strata(&["run", "pipeline.toml", "--as-of", "2026-11"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let c = json(&dir.path().join("out/2026-11/comparison.json"));
    assert!(
        c["history"]["previous_as_of"].is_null(),
        "nothing to match against"
    );
    let h = strata(&["history", "out"], dir.path());
    assert_eq!(h.code, 0, "{}", h.text());
    assert_eq!(h.stdout.lines().count(), 3, "{}", h.stdout);
}

#[test]
fn follow_on_sample_is_the_same_business_a_month_later() {
    let dir = months_fixture(500);
    let ids = |m: &str| -> BTreeSet<String> {
        std::fs::read_to_string(dir.path().join(format!("data/{m}/truth.csv")))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    };
    let (a, b) = (ids("2026-10"), ids("2026-11"));
    let kept = a.intersection(&b).count();
    assert!(
        kept as f64 > 0.95 * a.len() as f64 && kept < a.len(),
        "{kept} of {}",
        a.len()
    );
    assert!(b.len() > kept, "new accounts appear");
    // The follow-on month's usage reaches into November.
    let usage = std::fs::read_to_string(dir.path().join("data/2026-11/usage.csv")).unwrap();
    assert!(usage.contains("2026-11"));
}

#[test]
fn the_same_months_under_another_output_folder_are_byte_identical() {
    let dir = months_fixture(300);
    for out in ["out", "elsewhere/deeper/out2"] {
        let o = strata(
            &[
                "run",
                "pipeline.toml",
                "--months",
                "2026-10..2026-11",
                "--out",
                out,
                "-q",
            ],
            dir.path(),
        );
        assert_eq!(o.code, 0, "{}", o.text());
    }
    let a = snapshot(&dir.path().join("out/2026-11"));
    let b = snapshot(&dir.path().join("elsewhere/deeper/out2/2026-11"));
    for name in DATA_FILES {
        assert!(
            a[name] == b[name],
            "{name} depends on the output folder's path"
        );
    }
}

/// With `--log-format json` every data-quality finding is an event, in
/// `validate` and `run` alike, warnings included (issue 35).
#[test]
fn json_logs_carry_every_finding_as_an_event() {
    let dir = months_fixture(300);
    // One account twice in the account table: a duplicate_id warning.
    let accounts = dir.path().join("data/2026-10/accounts.csv");
    let text = std::fs::read_to_string(&accounts).unwrap();
    let second = text.lines().nth(1).unwrap().to_string();
    std::fs::write(&accounts, format!("{text}{second}\n")).unwrap();
    for cmd in ["validate", "run"] {
        let o = strata(
            &[
                cmd,
                "pipeline.toml",
                "--as-of",
                "2026-10",
                "--log-format",
                "json",
            ],
            dir.path(),
        );
        assert_eq!(o.code, 0, "{cmd}: {}", o.text());
        let events = json_events(&o.stderr);
        let dup = events
            .iter()
            .find(|e| e["event"] == "finding" && e["code"] == "duplicate_id")
            .unwrap_or_else(|| panic!("{cmd}: no duplicate_id event in {}", o.stderr));
        assert_eq!(dup["level"], "warn");
        assert!(
            dup["file"].as_str().unwrap().ends_with("accounts.csv"),
            "{dup}"
        );
        assert!(
            o.stdout.trim().is_empty() || cmd == "run",
            "{cmd}: {}",
            o.stdout
        );
    }
}

/// `strata history` on the folder above a pipeline's output folder says
/// which folders below hold runs, instead of an empty table.
#[test]
fn history_of_the_parent_folder_points_at_the_output_folder() {
    let dir = months_fixture(300);
    let o = strata(
        &["run", "pipeline.toml", "--as-of", "2026-10", "-q"],
        dir.path(),
    );
    assert_eq!(o.code, 0, "{}", o.text());
    let o = strata(&["history", "."], dir.path());
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.stderr.contains("holds no committed run") && o.stderr.contains("./out"),
        "{}",
        o.stderr
    );
}

/// A month with no data is one error listing the months that have data,
/// not one per source; a misspelt data folder gets the nearest name.
#[test]
fn a_month_without_data_is_one_line_listing_the_months_there() {
    let dir = months_fixture(300);
    let o = strata(
        &["validate", "pipeline.toml", "--as-of", "2026-12"],
        dir.path(),
    );
    o.assert_clean();
    assert_eq!(o.code, 1, "{}", o.text());
    assert_eq!(
        o.stderr.matches("[missing_file]").count(),
        1,
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("folder data/2026-12 does not exist")
            && o.stderr.contains("months with data: 2026-10, 2026-11"),
        "{}",
        o.stderr
    );
    let p = dir.path().join("pipeline.toml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("data/{as_of}/", "dta/{as_of}/");
    std::fs::write(&p, text).unwrap();
    let o = strata(
        &["validate", "pipeline.toml", "--as-of", "2026-10"],
        dir.path(),
    );
    assert_eq!(o.code, 1, "{}", o.text());
    assert_eq!(
        o.stderr.matches("[missing_file]").count(),
        1,
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("folder dta does not exist") && o.stderr.contains("did you mean `data`?"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("data drop has arrived"), "{}", o.stderr);
}

/// Every line of `stderr` as a JSON event (a line that is not JSON fails).
fn json_events(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Names follow the profile: a segment that survives keeps its ID, takes
/// this month's name, and the change is reported. Last month's name is
/// made different by hand in its committed `segments.parquet`.
#[test]
fn a_surviving_segment_is_renamed_when_its_profile_reads_differently() {
    use polars::prelude::*;
    let dir = months_fixture(1500);
    let o = strata(&["run", "pipeline.toml", "--months", "2026-10"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let path = dir.path().join("out/2026-10/segments.parquet");
    let mut s = read_parquet(&path);
    let names: Vec<String> = s
        .column("name")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .zip(s.column("method").unwrap().str().unwrap().iter())
        .zip(s.column("segment").unwrap().u32().unwrap().iter())
        .map(|((n, m), id)| {
            if m == Some("kmeans") && id == Some(1) {
                "Old name".to_string()
            } else {
                n.unwrap_or_default().to_string()
            }
        })
        .collect();
    s.with_column(Column::new("name".into(), names)).unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut s)
        .unwrap();
    let o = strata(&["run", "pipeline.toml", "--months", "2026-11"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let cmp = json(&dir.path().join("out/2026-11/comparison.json"));
    let km = cmp["history"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "kmeans")
        .unwrap();
    let renamed: Vec<&serde_json::Value> = km["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["renamed_from"] == "Old name")
        .collect();
    assert_eq!(renamed.len(), 1, "{km}");
    assert_eq!(renamed[0]["kind"], "survived");
    let id = renamed[0]["current"][0].as_u64().unwrap();
    let now = cmp["comparison"]["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["method"] == "kmeans" && p["id"].as_u64() == Some(id))
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(now, "Old name", "the name is this month's");
    let html = std::fs::read_to_string(dir.path().join("out/2026-11/report.html")).unwrap();
    assert!(
        html.contains("renamed from “Old name”"),
        "not in the report"
    );
    assert!(o.stdout.contains("renamed from “Old name”"), "{}", o.stdout);
}

/// exceptions.csv says which flags are new this month and which were
/// flagged last month too.
#[test]
fn the_second_month_marks_flags_new_or_still_flagged() {
    let dir = months_fixture(1500);
    let o = strata(
        &["run", "pipeline.toml", "--months", "2026-10..2026-11"],
        dir.path(),
    );
    assert_eq!(o.code, 0, "{}", o.text());
    let read = |m: &str| -> Vec<(String, String)> {
        let text =
            std::fs::read_to_string(dir.path().join(format!("out/{m}/exceptions.csv"))).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let h = r.headers().unwrap().clone();
        let (id, st) = (
            h.iter().position(|c| c == "account_id").unwrap(),
            h.iter().position(|c| c == "status").unwrap(),
        );
        r.records()
            .map(|x| {
                let x = x.unwrap();
                (x[id].to_string(), x[st].to_string())
            })
            .collect()
    };
    let before: std::collections::BTreeSet<String> =
        read("2026-10").into_iter().map(|(a, _)| a).collect();
    let now = read("2026-11");
    assert!(!now.is_empty());
    for (a, status) in &now {
        let want = if before.contains(a) {
            "still flagged"
        } else {
            "new"
        };
        assert_eq!(status, want, "{a}");
    }
    assert!(
        now.iter().any(|(_, s)| s == "still flagged"),
        "no flag carried over"
    );
    // First flagged: October for a flag that continues, November for a new one.
    let text = std::fs::read_to_string(dir.path().join("out/2026-11/exceptions.csv")).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let h = r.headers().unwrap().clone();
    let at = |c: &str| h.iter().position(|x| x == c).unwrap();
    for x in r.records().map(|x| x.unwrap()) {
        let want = if &x[at("status")] == "still flagged" {
            "2026-10"
        } else {
            "2026-11"
        };
        assert_eq!(&x[at("first_flagged")], want, "{x:?}");
    }
    // The resolved: flagged in October, still accounts, no longer flagged.
    let resolved = std::fs::read_to_string(dir.path().join("out/2026-11/resolved.csv")).unwrap();
    let flagged_now: std::collections::BTreeSet<String> =
        now.iter().map(|(a, _)| a.clone()).collect();
    let mut r = csv::Reader::from_reader(resolved.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert!(!rows.is_empty(), "nothing resolved");
    for x in &rows {
        assert_eq!(&x[0], "2026-11");
        assert!(
            before.contains(&x[1]) && !flagged_now.contains(&x[1]),
            "{x:?}"
        );
    }
    let cmp = json(&dir.path().join("out/2026-11/comparison.json"));
    assert_eq!(
        cmp["history"]["exceptions"]["resolved"].as_u64().unwrap() as usize,
        rows.len()
    );
    let html = std::fs::read_to_string(dir.path().join("out/2026-11/report.html")).unwrap();
    assert!(
        html.contains("are no longer flagged"),
        "no resolved list in the report"
    );
}

/// `run.csv = "excel"` writes the CRM files with a UTF-8 byte-order mark
/// (Excel then reads "·" right); the default has none, as importers want.
#[test]
fn excel_csvs_carry_a_byte_order_mark() {
    let dir = months_fixture(300);
    let o = strata(&["run", "pipeline.toml", "--months", "2026-10"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let plain = std::fs::read(dir.path().join("out/2026-10/exceptions.csv")).unwrap();
    assert!(!plain.starts_with(b"\xEF\xBB\xBF"));
    let text = std::fs::read_to_string(dir.path().join("pipeline.toml")).unwrap();
    assert!(text.contains("[run]\n"));
    std::fs::write(
        dir.path().join("pipeline.toml"),
        text.replacen("[run]\n", "[run]\ncsv = \"excel\"\n", 1),
    )
    .unwrap();
    let o = strata(&["run", "pipeline.toml", "--months", "2026-10"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    for f in ["exceptions.csv", "assignments.csv"] {
        let bytes = std::fs::read(dir.path().join("out/2026-10").join(f)).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "{f} has no BOM");
    }
}
