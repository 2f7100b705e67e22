//! A test-only method written the way a built-in one is: its own folder with
//! its settings section and their checks (`settings.rs`) beside the method
//! (here), registered by one line (`Methods::with(&QUANTILES)`). It cuts the
//! accounts into `bands` equal-count bands of one matrix column.

mod settings;

use ndarray::ArrayView2;
use strata::cluster::{kmeans, ClusterConfig, Details, Draw, Method, Segmentation, Shared};
use strata::settings::Problems;

pub use settings::QuantileSettings;

/// The method.
#[derive(Debug)]
pub struct Quantiles;

/// Its one registration: `Methods::with(&QUANTILES)`.
pub static QUANTILES: Quantiles = Quantiles;

impl Method for Quantiles {
    fn name(&self) -> &'static str {
        "quantiles"
    }
    fn label(&self) -> &'static str {
        "quantile bands"
    }
    fn noun(&self) -> &'static str {
        "bands"
    }
    fn member(&self) -> &'static str {
        "Band"
    }
    fn section(&self) -> Option<&'static str> {
        Some("quantiles")
    }
    fn settings(
        &self,
        raw: Option<&toml::Value>,
        problems: &mut Problems,
    ) -> Option<strata::cluster::method::Settings> {
        QuantileSettings::check(raw, problems).map(strata::cluster::method::Settings::new)
    }
    fn fit(
        &self,
        x: ArrayView2<f64>,
        cfg: &ClusterConfig,
        seed: u64,
        _previous: Option<&[Option<u32>]>,
    ) -> strata::Result<Segmentation> {
        let s = settings_of(cfg)?;
        let labels = bands(x, s);
        Ok(Segmentation {
            method: self.name().into(),
            sizes: strata::cluster::sizes(&labels),
            ids: strata::cluster::first_ids(&labels),
            labels,
            seed,
            seconds: 0.0,
            details: Details::Other {
                values: [
                    ("bands".to_string(), s.bands as f64),
                    ("column".to_string(), s.column as f64),
                ]
                .into_iter()
                .collect(),
            },
            stability: None,
            neighbours: None,
            reuse: None,
        })
    }
    fn refit(
        &self,
        draw: Draw<'_>,
        _shared: &Shared,
        _fitted: &Segmentation,
        cfg: &ClusterConfig,
        _seed: u64,
    ) -> strata::Result<Vec<usize>> {
        Ok(bands(draw.x, settings_of(cfg)?))
    }
}

/// The checked settings; only the pipeline's checks make them.
fn settings_of(cfg: &ClusterConfig) -> strata::Result<&QuantileSettings> {
    cfg.settings::<QuantileSettings>("quantiles")
        .ok_or_else(|| strata::Error::Internal("quantiles: settings not checked".into()))
}

/// Equal-count bands of the settings' column (ties by row), largest first.
fn bands(x: ArrayView2<f64>, s: &QuantileSettings) -> Vec<usize> {
    let column = s.column.min(x.ncols() - 1);
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    order.sort_by(|&a, &b| x[[a, column]].total_cmp(&x[[b, column]]).then(a.cmp(&b)));
    let mut raw = vec![0; x.nrows()];
    for (rank, &i) in order.iter().enumerate() {
        raw[i] = rank * s.bands / x.nrows();
    }
    kmeans::canonical(&raw).0
}
