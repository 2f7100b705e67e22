//! Shared helpers for the CLI tests: run the real binary on real files in a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    /// The process ended on purpose (no panic, no signal).
    pub fn assert_clean(&self) {
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("internal error"),
            "panic or internal error:\n{}",
            self.text()
        );
        assert!(
            self.code == 0 || self.code == 1 || self.code == 2,
            "unexpected exit code {}:\n{}",
            self.code,
            self.text()
        );
    }
}

pub fn strata(args: &[&str], cwd: &Path) -> Out {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .current_dir(cwd)
        .env("POLARS_MAX_THREADS", "2")
        .output()
        .expect("run strata");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run a Python script of the repo with the test Python (`STRATA_PYTHON`,
/// which scripts/test sets up): its success and what it printed.
pub fn python(script: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let python = std::env::var("STRATA_PYTHON").unwrap_or_else(|_| "python3".into());
    let o = Command::new(&python)
        .arg(repo().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {python} ({e}); run the tests with scripts/test, or set STRATA_PYTHON to a Python with notebooks/requirements.txt and tests/requirements.txt"));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// A Parquet file, whole.
pub fn read_parquet(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// A CSV file (with a header), types inferred.
/// A text column of `df`, as owned strings.
pub fn strings(df: &polars::prelude::DataFrame, c: &str) -> Vec<Option<String>> {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// The generator's planted exception per account, from its `truth.csv`.
pub fn planted(truth: &Path) -> std::collections::HashMap<String, String> {
    let t = read_csv(truth);
    strings(&t, "account_id")
        .into_iter()
        .zip(strings(&t, "planted_exception"))
        .map(|(a, p)| (a.unwrap(), p.unwrap()))
        .collect()
}

/// The sample pipeline, reading `data/{as_of}/…` and writing `out/`.
pub fn sample_pipeline() -> String {
    std::fs::read_to_string(repo().join("pipelines/sample.toml"))
        .unwrap()
        .replace("../data/sample/{as_of}/", "data/{as_of}/")
        .replace("../out/sample", "out")
}

/// The committed sample's `months` and its pipeline in a temp dir
/// (`data/{month}/`, `pipeline.toml`, output `out/`), with `edit` applied to
/// each month's files and `pipeline` to the pipeline's text.
pub fn committed_sample(
    months: &[&str],
    edit: impl Fn(&str, &Path),
    pipeline: impl Fn(String) -> String,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for month in months {
        let to = dir.path().join("data").join(month);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(repo().join("data/sample").join(month)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        edit(month, &to);
    }
    std::fs::write(
        dir.path().join("pipeline.toml"),
        pipeline(sample_pipeline()),
    )
    .unwrap();
    dir
}

pub fn read_csv(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    CsvReadOptions::default()
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temp dir with a generated sample in `data/` and `pipeline.toml` pointing at it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(accounts: usize, format: &str) -> Fixture {
        Fixture::generated(accounts, format, "2026-10", 13)
    }
    /// As [`Fixture::new`], with `months` of data up to `last_month` (the
    /// pipeline still runs as of 2026-10).
    pub fn generated(accounts: usize, format: &str, last_month: &str, months: u32) -> Fixture {
        let (n, m) = (accounts.to_string(), months.to_string());
        Fixture::sampled(
            &[
                "--accounts",
                &n,
                "--seed",
                "3",
                "--format",
                format,
                "--as-of",
                last_month,
                "--months",
                &m,
            ],
            format,
        )
    }
    /// A temp dir with `strata sample ARGS --out data` and `pipeline.toml`
    /// (the sample pipeline, as of 2026-10, reading `data/`).
    pub fn sampled(args: &[&str], format: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec!["sample"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--out", "data"]);
        let out = strata(&all, dir.path());
        assert_eq!(out.code, 0, "{}", out.text());
        let mut text = std::fs::read_to_string(repo().join("pipelines/sample.toml")).unwrap();
        text = text
            .replace("../data/sample/{as_of}/", "data/")
            .replace("as_of = \"2026-11\"", "as_of = \"2026-10\"")
            .replace("../out/sample", "out");
        if format == "parquet" {
            text = text.replace(".csv\"", ".parquet\"");
        }
        std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
        Fixture { dir }
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn run(&self, args: &[&str]) -> Out {
        strata(args, self.dir.path())
    }
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }
    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }
    /// Replace the `n`th data line (1-based, header excluded) of a CSV file.
    pub fn edit_line(&self, rel: &str, n: usize, f: impl FnOnce(&str) -> String) {
        let text = self.read(rel);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[n] = f(&lines[n]);
        self.write(rel, &(lines.join("\n") + "\n"));
    }
    pub fn pipeline(&self) -> String {
        self.read("pipeline.toml")
    }
    /// The pipeline without its `[capacity]` section (for tests that rename
    /// the tiers, which its ratios are keyed by).
    pub fn pipeline_without_capacity(&self) -> String {
        let text = self.pipeline();
        match text.find("# CSM coverage per tier") {
            Some(at) => text[..at].to_string(),
            None => text,
        }
    }
}

/// A temp dir with two monthly data drops, `data/2026-10/` and
/// `data/2026-11/` (the follow-on month), and `pipeline.toml` reading
/// `data/{as_of}/…`.
pub fn months_fixture(accounts: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let n = accounts.to_string();
    for (out, follow) in [("data/2026-10", "0"), ("data/2026-11", "1")] {
        let o = strata(
            &[
                "sample",
                "--accounts",
                &n,
                "--seed",
                "5",
                "--as-of",
                "2026-10",
                "--follow-on",
                follow,
                "--out",
                out,
                "-q",
            ],
            dir.path(),
        );
        assert_eq!(o.code, 0, "{}", o.text());
    }
    std::fs::write(dir.path().join("pipeline.toml"), sample_pipeline()).unwrap();
    dir
}
