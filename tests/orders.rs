//! Order-level exports as accounts: one file with a row per order line,
//! configured once as the README's recipe says (`id` + `per_account`), runs
//! with no duplicate finding; an attribute that varies within accounts is
//! named; without `per_account` the error points at it (not at a unique row
//! id); few accounts get fewer neighbours, and the summary says so.

mod common;
use common::*;

/// `accounts` customers with 2–12 order lines each (Row ID, Order Date,
/// Customer ID, Industry, Segment, Region, Sales, Discount); Industry and
/// Segment are the customer's, Region varies between its orders.
fn orders(accounts: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    let industries = ["Retail", "Finance", "Tech", "Healthcare"];
    let segments = ["Strategic", "Enterprise", "SMB"];
    let regions = ["East", "West", "Central", "South"];
    let mut lines = Vec::new();
    for c in 0..accounts {
        let industry = industries[next() % 4];
        let segment = next() % 3;
        let home = next() % 4;
        for _ in 0..2 + next() % 11 {
            let day = 1 + next() % 28;
            let month = 1 + next() % 10;
            let region = if next() % 5 == 0 {
                regions[next() % 4]
            } else {
                regions[home]
            };
            let sales = (3 - segment) as f64 * 400.0 + (next() % 1000) as f64;
            let discount = [0.0, 0.1, 0.2][next() % 3];
            lines.push(format!(
                "2026-{month:02}-{day:02},C{c:04},{industry},{},{region},{sales:.2},{discount}",
                segments[segment]
            ));
        }
    }
    lines.sort();
    let mut csv =
        String::from("Row ID,Order Date,Customer ID,Industry,Segment,Region,Sales,Discount\n");
    for (i, l) in lines.iter().enumerate() {
        csv.push_str(&format!("{},{l}\n", i + 1));
    }
    std::fs::write(dir.path().join("orders.csv"), csv).unwrap();
    dir
}

/// The README's recipe for an order-level export.
const RECIPE: &str = r#"
[run]
as_of = "2026-10"
output = "out"

[sources.orders]            # one row per order line
path = "orders.csv"
id = "Customer ID"          # the accounts are the distinct customers
per_account = "latest"      # account-level columns: their value on the latest order
time = "Order Date"

[[feature]]
name = "sales"
unit = "usd"
source = "orders"
expr = "sum(Sales)"
window = 12
transform = "log1p"

[[feature]]
name = "order_count"
unit = "count"
source = "orders"
expr = "count(*)"
window = 12

[[feature]]
name = "discount"
unit = "percent"
source = "orders"
expr = "avg(Discount)"
window = 12

[[feature]]
name = "west_share"
label = "orders in the West"
unit = "percent"
source = "orders"
expr = "avg(CASE WHEN Region = 'West' THEN 1.0 ELSE 0.0 END)"
window = 12

[[feature]]
name = "industry"
expr = "Industry"
kind = "categorical"

[[feature]]
name = "segment"
expr = "Segment"
kind = "categorical"
matrix = false

[tiers]
order = ["Strategic", "Enterprise", "SMB"]
column = "segment"
value = "sales"
"#;

fn quality_codes(dir: &std::path::Path) -> Vec<String> {
    let q: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/2026-10/quality.json")).unwrap(),
    )
    .unwrap();
    q["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_orders_only_export_configured_once_runs_without_duplicate_findings() {
    let dir = orders(400);
    std::fs::write(dir.path().join("p.toml"), RECIPE).unwrap();
    let o = strata(&["run", "p.toml"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.stdout.contains("0 error(s), 0 warning(s)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("run 2026-10: 400 accounts"),
        "{}",
        o.stdout
    );
    assert!(!quality_codes(dir.path()).contains(&"duplicate_id".to_string()));
    // Aggregates over the orders are per account.
    let f = read_parquet(&dir.path().join("out/2026-10/features.parquet"));
    assert_eq!(f.height(), 400);
    let n: Vec<Option<f64>> = f
        .column("order_count")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert!(
        n.iter().flatten().all(|&c| (2.0..=12.0).contains(&c)),
        "{n:?}"
    );

    // An attribute that varies within accounts is named, once.
    let varying = RECIPE.replace("expr = \"Industry\"", "expr = \"Region\"");
    std::fs::write(dir.path().join("p.toml"), varying).unwrap();
    let o = strata(&["run", "p.toml"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    let codes = quality_codes(dir.path());
    assert_eq!(
        codes.iter().filter(|c| *c == "varying_attribute").count(),
        1,
        "{codes:?}"
    );
    assert!(o.stdout.contains("column `Region`"), "{}", o.stdout);
}

#[test]
fn without_per_account_the_error_points_at_it_not_at_a_row_id() {
    let dir = orders(200);
    let text = RECIPE
        .replace("per_account = \"latest\"      # account-level columns: their value on the latest order\n", "")
        .replace("time = \"Order Date\"\n", "")
        .replace("source = \"orders\"", "source = \"lines\"")
        + "\n[sources.lines]\npath = \"orders.csv\"\naccount = \"Customer ID\"\ntime = \"Order Date\"\n";
    std::fs::write(dir.path().join("p.toml"), text).unwrap();
    let o = strata(&["run", "p.toml"], dir.path());
    assert_eq!(o.code, 1, "{}", o.text());
    let all = o.text();
    assert!(all.contains("per_account = \"latest\""), "{all}");
    assert!(
        !all.contains("\"Row ID\""),
        "suggests a row id as the account id: {all}"
    );
}

#[test]
fn few_accounts_get_fewer_neighbours_and_the_summary_says_so() {
    let dir = orders(90);
    std::fs::write(dir.path().join("p.toml"), RECIPE).unwrap();
    let o = strata(&["run", "p.toml"], dir.path());
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        o.stdout
            .contains("5 neighbours each (the default 15 scaled to 90 accounts)"),
        "{}",
        o.stdout
    );
}
