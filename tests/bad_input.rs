//! Every class of bad input ends with a clear message naming the file and
//! column, exit code 1, and no panic — checked by running the real binary on
//! real files.

mod common;
use common::*;

/// Run `strata validate` and `strata run`; both must fail the same way.
fn expect_data_error(fx: &Fixture, needles: &[&str]) -> Out {
    for cmd in ["validate", "run"] {
        let out = fx.run(&[cmd, "pipeline.toml"]);
        out.assert_clean();
        assert_eq!(out.code, 1, "{cmd}: expected exit 1:\n{}", out.text());
        for n in needles {
            assert!(
                out.text().contains(n),
                "{cmd}: `{n}` not in output:\n{}",
                out.text()
            );
        }
        assert!(
            !fx.path("out/2026-10").exists(),
            "a failed run must not leave a run directory"
        );
    }
    fx.run(&["validate", "pipeline.toml"])
}

#[test]
fn missing_file() {
    let fx = Fixture::new(120, "csv");
    std::fs::remove_file(fx.path("data/usage.csv")).unwrap();
    expect_data_error(&fx, &["sources.usage.path", "usage.csv", "file not found"]);
}

#[test]
fn missing_column() {
    let fx = Fixture::new(120, "csv");
    let text = fx.read("data/nps.csv").replace(",score", ",nps_score");
    fx.write("data/nps.csv", &text);
    expect_data_error(
        &fx,
        &[
            "missing_column",
            "nps.csv",
            "`score`",
            "did you mean `nps_score`",
        ],
    );
}

#[test]
fn wrong_type() {
    let fx = Fixture::new(120, "csv");
    // employees is the second column of accounts.csv
    fx.edit_line("data/accounts.csv", 5, |l| {
        let mut f: Vec<&str> = l.split(',').collect();
        f[1] = "twelve";
        f.join(",")
    });
    expect_data_error(
        &fx,
        &[
            "wrong_type",
            "accounts.csv",
            "`employees`",
            "line 6",
            "\"twelve\"",
        ],
    );
}

#[test]
fn empty_file() {
    let fx = Fixture::new(120, "csv");
    fx.write("data/tickets.csv", "");
    expect_data_error(&fx, &["empty_file", "tickets.csv"]);
}

#[test]
fn header_only_file() {
    let fx = Fixture::new(120, "csv");
    fx.write(
        "data/tickets.csv",
        "ticket_id,account_id,created_at,priority\n",
    );
    expect_data_error(&fx, &["empty_file", "tickets.csv", "no data rows"]);
}

#[test]
fn malformed_csv_row() {
    let fx = Fixture::new(120, "csv");
    fx.edit_line("data/usage.csv", 10, |l| format!("{l},extra,fields"));
    expect_data_error(
        &fx,
        &["malformed_row", "usage.csv", "line 11", "8 field(s)"],
    );
}

