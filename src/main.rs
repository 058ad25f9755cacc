//! The `roomflow` binary: parses the command line and hands it to the library's commands.

use clap::Parser;
use roomflow::cli::{Cli, Command};
use roomflow::run::error::{JobError, FENCED_EXIT_STATUS};
use roomflow::telemetry::logging::{self, LogFormat};

// glibc's allocator fragments under the churn of many short-lived batches: resident memory crept
// up over long replays. mimalloc keeps it flat (and allocates faster). It is built without
// transparent huge pages (Cargo.toml's `no_thp`), which had doubled a replay's resident memory.
// The `system-allocator` feature leaves it out, for heap profilers that watch malloc (heaptrack).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let log_format = cli.log_format;
    let result = match cli.command {
        Command::Replay(args) => roomflow::replay::replay(args),
        Command::Simulate(args) => roomflow::simulate::command(args),
        Command::Run(args) => roomflow::run::run(args),
        Command::Publish(args) => roomflow::publish::publish(args),
        Command::Dashboard(args) => roomflow::dashboard::dashboard(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            if log_format == LogFormat::Json {
                tracing::error!(error = format!("{error:#}"), "roomflow failed");
            } else {
                eprintln!("error: {error:#}");
            }
            // A job fenced by a newer copy of itself says so in its status: restarting it would
            // only fence the other (docs/operations.md).
            let fenced = error
                .downcast_ref::<JobError>()
                .is_some_and(JobError::is_fenced);
            if fenced {
                std::process::ExitCode::from(FENCED_EXIT_STATUS)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
