//! The run directory's writers: each output file from the stages' typed results.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use polars_parquet::parquet::schema::types::ParquetType;
use polars_parquet::write::{CompressedPage, Encoding};
use rayon::prelude::*;
use serde::Serialize;

use crate::schema::{column, file, ComparisonFile};

use crate::cluster::Segmentation;
use crate::compare::{self, Comparison};
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::export;
use crate::features::FeatureMatrix;
use crate::history::History;
use crate::ingest::AccountFrame;
use crate::memory::trace;
use crate::month::Month;
use crate::quality::QualityReport;
use crate::rundir;

/// The byte-order mark Excel needs to read a CSV as UTF-8 (`excel_csv`).
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What every Parquet output carries as file metadata.
pub struct FileMeta {
    pub as_of: Month,
    pub pipeline_sha256: String,
}

impl FileMeta {
    fn pairs(&self) -> Vec<(String, String)> {
        vec![
            ("strata.as_of".into(), self.as_of.to_string()),
            (
                "strata.pipeline_sha256".into(),
                self.pipeline_sha256.clone(),
            ),
            ("strata.version".into(), crate::VERSION.into()),
        ]
    }
}

/// `assignments.parquet` (with its CRM-ready CSVs), `segments.parquet` and
/// the proposed rule's files. Returns the assignments, for the history
/// table.
pub(super) fn write_results(
    dir: &Path,
    p: &Pipeline,
    m: &FeatureMatrix,
    segs: &[Segmentation],
    cmp: &Comparison,
    decision: &crate::decide::Decision,
    history: &History,
    meta: &FileMeta,
) -> Result<DataFrame> {
    let t = std::time::Instant::now();
    // The ids, each method's columns and the tier columns, at once.
    let (cols, tiers) = rayon::join(
        || -> PolarsResult<Vec<Column>> {
            let mut cols = vec![Column::new(
                crate::schema::ACCOUNT_ID.into(),
                m.ids.as_slice(),
            )];
            let per_method: Vec<[Column; 3]> = segs
                .par_iter()
                .map(|s| segment_columns(s, cmp, history, m.ids.len()))
                .collect::<PolarsResult<_>>()?;
            cols.extend(per_method.into_iter().flatten());
            Ok(cols)
        },
        || {
            cmp.tiers
                .as_ref()
                .map(|t| tier_columns(t, cmp, decision, history, &meta.as_of.to_string()))
                .transpose()
        },
    );
    let mut cols = cols?;
    cols.extend(tiers?.into_iter().flatten());
    let df = DataFrame::new_infer_height(cols)?;
    trace("assignments' columns", t);
    // assignments.parquet beside the CSV files: each leaves a core idle
    // while it writes what it has encoded, and the other fills it.
    let mut parquet = df.clone();
    let (parquet, csv) = rayon::join(
        || {
            let t = std::time::Instant::now();
            write_parquet(&dir.join(file::ASSIGNMENTS), &mut parquet, meta)?;
            trace("assignments.parquet", t);
            Ok(())
        },
        || crm_files(dir, p, &df, segs, cmp.tiers.is_some(), history, meta),
    );
    parquet.and(csv)?;
    if let (Some(rule), Some(t)) = (decision.rule.as_ref().filter(|r| r.useful), &p.tiers) {
        let as_of = meta.as_of.to_string();
        rundir::write_file(
            &dir.join(file::TIER_RULES_TOML),
            crate::decide::propose::toml_section(rule, p, t, &as_of).as_bytes(),
        )?;
        rundir::write_file(
            &dir.join(file::TIER_RULES_SQL),
            crate::decide::propose::sql(rule, p, &as_of).as_bytes(),
        )?;
    }
    let mut sdf = DataFrame::new_infer_height(segment_table(segs, cmp))?;
    write_parquet(&dir.join(file::SEGMENTS), &mut sdf, meta)?;
    Ok(df)
}

