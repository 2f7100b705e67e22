//! `[run]`: name, as-of month, seed, threads and the output folder.

use std::path::{Path, PathBuf};

use super::raw::*;
use super::*;
use crate::month::Month;

/// The checked `[run]` table.
pub(super) struct RunSection {
    pub name: String,
    pub as_of: Option<Month>,
    pub seed: u64,
    pub threads: Option<usize>,
    pub output: PathBuf,
    pub excel_csv: bool,
}

pub(super) fn validate(
    run: RawRun,
    file: &Path,
    base: &Path,
    problems: &mut Problems,
) -> RunSection {
    let as_of = match run.as_of.as_deref() {
        Some(s) => match Month::parse(s) {
            Some(m) => Some(m),
            None => {
                problems.push(
                    "run.as_of",
                    format!("`{s}` is not a month; write it as YYYY-MM, e.g. \"2026-10\""),
                );
                None
            }
        },
        None => None,
    };
    if run.threads == Some(0) {
        problems.push(
            "run.threads",
            "must be at least 1 (leave it out to use every core)",
        );
    }
    let name = run.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into())
    });
    let output = resolve(base, run.output.as_deref().unwrap_or("out"));
    if output.is_file() {
        problems.push(
            "run.output",
            format!(
                "{} is a file, not a folder: runs go in a folder of run directories (<output>/<as-of>/); give another path (relative to the pipeline file's folder)",
                output.display()
            ),
        );
    }

    let excel_csv = choice(
        problems,
        "run.csv",
        run.csv.as_deref(),
        false,
        &[("import", false), ("excel", true)],
    );
    RunSection {
        name,
        as_of,
        seed: run.seed.unwrap_or(42),
        threads: run.threads,
        output,
        excel_csv,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dir_with, problems, MINIMAL};

    #[test]
    fn as_of_and_threads_are_checked() {
        let d = dir_with(&["accounts.csv"]);
        let text = MINIMAL.replace("as_of = \"2026-10\"", "as_of = \"Oct\"\nthreads = 0");
        let ps = problems(&text, &d);
        assert!(
            ps.iter()
                .any(|p| p.key == "run.as_of" && p.message.contains("YYYY-MM")),
            "{ps:?}"
        );
        assert!(ps.iter().any(|p| p.key == "run.threads"), "{ps:?}");
    }

    #[test]
    fn an_output_that_is_a_file_is_refused() {
        let d = dir_with(&["accounts.csv", "taken"]);
        let ps = problems(
            &MINIMAL.replace("[run]\n", "[run]\noutput = \"taken\"\n"),
            &d,
        );
        assert!(
            ps.iter()
                .any(|p| p.key == "run.output" && p.message.contains("is a file")),
            "{ps:?}"
        );
    }
}
