//! The standard schema's tables: accounts, monthly usage and revenue, NPS
//! responses, support tickets, and the planted truth.

use chrono::NaiveDate;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal, Poisson};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::population::{date_days, pick, Account, ARCHETYPES, PLANS, TIERS};
use super::sink::{date_column, Table};
use super::SampleParams;
use crate::error::Result;
use crate::month::Month;

pub(super) fn account_table(
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
pub(super) fn cell_rng(seed: u64, id: &str, m: Month, salt: u64) -> Xoshiro256PlusPlus {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed ^ salt.rotate_left(32);
    for b in id.bytes().chain(m.to_string().bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Xoshiro256PlusPlus::seed_from_u64(h)
}

/// Monthly usage and revenue, `params.months` months ending at as-of.
pub(super) fn monthly_tables(
    params: &SampleParams,
    accts: &[Account],
) -> Result<(DataFrame, DataFrame)> {
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

pub(super) fn nps_score(rng: &mut Xoshiro256PlusPlus, mean: f64) -> i64 {
    let z: f64 = Normal::new(0.0, 1.4).expect("valid").sample(rng);
    (mean + z).round().clamp(0.0, 10.0) as i64
}

/// Survey responses; `n` counts the responses written so far (their IDs go on
/// from it across chunks).
pub(super) fn nps_table(
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

pub(super) fn dmy(days: i32) -> String {
    let d =
        NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(days as i64);
    d.format("%d/%m/%Y").to_string()
}

/// Support tickets; `n` counts the tickets written so far (as [`nps_table`]).
pub(super) fn ticket_table(
    params: &SampleParams,
    accts: &[Account],
    n: &mut u64,
) -> Result<DataFrame> {
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

pub(super) fn truth_table(accts: &[Account]) -> Result<DataFrame> {
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

/// Churn within 3 months of as-of, by planted segment (before the planted
/// under-service effect).
const CHURN_BY_SEGMENT: [f64; 5] = [0.03, 0.05, 0.07, 0.20, 0.05];
/// Churn of an account deliberately left in a lower-touch tier than its
/// behaviour needs (an upgrade candidate left alone).
const CHURN_UNDER_SERVED: f64 = 0.45;

/// What happened in the 3 months after as-of (the planted outcome): whether
/// the account churned, and its ARR change (share of ARR; −1 when it
/// churned). Under-served accounts — `mis_tiered` "upgrade": their tier is
/// lower-touch than their behaviour — churn far more and shrink. Drawn from
/// each account's own stream, so no other file changes.
pub(super) fn outcome_table(params: &SampleParams, accts: &[Account]) -> Result<DataFrame> {
    let unit = Normal::new(0.0, 1.0).expect("valid");
    let (mut id, mut churned, mut change) = (Vec::new(), Vec::new(), Vec::new());
    for a in accts {
        let rng = &mut cell_rng(params.seed, &a.id, params.as_of, 7);
        let under_served = a.mis_tiered == "upgrade";
        let p = if under_served {
            CHURN_UNDER_SERVED
        } else {
            CHURN_BY_SEGMENT[a.segment]
        };
        let gone = rng.gen_bool(p);
        let drift: f64 = unit.sample(rng);
        let delta = if gone {
            -1.0
        } else {
            a.growth / 4.0 + 0.05 * drift - if under_served { 0.10 } else { 0.0 }
        };
        id.push(a.id.clone());
        churned.push(gone as i64);
        change.push((delta * 1000.0).round() / 1000.0);
    }
    let mut t = Table::default();
    t.push(Column::new("account_id".into(), id));
    t.push(Column::new("churned_3m".into(), churned));
    t.push(Column::new("arr_change_3m".into(), change));
    t.frame()
}
