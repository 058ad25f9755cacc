//! Assembling checkpoints on worker 0.
//!
//! Three streams arrive, all routed to worker 0: partition positions (each at the time of the
//! effects of the messages it covers), marks (a checkpoint is wanted at that time), and the
//! state parts every worker emits at a mark's time. Times are handled in order once complete:
//! at a mark's time `T` the checkpoint is the positions applied so far (all at times before
//! `T`) and the parts at `T`; then the positions at `T` are applied.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use roomflow_dataflows::{Checkpointed, Time};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::Stream;

use super::checkpoint::{Checkpoint, PartitionPosition};
use crate::kafka::discovery::Partition;

/// What the gatherer receives.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Part {
    Position(PartitionPosition),
    Mark,
    State(Checkpointed),
}

/// What one time brought.
#[derive(Default)]
struct AtTime {
    positions: Vec<PartitionPosition>,
    marked: bool,
    state: Vec<Checkpointed>,
}

/// Assembles a checkpoint at each mark; the newest complete one is left in `complete`.
pub fn gather_checkpoints<'s>(
    positions: Stream<'s, Time, Vec<PartitionPosition>>,
    marks: Stream<'s, Time, Vec<Time>>,
    state: Stream<'s, Time, Vec<Checkpointed>>,
    complete: Rc<RefCell<Option<Checkpoint>>>,
) {
    let scope = positions.scope();
    let parts = scope.concatenate(vec![
        positions.map(Part::Position),
        marks.map(|_| Part::Mark),
        state.map(Part::State),
    ]);
    let mut pending: BTreeMap<Time, AtTime> = BTreeMap::new();
    let mut applied: BTreeMap<Partition, PartitionPosition> = BTreeMap::new();
    parts.sink(
        Exchange::new(|_: &Part| 0),
        "GatherCheckpoints",
        move |(input, frontier)| {
            input.for_each_stamp(|stamp, data| {
                let time = *stamp.least().expect("a message has a time");
                let at = pending.entry(time).or_default();
                for container in data {
                    for part in container.drain(..) {
                        match part {
                            Part::Position(position) => at.positions.push(position),
                            Part::Mark => at.marked = true,
                            Part::State(record) => at.state.push(record),
                        }
                    }
                }
            });
            let frontier = frontier.frontier().first().copied();
            while let Some(entry) = pending.first_entry() {
                if frontier.is_some_and(|f| *entry.key() >= f) {
                    break;
                }
                let (time, at) = entry.remove_entry();
                if at.marked {
                    tracing::debug!(time, records = at.state.len(), "checkpoint assembled");
                    *complete.borrow_mut() = Some(Checkpoint {
                        time,
                        positions: applied.clone(),
                        state: at.state,
                    });
                }
                for position in at.positions {
                    let newer = applied
                        .get(&position.partition)
                        .is_none_or(|known| known.next <= position.next);
                    if newer {
                        applied.insert(position.partition.clone(), position);
                    }
                }
            }
        },
    );
}
