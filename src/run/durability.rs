//! How the job's output is made durable: one variant per guarantee (`--alpha-guarantee`), each
//! with what it adds to the job's dataflow (checkpoint marks, the state it keeps, the alpha
//! sink), what it does between dataflow steps, and how it ends.
//!
//! - **At-least-once**: every worker produces its own keys with its own idempotent producer and
//!   commits its partitions' offsets behind acknowledged output; with `--mongo`, the leading
//!   worker writes full checkpoints to MongoDB. A crash repeats what came after them.
//! - **Exactly-once**: every change goes to the job's one transactional producer, on worker 0,
//!   and each transaction commits with the state changes and positions of its mark (the
//!   protocol: `exactly_once/mod.rs`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use differential_dataflow::VecCollection;
use roomflow_dataflows::{checkpoint_state, state_changes, Checkpointed, Reading, Time};

use super::error::JobError;
use super::plan::JobPlan;
use crate::cli::AlphaGuarantee;
use crate::exactly_once::commit::Transactions;
use crate::exactly_once::producer::KafkaTransactions;
use crate::exactly_once::sink::{transactional_sink, TransactionState};
use crate::kafka::committer::{OffsetCommitter, COMMIT_INTERVAL};
use crate::kafka::config::SourceConsumer;
use crate::kafka::coordination::CoordinationView;
use crate::kafka::offsets::PendingOffsets;
use crate::kafka::sink::{flush, kafka_sink, producer, AlphaProducer, Deliveries, SinkState};
use crate::kafka::source::KafkaStreams;
use crate::kafka::source_options::{CheckpointTrigger, LastMark, MarkTime};
use crate::recovery::gather::gather_checkpoints;
use crate::recovery::saver::CheckpointSaver;
use crate::streams::ChangeStream;

/// How long the end waits for the producer's last acknowledgements.
const FINAL_FLUSH: Duration = Duration::from_secs(30);

/// A worker's side of the job's guarantee.
pub enum Durability {
    /// `--alpha-guarantee at-least-once`.
    AtLeastOnce(AtLeastOnce),
    /// `--alpha-guarantee exactly-once`.
    ExactlyOnce(ExactlyOnce),
}

/// At-least-once, as one worker drives it.
pub struct AtLeastOnce {
    /// The worker's own idempotent producer.
    producer: Arc<AlphaProducer>,
    deliveries: Arc<Deliveries>,
    /// The alpha sink's frontier and counts.
    sink: Rc<RefCell<SinkState>>,
    /// Commits the group's offsets behind acknowledged output.
    committer: OffsetCommitter,
    /// On the leading worker, with `--mongo`: writes checkpoints.
    saver: Option<CheckpointSaver>,
}

/// Exactly-once, as one worker drives it.
pub struct ExactlyOnce {
    /// The sink's barrier, frontier and counts.
    sink: Rc<RefCell<TransactionState>>,
    /// On worker 0 of process 0: the job's transactional producer (the others route to it).
    producer: Option<(Arc<AlphaProducer>, Arc<Deliveries>)>,
    /// On the same worker: the transactions it commits.
    transactions: Option<Transactions<KafkaTransactions>>,
}

impl Durability {
    /// Worker `index`'s side of the plan's guarantee; `consumer` is its source's.
    pub fn start(
        plan: &JobPlan,
        consumer: &Arc<SourceConsumer>,
        index: usize,
    ) -> Result<Self, JobError> {
        let resume_time = plan.resume.time;
        let Some(exactly_once) = &plan.exactly_once else {
            let (producer, deliveries) =
                producer(&plan.kafka).map_err(|error| JobError::Client {
                    what: "a Kafka producer",
                    error,
                })?;
            let saver = match (index, &plan.mongo) {
                (0, Some(mongo)) => plan
                    .store
                    .lock()
                    .expect("no panics holding the lock")
                    .take()
                    .map(|store| CheckpointSaver::new(store, mongo.runtime.clone())),
                _ => None,
            };
            return Ok(Durability::AtLeastOnce(AtLeastOnce {
                producer: Arc::new(producer),
                deliveries,
                sink: Rc::new(RefCell::new(SinkState::starting_at(resume_time))),
                committer: OffsetCommitter::new(consumer.clone(), COMMIT_INTERVAL),
                saver,
            }));
        };
        let sink = TransactionState::starting_at(resume_time);
        let producer = exactly_once.producer.clone().filter(|_| index == 0);
        let transactions = producer.as_ref().map(|(producer, deliveries)| {
            let kafka = KafkaTransactions {
                producer: producer.clone(),
                deliveries: deliveries.clone(),
                consumer: consumer.clone(),
            };
            Transactions::new(kafka, sink.clone(), exactly_once.state_topic.clone())
        });
        Ok(Durability::ExactlyOnce(ExactlyOnce {
            sink,
            producer,
            transactions,
        }))
    }

    /// Whether the job can resume: its state is kept (and restored at start).
    pub fn resumes(&self, plan: &JobPlan) -> bool {
        matches!(self, Durability::ExactlyOnce(_)) || plan.mongo.is_some()
    }

    /// When the leading worker's source sends marks, if this worker's source does.
    pub fn checkpoints(&self, plan: &JobPlan) -> Option<CheckpointTrigger> {
        match self {
            Durability::AtLeastOnce(at_least_once) => {
                at_least_once.saver.as_ref().map(|saver| CheckpointTrigger {
                    interval: plan.checkpoint_interval,
                    last: LastMark::WhereItStops,
                    at: MarkTime::AtCapability,
                    in_flight: saver.in_flight_flag(),
                    max_in_flight: 1,
                })
            }
            Durability::ExactlyOnce(exactly_once) => {
                exactly_once
                    .transactions
                    .as_ref()
                    .map(|transactions| CheckpointTrigger {
                        interval: plan.commit_interval,
                        last: LastMark::AfterEverything,
                        at: MarkTime::AtProgress,
                        in_flight: transactions.in_flight_flag(),
                        max_in_flight: 1,
                    })
            }
        }
    }

