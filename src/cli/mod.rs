//! The command line: subcommands, their flags (each with an environment twin), and timely's
//! worker options `-w -n -p -h` handed through to timely. `-h` is timely's hostfile, so help is
//! `--help` only.
//!
//! What each file owns:
//! - `mod.rs`: the command line and its subcommands, the worker options, value parsers and checks
//!   shared by several commands.
//! - `replay.rs`, `run.rs`: the flags of `replay` and of `run`.
//! - `feed.rs`: the flags of `publish` and `simulate`, the commands that feed Kafka.
//! - `dashboard.rs`: the flags of `dashboard`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::sources::formats::Format;
use crate::telemetry::logging::LogFormat;

mod dashboard;
mod feed;
mod replay;
mod run;

pub use dashboard::DashboardArgs;
pub use feed::{PublishArgs, SimulateArgs};
pub use replay::{Progress, ReplayArgs};
pub use run::{AlphaGuarantee, RunArgs};

/// Real-time sensor analytics on timely/differential dataflow: per-room averages, windowed
/// averages and temperature deltas, exact and incremental.
#[derive(Parser, Debug)]
#[command(
    name = "roomflow",
    version,
    disable_help_flag = true,
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as human-readable text or as one JSON object per line (the level comes from
    /// ROOMFLOW_LOG, e.g. `debug`).
    #[arg(
        long,
        value_enum,
        default_value = "human",
        global = true,
        env = "ROOMFLOW_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
// Parsed once at start and moved into its command: the size difference between the variants
// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Replay recorded readings (files, directories, `-` for stdin) through the dataflow.
    #[command(disable_help_flag = true)]
    Replay(ReplayArgs),
    /// Write synthetic readings: realistic rooms, with some disorder and some malformed lines.
    /// With --brokers and --topic, produce them to Kafka live, at --rate readings/s, until stopped.
    #[command(disable_help_flag = true)]
    Simulate(SimulateArgs),
    /// The streaming job: sensor topics in, every change out on the alpha topic.
    #[command(disable_help_flag = true, after_long_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Publish recorded readings (every format replay reads, merged in event-time order) to a
    /// Kafka topic, keyed by room.
    #[command(disable_help_flag = true)]
    Publish(PublishArgs),
    /// A live web page of the building, fed by the alpha topic (or a replay's changes file):
    /// a tile per room, a page per room with its charts, and a JSON API under /api/.
    #[command(disable_help_flag = true)]
    Dashboard(DashboardArgs),
}

const RUN_EXAMPLES: &str = "\
Every flag can also be set through the environment variable shown with it.

Examples:
  roomflow run --topics sensors
  roomflow run --topics sensors --mongo mongodb://localhost:27017 --metrics 0.0.0.0:9898
  roomflow run --topic-pattern '^sensors\\.' -w 4 --log-format json
  roomflow run --topics sensors -n 2 -p 0 -h hosts.txt   (and -p 1 on the second machine)

Stop with Ctrl-C or SIGTERM: the job finishes the current tick, writes a last checkpoint
(with --mongo), commits its offsets and exits. With --mongo it resumes from its checkpoint.";

/// timely's worker layout.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Workers and processes (timely)")]
pub struct WorkerArgs {
    /// Worker threads per process.
    #[arg(
        short = 'w',
        long = "workers",
        default_value_t = 1,
        env = "ROOMFLOW_WORKERS"
    )]
    pub workers: usize,
    /// Number of processes in the cluster.
    #[arg(
        short = 'n',
        long = "processes",
        default_value_t = 1,
        env = "ROOMFLOW_PROCESSES"
    )]
    pub processes: usize,
    /// Index of this process in the cluster, from 0.
    #[arg(
        short = 'p',
        long = "process",
        default_value_t = 0,
        env = "ROOMFLOW_PROCESS"
    )]
    pub process: usize,
    /// File with one `host:port` line per process (default: localhost:2101, 2102, …).
    #[arg(short = 'h', long = "hostfile", env = "ROOMFLOW_HOSTFILE")]
    pub hostfile: Option<PathBuf>,
}