/// The assignments for the CRM: exceptions.csv, assignments.csv and (from
/// the second month) resolved.csv, each saying which month it is (the
/// Parquet file says so in its metadata), with a byte-order mark for Excel
/// when the pipeline asks for one.
fn crm_files(
    dir: &Path,
    p: &Pipeline,
    df: &DataFrame,
    segs: &[Segmentation],
    tiers: bool,
    history: &History,
    meta: &FileMeta,
) -> Result<()> {
    let mut crm = df.clone();
    let as_of = meta.as_of.to_string();
    crm.with_column(StringChunked::full("as_of".into(), &as_of, crm.height()).into_column())?;
    let methods: Vec<&str> = segs.iter().map(|s| s.method.as_ref()).collect();
    let bom = |bytes: Vec<u8>| -> Vec<u8> {
        if p.excel_csv {
            [BOM, &bytes].concat()
        } else {
            bytes
        }
    };
    let t = std::time::Instant::now();
    rundir::write_file(
        &dir.join(file::EXCEPTIONS_CSV),
        &bom(export::exceptions_csv(&crm, &methods)?),
    )?;
    trace("exceptions.csv", t);
    let t = std::time::Instant::now();
    rundir::write_with(&dir.join(file::ASSIGNMENTS_CSV), |w| {
        if p.excel_csv {
            w.write_all(BOM)
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        export::assignments_csv(&crm, &methods, w)
    })?;
    trace("assignments.csv", t);
    if history.previous_as_of.is_some() && tiers {
        rundir::write_file(
            &dir.join(file::RESOLVED_CSV),
            &bom(export::resolved_csv(&crm, &as_of, history)?),
        )?;
    }
    Ok(())
}

/// `comparison.json`. It calls neither Polars nor rayon (serde's encoder is
/// one thread), so the run writes it on a thread of its own beside the
/// other files.
pub(super) fn write_comparison(
    dir: &Path,
    p: &Pipeline,
    segs: &[Segmentation],
    cmp: &Comparison,
    decision: &crate::decide::Decision,
    history: &History,
    as_of: Month,
) -> Result<()> {
    let t = std::time::Instant::now();
    write_json(
        &dir.join(file::COMPARISON),
        &ComparisonFile {
            as_of: as_of.to_string(),
            config: &p.cluster,
            segmentations: segs,
            comparison: cmp,
            history,
            decision,
        },
    )?;
    trace("comparison.json", t);
    Ok(())
}

/// A method's columns of `assignments.parquet`: each account's segment ID,
/// its name, and last month's segment ID.
fn segment_columns(
    s: &Segmentation,
    cmp: &Comparison,
    history: &History,
    n: usize,
) -> PolarsResult<[Column; 3]> {
    let labels: Vec<u32> = s.labels.iter().map(|&l| s.ids[l]).collect();
    let ids = Column::new(column::segment(&s.method).into(), labels);
    // Names looked up once per segment, not once per account.
    let segment_names: Vec<&str> = (0..s.k())
        .map(|l| cmp.profile(&s.method, l).map_or("", |pr| pr.name.as_str()))
        .collect();
    let names = named(
        &column::name(&s.method),
        &segment_names,
        s.labels.iter().map(|&l| Some(l)),
    )?;
    let prev: Vec<Option<u32>> = history
        .previous_segment
        .get(s.method.as_ref())
        .cloned()
        .unwrap_or_else(|| vec![None; n]);
    let prev = Column::new(column::previous_segment(&s.method).into(), prev);
    Ok([ids, names, prev])
}

/// The tier columns of `assignments.parquet`: current and suggested tier,
/// the exception with its rank, confidence, value at stake and reason, and
/// last month's suggestion and exception.
fn tier_columns(
    t: &compare::CurrentTiers,
    cmp: &Comparison,
    decision: &crate::decide::Decision,
    history: &History,
    as_of: &str,
) -> PolarsResult<Vec<Column>> {
    let n = t.labels.len();
    let mut cols = Vec::new();
    let mut tier_names: Vec<&str> = t.names.iter().map(String::as_str).collect();
    let current = named(column::CURRENT_TIER, &tier_names, t.labels.iter().copied())?;
    // The tier each flag points to, held-back flags included (their band
    // says so); the staffing and the rule count only the suggested moves.
    let mut suggested: Vec<Option<usize>> = cmp.suggested.clone();
    for e in &cmp.exceptions {
        let at = match tier_names.iter().position(|n| *n == e.suggested_tier) {
            Some(at) => at,
            None => {
                tier_names.push(&e.suggested_tier);
                tier_names.len() - 1
            }
        };
        suggested[e.row] = Some(at);
    }
    let suggested = named(column::SUGGESTED_TIER, &tier_names, suggested.into_iter())?;
    let mut band: Vec<Option<&str>> = vec![None; n];
    let mut short: Vec<Option<String>> = vec![None; n];
    let mut kind: Vec<Option<&str>> = vec![None; n];
    let mut conf: Vec<Option<f64>> = vec![None; n];
    let mut stake: Vec<Option<f64>> = vec![None; n];
    let mut reason: Vec<Option<String>> = vec![None; n];
    let mut rank: Vec<Option<u32>> = vec![None; n];
    // The reasons' text, exceptions in parallel.
    let texts: Vec<(String, String)> = cmp
        .exceptions
        .par_iter()
        .map(|e| {
            let full = e.reason_text();
            let brief = crate::export::short_reason(e, &full);
            (full, brief)
        })
        .collect();
    for (r, (e, (full, brief))) in cmp.exceptions.iter().zip(texts).enumerate() {
        kind[e.row] = Some(match e.kind {
            compare::ExceptionKind::Upgrade => "upgrade",
            compare::ExceptionKind::Downgrade => "downgrade",
        });
        conf[e.row] = Some(e.confidence);
        band[e.row] = Some(e.band.word());
        stake[e.row] = Some(e.value_at_stake);
        reason[e.row] = Some(full);
        short[e.row] = Some(brief);
        rank[e.row] = Some(r as u32 + 1);
    }
    cols.push(current);
    cols.push(suggested);
    if let Some(rule) = decision.rule.as_ref().filter(|r| r.useful) {
        cols.push(named(
            column::RULE_TIER,
            &tier_names,
            rule.tiers.iter().copied(),
        )?);
    }
    cols.push(Column::new(column::EXCEPTION.into(), kind.clone()));
    cols.push(Column::new(column::EXCEPTION_RANK.into(), rank));
    cols.push(Column::new("band".into(), band));
    cols.push(Column::new("confidence".into(), conf));
    cols.push(Column::new("value_at_stake".into(), stake));
    // New this month, or flagged last month too.
    let prev = &history.previous_exception;
    let status: Vec<Option<&str>> = kind
        .iter()
        .enumerate()
        .map(|(i, k)| {
            k.map(|_| match prev.get(i) {
                Some(Some(_)) => "still flagged",
                _ => "new",
            })
        })
        .collect();
    cols.push(Column::new("status".into(), status));
    // The month each flag was first raised: last month's for a flag that
    // continues, this month for a new one.
    let first: Vec<Option<String>> = kind
        .iter()
        .enumerate()
        .map(|(i, k)| {
            k.map(|_| match history.previous_first_flagged.get(i) {
                Some(Some(m)) => m.clone(),
                _ => as_of.to_string(),
            })
        })
        .collect();
    cols.push(Column::new("first_flagged".into(), first));
    cols.push(Column::new("reason_short".into(), short));
    cols.push(Column::new("reason".into(), reason));
    // Last month's, or (a first month) no values: a null column, not a
    // vector of n Nones turned into one.
    let or_none = |name: &str, v: &Vec<Option<String>>| {
        if v.len() == n {
            Column::new(name.into(), v)
        } else {
            Column::full_null(name.into(), n, &DataType::String)
        }
    };
    cols.push(or_none(
        "previous_suggested_tier",
        &history.previous_suggested_tier,
    ));
    cols.push(or_none("previous_exception", &history.previous_exception));
    Ok(cols)
}

/// A text column of `names[label]` per row (none where the label is none):
/// the names are stored once and each row points at its name, instead of a
/// copy of the text per account (at 10M accounts, a segment's name column
/// was 10M copies of 40–80 bytes).
fn named(
    column: &str,
    names: &[&str],
    labels: impl Iterator<Item = Option<usize>>,
) -> PolarsResult<Column> {
    let dictionary = StringChunked::from_slice(column.into(), names);
    let at: IdxCa = labels.map(|l| l.map(|l| l as IdxSize)).collect();
    Ok(dictionary.take(&at)?.into_column())
}

/// `segments.parquet`'s columns: one row per segment per method.
fn segment_table(segs: &[Segmentation], cmp: &Comparison) -> Vec<Column> {
    let pr = &cmp.profiles;
    let mut seg_cols = vec![
        Column::new(
            column::METHOD.into(),
            pr.iter().map(|x| x.method.as_ref()).collect::<Vec<_>>(),
        ),
        Column::new(
            column::SEGMENT.into(),
            pr.iter().map(|x| x.id).collect::<Vec<_>>(),
        ),
        Column::new(
            column::NAME.into(),
            pr.iter().map(|x| x.name.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "size".into(),
            pr.iter().map(|x| x.size as u64).collect::<Vec<_>>(),
        ),
        Column::new(
            "share_accounts".into(),
            pr.iter().map(|x| x.share_accounts).collect::<Vec<_>>(),
        ),
        Column::new(
            "share_value".into(),
            pr.iter().map(|x| x.share_value).collect::<Vec<_>>(),
        ),
    ];
    if cmp.tiers.is_some() {
        let tier_of = |x: &compare::profile::Profile| {
            cmp.methods
                .iter()
                .find(|mc| mc.method == x.method)
                .and_then(|mc| mc.mapping[x.segment].tier.clone())
        };
        seg_cols.push(Column::new(
            "mapped_tier".into(),
            pr.iter().map(tier_of).collect::<Vec<_>>(),
        ));
    }
    let stab = |x: &compare::profile::Profile| {
        segs.iter()
            .find(|s| s.method == x.method)
            .and_then(|s| s.stability.as_ref())
            .and_then(|st| st.segment_jaccard.get(x.segment).copied().flatten())
    };
    seg_cols.push(Column::new(
        "stability_jaccard".into(),
        pr.iter().map(stab).collect::<Vec<_>>(),
    ));
    let top: Vec<String> = pr
        .iter()
        .map(|x| {
            x.distinguishing
                .iter()
                .take(5)
                .map(|d| format!("{} ({:+.2})", d.column, d.effect))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    seg_cols.push(Column::new("distinguishing".into(), top));
    if let Some(first) = pr.first() {
        for (j, (feature, _)) in first.medians.iter().enumerate() {
            seg_cols.push(Column::new(
                format!("{}{feature}", column::MEDIAN_PREFIX).into(),
                to_column_scale(&pr.iter().map(|x| x.medians[j].1).collect::<Vec<_>>()),
            ));
        }
    }
    seg_cols
}

/// A column of medians to 12 significant digits of the column's largest
/// value: far below any business precision, and what makes segments.parquet
/// the same file whether the features came from strata's ingestion or from
/// an engine's SQL (which sums in another order, so a median can differ in
/// its 16th digit, or be 5e-18 where strata has 0).
fn to_column_scale(values: &[f64]) -> Vec<f64> {
    let scale = values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |a, v| a.max(v.abs()));
    if scale == 0.0 {
        return values.to_vec();
    }
    let digits = 11 - scale.log10().floor() as i32;
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                v
            } else if digits >= 0 {
                let p = 10f64.powi(digits.min(22));
                (v * p).round() / p
            } else {
                let p = 10f64.powi((-digits).min(22));
                (v / p).round() * p
            }
        })
        .collect()
}

