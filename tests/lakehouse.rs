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
