//! Segment profiles: what each segment looks like, and a readable name.
//!
//! For every segment: size, share of accounts and of the value feature (ARR),
//! medians of the raw numeric features, the most common level of each
//! categorical feature, and the **distinguishing features** — matrix columns
//! ranked by Welch's t statistic of the segment against all other accounts,
//! as scanpy's `rank_genes_groups(method="t-test")` ranks genes per cluster,
//! each with its standardised difference (Cohen's d with the two groups'
//! average variance) as effect size.
//!
//! The **name** joins up to three of the strongest distinguishing features with
//! |d| ≥ 0.5, strongest first: "high ARR · low seat utilisation · detractors"
//! (a feature's `high` / `low` words when given, else "high <label>" /
//! "low <label>"; a one-hot level with a positive difference gives the level;
//! a missing-value indicator gives "no <label>"). It depends only on the data,
//! so the same run gives the same names.

use rayon::prelude::*;
use serde::Serialize;
use std::borrow::Cow;

use crate::cluster::Segmentation;
use crate::config::{Kind, Pipeline};
use crate::features::FeatureMatrix;
use crate::ingest::AccountFrame;

/// A feature that sets a segment apart.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Distinct {
    /// Matrix column.
    pub column: String,
    pub feature: String,
    /// Welch's t of the segment against the rest.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub t: f64,
    /// Standardised difference (segment mean − rest mean) / pooled sd.
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub effect: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Profile {
    pub method: Cow<'static, str>,
    /// The segment's index (label) in this run.
    pub segment: usize,
    /// Its stable ID (see [`crate::history`]).
    pub id: u32,
    pub name: String,
    pub size: usize,
    #[serde(deserialize_with = "crate::schema::real::one")]
    pub share_accounts: f64,
    /// Share of the value feature's total (ARR), when there is one.
    pub share_value: Option<f64>,
    /// (feature, median raw value) for the numeric features in the matrix.
    #[serde(deserialize_with = "crate::schema::real::named")]
    pub medians: Vec<(String, f64)>,
    /// (feature, most common level, its share in the segment).
    #[serde(deserialize_with = "crate::schema::real::levels")]
    pub top_levels: Vec<(String, String, f64)>,
    /// Top distinguishing columns, strongest |t| first.
    pub distinguishing: Vec<Distinct>,
    /// Effect (standardised difference) of every matrix column, in matrix order (for heatmaps).
    #[serde(deserialize_with = "crate::schema::real::list")]
    pub effects: Vec<f64>,
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// What every segmentation's profiles read from the account frame, read
/// once: the numeric matrix features' values, each categorical feature's
/// level per account, and the words for high and low.
pub struct Columns<'a> {
    numeric: Vec<&'a crate::config::Feature>,
    categorical: Vec<&'a crate::config::Feature>,
    /// Per numeric feature, its column in one chunk (None: not a numeric
    /// column).
    raw: Vec<Option<polars::prelude::Float64Chunked>>,
    /// Per categorical feature present: its levels in sorted order, and
    /// each account's level as an index into them (a missing value is the
    /// level [`crate::features::MISSING`]).
    levels: Vec<(usize, Vec<String>, Vec<u32>)>,
    words: Words,
}

