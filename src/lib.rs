//! # strata
//!
//! Customer-segment discovery for Customer Success teams.
//!
//! CS leaders serve accounts by *tier* (high touch, hybrid, tech touch, …), and
//! tiers are usually set by one rule or by feel. strata derives segments from
//! what accounts actually look like and do — firmographics, product usage,
//! survey answers, revenue — and compares them with the tiers.
//!
//! Data flows one way through stages, each a module with a typed hand-off:
//!
//! | stage | module | in → out |
//! |---|---|---|
//! | configure | [`config`] | pipeline TOML → [`config::Pipeline`] |
//! | ingest | [`ingest`] | the user's CSV/Parquet sources → [`ingest::AccountFrame`] + [`quality::QualityReport`] |
//! | features | [`features`] | account frame → [`features::FeatureMatrix`] |
//! | cluster | [`cluster`] | matrix → one [`cluster::Segmentation`] per method (a folder each: [`cluster::kmeans`], [`cluster::community`]) |
//! | compare | [`compare`] | segmentations + tiers → [`compare::Comparison`] |
//! | identify | [`history::identify`] | segmentations + profiles + last month's run → stable IDs and carried names, right after clustering |
//! | history | [`history::track`] | identified segments + comparison + last month's run → migration, drift, tier and exception changes |
//! | report | [`report`] | a run directory's outputs → `report.html` + `report.md` |
//! | run | [`run`] | the chain above, writing a run directory atomically ([`rundir`]) |
//! | sql | [`sql`] | pipeline → the feature stage as one Spark SQL or DuckDB query (its output comes back through [`ingest::from_table`]) |
//! | export | [`export`] | a run's assignments → CRM-ready `exceptions.csv` and `assignments.csv` |
//! | lakehouse | [`lakehouse`] | each committed month's assignments → the `segment_history` Delta table |
//!
//! [`sample`] generates a realistic dataset with planted segments. The
//! leaves every stage may use: [`error`], [`quality`], [`schema`], [`month`],
//! [`guard`], [`settings`], [`memory`].

pub mod cluster;
pub mod compare;
pub mod config;
pub mod decide;
pub mod error;
pub mod export;
pub mod features;
pub mod guard;
pub mod history;
pub mod ingest;
pub mod lakehouse;
pub mod memory;
pub mod month;
pub mod partition;
pub mod quality;
pub mod report;
pub mod run;
pub mod rundir;
pub mod sample;
pub mod schema;
pub mod settings;
pub mod sql;

pub use error::{Error, Result};

/// strata's version, recorded in every run's manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