#[test]
fn truncated_parquet() {
    let fx = Fixture::new(120, "parquet");
    let bytes = std::fs::read(fx.path("data/revenue.parquet")).unwrap();
    std::fs::write(fx.path("data/revenue.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    expect_data_error(&fx, &["unreadable_file", "revenue.parquet"]);
}

#[test]
fn nan_and_infinity() {
    let fx = Fixture::new(120, "csv");
    // mrr is the third column of revenue.csv
    for (line, v) in [(3, "NaN"), (7, "inf")] {
        fx.edit_line("data/revenue.csv", line, |l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f[2] = v;
            f.join(",")
        });
    }
    expect_data_error(
        &fx,
        &[
            "non_finite",
            "revenue.csv",
            "`mrr`",
            "2 value(s) are NaN or infinite",
        ],
    );
}

#[test]
fn out_of_range_values() {
    let fx = Fixture::new(120, "csv");
    fx.edit_line("data/nps.csv", 2, |l| {
        let mut f: Vec<&str> = l.split(',').collect();
        let last = f.len() - 1;
        f[last] = "11";
        f.join(",")
    });
    expect_data_error(
        &fx,
        &[
            "out_of_range",
            "nps.csv",
            "`score`",
            "[0, 10]",
            "line 3: 11",
        ],
    );
}

#[test]
fn unparsable_date() {
    let fx = Fixture::new(120, "csv");
    fx.edit_line("data/usage.csv", 4, |l| {
        let mut f: Vec<&str> = l.split(',').collect();
        f[1] = "31/02/2026";
        f.join(",")
    });
    expect_data_error(
        &fx,
        &[
            "unparsable_date",
            "usage.csv",
            "`month`",
            "line 5",
            "31/02/2026",
        ],
    );
}

#[test]
fn unknown_pipeline_key() {
    let fx = Fixture::new(120, "csv");
    let text = fx
        .pipeline()
        .replace("time = \"month\"", "tiem = \"month\"");
    fx.write("pipeline.toml", &text);
    let out = expect_data_error(&fx, &["unknown key", "did you mean `time`"]);
    assert!(
        out.text().contains("sources.revenue.tiem") && out.text().contains("sources.usage.tiem"),
        "both unknown keys reported:\n{}",
        out.text()
    );
}

#[test]
fn duplicate_ids_warn_by_default_and_fail_when_strict() {
    let fx = Fixture::new(120, "csv");
    let text = fx.read("data/accounts.csv");
    let second = text.lines().nth(2).unwrap().to_string();
    fx.write("data/accounts.csv", &format!("{text}{second}\n"));
    let out = fx.run(&["validate", "pipeline.toml"]);
    out.assert_clean();
    assert_eq!(out.code, 0, "{}", out.text());
    assert!(
        out.text().contains("duplicate_id")
            && out.text().contains("accounts.csv")
            && out.text().contains("`account_id`"),
        "{}",
        out.text()
    );
    let strict = fx.run(&["validate", "pipeline.toml", "--strict"]);
    strict.assert_clean();
    assert_eq!(strict.code, 1, "{}", strict.text());
    // And by pipeline policy.
    fx.write(
        "pipeline.toml",
        &(fx.pipeline() + "\n[quality]\nduplicates = \"error\"\n"),
    );
    expect_data_error(&fx, &["duplicate_id", "accounts.csv"]);
}

#[test]
fn orphan_ids_are_reported_with_their_rows() {
    let fx = Fixture::new(120, "csv");
    let text = fx.read("data/usage.csv");
    fx.write(
        "data/usage.csv",
        &format!("{text}Z9999999,2026-10-01,3,4,50,6\n"),
    );
    let lines = text.lines().count() + 1;
    let out = fx.run(&["validate", "pipeline.toml", "--strict"]);
    out.assert_clean();
    assert_eq!(out.code, 1, "{}", out.text());
    for n in [
        "orphan_id",
        "usage.csv",
        "`account_id`",
        &format!("line {lines}"),
        "Z9999999",
    ] {
        assert!(out.text().contains(n), "`{n}` missing:\n{}", out.text());
    }
    fx.write(
        "pipeline.toml",
        &(fx.pipeline() + "\n[quality]\norphans = \"error\"\n"),
    );
    expect_data_error(&fx, &["orphan_id"]);
}

#[test]
fn all_problems_are_reported_together() {
    let fx = Fixture::new(120, "csv");
    fx.write("data/tickets.csv", "");
    let text = fx.read("data/nps.csv").replace(",score", ",nps_score");
    fx.write("data/nps.csv", &text);
    fx.edit_line("data/usage.csv", 10, |l| format!("{l},x"));
    let out = expect_data_error(&fx, &["tickets.csv", "nps.csv", "usage.csv"]);
    assert!(out.text().contains("3 error(s)"), "{}", out.text());
}

#[test]
fn quality_report_is_written_as_json() {
    let fx = Fixture::new(120, "csv");
    fx.write("data/tickets.csv", "");
    let out = fx.run(&["validate", "pipeline.toml", "--report", "q.json"]);
    assert_eq!(out.code, 1);
    let json: serde_json::Value = serde_json::from_str(&fx.read("q.json")).unwrap();
    let f = &json["findings"][0];
    assert_eq!(f["severity"], "error");
    assert_eq!(f["code"], "empty_file");
    assert!(f["file"].as_str().unwrap().ends_with("tickets.csv"));
}

#[test]
fn bad_arguments_exit_cleanly() {
    let fx = Fixture::new(50, "csv");
    let out = fx.run(&["run", "nope.toml"]);
    out.assert_clean();
    assert_eq!(out.code, 1);
    assert!(out.text().contains("does not exist"), "{}", out.text());
    let out = fx.run(&["run", "pipeline.toml", "--as-of", "Oct"]);
    assert_eq!(out.code, 1, "a bad argument is bad input:\n{}", out.text());
    assert!(out.text().contains("YYYY-MM"));
}
