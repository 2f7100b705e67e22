//! `[kmeans]`: k-means's settings as written, and checked into a
//! [`KMeansConfig`] (only a checked configuration can be fitted).

use serde::{Deserialize, Serialize};

use crate::section;
use crate::settings::{positive, Problems};

section! {
    /// `[kmeans]` as written.
    #[derive(Debug, Deserialize, Default)]
    pub struct RawKMeans {
        pub k: Option<toml::Value>,
        pub k_range: Option<[usize; 2]>,
        pub restarts: Option<usize>,
        pub max_iter: Option<u64>,
        pub tolerance: Option<f64>,
        pub selection_sample: Option<usize>,
        pub silhouette_sample: Option<usize>,
    }
}

/// Checked k-means parameters.
#[derive(Debug, Clone, Serialize)]
pub struct KMeansConfig {
    /// `None` = choose k automatically in `k_min..=k_max`.
    pub k: Option<usize>,
    pub k_min: usize,
    pub k_max: usize,
    pub restarts: usize,
    pub max_iter: u64,
    pub tolerance: f64,
    pub selection_sample: usize,
    pub silhouette_sample: usize,
    /// Whether the pipeline set `k_range` (a default range is capped to the
    /// data's size; a range the user set is checked against it).
    #[serde(skip)]
    pub k_range_set: bool,
}

/// The highest k an automatic choice may try (each k is fitted and scored).
pub const MAX_AUTO_K: usize = 50;
/// Accounts per segment, on average, below which segments are not worth
/// finding: k is at most accounts / this.
pub const MIN_ACCOUNTS_PER_SEGMENT: usize = 5;

impl Default for KMeansConfig {
    fn default() -> Self {
        KMeansConfig {
            k: None,
            k_min: 2,
            k_max: 10,
            restarts: 4,
            max_iter: 300,
            tolerance: 1e-4,
            selection_sample: 5_000,
            silhouette_sample: 4_000,
            k_range_set: false,
        }
    }
}

impl KMeansConfig {
    /// `[kmeans]` checked (`None`: the section is absent, every default);
    /// what is wrong goes to `problems`.
    pub fn check(raw: Option<&RawKMeans>, problems: &mut Problems) -> KMeansConfig {
        let mut c = KMeansConfig::default();
        let Some(k) = raw else {
            return c;
        };
        match &k.k {
            None => {}
            Some(toml::Value::String(s)) if s == "auto" => c.k = None,
            Some(toml::Value::Integer(v)) if *v >= 1 => c.k = Some(*v as usize),
            Some(other) => problems.push(
                "kmeans.k",
                format!("`{other}` is not allowed; use \"auto\" or a whole number >= 1"),
            ),
        }
        if let Some([lo, hi]) = k.k_range {
            if lo < 2 || hi < lo {
                problems.push(
                    "kmeans.k_range",
                    format!(
                        "[{lo}, {hi}] must be two whole numbers 2 <= low <= high, e.g. [2, 10]"
                    ),
                );
            } else if hi > MAX_AUTO_K {
                problems.push(
                    "kmeans.k_range",
                    format!(
                        "[{lo}, {hi}]: choosing k fits and scores every k in the range, so the high end is at most {MAX_AUTO_K}; for a fixed, larger number of segments set k instead"
                    ),
                );
            }
            c.k_min = lo;
            c.k_max = hi;
            c.k_range_set = true;
        }
        positive(problems, "kmeans.restarts", k.restarts, &mut c.restarts);
        if let Some(v) = k.max_iter {
            if v == 0 {
                problems.push("kmeans.max_iter", "must be at least 1");
            }
            c.max_iter = v;
        }
        if let Some(t) = k.tolerance {
            if !(t > 0.0 && t.is_finite()) {
                problems.push(
                    "kmeans.tolerance",
                    format!("{t} must be a number > 0, e.g. 1e-4"),
                );
            }
            c.tolerance = t;
        }
        positive(
            problems,
            "kmeans.selection_sample",
            k.selection_sample,
            &mut c.selection_sample,
        );
        positive(
            problems,
            "kmeans.silhouette_sample",
            k.silhouette_sample,
            &mut c.silhouette_sample,
        );
        c
    }

    /// What these settings cannot do on `n` accounts, as (pipeline key,
    /// message) pairs; a default k range is narrowed to the data instead.
    pub fn problems_for(&self, n: usize) -> Option<(&'static str, String)> {
        let most = n / MIN_ACCOUNTS_PER_SEGMENT;
        let per = MIN_ACCOUNTS_PER_SEGMENT;
        match self.k {
            Some(k) if k > most => Some((
                "kmeans.k",
                format!("k = {k} segments for {n} accounts: at most {most} (at least {per} accounts per segment on average)"),
            )),
            Some(_) => None,
            None if self.k_range_set && self.k_max > most => Some((
                "kmeans.k_range",
                format!(
                    "[{}, {}] for {n} accounts: the high end can be at most {most} (at least {per} accounts per segment on average)",
                    self.k_min, self.k_max
                ),
            )),
            None if self.k_min > most => Some((
                "kmeans.k_range",
                format!(
                    "the low end {} is more than {most} segments for {n} accounts (at least {per} accounts per segment on average)",
                    self.k_min
                ),
            )),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str) -> (KMeansConfig, Problems) {
        let raw: RawKMeans = toml::from_str(text).unwrap();
        let mut p = Problems::default();
        (KMeansConfig::check(Some(&raw), &mut p), p)
    }

    #[test]
    fn a_fixed_k_or_auto_and_a_range_are_read() {
        let (c, p) = checked("k = 4\nrestarts = 7");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!((c.k, c.restarts), (Some(4), 7));
        let (c, p) = checked("k = \"auto\"\nk_range = [3, 8]");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!((c.k, c.k_min, c.k_max, c.k_range_set), (None, 3, 8, true));
    }

    #[test]
    fn impossible_settings_are_problems_naming_their_key() {
        for (text, key) in [
            ("k = 0", "kmeans.k"),
            ("k = \"many\"", "kmeans.k"),
            ("k_range = [1, 5]", "kmeans.k_range"),
            ("k_range = [2, 5000]", "kmeans.k_range"),
            ("tolerance = -1.0", "kmeans.tolerance"),
            ("max_iter = 0", "kmeans.max_iter"),
            ("restarts = 0", "kmeans.restarts"),
        ] {
            let (_, p) = checked(text);
            assert_eq!(p.0.len(), 1, "{text}: {p:?}");
            assert_eq!(p.0[0].key, key, "{text}");
        }
    }

    #[test]
    fn too_many_segments_for_the_accounts_are_said() {
        let (c, _) = checked("k = 30");
        assert_eq!(c.problems_for(100).map(|p| p.0), Some("kmeans.k"));
        assert_eq!(c.problems_for(1000), None);
        let (c, _) = checked("k_range = [2, 40]");
        assert_eq!(c.problems_for(100).map(|p| p.0), Some("kmeans.k_range"));
        assert_eq!(KMeansConfig::default().problems_for(100), None);
    }
}
