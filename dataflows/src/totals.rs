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
//! Memory: the updates of a time not yet complete are held as they arrive while they are few, and
//! added up per key once many (`LISTED`). The windows' expiries are such updates, a negation
//! per window and batch, held until the window expires: held one per update, they were 600 MB of
//! a 1.4 GB replay of 100,000 rooms. A time with many updates is applied a chunk of keys per
//! activation, the operator activating itself again for the rest: applied at once, all of a
//! tick's changes were in flight at the same time (800,000 changes, 210 MB in channel containers
//! of this operator and the partitions after it, at 100,000 rooms), where now a chunk is. A time
//! of many keys that finds no totals yet (a replay's or a catch-up's first) does not fill a second
//! map: its held map, of the totals' entry type, becomes the totals.
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

/// A held time's updates are listed as they come up to this many; beyond, they are added up per
/// key in a map. A list costs a push per update and a lookup when applied; a map a lookup on
/// arrival too (18 % of a replay of 1,000 rooms), but holds each key once: a replay of 100,000
/// rooms inside one tick held 600 MB of listed updates (the windows' expiry negations, one per
/// window and batch).
const LISTED: usize = 1 << 16;

/// Per key, the running total of `updates` (keys routed to workers by their hash): at each time,
/// the changes of the collection of `(key, total)` with a total that is not zero.
pub fn running_totals<'s, K, R>(
    updates: StreamVec<'s, Time, (K, Time, R)>,
) -> StreamVec<'s, Time, ((K, R), Time, isize)>
where
    K: ExchangeData + Hash,
    R: Semigroup + PartialEq + timely::ExchangeData,
{
    running_totals_within(updates, LISTED, CHUNK)
}

fn running_totals_within<'s, K, R>(
    updates: StreamVec<'s, Time, (K, Time, R)>,
    listed: usize,
    chunk: usize,
) -> StreamVec<'s, Time, ((K, R), Time, isize)>
where
    K: ExchangeData + Hash,
    R: Semigroup + PartialEq + timely::ExchangeData,
{
    let route = Exchange::new(|(key, _, _): &(K, Time, R)| key.hashed());
    let scope = updates.scope();
    updates.unary_frontier(route, "RunningTotals", move |_, info| {
        let activator = scope.activator_for(info.address);
        let mut pending: BTreeMap<Time, (Capability<Time>, Held<K, R>)> = BTreeMap::new();
        let mut applying: Option<Applying<K, R>> = None;
        let mut totals = Totals::default();
        let mut changes = Vec::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|cap, containers| {
                for container in containers {
                    for (key, time, diff) in container.drain(..) {
                        let (_, held) = pending
                            .entry(time)
                            .or_insert_with(|| (cap.delayed(&time, 0), Held::default()));
                        held.push(key, diff, listed);
                    }
                }
            });
            let complete_before = frontier.frontier().first().copied();
            loop {
                if let Some(time) = applying.as_mut() {
                    let mut emit = |change, diff| {
                        changes.push((change, time.time, diff));
                        if changes.len() >= chunk {
                            output
                                .session(&time.capability)
                                .give_sized(changes.drain(..));
                        }
                    };
                    let done = match &mut time.rest {
                        Rest::Summed(rest) => totals.apply_summed(rest, chunk, &mut emit),
                        Rest::Moved { emitted } => totals.emit_moved(emitted, chunk, &mut emit),
                    };
                    output
                        .session(&time.capability)
                        .give_sized(changes.drain(..));
                    if !done {
                        // The rest on the next activation, after the operators downstream
                        // took these changes: a time's changes are never all in flight at once.
                        activator.activate();
                        return;
                    }
                    applying = None;
                }
                let Some(entry) = pending.first_entry() else {
                    break;
                };
                if complete_before.is_some_and(|frontier| frontier <= *entry.key()) {
                    break;
                }
                let (time, (capability, held)) = entry.remove_entry();
                match held {
                    Held::Listed(updates) => {
                        let mut emit = |change, diff| changes.push((change, time, diff));
                        totals.apply_listed(updates, &mut emit);
                        output.session(&capability).give_sized(changes.drain(..));
                    }
                    Held::Summed(updates) => {
                        totals.applied += 1;
                        let rest = if totals.totals.is_empty() {
                            // Every key is new (a replay's or a catch-up's first time): the held
                            // map becomes the totals, rather than filling a second map as large
                            // (two maps of 8M keys, and the totals' resize, were 2.7 GB of a
                            // replay of 1,000,000 rooms).
                            totals.totals = updates;
                            totals.totals.retain(|_, running| !running.total.is_zero());
                            Rest::Moved { emitted: 0 }
                        } else {
                            Rest::Summed(updates.into_iter())
                        };
                        applying = Some(Applying {
                            time,
                            capability,
                            rest,
                        });
                    }
                }
            }
        }
    })
}

