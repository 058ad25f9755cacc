//! Assembling checkpoints on worker 0.
//!
//! Three streams arrive, all routed to worker 0: partition positions (each at the time of the
//! effects of the messages it covers), marks (a checkpoint is wanted at that time), and the
//! state parts every worker emits at a mark's time. Times are handled in order once complete:
//! at a mark's time `T` the checkpoint is the positions applied so far (all at times before
//! `T`) and the parts at `T`; then the positions at `T` are applied.
//!
//! A resumed job starts from the positions it resumed from: a partition that reports nothing
//! new before a mark keeps its checkpointed position in the next checkpoint. Without them, such a
//! partition would be missing from the checkpoint, and a job resumed from it would read that
//! partition again from `--from` (its readings then judged late against the job's time).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use roomflow_dataflows::{HeldByTime, Time};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::Stream;

use super::checkpoint::Checkpoint;
use crate::kafka::discovery::Partition;
use crate::kafka::position::PartitionPosition;

/// What the gatherer receives.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Part<S> {
    Position(PartitionPosition),
    Mark,
    State(S),
}

/// Assembles a checkpoint at each mark, starting from the `resumed` positions (none for a fresh
/// job), and appends each to `complete` once its time is complete. `S` is what the state parts
/// are: whole state records, or state changes for a changelog.
pub fn gather_checkpoints<'s, S: timely::ExchangeData>(
    positions: Stream<'s, Time, Vec<PartitionPosition>>,
    marks: Stream<'s, Time, Vec<Time>>,
    state: Stream<'s, Time, Vec<S>>,
    resumed: BTreeMap<Partition, PartitionPosition>,
    complete: Rc<RefCell<VecDeque<Checkpoint<S>>>>,
) {
    let scope = positions.scope();
    let parts = scope.concatenate(vec![
        positions.map(Part::Position),
        marks.map(|_| Part::Mark),
        state.map(Part::State),
    ]);
    let mut pending: HeldByTime<Part<S>> = HeldByTime::default();
    let mut applied = resumed;
    parts.sink(
        Exchange::new(|_: &Part<S>| 0),
        "GatherCheckpoints",
        move |(input, frontier)| {
            input.for_each_stamp(|stamp, data| {
                let time = *stamp.least().expect("a message has a time");
                let at = pending.entry(time);
                for container in data {
                    at.append(container);
                }
            });
            let frontier = frontier.frontier().first().copied();
            while let Some((time, (), parts)) = pending.pop_complete(frontier) {
                if let Some(checkpoint) = apply_time(&mut applied, time, parts) {
                    tracing::debug!(
                        time,
                        records = checkpoint.state.len(),
                        "checkpoint assembled"
                    );
                    complete.borrow_mut().push_back(checkpoint);
                }
            }
        },
    );
}

