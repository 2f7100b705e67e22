//! Iterative Mistake Minimization (IMM): a threshold tree with one leaf per
//! k-means segment.
//!
//! Dasgupta, Frost, Moshkovitz & Rashtchian, "Explainable k-Means and
//! k-Medians Clustering", ICML 2020. Each node holds some centres and the
//! points still routed with their own centre; it splits on the axis-aligned
//! threshold `x_j ≤ θ` (θ between two of its centres) that separates the
//! fewest points from their centre — the *mistakes*, which take no further
//! part in building — until every leaf holds one centre. Ties go to the
//! lowest coordinate, then the smallest θ.
//!
//! **Complexity**: per node and coordinate, one sort of the node's points
//! (each point is the interval between its value and its centre's; θ's
//! mistakes are the intervals containing it, counted by two sorted sweeps):
//! O(k · d · n log n) for the tree. strata builds it on at most
//! [`crate::decide::explain::IMM_POINTS`] accounts and routes every account
//! through it. The coordinates of a node, and the two sides of a split, are
//! searched at once; each depends only on its own points, so the tree is the
//! same whatever the thread count.
//!
//! The tree's **cost** is the k-means cost of its partition: each point's
//! squared distance to the mean of its leaf ([`partition_cost`]); its
//! *price of explainability* is that cost over the k-means cost of the
//! centres. On raw Iris with the k = 3 optimum (cost 78.851441426146) IMM's
//! tree costs 81.7314278075 (price 1.0365), the value in the tests below.

use ndarray::{Array2, ArrayView2};

/// A threshold tree: `x[dim] ≤ threshold` goes left.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Leaf(usize),
    Split {
        dim: usize,
        threshold: f64,
        left: Box<Node>,
        right: Box<Node>,
    },
}

impl Node {
    /// The centre (segment) of the leaf row `x` reaches.
    pub fn route(&self, x: ndarray::ArrayView1<f64>) -> usize {
        let mut n = self;
        loop {
            match n {
                Node::Leaf(c) => return *c,
                Node::Split {
                    dim,
                    threshold,
                    left,
                    right,
                } => n = if x[*dim] <= *threshold { left } else { right },
            }
        }
    }
}

/// Build the IMM tree of `x` (rows: points) whose points belong to
/// `labels` (index into `centres`' rows). Only centres holding a point
/// become leaves.
pub fn build(x: ArrayView2<f64>, labels: &[usize], centres: &Array2<f64>) -> Node {
    let mut cents: Vec<usize> = labels.to_vec();
    cents.sort_unstable();
    cents.dedup();
    let idx: Vec<usize> = (0..x.nrows()).collect();
    node(x, labels, centres, idx, cents)
}

fn node(
    x: ArrayView2<f64>,
    labels: &[usize],
    centres: &Array2<f64>,
    idx: Vec<usize>,
    cents: Vec<usize>,
) -> Node {
    if cents.len() <= 1 {
        return Node::Leaf(cents.first().copied().unwrap_or(0));
    }
    // Each coordinate's best threshold at once, then the lowest coordinate
    // of the fewest mistakes, as one pass in coordinate order would find.
    use rayon::prelude::*;
    let per_dim: Vec<Option<(usize, f64)>> = (0..x.ncols())
        .into_par_iter()
        .map(|dim| best_threshold(x, labels, centres, &idx, &cents, dim))
        .collect();
    let mut best: Option<(usize, usize, f64)> = None;
    for (dim, found) in per_dim.into_iter().enumerate() {
        if let Some((mistakes, theta)) = found {
            if best.is_none_or(|(m, _, _)| mistakes < m) {
                best = Some((mistakes, dim, theta));
            }
        }
    }
    let Some((_, dim, theta)) = best else {
        // Centres equal on every coordinate: nothing separates them.
        return Node::Leaf(cents[0]);
    };
    let (mut li, mut ri) = (Vec::new(), Vec::new());
    for i in idx {
        let left = x[(i, dim)] <= theta;
        if left == (centres[(labels[i], dim)] <= theta) {
            if left {
                li.push(i);
            } else {
                ri.push(i);
            }
        }
    }
    let (lc, rc): (Vec<usize>, Vec<usize>) =
        cents.iter().partition(|&&c| centres[(c, dim)] <= theta);
    let (left, right) = rayon::join(
        || node(x, labels, centres, li, lc),
        || node(x, labels, centres, ri, rc),
    );
    Node::Split {
        dim,
        threshold: theta,
        left: Box::new(left),
        right: Box::new(right),
    }
}

/// The fewest mistakes of a threshold on `dim` separating the node's
/// centres, and the smallest θ reaching it.
fn best_threshold(
    x: ArrayView2<f64>,
    labels: &[usize],
    centres: &Array2<f64>,
    idx: &[usize],
    cents: &[usize],
    dim: usize,
) -> Option<(usize, f64)> {
    let cv: Vec<f64> = cents.iter().map(|&c| centres[(c, dim)]).collect();
    let lo = cv.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = cv.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo >= hi {
        return None;
    }
    // Candidates: every value in [lo, hi) of a point or centre.
    let mut cand: Vec<f64> = idx
        .iter()
        .map(|&i| x[(i, dim)])
        .chain(cv.iter().copied())
        .filter(|&v| v >= lo && v < hi)
        .collect();
    cand.sort_by(f64::total_cmp);
    cand.dedup();
    // A point is a mistake at θ when θ lies in [min(x, c), max(x, c)).
    let (mut starts, mut ends) = (Vec::with_capacity(idx.len()), Vec::with_capacity(idx.len()));
    for &i in idx {
        let (a, b) = (x[(i, dim)], centres[(labels[i], dim)]);
        if a != b {
            starts.push(a.min(b));
            ends.push(a.max(b));
        }
    }
    starts.sort_by(f64::total_cmp);
    ends.sort_by(f64::total_cmp);
    let (mut s, mut e) = (0, 0);
    let mut best: Option<(usize, f64)> = None;
    for &theta in &cand {
        while s < starts.len() && starts[s] <= theta {
            s += 1;
        }
        while e < ends.len() && ends[e] <= theta {
            e += 1;
        }
        let mistakes = s - e;
        if best.is_none_or(|(m, _)| mistakes < m) {
            best = Some((mistakes, theta));
        }
    }
    best
}

