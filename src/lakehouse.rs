//! Segment history as a Delta Lake table: `<output>/segment_history/`.
//!
//! Every committed run also writes its assignments (one row per account:
//! segments, names, tiers, exception) into a [Delta Lake] table partitioned by
//! `as_of`, so Spark, Databricks, Trino, DuckDB (`delta_scan`), Polars
//! (`pl.read_delta`) and Python's `deltalake` read all months as one table,
//! with time travel over its versions.
//!
//! The table is written by this module directly — a Delta table is Parquet
//! files plus a log of JSON commits (protocol reader 1 / writer 2, the level
//! every reader supports) — rather than through delta-rs, whose Rust crate
//! brings arrow-rs, object_store, tokio and a second Parquet stack beside
//! Polars' for what is here one kind of commit (see the README for the measured
//! build cost). Each run's month is one commit:
//!
//! * the month's rows go to `as_of=<month>/part-<sha256>.parquet`, named by
//!   their content (written by Polars, with `u32` columns widened to `long`:
//!   Delta has no unsigned types; `as_of` lives in the partition path);
//! * the commit `remove`s that partition's previous files and `add`s the new
//!   one — a rerun of a month replaces its partition in one atomic step
//!   (readers see the old month or the new, never both);
//! * a rerun with the same rows finds the partition already holding exactly
//!   that file and commits nothing: re-running is idempotent;
//! * commits are created with put-if-absent (a hard link that fails when the
//!   version exists), fsynced, and the run holds the output folder's lock.
//!
//! [Delta Lake]: https://github.com/delta-io/delta/blob/master/PROTOCOL.md

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::month::Month;
use crate::rundir;

/// The table's folder under the output folder.
pub const TABLE: &str = "segment_history";
const PARTITION: &str = "as_of";

/// What [`record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new table version holding this month.
    Committed { version: u64 },
    /// The month's partition already held exactly these rows.
    Unchanged { version: u64 },
}

/// The live state of a table, from its log.
#[derive(Debug, Default)]
struct Snapshot {
    /// The latest version, if any commit exists.
    version: Option<u64>,
    schema: Option<String>,
    /// Live data files: path → partition value.
    files: BTreeMap<String, String>,
}

fn log_dir(table: &Path) -> PathBuf {
    table.join("_delta_log")
}

fn log_file(table: &Path, version: u64) -> PathBuf {
    log_dir(table).join(format!("{version:020}.json"))
}

/// Replay the log (JSON commits only; this writer makes no checkpoints).
fn snapshot(table: &Path) -> Result<Snapshot> {
    let dir = log_dir(table);
    let mut versions: Vec<u64> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json")?.parse().ok()
            })
            .collect(),
        Err(_) => return Ok(Snapshot::default()),
    };
    versions.sort_unstable();
    let mut snap = Snapshot::default();
    for v in versions {
        let path = log_file(table, v);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let action: Value = serde_json::from_str(line).map_err(|e| {
                Error::Usage(format!(
                    "{} is not a Delta commit ({e}); move the table away to start a new one",
                    path.display()
                ))
            })?;
            if let Some(m) = action.get("metaData") {
                snap.schema = m["schemaString"].as_str().map(str::to_string);
            }
            if let Some(a) = action.get("add") {
                if let Some(p) = a["path"].as_str() {
                    let part = a["partitionValues"][PARTITION]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    snap.files.insert(p.to_string(), part);
                }
            }
            if let Some(r) = action.get("remove") {
                if let Some(p) = r["path"].as_str() {
                    snap.files.remove(p);
                }
            }
        }
        snap.version = Some(v);
    }
    Ok(snap)
}

