//! The exactly-once sink (see the protocol in `mod.rs`): every worker routes its changes, rejected
//! input and marks to worker 0, whose operator holds what it receives by time and produces whole
//! times in order into the open transaction, until it reaches a time that has a mark: there it
//! stops (the *barrier*) until the worker loop (`commit.rs`) has committed the transaction with
//! the mark's checkpoint and begun the next one.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use roomflow_dataflows::sized::MapSized;
use roomflow_dataflows::{Change, HeldByTime, Time};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::Stream;
use timely::scheduling::Activator;

use crate::kafka::sink::{
    produce_change, produce_dead_letter, AlphaProducer, Deliveries, SinkState, SinkTopics,
};
use crate::streams::{ChangeStream, Rejected, RejectedStream};

/// What the transactional sink shares with the worker loop.
pub struct TransactionState {
    /// Counts and the sink's input frontier, as the at-least-once sink keeps them.
    pub sink: SinkState,
    /// A mark the sink has reached and not produced past: its transaction awaits its commit.
    barrier: Option<Time>,
    /// Every output before this time is committed.
    committed: Time,
    /// Mark times received and not yet passed.
    marks: BTreeSet<Time>,
    /// Whether anything is held back.
    holding: bool,
    /// The greatest time produced at.
    pub newest_produced: Option<Time>,
    /// Wakes the sink once a commit lets it go on.
    activator: Option<Activator>,
}

impl TransactionState {
    /// The state of a sink whose output starts at `start`.
    pub fn starting_at(start: Time) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(TransactionState {
            sink: SinkState::starting_at(start),
            barrier: None,
            committed: start,
            marks: BTreeSet::new(),
            holding: false,
            newest_produced: None,
            activator: None,
        }))
    }

    /// The mark the sink waits at for its transaction's commit.
    pub fn barrier(&self) -> Option<Time> {
        self.barrier
    }

    /// The sink has produced everything before the mark `mark` and waits there for its
    /// transaction's commit.
    pub(crate) fn wait_at(&mut self, mark: Time) {
        if self.barrier.is_none() {
            tracing::debug!(time = mark, "alpha waits for its mark's transaction");
            self.barrier = Some(mark);
        }
    }

    /// The transaction of the `barrier` mark is committed: the sink goes on past it.
    pub fn committed_through(&mut self, barrier: Time) {
        self.committed = barrier;
        self.barrier = None;
        self.marks.remove(&barrier);
        if let Some(activator) = &self.activator {
            activator.activate();
        }
    }

    /// Every output before the returned time is produced (into a transaction that commits at
    /// the next mark): the barrier while the sink waits at one, else its input frontier; `None`
    /// once the input is complete and everything is committed. Sources keep within reach of it.
    pub fn acked(&self) -> Option<Time> {
        let done = self.sink.frontier.is_none() && !self.holding && self.barrier.is_none();
        if done {
            return None;
        }
        self.barrier.or(self.sink.frontier).or(Some(self.committed))
    }
}

/// What the sink receives, routed to the first worker.
///
/// Changes travel and wait typed, and are encoded as they are produced: a time is held until it
/// is complete, and while a portfolio catches up a time holds a million changes (100,000 rooms:
/// 800 MB held as encoded keys and envelopes, 64 bytes each typed).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Outgoing {
    Change(Change),
    /// Boxed: a rejected input is rare, and its strings would make every held change as large.
    Rejected(Box<Rejected>),
    Mark,
}

/// The transactional sink: every worker sends its changes, rejected input and marks to worker 0,
/// whose `producer` writes them (other workers pass `None`).
pub fn transactional_sink<'s>(
    changes: ChangeStream<'s>,
    rejected: RejectedStream<'s>,
    marks: Stream<'s, Time, Vec<Time>>,
    producer: Option<(Arc<AlphaProducer>, Arc<Deliveries>)>,
    topics: SinkTopics,
    state: Rc<RefCell<TransactionState>>,
) {
    let scope = changes.scope();
    let streams = vec![
        changes.map_sized(Outgoing::Change),
        rejected.map_sized(|rejected| Outgoing::Rejected(Box::new(rejected))),
        marks.map_sized(|_| Outgoing::Mark),
    ];
    let mut held: HeldByTime<Outgoing> = HeldByTime::default();
    // A change's message key and envelope, encoded into the same buffers each time.
    let (mut key, mut line) = (Vec::new(), Vec::new());
    // The worker loop wakes the sink after a commit.
    let activator_slot = state.clone();
    scope
        .concatenate(streams)
        .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Exchange::new(|_: &Outgoing| 0),
            "TransactionalSink",
            move |capability, info| {
                // Held until everything is committed: an operator without capabilities whose input
                // is complete is retired, and this one must still run after the last commits.
                let mut alive = Some(capability);
                activator_slot.borrow_mut().activator = Some(scope.activator_for(info.address));
                move |(input, frontier), _output| {
                    let mut state = state.borrow_mut();
                    input.for_each_stamp(|stamp, data| {
                        let time = *stamp.least().expect("a message has a time");
                        let at = held.entry(time);
                        for container in data {
                            for outgoing in container.drain(..) {
                                if matches!(outgoing, Outgoing::Mark) {
                                    state.marks.insert(time);
                                } else {
                                    at.push(outgoing);
                                }
                            }
                        }
                    });
                    let frontier = frontier.frontier().first().copied();
                    state.sink.frontier = frontier;
                    let Some((producer, deliveries)) = &producer else {
                        // Other workers only route: nothing to wait for once their input ends.
                        if frontier.is_none() {
                            drop(alive.take());
                        }
                        return;
                    };
                    while let Some(time) = held.first_time() {
                        if frontier.is_some_and(|frontier| frontier <= time) {
                            break;
                        }
                        // A mark at `time`: everything before it is produced; its commit comes first.
                        if state.marks.first() == Some(&time) {
                            state.wait_at(time);
                            break;
                        }
                        let (_, (), items) = held.pop_complete(frontier).expect("complete");
                        for item in items {
                            match item {
                                Outgoing::Change(change) => {
                                    change.write_message(&mut key, &mut line);
                                    produce_change(
                                        producer, deliveries, &topics, time, &key, &line,
                                    );
                                    state.sink.changes += 1;
                                    state.sink.count_change(change.collection());
                                }
                                Outgoing::Rejected(rejected) => {
                                    if produce_dead_letter(
                                        producer, deliveries, &topics, time, &rejected,
                                    ) {
                                        state.sink.dead_letters += 1;
                                    }
                                }
                                Outgoing::Mark => unreachable!("marks are not held"),
                            }
                        }
                        state.newest_produced = Some(time);
                    }
                    state.holding = !held.is_empty() || !state.marks.is_empty();
                    if frontier.is_none() && !state.holding {
                        drop(alive.take());
                    }
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_change_is_as_small_as_the_change() {
        // A catching-up portfolio holds a million of them per time (see `Outgoing`).
        assert!(std::mem::size_of::<Change>() <= 64);
        assert_eq!(
            std::mem::size_of::<Outgoing>(),
            std::mem::size_of::<Change>()
        );
    }
}
