//! What a worker's Kafka source keeps between activations, with the phases of one activation as
//! its methods: take stray messages off the consumer's queue, assign newly owned partitions,
//! decide whether to stop, mark checkpoints, drain partitions into effects, and find where the
//! capability can go. The operator (`source.rs`) calls them in that order and sends the effects.
//!
//! - `mod.rs`: the state, taking strays, assigning partitions, stopping, draining partitions.
//! - `time.rs`: the capability, checkpoint marks, and waiting for the dataflow.

mod time;

pub(super) use time::LastMarkNow;

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use metrics::{gauge, Gauge};
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use roomflow_dataflows::Time;
use timely::dataflow::ProbeHandle;
use timely::scheduling::SyncActivator;

use super::admission::{Effects, Incoming, Rules};
use super::batch_queue::{BatchQueue, Polled};
use super::config::{QuietEof, SourceConsumer};
use super::discovery::{owner, Partition};
use super::partition::{resumed_phase, EndProbe, PartitionReader, Phase};
use super::source_options::{KafkaSourceOptions, SourceState};
use crate::telemetry::catalog;
use crate::telemetry::repeats::RepeatedWarnings;

/// How long the source waits for a new topic's metadata before assigning its partitions anyway.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks `consumer` for the metadata of the `assignment`'s topics not in `asked` yet. A partition
/// assigned before its consumer knows the partition's leader waits for librdkafka's next leader
/// query and then a 500 ms offset-query retry: the first message came 0.5–1 s after the
/// assignment, against 20 ms with the metadata known. A failure only loses that head start.
fn learn_leaders(
    consumer: &SourceConsumer,
    asked: &mut BTreeSet<String>,
    assignment: &TopicPartitionList,
) {
    for element in assignment.elements() {
        let topic = element.topic();
        if !asked.insert(topic.to_string()) {
            continue;
        }
        if let Err(error) = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT) {
            tracing::debug!(topic, %error, "no metadata before assigning; librdkafka asks later");
        }
    }
}

/// Where one partition's messages wait to be read: its own queue (split off the consumer's, and
/// read in batches), and any that librdkafka delivered on the consumer's queue instead (kept in
/// offset order, read first).
struct Inbox {
    /// The split-off queue; it holds the wake-up callback.
    _split: PartitionQueue<QuietEof>,
    /// The same queue, read in batches.
    queue: BatchQueue,
    strays: VecDeque<OwnedMessage>,
}

/// A worker's source between activations.
pub(super) struct SourceBookkeeping {
    options: KafkaSourceOptions,
    consumer: Arc<SourceConsumer>,
    end_probe: Arc<EndProbe>,
    /// Wakes the operator when a partition's queue becomes non-empty.
    wake: Arc<SyncActivator>,
    index: usize,
    peers: usize,
    /// The partitions read, each with its inbox at the same index.
    readers: Vec<PartitionReader>,
    inboxes: Vec<Inbox>,
    owned: BTreeSet<Partition>,
    /// Topics whose metadata this consumer has asked for (see `learn_leaders`).
    topics_known: BTreeSet<String>,
    /// The discovery generation last assigned from.
    seen_generation: u64,
    /// Whether the first listing of partitions is in (later partitions start at the beginning).
    listed: bool,
    idle_since: Option<Instant>,
    /// The mark sent in the current quiet spell (see [`SourceBookkeeping::checkpoint_mark`]);
    /// cleared when messages come again.
    quiet_mark: Option<Time>,
    /// The greatest time a message's effects were sent at (the capability aside).
    pub newest_effect: Option<Time>,
    /// Whether the source has decided to stop.
    stopping: bool,
    /// The reader the next activation starts with, so one busy partition cannot starve others.
    next_reader: usize,
    rules: Rules,
    /// What this activation's messages did, waiting to be sent.
    pub effects: Effects,
    /// The greatest time anything was sent at.
    pub sent_up_to: Time,
    /// When the last checkpoint mark was sent, and at which time.
    last_mark: (Instant, Option<Time>),
    /// Registered at the first figure: a worker that has read nothing has no lag to show.
    frontier_lag: Option<Gauge>,
}

