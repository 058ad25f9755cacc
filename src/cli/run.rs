//! `roomflow run`'s flags.

use std::time::Duration;

use anyhow::bail;
use clap::{ArgAction, Args};

use super::{byte_limit, duration, millis, regex, settings, EmitMode, WorkerArgs};
use crate::kafka::config::KafkaArgs;
use crate::kafka::source_options::StartFrom;
use crate::mongo::config::MongoArgs;
use crate::sources::bounded::DEFAULT_MAX_LINE_BYTES;
use crate::sources::validity::ValidRange;

/// What the alpha topic guarantees (`--alpha-guarantee`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AlphaGuarantee {
    /// Transactions: a read_committed consumer sees every change once, across crashes.
    ExactlyOnce,
    /// An idempotent producer per worker: a crash repeats the changes since the last
    /// checkpoint.
    AtLeastOnce,
}

/// `roomflow run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Sensor topics to read, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "topic_pattern",
        conflicts_with = "topic_pattern",
        env = "ROOMFLOW_TOPICS"
    )]
    pub topics: Vec<String>,
    /// Read every topic whose name matches this regular expression, e.g. '^sensors\.'.
    #[arg(long, value_parser = regex, env = "ROOMFLOW_TOPIC_PATTERN")]
    pub topic_pattern: Option<regex::Regex>,
    /// Consumer group the job commits its offsets to.
    #[arg(long, default_value = "roomflow", env = "ROOMFLOW_GROUP")]
    pub group: String,
    /// Where to start partitions present at start: earliest (rebuild all state from the
    /// retained messages), committed (continue after the group's last commit; state before it
    /// is not rebuilt), latest (only new messages). Partitions added later start at earliest.
    #[arg(
        long = "from",
        value_enum,
        default_value = "earliest",
        env = "ROOMFLOW_FROM"
    )]
    pub from: StartFrom,
    /// Topic every change is produced to.
    #[arg(long, default_value = "alpha", env = "ROOMFLOW_ALPHA_TOPIC")]
    pub alpha_topic: String,
    /// Topic malformed messages and late readings are produced to, unchanged, with headers
    /// saying where they came from and why.
    #[arg(
        long,
        default_value = "alpha.dead-letters",
        env = "ROOMFLOW_DEAD_LETTER_TOPIC"
    )]
    pub dead_letter_topic: String,
    /// Partitions of the alpha and dead-letter topics, if the job creates them.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..), env = "ROOMFLOW_ALPHA_PARTITIONS")]
    pub alpha_partitions: i32,
    /// Replication factor of topics the job creates.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..), env = "ROOMFLOW_REPLICATION_FACTOR")]
    pub replication_factor: i32,
    /// Stop once every partition has been caught up for this long (for batch use and tests);
    /// without it the job runs until SIGINT/SIGTERM.
    #[arg(long, value_parser = duration, env = "ROOMFLOW_EXIT_WHEN_IDLE")]
    pub exit_when_idle: Option<Duration>,
    /// How often to look for new partitions and topics.
    #[arg(long, value_parser = duration, default_value = "5s", env = "ROOMFLOW_DISCOVER_INTERVAL")]
    pub discover_interval: Duration,
    /// Plausible range of a sensor, SENSOR=MIN..MAX; readings outside are dead letters. Repeatable.
    #[arg(
        long = "valid",
        value_name = "SENSOR=MIN..MAX",
        env = "ROOMFLOW_VALID",
        value_delimiter = ','
    )]
    pub valid: Vec<ValidRange>,
    /// The longest message read as a reading, in bytes; a longer one becomes a dead letter
    /// keeping its first kilobyte and its length, and keeps its original bytes on the dead-letter topic.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES, value_parser = byte_limit, env = "ROOMFLOW_MAX_LINE_BYTES")]
    pub max_line_bytes: usize,
    /// Length of the tumbling windows of window_averages.
    #[arg(long, value_parser = duration, default_value = "60s", env = "ROOMFLOW_WINDOW")]
    pub window: Duration,
    /// How far behind its partition's newest event time a reading may arrive and still be applied.
    #[arg(long, value_parser = duration, default_value = "5m", env = "ROOMFLOW_LATENESS")]
    pub lateness: Duration,
    /// Granularity of dataflow time: a change reaches the alpha topic once its tick is complete,
    /// so this bounds the latency from below (a coarser tick: fewer versions of each key on
    /// alpha, more latency).
    #[arg(long, value_parser = duration, default_value = "10ms", env = "ROOMFLOW_TICK")]
    pub tick: Duration,
    /// When window_averages emits a window: `updates` (every new version as readings arrive)
    /// or `final` (once, its final value, when the window is sealed: --lateness after it ends).
    /// Both end with the same collections.
    #[arg(long, value_enum, default_value_t = EmitMode::Updates, env = "ROOMFLOW_EMIT")]
    pub emit: EmitMode,
    /// Granularity of dataflow time while a partition works through a backlog (by default more
    /// than 1,000 messages behind its end): one version per key and catch-up tick instead of per
    /// tick. A multiple of --tick; equal to --tick to turn coalescing off.
    #[arg(long, value_parser = duration, default_value = "60s", env = "ROOMFLOW_CATCH_UP_TICK")]
    pub catch_up_tick: Duration,
    /// Backlog (messages between a partition's position and its end) above which the partition
    /// is catching up. (At 10,000, the last 10,000 messages of every partition's backlog were
    /// stamped at fine ticks: a quarter of a 1M-reading catch-up's CPU for 4 % of its messages.
    /// A live job's backlog stays in the hundreds even at 100,000 readings/s.)
    #[arg(
        long,
        default_value_t = 1_000,
        hide = true,
        env = "ROOMFLOW_CATCH_UP_LAG"
    )]
    pub catch_up_lag: i64,
    /// Messages a worker handles per scheduling step.
    #[arg(long, default_value_t = 8192, hide = true, env = "ROOMFLOW_BATCH")]
    pub batch: usize,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub mongo: MongoArgs,
    /// Serve Prometheus metrics at http://ADDR/metrics, and liveness and readiness at /livez and
    /// /readyz, e.g. 0.0.0.0:9898.
    #[arg(long, value_name = "ADDR", env = "ROOMFLOW_METRICS")]
    pub metrics: Option<std::net::SocketAddr>,
    /// How often the job checkpoints to MongoDB (with --mongo, at-least-once).
    #[arg(long, value_parser = duration, default_value = "10s", env = "ROOMFLOW_CHECKPOINT_INTERVAL")]
    pub checkpoint_interval: Duration,
    /// What alpha guarantees: exactly-once (Kafka transactions; consumers read with
    /// isolation.level=read_committed; restarts resume from the job's state topic) or
    /// at-least-once (a crash repeats recent changes; restarts resume exactly only with --mongo).
    #[arg(long, value_enum, default_value_t = AlphaGuarantee::ExactlyOnce, env = "ROOMFLOW_ALPHA_GUARANTEE")]
    pub alpha_guarantee: AlphaGuarantee,
    /// With exactly-once: how often a transaction commits (changes become visible to
    /// read_committed consumers at each commit).
    #[arg(long, value_parser = duration, default_value = "100ms", env = "ROOMFLOW_COMMIT_INTERVAL")]
    pub commit_interval: Duration,
    /// With exactly-once: the compacted topic the job keeps its state in, written inside each
    /// transaction; `roomflow.<group>.state` when not given.
    #[arg(long, env = "ROOMFLOW_STATE_TOPIC")]
    pub state_topic: Option<String>,
    #[command(flatten)]
    pub workers: WorkerArgs,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

