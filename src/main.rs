//! The `strata` command line: parse arguments, call the library, map errors to
//! exit codes (0 success, 1 bad data or pipeline file, 2 internal or I/O failure).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use strata::config::{self, Month};
use strata::run::{self, Progress, RunOptions};
use strata::sample::{self, SampleFormat, SampleParams, Schema, TierMix};
use strata::Error;

/// mimalloc instead of the system allocator for Polars' many large, short-lived
/// column buffers: ingestion at 1M took 9.5–10.0 s with it, 13.4–14.3 s without
/// (README, "Dependencies"). Built with `no_thp`: mimalloc does not ask for
/// transparent huge pages for everything it maps, since a fresh huge page is
/// far dearer to touch first on the benchmark VMs (see
/// `strata::memory::huge_vec`, which asks for them where the kNN reads at random).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXAMPLES: &str = "\
Examples:
  strata sample --accounts 2000 --seed 7 --out data/sample
  strata validate pipelines/sample.toml
  strata run pipelines/sample.toml --as-of 2026-10
  strata run pipelines/sample.toml --strict --quiet

Exit codes: 0 success, 1 bad data or bad pipeline file, 2 internal or I/O failure.";

#[derive(Parser)]
#[command(name = "strata", version, about = "Discover customer segments and compare them with your CS tiers", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Worker threads for Polars and the clustering stages (default: the pipeline's `run.threads`, else RAYON_NUM_THREADS, else every core).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Print only errors.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// `text` (default; a spinner per stage on a terminal, plain lines otherwise) or
    /// `json` (one JSON object per line on stderr, for schedulers and log collectors).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline and write a run directory <output>/<as-of>/.
    #[command(
        after_help = "Examples:\n  strata run pipelines/sample.toml --as-of 2026-10\n  strata run pipelines/sample.toml --months 2026-10..2026-11   # several months in order (backfill)"
    )]
    Run {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Run every month of a range FIRST..LAST in order, each matched to the one before.
        #[arg(long, value_parser = parse_range, conflicts_with = "as_of")]
        months: Option<(Month, Month)>,
        /// Write the run under this folder instead of the pipeline's `run.output`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stop after this stage: `features` writes the feature matrix and quality report only.
        #[arg(long, value_enum, default_value_t = Until::All)]
        until: Until,
    },
    /// Re-render report.html and report.md of a run directory from its outputs alone.
    #[command(after_help = "Example:\n  strata report out/sample/2026-11")]
    Report {
        /// A run directory, <output>/<as-of>.
        run_dir: PathBuf,
    },
    /// One line per committed run in an output folder: accounts, segments, agreement with tiers, drift.
    #[command(after_help = "Example:\n  strata history out/sample")]
    History {
        /// The output folder holding <as-of>/ run directories.
        out_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check the pipeline file and the data, print the quality report, and stop.
    #[command(
        after_help = "Example:\n  strata validate pipelines/sample.toml --report quality.json"
    )]
    Validate {
        pipeline: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Also write the report as JSON to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Write a synthetic B2B SaaS dataset with planted segments.
    #[command(
        after_help = "Examples:\n  strata sample --out data/sample\n  strata sample --accounts 1000000 --format parquet --out /tmp/big"
    )]
    Sample {
        #[arg(long, default_value_t = 2000)]
        accounts: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value = "data/sample")]
        out: PathBuf,
        /// Last month of the generated history (YYYY-MM).
        #[arg(long, default_value = "2026-10", value_parser = parse_month)]
        as_of: Month,
        /// Months of usage and revenue history.
        #[arg(long, default_value_t = 13)]
        months: u32,
        #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
        format: FormatArg,
        /// `standard` (accounts/usage/nps/revenue/tickets) or `alt` (another schema: usage events through subscriptions).
        #[arg(long, value_enum, default_value_t = SchemaArg::Standard)]
        schema: SchemaArg,
        /// Generate the data drop N months after --as-of instead: the same accounts
        /// drifted N months on (some changed behaviour, some churned, some new).
        #[arg(long, default_value_t = 0)]
        follow_on: u32,
        /// How tiers relate to the planted segments: `standard` (12/38/50%),
        /// `imbalanced` (3/7/90%) or `middle` (Hybrid 40% of every segment, the majority of none).
        #[arg(long, value_enum, default_value_t = TierMixArg::Standard)]
        tier_mix: TierMixArg,
    },
}