impl<'a> Columns<'a> {
    pub fn new(p: &'a Pipeline, frame: &AccountFrame) -> Columns<'a> {
        let numeric: Vec<&crate::config::Feature> = p
            .features
            .iter()
            .filter(|f| f.in_matrix && f.kind == Kind::Numeric)
            .collect();
        let categorical: Vec<&crate::config::Feature> = p
            .features
            .iter()
            .filter(|f| f.kind == Kind::Categorical)
            .collect();
        let raw = numeric
            .iter()
            .map(|f| {
                let c = frame.df.column(&f.name).ok()?.f64().ok()?.clone();
                Some(c.rechunk().into_owned())
            })
            .collect();
        let levels = categorical
            .par_iter()
            .enumerate()
            .filter_map(|(fi, f)| {
                let c = frame.df.column(&f.name).ok()?.str().ok()?.clone();
                // Codes in order of first appearance, then renumbered so
                // that they follow the levels' sorted order.
                let mut seen: foldhash::HashMap<&str, u32> = foldhash::HashMap::default();
                let mut first: Vec<&str> = Vec::new();
                let codes: Vec<u32> = c
                    .iter()
                    .map(|v| {
                        let v = v.unwrap_or(crate::features::MISSING);
                        *seen.entry(v).or_insert_with(|| {
                            first.push(v);
                            first.len() as u32 - 1
                        })
                    })
                    .collect();
                let mut order: Vec<u32> = (0..first.len() as u32).collect();
                order.sort_by(|&a, &b| first[a as usize].cmp(first[b as usize]));
                let mut rank = vec![0u32; first.len()];
                for (r, &o) in order.iter().enumerate() {
                    rank[o as usize] = r as u32;
                }
                let names = order
                    .iter()
                    .map(|&o| first[o as usize].to_string())
                    .collect();
                let codes = codes.into_iter().map(|c| rank[c as usize]).collect();
                Some((fi, names, codes))
            })
            .collect();
        let words = Words::new(frame, &numeric);
        Columns {
            numeric,
            categorical,
            raw,
            levels,
            words,
        }
    }

    /// Each segment's median of each numeric feature, features in parallel.
    fn medians(&self, seg: &Segmentation) -> Vec<Vec<(String, f64)>> {
        let k = seg.k();
        let per_feature: Vec<Vec<f64>> = self
            .raw
            .par_iter()
            .map(|raw| {
                let Some(raw) = raw else {
                    return vec![f64::NAN; k];
                };
                let mut parts: Vec<Vec<f64>> =
                    seg.sizes.iter().map(|&s| Vec::with_capacity(s)).collect();
                for (v, &l) in raw.iter().zip(&seg.labels) {
                    if let Some(v) = v {
                        parts[l].push(v);
                    }
                }
                parts
                    .iter_mut()
                    .map(|v| crate::features::median(v))
                    .collect()
            })
            .collect();
        (0..k)
            .map(|s| {
                self.numeric
                    .iter()
                    .zip(&per_feature)
                    .map(|(f, m)| (f.name.clone(), m[s]))
                    .collect()
            })
            .collect()
    }

    /// Each segment's most common level of each categorical feature (the
    /// first in sorted order on a tie), with its share of the segment.
    fn top_levels(&self, seg: &Segmentation) -> Vec<Vec<(String, String, f64)>> {
        let k = seg.k();
        let per_feature: Vec<Vec<(usize, usize)>> = self
            .levels
            .par_iter()
            .map(|(_, names, codes)| {
                let mut counts = vec![vec![0usize; names.len()]; k];
                for (&c, &l) in codes.iter().zip(&seg.labels) {
                    counts[l][c as usize] += 1;
                }
                counts
                    .iter()
                    .map(|c| {
                        c.iter()
                            .enumerate()
                            .fold((0, 0), |acc, (i, &n)| if n > acc.1 { (i, n) } else { acc })
                    })
                    .collect()
            })
            .collect();
        (0..k)
            .map(|s| {
                let n_in = seg.sizes[s] as f64;
                self.levels
                    .iter()
                    .zip(&per_feature)
                    .map(|((fi, names, _), top)| {
                        let (level, cnt) = top[s];
                        let level = if cnt == 0 { "" } else { names[level].as_str() };
                        (
                            self.categorical[*fi].name.clone(),
                            level.to_string(),
                            cnt as f64 / n_in.max(1.0),
                        )
                    })
                    .collect()
            })
            .collect()
    }
}

/// Profiles of every segment of one segmentation.
pub fn profiles(
    p: &Pipeline,
    cols: &Columns,
    m: &FeatureMatrix,
    seg: &Segmentation,
    value: Option<&[Option<f64>]>,
) -> Vec<Profile> {
    let n = m.ids.len();
    let k = seg.k();
    let sums = Sums::new(m, seg);
    let value_total: Option<f64> = value.map(|v| v.iter().flatten().sum());
    let mut share_value = vec![0.0f64; k];
    if let Some(v) = value {
        for (i, &l) in seg.labels.iter().enumerate() {
            if let Some(x) = v[i] {
                share_value[l] += x;
            }
        }
    }
    let mut medians = cols.medians(seg).into_iter();
    let mut top_levels = cols.top_levels(seg).into_iter();
    let words = &cols.words;
    let mut full: Vec<Vec<Distinct>> = Vec::with_capacity(k);
    let mut out: Vec<Profile> =
        (0..k)
            .map(|s| {
                let n_in = seg.sizes[s] as f64;
                let (mut dist, effects) = sums.distinctions(s, n_in, (n - seg.sizes[s]) as f64, m);
                dist.sort_by(|a, b| {
                    b.t.abs()
                        .total_cmp(&a.t.abs())
                        .then_with(|| a.column.cmp(&b.column))
                });
                let name = name_from(p, m, &dist, words, 3);
                full.push(dist.clone());
                dist.truncate(8);
                Profile {
                    method: seg.method.clone(),
                    segment: s,
                    id: seg.ids[s],
                    name,
                    size: seg.sizes[s],
                    share_accounts: n_in / n.max(1) as f64,
                    share_value: value_total.map(|tot| {
                        if tot > 0.0 {
                            share_value[s] / tot
                        } else {
                            0.0
                        }
                    }),
                    medians: medians.next().expect("one per segment"),
                    top_levels: top_levels.next().expect("one per segment"),
                    distinguishing: dist,
                    effects,
                }
            })
            .collect();
    unique_names(&mut out, |s, parts| name_from(p, m, &full[s], words, parts));
    out
}

/// Per segment and overall sums (and sums of squares) of every matrix column.
struct Sums {
    sum: Vec<Vec<f64>>,
    sq: Vec<Vec<f64>>,
    total: Vec<f64>,
    total_sq: Vec<f64>,
}

impl Sums {
    fn new(m: &FeatureMatrix, seg: &Segmentation) -> Sums {
        let d = m.columns.len();
        let k = seg.k();
        // Columns split among the threads, each walking every row for its
        // own columns: every sum is still taken in row order, so it does not
        // depend on the thread count.
        let per = d.div_ceil(rayon::current_num_threads()).max(1);
        let groups: Vec<(usize, Vec<Vec<f64>>, Vec<Vec<f64>>)> = (0..d)
            .step_by(per)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|from| {
                let to = (from + per).min(d);
                let mut sum = vec![vec![0.0; to - from]; k];
                let mut sq = vec![vec![0.0; to - from]; k];
                for (row, &l) in m.x.outer_iter().zip(&seg.labels) {
                    for (j, (s, q)) in (from..to).zip(sum[l].iter_mut().zip(sq[l].iter_mut())) {
                        let v = row[j];
                        *s += v;
                        *q += v * v;
                    }
                }
                (from, sum, sq)
            })
            .collect();
        let mut sum = vec![vec![0.0; d]; k];
        let mut sq = vec![vec![0.0; d]; k];
        for (from, gs, gq) in groups {
            for l in 0..k {
                sum[l][from..from + gs[l].len()].copy_from_slice(&gs[l]);
                sq[l][from..from + gq[l].len()].copy_from_slice(&gq[l]);
            }
        }
        let total: Vec<f64> = (0..d).map(|j| (0..k).map(|s| sum[s][j]).sum()).collect();
        let total_sq: Vec<f64> = (0..d).map(|j| (0..k).map(|s| sq[s][j]).sum()).collect();
        Sums {
            sum,
            sq,
            total,
            total_sq,
        }
    }