impl RunArgs {
    /// Window, lateness and tick in milliseconds, checked, and the emit mode.
    pub fn settings(&self) -> anyhow::Result<roomflow_dataflows::Settings> {
        settings(self.window, self.lateness, self.tick, self.emit)
    }

    /// The state changelog topic of exactly-once runs.
    pub fn state_topic(&self) -> anyhow::Result<String> {
        let topic = match &self.state_topic {
            Some(topic) => topic.clone(),
            None => format!("roomflow.{}.state", self.group),
        };
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if topic.is_empty() || topic.len() > 249 || !topic.chars().all(legal) {
            bail!(
                "the state topic would be `{topic}`, which Kafka does not allow (letters, digits, \
                 `.`, `_` and `-`, at most 249): choose one with --state-topic"
            );
        }
        Ok(topic)
    }

    /// `--catch-up-tick` in milliseconds, checked against `--tick`.
    pub fn catch_up_tick_ms(&self) -> anyhow::Result<i64> {
        let tick = millis(self.tick, "--tick")?;
        let coarse = millis(self.catch_up_tick, "--catch-up-tick")?;
        if tick == 0 || coarse < tick || coarse % tick != 0 {
            bail!(
                "--catch-up-tick ({}) must be a multiple of --tick ({})",
                humantime::format_duration(self.catch_up_tick),
                humantime::format_duration(self.tick)
            );
        }
        Ok(coarse)
    }
}