#[cfg(test)]
mod scale_tests {
    #[test]
    fn medians_keep_twelve_digits_of_their_column() {
        let a = super::to_column_scale(&[0.0, 0.8333333333333333, 1.3333333333333333]);
        let b = super::to_column_scale(&[5.3e-18, 0.8333333333333334, 1.3333333333333333]);
        assert_eq!(a, b);
        assert_eq!(a[1], 0.83333333333);
        assert_eq!(
            super::to_column_scale(&[241_000.123456789, 12.5]),
            [241_000.123457, 12.5]
        );
    }
}

/// `quality.json` and `features.parquet`. The run writes them beside the
/// clustering when it has more than one thread (see `run::run`): Leiden's
/// local moves keep one core and leave the other idle for most of the
/// clustering at 1M accounts and more.
pub(super) fn write_outputs(
    dir: &Path,
    frame: impl std::borrow::Borrow<AccountFrame>,
    m: &FeatureMatrix,
    report: &QualityReport,
    meta: &FileMeta,
    threads: Threads,
) -> Result<()> {
    write_json(&dir.join(file::QUALITY), report)?;
    let t = std::time::Instant::now();
    let path = dir.join(file::FEATURES);
    let mut f = File::create(&path).map_err(|e| Error::io("creating", &path, e))?;
    encode_features(&mut f, frame, m, meta, threads)
        .map_err(|e| Error::io("writing", &path, io_error(e, &path)))?;
    sync(&f, &path)?;
    trace("features.parquet", t);
    Ok(())
}

