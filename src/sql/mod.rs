//! The feature stage as one SQL query for an existing engine: `strata sql
//! PIPELINE --dialect duckdb|spark` prints a query that computes, per
//! account, every feature's raw value — the raw columns of
//! `features.parquet` — where the data lives (Spark/Databricks, DuckDB), so
//! billions of event rows never have to be exported. `strata run
//! --features TABLE` then runs the rest of the pipeline on its output
//! ([`crate::ingest::from_table`]).
//!
//! The query follows ingestion step by step, one CTE each, so a data
//! engineer can review it against the pipeline file:
//!
//! 1. `src_<source>`: the file read with the engine's reader (every CSV
//!    column as text, then numbers cast as strata reads them and dates parsed
//!    with the format strata detects, [`crate::ingest::probe`]), the row number,
//!    and `months_since_<date>` for every date column;
//! 2. `one_<source>`: one row per id or `key` (the latest by `latest_by`,
//!    else the last in the file), lookups joined, the source's `filter`;
//! 3. `linked_<source>`: each row given its account (directly, or through
//!    its `via` parent's key), rows of unknown accounts dropped;
//! 4. `agg_<source>_<window>`: the source's features over each window, per
//!    account; accounts without rows get the feature's value over no rows
//!    (0 for sums and counts) as in strata;
//! 5. `step_<n>`: the row-level features in the order declared, each over the
//!    account table and the features before it;
//!    then the customers at the end of the month (`since`/`until`).
//!
//! What is not translated is refused with the feature (or source) and the
//! construct named: `per_account` account tables, a source without a file.

mod expr;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::{Feature, Format, Kind, Link, Pipeline, Source, Window};
use crate::error::{Error, Result};
use crate::ingest::Shape;
use crate::month::Month;
use crate::schema::ACCOUNT_ID;

pub use expr::{translate, Scope};

/// The engine the SQL is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    /// DuckDB 1.x.
    #[value(name = "duckdb")]
    DuckDb,
    /// Spark SQL 3.5+ / 4 (Databricks).
    Spark,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::DuckDb => "DuckDB",
            Dialect::Spark => "Spark SQL",
        }
    }
    /// A column name, quoted.
    pub fn quote(self, name: &str) -> String {
        match self {
            Dialect::DuckDb => format!("\"{}\"", name.replace('"', "\"\"")),
            Dialect::Spark => format!("`{}`", name.replace('`', "``")),
        }
    }
    /// A number literal as a double.
    pub fn double(self, n: &str) -> String {
        match self {
            Dialect::DuckDb => format!("CAST({n} AS DOUBLE)"),
            Dialect::Spark => format!("{n}D"),
        }
    }
    /// `first`/`last` of `a` by `order` (earliest/latest; nulls count).
    fn ordered(self, last: bool, a: &str, order: &[String]) -> String {
        match self {
            Dialect::DuckDb => format!(
                "{}({a} ORDER BY {})",
                if last { "LAST" } else { "FIRST" },
                order.join(", ")
            ),
            Dialect::Spark => format!(
                "{}({a}, STRUCT({}))",
                if last { "MAX_BY" } else { "MIN_BY" },
                order.join(", ")
            ),
        }
    }
    fn text_type(self) -> &'static str {
        match self {
            Dialect::DuckDb => "VARCHAR",
            Dialect::Spark => "STRING",
        }
    }
    fn string_literal(self, s: &str) -> String {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    }
    /// The rows of a file, as a FROM item (Spark CSV: a temporary view
    /// declared before the query, see [`compile`]).
    fn from_file(self, s: &Source) -> String {
        if let Some(t) = &s.table {
            return t.clone();
        }
        let path = absolute(&s.path);
        match (self, s.format) {
            (Dialect::DuckDb, Format::Csv) => format!(
                "read_csv({}, header = true, all_varchar = true, delim = {})",
                self.string_literal(&path),
                self.string_literal(&(s.separator as char).to_string())
            ),
            (Dialect::DuckDb, Format::Parquet) => {
                format!("read_parquet({})", self.string_literal(&path))
            }
            (Dialect::Spark, Format::Csv) => view_name(s),
            (Dialect::Spark, Format::Parquet) => format!("parquet.`{path}`"),
        }
    }
    /// A row number in file order.
    fn row_number(self) -> &'static str {
        match self {
            Dialect::DuckDb => "row_number() OVER ()",
            Dialect::Spark => "monotonically_increasing_id()",
        }
    }
    /// The month index (year × 12 + month) of a date expression.
    fn month_index(self, d: &str) -> String {
        format!("(year({d}) * 12 + month({d}))")
    }
    /// Text `v` read as a date with strptime format `fmt` (the date part of
    /// a value with a time, as strata reads it; a month-only format reads
    /// the month's first day).
    fn parse_date(self, v: &str, fmt: &str) -> String {
        let token = match self {
            Dialect::DuckDb => {
                format!("regexp_replace(trim({v}), '^(.{{6,}}?)[T ][0-9][^:]*:.*$', '\\1')")
            }
            Dialect::Spark => {
                format!("regexp_replace(trim({v}), '^(.{{6,}}?)[T ][0-9][^:]*:.*$', '$1')")
            }
        };
        let month_only = crate::ingest::dates::month_only(fmt);
        let (token, fmt) = if month_only {
            (format!("concat({token}, '-01')"), format!("{fmt}-%d"))
        } else {
            (token, fmt.to_string())
        };
        match self {
            Dialect::DuckDb => format!(
                "CAST(try_strptime({token}, {}) AS DATE)",
                self.string_literal(&fmt)
            ),
            Dialect::Spark => format!(
                "CAST(try_to_timestamp({token}, {}) AS DATE)",
                self.string_literal(&java_pattern(&fmt))
            ),
        }
    }
}

