//! A whole pipeline run: ingest → features → outputs, in a run directory.
//!
//! Outputs are built in a staging directory beside the final one and renamed
//! into place only when complete, so a reader never sees half a run.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cluster::{self, stability, Method, Methods, Segmentation};
use crate::compare::{self, Comparison};
use crate::config::Severity;
use crate::config::{Month, Pipeline};
use crate::error::{Error, Result};
use crate::features::{self, FeatureMatrix};
use crate::history::{self, History, PreviousRun};
use crate::ingest::quality::{Finding, QualityReport};
use crate::ingest::{self, AccountFrame};
use crate::rundir::{self, OutputLock};
use crate::schema::{self, Headline, Input, Manifest};
use rayon::prelude::*;

mod text;
mod write;

pub use text::summary_text;
pub use write::{write_json, write_parquet, FileMeta};
use write::{write_outputs, write_results};

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
}

impl RunOptions {
    /// The as-of month asked for (`--as-of`, else `run.as_of`); None: take it
    /// from the data (see [`ingest::as_of_from_data`]).
    pub fn as_of(&self, p: &Pipeline) -> Option<Month> {
        self.as_of.or(p.as_of)
    }
}

/// What `strata validate` found: the report, the account frame when there is
/// no error, and the month the data was read as of.
pub struct Validated {
    pub report: QualityReport,
    pub frame: Option<AccountFrame>,
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
    let ingested = ingest::ingest(p, opts.as_of(p))?;
    let mut report = ingested.report;
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
                let tiers = compare::current_tiers(t, frame)?;
                let most = p.quality.max_unknown_tiers;
                for (severity, code, message, hint) in compare::tier_findings(t, &tiers, most) {
                    report.push(pipeline_finding(p, severity, code, message, hint));
                }
            }
        }
    }
    report.sort();
    if opts.strict {
        report.make_strict();
    }
    let frame = if report.has_errors() {
        None
    } else {
        ingested.frame
    };
    Ok(Validated {
        report,
        frame,
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
    pub segmentations: Vec<Segmentation>,
    /// None when the run stopped after the features.
    pub comparison: Option<Comparison>,
    /// Month over month (None when the run stopped after the features).
    pub history: Option<History>,
}

/// sha256 of a file, streamed.
fn sha256_file(path: &Path) -> Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = File::open(path).map_err(|e| Error::io("hashing", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("hashing", path, e))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((format!("{:x}", h.finalize()), total))
}

/// Run the pipeline and write its run directory.
///
/// The output folder is locked for the whole run; outputs are staged, fsynced
/// and committed atomically with `_SUCCESS` (see [`crate::rundir`]).
pub fn run(p: &Pipeline, opts: &RunOptions, progress: &dyn Progress) -> Result<RunSummary> {
    let out_root = opts.output.clone().unwrap_or_else(|| p.output.clone());
    let asked = opts.as_of(p);
    let lock = OutputLock::acquire(
        &out_root,
        &format!(
            "run of {} as of {}",
            p.file.display(),
            asked.map_or("the data's latest month".to_string(), |m| m.to_string())
        ),
    )?;
    for d in lock.clean_debris()? {
        progress.note(&format!(
            "removed {} left by an interrupted run",
            d.display()
        ));
    }
    // Before any work: the month must be writable where it goes.
    if let Some(m) = asked {
        rundir::check_target(&out_root.join(m.to_string()))?;
    }
    let mut timings = BTreeMap::new();

    progress.stage("ingest");
    let t = Instant::now();
    let Validated {
        report,
        frame,
        as_of,
        as_of_note,
    } = validate(p, opts)?;
    timings.insert("ingest", t.elapsed().as_secs_f64());
    crate::memory::release_freed();
    if let Some(note) = &as_of_note {
        progress.note(note);
    }
    rundir::check_target(&out_root.join(as_of.to_string()))?;
    let Some(frame) = frame else {
        return Err(Error::Data(Box::new(report)));
    };
    progress.done(
        "ingest",
        &format!(
            "{} accounts, {} warning(s)",
            frame.df.height(),
            report.warning_count()
        ),
    );

    progress.stage("features");
    let t = Instant::now();
    let matrix = features::build(p, &frame)?;
    timings.insert("features", t.elapsed().as_secs_f64());
    crate::memory::trace("features", t);
    crate::memory::release_freed();
    progress.done(
        "features",
        &format!("{} × {} matrix", matrix.x.nrows(), matrix.x.ncols()),
    );

    let mut headline = Headline {
        data_warnings: report.warning_count(),
        ..Headline::default()
    };
    let mut previous_as_of = None;
    let (segmentations, comparison, history) = if opts.features_only {
        (Vec::new(), None, None)
    } else {
        let prev = match rundir::previous_run(&out_root, as_of)? {
            Some((m, dir)) => Some(PreviousRun::load(m, &dir)?),
            None => None,
        };
        let previous = |method: &dyn Method| {
            prev.as_ref()
                .and_then(|pr| history::previous_labels(pr, &matrix.ids, method.name()))
        };
        let t = Instant::now();
        let segmentations = segment(p, &matrix, &opts.methods, progress, &previous)?;
        timings.insert("cluster", t.elapsed().as_secs_f64());
        crate::memory::trace("cluster", t);
        for (method, s) in opts.methods.iter().zip(&segmentations) {
            timings.insert(method.timing_key(), s.seconds);
            if let cluster::Details::KMeans { choose_seconds, .. } = &s.details {
                timings.insert("kmeans_choose_k", *choose_seconds);
            }
            if let cluster::Details::Community {
                graph,
                detect_seconds,
                modularity,
                ..
            } = &s.details
            {
                timings.insert("knn", graph.knn_seconds);
                timings.insert("graph_weights", graph.weight_seconds);
                timings.insert("community_detection", *detect_seconds);
                headline.modularity = Some(*modularity);
            }
        }
        // Segment identities are decided once, right after clustering: IDs
        // matched to last month's and names carried over, before anything
        // reads them.
        progress.stage("compare");
        let t = Instant::now();
        let profiles = compare::profiles(p, &frame, &matrix, &segmentations)?;
        let t_match = Instant::now();
        let history::Identified {
            segmentations,
            profiles,
            matches,
        } = history::identify(prev.as_ref(), &matrix.ids, segmentations, profiles);
        let match_seconds = t_match.elapsed().as_secs_f64();
        let comparison = compare::compare(p, &frame, &matrix, &segmentations, profiles)?;
        timings.insert("compare", t.elapsed().as_secs_f64() - match_seconds);
        progress.done(
            "compare",
            &format!("{} exception(s)", comparison.exceptions.len()),
        );
        progress.stage("history");
        let t = Instant::now();
        let h = history::track(
            prev.as_ref(),
            &matrix.ids,
            &segmentations,
            &matches,
            &comparison,
        );
        timings.insert("history", t.elapsed().as_secs_f64() + match_seconds);
        progress.done(
            "history",
            &match &h.previous_as_of {
                Some(m) => format!(
                    "matched to {m}: {} accounts in both, {} new, {} gone",
                    h.common_accounts, h.new_accounts, h.lost_accounts
                ),
                None => "no earlier committed run; segment IDs start at 1".into(),
            },
        );
        previous_as_of = h.previous_as_of.clone();
        for s in &segmentations {
            headline.segments.insert(s.method.to_string(), s.k());
        }
        for mc in &comparison.methods {
            if let Some(a) = &mc.agreement {
                headline.ari_vs_tiers.insert(mc.method.to_string(), a.ari);
            }
            if let Some(v) = mc.verdict {
                headline
                    .verdict
                    .insert(mc.method.to_string(), v.word().to_string());
            }
        }
        if comparison.tiers.is_some() {
            headline.exceptions = Some(comparison.exceptions.len());
        }
        if h.previous_as_of.is_some() {
            for mh in &h.methods {
                headline
                    .drift_ari
                    .insert(mh.method.to_string(), mh.drift_ari);
            }
            headline.new_accounts = Some(h.new_accounts);
            headline.lost_accounts = Some(h.lost_accounts);
        }
        (segmentations, Some(comparison), Some(h))
    };

    progress.stage("write");
    let t = Instant::now();
    let final_dir = out_root.join(as_of.to_string());
    let staging = lock.staging(as_of)?;
    let meta = FileMeta {
        as_of,
        pipeline_sha256: p.hash.clone(),
    };
    write_outputs(&staging, &frame, &matrix, &report, &meta)?;
    let assignments = match (&comparison, &history) {
        (Some(comparison), Some(history)) => Some(write_results(
            &staging,
            p,
            &matrix,
            &segmentations,
            comparison,
            history,
            &meta,
        )?),
        _ => None,
    };
    timings.insert("write", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let hashed: Vec<Result<(String, u64)>> = report
        .sources
        .par_iter()
        .map(|s| sha256_file(Path::new(&s.file)))
        .collect();
    let mut inputs = Vec::new();
    for (s, h) in report.sources.iter().zip(hashed) {
        let (sha256, bytes) = h?;
        inputs.push(Input {
            source: s.name.clone(),
            path: s.file.clone(),
            sha256,
            bytes,
            rows_read: s.rows_read,
            rows_used: s.rows_used,
        });
    }
    timings.insert("hash_inputs", t.elapsed().as_secs_f64());
    let manifest = Manifest {
        strata_version: crate::VERSION.to_string(),
        pipeline: p.file.display().to_string(),
        pipeline_name: p.name.clone(),
        pipeline_sha256: p.hash.clone(),
        as_of: as_of.to_string(),
        seed: p.seed,
        threads: rayon::current_num_threads(),
        accounts: matrix.ids.len(),
        inputs,
        headline,
        previous_as_of,
        next_segment_ids: history
            .as_ref()
            .map(|h| h.next_ids.clone())
            .unwrap_or_default(),
        pipeline_text: p.text.clone(),
        cluster: &p.cluster,
        features: &matrix.columns,
        stage_seconds: timings
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        until: if opts.features_only {
            "features"
        } else {
            "all"
        }
        .to_string(),
    };
    write_json(&staging.join(schema::file::MANIFEST), &manifest)?;
    if comparison.is_some() {
        progress.stage("report");
        let bytes = crate::report::write(&staging)?;
        progress.done(
            "report",
            &format!("report.html ({} kB), report.md", bytes / 1000),
        );
    }
    rundir::commit(staging, &final_dir)?;
    progress.done("write", &final_dir.display().to_string());
    if let Some(df) = &assignments {
        progress.stage("segment history");
        let done = crate::lakehouse::record(&out_root, as_of, df)?;
        let table = out_root.join(crate::lakehouse::TABLE);
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
    }
    drop(lock);
    Ok(RunSummary {
        dir: final_dir,
        as_of,
        accounts: matrix.ids.len(),
        matrix_columns: matrix.x.ncols(),
        report,
        segmentations,
        comparison,
        history,
    })
}

/// The cluster stage: k-means and communities, each with its stability.
pub fn segment(
    p: &Pipeline,
    m: &FeatureMatrix,
    methods: &Methods,
    progress: &dyn Progress,
    previous: &dyn Fn(&dyn Method) -> Option<Vec<Option<u32>>>,
) -> Result<Vec<Segmentation>> {
    let cfg = &p.cluster;
    let seed = p.seed;
    let mut out = Vec::new();
    for method in methods.iter() {
        progress.stage(method.label());
        let prev = if method.wants_previous(cfg) {
            previous(method)
        } else {
            None
        };
        let t = Instant::now();
        let s = method.fit(m.x.view(), cfg, seed, prev.as_deref())?;
        crate::memory::trace(method.name(), t);
        progress.done(
            method.label(),
            &format!("{} ({:.1} s)", method.summary(&s), s.seconds),
        );
        out.push(s);
    }
    if cfg.stability.runs > 0 {
        progress.stage("stability");
        for (method, s) in methods.iter().zip(out.iter_mut()) {
            s.stability = Some(stability::assess(
                m.x.view(),
                &s.labels,
                &cfg.stability,
                seed,
                |xs, seed| method.refit(xs, s, cfg, seed),
            )?);
        }
        progress.done("stability", &format!("{} runs", cfg.stability.runs));
    }
    Ok(out)
}