/// What reading the account frame back from features.parquet (its first
/// columns, see [`write_outputs`]) needs: the frame's column names and
/// types, and which columns Polars knew to be sorted.
pub(super) struct FrameLayout {
    columns: Vec<(PlSmallStr, DataType, polars::series::IsSorted)>,
}

impl FrameLayout {
    pub(super) fn of(frame: &AccountFrame) -> Self {
        FrameLayout {
            columns: frame
                .df
                .columns()
                .iter()
                .map(|c| (c.name().clone(), c.dtype().clone(), c.is_sorted_flag()))
                .collect(),
        }
    }

    /// The account frame as [`write_outputs`] wrote it to `path`: the same
    /// columns, values, types and sorted flags, each column in one chunk.
    pub(super) fn read(&self, path: &Path, as_of: Month) -> Result<AccountFrame> {
        let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let df = ParquetReader::new(f)
            .with_projection(Some((0..self.columns.len()).collect()))
            .set_rechunk(true)
            .finish()
            .map_err(|e| Error::io("reading", path, io_error(e, path)))?;
        let height = df.height();
        let mut columns = df.into_columns();
        let same = columns.len() == self.columns.len()
            && columns
                .iter()
                .zip(&self.columns)
                .all(|(c, (name, dtype, _))| c.name() == name && c.dtype() == dtype);
        if !same {
            return Err(Error::Internal(format!(
                "{} does not begin with the account frame's columns",
                path.display()
            )));
        }
        for (c, (_, _, sorted)) in columns.iter_mut().zip(&self.columns) {
            c.set_sorted_flag(*sorted);
        }
        Ok(AccountFrame {
            df: DataFrame::new(height, columns)?,
            as_of,
        })
    }
}

