//! A whole pipeline run as a chain of stage calls: ingest → features →
//! cluster → identify → compare → track → write (the run directory, its
//! manifest and report) → the segment-history table. Each stage is
//! announced, timed and traced by `stages.rs`; the manifest and its headline
//! are assembled in `manifest.rs`.
//!
//! Outputs are built in a staging directory beside the final one and renamed
//! into place only when complete, so a reader never sees half a run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cluster::{Method, Methods, Segmentation};
use crate::compare::{self, Comparison, CurrentTiers};
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::features::{self, FeatureMatrix};
use crate::history::{self, History, PreviousRun};
use crate::ingest::{self, AccountFrame};
use crate::month::Month;
use crate::quality::{Finding, QualityReport, Severity};
use crate::rundir::{self, OutputLock};
use crate::schema;

mod manifest;
mod segment;
mod stages;
mod text;
mod write;

pub use segment::segment;
use stages::Stages;
pub use text::summary_text;
use write::{write_comparison, write_outputs, write_results, FrameLayout, Threads};
pub use write::{write_json, write_parquet, FileMeta};

/// Options given on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the pipeline's `as_of`.
    pub as_of: Option<Month>,
    /// Overrides the pipeline's `output`.
    pub output: Option<PathBuf>,
    /// Treat warnings as errors.
    pub strict: bool,
    /// Stop after the feature matrix (for building features only, and for
    /// measuring ingestion + features on their own).
    pub features_only: bool,
    /// The segment-discovery methods (the registry's by default).
    pub methods: Methods,
    /// Take the features from this table (the output of `strata sql`'s
    /// query) instead of ingesting the sources.
    pub feature_table: Option<PathBuf>,
}

impl RunOptions {
    /// The as-of month asked for (`--as-of`, else `run.as_of`); None: take it
    /// from the data (see [`ingest::as_of_from_data`]).
    pub fn as_of(&self, p: &Pipeline) -> Option<Month> {
        self.as_of.or(p.as_of)
    }
}

/// What `strata validate` found: the report, the account frame and each
/// account's tier (evaluated once per run) when there is no error, and the
/// month the data was read as of.
pub struct Validated {
    pub report: QualityReport,
    pub frame: Option<AccountFrame>,
    pub tiers: Option<CurrentTiers>,
    pub as_of: Month,
    /// How the as-of month was found, when it was taken from the data.
    pub as_of_note: Option<String>,
}

/// Progress and stage messages, so the library does no printing itself.
pub trait Progress {
    fn stage(&self, name: &str);
    fn done(&self, name: &str, detail: &str);
    /// Something worth telling that is not a stage (a cleaned-up leftover, say).
    fn note(&self, _message: &str) {}
}

/// A progress sink that ignores everything.
pub struct Silent;
impl Progress for Silent {
    fn stage(&self, _: &str) {}
    fn done(&self, _: &str, _: &str) {}
}

/// Ingest and check the data: exactly what `strata validate` does.
pub fn validate(p: &Pipeline, opts: &RunOptions) -> Result<Validated> {
    let ingested = match (&opts.feature_table, opts.as_of(p)) {
        (Some(t), Some(m)) => ingest::from_table(&p.for_month(m), t, m)?,
        (Some(_), None) => {
            return Err(Error::Usage(
                "a run from a feature table needs its month: --as-of YYYY-MM or run.as_of".into(),
            ))
        }
        (None, m) => ingest::ingest(p, m)?,
    };
    let mut report = ingested.report;
    let mut tiers = None;
    if let Some(frame) = &ingested.frame {
        if !opts.features_only {
            for (key, message) in p.cluster.problems_for(frame.df.height()) {
                let hint = format!("change {key} in the pipeline file, or run on more accounts");
                report.push(pipeline_finding(
                    p,
                    Severity::Error,
                    "too_few_accounts",
                    format!("{key}: {message}"),
                    hint,
                ));
            }
            if let Some(t) = &p.tiers {
                let current = compare::current_tiers(t, frame)?;
                let most = p.quality.max_unknown_tiers;
                for (severity, code, message, hint) in compare::tier_findings(t, &current, most) {
                    report.push(pipeline_finding(p, severity, code, message, hint));
                }
                tiers = Some(current);
            }
            for (severity, code, message, hint) in compare::outcomes::findings(p, frame)? {
                report.push(pipeline_finding(p, severity, code, message, hint));
            }
        }
        for finding in features::extreme::extreme_values(p, frame)? {
            report.push(finding);
        }
    }
    report.sort();
    if opts.strict {
        report.make_strict();
    }
    let (frame, tiers) = if report.has_errors() {
        (None, None)
    } else {
        (ingested.frame, tiers)
    };
    Ok(Validated {
        report,
        frame,
        tiers,
        as_of: ingested.as_of,
        as_of_note: ingested.as_of_note,
    })
}

