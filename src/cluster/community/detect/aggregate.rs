//! Aggregation: each community of a partition collapsed into one node, the
//! step between Leiden's (and Louvain's) levels.

use rayon::prelude::*;

use crate::cluster::community::graph::{split_by, Csr, Weights};

/// Collapse each community of `memb` (dense, `k` labels) into one node:
/// the weight between two communities is the sum of the weights between
/// their members, a community's loop the weight inside it.
///
/// Gathered community by community (in parallel over runs of communities):
/// each community's members are walked in ascending order and its weight to
/// every higher community summed in a scratch slot, then each such list is
/// written into both rows, the rows cut into one range per thread (each
/// finds its rows' entries in the sorted lists by bisection; written on one
/// thread, this took a third of the aggregation at 10M accounts, 1.9 of
/// 5.3 s). So every sum adds its terms in the same order as
/// building the graph from the edge list with [`Csr::from_edges`] would (the
/// results are the same to the bit, which the tests check), without that
/// route's scattered edge list and per-row sorts: at 1M accounts the sweep's
/// aggregations took 10 of Leiden's 31 s that way.
///
/// Cost: O(n + m) plus sorting each community's list of neighbouring
/// communities, O(m' log(m'/k)) for the m' edges of the result, and
/// O(k log m') per range of rows for the bisections.
pub fn aggregate(g: &Csr, memb: &[usize], k: usize) -> Csr {
    let members = Members::of(memb, k);
    let runs = members.runs(g);
    let uppers = Uppers::gather(g, memb, &members, runs);
    uppers.rows()
}

/// The nodes of each community, ascending: community c's are
/// `list[start[c]..start[c + 1]]` (a counting sort of the labels).
struct Members {
    start: Vec<usize>,
    list: Vec<u32>,
}

impl Members {
    fn of(memb: &[usize], k: usize) -> Members {
        let mut start = vec![0usize; k + 1];
        for &c in memb {
            start[c + 1] += 1;
        }
        for c in 0..k {
            start[c + 1] += start[c];
        }
        let mut fill = start[..k].to_vec();
        let mut list = vec![0u32; memb.len()];
        for (i, &c) in memb.iter().enumerate() {
            list[fill[c]] = i as u32;
            fill[c] += 1;
        }
        Members { start, list }
    }

    fn k(&self) -> usize {
        self.start.len() - 1
    }

    fn of_community(&self, c: usize) -> &[u32] {
        &self.list[self.start[c]..self.start[c + 1]]
    }

    /// Runs of consecutive communities with about the same number of edge
    /// entries, several per thread, as their bounds (0, …, k).
    fn runs(&self, g: &Csr) -> Vec<usize> {
        let k = self.k();
        let entries = g.targets.len() + g.n();
        let runs = (rayon::current_num_threads() * 8).clamp(1, k.max(1));
        let mut bounds = vec![0usize];
        let mut seen = 0usize;
        for c in 0..k {
            let m = self.of_community(c);
            seen += m.len()
                + m.iter()
                    .map(|&i| g.offsets[i as usize + 1] - g.offsets[i as usize])
                    .sum::<usize>();
            if seen * runs >= entries * bounds.len() && c + 1 < k {
                bounds.push(c + 1);
            }
        }
        bounds.push(k);
        bounds.dedup();
        bounds
    }
}

/// One run's communities: each one's loop, and (d, weight) for every d > c
/// with an edge to c, sorted by d, one community after another (the targets
/// and weights in two lists: 12 bytes an entry, not a padded pair's 16).
struct Upper {
    loops: Vec<f64>,
    len: Vec<usize>,
    targets: Vec<u32>,
    weights: Vec<f64>,
}

/// Every run's upper lists, with the runs' bounds.
struct Uppers {
    runs: Vec<Upper>,
    bounds: Vec<usize>,
}

