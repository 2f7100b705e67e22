//! A shallow classification tree (CART, Gini) over the
//! business-unit [`Table`], read back as one rule per leaf: the conditions
//! on its path, thresholds rounded to numbers a person types
//! ([`round_threshold`]) and levels as `is` / `is not` tests.

use serde::{Deserialize, Serialize};

use super::table::{round_threshold, Column, Table};
use crate::config::Unit;

/// One test of a rule, on one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "test", rename_all = "snake_case")]
pub enum Test {
    AtLeast {
        value: f64,
    },
    Below {
        value: f64,
    },
    /// At least `low` and below `high`.
    Between {
        low: f64,
        high: f64,
    },
    Is {
        level: String,
    },
    IsNot {
        levels: Vec<String>,
    },
}

/// A condition a CRM filter can hold: a feature and a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub feature: String,
    pub label: String,
    pub unit: Unit,
    #[serde(flatten)]
    pub test: Test,
}

impl Condition {
    /// "ARR ≥ $120k", "industry is Retail".
    pub fn text(&self) -> String {
        let l = &self.label;
        let u = |v: f64| show(self.unit, v);
        match &self.test {
            Test::AtLeast { value } => format!("{l} ≥ {}", u(*value)),
            Test::Below { value } => format!("{l} < {}", u(*value)),
            Test::Between { low, high } => format!("{l} {}–{}", u(*low), u(*high)),
            Test::Is { level } => format!("{l} is {level}"),
            Test::IsNot { levels } => format!("{l} is not {}", or_list(levels)),
        }
    }

