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

// ---- issue 17: no silent wrong result from bad input -------------------------

/// Rewrite column `col` (0-based) of every data line of a CSV with `f`.
fn map_column(fx: &Fixture, rel: &str, col: usize, f: impl Fn(&str) -> String) {
    let text = fx.read(rel);
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push_str(line);
        } else {
            let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
            fields[col] = f(&fields[col]);
            out.push_str(&fields.join(","));
        }
        out.push('\n');
    }
    fx.write(rel, &out);
}

/// YYYY-MM-DD → MM/DD/YYYY.
fn us_date(iso: &str) -> String {
    let p: Vec<&str> = iso.split('-').collect();
    format!("{}/{}/{}", p[1], p[2], p[0])
}

fn features_frame(fx: &Fixture, out: &str) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let f = std::fs::File::open(fx.path(&format!("{out}/2026-10/features.parquet"))).unwrap();
    ParquetReader::new(f).finish().unwrap()
}

#[test]
fn us_dates_are_detected_said_and_read_the_same_as_iso() {
    let fx = Fixture::new(120, "csv");
    let run = |out: &str| {
        let o = fx.run(&["run", "pipeline.toml", "--until", "features", "--out", out]);
        o.assert_clean();
        assert_eq!(o.code, 0, "{}", o.text());
        o
    };
    run("iso");
    // nps.responded_at holds days above 12, so month/day/year is the only reading.
    map_column(&fx, "data/nps.csv", 3, us_date);
    let o = run("us");
    for n in [
        "date_format_detected",
        "nps.csv",
        "`responded_at`",
        "%m/%d/%Y",
        "date_format = \"%m/%d/%Y\"",
    ] {
        assert!(o.text().contains(n), "`{n}` missing:\n{}", o.text());
    }
    assert_eq!(
        features_frame(&fx, "iso"),
        features_frame(&fx, "us"),
        "US dates give the same features as ISO dates"
    );
}

#[test]
fn month_first_dates_in_us_order_are_ambiguous() {
    let fx = Fixture::new(120, "csv");
    // usage.month is always the 1st: 10/01/2025 reads as 1 October or 10 January.
    map_column(&fx, "data/usage.csv", 1, us_date);
    expect_data_error(
        &fx,
        &[
            "ambiguous_date",
            "usage.csv",
            "`month`",
            "line ",
            "date_format = \"%m/%d/%Y\"",
            "date_format = \"%d/%m/%Y\"",
        ],
    );
}

#[test]
fn k_range_and_neighbours_beyond_the_data_are_refused_by_validate_and_run() {
    let fx = Fixture::new(120, "csv");
    let base = fx.pipeline();
    // Static limits, whatever the data.
    fx.write(
        "pipeline.toml",
        &base.replace("k_range = [2, 10]", "k_range = [2, 5000]"),
    );
    expect_data_error(&fx, &["kmeans.k_range", "at most 50"]);
    fx.write(
        "pipeline.toml",
        &base.replace("neighbors = 15", "neighbors = 5000"),
    );
    expect_data_error(&fx, &["graph.neighbors", "more than 100"]);
    // Limits from the number of accounts (120).
    fx.write(
        "pipeline.toml",
        &base.replace("k_range = [2, 10]", "k_range = [2, 40]"),
    );
    expect_data_error(&fx, &["too_few_accounts", "kmeans.k_range", "at most 24"]);
    fx.write("pipeline.toml", &base.replace("k = \"auto\"", "k = 100"));
    expect_data_error(&fx, &["kmeans.k", "k = 100 segments for 120 accounts"]);
    let fx = Fixture::new(80, "csv");
    let base = fx.pipeline();
    fx.write(
        "pipeline.toml",
        &base.replace("neighbors = 15", "neighbors = 90"),
    );
    expect_data_error(&fx, &["graph.neighbors", "only 80 accounts"]);
}