/// Whether a file's columns are encoded on all threads or on the calling
/// thread only (a file written beside other work, which should take only
/// the cores that work leaves idle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Threads {
    All,
    Calling,
}

/// The calling thread's scheduling priority lowered as far as it goes
/// (nice 19; on Linux a thread's own), so that the file it writes takes
/// the time the other threads leave idle and next to none of theirs.
pub(super) fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority reads its three integer arguments only; who = 0
    // is the calling thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

/// `features.parquet`: the account frame's columns and the matrix's
/// (`x__` + name), one row group at a time, so the matrix's columns are
/// never all copied out at once (2.0 GB at 10M accounts). The same file,
/// byte for byte, as [`crate::features::to_frame`] written by [`write_parquet`]:
/// the row groups are cut where Polars cuts that frame (see
/// [`row_groups`]).
///
/// The frame's columns of every row group are encoded first, and the
/// frame is dropped then when it was given by value (the writer beside the
/// clustering owns it): it goes long before the file is done, so the
/// clustering does not run beside it while the writer, at the lowest
/// priority, waits for idle time (1.8 GB at 10M). Its pages wait,
/// compressed and cut to their length ([`fit`]), for their row group's
/// matrix columns. With the frame lent (one thread, in the write stage)
/// those pages are held beside it (44 of the 84 MB file at 1M).
fn encode_features(
    f: &mut File,
    frame: impl std::borrow::Borrow<AccountFrame>,
    m: &FeatureMatrix,
    meta: &FileMeta,
    threads: Threads,
) -> PolarsResult<()> {
    let names: Vec<PlSmallStr> = m
        .columns
        .iter()
        .map(|c| format!("x__{}", c.name).into())
        .collect();
    let df = &frame.borrow().df;
    let mut like = df.clear();
    for n in &names {
        like.with_column(Column::new(n.clone(), Vec::<f64>::new()))?;
    }
    let mut out = RowGroups::new(f, &like, meta, threads)?;
    let width = df.width();
    let groups = row_groups(df.height())?;
    let t = std::time::Instant::now();
    // The frame's columns (views of it, copied only where a row group spans
    // two of its chunks), every row group's, encoded and compressed.
    let framed: Vec<Vec<ColumnPages>> = groups
        .iter()
        .map(|&(offset, len)| {
            let arrays: Vec<ArrayRef> = df
                .slice(offset as i64, len)
                .columns()
                .iter()
                .map(|c| {
                    let s = c.as_materialized_series().rechunk();
                    s.to_arrow(0, CompatLevel::newest())
                })
                .collect();
            out.encode(0, &arrays)
        })
        .collect::<PolarsResult<_>>()?;
    drop(frame);
    trace("features.parquet: the account frame encoded and dropped", t);
    for (&(offset, len), mut pages) in groups.iter().zip(framed) {
        // The matrix's columns, a few at a time: each few copied out of the
        // rows in one pass, encoded and dropped, so a row group's values are
        // never all held at once.
        for first in (0..names.len()).step_by(MATRIX_COLUMNS_AT_ONCE) {
            let last = (first + MATRIX_COLUMNS_AT_ONCE).min(names.len());
            let block = m.x.slice(ndarray::s![offset..offset + len, first..last]);
            let mut x: Vec<Vec<f64>> = (first..last).map(|_| Vec::with_capacity(len)).collect();
            for row in block.outer_iter() {
                for (c, v) in x.iter_mut().zip(row.iter()) {
                    c.push(*v);
                }
            }
            let arrays: Vec<ArrayRef> = names[first..last]
                .iter()
                .zip(x)
                .map(|(n, v)| Series::new(n.clone(), v).to_arrow(0, CompatLevel::newest()))
                .collect();
            pages.extend(out.encode(width + first, &arrays)?);
        }
        out.write_pages(len, pages)?;
    }
    out.finish()
}

