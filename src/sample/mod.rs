//! A synthetic but realistic B2B SaaS dataset with planted segments.
//!
//! `strata sample` writes the four classic Customer Success sources — accounts
//! (firmographics and the CS tier each account is in today), monthly product
//! usage, NPS survey responses and monthly revenue — plus support tickets as a
//! cost-to-serve signal, and a `truth.csv` that says which planted segment each
//! account was drawn from and whether its current tier was deliberately set
//! wrong. That makes segment recovery and exception finding measurable.
//!
//! The mess is realistic on purpose: ARR is log-normal (a few very large
//! accounts), some accounts appear twice in the account table with a stale
//! older row, a third of accounts never answered a survey, some months of usage
//! are missing and a few accounts stopped using the product.
//!
//! `--schema alt` writes the same kind of business with a different schema: other
//! column names, day-first dates, raw usage *events* keyed by subscription (which
//! reach the account through a subscriptions table) and billing as Parquet —
//! the case the pipeline file must handle without code.
//!
//! Everything is drawn from seeded RNGs in a fixed order: the same seed gives
//! byte-identical files. The account list is never held: [`Population`] is
//! where each cohort and each month's drift starts in its stream, and every
//! table is written as the population is replayed a chunk at a time, so the
//! generator's memory does not grow with the number of accounts.

use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::month::Month;

mod alt;
mod population;
mod sink;
mod standard;

use alt::{alt_billing, alt_customers, alt_usage};
use population::{Population, ARCHETYPES};
use sink::{Sink, CHUNK};
use standard::{
    account_table, monthly_tables, nps_table, outcome_table, ticket_table, truth_table,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// accounts / usage / nps / revenue / tickets keyed by account id.
    Standard,
    /// customers / subscriptions / events (by subscription) / billing / surveys.
    Alt,
}

#[derive(Debug, Clone)]
pub struct SampleParams {
    pub accounts: usize,
    pub seed: u64,
    pub as_of: Month,
    pub months: u32,
    pub format: SampleFormat,
    pub schema: Schema,
    /// 0: the data as of `as_of`. N > 0: the same business N months later
    /// (`as_of + N`), after N months of drift, churn and new accounts.
    pub follow_on: u32,
    /// How tiers relate to the planted segments (see [`TierMix`]).
    pub tier_mix: TierMix,
}

/// How the natural tiers relate to the planted segments, for testing the
/// comparison on data shaped like real exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TierMix {
    /// Each segment has one natural tier: 12% High Touch, 38% Hybrid, 50% Tech Touch.
    #[default]
    Standard,
    /// 3% / 7% / 90%: strategic accounts High Touch, mid-market Hybrid, the rest Tech Touch.
    Imbalanced,
    /// Hybrid is 40% of every segment and the majority of none: the smaller
    /// 40% of the High Touch segments (strategic, mid-market) and the larger
    /// 40% of the Tech Touch ones (SMB, at-risk, power users) are Hybrid.
    Middle,
}

impl TierMix {
    fn share(self, segment: usize) -> f64 {
        match self {
            TierMix::Imbalanced => [0.03, 0.07, 0.50, 0.20, 0.20][segment],
            _ => ARCHETYPES[segment].share,
        }
    }
    /// The tier an account of `segment` with ARR `arr` naturally belongs in.
    fn natural(self, segment: usize, arr: f64) -> usize {
        let a = &ARCHETYPES[segment];
        match self {
            TierMix::Standard => a.tier,
            TierMix::Imbalanced => [0, 1, 2, 2, 2][segment],
            TierMix::Middle => {
                // ln(ARR / median) is about N(0, 0.47): ±0.12 splits off 40%.
                let high = [true, true, false, false, false][segment];
                let r = (arr / a.arr_median).ln();
                match (high, r) {
                    (true, r) if r < -0.12 => 1,
                    (true, _) => 0,
                    (false, r) if r > 0.12 => 1,
                    (false, _) => 2,
                }
            }
        }
    }
}

/// Summary of what was written.
#[derive(Debug, Serialize)]
pub struct SampleSummary {
    pub files: Vec<(String, usize)>,
    pub accounts: usize,
}

/// Generate the dataset into `dir`.
pub fn generate(params: &SampleParams, dir: &Path) -> Result<SampleSummary> {
    generate_in_chunks(params, dir, CHUNK)
}

/// [`generate`], `chunk` accounts at a time (the files do not depend on it):
/// every table of the standard schema is written as the population is
/// replayed, so memory is bounded by the chunk, not the number of accounts.
fn generate_in_chunks(params: &SampleParams, dir: &Path, chunk: usize) -> Result<SampleSummary> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
    let population = Population::plan(params);
    let mut rng = population.after_base.clone();
    let shifted = SampleParams {
        as_of: params.as_of.add(params.follow_on as i32),
        ..params.clone()
    };
    let params = &shifted;
    let mut files = Vec::new();
    let mut truth = Sink::new(dir, "truth", SampleFormat::Csv);
    match params.schema {
        Schema::Standard => {
            let f = params.format;
            let mut sinks = ["accounts", "usage", "revenue", "nps", "tickets", "outcomes"]
                .map(|stem| Sink::new(dir, stem, f));
            let (mut responses, mut tickets) = (0, 0);
            population.each_chunk(chunk, |c| {
                let [accounts, usage, revenue, nps, ticket, outcomes] = &mut sinks;
                accounts.write(account_table(params, c, &mut rng)?)?;
                let (u, r) = monthly_tables(params, c)?;
                usage.write(u)?;
                revenue.write(r)?;
                nps.write(nps_table(params, c, false, &mut responses)?)?;
                ticket.write(ticket_table(params, c, &mut tickets)?)?;
                outcomes.write(outcome_table(params, c)?)?;
                truth.write(truth_table(c)?)
            })?;
            for sink in sinks {
                files.push(sink.finish()?);
            }
        }
        Schema::Alt => {
            // Small test data: the whole list, one chunk per table (the alt
            // tables draw from the shared stream table by table).
            let mut accts = Vec::new();
            population.each_chunk(chunk, |c| {
                accts.extend_from_slice(c);
                truth.write(truth_table(c)?)
            })?;
            let mut emit = |df: DataFrame, stem: &str, format: SampleFormat| -> Result<()> {
                let mut sink = Sink::new(dir, stem, format);
                sink.write(df)?;
                files.push(sink.finish()?);
                Ok(())
            };
            emit(
                alt_customers(params, &accts, &mut rng)?,
                "customers",
                SampleFormat::Csv,
            )?;
            let (subs, events) = alt_usage(params, &accts, &mut rng)?;
            emit(subs, "subscriptions", SampleFormat::Csv)?;
            emit(events, "events", SampleFormat::Csv)?;
            emit(
                alt_billing(params, &accts, &mut rng)?,
                "billing",
                SampleFormat::Parquet,
            )?;
            let mut responses = 0;
            emit(
                nps_table(params, &accts, true, &mut responses)?,
                "surveys",
                SampleFormat::Csv,
            )?;
        }
    }
    files.push(truth.finish()?);
    Ok(SampleSummary {
        files,
        accounts: population.accounts,
    })
}

// --- the alternative schema -------------------------------------------------

#[cfg(test)]
mod tests;
