//! Which partitions exist and which worker reads each.
//!
//! One thread per process lists the partitions of the sensor topics (named, or matching a
//! pattern) every `--discover-interval`, so partitions and topics added while the job runs are
//! picked up. Metadata requests block, which is why they live here and not on a worker thread.
//! Every worker of every process applies the same [`owner`] function to what it sees, so each
//! partition is read by exactly one worker without any negotiation.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use regex::Regex;

use super::config::{KafkaArgs, QuietEof};

/// A topic's partition.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Partition {
    /// The topic.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// The worker (of `peers`) that reads `partition`: the topic's hash plus the partition number,
/// modulo the workers. Partitions added to a topic land on the next workers in turn, and the
/// owners of the existing ones do not change.
pub fn owner(partition: &Partition, peers: usize) -> usize {
    // FNV-1a: the same on every process and every build.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in partition.topic.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash.wrapping_add(partition.partition as u64) % peers as u64) as usize
}

/// Which topics to read.
#[derive(Clone, Debug)]
pub enum TopicSelection {
    /// These topics.
    Named(Vec<String>),
    /// Every topic whose name matches, except these.
    Pattern {
        /// The pattern.
        pattern: Regex,
        /// Topics never read (the job's own outputs).
        except: Vec<String>,
    },
}

impl TopicSelection {
    fn selects(&self, topic: &str) -> bool {
        match self {
            TopicSelection::Named(names) => names.iter().any(|name| name == topic),
            TopicSelection::Pattern { pattern, except } => {
                pattern.is_match(topic) && !except.iter().any(|name| name == topic)
            }
        }
    }
}

/// The partitions known so far, shared by the discovery thread and the workers of a process.
#[derive(Default)]
pub struct Known {
    /// Every partition seen so far, sorted (partitions never disappear from this list).
    pub partitions: Vec<Partition>,
    /// Bumped on every change, so workers only look when something changed.
    pub generation: u64,
    /// Whether one listing has succeeded: until then workers know nothing.
    pub listed: bool,
}

/// The discovery thread of a process.
pub struct Discovery {
    /// What it found.
    pub known: Arc<Mutex<Known>>,
    /// Dropped to stop the thread.
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Discovery {
    /// Lists the partitions of `selection` now and every `interval` after.
    pub fn start(
        kafka: &KafkaArgs,
        selection: TopicSelection,
        interval: Duration,
    ) -> anyhow::Result<Discovery> {
        let consumer: BaseConsumer<QuietEof> =
            kafka.client_config(&[]).create_with_context(QuietEof)?;
        let known = Arc::new(Mutex::new(Known::default()));
        // Dropping the sender (when the `Discovery` goes) wakes the thread at once.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let known_t = known.clone();
        let thread = std::thread::Builder::new()
            .name("kafka-discovery".into())
            .spawn(move || {
                let mut failing = false;
                let mut missing_reported: Vec<String> = Vec::new();
                loop {
                    match list(&consumer, &selection) {
                        Ok(mut found) => {
                            if failing {
                                tracing::info!("Kafka metadata available again");
                                failing = false;
                            }
                            if let TopicSelection::Named(names) = &selection {
                                let missing: Vec<String> = names
                                    .iter()
                                    .filter(|name| !found.iter().any(|p| &p.topic == *name))
                                    .cloned()
                                    .collect();
                                if !missing.is_empty() && missing != missing_reported {
                                    tracing::warn!(
                                        topics = ?missing,
                                        "topics do not exist (yet); reading them once they do"
                                    );
                                }
                                missing_reported = missing;
                            }
                            found.sort();
                            let mut known = known_t.lock().expect("no panics holding the lock");
                            let mut changed = !known.listed;
                            for partition in found {
                                if let Err(at) = known.partitions.binary_search(&partition) {
                                    known.partitions.insert(at, partition);
                                    changed = true;
                                }
                            }
                            if changed {
                                known.listed = true;
                                known.generation += 1;
                                tracing::info!(
                                    partitions = known.partitions.len(),
                                    "sensor partitions: {}",
                                    summarize(&known.partitions)
                                );
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "cannot list Kafka topics; retrying");
                            failing = true;
                        }
                    }
                    if stopped.recv_timeout(interval)
                        != Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    {
                        break;
                    }
                }
            })?;
        Ok(Discovery {
            known,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The partitions of the selected topics. Named topics are asked for one by one: listing every
/// topic of a large cluster is much more work for the broker.
fn list(
    consumer: &BaseConsumer<QuietEof>,
    selection: &TopicSelection,
) -> rdkafka::error::KafkaResult<Vec<Partition>> {
    let timeout = Duration::from_secs(10);
    let mut found = Vec::new();
    let mut add = |metadata: rdkafka::metadata::Metadata| {
        for topic in metadata.topics() {
            if selection.selects(topic.name()) && topic.error().is_none() {
                found.extend(topic.partitions().iter().map(|p| Partition {
                    topic: topic.name().to_string(),
                    partition: p.id(),
                }));
            }
        }
    };
    match selection {
        TopicSelection::Named(names) => {
            for name in names {
                add(consumer.fetch_metadata(Some(name), timeout)?);
            }
        }
        TopicSelection::Pattern { .. } => add(consumer.fetch_metadata(None, timeout)?),
    }
    Ok(found)
}

/// `topic[4 partitions] other[2 partitions]`: a short description for the log.
fn summarize(partitions: &[Partition]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < partitions.len() {
        let topic = &partitions[i].topic;
        let count = partitions[i..]
            .iter()
            .take_while(|p| &p.topic == topic)
            .count();
        parts.push(format!("{topic}[{} partitions]", count));
        i += count;
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(topic: &str, partition: i32) -> Partition {
        Partition {
            topic: topic.into(),
            partition,
        }
    }

    #[test]
    fn partitions_of_a_topic_go_to_consecutive_workers() {
        let owners: Vec<usize> = (0..6).map(|p| owner(&partition("sensors", p), 4)).collect();
        let first = owners[0];
        let expected: Vec<usize> = (0..6).map(|p| (first + p) % 4).collect();
        assert_eq!(owners, expected);
        // Four partitions over four workers: one each.
        let mut four = owners[..4].to_vec();
        four.sort();
        assert_eq!(four, vec![0, 1, 2, 3]);
    }

    #[test]
    fn selection_by_name_or_pattern() {
        let named = TopicSelection::Named(vec!["a".into(), "b".into()]);
        assert!(named.selects("a") && !named.selects("ab"));
        let pattern = TopicSelection::Pattern {
            pattern: Regex::new(r"^sensors\.|alpha").unwrap(),
            except: vec!["alpha".into()],
        };
        assert!(pattern.selects("sensors.floor1") && pattern.selects("alphabet"));
        assert!(!pattern.selects("alpha") && !pattern.selects("rooms"));
    }
}