impl SourceBookkeeping {
    /// The bookkeeping of worker `index` of `peers`, before any partition is assigned.
    pub fn new(
        options: KafkaSourceOptions,
        state: &SourceState,
        wake: Arc<SyncActivator>,
        index: usize,
        peers: usize,
    ) -> Self {
        let rules = Rules {
            horizon: options.horizon,
            valid: options.valid.clone(),
            max_message_bytes: options.max_message_bytes,
            catch_up_tick_ms: options.catch_up_tick_ms,
            catch_up_lag: options.catch_up_lag,
        };
        // No checkpoint at the start time: the one resumed from (or an empty one) is there.
        let last_mark = (Instant::now(), Some(options.resume.time));
        SourceBookkeeping {
            consumer: state.consumer.clone(),
            end_probe: state.end_probe.clone(),
            options,
            wake,
            index,
            peers,
            readers: Vec::new(),
            inboxes: Vec::new(),
            owned: BTreeSet::new(),
            topics_known: BTreeSet::new(),
            seen_generation: 0,
            listed: false,
            idle_since: None,
            quiet_mark: None,
            newest_effect: None,
            stopping: false,
            next_reader: 0,
            rules,
            effects: Effects::new(),
            sent_up_to: 0,
            last_mark,
            frontier_lag: None,
        }
    }

    /// Handles the client's events. Every partition has a queue of its own, split off before it
    /// was assigned, so librdkafka should never deliver a message on the consumer's queue; if it
    /// does, the message is read in its partition's turn rather than lost.
    pub fn take_strays(&mut self) {
        while let Some(event) = self.consumer.poll(Duration::ZERO) {
            let message = match event {
                Err(error) => {
                    warn_consumer_error(None, &error);
                    continue;
                }
                Ok(message) => message,
            };
            let at = self.readers.iter().position(|reader| {
                reader.partition.topic == message.topic()
                    && reader.partition.partition == message.partition()
            });
            let Some(at) = at else {
                tracing::error!(
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    "a message of a partition this worker does not read; left unread"
                );
                continue;
            };
            if self.inboxes[at].strays.is_empty() {
                tracing::warn!(
                    partition = %self.readers[at].partition,
                    offset = message.offset(),
                    "a message arrived on the consumer's queue, not its partition's; read in order"
                );
            }
            self.inboxes[at].strays.push_back(message.detach());
        }
    }

    /// Assigns the partitions this worker owns and has not assigned yet, each at its resumed
    /// position, the `--from` position (partitions present at start) or the beginning (later
    /// ones).
    pub fn assign_new_partitions(&mut self) {
        let known = self
            .options
            .known
            .lock()
            .expect("no panics holding the lock");
        if known.generation == self.seen_generation {
            return;
        }
        self.seen_generation = known.generation;
        let mut assignment = TopicPartitionList::new();
        for partition in &known.partitions {
            if owner(partition, self.peers) != self.index || self.owned.contains(partition) {
                continue;
            }
            let resumed = self.options.resume.positions.get(partition);
            let offset = match resumed {
                Some(position) => Offset::Offset(position.next),
                None if self.listed => Offset::Beginning,
                None => self.options.start.offset(),
            };
            let Some(mut queue) = self
                .consumer
                .split_partition_queue(&partition.topic, partition.partition)
            else {
                tracing::warn!(%partition, "cannot read partition");
                continue;
            };
            let wake = self.wake.clone();
            queue.set_nonempty_callback(move || {
                let _ = wake.activate();
            });
            let Some(batch_queue) =
                BatchQueue::of(&self.consumer, &partition.topic, partition.partition)
            else {
                tracing::warn!(%partition, "cannot read partition");
                continue;
            };
            assignment
                .add_partition_offset(&partition.topic, partition.partition, offset)
                .expect("valid offset");
            self.owned.insert(partition.clone());
            let phase = resumed.map_or(Phase::Unknown, |position| {
                resumed_phase(&self.end_probe, partition, position.next)
            });
            // Its queue beside it: a message borrows the queue while the reader admits it.
            self.inboxes.push(Inbox {
                _split: queue,
                queue: batch_queue,
                strays: VecDeque::new(),
            });
            self.readers.push(PartitionReader::new(
                partition.clone(),
                resumed,
                self.options.resume.time,
                phase,
            ));
        }
        self.listed = known.listed;
        if assignment.count() > 0 {
            learn_leaders(&self.consumer, &mut self.topics_known, &assignment);
            match self.consumer.incremental_assign(&assignment) {
                Ok(()) => tracing::info!(
                    worker = self.index,
                    partitions = ?assignment
                        .elements()
                        .iter()
                        .map(|e| format!("{}/{}", e.topic(), e.partition()))
                        .collect::<Vec<_>>(),
                    "reading partitions"
                ),
                Err(error) => tracing::error!(%error, "cannot assign partitions"),
            }
        }
    }

