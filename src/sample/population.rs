//! The planted population: archetypes (the segments), how accounts are drawn
//! from them, how they drift month by month, and where each cohort starts in
//! its random stream so the population can be replayed a chunk at a time.

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{SampleParams, TierMix};
use crate::error::Result;
use crate::month::Month;

/// A planted segment: the behaviour an account is drawn from.
pub(super) struct Archetype {
    pub(super) name: &'static str,
    pub(super) share: f64,
    pub(super) tier: usize,
    pub(super) employees_median: f64,
    /// Seats bought per employee.
    pub(super) seat_share: f64,
    pub(super) arr_median: f64,
    pub(super) utilisation: f64,
    pub(super) features_used: f64,
    pub(super) growth: f64,
    pub(super) usage_trend: f64,
    pub(super) nps_mean: f64,
    pub(super) discount: f64,
    pub(super) late: f64,
    pub(super) tickets_per_100_seats: f64,
}

pub const TIERS: [&str; 3] = ["High Touch", "Hybrid", "Tech Touch"];

pub(super) const ARCHETYPES: [Archetype; 5] = [
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

pub(super) const INDUSTRIES: [&str; 8] = [
    "Software",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Education",
    "Media",
    "Logistics",
];

pub(super) const REGIONS: [&str; 4] = ["North America", "EMEA", "APAC", "LATAM"];

pub(super) const PLANS: [&str; 3] = ["Enterprise", "Growth", "Starter"];

/// One generated account (before it is written out).
#[derive(Clone)]
pub(super) struct Account {
    pub(super) id: String,
    pub(super) segment: usize,
    pub(super) employees: i64,
    pub(super) company_revenue: f64,
    pub(super) industry: &'static str,
    pub(super) region: &'static str,
    pub(super) tier: usize,
    /// The tier its behaviour belongs in.
    pub(super) natural: usize,
    pub(super) mis_tiered: &'static str,
    pub(super) since: Month,
    pub(super) seats: f64,
    pub(super) arr: f64,
    pub(super) utilisation: f64,
    pub(super) features_used: f64,
    pub(super) growth: f64,
    pub(super) usage_trend: f64,
    pub(super) nps_mean: f64,
    pub(super) discount: f64,
    pub(super) late: f64,
    pub(super) tickets_rate: f64,
    /// Stopped using the product this many months ago (0 = still active).
    pub(super) dormant_months: u32,
}

pub(super) fn date_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

pub(super) fn pick(rng: &mut impl Rng, items: &[&'static str]) -> &'static str {
    items[rng.gen_range(0..items.len())]
}

/// Draws accounts of the planted segments, one after another from an RNG:
/// the base population from the seed's stream, a month's new accounts from
/// the drift stream.
pub(super) struct Draw {
    pub(super) as_of: Month,
    pub(super) tier_mix: TierMix,
    /// Cumulative segment shares.
    pub(super) cum: Vec<f64>,
    pub(super) unit: Normal<f64>,
}

impl Draw {
    pub(super) fn new(params: &SampleParams) -> Draw {
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
    pub(super) fn account(&self, i: usize, rng: &mut Xoshiro256PlusPlus) -> Account {
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
pub(super) const DRIFTS_TO: [usize; 5] = [3, 3, 4, 1, 1];

/// One month of drift, as two positions in the drift stream: the churn draws
/// (one per account alive at the month's start, in list order) and the
/// behaviour draws (one set per survivor, in list order). Each month about
/// 1.5% of accounts churn, 2% are new, 2% change behaviour (to [`DRIFTS_TO`])
/// while keeping their tier, so they become upgrade or downgrade candidates,
/// and all behaviour wobbles a little.
#[derive(Clone)]
pub(super) struct MonthDrift {
    pub(super) churn: Xoshiro256PlusPlus,
    pub(super) change: Xoshiro256PlusPlus,
}

impl MonthDrift {
    pub(super) fn churns(&mut self) -> bool {
        self.churn.gen_bool(0.015)
    }

    /// Move a surviving account on one month. How many draws it takes does
    /// not depend on the account, only on the stream.
    pub(super) fn change(&mut self, a: &mut Account, tier_mix: TierMix, unit: &Normal<f64>) {
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
pub(super) struct Cohort {
    pub(super) joined: usize,
    pub(super) rng: Xoshiro256PlusPlus,
    pub(super) count: usize,
    /// The first account number (1-based) and the month they joined, for new accounts.
    pub(super) new: Option<(usize, Month)>,
}

/// The population of a data drop, as a recipe rather than a list: which
/// cohorts, where each month's drift starts in the drift stream, and where
/// the account table's own draws start. [`Population::each_chunk`] replays it
/// a chunk at a time, so the generator's memory does not grow with the
/// number of accounts, and the accounts are exactly those of drawing the
/// whole list and drifting it month by month.
pub(super) struct Population {
    pub(super) draw: Draw,
    pub(super) cohorts: Vec<Cohort>,
    pub(super) months: Vec<MonthDrift>,
    /// The seed's stream after the base population: the account table's
    /// stale rows (and the alternative schema's tables) draw from it.
    pub(super) after_base: Xoshiro256PlusPlus,
    pub(super) accounts: usize,
}

impl Population {
    /// Walk the streams once without keeping accounts: O(accounts) time,
    /// O(months) memory.
    pub(super) fn plan(params: &SampleParams) -> Population {
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
    pub(super) fn each_chunk(
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