/// A strftime format as a Java DateTimeFormatter pattern (Spark).
fn java_pattern(fmt: &str) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        out.push_str(match chars.next() {
            Some('Y') => "yyyy",
            Some('y') => "yy",
            Some('m') => "MM",
            Some('d') => "dd",
            Some('b') => "MMM",
            Some('H') => "HH",
            Some('M') => "mm",
            Some('S') => "ss",
            _ => "",
        });
    }
    out
}

/// A source's path as strata resolves it (relative to the pipeline file),
/// made absolute so the query runs from any folder.
fn absolute(p: &std::path::Path) -> String {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn view_name(s: &Source) -> String {
    format!("strata_{}", ident(&s.name))
}

/// A source or feature name as part of a CTE name.
fn ident(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The internal column of feature `name` (so no feature clashes with a
/// column of the account table it is computed from).
fn fcol(name: &str) -> String {
    format!("f__{}", ident(name))
}

/// The query for `p` as of `as_of` in `dialect`, with `shapes` from
/// [`crate::ingest::probe`]. For Spark, CSV sources are first declared as
/// temporary views (header, every column as text), each statement ending
/// with `;`; the query is the last statement.
pub fn compile(
    p: &Pipeline,
    as_of: Month,
    shapes: &BTreeMap<String, Shape>,
    d: Dialect,
) -> Result<String> {
    let p = &p.for_month(as_of);
    let acc = p.account_source();
    if acc.per_account.is_some() {
        return Err(Error::Usage(format!(
            "sources.{}: `per_account` account tables are not translated to SQL yet; run strata on the export, or give the engine one row per account",
            acc.name
        )));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- strata {}: the features of pipeline `{}` ({}) as of {as_of}, in {}.\n-- One row per account: `{ACCOUNT_ID}` and every feature's raw value (the raw columns of features.parquet).\n-- Run it, write the result as Parquet (or a Delta table), then: strata run PIPELINE --as-of {as_of} --features <that table>",
        env!("CARGO_PKG_VERSION"),
        p.name,
        p.file.display(),
        d.name()
    );
    if d == Dialect::Spark {
        for s in p
            .sources
            .iter()
            .filter(|s| s.format == Format::Csv && s.table.is_none())
        {
            let _ = writeln!(
                out,
                "CREATE OR REPLACE TEMPORARY VIEW {} USING csv OPTIONS (path {}, header 'true', sep {}, inferSchema 'false');",
                view_name(s),
                d.string_literal(&absolute(&s.path)),
                d.string_literal(&(s.separator as char).to_string())
            );
        }
    }
    let acc_id = match &acc.link {
        Link::Accounts { id } => id.clone(),
        _ => unreachable!("the account source"),
    };
    let mut ctes: Vec<(String, String)> = Vec::new();
    let as_of_index = as_of.year as i64 * 12 + as_of.month as i64;
    read_sources(p, d, shapes, as_of_index, &mut ctes);
    one_row_each(p, d, &mut ctes)?;
    let linked = link_to_accounts(p, d, &acc_id, &mut ctes);
    let joins = aggregates(p, d, &linked, &mut ctes)?;
    let step = row_level(p, d, &acc_id, &joins, &mut ctes)?;
    finish(p, d, &acc_id, step, ctes, &mut out);
    Ok(out)
}

/// Step 1: each source read, typed, numbered, with its months-since columns.
fn read_sources(
    p: &Pipeline,
    d: Dialect,
    shapes: &BTreeMap<String, Shape>,
    as_of_index: i64,
    ctes: &mut Vec<(String, String)>,
) {
    let q = |n: &str| d.quote(n);
    for s in &p.sources {
        let shape = shapes.get(&s.name).cloned().unwrap_or_default();
        let mut cols: Vec<String> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let key_cols: Vec<&str> = link_columns(p, s);
        for c in &key_cols {
            if seen.insert(c.to_string()) {
                cols.push(format!("CAST({} AS {}) AS {}", q(c), d.text_type(), q(c)));
            }
        }
        for (c, fmt) in &shape.dates {
            if !seen.insert(c.clone()) {
                continue;
            }
            let parsed = match (fmt, &s.table) {
                (Some(f), None) => d.parse_date(&q(c), f),
                // A table's column may already be a date (or a timestamp):
                // the engine's cast first, the file's format for text.
                (Some(f), Some(_)) => format!(
                    "COALESCE(TRY_CAST({} AS DATE), {})",
                    q(c),
                    d.parse_date(&format!("CAST({} AS {})", q(c), d.text_type()), f)
                ),
                (None, _) => format!("CAST({} AS DATE)", q(c)),
            };
            cols.push(format!("{parsed} AS {}", q(c)));
        }
        for c in &shape.numeric {
            if seen.insert(c.clone()) {
                cols.push(format!("TRY_CAST({} AS DOUBLE) AS {}", q(c), q(c)));
            }
        }
        for c in needed_text(p, s, &shape) {
            if seen.insert(c.clone()) {
                cols.push(format!("CAST({} AS {}) AS {}", q(&c), d.text_type(), q(&c)));
            }
        }
        cols.push(format!("{} AS __row", d.row_number()));
        let mut body = format!(
            "  SELECT {}\n  FROM {}",
            cols.join(",\n         "),
            d.from_file(s)
        );
        // Months since each date: whole months to the as-of month.
        let ms: Vec<String> = shape
            .dates
            .keys()
            .map(|c| {
                format!(
                    "{as_of_index} - {} AS {}",
                    d.month_index(&q(c)),
                    q(&format!("months_since_{c}"))
                )
            })
            .collect();
        if !ms.is_empty() {
            body = format!(
                "  SELECT *, {}\n  FROM (\n{body}\n  ) AS typed",
                ms.join(", ")
            );
        }
        ctes.push((format!("src_{}", ident(&s.name)), body));
    }
}

/// Step 2: one row per id or key; lookups; the source's filter (lookups
/// first: their rows join onto the others).
fn one_row_each(p: &Pipeline, d: Dialect, ctes: &mut Vec<(String, String)>) -> Result<()> {
    let q = |n: &str| d.quote(n);
    let lookups_first: Vec<&Source> = p
        .sources
        .iter()
        .filter(|s| s.is_lookup())
        .chain(p.sources.iter().filter(|s| !s.is_lookup()))
        .collect();
    for s in lookups_first {
        let src = format!("src_{}", ident(&s.name));
        let key = match &s.link {
            Link::Accounts { id } => Some(id.clone()),
            Link::Lookup { .. } => s.key.clone(),
            _ => s.key.clone(),
        };
        let mut body = format!("  SELECT * FROM {src}");
        for l in &p.sources {
            if let Link::Lookup {
                target,
                on,
                columns,
            } = &l.link
            {
                if target == &s.name {
                    let lk = l.key.as_deref().unwrap_or_default();
                    let picked: Vec<String> =
                        columns.iter().map(|c| format!("lk.{}", q(c))).collect();
                    body = format!(
                        "  SELECT t.*, {}\n  FROM ({body}) AS t\n  LEFT JOIN one_{} AS lk ON t.{} = lk.{}",
                        picked.join(", "),
                        ident(&l.name),
                        q(on),
                        q(lk)
                    );
                }
            }
        }
        if let Some(f) = &s.filter_text {
            let scope = Scope {
                resolve: &|_| None,
                order: None,
                dialect: d,
            };
            let cond = translate(f, &scope)
                .map_err(|e| Error::Usage(format!("sources.{}.filter `{f}`: {e}", s.name)))?;
            body = format!("  SELECT * FROM ({body}) AS t\n  WHERE {cond}");
        }
        if let Some(k) = key {
            let mut order = Vec::new();
            if let Some(l) = &s.latest_by {
                order.push(format!("{} DESC NULLS LAST", q(l)));
            }
            order.push("__row DESC".to_string());
            body = format!(
                "  SELECT * FROM (\n    SELECT *, row_number() OVER (PARTITION BY {} ORDER BY {}) AS __keep\n    FROM ({body}) AS t\n  ) AS t WHERE __keep = 1",
                q(&k),
                order.join(", ")
            );
        }
        ctes.push((format!("one_{}", ident(&s.name)), body));
    }
    Ok(())
}

/// Step 3: each child row given its account, unknown accounts dropped; the
/// linked CTE of each source, by name.
fn link_to_accounts(
    p: &Pipeline,
    d: Dialect,
    acc_id: &str,
    ctes: &mut Vec<(String, String)>,
) -> BTreeMap<String, String> {
    let q = |n: &str| d.quote(n);
    let acc = p.account_source();
    let accounts = format!("one_{}", ident(&acc.name));
    let mut linked: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<&Source> = p
        .sources
        .iter()
        .filter(|s| !s.is_lookup() && s.name != acc.name)
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for s in pending {
            let one = format!("one_{}", ident(&s.name));
            let body = match &s.link {
                Link::Direct { account } => format!(
                    "  SELECT c.*, a.{} AS __account\n  FROM {one} AS c\n  JOIN {accounts} AS a ON c.{} = a.{}",
                    q(&acc_id),
                    q(account),
                    q(&acc_id)
                ),
                Link::Via { parent, column } => match linked.get(parent) {
                    Some(parent_cte) => {
                        let pk = p
                            .sources
                            .iter()
                            .find(|x| &x.name == parent)
                            .and_then(|x| x.key.clone())
                            .unwrap_or_default();
                        format!(
                            "  SELECT c.*, pa.__account\n  FROM {one} AS c\n  JOIN {parent_cte} AS pa ON c.{} = pa.{}",
                            q(column),
                            q(&pk)
                        )
                    }
                    None => {
                        rest.push(s);
                        continue;
                    }
                },
                _ => continue,
            };
            let name = format!("linked_{}", ident(&s.name));
            ctes.push((name.clone(), body));
            linked.insert(s.name.clone(), name);
        }
        if rest.len() == before {
            break;
        }
        pending = rest;
    }
    linked
}

/// Step 4: the aggregate features, one CTE per source and window; each
/// CTE's name with its features.
fn aggregates<'p>(
    p: &'p Pipeline,
    d: Dialect,
    linked: &BTreeMap<String, String>,
    ctes: &mut Vec<(String, String)>,
) -> Result<Vec<(String, Vec<&'p Feature>)>> {
    let q = |n: &str| d.quote(n);
    let acc = p.account_source();
    let mut windows: BTreeMap<(String, Option<Window>), Vec<&Feature>> = BTreeMap::new();
    for f in &p.features {
        if let Some(src) = &f.source {
            if src != &acc.name {
                windows.entry((src.clone(), f.window)).or_default().push(f);
            }
        }
    }
    let mut joins: Vec<(String, Vec<&Feature>)> = Vec::new();
    for ((src, window), feats) in &windows {
        let s = p
            .sources
            .iter()
            .find(|x| &x.name == src)
            .expect("validated");
        let table = linked
            .get(src)
            .ok_or_else(|| Error::Usage(format!("sources.{src} is not linked to accounts")))?;
        let order: Vec<String> = s
            .time
            .iter()
            .map(|t| q(t))
            .chain(["__row".to_string()])
            .collect();
        let mut exprs = Vec::new();
        for f in feats {
            let scope = Scope {
                resolve: &|_| None,
                order: Some(&order),
                dialect: d,
            };
            let sql = translate(&f.expr_text, &scope).map_err(|e| {
                Error::Usage(format!(
                    "feature `{}` (`{}`): {e}; compute it with strata's own ingestion, or write it with the translated functions",
                    f.name, f.expr_text
                ))
            })?;
            exprs.push(format!("    -- {}\n    {sql} AS {}", f.name, fcol(&f.name)));
        }
        let mut body = format!(
            "  SELECT __account,\n    COUNT(*) AS __rows,\n{}\n  FROM {table}",
            exprs.join(",\n")
        );
        if let Some(t) = &s.time {
            let ms = q(&format!("months_since_{t}"));
            match window {
                Some(w) => {
                    let _ = write!(
                        body,
                        "\n  WHERE {ms} BETWEEN {} AND {}",
                        w.offset,
                        w.offset + w.months - 1
                    );
                }
                None => {
                    let _ = write!(body, "\n  WHERE {ms} >= 0");
                }
            }
        }
        body.push_str("\n  GROUP BY __account");
        let name = match window {
            Some(w) => format!("agg_{}_{}m_{}", ident(src), w.months, w.offset),
            None => format!("agg_{}", ident(src)),
        };
        ctes.push((name.clone(), body));
        joins.push((name, feats.clone()));
    }
    Ok(joins)
}

/// Step 5: the account table with every aggregate, then the row-level
/// features in order, a CTE each; the number of the last.
fn row_level(
    p: &Pipeline,
    d: Dialect,
    acc_id: &str,
    joins: &[(String, Vec<&Feature>)],
    ctes: &mut Vec<(String, String)>,
) -> Result<usize> {
    let q = |n: &str| d.quote(n);
    let acc = p.account_source();
    let accounts = format!("one_{}", ident(&acc.name));
    let mut cols = vec!["a.*".to_string()];
    let mut from = format!("{accounts} AS a");
    for (i, (name, feats)) in joins.iter().enumerate() {
        let alias = format!("g{i}");
        for f in feats {
            let none = no_rows_value(f, d);
            cols.push(format!(
                "CASE WHEN {alias}.__rows IS NULL THEN {none} ELSE {alias}.{} END AS {}",
                fcol(&f.name),
                fcol(&f.name)
            ));
        }
        let _ = write!(
            from,
            "\n  LEFT JOIN {name} AS {alias} ON {alias}.__account = a.{}",
            q(&acc_id)
        );
    }
    ctes.push((
        "step_0".into(),
        format!("  SELECT {}\n  FROM {from}", cols.join(",\n    ")),
    ));
    let mut defined: Vec<&str> = p
        .features
        .iter()
        .filter(|f| f.source.as_deref().is_some_and(|s| s != acc.name))
        .map(|f| f.name.as_str())
        .collect();
    let mut step = 0;
    for f in p
        .features
        .iter()
        .filter(|f| f.source.is_none() || f.source.as_deref() == Some(acc.name.as_str()))
    {
        let known = defined.clone();
        let resolve = |n: &str| known.contains(&n).then(|| fcol(n));
        let scope = Scope {
            resolve: &resolve,
            order: None,
            dialect: d,
        };
        let sql = translate(&f.expr_text, &scope)
            .map_err(|e| Error::Usage(format!("feature `{}` (`{}`): {e}", f.name, f.expr_text)))?;
        ctes.push((
            format!("step_{}", step + 1),
            format!(
                "  SELECT *, {sql} AS {}  -- {}\n  FROM step_{step}",
                fcol(&f.name),
                f.name
            ),
        ));
        step += 1;
        defined.push(&f.name);
    }
    Ok(step)
}

/// The customers at the end of the month, one row each, features by name:
/// the CTEs and the final SELECT appended to `out`.
fn finish(
    p: &Pipeline,
    d: Dialect,
    acc_id: &str,
    step: usize,
    ctes: Vec<(String, String)>,
    out: &mut String,
) {
    let q = |n: &str| d.quote(n);
    let acc = p.account_source();
    let mut select = vec![format!("{} AS {}", q(&acc_id), q(ACCOUNT_ID))];
    for f in &p.features {
        let ty = match f.kind {
            Kind::Numeric => "DOUBLE".to_string(),
            Kind::Categorical => d.text_type().to_string(),
        };
        select.push(format!("CAST({} AS {ty}) AS {}", fcol(&f.name), q(&f.name)));
    }
    if let Some(crate::config::TierSource::Column(c)) = p.tiers.as_ref().map(|t| &t.source) {
        if !p.features.iter().any(|f| &f.name == c) {
            select.push(format!("CAST({} AS {}) AS {}", q(c), d.text_type(), q(c)));
        }
    }
    let mut wheres = Vec::new();
    if let Some(sn) = &acc.since {
        let m = q(&format!("months_since_{sn}"));
        wheres.push(format!("({m} IS NULL OR {m} >= 0)"));
    }
    if let Some(u) = &acc.until {
        let m = q(&format!("months_since_{u}"));
        wheres.push(format!("({m} IS NULL OR {m} < 0)"));
    }
    out.push_str("WITH\n");
    let n = ctes.len();
    for (i, (name, body)) in ctes.into_iter().enumerate() {
        let _ = writeln!(
            out,
            "{name} AS (\n{body}\n){}",
            if i + 1 < n { "," } else { "" }
        );
    }
    let _ = write!(
        out,
        "SELECT\n  {}\nFROM step_{step}{}\nORDER BY {}\n",
        select.join(",\n  "),
        if wheres.is_empty() {
            String::new()
        } else {
            format!("\nWHERE {}", wheres.join(" AND "))
        },
        q(ACCOUNT_ID)
    );
    if d == Dialect::Spark {
        out.push_str(";\n");
    }
}

/// The columns of `s` that join it (its id, account, link, key, latest_by
/// and the columns lookups match on): read as text.
fn link_columns<'a>(p: &'a Pipeline, s: &'a Source) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    match &s.link {
        Link::Accounts { id } => v.push(id),
        Link::Direct { account } => v.push(account),
        Link::Via { column, .. } => v.push(column),
        Link::Lookup { .. } => {}
    }
    if let Some(k) = &s.key {
        v.push(k);
    }
    for l in &p.sources {
        if let Link::Lookup { target, on, .. } = &l.link {
            if target == &s.name {
                v.push(on);
            }
        }
    }
    v
}

/// The columns strata reads from `s`'s file that are neither keys, dates
/// nor numbers: text, passed through.
fn needed_text(p: &Pipeline, s: &Source, shape: &Shape) -> Vec<String> {
    let keys = link_columns(p, s);
    shape
        .columns
        .iter()
        .filter(|c| {
            !shape.numeric.contains(*c)
                && !shape.dates.contains_key(*c)
                && !keys.contains(&c.as_str())
        })
        .cloned()
        .collect()
}

/// A feature's value for an account with no rows in its window, as SQL: the
/// value strata gives (0 for `sum(...)` and `count(*)`, see
/// `ingest::aggregate::over_no_rows`), else NULL.
fn no_rows_value(f: &Feature, d: Dialect) -> String {
    match crate::ingest::over_no_rows_value(f) {
        Some(v) => d.double(&format!("{v:?}")),
        None => "NULL".into(),
    }
}
