//! The transaction state machine, on the job's first worker (step 4 of the protocol in
//! `mod.rs`), driven by the worker loop between dataflow steps:
//!
//! ```text
//!            sink waits at barrier T, T's checkpoint assembled, MongoDB written before T
//!   Open ─────────────────────────────────────────────────────────────────────────────► Flushing(T)
//!     ▲       (T's changelog records and, once a second, the offsets join the transaction)    │
//!     │                                                                                       │
//!     └──────────── every message acknowledged: commit, begin the next, release the sink ────┘
//! ```
//!
//! Any failure on the way (the producer fenced or failed for good, a message refused, a call
//! refused) is returned as a [`JobError`] and stops the job; the broker, or the next
//! incarnation's fencing, aborts what was not committed. The machine drives the producer through
//! [`TransactionalProducer`], so it is tested here without a broker.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use metrics::{histogram, Histogram};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use roomflow_dataflows::{StateChange, Time};

use super::changelog::changelog_records;
use super::sink::TransactionState;
use crate::cli::AlphaGuarantee;
use crate::kafka::sink::DeliveryFailure;
use crate::recovery::checkpoint::Checkpoint;
use crate::recovery::saver::is_covered;
use crate::run::error::JobError;
use crate::telemetry::catalog;

/// How often the positions also go to the consumer group, inside a transaction.
const OFFSETS_EVERY: Duration = Duration::from_secs(1);

/// What the state machine asks of the transactional producer (librdkafka's, in `producer.rs`).
pub trait TransactionalProducer {
    /// Why the producer failed for good, if it did: librdkafka's code and reason.
    fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)>;
    /// The first message that could not be produced, if any.
    fn delivery_failure(&self) -> Option<DeliveryFailure>;
    /// Messages sent and not yet acknowledged by the broker.
    fn in_flight(&self) -> usize;
    /// Sends a record (a tombstone without `value`) into the open transaction.
    fn send(&self, topic: &str, time: Time, key: &[u8], value: Option<&[u8]>);
    /// Adds the consumer group's offsets to the open transaction.
    fn send_offsets(&self, offsets: &TopicPartitionList) -> Result<(), KafkaError>;
    /// Commits the open transaction.
    fn commit(&self) -> Result<(), KafkaError>;
    /// Begins the next transaction.
    fn begin(&self) -> Result<(), KafkaError>;
    /// Aborts the open transaction.
    fn abort(&self) -> Result<(), KafkaError>;
}

/// Where the machine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The open transaction takes the sink's output until the sink waits at a barrier.
    Open,
    /// The barrier's records are in: waiting for the broker to acknowledge every message of the
    /// transaction, then committing (and since when, for the commit-time histogram).
    Flushing { barrier: Time, started: Instant },
}

/// The worker loop's side of the transactions (on the first worker).
pub struct Transactions<P> {
    producer: P,
    state: Rc<RefCell<TransactionState>>,
    /// Checkpoints assembled at marks, oldest first (the gathering operator fills it).
    complete: Rc<RefCell<VecDeque<Checkpoint<StateChange>>>>,
    /// Cleared after each commit, so the source sends its next mark.
    in_flight: Rc<Cell<u32>>,
    state_topic: String,
    phase: Phase,
    /// When the group's offsets last joined a transaction.
    offsets_sent: Option<Instant>,
    commit_seconds: Histogram,
}

impl<P: TransactionalProducer> Transactions<P> {
    /// The commit driver of `producer` (already in a transaction), for the sink sharing `state`.
    pub fn new(producer: P, state: Rc<RefCell<TransactionState>>, state_topic: String) -> Self {
        Transactions {
            producer,
            state,
            complete: Rc::default(),
            in_flight: Rc::default(),
            state_topic,
            phase: Phase::Open,
            offsets_sent: None,
            commit_seconds: histogram!(catalog::SINK_BATCH_SECONDS, "sink" => catalog::SINK_TRANSACTION),
        }
    }

    /// Where the gathering operator leaves each mark's checkpoint.
    pub fn complete_queue(&self) -> Rc<RefCell<VecDeque<Checkpoint<StateChange>>>> {
        self.complete.clone()
    }

    /// The flag the source sets when it sends a mark.
    pub fn in_flight_flag(&self) -> Rc<Cell<u32>> {
        self.in_flight.clone()
    }