    /// Whether the source stops now: on SIGINT/SIGTERM, or once every partition has been caught
    /// up for `--exit-when-idle`.
    pub fn should_stop(&mut self) -> bool {
        if self.stopping {
            return true;
        }
        let all_caught_up = self.listed && self.readers.iter().all(|r| r.phase == Phase::CaughtUp);
        if all_caught_up {
            self.idle_since.get_or_insert_with(Instant::now);
        }
        let idle_long_enough = self
            .options
            .exit_when_idle
            .zip(self.idle_since)
            .is_some_and(|(limit, since)| since.elapsed() >= limit);
        // Once stopping, it stays so (the leader may wait for the others before its last mark).
        self.stopping = self.options.stop.load(Ordering::Relaxed) || idle_long_enough;
        self.stopping
    }

    /// Reads up to a batch of messages from the partitions in turn, admitting each into
    /// `effects` at or after `capability`; whether more may be waiting.
    pub fn drain_partitions(&mut self, capability: Time, state: &mut SourceState) -> bool {
        let mut handled = 0;
        let count = self.readers.len();
        let client = self.consumer.client().native_ptr();
        for step in 0..count {
            let at = (self.next_reader + step) % count;
            let (reader, inbox) = (&mut self.readers[at], &mut self.inboxes[at]);
            let end = reader.fetched_end(client);
            // A resumed partition that says nothing may be at its end: ask again now and then
            // (the first answer may have timed out on a busy broker).
            if reader.phase == Phase::Unknown
                && reader
                    .end_asked
                    .is_some_and(|asked| asked.elapsed() >= Duration::from_secs(1))
            {
                reader.end_asked = Some(Instant::now());
                if let Some(next) = reader.next_offset {
                    reader.phase = resumed_phase(&self.end_probe, &reader.partition, next);
                    reader.needs_catch_up = reader.phase == Phase::CaughtUp;
                }
            }
            // Messages that came the wrong way first: they are older than the queue's.
            while handled < self.options.batch {
                let Some(stray) = inbox.strays.pop_front() else {
                    break;
                };
                handled += 1;
                let incoming = Incoming {
                    offset: stray.offset(),
                    key: stray.key(),
                    payload: stray.payload().unwrap_or_default(),
                };
                let effect = admit(
                    reader,
                    incoming,
                    end,
                    capability,
                    &self.rules,
                    &mut self.effects,
                    state,
                );
                self.sent_up_to = self.sent_up_to.max(effect);
                self.newest_effect = self.newest_effect.max(Some(effect));
            }
            while handled < self.options.batch {
                let (rules, effects) = (&self.rules, &mut self.effects);
                let mut sent_up_to = self.sent_up_to;
                let mut newest_effect = self.newest_effect;
                let read = inbox
                    .queue
                    .drain(self.options.batch - handled, |polled| match polled {
                        Polled::Message(incoming) => {
                            handled += 1;
                            let effect =
                                admit(reader, incoming, end, capability, rules, effects, state);
                            sent_up_to = sent_up_to.max(effect);
                            newest_effect = newest_effect.max(Some(effect));
                        }
                        Polled::End => {
                            reader.phase = Phase::CaughtUp;
                            reader.needs_catch_up = true;
                        }
                        Polled::Error(error) => {
                            warn_consumer_error(Some(&reader.partition), &error)
                        }
                    });
                self.sent_up_to = sent_up_to;
                self.newest_effect = newest_effect;
                if read == 0 {
                    // Caught up, even if the broker sends no end-of-partition event (some do
                    // not, to a consumer that started at the end).
                    if reader.phase != Phase::CaughtUp
                        && reader
                            .next_offset
                            .zip(end)
                            .is_some_and(|(next, end)| next >= end)
                    {
                        reader.phase = Phase::CaughtUp;
                        reader.needs_catch_up = true;
                    }
                    break;
                }
            }
            if handled > 0 {
                self.idle_since = None;
                self.quiet_mark = None;
            }
            if handled >= self.options.batch {
                self.next_reader = (at + 1) % count;
                self.sent_up_to = self.sent_up_to.max(capability);
                self.collect_positions();
                return true;
            }
        }
        self.sent_up_to = self.sent_up_to.max(capability);
        self.collect_positions();
        false
    }

