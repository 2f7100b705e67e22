//! A calendar month, the unit of `as_of`, of windows and of run directories:
//! a leaf every stage may use.

use std::fmt;

use serde::Serialize;

/// A calendar month, the unit of `as_of` and of windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// Parse `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.trim().split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u32 = m.parse().ok()?;
        (1..=12).contains(&month).then_some(Month { year, month })
    }
    /// Months since year 0: consecutive months differ by one.
    pub fn index(self) -> i32 {
        self.year * 12 + self.month as i32 - 1
    }
    pub fn from_index(i: i32) -> Month {
        Month {
            year: i.div_euclid(12),
            month: (i.rem_euclid(12) + 1) as u32,
        }
    }
    pub fn add(self, months: i32) -> Month {
        Month::from_index(self.index() + months)
    }
    /// The current month (UTC).
    pub fn current() -> Month {
        use chrono::Datelike;
        let now = chrono::Utc::now();
        Month {
            year: now.year(),
            month: now.month(),
        }
    }
    pub fn first_day(self) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid month")
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}
