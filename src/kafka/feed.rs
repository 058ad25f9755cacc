//! What `publish` and `simulate` need to feed a sensor topic: the canonical reading message, an
//! idempotent producer tuned for throughput, and sending that waits out a full queue.

use std::time::Duration;

use anyhow::Context;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::types::RDKafkaErrorCode;
use roomflow_dataflows::Reading;
use serde::Serialize;

use super::config::KafkaArgs;

/// A reading as a canonical JSON message.
#[derive(Serialize)]
pub struct ReadingMessage<'a> {
    /// Room.
    pub room: &'a str,
    /// Sensor.
    pub sensor: &'a str,
    /// Event time, epoch ms.
    pub ts: i64,
    /// Value.
    pub value: f64,
}

impl<'a> From<&'a Reading> for ReadingMessage<'a> {
    fn from(reading: &'a Reading) -> Self {
        ReadingMessage {
            room: &reading.room,
            sensor: &reading.sensor,
            ts: reading.ts,
            value: reading.value.to_f64(),
        }
    }
}

/// A producer for feeding sensor topics: idempotent, acknowledged by every in-sync replica.
pub fn feeding_producer(kafka: &KafkaArgs) -> anyhow::Result<BaseProducer> {
    kafka
        .client_config(&[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "10"),
            ("batch.num.messages", "10000"),
            ("compression.type", "lz4"),
        ])
        .create()
        .context("cannot create a Kafka producer")
}

/// Sends one message, waiting while librdkafka's queue is full.
pub fn send_waiting(
    producer: &BaseProducer,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error).context("cannot produce"),
        }
    }
}
