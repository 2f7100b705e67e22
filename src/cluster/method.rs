//! The segment-discovery methods, as one type the later stages iterate over.
//!
//! A method turns the feature matrix into one [`Segmentation`]; the compare,
//! history, report and export stages read only what a `Segmentation` carries
//! (its `method` name, labels, IDs, sizes, details), so they handle every
//! method the same way. Adding a method is one new folder in `cluster/` with
//! a type implementing [`Method`], and one entry in [`REGISTRY`].
//!
//! The first method of a run is its *primary* one: exceptions come from it
//! unless `tiers.exceptions_from` names another, and the report's map colours
//! its segments.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use ndarray::ArrayView2;

use super::community::Communities;
use super::kmeans::KMeans;
use super::stability::Draw;
use super::{ClusterConfig, Segmentation};
use crate::error::Result;
use crate::schema::Headline;
use crate::settings::Problems;

/// What a method's stability runs share ([`Method::refit_shared`]).
pub type Shared = Option<std::sync::Arc<dyn Any + Send + Sync>>;

/// A segment-discovery method.
pub trait Method: Debug + Send + Sync {
    /// Its name in every output: `method` in `comparison.json`, the column
    /// `{name}_segment` in `assignments.parquet`, the manifest's headline.
    /// Lower case, letters, digits and `_`.
    fn name(&self) -> &'static str;
    /// Its name for people ("k-means"), in the report and the CLI.
    fn label(&self) -> &'static str;
    /// What its groups are called in text, plural ("segments").
    fn noun(&self) -> &'static str {
        "segments"
    }
    /// What one group is called in a row label ("Segment 3").
    fn member(&self) -> &'static str {
        "Segment"
    }
    /// The manifest's timing key for its wall time.
    fn timing_key(&self) -> &'static str {
        self.name()
    }
    /// The pipeline-file section of its own settings (`[name]`), if it has
    /// one; the built-in methods' sections are part of [`ClusterConfig`].
    fn section(&self) -> Option<&'static str> {
        None
    }
    /// Its section's table (`None`: absent) checked into its settings, the
    /// problems going to `problems` (see [`crate::settings::read_section`]);
    /// [`Method::fit`] finds them with [`ClusterConfig::settings`].
    fn settings(&self, _raw: Option<&toml::Value>, _problems: &mut Problems) -> Option<Settings> {
        None
    }
    /// Whether [`Method::fit`] uses last month's segment of each account
    /// (a warm start); when false the run does not look them up.
    fn wants_previous(&self, _cfg: &ClusterConfig) -> bool {
        false
    }
    /// The name, for people, of a first part of [`Method::fit`] that uses
    /// every core ("similarity graph"), when the method has one and a
    /// serial part after it (default: none). The run does each method's
    /// first part in turn with [`Method::prepare`], then fits the methods
    /// side by side with [`Method::fit_prepared`]: one method's serial steps
    /// (Leiden's local moves) leave a core to the others' work.
    fn preparation(&self) -> Option<&'static str> {
        None
    }
    /// That first part, when [`Method::preparation`] names one; its result
    /// goes to [`Method::fit_prepared`]. The default does nothing.
    fn prepare(&self, _x: ArrayView2<f64>, _cfg: &ClusterConfig, _seed: u64) -> Result<Prepared> {
        Ok(Prepared::nothing())
    }
    /// [`Method::fit`] from what [`Method::prepare`] made; the same
    /// segmentation. The default ignores it and fits.
    fn fit_prepared(
        &self,
        x: ArrayView2<f64>,
        cfg: &ClusterConfig,
        seed: u64,
        previous: Option<&[Option<u32>]>,
        _prepared: Prepared,
    ) -> Result<Segmentation> {
        self.fit(x, cfg, seed, previous)
    }
    /// Segment the accounts (rows of `x`). `previous`: last month's segment
    /// ID by this method of each account (None for new accounts), when
    /// [`Method::wants_previous`] and there is a previous run.
    fn fit(
        &self,
        x: ArrayView2<f64>,
        cfg: &ClusterConfig,
        seed: u64,
        previous: Option<&[Option<u32>]>,
    ) -> Result<Segmentation>;
    /// Work every stability run can share, done once on the `pool` of
    /// accounts the runs draw `per_run` accounts each from (default: none),
    /// or taken from `fitted.reuse` when the fit already did it.
    fn refit_shared(
        &self,
        _pool: ArrayView2<f64>,
        _per_run: usize,
        _fitted: &Segmentation,
        _cfg: &ClusterConfig,
    ) -> Shared {
        None
    }
    /// Refit on a stability run's accounts `draw`, with the settings
    /// `fitted` was found with (k-means keeps its k) and what
    /// [`Method::refit_shared`] made: labels per row of `draw.x`.
    fn refit(
        &self,
        draw: Draw<'_>,
        shared: &Shared,
        fitted: &Segmentation,
        cfg: &ClusterConfig,
        seed: u64,
    ) -> Result<Vec<usize>>;
    /// One line for the CLI's progress ("k = 5", "12 communities").
    fn summary(&self, s: &Segmentation) -> String {
        format!("{} {}", s.k(), self.noun())
    }
    /// One line for the end-of-run summary: what it found and how.
    fn describe(&self, s: &Segmentation) -> String {
        format!("{}: {} {}", self.label(), s.k(), self.noun())
    }
    /// Its wall seconds for the manifest's `stage_seconds`, with those of
    /// its own steps (choosing k; the kNN graph and community detection).
    fn stage_seconds(&self, s: &Segmentation) -> Vec<(&'static str, f64)> {
        vec![(self.timing_key(), s.seconds)]
    }
    /// What it adds to the manifest's headline beyond its segment count
    /// (the communities' modularity).
    fn headline(&self, _s: &Segmentation, _h: &mut Headline) {}
}

