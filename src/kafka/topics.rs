//! Creating topics that do not exist yet, through the admin API: brokers without automatic topic
//! creation (roomflow's docker-compose and local broker turn it off, as production clusters
//! often do) must just work.

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use super::config::{KafkaArgs, CONNECT_TIMEOUT};

/// A topic to make sure of.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Partitions to create it with (an existing topic keeps its own).
    pub partitions: i32,
    /// Topic configuration to create it with, e.g. `cleanup.policy=compact`.
    pub configs: Vec<(&'static str, &'static str)>,
}

/// Creates every topic of `topics` that does not exist, with `replication` copies of each
/// partition. Existing topics are left as they are.
pub fn ensure_topics(
    kafka: &KafkaArgs,
    topics: &[TopicSpec],
    replication: i32,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = kafka
        .client_config(&[])
        .create()
        .context("invalid Kafka configuration")?;
    let metadata = consumer
        .fetch_metadata(None, CONNECT_TIMEOUT)
        .with_context(|| format!("cannot list the topics of Kafka at `{}`", kafka.brokers))?;
    let missing: Vec<&TopicSpec> = topics
        .iter()
        .filter(|spec| {
            !metadata
                .topics()
                .iter()
                .any(|t| t.name() == spec.name && !t.partitions().is_empty())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config(&[])
        .create()
        .context("invalid Kafka configuration")?;
    let new_topics: Vec<NewTopic> = missing
        .iter()
        .map(|spec| {
            spec.configs.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(replication),
                ),
                |topic, (name, value)| topic.set(name, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(CONNECT_TIMEOUT));
    let results = futures_executor::block_on(admin.create_topics(&new_topics, &options))
        .context("cannot create topics")?;
    for result in results {
        match result {
            Ok(name) => {
                let spec = missing.iter().find(|s| s.name == name);
                tracing::info!(
                    topic = %name,
                    partitions = spec.map_or(0, |s| s.partitions),
                    "created topic"
                );
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("cannot create topic `{name}`: {code}"),
        }
    }
    Ok(())
}