/// How many of the matrix's columns [`encode_features`] copies out of a row
/// group's rows in one pass.
const MATRIX_COLUMNS_AT_ONCE: usize = 8;

/// The (offset, length) of each row group Polars writes for a frame of `n`
/// rows in one chunk (as `to_frame`'s is: its matrix columns are one chunk
/// each, so Polars aligns the others to them): `chunk_df_for_writing`'s own
/// cut, asked of a one-byte column.
fn row_groups(n: usize) -> PolarsResult<Vec<(usize, usize)>> {
    let mut probe = DataFrame::new(n, vec![Column::new("r".into(), vec![false; n])])?;
    let chunked = polars::frame::chunk_df_for_writing(&mut probe, ROW_GROUP)?;
    let mut offset = 0;
    Ok(chunked
        .column("r")?
        .as_materialized_series()
        .chunk_lengths()
        .map(|len| {
            offset += len;
            (offset - len, len)
        })
        .collect())
}

/// The row group size `ParquetWriter` uses by default (512² rows).
const ROW_GROUP: usize = 512 * 512;

/// Write a JSON file (pretty, newline-terminated, fsynced).
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    // Streamed to the file: comparison.json is hundreds of MB at 10M accounts.
    rundir::write_with(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(|e| Error::Internal(e.to_string()))?;
        w.write_all(b"\n")
            .map_err(|e| Error::Internal(e.to_string()))
    })
}

/// Write a Parquet file carrying the run's metadata, fsynced.
pub fn write_parquet(path: &Path, df: &mut DataFrame, meta: &FileMeta) -> Result<()> {
    let mut f = File::create(path).map_err(|e| Error::io("creating", path, e))?;
    encode_parquet(&mut f, df, meta).map_err(|e| Error::io("writing", path, io_error(e, path)))?;
    sync(&f, path)
}

fn sync(f: &File, path: &Path) -> Result<()> {
    let t = std::time::Instant::now();
    f.sync_all().map_err(|e| Error::io("syncing", path, e))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    trace(&format!("fsync of {name}"), t);
    Ok(())
}

/// The file `ParquetWriter::finish` writes (zstd, full statistics, row
/// groups of 512² rows), byte for byte.
fn encode_parquet(f: &mut File, df: &mut DataFrame, meta: &FileMeta) -> PolarsResult<()> {
    let chunked = polars::frame::chunk_df_for_writing(df, ROW_GROUP)?;
    let mut out = RowGroups::new(f, &chunked, meta, Threads::All)?;
    for batch in chunked.iter_chunks(CompatLevel::newest(), false) {
        out.write(batch.len(), batch.columns())?;
    }
    out.finish()
}

/// A column's compressed pages, one list per Parquet leaf.
type ColumnPages = Vec<Vec<CompressedPage>>;

/// A Parquet file written one row group at a time, as `ParquetWriter`
/// writes it, with each row group's columns encoded and compressed on all
/// threads (or on the calling one, see [`Threads`]). Polars 0.55 encodes
/// them in parallel but compresses every page on the writing thread, which
/// made zstd two thirds of writing features.parquet.
struct RowGroups<'f> {
    batched: polars::io::parquet::write::BatchedWriter<&'f mut File>,
    fields: Vec<ParquetType>,
    encodings: Vec<Vec<Encoding>>,
    options: polars_parquet::write::WriteOptions,
    threads: Threads,
}

