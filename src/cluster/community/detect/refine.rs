//! Leiden's refinement (Traag, Waltman & van Eck 2019, "From Louvain to
//! Leiden: guaranteeing well-connected communities", the pseudo-code's
//! `RefinePartition` and `MergeNodesSubset`): inside each community of the
//! local moves, nodes start alone and well-connected singletons merge, each
//! choosing among the refined communities it could join with probability
//! ∝ exp(gain / θ). O(m) per call for m edges: each node's list is read once.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{visit_order, Touched};
use crate::cluster::community::graph::Csr;

/// A refined community, with the gather's sum for it: every candidate of a
/// move reads all of these, so they share one half of a cache line instead
/// of five arrays (on large graphs each is a miss).
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Sub {
    /// The node being moved's weight to it (the gather's sum; zero: unseen).
    weight: f64,
    tot: f64,
    /// Its weight to the rest of its community.
    ext: f64,
    /// The community it lies in (refinement never crosses communities).
    comm: u32,
    size: u32,
}

/// Leiden's refinement: merge well-connected singletons inside each community.
pub(super) fn refine(
    g: &Csr,
    part: &[usize],
    gamma: f64,
    theta: f64,
    rng: &mut Xoshiro256PlusPlus,
) -> Vec<usize> {
    let n = g.n();
    let k = g.strengths();
    let m2 = g.total_weight();
    let kc = part.iter().max().map_or(0, |x| x + 1);
    let mut comm_tot = vec![0.0; kc];
    for i in 0..n {
        comm_tot[part[i]] += k[i];
    }
    let mut refined: Vec<u32> = (0..n as u32).collect();
    // Each node starts as its own refined community; its `ext` is its own
    // weight to the rest of its community, so computed at once.
    use rayon::prelude::*;
    let mut sub: Vec<Sub> = (0..n)
        .into_par_iter()
        .map(|v| Sub {
            weight: 0.0,
            tot: k[v],
            ext: g
                .neighbors(v)
                .filter(|(u, _)| part[*u] == part[v])
                .map(|(_, w)| w)
                .sum(),
            comm: part[v] as u32,
            size: 1,
        })
        .collect();
    let order = visit_order(n, rng);
    let mut touched: Touched<u32> = Touched::new();
    let mut cands: Vec<(usize, f64)> = Vec::new();
    for v in order {
        let c = part[v];
        if sub[refined[v] as usize].size > 1 {
            continue;
        }
        // v must be well connected to its community.
        if sub[v].ext < gamma * k[v] * (comm_tot[c] - k[v]) / m2 {
            continue;
        }
        // v's weight to each refined community around it, in the order
        // first met (see [`Touched`]).
        touched.reserve(g.offsets[v + 1] - g.offsets[v]);
        g.for_each_neighbor(v, |u, w| {
            if w <= 0.0 {
                return; // contributes nothing; keeps a zero weight meaning "unseen"
            }
            let r = refined[u];
            let e = &mut sub[r as usize].weight;
            touched.push_if(r, *e == 0.0);
            *e += w;
        });
        cands.clear();
        let own = refined[v] as usize;
        for &r in touched.as_slice() {
            let r = r as usize;
            if r == own {
                continue;
            }
            let s = &sub[r];
            if s.comm as usize != c {
                continue;
            }
            if s.ext < gamma * s.tot * (comm_tot[c] - s.tot) / m2 {
                continue;
            }
            let gain = (s.weight - gamma * k[v] * s.tot / m2) / m2;
            if gain >= 0.0 {
                cands.push((r, gain));
            }
        }
        if !cands.is_empty() {
            // Staying alone has gain 0; choose with probability ∝ exp(gain/θ).
            let max = cands.iter().map(|c| c.1).fold(0.0, f64::max);
            let stay = ((0.0 - max) / theta).exp();
            let weights: Vec<f64> = cands.iter().map(|c| ((c.1 - max) / theta).exp()).collect();
            let total: f64 = stay + weights.iter().sum::<f64>();
            let mut x = rng.gen::<f64>() * total;
            let mut choice = None;
            if x >= stay {
                x -= stay;
                for (i, w) in weights.iter().enumerate() {
                    if x < *w || i == weights.len() - 1 {
                        choice = Some(cands[i].0);
                        break;
                    }
                    x -= w;
                }
            }
            if let Some(r) = choice {
                let ext_v = sub[v].ext;
                let s = &mut sub[r];
                s.ext = s.ext + ext_v - 2.0 * s.weight;
                s.tot += k[v];
                s.size += 1;
                sub[own].tot = 0.0;
                sub[own].size = 0;
                refined[v] = r as u32;
            }
        }
        for &r in touched.as_slice() {
            sub[r as usize].weight = 0.0;
        }
        touched.clear();
    }
    refined.into_iter().map(|r| r as usize).collect()
}
