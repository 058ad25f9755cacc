//! `combine`: adds up, per (key, time), the updates that one worker has in hand before they are
//! exchanged and arranged (a combiner, as in map-reduce).
//!
//! Arranging sorts every update it receives. Readings explode into one update per reading, but
//! what the aggregates need is one update per key and time: combining each batch in a hash map
//! first cuts the updates the arrangements sort by the number of readings per key and tick, and
//! the retractions that seal a window by the number of readings in the window.

use std::collections::hash_map::Entry;
use std::collections::BTreeMap;
use std::hash::Hash;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::{AsCollection, Data, VecCollection};
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

use crate::horizon::Time;

/// The same collection, with the updates of each batch added up per (record, time).
pub fn combine<'s, D, R>(updates: VecCollection<'s, Time, D, R>) -> VecCollection<'s, Time, D, R>
where
    D: Data + Hash,
    R: Semigroup + 'static,
{
    updates
        .inner
        .unary(Pipeline, "Combine", |_, _| {
            let mut totals: FxHashMap<(D, Time), R> = FxHashMap::default();
            let mut capabilities: BTreeMap<Time, Capability<Time>> = BTreeMap::new();
            let mut by_time: BTreeMap<Time, Vec<(D, Time, R)>> = BTreeMap::new();
            move |input, output| {
                input.for_each_stamp(|cap, containers| {
                    for container in containers {
                        for (data, time, diff) in container.drain(..) {
                            capabilities
                                .entry(time)
                                .or_insert_with(|| cap.delayed(&time, 0));
                            match totals.entry((data, time)) {
                                Entry::Occupied(mut total) => total.get_mut().plus_equals(&diff),
                                Entry::Vacant(slot) => {
                                    slot.insert(diff);
                                }
                            }
                        }
                    }
                });
                for ((data, time), diff) in totals.drain() {
                    if !diff.is_zero() {
                        by_time.entry(time).or_default().push((data, time, diff));
                    }
                }
                for (time, mut updates) in std::mem::take(&mut by_time) {
                    output
                        .session(&capabilities[&time])
                        .give_container(&mut updates);
                }
                capabilities.clear();
            }
        })
        .as_collection()
}
