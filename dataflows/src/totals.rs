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
//! Memory: the updates of a time not yet complete are held added up per key, as they arrive. The
//! windows' expiries are such updates, a negation per window and batch, held until the window
//! expires: held one per update, they were 600 MB of a 1.4 GB replay of 100,000 rooms. Then each
//! key's total is looked up once per time, and a time's changes go out in chunks.
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
use std::collections::BTreeMap;
use std::hash::Hash;

use differential_dataflow::difference::Semigroup;
use differential_dataflow::hashable::Hashable;
use differential_dataflow::ExchangeData;
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use crate::horizon::Time;
use crate::sized::GiveSized;

/// The most changes gathered before they go out.
const CHUNK: usize = 1 << 14;

/// A held time's updates, added up per key, are kept for reuse below this many keys (a larger map
/// is dropped: it would hold its memory for good after one large time).
const REUSED_KEYS: usize = 1 << 16;

/// How many emptied maps are kept for reuse: one per time usually held at once (the time being
/// filled and the windows' expiries ahead of it), so that a new time does not grow a map again.
const SPARE_MAPS: usize = 4;

/// Per key, the running total of `updates` (keys routed to workers by their hash): at each time,
/// the changes of the collection of `(key, total)` with a total that is not zero.
pub fn running_totals<'s, K, R>(
    updates: StreamVec<'s, Time, (K, Time, R)>,
) -> StreamVec<'s, Time, ((K, R), Time, isize)>
where
    K: ExchangeData + Hash,
    R: Semigroup + PartialEq + timely::ExchangeData,
{
    running_totals_in_chunks(updates, CHUNK)
}

fn running_totals_in_chunks<'s, K, R>(
    updates: StreamVec<'s, Time, (K, Time, R)>,
    chunk: usize,
) -> StreamVec<'s, Time, ((K, R), Time, isize)>
where
    K: ExchangeData + Hash,
    R: Semigroup + PartialEq + timely::ExchangeData,
{
    let route = Exchange::new(|(key, _, _): &(K, Time, R)| key.hashed());
    updates.unary_frontier(route, "RunningTotals", move |_, _| {
        // The updates of each time not complete yet, added up per key as they arrive: a key
        // updated many times before its time completes (a window's expiry, a negation per batch)
        // is held once.
        let mut pending: BTreeMap<Time, (Capability<Time>, FxHashMap<K, R>)> = BTreeMap::new();
        let mut spare: Vec<FxHashMap<K, R>> = Vec::new();
        let mut totals: FxHashMap<K, R> = FxHashMap::default();
        let mut changes = Vec::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|cap, containers| {
                for container in containers {
                    for (key, time, diff) in container.drain(..) {
                        let (_, held) = pending.entry(time).or_insert_with(|| {
                            (cap.delayed(&time, 0), spare.pop().unwrap_or_default())
                        });
                        match held.entry(key) {
                            Entry::Occupied(mut slot) => slot.get_mut().plus_equals(&diff),
                            Entry::Vacant(slot) => {
                                slot.insert(diff);
                            }
                        }
                    }
                }
            });
            let complete_before = frontier.frontier().first().copied();
            while let Some(entry) = pending.first_entry() {
                if complete_before.is_some_and(|frontier| frontier <= *entry.key()) {
                    break;
                }
                let (time, (capability, mut updates)) = entry.remove_entry();
                // Each key once, its time's updates added up: one lookup, one change.
                for (key, diff) in updates.drain() {
                    if diff.is_zero() {
                        continue;
                    }
                    match totals.entry(key) {
                        Entry::Occupied(mut slot) => {
                            let old = slot.get().clone();
                            slot.get_mut().plus_equals(&diff);
                            changes.push(((slot.key().clone(), old), time, -1));
                            if slot.get().is_zero() {
                                slot.remove();
                            } else {
                                let total = slot.get().clone();
                                changes.push(((slot.key().clone(), total), time, 1));
                            }
                        }
                        Entry::Vacant(slot) => {
                            changes.push(((slot.key().clone(), diff.clone()), time, 1));
                            slot.insert(diff);
                        }
                    }
                    if changes.len() >= chunk {
                        output.session(&capability).give_sized(changes.drain(..));
                    }
                }
                output.session(&capability).give_sized(changes.drain(..));
                if updates.capacity() <= REUSED_KEYS && spare.len() < SPARE_MAPS {
                    spare.push(updates);
                }
            }
        }
    })
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

    /// The consolidated changes of `running_totals` (in chunks of `ours`) or of `count_total`
    /// (`None`) over `updates`, each sent at its time or, `ahead`, all while the input is at
    /// time 0.
    fn totals_of(
        updates: &[(u8, Time, isize)],
        ours: Option<usize>,
        ahead: bool,
    ) -> Vec<((u8, isize), Time, isize)> {
        let mut by_time = updates.to_vec();
        by_time.sort_by_key(|(_, time, _)| *time);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        timely::execute_directly(move |worker| {
            let mut input = worker.dataflow::<Time, _, _>(|scope| {
                let (input, collection) = scope.new_collection::<u8, isize>();
                let changes = match ours {
                    Some(chunk) => running_totals_in_chunks(collection.inner, chunk),
                    None => collection.count_total().inner,
                };
                changes.sink(Pipeline, "Collect", move |(input, _)| {
                    input.for_each(|_, data| sink.lock().unwrap().extend(data.drain(..)));
                });
                input
            });
            for (key, time, diff) in by_time {
                // Ahead, each time's updates are held until the end (as a window's expiry is),
                // then applied in time order.
                if !ahead {
                    input.advance_to(time);
                }
                input.update_at(key, time, diff);
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
        let expected = totals_of(&updates, None, false);
        assert!(expected.len() > 500, "{}", expected.len());
        assert!(expected.iter().any(|(_, _, diff)| *diff < 0));
        for ahead in [false, true] {
            assert_eq!(totals_of(&updates, None, ahead), expected);
            assert_eq!(totals_of(&updates, Some(CHUNK), ahead), expected);
            // Changes out two at a time.
            assert_eq!(totals_of(&updates, Some(2), ahead), expected);
        }
    }
}
