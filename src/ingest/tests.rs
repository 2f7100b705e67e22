//! Ingestion on small hand-made files whose right answers are known.

use super::*;
use crate::config;
use crate::quality::Severity;
use crate::schema::ACCOUNT_ID;
use aggregate::{over_no_rows, sums_as_totals};
use derive::attach;
use derive::{join_on_aid, rows_of_accounts};
use link::{key_map, look_up_in, put_in_account_order};
use load::ROW;
use parts::is_flagged_sorted;
use parts::{account_parts, in_time_order, run_parts, PartPlan};

fn write(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn run(dir: &std::path::Path, pipeline: &str) -> Ingested {
    write(dir, "p.toml", pipeline);
    let p = config::load(&dir.join("p.toml")).unwrap();
    ingest(&p, p.as_of).unwrap()
}

fn value(df: &DataFrame, id: &str, col_name: &str) -> Option<f64> {
    let ids = df.column(ACCOUNT_ID).unwrap().str().unwrap().clone();
    let i = ids.iter().position(|v| v == Some(id)).unwrap();
    df.column(col_name).unwrap().f64().unwrap().get(i)
}

const ACCOUNTS: &str =
    "account_id,employees,since\nA,100,2024-10-15\nB,10,2026-01-01\nC,50,2020-01-01\n";

#[test]
fn windows_count_whole_months_back_from_as_of() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "accounts.csv", ACCOUNTS);
    // A has usage in 2026-10 (as of), 2026-09, 2026-08, 2026-07 and a future month.
    write(
        d.path(),
        "usage.csv",
        "account_id,month,users\nA,2026-10-01,10\nA,2026-09-01,20\nA,2026-08-01,30\nA,2026-07-01,40\nA,2026-11-01,1000\nB,2026-10-01,5\n",
    );
    let out = run(
        d.path(),
        r#"
[run]
as_of = "2026-10"
[sources.accounts]
path = "accounts.csv"
id = "account_id"
dates = ["since"]
[sources.usage]
path = "usage.csv"
account = "account_id"
time = "month"
[[feature]]
name = "users_3m"
source = "usage"
expr = "avg(users)"
window = 3
[[feature]]
name = "users_prev"
source = "usage"
expr = "sum(users)"
window = 1
offset = 3
[[feature]]
name = "latest"
source = "usage"
expr = "last(users)"
[[feature]]
name = "tenure"
expr = "months_since_since"
[[feature]]
name = "ratio"
expr = "users_3m / employees"
"#,
    );
    assert!(!out.report.has_errors(), "{}", out.report);
    let df = out.frame.unwrap().df;
    assert_eq!(df.height(), 3);
    assert_eq!(value(&df, "A", "users_3m"), Some(20.0));
    assert_eq!(value(&df, "A", "users_prev"), Some(40.0));
    // Rows after the as-of month never count.
    assert_eq!(value(&df, "A", "latest"), Some(10.0));
    assert_eq!(value(&df, "A", "tenure"), Some(24.0));
    assert_eq!(value(&df, "A", "ratio"), Some(0.2));
    // C has no usage: aggregates are missing, not zero.
    assert_eq!(value(&df, "C", "users_3m"), None);
}

#[test]
fn usage_reaches_accounts_through_subscriptions_and_orphans_are_reported() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "accounts.csv", ACCOUNTS);
    write(
        d.path(),
        "subs.csv",
        "sub,acct,seats\ns1,A,5\ns2,A,7\ns3,B,1\ns9,ZZZ,3\n",
    );
    write(d.path(), "events.csv", "sub,day,feature\ns1,2026-10-02,x\ns2,2026-10-03,y\ns2,2026-10-04,x\ns3,2026-10-05,z\ns4,2026-10-05,z\n");
    let out = run(
        d.path(),
        r#"
[run]
as_of = "2026-10"
[sources.accounts]
path = "accounts.csv"
id = "account_id"
[sources.subscriptions]
path = "subs.csv"
account = "acct"
key = "sub"
[sources.events]
path = "events.csv"
via = "subscriptions"
link = "sub"
time = "day"
[[feature]]
name = "seats"
source = "subscriptions"
expr = "sum(seats)"
[[feature]]
name = "depth"
source = "events"
expr = "count(distinct feature)"
window = 1
[[feature]]
name = "events"
source = "events"
expr = "count(*)"
window = 1
"#,
    );
    assert!(!out.report.has_errors(), "{}", out.report);
    let orphans: Vec<&quality::Finding> = out
        .report
        .findings
        .iter()
        .filter(|f| f.code == "orphan_id")
        .collect();
    assert_eq!(orphans.len(), 2, "{}", out.report);
    assert!(orphans
        .iter()
        .any(|f| f.source == "subscriptions" && f.count == 1));
    assert!(orphans
        .iter()
        .any(|f| f.source == "events" && f.count == 1 && f.examples[0].line == Some(6)));
    let df = out.frame.unwrap().df;
    assert_eq!(value(&df, "A", "seats"), Some(12.0));
    assert_eq!(value(&df, "A", "depth"), Some(2.0));
    assert_eq!(value(&df, "A", "events"), Some(3.0));
    assert_eq!(value(&df, "B", "events"), Some(1.0));
}

