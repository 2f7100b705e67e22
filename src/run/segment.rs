//! The cluster stage: each method's first part (the communities' similarity
//! graph) in turn, then the methods' fits with their stability runs side by
//! side.

use std::time::Instant;

use crate::cluster::{stability, Method, Methods, Prepared, Segmentation};
use crate::config::Pipeline;
use crate::error::Result;
use crate::features::FeatureMatrix;

use super::Progress;

/// The cluster stage: k-means and communities, each with its stability.
pub fn segment(
    p: &Pipeline,
    m: &FeatureMatrix,
    methods: &Methods,
    progress: &dyn Progress,
    previous: &dyn Fn(&dyn Method) -> Option<Vec<Option<u32>>>,
) -> Result<Vec<Segmentation>> {
    let cfg = &p.cluster;
    let seed = p.seed;
    let methods: Vec<&'static dyn Method> = methods.iter().collect();
    // Each method's first part on every core (the communities' similarity
    // graph), in turn.
    let mut prepared = Vec::new();
    for &method in &methods {
        let Some(what) = method.preparation() else {
            prepared.push(Prepared::nothing());
            continue;
        };
        progress.stage(what);
        let t = Instant::now();
        let made = method.prepare(m.x.view(), cfg, seed)?;
        progress.done(
            what,
            &format!("{} ({:.1} s)", made.summary, t.elapsed().as_secs_f64()),
        );
        prepared.push(made);
    }
    let previous: Vec<Option<Vec<Option<u32>>>> = methods
        .iter()
        .map(|method| {
            method
                .wants_previous(cfg)
                .then(|| previous(*method))
                .flatten()
        })
        .collect();
    // A method's fit and then its stability runs.
    let fit = |i: usize, method: &dyn Method, made: Prepared| -> Result<Segmentation> {
        let t = Instant::now();
        let mut s = method.fit_prepared(m.x.view(), cfg, seed, previous[i].as_deref(), made)?;
        crate::memory::trace(method.name(), t);
        if cfg.stability.runs > 0 {
            let t = Instant::now();
            let fitted = &s;
            let assessed = stability::assess(
                m.x.view(),
                &fitted.labels,
                &cfg.stability,
                seed,
                |pool, per_run| method.refit_shared(pool, per_run, fitted, cfg),
                |draw, shared, seed| method.refit(draw, shared, fitted, cfg, seed),
            )?;
            s.stability = Some(assessed);
            crate::memory::trace(&format!("stability of {}", method.name()), t);
        }
        // What the fit kept for the runs is not needed past them.
        s.reuse = None;
        Ok(s)
    };
    // Then the fits side by side, each with its stability runs: Leiden's
    // local moves and refinement run on one core, and k-means takes the
    // other. Each fit is the same on any number of threads, so running them
    // at once changes no result.
    let fitted = side_by_side(
        prepared,
        |i, made| fit(i, methods[i], made),
        |i| progress.stage(methods[i].label()),
        |i, s| {
            if let Ok(s) = s {
                progress.done(
                    methods[i].label(),
                    &format!("{} ({:.1} s)", methods[i].summary(s), s.seconds),
                );
            }
        },
    );
    let out = fitted.into_iter().collect::<Result<Vec<_>>>()?;
    if cfg.stability.runs > 0 {
        // Each method's runs followed its fit.
        progress.stage("stability");
        progress.done("stability", &format!("{} runs", cfg.stability.runs));
    }
    Ok(out)
}

/// `work(i, item)` for each of `items`, side by side on the pool, the
/// results in item order; `start(i)` and `end(i, result)` are called on this
/// thread in item order (`start(i)` before waiting for item `i`, `end` once
/// it is in), for progress lines. One item, or one thread: one after the
/// other.
///
/// Item 0 runs on this thread and the others are handed to the pool, each
/// running before item 0 starts, so that no worker, waiting inside item 0's
/// parallel work, picks up a whole item from the pool's queue and holds item
/// 0's work below it on its stack until that item is done.
fn side_by_side<I: Send, T: Send>(
    items: Vec<I>,
    work: impl Fn(usize, I) -> T + Sync,
    mut start: impl FnMut(usize),
    mut end: impl FnMut(usize, &T),
) -> Vec<T> {
    let n = items.len();
    if rayon::current_num_threads() == 1 || n <= 1 {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                start(i);
                let r = work(i, item);
                end(i, &r);
                r
            })
            .collect();
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut items = items.into_iter();
    let first = items.next();
    rayon::in_place_scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        let (started, running) = std::sync::mpsc::channel();
        let work = &work;
        for (i, item) in (1..).zip(items) {
            let (tx, started) = (tx.clone(), started.clone());
            scope.spawn(move |_| {
                let _ = started.send(());
                // The receiver outlives the scope's tasks.
                let _ = tx.send((i, work(i, item)));
            });
        }
        drop((tx, started));
        for _ in 1..n {
            let _ = running.recv();
        }
        let mut first = first;
        for i in 0..n {
            start(i);
            if i == 0 {
                out[0] = first.take().map(|item| work(0, item));
            }
            while out[i].is_none() {
                let Ok((j, r)) = rx.recv() else { break };
                out[j] = Some(r);
            }
            if let Some(r) = &out[i] {
                end(i, r);
            }
        }
    });
    out.into_iter()
        .map(|r| r.expect("every item sends its result"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_back_in_order_with_their_progress_in_order() {
        for threads in [1, 2, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let events = std::sync::Mutex::new(Vec::new());
            let out = pool.install(|| {
                side_by_side(
                    vec![(); 4],
                    |i, ()| {
                        // Later items finish first.
                        std::thread::sleep(std::time::Duration::from_millis(40 - 10 * i as u64));
                        i * 10
                    },
                    |i| events.lock().unwrap().push(format!("start {i}")),
                    |i, r| events.lock().unwrap().push(format!("end {i} {r}")),
                )
            });
            assert_eq!(out, vec![0, 10, 20, 30], "{threads} threads");
            let expected: Vec<String> = (0..4)
                .flat_map(|i| [format!("start {i}"), format!("end {i} {}", i * 10)])
                .collect();
            assert_eq!(*events.lock().unwrap(), expected, "{threads} threads");
        }
    }
}
