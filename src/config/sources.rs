//! `[sources.<name>]`: paths, formats, how each source reaches an account (`id`, `account`, `via` + `link`, `lookup`), and the account table's lifetime columns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::raw::*;
use super::*;

pub(super) fn validate(
    raw_sources: &BTreeMap<String, RawSource>,
    base: &Path,
    problems: &mut Problems,
) -> Vec<Source> {
    if raw_sources.is_empty() {
        problems.push("sources", "no sources declared; declare at least the account table, e.g. [sources.accounts] with path and id");
    }
    let sources: Vec<Source> = raw_sources
        .iter()
        .flat_map(|(name, s)| per_account(source(name, s, base, problems)))
        .collect();
    account_table(raw_sources, &sources, problems);
    let names: BTreeSet<&str> = raw_sources.keys().map(String::as_str).collect();
    via_parents(raw_sources, &sources, &names, problems);
    lookups(&sources, &names, problems);
    via_chains(&sources, problems);
    sources
}

/// One `[sources.<name>]` checked on its own.
fn source(sname: &str, s: &RawSource, base: &Path, problems: &mut Problems) -> Source {
    let key = |k: &str| format!("sources.{sname}.{k}");
    let path = resolve(base, &s.path);
    let templated = s.path.contains("{as_of}");
    if templated {
        // Checked at ingestion, once the month is known.
    } else if !path.exists() {
        problems.push(
            key("path"),
            format!(
                "file not found: {} (relative paths start from the pipeline file's folder {})",
                path.display(),
                resolve(base, ".").display()
            ),
        );
    } else if path.is_dir() {
        problems.push(
            key("path"),
            format!(
                "{} is a folder, not a file: point `path` at the CSV or Parquet file inside it",
                path.display()
            ),
        );
    }
    let format = format_of(sname, s, &path, problems);
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let separator = match s.separator.as_deref() {
        None if ext == "tsv" => b'\t',
        None => b',',
        Some("\\t") | Some("\t") => b'\t',
        Some(sep) if sep.len() == 1 => sep.as_bytes()[0],
        Some(sep) => {
            problems.push(
                key("separator"),
                format!("`{sep}` must be a single character such as \",\", \";\" or \"\\t\""),
            );
            b','
        }
    };
    let link = link_of(sname, s, problems);
    if s.link.is_some() && s.via.is_none() {
        problems.push(key("link"), "`link` only makes sense together with `via`");
    }
    if s.lookup.is_none() && (s.on.is_some() || !s.columns.is_empty()) {
        problems.push(
            key("on"),
            "`on` and `columns` only make sense together with `lookup`",
        );
    }
    let is_accounts = matches!(link, Link::Accounts { .. });
    if !is_accounts {
        for (k, v) in [("since", &s.since), ("until", &s.until)] {
            if v.is_some() {
                problems.push(key(k), format!("`{k}` belongs on the account table (the source with `id`): it says when an account was a customer"));
            }
        }
    }
    let per_account = s.per_account.as_deref().map(|v| {
        if !is_accounts {
            problems.push(key("per_account"), "`per_account` belongs on the account table (the source with `id`): it says that file has many rows per account");
        }
        choice(
            problems,
            &key("per_account"),
            Some(v),
            PerAccount::Latest,
            &[("latest", PerAccount::Latest), ("mode", PerAccount::Mode)],
        )
    });
    if is_accounts && s.time.is_some() && per_account.is_none() {
        problems.push(key("time"), "the account table has no `time`: windows are measured on the rows of other sources. To say when an account became (or stopped being) a customer, use `since` (and `until`); other dates go in `dates`");
    }
    let filter = s
        .filter
        .as_ref()
        .and_then(|f| parse_expr(problems, &key("filter"), f));
    if let Some(t) = &s.table {
        let ok = !t.is_empty()
            && t.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if !ok {
            problems.push(
                key("table"),
                format!("`{t}` is not a table name strata can write into SQL: give it as name, schema.name or catalog.schema.name (letters, digits, `_`)"),
            );
        }
    }
    Source {
        name: sname.to_string(),
        path,
        table: s.table.clone(),
        format,
        separator,
        link,
        key: s.key.clone(),
        latest_by: s.latest_by.clone(),
        time: s.time.clone(),
        dates: s.dates.clone(),
        date_format: s.date_format.clone(),
        filter_text: s.filter.clone(),
        filter,
        since: s.since.clone(),
        until: s.until.clone(),
        per_account,
    }
}