impl<'f> RowGroups<'f> {
    /// A writer for frames of `like`'s schema.
    fn new(
        f: &'f mut File,
        like: &DataFrame,
        meta: &FileMeta,
        threads: Threads,
    ) -> PolarsResult<Self> {
        use polars_parquet::write::{CompressionOptions, Version, WriteOptions};
        let statistics = StatisticsOptions::full();
        let compression = ParquetCompression::default();
        let options = WriteOptions {
            statistics,
            version: Version::V1,
            compression: CompressionOptions::from(compression),
            data_page_size: None,
        };
        let mut batched = ParquetWriter::new(f)
            .with_statistics(statistics)
            .with_compression(compression)
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(meta.pairs())))
            .batched(like.schema())?;
        let fields = batched.parquet_schema().fields().to_vec();
        let encodings = polars::io::parquet::write::get_encodings(
            &like.schema().to_arrow(CompatLevel::newest()),
        )
        .to_vec();
        Ok(RowGroups {
            batched,
            fields,
            encodings,
            options,
            threads,
        })
    }

    /// One row group: the batch's columns encoded, compressed and written.
    fn write(&mut self, rows: usize, columns: &[ArrayRef]) -> PolarsResult<()> {
        let pages = self.encode(0, columns)?;
        self.write_pages(rows, pages)
    }

    /// The pages of `columns`, the file's columns from `first` on, encoded
    /// and compressed (one list per Parquet leaf of each column).
    fn encode(&self, first: usize, columns: &[ArrayRef]) -> PolarsResult<Vec<ColumnPages>> {
        use polars_parquet::write::{array_to_columns, compress};
        let options = self.options;
        let encode = |(j, array): (usize, &ArrayRef)| -> PolarsResult<ColumnPages> {
            let (field, encoding) = (&self.fields[first + j], &self.encodings[first + j]);
            array_to_columns(array, field.clone(), options, encoding)?
                .into_iter()
                .map(|pages| {
                    pages
                        .map(|page| {
                            let mut page = compress(page?, Vec::new(), options.compression)?;
                            fit(&mut page);
                            Ok(page)
                        })
                        .collect::<PolarsResult<Vec<_>>>()
                })
                .collect()
        };
        match self.threads {
            Threads::All => columns.par_iter().enumerate().map(encode).collect(),
            Threads::Calling => columns.iter().enumerate().map(encode).collect(),
        }
    }

    /// A row group of `rows` rows from every column's pages, in order.
    fn write_pages(&mut self, rows: usize, pages: Vec<ColumnPages>) -> PolarsResult<()> {
        if rows == 0 {
            return Ok(());
        }
        let leaves: Vec<Vec<CompressedPage>> = pages.into_iter().flatten().collect();
        self.batched.write_row_group(rows as u64, &leaves)
    }

    fn finish(self) -> PolarsResult<()> {
        self.batched.finish()?;
        Ok(())
    }
}

/// A compressed data page's buffer cut to its length: zstd compresses into
/// a buffer the size of its bound (at least the page's uncompressed size)
/// and keeps that capacity, so pages held until their row group is written
/// (the frame's, see [`encode_features`]) would hold the uncompressed size.
fn fit(page: &mut CompressedPage) {
    if let CompressedPage::Data(p) = page {
        if let polars_parquet::parquet::CowBuffer::Owned(v) = p.slice_mut() {
            v.shrink_to_fit();
        }
    }
}

/// A failed write as the I/O error underneath (a full disk reads "No space
/// left on device", not as an internal Polars error). A Parquet footer cut
/// short by a full disk fails inside its encoder ("Invalid thrift: transport
/// error"): when the disk under `path` is (nearly) full, that is said.
fn io_error(e: PolarsError, path: &Path) -> std::io::Error {
    match e {
        PolarsError::IO { error, .. } => std::io::Error::new(error.kind(), error.to_string()),
        other if disk_full(path) => std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            format!(
                "No space left on device ({})",
                crate::error::polars_message(&other.to_string())
            ),
        ),
        other => std::io::Error::other(crate::error::polars_message(&other.to_string())),
    }
}

