//! One function per command: arguments in, one library call, output printed.

use std::path::{Path, PathBuf};

use strata::config;
use strata::month::Month;
use strata::run::{self, Progress, RunOptions};
use strata::sample::{self, SampleFormat, SampleParams, Schema, TierMix};
use strata::Error;

use super::args::*;
use super::log::Log;

/// Run the command `cli` names.
pub fn dispatch(cli: Cli, log: &Log) -> Result<(), Error> {
    let (threads, quiet) = (cli.threads, cli.quiet);
    match cli.command {
        Command::Sample {
            accounts,
            seed,
            out,
            as_of,
            months,
            format,
            schema,
            follow_on,
            tier_mix,
        } => {
            set_threads(threads);
            let params = SampleParams {
                accounts,
                seed,
                as_of,
                months,
                format: match format {
                    FormatArg::Csv => SampleFormat::Csv,
                    FormatArg::Parquet => SampleFormat::Parquet,
                },
                schema: match schema {
                    SchemaArg::Standard => Schema::Standard,
                    SchemaArg::Alt => Schema::Alt,
                },
                follow_on,
                tier_mix: match tier_mix {
                    TierMixArg::Standard => TierMix::Standard,
                    TierMixArg::Imbalanced => TierMix::Imbalanced,
                    TierMixArg::Middle => TierMix::Middle,
                },
            };
            sample_data(&params, &out, quiet)
        }
        Command::Validate {
            pipeline,
            common,
            report,
        } => validate(&pipeline, &common, report.as_deref(), threads, log),
        Command::Run {
            pipeline,
            common,
            months,
            out,
            until,
            features,
        } => run_months(
            &pipeline,
            &common,
            months,
            (out, features),
            until,
            threads,
            log,
        ),
        Command::Sql {
            pipeline,
            dialect,
            as_of,
        } => sql(&pipeline, dialect, as_of),
        Command::Report { run_dir } => report(&run_dir, log),
        Command::History { out_dir, json } => history(&out_dir, json),
    }
}

/// `strata sample`.
fn sample_data(params: &SampleParams, out: &Path, quiet: bool) -> Result<(), Error> {
    if params.accounts == 0 || params.months == 0 {
        return Err(Error::Usage(
            "--accounts and --months must be at least 1".into(),
        ));
    }
    let summary = sample::generate(params, out)?;
    if !quiet {
        for (file, rows) in &summary.files {
            println!("wrote {:>10} rows  {}", rows, out.join(file).display());
        }
    }
    Ok(())
}

/// `strata validate`.
fn validate(
    pipeline: &Path,
    common: &Common,
    report: Option<&Path>,
    threads: Option<usize>,
    log: &Log,
) -> Result<(), Error> {
    let p = config::load(pipeline)?;
    set_threads(threads.or(p.threads));
    let opts = RunOptions {
        as_of: common.as_of,
        output: None,
        strict: common.strict,
        ..RunOptions::default()
    };
    let run::Validated {
        report: q,
        as_of,
        as_of_note,
        ..
    } = run::validate(&p, &opts)?;
    if let Some(note) = &as_of_note {
        log.note(note);
    }
    if let Some(path) = report {
        run::write_json(path, &q)?;
    }
    if log.format == LogFormat::Json {
        // Each finding is an event; an error ends with the error event.
        log.findings(&q);
        if q.has_errors() {
            return Err(Error::Usage(format!(
                "the input data has {} error(s); see the finding events",
                q.error_count()
            )));
        }
        log.json(
            "info",
            "valid",
            "validate",
            &format!("{} is valid for {as_of}", pipeline.display()),
        );
        return Ok(());
    }
    if q.has_errors() {
        return Err(Error::Data(Box::new(q)));
    }
    if !log.quiet {
        print!("{q}");
        println!("pipeline {} is valid for {as_of}", pipeline.display());
    }
    Ok(())
}

