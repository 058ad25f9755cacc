//! The timely source of `roomflow run`: each worker reads the partitions it owns.
//!
//! Each partition is one input stream in the sense of `dataflows::horizon`: it keeps its own
//! watermark, judges its readings' lateness, and stamps them. The worker holds its capability at
//! the least stamp its *active* partitions can still produce. A partition is active from its
//! first message until it is caught up (librdkafka reports the end of the partition); partitions
//! never heard from hold the capability where it is, so nothing advances past data not yet read.
//!
//! A caught-up partition does not hold anything back. When all of a worker's partitions are
//! caught up, or it owns none, its capability follows the newest capability any worker reports
//! (`coordination.rs`), so it never holds back the others. A caught-up partition that delivers
//! again first catches its watermark up to the capability: it continues from where the
//! computation is, rather than from where it paused.
//!
//! **Catching up.** A partition far behind its end (a backlog of more than `--catch-up-lag`,
//! 10,000 messages by default; e.g. when the job starts from the earliest offsets) is read at a coarser granularity
//! of dataflow time, `--catch-up-tick`: the changes a backlog causes are coalesced to one version
//! per key and coarse tick instead of one per fine tick, which cuts the alpha traffic of a restart
//! several times over. Final values are the same; once a partition is caught up, its readings
//! are stamped at `--tick` again. Coarse stamps are still at most the partition's watermark, so
//! lateness and sealing (see `dataflows::horizon`) hold unchanged.
//!
//! Polling never blocks: librdkafka wakes the operator when a partition's queue becomes
//! non-empty, and it also wakes itself periodically to notice new partitions and stop requests.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use roomflow_dataflows::{Admission, Horizon, Reading, StreamWatermark, Time};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use super::config::{QuietEof, SourceConsumer};
use super::coordination::CoordinationView;
use super::discovery::{owner, Known, Partition};
use super::offsets::PendingOffsets;
use crate::sources::formats::{parse_line, Format, StreamContext};
use crate::sources::rejected::{KafkaOrigin, RejectKind, Rejected};
use crate::sources::replay::ReadingStream;
use crate::sources::validity::ValidRanges;

/// How often the source wakes without data: to notice new partitions, stop requests, and the
/// progress of other workers.
const TICK: Duration = Duration::from_millis(10);

/// Where to start reading partitions present when the job starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StartFrom {
    /// The oldest retained message: rebuilds the all-time state from the whole topic.
    Earliest,
    /// The group's committed offsets (earliest where none): continues after the last run.
    Committed,
    /// Only messages produced from now on.
    Latest,
}

impl StartFrom {
    fn offset(self) -> Offset {
        match self {
            StartFrom::Earliest => Offset::Beginning,
            StartFrom::Committed => Offset::Stored,
            StartFrom::Latest => Offset::End,
        }
    }
}

/// How a worker reads Kafka.
pub struct KafkaSourceOptions {
    /// Partitions known to this process.
    pub known: Arc<Mutex<Known>>,
    /// Start position of partitions present at start; later ones are read from the beginning.
    pub start: StartFrom,
    /// Lateness and tick.
    pub horizon: Horizon,
    /// Plausibility ranges.
    pub valid: Arc<ValidRanges>,
    /// Messages handled per activation.
    pub batch: usize,
    /// Set on SIGINT/SIGTERM: stop reading.
    pub stop: Arc<AtomicBool>,
    /// Stop once every partition of this worker has been caught up for this long.
    pub exit_when_idle: Option<Duration>,
    /// What the other workers report.
    pub coordination: CoordinationView,
    /// How far (dataflow time) the source may run ahead of the end of the dataflow.
    pub max_ahead: Time,
    /// Granularity (ms) of dataflow time for partitions catching up; a multiple of the tick.
    pub catch_up_tick_ms: i64,
    /// Backlog (messages) above which a partition is catching up.
    pub catch_up_lag: i64,
}

/// Counts kept by a worker's source.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceCounts {
    /// Messages consumed.
    pub messages: u64,
    /// Readings sent into the dataflow.
    pub readings: u64,
    /// Messages that were not readings.
    pub dead_letters: u64,
    /// Readings too late to apply.
    pub late: u64,
}

