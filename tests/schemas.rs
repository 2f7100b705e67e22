//! Real schemas without silent failure: join coverage, tier names checked
//! against the data, as-of from the data, account lifetime, no-rows
//! semantics and lookup joins — each on real files through the real binary.

mod common;
use common::*;

use polars::prelude::*;

/// The value of `column` for account `id` in a features.parquet.
fn value(df: &DataFrame, id: &str, column: &str) -> Option<f64> {
    let ids = df.column("account_id").unwrap().str().unwrap();
    let i = ids
        .iter()
        .position(|v| v == Some(id))
        .expect("account present");
    df.column(column)
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .get(i)
}

fn must_fail(fx: &Fixture, needles: &[&str]) -> Out {
    for cmd in ["validate", "run"] {
        let o = fx.run(&[cmd, "pipeline.toml"]);
        o.assert_clean();
        assert_eq!(o.code, 1, "{cmd}: expected exit 1:\n{}", o.text());
        for n in needles {
            assert!(o.text().contains(n), "{cmd}: `{n}` missing:\n{}", o.text());
        }
    }
    fx.run(&["validate", "pipeline.toml"])
}

#[test]
fn a_wrong_link_column_is_an_error_naming_the_right_one() {
    let fx = Fixture::new(120, "csv");
    // usage.csv: account_id,month,active_users,seats,logins,features_used.
    // A copy of the id column under another name, and the pipeline pointing
    // at a column that exists but holds something else.
    let text = fx.read("data/usage.csv");
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        let first = l.split(',').next().unwrap();
        out.push_str(&if i == 0 {
            format!("{l},acct")
        } else {
            format!("{l},{first}")
        });
        out.push('\n');
    }
    fx.write("data/usage.csv", &out);
    let text = fx
        .read("data/usage.csv")
        .replacen("account_id,", "customer_ref,", 1);
    let text = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else {
                // customer_ref now holds something that is not an account id
                let (_, rest) = l.split_once(',').unwrap();
                format!("C{i},{rest}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    fx.write("data/usage.csv", &text);
    let p = fx.pipeline();
    let usage = p.find("[sources.usage]").unwrap();
    let fixed = format!(
        "{}{}",
        &p[..usage],
        p[usage..].replacen("account = \"account_id\"", "account = \"customer_ref\"", 1)
    );
    fx.write("pipeline.toml", &fixed);
    must_fail(
        &fx,
        &[
            "orphan_id",
            "usage.csv",
            "100%",
            "quality.max_orphans",
            "did you mean account = \"acct\"",
        ],
    );
}

#[test]
fn a_wrong_key_is_an_error_naming_a_unique_column() {
    let fx = Fixture::new(120, "csv");
    // nps: response_id,account_id,respondent,responded_at,score; score is no key.
    fx.write(
        "pipeline.toml",
        &fx.pipeline()
            .replace("key = \"response_id\"", "key = \"score\""),
    );
    must_fail(
        &fx,
        &[
            "duplicate_id",
            "nps.csv",
            "quality.max_duplicates",
            "did you mean key = \"response_id\"",
        ],
    );
}

#[test]
fn a_misspelt_tier_is_an_error_and_unknown_values_are_counted() {
    let fx = Fixture::new(120, "csv");
    let base = fx.pipeline();
    fx.write("pipeline.toml", &base.replace("\"Hybrid\"", "\"Hybird\""));
    must_fail(
        &fx,
        &[
            "unseen_tier",
            "`Hybird`",
            "did you mean `Hybrid`",
            "unknown_tier",
            "`Hybrid` (",
        ],
    );
    // A few stray values are a warning that counts them; many are an error.
    let text = fx.read("data/accounts.csv");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for l in lines.iter_mut().skip(1).take(3) {
        *l = l
            .replace("Tech Touch", "Self Serve")
            .replace("Hybrid", "Self Serve")
            .replace("High Touch", "Self Serve");
    }
    fx.write("data/accounts.csv", &(lines.join("\n") + "\n"));
    fx.write("pipeline.toml", &base);
    let o = fx.run(&["validate", "pipeline.toml"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.text().contains("unknown_tier") && o.text().contains("`Self Serve` (3)"),
        "{}",
        o.text()
    );
    fx.write(
        "pipeline.toml",
        &(base + "\n[quality]\nmax_unknown_tiers = 0.01\n"),
    );
    must_fail(&fx, &["unknown_tier", "max_unknown_tiers"]);
}

/// The fixture's pipeline without a run.as_of.
fn without_as_of(fx: &Fixture) -> String {
    let p = fx.pipeline();
    assert!(p.contains("as_of = \"2026-10\""));
    p.replace("as_of = \"2026-10\"", "")
}

#[test]
fn without_as_of_the_month_comes_from_the_data_and_is_said() {
    let fx = Fixture::new(120, "csv");
    fx.write("pipeline.toml", &without_as_of(&fx));
    let o = fx.run(&["run", "pipeline.toml", "--until", "features"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.text().contains("as-of 2026-10 from the data"),
        "{}",
        o.text()
    );
    assert!(fx.path("out/2026-10/features.parquet").is_file());
    let o = fx.run(&["validate", "pipeline.toml"]);
    assert!(o.text().contains("is valid for 2026-10"), "{}", o.text());
}

#[test]
fn a_window_beyond_the_data_is_an_error_naming_its_dates() {
    let fx = Fixture::new(120, "csv");
    // A year after the data: every windowed feature is empty.
    for cmd in ["validate", "run"] {
        let o = fx.run(&[cmd, "pipeline.toml", "--as-of", "2027-12"]);
        o.assert_clean();
        assert_eq!(o.code, 1, "{}", o.text());
        for n in ["empty_feature", "dated 20", "to 2026-10", "--as-of"] {
            assert!(o.text().contains(n), "`{n}` missing:\n{}", o.text());
        }
    }
}

#[test]
fn the_account_table_has_no_time_column() {
    let fx = Fixture::new(120, "csv");
    let p = fx.pipeline();
    let text = p.replacen(
        "id = \"account_id\"",
        "id = \"account_id\"\ntime = \"updated_at\"",
        1,
    );
    fx.write("pipeline.toml", &text);
    must_fail(&fx, &["sources.accounts.time", "use `since`"]);
}

#[test]
fn accounts_that_became_customers_later_are_left_out_until_their_month() {
    let fx = Fixture::generated(150, "csv", "2026-11", 14);
    // Five accounts start in 2026-11: not customers in 2026-10, new in 2026-11.
    // Three others churn in 2026-11: customers in 2026-10, lost in 2026-11.
    let text = fx.read("data/accounts.csv");
    let mut late = Vec::new();
    let mut churned = Vec::new();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            let mut until = String::new();
            if i == 0 {
                until = "churned_at".into();
            } else if i <= 5 {
                f[7] = "2026-11-15".into(); // customer_since
                late.push(f[0].clone());
            } else if i <= 8 {
                until = "2026-11-05".into();
                churned.push(f[0].clone());
            }
            f.push(until);
            f.join(",")
        })
        .collect();
    fx.write("data/accounts.csv", &(lines.join("\n") + "\n"));
    fx.write(
        "pipeline.toml",
        &fx.pipeline().replacen(
            "since = \"customer_since\"",
            "since = \"customer_since\"\nuntil = \"churned_at\"",
            1,
        ),
    );
    // Their rows in other sources are not orphans (they are accounts), and
    // count only from their month on.
    let o = fx.run(&["run", "pipeline.toml", "--months", "2026-10..2026-11"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(o.text().contains("5 not yet customers"), "{}", o.text());
    assert!(!o.text().contains("orphan_id"), "{}", o.text());
    let oct = read_parquet(&fx.path("out/2026-10/features.parquet"));
    let nov = read_parquet(&fx.path("out/2026-11/features.parquet"));
    let ids = |df: &DataFrame| -> Vec<String> {
        df.column("account_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap().to_string())
            .collect()
    };
    for id in &late {
        assert!(!ids(&oct).contains(id), "{id} is not a customer in 2026-10");
        assert!(ids(&nov).contains(id), "{id} is a customer in 2026-11");
    }
    for id in &churned {
        assert!(ids(&oct).contains(id), "{id} is a customer in 2026-10");
        assert!(
            !ids(&nov).contains(id),
            "{id} is gone by the end of 2026-11"
        );
    }
    assert_eq!(oct.height() + 5 - 3, nov.height());
    // Tenure is never negative.
    let tenure = oct
        .column("tenure_months")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap();
    assert!(tenure.f64().unwrap().iter().flatten().all(|t| t >= 0.0));
    let cmp: serde_json::Value =
        serde_json::from_str(&fx.read("out/2026-11/comparison.json")).unwrap();
    assert_eq!(cmp["history"]["new_accounts"], 5, "{}", cmp["history"]);
    assert_eq!(cmp["history"]["lost_accounts"], 3);
}

#[test]
fn an_account_without_rows_has_zero_of_a_sum_not_the_median() {
    let fx = Fixture::new(120, "csv");
    // No revenue rows for A0000003.
    let text = fx.read("data/revenue.csv");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("A0000003,"))
        .collect();
    assert!(kept.len() < text.lines().count());
    fx.write("data/revenue.csv", &(kept.join("\n") + "\n"));
    let o = fx.run(&["run", "pipeline.toml", "--until", "features"]);
    assert_eq!(o.code, 0, "{}", o.text());
    let df = read_parquet(&fx.path("out/2026-10/features.parquet"));
    assert_eq!(
        value(&df, "A0000003", "arr"),
        Some(0.0),
        "sum over no rows is 0"
    );
    // A feature missing for many accounts is said.
    fx.write(
        "pipeline.toml",
        &(fx.pipeline() + "\n[quality]\nmax_imputed = 0.2\n"),
    );
    let o = fx.run(&["validate", "pipeline.toml"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(o.text().contains("mostly_missing"), "{}", o.text());
}

#[test]
fn a_lookup_joins_population_by_zip_code_onto_accounts() {
    let fx = Fixture::new(120, "csv");
    // A zip code per account, and a table of population by zip code.
    let text = fx.read("data/accounts.csv");
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l},zip")
            } else {
                format!("{l},{:05}", 1000 + i % 7)
            }
        })
        .collect();
    fx.write("data/accounts.csv", &(lines.join("\n") + "\n"));
    let mut zips = String::from("zip,population\n");
    for z in 0..7 {
        zips.push_str(&format!("{:05},{}\n", 1000 + z, 1000 * (z + 1)));
    }
    fx.write("data/zips.csv", &zips);
    let p = fx.pipeline().replace(
        "[sources.usage]",
        "[sources.zips]\npath = \"data/zips.csv\"\nkey = \"zip\"\nlookup = \"accounts\"\non = \"zip\"\ncolumns = [\"population\"]\n\n[sources.usage]",
    ) + "\n[[feature]]\nname = \"population\"\nexpr = \"population\"\nmatrix = false\n";
    fx.write("pipeline.toml", &p);
    let o = fx.run(&["run", "pipeline.toml", "--until", "features"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.text().contains("matched 120 of 120 rows (100%)")
            || o.text().contains("matched 121 of 121"),
        "{}",
        o.text()
    );
    let df = read_parquet(&fx.path("out/2026-10/features.parquet"));
    let ids = df.column("account_id").unwrap().str().unwrap().clone();
    let pop = df
        .column("population")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap();
    // Account row i (1-based in the file) has zip 1000 + i % 7, population 1000 * (i % 7 + 1).
    let accounts = fx.read("data/accounts.csv");
    let zip_of: std::collections::HashMap<String, usize> = accounts
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                f.last().unwrap().parse::<usize>().unwrap(),
            )
        })
        .collect();
    for (id, v) in ids.iter().zip(pop.f64().unwrap().iter()) {
        let z = zip_of[id.unwrap()];
        assert_eq!(v, Some(1000.0 * (z - 1000 + 1) as f64), "{id:?}");
    }
    // Zip codes the lookup does not have: counted; past max_orphans an error.
    let few = zips.lines().take(7).collect::<Vec<_>>().join("\n") + "\n"; // drops 01006
    fx.write("data/zips.csv", &few);
    let o = fx.run(&["validate", "pipeline.toml"]);
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.text().contains("unmatched_lookup") && o.text().contains("1006"),
        "{}",
        o.text()
    );
    fx.write("data/zips.csv", "zip,population\n09999,5\n");
    must_fail(&fx, &["unmatched_lookup", "accounts.csv", "`zip`"]);
}