    /// How segment `s` (`n_in` accounts, `n_out` others) differs from the
    /// other accounts on each column: Welch's t and the standardised effect
    /// (the mean difference over the pooled standard deviation).
    fn distinctions(
        &self,
        s: usize,
        n_in: f64,
        n_out: f64,
        m: &FeatureMatrix,
    ) -> (Vec<Distinct>, Vec<f64>) {
        let (sum, sq, total, total_sq) = (&self.sum, &self.sq, &self.total, &self.total_sq);
        let d = m.columns.len();
        let mut dist: Vec<Distinct> = Vec::new();
        let mut effects = Vec::with_capacity(d);
        for j in 0..d {
            let mean_in = sum[s][j] / n_in.max(1.0);
            let var_in = (sq[s][j] / n_in.max(1.0) - mean_in * mean_in).max(0.0);
            let (so, sqo) = (total[j] - sum[s][j], total_sq[j] - sq[s][j]);
            let mean_out = so / n_out.max(1.0);
            let var_out = (sqo / n_out.max(1.0) - mean_out * mean_out).max(0.0);
            let pooled = ((var_in + var_out) / 2.0).sqrt();
            let effect = if pooled > 1e-12 {
                (mean_in - mean_out) / pooled
            } else {
                0.0
            };
            let se = (var_in / n_in.max(1.0) + var_out / n_out.max(1.0)).sqrt();
            let t = if se > 1e-12 {
                (mean_in - mean_out) / se
            } else {
                0.0
            };
            effects.push(effect);
            dist.push(Distinct {
                column: m.columns[j].name.clone(),
                feature: m.columns[j].feature.clone(),
                t,
                effect,
            });
        }
        (dist, effects)
    }
}