impl WorkerArgs {
    /// The timely configuration, after checking the options make sense together.
    pub fn timely_config(&self) -> anyhow::Result<timely::Config> {
        if self.workers == 0 {
            bail!("-w/--workers must be at least 1");
        }
        if self.processes == 0 {
            bail!("-n/--processes must be at least 1");
        }
        if self.process >= self.processes {
            bail!(
                "-p/--process is {} but must be below -n/--processes ({})",
                self.process,
                self.processes
            );
        }
        let mut args = vec![
            "-w".to_string(),
            self.workers.to_string(),
            "-n".to_string(),
            self.processes.to_string(),
            "-p".to_string(),
            self.process.to_string(),
        ];
        if let Some(hostfile) = &self.hostfile {
            if !hostfile.is_file() {
                bail!(
                    "-h/--hostfile `{}` is not a readable file",
                    hostfile.display()
                );
            }
            args.push("-h".to_string());
            args.push(hostfile.display().to_string());
        }
        timely::Config::from_args(args.into_iter())
            .map_err(anyhow::Error::msg)
            .context("invalid worker options (-w, -n, -p, -h)")
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 60s, 5m, 500ms)"))
}

fn format(text: &str) -> Result<Format, String> {
    text.parse::<Format>()
        .map_err(|_| format!("unknown format `{text}`: use json, keti or intel"))
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("`{text}` is not a positive number")),
    }
}

/// A limit in bytes: a positive whole number, at most 1 GiB.
fn byte_limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1 << 30).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{text}` is not a number of bytes from 1 to 1073741824"
        )),
    }
}

fn millis(duration: Duration, flag: &str) -> anyhow::Result<i64> {
    i64::try_from(duration.as_millis()).with_context(|| format!("{flag} is too long"))
}

/// When `window_averages` emits a window (`--emit`), as [`roomflow_dataflows::Emit`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EmitMode {
    /// Every new version of a window, as its readings arrive.
    Updates,
    /// Only its final value, once, when the window is sealed (its end plus --lateness).
    Final,
}

impl From<EmitMode> for roomflow_dataflows::Emit {
    fn from(mode: EmitMode) -> Self {
        match mode {
            EmitMode::Updates => roomflow_dataflows::Emit::Updates,
            EmitMode::Final => roomflow_dataflows::Emit::Final,
        }
    }
}

/// Window, lateness and tick in milliseconds, checked, and the emit mode.
fn settings(
    window: Duration,
    lateness: Duration,
    tick: Duration,
    emit: EmitMode,
) -> anyhow::Result<roomflow_dataflows::Settings> {
    let window = millis(window, "--window")?;
    let lateness = millis(lateness, "--lateness")?;
    let tick = millis(tick, "--tick")?;
    if window == 0 {
        bail!("--window must be at least 1ms");
    }
    if tick == 0 {
        bail!("--tick must be at least 1ms");
    }
    Ok(roomflow_dataflows::Settings::new(window, lateness, tick).emitting(emit.into()))
}

fn regex(text: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(text).map_err(|e| format!("not a regular expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_environment_twin() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let mut missing = Vec::new();
        for command in std::iter::once(&cli).chain(cli.get_subcommands()) {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_action(), ArgAction::Help | ArgAction::Version);
                if !arg.is_positional() && !builtin && arg.get_env().is_none() {
                    missing.push(format!("{} --{}", command.get_name(), arg.get_id()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "flags without an environment twin: {missing:?}"
        );
    }

    #[test]
    fn the_live_job_ticks_finely_enough_for_its_latency_budget() {
        // A change waits for its tick to complete: up to a whole tick, half of one on average.
        // The job's p99 target is 40 ms from a reading's produce time to its change's arrival
        // at a consumer (scripts/bench-kafka.sh): a 20 ms tick gave 42 ms, 10 ms 34–35 ms.
        // Environment twins would override the default; the test runs without them.
        if std::env::var_os("ROOMFLOW_TICK").is_some() {
            return;
        }
        let cli = Cli::try_parse_from(["roomflow", "run", "--topics", "sensors"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(args.settings().unwrap().horizon().tick_ms, 10);
        // The catch-up tick stays a multiple of it.
        assert_eq!(args.catch_up_tick_ms().unwrap(), 60_000);
    }

    #[test]
    fn worker_flags_reach_timely() {
        let cli = Cli::try_parse_from(["roomflow", "replay", "-w", "3", "x.jsonl"]).unwrap();
        let Command::Replay(args) = cli.command else {
            panic!("replay expected")
        };
        assert_eq!(args.workers.workers, 3);
        assert!(matches!(
            args.workers.timely_config().unwrap().communication,
            timely::CommunicationConfig::Process(3)
        ));
    }

    #[test]
    fn misconfiguration_names_the_flag() {
        let error = Cli::try_parse_from(["roomflow", "replay", "--window", "soon", "x"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--window"), "{error}");
        let cli = Cli::try_parse_from(["roomflow", "replay", "-n", "2", "-p", "2", "x"]).unwrap();
        let Command::Replay(args) = cli.command else {
            panic!("replay expected")
        };
        let error = args.workers.timely_config().unwrap_err().to_string();
        assert!(error.contains("-p/--process"), "{error}");
    }
}
