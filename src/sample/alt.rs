//! `--schema alt`: the same business with other column names, day-first
//! dates, usage events keyed by subscription, and billing as Parquet.

use polars::prelude::*;
use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::population::{date_days, Account, TIERS};
use super::sink::Table;
use super::standard::dmy;
use super::SampleParams;
use crate::error::Result;

pub(super) fn alt_id(a: &Account) -> String {
    a.id.replace('A', "C-")
}

pub(super) fn alt_customers(
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
pub(super) fn alt_usage(
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

pub(super) fn alt_billing(
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
