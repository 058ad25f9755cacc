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
//! 1,000 messages by default; e.g. when the job starts from the earliest offsets) is read at a coarser granularity
//! of dataflow time, `--catch-up-tick`: the changes a backlog causes are coalesced to one version
//! per key and coarse tick instead of one per fine tick, which cuts the alpha traffic of a restart
//! several times over. Final values are the same; once a partition is caught up, its readings
//! are stamped at `--tick` again. Coarse stamps are still at most the partition's watermark, so
//! lateness and sealing (see `dataflows::horizon`) hold unchanged.
//!
//! Polling never blocks: librdkafka wakes the operator when a partition's queue becomes
//! non-empty, and it also wakes itself periodically to notice new partitions and stop requests.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use roomflow_dataflows::sized::GiveSized;
use roomflow_dataflows::Time;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use super::bookkeeping::{LastMarkNow, SourceBookkeeping};
use super::position::PartitionPosition;
use super::source_options::{KafkaSourceOptions, SourceState};
use crate::streams::{ReadingStream, Rejected};

/// How often the source wakes without data: to notice new partitions, stop requests, and the
/// progress of other workers.
const TICK: Duration = Duration::from_millis(10);

/// How soon a source that is too far ahead of the dataflow looks again.
const BEHIND_RETRY: Duration = Duration::from_millis(1);

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
        let mut book = SourceBookkeeping::new(options, &state.borrow(), wake, index, peers);

        move |_frontiers| {
            let Some((for_readings, for_rejected, for_positions, for_marks)) =
                capabilities.as_mut()
            else {
                return;
            };
            activator.activate_after(TICK);
            let mut state = state.borrow_mut();
            book.take_strays();
            book.assign_new_partitions();

            if book.should_stop() {
                state.offsets.snapshot(book.sent_up_to);
                state.sent_up_to = book.sent_up_to;
                let mark = match book.last_mark(*for_marks.time()) {
                    LastMarkNow::Wait => return,
                    LastMarkNow::Now(mark) => mark,
                };
                if let Some(mark) = mark {
                    if mark > *for_marks.time() {
                        for_marks.downgrade(&mark);
                    }
                    marks_output.activate().session(&*for_marks).give(mark);
                }
                state.capability = None;
                capabilities = None;
                tracing::debug!(worker = index, "source stopped");
                return;
            }
            // Other workers' output before the mark is in when the gatherer's frontier passes it.
            if let Some(mark) = book.checkpoint_mark(*for_marks.time(), *for_readings.time(), false)
            {
                marks_output.activate().session(&*for_marks).give(mark);
                let completed = book.completed_by(mark);
                if completed > *for_marks.time() {
                    for_marks.downgrade(&completed);
                }
            }

            let capability = *for_readings.time();
            let behind = book.is_behind(capability, &progress);
            let mut more = false;
            if !behind {
                more = book.drain_partitions(capability, &mut state);
                // Stamps differ between partitions: one session per stamp.
                let effects = &mut book.effects;
                let mut output = readings_output.activate();
                send_by_time(
                    &mut effects.readings,
                    |(_, stamp, _)| *stamp,
                    |stamp, run| {
                        output
                            .session(&for_readings.delayed(&stamp))
                            .give_sized(run);
                    },
                );
                let mut output = rejected_output.activate();
                send_by_time(
                    &mut effects.rejections,
                    |(_, time)| *time,
                    |time, run| {
                        let run = run.map(|(rejected, _)| rejected);
                        output.session(&for_rejected.delayed(&time)).give_sized(run);
                    },
                );
                let mut output = positions_output.activate();
                send_by_time(
                    &mut effects.positions,
                    |(_, time)| *time,
                    |time, run| {
                        let run = run.map(|(position, _)| position);
                        output
                            .session(&for_positions.delayed(&time))
                            .give_sized(run);
                    },
                );
                state.offsets.snapshot(book.sent_up_to);
                state.sent_up_to = book.sent_up_to;
                state.newest_effect = book.newest_effect;
            }

            if let Some(target) = book.capability_target() {
                if target > *for_readings.time() {
                    for_readings.downgrade(&target);
                    for_rejected.downgrade(&target);
                    for_positions.downgrade(&target);
                }
            }
            let marks_at = book.marks_target(*for_readings.time(), &progress);
            if marks_at > *for_marks.time() {
                for_marks.downgrade(&marks_at);
            }
            state.capability = Some(*for_readings.time());
            book.update_metrics(&progress);
            if more {
                activator.activate();
            } else if behind {
                // Waiting for the dataflow (or the acknowledgements) to catch up: look again
                // soon, without spinning on the cores the rest of the dataflow needs.
                activator.activate_after(BEHIND_RETRY);
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