/// `strata run`: one month, or every month of `--months` in order.
fn run_months(
    pipeline: &Path,
    common: &Common,
    months: Option<(Month, Month)>,
    (out, features): (Option<PathBuf>, Option<PathBuf>),
    until: Until,
    threads: Option<usize>,
    log: &Log,
) -> Result<(), Error> {
    let p = config::load(pipeline)?;
    if features.is_some() && common.as_of.or(p.as_of).is_none() {
        return Err(Error::Usage(
            "--features needs the month the table was computed as of: give --as-of YYYY-MM (or run.as_of in the pipeline file)".into(),
        ));
    }
    set_threads(threads.or(p.threads));
    let list: Vec<Option<Month>> = match months {
        Some((first, last)) => (first.index()..=last.index())
            .map(|i| Some(Month::from_index(i)))
            .collect(),
        None => vec![common.as_of],
    };
    for as_of in list {
        let opts = RunOptions {
            as_of,
            output: out.clone(),
            strict: common.strict,
            features_only: until == Until::Features,
            feature_table: features.clone(),
            ..RunOptions::default()
        };
        let summary = run::run(&p, &opts, log)?;
        log.findings(&summary.report);
        if log.format == LogFormat::Json {
            log.json(
                "info",
                "finished",
                "run",
                &summary.dir.display().to_string(),
            );
        } else if !log.quiet {
            print!("{}", summary.report);
            print!("{}", run::summary_text(&summary));
        }
    }
    Ok(())
}

/// `strata sql`: the feature stage as one query, on standard output.
fn sql(pipeline: &Path, dialect: strata::sql::Dialect, as_of: Option<Month>) -> Result<(), Error> {
    let p = config::load(pipeline)?;
    let Some(as_of) = as_of.or(p.as_of) else {
        return Err(Error::Usage(
            "strata sql needs the month to compute the features as of: give --as-of YYYY-MM (or run.as_of in the pipeline file)".into(),
        ));
    };
    let shapes = strata::ingest::probe(&p.for_month(as_of))?;
    print!("{}", strata::sql::compile(&p, as_of, &shapes, dialect)?);
    Ok(())
}

/// `strata report`: re-render a committed run directory's report.
fn report(run_dir: &Path, log: &Log) -> Result<(), Error> {
    if !run_dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a folder; give a run directory such as out/sample/2026-11",
            run_dir.display()
        )));
    }
    if !run_dir.join(strata::rundir::SUCCESS).is_file() {
        return Err(Error::Usage(format!(
            "{} is not a committed run directory (it has no {}); give a month folder such as out/sample/2026-11",
            run_dir.display(),
            strata::rundir::SUCCESS
        )));
    }
    // Hold the output folder's lock so a run cannot replace this month
    // meanwhile. The folder is the month's parent as typed (as messages show
    // it), resolved only when it has none: the parent of `.` (run from
    // inside a month) is the output folder, not the month itself.
    let typed = run_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && run_dir.file_name().is_some());
    let resolved;
    let parent = match typed {
        Some(p) => p,
        None => {
            resolved = run_dir
                .canonicalize()
                .map_err(|e| Error::io("resolving", run_dir, e))?;
            resolved.parent().unwrap_or(Path::new("/"))
        }
    };
    let _lock = strata::rundir::OutputLock::acquire(
        parent,
        &format!("strata report {}", run_dir.display()),
        ", then render the report again",
    )?;
    let bytes = strata::report::write(run_dir)?;
    if !log.quiet && log.format == LogFormat::Text {
        println!(
            "wrote {} ({} kB) and {}",
            run_dir.join("report.html").display(),
            bytes / 1000,
            run_dir.join("report.md").display()
        );
    }
    Ok(())
}

/// `strata history`: one line per committed month.
fn history(out_dir: &Path, json: bool) -> Result<(), Error> {
    if !out_dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a folder; give the output folder of a pipeline (its run.output), e.g. out/sample",
            out_dir.display()
        )));
    }
    let rows = strata::history::list(out_dir)?;
    if rows.is_empty() {
        let below = output_folders_below(out_dir);
        if !below.is_empty() {
            return Err(Error::Usage(format!(
                "{} holds no committed run, but these folders below it do: {}; give one of them",
                out_dir.display(),
                below.join(", ")
            )));
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| Error::Internal(e.to_string()))?
        );
    } else {
        print!("{}", strata::history::history_text(&rows));
    }
    Ok(())
}

/// Folders right below `dir` that hold committed runs (`dir` given as the
/// parent of a pipeline's output folder), as paths to type.
fn output_folders_below(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| strata::rundir::committed_runs(p).is_ok_and(|r| !r.is_empty()))
        .map(|p| p.display().to_string())
        .collect();
    out.sort();
    out
}

/// Cap Polars' and rayon's pools before either starts.
fn set_threads(n: Option<usize>) {
    let n = n
        .or_else(|| {
            std::env::var("RAYON_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
        })
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    if std::env::var_os("POLARS_MAX_THREADS").is_none() {
        std::env::set_var("POLARS_MAX_THREADS", n.to_string());
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
}
