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

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use roomflow_dataflows::{Horizon, Time};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use super::admission::{Effects, Incoming, Rules, SourceCounts};
use super::config::{QuietEof, SourceConsumer};
use super::coordination::CoordinationView;
use super::discovery::{owner, Known, Partition};
use super::offsets::PendingOffsets;
use super::partition::{resumed_phase, EndProbe, PartitionReader, Phase};
use super::position::{PartitionPosition, Resume};
use crate::sources::validity::ValidRanges;
use crate::streams::{ReadingStream, Rejected};
use crate::telemetry::catalog;
use metrics::gauge;

/// How often the source wakes without data: to notice new partitions, stop requests, and the
/// progress of other workers.
const TICK: Duration = Duration::from_millis(10);

/// Where one partition's messages wait to be read: its own queue, and any that librdkafka
/// delivered on the consumer's queue instead (kept in offset order, read first).
struct Inbox {
    queue: PartitionQueue<QuietEof>,
    strays: VecDeque<OwnedMessage>,
}

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
    /// Where a resumed job starts (time 0 and no positions for a fresh one).
    pub resume: Arc<Resume>,
    /// On the worker that asks for checkpoints: how often, and whether one is being written.
    pub checkpoints: Option<CheckpointTrigger>,
}

/// When the leading worker's source asks for a checkpoint: at its capability, once the interval
/// has passed and the previous checkpoint is written.
pub struct CheckpointTrigger {
    /// Time between checkpoints.
    pub interval: Duration,
    /// Set when a mark is sent; the worker's loop clears it once that checkpoint is written.
    pub in_flight: Rc<Cell<bool>>,
}

/// What a worker's source shares with the worker's loop, which commits offsets and reports.
pub struct SourceState {
    /// The consumer, shared so the loop can commit after the operator has finished.
    pub consumer: Arc<SourceConsumer>,
    /// Where resumed partitions end is asked through this client.
    pub end_probe: Arc<EndProbe>,
    /// Consumed positions waiting for their output to be acknowledged.
    pub offsets: PendingOffsets,
    /// The source's capability; `None` once it has stopped.
    pub capability: Option<Time>,
    /// Counts.
    pub counts: SourceCounts,
}