    /// Keeps the state checkpoints need and gathers it at each mark (every worker takes part;
    /// only the leading worker's queue is read): full checkpoints at-least-once, the state's
    /// changes since the previous mark exactly-once.
    pub fn keep_state<'s>(
        &self,
        readings: VecCollection<'s, Time, Reading>,
        restored: VecCollection<'s, Time, Checkpointed>,
        streams: &KafkaStreams<'s>,
        plan: &JobPlan,
    ) {
        let (positions, marks) = (streams.positions.clone(), streams.marks.clone());
        let resumed = plan.resume.positions.clone();
        match self {
            Durability::AtLeastOnce(at_least_once) => {
                let state = checkpoint_state(readings, restored, marks.clone(), plan.settings);
                let queue = at_least_once
                    .saver
                    .as_ref()
                    .map(CheckpointSaver::complete_slot);
                gather_checkpoints(positions, marks, state, resumed, queue.unwrap_or_default());
            }
            Durability::ExactlyOnce(exactly_once) => {
                let state = state_changes(readings, restored, marks.clone(), plan.settings);
                let queue = exactly_once
                    .transactions
                    .as_ref()
                    .map(Transactions::complete_queue);
                gather_checkpoints(positions, marks, state, resumed, queue.unwrap_or_default());
            }
        }
    }

    /// The alpha and dead-letter sink of `changes` and the source's rejected input.
    pub fn sink<'s>(&self, changes: ChangeStream<'s>, streams: &KafkaStreams<'s>, plan: &JobPlan) {
        let rejected = streams.rejected.clone();
        let topics = plan.topics.clone();
        match self {
            Durability::AtLeastOnce(at_least_once) => kafka_sink(
                changes,
                rejected,
                at_least_once.producer.clone(),
                at_least_once.deliveries.clone(),
                topics,
                at_least_once.sink.clone(),
            ),
            Durability::ExactlyOnce(exactly_once) => transactional_sink(
                changes,
                rejected,
                streams.marks.clone(),
                exactly_once.producer.clone(),
                topics,
                exactly_once.sink.clone(),
            ),
        }
    }

    /// Why the output cannot go on, if so.
    pub fn failure(&self) -> Option<JobError> {
        match self {
            Durability::AtLeastOnce(at_least_once) => {
                at_least_once
                    .deliveries
                    .failure()
                    .map(|failure| JobError::Produce {
                        failure,
                        guarantee: AlphaGuarantee::AtLeastOnce,
                    })
            }
            Durability::ExactlyOnce(exactly_once) => exactly_once
                .transactions
                .as_ref()
                .and_then(Transactions::failure),
        }
    }

    /// Every alpha output of this worker before the returned time is acknowledged
    /// (at-least-once) or produced into a transaction (exactly-once); `None` once everything is.
    pub fn acked(&self) -> Option<Time> {
        match self {
            Durability::AtLeastOnce(at_least_once) => {
                at_least_once.sink.borrow().acked(&at_least_once.deliveries)
            }
            Durability::ExactlyOnce(exactly_once) => exactly_once.sink.borrow().acked(),
        }
    }

    /// Between dataflow steps: checkpoints and offsets behind what every worker has had
    /// acknowledged (at-least-once), or the transaction state machine (exactly-once).
    pub fn step(
        &mut self,
        view: &CoordinationView,
        offsets: &mut PendingOffsets,
    ) -> Result<(), JobError> {
        match self {
            Durability::AtLeastOnce(at_least_once) => {
                let everyone_acked = view.acked();
                if let Some(saver) = &mut at_least_once.saver {
                    saver.step(everyone_acked);
                }
                at_least_once.committer.step(everyone_acked, offsets);
                Ok(())
            }
            Durability::ExactlyOnce(exactly_once) => match &mut exactly_once.transactions {
                Some(transactions) => transactions.step(view.written()),
                None => Ok(()),
            },
        }
    }

    /// At the end, once the sources have stopped: the last acknowledgements, the last
    /// checkpoint and offsets (at-least-once), or the empty open transaction aborted after the
    /// last commit (exactly-once; the job completes only once the last mark is committed).
    pub fn finish(&mut self) -> Result<(), JobError> {
        match self {
            Durability::AtLeastOnce(at_least_once) => {
                flush(&at_least_once.producer, FINAL_FLUSH)
                    .map_err(|error| JobError::FinalFlush { error })?;
                // Everything is acknowledged: the newest complete checkpoint can be written.
                if let Some(saver) = &mut at_least_once.saver {
                    saver.finish();
                }
                at_least_once.committer.finish();
            }
            Durability::ExactlyOnce(exactly_once) => {
                if let Some(transactions) = &mut exactly_once.transactions {
                    transactions.finish();
                }
            }
        }
        Ok(())
    }

    /// Changes and dead letters this worker's sink produced.
    pub fn counts(&self) -> (u64, u64) {
        match self {
            Durability::AtLeastOnce(at_least_once) => {
                let sink = at_least_once.sink.borrow();
                (sink.changes, sink.dead_letters)
            }
            Durability::ExactlyOnce(exactly_once) => {
                let sink = exactly_once.sink.borrow();
                (sink.sink.changes, sink.sink.dead_letters)
            }
        }
    }
}