#[derive(clap::Args)]
struct Common {
    /// The month to run as of (YYYY-MM); default: the pipeline's `run.as_of`, else the latest month with rows in every time-indexed source.
    #[arg(long, value_parser = parse_month)]
    as_of: Option<Month>,
    /// Treat data-quality warnings as errors.
    #[arg(long)]
    strict: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Until {
    Features,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Parquet,
}

#[derive(Clone, Copy, ValueEnum)]
enum TierMixArg {
    Standard,
    Imbalanced,
    Middle,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaArg {
    Standard,
    Alt,
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).ok_or_else(|| format!("`{s}` is not a month; write YYYY-MM, e.g. 2026-10"))
}

fn parse_range(s: &str) -> Result<(Month, Month), String> {
    let (a, b) = s.split_once("..").ok_or_else(|| {
        format!("`{s}` is not a range of months; write FIRST..LAST, e.g. 2026-09..2026-11")
    })?;
    let (a, b) = (parse_month(a)?, parse_month(b)?);
    if b < a {
        return Err(format!("`{s}`: the last month is before the first"));
    }
    Ok((a, b))
}

/// Where progress goes: a spinner per stage on a terminal, plain lines when
/// stderr is a file or pipe (cron, systemd), JSON lines with --log-format json.
struct Log {
    quiet: bool,
    format: LogFormat,
    tty: bool,
    bar: std::cell::RefCell<Option<(indicatif::ProgressBar, std::time::Instant)>>,
}

impl Log {
    fn new(quiet: bool, format: LogFormat) -> Log {
        use std::io::IsTerminal;
        Log {
            quiet,
            format,
            tty: std::io::stderr().is_terminal(),
            bar: Default::default(),
        }
    }
    fn json(&self, level: &str, event: &str, stage: &str, detail: &str) {
        let line = serde_json::json!({
            "time": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            "level": level,
            "event": event,
            "stage": stage,
            "message": detail,
        });
        eprintln!("{line}");
    }
    fn error(&self, e: &Error) {
        if self.format == LogFormat::Json {
            self.json("error", "error", "", &e.to_string());
        } else {
            eprintln!("strata: error: {e}");
        }
    }
}

impl Progress for Log {
    fn stage(&self, name: &str) {
        if self.quiet {
            return;
        }
        match self.format {
            LogFormat::Json => self.json("info", "stage", name, ""),
            LogFormat::Text if self.tty => {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_message(format!("{name} …"));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                *self.bar.borrow_mut() = Some((bar, std::time::Instant::now()));
            }
            LogFormat::Text => eprintln!("strata: {name} …"),
        }
    }
    fn done(&self, name: &str, detail: &str) {
        if self.quiet {
            return;
        }
        match self.format {
            LogFormat::Json => self.json("info", "done", name, detail),
            LogFormat::Text => match self.bar.borrow_mut().take() {
                Some((bar, t)) => bar.finish_with_message(format!(
                    "{name}: {detail} ({:.1} s)",
                    t.elapsed().as_secs_f64()
                )),
                None => eprintln!("strata: {name} done: {detail}"),
            },
        }
    }
    fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        match self.format {
            LogFormat::Json => self.json("warn", "note", "", message),
            LogFormat::Text => match &*self.bar.borrow() {
                Some((bar, _)) => bar.println(format!("strata: {message}")),
                None => eprintln!("strata: {message}"),
            },
        }
    }
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

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        if !strata::ingest::load::guarded_call_active() {
            eprintln!(
                "strata: internal error (a bug; please report it with the command you ran): {info}"
            );
        }
    }));
    // Usage errors are input errors (exit 1); --help and --version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let log = Log::new(cli.quiet, cli.log_format);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli, &log))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            if let Error::Data(report) = &e {
                if log.format == LogFormat::Json {
                    eprintln!("{}", serde_json::to_string(report).unwrap_or_default());
                } else {
                    eprint!("{report}");
                }
            }
            log.error(&e);
            ExitCode::from(e.exit_code() as u8)
        }
        Err(_) => ExitCode::from(2),
    }
}