#[test]
fn a_lookup_joins_onto_a_child_source_by_any_column() {
    let fx = Fixture::new(120, "csv");
    // A factor per usage month, joined onto usage rows by their month.
    let usage = fx.read("data/usage.csv");
    let months: std::collections::BTreeSet<String> = usage
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    let mut table = String::from("month_start,factor\n");
    for (i, m) in months.iter().enumerate() {
        table.push_str(&format!("{m},{}\n", i + 1));
    }
    fx.write("data/factors.csv", &table);
    let p = fx.pipeline().replace(
        "[sources.revenue]",
        "[sources.factors]\npath = \"data/factors.csv\"\nkey = \"month_start\"\nlookup = \"usage\"\non = \"month\"\ncolumns = [\"factor\"]\n\n[sources.revenue]",
    ) + "\n[[feature]]\nname = \"latest_factor\"\nsource = \"usage\"\nexpr = \"max(factor)\"\nwindow = 1\nmatrix = false\n";
    fx.write("pipeline.toml", &p);
    let o = fx.run(&["run", "pipeline.toml", "--until", "features"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());
    let df = read_parquet(&fx.path("out/2026-10/features.parquet"));
    // The as-of month is the latest month in the data: the largest factor.
    let want = months.len() as f64;
    let got = df
        .column("latest_factor")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap();
    let got: Vec<f64> = got.f64().unwrap().iter().flatten().collect();
    assert!(!got.is_empty() && got.iter().all(|v| *v == want), "{got:?}");
}