#[test]
fn duplicate_ids_keep_the_latest_row() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "accounts.csv",
        "account_id,employees,updated\nA,1,2026-05-01\nB,2,2026-01-01\nA,3,2026-01-01\n",
    );
    let out = run(
        d.path(),
        r#"
[run]
as_of = "2026-10"
[sources.accounts]
path = "accounts.csv"
id = "account_id"
latest_by = "updated"
dates = ["updated"]
[[feature]]
name = "employees"
expr = "employees"
"#,
    );
    let dup = out
        .report
        .findings
        .iter()
        .find(|f| f.code == "duplicate_id")
        .expect("reported");
    assert_eq!(dup.count, 1);
    assert_eq!(dup.severity, Severity::Warning);
    let df = out.frame.unwrap().df;
    assert_eq!(df.height(), 2);
    assert_eq!(value(&df, "A", "employees"), Some(1.0));
}

#[test]
fn aggregates_over_no_rows_are_zero_for_sums_and_counts_only() {
    let df = df!("mrr" => [1.0f64, 2.0], "score" => [3i64, 9]).unwrap();
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.csv", "id\n1\n");
    let feature = |expr: &str| {
        let text = format!("[sources.a]\npath = \"a.csv\"\nid = \"id\"\n[[feature]]\nname = \"f\"\nexpr = \"{expr}\"\n");
        config::parse(&text, &d.path().join("p.toml"), d.path())
            .unwrap()
            .features[0]
            .clone()
    };
    assert_eq!(over_no_rows(&df, &feature("sum(mrr) * 12")), Some(0.0));
    assert_eq!(over_no_rows(&df, &feature("count(*)")), Some(0.0));
    assert_eq!(over_no_rows(&df, &feature("avg(score)")), None);
    assert_eq!(over_no_rows(&df, &feature("last(score)")), None);
    assert_eq!(over_no_rows(&df, &feature("max(mrr) - min(mrr)")), None);
    assert_eq!(over_no_rows(&df, &feature("sum(mrr) / count(*)")), None);
    assert_eq!(
        sums_as_totals("SUM (a) + resum(b) + 'sum(' + \"sum(x)\""),
        "total (a) + resum(b) + 'sum(' + \"sum(x)\""
    );
}

/// A parent source that cannot be read, its child, and a broken sibling: every
/// problem is in the one report, whether the month is known (each source read
/// just before it is linked) or found from the dates (every source read first).
#[test]
fn a_broken_parent_leaves_its_child_unlinked_and_every_problem_reported() {
    for as_of in ["as_of = \"2026-10\"", ""] {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "accounts.csv", ACCOUNTS);
        // No SubId column: the parent cannot be keyed.
        write(d.path(), "subs.csv", "account_id,Plan\nA,pro\n");
        write(d.path(), "events.csv", "SubId,month,n\nS1,2026-10-01,3\n");
        // No `month` column: the sibling's time column is missing.
        write(d.path(), "usage.csv", "account_id,users\nA,3\n");
        let out = run(
            d.path(),
            &format!(
                r#"
[run]
{as_of}
[sources.accounts]
path = "accounts.csv"
id = "account_id"
[sources.subs]
path = "subs.csv"
account = "account_id"
key = "SubId"
[sources.events]
path = "events.csv"
via = "subs"
link = "SubId"
time = "month"
[sources.usage]
path = "usage.csv"
account = "account_id"
time = "month"
[[feature]]
name = "events"
source = "events"
expr = "sum(n)"
[[feature]]
name = "users"
source = "usage"
expr = "sum(users)"
"#
            ),
        );
        let codes: Vec<(&str, &str)> = out
            .report
            .findings
            .iter()
            .map(|f| (f.source.as_str(), f.code.as_ref()))
            .collect();
        assert!(out.frame.is_none(), "{as_of}: {codes:?}");
        assert!(
            codes.contains(&("events", "unlinked_source")),
            "{as_of}: {codes:?}"
        );
        assert!(
            codes.iter().any(|(s, _)| *s == "subs"),
            "{as_of}: the parent's own problem: {codes:?}"
        );
        assert!(
            codes.iter().any(|(s, _)| *s == "usage"),
            "{as_of}: the sibling's problem: {codes:?}"
        );
        // Summaries (of the sources that could be read) in the pipeline's order.
        let names: Vec<&str> = out.report.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["accounts", "events"], "{as_of}");
    }
}