impl Uppers {
    /// Each community's members walked in ascending order, its weight to
    /// every higher community summed in a scratch slot (in parallel over
    /// the runs).
    fn gather(g: &Csr, memb: &[usize], members: &Members, bounds: Vec<usize>) -> Uppers {
        let k = members.k();
        let runs = bounds
            .par_windows(2)
            .map_init(
                || (vec![u32::MAX; k], Vec::<(u32, f64)>::new()),
                |(slot, own), w| {
                    let mut up = Upper {
                        loops: Vec::with_capacity(w[1] - w[0]),
                        len: Vec::with_capacity(w[1] - w[0]),
                        targets: Vec::new(),
                        weights: Vec::new(),
                    };
                    for c in w[0]..w[1] {
                        own.clear();
                        let mut inside = 0.0;
                        for &i in members.of_community(c) {
                            let i = i as usize;
                            inside += g.loops[i];
                            g.for_each_neighbor(i, |j, wt| {
                                let d = memb[j];
                                if d == c {
                                    inside += wt;
                                } else if d > c {
                                    let s = &mut slot[d];
                                    if *s == u32::MAX {
                                        *s = own.len() as u32;
                                        own.push((d as u32, wt));
                                    } else {
                                        own[*s as usize].1 += wt;
                                    }
                                }
                            });
                        }
                        for e in own.iter() {
                            slot[e.0 as usize] = u32::MAX;
                        }
                        own.sort_unstable_by_key(|e| e.0);
                        up.targets.extend(own.iter().map(|e| e.0));
                        up.weights.extend(own.iter().map(|e| e.1));
                        up.loops.push(inside);
                        up.len.push(own.len());
                    }
                    up
                },
            )
            .collect();
        Uppers { runs, bounds }
    }

    /// Every entry (c, d, weight) of the upper lists of runs `..end` with d
    /// in `r`, in order: each list is sorted, so its part in `r` is found by
    /// bisection rather than read through.
    fn each_in(
        &self,
        end: usize,
        r: &std::ops::Range<usize>,
        mut f: impl FnMut(usize, usize, f64),
    ) {
        for (up, &first) in self.runs[..end].iter().zip(&self.bounds) {
            let mut at = 0;
            for (c, &len) in (first..).zip(&up.len) {
                let t = &up.targets[at..at + len];
                let lo = t.partition_point(|&d| (d as usize) < r.start);
                let hi = lo + t[lo..].partition_point(|&d| (d as usize) < r.end);
                for i in lo..hi {
                    f(c, t[i] as usize, up.weights[at + i]);
                }
                at += len;
            }
        }
    }

    /// The graph: each row the lower communities first (ascending, as the
    /// upper lists are written in ascending c), then the community's own
    /// upper list. The rows are cut into one range of runs per thread; each
    /// range counts and then writes its rows' lower entries from the runs
    /// up to its own (c < d), so every entry lands where one pass in order
    /// would put it.
    fn rows(self) -> Csr {
        let Uppers { runs, bounds } = &self;
        let k = *bounds.last().expect("bounds start at 0");
        let parts = rayon::current_num_threads().clamp(1, runs.len().max(1));
        let cut: Vec<usize> = (0..=parts).map(|p| p * runs.len() / parts).collect();
        let range = |p: usize| bounds[cut[p]]..bounds[cut[p + 1]];
        let mut lower = vec![0usize; k];
        let slices = split_by(&mut lower, (0..parts).map(|p| range(p).len()));
        slices.into_par_iter().enumerate().for_each(|(p, mine)| {
            let r = range(p);
            self.each_in(cut[p + 1], &r, |_, d, _| mine[d - r.start] += 1);
        });
        let mut offsets = vec![0usize; k + 1];
        let mut loops = Vec::with_capacity(k);
        let mut c = 0;
        for up in runs {
            for &len in &up.len {
                offsets[c + 1] = offsets[c] + lower[c] + len;
                c += 1;
            }
            loops.extend_from_slice(&up.loops);
        }
        let total = offsets[k];
        let mut targets = vec![0u32; total];
        let mut weights = vec![0.0f64; total];
        let entries = || (0..parts).map(|p| offsets[range(p).end] - offsets[range(p).start]);
        let slices = split_by(&mut targets, entries()).into_par_iter();
        let slices = slices.zip(split_by(&mut weights, entries()));
        slices.enumerate().for_each(|(p, (t, w))| {
            let r = range(p);
            let base = offsets[r.start];
            // Each row's next free lower slot, from the row's start.
            let mut low: Vec<usize> = offsets[r.clone()].iter().map(|o| o - base).collect();
            self.each_in(cut[p + 1], &r, |c, d, wt| {
                let l = &mut low[d - r.start];
                t[*l] = c as u32;
                w[*l] = wt;
                *l += 1;
            });
            // The rows' own upper lists, after their lower entries.
            for (up, &first) in runs[cut[p]..cut[p + 1]].iter().zip(&bounds[cut[p]..]) {
                let mut at = 0;
                for (c, &len) in (first..).zip(&up.len) {
                    let pos = offsets[c] + lower[c] - base;
                    t[pos..pos + len].copy_from_slice(&up.targets[at..at + len]);
                    w[pos..pos + len].copy_from_slice(&up.weights[at..at + len]);
                    at += len;
                }
            }
        });
        Csr {
            offsets,
            targets,
            weights: Weights::Plain(weights),
            loops,
        }
    }
}