/// Applies everything that came at `time` (all earlier times applied): the checkpoint at `time`
/// if it was marked, made of the positions applied before it; then `time`'s positions are applied.
fn apply_time<S>(
    applied: &mut BTreeMap<Partition, PartitionPosition>,
    time: Time,
    parts: Vec<Part<S>>,
) -> Option<Checkpoint<S>> {
    let mut positions = Vec::new();
    let mut marked = false;
    let mut state = Vec::new();
    for part in parts {
        match part {
            Part::Position(position) => positions.push(position),
            Part::Mark => marked = true,
            Part::State(record) => state.push(record),
        }
    }
    let checkpoint = marked.then(|| Checkpoint {
        time,
        positions: applied.clone(),
        state,
    });
    for position in positions {
        let newer = applied
            .get(&position.partition)
            .is_none_or(|known| known.next <= position.next);
        if newer {
            applied.insert(position.partition.clone(), position);
        }
    }
    checkpoint
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomflow_dataflows::Checkpointed;
    use timely::dataflow::operators::{Input, Probe};
    use timely::dataflow::ProbeHandle;

    fn position(partition: i32, next: i64, newest: i64) -> PartitionPosition {
        PartitionPosition {
            partition: Partition {
                topic: "sensors".into(),
                partition,
            },
            next,
            newest: Some(newest),
        }
    }

    /// The checkpoint assembled from `resumed` positions, `reported` positions (each at a time)
    /// and one mark at `mark`.
    fn checkpoint_after(
        resumed: &[PartitionPosition],
        reported: &[(Time, PartitionPosition)],
        mark: Time,
    ) -> Checkpoint {
        let resumed: BTreeMap<_, _> = resumed
            .iter()
            .map(|p| (p.partition.clone(), p.clone()))
            .collect();
        let reported = reported.to_vec();
        timely::execute_directly(move |worker| {
            let complete: Rc<RefCell<VecDeque<Checkpoint>>> = Rc::default();
            let probe = ProbeHandle::new();
            let (mut positions, mut marks, mut states) = worker.dataflow::<Time, _, _>(|scope| {
                let (positions, position_stream) = scope.new_input::<Vec<PartitionPosition>>();
                let (marks, mark_stream) = scope.new_input::<Vec<Time>>();
                let (states, state_stream) = scope.new_input::<Vec<Checkpointed>>();
                let position_stream = position_stream.probe_with(&probe);
                gather_checkpoints(
                    position_stream,
                    mark_stream,
                    state_stream,
                    resumed.clone(),
                    complete.clone(),
                );
                (positions, marks, states)
            });
            let mut times: Vec<Time> = reported.iter().map(|(t, _)| *t).chain([mark]).collect();
            times.sort();
            times.dedup();
            for time in times {
                positions.advance_to(time);
                marks.advance_to(time);
                states.advance_to(time);
                for (_, p) in reported.iter().filter(|(t, _)| *t == time) {
                    positions.send(p.clone());
                }
                if time == mark {
                    marks.send(mark);
                }
            }
            drop((positions, marks, states));
            while worker.step() {}
            let checkpoint = complete.borrow_mut().pop_back();
            checkpoint.expect("a checkpoint at the mark")
        })
    }

    #[test]
    fn a_checkpoint_holds_the_positions_reported_before_its_mark() {
        let checkpoint = checkpoint_after(
            &[],
            &[(10, position(0, 5, 100)), (20, position(0, 9, 200))],
            20,
        );
        assert_eq!(checkpoint.time, 20);
        // The position at the mark's own time covers effects at 20: not yet in.
        assert_eq!(
            checkpoint.positions.values().cloned().collect::<Vec<_>>(),
            vec![position(0, 5, 100)]
        );
    }

    #[test]
    fn a_resumed_partition_that_reports_nothing_keeps_its_position() {
        // Resumed with partitions 0 and 1; only 0 reports before the mark, 1 only at it.
        let checkpoint = checkpoint_after(
            &[position(0, 100, 1_000), position(1, 200, 2_000)],
            &[(30, position(0, 104, 1_500)), (40, position(1, 205, 2_500))],
            40,
        );
        assert_eq!(
            checkpoint.positions.values().cloned().collect::<Vec<_>>(),
            vec![position(0, 104, 1_500), position(1, 200, 2_000)]
        );
    }

    #[test]
    fn a_mark_takes_the_positions_applied_before_its_time_and_positions_never_go_back() {
        let mut applied = BTreeMap::new();
        // Time 10: partition 0 at 5.
        assert!(apply_time::<Checkpointed>(
            &mut applied,
            10,
            vec![Part::Position(position(0, 5, 50))]
        )
        .is_none());
        // Time 20: marked, with one state record and an older report of partition 0 (at 3).
        let record = Checkpointed::Temperature {
            room: "a".into(),
            ts: 1,
            value: roomflow_dataflows::Fixed(0),
        };
        let checkpoint = apply_time(
            &mut applied,
            20,
            vec![
                Part::Mark,
                Part::Position(position(0, 3, 30)),
                Part::State(record.clone()),
            ],
        )
        .expect("marked");
        assert_eq!(checkpoint.time, 20);
        assert_eq!(
            checkpoint.positions.values().cloned().collect::<Vec<_>>(),
            vec![position(0, 5, 50)]
        );
        assert_eq!(checkpoint.state, vec![record]);
        // The older report did not move partition 0 back.
        assert_eq!(
            applied.values().cloned().collect::<Vec<_>>(),
            vec![position(0, 5, 50)]
        );
    }
}
