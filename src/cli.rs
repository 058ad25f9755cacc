//! The command line: subcommands, their flags (each with an environment twin), and timely's
//! worker options `-w -n -p -h` handed through to timely. `-h` is timely's hostfile, so help is
//! `--help` only.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::sources::formats::Format;
use crate::sources::validity::ValidRange;

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
    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay recorded readings (files, directories, `-` for stdin) through the dataflow.
    #[command(disable_help_flag = true)]
    Replay(ReplayArgs),
    /// Write synthetic readings: realistic rooms, with some disorder and some malformed lines.
    #[command(disable_help_flag = true)]
    Simulate(SimulateArgs),
}

/// timely's worker layout.
#[derive(Args, Debug, Clone)]
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

/// `roomflow replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Files and directories to replay (`.gz` read transparently); `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Input format; detected per file from its name and first line when not given.
    #[arg(long, value_parser = format, env = "ROOMFLOW_FORMAT")]
    pub format: Option<Format>,
    /// Replay at this many times the recorded pace (default: as fast as possible).
    #[arg(long, value_parser = positive, env = "ROOMFLOW_SPEED")]
    pub speed: Option<f64>,
    /// Plausible range of a sensor, SENSOR=MIN..MAX; readings outside are dead letters. Repeatable.
    #[arg(
        long = "valid",
        value_name = "SENSOR=MIN..MAX",
        env = "ROOMFLOW_VALID",
        value_delimiter = ','
    )]
    pub valid: Vec<ValidRange>,
    /// Length of the tumbling windows of window_averages.
    #[arg(long, value_parser = duration, default_value = "60s", env = "ROOMFLOW_WINDOW")]
    pub window: Duration,
    /// How far behind its input's newest event time a reading may arrive and still be applied.
    #[arg(long, value_parser = duration, default_value = "5m", env = "ROOMFLOW_LATENESS")]
    pub lateness: Duration,
    /// Granularity of dataflow time: outputs change at most once per tick per key. Replay
    /// compresses days into seconds, so it defaults to one version per minute of event time;
    /// final results are the same for any tick.
    #[arg(long, value_parser = duration, default_value = "60s", env = "ROOMFLOW_TICK")]
    pub tick: Duration,
    /// Write the final collections, dead letters and late readings to this directory.
    #[arg(long, value_name = "DIR", env = "ROOMFLOW_OUT")]
    pub out: Option<PathBuf>,
    /// Also write DIR/changes.jsonl: every change, in dataflow-time order (needs --out).
    #[arg(long, requires = "out", env = "ROOMFLOW_CHANGES")]
    pub changes: bool,
    /// Show a progress bar: auto (on a terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"], env = "ROOMFLOW_PROGRESS")]
    pub progress: String,
    /// Input events a worker handles per scheduling step.
    #[arg(long, default_value_t = 32768, hide = true, env = "ROOMFLOW_BATCH")]
    pub batch: usize,
    #[command(flatten)]
    pub workers: WorkerArgs,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

fn millis(duration: Duration, flag: &str) -> anyhow::Result<i64> {
    i64::try_from(duration.as_millis()).with_context(|| format!("{flag} is too long"))
}

impl ReplayArgs {
    /// Window, lateness and tick in milliseconds, checked.
    pub fn settings(&self) -> anyhow::Result<roomflow_dataflows::Settings> {
        let window = millis(self.window, "--window")?;
        let lateness = millis(self.lateness, "--lateness")?;
        let tick = millis(self.tick, "--tick")?;
        if window == 0 {
            bail!("--window must be at least 1ms");
        }
        if tick == 0 {
            bail!("--tick must be at least 1ms");
        }
        Ok(roomflow_dataflows::Settings::new(window, lateness, tick))
    }
}

/// `roomflow simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Number of rooms.
    #[arg(long, default_value_t = 10, env = "ROOMFLOW_ROOMS")]
    pub rooms: usize,
    /// Number of lines to write.
    #[arg(long, default_value_t = 10_000, env = "ROOMFLOW_READINGS")]
    pub readings: u64,
    /// Random seed: the same seed writes the same lines.
    #[arg(long, default_value_t = 1, env = "ROOMFLOW_SEED")]
    pub seed: u64,
    /// Write here (a file; with --shards > 1, a directory of shard files); stdout if absent.
    #[arg(long, value_name = "PATH", env = "ROOMFLOW_SIM_OUT")]
    pub out: Option<PathBuf>,
    /// Split rooms over this many files, room i in shard i % N, like a topic keyed by room.
    #[arg(long, default_value_t = 1, env = "ROOMFLOW_SHARDS")]
    pub shards: usize,
    /// Fraction of lines that are malformed.
    #[arg(long, default_value_t = 0.001, env = "ROOMFLOW_MALFORMED")]
    pub malformed: f64,
    /// Fraction of readings delivered out of order within the default lateness (10–120 s).
    #[arg(long, default_value_t = 0.01, env = "ROOMFLOW_OUT_OF_ORDER")]
    pub out_of_order: f64,
    /// Fraction of readings delivered 6–15 minutes late (beyond the default lateness).
    #[arg(long, default_value_t = 0.0005, env = "ROOMFLOW_LATE")]
    pub late: f64,
    /// Event time of the first reading, epoch ms.
    #[arg(long, default_value_t = 1_700_000_000_000, env = "ROOMFLOW_START")]
    pub start: i64,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
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