    /// The condition as SQL (Polars SQL for `[tiers]`, and a warehouse's).
    pub fn sql(&self) -> String {
        let c = quote_ident(&self.feature);
        match &self.test {
            Test::AtLeast { value } => format!("{c} >= {}", number(*value)),
            Test::Below { value } => format!("{c} < {}", number(*value)),
            Test::Between { low, high } => {
                format!("{c} >= {} AND {c} < {}", number(*low), number(*high))
            }
            Test::Is { level } => format!("{c} = {}", quote_text(level)),
            Test::IsNot { levels } => format!(
                "{c} NOT IN ({})",
                levels
                    .iter()
                    .map(|l| quote_text(l))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A threshold shown in its unit, exactly enough to type it back: "$120k",
/// "$1.5M", "45%", "83.4%", "19".
pub fn show(unit: Unit, v: f64) -> String {
    let clean = |x: f64| (x * 1e9).round() / 1e9;
    let whole = |x: f64| (x - x.round()).abs() < 1e-9;
    match unit {
        Unit::Usd => {
            let (a, sign) = (v.abs(), if v < 0.0 { "-" } else { "" });
            if a >= 1e6 && whole(a / 1e5) {
                format!("{sign}${}M", number(clean(a / 1e6)))
            } else if a >= 1e3 && whole(a / 1e2) {
                format!("{sign}${}k", number(clean(a / 1e3)))
            } else {
                format!("{sign}${}", number(clean(a)))
            }
        }
        Unit::Percent => format!("{}%", number(clean(v * 100.0))),
        Unit::Months => format!("{} months", number(clean(v))),
        Unit::Count | Unit::Number => number(clean(v)),
    }
}

/// The shortest decimal that reads back as `v`.
pub fn number(v: f64) -> String {
    let s = format!("{v}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn or_list(levels: &[String]) -> String {
    match levels {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// `"column"`, with inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with inner quotes doubled.
pub fn quote_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One leaf: the conditions on its path and the class it predicts.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub conditions: Vec<Condition>,
    pub class: usize,
}

/// A fitted node: `x[column] <= split` goes left.
#[derive(Debug, Clone)]
enum Fitted {
    /// The class, and the rows the leaf holds.
    Leaf(usize, Vec<usize>),
    Split {
        column: usize,
        split: f64,
        left: Box<Fitted>,
        right: Box<Fitted>,
    },
}

/// Grow a tree of at most `depth` levels whose leaves hold at least
/// `min_leaf` rows, predicting `y` (a class per row of `table`); its leaves
/// in the tree's left-to-right order. A tree with no split is one leaf with
/// no conditions.
///
/// CART (Breiman et al. 1984) with Gini impurity: at each node the split
/// with the lowest weighted impurity of its two sides, over every column
/// and every boundary between two distinct values the node holds (ties go
/// to the first column, then the lowest value); siblings predicting the
/// same class are merged. O(columns · n log n) to sort each column once, then
/// O(columns · n) per level: a split divides every column's order between
/// its children, keeping it sorted, and each candidate boundary's impurity
/// comes from exact running sums of squared class counts (O(1), not
/// O(classes), so a tree over 40 communities costs what one over 3 tiers does).
///
/// Hand-written rather than `linfa-trees` 0.8.1: that crate skips a
/// boundary when the next value in the *whole* data's sort order is equal,
/// even if that row lies outside the node, so below the root it can miss
/// the only split of a 0/1 level column (a case in the tests below).
pub fn grow(table: &Table, y: &[usize], depth: usize, min_leaf: usize) -> Vec<Leaf> {
    grow_routed(table, y, depth, min_leaf).0
}

/// [`grow`], and the leaf (index into the leaves) of every row.
pub fn grow_routed(
    table: &Table,
    y: &[usize],
    depth: usize,
    min_leaf: usize,
) -> (Vec<Leaf>, Vec<usize>) {
    let k = y.iter().max().map_or(1, |m| m + 1);
    assert!(u32::try_from(y.len()).is_ok(), "a tree's rows are a sample");
    let idx: Vec<usize> = (0..y.len()).collect();
    // The table column by column (a view when it is column-major, as
    // `table::build` makes it), so a node's scan reads one column's values.
    let cols = table.x.t();
    let cols = cols.as_standard_layout();
    let cols: Vec<&[f64]> = cols
        .outer_iter()
        .map(|c| c.to_slice().expect("standard layout"))
        .collect();
    // Every column's rows in (value, row) order, sorted once: a node reads
    // its own rows' order off it.
    let sorted: Vec<Vec<u32>> = {
        use rayon::prelude::*;
        cols.par_iter()
            .map(|v| {
                let mut o: Vec<u32> = (0..v.len() as u32).collect();
                o.sort_unstable_by(|&a, &b| {
                    v[a as usize].total_cmp(&v[b as usize]).then(a.cmp(&b))
                });
                o
            })
            .collect()
    };
    let fit_ctx = Ctx {
        cols: &cols,
        y,
        k,
        min_leaf: min_leaf.max(1),
    };
    let root = fit(&fit_ctx, idx, sorted, depth);
    let mut leaves = Vec::new();
    let mut leaf_of = vec![0; y.len()];
    walk(
        &root,
        &table.columns,
        &mut Vec::new(),
        &mut leaves,
        &mut leaf_of,
    );
    (leaves, leaf_of)
}

fn gini(counts: &[usize], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    1.0 - counts.iter().map(|&c| (c as f64 / n).powi(2)).sum::<f64>()
}

/// What every node of one tree shares.
struct Ctx<'a> {
    /// The table's values, one slice per column.
    cols: &'a [&'a [f64]],
    y: &'a [usize],
    k: usize,
    min_leaf: usize,
}

/// One node: its rows `idx`, and `orders`, the same rows in each column's
/// (value, row) order, split stably between the children, so no node sorts.
/// The children are grown at once: each depends only on its own rows, so the
/// tree is the same whatever the thread count.
fn fit(c: &Ctx, idx: Vec<usize>, orders: Vec<Vec<u32>>, depth: usize) -> Fitted {
    use rayon::prelude::*;
    let (y, k, min_leaf) = (c.y, c.k, c.min_leaf);
    let mut counts = vec![0usize; k];
    for &i in &idx {
        counts[y[i]] += 1;
    }
    let class = majority_of(&counts);
    let n = idx.len();
    if depth == 0 || n < 2 * min_leaf || counts[class] == n {
        return Fitted::Leaf(class, idx);
    }
    let parent = gini(&counts, n);
    let mut best: Option<(f64, usize, f64)> = None;
    let mut left = vec![0usize; k];
    let squares: u64 = counts.iter().map(|&c| c as u64 * c as u64).sum();
    for (j, (order, x)) in orders.iter().zip(c.cols).enumerate() {
        left.iter_mut().for_each(|l| *l = 0);
        // Σ count² of each side, kept exactly as each row moves left, so a
        // candidate costs O(1), not O(classes): n_side · gini(side) =
        // n_side − Σ count² / n_side.
        let (mut sl, mut sr) = (0u64, squares);
        for (pos, pair) in order.windows(2).enumerate() {
            let (row, v, next) = (pair[0] as usize, x[pair[0] as usize], x[pair[1] as usize]);
            let class = y[row];
            let (l, r) = (left[class] as u64, (counts[class] - left[class]) as u64);
            sl += 2 * l + 1;
            sr -= 2 * r - 1;
            left[class] += 1;
            let nl = pos + 1;
            if v == next || nl < min_leaf || n - nl < min_leaf {
                continue;
            }
            let (fl, fr) = (nl as f64, (n - nl) as f64);
            let score = (n as f64 - sl as f64 / fl - sr as f64 / fr) / n as f64;
            if best.is_none_or(|(s, _, _)| score < s - 1e-12) {
                best = Some((score, j, (v + next) / 2.0));
            }
        }
    }
    let Some((_, column, split)) = best.filter(|(s, _, _)| *s < parent - 1e-12) else {
        return Fitted::Leaf(class, idx);
    };
    // Which side each row goes, read once off the split column's order.
    let x = c.cols[column];
    let mut goes_left = vec![false; x.len()];
    for &i in &orders[column] {
        goes_left[i as usize] = x[i as usize] <= split;
    }
    let (l, r): (Vec<usize>, Vec<usize>) = idx.into_iter().partition(|&i| goes_left[i]);
    let (lo, ro): (Vec<_>, Vec<_>) = orders
        .into_par_iter()
        .map(|o| -> (Vec<_>, Vec<_>) { o.into_iter().partition(|&i| goes_left[i as usize]) })
        .unzip();
    drop(goes_left);
    let (left, right) = rayon::join(|| fit(c, l, lo, depth - 1), || fit(c, r, ro, depth - 1));
    match (left, right) {
        (Fitted::Leaf(a, mut ra), Fitted::Leaf(b, rb)) if a == b => {
            ra.extend(rb);
            Fitted::Leaf(a, ra)
        }
        (left, right) => Fitted::Split {
            column,
            split,
            left: Box::new(left),
            right: Box::new(right),
        },
    }
}

fn majority_of(counts: &[usize]) -> usize {
    (0..counts.len())
        .max_by(|&a, &b| counts[a].cmp(&counts[b]).then(b.cmp(&a)))
        .unwrap_or(0)
}

/// The most common class (the lowest on a tie).
pub fn majority(y: &[usize]) -> usize {
    let mut counts = vec![0usize; y.iter().max().map_or(1, |m| m + 1)];
    for &c in y {
        counts[c] += 1;
    }
    majority_of(&counts)
}

fn walk(
    node: &Fitted,
    columns: &[Column],
    path: &mut Vec<(usize, bool, f64)>,
    out: &mut Vec<Leaf>,
    leaf_of: &mut [usize],
) {
    match node {
        Fitted::Leaf(class, rows) => {
            for &i in rows {
                leaf_of[i] = out.len();
            }
            out.push(Leaf {
                conditions: simplify(path, columns),
                class: *class,
            })
        }
        Fitted::Split {
            column,
            split,
            left,
            right,
        } => {
            let t = round_threshold(&columns[*column].sorted, *split);
            for (child, right) in [(left, false), (right, true)] {
                path.push((*column, right, t));
                walk(child, columns, path, out, leaf_of);
                path.pop();
            }
        }
    }
}

/// A path's tests, one condition per feature: the tightest bounds of a
/// number, the level of a categorical feature (or the levels it is not).
pub(super) fn simplify(path: &[(usize, bool, f64)], columns: &[Column]) -> Vec<Condition> {
    let mut out: Vec<Condition> = Vec::new();
    for &(j, right, t) in path {
        let c = &columns[j];
        let pos = out.iter().position(|o| o.feature == c.feature);
        let test = match (&c.level, right) {
            (Some(level), true) => Test::Is {
                level: level.clone(),
            },
            (Some(level), false) => Test::IsNot {
                levels: vec![level.clone()],
            },
            (None, true) => Test::AtLeast { value: t },
            (None, false) => Test::Below { value: t },
        };
        let merged = match (pos.map(|p| &out[p].test), test) {
            (None, t) => t,
            (Some(Test::Is { level }), _) => Test::Is {
                level: level.clone(),
            },
            (Some(_), t @ Test::Is { .. }) => t,
            (Some(Test::IsNot { levels }), Test::IsNot { levels: more }) => {
                let mut l = levels.clone();
                l.extend(more);
                Test::IsNot { levels: l }
            }
            (Some(old), new) => bounds(old, &new),
        };
        let cond = Condition {
            feature: c.feature.clone(),
            label: c.label.clone(),
            unit: c.unit,
            test: merged,
        };
        match pos {
            Some(p) => out[p] = cond,
            None => out.push(cond),
        }
    }
    out
}

/// Two numeric tests on one feature as one.
fn bounds(a: &Test, b: &Test) -> Test {
    let (mut low, mut high) = (f64::NEG_INFINITY, f64::INFINITY);
    for t in [a, b] {
        match *t {
            Test::AtLeast { value } => low = low.max(value),
            Test::Below { value } => high = high.min(value),
            Test::Between { low: l, high: h } => {
                low = low.max(l);
                high = high.min(h);
            }
            _ => {}
        }
    }
    match (low.is_finite(), high.is_finite()) {
        (true, true) => Test::Between { low, high },
        (true, false) => Test::AtLeast { value: low },
        _ => Test::Below { value: high },
    }
}

/// Whether row `i` of `table` meets every condition of `leaf` (as the
/// table holds it: missing numbers filled).
pub fn covers(leaf: &Leaf, table: &Table, i: usize) -> bool {
    leaf.conditions.iter().all(|c| {
        let col = |level: Option<&str>| {
            table
                .columns
                .iter()
                .position(|k| k.feature == c.feature && k.level.as_deref() == level)
        };
        match &c.test {
            Test::AtLeast { value } => col(None).is_some_and(|j| table.x[(i, j)] >= *value),
            Test::Below { value } => col(None).is_some_and(|j| table.x[(i, j)] < *value),
            Test::Between { low, high } => {
                col(None).is_some_and(|j| table.x[(i, j)] >= *low && table.x[(i, j)] < *high)
            }
            Test::Is { level } => col(Some(level)).is_some_and(|j| table.x[(i, j)] > 0.5),
            Test::IsNot { levels } => levels
                .iter()
                .all(|l| col(Some(l)).is_none_or(|j| table.x[(i, j)] < 0.5)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(feature: &str, level: Option<&str>, values: &[f64]) -> Column {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Column {
            feature: feature.into(),
            label: if feature == "arr" {
                "ARR".into()
            } else {
                feature.replace('_', " ")
            },
            unit: if feature == "arr" {
                Unit::Usd
            } else {
                Unit::Count
            },
            level: level.map(str::to_string),
            sorted,
        }
    }

    #[test]
    fn a_tree_reads_back_as_rules_in_business_units() {
        // Tier 0 when ARR ≥ ~$100k; tier 1 otherwise, except the Retail
        // accounts among the small ones, which are tier 2.
        let arr = [
            20e3, 20e3, 40e3, 40e3, 60e3, 60e3, 150e3, 180e3, 200e3, 260e3,
        ];
        let retail = [1., 0., 1., 0., 1., 0., 0., 0., 1., 0.];
        let y = vec![2, 1, 2, 1, 2, 1, 0, 0, 0, 0];
        let mut x = ndarray::Array2::zeros((10, 2));
        for i in 0..10 {
            x[(i, 0)] = arr[i];
            x[(i, 1)] = retail[i];
        }
        let table = Table {
            columns: vec![
                column("arr", None, &arr),
                column("industry", Some("Retail"), &retail),
            ],
            x,
        };
        let leaves = grow(&table, &y, 3, 1);
        let mut texts: Vec<(String, usize)> = leaves
            .iter()
            .map(|l| {
                (
                    l.conditions
                        .iter()
                        .map(|c| c.text())
                        .collect::<Vec<_>>()
                        .join(" and "),
                    l.class,
                )
            })
            .collect();
        texts.sort();
        assert_eq!(
            texts,
            vec![
                ("ARR < $100k and industry is Retail".to_string(), 2),
                ("ARR < $100k and industry is not Retail".to_string(), 1),
                ("ARR ≥ $100k".to_string(), 0),
            ],
            "{texts:?}"
        );
        let small = leaves.iter().find(|l| l.class == 1).expect("a tier-1 leaf");
        let mut sql: Vec<String> = small.conditions.iter().map(|c| c.sql()).collect();
        sql.sort();
        assert_eq!(sql, ["\"arr\" < 100000", "\"industry\" NOT IN ('Retail')"]);
        for i in 0..10 {
            let hits: Vec<usize> = leaves
                .iter()
                .filter(|l| covers(l, &table, i))
                .map(|l| l.class)
                .collect();
            assert_eq!(hits, vec![y[i]], "row {i}");
        }
    }

    #[test]
    fn a_path_keeps_one_condition_per_feature() {
        let c = vec![column("arr", None, &[1.0, 5.0, 10.0])];
        let path = [(0, true, 2.0), (0, false, 8.0), (0, true, 3.0)];
        let s = simplify(&path, &c);
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].test,
            Test::Between {
                low: 3.0,
                high: 8.0
            }
        );
        assert_eq!(s[0].sql(), "\"arr\" >= 3 AND \"arr\" < 8");
        assert_eq!(show(Unit::Usd, 118_500.0), "$118.5k");
        assert_eq!(show(Unit::Usd, 1_500_000.0), "$1.5M");
        assert_eq!(show(Unit::Usd, 118_234.0), "$118234");
        assert_eq!(show(Unit::Percent, 0.834), "83.4%");
        assert_eq!(show(Unit::Number, -39.0), "-39");
        assert_eq!(show(Unit::Percent, 0.455), "45.5%");
        assert_eq!(quote_text("O'Brien"), "'O''Brien'");
    }
}