/// A complete time whose updates, added up per key, are being applied a chunk per activation.
struct Applying<K, R> {
    time: Time,
    capability: Capability<Time>,
    rest: Rest<K, R>,
}

/// What is left of a time being applied.
enum Rest<K, R> {
    /// Its updates not applied yet.
    Summed(std::collections::hash_map::IntoIter<K, Running<R>>),
    /// Its updates became the totals (there were none before): the first `emitted` of them, in
    /// the map's order, are out as changes.
    Moved { emitted: usize },
}

/// A time's held updates.
enum Held<K, R> {
    /// As they came.
    Listed(Vec<(K, R)>),
    /// Added up per key, once there were many (as the totals keep them: see `Rest::Moved`).
    Summed(FxHashMap<K, Running<R>>),
}

impl<K, R> Default for Held<K, R> {
    fn default() -> Self {
        Held::Listed(Vec::new())
    }
}

impl<K: Hash + Eq, R: Semigroup> Held<K, R> {
    fn push(&mut self, key: K, diff: R, listed: usize) {
        match self {
            Held::Listed(list) => {
                list.push((key, diff));
                if list.len() > listed {
                    let mut summed = FxHashMap::default();
                    for (key, diff) in list.drain(..) {
                        add(&mut summed, key, diff);
                    }
                    *self = Held::Summed(summed);
                }
            }
            Held::Summed(summed) => add(summed, key, diff),
        }
    }
}

fn add<K: Hash + Eq, R: Semigroup>(summed: &mut FxHashMap<K, Running<R>>, key: K, diff: R) {
    match summed.entry(key) {
        Entry::Occupied(mut slot) => slot.get_mut().total.plus_equals(&diff),
        Entry::Vacant(slot) => {
            slot.insert(Running {
                total: diff,
                touched: 0,
            });
        }
    }
}

/// The running totals, and what applying a time's listed updates needs.
struct Totals<K, R> {
    totals: FxHashMap<K, Running<R>>,
    /// Times applied so far: a key's `touched` equal to it was touched at the time being applied.
    applied: u64,
    /// Keys touched at the time being applied, each once, with their total before it.
    touched: Vec<(K, Option<R>)>,
}

impl<K, R> Default for Totals<K, R> {
    fn default() -> Self {
        Totals {
            totals: FxHashMap::default(),
            applied: 0,
            touched: Vec::new(),
        }
    }
}

/// A key's total, and the last time (in [`Totals::applied`]) it was touched.
struct Running<R> {
    total: R,
    touched: u64,
}

