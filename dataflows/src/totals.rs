//! `running_totals`: per key, the running total of its updates, as the collection of
//! `(key, total)` for every key whose total is not zero: what differential's `count_total`
//! computes, kept in one hash map per worker instead of an arrangement.
//!
//! An arrangement keeps every batch of updates sorted, merges batches into a trace, and walks the
//! trace with cursors, so that other operators can share it and so that partially ordered times
//! work. The aggregates here need none of that: dataflow times are totally ordered and nothing
//! shares the trace, so a time's totals follow from the previous totals and that time's updates.
//! The arrangement's sorting, merging and cursors were a sixth of a replay's cycles; this is a
//! hash-map update per update, and one more lookup per key that changed at the time.
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
    R: Semigroup + PartialEq + timely::ExchangeData,
{
    let route = Exchange::new(|(key, _, _): &(K, Time, R)| key.hashed());
    updates.unary_frontier(route, "RunningTotals", |_, _| {
        let mut pending: HeldByTime<(K, R), Capability<Time>> = HeldByTime::default();
        let mut totals: FxHashMap<K, Running<R>> = FxHashMap::default();
        // Keys touched at the time being applied, each once.
        let mut touched: Vec<K> = Vec::new();
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
                // Add every update to its key's total, remembering each key's total before the
                // time; then one change per key touched. (Consolidating the time's updates first
                // meant sorting them, which cost more than the second lookup.)
                for (key, diff) in updates.drain(..) {
                    match totals.entry(key) {
                        Entry::Occupied(mut slot) => {
                            let running = slot.get_mut();
                            if let Before::Untouched = running.before {
                                running.before = Before::Was(running.total.clone());
                                touched.push(slot.key().clone());
                            }
                            slot.get_mut().total.plus_equals(&diff);
                        }
                        Entry::Vacant(slot) => {
                            touched.push(slot.key().clone());
                            slot.insert(Running {
                                total: diff,
                                before: Before::Absent,
                            });
                        }
                    }
                }
                pending.recycle(updates);
                for key in touched.drain(..) {
                    let Entry::Occupied(mut slot) = totals.entry(key) else {
                        unreachable!("a touched key has a total until its changes are out")
                    };
                    let running = slot.get_mut();
                    match std::mem::replace(&mut running.before, Before::Untouched) {
                        Before::Was(old) if old == running.total => continue,
                        Before::Was(old) => changes.push(((slot.key().clone(), old), time, -1)),
                        Before::Absent | Before::Untouched => {}
                    }
                    if slot.get().total.is_zero() {
                        slot.remove();
                    } else {
                        let total = slot.get().total.clone();
                        changes.push(((slot.key().clone(), total), time, 1));
                    }
                }
                output.session(&capability).give_sized(changes.drain(..));
            }
        }
    })
}

/// A key's total, and what it was before the time being applied.
struct Running<R> {
    total: R,
    before: Before<R>,
}

/// A key's total before the time being applied.
enum Before<R> {
    /// Not touched at this time (yet).
    Untouched,
    /// The key had no total (it was zero).
    Absent,
    /// The key's total.
    Was(R),
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
