//! Segments explained by thresholds in business units: an IMM threshold
//! tree ([`super::imm`]) for k-means, with its price of explainability; a
//! classification tree for communities, with its agreement.

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

use super::imm::{self, Node};
use super::table::{self, Column};
use super::tree::{self, Condition};
use crate::cluster::{Details, Segmentation};
use crate::config::{Pipeline, Transform};
use crate::error::Result;
use crate::features::{ColumnInfo, FeatureMatrix};
use crate::ingest::AccountFrame;

/// Most accounts IMM builds its tree on (every account is then routed).
pub const IMM_POINTS: usize = 50_000;
/// Most accounts the communities' tree is grown on.
pub const TREE_POINTS: usize = 100_000;

/// One leaf of an explanation: a segment and the thresholds that reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplainedLeaf {
    pub segment: usize,
    pub segment_id: u32,
    pub conditions: Vec<Condition>,
    pub text: String,
    /// Accounts the leaf holds, and how many of them are in its segment.
    pub accounts: usize,
    pub in_segment: usize,
}

/// One segmentation explained by a tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explained {
    pub method: String,
    /// "IMM threshold tree" or "classification tree (CART)".
    pub tree: String,
    pub leaves: Vec<ExplainedLeaf>,
    /// Share of accounts whose leaf is their segment.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub agreement: f64,
    /// k-means only: the tree partition's cost, the centres' cost and their
    /// ratio (the price of explainability, ≥ 1 up to rounding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_cost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kmeans_cost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    pub sentence: String,
}

/// Every segmentation explained, the segmentations at once (each tree is the
/// same on any number of threads); in their order, the first error first.
pub fn explain(
    p: &Pipeline,
    frame: &AccountFrame,
    m: &FeatureMatrix,
    segs: &[Segmentation],
) -> Result<Vec<Explained>> {
    use rayon::prelude::*;
    let each: Vec<Result<Option<Explained>>> = segs
        .par_iter()
        .filter(|s| s.k() >= 2)
        .map(|s| {
            let t = std::time::Instant::now();
            let e = match &s.details {
                Details::KMeans(d) => Some(kmeans(p, m, s, &d.centroids)),
                Details::Community(_) => Some(communities(p, frame, s)?),
                Details::Other { .. } => None,
            };
            crate::memory::trace(&format!("{} as thresholds", s.method), t);
            Ok(e)
        })
        .collect();
    let mut out = Vec::new();
    for e in each {
        out.extend(e?);
    }
    Ok(out)
}

fn sample(n: usize, most: usize) -> Vec<usize> {
    let step = n.div_ceil(most.max(1)).max(1);
    (0..n).step_by(step).collect()
}

fn kmeans(p: &Pipeline, m: &FeatureMatrix, s: &Segmentation, centroids: &[Vec<f64>]) -> Explained {
    let k = s.k();
    let d = m.x.ncols();
    let centres = Array2::from_shape_fn((k, d), |(i, j)| centroids[i][j]);
    let rows = sample(m.ids.len(), IMM_POINTS);
    let xs = m.x.select(Axis(0), &rows);
    let ls: Vec<usize> = rows.iter().map(|&i| s.labels[i]).collect();
    let tree = imm::build(xs.view(), &ls, &centres);
    let (tree_cost, leaf) = imm::partition_cost(&tree, m.x.view(), k);
    let kmeans_cost = imm::cost(m.x.view(), &s.labels, &centres);
    let price = tree_cost / kmeans_cost.max(f64::MIN_POSITIVE);
    let columns = business_columns(p, m, &xs);
    let mut leaves = Vec::new();
    imm_leaves(&tree, &columns, &mut Vec::new(), &mut leaves);
    let leaves = tally(leaves, s, &leaf);
    let agreement = agreement(&leaf, &s.labels);
    Explained {
        method: s.method.to_string(),
        tree: "IMM threshold tree".into(),
        sentence: format!(
            "{} threshold rules, one per segment, put {:.0}% of accounts in their k-means segment; the rules' partition costs {:.1}% more than k-means' own (price of explainability {:.3})",
            leaves.len(),
            agreement * 100.0,
            (price - 1.0) * 100.0,
            price
        ),
        leaves,
        agreement,
        tree_cost: Some(tree_cost),
        kmeans_cost: Some(kmeans_cost),
        price: Some(price),
    }
}

fn agreement(a: &[usize], b: &[usize]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len().max(1) as f64
}

/// Each leaf's accounts and how many are in its segment.
fn tally(
    mut leaves: Vec<ExplainedLeaf>,
    s: &Segmentation,
    leaf_of: &[usize],
) -> Vec<ExplainedLeaf> {
    for l in &mut leaves {
        l.segment_id = s.ids.get(l.segment).copied().unwrap_or(0);
        for (i, &f) in leaf_of.iter().enumerate() {
            if f == l.segment {
                l.accounts += 1;
                if s.labels[i] == l.segment {
                    l.in_segment += 1;
                }
            }
        }
    }
    leaves.sort_by_key(|l| l.segment);
    leaves
}

/// The matrix columns as business-unit columns: numbers through the
/// inverse of their scaling and transform, levels and missing-value
/// indicators as levels.
struct Business<'a> {
    info: &'a ColumnInfo,
    column: Column,
    transform: Transform,
}

