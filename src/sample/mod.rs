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

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal, Poisson};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use crate::config::Month;
use crate::error::{Error, Result};

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

/// A planted segment: the behaviour an account is drawn from.
struct Archetype {
    name: &'static str,
    share: f64,
    tier: usize,
    employees_median: f64,
    /// Seats bought per employee.
    seat_share: f64,
    arr_median: f64,
    utilisation: f64,
    features_used: f64,
    growth: f64,
    usage_trend: f64,
    nps_mean: f64,
    discount: f64,
    late: f64,
    tickets_per_100_seats: f64,
}

pub const TIERS: [&str; 3] = ["High Touch", "Hybrid", "Tech Touch"];

const ARCHETYPES: [Archetype; 5] = [
    Archetype {
        name: "Strategic enterprise",
        share: 0.12,
        tier: 0,
        employees_median: 5000.0,
        seat_share: 0.08,
        arr_median: 240_000.0,
        utilisation: 0.80,
        features_used: 24.0,
        growth: 0.20,
        usage_trend: 0.01,
        nps_mean: 8.6,
        discount: 0.15,
        late: 0.03,
        tickets_per_100_seats: 1.5,
    },
    Archetype {
        name: "Growing mid-market",
        share: 0.20,
        tier: 1,
        employees_median: 700.0,
        seat_share: 0.15,
        arr_median: 55_000.0,
        utilisation: 0.75,
        features_used: 15.0,
        growth: 0.45,
        usage_trend: 0.04,
        nps_mean: 7.8,
        discount: 0.08,
        late: 0.05,
        tickets_per_100_seats: 2.0,
    },
    Archetype {
        name: "Stable SMB",
        share: 0.35,
        tier: 2,
        employees_median: 60.0,
        seat_share: 0.25,
        arr_median: 7_000.0,
        utilisation: 0.70,
        features_used: 7.0,
        growth: 0.05,
        usage_trend: 0.0,
        nps_mean: 7.5,
        discount: 0.03,
        late: 0.08,
        tickets_per_100_seats: 3.0,
    },
    Archetype {
        name: "At-risk low adoption",
        share: 0.18,
        tier: 1,
        employees_median: 450.0,
        seat_share: 0.20,
        arr_median: 40_000.0,
        utilisation: 0.25,
        features_used: 4.0,
        growth: -0.20,
        usage_trend: -0.06,
        nps_mean: 4.5,
        discount: 0.22,
        late: 0.30,
        tickets_per_100_seats: 6.0,
    },
    Archetype {
        name: "Power users on small plans",
        share: 0.15,
        tier: 2,
        employees_median: 180.0,
        seat_share: 0.12,
        arr_median: 14_000.0,
        utilisation: 0.97,
        features_used: 22.0,
        growth: 0.60,
        usage_trend: 0.05,
        nps_mean: 9.0,
        discount: 0.02,
        late: 0.02,
        tickets_per_100_seats: 1.0,
    },
];

const INDUSTRIES: [&str; 8] = [
    "Software",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Education",
    "Media",
    "Logistics",
];
const REGIONS: [&str; 4] = ["North America", "EMEA", "APAC", "LATAM"];
const PLANS: [&str; 3] = ["Enterprise", "Growth", "Starter"];

/// One generated account (before it is written out).
#[derive(Clone)]
struct Account {
    id: String,
    segment: usize,
    employees: i64,
    company_revenue: f64,
    industry: &'static str,
    region: &'static str,
    tier: usize,
    /// The tier its behaviour belongs in.
    natural: usize,
    mis_tiered: &'static str,
    since: Month,
    seats: f64,
    arr: f64,
    utilisation: f64,
    features_used: f64,
    growth: f64,
    usage_trend: f64,
    nps_mean: f64,
    discount: f64,
    late: f64,
    tickets_rate: f64,
    /// Stopped using the product this many months ago (0 = still active).
    dormant_months: u32,
}

fn date_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