/// A finding about the pipeline file as it meets the data.
fn pipeline_finding(
    p: &Pipeline,
    severity: Severity,
    code: &'static str,
    message: String,
    hint: String,
) -> Finding {
    Finding {
        severity,
        code: code.into(),
        source: "pipeline".into(),
        file: p.file.display().to_string(),
        column: None,
        count: 0,
        message,
        hint,
        examples: Vec::new(),
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub as_of: Month,
    pub accounts: usize,
    pub matrix_columns: usize,
    pub report: QualityReport,
    /// The run's methods, in the order of `segmentations`.
    pub methods: Methods,
    pub segmentations: Vec<Segmentation>,
    /// None when the run stopped after the features.
    pub comparison: Option<Comparison>,
    /// The proposed rule, staffing, segments as thresholds (None likewise).
    pub decision: Option<crate::decide::Decision>,
    /// Month over month (None when the run stopped after the features).
    pub history: Option<History>,
}

/// What the analysis stages made of the feature matrix: each method's
/// segments, their comparison with the tiers and the month-over-month history.
pub struct Analysis {
    pub methods: Methods,
    pub segmentations: Vec<Segmentation>,
    pub comparison: Comparison,
    pub decision: crate::decide::Decision,
    pub history: History,
}

/// What ingestion hands the rest of the run: the data passed its checks.
struct Ingested {
    report: QualityReport,
    frame: AccountFrame,
    tiers: Option<CurrentTiers>,
    as_of: Month,
}

/// Run the pipeline and write its run directory.
///
/// The output folder is locked for the whole run; outputs are staged, fsynced
/// and committed atomically with `_SUCCESS` (see [`crate::rundir`]).
pub fn run(p: &Pipeline, opts: &RunOptions, progress: &dyn Progress) -> Result<RunSummary> {
    let out_root = opts.output.clone().unwrap_or_else(|| p.output.clone());
    let lock = lock_output(p, opts, &out_root, progress)?;
    let mut stages = Stages::new(progress);
    let input = stages.run(
        "ingest",
        "ingest",
        |_| ingest_checked(p, opts, &out_root, progress),
        |i| {
            format!(
                "{} accounts, {} warning(s)",
                i.frame.df.height(),
                i.report.warning_count()
            )
        },
    )?;
    let matrix = stages.run(
        "features",
        "features",
        |_| features::build(p, &input.frame),
        |m| format!("{} × {} matrix", m.x.nrows(), m.x.ncols()),
    )?;
    let Ingested {
        report,
        frame,
        tiers,
        as_of,
    } = input;
    let staging = lock.staging(as_of)?;
    let meta = FileMeta {
        as_of,
        pipeline_sha256: p.hash.clone(),
    };
    // With a second thread, quality.json and features.parquet are written
    // beside the clustering: Leiden's local moves keep one core and leave
    // the other idle for most of it at 1M accounts and more. The writer runs
    // at the lowest priority, so it takes that idle time and next to none of
    // the clustering's. It takes the account frame with it: the clustering
    // has no use for it, so it is dropped once its columns are encoded, before
    // the matrix's (1.8 GB at 10M accounts, held through the clustering
    // before), and read back from features.parquet for the stages after.
    let beside = !opts.features_only && rayon::current_num_threads() > 1;
    let layout = FrameLayout::of(&frame);
    let (analysis, frame) = std::thread::scope(|scope| -> Result<_> {
        let (report, matrix, staging, meta) = (&report, &matrix, &staging, &meta);
        let (writer, held) = if beside {
            let writer = scope.spawn(move || {
                write::lowest_priority();
                let t = Instant::now();
                write_outputs(staging, frame, matrix, report, meta, Threads::Calling)
                    .map(|()| t.elapsed().as_secs_f64())
            });
            (Some(writer), None)
        } else {
            (None, Some(frame))
        };
        if opts.features_only {
            return Ok((None, held.expect("held: no writer beside")));
        }
        let clustered = cluster(p, opts, as_of, matrix, &out_root, &mut stages)?;
        // The kNN's huge-page advice has served its arrays and, it seems,
        // Leiden's, which land on the same addresses; the stages from here
        // fill fresh buffers in order, where a huge page costs more to touch
        // first (see memory::end_huge_pages).
        crate::memory::end_huge_pages();
        let frame = match (held, writer) {
            (Some(frame), _) => frame,
            (None, Some(writer)) => {
                let written = writer
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                stages.record("write_features", written);
                let t = Instant::now();
                let frame = layout.read(&staging.join(schema::file::FEATURES), as_of)?;
                stages.record("read_frame", t.elapsed().as_secs_f64());
                crate::memory::trace("account frame read back", t);
                frame
            }
            (None, None) => unreachable!("the frame is held or with the writer"),
        };
        let analysis = analyse(p, &frame, tiers, matrix, clustered, &mut stages)?;
        Ok((Some(analysis), frame))
    })?;
    // What is left to write needs neither the account frame nor the
    // neighbour lists the comparison read (at 10M accounts about 1 and 0.6
    // GB, held through the write stage before), unless the frame is still
    // to be written (no writer beside). The matrix stays for the report's
    // map: read back from features.parquet, its 1.8 GB of fresh pages took
    // 5.5 s longer at 10M.
    let mut analysis = analysis;
    for s in analysis.iter_mut().flat_map(|a| &mut a.segmentations) {
        s.neighbours = None;
    }
    let frame = (!beside).then_some(frame);
    crate::memory::release_freed();
    let (final_dir, table_rows) = write_run(
        p,
        opts,
        &lock,
        staging,
        &meta,
        (&report, as_of),
        frame.as_ref(),
        &matrix,
        analysis.as_ref(),
        &mut stages,
    )?;
    if let Some(rows) = &table_rows {
        record_segment_history(&out_root, as_of, rows, progress)?;
    }
    drop(lock);
    drop(frame);
    let (segmentations, comparison, decision, history) = match analysis {
        Some(a) => (
            a.segmentations,
            Some(a.comparison),
            Some(a.decision),
            Some(a.history),
        ),
        None => (Vec::new(), None, None, None),
    };
    Ok(RunSummary {
        dir: final_dir,
        as_of,
        accounts: matrix.ids.len(),
        matrix_columns: matrix.x.ncols(),
        report,
        methods: opts.methods.clone(),
        segmentations,
        comparison,
        decision,
        history,
    })
}

/// The output folder, locked for the run, cleared of what interrupted runs
/// left, and the month's place in it checked before any work.
fn lock_output(
    p: &Pipeline,
    opts: &RunOptions,
    out_root: &Path,
    progress: &dyn Progress,
) -> Result<OutputLock> {
    let asked = opts.as_of(p);
    let lock = OutputLock::acquire(
        out_root,
        &format!(
            "run of {} as of {}",
            p.file.display(),
            asked.map_or("the data's latest month".to_string(), |m| m.to_string())
        ),
        ", or write elsewhere with --out",
    )?;
    for d in lock.clean_debris()? {
        progress.note(&format!(
            "removed {} left by an interrupted run",
            d.display()
        ));
    }
    let fixed = crate::lakehouse::reconcile(out_root)?;
    for m in &fixed.recorded {
        progress.note(&format!(
            "added committed month {m} to the segment-history table (an earlier run stopped before recording it)"
        ));
    }
    for f in &fixed.removed {
        progress.note(&format!(
            "removed {}: a segment-history file no commit refers to",
            f.display()
        ));
    }
    if let Some(m) = asked {
        rundir::check_target(&out_root.join(m.to_string()))?;
    }
    Ok(lock)
}

/// [`validate`], stopping the run when the data did not pass.
fn ingest_checked(
    p: &Pipeline,
    opts: &RunOptions,
    out_root: &Path,
    progress: &dyn Progress,
) -> Result<Ingested> {
    let Validated {
        report,
        frame,
        tiers,
        as_of,
        as_of_note,
    } = validate(p, opts)?;
    if let Some(note) = &as_of_note {
        progress.note(note);
    }
    rundir::check_target(&out_root.join(as_of.to_string()))?;
    let Some(frame) = frame else {
        return Err(Error::Data(Box::new(report)));
    };
    Ok(Ingested {
        report,
        frame,
        tiers,
        as_of,
    })
}

/// The cluster stage's result and last month's committed run, which the
/// analysis after it reads.
struct Clustered {
    prev: Option<PreviousRun>,
    methods: Methods,
    segmentations: Vec<Segmentation>,
}

/// Segments by every method (the cluster stage), with last month's run
/// loaded for what follows.
fn cluster(
    p: &Pipeline,
    opts: &RunOptions,
    as_of: Month,
    matrix: &FeatureMatrix,
    out_root: &Path,
    stages: &mut Stages,
) -> Result<Clustered> {
    let progress = stages.progress;
    let prev = match rundir::previous_run(out_root, as_of)? {
        Some((m, dir)) => Some(PreviousRun::load(m, &dir)?),
        None => None,
    };
    let previous = |method: &dyn Method| {
        prev.as_ref()
            .and_then(|pr| history::previous_labels(pr, &matrix.ids, method.name()))
    };
    let t = Instant::now();
    let segmentations = segment(p, matrix, &opts.methods, progress, &previous)?;
    stages.record("cluster", t.elapsed().as_secs_f64());
    crate::memory::trace("cluster", t);
    for (method, s) in opts.methods.iter().zip(&segmentations) {
        for (key, seconds) in method.stage_seconds(s) {
            stages.record(key, seconds);
        }
    }
    Ok(Clustered {
        prev,
        methods: opts.methods.clone(),
        segmentations,
    })
}

/// The segments' identities matched to last month's, their comparison with
/// the tiers, the decision and the history.
fn analyse(
    p: &Pipeline,
    frame: &AccountFrame,
    tiers: Option<CurrentTiers>,
    matrix: &FeatureMatrix,
    clustered: Clustered,
    stages: &mut Stages,
) -> Result<Analysis> {
    let Clustered {
        prev,
        methods,
        segmentations,
    } = clustered;
    // Segment identities are decided once, right after clustering: IDs
    // matched to last month's and names carried over, before anything
    // reads them. Matching is timed with the history.
    let mut match_seconds = 0.0;
    let (segmentations, matches, (comparison, decision)) = stages.run(
        "compare",
        "compare",
        |stages| {
            let profiles = compare::profiles(p, frame, matrix, &segmentations)?;
            let history::Identified {
                segmentations,
                profiles,
                matches,
            } = stages.time("match", || {
                history::identify(prev.as_ref(), &matrix.ids, segmentations, profiles)
            });
            match_seconds = stages.seconds.remove("match").unwrap_or(0.0);
            let comparison = compare::compare(p, frame, tiers, matrix, &segmentations, profiles)?;
            let decision = stages.time("decide", || {
                crate::decide::decide(p, frame, matrix, &segmentations, &comparison)
            })?;
            Ok((segmentations, matches, (comparison, decision)))
        },
        |(_, _, (c, _))| format!("{} exception(s)", c.exceptions.len()),
    )?;
    let decide_seconds = stages.seconds.get("decide").copied().unwrap_or(0.0);
    if let Some(s) = stages.seconds.get_mut("compare") {
        *s -= match_seconds + decide_seconds;
    }
    let history = stages.run(
        "history",
        "history",
        |_| {
            let mut h = history::track(
                prev.as_ref(),
                &matrix.ids,
                &segmentations,
                &matches,
                &comparison,
            );
            if let Some(pr) = &prev {
                h.track_record = follow_up(p, pr, frame, &matrix.ids, &comparison)?;
            }
            Ok(h)
        },
        |h| match &h.previous_as_of {
            Some(m) => format!(
                "matched to {m}: {} accounts in both, {} new, {} gone",
                h.common_accounts, h.new_accounts, h.lost_accounts
            ),
            None => "no earlier committed run; segment IDs start at 1".into(),
        },
    )?;
    if let Some(s) = stages.seconds.get_mut("history") {
        *s += match_seconds;
    }
    Ok(Analysis {
        methods,
        segmentations,
        comparison,
        decision,
        history,
    })
}

/// Last month's suggestions followed up, with the value feature's values
/// then and now.
fn follow_up(
    p: &Pipeline,
    prev: &PreviousRun,
    frame: &AccountFrame,
    ids: &[String],
    comparison: &Comparison,
) -> Result<Option<history::TrackRecord>> {
    let value = p.tiers.as_ref().and_then(|t| t.value.as_deref());
    let (now, then) = match value {
        Some(v) => {
            let now: Vec<Option<f64>> = frame.df.column(v)?.f64()?.iter().collect();
            (Some(now), prev.values(v)?)
        }
        None => (None, None),
    };
    history::track_record(prev, ids, comparison, now.as_deref(), then.as_deref())
}

/// Every output staged, the manifest and the report written, and the month
/// committed: its final folder, and the month's rows encoded for the
/// segment-history table (see [`crate::lakehouse::prepare`]).
#[allow(clippy::too_many_arguments)]
fn write_run(
    p: &Pipeline,
    opts: &RunOptions,
    lock: &OutputLock,
    staging: rundir::Staging,
    meta: &FileMeta,
    (report, as_of): (&QualityReport, Month),
    frame: Option<&AccountFrame>,
    matrix: &FeatureMatrix,
    a: Option<&Analysis>,
    stages: &mut Stages,
) -> Result<(PathBuf, Option<crate::lakehouse::Prepared>)> {
    let progress = stages.progress;
    progress.stage("write");
    let final_dir = lock.root().join(as_of.to_string());
    let assignments = stages.time("write", || -> Result<_> {
        let comparison = |a: &Analysis| {
            write_comparison(
                &staging,
                p,
                &a.segmentations,
                &a.comparison,
                &a.decision,
                &a.history,
                as_of,
            )
        };
        std::thread::scope(|scope| {
            // comparison.json beside the other files (see write_comparison),
            // unless the run was given one thread.
            let beside = rayon::current_num_threads() > 1;
            let json = a
                .filter(|_| beside)
                .map(|a| scope.spawn(move || comparison(a)));
            // The account frame and the matrix's values, when they are
            // still to be written.
            let features =
                |frame| write_outputs(&staging, frame, matrix, report, meta, Threads::All);
            let rest = frame.map(features).transpose().and_then(|_| {
                a.map(|a| {
                    write_results(
                        &staging,
                        p,
                        matrix,
                        &a.segmentations,
                        &a.comparison,
                        &a.decision,
                        &a.history,
                        meta,
                    )
                })
                .transpose()
            });
            let json = json.map(|j| j.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            // The other files' error first: the order they were written in
            // one after another.
            let df = rest?;
            match (json, a) {
                (Some(written), _) => written?,
                (None, Some(a)) => comparison(a)?,
                (None, None) => {}
            }
            Ok(df)
        })
    })?;
    let inputs = stages.time("hash_inputs", || manifest::inputs(report))?;
    let headline = manifest::headline(report, a);
    // The month's rows for the segment-history table, encoded now so the
    // manifest can name the table file that must hold them.
    let table_rows = assignments
        .as_ref()
        .map(|df| crate::lakehouse::prepare(as_of, df))
        .transpose()?;
    let table_file = table_rows.as_ref().map(|t| t.rel.clone());
    let seconds = std::mem::take(&mut stages.seconds);
    let m = manifest::manifest(
        p, opts, as_of, matrix, inputs, headline, a, table_file, seconds,
    );
    write_json(&staging.join(schema::file::MANIFEST), &m)?;
    if a.is_some() {
        progress.stage("report");
        let t = Instant::now();
        let bytes = crate::report::write_with(&staging, Some(matrix.x.view()))?;
        crate::memory::trace("report", t);
        progress.done(
            "report",
            &format!("report.html ({} kB), report.md", bytes / 1000),
        );
    }
    rundir::commit(staging, &final_dir)?;
    progress.done("write", &final_dir.display().to_string());
    Ok((final_dir, table_rows))
}

/// The month's assignments into the `segment_history` Delta table. The
/// month is committed by then: a failure here says so, and that the next
/// run of any month brings the table up to date ([`crate::lakehouse::reconcile`]).
fn record_segment_history(
    out_root: &Path,
    as_of: Month,
    rows: &crate::lakehouse::Prepared,
    progress: &dyn Progress,
) -> Result<()> {
    progress.stage("segment history");
    let table = out_root.join(crate::lakehouse::TABLE);
    let t = std::time::Instant::now();
    let done = crate::lakehouse::record_prepared(out_root, rows);
    crate::memory::trace("segment history", t);
    let done = done.map_err(|e| {
        Error::TableNotUpdated(format!(
            "month {as_of} is committed in {}, but the segment-history table {} was not updated ({e}); the next run of any month adds it",
            out_root.join(as_of.to_string()).display(),
            table.display()
        ))
    })?;
    progress.done(
        "segment history",
        &match done {
            crate::lakehouse::Recorded::Committed { version } => {
                format!("{} version {version}", table.display())
            }
            crate::lakehouse::Recorded::Unchanged { version } => {
                format!("{} unchanged at version {version}", table.display())
            }
        },
    );
    Ok(())
}
