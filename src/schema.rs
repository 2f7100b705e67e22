//! Names shared by the stages and the run directory's files (a leaf module).

/// Name of the id column in the per-account frame and every output.
pub const ACCOUNT_ID: &str = "account_id";