/// The Kafka source of this worker: reading updates, and rejected messages. `progress` is probed
/// at the end of the dataflow, for flow control.
pub fn kafka_source<'s>(
    scope: Scope<'s, Time>,
    options: KafkaSourceOptions,
    state: Rc<RefCell<SourceState>>,
    progress: ProbeHandle<Time>,
) -> KafkaStreams<'s> {
    let mut builder = OperatorBuilder::new("KafkaSource".to_owned(), scope);
    let address = builder.operator_info().address;
    let activator = scope.activator_for(address.clone());
    let wake = Arc::new(scope.worker().sync_activator_for(address.to_vec()));
    let (index, peers) = (scope.index(), scope.peers());
    let (readings_output, readings) = builder.new_output();
    let (rejected_output, rejected) = builder.new_output();
    let (positions_output, positions) = builder.new_output();
    let (marks_output, marks) = builder.new_output();
    let mut readings_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(readings_output);
    let mut rejected_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<_>>>::from(rejected_output);
    let mut positions_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<PartitionPosition>>>::from(
            positions_output,
        );
    let mut marks_output =
        OutputBuilder::<_, CapacityContainerBuilder<Vec<Time>>>::from(marks_output);

    builder.build(move |mut capabilities| {
        // A resumed job continues at its checkpoint's time.
        for capability in capabilities.iter_mut() {
            capability.downgrade(&options.resume.time);
        }
        let mut capabilities = Some((
            capabilities.remove(0),
            capabilities.remove(0),
            capabilities.remove(0),
            capabilities.remove(0),
        ));
        // No checkpoint at the start time: the one resumed from (or an empty one) is there.
        let mut last_mark: (Instant, Option<Time>) =
            (Instant::now(), Some(options.resume.time));
        let consumer = state.borrow().consumer.clone();
        let end_probe = state.borrow().end_probe.clone();
        let mut readers: Vec<PartitionReader> = Vec::new();
        let mut inboxes: Vec<Inbox> = Vec::new();
        let mut owned: BTreeSet<Partition> = BTreeSet::new();
        let mut seen_generation = 0;
        let mut listed = false;
        let mut idle_since: Option<Instant> = None;
        let mut next_reader = 0;
        let mut effects = Effects::new();
        let rules = Rules {
            horizon: options.horizon,
            valid: options.valid.clone(),
            catch_up_tick_ms: options.catch_up_tick_ms,
            catch_up_lag: options.catch_up_lag,
        };
        let mut sent_up_to: Time = 0;
        // Registered at the first figure: a worker that has read nothing has no lag to show.
        let mut frontier_lag: Option<metrics::Gauge> = None;

        move |_frontiers| {
            let Some((for_readings, for_rejected, for_positions, for_marks)) =
                capabilities.as_mut()
            else {
                return;
            };
            activator.activate_after(TICK);
            let mut state = state.borrow_mut();

            // Errors and events of the client (messages wait in partition queues, but see below).
            while let Some(event) = consumer.poll(Duration::ZERO) {
                match event {
                    Err(error) => tracing::warn!(%error, "Kafka consumer"),
                    // Every partition has a queue of its own, split off before it was assigned,
                    // so librdkafka should never deliver a message here; if it does, the message
                    // is read in its partition's turn rather than lost.
                    Ok(message) => {
                        let at = readers.iter().position(|reader| {
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
                        if inboxes[at].strays.is_empty() {
                            tracing::warn!(
                                partition = %readers[at].partition,
                                offset = message.offset(),
                                "a message arrived on the consumer's queue, not its partition's; read in order"
                            );
                        }
                        inboxes[at].strays.push_back(message.detach());
                    }
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
                        let resumed = options.resume.positions.get(partition);
                        let offset = match resumed {
                            Some(position) => Offset::Offset(position.next),
                            None if listed => Offset::Beginning,
                            None => options.start.offset(),
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
                        let phase = resumed.map_or(Phase::Unknown, |position| {
                            resumed_phase(&end_probe, partition, position.next)
                        });
                        // Its queue beside it: a message borrows the queue while the reader admits it.
                        inboxes.push(Inbox {
                            queue,
                            strays: VecDeque::new(),
                        });
                        readers.push(PartitionReader::new(
                            partition.clone(),
                            resumed,
                            options.resume.time,
                            phase,
                        ));
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
                // A last checkpoint where the source stops, so a restart resumes from there.
                if options.checkpoints.is_some() && last_mark.1 != Some(*for_marks.time()) {
                    marks_output
                        .activate()
                        .session(&*for_marks)
                        .give(*for_marks.time());
                }
                state.offsets.snapshot(sent_up_to);
                state.capability = None;
                capabilities = None;
                tracing::debug!(worker = index, "source stopped");
                return;
            }

            // A checkpoint at the capability: everything this worker sends from now on is at or
            // after it, and every other worker's output before it is in when its frontier passes.
            if let Some(trigger) = &options.checkpoints {
                let now = *for_marks.time();
                if !trigger.in_flight.get()
                    && last_mark.0.elapsed() >= trigger.interval
                    && last_mark.1 != Some(now)
                {
                    tracing::debug!(time = now, "checkpoint mark");
                    marks_output.activate().session(&*for_marks).give(now);
                    trigger.in_flight.set(true);
                    last_mark = (Instant::now(), Some(now));
                }
            }

            // Flow control: wait for the rest of the dataflow, and for the sinks' acknowledgements
            // (a slow MongoDB slows reading down), rather than pile up work.
            let behind = progress
                .with_frontier(|f| f.first().copied())
                .into_iter()
                .chain(options.coordination.acked().flatten())
                .any(|done| for_readings.time().saturating_sub(done) > options.max_ahead);
            if behind {
                // Waiting for output is not being idle: new messages may wait unread.
                idle_since = None;
            }
            let mut more = false;
            if !behind {
                let capability = *for_readings.time();
                let mut handled = 0;
                let count = readers.len();
                for step in 0..count {
                    let reader = &mut readers[(next_reader + step) % count];
                    let inbox = &mut inboxes[(next_reader + step) % count];
                    let end = reader.fetched_end(consumer.client().native_ptr());
                    // A resumed partition that says nothing may be at its end: ask again now and
                    // then (the first answer may have timed out on a busy broker).
                    if reader.phase == Phase::Unknown
                        && reader.end_asked.is_some_and(|asked| asked.elapsed() >= Duration::from_secs(1))
                    {
                        reader.end_asked = Some(Instant::now());
                        if let Some(next) = reader.next_offset {
                            reader.phase = resumed_phase(&end_probe, &reader.partition, next);
                            reader.needs_catch_up = reader.phase == Phase::CaughtUp;
                        }
                    }
                    while handled < options.batch {
                        let stray = inbox.strays.pop_front();
                        let polled;
                        let (offset, key, payload) = if let Some(stray) = &stray {
                            (stray.offset(), stray.key(), stray.payload())
                        } else {
                            polled = match inbox.queue.poll(Duration::ZERO) {
                                None => {
                                    // Caught up, even if the broker sends no end-of-partition event
                                    // (some do not, to a consumer that started at the end).
                                    if reader.phase != Phase::CaughtUp
                                        && reader.next_offset.zip(end).is_some_and(|(next, end)| next >= end)
                                    {
                                        reader.phase = Phase::CaughtUp;
                                        reader.needs_catch_up = true;
                                    }
                                    break;
                                }
                                Some(Err(KafkaError::PartitionEOF(_))) => {
                                    reader.phase = Phase::CaughtUp;
                                    reader.needs_catch_up = true;
                                    continue;
                                }
                                Some(Err(error)) => {
                                    tracing::warn!(partition = %reader.partition, %error, "Kafka consumer");
                                    continue;
                                }
                                Some(Ok(message)) => message,
                            };
                            (polled.offset(), polled.key(), polled.payload())
                        };
                        handled += 1;
                        idle_since = None;
                        state.offsets.consumed(&reader.partition, offset + 1);
                        let incoming = Incoming {
                            offset,
                            key,
                            payload: payload.unwrap_or_default(),
                        };
                        let effect = reader.admit(
                            incoming,
                            end,
                            capability,
                            &rules,
                            &mut effects,
                            &mut state.counts,
                        );
                        sent_up_to = sent_up_to.max(effect);
                    }
                    if handled >= options.batch {
                        next_reader = (next_reader + step + 1) % count;
                        more = true;
                        break;
                    }
                }
                sent_up_to = sent_up_to.max(capability);

                // Stamps differ between partitions: one session per stamp.
                let mut output = readings_output.activate();
                send_by_time(&mut effects.readings, |(_, stamp, _)| *stamp, |stamp, run| {
                    output.session(&for_readings.delayed(&stamp)).give_iterator(run);
                });
                let mut output = rejected_output.activate();
                send_by_time(&mut effects.rejections, |(_, time)| *time, |time, run| {
                    let run = run.map(|(rejected, _)| rejected);
                    output.session(&for_rejected.delayed(&time)).give_iterator(run);
                });
                effects.positions.extend(
                    readers
                        .iter_mut()
                        .filter_map(|reader| reader.unreported.take())
                        .map(|(time, position)| (position, time)),
                );
                let mut output = positions_output.activate();
                send_by_time(&mut effects.positions, |(_, time)| *time, |time, run| {
                    let run = run.map(|(position, _)| position);
                    output.session(&for_positions.delayed(&time)).give_iterator(run);
                });
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
                    for_positions.downgrade(&target);
                    for_marks.downgrade(&target);
                }
            }
            state.capability = Some(*for_readings.time());
            // Metrics, also while waiting for output (when they matter most).
            let client = consumer.client().native_ptr();
            for reader in readers.iter_mut() {
                match (reader.fetched_end(client), reader.next_offset) {
                    (Some(end), Some(next)) => reader.metrics.set_lag(end, next),
                    // Read to its end without a message: empty from where it started.
                    (Some(end), None) if reader.phase == Phase::CaughtUp => {
                        reader.metrics.set_lag(end, end)
                    }
                    _ => {}
                }
            }
            let newest = readers.iter().filter_map(|r| r.watermark.newest()).max();
            if let (Some(newest), Some(frontier)) =
                (newest, progress.with_frontier(|f| f.first().copied()))
            {
                let behind_ms = (newest.max(0) as Time).saturating_sub(frontier);
                frontier_lag
                    .get_or_insert_with(|| {
                        gauge!(catalog::FRONTIER_LAG, "worker" => index.to_string())
                    })
                    .set(behind_ms as f64 / 1000.0);
            }
            if more || behind {
                activator.activate();
            }
        }
    });
    KafkaStreams {
        readings,
        rejected,
        positions,
        marks,
    }
}

/// Empties `items` into `send`, one call per distinct time with that time's items (latest time
/// first: sessions at different times are independent).
fn send_by_time<T>(
    items: &mut Vec<T>,
    time_of: impl Fn(&T) -> Time,
    mut send: impl FnMut(Time, std::vec::Drain<'_, T>),
) {
    items.sort_by_key(&time_of);
    while let Some(last) = items.last() {
        let time = time_of(last);
        let start = items.partition_point(|item| time_of(item) < time);
        send(time, items.drain(start..));
    }
}

/// What the Kafka source produces.
pub struct KafkaStreams<'s> {
    /// Readings, at their stamps.
    pub readings: ReadingStream<'s>,
    /// Dead letters and late readings, at the time of their message's effects.
    pub rejected: Stream<'s, Time, Vec<Rejected>>,
    /// Partition positions, each at the time of the effects of the messages before it.
    pub positions: Stream<'s, Time, Vec<PartitionPosition>>,
    /// Checkpoint marks (only from the worker with a [`CheckpointTrigger`]).
    pub marks: Stream<'s, Time, Vec<Time>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_go_out_in_one_run_per_time() {
        let mut items = vec![("a", 3), ("b", 1), ("c", 3), ("d", 2), ("e", 1)];
        let mut runs = Vec::new();
        send_by_time(
            &mut items,
            |(_, time)| *time as Time,
            |time, run| {
                let mut names: Vec<&str> = run.map(|(name, _)| name).collect();
                names.sort();
                runs.push((time, names));
            },
        );
        assert!(items.is_empty());
        assert_eq!(
            runs,
            vec![(3, vec!["a", "c"]), (2, vec!["d"]), (1, vec!["b", "e"])]
        );
    }
}
