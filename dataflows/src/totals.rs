//! `running_totals`: per key, the running total of its updates, as the collection of
//! `(key, total)` for every key whose total is not zero: what differential's `count_total`
//! computes, kept in one hash map per worker instead of an arrangement.
//!
//! An arrangement keeps every batch of updates sorted, merges batches into a trace, and walks the
//! trace with cursors, so that other operators can share it and so that partially ordered times
//! work. The aggregates here need none of that: dataflow times are totally ordered and nothing
//! shares the trace, so a time's totals follow from the previous totals and that time's updates.
//! The arrangement's sorting, merging and cursors were a sixth of a replay's cycles; this is one
//! hash-map update per key and time.
//!
//! The output is exactly `count_total`'s: at each time, for each key whose total changed, the old
//! `(key, total)` retracted (unless it was zero) and the new one inserted (unless it is zero).
//!
//! ```
//! use roomflow_dataflows::totals::running_totals;
//! use timely::dataflow::operators::{Capture, ToStream};
//! use timely::dataflow::operators::capture::Extract;
//!
//! let captured = timely::example(|scope| {
//!     let updates = vec![('a', 0u64, 2isize), ('a', 1, 3), ('b', 1, 1), ('a', 2, -5)];
//!     running_totals(updates.to_stream(scope)).capture()
//! });
//! let mut changes: Vec<_> = captured.extract().into_iter().flat_map(|(_, data)| data).collect();
//! changes.sort_by_key(|&(_, time, _)| time);
//! assert_eq!(&changes[..1], [(('a', 2), 0, 1)]);
//! // At time 1, a goes from 2 to 5 and b appears; at time 2, a's total is zero: it is gone.
//! let mut at_one = changes[1..4].to_vec();
//! at_one.sort();
//! assert_eq!(at_one, [(('a', 2), 1, -1), (('a', 5), 1, 1), (('b', 1), 1, 1)]);
//! assert_eq!(&changes[4..], [(('a', 5), 2, -1)]);
//! ```

use std::collections::hash_map::Entry;
use std::hash::Hash;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::hashable::Hashable;
use differential_dataflow::ExchangeData;
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use crate::held::HeldByTime;
use crate::horizon::Time;
use crate::sized::GiveSized;

/// Per key, the running total of `updates` (keys routed to workers by their hash): at each time,
/// the changes of the collection of `(key, total)` with a total that is not zero.
pub fn running_totals<'s, K, R>(
    updates: StreamVec<'s, Time, (K, Time, R)>,
) -> StreamVec<'s, Time, ((K, R), Time, isize)>
where
    K: ExchangeData + Hash,
    R: Semigroup + timely::ExchangeData,
{
    let route = Exchange::new(|(key, _, _): &(K, Time, R)| key.hashed());
    updates.unary_frontier(route, "RunningTotals", |_, _| {
        let mut pending: HeldByTime<(K, R), Capability<Time>> = HeldByTime::default();
        let mut totals: FxHashMap<K, R> = FxHashMap::default();
        let mut changes = Vec::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|cap, containers| {
                for container in containers {
                    for (key, time, diff) in container.drain(..) {
                        pending
                            .entry_with(time, || cap.delayed(&time, 0))
                            .push((key, diff));
                    }
                }
            });
            let complete_before = frontier.frontier().first().copied();
            while let Some((time, capability, mut updates)) = pending.pop_complete(complete_before)
            {
                // One update per key (and none that adds nothing), so each key changes once.
                consolidate_unstable(&mut updates);
                for (key, diff) in updates.drain(..) {
                    match totals.entry(key) {
                        Entry::Occupied(mut total) => {
                            changes.push(((total.key().clone(), total.get().clone()), time, -1));
                            total.get_mut().plus_equals(&diff);
                            if total.get().is_zero() {
                                total.remove();
                            } else {
                                changes.push(((total.key().clone(), total.get().clone()), time, 1));
                            }
                        }
                        Entry::Vacant(slot) => {
                            changes.push(((slot.key().clone(), diff.clone()), time, 1));
                            slot.insert(diff);
                        }
                    }
                }
                pending.recycle(updates);
                output.session(&capability).give_sized(changes.drain(..));
            }
        }
    })
}

/// Adds up the updates of each key and drops those that add nothing, in no particular order:
/// differential's `consolidate` sorts stably, through a scratch buffer the size of the updates.
fn consolidate_unstable<K: Ord, R: Semigroup>(updates: &mut Vec<(K, R)>) {
    updates.sort_unstable_by(|x, y| x.0.cmp(&y.0));
    updates.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            earlier.1.plus_equals(&later.1);
        }
        same
    });
    updates.retain(|(_, diff)| !diff.is_zero());
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use differential_dataflow::input::Input;
    use differential_dataflow::operators::CountTotal;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use timely::dataflow::channels::pact::Pipeline;

    use super::*;

    /// The consolidated changes of `running_totals` (`ours`) or of `count_total` over `updates`.
    fn totals_of(updates: &[(u8, Time, isize)], ours: bool) -> Vec<((u8, isize), Time, isize)> {
        let mut by_time = updates.to_vec();
        by_time.sort_by_key(|(_, time, _)| *time);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        timely::execute_directly(move |worker| {
            let mut input = worker.dataflow::<Time, _, _>(|scope| {
                let (input, collection) = scope.new_collection::<u8, isize>();
                let changes = if ours {
                    running_totals(collection.inner)
                } else {
                    collection.count_total().inner
                };
                changes.sink(Pipeline, "Collect", move |(input, _)| {
                    input.for_each(|_, data| sink.lock().unwrap().extend(data.drain(..)));
                });
                input
            });
            for (key, time, diff) in by_time {
                input.advance_to(time);
                input.update(key, diff);
            }
        });
        let mut changes = seen.lock().unwrap().clone();
        differential_dataflow::consolidation::consolidate_updates(&mut changes);
        changes
    }

    /// Random updates of a few keys over a few times, totals going to zero and back included:
    /// time for time the changes differential's `count_total` gives.
    #[test]
    fn the_same_changes_as_count_total() {
        let mut rng = SmallRng::seed_from_u64(11);
        let updates: Vec<(u8, Time, isize)> = (0..2_000)
            .map(|_| {
                (
                    rng.gen_range(0..20u8),
                    rng.gen_range(0..50),
                    rng.gen_range(-3..=3),
                )
            })
            .collect();
        let expected = totals_of(&updates, false);
        assert!(expected.len() > 500, "{}", expected.len());
        assert!(expected.iter().any(|(_, _, diff)| *diff < 0));
        assert_eq!(totals_of(&updates, true), expected);
    }
}
