//! The CRM-ready exports on a real run: one row per exception (by rank) and
//! per account, RFC 4180 quoting, and text a spreadsheet would run as a
//! formula neutralised; and the value feature's label used in the report.

mod common;
use common::*;

#[test]
fn exports_are_quoted_and_formula_safe_and_the_value_has_its_label() {
    let fx = Fixture::new(400, "csv");
    // An account id that is a formula, and a tier name with a comma.
    let text = fx
        .read("data/accounts.csv")
        .replacen("A0000001,", "=HYPERLINK(1),", 1)
        .replace("Tech Touch", "\"Tech, Touch\"");
    fx.write("data/accounts.csv", &text);
    for f in ["usage", "revenue", "nps", "tickets"] {
        let t = fx
            .read(&format!("data/{f}.csv"))
            .replace("A0000001,", "=HYPERLINK(1),");
        fx.write(&format!("data/{f}.csv"), &t);
    }
    let p = fx
        .pipeline_without_capacity()
        .replace("\"Tech Touch\"]", "\"Tech, Touch\"]")
        .replacen("label = \"ARR\"", "label = \"Card spend\"", 1);
    fx.write("pipeline.toml", &p);
    let o = fx.run(&["run", "pipeline.toml"]);
    o.assert_clean();
    assert_eq!(o.code, 0, "{}", o.text());

    let assignments = fx.read("out/2026-10/assignments.csv");
    let mut lines = assignments.lines();
    assert_eq!(
        lines.next().unwrap(),
        "as_of,account_id,kmeans_segment,kmeans_segment_name,community_segment,community_segment_name,current_tier,suggested_tier,exception,band,confidence,reason_short,rule_tier"
    );
    assert!(
        assignments.contains("'=HYPERLINK(1),"),
        "formula not neutralised"
    );
    assert!(!assignments.contains("\n=HYPERLINK"), "a raw formula cell");
    assert!(
        assignments.contains(",\"Tech, Touch\","),
        "comma in a value not quoted"
    );
    let mut r = csv::Reader::from_reader(assignments.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 400, "one row per account");
    assert!(rows.iter().all(|x| x.len() == 13 && &x[0] == "2026-10"));

    let exceptions = fx.read("out/2026-10/exceptions.csv");
    let mut r = csv::Reader::from_reader(exceptions.as_bytes());
    let head = r.headers().unwrap().clone();
    let names: Vec<&str> = head.iter().collect();
    assert_eq!(
        names[..13],
        [
            "as_of",
            "rank",
            "account_id",
            "current_tier",
            "suggested_tier",
            "direction",
            "band",
            "confidence",
            "value_at_stake",
            "status",
            "first_flagged",
            "reason_short",
            "reason"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert!(!rows.is_empty(), "the sample has exceptions");
    for (i, x) in rows.iter().enumerate() {
        assert_eq!(&x[0], "2026-10");
        assert_eq!(x[1].parse::<usize>().unwrap(), i + 1, "by rank");
        assert!(x[5] == *"upgrade" || x[5] == *"downgrade");
        assert!(
            ["strong", "likely", "needs review"].contains(&&x[6]),
            "a band: {x:?}"
        );
        // Rounded as a CRM field holds them.
        let c: f64 = x[7].parse().unwrap();
        assert!((0.0..=1.0).contains(&c));
        assert!(
            x[7].split('.').nth(1).is_none_or(|d| d.len() <= 3),
            "{}",
            &x[7]
        );
        assert!(
            x[8].split('.').nth(1).is_none_or(|d| d.len() <= 2),
            "{}",
            &x[8]
        );
        assert_eq!(&x[9], "new", "a first run: every flag is new");
        assert_eq!(&x[10], "2026-10", "first flagged this month");
        assert!(
            !x[11].is_empty() && x[11].chars().count() <= 255,
            "short reason: {}",
            &x[11]
        );
        assert!(!x[12].is_empty(), "a reason");
    }

    // The value feature's label, not "ARR", names the value at stake.
    let md = fx.read("out/2026-10/report.md");
    assert!(md.contains("Card spend at stake"), "{md}");
    let html = fx.read("out/2026-10/report.html");
    assert!(html.contains("Card spend at stake") && !html.contains("ARR at stake"));
}