/// The Delta (Spark) type of a column, and the frame with `u32` widened.
fn delta_type(dt: &DataType) -> Option<(&'static str, Option<DataType>)> {
    Some(match dt {
        DataType::String => ("string", None),
        DataType::Float64 => ("double", None),
        DataType::Float32 => ("float", None),
        DataType::Int64 => ("long", None),
        DataType::Int32 => ("integer", None),
        DataType::UInt32 | DataType::UInt16 | DataType::UInt8 => ("long", Some(DataType::Int64)),
        DataType::Boolean => ("boolean", None),
        // A column with no value at all has no type of its own.
        DataType::Null => ("string", Some(DataType::String)),
        _ => return None,
    })
}

/// The rows as written to the table (unsigned widened) and the schema string.
fn table_frame(assignments: &DataFrame) -> Result<(DataFrame, String)> {
    let mut cols = Vec::new();
    let mut fields = Vec::new();
    for c in assignments.columns() {
        let (ty, cast) = delta_type(c.dtype()).ok_or_else(|| {
            Error::Internal(format!(
                "column {} of type {} has no Delta type",
                c.name(),
                c.dtype()
            ))
        })?;
        cols.push(match cast {
            Some(t) => c.cast(&t)?,
            None => c.clone(),
        });
        fields
            .push(json!({"name": c.name().as_str(), "type": ty, "nullable": true, "metadata": {}}));
    }
    fields.push(json!({"name": PARTITION, "type": "string", "nullable": true, "metadata": {}}));
    let schema = json!({"type": "struct", "fields": fields}).to_string();
    Ok((DataFrame::new_infer_height(cols)?, schema))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A month's rows encoded for the table: the Parquet bytes, their path in
/// the table (named by their content) and the table's schema. Made before
/// the month is committed, so the month's manifest can name the file that
/// should hold it (see [`reconcile`]).
pub struct Prepared {
    bytes: Vec<u8>,
    /// `as_of=<month>/part-<sha256>.parquet`.
    pub rel: String,
    schema: String,
    month: String,
}

/// Encode `assignments` as month `as_of`'s rows of the table.
pub fn prepare(as_of: Month, assignments: &DataFrame) -> Result<Prepared> {
    let month = as_of.to_string();
    let (mut df, schema) = table_frame(assignments)?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .with_statistics(StatisticsOptions::full())
        .finish(&mut df)?;
    let digest = format!("{:x}", Sha256::digest(&bytes));
    let rel = format!("{PARTITION}={month}/part-{}.parquet", &digest[..32]);
    Ok(Prepared {
        bytes,
        rel,
        schema,
        month,
    })
}

/// Record month `as_of`'s assignments in the table under `root` (one commit
/// replacing the month's partition), unless it already holds them.
pub fn record(root: &Path, as_of: Month, assignments: &DataFrame) -> Result<Recorded> {
    record_prepared(root, &prepare(as_of, assignments)?)
}

/// [`record`] of rows already encoded by [`prepare`]. The data file is
/// written under a temporary name and renamed once complete, then the
/// commit makes it part of the table.
pub fn record_prepared(root: &Path, prepared: &Prepared) -> Result<Recorded> {
    let table = root.join(TABLE);
    let Prepared {
        bytes,
        rel,
        schema,
        month,
    } = prepared;
    let snap = snapshot(&table)?;
    let current: Vec<&String> = snap
        .files
        .iter()
        .filter(|(_, p)| *p == month)
        .map(|(f, _)| f)
        .collect();
    if let Some(v) = snap.version {
        if current == [rel] && snap.schema.as_deref() == Some(schema.as_str()) {
            return Ok(Recorded::Unchanged { version: v });
        }
    }
    let data = table.join(rel);
    let parent = data.parent().expect("a partition folder");
    std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        data.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    rundir::write_file(&tmp, bytes)?;
    std::fs::rename(&tmp, &data).map_err(|e| Error::io("renaming", &tmp, e))?;
    rundir::sync_path(parent)?;
    let dir = log_dir(&table);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    clear_staged(&dir)?;
    let ts = now_ms();
    let version = snap.version.map_or(0, |v| v + 1);
    let added = (rel.as_str(), bytes.len());
    let actions = commit_actions(&table, &snap, schema, &current, added, month, ts);
    let text: String = actions.iter().map(|a| format!("{a}\n")).collect();
    put_if_absent(&dir, &table, version, &text)?;
    rundir::sync_path(&dir)?;
    Ok(Recorded::Committed { version })
}

/// What [`reconcile`] repaired.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Committed months the table lacked or held stale rows of, recorded now.
    pub recorded: Vec<String>,
    /// Files in the table's partitions that no commit refers to (a write cut
    /// short by a kill or a full disk), removed.
    pub removed: Vec<PathBuf>,
}