#[test]
fn look_up_gives_what_the_left_join_gives() {
    let keys = StringChunked::new("k".into(), ["a", "b", "c", "d"]);
    let ids = IdxCa::new("i".into(), [3 as IdxSize, 0, 2, 1]);
    // Runs of equal links (one probe each), broken by a null and by others.
    let links = StringChunked::new(
        "l".into(),
        [
            Some("c"),
            Some("c"),
            None,
            Some("c"),
            Some("zz"),
            Some("zz"),
            Some("a"),
            Some("c"),
            Some("d"),
            Some("d"),
        ],
    );
    let got = look_up_in(&links, &key_map(&keys, &ids).unwrap());
    let joined = DataFrame::new_infer_height(vec![links.clone().into_column()])
        .unwrap()
        .lazy()
        .join(
            DataFrame::new_infer_height(vec![
                keys.clone().into_column(),
                ids.clone().with_name(AID.into()).into_column(),
            ])
            .unwrap()
            .lazy(),
            [col("l")],
            [col("k")],
            {
                let mut a = JoinArgs::new(JoinType::Left);
                a.maintain_order = MaintainOrderJoin::Left;
                a
            },
        )
        .collect()
        .unwrap();
    let want: Vec<Option<IdxSize>> = joined.column(AID).unwrap().idx().unwrap().iter().collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
    assert_eq!(
        want,
        [
            Some(2),
            Some(2),
            None,
            Some(2),
            None,
            None,
            Some(3),
            Some(2),
            Some(1),
            Some(1)
        ]
    );
    // A repeated key would repeat rows in the join: no shortcut then.
    let dup = StringChunked::new("k".into(), ["a", "a"]);
    assert!(key_map(&dup, &IdxCa::new("i".into(), [0 as IdxSize, 1])).is_none());
}

#[test]
fn rows_are_put_in_account_order_keeping_each_accounts_order() {
    let frame = |aid: &[IdxSize]| {
        let row: Vec<u64> = (0..aid.len() as u64).collect();
        DataFrame::new_infer_height(vec![
            IdxCa::new(AID.into(), aid).into_column(),
            Column::new("row".into(), row),
        ])
        .unwrap()
    };
    let flag = |df: &DataFrame| df.column(AID).unwrap().is_sorted_flag();
    let column = |df: &DataFrame, c: &str| -> Vec<u64> {
        let s = df.column(c).unwrap().cast(&DataType::UInt64).unwrap();
        s.u64().unwrap().into_no_null_iter().collect()
    };
    // In order already: flagged, untouched.
    let mut sorted = frame(&[0, 0, 1, 3, 3, 7]);
    put_in_account_order(&mut sorted).unwrap();
    assert_eq!(flag(&sorted), polars::series::IsSorted::Ascending);
    assert_eq!(column(&sorted, "row"), [0, 1, 2, 3, 4, 5]);
    // Out of order (as `A10000000` sorts among `A1000000…`): each account's
    // rows together, in the order the file had them.
    let mut not = frame(&[2, 0, 9, 2, 1, 0, 9]);
    put_in_account_order(&mut not).unwrap();
    assert_eq!(flag(&not), polars::series::IsSorted::Ascending);
    assert_eq!(column(&not, AID), [0, 0, 1, 2, 2, 9, 9]);
    assert_eq!(column(&not, "row"), [1, 5, 4, 0, 3, 2, 6]);
    // Many runs (more than are rejoined without copying): gathered, with
    // the same result as a stable sort by account.
    let aid: Vec<IdxSize> = (0..500).map(|i| (i * 37 % 101) as IdxSize).collect();
    let mut many = frame(&aid);
    put_in_account_order(&mut many).unwrap();
    let mut want: Vec<(IdxSize, u64)> = aid.iter().copied().zip(0..).collect();
    want.sort_by_key(|&(a, _)| a);
    assert_eq!(flag(&many), polars::series::IsSorted::Ascending);
    assert_eq!(
        column(&many, AID),
        want.iter().map(|&(a, _)| a as u64).collect::<Vec<_>>()
    );
    assert_eq!(
        column(&many, "row"),
        want.iter().map(|&(_, r)| r).collect::<Vec<_>>()
    );
    // A row without an account: left as it is.
    let mut gap = DataFrame::new_infer_height(vec![IdxCa::new(
        AID.into(),
        [Some(2 as IdxSize), None, Some(1)],
    )
    .into_column()])
    .unwrap();
    put_in_account_order(&mut gap).unwrap();
    assert_eq!(flag(&gap), polars::series::IsSorted::Not);
}

