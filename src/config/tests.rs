use super::*;
use crate::month::Month;
use expr::sql_outside_expressions;

pub(super) fn dir_with(files: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::write(d.path().join(f), "id\n1\n").unwrap();
    }
    d
}

pub(super) const MINIMAL: &str = r#"
[run]
as_of = "2026-10"
[sources.accounts]
path = "accounts.csv"
id = "id"
[[feature]]
name = "size"
expr = "employees"
"#;

pub(super) fn problems(text: &str, d: &tempfile::TempDir) -> Vec<ConfigProblem> {
    match parse(text, &d.path().join("p.toml"), d.path()) {
        Err(Error::Config(p)) => p.problems,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => Vec::new(),
    }
}

#[test]
fn minimal_pipeline_is_valid() {
    let d = dir_with(&["accounts.csv"]);
    let p = parse(MINIMAL, &d.path().join("p.toml"), d.path()).unwrap();
    assert_eq!(
        p.as_of,
        Some(Month {
            year: 2026,
            month: 10
        })
    );
    assert_eq!(p.account_source().name, "accounts");
    assert_eq!(p.features.len(), 1);
    assert_eq!(p.hash.len(), 64);
}

#[test]
fn unknown_keys_are_all_reported_with_suggestions() {
    let d = dir_with(&["accounts.csv"]);
    let text = MINIMAL.replace("id = \"id\"", "id = \"id\"\ntiem = \"x\"") + "\n[run2]\nx = 1\n";
    let probs = problems(&text, &d);
    let keys: Vec<&str> = probs.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"sources.accounts.tiem"), "{probs:?}");
    assert!(keys.contains(&"run2"), "{probs:?}");
    let tiem = probs
        .iter()
        .find(|p| p.key == "sources.accounts.tiem")
        .unwrap();
    assert!(
        tiem.message.contains("did you mean `time`"),
        "{}",
        tiem.message
    );
}

#[test]
fn unknown_keys_of_single_table_sections_get_suggestions_too() {
    let d = dir_with(&["accounts.csv"]);
    for (section, typo, meant) in [
        ("kmeans", "restrats", "restarts"),
        ("graph", "neighbours", "neighbors"),
        ("run", "sed", "seed"),
        ("stability", "run", "runs"),
        ("community", "resolutoin", "resolution"),
        ("quality", "max_orphan", "max_orphans"),
    ] {
        let text = if section == "run" {
            MINIMAL.replace("[run]\n", &format!("[run]\n{typo} = 1\n"))
        } else {
            format!("{MINIMAL}\n[{section}]\n{typo} = 1\n")
        };
        let probs = problems(&text, &d);
        let p = probs
            .iter()
            .find(|p| p.key == format!("{section}.{typo}"))
            .unwrap_or_else(|| panic!("{section}.{typo}: {probs:?}"));
        assert!(
            p.message.contains(&format!("did you mean `{meant}`?"))
                && p.message.contains("Allowed here:"),
            "{}",
            p.message
        );
    }
}

#[test]
fn many_problems_are_collected_at_once() {
    let d = dir_with(&[]);
    let text = r#"
[run]
as_of = "October"
[sources.accounts]
path = "nope.csv"
id = "id"
[sources.usage]
path = "usage.csv"
[[feature]]
name = "x"
expr = "sum(("
scale = "standard"
weight = -1
"#;
    let probs = problems(text, &d);
    let keys: Vec<&str> = probs.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "run.as_of",
        "sources.accounts.path",
        "sources.usage.path",
        "usage",
        "feature[0].expr",
        "feature[0].scale",
        "feature[0].weight",
    ] {
        assert!(keys.contains(&k), "missing {k} in {keys:?}");
    }
    let scale = probs.iter().find(|p| p.key == "feature[0].scale").unwrap();
    assert!(scale.message.contains("zscore, robust, minmax, none"));
}

#[test]
fn month_arithmetic() {
    let m = Month::parse("2026-01").unwrap();
    assert_eq!(m.add(-1).to_string(), "2025-12");
    assert_eq!(m.add(13).to_string(), "2027-02");
    assert_eq!(Month::from_index(m.index()), m);
    assert!(Month::parse("2026-13").is_none());
    assert!(Month::parse("26-01").is_none());
}

#[test]
fn relative_paths_are_cleaned() {
    assert_eq!(
        resolve(Path::new("pipelines"), "../data/a.csv"),
        Path::new("data/a.csv")
    );
    assert_eq!(
        resolve(Path::new("/x/pipelines"), "../../data/a.csv"),
        Path::new("/data/a.csv")
    );
    assert_eq!(
        resolve(Path::new(".."), "data/a.csv"),
        Path::new("../data/a.csv")
    );
    assert_eq!(
        resolve(Path::new("p"), "/abs/a.csv"),
        Path::new("/abs/a.csv")
    );
}

#[test]
fn subqueries_are_refused_before_polars_runs_them() {
    let d = dir_with(&["accounts.csv"]);
    let text = MINIMAL.replace(
        "expr = \"employees\"",
        "expr = \"employees IN (SELECT x FROM read_csv('/etc/passwd'))\"",
    );
    let ps = problems(&text, &d);
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert!(ps[0].message.contains("no subqueries"), "{ps:?}");
    // SELECT inside a string or a quoted name is data, and FROM alone is SQL syntax.
    assert_eq!(sql_outside_expressions("name = 'select'"), None);
    assert_eq!(sql_outside_expressions("\"select\" > 1"), None);
    assert_eq!(sql_outside_expressions("EXTRACT(YEAR FROM signup)"), None);
    assert_eq!(
        sql_outside_expressions("x in (Select 1)"),
        Some("Select".into())
    );
}
