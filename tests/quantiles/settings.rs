//! `[quantiles]`: the method's own section as written, and checked.

use serde::{Deserialize, Serialize};
use strata::settings::{read_section, Problems};

strata::section! {
    #[derive(Debug, Deserialize, Default)]
    pub struct RawQuantiles {
        pub bands: Option<usize>,
        pub column: Option<usize>,
    }
}

/// Checked settings: 2 to 10 bands of one matrix column.
#[derive(Debug, Clone, Serialize)]
pub struct QuantileSettings {
    pub bands: usize,
    pub column: usize,
}

impl QuantileSettings {
    /// `[quantiles]` checked (absent: 3 bands of the first column).
    pub fn check(raw: Option<&toml::Value>, problems: &mut Problems) -> Option<QuantileSettings> {
        let r: RawQuantiles = match raw {
            Some(v) => read_section("quantiles", v, RawQuantiles::KEYS, problems)?,
            None => RawQuantiles::default(),
        };
        let bands = r.bands.unwrap_or(3);
        if !(2..=10).contains(&bands) {
            problems.push("quantiles.bands", format!("{bands} must be from 2 to 10"));
            return None;
        }
        Some(QuantileSettings {
            bands,
            column: r.column.unwrap_or(0),
        })
    }
}
