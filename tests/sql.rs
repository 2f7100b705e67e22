//! The feature stage on real engines: `strata sql`'s queries run on DuckDB
//! (its Python wheel) and Spark (pyspark in local mode on the machine's Java
//! 17), each compared feature by feature with strata's own
//! features.parquet (tests/sql_engines.py: within 1e-9 relative, the same
//! missing values), for the sample pipeline's two months, the second schema
//! (usage through subscriptions), tier_rules.toml, a lookup with a filter,
//! and sources read by table name. Then runs from the Spark output (a
//! folder of part files) and from a Delta table against the ordinary run,
//! and the errors of both routes.
//!
//! `scripts/test` installs duckdb and pyspark into the test virtualenv and
//! Java 17 when `java` is missing.

mod common;
use common::*;

use std::path::Path;

/// A copy of the repository's pipelines and sample data, with the second
/// schema's data generated, so every pipeline runs as written.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    for month in ["2026-10", "2026-11"] {
        let to = root.join("data/sample").join(month);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(repo().join("data/sample").join(month)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("pipelines")).unwrap();
    for p in ["sample.toml", "alt_schema.toml", "tier_rules.toml"] {
        std::fs::copy(
            repo().join("pipelines").join(p),
            root.join("pipelines").join(p),
        )
        .unwrap();
    }
    let o = strata(&["sample", "--schema", "alt", "--out", "data/alt"], &root);
    assert_eq!(o.code, 0, "{}", o.text());
    dir
}

fn sql(root: &Path, pipeline: &str, dialect: &str, as_of: &str, to: &Path) {
    let o = strata(
        &["sql", pipeline, "--dialect", dialect, "--as-of", as_of],
        root,
    );
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    std::fs::write(to, &o.stdout).unwrap();
}