impl<K: Hash + Eq + Clone, R: Semigroup + PartialEq + Clone> Totals<K, R> {
    /// Applies a time's listed updates: each added to its key's total as it comes, the total
    /// before the time remembered at the key's first; then one change per key touched.
    /// (Consolidating the updates first meant sorting them, which cost more than the second
    /// lookup.)
    fn apply_listed(&mut self, updates: Vec<(K, R)>, emit: &mut impl FnMut((K, R), isize)) {
        self.applied += 1;
        for (key, diff) in updates {
            match self.totals.entry(key) {
                Entry::Occupied(mut slot) => {
                    if slot.get().touched != self.applied {
                        let before = slot.get().total.clone();
                        self.touched.push((slot.key().clone(), Some(before)));
                        slot.get_mut().touched = self.applied;
                    }
                    slot.get_mut().total.plus_equals(&diff);
                }
                Entry::Vacant(slot) => {
                    self.touched.push((slot.key().clone(), None));
                    slot.insert(Running {
                        total: diff,
                        touched: self.applied,
                    });
                }
            }
        }
        for (key, before) in std::mem::take(&mut self.touched) {
            let Entry::Occupied(slot) = self.totals.entry(key) else {
                unreachable!("a touched key has a total until its changes are out")
            };
            if before.as_ref() == Some(&slot.get().total) {
                continue;
            }
            if let Some(before) = before {
                emit((slot.key().clone(), before), -1);
            }
            if slot.get().total.is_zero() {
                slot.remove();
            } else {
                emit((slot.key().clone(), slot.get().total.clone()), 1);
            }
        }
    }

    /// Applies up to `keys` of a time's updates added up per key (one lookup and one change per
    /// key), taken from `rest`; true once `rest` is empty. The caller counts the time in
    /// `applied` once, before its first call.
    fn apply_summed(
        &mut self,
        rest: &mut impl Iterator<Item = (K, Running<R>)>,
        keys: usize,
        emit: &mut impl FnMut((K, R), isize),
    ) -> bool {
        for _ in 0..keys {
            let Some((key, Running { total: diff, .. })) = rest.next() else {
                return true;
            };
            if diff.is_zero() {
                continue;
            }
            match self.totals.entry(key) {
                Entry::Occupied(mut slot) => {
                    emit((slot.key().clone(), slot.get().total.clone()), -1);
                    slot.get_mut().total.plus_equals(&diff);
                    if slot.get().total.is_zero() {
                        slot.remove();
                    } else {
                        emit((slot.key().clone(), slot.get().total.clone()), 1);
                    }
                }
                Entry::Vacant(slot) => {
                    emit((slot.key().clone(), diff.clone()), 1);
                    slot.insert(Running {
                        total: diff,
                        touched: 0,
                    });
                }
            }
        }
        false
    }

    /// Emits the insertion of the totals' keys from the `emitted`-th on, in the map's order (the
    /// map does not change meanwhile): a `keys` chunk's worth, or a thirty-second of the map if
    /// more, so that skipping what is out already costs little. True once all are out.
    fn emit_moved(
        &self,
        emitted: &mut usize,
        keys: usize,
        emit: &mut impl FnMut((K, R), isize),
    ) -> bool {
        let keys = keys.max(self.totals.len() / 32);
        for (key, running) in self.totals.iter().skip(*emitted).take(keys) {
            emit((key.clone(), running.total.clone()), 1);
        }
        *emitted += keys;
        *emitted >= self.totals.len()
    }
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

    /// The consolidated changes of `running_totals` (within `ours`: updates listed, changes
    /// out at once) or of `count_total` (`None`) over `updates`, each sent at its time or,
    /// `ahead`, all while the input is at time 0.
    fn totals_of(
        updates: &[(u8, Time, isize)],
        ours: Option<(usize, usize)>,
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
                    Some((listed, chunk)) => running_totals_within(collection.inner, listed, chunk),
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
            assert_eq!(totals_of(&updates, Some((LISTED, CHUNK)), ahead), expected);
            // Updates added up per key after the third, changes out two at a time.
            assert_eq!(totals_of(&updates, Some((3, 2)), ahead), expected);
            // Always added up.
            assert_eq!(totals_of(&updates, Some((0, CHUNK)), ahead), expected);
        }
    }
}