/// An account table with many rows per account (`per_account`) is two
/// sources: the account table (its distinct ids, one value per column per
/// account), named `<name> (accounts)`, and the rows themselves under the
/// declared name, linked by the id, for the features that aggregate them
/// (`source = "<name>"`). One declaration, as the README's order-level
/// recipe has it.
fn per_account(s: Source) -> Vec<Source> {
    let (Some(_), Link::Accounts { id }) = (s.per_account, &s.link) else {
        return vec![s];
    };
    let rows = Source {
        link: Link::Direct {
            account: id.clone(),
        },
        key: None,
        latest_by: None,
        since: None,
        until: None,
        per_account: None,
        ..s.clone()
    };
    // The rows' time column is a date of the account table too, and says
    // which row is the latest when `latest_by` is not set.
    let mut dates = s.dates.clone();
    if let Some(t) = &s.time {
        if !dates.contains(t) {
            dates.push(t.clone());
        }
    }
    let accounts = Source {
        name: format!("{} (accounts)", s.name),
        latest_by: s.latest_by.clone().or_else(|| s.time.clone()),
        time: None,
        dates,
        filter: None,
        filter_text: None,
        ..s
    };
    vec![accounts, rows]
}

/// The source's format: declared, else from the file's extension.
fn format_of(sname: &str, s: &RawSource, path: &Path, problems: &mut Problems) -> Format {
    let key = |k: &str| format!("sources.{sname}.{k}");
    let templated = s.path.contains("{as_of}");
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match s.format.as_deref().unwrap_or(ext.as_str()) {
        "csv" | "txt" | "tsv" => Format::Csv,
        "parquet" | "pq" => Format::Parquet,
        // A folder has no extension; that problem is reported above.
        _ if s.format.is_none() && !templated && path.is_dir() => Format::Csv,
        "" => {
            problems.push(
                key("path"),
                format!("`{}` has no file extension, so strata cannot tell whether it is CSV or Parquet: if it is a folder, point `path` at the file in it (e.g. \"{}/accounts.csv\"); if it is a file, set format = \"csv\" or \"parquet\"", s.path, s.path.trim_end_matches('/')),
            );
            Format::Csv
        }
        other => {
            problems.push(
                key("format"),
                format!("cannot tell the format of `{}` (`{other}`); set format = \"csv\" or \"parquet\"", s.path),
            );
            Format::Csv
        }
    }
}

/// How the source's rows reach an account: `id`, `account`, `via` + `link`
/// or `lookup` (exactly one).
fn link_of(sname: &str, s: &RawSource, problems: &mut Problems) -> Link {
    let key = |k: &str| format!("sources.{sname}.{k}");
    match (&s.id, &s.account, &s.via) {
        _ if s.lookup.is_some() => {
            if s.id.is_some() || s.account.is_some() || s.via.is_some() {
                problems.push(
                    sname,
                    "a `lookup` source is joined by its `key`: leave out `id`, `account` and `via`",
                );
            }
            if s.key.is_none() {
                problems.push(
                    key("key"),
                    "a `lookup` source needs `key`: its column that `on` matches (one row per key)",
                );
            }
            if s.on.is_none() {
                problems.push(key("on"), format!("a `lookup` source needs `on`: the column of source `{}` that matches this source's key", s.lookup.as_deref().unwrap_or("")));
            }
            if s.columns.is_empty() {
                problems.push(
                    key("columns"),
                    "list the columns this lookup provides, e.g. columns = [\"population\"]",
                );
            }
            Link::Lookup {
                target: s.lookup.clone().unwrap_or_default(),
                on: s.on.clone().unwrap_or_default(),
                columns: s.columns.clone(),
            }
        }
        (Some(id), None, None) => Link::Accounts { id: id.clone() },
        (None, Some(a), None) => Link::Direct { account: a.clone() },
        (None, None, Some(via)) => match &s.link {
            Some(l) => Link::Via {
                parent: via.clone(),
                column: l.clone(),
            },
            None => {
                problems.push(key("link"), format!("`via = \"{via}\"` needs `link`: the column of this source that matches the `key` of {via}"));
                Link::Direct {
                    account: String::new(),
                }
            }
        },
        (None, None, None) => {
            problems.push(
                sname,
                "says nothing about how its rows reach an account: set `id` (this is the account table), `account` (the column with the account id) or `via` + `link` (through another source)",
            );
            Link::Direct {
                account: String::new(),
            }
        }
        _ => {
            problems.push(sname, "set only one of `id`, `account` and `via`");
            Link::Direct {
                account: String::new(),
            }
        }
    }
}

