//! Reading a whole topic once, from the beginning of every partition to its end: what the
//! benchmarks' tools, the examples and the tests do to look at a topic (alpha, dead letters, a
//! sensor topic), message by message, and what an exactly-once job does with its state
//! changelog at start, in batches ([`read_to_end_in_batches`]). The streaming job's source is
//! `source.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::admission::Incoming;
use super::batch_queue::{BatchQueue, Polled, BATCH_CALL};
use super::config::{QuietEof, SourceConsumer};

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
    let partitions = partitions_with_messages(&consumer, topic)?;
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

/// What [`read_to_end`] does, through librdkafka's batch call (`batch_queue.rs`): a partition's
/// messages a thousand at a time instead of one per call. A restart reads the whole exactly-once
/// state changelog: a record per room (100,000 for a portfolio of that size), and when it held a
/// record per key, 1.3M records took 5.6 s one by one and 2.1 s in batches. A message's key and
/// payload are handed to `each` with its partition; a tombstone's payload is empty.
pub fn read_to_end_in_batches(
    mut config: ClientConfig,
    topic: &str,
    timeout: Duration,
    mut each: impl FnMut(i32, Incoming<'_>),
) -> anyhow::Result<u64> {
    let consumer: Arc<SourceConsumer> = Arc::new(
        config
            .set("group.id", "roomflow-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create_with_context(QuietEof)?,
    );
    let partitions = partitions_with_messages(&consumer, topic)?;
    if partitions.is_empty() {
        return Ok(0);
    }
    let mut assignment = TopicPartitionList::new();
    let mut queues = Vec::new();
    for partition in &partitions {
        // Split off, so that the partition's messages wait in its own queue for the batch call.
        let split = consumer
            .split_partition_queue(topic, *partition)
            .ok_or_else(|| anyhow::anyhow!("cannot read {topic}/{partition}"))?;
        let batches = BatchQueue::of(&consumer, topic, *partition)
            .ok_or_else(|| anyhow::anyhow!("cannot read {topic}/{partition}"))?;
        queues.push((*partition, split, batches));
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut ended = BTreeSet::new();
    let mut messages = 0;
    let mut failure = None;
    while ended.len() < partitions.len() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "reading {topic} took longer than {timeout:?}"
        );
        let mut got = 0;
        for (partition, _, batches) in &mut queues {
            got += batches.drain(BATCH_CALL, |polled| match polled {
                Polled::Message(message) => {
                    // More arrived after the end was reported: not at the end any more.
                    ended.remove(partition);
                    messages += 1;
                    each(*partition, message);
                }
                Polled::End => {
                    ended.insert(*partition);
                }
                Polled::Error(error) => failure = Some(error),
            });
        }
        if let Some(error) = failure.take() {
            anyhow::bail!("reading {topic}: {error}");
        }
        if got == 0 {
            // Nothing waiting: serve the client's own events (and wait a little) meanwhile.
            if let Some(Err(error)) = consumer.poll(Duration::from_millis(5)) {
                anyhow::bail!("reading {topic}: {error}");
            }
        }
    }
    Ok(messages)
}

/// The partitions of `topic` that hold messages. A consumer assigned to a partition it has just
/// learnt of fetches only after librdkafka's 500 ms offset-query retry, and an empty topic (a new
/// job's state topic) cost exactly that to find empty.
fn partitions_with_messages<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .filter(|partition| {
            !matches!(
                consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10)),
                Ok((low, high)) if low >= high
            )
        })
        .collect())
}
