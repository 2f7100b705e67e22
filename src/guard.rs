//! Calls into Polars that cannot take the process down: a panic deep inside
//! Polars becomes an error message naming what failed, and the CLI's panic
//! hook stays quiet while a guarded call runs. A leaf every stage may use.

use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::PolarsResult;

use crate::error::polars_message as plain;

static GUARDS: AtomicUsize = AtomicUsize::new(0);

/// True while a guarded call runs: the CLI's panic hook stays quiet then,
/// because the panic is turned into a finding.
pub fn guarded_call_active() -> bool {
    GUARDS.load(Ordering::SeqCst) > 0
}

/// Run `f`, turning a panic into an error message. Polars' messages are cut
/// to their first paragraph ([`plain`]): the rest is a query plan or advice
/// for Polars' Python API, neither of which a strata user can act on.
pub fn guard<T>(f: impl FnOnce() -> PolarsResult<T>) -> Result<T, String> {
    GUARDS.fetch_add(1, Ordering::SeqCst);
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDS.fetch_sub(1, Ordering::SeqCst);
    match out {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(plain(&e.to_string())),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("the reader failed unexpectedly ({})", plain(&msg)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polars_messages_lose_the_plan_and_the_python_advice() {
        let plan = "unable to add a column of length 3 to a DataFrame of height 2\n\nResolved plan until failure:\n\n\t---> FAILED HERE RESOLVING 'with_columns' <---\nDF [\"a\"]";
        assert_eq!(
            plain(plan),
            "unable to add a column of length 3 to a DataFrame of height 2"
        );
        let advice = "could not parse `x` as dtype `i64` at column 'a' (column number 1)\n\nThe current offset in the file is 10 bytes.\n\nYou might want to try:\n- increasing `infer_schema_length` (e.g. `infer_schema_length=10000`),";
        assert_eq!(
            plain(advice),
            "could not parse `x` as dtype `i64` at column 'a' (column number 1)"
        );
        assert_eq!(plain(""), "the data could not be processed");
    }
}
