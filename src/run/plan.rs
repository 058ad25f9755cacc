//! What every worker of the streaming job is given: the settings, the clients' configuration,
//! where the job resumes, and the few things shared across a process's workers.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomflow_dataflows::{Checkpointed, Settings, Time};

use super::error::JobError;
use crate::kafka::admission::SourceCounts;
use crate::kafka::config::KafkaArgs;
use crate::kafka::discovery::Known;
use crate::kafka::position::Resume;
use crate::kafka::sink::{AlphaProducer, Deliveries, SinkTopics};
use crate::kafka::source_options::{KafkaSourceOptions, StartFrom};
use crate::mongo::config::Mongo;
use crate::recovery::store::CheckpointStore;
use crate::sources::validity::ValidRanges;
use crate::telemetry::health::Health;

/// The job as every worker builds it.
pub struct JobPlan {
    /// Brokers and client properties.
    pub kafka: KafkaArgs,
    /// The consumer group (and the checkpoint's name).
    pub group: String,
    /// Output topics.
    pub topics: SinkTopics,
    /// Windows, lateness and tick.
    pub settings: Settings,
    /// Where partitions without a committed offset start.
    pub from: StartFrom,
    /// Messages handled per source activation.
    pub batch: usize,
    /// Stop once caught up and idle this long.
    pub exit_when_idle: Option<Duration>,
    /// Dataflow-time granularity of partitions catching up.
    pub catch_up_tick_ms: i64,
    /// Backlog above which a partition is catching up.
    pub catch_up_lag: i64,
    /// Time between checkpoints (with `--mongo`, at-least-once).
    pub checkpoint_interval: Duration,
    /// Time between transactions (exactly-once).
    pub commit_interval: Duration,
    /// Exactly-once: the transactional producer (process 0 only) and the state topic.
    pub exactly_once: Option<ExactlyOncePlan>,
    /// Plausibility ranges.
    pub valid: Arc<ValidRanges>,
    /// The longest message read as a reading (`--max-line-bytes`).
    pub max_message_bytes: usize,
    /// Partitions this process knows of (the discovery thread keeps it current).
    pub known: Arc<Mutex<Known>>,
    /// Where the job resumes: time 0 and no positions for a fresh job.
    pub resume: Arc<Resume>,
    /// MongoDB, with `--mongo`.
    pub mongo: Option<Mongo>,
    /// The restored state; each worker feeds its share in.
    pub restored: RestoredState,
    /// The checkpoint store; worker 0 takes it and writes the checkpoints.
    pub store: Mutex<Option<CheckpointStore>>,
    /// Set by SIGINT/SIGTERM.
    pub stop: Arc<AtomicBool>,
    /// Liveness and readiness, per worker.
    pub health: Arc<Health>,
    /// What the workers did, added up as each finishes.
    pub totals: Mutex<Totals>,
    /// The first failure of any worker of this process, and which: the others stop too.
    pub failure: Mutex<Option<(usize, JobError)>>,
}

impl JobPlan {
    /// Records worker `worker`'s failure, unless one is recorded already.
    pub fn fail(&self, worker: usize, error: &JobError) {
        let mut failure = self.failure.lock().expect("no panics holding the lock");
        failure.get_or_insert_with(|| (worker, error.clone()));
    }

    /// The worker that failed first, if any did.
    pub fn failed_worker(&self) -> Option<usize> {
        self.failure
            .lock()
            .expect("no panics holding the lock")
            .as_ref()
            .map(|(worker, _)| *worker)
    }

    /// The first failure, taken once every worker has stopped.
    pub fn take_failure(&self) -> Option<JobError> {
        self.failure
            .lock()
            .expect("no panics holding the lock")
            .take()
            .map(|(_, error)| error)
    }

    /// How far (dataflow time) a source may run ahead of the end of the dataflow: a few coarse
    /// ticks, as a partition catching up moves a whole catch-up tick at a time.
    pub fn max_ahead(&self) -> Time {
        (8 * self.catch_up_tick_ms) as Time
    }

    /// The options of a worker's Kafka source (without the checkpoint trigger).
    pub fn source_options(
        &self,
        coordination: crate::kafka::coordination::CoordinationView,
    ) -> KafkaSourceOptions {
        KafkaSourceOptions {
            known: self.known.clone(),
            start: self.from,
            horizon: self.settings.horizon(),
            valid: self.valid.clone(),
            max_message_bytes: self.max_message_bytes,
            batch: self.batch,
            stop: self.stop.clone(),
            exit_when_idle: self.exit_when_idle,
            coordination,
            max_ahead: self.max_ahead(),
            catch_up_tick_ms: self.catch_up_tick_ms,
            catch_up_lag: self.catch_up_lag,
            resume: self.resume.clone(),
            checkpoints: None,
        }
    }
}

/// What an exactly-once job's workers share.
pub struct ExactlyOncePlan {
    /// The state changelog topic.
    pub state_topic: String,
    /// The job's transactional producer, already fencing earlier ones and in a transaction: on
    /// process 0, for its worker 0.
    pub producer: Option<(Arc<AlphaProducer>, Arc<Deliveries>)>,
}

/// Totals over a process's workers, for the closing log line.
#[derive(Default)]
pub struct Totals {
    /// What the sources read.
    pub source: SourceCounts,
    /// Changes produced to alpha.
    pub changes: u64,
    /// Messages produced to the dead-letter topic.
    pub dead_letter_messages: u64,
    /// Documents written to MongoDB.
    pub mongo_documents: u64,
    /// MongoDB round trips.
    pub mongo_round_trips: u64,
}

/// The state a job resumes from, as this process read it, shared by its workers: each feeds a
/// share into the dataflow (fed by worker 0 alone, 1.3M records of 100,000 rooms took a second
/// of a restart), and the last to take its share lets the whole go.
pub struct RestoredState {
    records: Mutex<Option<Arc<Vec<Checkpointed>>>>,
    /// This process's workers that have not taken their share yet.
    workers_left: std::sync::atomic::AtomicUsize,
}

impl RestoredState {
    /// `records`, to be shared by `workers` workers of this process.
    pub fn new(records: Vec<Checkpointed>, workers: usize) -> Self {
        RestoredState {
            records: Mutex::new(Some(Arc::new(records))),
            workers_left: workers.into(),
        }
    }

    /// The share of worker `index` of `peers` (all processes' workers; every process read the
    /// whole state): every `peers`-th record from the `index`-th. Called once by each worker.
    pub fn share(&self, index: usize, peers: usize) -> Vec<Checkpointed> {
        let all = self
            .records
            .lock()
            .expect("no panics holding the lock")
            .clone();
        let share = all
            .iter()
            .flat_map(|records| records.iter().skip(index).step_by(peers).cloned())
            .collect();
        use std::sync::atomic::Ordering;
        if self.workers_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.records
                .lock()
                .expect("no panics holding the lock")
                .take();
        }
        share
    }
}
