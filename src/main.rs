//! `roomflow`: real-time sensor analytics on timely/differential dataflow.
//!
//! Data flows one way: a command (`replay.rs`, `run.rs`, `publish.rs`, `simulate/`) wires sources
//! (`sources/`, `kafka/source.rs`) to the pure computations of the `roomflow-dataflows` crate, and
//! those to sinks (`sinks/`, `kafka/sink.rs`).

mod cli;
#[cfg(test)]
mod deployment;
mod kafka;
mod mongo;
mod publish;
mod recovery;
mod replay;
mod run;
mod simulate;
mod sinks;
mod sources;
mod telemetry;

use clap::Parser;

// glibc's allocator fragments under the churn of many short-lived batches: resident memory crept
// up over long replays. mimalloc keeps it flat (and allocates faster).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    telemetry::logging::init(cli.log_format);
    let log_format = cli.log_format;
    let result = match cli.command {
        cli::Command::Replay(args) => replay::replay(args),
        cli::Command::Simulate(args) => simulate::command(args),
        cli::Command::Run(args) => run::run(args),
        cli::Command::Publish(args) => publish::publish(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            if log_format == telemetry::logging::LogFormat::Json {
                tracing::error!(error = format!("{error:#}"), "roomflow failed");
            } else {
                eprintln!("error: {error:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