fn dispatch(cli: Cli, log: &Log) -> Result<(), Error> {
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
            set_threads(cli.threads);
            if accounts == 0 || months == 0 {
                return Err(Error::Usage(
                    "--accounts and --months must be at least 1".into(),
                ));
            }
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
            let summary = sample::generate(&params, &out)?;
            if !cli.quiet {
                for (file, rows) in &summary.files {
                    println!("wrote {:>10} rows  {}", rows, out.join(file).display());
                }
            }
            Ok(())
        }
        Command::Validate {
            pipeline,
            common,
            report,
        } => {
            let p = config::load(&pipeline)?;
            set_threads(cli.threads.or(p.threads));
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
                run::write_json(&path, &q)?;
            }
            if q.has_errors() {
                return Err(Error::Data(Box::new(q)));
            }
            if !cli.quiet {
                print!("{q}");
                println!("pipeline {} is valid for {as_of}", pipeline.display());
            }
            Ok(())
        }
        Command::Run {
            pipeline,
            common,
            months,
            out,
            until,
        } => {
            let p = config::load(&pipeline)?;
            set_threads(cli.threads.or(p.threads));
            let list: Vec<Option<Month>> = match months {
                Some((first, last)) => {
                    let mut v = vec![Some(first)];
                    while let Some(&Some(m)) = v.last() {
                        if m >= last {
                            break;
                        }
                        v.push(Some(m.add(1)));
                    }
                    v
                }
                None => vec![common.as_of],
            };
            for as_of in list {
                let opts = RunOptions {
                    as_of,
                    output: out.clone(),
                    strict: common.strict,
                    features_only: until == Until::Features,
                    ..RunOptions::default()
                };
                let summary = run::run(&p, &opts, log)?;
                if log.format == LogFormat::Json {
                    log.json(
                        "info",
                        "finished",
                        "run",
                        &summary.dir.display().to_string(),
                    );
                } else if !cli.quiet {
                    print!("{}", summary.report);
                    print!("{}", run::summary_text(&summary));
                }
            }
            Ok(())
        }
        Command::Report { run_dir } => {
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
            // meanwhile. The folder is resolved first: the parent of `.` (run
            // from inside a month) is the output folder, not the month itself.
            let resolved = run_dir
                .canonicalize()
                .map_err(|e| Error::io("resolving", &run_dir, e))?;
            let parent = resolved.parent().unwrap_or(std::path::Path::new("/"));
            let _lock = strata::rundir::OutputLock::acquire(
                parent,
                &format!("strata report {}", run_dir.display()),
            )?;
            let bytes = strata::report::write(&run_dir)?;
            if !cli.quiet && log.format == LogFormat::Text {
                println!(
                    "wrote {} ({} kB) and {}",
                    run_dir.join("report.html").display(),
                    bytes / 1000,
                    run_dir.join("report.md").display()
                );
            }
            Ok(())
        }
        Command::History { out_dir, json } => {
            if !out_dir.is_dir() {
                return Err(Error::Usage(format!(
                    "{} is not a folder; give the output folder of a pipeline (its run.output), e.g. out/sample",
                    out_dir.display()
                )));
            }
            let rows = strata::history::list(&out_dir)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows)
                        .map_err(|e| Error::Internal(e.to_string()))?
                );
            } else {
                print!("{}", strata::history::history_text(&rows));
            }
            Ok(())
        }
    }
}
