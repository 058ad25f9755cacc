//! The job's one transactional producer (on worker 0 of process 0): its stable id, its creation
//! (which fences any earlier incarnation), and the calls the commit state machine makes on it
//! (`commit.rs`'s [`TransactionalProducer`], implemented here for librdkafka).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;
use roomflow_dataflows::Time;

use super::commit::TransactionalProducer;
use crate::kafka::config::{KafkaArgs, SourceConsumer};
use crate::kafka::sink::{send, AlphaProducer, Deliveries, DeliveryFailure, DeliveryTracker};

/// How long a commit (or the fencing at start) may take before the job gives up.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The stable transactional id of a job's consumer group: a restarted job (or a second copy)
/// fences whichever producer used it before.
pub fn transactional_id(group: &str) -> String {
    format!("roomflow-{group}")
}

/// Creates the job's transactional producer and fences any earlier one with the same id
/// (aborting the transaction it left open), then begins the first transaction.
pub fn transactional_producer(
    kafka: &KafkaArgs,
    group: &str,
) -> anyhow::Result<(AlphaProducer, Arc<Deliveries>)> {
    let deliveries = Arc::new(Deliveries::new());
    let producer: AlphaProducer = kafka
        .client_config(&[
            ("transactional.id", &transactional_id(group)),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            // 5 ms, as the at-least-once producer. A transaction commits once the broker has
            // acknowledged all of it, and its last messages (the changelog's) wait out this
            // linger: at 1 ms a commit took 6.2 ms (median) instead of 9.2, but a catch-up ran
            // about a tenth slower (docs/performance.md).
            ("linger.ms", "5"),
            ("compression.type", "lz4"),
            ("transaction.timeout.ms", "60000"),
        ])
        .create_with_context(DeliveryTracker(deliveries.clone()))?;
    producer
        .init_transactions(TRANSACTION_TIMEOUT)
        .map_err(|error| anyhow::anyhow!("cannot start Kafka transactions: {error}"))?;
    producer
        .begin_transaction()
        .map_err(|error| anyhow::anyhow!("cannot begin a Kafka transaction: {error}"))?;
    Ok((producer, deliveries))
}

/// The transactional producer with what the commit path needs beside it: its deliveries, and
/// the source's consumer (the group whose offsets join the transactions).
pub struct KafkaTransactions {
    /// The job's transactional producer, in a transaction.
    pub producer: Arc<AlphaProducer>,
    /// Its acknowledgements and first failure.
    pub deliveries: Arc<Deliveries>,
    /// The consumer of worker 0's source.
    pub consumer: Arc<SourceConsumer>,
}

impl TransactionalProducer for KafkaTransactions {
    fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.producer.client().fatal_error()
    }

    fn delivery_failure(&self) -> Option<DeliveryFailure> {
        self.deliveries.failure()
    }

    fn in_flight(&self) -> usize {
        self.producer.in_flight_count().max(0) as usize
    }

    fn send(&self, topic: &str, time: Time, key: &[u8], value: Option<&[u8]>) {
        let record = BaseRecord::with_opaque_to(topic, time as usize).key(key);
        let record = match value {
            Some(value) => record.payload(value),
            None => record,
        };
        send(&self.producer, &self.deliveries, time, record);
    }

    fn send_offsets(&self, offsets: &TopicPartitionList) -> Result<(), KafkaError> {
        // Without group metadata (no group session yet) there is nothing to add them to.
        let Some(metadata) = self.consumer.group_metadata() else {
            return Ok(());
        };
        self.producer
            .send_offsets_to_transaction(offsets, &metadata, TRANSACTION_TIMEOUT)
    }

    fn commit(&self) -> Result<(), KafkaError> {
        self.producer.commit_transaction(TRANSACTION_TIMEOUT)
    }

    fn begin(&self) -> Result<(), KafkaError> {
        self.producer.begin_transaction()
    }

    fn abort(&self) -> Result<(), KafkaError> {
        self.producer.abort_transaction(TRANSACTION_TIMEOUT)
    }
}