fn pick(rng: &mut impl Rng, items: &[&'static str]) -> &'static str {
    items[rng.gen_range(0..items.len())]
}

/// Draws accounts of the planted segments, one after another from an RNG:
/// the base population from the seed's stream, a month's new accounts from
/// the drift stream.
struct Draw {
    as_of: Month,
    tier_mix: TierMix,
    /// Cumulative segment shares.
    cum: Vec<f64>,
    unit: Normal<f64>,
}

impl Draw {
    fn new(params: &SampleParams) -> Draw {
        Draw {
            as_of: params.as_of,
            tier_mix: params.tier_mix,
            cum: (0..ARCHETYPES.len())
                .scan(0.0, |acc, s| {
                    *acc += params.tier_mix.share(s);
                    Some(*acc)
                })
                .collect(),
            unit: Normal::new(0.0, 1.0).expect("valid"),
        }
    }

    /// The `i`-th account (0-based) of a population.
    fn account(&self, i: usize, rng: &mut Xoshiro256PlusPlus) -> Account {
        let (cum, unit) = (&self.cum, &self.unit);
        let u: f64 = rng.gen();
        let segment = cum
            .iter()
            .position(|c| u < *c)
            .unwrap_or(ARCHETYPES.len() - 1);
        let a = &ARCHETYPES[segment];
        let mut z = || -> f64 { unit.sample(rng) };
        let employees = (a.employees_median * (0.4 * z()).exp()).round().max(3.0);
        let seats = (employees * a.seat_share * (0.2 * z()).exp())
            .round()
            .clamp(1.0, employees);
        let seat_price = a.arr_median / (a.employees_median * a.seat_share) * (0.15 * z()).exp();
        let arr = seats * seat_price;
        let utilisation = (a.utilisation + 0.05 * z()).clamp(0.02, 1.0);
        let features_used = (a.features_used + 2.0 * z()).clamp(1.0, 30.0);
        let growth = a.growth + 0.08 * z();
        let usage_trend = a.usage_trend + 0.01 * z();
        let nps_mean = a.nps_mean + 0.6 * z();
        let discount = (a.discount + 0.04 * z()).clamp(0.0, 0.6);
        let late = (a.late + 0.03 * z()).clamp(0.0, 0.9);
        let company_revenue = employees * 150_000.0 * (0.4 * z()).exp();
        // Tickets per month: a few per 100 seats, with diminishing returns for big accounts.
        let tickets_rate = a.tickets_per_100_seats * seats.sqrt() / 40.0;
        let tenure = rng.gen_range(2..96i32);
        let industry = if rng.gen_bool(0.6) {
            INDUSTRIES[(segment * 3 + rng.gen_range(0..2)) % INDUSTRIES.len()]
        } else {
            pick(rng, &INDUSTRIES)
        };
        let region = pick(rng, &REGIONS);
        // About 4% are deliberately in the wrong tier.
        let natural = self.tier_mix.natural(segment, arr);
        let (tier, mis_tiered) = if rng.gen_bool(0.04) {
            if natural == 0 || (natural == 1 && rng.gen_bool(0.5)) {
                (natural + 1, "upgrade")
            } else {
                (natural - 1, "downgrade")
            }
        } else {
            (natural, "none")
        };
        let dormant_months = if rng.gen_bool(0.02) {
            rng.gen_range(1..4)
        } else {
            0
        };
        Account {
            id: format!("A{:07}", i + 1),
            segment,
            employees: employees as i64,
            company_revenue: (company_revenue / 1000.0).round() * 1000.0,
            industry,
            region,
            tier,
            natural,
            mis_tiered,
            since: self.as_of.add(-tenure),
            seats,
            arr,
            utilisation,
            features_used,
            growth,
            usage_trend,
            nps_mean,
            discount,
            late,
            tickets_rate,
            dormant_months,
        }
    }
}

/// Where an account's behaviour drifts to: mid-market accounts losing adoption
/// become at-risk, at-risk ones recover, power users expand into mid-market,
/// stable SMBs turn into power users, and a few strategic accounts slip.
const DRIFTS_TO: [usize; 5] = [3, 3, 4, 1, 1];

/// One month of drift, as two positions in the drift stream: the churn draws
/// (one per account alive at the month's start, in list order) and the
/// behaviour draws (one set per survivor, in list order). Each month about
/// 1.5% of accounts churn, 2% are new, 2% change behaviour (to [`DRIFTS_TO`])
/// while keeping their tier, so they become upgrade or downgrade candidates,
/// and all behaviour wobbles a little.
#[derive(Clone)]
struct MonthDrift {
    churn: Xoshiro256PlusPlus,
    change: Xoshiro256PlusPlus,
}

impl MonthDrift {
    fn churns(&mut self) -> bool {
        self.churn.gen_bool(0.015)
    }

    /// Move a surviving account on one month. How many draws it takes does
    /// not depend on the account, only on the stream.
    fn change(&mut self, a: &mut Account, tier_mix: TierMix, unit: &Normal<f64>) {
        let rng = &mut self.change;
        let mut z = || -> f64 { unit.sample(rng) };
        a.utilisation = (a.utilisation + 0.015 * z()).clamp(0.02, 1.0);
        a.features_used = (a.features_used + 0.4 * z()).clamp(1.0, 30.0);
        a.nps_mean += 0.15 * z();
        a.growth += 0.02 * z();
        if rng.gen_bool(0.02) {
            let to = DRIFTS_TO[a.segment];
            let (from_arch, arch) = (&ARCHETYPES[a.segment], &ARCHETYPES[to]);
            let mut z = || -> f64 { unit.sample(rng) };
            a.utilisation = (arch.utilisation + 0.05 * z()).clamp(0.02, 1.0);
            a.features_used = (arch.features_used + 2.0 * z()).clamp(1.0, 30.0);
            a.growth = arch.growth + 0.08 * z();
            a.usage_trend = arch.usage_trend + 0.01 * z();
            a.nps_mean = arch.nps_mean + 0.6 * z();
            a.discount = (arch.discount + 0.04 * z()).clamp(0.0, 0.6);
            a.late = (arch.late + 0.03 * z()).clamp(0.0, 0.9);
            // Size follows the new behaviour (expansion or contraction of seats).
            let scale = (arch.arr_median / from_arch.arr_median).clamp(0.3, 4.0);
            a.seats = (a.seats * scale).round().max(1.0);
            a.employees = a.employees.max(a.seats as i64);
            a.arr *= scale;
            a.tickets_rate = arch.tickets_per_100_seats * a.seats.sqrt() / 40.0;
            a.segment = to;
            a.natural = tier_mix.natural(to, a.arr);
            a.mis_tiered = match a.tier.cmp(&a.natural) {
                std::cmp::Ordering::Greater => "upgrade",
                std::cmp::Ordering::Less => "downgrade",
                std::cmp::Ordering::Equal => "none",
            };
        }
    }
}

/// Where a run of accounts comes from: the base population (`joined` 0) or
/// the new accounts of month `joined`, drawn from `rng` as it stands.
struct Cohort {
    joined: usize,
    rng: Xoshiro256PlusPlus,
    count: usize,
    /// The first account number (1-based) and the month they joined, for new accounts.
    new: Option<(usize, Month)>,
}

/// The population of a data drop, as a recipe rather than a list: which
/// cohorts, where each month's drift starts in the drift stream, and where
/// the account table's own draws start. [`Population::each_chunk`] replays it
/// a chunk at a time, so the generator's memory does not grow with the
/// number of accounts, and the accounts are exactly those of drawing the
/// whole list and drifting it month by month.
struct Population {
    draw: Draw,
    cohorts: Vec<Cohort>,
    months: Vec<MonthDrift>,
    /// The seed's stream after the base population: the account table's
    /// stale rows (and the alternative schema's tables) draw from it.
    after_base: Xoshiro256PlusPlus,
    accounts: usize,
}

impl Population {
    /// Walk the streams once without keeping accounts: O(accounts) time,
    /// O(months) memory.
    fn plan(params: &SampleParams) -> Population {
        let draw = Draw::new(params);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed);
        let mut cohorts = vec![Cohort {
            joined: 0,
            rng: rng.clone(),
            count: params.accounts,
            new: None,
        }];
        for i in 0..params.accounts {
            draw.account(i, &mut rng);
        }
        // A separate stream, so the base population is exactly the base month's.
        let mut drng = Xoshiro256PlusPlus::seed_from_u64(
            params.seed ^ 0x0f01_10f0_u64.wrapping_mul(params.follow_on as u64 + 1),
        );
        let mut months = Vec::new();
        let (mut alive, mut next_id) = (params.accounts, params.accounts + 1);
        let mut scratch = draw.account(0, &mut Xoshiro256PlusPlus::seed_from_u64(0));
        for month in 1..=params.follow_on as usize {
            let churn = drng.clone();
            let survivors = (0..alive).filter(|_| !drng.gen_bool(0.015)).count();
            let mut m = MonthDrift {
                churn,
                change: drng.clone(),
            };
            months.push(m.clone());
            for _ in 0..survivors {
                m.change(&mut scratch, params.tier_mix, &draw.unit);
            }
            drng = m.change;
            let fresh = ((survivors as f64) * 0.02).round() as usize;
            let as_of = params.as_of.add(month as i32);
            cohorts.push(Cohort {
                joined: month,
                rng: drng.clone(),
                count: fresh,
                new: Some((next_id, as_of)),
            });
            for i in 0..fresh {
                draw.account(i, &mut drng);
            }
            next_id += fresh;
            alive = survivors + fresh;
        }
        Population {
            draw,
            cohorts,
            months,
            after_base: rng,
            accounts: alive,
        }
    }

    /// Call `each` on the accounts in order, `size` at a time (one empty
    /// chunk when there are none, so every table is still written).
    fn each_chunk(
        &self,
        size: usize,
        mut each: impl FnMut(&[Account]) -> Result<()>,
    ) -> Result<()> {
        let mut months = self.months.clone();
        let mut chunk = Vec::with_capacity(size.max(1));
        let mut any = false;
        for c in &self.cohorts {
            let mut rng = c.rng.clone();
            'accounts: for i in 0..c.count {
                let mut a = self.draw.account(i, &mut rng);
                if let Some((first, joined)) = c.new {
                    a.id = format!("A{:07}", first + i);
                    a.since = joined;
                }
                for m in &mut months[c.joined..] {
                    if m.churns() {
                        continue 'accounts;
                    }
                    m.change(&mut a, self.draw.tier_mix, &self.draw.unit);
                }
                chunk.push(a);
                if chunk.len() >= size.max(1) {
                    each(&chunk)?;
                    any = true;
                    chunk.clear();
                }
            }
        }
        if !chunk.is_empty() || !any {
            each(&chunk)?;
        }
        Ok(())
    }
}