/// The k-means cost of the tree's partition of `x`: squared distances to
/// each leaf's mean. Also each row's leaf.
pub fn partition_cost(tree: &Node, x: ArrayView2<f64>, k: usize) -> (f64, Vec<usize>) {
    let leaf: Vec<usize> = x.rows().into_iter().map(|r| tree.route(r)).collect();
    let d = x.ncols();
    let mut sums = Array2::<f64>::zeros((k, d));
    let mut counts = vec![0usize; k];
    for (r, &l) in x.rows().into_iter().zip(&leaf) {
        counts[l] += 1;
        let mut s = sums.row_mut(l);
        s += &r;
    }
    for (l, &c) in counts.iter().enumerate() {
        if c > 0 {
            sums.row_mut(l).mapv_inplace(|v| v / c as f64);
        }
    }
    (cost(x, &leaf, &sums), leaf)
}

/// Σ ‖x_i − centres[labels_i]‖².
pub fn cost(x: ArrayView2<f64>, labels: &[usize], centres: &Array2<f64>) -> f64 {
    x.rows()
        .into_iter()
        .zip(labels)
        .map(|(r, &l)| {
            r.iter()
                .zip(centres.row(l))
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Iris's four measurements and species, from tests/data/iris.csv.
    fn iris() -> Array2<f64> {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iris.csv"))
                .expect("tests/data/iris.csv");
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').take(4).map(|v| v.parse().unwrap()).collect())
            .collect();
        Array2::from_shape_fn((rows.len(), 4), |(i, j)| rows[i][j])
    }

    /// Lloyd's iterations from scikit-learn's k = 3 centres of raw Iris
    /// (rounded) reach its optimum exactly (cost 78.851441426146).
    fn optimum(x: &Array2<f64>) -> (Vec<usize>, Array2<f64>) {
        let n = x.nrows();
        let mut centres = ndarray::array![
            [5.006, 3.428, 1.462, 0.246],
            [5.9016, 2.7484, 4.3935, 1.4339],
            [6.85, 3.0737, 5.7421, 2.0711]
        ];
        let mut labels = vec![0; n];
        for round in 0..100 {
            if round > 0 {
                centres.fill(0.0);
                let mut counts = [0.0; 3];
                for i in 0..n {
                    counts[labels[i]] += 1.0;
                    let mut c = centres.row_mut(labels[i]);
                    c += &x.row(i);
                }
                for c in 0..3 {
                    centres.row_mut(c).mapv_inplace(|v| v / counts[c]);
                }
            }
            labels = (0..n)
                .map(|i| {
                    (0..3)
                        .min_by(|&a, &b| {
                            let d = |c: usize| {
                                x.row(i)
                                    .iter()
                                    .zip(centres.row(c))
                                    .map(|(p, q)| (p - q) * (p - q))
                                    .sum::<f64>()
                            };
                            d(a).total_cmp(&d(b))
                        })
                        .unwrap()
                })
                .collect();
        }
        (labels, centres)
    }

    #[test]
    fn imm_on_iris_reproduces_the_published_cost() {
        let x = iris();
        let (labels, centres) = optimum(&x);
        let kmeans = cost(x.view(), &labels, &centres);
        assert!((kmeans - 78.851441426146).abs() < 1e-9, "{kmeans}");
        let tree = build(x.view(), &labels, &centres);
        let (tree_cost, leaf) = partition_cost(&tree, x.view(), 3);
        assert!((tree_cost - 81.7314278075).abs() < 1e-9, "{tree_cost}");
        assert!((tree_cost / kmeans - 1.0365242).abs() < 1e-7);
        // Two splits on petal length (1.9, then 5.1) explain all three.
        match &tree {
            Node::Split {
                dim,
                threshold,
                right,
                ..
            } => {
                assert_eq!((*dim, *threshold), (2, 1.9));
                assert!(matches!(**right, Node::Split { dim: 2, threshold: t, .. } if t == 5.1));
            }
            _ => panic!("{tree:?}"),
        }
        let same = leaf.iter().zip(&labels).filter(|(a, b)| a == b).count();
        assert_eq!(same, 146);
    }

    #[test]
    fn well_separated_clusters_cost_nothing_more() {
        // Two blobs apart on the second coordinate: one split, price 1.
        let x = ndarray::array![[0.0, 0.0], [1.0, 0.2], [0.5, 10.0], [0.2, 10.3]];
        let labels = [0, 0, 1, 1];
        let centres = ndarray::array![[0.5, 0.1], [0.35, 10.15]];
        let tree = build(x.view(), &labels, &centres);
        assert!(matches!(tree, Node::Split { dim: 1, .. }), "{tree:?}");
        let (c, _) = partition_cost(&tree, x.view(), 2);
        assert!((c - cost(x.view(), &labels, &centres)).abs() < 1e-12);
    }
}
