//! The analyst's report and the exploration notebook, on a real run of the
//! committed sample (two months, so every section has content).
//!
//! These tests need Debian's `chromium` and a Python with the packages in
//! notebooks/requirements.txt; `.ci/run` installs both. Set STRATA_CHROMIUM /
//! STRATA_PYTHON to use other binaries.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The sample's two months, run once for every test in this file, the way
/// `notebooks/README.md` makes them: its own command, in a copy of the
/// repository's pipeline, sample data and notebook. The output folder.
fn sample_run() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let (copy, run) = notebook_readme_lines();
        let args: Vec<&str> = run.split_whitespace().collect();
        let o = strata(&args, &copy);
        assert_eq!(
            o.code,
            0,
            "`{run}` failed in {}:\n{}",
            copy.display(),
            o.text()
        );
        copy.join("out/sample")
    })
}

/// A copy of what `notebooks/README.md`'s commands read (the sample pipeline,
/// the committed sample's two months, the notebook) and the README's strata
/// command without `cargo run --release --`.
fn notebook_readme_lines() -> (PathBuf, String) {
    let copy = tempfile::tempdir().unwrap().keep();
    for month in ["2026-10", "2026-11"] {
        let from = repo().join("data/sample").join(month);
        let to = copy.join("data/sample").join(month);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(&from).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
    for f in ["pipelines/sample.toml", "notebooks/explore.ipynb"] {
        std::fs::create_dir_all(copy.join(f).parent().unwrap()).unwrap();
        std::fs::copy(repo().join(f), copy.join(f)).unwrap();
    }
    let run = readme_commands()
        .into_iter()
        .find_map(|l| {
            l.strip_prefix("cargo run --release -- ")
                .map(str::to_string)
        })
        .expect("notebooks/README.md runs strata with `cargo run --release -- ...`");
    (copy, run)
}

/// The shell lines of notebooks/README.md's first `sh` block, comments cut.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("notebooks/README.md")).unwrap();
    let block = text
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a ```sh block in notebooks/README.md");
    block
        .lines()
        .map(|l| l.split("  #").next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

const SECTIONS: [&str; 11] = [
    "summary",
    "quality",
    "k-selection",
    "modularity",
    "profiles",
    "sizes",
    "tiers",
    "exceptions",
    "outcomes",
    "migration",
    "map",
];

fn chromium() -> String {
    std::env::var("STRATA_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

#[test]
fn report_renders_in_headless_chromium_without_errors() {
    let run = sample_run().join("2026-11");
    let page = run.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: one inline script, nothing fetched.
    for bad in [
        "<script src",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(bad), "report.html contains {bad}");
    }
    assert_eq!(html.matches("<script>").count(), 1, "one inline script");
    // Choosing k gives each scored k's prediction strength with its margin.
    assert!(
        html.contains("Prediction strength by k") && html.contains("<th>standard error</th>"),
        "no prediction-strength table"
    );
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-2026-11.png");
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ];
    let run_chromium = |extra: &[String]| {
        Command::new(chromium())
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap_or_else(|e| panic!("cannot start {} ({e}): install Debian's chromium (apt-get install chromium) or set STRATA_CHROMIUM", chromium()))
    };
    let dom = run_chromium(&["--dump-dom".into()]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    for line in log.lines() {
        assert!(
            !line.contains("CONSOLE")
                && !line.contains("Uncaught")
                && !line.contains("Failed to load resource"),
            "browser console: {line}"
        );
    }
    for id in SECTIONS {
        let start = dom_text
            .find(&format!("<section id=\"{id}\""))
            .unwrap_or_else(|| panic!("section {id} missing"));
        let end = dom_text[start..].find("</section>").unwrap() + start;
        let body = &dom_text[start..end];
        assert!(body.contains("<h2>"), "{id} has no heading");
        if !["summary", "quality", "exceptions", "outcomes"].contains(&id) {
            assert!(
                body.contains("<svg")
                    || body.contains("class=\"heat\"")
                    || body.contains("class=\"bars\""),
                "{id} has no chart"
            );
        }
    }
    assert!(
        dom_text.contains("Compared with 2026-10"),
        "migration summary"
    );
    assert!(dom_text.contains("Upgrade candidates") && dom_text.contains("Downgrade candidates"));
    assert!(dom_text.contains("id=\"ex-table\""), "the exceptions table");
    let shot_run = run_chromium(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,11000".into(),
    ]);
    assert!(
        shot_run.status.success(),
        "{}",
        String::from_utf8_lossy(&shot_run.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 100_000,
        "screenshot looks empty ({} bytes)",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn report_command_rerenders_identically_from_outputs_alone() {
    let run = sample_run().join("2026-10");
    let before = std::fs::read(run.join("report.html")).unwrap();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("First committed run"), "{md}");
    assert!(md.contains("## Top exceptions"));
    // Copy the outputs elsewhere (without the report) and render there.
    let copy = tempfile::tempdir().unwrap();
    let dir = copy.path().join("2026-10");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&run).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("report.") {
            std::fs::copy(e.path(), dir.join(&name)).unwrap();
        }
    }
    let o = strata(&["report", dir.to_str().unwrap()], copy.path());
    assert_eq!(o.code, 0, "{}", o.text());
    assert!(
        std::fs::read(dir.join("report.html")).unwrap() == before,
        "re-rendered report differs"
    );
    // A comparison.json this strata cannot read (written by another version,
    // say: a field missing): an error naming the file and what to do, no panic.
    let cpath = dir.join("comparison.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cpath).unwrap()).unwrap();
    c["comparison"].as_object_mut().unwrap().remove("profiles");
    std::fs::write(&cpath, c.to_string()).unwrap();
    let o = strata(&["report", dir.to_str().unwrap()], copy.path());
    assert_ne!(o.code, 0, "{}", o.text());
    assert!(
        o.stderr.contains("comparison.json")
            && o.stderr.contains("profiles")
            && o.stderr.contains("Re-run that month")
            && !o.stderr.contains("panicked"),
        "{}",
        o.stderr
    );
    // Not a run directory: a clear error.
    let o = strata(&["report", copy.path().to_str().unwrap()], copy.path());
    assert_eq!(o.code, 1, "{}", o.text());
    assert!(
        o.stderr.contains("not a committed run directory"),
        "{}",
        o.stderr
    );
}

/// A new report section is one entry of the table the nav, the page and the
/// Markdown digest are generated from.
#[test]
fn a_new_section_is_one_table_entry() {
    use strata::report::{self, Section, SECTIONS};
    let data = report::load(&sample_run().join("2026-11")).unwrap();
    let mut sections = SECTIONS.to_vec();
    sections.push(Section {
        id: "capacity",
        nav: "Capacity",
        when: |r| r.manifest.accounts > 0,
        html: |h, r| {
            h.push_str(&format!(
                "<section id=\"capacity\"><h2>Capacity</h2><p>{} accounts</p></section>\n",
                r.manifest.accounts
            ));
            Ok(())
        },
        markdown: Some((1, |m, _| m.push_str("\n## Capacity\n\nnew part\n"))),
    });
    let page = report::page(&data, &sections).unwrap();
    let base = report::html(&data).unwrap();
    assert!(page.contains("<a href=\"#map\">Map</a><a href=\"#capacity\">Capacity</a></nav>"));
    assert!(page.contains("<section id=\"capacity\"><h2>Capacity</h2><p>2"));
    assert_eq!(
        page.replace("<a href=\"#capacity\">Capacity</a>", "")
            .replace(
                &format!(
                    "<section id=\"capacity\"><h2>Capacity</h2><p>{} accounts</p></section>\n",
                    data.manifest.accounts
                ),
                ""
            ),
        base,
        "the entry adds its link and its section, nothing else"
    );
    // In the digest at its place: after the lead and before the tier table's
    // part (place 1, which the table already has: ties keep table order).
    let md = report::digest(&data, &sections);
    let at = |s: &str| {
        md.find(s)
            .unwrap_or_else(|| panic!("{s} missing from {md}"))
    };
    assert!(at("## Agreement with today's tiers") < at("## Capacity"));
    assert!(at("## Capacity") > at("| segment | name | accounts"));
    assert!(at("## Capacity") < at("## Since last month"));
    // A section the run has nothing for is left out, link and all.
    sections.last_mut().unwrap().when = |_| false;
    assert_eq!(report::page(&data, &sections).unwrap(), base);
}

/// notebooks/README.md's lines, as written: the run (made by
/// [`sample_run`]), then `jupyter execute` by the shell in the copy, whose
/// `.venv` is the test virtualenv. `pip install` must name the requirements
/// file the test virtualenv was made from; `jupyter lab` waits for a
/// browser, so it is the one line left out.
#[test]
fn notebook_runs_as_its_readme_says() {
    let copy = sample_run()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let python = PathBuf::from(std::env::var("STRATA_PYTHON").expect(
        "STRATA_PYTHON names the test virtualenv's python: run the tests with scripts/test",
    ));
    let venv = python.parent().unwrap().parent().unwrap();
    std::os::unix::fs::symlink(venv, copy.join(".venv")).unwrap();
    let mut executed = false;
    for line in readme_commands() {
        if line.starts_with("cargo run") {
            continue; // sample_run() ran it
        } else if line.contains("pip install") {
            assert!(line.contains("-r notebooks/requirements.txt"), "{line}");
        } else if line.contains("jupyter lab") {
            continue;
        } else if line.contains("jupyter execute") {
            let o = Command::new("sh")
                .arg("-c")
                .arg(&line)
                .current_dir(&copy)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(o.status.success(), "`{line}` failed:\n{text}");
            executed = true;
        } else {
            panic!("notebooks/README.md has a line this test does not know: {line}");
        }
    }
    assert!(executed, "no `jupyter execute` line in notebooks/README.md");
}

#[test]
fn notebook_runs_top_to_bottom_against_the_sample_run() {
    let run = sample_run().join("2026-11");
    let (ok, text) = python("notebooks/run_notebook.py", &[run.as_os_str()]);
    assert!(
        ok,
        "the notebook failed (needs notebooks/requirements.txt: run the tests with scripts/test):\n{text}"
    );
    assert!(text.contains("code cells ran"), "{text}");
    assert!(text.contains("DuckDB read it"), "{text}");
}

#[test]
fn exceptions_table_sorts_filters_and_searches_in_chromium() {
    let page = sample_run().join("2026-11/report.html");
    let browser = which_chromium();
    let (ok, text) = python(
        "tests/drive_report.py",
        &[page.as_os_str(), std::ffi::OsStr::new(&browser)],
    );
    assert!(ok, "driving the report failed:\n{text}");
    for n in [
        "search ",
        "upgrade: ",
        "sorted by confidence",
        "heatmap tooltips",
        "'100k' keeps",
        "header sticks",
        "decision box at",
        "no sideways scroll at 800 px",
        "chart text >= 11 px",
        "no console errors",
    ] {
        assert!(text.contains(n), "`{n}` not checked:\n{text}");
    }
    eprintln!("{text}");
}

/// The Chromium binary's path (Playwright needs a path, not a name).
fn which_chromium() -> String {
    let c = chromium();
    if c.contains('/') {
        return c;
    }
    let o = Command::new("sh")
        .args(["-c", &format!("command -v {c}")])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(!path.is_empty(), "no {c} on PATH: run the tests with scripts/test, which installs it, or set STRATA_CHROMIUM");
    path
}