/// Bring the table in line with the committed months under `root`: a month
/// the table lacks, or whose partition does not hold the file its manifest
/// names (`segment_history_file`), is recorded from its assignments; files
/// no commit refers to are removed. Run at the start of every run, under the
/// output folder's lock, so a month committed by a run that died before its
/// table commit is in the table after the next run of any month.
pub fn reconcile(root: &Path) -> Result<Reconciled> {
    let table = root.join(TABLE);
    let mut done = Reconciled::default();
    let mut snap = snapshot(&table)?;
    for (month, dir) in rundir::committed_runs(root)? {
        let m = month.to_string();
        let live: Vec<&String> = snap
            .files
            .iter()
            .filter(|(_, p)| **p == m)
            .map(|(f, _)| f)
            .collect();
        let expected = rundir::read_manifest::<serde::de::IgnoredAny, serde::de::IgnoredAny>(&dir)
            .ok()
            .and_then(|man| man.segment_history_file);
        let fine = match &expected {
            Some(rel) => live == [rel],
            None => !live.is_empty(),
        };
        let assignments = dir.join(crate::schema::file::ASSIGNMENTS);
        if fine || !assignments.is_file() {
            continue;
        }
        let df = rundir::read_parquet(&assignments, None)?;
        record_prepared(root, &prepare(month, &df)?)?;
        done.recorded.push(m);
        snap = snapshot(&table)?;
    }
    done.removed = remove_unreferenced(&table)?;
    Ok(done)
}

/// Files under the table's partition folders that no commit ever added
/// (live or removed: removed files serve time travel), deleted.
fn remove_unreferenced(table: &Path) -> Result<Vec<PathBuf>> {
    let Ok(parts) = std::fs::read_dir(table) else {
        return Ok(Vec::new());
    };
    let referenced = all_added(table)?;
    let mut removed = Vec::new();
    for part in parts.flatten() {
        let name = part.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{PARTITION}=")) || !part.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(part.path())
            .map_err(|e| Error::io("listing", part.path(), e))?
            .flatten()
        {
            let rel = format!("{name}/{}", f.file_name().to_string_lossy());
            if !referenced.contains(&rel) {
                std::fs::remove_file(f.path()).map_err(|e| Error::io("removing", f.path(), e))?;
                removed.push(f.path());
            }
        }
    }
    Ok(removed)
}

