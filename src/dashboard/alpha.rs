//! `roomflow dashboard --brokers …`: the alpha topic read from the beginning of every partition,
//! with `isolation.level=read_committed` (a transactional job's aborted changes never show), and
//! the dead-letter topic beside it; each message applied to the building as it arrives. No
//! consumer group is joined and nothing is committed: every dashboard reads the whole topic, so
//! any number of them can run. Partitions (and the topics themselves) that appear later are
//! picked up within [`REFRESH_INTERVAL`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::rejected;
use super::shared::Shared;
use crate::kafka::config::{client_error, KafkaArgs, QuietEof};

/// How often the topics' partitions are looked up again, for ones added since.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// How many messages are applied under one lock of the building, at most.
const BATCH: usize = 4096;

/// The topics the dashboard reads.
pub struct Topics {
    /// The change topic.
    pub alpha: String,
    /// The dead-letter topic, if any.
    pub dead_letters: Option<String>,
}

/// A consumer of `topics`, configured to read committed messages from the beginning.
pub fn consumer(kafka: &KafkaArgs) -> anyhow::Result<BaseConsumer<QuietEof>> {
    kafka
        .client_config(&[
            ("group.id", "roomflow-dashboard"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("isolation.level", "read_committed"),
            // A page should move as soon as a change is committed, not after a fetch's wait.
            ("fetch.wait.max.ms", "100"),
        ])
        .create_with_context(QuietEof)
        .context("invalid Kafka configuration (check -X properties)")
}

/// Reads `topics` into the building, forever (the thread ends with the process).
pub fn follow(consumer: BaseConsumer<QuietEof>, topics: Topics, shared: Arc<Shared>) {
    let mut assigned: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut refreshed: Option<Instant> = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if refreshed.is_none_or(|at| at.elapsed() >= REFRESH_INTERVAL) {
            refreshed = Some(Instant::now());
            if let Err(error) = assign_new(&consumer, &topics, &mut assigned) {
                tracing::warn!(%error, "cannot look up the topics' partitions; trying again");
            }
        }
        if assigned.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        // Wait for one message, then take what else is already there.
        let mut timeout = Duration::from_millis(100);
        while batch.len() < BATCH {
            match consumer.poll(timeout) {
                None => break,
                Some(Ok(message)) => batch.push(Input::of(&message, &topics)),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(error)) => client_error(error, "reading alpha"),
            }
            timeout = Duration::ZERO;
        }
        if !batch.is_empty() {
            shared.update(|building| {
                for input in batch.drain(..) {
                    input.apply(building);
                }
            });
        }
    }
}

/// A message, copied out of the consumer so the building is locked only to apply it.
enum Input {
    Change { source: String, payload: Vec<u8> },
    Rejected(Result<rejected::RejectedInput, (String, String)>),
}

impl Input {
    fn of(message: &BorrowedMessage<'_>, topics: &Topics) -> Input {
        let source = format!(
            "{}/{}/{}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        let payload = message.payload().unwrap_or_default();
        if message.topic() == topics.alpha {
            return Input::Change {
                source,
                payload: payload.to_vec(),
            };
        }
        let mut headers = BTreeMap::new();
        if let Some(all) = message.headers() {
            for header in all.iter() {
                if let Some(value) = header.value {
                    headers.insert(
                        header.key.to_string(),
                        String::from_utf8_lossy(value).into_owned(),
                    );
                }
            }
        }
        Input::Rejected(
            rejected::from_dead_letter(&headers, payload)
                .map_err(|error| (source, format!("not a dead letter: {error}"))),
        )
    }

    fn apply(self, building: &mut super::building::Building) {
        match self {
            Input::Change { source, payload } => building.apply(&source, &payload),
            Input::Rejected(Ok(input)) => building.reject(input),
            Input::Rejected(Err((source, error))) => building.malformed(&source, error),
        }
    }
}

/// Assigns, from their beginning, the partitions of `topics` not assigned yet.
fn assign_new(
    consumer: &BaseConsumer<QuietEof>,
    topics: &Topics,
    assigned: &mut BTreeSet<(String, i32)>,
) -> anyhow::Result<()> {
    let mut new = TopicPartitionList::new();
    for topic in std::iter::once(&topics.alpha).chain(topics.dead_letters.as_ref()) {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        for partition in metadata
            .topics()
            .iter()
            .filter(|described| described.error().is_none())
            .flat_map(|described| described.partitions())
        {
            if assigned.insert((topic.clone(), partition.id())) {
                new.add_partition_offset(topic, partition.id(), Offset::Beginning)?;
            }
        }
    }
    if new.count() > 0 {
        tracing::info!(
            partitions = new.count(),
            "reading new partitions from their beginning"
        );
        consumer.incremental_assign(&new)?;
    }
    Ok(())
}
