//! Typed errors of the library.
//!
//! Every failure a user can cause (a bad pipeline file, bad input data) is
//! distinguished from failures of the machine or of strata itself, because the
//! CLI maps them to different exit codes: 1 for "fix your input", 2 for
//! "something went wrong underneath".

use std::fmt;
use std::path::PathBuf;

use crate::quality::QualityReport;

/// One problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `sources.usage.time` or `feature[3].scale`.
    pub key: String,
    pub message: String,
}

/// All problems found in a pipeline file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigProblems {
    pub file: PathBuf,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pipeline file {} has {} problem(s):",
            self.file.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            if p.key.is_empty() {
                writeln!(f, "  - {}", p.message)?;
            } else {
                writeln!(f, "  - {}: {}", p.key, p.message)?;
            }
        }
        write!(
            f,
            "See README.md, section \"Pipeline file reference\", for every key and its allowed values."
        )
    }
}

/// The library's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file could not be read as TOML or failed validation; every
    /// problem found is listed, not only the first.
    #[error("{0}")]
    Config(ConfigProblems),

    /// The input data has error-severity findings; the full report is attached.
    #[error("the input data has {} error(s); see the data quality report", .0.error_count())]
    Data(Box<QualityReport>),

    /// A user-level problem that is not a data-quality finding (for example an
    /// output directory that is locked by another run).
    #[error("{0}")]
    Usage(String),

    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The month was committed, but the segment-history table could not be
    /// updated; the message says so and what repairs it.
    #[error("{0}")]
    TableNotUpdated(String),

    /// A bug or an unexpected failure of a library underneath (Polars, linfa).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Exit code for the CLI: 1 = bad data or pipeline file, 2 = internal or I/O.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Data(_) | Error::Usage(_) => 1,
            Error::Io { .. } | Error::TableNotUpdated(_) | Error::Internal(_) => 2,
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<polars::error::PolarsError> for Error {
    fn from(e: polars::error::PolarsError) -> Self {
        Error::Internal(format!("polars: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The first paragraph of a Polars error message, on one line: what went
/// wrong, without the resolved query plan ("FAILED HERE …"), the byte offset
/// or the advice for Polars' Python API (`infer_schema_length`,
/// `ignore_errors=True`, `strict=False`) that follow it.
pub fn polars_message(msg: &str) -> String {
    let first = msg.trim().split("\n\n").next().unwrap_or("");
    let mut out = first.split_whitespace().collect::<Vec<_>>().join(" ");
    for marker in ["Resolved plan until failure", "You might want to try"] {
        if let Some(i) = out.find(marker) {
            out.truncate(i);
        }
    }
    let out = out.trim().trim_end_matches(':').trim();
    if out.is_empty() {
        "the data could not be processed".into()
    } else {
        out.to_string()
    }
}
