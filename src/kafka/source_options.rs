//! What a worker's Kafka source is given (where to start, how far it may run ahead, when to ask
//! for checkpoints) and what it shares with the worker's loop (capability, offsets, counts).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::Offset;
use roomflow_dataflows::{Horizon, Time};

use super::admission::SourceCounts;
use super::config::SourceConsumer;
use super::coordination::CoordinationView;
use super::discovery::Known;
use super::offsets::PendingOffsets;
use super::partition::EndProbe;
use super::position::Resume;
use crate::sources::validity::ValidRanges;

/// Where to start reading partitions present when the job starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StartFrom {
    /// The oldest retained message: rebuilds the all-time state from the whole topic.
    Earliest,
    /// The group's committed offsets (earliest where none): continues after the last run.
    Committed,
    /// Only messages produced from now on.
    Latest,
}

impl StartFrom {
    pub(super) fn offset(self) -> Offset {
        match self {
            StartFrom::Earliest => Offset::Beginning,
            StartFrom::Committed => Offset::Stored,
            StartFrom::Latest => Offset::End,
        }
    }
}

/// How a worker reads Kafka.
pub struct KafkaSourceOptions {
    /// Partitions known to this process.
    pub known: Arc<Mutex<Known>>,
    /// Start position of partitions present at start; later ones are read from the beginning.
    pub start: StartFrom,
    /// Lateness and tick.
    pub horizon: Horizon,
    /// Plausibility ranges.
    pub valid: Arc<ValidRanges>,
    /// The longest message read as a reading (`--max-line-bytes`).
    pub max_message_bytes: usize,
    /// Messages handled per activation.
    pub batch: usize,
    /// Set on SIGINT/SIGTERM: stop reading.
    pub stop: Arc<AtomicBool>,
    /// Stop once every partition of this worker has been caught up for this long.
    pub exit_when_idle: Option<Duration>,
    /// What the other workers report.
    pub coordination: CoordinationView,
    /// How far (dataflow time) the source may run ahead of the end of the dataflow.
    pub max_ahead: Time,
    /// Granularity (ms) of dataflow time for partitions catching up; a multiple of the tick.
    pub catch_up_tick_ms: i64,
    /// Backlog (messages) above which a partition is catching up.
    pub catch_up_lag: i64,
    /// Where a resumed job starts (time 0 and no positions for a fresh one).
    pub resume: Arc<Resume>,
    /// On the worker that asks for checkpoints: how often, and whether one is being written.
    pub checkpoints: Option<CheckpointTrigger>,
}

/// When the leading worker's source asks for a checkpoint: at its capability, once the interval
/// has passed and the previous checkpoint is written.
pub struct CheckpointTrigger {
    /// Time between checkpoints.
    pub interval: Duration,
    /// Where the last mark goes when the source stops.
    pub last: LastMark,
    /// Where marks go while it runs.
    pub at: MarkTime,
    /// Set when a mark is sent; the worker's loop clears it once that checkpoint is written.
    pub in_flight: Rc<Cell<u32>>,
    /// Marks whose checkpoint or transaction may be in flight at once.
    pub max_in_flight: u32,
}

/// Where the leading worker's source puts its marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkTime {
    /// At its capability (at-least-once: a checkpoint taken there is written when its output is
    /// acknowledged; that it comes later than it could costs nothing).
    AtCapability,
    /// Just before the dataflow's progress (the least of its capability and the frontier at
    /// the end of the dataflow), at `progress - 1`: every output before it is computed already,
    /// so the transaction ending there commits at once (exactly-once; sources may read far ahead
    /// of what is processed). At `progress` itself, the mark's own time would complete only once
    /// the open tick closes: transactions waited 9 ms (median) to 18 ms (p90) of a 20 ms tick.
    /// Outputs are at tick times, so the time a mark at `progress - 1` leaves out holds nothing.
    AtProgress,
}

/// Where the leading worker's source puts its last mark when it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastMark {
    /// At its capability: a restart resumes where it stopped, and redoes what other workers
    /// sent after (at-least-once).
    WhereItStops,
    /// Once every other worker's source has stopped, after everything any of them sent: the
    /// last mark's transaction then holds all output (exactly-once).
    AfterEverything,
}

/// What a worker's source shares with the worker's loop, which commits offsets and reports.
pub struct SourceState {
    /// The consumer, shared so the loop can commit after the operator has finished.
    pub consumer: Arc<SourceConsumer>,
    /// Where resumed partitions end is asked through this client.
    pub end_probe: Arc<EndProbe>,
    /// Consumed positions waiting for their output to be acknowledged.
    pub offsets: PendingOffsets,
    /// The source's capability; `None` once it has stopped.
    pub capability: Option<Time>,
    /// Counts.
    pub counts: SourceCounts,
    /// The greatest time the source has sent anything at.
    pub sent_up_to: Time,
    /// The greatest time it sent a message's effects at (the capability aside).
    pub newest_effect: Option<Time>,
}
