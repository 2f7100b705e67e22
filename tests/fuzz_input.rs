//! Seeded random mutations of the sample CSVs, each run through the real
//! binary (`strata run --until features`): whatever the damage, strata ends on
//! purpose (exit 0 or 1, no panic, no internal error) and never exits 0 with a
//! feature that is empty for every account (the silent wrong result).
//!
//! Bounded: `MUTATIONS` cases split over two workers, and no new case starts
//! after `BUDGET` (the count that ran is printed; at least `MIN_CASES` must).

mod common;
use common::*;

use std::time::{Duration, Instant};

use polars::prelude::*;
use rand::{Rng, SeedableRng};

const MUTATIONS: u64 = 600;
const MIN_CASES: u64 = 100;
const BUDGET: Duration = Duration::from_secs(240);
const FILES: [&str; 5] = [
    "data/accounts.csv",
    "data/usage.csv",
    "data/revenue.csv",
    "data/nps.csv",
    "data/tickets.csv",
];
const TOKENS: &[&str] = &[
    "",
    "NaN",
    "inf",
    "-1",
    "1e309",
    "abc",
    "\"",
    "\"\"",
    ",",
    ";",
    "2026-13-45",
    "11/30/2025",
    "03/04/2026",
    "0",
    "99999999999999999999",
    "A0000001",
    "Z-unknown",
    " ",
    "\t",
    "é",
    "\u{feff}",
    "\r",
    "High Touch",
    "null",
];

/// One random change to a CSV's bytes; returns what it did (for the failure message).
fn mutate(bytes: &mut Vec<u8>, rng: &mut impl Rng) -> String {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let data_line = |rng: &mut dyn rand::RngCore, n: usize| 1 + rng.gen_range(0..n.max(2) - 1);
    let mut op = rng.gen_range(0..10);
    if lines.len() < 2 && !(5..=7).contains(&op) {
        op = 6; // no data line left to change: insert a byte instead
    }
    match op {
        0..=2 => {
            let i = data_line(rng, lines.len());
            let mut f: Vec<String> = lines[i].split(',').map(str::to_string).collect();
            let j = rng.gen_range(0..f.len());
            let t = TOKENS[rng.gen_range(0..TOKENS.len())];
            f[j] = t.to_string();
            lines[i] = f.join(",");
            *bytes = (lines.join("\n") + "\n").into_bytes();
            format!("line {} field {j} = {t:?}", i + 1)
        }
        3 => {
            let i = data_line(rng, lines.len());
            lines.remove(i.min(lines.len() - 1));
            *bytes = (lines.join("\n") + "\n").into_bytes();
            format!("deleted line {}", i + 1)
        }
        4 => {
            let i = data_line(rng, lines.len()).min(lines.len() - 1);
            let l = lines[i].clone();
            lines.insert(i, l);
            *bytes = (lines.join("\n") + "\n").into_bytes();
            format!("duplicated line {}", i + 1)
        }
        5 => {
            let at = rng.gen_range(0..bytes.len());
            bytes.truncate(at);
            format!("truncated at byte {at}")
        }
        6 => {
            let at = rng.gen_range(0..bytes.len());
            let b = [b'"', b',', b'\n', b'\r', b';', 0xff, 0xe9, b'x', b'-', b'.']
                [rng.gen_range(0..10)];
            bytes.insert(at, b);
            format!("inserted byte {b:#x} at {at}")
        }
        7 => {
            let at = rng.gen_range(0..bytes.len());
            bytes.remove(at);
            format!("removed byte {at}")
        }
        8 => {
            let mut h: Vec<String> = lines[0].split(',').map(str::to_string).collect();
            let (a, b) = (rng.gen_range(0..h.len()), rng.gen_range(0..h.len()));
            h.swap(a, b);
            lines[0] = h.join(",");
            *bytes = (lines.join("\n") + "\n").into_bytes();
            format!("swapped header columns {a} and {b}")
        }
        _ => {
            let width = lines[0].split(',').count();
            let j = rng.gen_range(0..width);
            for l in lines.iter_mut().skip(1) {
                let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
                if j < f.len() {
                    f[j].clear();
                }
                *l = f.join(",");
            }
            *bytes = (lines.join("\n") + "\n").into_bytes();
            format!("emptied column {j}")
        }
    }
}

/// Feature columns (not the id, not the matrix) empty for every account.
fn all_null_features(path: &std::path::Path) -> Vec<String> {
    let df = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    df.columns()
        .iter()
        .filter(|c| c.name().as_str() != "account_id" && !c.name().starts_with("x__"))
        .filter(|c| df.height() > 0 && c.null_count() == df.height())
        .map(|c| c.name().to_string())
        .collect()
}

/// Cases run, and how many of them exited 0.
fn worker(first: u64, step: u64, start: Instant) -> (u64, u64) {
    let fx = Fixture::new(120, "csv");
    let originals: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(fx.path(f)).unwrap())
        .collect();
    // The unmutated sample runs: every failure below is the mutation's.
    let o = fx.run(&["run", "pipeline.toml", "--until", "features", "-q"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let mut ran = 0;
    let mut passed = 0;
    let mut case = first;
    while case < MUTATIONS && start.elapsed() < BUDGET {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed ^ case);
        let fi = rng.gen_range(0..FILES.len());
        let mut bytes = originals[fi].clone();
        let mut what = Vec::new();
        for _ in 0..rng.gen_range(1..=3) {
            if bytes.is_empty() {
                break;
            }
            what.push(mutate(&mut bytes, &mut rng));
        }
        std::fs::write(fx.path(FILES[fi]), &bytes).unwrap();
        let o = fx.run(&["run", "pipeline.toml", "--until", "features", "-q"]);
        let label = format!("case {case}: {} — {}", FILES[fi], what.join("; "));
        assert!(
            o.code == 0 || o.code == 1,
            "{label}: exit {}\n{}",
            o.code,
            o.text()
        );
        assert!(
            !o.stderr.contains("panicked") && !o.stderr.contains("internal error"),
            "{label}: {}",
            o.text()
        );
        if o.code == 0 {
            passed += 1;
            let empty = all_null_features(&fx.path("out/2026-10/features.parquet"));
            assert!(
                empty.is_empty(),
                "{label}: exit 0 with features empty for every account: {empty:?}\n{}",
                o.text()
            );
        }
        std::fs::write(fx.path(FILES[fi]), &originals[fi]).unwrap();
        ran += 1;
        case += step;
    }
    (ran, passed)
}

#[test]
fn random_mutations_of_the_sample_never_panic_or_pass_silently() {
    let start = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|w| std::thread::spawn(move || worker(w, 2, start)))
        .collect();
    let (ran, passed) = workers
        .into_iter()
        .map(|w| w.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    eprintln!(
        "{ran} of {MUTATIONS} mutations ran in {:.0} s: {passed} exited 0, {} exited 1",
        start.elapsed().as_secs_f64(),
        ran - passed
    );
    assert!(
        ran >= MIN_CASES,
        "only {ran} mutations ran within the time budget"
    );
    // Both outcomes occur: the mutations neither all break the input nor all miss.
    assert!(passed > 0 && passed < ran, "{passed} of {ran} exited 0");
}
