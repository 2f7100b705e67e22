//! Optimal one-to-one assignment (the Hungarian method).
//!
//! Kuhn (1955) and Munkres (1957), in the O(n³) shortest-augmenting-path form
//! (Jonker & Volgenant 1987): given a rows × cols score matrix, pick at most one
//! column per row and one row per column to maximise the total score. Used to
//! pair segments with tiers (or this month's segments with last month's) by
//! overlap, for side-by-side views. Matrices here are small (segments × tiers).

/// Maximise the total score; returns, for each row, its column (if any).
pub fn maximise(score: &[Vec<f64>]) -> Vec<Option<usize>> {
    let rows = score.len();
    let cols = score.first().map_or(0, Vec::len);
    if rows == 0 || cols == 0 {
        return vec![None; rows];
    }
    // Square cost matrix (minimisation), padding with zeros.
    let n = rows.max(cols);
    let max = score
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let cost = |i: usize, j: usize| -> f64 {
        if i < rows && j < cols {
            max - score[i][j]
        } else {
            max
        }
    };
    // 1-based potentials u (rows), v (cols); p[j] = row matched to column j.
    let inf = f64::INFINITY;
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut p = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![inf; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = inf;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![None; rows];
    for j in 1..=n {
        let i = p[j];
        if i >= 1 && i <= rows && j <= cols {
            out[i - 1] = Some(j - 1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(score: &[Vec<f64>], a: &[Option<usize>]) -> f64 {
        a.iter()
            .enumerate()
            .filter_map(|(i, j)| j.map(|j| score[i][j]))
            .sum()
    }

    #[test]
    fn finds_the_optimum_where_greedy_fails() {
        // Greedy takes (0,0)=10 then (1,1)=1: 11. Optimal: (0,1)+(1,0) = 9+9 = 18.
        let s = vec![vec![10.0, 9.0], vec![9.0, 1.0]];
        let a = maximise(&s);
        assert_eq!(a, vec![Some(1), Some(0)]);
    }

    #[test]
    fn rectangular_matrices_leave_extra_rows_unassigned() {
        let s = vec![vec![1.0, 0.0], vec![0.0, 5.0], vec![3.0, 0.0]];
        let a = maximise(&s);
        assert_eq!(a, vec![None, Some(1), Some(0)]);
        let s = vec![vec![1.0, 7.0, 3.0]];
        assert_eq!(maximise(&s), vec![Some(1)]);
    }

    #[test]
    fn matches_brute_force_on_small_matrices() {
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % 100) as f64
        };
        for _ in 0..50 {
            let s: Vec<Vec<f64>> = (0..4).map(|_| (0..4).map(|_| next()).collect()).collect();
            let a = maximise(&s);
            let mut best = f64::MIN;
            let perms = permutations(4);
            for p in perms {
                best = best.max((0..4).map(|i| s[i][p[i]]).sum());
            }
            assert_eq!(total(&s, &a), best);
        }
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 1 {
            return vec![vec![0]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for pos in 0..n {
                let mut q = p.clone();
                q.insert(pos, n - 1);
                out.push(q);
            }
        }
        out
    }
}
