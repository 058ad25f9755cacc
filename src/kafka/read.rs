//! Reading a whole topic once, from the beginning of every partition to its end: what the
//! benchmarks' tools, the examples and the tests do to look at a topic (alpha, dead letters, a
//! sensor topic). The streaming job never reads this way; its source is `source.rs`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Hands every message of `topic` to `each`, partition by partition in offset order (partitions
/// interleaved), until every partition has reported its end; returns the number of messages. A
/// topic without partitions (not created yet) has none. Fails when the topic cannot be
/// described, a partition reports an error, or `timeout` passes first.
///
/// `config` names the brokers and anything else the client needs; the reader sets its own
/// group, reads from the beginning, and commits nothing.
pub fn read_to_end(
    mut config: ClientConfig,
    topic: &str,
    timeout: Duration,
    mut each: impl FnMut(&BorrowedMessage<'_>),
) -> anyhow::Result<u64> {
    let consumer: BaseConsumer = config
        .set("group.id", "roomflow-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    // Partitions with nothing in them are not read: a consumer assigned to a partition it has
    // just learnt of fetches only after librdkafka's 500 ms offset-query retry, and an empty
    // topic (a new job's state topic) cost exactly that to find empty.
    let partitions: Vec<i32> = partitions
        .into_iter()
        .filter(|partition| {
            !matches!(
                consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10)),
                Ok((low, high)) if low >= high
            )
        })
        .collect();
    if partitions.is_empty() {
        return Ok(0);
    }
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut ended = BTreeSet::new();
    let mut messages = 0;
    while ended.len() < partitions.len() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "reading {topic} took longer than {timeout:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ended.insert(partition);
            }
            Some(Err(error)) => anyhow::bail!("reading {topic}: {error}"),
            Some(Ok(message)) => {
                // More arrived after the end was reported: not at the end any more.
                ended.remove(&message.partition());
                messages += 1;
                each(&message);
            }
        }
    }
    Ok(messages)
}