    /// Moves the positions the readers completed into `effects`.
    fn collect_positions(&mut self) {
        self.effects.positions.extend(
            self.readers
                .iter_mut()
                .filter_map(|reader| reader.unreported.take())
                .map(|(time, position)| (position, time)),
        );
    }

    /// Sets the partitions' lag and the worker's frontier lag; also while waiting for output,
    /// when they matter most.
    pub fn update_metrics(&mut self, progress: &ProbeHandle<Time>) {
        let client = self.consumer.client().native_ptr();
        for reader in self.readers.iter_mut() {
            match (reader.fetched_end(client), reader.next_offset) {
                (Some(end), Some(next)) => reader.metrics.set_lag(end, next),
                // Read to its end without a message: empty from where it started.
                (Some(end), None) if reader.phase == Phase::CaughtUp => {
                    reader.metrics.set_lag(end, end)
                }
                _ => {}
            }
        }
        let newest = self
            .readers
            .iter()
            .filter_map(|r| r.watermark.newest())
            .max();
        if let (Some(newest), Some(frontier)) =
            (newest, progress.with_frontier(|f| f.first().copied()))
        {
            let behind_ms = (newest.max(0) as Time).saturating_sub(frontier);
            let index = self.index;
            self.frontier_lag
                .get_or_insert_with(|| gauge!(catalog::FRONTIER_LAG, "worker" => index.to_string()))
                .set(behind_ms as f64 / 1000.0);
        }
    }
}

/// Admits one message of `reader`'s partition, recording its position as consumed; the time its
/// effects were sent at.
fn admit(
    reader: &mut PartitionReader,
    incoming: Incoming<'_>,
    end: Option<i64>,
    capability: Time,
    rules: &Rules,
    effects: &mut Effects,
    state: &mut SourceState,
) -> Time {
    state
        .offsets
        .consumed(&reader.partition, incoming.offset + 1);
    reader.admit(incoming, end, capability, rules, effects, &mut state.counts)
}

/// Logs an error the consumer reported (of `partition`, if it was one's); one that repeats, as
/// "all brokers down" does every 100 ms while they are, at most once per interval.
fn warn_consumer_error(partition: Option<&Partition>, error: &KafkaError) {
    static WARNINGS: LazyLock<RepeatedWarnings> = LazyLock::new(RepeatedWarnings::new);
    let text = match partition {
        Some(partition) => format!("{partition}: {error}"),
        None => error.to_string(),
    };
    if let Some(held_back) = WARNINGS.admit(&text, Instant::now()) {
        match partition {
            Some(partition) => tracing::warn!(%partition, %error, held_back, "Kafka consumer"),
            None => tracing::warn!(%error, held_back, "Kafka consumer"),
        }
    }
}