/// Column buffers for one output table.
#[derive(Default)]
struct Table {
    columns: Vec<Column>,
}

impl Table {
    fn push(&mut self, c: Column) {
        self.columns.push(c);
    }
    fn frame(self) -> Result<DataFrame> {
        Ok(DataFrame::new_infer_height(self.columns)?)
    }
}

fn date_column(name: &str, days: Vec<i32>) -> Result<Column> {
    Ok(Column::new(name.into(), days).cast(&DataType::Date)?)
}

/// Accounts per chunk: the tables are generated and written a chunk of
/// accounts at a time, so memory is one chunk's rows whatever the number of
/// accounts (the alternative schema, for small test data, holds its list).
const CHUNK: usize = 50_000;

enum Writer {
    Csv(polars::io::csv::write::BatchedWriter<std::fs::File>),
    Parquet(polars::io::parquet::write::BatchedWriter<std::fs::File>),
}

/// One output table, written a chunk at a time.
struct Sink {
    path: PathBuf,
    format: SampleFormat,
    writer: Option<Writer>,
    rows: usize,
}

impl Sink {
    fn new(dir: &Path, stem: &str, format: SampleFormat) -> Sink {
        let path = dir.join(match format {
            SampleFormat::Csv => format!("{stem}.csv"),
            SampleFormat::Parquet => format!("{stem}.parquet"),
        });
        Sink {
            path,
            format,
            writer: None,
            rows: 0,
        }
    }

