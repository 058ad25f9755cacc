//! The current value of each key of a collection, kept from its updates time by time: what the
//! sinks that hold a collection's state (final files, the summary) keep.

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use crate::records::Record;

/// The current value of each key, maintained from the updates of successive times.
///
/// The updates of one time must be consolidated (as every collection here emits them): then each
/// key sees at most a retraction of its old value and an insertion of its new one, and applying
/// retractions before insertions needs no sorting.
pub struct KeyedState<R: Record> {
    values: FxHashMap<R::Key, R>,
    /// Retractions of the time being applied, kept for after its insertions (reused).
    retractions: Vec<R>,
}

impl<R: Record> Default for KeyedState<R> {
    fn default() -> Self {
        KeyedState {
            values: FxHashMap::default(),
            retractions: Vec::new(),
        }
    }
}

impl<R: Record> KeyedState<R> {
    /// Applies one time's consolidated updates.
    pub fn apply(&mut self, updates: impl IntoIterator<Item = (R, isize)>) {
        // Insert first: a key whose value is replaced keeps a value throughout, and the retraction
        // of its old value then finds the new one and leaves it. Retractions wait in a buffer
        // that is reused, so that a time's updates are not copied into two new vectors.
        for (record, diff) in updates {
            if diff < 0 {
                self.retractions.push(record);
                continue;
            }
            debug_assert_eq!(diff, 1, "one value per key: {record:?}");
            self.values.insert(record.key(), record);
        }
        for record in self.retractions.drain(..) {
            // One lookup: the key's slot, removed only if it still holds the retracted value.
            if let Entry::Occupied(slot) = self.values.entry(record.key()) {
                if *slot.get() == record {
                    slot.remove();
                }
            }
        }
    }

    /// Removes and returns every value.
    pub fn drain(&mut self) -> impl Iterator<Item = R> + '_ {
        self.values.drain().map(|(_, record)| record)
    }

    /// Number of keys with a value.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::averages::RoomAverage;

    fn average(room: &str, count: i64, sum: i128) -> RoomAverage {
        RoomAverage {
            room: room.into(),
            sensor: "co2".into(),
            count,
            sum,
        }
    }

    #[test]
    fn keyed_state_follows_replacements_and_deletions() {
        let mut state = KeyedState::default();
        state.apply(vec![(average("a", 1, 5), 1), (average("b", 1, 4), 1)]);
        assert_eq!(state.len(), 2);
        // At the next time: a is replaced (insertion listed before the retraction), b deleted.
        state.apply(vec![
            (average("a", 2, 9), 1),
            (average("a", 1, 5), -1),
            (average("b", 1, 4), -1),
        ]);
        assert_eq!(state.len(), 1);
        assert_eq!(state.drain().collect::<Vec<_>>(), vec![average("a", 2, 9)]);
    }
}