/// Exactly one source is the account table.
fn account_table(
    raw_sources: &BTreeMap<String, RawSource>,
    sources: &[Source],
    problems: &mut Problems,
) {
    let account_sources: Vec<&Source> = sources
        .iter()
        .filter(|s| matches!(s.link, Link::Accounts { .. }))
        .collect();
    if account_sources.len() > 1 {
        let names: Vec<&str> = account_sources.iter().map(|s| s.name.as_str()).collect();
        problems.push(
            "sources",
            format!(
                "only one source may be the account table (have `id`); found {}",
                names.join(", ")
            ),
        );
    } else if account_sources.is_empty() && !raw_sources.is_empty() {
        problems.push(
            "sources",
            "no account table: give the source with one row per account `id = \"<its id column>\"`",
        );
    }
}

/// Each `via` names a source with a key.
fn via_parents(
    raw_sources: &BTreeMap<String, RawSource>,
    sources: &[Source],
    names: &BTreeSet<&str>,
    problems: &mut Problems,
) {
    for s in sources {
        if let Link::Via { parent, .. } = &s.link {
            match raw_sources.get(parent) {
                None => problems.push(
                    format!("sources.{}.via", s.name),
                    format!("no source named `{parent}`; declared: {}", names.iter().copied().collect::<Vec<_>>().join(", ")),
                ),
                Some(p) if p.key.is_none() && p.id.is_none() => problems.push(
                    format!("sources.{}.via", s.name),
                    format!("source `{parent}` has no `key`: if each `{}` row belongs to one `{parent}` row, set `key` on `{parent}` to the column `{}` links to; if `{}` is a table keyed by something many rows share (population by zip code), it is a lookup, not a `via`: lookup = \"{parent}\", key = \"<its zip column>\", on = \"<{parent}'s zip column>\", columns = [\"…\"] (README: `lookup`)", s.name, s.name, s.name),
                ),
                _ => {}
            }
        }
    }
}

/// Each lookup joins onto a source that is not a lookup, and no two provide
/// the same column; no `via` goes through a lookup.
fn lookups(sources: &[Source], names: &BTreeSet<&str>, problems: &mut Problems) {
    for s in sources {
        if let Link::Lookup {
            target, columns, ..
        } = &s.link
        {
            match sources.iter().find(|t| &t.name == target) {
                None => problems.push(
                    format!("sources.{}.lookup", s.name),
                    format!("no source named `{target}`; declared: {}", names.iter().copied().collect::<Vec<_>>().join(", ")),
                ),
                Some(t) if t.is_lookup() => problems.push(
                    format!("sources.{}.lookup", s.name),
                    format!("`{target}` is itself a lookup; a lookup joins onto the account table or a source linked to it"),
                ),
                Some(_) => {}
            }
            for c in columns {
                if let Some(other) = sources.iter().find(|o| {
                    o.name != s.name
                        && matches!(&o.link, Link::Lookup { target: t2, columns: c2, .. } if t2 == target && c2.contains(c))
                }) {
                    if s.name < other.name {
                        problems.push(
                            format!("sources.{}.columns", s.name),
                            format!("`{c}` is also provided to `{target}` by lookup `{}`", other.name),
                        );
                    }
                }
            }
        }
        if let Link::Via { parent, .. } = &s.link {
            if sources.iter().any(|p| &p.name == parent && p.is_lookup()) {
                problems.push(
                    format!("sources.{}.via", s.name),
                    format!("`{parent}` is a lookup; link `via` the source it is joined onto"),
                );
            }
        }
    }
}

/// A `via` chain must end at the account table (no cycles).
fn via_chains(sources: &[Source], problems: &mut Problems) {
    for s in sources {
        let mut seen = BTreeSet::new();
        let mut cur = s;
        while let Link::Via { parent, .. } = &cur.link {
            if !seen.insert(cur.name.clone()) {
                problems.push(
                    format!("sources.{}.via", s.name),
                    "the `via` chain loops back on itself",
                );
                break;
            }
            match sources.iter().find(|p| &p.name == parent) {
                Some(p) => cur = p,
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dir_with, problems, MINIMAL};

    #[test]
    fn via_must_name_a_keyed_source_and_not_loop() {
        let d = dir_with(&["accounts.csv", "a.csv", "b.csv"]);
        let text = MINIMAL.to_string()
            + r#"
    [sources.a]
    path = "a.csv"
    via = "b"
    link = "bid"
    key = "aid"
    [sources.b]
    path = "b.csv"
    via = "a"
    link = "aid"
    key = "bid"
    "#;
        let probs = problems(&text, &d);
        assert!(
            probs.iter().any(|p| p.message.contains("loops")),
            "{probs:?}"
        );
    }

    #[test]
    fn a_folder_as_path_is_one_problem_not_two() {
        let d = dir_with(&[]);
        std::fs::create_dir(d.path().join("accounts")).unwrap();
        let ps = problems(
            &MINIMAL.replace("path = \"accounts.csv\"", "path = \"accounts\""),
            &d,
        );
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert!(ps[0].message.contains("is a folder"), "{ps:?}");
    }
}
