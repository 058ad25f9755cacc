//! `roomflow replay`'s flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};

use super::{byte_limit, duration, format, positive, settings, EmitMode, WorkerArgs};
use crate::mongo::config::MongoArgs;
use crate::sources::bounded::DEFAULT_MAX_LINE_BYTES;
use crate::sources::formats::Format;
use crate::sources::validity::ValidRange;

/// `roomflow replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Files, directories, pipes and FIFOs to replay (gzip read transparently); `-` reads stdin.
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
    /// The longest line read as a reading, in bytes; a longer one becomes a dead letter
    /// keeping its first kilobyte and its length, and is never held whole in memory.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES, value_parser = byte_limit, env = "ROOMFLOW_MAX_LINE_BYTES")]
    pub max_line_bytes: usize,
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
    /// When window_averages emits a window: `updates` (every new version as readings arrive)
    /// or `final` (once, its final value, when the window is sealed: --lateness after it ends).
    /// Both end with the same collections.
    #[arg(long, value_enum, default_value_t = EmitMode::Updates, env = "ROOMFLOW_EMIT")]
    pub emit: EmitMode,
    /// Write the final collections, dead letters and late readings to this directory.
    #[arg(long, value_name = "DIR", env = "ROOMFLOW_OUT")]
    pub out: Option<PathBuf>,
    /// Also write DIR/changes.jsonl: every change, in dataflow-time order (needs --out).
    #[arg(long, requires = "out", env = "ROOMFLOW_CHANGES")]
    pub changes: bool,
    /// Show a progress bar: auto (on a terminal), always, never.
    #[arg(long, value_enum, default_value_t = Progress::Auto, env = "ROOMFLOW_PROGRESS")]
    pub progress: Progress,
    /// Input events a worker handles per scheduling step. Larger steps hold more in flight for
    /// no gain: 8,192 replays as fast as 32,768 with a peak RSS 12 MB lower.
    #[arg(long, default_value_t = 8192, hide = true, env = "ROOMFLOW_BATCH")]
    pub batch: usize,
    /// MongoDB (replay replaces the contents of the collections it writes).
    #[command(flatten)]
    pub mongo: MongoArgs,
    #[command(flatten)]
    pub workers: WorkerArgs,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

/// When to show a progress bar (`--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    /// When stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Progress {
    /// Whether to show the bar here.
    pub fn show(self) -> bool {
        match self {
            Progress::Auto => std::io::IsTerminal::is_terminal(&std::io::stderr()),
            Progress::Always => true,
            Progress::Never => false,
        }
    }
}

impl ReplayArgs {
    /// Window, lateness and tick in milliseconds, checked, and the emit mode.
    pub fn settings(&self) -> anyhow::Result<roomflow_dataflows::Settings> {
        settings(self.window, self.lateness, self.tick, self.emit)
    }
}