#[test]
fn a_one_row_account_table_is_refused_by_validate_and_run() {
    let fx = Fixture::new(120, "csv");
    let text = fx.read("data/accounts.csv");
    let two: Vec<&str> = text.lines().take(2).collect();
    fx.write("data/accounts.csv", &(two.join("\n") + "\n"));
    // The other sources' rows now name accounts that are gone: let them go.
    fx.write(
        "pipeline.toml",
        &(fx.pipeline() + "\n[quality]\norphans = \"ignore\"\nmax_orphans = 1.0\n"),
    );
    expect_data_error(&fx, &["too_few_accounts", "1 account(s)", "at least 20"]);
}

#[test]
fn stray_staging_file_is_cleaned_and_a_file_in_the_months_place_is_refused() {
    let fx = Fixture::new(120, "csv");
    std::fs::create_dir_all(fx.path("out")).unwrap();
    fx.write("out/.staging-x", "");
    let o = fx.run(&["run", "pipeline.toml"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(o.text().contains("removed"), "{}", o.text());
    assert!(!fx.path("out/.staging-x").exists());

    let fx = Fixture::new(120, "csv");
    std::fs::create_dir_all(fx.path("out")).unwrap();
    fx.write("out/2026-10", "my notes");
    let o = fx.run(&["run", "pipeline.toml"]);
    o.assert_clean();
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.text().contains("is a file, not a run directory"),
        "{}",
        o.text()
    );
    assert_eq!(fx.read("out/2026-10"), "my notes", "left untouched");
    let left: Vec<_> = std::fs::read_dir(fx.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".staging"))
        .collect();
    assert!(
        left.is_empty(),
        "a failed run leaves no staging folder: {left:?}"
    );
}