/// What a worker's source shares with the worker's loop, which commits offsets and reports.
pub struct SourceState {
    /// The consumer, shared so the loop can commit after the operator has finished.
    pub consumer: Arc<SourceConsumer>,
    /// Consumed positions waiting for their output to be acknowledged.
    pub offsets: PendingOffsets,
    /// The source's capability; `None` once it has stopped.
    pub capability: Option<Time>,
    /// Counts.
    pub counts: SourceCounts,
}

/// Whether a partition is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Assigned, not heard from yet: it may hold anything, so it holds the capability.
    Unknown,
    /// Delivering.
    Active,
    /// Caught up with the end of the partition.
    CaughtUp,
}

struct PartitionReader {
    partition: Partition,
    queue: rdkafka::consumer::base_consumer::PartitionQueue<QuietEof>,
    watermark: StreamWatermark,
    phase: Phase,
    /// Whether its backlog exceeds the catch-up lag.
    catching_up: bool,
}

impl PartitionReader {
    /// The stamp of a reading admitted now, given the fine `stamp` the watermark chose.
    fn stamp(&self, stamp: Time, capability: Time, catch_up_tick_ms: i64) -> Time {
        if !self.catching_up {
            return stamp;
        }
        let newest = self.watermark.newest().unwrap_or(0).max(0);
        let coarse = (newest - newest.rem_euclid(catch_up_tick_ms)) as Time;
        coarse.max(capability)
    }

    /// The least stamp this partition can still produce (the capability may be above it).
    fn lower_bound(&self, horizon: &Horizon, catch_up_tick_ms: i64) -> Time {
        let bound = self.watermark.lower_bound(None, horizon);
        if self.catching_up {
            bound - bound % catch_up_tick_ms as Time
        } else {
            bound
        }
    }

    /// The end of the partition as last fetched, from librdkafka's cache (no broker request).
    fn fetched_end(&self, client: *mut rdkafka::bindings::rd_kafka_t) -> Option<i64> {
        let topic = std::ffi::CString::new(self.partition.topic.as_str()).ok()?;
        let (mut low, mut high) = (0i64, 0i64);
        // SAFETY: `client` is the live consumer's handle; the call only reads librdkafka's cached
        // offsets into the two integers.
        let error = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                client,
                topic.as_ptr(),
                self.partition.partition,
                &mut low,
                &mut high,
            )
        };
        (error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
            .then_some(high)
    }
}

/// Notes in `catching_up` whether the message at `offset` of `partition` is part of a backlog,
/// given the partition's fetched `end`.
fn note_backlog(
    catching_up: &mut bool,
    partition: &Partition,
    offset: i64,
    end: Option<i64>,
    catch_up_lag: i64,
) {
    let Some(end) = end else { return };
    let now = end - (offset + 1) > catch_up_lag;
    if now != *catching_up {
        tracing::debug!(%partition, backlog = end - offset - 1, catching_up = now, "backlog");
    }
    *catching_up = now;
}

