//! Committing exactly-once transactions, on the job's first worker: when the transactional sink
//! (`kafka/transactional.rs`) waits at a mark, the mark's checkpoint is assembled and MongoDB has
//! every write before it, the checkpoint's changelog records, the positions (also as the group's
//! offsets) and the progress record join the transaction, which then commits; the next begins.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::{histogram, Histogram};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use roomflow_dataflows::{StateChange, Time};

use super::changelog::changelog_records;
use super::checkpoint::Checkpoint;
use super::saver::is_covered;
use crate::kafka::config::SourceConsumer;
use crate::kafka::sink::{send, AlphaProducer, Deliveries};
use crate::kafka::transactional::{TransactionState, TRANSACTION_TIMEOUT};
use crate::telemetry::catalog;

/// How often the positions also go to the consumer group, inside a transaction.
const OFFSETS_EVERY: Duration = Duration::from_secs(1);

/// The worker loop's side of the transactions (on the first worker): commits each mark's
/// transaction once the sink has reached it, its checkpoint is assembled, and MongoDB (if any)
/// has every write before it.
pub struct Transactions {
    producer: Arc<AlphaProducer>,
    deliveries: Arc<Deliveries>,
    consumer: Arc<SourceConsumer>,
    state: Rc<RefCell<TransactionState>>,
    /// Checkpoints assembled at marks, oldest first (the gathering operator fills it).
    complete: Rc<RefCell<VecDeque<Checkpoint<StateChange>>>>,
    /// Cleared after each commit, so the source sends its next mark.
    in_flight: Rc<Cell<u32>>,
    state_topic: String,
    commit_seconds: Histogram,
    /// When the group's offsets last joined a transaction.
    offsets_sent: Option<Instant>,
    /// The mark whose transaction holds everything and waits for the broker to acknowledge its
    /// messages before it commits, and when its commit began.
    flushing: Option<(Time, Instant)>,
}

impl Transactions {
    /// The commit driver of `producer` (already in a transaction).
    pub fn new(
        producer: Arc<AlphaProducer>,
        deliveries: Arc<Deliveries>,
        consumer: Arc<SourceConsumer>,
        state: Rc<RefCell<TransactionState>>,
        state_topic: String,
    ) -> Self {
        Transactions {
            producer,
            deliveries,
            consumer,
            state,
            complete: Rc::default(),
            in_flight: Rc::default(),
            state_topic,
            offsets_sent: None,
            flushing: None,
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

    /// Why the producer failed for good, if it did (fenced, most often): nothing it does can
    /// commit again. Checked before any other failure, because a fenced producer's queued
    /// messages then fail too (purged), which alone would not say why.
    pub fn fatal_error(&self) -> Option<String> {
        let (code, reason) = self.producer.client().fatal_error()?;
        Some(if is_fencing(code) {
            fenced("the Kafka producer failed", &reason)
        } else {
            format!("the Kafka producer failed for good: {reason}")
        })
    }

    /// Commits the transaction of the mark the sink waits at, if it can be: its checkpoint is
    /// assembled and every MongoDB write before it is acknowledged (`written`, as the
    /// coordination reports it). A failure to commit stops the job: the transaction is aborted
    /// by the broker or by the next incarnation, which resumes from the last commit.
    pub fn step(&mut self, written: Option<Option<Time>>) -> Result<(), String> {
        if let Some(failure) = self.fatal_error() {
            return Err(failure);
        }
        if let Some((barrier, started)) = self.flushing {
            return self.commit_when_flushed(barrier, started);
        }
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
        for (key, payload) in changelog_records(&checkpoint) {
            let record = BaseRecord::with_opaque_to(&self.state_topic, checkpoint.time as usize)
                .key(key.as_bytes());
            let record = match &payload {
                Some(payload) => record.payload(payload.as_slice()),
                None => record,
            };
            send(&self.producer, &self.deliveries, checkpoint.time, record);
        }
        if let Some(failure) = self.deliveries.failure() {
            return Err(format!(
                "producing failed {failure}; the open transaction is not committed"
            ));
        }
        // Once a second is enough for monitoring tools: each costs two more round trips.
        if self
            .offsets_sent
            .is_none_or(|sent| sent.elapsed() >= OFFSETS_EVERY)
        {
            self.send_offsets(&checkpoint)?;
            self.offsets_sent = Some(Instant::now());
        }
        self.flushing = Some((barrier, started));
        self.commit_when_flushed(barrier, started)
    }

    /// Commits `barrier`'s transaction once the broker has acknowledged every message in it;
    /// until then the worker goes on stepping (the producer's own thread takes the
    /// acknowledgements). Waiting here rather than in `commit_transaction`: rust-rdkafka's
    /// flush, which that call begins with, waits in steps of 100 ms whenever anything is
    /// outstanding, so every commit took at least 100 ms.
    fn commit_when_flushed(&mut self, barrier: Time, started: Instant) -> Result<(), String> {
        if self.producer.in_flight_count() > 0 {
            if let Some(failure) = self.deliveries.failure() {
                return Err(format!(
                    "producing failed {failure}; the open transaction is not committed"
                ));
            }
            return Ok(());
        }
        self.flushing = None;
        self.producer
            .commit_transaction(TRANSACTION_TIMEOUT)
            .map_err(|error| describe("cannot commit the Kafka transaction", error))?;
        self.producer
            .begin_transaction()
            .map_err(|error| describe("cannot begin a Kafka transaction", error))?;
        self.commit_seconds.record(started.elapsed());
        tracing::debug!(time = barrier, "transaction committed");
        self.state.borrow_mut().committed_through(barrier);
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        Ok(())
    }

    /// The positions also go to the consumer group, inside the transaction, so the group's lag
    /// shows in the usual tools.
    fn send_offsets(&self, checkpoint: &Checkpoint<StateChange>) -> Result<(), String> {
        if checkpoint.positions.is_empty() {
            return Ok(());
        }
        let Some(metadata) = self.consumer.group_metadata() else {
            return Ok(());
        };
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
        self.producer
            .send_offsets_to_transaction(&offsets, &metadata, TRANSACTION_TIMEOUT)
            .map_err(|error| describe("cannot add the offsets to the Kafka transaction", error))
    }

    /// At the end, once the last mark is committed: the open transaction holds nothing, and is
    /// aborted.
    pub fn finish(&mut self) {
        if let Err(error) = self.producer.abort_transaction(TRANSACTION_TIMEOUT) {
            tracing::debug!(%error, "the last, empty transaction was not aborted");
        }
    }
}

/// A transactional failure, worded for whoever reads the log.
fn describe(what: &str, error: KafkaError) -> String {
    match &error {
        KafkaError::Transaction(inner) if is_fencing(inner.code()) => fenced(what, &error),
        _ => format!("{what}: {error}"),
    }
}

fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

fn fenced(what: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "{what}: another instance of this job (same --group, so the same transactional id) took \
         over and fenced this one, which stops without writing more ({error})"
    )
}
