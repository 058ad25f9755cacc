//! The flags of the commands that feed Kafka: `roomflow publish` and `roomflow simulate`.

use std::path::PathBuf;

use clap::{ArgAction, Args};

use super::{byte_limit, format, positive, Progress};
use crate::kafka::config::KafkaArgs;
use crate::sources::bounded::DEFAULT_MAX_LINE_BYTES;
use crate::sources::formats::Format;

/// `roomflow publish`.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Files, directories, pipes and FIFOs to publish (gzip read transparently); `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Topic to produce to; created with --partitions if it does not exist.
    #[arg(long, env = "ROOMFLOW_TOPIC")]
    pub topic: String,
    /// Partitions of the topic, if it is created.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..), env = "ROOMFLOW_PARTITIONS")]
    pub partitions: i32,
    /// Replication factor of the topic, if it is created.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..), env = "ROOMFLOW_REPLICATION_FACTOR")]
    pub replication_factor: i32,
    /// Input format; detected per file from its name and first line when not given.
    #[arg(long, value_parser = format, env = "ROOMFLOW_FORMAT")]
    pub format: Option<Format>,
    /// Publish at this many times the recorded pace (default: as fast as possible).
    #[arg(long, value_parser = positive, env = "ROOMFLOW_SPEED")]
    pub speed: Option<f64>,
    /// The longest line read whole, in bytes; a longer one is not published (a warning says
    /// where it was), and is never held whole in memory.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES, value_parser = byte_limit, env = "ROOMFLOW_MAX_LINE_BYTES")]
    pub max_line_bytes: usize,
    /// Show a progress bar: auto (on a terminal), always, never.
    #[arg(long, value_enum, default_value_t = Progress::Auto, env = "ROOMFLOW_PROGRESS")]
    pub progress: Progress,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

/// `roomflow simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Number of rooms.
    #[arg(long, default_value_t = 10, env = "ROOMFLOW_ROOMS")]
    pub rooms: usize,
    /// Number of lines to write (default 10,000 to a file; live, unlimited).
    #[arg(long, env = "ROOMFLOW_READINGS")]
    pub readings: Option<u64>,
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
    /// Event time of the first reading, epoch ms (files only; live readings carry the time
    /// they are produced at).
    #[arg(long, default_value_t = 1_700_000_000_000, env = "ROOMFLOW_START")]
    pub start: i64,
    /// Produce live to this Kafka topic instead of writing lines, until stopped (or until
    /// --readings); created with --partitions if it does not exist.
    #[arg(long, conflicts_with_all = ["out", "shards"], env = "ROOMFLOW_TOPIC")]
    pub topic: Option<String>,
    /// Readings per second, live.
    #[arg(long, default_value_t = 100.0, value_parser = positive, env = "ROOMFLOW_RATE")]
    pub rate: f64,
    /// Partitions of the topic, if it is created.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..), env = "ROOMFLOW_PARTITIONS")]
    pub partitions: i32,
    /// The brokers of live mode (with --topic) and the live producer's properties.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}