/// The Kafka source of this worker: reading updates, and rejected messages. `progress` is probed
/// at the end of the dataflow, for flow control.
pub fn kafka_source<'s>(
    scope: Scope<'s, Time>,
    options: KafkaSourceOptions,
    state: Rc<RefCell<SourceState>>,
    progress: ProbeHandle<Time>,
) -> (ReadingStream<'s>, Stream<'s, Time, Vec<Rejected>>) {
    let mut builder = OperatorBuilder::new("KafkaSource".to_owned(), scope);
    let address = builder.operator_info().address;
    let activator = scope.activator_for(address.clone());
    let wake = Arc::new(scope.worker().sync_activator_for(address.to_vec()));
    let (index, peers) = (scope.index(), scope.peers());
    let (readings_output, readings) = builder.new_output();
    let (rejected_output, rejected) = builder.new_output();
    let mut readings_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(readings_output);
    let mut rejected_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(rejected_output);

    builder.build(move |mut capabilities| {
        let mut capabilities = Some((capabilities.remove(0), capabilities.remove(0)));
        let consumer = state.borrow().consumer.clone();
        let mut readers: Vec<PartitionReader> = Vec::new();
        let mut owned: BTreeSet<Partition> = BTreeSet::new();
        let mut seen_generation = 0;
        let mut listed = false;
        let mut idle_since: Option<Instant> = None;
        let mut next_reader = 0;
        let mut buffer: Vec<(Reading, Time, isize)> = Vec::new();
        let mut rejections: Vec<Rejected> = Vec::new();
        let mut parsed: Vec<Reading> = Vec::new();
        let context = StreamContext::default();
        let mut sent_up_to: Time = 0;

        move |_frontiers| {
            let Some((for_readings, for_rejected)) = capabilities.as_mut() else {
                return;
            };
            activator.activate_after(TICK);
            let mut state = state.borrow_mut();

            // Errors and events of the client (not messages: those wait in partition queues).
            while let Some(event) = consumer.poll(Duration::ZERO) {
                if let Err(error) = event {
                    tracing::warn!(%error, "Kafka consumer");
                }
            }

            // Partitions this worker owns and has not assigned yet.
            {
                let known = options.known.lock().expect("no panics holding the lock");
                if known.generation != seen_generation {
                    seen_generation = known.generation;
                    let mut assignment = TopicPartitionList::new();
                    for partition in &known.partitions {
                        if owner(partition, peers) != index || owned.contains(partition) {
                            continue;
                        }
                        let offset = if listed {
                            Offset::Beginning
                        } else {
                            options.start.offset()
                        };
                        let Some(mut queue) =
                            consumer.split_partition_queue(&partition.topic, partition.partition)
                        else {
                            tracing::warn!(%partition, "cannot read partition");
                            continue;
                        };
                        let wake = wake.clone();
                        queue.set_nonempty_callback(move || {
                            let _ = wake.activate();
                        });
                        assignment
                            .add_partition_offset(&partition.topic, partition.partition, offset)
                            .expect("valid offset");
                        owned.insert(partition.clone());
                        readers.push(PartitionReader {
                            partition: partition.clone(),
                            queue,
                            watermark: StreamWatermark::new(),
                            phase: Phase::Unknown,
                            catching_up: false,
                        });
                    }
                    listed = known.listed;
                    if assignment.count() > 0 {
                        match consumer.incremental_assign(&assignment) {
                            Ok(()) => tracing::info!(
                                worker = index,
                                partitions = ?assignment.elements().iter().map(|e| format!("{}/{}", e.topic(), e.partition())).collect::<Vec<_>>(),
                                "reading partitions"
                            ),
                            Err(error) => tracing::error!(%error, "cannot assign partitions"),
                        }
                    }
                }
            }

            let all_caught_up = listed && readers.iter().all(|r| r.phase == Phase::CaughtUp);
            if all_caught_up {
                idle_since.get_or_insert_with(Instant::now);
            }
            let idle_long_enough = options
                .exit_when_idle
                .zip(idle_since)
                .is_some_and(|(limit, since)| since.elapsed() >= limit);
            if options.stop.load(Ordering::Relaxed) || idle_long_enough {
                state.offsets.snapshot(sent_up_to);
                state.capability = None;
                capabilities = None;
                tracing::debug!(worker = index, "source stopped");
                return;
            }

            // Flow control: wait for the rest of the dataflow rather than pile up work in it.
            let behind = progress
                .with_frontier(|f| f.first().copied())
                .is_some_and(|frontier| for_readings.time().saturating_sub(frontier) > options.max_ahead);
            let mut more = false;
            if !behind {
                let capability = *for_readings.time();
                let mut handled = 0;
                let count = readers.len();
                for step in 0..count {
                    let reader = &mut readers[(next_reader + step) % count];
                    let end = reader.fetched_end(consumer.client().native_ptr());
                    while handled < options.batch {
                        let message = match reader.queue.poll(Duration::ZERO) {
                            None => break,
                            Some(Err(KafkaError::PartitionEOF(_))) => {
                                reader.phase = Phase::CaughtUp;
                                continue;
                            }
                            Some(Err(error)) => {
                                tracing::warn!(partition = %reader.partition, %error, "Kafka consumer");
                                continue;
                            }
                            Some(Ok(message)) => message,
                        };
                        handled += 1;
                        idle_since = None;
                        reader.phase = Phase::Active;
                        state.counts.messages += 1;
                        state.offsets.consumed(&reader.partition, message.offset() + 1);
                        note_backlog(
                            &mut reader.catching_up,
                            &reader.partition,
                            message.offset(),
                            end,
                            options.catch_up_lag,
                        );
                        // A partition that paused continues from where the computation is.
                        reader.watermark.catch_up(capability as i64);
                        let payload = message.payload().unwrap_or_default();
                        let origin = || {
                            Box::new(KafkaOrigin {
                                topic: reader.partition.topic.clone(),
                                partition: reader.partition.partition,
                                offset: message.offset(),
                                key: message.key().map(<[u8]>::to_vec),
                                payload: payload.to_vec(),
                            })
                        };
                        let source = || format!("{}/{}", reader.partition, message.offset());
                        parsed.clear();
                        let outcome = match std::str::from_utf8(payload) {
                            Err(_) => Err("not UTF-8".to_string()),
                            Ok(text) if text.trim().is_empty() => Err("empty message".to_string()),
                            Ok(text) => parse_line(Format::Json, &context, text, &mut parsed)
                                .and_then(|()| parsed.iter().try_for_each(|r| options.valid.check(r))),
                        };
                        if let Err(reason) = outcome {
                            state.counts.dead_letters += 1;
                            rejections.push(Rejected {
                                kind: RejectKind::DeadLetter,
                                source: source(),
                                reason,
                                line: Some(String::from_utf8_lossy(payload).into_owned()),
                                reading: None,
                                origin: Some(origin()),
                            });
                            continue;
                        }
                        for reading in parsed.drain(..) {
                            match reader.watermark.admit(reading.ts, &options.horizon) {
                                Admission::OnTime { stamp } => {
                                    let stamp = reader.stamp(stamp, capability, options.catch_up_tick_ms);
                                    state.counts.readings += 1;
                                    sent_up_to = sent_up_to.max(stamp);
                                    buffer.push((reading, stamp, 1));
                                }
                                Admission::Late { newest } => {
                                    state.counts.late += 1;
                                    rejections.push(Rejected {
                                        kind: RejectKind::Late,
                                        source: source(),
                                        reason: format!(
                                            "event time {} is {} ms behind the newest event time {} of its partition (lateness {} ms)",
                                            reading.ts,
                                            newest - reading.ts,
                                            newest,
                                            options.horizon.lateness_ms
                                        ),
                                        line: None,
                                        reading: Some(reading),
                                        origin: Some(origin()),
                                    });
                                }
                            }
                        }
                    }
                    if handled >= options.batch {
                        next_reader = (next_reader + step + 1) % count;
                        more = true;
                        break;
                    }
                }
                sent_up_to = sent_up_to.max(capability);

                if !buffer.is_empty() {
                    // Stamps differ between partitions: send each stamp's readings together.
                    buffer.sort_by_key(|(_, stamp, _)| *stamp);
                    let mut readings_output = readings_output.activate();
                    let mut updates = buffer.drain(..).peekable();
                    while let Some(first) = updates.next() {
                        let stamp = first.1;
                        let at = for_readings.delayed(&stamp);
                        let mut session = readings_output.session(&at);
                        session.give(first);
                        while let Some(next) = updates.next_if(|(_, s, _)| *s == stamp) {
                            session.give(next);
                        }
                    }
                }
                if !rejections.is_empty() {
                    rejected_output
                        .activate()
                        .session(&*for_rejected)
                        .give_iterator(rejections.drain(..));
                }
                state.offsets.snapshot(sent_up_to);
            }

            // Where the capability can go: the least stamp an active partition can still produce;
            // with none active, up to the newest capability anywhere.
            let active = readers
                .iter()
                .filter(|r| r.phase != Phase::CaughtUp)
                .map(|r| r.lower_bound(&options.horizon, options.catch_up_tick_ms))
                .min();
            let target = match active {
                Some(bound) => Some(bound),
                None if listed => readers
                    .iter()
                    .filter_map(|r| r.watermark.newest())
                    .map(|newest| options.horizon.stamp(newest.max(0)))
                    .chain(options.coordination.newest_capability())
                    .max(),
                None => None,
            };
            if let Some(target) = target {
                if target > *for_readings.time() {
                    for_readings.downgrade(&target);
                    for_rejected.downgrade(&target);
                }
            }
            state.capability = Some(*for_readings.time());
            if more || behind {
                activator.activate();
            }
        }
    });
    (readings, rejected)
}
