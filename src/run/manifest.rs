//! The run's `manifest.json` and its headline, assembled from the stages'
//! results. (The types live in [`crate::schema`], a leaf every stage may
//! read; their assembly lives here, where the stages' results meet.)

use std::fs::File;
use std::path::Path;

use rayon::prelude::*;

use super::{Analysis, RunOptions};
use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::features::FeatureMatrix;
use crate::month::Month;
use crate::quality::QualityReport;
use crate::schema::{Headline, Input, Manifest};

/// What `strata history` lists for the month.
pub(super) fn headline(report: &QualityReport, a: Option<&Analysis>) -> Headline {
    let mut h = Headline {
        data_warnings: report.warning_count(),
        ..Headline::default()
    };
    let Some(a) = a else {
        return h;
    };
    for (method, s) in a.methods.iter().zip(&a.segmentations) {
        method.headline(s, &mut h);
    }
    for s in &a.segmentations {
        h.segments.insert(s.method.to_string(), s.k());
    }
    for mc in &a.comparison.methods {
        if let Some(ag) = &mc.agreement {
            h.ari_vs_tiers.insert(mc.method.to_string(), ag.ari);
        }
        if let Some(v) = mc.verdict {
            h.verdict
                .insert(mc.method.to_string(), v.word().to_string());
        }
    }
    if a.comparison.tiers.is_some() {
        h.exceptions = Some(a.comparison.exceptions.len());
    }
    for o in &a.comparison.outcomes {
        h.outcomes.insert(o.label.clone(), o.sentence.clone());
    }
    if let Some(t) = &a.history.track_record {
        let mut f = crate::schema::FollowedUp::default();
        for r in &t.rows {
            if r.flag == "unflagged" {
                f.unflagged += r.accounts;
                f.unflagged_left += r.left;
            } else {
                f.flagged += r.accounts;
                f.left += r.left;
                f.acted += r.moved_as_suggested;
            }
        }
        h.followed_up = Some(f);
    }
    if a.history.previous_as_of.is_some() {
        for mh in &a.history.methods {
            h.drift_ari.insert(mh.method.to_string(), mh.drift_ari);
        }
        h.new_accounts = Some(a.history.new_accounts);
        h.lost_accounts = Some(a.history.lost_accounts);
    }
    h
}

/// Every input file of the run with its sha256, hashed in parallel.
pub(super) fn inputs(report: &QualityReport) -> Result<Vec<Input>> {
    let hashed: Vec<Result<(String, u64)>> = report
        .sources
        .par_iter()
        .map(|s| sha256_file(Path::new(&s.file)))
        .collect();
    let mut inputs = Vec::new();
    for (s, h) in report.sources.iter().zip(hashed) {
        let (sha256, bytes) = h?;
        inputs.push(Input {
            source: s.name.clone(),
            path: s.file.clone(),
            sha256,
            bytes,
            rows_read: s.rows_read,
            rows_used: s.rows_used,
        });
    }
    Ok(inputs)
}

/// The manifest of a run of `p` as of `as_of`.
#[allow(clippy::too_many_arguments)]
pub(super) fn manifest<'a>(
    p: &'a Pipeline,
    opts: &RunOptions,
    as_of: Month,
    matrix: &'a FeatureMatrix,
    inputs: Vec<Input>,
    headline: Headline,
    a: Option<&Analysis>,
    segment_history_file: Option<String>,
    stage_seconds: std::collections::BTreeMap<&'static str, f64>,
) -> Manifest<&'a crate::cluster::ClusterConfig, &'a [crate::features::ColumnInfo]> {
    Manifest {
        strata_version: crate::VERSION.to_string(),
        pipeline: p.file.display().to_string(),
        pipeline_name: p.name.clone(),
        pipeline_sha256: p.hash.clone(),
        as_of: as_of.to_string(),
        seed: p.seed,
        threads: rayon::current_num_threads(),
        accounts: matrix.ids.len(),
        inputs,
        headline,
        previous_as_of: a.and_then(|a| a.history.previous_as_of.clone()),
        next_segment_ids: a.map(|a| a.history.next_ids.clone()).unwrap_or_default(),
        segment_history_file,
        pipeline_text: p.text.clone(),
        cluster: &p.cluster,
        features: &matrix.columns,
        stage_seconds: stage_seconds
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        features_from: match &opts.feature_table {
            Some(t) => format!("feature table {}", t.display()),
            None => "sources".to_string(),
        },
        until: if opts.features_only {
            "features"
        } else {
            "all"
        }
        .to_string(),
    }
}

/// sha256 of a file, streamed.
fn sha256_file(path: &Path) -> Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = File::open(path).map_err(|e| Error::io("hashing", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("hashing", path, e))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((format!("{:x}", h.finalize()), total))
}
