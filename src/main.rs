//! `roomflow`: real-time sensor analytics on timely/differential dataflow.
//!
//! Data flows one way: a command (`replay.rs`, `run.rs`, `publish.rs`, `simulate/`) wires sources
//! (`sources/`, `kafka/source.rs`) to the pure computations of the `roomflow-dataflows` crate, and
//! those to sinks (`sinks/`, `kafka/sink.rs`).

mod cli;
mod kafka;
mod mongo;
mod publish;
mod recovery;
mod replay;
mod run;
mod simulate;
mod sinks;
mod sources;

use clap::Parser;

// glibc's allocator fragments under the churn of many short-lived batches: resident memory crept
// up over long replays. mimalloc keeps it flat (and allocates faster).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROOMFLOW_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Replay(args) => replay::replay(args),
        cli::Command::Simulate(args) => simulate::command(args),
        cli::Command::Run(args) => run::run(args),
        cli::Command::Publish(args) => publish::publish(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
