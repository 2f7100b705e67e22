//! The log sink: where progress, notes and errors go.

use strata::run::Progress;
use strata::Error;

use super::args::LogFormat;

/// Where progress goes: a spinner per stage on a terminal, plain lines when
/// stderr is a file or pipe (cron, systemd), JSON lines with --log-format json.
pub struct Log {
    pub quiet: bool,
    pub format: LogFormat,
    tty: bool,
    bar: std::cell::RefCell<Option<(indicatif::ProgressBar, std::time::Instant)>>,
}

impl Log {
    pub fn new(quiet: bool, format: LogFormat) -> Log {
        use std::io::IsTerminal;
        Log {
            quiet,
            format,
            tty: std::io::stderr().is_terminal(),
            bar: Default::default(),
        }
    }
    pub fn json(&self, level: &str, event: &str, stage: &str, detail: &str) {
        let line = serde_json::json!({
            "time": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            "level": level,
            "event": event,
            "stage": stage,
            "message": detail,
        });
        eprintln!("{line}");
    }
    /// Every finding of a data-quality report as one JSON event each
    /// (`event: "finding"`), for log collectors; nothing in text mode (the
    /// report is printed whole there).
    pub fn findings(&self, report: &strata::quality::QualityReport) {
        if self.format != LogFormat::Json {
            return;
        }
        for f in &report.findings {
            let level = match f.severity {
                strata::quality::Severity::Error => "error",
                _ => "warn",
            };
            let line = serde_json::json!({
                "time": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                "level": level,
                "event": "finding",
                "stage": "ingest",
                "code": f.code,
                "source": f.source,
                "file": f.file,
                "column": f.column,
                "count": f.count,
                "message": f.message,
                "hint": f.hint,
            });
            eprintln!("{line}");
        }
    }
    pub fn error(&self, e: &Error) {
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