#[test]
fn duckdb_and_spark_compute_strata_s_features_and_a_run_from_them_matches() {
    let ws = workspace();
    let root = ws.path().join("repo");
    let q = ws.path().join("sql");
    std::fs::create_dir_all(&q).unwrap();
    // A lookup onto the account table (with a level it lacks: missing) and
    // a filter on a child source.
    std::fs::write(
        root.join("data/industries.csv"),
        "industry,weight\nSoftware,1.5\nRetail,0.7\nMedia,2\nEducation,1.1\nHealthcare,0.9\nManufacturing,1.3\nLogistics,0.8\n",
    )
    .unwrap();
    let lookup = std::fs::read_to_string(root.join("pipelines/sample.toml"))
        .unwrap()
        .replace(
            "[sources.usage]",
            "[sources.industries]\npath = \"../data/industries.csv\"\nkey = \"industry\"\nlookup = \"accounts\"\non = \"industry\"\ncolumns = [\"weight\"]\n\n[sources.usage]\nfilter = \"active_users > 0 AND features_used >= 1\"",
        )
        .replace("../out/sample", "../out/lookup")
        + "\n[[feature]]\nname = \"industry_weight\"\nexpr = \"weight * 2\"\nmatrix = false\n";
    std::fs::write(root.join("pipelines/lookup.toml"), lookup).unwrap();
    let cases = [
        ("lookup", "pipelines/lookup.toml", "2026-11", "out/lookup"),
        (
            "sample-2026-10",
            "pipelines/sample.toml",
            "2026-10",
            "out/sample",
        ),
        (
            "sample-2026-11",
            "pipelines/sample.toml",
            "2026-11",
            "out/sample",
        ),
        ("alt", "pipelines/alt_schema.toml", "2026-10", "out/alt"),
        (
            "rules",
            "pipelines/tier_rules.toml",
            "2026-11",
            "out/sample-rules",
        ),
    ];
    let mut args: Vec<String> = Vec::new();
    for (name, pipeline, month, out) in cases {
        let o = strata(
            &[
                "run", pipeline, "--as-of", month, "--until", "features", "-q",
            ],
            &root,
        );
        assert_eq!(o.code, 0, "{}", o.text());
        let (duck, spark) = (
            q.join(format!("{name}.duckdb.sql")),
            q.join(format!("{name}.spark.sql")),
        );
        sql(&root, pipeline, "duckdb", month, &duck);
        sql(&root, pipeline, "spark", month, &spark);
        let features = root.join(out).join(month).join("features.parquet");
        args.push(format!(
            "{name}:{}:{}:{}",
            duck.display(),
            spark.display(),
            features.display()
        ));
    }
    // Two sources read by `table` name, the tables made by each engine with
    // its own type inference (DuckDB's usage month arrives as a date).
    let tables = std::fs::read_to_string(root.join("pipelines/sample.toml"))
        .unwrap()
        .replace("[sources.usage]", "[sources.usage]\ntable = \"usage_tbl\"")
        .replace(
            "[sources.revenue]",
            "[sources.revenue]\ntable = \"revenue_tbl\"",
        );
    std::fs::write(root.join("pipelines/tables.toml"), tables).unwrap();
    let (duck, spark) = (q.join("tables.duckdb.sql"), q.join("tables.spark.sql"));
    sql(&root, "pipelines/tables.toml", "duckdb", "2026-11", &duck);
    sql(&root, "pipelines/tables.toml", "spark", "2026-11", &spark);
    let text = std::fs::read_to_string(&duck).unwrap();
    assert!(
        text.contains("FROM usage_tbl") && !text.contains("usage.csv"),
        "{text}"
    );
    let data = root.join("data/sample/2026-11");
    args.push(format!(
        "tables:{}:{}:{}:usage_tbl={},revenue_tbl={}",
        duck.display(),
        spark.display(),
        root.join("out/sample/2026-11/features.parquet").display(),
        data.join("usage.csv").display(),
        data.join("revenue.csv").display()
    ));
    // Run from another folder: the query names its files by absolute path.
    let mut a: Vec<&std::ffi::OsStr> = vec![q.as_os_str()];
    a.extend(args.iter().map(std::ffi::OsStr::new));
    let (ok, text) = python("tests/sql_engines.py", &a);
    assert!(ok, "the engines' features differ from strata's:\n{text}");
    for name in cases.iter().map(|c| c.0).chain(["tables"]) {
        for engine in ["duckdb", "spark"] {
            assert!(
                text.contains(&format!("{name} {engine}: ")),
                "{name} on {engine} not checked:\n{text}"
            );
        }
    }
    eprintln!("{text}");

    // A run from Spark's output (a folder of part files) writes the same
    // assignments, segments and exceptions as a run on the sources.
    let o = strata(
        &[
            "run",
            "pipelines/sample.toml",
            "--as-of",
            "2026-11",
            "--out",
            "from-sources",
            "-q",
        ],
        &root,
    );
    assert_eq!(o.code, 0, "{}", o.text());
    // From Spark's folder of part files, and from a Delta table (DuckDB's
    // output written by delta-rs in two commits: the first's files removed
    // by the second).
    let delta = q.join("sample-2026-11-delta");
    let (ok, text) = python(
        "tests/write_delta.py",
        &[
            q.join("sample-2026-11-duckdb.parquet").as_os_str(),
            delta.as_os_str(),
        ],
    );
    assert!(ok, "{text}");
    for (out, table) in [
        ("from-spark", q.join("sample-2026-11-spark")),
        ("from-delta", delta),
    ] {
        let o = strata(
            &[
                "run",
                "pipelines/sample.toml",
                "--as-of",
                "2026-11",
                "--out",
                out,
                "--features",
                table.to_str().unwrap(),
                "-q",
            ],
            &root,
        );
        assert_eq!(o.code, 0, "{}", o.text());
        for f in [
            "assignments.parquet",
            "assignments.csv",
            "segments.parquet",
            "exceptions.csv",
        ] {
            let a = std::fs::read(root.join("from-sources/2026-11").join(f)).unwrap();
            let b = std::fs::read(root.join(out).join("2026-11").join(f)).unwrap();
            assert!(
                a == b,
                "{f} differs between the sources and {}",
                table.display()
            );
        }
    }
    let manifest = std::fs::read_to_string(root.join("from-spark/2026-11/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"features_from\": \"feature table"),
        "{manifest}"
    );

    // A table without a feature the pipeline needs: exit 1, the column named.
    let o = strata(
        &[
            "run",
            "pipelines/alt_schema.toml",
            "--as-of",
            "2026-10",
            "--out",
            "wrong-table",
            "--features",
            q.join("sample-2026-11-duckdb.parquet").to_str().unwrap(),
        ],
        &root,
    );
    o.assert_clean();
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.text().contains("no column `monthly_active_users`") && o.text().contains("strata sql"),
        "{}",
        o.text()
    );
}

#[test]
fn an_expression_with_no_translation_is_refused_by_feature_and_function() {
    let ws = workspace();
    let root = ws.path().join("repo");
    let text = std::fs::read_to_string(root.join("pipelines/tier_rules.toml"))
        .unwrap()
        .replace(
            "expr = \"avg(features_used)\"",
            "expr = \"round(avg(features_used), 1)\"",
        );
    std::fs::write(root.join("pipelines/rounded.toml"), text).unwrap();
    let o = strata(
        &["sql", "pipelines/rounded.toml", "--dialect", "spark"],
        &root,
    );
    o.assert_clean();
    assert_eq!(o.code, 1, "{}", o.text());
    let t = o.text();
    assert!(
        t.contains("feature `usage_depth`") && t.contains("`round`") && t.contains("Spark SQL"),
        "{t}"
    );
    // The pipeline runs as ever on strata's own ingestion.
    let o = strata(&["validate", "pipelines/rounded.toml"], &root);
    assert_eq!(o.code, 0, "{}", o.text());
}