    /// Why nothing can commit any more, if so: the producer failed for good (fenced, most
    /// often) or a message was refused. A fatal error comes first: a fenced producer's queued
    /// messages then fail too (purged), which alone would not say why.
    pub fn failure(&self) -> Option<JobError> {
        if let Some((code, reason)) = self.producer.fatal_error() {
            return Some(JobError::producer_fatal(code, reason));
        }
        self.producer
            .delivery_failure()
            .map(|failure| JobError::Produce {
                failure,
                guarantee: AlphaGuarantee::ExactlyOnce,
            })
    }

    /// Moves the machine on as far as it can now. `written` is how far every worker's MongoDB
    /// writes are acknowledged, as the coordination reports it (see [`is_covered`]).
    pub fn step(&mut self, written: Option<Option<Time>>) -> Result<(), JobError> {
        if let Some(failure) = self.failure() {
            return Err(failure);
        }
        if self.phase == Phase::Open {
            self.close_at_barrier(written)?;
        }
        if let Phase::Flushing { barrier, started } = self.phase {
            // Waiting here rather than in `commit_transaction`: rust-rdkafka's flush, which that
            // call begins with, waits in steps of 100 ms whenever anything is outstanding, so
            // every commit took at least 100 ms. The producer's own thread takes the
            // acknowledgements while the worker goes on stepping.
            if self.producer.in_flight() == 0 {
                self.commit(barrier, started)?;
            }
        }
        Ok(())
    }

    /// Open → Flushing: when the sink waits at a barrier whose checkpoint is assembled and
    /// whose MongoDB writes are acknowledged, the checkpoint's records (and the offsets, once a
    /// second) join the transaction.
    fn close_at_barrier(&mut self, written: Option<Option<Time>>) -> Result<(), JobError> {
        let Some(barrier) = self.state.borrow().barrier() else {
            return Ok(());
        };
        let ready = self
            .complete
            .borrow()
            .front()
            .is_some_and(|checkpoint| checkpoint.time == barrier);
        if !ready || !is_covered(barrier, written) {
            tracing::trace!(
                barrier,
                assembled = ?self.complete.borrow().front().map(|c| c.time),
                ?written,
                "the transaction waits"
            );
            return Ok(());
        }
        let checkpoint = self
            .complete
            .borrow_mut()
            .pop_front()
            .expect("checked above");
        let started = Instant::now();
        for (key, value) in changelog_records(&checkpoint) {
            self.producer.send(
                &self.state_topic,
                checkpoint.time,
                key.as_bytes(),
                value.as_deref(),
            );
        }
        // Once a second is enough for monitoring tools: each costs two more round trips.
        let offsets_due = self
            .offsets_sent
            .is_none_or(|sent| sent.elapsed() >= OFFSETS_EVERY);
        if offsets_due && !checkpoint.positions.is_empty() {
            let offsets = group_offsets(&checkpoint);
            self.producer.send_offsets(&offsets).map_err(|error| {
                JobError::transaction("cannot add the offsets to the Kafka transaction", error)
            })?;
            self.offsets_sent = Some(Instant::now());
        }
        self.phase = Phase::Flushing { barrier, started };
        // A message refused meanwhile must not be committed past.
        match self.failure() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    /// Flushing → Open: commits `barrier`'s transaction, begins the next and lets the sink go
    /// on past the barrier, and the source send its next mark.
    fn commit(&mut self, barrier: Time, started: Instant) -> Result<(), JobError> {
        self.producer
            .commit()
            .map_err(|error| JobError::transaction("cannot commit the Kafka transaction", error))?;
        self.producer
            .begin()
            .map_err(|error| JobError::transaction("cannot begin a Kafka transaction", error))?;
        self.phase = Phase::Open;
        self.commit_seconds.record(started.elapsed());
        tracing::debug!(time = barrier, "transaction committed");
        self.state.borrow_mut().committed_through(barrier);
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        Ok(())
    }

    /// At the end, once the last mark is committed: the open transaction holds nothing, and is
    /// aborted.
    pub fn finish(&mut self) {
        if let Err(error) = self.producer.abort() {
            tracing::debug!(%error, "the last, empty transaction was not aborted");
        }
    }
}

/// A checkpoint's positions as the consumer group's offsets, so the group's lag shows in the
/// usual tools.
fn group_offsets(checkpoint: &Checkpoint<StateChange>) -> TopicPartitionList {
    let mut offsets = TopicPartitionList::new();
    for position in checkpoint.positions.values() {
        offsets
            .add_partition_offset(
                &position.partition.topic,
                position.partition.partition,
                Offset::Offset(position.next),
            )
            .expect("valid offset");
    }
    offsets
}

#[cfg(test)]
mod tests;