fn business_columns<'a>(p: &Pipeline, m: &'a FeatureMatrix, xs: &Array2<f64>) -> Vec<Business<'a>> {
    m.columns
        .iter()
        .enumerate()
        .map(|(j, info)| {
            let f = p.features.iter().find(|f| f.name == info.feature);
            let level = match info.role.as_ref() {
                "level" => info.level.clone(),
                "indicator" => Some("missing".to_string()),
                _ => None,
            };
            let transform = f.map_or(Transform::None, |f| f.transform);
            let mut sorted: Vec<f64> = xs
                .column(j)
                .iter()
                .map(|&z| raw(info, transform, z))
                .collect();
            sorted.sort_by(f64::total_cmp);
            Business {
                info,
                transform,
                column: Column {
                    feature: info.feature.clone(),
                    label: f.map_or_else(|| info.label.clone(), |f| f.label.clone()),
                    unit: f.map_or(crate::config::Unit::Number, |f| f.unit),
                    level,
                    sorted,
                },
            }
        })
        .collect()
}

/// A matrix value back in business units.
fn raw(info: &ColumnInfo, t: Transform, z: f64) -> f64 {
    let mult = if info.multiplier.abs() > 1e-300 {
        info.multiplier
    } else {
        1.0
    };
    let u = z / mult * info.scale + info.center;
    match t {
        Transform::None => u,
        Transform::Log1p => u.signum() * u.abs().exp_m1(),
        Transform::Sqrt => u.signum() * u * u,
    }
}

fn imm_leaves(
    node: &Node,
    columns: &[Business],
    path: &mut Vec<(usize, bool, f64)>,
    out: &mut Vec<ExplainedLeaf>,
) {
    match node {
        Node::Leaf(seg) => {
            let cols: Vec<Column> = columns.iter().map(|b| b.column.clone()).collect();
            let conditions = tree::simplify(path, &cols);
            out.push(ExplainedLeaf {
                segment: *seg,
                segment_id: 0,
                text: text(&conditions),
                conditions,
                accounts: 0,
                in_segment: 0,
            });
        }
        Node::Split {
            dim,
            threshold,
            left,
            right,
        } => {
            let b = &columns[*dim];
            let split = raw(b.info, b.transform, *threshold);
            let t = table::round_threshold(&b.column.sorted, split);
            path.push((*dim, false, t));
            imm_leaves(left, columns, path, out);
            path.pop();
            path.push((*dim, true, t));
            imm_leaves(right, columns, path, out);
            path.pop();
        }
    }
}

fn text(conditions: &[Condition]) -> String {
    if conditions.is_empty() {
        return "every account".into();
    }
    conditions
        .iter()
        .map(Condition::text)
        .collect::<Vec<_>>()
        .join(" and ")
}

fn communities(p: &Pipeline, frame: &AccountFrame, s: &Segmentation) -> Result<Explained> {
    let k = s.k();
    let rows = sample(s.labels.len(), TREE_POINTS);
    let table = table::build(p, frame, &rows)?;
    let y: Vec<usize> = rows.iter().map(|&i| s.labels[i]).collect();
    let depth = (usize::BITS - (k - 1).leading_zeros()) as usize;
    let depth = depth.clamp(p.rules.depth, crate::config::MAX_RULE_DEPTH + 1);
    let min_leaf = ((rows.len() as f64 * 0.005).ceil() as usize).max(5);
    let (grown, leaf_of) = tree::grow_routed(&table, &y, depth, min_leaf);
    let class_of: Vec<usize> = leaf_of.iter().map(|&l| grown[l].class).collect();
    let agreement = agreement(&class_of, &y);
    let mut counts = vec![(0usize, 0usize); grown.len()];
    for (i, &l) in leaf_of.iter().enumerate() {
        counts[l].0 += 1;
        counts[l].1 += usize::from(y[i] == grown[l].class);
    }
    let leaves: Vec<ExplainedLeaf> = grown
        .into_iter()
        .zip(counts)
        .map(|(l, (accounts, in_segment))| ExplainedLeaf {
            segment: l.class,
            segment_id: s.ids.get(l.class).copied().unwrap_or(0),
            text: text(&l.conditions),
            conditions: l.conditions,
            accounts,
            in_segment,
        })
        .collect();
    let reached: std::collections::BTreeSet<usize> = leaves.iter().map(|l| l.segment).collect();
    Ok(Explained {
        method: s.method.to_string(),
        tree: "classification tree (CART)".into(),
        sentence: format!(
            "a {depth}-level tree of thresholds puts {:.0}% of accounts{} in their community; {}",
            agreement * 100.0,
            if rows.len() < s.labels.len() {
                format!(" (of {} sampled)", rows.len())
            } else {
                String::new()
            },
            if reached.len() < k {
                format!(
                    "it reaches {} of the {k} communities (the rest are told apart only by the similarity graph)",
                    reached.len()
                )
            } else {
                format!("every one of the {k} communities has a leaf")
            }
        ),
        leaves,
        agreement,
        tree_cost: None,
        kmeans_cost: None,
        price: None,
    })
}
