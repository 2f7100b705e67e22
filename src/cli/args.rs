//! The command line's arguments: what each command takes, with its help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use strata::month::Month;

const EXAMPLES: &str = "\
Examples:
  strata sample --accounts 2000 --seed 7 --out data/sample
  strata validate pipelines/sample.toml
  strata run pipelines/sample.toml --as-of 2026-10
  strata run pipelines/sample.toml --strict --quiet

Exit codes: 0 success, 1 bad data or bad pipeline file, 2 internal or I/O failure.";

#[derive(Parser)]
#[command(name = "strata", version, about = "Discover customer segments and compare them with your CS tiers", after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Worker threads for Polars and the clustering stages (default: the pipeline's `run.threads`, else RAYON_NUM_THREADS, else every core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Print only errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// `text` (default; a spinner per stage on a terminal, plain lines otherwise) or
    /// `json` (one JSON object per line on stderr, for schedulers and log collectors).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Take the features from this table (what `strata sql`'s query wrote on Spark or DuckDB: a Parquet file, a folder of part files or a Delta table) instead of ingesting the sources. Needs the month: --as-of or run.as_of.
        #[arg(long, conflicts_with = "months")]
        features: Option<PathBuf>,
    },
    /// Print the feature stage as one SQL query for Spark or DuckDB: one row per account with every feature's raw value.
    #[command(
        after_help = "Examples:\n  strata sql pipelines/sample.toml --dialect duckdb > features.sql\n  strata sql pipelines/sample.toml --dialect spark --as-of 2026-11\n\nThen run the query on the engine, write its result as Parquet, and:\n  strata run pipelines/sample.toml --as-of 2026-11 --features features.parquet"
    )]
    Sql {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// The engine: `spark` (Spark SQL 3.5+/4, Databricks) or `duckdb`.
        #[arg(long, value_enum)]
        dialect: strata::sql::Dialect,
        /// The month the features are computed as of (YYYY-MM); default: the pipeline's `run.as_of`.
        #[arg(long, value_parser = parse_month)]
        as_of: Option<Month>,
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
pub struct Common {
    /// The month to run as of (YYYY-MM); default: the pipeline's `run.as_of`, else the latest month with rows in every time-indexed source.
    #[arg(long, value_parser = parse_month)]
    pub as_of: Option<Month>,
    /// Treat data-quality warnings as errors.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Until {
    Features,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Csv,
    Parquet,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TierMixArg {
    Standard,
    Imbalanced,
    Middle,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SchemaArg {
    Standard,
    Alt,
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).ok_or_else(|| format!("`{s}` is not a month; write YYYY-MM, e.g. 2026-10"))
}

fn parse_range(s: &str) -> Result<(Month, Month), String> {
    // One month is the range of that month alone.
    if let Some(m) = Month::parse(s) {
        return Ok((m, m));
    }
    let (a, b) = s.split_once("..").ok_or_else(|| {
        format!("`{s}` is not a month or a range of months; write 2026-10, or FIRST..LAST, e.g. 2026-09..2026-11")
    })?;
    let (a, b) = (parse_month(a)?, parse_month(b)?);
    if b < a {
        return Err(format!("`{s}`: the last month is before the first"));
    }
    Ok((a, b))
}