/// Every data file any commit of the table added.
fn all_added(table: &Path) -> Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(log_dir(table)) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        let text =
            std::fs::read_to_string(e.path()).map_err(|x| Error::io("reading", e.path(), x))?;
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                if let Some(p) = v["add"]["path"].as_str() {
                    out.insert(p.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// Commits staged by a run that was killed (the output lock is ours).
fn clear_staged(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir)
        .map_err(|e| Error::io("listing", dir, e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }

    Ok(())
}

/// The actions of the commit that replaces month `month`'s files
/// (`current`) by `added` (its path and size): the protocol on a new table,
/// the schema when it changed, the removals, the addition and the commit's
/// information.
fn commit_actions(
    table: &Path,
    snap: &Snapshot,
    schema: &str,
    current: &[&String],
    (rel, size): (&str, usize),
    month: &str,
    ts: i64,
) -> Vec<Value> {
    let mut actions: Vec<Value> = Vec::new();
    if snap.version.is_none() {
        actions.push(json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}));
    }
    if snap.schema.as_deref() != Some(schema) {
        let id = format!("{:x}", Sha256::digest(format!("{}{ts}", table.display())));
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            &id[0..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..32]
        );
        actions.push(json!({"metaData": {
            "id": uuid,
            "name": TABLE,
            "description": "strata segment assignments, one partition per as-of month",
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema,
            "partitionColumns": [PARTITION],
            "configuration": {},
            "createdTime": ts,
        }}));
    }
    for f in current {
        actions.push(json!({"remove": {
            "path": f,
            "deletionTimestamp": ts,
            "dataChange": true,
            "extendedFileMetadata": true,
            "partitionValues": {PARTITION: month},
        }}));
    }
    actions.push(json!({"add": {
        "path": rel,
        "partitionValues": {PARTITION: month},
        "size": size,
        "modificationTime": ts,
        "dataChange": true,
    }}));
    actions.push(json!({"commitInfo": {
        "timestamp": ts,
        "operation": "WRITE",
        "operationParameters": {
            "mode": "Overwrite",
            "partitionBy": format!("[\"{PARTITION}\"]"),
            "predicate": format!("{PARTITION} = '{month}'"),
        },
        "engineInfo": format!("strata {}", crate::VERSION),
    }}));
    actions
}

/// Commit `text` as version `version`: staged, then hard-linked to its
/// name, which fails if another writer took that version (put-if-absent).
fn put_if_absent(dir: &Path, table: &Path, version: u64, text: &str) -> Result<()> {
    let tmp = dir.join(format!(".{version:020}.json.{}.tmp", std::process::id()));
    rundir::write_file(&tmp, text.as_bytes())?;
    let target = log_file(table, version);
    let linked = std::fs::hard_link(&tmp, &target);
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Usage(format!(
                "{} was written by another writer meanwhile; run this month again",
                target.display()
            ))
        } else {
            Error::io("committing", &target, e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(s: &str) -> Month {
        Month::parse(s).unwrap()
    }

    #[test]
    fn months_are_partitions_and_reruns_replace_or_keep_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = df!("account_id" => ["a", "b"], "kmeans_segment" => [1u32, 2]).unwrap();
        let b = df!("account_id" => ["a", "c"], "kmeans_segment" => [1u32, 3]).unwrap();
        assert_eq!(
            record(dir.path(), month("2026-10"), &a).unwrap(),
            Recorded::Committed { version: 0 }
        );
        assert_eq!(
            record(dir.path(), month("2026-11"), &b).unwrap(),
            Recorded::Committed { version: 1 }
        );
        // The same rows again: nothing to commit.
        assert_eq!(
            record(dir.path(), month("2026-10"), &a).unwrap(),
            Recorded::Unchanged { version: 1 }
        );
        // Other rows for a month: its partition is replaced, the other kept.
        assert_eq!(
            record(dir.path(), month("2026-10"), &b).unwrap(),
            Recorded::Committed { version: 2 }
        );
        let snap = snapshot(&dir.path().join(TABLE)).unwrap();
        assert_eq!(snap.version, Some(2));
        let parts: Vec<&String> = snap.files.values().collect();
        assert_eq!(parts, vec!["2026-10", "2026-11"]);
        let schema: Value = serde_json::from_str(snap.schema.as_deref().unwrap()).unwrap();
        assert_eq!(schema["fields"][1]["type"], "long", "u32 widened");
        assert_eq!(schema["fields"][2]["name"], "as_of");
        // The first commit declares the protocol and the partitioning.
        let first = std::fs::read_to_string(log_file(&dir.path().join(TABLE), 0)).unwrap();
        assert!(
            first.contains("\"minReaderVersion\":1")
                && first.contains("\"partitionColumns\":[\"as_of\"]")
        );
    }
}
