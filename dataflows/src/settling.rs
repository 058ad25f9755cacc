//! The current value of each key, ordered by when the key settles: what a sink that writes each
//! record once it is final (`--out`) keeps.
//!
//! [`KeyedState`](crate::KeyedState) keeps values in a hash map, and a sink that writes records as
//! they settle would need a queue of settling keys beside it. Here the values themselves are
//! ordered by `(settles_at, key)`: a record settles at a time fixed by its key (a window's end, a
//! delta's reading), so every version of a key has the same place, the records that are final
//! are the first ones, and new records (recent windows, recent readings) land at the end. Both
//! ends stay in cache; a hash map and a heap of a horizon's worth of keys did not (a fifth of a
//! replay's cycles went to them).

use std::collections::btree_map;
use std::collections::BTreeMap;

use crate::keyed_state::KeyedState;
use crate::reading::EventTime;
use crate::records::Record;
use crate::windows::Windows;

/// The current value of each key, those that settle ordered by when they do.
///
/// Like [`KeyedState`](crate::KeyedState), it is kept from consolidated updates time by time
/// (each key sees at most a retraction of its old value and an insertion of its new one), and
/// requires of [`Record::settles_at`] that it depend on the key only.
pub struct SettlingState<R: Record> {
    windows: Windows,
    /// Records that settle, by (when, key).
    settling: BTreeMap<(EventTime, R::Key), R>,
    /// Records that never settle (`settles_at` is `None`), by key.
    lasting: KeyedState<R>,
    /// The updates of the time being applied to `lasting` (reused).
    lasting_updates: Vec<(R, isize)>,
    /// Retractions of the time being applied, kept for after its insertions (reused).
    retractions: Vec<R>,
}

impl<R: Record> SettlingState<R> {
    /// An empty state; `windows` tells when records settle.
    pub fn new(windows: Windows) -> Self {
        SettlingState {
            windows,
            settling: BTreeMap::new(),
            lasting: KeyedState::default(),
            lasting_updates: Vec::new(),
            retractions: Vec::new(),
        }
    }

    /// Applies one time's consolidated updates.
    pub fn apply(&mut self, updates: impl IntoIterator<Item = (R, isize)>) {
        // Insert first: a key whose value is replaced keeps a value throughout, and the retraction
        // of its old value then finds the new one and leaves it.
        for (record, diff) in updates {
            let Some(at) = record.settles_at(&self.windows) else {
                self.lasting_updates.push((record, diff));
                continue;
            };
            if diff < 0 {
                self.retractions.push(record);
                continue;
            }
            debug_assert_eq!(diff, 1, "one value per key: {record:?}");
            self.settling.insert((at, record.key()), record);
        }
        for record in self.retractions.drain(..) {
            let at = record.settles_at(&self.windows).expect("kept as settling");
            if let btree_map::Entry::Occupied(slot) = self.settling.entry((at, record.key())) {
                if *slot.get() == record {
                    slot.remove();
                }
            }
        }
        self.lasting.apply(self.lasting_updates.drain(..));
    }

    /// Removes and returns the first record that settles at or before `settled`, if any: called
    /// until `None`, the records final by then, in `(settles_at, key)` order.
    pub fn pop_settled(&mut self, settled: EventTime) -> Option<R> {
        let first = self.settling.first_entry()?;
        (first.key().0 <= settled).then(|| first.remove())
    }

    /// Removes and returns every value: those that settle in order, then the others.
    pub fn drain(&mut self) -> impl Iterator<Item = R> + '_ {
        std::mem::take(&mut self.settling)
            .into_values()
            .chain(self.lasting.drain())
    }

    /// Number of keys with a value.
    pub fn len(&self) -> usize {
        self.settling.len() + self.lasting.len()
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::averages::RoomAverage;
    use crate::horizon::Horizon;
    use crate::windows::WindowAverage;

    fn windows() -> Windows {
        Windows {
            length_ms: 60_000,
            horizon: Horizon::new(300_000, 1_000),
        }
    }

    fn window(room: &str, start: EventTime, count: i64) -> WindowAverage {
        WindowAverage {
            room: room.into(),
            sensor: "co2".into(),
            window_start: start,
            count,
            sum: i128::from(count) * 10,
        }
    }

    #[test]
    fn windows_come_out_by_their_end_then_room_once_settled() {
        let mut state = SettlingState::new(windows());
        state.apply(vec![
            (window("b", 60_000, 1), 1),
            (window("a", 60_000, 1), 1),
            (window("a", 0, 2), 1),
        ]);
        // At the next time: b's window is replaced (insertion listed before its retraction).
        state.apply(vec![
            (window("b", 60_000, 3), 1),
            (window("b", 60_000, 1), -1),
        ]);
        assert_eq!(state.len(), 3);
        // Window [0, 60 s) settles at 60 s; the others at 120 s.
        assert_eq!(state.pop_settled(59_999), None);
        assert_eq!(state.pop_settled(60_000), Some(window("a", 0, 2)));
        assert_eq!(state.pop_settled(60_000), None);
        assert_eq!(state.pop_settled(120_000), Some(window("a", 60_000, 1)));
        assert_eq!(state.pop_settled(120_000), Some(window("b", 60_000, 3)));
        assert!(state.is_empty());
    }

    #[test]
    fn a_retraction_removes_only_the_value_it_retracts() {
        let mut state = SettlingState::new(windows());
        state.apply(vec![(window("a", 0, 1), 1)]);
        // A stale retraction (of a version no longer held) leaves the current value.
        state.apply(vec![(window("a", 0, 2), 1), (window("a", 0, 1), -1)]);
        state.apply(vec![(window("a", 0, 1), -1)]);
        assert_eq!(state.len(), 1);
        // A deletion.
        state.apply(vec![(window("a", 0, 2), -1)]);
        assert!(state.is_empty());
    }

    #[test]
    fn records_that_never_settle_stay_until_drained() {
        let mut state = SettlingState::new(windows());
        let average = RoomAverage {
            room: "a".into(),
            sensor: "co2".into(),
            count: 1,
            sum: 5,
        };
        state.apply(vec![(average, 1)]);
        assert_eq!(state.pop_settled(EventTime::MAX), None);
        assert_eq!(state.drain().collect::<Vec<_>>(), vec![average]);
        assert!(state.is_empty());
    }
}
