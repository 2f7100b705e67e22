//! The `strata` command line: parse arguments, call the library, map errors to
//! exit codes (0 success, 1 bad data or pipeline file, 2 internal or I/O failure).
//! The arguments, the log sink and each command live in [`cli`].

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::args::{Cli, LogFormat};
use cli::log::Log;
use strata::Error;

/// mimalloc instead of the system allocator for Polars' many large, short-lived
/// column buffers: ingestion at 1M took 9.5–10.0 s with it, 13.4–14.3 s without
/// (README, "Dependencies"). Built with `no_thp`: mimalloc does not ask for
/// transparent huge pages for everything it maps, since a fresh huge page is
/// far dearer to touch first on the benchmark VMs (see
/// `strata::memory::huge_vec`, which asks for them where the kNN reads at random).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        if !strata::guard::guarded_call_active() {
            eprintln!(
                "strata: internal error (a bug; please report it with the command you ran): {info}"
            );
        }
    }));
    // Usage errors are input errors (exit 1); --help and --version exit 0.
    let args = match Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let log = Log::new(args.quiet, args.log_format);
    let run = || cli::commands::dispatch(args, &log);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            if let Error::Data(report) = &e {
                if log.format == LogFormat::Json {
                    log.findings(report);
                } else {
                    eprint!("{report}");
                }
            }
            log.error(&e);
            ExitCode::from(e.exit_code() as u8)
        }
        Err(_) => ExitCode::from(2),
    }
}
