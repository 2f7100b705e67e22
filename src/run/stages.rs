//! The bookkeeping every stage of a run shares: it is announced, timed,
//! its memory traced (`STRATA_TRACE`) and what it freed returned to the
//! system, and what it made is said when it is done.

use std::collections::BTreeMap;
use std::time::Instant;

use super::Progress;
use crate::error::Result;
use crate::memory;

/// A run's stages so far: where progress goes and each stage's wall seconds
/// (the manifest's `stage_seconds`).
pub(super) struct Stages<'a> {
    pub progress: &'a dyn Progress,
    pub seconds: BTreeMap<&'static str, f64>,
}

impl<'a> Stages<'a> {
    pub fn new(progress: &'a dyn Progress) -> Self {
        Stages {
            progress,
            seconds: BTreeMap::new(),
        }
    }

    /// Stage `name`: announced, `f` run and timed under `key`, traced, freed
    /// memory released, then `done` says what it made. A failing stage is
    /// not said to be done.
    pub fn run<T>(
        &mut self,
        name: &str,
        key: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T>,
        done: impl FnOnce(&T) -> String,
    ) -> Result<T> {
        self.progress.stage(name);
        let t = Instant::now();
        let out = f(self)?;
        self.seconds.insert(key, t.elapsed().as_secs_f64());
        memory::trace(key, t);
        memory::release_freed();
        self.progress.done(name, &done(&out));
        Ok(out)
    }

    /// `f` timed under `key`, with no progress of its own.
    pub fn time<T>(&mut self, key: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.record(key, t.elapsed().as_secs_f64());
        out
    }

    pub fn record(&mut self, key: &'static str, seconds: f64) {
        self.seconds.insert(key, seconds);
    }
}