/// What a method's [`Method::prepare`] made for its fit, and one line on it
/// for the CLI's progress.
pub struct Prepared {
    pub value: Option<Box<dyn Any + Send>>,
    pub summary: String,
}

impl Prepared {
    /// Nothing prepared.
    pub fn nothing() -> Prepared {
        Prepared {
            value: None,
            summary: String::new(),
        }
    }
    /// The value, when it is a `T`.
    pub fn take<T: Any>(self) -> Option<T> {
        self.value?.downcast().ok().map(|b| *b)
    }
}

/// A method's checked settings: its own type behind `Any` (so only what its
/// checks made can reach its fit), and how they read in the manifest.
#[derive(Clone)]
pub struct Settings {
    value: Arc<dyn Any + Send + Sync>,
    shown: serde_json::Value,
}

impl Settings {
    pub fn new<T: Any + Send + Sync + serde::Serialize>(value: T) -> Settings {
        let shown = serde_json::to_value(&value).unwrap_or(serde_json::Value::Null);
        Settings {
            value: Arc::new(value),
            shown,
        }
    }
    /// The settings, when they are a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }
}

impl Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Settings({})", self.shown)
    }
}

impl serde::Serialize for Settings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.shown.serialize(s)
    }
}

/// The methods every run uses, primary first.
pub static REGISTRY: &[&(dyn Method + 'static)] = &[&KMeans, &Communities];

/// The methods of one run: the registry unless a caller (a test, a library
/// user) brings its own.
#[derive(Debug, Clone)]
pub struct Methods(pub Vec<&'static dyn Method>);

impl Default for Methods {
    fn default() -> Self {
        Methods(REGISTRY.to_vec())
    }
}

impl Methods {
    /// The registry's methods followed by `extra`.
    pub fn with(extra: &'static dyn Method) -> Self {
        let mut m = Methods::default();
        m.0.push(extra);
        m
    }
    pub fn iter(&self) -> impl Iterator<Item = &'static dyn Method> + '_ {
        self.0.iter().copied()
    }
}

/// A registered method's label for people; a method the registry does not
/// know (a library user's own) is called by its name.
pub fn label(name: &str) -> String {
    by_name(name).map_or_else(|| name.replace('_', " "), |m| m.label().to_string())
}

/// A registered method's plural noun; "segments" for others.
pub fn noun(name: &str) -> &'static str {
    by_name(name).map_or("segments", |m| m.noun())
}

/// What one group of a registered method is called; "Segment" for others.
pub fn member(name: &str) -> &'static str {
    by_name(name).map_or("Segment", |m| m.member())
}

/// The registered method of that name.
pub fn by_name(name: &str) -> Option<&'static dyn Method> {
    REGISTRY.iter().copied().find(|m| m.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_column_safe() {
        let names: Vec<&str> = REGISTRY.iter().map(|m| m.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        for n in &names {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{n}"
            );
        }
    }

    #[test]
    fn unknown_methods_are_named_plainly() {
        assert_eq!(label("kmeans"), "k-means");
        assert_eq!(noun("community"), "communities");
        assert_eq!(label("by_region"), "by region");
        assert_eq!(noun("by_region"), "segments");
        assert_eq!(member("community"), "Community");
        assert_eq!(member("by_region"), "Segment");
    }
}
