//! Reading a run directory's files back into the stage types that wrote them.

use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;

use crate::rundir::{read_json, read_manifest};
use crate::schema::{file, ComparisonFile, Manifest};

use super::map::{map, Map};
use crate::cluster::Segmentation;
use crate::compare::Comparison;
use crate::error::{Error, Result};
use crate::features::ColumnInfo;
use crate::history::History;
use crate::quality::QualityReport;

/// `comparison.json` read back into the stage types that wrote it (the
/// cluster parameters are in the manifest, so the report skips them).
pub type Document =
    ComparisonFile<IgnoredAny, Vec<Segmentation>, Comparison, History, crate::decide::Decision>;

/// What the report reads of the manifest's cluster parameters: the settings
/// of each method with a section of its own, by method name.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ClusterSettings {
    #[serde(default)]
    pub methods: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Everything the report shows, read from a run directory.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub comparison: Document,
    pub manifest: Manifest<ClusterSettings, Vec<ColumnInfo>>,
    pub quality: QualityReport,
    pub map: Option<Map>,
}

/// Read a run directory (staged or committed).
pub fn load(dir: &Path) -> Result<RunData> {
    load_with(dir, None)
}

/// [`load`], with the run's feature matrix when the caller holds it (the
/// map reads it instead of `features.parquet`'s copy).
pub fn load_with(dir: &Path, matrix: Option<ndarray::ArrayView2<'_, f64>>) -> Result<RunData> {
    for f in [file::COMPARISON, file::MANIFEST, file::QUALITY] {
        if !dir.join(f).is_file() {
            return Err(Error::Usage(format!(
                "{} has no {f}: give a run directory made by `strata run` (e.g. out/sample/2026-11), not one made with --until features",
                dir.display()
            )));
        }
    }
    let t = std::time::Instant::now();
    let comparison: Document = read_json(&dir.join(file::COMPARISON))?;
    crate::memory::trace("report: comparison.json read", t);
    let t = std::time::Instant::now();
    let map = map(dir, &comparison, matrix)?;
    crate::memory::trace("report: map", t);
    Ok(RunData {
        dir: dir.to_path_buf(),
        manifest: read_manifest(dir)?,
        quality: read_json(&dir.join(file::QUALITY))?,
        comparison,
        map,
    })
}
