//! The segment-history Delta table: every committed month lands as one
//! partition, a rerun with the same inputs commits nothing, a rerun with other
//! inputs replaces only its month, and two other readers (Python deltalake and
//! Polars) read back exactly each month's assignments. Real binary, real files.

mod common;
use common::*;

fn readback(out: &std::path::Path, version: u64) -> String {
    let v = version.to_string();
    let (ok, text) = python(
        "tests/delta_readback.py",
        &[out.as_os_str(), std::ffi::OsStr::new(&v)],
    );
    assert!(
        ok,
        "the Delta table does not read back (needs tests/requirements.txt; scripts/test installs it):\n{text}"
    );
    text
}

fn versions(out: &std::path::Path) -> usize {
    std::fs::read_dir(out.join("segment_history/_delta_log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .count()
}

#[test]
fn months_land_as_partitions_read_back_by_deltalake_and_polars() {
    let fx = Fixture::generated(300, "csv", "2026-11", 14);
    let o = fx.run(&["run", "pipeline.toml", "--months", "2026-10..2026-11"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    let out = fx.path("out");
    assert_eq!(versions(&out), 2);
    let text = readback(&out, 1);
    assert!(
        text.contains("2026-10: ") && text.contains("2026-11: "),
        "{text}"
    );
    assert!(text.contains("version 0: ['2026-10']"), "{text}");

    // The same month again, same inputs: no new version.
    let o = fx.run(&["run", "pipeline.toml", "--as-of", "2026-11"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(o.text().contains("unchanged at version 1"), "{}", o.text());
    assert_eq!(versions(&out), 2);

    // Other inputs for 2026-10: its partition is replaced, 2026-11's kept.
    let text = fx.read("data/accounts.csv");
    let kept: Vec<&str> = text.lines().take(250).collect();
    fx.write("data/accounts.csv", &(kept.join("\n") + "\n"));
    fx.write(
        "pipeline.toml",
        &(fx.pipeline() + "\n[quality]\norphans = \"ignore\"\nmax_orphans = 1.0\n"),
    );
    let o = fx.run(&["run", "pipeline.toml", "--as-of", "2026-10"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert_eq!(versions(&out), 3);
    readback(&out, 2);
}

/// A run killed (or out of disk) between committing its month and the
/// table's commit leaves the month committed, no log entry for it and a
/// cut-short data file: exactly that state, made by hand after a real run.
/// The next run of any month adds the month to the table and removes the
/// leftover; both readers then see every committed month's assignments.
#[test]
fn a_month_the_table_missed_is_added_by_the_next_run_of_any_month() {
    let fx = Fixture::generated(300, "csv", "2026-11", 14);
    let o = fx.run(&["run", "pipeline.toml", "--months", "2026-10..2026-11"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let out = fx.path("out");
    let table = out.join("segment_history");
    assert_eq!(versions(&out), 2);
    // The state a kill after 2026-11's rename leaves: no commit for it, and
    // its data file cut at 4,096 bytes (no Parquet footer).
    std::fs::remove_file(table.join("_delta_log/00000000000000000001.json")).unwrap();
    let part = std::fs::read_dir(table.join("as_of=2026-11"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&part, &bytes[..4096.min(bytes.len() / 2)]).unwrap();
    assert!(
        out.join("2026-11/_SUCCESS").is_file(),
        "the month stays committed"
    );

    // The next run of another month (2026-10 again, unchanged) repairs it.
    let o = fx.run(&["run", "pipeline.toml", "--as-of", "2026-10"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.stderr
            .contains("added committed month 2026-11 to the segment-history table"),
        "{}",
        o.stderr
    );
    assert_eq!(versions(&out), 2, "one commit adds the missing month");
    let text = readback(&out, 1);
    assert!(
        text.contains("2026-11:") && text.contains("each added by a commit and whole"),
        "{text}"
    );

    // A stale month: the table holds other rows for 2026-11 than its
    // committed assignments (a rerun with changed inputs that died before
    // its table commit). The manifest names the file that must hold it.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("2026-11/manifest.json")).unwrap())
            .unwrap();
    let named = m["segment_history_file"].as_str().unwrap().to_string();
    assert!(table.join(&named).is_file(), "{named}");
    let log1 = table.join("_delta_log/00000000000000000001.json");
    let stale = std::fs::read_to_string(&log1)
        .unwrap()
        .replace(&named, "as_of=2026-11/part-0000.parquet");
    std::fs::write(&log1, stale).unwrap();
    std::fs::write(table.join("as_of=2026-11/part-0000.parquet"), &bytes).unwrap();
    let o = fx.run(&["run", "pipeline.toml", "--as-of", "2026-10"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.stderr.contains("added committed month 2026-11"),
        "{}",
        o.stderr
    );
    readback(&out, 2);
}

/// The table's write failing after the month's commit (here: a file where
/// the month's partition folder goes): the run exits 2 saying the month is
/// committed and the table not updated; the next run of any month, once the
/// obstacle is gone, adds the month.
#[test]
fn a_table_failure_after_the_commit_says_so_and_the_next_run_repairs_it() {
    let fx = Fixture::generated(300, "csv", "2026-11", 14);
    let o = fx.run(&["run", "pipeline.toml", "--as-of", "2026-10"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let out = fx.path("out");
    let blocker = out.join("segment_history/as_of=2026-11");
    std::fs::write(&blocker, "in the way").unwrap();
    let o = fx.run(&["run", "pipeline.toml", "--as-of", "2026-11"]);
    o.assert_clean();
    assert_eq!(o.code, 2, "{}", o.text());
    assert!(
        o.stderr.contains("month 2026-11 is committed")
            && o.stderr.contains("segment-history table")
            && o.stderr.contains("the next run of any month adds it"),
        "{}",
        o.stderr
    );
    assert!(out.join("2026-11/_SUCCESS").is_file());
    std::fs::remove_file(&blocker).unwrap();
    let o = fx.run(&["run", "pipeline.toml", "--as-of", "2026-10"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.stderr.contains("added committed month 2026-11"),
        "{}",
        o.stderr
    );
    let text = readback(&out, 1);
    assert!(
        text.contains("2026-10:") && text.contains("2026-11:"),
        "{text}"
    );
}
