//! `combine`: explodes records into keyed contributions and adds them up, per (key, time), on the
//! worker that has them, before they are exchanged and accumulated (a combiner, as in
//! map-reduce).
//!
//! Readings explode into one update per reading, but what the aggregates need is one update per
//! key and time: combining each batch in a hash map first cuts the updates that are exchanged,
//! held by time and accumulated by the number of readings per key and tick, and the retractions
//! that seal a window by the number of readings in the window.

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
use crate::sized::GiveSized;

/// The contributions `explode` makes of each record, added up per (key, time) over each batch:
/// what `records.explode(explode)` is, with the updates of one batch already consolidated.
pub fn combine<'s, D, K, R, I, F>(
    records: VecCollection<'s, Time, D>,
    mut explode: F,
) -> VecCollection<'s, Time, K, R>
where
    D: Data,
    K: Data + Hash,
    R: Semigroup + 'static,
    I: IntoIterator<Item = (K, R)>,
    F: FnMut(D) -> I + 'static,
{
    records
        .inner
        .unary(Pipeline, "Combine", |_, _| {
            let mut totals: FxHashMap<(K, Time), R> = FxHashMap::default();
            let mut capabilities: BTreeMap<Time, Capability<Time>> = BTreeMap::new();
            let mut by_time: BTreeMap<Time, Vec<(K, Time, R)>> = BTreeMap::new();
            move |input, output| {
                input.for_each_stamp(|cap, containers| {
                    // Records come in runs of one time: one capability lookup per run.
                    let mut run_time = None;
                    for container in containers {
                        for (record, time, multiplicity) in container.drain(..) {
                            // Only inserted records (readings) come here.
                            debug_assert_eq!(multiplicity, 1, "combine takes inserted records");
                            if run_time != Some(time) {
                                capabilities
                                    .entry(time)
                                    .or_insert_with(|| cap.delayed(&time, 0));
                                run_time = Some(time);
                            }
                            for (key, diff) in explode(record) {
                                match totals.entry((key, time)) {
                                    Entry::Occupied(mut total) => {
                                        total.get_mut().plus_equals(&diff)
                                    }
                                    Entry::Vacant(slot) => {
                                        slot.insert(diff);
                                    }
                                }
                            }
                        }
                    }
                });
                for ((key, time), diff) in totals.drain() {
                    if !diff.is_zero() {
                        by_time.entry(time).or_default().push((key, time, diff));
                    }
                }
                // In chunks of timely's usual size: a whole batch in one container would be a
                // huge allocation, fresh from the OS every time.
                for (time, updates) in std::mem::take(&mut by_time) {
                    output
                        .session(&capabilities[&time])
                        .give_sized(updates.into_iter());
                }
                capabilities.clear();
            }
        })
        .as_collection()
}