    fn write(&mut self, df: DataFrame) -> Result<()> {
        if self.writer.is_none() {
            let file = std::fs::File::create(&self.path)
                .map_err(|e| Error::io("creating", &self.path, e))?;
            let schema = df.schema();
            self.writer = Some(match self.format {
                SampleFormat::Csv => Writer::Csv(CsvWriter::new(file).batched(schema)?),
                SampleFormat::Parquet => Writer::Parquet(ParquetWriter::new(file).batched(schema)?),
            });
        }
        match self.writer.as_mut().expect("created above") {
            Writer::Csv(w) => w.write_batch(&df)?,
            Writer::Parquet(w) => w.write_batch(&df)?,
        }
        self.rows += df.height();
        Ok(())
    }

    /// Close the file: its name and row count.
    fn finish(self) -> Result<(String, usize)> {
        match self.writer {
            Some(Writer::Csv(mut w)) => w.finish()?,
            Some(Writer::Parquet(w)) => {
                w.finish()?;
            }
            None => {
                return Err(Error::Internal(format!(
                    "{} got no rows",
                    self.path.display()
                )))
            }
        }
        let name = self
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok((name, self.rows))
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
            let mut sinks = ["accounts", "usage", "revenue", "nps", "tickets"]
                .map(|stem| Sink::new(dir, stem, f));
            let (mut responses, mut tickets) = (0, 0);
            population.each_chunk(chunk, |c| {
                let [accounts, usage, revenue, nps, ticket] = &mut sinks;
                accounts.write(account_table(params, c, &mut rng)?)?;
                let (u, r) = monthly_tables(params, c)?;
                usage.write(u)?;
                revenue.write(r)?;
                nps.write(nps_table(params, c, false, &mut responses)?)?;
                ticket.write(ticket_table(params, c, &mut tickets)?)?;
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

fn account_table(
    params: &SampleParams,
    accts: &[Account],
    rng: &mut Xoshiro256PlusPlus,
) -> Result<DataFrame> {
    let n = accts.len();
    let cap = n + n / 100;
    let (mut id, mut emp, mut rev, mut ind, mut reg, mut plan, mut tier, mut since, mut upd) = (
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
    );
    let as_of_day = date_days(params.as_of.first_day());
    for a in accts {
        // About 0.5% have a stale older row too (an old CRM export merged in).
        let stale = rng.gen_bool(0.005);
        let stale_first = rng.gen_bool(0.5);
        let mut row = |employees: i64, updated: i32| {
            id.push(a.id.clone());
            emp.push(employees);
            rev.push(a.company_revenue);
            ind.push(a.industry);
            reg.push(a.region);
            plan.push(PLANS[a.tier]);
            tier.push(TIERS[a.tier]);
            since.push(date_days(a.since.first_day()) + (a.employees % 28) as i32);
            upd.push(updated);
        };
        let updated = as_of_day - 3 - (a.employees % 40) as i32;
        if stale && stale_first {
            row((a.employees as f64 * 0.6) as i64, updated - 200);
        }
        row(a.employees, updated);
        if stale && !stale_first {
            row((a.employees as f64 * 0.6) as i64, updated - 200);
        }
    }
    let mut t = Table::default();
    t.push(Column::new("account_id".into(), id));
    t.push(Column::new("employees".into(), emp));
    t.push(Column::new("company_revenue_usd".into(), rev));
    t.push(Column::new("industry".into(), ind));
    t.push(Column::new("region".into(), reg));
    t.push(Column::new("plan".into(), plan));
    t.push(Column::new("cs_tier".into(), tier));
    t.push(date_column("customer_since", since)?);
    t.push(date_column("updated_at", upd)?);
    t.frame()
}

/// A random stream for one account in one month (and one table, `salt`), so a
/// month's rows are the same in every data drop that contains that month:
/// the follow-on month's files repeat the earlier months' noise instead of
/// drawing it again, as a real export would. FNV-1a over the key, then
/// SplitMix inside `seed_from_u64`.
fn cell_rng(seed: u64, id: &str, m: Month, salt: u64) -> Xoshiro256PlusPlus {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed ^ salt.rotate_left(32);
    for b in id.bytes().chain(m.to_string().bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Xoshiro256PlusPlus::seed_from_u64(h)
}

/// Monthly usage and revenue, `params.months` months ending at as-of.
fn monthly_tables(params: &SampleParams, accts: &[Account]) -> Result<(DataFrame, DataFrame)> {
    let unit = Normal::new(0.0, 1.0).expect("valid");
    let cap = accts.len() * params.months as usize;
    let (mut u_id, mut u_month, mut u_active, mut u_seats, mut u_logins, mut u_feat) = (
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
    );
    let (mut r_id, mut r_month, mut r_mrr, mut r_disc, mut r_inv, mut r_late) = (
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
        Vec::with_capacity(cap),
    );
    for a in accts {
        for back in (0..params.months as i32).rev() {
            let m = params.as_of.add(-back);
            if m < a.since {
                continue;
            }
            let rng = &mut cell_rng(params.seed, &a.id, m, 1);
            let day = date_days(m.first_day());
            let years_back = back as f64 / 12.0;
            let arr_m = a.arr / (1.0 + a.growth).max(0.2).powf(years_back);
            let seats_m = (a.seats / (1.0 + a.growth).max(0.2).powf(years_back))
                .round()
                .max(1.0);
            // Revenue: one invoice a month.
            r_id.push(a.id.clone());
            r_month.push(day);
            r_mrr.push((arr_m / 12.0 * 100.0).round() / 100.0);
            r_disc.push((a.discount * 1000.0).round() / 1000.0);
            r_inv.push(1i64);
            r_late.push(rng.gen_bool(a.late) as i64);
            // Usage: some months are missing, dormant accounts stop.
            let missing_month = rng.gen_bool(0.03);
            if missing_month || (back as u32) < a.dormant_months {
                continue;
            }
            let trend = (1.0 + a.usage_trend).powi(-back);
            let active = (seats_m * a.utilisation * trend * (1.0 + 0.05 * unit.sample(rng)))
                .round()
                .clamp(0.0, seats_m);
            let logins = (active * 18.0 * (1.0 + 0.2 * unit.sample(rng)))
                .round()
                .max(0.0);
            let feats = (a.features_used + unit.sample(rng))
                .round()
                .clamp(0.0, 30.0);
            u_id.push(a.id.clone());
            u_month.push(day);
            u_active.push(active as i64);
            u_seats.push(seats_m as i64);
            u_logins.push(logins as i64);
            u_feat.push(feats as i64);
        }
    }
    let mut u = Table::default();
    u.push(Column::new("account_id".into(), u_id));
    u.push(date_column("month", u_month)?);
    u.push(Column::new("active_users".into(), u_active));
    u.push(Column::new("seats".into(), u_seats));
    u.push(Column::new("logins".into(), u_logins));
    u.push(Column::new("features_used".into(), u_feat));
    let mut r = Table::default();
    r.push(Column::new("account_id".into(), r_id));
    r.push(date_column("month", r_month)?);
    r.push(Column::new("mrr".into(), r_mrr));
    r.push(Column::new("discount_pct".into(), r_disc));
    r.push(Column::new("invoices".into(), r_inv));
    r.push(Column::new("invoices_paid_late".into(), r_late));
    Ok((u.frame()?, r.frame()?))
}

fn nps_score(rng: &mut Xoshiro256PlusPlus, mean: f64) -> i64 {
    let z: f64 = Normal::new(0.0, 1.4).expect("valid").sample(rng);
    (mean + z).round().clamp(0.0, 10.0) as i64
}

/// Survey responses; `n` counts the responses written so far (their IDs go on
/// from it across chunks).
fn nps_table(
    params: &SampleParams,
    accts: &[Account],
    alt: bool,
    n: &mut u64,
) -> Result<DataFrame> {
    let (mut rid, mut id, mut who, mut day, mut score) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let horizon = params.months.min(18) as i32;
    for a in accts {
        // A third of accounts never answer (decided once per account).
        if cell_rng(
            params.seed,
            &a.id,
            // Per-account draws are keyed by a month no data reaches.
            Month::parse("1970-01").expect("valid"),
            2,
        )
        .gen_bool(0.33)
        {
            continue;
        }
        let per_month = (0.8 + (a.seats.ln_1p() * 0.5)) / 12.0;
        let mut answered = false;
        for back in (0..horizon).rev() {
            let m = params.as_of.add(-back);
            if m < a.since {
                continue;
            }
            let rng = &mut cell_rng(params.seed, &a.id, m, 3);
            let k = Poisson::new(per_month.max(0.01))
                .expect("valid")
                .sample(rng) as usize;
            let (d0, d1) = (date_days(m.first_day()), date_days(m.add(1).first_day()));
            // Responders answer at least once: in their latest month if never before.
            let k = if back == 0 && !answered { k.max(1) } else { k };
            answered |= k > 0;
            for _ in 0..k {
                *n += 1;
                rid.push(format!("R{n:08}"));
                id.push(a.id.clone());
                who.push(format!(
                    "contact{}@{}",
                    rng.gen_range(1..50),
                    a.id.to_lowercase()
                ));
                day.push(rng.gen_range(d0..d1));
                score.push(nps_score(rng, a.nps_mean));
            }
        }
    }
    let mut t = Table::default();
    if alt {
        t.push(Column::new(
            "CustomerKey".into(),
            id.iter()
                .map(|s: &String| s.replace('A', "C-"))
                .collect::<Vec<_>>(),
        ));
        let dates: Vec<String> = day.iter().map(|d| dmy(*d)).collect();
        t.push(Column::new("Date".into(), dates));
        t.push(Column::new("NPS".into(), score));
    } else {
        t.push(Column::new("response_id".into(), rid));
        t.push(Column::new("account_id".into(), id));
        t.push(Column::new("respondent".into(), who));
        t.push(date_column("responded_at", day)?);
        t.push(Column::new("score".into(), score));
    }
    t.frame()
}

fn dmy(days: i32) -> String {
    let d =
        NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(days as i64);
    d.format("%d/%m/%Y").to_string()
}

/// Support tickets; `n` counts the tickets written so far (as [`nps_table`]).
fn ticket_table(params: &SampleParams, accts: &[Account], n: &mut u64) -> Result<DataFrame> {
    let (mut tid, mut id, mut day, mut prio) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let months = params.months.min(6) as i32;
    for a in accts {
        for back in (0..months).rev() {
            let m = params.as_of.add(-back);
            let rng = &mut cell_rng(params.seed, &a.id, m, 4);
            let k = Poisson::new(a.tickets_rate.max(0.01))
                .expect("valid")
                .sample(rng) as usize;
            let (d0, d1) = (date_days(m.first_day()), date_days(m.add(1).first_day()));
            for _ in 0..k {
                *n += 1;
                tid.push(format!("T{n:08}"));
                id.push(a.id.clone());
                day.push(rng.gen_range(d0..d1));
                prio.push(pick(rng, &["low", "normal", "normal", "high", "urgent"]));
            }
        }
    }
    let mut t = Table::default();
    t.push(Column::new("ticket_id".into(), tid));
    t.push(Column::new("account_id".into(), id));
    t.push(date_column("created_at", day)?);
    t.push(Column::new("priority".into(), prio));
    t.frame()
}

fn truth_table(accts: &[Account]) -> Result<DataFrame> {
    let mut t = Table::default();
    t.push(Column::new(
        "account_id".into(),
        accts.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "planted_segment".into(),
        accts.iter().map(|a| a.segment as i64).collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "segment_name".into(),
        accts
            .iter()
            .map(|a| ARCHETYPES[a.segment].name)
            .collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "natural_tier".into(),
        accts.iter().map(|a| TIERS[a.natural]).collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "current_tier".into(),
        accts.iter().map(|a| TIERS[a.tier]).collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "planted_exception".into(),
        accts.iter().map(|a| a.mis_tiered).collect::<Vec<_>>(),
    ));
    t.frame()
}

// --- the alternative schema -------------------------------------------------

fn alt_id(a: &Account) -> String {
    a.id.replace('A', "C-")
}

fn alt_customers(
    _params: &SampleParams,
    accts: &[Account],
    _rng: &mut Xoshiro256PlusPlus,
) -> Result<DataFrame> {
    let mut t = Table::default();
    t.push(Column::new(
        "CustomerKey".into(),
        accts.iter().map(alt_id).collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "Headcount".into(),
        accts.iter().map(|a| a.employees).collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "Sector".into(),
        accts.iter().map(|a| a.industry).collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "Geo".into(),
        accts.iter().map(|a| a.region).collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "Segment".into(),
        accts.iter().map(|a| TIERS[a.tier]).collect::<Vec<_>>(),
    ));
    t.push(Column::new(
        "SignupDate".into(),
        accts
            .iter()
            .map(|a| dmy(date_days(a.since.first_day())))
            .collect::<Vec<_>>(),
    ));
    t.frame()
}

/// Subscriptions (one or two per customer) and raw usage events keyed by subscription.
fn alt_usage(
    params: &SampleParams,
    accts: &[Account],
    rng: &mut Xoshiro256PlusPlus,
) -> Result<(DataFrame, DataFrame)> {
    let (mut sid, mut cust, mut product, mut seats) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut e_sub, mut e_day, mut e_user, mut e_feat) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let months = params.months.min(6) as i32;
    let mut n = 0u64;
    for a in accts {
        let subs = if a.seats > 20.0 && rng.gen_bool(0.5) {
            2
        } else {
            1
        };
        for s in 0..subs {
            n += 1;
            let id = format!("S{n:07}");
            let sub_seats = (a.seats / subs as f64).round().max(1.0);
            sid.push(id.clone());
            cust.push(alt_id(a));
            product.push(if s == 0 { "Core" } else { "Analytics" });
            seats.push(sub_seats as i64);
            // A handful of sampled users per month; each uses a few features.
            let users = ((sub_seats * a.utilisation).round() as i64).clamp(1, 8);
            for back in (0..months).rev() {
                if (back as u32) < a.dormant_months || params.as_of.add(-back) < a.since {
                    continue;
                }
                let m0 = date_days(params.as_of.add(-back).first_day());
                for u in 0..users {
                    let k = 1 + (a.features_used / 8.0) as i64 + rng.gen_range(0..2);
                    for _ in 0..k {
                        e_sub.push(id.clone());
                        e_day.push(dmy(m0 + rng.gen_range(0..28)));
                        e_user.push(format!("u{u}"));
                        e_feat.push(format!(
                            "feature_{}",
                            rng.gen_range(0..(a.features_used.round() as i64).max(1))
                        ));
                    }
                }
            }
        }
    }
    let mut t = Table::default();
    t.push(Column::new("SubId".into(), sid));
    t.push(Column::new("CustomerKey".into(), cust));
    t.push(Column::new("Product".into(), product));
    t.push(Column::new("SeatsPurchased".into(), seats));
    let mut e = Table::default();
    e.push(Column::new("SubId".into(), e_sub));
    e.push(Column::new("EventTime".into(), e_day));
    e.push(Column::new("UserId".into(), e_user));
    e.push(Column::new("Feature".into(), e_feat));
    Ok((t.frame()?, e.frame()?))
}

fn alt_billing(
    params: &SampleParams,
    accts: &[Account],
    rng: &mut Xoshiro256PlusPlus,
) -> Result<DataFrame> {
    let (mut id, mut period, mut amount, mut disc, mut late) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let lognormal = LogNormal::new(0.0, 0.02).expect("valid");
    for a in accts {
        for back in (0..params.months as i32).rev() {
            let m = params.as_of.add(-back);
            if m < a.since {
                continue;
            }
            let arr_m = a.arr / (1.0 + a.growth).max(0.2).powf(back as f64 / 12.0);
            let list = arr_m / 12.0 / (1.0 - a.discount).max(0.3);
            id.push(alt_id(a));
            period.push(m.to_string());
            amount.push((arr_m / 12.0 * lognormal.sample(rng) * 100.0).round() / 100.0);
            disc.push(((list - arr_m / 12.0) * 100.0).round() / 100.0);
            late.push(rng.gen_bool(a.late) as i64);
        }
    }
    let mut t = Table::default();
    t.push(Column::new("CustomerKey".into(), id));
    t.push(Column::new("Period".into(), period));
    t.push(Column::new("Amount".into(), amount));
    t.push(Column::new("DiscountAmount".into(), disc));
    t.push(Column::new("PaidLate".into(), late));
    t.frame()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(format: SampleFormat, follow_on: u32) -> SampleParams {
        SampleParams {
            accounts: 230,
            seed: 11,
            as_of: Month::parse("2026-10").expect("valid"),
            months: 13,
            format,
            schema: Schema::Standard,
            follow_on,
            tier_mix: TierMix::Standard,
        }
    }

    #[test]
    fn a_follow_on_population_keeps_the_survivors_and_numbers_new_accounts_on() {
        let ids = |p: &SampleParams, size: usize| {
            let pop = Population::plan(p);
            let mut out = Vec::new();
            pop.each_chunk(size, |c| {
                out.extend(c.iter().map(|a| (a.id.clone(), a.since, a.region)));
                Ok(())
            })
            .unwrap();
            assert_eq!(out.len(), pop.accounts);
            out
        };
        let mut p = params(SampleFormat::Csv, 0);
        p.accounts = 5000;
        let base = ids(&p, 5000);
        p.follow_on = 3;
        let later = ids(&p, 64);
        assert_eq!(later, ids(&p, 5000), "the same accounts at any chunk size");
        let known: std::collections::HashMap<_, _> = base
            .iter()
            .map(|(id, since, region)| (id.clone(), (*since, *region)))
            .collect();
        let (kept, new): (Vec<_>, Vec<_>) =
            later.iter().partition(|(id, ..)| known.contains_key(id));
        // Survivors keep their firmographics and their order; 1.5% churn a month.
        for (id, since, region) in &kept {
            assert_eq!(known[id], (*since, *region), "{id}");
        }
        assert!(kept.windows(2).all(|w| w[0].0 < w[1].0));
        let churned = 5000 - kept.len();
        assert!(
            (150..300).contains(&churned),
            "{churned} churned in 3 months"
        );
        // New accounts come after, numbered on from the base, joined in the drop's months.
        assert!(later[..kept.len()]
            .iter()
            .all(|(id, ..)| known.contains_key(id)));
        // (A new account can churn in a later month, so there may be gaps.)
        assert!(new
            .first()
            .is_some_and(|(id, ..)| id.as_str() <= "A0005003"));
        assert!(new.windows(2).all(|w| w[0].0 < w[1].0));
        for (id, since, _) in &new {
            assert!(*since > p.as_of && *since <= p.as_of.add(3), "{id} {since}");
        }
        assert!(
            (250..350).contains(&new.len()),
            "{} new in 3 months",
            new.len()
        );
    }

    #[test]
    fn the_files_do_not_depend_on_the_chunk_size() {
        for (format, follow_on) in [
            (SampleFormat::Csv, 0),
            (SampleFormat::Csv, 1),
            (SampleFormat::Parquet, 0),
        ] {
            let p = params(format, follow_on);
            let (one, many) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let a = generate_in_chunks(&p, one.path(), 10_000).unwrap();
            // 7 accounts a chunk: every table crosses many chunk boundaries,
            // and the response and ticket IDs run on across them.
            let b = generate_in_chunks(&p, many.path(), 7).unwrap();
            assert_eq!(a.files, b.files);
            assert_eq!(a.files.len(), 6);
            for (name, rows) in &a.files {
                let (x, y) = (one.path().join(name), many.path().join(name));
                if name.ends_with(".csv") {
                    let text = std::fs::read(&x).unwrap();
                    assert_eq!(text, std::fs::read(&y).unwrap(), "{name}");
                    assert_eq!(
                        text.iter().filter(|&&c| c == b'\n').count(),
                        rows + 1,
                        "{name}"
                    );
                } else {
                    let read = |p: &Path| {
                        ParquetReader::new(std::fs::File::open(p).unwrap())
                            .finish()
                            .unwrap()
                    };
                    let (dx, dy) = (read(&x), read(&y));
                    assert_eq!(dx.height(), *rows);
                    assert!(dx.equals_missing(&dy), "{name}");
                }
            }
        }
    }
}