/// Names made unique within the segmentation: segments that share a name
/// are told apart by their next distinguishing features (`rename(segment,
/// parts)` names a segment from its first `parts` features), and, should
/// that not do, by their size.
fn unique_names(out: &mut [Profile], rename: impl Fn(usize, usize) -> String) {
    let clashes = |out: &[Profile]| -> Vec<usize> {
        let mut count: std::collections::BTreeMap<&str, usize> = Default::default();
        for pr in out {
            *count.entry(pr.name.as_str()).or_default() += 1;
        }
        (0..out.len())
            .filter(|&i| count[out[i].name.as_str()] > 1)
            .collect()
    };
    for parts in 4..=6 {
        let c = clashes(out);
        if c.is_empty() {
            return;
        }
        for i in c {
            out[i].name = rename(out[i].segment, parts);
        }
    }
    for i in clashes(out) {
        out[i].name = format!("{} · {} accounts", out[i].name, out[i].size);
    }
}

/// How a feature without `high`/`low` words is described: 0/1 flags as
/// often/rarely, small whole counts as many/few, the rest as high/low.
pub struct Words {
    binary: std::collections::BTreeSet<String>,
    counts: std::collections::BTreeSet<String>,
}

impl Words {
    fn new(frame: &AccountFrame, numeric: &[&crate::config::Feature]) -> Words {
        // Per feature (in parallel): binary, a small whole count, or neither.
        let kinds: Vec<(bool, bool)> = numeric
            .par_iter()
            .map(|f| {
                let Some(c) = frame
                    .df
                    .column(&f.name)
                    .ok()
                    .and_then(|c| c.f64().ok().cloned())
                else {
                    return (false, false);
                };
                // Each check stops at the first value that fails it; the
                // values are copied out only for the 95th percentile, when
                // every one of them is a whole number.
                let finite = || c.iter().flatten().filter(|v| v.is_finite());
                if finite().next().is_none() {
                    return (false, false);
                }
                if finite().all(|v| v == 0.0 || v == 1.0) {
                    return (true, false);
                }
                let count = match f.unit {
                    crate::config::Unit::Count => true,
                    crate::config::Unit::Number
                        if finite().all(|v| v.fract() == 0.0 && v >= 0.0) =>
                    {
                        let mut vals: Vec<f64> = finite().collect();
                        crate::features::quantiles(&mut vals, &[0.95])[0] <= 100.0
                    }
                    _ => false,
                };
                (false, count)
            })
            .collect();
        let mut binary = std::collections::BTreeSet::new();
        let mut counts = std::collections::BTreeSet::new();
        for (f, (is_binary, is_count)) in numeric.iter().zip(kinds) {
            if is_binary {
                binary.insert(f.name.clone());
            } else if is_count {
                counts.insert(f.name.clone());
            }
        }
        Words { binary, counts }
    }

    fn of(&self, f: &crate::config::Feature, high: bool) -> String {
        let given = if high { &f.high } else { &f.low };
        if let Some(w) = given {
            return w.clone();
        }
        let (up, down) = if self.binary.contains(&f.name) {
            ("often", "rarely")
        } else if self.counts.contains(&f.name) {
            ("many", "few")
        } else {
            ("high", "low")
        };
        format!("{} {}", if high { up } else { down }, f.label)
    }
}

fn name_from(
    p: &Pipeline,
    m: &FeatureMatrix,
    dist: &[Distinct],
    words: &Words,
    wanted: usize,
) -> String {
    let mut by_effect: Vec<&Distinct> = dist.iter().filter(|x| x.effect.abs() >= 0.5).collect();
    by_effect.sort_by(|a, b| {
        b.effect
            .abs()
            .total_cmp(&a.effect.abs())
            .then_with(|| a.column.cmp(&b.column))
    });
    let mut parts: Vec<String> = Vec::new();
    let mut used: Vec<&str> = Vec::new();
    for x in by_effect {
        if parts.len() == wanted {
            break;
        }
        if used.contains(&x.feature.as_str()) {
            continue;
        }
        let Some(f) = p.features.iter().find(|f| f.name == x.feature) else {
            continue;
        };
        let Some(col) = m.columns.iter().find(|c| c.name == x.column) else {
            continue;
        };
        let word = match col.role.as_ref() {
            "numeric" => words.of(f, x.effect > 0.0),
            "indicator" if x.effect > 0.0 => format!("no {}", f.label),
            // A level with its feature: "industry: Retail", not "Retail".
            "level" if x.effect > 0.0 => {
                format!("{}: {}", f.label, col.level.clone().unwrap_or_default())
            }
            _ => continue,
        };
        used.push(&x.feature);
        parts.push(word);
    }
    if parts.is_empty() {
        return "Typical accounts".into();
    }
    capitalise(&parts.join(" · "))
}
