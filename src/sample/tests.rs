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
    let (kept, new): (Vec<_>, Vec<_>) = later.iter().partition(|(id, ..)| known.contains_key(id));
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
        assert_eq!(
            a.files.len(),
            7,
            "accounts, usage, revenue, nps, tickets, outcomes, truth"
        );
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