/// Whether the file system holding `path` has under 1 MiB free.
fn disk_full(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: statvfs writes into the zeroed struct and reads the
        // NUL-terminated path; both live for the call.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
            return false;
        }
        (s.f_bavail as u64).saturating_mul(s.f_frsize as u64) < 1 << 20
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> FileMeta {
        FileMeta {
            as_of: Month::parse("2026-10").unwrap(),
            pipeline_sha256: "0".repeat(64),
        }
    }

    /// An account frame of `n` rows in two chunks (ids, a numeric feature
    /// with gaps, a categorical one) and its matrix of three columns.
    fn frame_and_matrix(n: usize) -> (AccountFrame, FeatureMatrix) {
        let half = |from: usize, to: usize| {
            df!(
                "account_id" => (from..to).map(|i| format!("A{i:08}")).collect::<Vec<_>>(),
                "arr" => (from..to).map(|i| (i % 7 != 0).then_some(i as f64 * 1.5)).collect::<Vec<_>>(),
                "region" => (from..to).map(|i| ["EMEA", "APAC", "LATAM"][i % 3]).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let mut df = half(0, n / 3);
        df.vstack_mut(&half(n / 3, n)).unwrap();
        let info = |name: &str| crate::features::ColumnInfo {
            name: name.into(),
            label: name.into(),
            feature: name.into(),
            role: "numeric".into(),
            level: None,
            center: 0.0,
            scale: 1.0,
            multiplier: 1.0,
            imputed_value: None,
            missing: 0,
            clip: None,
            unit: crate::config::Unit::Number,
        };
        let x =
            ndarray::Array2::from_shape_fn((n, 3), |(i, j)| ((i * 31 + j * 7) % 1009) as f64 / 7.0);
        let m = FeatureMatrix {
            ids: (0..n).map(|i| format!("A{i:08}")).collect(),
            columns: vec![info("arr"), info("region=EMEA"), info("region=APAC")],
            x,
        };
        let frame = AccountFrame {
            df,
            as_of: Month::parse("2026-10").unwrap(),
        };
        (frame, m)
    }

    /// features.parquet written one row group at a time, on all threads or
    /// on the calling one, with the frame lent or given (and dropped once
    /// its columns are encoded), is the file the whole frame makes, byte for
    /// byte: one row group, and several (Polars cuts 600,001 rows into two
    /// of 300,000 and 300,001, not 512² and the rest).
    #[test]
    fn features_parquet_streamed_is_the_whole_frames_file() {
        let dir = tempfile::tempdir().unwrap();
        for n in [1_000, 600_001] {
            let (frame, m) = frame_and_matrix(n);
            let whole = dir.path().join(format!("whole-{n}.parquet"));
            let mut df = crate::features::to_frame(&frame, &m).unwrap();
            write_parquet(&whole, &mut df, &meta()).unwrap();
            let want = std::fs::read(&whole).unwrap();
            for threads in [Threads::All, Threads::Calling] {
                let sub = dir.path().join(format!("{n}-{threads:?}"));
                std::fs::create_dir(&sub).unwrap();
                let report = QualityReport::default();
                write_outputs(&sub, &frame, &m, &report, &meta(), threads).unwrap();
                let got = std::fs::read(sub.join(file::FEATURES)).unwrap();
                assert!(got == want, "{n} rows, {threads:?}: the files differ");
            }
            let given = dir.path().join(format!("{n}-given"));
            std::fs::create_dir(&given).unwrap();
            let report = QualityReport::default();
            write_outputs(&given, frame, &m, &report, &meta(), Threads::Calling).unwrap();
            let got = std::fs::read(given.join(file::FEATURES)).unwrap();
            assert!(got == want, "{n} rows, frame given: the files differ");
        }
        assert_eq!(
            row_groups(600_001).unwrap(),
            [(0, 300_000), (300_000, 300_001)]
        );
        assert_eq!(row_groups(1_000).unwrap(), [(0, 1_000)]);
    }

    #[test]
    fn a_full_disk_is_an_io_error_naming_the_file() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            return; // not Linux
        }
        let mut df = df!("a" => (0..100_000i64).collect::<Vec<_>>()).unwrap();
        let e = write_parquet(full, &mut df, &meta()).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.exit_code(), 2, "{msg}");
        assert!(msg.contains("/dev/full"), "{msg}");
        assert!(msg.contains("No space left on device"), "{msg}");
        assert!(!msg.contains("internal error"), "{msg}");
    }
}