#[test]
fn tiers_nobody_has_are_an_error_and_a_handful_are_not_agreement() {
    let fx = Fixture::new(120, "csv");
    let base = fx.pipeline_without_capacity();
    fx.write(
        "pipeline.toml",
        &base.replace(
            "order = [\"High Touch\", \"Hybrid\", \"Tech Touch\"]",
            "order = [\"High-Touch\", \"Hybrd\", \"Tech\"]",
        ),
    );
    expect_data_error(
        &fx,
        &[
            "no_known_tier",
            "tiers.order",
            "`Tech Touch` (",
            "did you mean",
        ],
    );

    // Only 6 accounts keep a tier (two of each): no agreement is reported on them.
    fx.write(
        "pipeline.toml",
        &(base.clone() + "\n[quality]\nmax_unknown_tiers = 1.0\n"),
    );
    let text = fx.read("data/accounts.csv");
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
        if i > 6 {
            f[6] = "Unassigned".into();
        } else if i > 0 {
            f[6] = ["High Touch", "Hybrid", "Tech Touch"][i % 3].into();
        }
        out.push_str(&f.join(","));
        out.push('\n');
    }
    fx.write("data/accounts.csv", &out);
    let o = fx.run(&["run", "pipeline.toml"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(o.text().contains("few_tiered_accounts"), "{}", o.text());
    assert!(o.text().contains("not measured"), "{}", o.text());
    let cmp: serde_json::Value =
        serde_json::from_str(&fx.read("out/2026-10/comparison.json")).unwrap();
    for m in cmp["comparison"]["methods"].as_array().unwrap() {
        assert!(m["agreement"].is_null(), "{m}");
    }
    assert_eq!(cmp["comparison"]["exceptions"].as_array().unwrap().len(), 0);
}

#[test]
fn report_md_escapes_table_breaking_text() {
    let fx = Fixture::new(120, "csv");
    let odd = "High|Touch <script>alert(1)</script>";
    let text = fx.read("data/accounts.csv").replace("High Touch", odd);
    fx.write("data/accounts.csv", &text);
    fx.write(
        "pipeline.toml",
        &fx.pipeline_without_capacity()
            .replace("order = [\"High Touch\"", &format!("order = [{:?}", odd)),
    );
    let o = fx.run(&["run", "pipeline.toml"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    let md = fx.read("out/2026-10/report.md");
    assert!(!md.contains("<script>"), "raw HTML passes through:\n{md}");
    assert!(md.contains("High\\|Touch"), "{md}");
    // Every row of a table has as many cells as its header.
    let cells = |l: &str| l.replace("\\|", "").matches('|').count();
    let mut header = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let h = *header.get_or_insert(cells(line));
            assert_eq!(cells(line), h, "row with extra cells: {line}");
        } else {
            header = None;
        }
    }
}

#[test]
fn an_empty_numeric_column_is_named_without_a_query_plan() {
    let fx = Fixture::new(120, "csv");
    // employees is the second column of accounts.csv
    map_column(&fx, "data/accounts.csv", 1, |_| String::new());
    let out = expect_data_error(&fx, &["employees"]);
    for bad in ["FAILED HERE", "Resolved plan", "infer_schema_length"] {
        assert!(!out.text().contains(bad), "`{bad}` shown:\n{}", out.text());
    }
}

#[test]
fn unterminated_quote_in_the_last_row() {
    let fx = Fixture::new(120, "csv");
    let text = fx.read("data/usage.csv");
    let lines = text.lines().count() + 1;
    fx.write(
        "data/usage.csv",
        &format!("{text}A0000001,2026-10-01,\"3,4,50,6\n"),
    );
    let out = expect_data_error(
        &fx,
        &["unterminated_quote", "usage.csv", &format!("line {lines}")],
    );
    for bad in ["infer_schema_length", "ignore_errors"] {
        assert!(!out.text().contains(bad), "{}", out.text());
    }
}

#[test]
fn latin1_bytes_are_named_with_their_line() {
    let fx = Fixture::new(120, "csv");
    let mut bytes = std::fs::read(fx.path("data/accounts.csv")).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let third = text.lines().take(3).map(|l| l.len() + 1).sum::<usize>();
    // "Software" on line 4 becomes "Softwar\xe9" (Latin-1 é).
    let at = third
        + text[third..]
            .find("Software")
            .expect("an industry on line 4 or later");
    bytes[at + 7] = 0xe9;
    let line = text[..at].matches('\n').count() + 1;
    std::fs::write(fx.path("data/accounts.csv"), bytes).unwrap();
    expect_data_error(
        &fx,
        &[
            "not_utf8",
            "accounts.csv",
            &format!("line {line}"),
            "UTF-8",
            "iconv",
        ],
    );
}

#[test]
fn semicolon_separated_file_says_set_separator() {
    let fx = Fixture::new(120, "csv");
    let text = fx.read("data/nps.csv").replace(',', ";");
    fx.write("data/nps.csv", &text);
    let out = expect_data_error(&fx, &["wrong_separator", "nps.csv", "separator = \";\""]);
    assert!(
        !out.text().contains("did you mean `response_id;"),
        "{}",
        out.text()
    );
}

#[test]
fn a_folder_as_source_path_says_folder_not_format() {
    let fx = Fixture::new(120, "csv");
    std::fs::create_dir_all(fx.path("data/tickets")).unwrap();
    fx.write(
        "pipeline.toml",
        &fx.pipeline().replace("data/tickets.csv", "data/tickets"),
    );
    let out = expect_data_error(&fx, &["sources.tickets.path", "is a folder"]);
    assert!(
        !out.text().contains("cannot tell the format"),
        "{}",
        out.text()
    );
}

#[test]
fn duplicated_header_column_is_an_error() {
    let fx = Fixture::new(120, "csv");
    let text = fx.read("data/accounts.csv");
    let (head, rest) = text.split_once('\n').unwrap();
    fx.write(
        "data/accounts.csv",
        &format!("{}\n{rest}", head.replace(",plan,", ",employees,")),
    );
    expect_data_error(
        &fx,
        &[
            "duplicate_column",
            "accounts.csv",
            "`employees`",
            "columns 2, 6",
        ],
    );
}

/// A file cut short inside its last row (fewer fields than the header, no
/// final line break) is an error; a complete file that only lacks its final
/// line break, as spreadsheet and BI exports often do, runs without a word
/// (issue 35: 6 of 13 real exports were refused before).
#[test]
fn a_cut_last_row_is_an_error_and_a_missing_final_line_break_is_not() {
    let fx = Fixture::new(120, "csv");
    let text = fx.read("data/usage.csv");
    let half = text.len() / 2;
    // Cut just after a digit of a field that has others after it on its line.
    let cut = (half..text.len())
        .find(|&i| {
            let rest = &text[i..];
            text.as_bytes()[i - 1].is_ascii_digit()
                && rest.find('\n').is_some_and(|nl| rest[..nl].contains(','))
        })
        .unwrap();
    fx.write("data/usage.csv", &text[..cut]);
    expect_data_error(
        &fx,
        &[
            "truncated_file",
            "usage.csv",
            "fewer fields than the header",
            "quality.truncated",
        ],
    );
    // A complete file without its last line break: no finding at all.
    fx.write("data/usage.csv", text.trim_end());
    let o = fx.run(&["validate", "pipeline.toml"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(!o.text().contains("truncated_file"), "{}", o.text());
    let o = fx.run(&["run", "pipeline.toml"]);
    assert_eq!(o.code, 0, "{}", o.text());
}

#[test]
fn report_inside_a_run_folder_takes_the_output_lock_and_cleans_up() {
    let fx = Fixture::new(120, "csv");
    let o = fx.run(&["run", "pipeline.toml"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let month = fx.path("out/2026-10");
    let o = strata(&["report", "."], &month);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        !month.join(".strata.lock").exists(),
        "lock file left in the month"
    );
    // A failed re-render leaves no temporary file.
    std::fs::remove_file(month.join("report.html")).unwrap();
    std::fs::create_dir(month.join("report.html")).unwrap();
    let o = strata(&["report", "."], &month);
    o.assert_clean();
    assert_eq!(o.code, 2, "{}", o.text());
    assert!(!month.join(".report.html.tmp").exists());
    // Not a run directory at all.
    let o = fx.run(&["report", "out"]);
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.text().contains("not a committed run directory"),
        "{}",
        o.text()
    );
}

#[test]
fn filter_subqueries_cannot_read_undeclared_files() {
    let fx = Fixture::new(120, "csv");
    fx.write("secret.csv", "account_id\nA0000001\n");
    let text = fx.pipeline().replace(
        "[sources.usage]",
        "[sources.usage]\nfilter = \"account_id IN (SELECT account_id FROM read_csv('secret.csv'))\"",
    );
    fx.write("pipeline.toml", &text);
    expect_data_error(
        &fx,
        &["sources.usage.filter", "`SELECT`", "declared sources"],
    );
}

#[test]
fn quoted_column_names_with_spaces_work_in_expressions() {
    let fx = Fixture::new(120, "csv");
    let text = fx
        .read("data/accounts.csv")
        .replacen("employees", "Employee Count", 1);
    fx.write("data/accounts.csv", &text);
    let p = fx.pipeline();
    assert!(
        p.contains("expr = \"employees\""),
        "the sample pipeline reads employees"
    );
    let head = "expr = \"greatest(employees - coalesce(seats, 0), 0) / nullif(employees, 0)\"";
    assert!(p.contains(head));
    fx.write(
        "pipeline.toml",
        &p.replace("expr = \"employees\"", "expr = '\"Employee Count\"'")
            .replace(
                head,
                "expr = 'greatest(\"Employee Count\" - coalesce(seats, 0), 0) / nullif(\"Employee Count\", 0)'",
            ),
    );
    let o = fx.run(&["validate", "pipeline.toml"]);
    assert_eq!(o.code, 0, "{}", o.text());
    // Unquoted, the parse error says how to quote.
    fx.write(
        "pipeline.toml",
        &p.replace("expr = \"employees\"", "expr = \"Employee Count\""),
    );
    let o = fx.run(&["validate", "pipeline.toml"]);
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(o.text().contains("double quotes"), "{}", o.text());
}

#[test]
fn failing_aggregate_is_named_when_its_source_has_other_windows() {
    // usage has features over 3 and over 6 months, aggregated together, part
    // by part; when a window's part fails, that window is grouped whole and
    // then each of its features alone, so the message names the feature (and
    // only it).
    let fx = Fixture::new(120, "csv");
    let p = fx.pipeline();
    let trend = "expr = \"-covar_samp(active_users, months_since_month) / nullif(var(months_since_month), 0) / nullif(avg(active_users), 0)\"";
    assert!(
        p.contains(trend),
        "the sample pipeline's usage_trend changed"
    );
    fx.write(
        "pipeline.toml",
        &p.replace(trend, "expr = \"sum(active_users) + month\""),
    );
    let out = expect_data_error(
        &fx,
        &[
            "bad_feature",
            "`usage_trend`",
            "`sum(active_users) + month` over source `usage` failed",
            "fix the expression",
        ],
    );
    assert_eq!(
        out.text().matches("bad_feature").count(),
        1,
        "only the failing feature is reported:\n{}",
        out.text()
    );
}

/// Unknown keys in the single-table sections get the did-you-mean and the
/// allowed keys too (issue 37): the path is the one the user wrote.
#[test]
fn a_misspelt_key_in_a_single_table_section_gets_a_suggestion() {
    let fx = Fixture::new(120, "csv");
    fx.write(
        "pipeline.toml",
        &fx.pipeline().replace("restarts = 4", "restrats = 4"),
    );
    let o = fx.run(&["validate", "pipeline.toml"]);
    o.assert_clean();
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.stderr.contains("kmeans.restrats")
            && o.stderr.contains("did you mean `restarts`?")
            && o.stderr.contains("Allowed here:")
            && !o.stderr.contains(".?."),
        "{}",
        o.stderr
    );
}

/// A time column that cannot be read as dates is the one error of its
/// source's features: no follow-on error per feature leaking internal columns.
#[test]
fn an_unreadable_time_column_is_one_error_without_follow_ons() {
    let fx = Fixture::new(120, "csv");
    // usage.csv: account_id,month,... — every month written as text.
    map_column(&fx, "data/usage.csv", 1, |_| "sometime".into());
    let out = expect_data_error(&fx, &["unparsable_date", "usage.csv"]);
    let text = out.text();
    assert!(
        !text.contains("months_since")
            && !text.contains("__row")
            && !text.contains("fix the expression"),
        "{text}"
    );
}

/// A text column read by a row-level feature is blamed itself, not the
/// expression downstream of it.
#[test]
fn a_text_column_is_blamed_not_the_expression_that_reads_it() {
    let fx = Fixture::new(120, "csv");
    // employees is the second column of accounts.csv: "12k"-style text.
    map_column(&fx, "data/accounts.csv", 1, |v| format!("{v} people"));
    let out = expect_data_error(
        &fx,
        &[
            "column `employees` holds text",
            "store `employees` as numbers",
        ],
    );
    assert!(!out.text().contains("fix the expression"), "{}", out.text());
}

/// A folder with `{as_of}` and no file as a source path says it names no
/// file, not that the format of `` is unknown.
#[test]
fn a_templated_folder_as_source_path_says_which_file() {
    let fx = Fixture::new(120, "csv");
    fx.write(
        "pipeline.toml",
        &fx.pipeline()
            .replace("path = \"data/usage.csv\"", "path = \"data/{as_of}\""),
    );
    let o = fx.run(&["validate", "pipeline.toml"]);
    o.assert_clean();
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.stderr.contains("has no file extension")
            && o.stderr.contains("data/{as_of}/accounts.csv"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("(``)"), "{}", o.stderr);
}

/// An output that is a file is refused by `validate` (run.output) and by
/// `run --out`, with exit 1 and what to do, before any work.
#[test]
fn an_output_that_is_a_file_is_refused_by_validate_and_run() {
    let fx = Fixture::new(120, "csv");
    fx.write("taken", "not a folder");
    fx.write(
        "pipeline.toml",
        &fx.pipeline()
            .replace("output = \"out\"", "output = \"taken\""),
    );
    for cmd in ["validate", "run"] {
        let o = fx.run(&[cmd, "pipeline.toml"]);
        o.assert_clean();
        assert_eq!(o.code, 1, "{cmd}: {}", o.text());
        assert!(
            o.stderr.contains("run.output") && o.stderr.contains("is a file"),
            "{}",
            o.stderr
        );
    }
    fx.write(
        "pipeline.toml",
        &fx.pipeline()
            .replace("output = \"taken\"", "output = \"out\""),
    );
    let o = fx.run(&["run", "pipeline.toml", "--out", "taken"]);
    o.assert_clean();
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.stderr.contains("taken is a file, not a folder"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("os error"), "{}", o.stderr);
}

/// `strata report` refused by a run holding the output folder's lock: the
/// holder is named, the folder as typed, and no `--out` (report has none).
#[test]
fn a_report_refused_by_the_lock_names_the_holder_and_no_out_option() {
    let fx = Fixture::new(120, "csv");
    let o = fx.run(&["run", "pipeline.toml"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let _held = strata::rundir::OutputLock::acquire(&fx.path("out"), "a test run", "").unwrap();
    let o = fx.run(&["report", "out/2026-10"]);
    o.assert_clean();
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.stderr
            .contains("another strata run is writing to out (pid ")
            && o.stderr.contains("a test run")
            && !o.stderr.contains("--out"),
        "{}",
        o.stderr
    );
}

/// A zero-length Parquet source is called empty in Parquet's terms.
#[test]
fn a_zero_length_parquet_file_is_named_empty_not_csv() {
    let fx = Fixture::new(120, "parquet");
    fx.write("data/tickets.parquet", "");
    let out = expect_data_error(&fx, &["empty_file", "tickets.parquet", "0 bytes"]);
    assert!(!out.text().contains("a CSV needs"), "{}", out.text());
}

/// An absurd but finite value (an MRR of 1e300) is named, with what
/// winsorize or a [[check]] would do; the sample has none.
#[test]
fn an_absurd_value_is_a_warning_naming_the_account() {
    let fx = Fixture::new(200, "csv");
    let o = fx.run(&["validate", "pipeline.toml"]);
    assert!(!o.text().contains("extreme_value"), "{}", o.text());
    // revenue.csv: account_id,month,mrr,... — one account's MRR every month.
    let text = fx.read("data/revenue.csv");
    let id = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    map_column(&fx, "data/revenue.csv", 2, |v| v.to_string());
    let edited: Vec<String> = fx
        .read("data/revenue.csv")
        .lines()
        .map(|l| {
            let mut c: Vec<String> = l.split(',').map(str::to_string).collect();
            if c[0] == id {
                c[2] = "1e300".into();
            }
            c.join(",")
        })
        .collect();
    fx.write("data/revenue.csv", &(edited.join("\n") + "\n"));
    let o = fx.run(&["validate", "pipeline.toml"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "a warning, not an error: {}", o.text());
    assert!(
        o.text().contains("extreme_value")
            && o.text().contains(&id)
            && o.text().contains("winsorize"),
        "{}",
        o.text()
    );
}

/// A value that overflows a number (1e400) is shown as written, not as `inf`.
#[test]
fn an_overflowing_number_is_shown_as_written() {
    let fx = Fixture::new(120, "csv");
    // revenue.csv: account_id,month,mrr,... — the fifth row's MRR.
    fx.edit_line("data/revenue.csv", 5, |l| {
        let mut f: Vec<&str> = l.split(',').collect();
        f[2] = "1e400";
        f.join(",")
    });
    let out = expect_data_error(&fx, &["non_finite", "revenue.csv", ": 1e400"]);
    assert!(!out.text().contains(": inf"), "{}", out.text());
}

/// Two sources reading one file: its structural problem is listed once.
#[test]
fn a_problem_of_a_file_two_sources_read_is_listed_once() {
    let fx = Fixture::new(120, "csv");
    fx.write(
        "pipeline.toml",
        &(fx.pipeline()
            + "\n[sources.usage_again]\npath = \"data/usage.csv\"\naccount = \"account_id\"\n"),
    );
    let text = fx.read("data/usage.csv");
    let cut = text.trim_end().rfind(',').unwrap();
    fx.write("data/usage.csv", &text[..cut]);
    let out = expect_data_error(&fx, &["truncated_file"]);
    assert_eq!(
        out.text().matches("[truncated_file]").count(),
        1,
        "{}",
        out.text()
    );
}

/// Three accounts-only files for the messages below (no `time`, no as-of:
/// the month is inferred).
fn plain_accounts(pipeline_tail: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,a,b,joined\n");
    for i in 0..60 {
        csv.push_str(&format!(
            "A{i:03},{},{},{}\n",
            i % 7,
            (i * 13) % 11,
            if i % 2 == 0 { "yes" } else { "no" }
        ));
    }
    std::fs::write(dir.path().join("accounts.csv"), csv).unwrap();
    let text = format!(
        "[run]\noutput = \"out\"\n[sources.accounts]\npath = \"accounts.csv\"\nid = \"id\"\n{pipeline_tail}"
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

#[test]
fn with_the_as_of_inferred_each_finding_is_said_once() {
    let dir = plain_accounts("[[feature]]\nname = \"a\"\nexpr = \"a\"\n[[feature]]\nname = \"c\"\nexpr = \"nosuch * 2\"\n");
    let o = strata(&["run", "pipeline.toml"], dir.path());
    assert_eq!(o.code, 1, "{}", o.text());
    assert_eq!(
        o.text().matches("[missing_column]").count(),
        1,
        "{}",
        o.text()
    );
    let o = strata(
        &["validate", "pipeline.toml", "--report", "q.json"],
        dir.path(),
    );
    assert_eq!(o.code, 1, "{}", o.text());
    assert_eq!(
        o.text().matches("[missing_column]").count(),
        1,
        "{}",
        o.text()
    );
    let q: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("q.json")).unwrap()).unwrap();
    let n = q["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "missing_column")
        .count();
    assert_eq!(n, 1, "{q}");
}

#[test]
fn since_on_a_text_column_is_one_finding_in_strata_words() {
    let dir = plain_accounts("since = \"joined\"\n[[feature]]\nname = \"a\"\nexpr = \"a\"\n");
    let o = strata(&["run", "pipeline.toml"], dir.path());
    assert_eq!(o.code, 1, "{}", o.text());
    let text = o.text();
    assert!(
        text.contains("[unparsable_date]") && text.contains("`joined`"),
        "{text}"
    );
    assert!(
        !text.contains("valid columns"),
        "a Polars message leaks: {text}"
    );
    assert!(!text.contains("__row"), "{text}");
}

#[test]
fn a_forward_reference_names_the_feature_below() {
    let dir = plain_accounts(
        "[[feature]]\nname = \"double\"\nexpr = \"half * 2\"\n[[feature]]\nname = \"half\"\nexpr = \"a / 2\"\n",
    );
    let o = strata(&["validate", "pipeline.toml"], dir.path());
    assert_eq!(o.code, 1, "{}", o.text());
    let text = o.text();
    assert!(text.contains("declared after it"), "{text}");
    assert!(
        text.contains("move the [[feature]] `half` above `double`"),
        "{text}"
    );
    assert_eq!(text.matches("[missing_column]").count(), 1, "{text}");
}

#[test]
fn a_constant_feature_is_a_warning() {
    let dir = plain_accounts(
        "[[feature]]\nname = \"a\"\nexpr = \"a\"\n[[feature]]\nname = \"none\"\nexpr = \"0 * b\"\n",
    );
    let o = strata(&["run", "pipeline.toml"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(o.text().contains("[constant_feature]"), "{}", o.text());
    assert!(
        o.text().contains("feature `none` is 0 for every account"),
        "{}",
        o.text()
    );
}

#[test]
fn a_via_onto_a_zip_keyed_table_points_to_lookup() {
    let dir = plain_accounts("[[feature]]\nname = \"a\"\nexpr = \"a\"\n[[feature]]\nname = \"pop\"\nsource = \"census\"\nexpr = \"max(population)\"\n[sources.census]\npath = \"census.csv\"\nvia = \"accounts\"\nlink = \"zip\"\n");
    std::fs::write(
        dir.path().join("census.csv"),
        "zip,population\n10001,21000\n94105,9000\n",
    )
    .unwrap();
    let o = strata(&["run", "pipeline.toml"], dir.path());
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.text().contains("it is a lookup, not a `via`"),
        "{}",
        o.text()
    );
}