#[test]
fn time_order_needs_every_account_in_time_then_row_order() {
    let frame = |aid: &[IdxSize], t: &[i32], row: &[IdxSize]| {
        DataFrame::new_infer_height(vec![
            IdxCa::new(AID.into(), aid).into_column(),
            Int32Chunked::new("t".into(), t).into_column(),
            IdxCa::new(ROW.into(), row).into_column(),
        ])
        .unwrap()
    };
    // Accounts interleaved, each in time order: no sort needed.
    assert!(in_time_order(
        &frame(&[1, 0, 1, 0], &[5, 1, 6, 1], &[0, 1, 2, 3]),
        "t"
    ));
    // Account 0 goes back in time.
    assert!(!in_time_order(
        &frame(&[0, 1, 0], &[5, 1, 4], &[0, 1, 2]),
        "t"
    ));
    // A tie in time must be in row order (a stable sort by time, then row).
    assert!(!in_time_order(&frame(&[0, 0], &[5, 5], &[3, 2]), "t"));
    assert!(in_time_order(&frame(&[0, 0], &[5, 5], &[2, 3]), "t"));
}

/// A linked source in account order: accounts with 0 to 30 rows each, some
/// values missing, rows in 12 months (0 = as-of), floats that round.
fn linked_rows(accounts: u32, seed: u64) -> DataFrame {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let (mut aid, mut ms, mut x, mut y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in 0..accounts {
        for _ in 0..next() % 31 {
            aid.push(a as IdxSize);
            ms.push((next() % 12) as i32);
            x.push((next() % 7 != 0).then(|| next() as f64 / 7.0 + 0.1));
            y.push(next() as f64 / 3.0);
        }
    }
    let n = aid.len();
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new(AID.into(), aid),
            Column::new(ROW.into(), (0..n as u64).collect::<Vec<_>>()),
            Column::new("months_since_m".into(), ms),
            Column::new("x".into(), x),
            Column::new("y".into(), y),
        ],
    )
    .unwrap();
    put_in_account_order(&mut df).unwrap();
    df
}

fn part_plan(window: Option<(i32, i32)>, in_runs: bool) -> PartPlan {
    let exprs = vec![
        col("x").mean().alias("mean_x"),
        col("x").sum().alias("sum_x"),
        cov(col("x"), col("y"), 1).alias("cov_xy"),
        col("y").var(1).alias("var_y"),
        col("y").last().alias("last_y"),
        len().alias("rows"),
    ];
    PartPlan {
        keep: [AID, "months_since_m", "x", "y"]
            .map(PlSmallStr::from)
            .to_vec(),
        inside: window.map(|(lo, hi)| ("months_since_m".to_string(), lo, hi)),
        by: None,
        exprs,
        in_runs,
    }
}

/// Bit patterns of every value, for exact comparison (NaN included).
fn bits(df: &DataFrame) -> Vec<Vec<Option<u64>>> {
    df.columns()
        .iter()
        .map(|c| {
            let c = c.cast(&DataType::Float64).unwrap();
            c.f64()
                .unwrap()
                .iter()
                .map(|v| v.map(f64::to_bits))
                .collect()
        })
        .collect()
}

