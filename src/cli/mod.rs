//! The `strata` command line's parts: its arguments ([`args`]), the log sink
//! ([`log`]) and one function per command ([`commands`]).

pub mod args;
pub mod commands;
pub mod log;