#[test]
fn account_parts_keep_each_account_whole_and_cover_every_row() {
    let df = linked_rows(500, 7);
    assert!(is_flagged_sorted(&df));
    for part_rows in [1, 5, 64, 1000, df.height(), df.height() + 1] {
        let parts = account_parts(&df, part_rows).unwrap();
        let ids = df.column(AID).unwrap().idx().unwrap();
        let mut next = 0;
        for &(start, n) in &parts {
            assert_eq!(start, next, "parts are contiguous");
            assert!(n > 0 || df.height() == 0);
            if start > 0 {
                assert_ne!(
                    ids.get(start - 1),
                    ids.get(start),
                    "an account is split at row {start}"
                );
            }
            next = start + n;
        }
        assert_eq!(next, df.height());
        if part_rows < df.height() {
            assert!(parts.len() > 1);
        }
    }
    // Rows not flagged in account order: one part, whatever the size
    // (linking puts them in order first: put_in_account_order).
    let shuffled = df
        .sort(
            [ROW],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .unwrap();
    assert!(!is_flagged_sorted(&shuffled));
    assert_eq!(
        account_parts(&shuffled, 5).unwrap(),
        vec![(0, shuffled.height())]
    );
}

#[test]
fn grouping_part_by_part_gives_the_whole_frames_values_to_the_last_bit_on_any_thread_count() {
    let df = linked_rows(2000, 11);
    for window in [None, Some((0, 2)), Some((3, 8))] {
        let plan = part_plan(window, true);
        let whole = plan.group(&df, 0, df.height()).unwrap();
        assert!(whole.height() > 1500);
        for (part_rows, threads) in [(7, 1), (7, 3), (300, 2), (1 << 18, 2)] {
            let parts = account_parts(&df, part_rows).unwrap();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let done = pool.install(|| {
                run_parts(parts.len(), |i| {
                    plan.group(&df, parts[i].0, parts[i].1).unwrap()
                })
            });
            let mut stacked = done[0].clone();
            for d in &done[1..] {
                stacked.vstack_mut(d).unwrap();
            }
            assert_eq!(
                bits(&whole),
                bits(&stacked),
                "window {window:?}, parts of {part_rows} rows, {threads} thread(s)"
            );
        }
    }
    // A hashed group-by of the same rows out of order gives the same accounts.
    let shuffled = df
        .sort(
            [ROW],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .unwrap();
    let hashed = part_plan(Some((0, 11)), false)
        .group(&shuffled, 0, shuffled.height())
        .unwrap()
        .sort([AID], SortMultipleOptions::default())
        .unwrap();
    let sorted = part_plan(Some((0, 11)), true)
        .group(&df, 0, df.height())
        .unwrap();
    assert_eq!(hashed.column(AID).unwrap(), sorted.column(AID).unwrap());
    assert_eq!(
        hashed.column("rows").unwrap(),
        sorted.column("rows").unwrap()
    );
}

#[test]
fn attach_gives_what_the_left_join_gives() {
    // 300 accounts numbered 0..300; rows for every third, in another order.
    let n = 300u32;
    let accounts = DataFrame::new(
        n as usize,
        vec![
            Column::new(AID.into(), (0..n).map(|i| i as IdxSize).collect::<Vec<_>>()),
            Column::new(
                "employees".into(),
                (0..n).map(|i| i * 10).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap();
    let with_rows: Vec<IdxSize> = (0..n)
        .rev()
        .filter(|i| i % 3 == 0)
        .map(|i| i as IdxSize)
        .collect();
    let m = with_rows.len();
    let agg = DataFrame::new(
        m,
        vec![
            Column::new(AID.into(), with_rows.clone()),
            Column::new(
                "arr".into(),
                with_rows
                    .iter()
                    .map(|&i| i as f64 * 1.5)
                    .collect::<Vec<_>>(),
            ),
            Column::new("__rows_0".into(), vec![2 as IdxSize; m]),
        ],
    )
    .unwrap();
    let by_aid = |df: DataFrame| df.sort([AID], SortMultipleOptions::default()).unwrap();
    let fast = attach(accounts.clone(), agg.clone()).unwrap();
    let joined = by_aid(join_on_aid(accounts.clone(), agg.clone()).unwrap());
    assert_eq!(fast.get_column_names(), joined.get_column_names());
    assert!(fast.equals_missing(&joined));
    assert_eq!(fast.column("arr").unwrap().null_count(), (n as usize) - m);
    assert_eq!(value_at(&fast, 3, "arr"), Some(4.5));
    assert_eq!(value_at(&fast, 4, "arr"), None);
    // A column both have, or a key twice: the join decides, as before.
    let clash = agg
        .clone()
        .lazy()
        .with_column(col("arr").alias("employees"))
        .collect()
        .unwrap();
    assert!(rows_of_accounts(&accounts, &clash).unwrap().is_none());
    let clashed = attach(accounts.clone(), clash).unwrap();
    assert!(clashed.column("employees_right").is_ok());
    let twice = agg.vstack(&agg.head(Some(1))).unwrap();
    assert!(rows_of_accounts(&accounts, &twice).unwrap().is_none());
    assert_eq!(attach(accounts, twice).unwrap().height(), n as usize + 1);
}

fn value_at(df: &DataFrame, aid: IdxSize, name: &str) -> Option<f64> {
    let ids = df.column(AID).unwrap().idx().unwrap().clone();
    let i = ids.iter().position(|v| v == Some(aid)).unwrap();
    df.column(name).unwrap().f64().unwrap().get(i)
}

/// With the keys in order (the accounts' ids), the lookup that steps along
/// them gives what the hash map gives, whatever the order of the links:
/// in account order with gaps, orphans and nulls, month by month (the order
/// restarting), backwards, and shuffled; across blocks of rows.
#[test]
fn look_up_along_ordered_keys_gives_what_the_map_gives() {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let n = 150_000usize;
    let name = |i: usize| format!("A{i:07}");
    let keys = StringChunked::from_iter_values("k".into(), (0..n).map(name));
    let ids = IdxCa::from_vec("i".into(), (0..n as IdxSize).collect());
    let index = key_map(&keys, &ids).unwrap();
    let want_of = |links: &[Option<String>]| -> Vec<Option<IdxSize>> {
        let map: HashMap<String, IdxSize> = (0..n).map(|i| (name(i), i as IdxSize)).collect();
        links
            .iter()
            .map(|l| l.as_ref().and_then(|l| map.get(l).copied()))
            .collect()
    };
    // In order: every third account has no rows, every fifth has three, an
    // orphan now and then (an id between two accounts, one past the last).
    let mut in_order: Vec<Option<String>> = Vec::new();
    for i in 0..n {
        if i % 3 == 0 {
            continue;
        }
        let rows = if i % 5 == 0 { 3 } else { 1 };
        in_order.extend((0..rows).map(|_| Some(name(i))));
        if i % 1_000 == 7 {
            in_order.push(Some(format!("{}x", name(i))));
        }
        if i % 10_007 == 0 {
            in_order.push(None);
        }
    }
    in_order.push(Some("B".into()));
    let months: Vec<Option<String>> = (0..3).flat_map(|_| in_order.clone()).collect();
    let backwards: Vec<Option<String>> = in_order.iter().rev().cloned().collect();
    let mut shuffled = in_order.clone();
    shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    // The months in two chunks of the column (as a file read in parts),
    // cut off the blocks' grid: each block's place in the answer is its
    // chunk's offset plus its own.
    let cut = 100_003;
    let mut two =
        StringChunked::from_iter_options("l".into(), months[..cut].iter().map(|l| l.as_deref()));
    two.append(&StringChunked::from_iter_options(
        "l".into(),
        months[cut..].iter().map(|l| l.as_deref()),
    ))
    .unwrap();
    assert_eq!(two.chunks().len(), 2);
    let got: Vec<Option<IdxSize>> = look_up_in(&two, &index).iter().collect();
    assert!(got == want_of(&months), "in two chunks");
    for (what, links) in [
        ("in order", in_order),
        ("month by month", months),
        ("backwards", backwards),
        ("shuffled", shuffled),
    ] {
        let ca = StringChunked::from_iter_options("l".into(), links.iter().map(|l| l.as_deref()));
        let got: Vec<Option<IdxSize>> = look_up_in(&ca, &index).iter().collect();
        assert!(got == want_of(&links), "{what}");
    }
    // Keys out of order, or not numbered by their place: the map alone,
    // with the same answers.
    let shuffled_ids = IdxCa::from_vec("i".into(), (0..n as IdxSize).rev().collect());
    let by_map = key_map(&keys, &shuffled_ids).unwrap();
    let links = StringChunked::new("l".into(), [name(0), name(n - 1), "zz".into()]);
    let got: Vec<Option<IdxSize>> = look_up_in(&links, &by_map).iter().collect();
    assert_eq!(got, [Some(n as IdxSize - 1), Some(0), None]);
}
