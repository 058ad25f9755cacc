//! `temperature_deltas`: for each temperature reading after a room's first, the change since the
//! room's previous reading in event-time order.
//!
//! A reading that arrives out of order (within the lateness) is inserted where it belongs: the
//! delta of its successor is retracted and replaced, and its own delta is added, exactly as if the
//! readings had arrived in order. Each room keeps only the readings that can still gain a new
//! neighbour (those inside the lateness horizon) plus the newest reading before it, which is the
//! predecessor of anything that may still arrive; older readings are released without retracting
//! anything, since their deltas are final.

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::hashable::Hashable;
use differential_dataflow::{AsCollection, VecCollection};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

use crate::held::HeldByTime;
use crate::horizon::{Horizon, Time};
use crate::reading::{EventTime, Fixed, Name, Reading};
use crate::sized::GiveSized;

/// The change of a room's temperature between two consecutive readings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TemperatureDelta {
    /// The room.
    pub room: Name,
    /// Event time of this reading.
    pub ts: EventTime,
    /// Event time of the room's previous reading.
    pub prev_ts: EventTime,
    /// This reading's value.
    pub value: Fixed,
    /// The previous reading's value.
    pub prev_value: Fixed,
}

impl TemperatureDelta {
    /// `value - prev_value`.
    pub fn delta(&self) -> Fixed {
        Fixed(self.value.0 - self.prev_value.0)
    }
}

/// One room's temperature readings that can still matter, by event time.
///
/// A room reports one temperature per millisecond: when two readings share a timestamp, the
/// greater value stands for that instant (an order-independent choice; both still count in the
/// averages).
///
/// Held as one vector sorted by event time, 16 bytes a reading: nearly every reading is the
/// room's newest (a push), a late one is a binary search and a shift within the lateness horizon,
/// and the released ones go from the front. A `BTreeMap` cost a node of about 200 bytes per room
/// however few readings it held (19 MB of a replay of 100,000 rooms, 11 MB as a vector).
#[derive(Default, Debug)]
pub struct RoomSeries {
    readings: Vec<(EventTime, Fixed)>,
}

impl RoomSeries {
    fn delta(
        room: &Name,
        (ts, value): (EventTime, Fixed),
        prev: (EventTime, Fixed),
    ) -> TemperatureDelta {
        TemperatureDelta {
            room: *room,
            ts,
            prev_ts: prev.0,
            value,
            prev_value: prev.1,
        }
    }

    /// Inserts a reading and pushes the resulting changes of the room's deltas onto `changes`.
    pub fn insert(
        &mut self,
        room: &Name,
        ts: EventTime,
        value: Fixed,
        changes: &mut Vec<(TemperatureDelta, isize)>,
    ) {
        // Nearly every reading is the room's newest: its predecessor is the last one held, and
        // no successor's delta changes.
        if let Some(&last) = self.readings.last() {
            if ts > last.0 {
                changes.push((Self::delta(room, (ts, value), last), 1));
                self.readings.push((ts, value));
                return;
            }
        }
        let at = self.readings.partition_point(|&(held, _)| held < ts);
        let replaced = match self.readings.get(at) {
            Some(&(held, existing)) if held == ts && existing >= value => return,
            Some(&(held, existing)) if held == ts => Some(existing),
            _ => None,
        };
        let prev = at.checked_sub(1).map(|before| self.readings[before]);
        let after = if replaced.is_some() { at + 1 } else { at };
        let next = self.readings.get(after).copied();
        if let Some(prev) = prev {
            if let Some(old) = replaced {
                changes.push((Self::delta(room, (ts, old), prev), -1));
            }
            changes.push((Self::delta(room, (ts, value), prev), 1));
        }
        if let Some(next) = next {
            // The successor's predecessor was the replaced value at `ts`, or else `prev`.
            let old_prev = replaced.map(|old| (ts, old)).or(prev);
            if let Some(old_prev) = old_prev {
                changes.push((Self::delta(room, next, old_prev), -1));
            }
            changes.push((Self::delta(room, next, (ts, value)), 1));
        }
        match replaced {
            Some(_) => self.readings[at].1 = value,
            None => self.readings.insert(at, (ts, value)),
        }
    }

    /// Releases readings older than `settled_before`, keeping the newest of them as the
    /// predecessor of whatever may still arrive.
    pub fn release(&mut self, settled_before: EventTime) {
        let older = self
            .readings
            .partition_point(|&(held, _)| held < settled_before);
        if older > 1 {
            self.readings.drain(..older - 1);
        }
        // A series much smaller than it was gives its memory back.
        if self.readings.capacity() > 4 * self.readings.len().max(4) {
            self.readings.shrink_to(2 * self.readings.len());
        }
    }

    /// Holds a reading without computing deltas: for state that is only kept (checkpoints), with
    /// the same max-wins rule as [`RoomSeries::insert`].
    pub fn hold(&mut self, ts: EventTime, value: Fixed) {
        let at = self.readings.partition_point(|&(held, _)| held < ts);
        match self.readings.get_mut(at) {
            Some((held, existing)) if *held == ts => *existing = (*existing).max(value),
            _ => self.readings.insert(at, (ts, value)),
        }
    }

    /// The reading held at `ts`, if any.
    pub fn get(&self, ts: EventTime) -> Option<Fixed> {
        let at = self.readings.partition_point(|&(held, _)| held < ts);
        self.readings
            .get(at)
            .filter(|&&(held, _)| held == ts)
            .map(|&(_, value)| value)
    }

    /// The readings held, by event time.
    pub fn readings(&self) -> impl Iterator<Item = (EventTime, Fixed)> + '_ {
        self.readings.iter().copied()
    }

    /// Readings held.
    pub fn len(&self) -> usize {
        self.readings.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }
}

/// A temperature reading as the deltas operator holds it: room, event time, value.
type Temperature = (Name, EventTime, Fixed);

/// For each temperature reading after a room's first, its delta from the room's previous reading.
///
/// Readings are routed to workers by room and applied in dataflow-time order once the input
/// frontier has passed their time, so the collection at each time reflects exactly the readings
/// stamped up to that time.
pub fn temperature_deltas<'s>(
    readings: VecCollection<'s, Time, Reading>,
    horizon: Horizon,
) -> VecCollection<'s, Time, TemperatureDelta> {
    let route = Exchange::new(|(reading, _, _): &(Reading, Time, isize)| reading.room.hashed());
    readings
        .filter(Reading::is_temperature)
        .inner
        .unary_frontier(route, "TemperatureDeltas", move |_, _| {
            let mut pending: HeldByTime<Temperature, Capability<Time>> = HeldByTime::default();
            let mut rooms: FxHashMap<Name, RoomSeries> = FxHashMap::default();
            let mut changes = Vec::new();
            let mut released_up_to = EventTime::MIN;
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, containers| {
                    for container in containers {
                        for (reading, time, diff) in container.drain(..) {
                            // Readings are only ever inserted; a retraction would be a bug upstream.
                            debug_assert!(diff > 0, "readings are insert-only");
                            pending.entry_with(time, || cap.delayed(&time, 0)).push((
                                reading.room,
                                reading.ts,
                                reading.value,
                            ));
                        }
                    }
                });
                let complete_before = frontier.frontier().first().copied();
                while let Some((time, capability, mut batch)) =
                    pending.pop_complete(complete_before)
                {
                    for (room, ts, value) in batch.drain(..) {
                        rooms
                            .entry(room)
                            .or_default()
                            .insert(&room, ts, value, &mut changes);
                    }
                    pending.recycle(batch);
                    consolidate(&mut changes);
                    output
                        .session(&capability)
                        .give_sized(changes.drain(..).map(|(delta, diff)| (delta, time, diff)));
                }
                // Release settled readings now and then: it only bounds memory, so it need not
                // run at every frontier step.
                let settled = horizon.settled_before(frontier.frontier().first().copied());
                if settled != EventTime::MAX
                    && settled.saturating_sub(released_up_to)
                        >= horizon.lateness_ms.max(horizon.tick_ms)
                {
                    for series in rooms.values_mut() {
                        series.release(settled);
                    }
                    released_up_to = settled;
                }
            }
        })
        .as_collection()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(ts: i64, prev_ts: i64, value: i64, prev_value: i64) -> TemperatureDelta {
        TemperatureDelta {
            room: "r".into(),
            ts,
            prev_ts,
            value: Fixed(value),
            prev_value: Fixed(prev_value),
        }
    }

    #[test]
    fn insertion_between_two_readings_replaces_the_successors_delta() {
        let room: Name = "r".into();
        let mut series = RoomSeries::default();
        let mut changes = Vec::new();
        series.insert(&room, 10, Fixed(100), &mut changes);
        assert!(changes.is_empty(), "a room's first reading has no delta");
        series.insert(&room, 30, Fixed(130), &mut changes);
        assert_eq!(changes, vec![(delta(30, 10, 130, 100), 1)]);
        changes.clear();
        series.insert(&room, 20, Fixed(90), &mut changes);
        assert_eq!(
            changes,
            vec![
                (delta(20, 10, 90, 100), 1),
                (delta(30, 10, 130, 100), -1),
                (delta(30, 20, 130, 90), 1),
            ]
        );
    }

    #[test]
    fn a_new_first_reading_gives_the_old_first_a_delta() {
        let room: Name = "r".into();
        let mut series = RoomSeries::default();
        let mut changes = Vec::new();
        series.insert(&room, 10, Fixed(100), &mut changes);
        series.insert(&room, 5, Fixed(70), &mut changes);
        assert_eq!(changes, vec![(delta(10, 5, 100, 70), 1)]);
    }

    #[test]
    fn equal_timestamps_keep_the_greater_value() {
        let room: Name = "r".into();
        let mut series = RoomSeries::default();
        let mut changes = Vec::new();
        series.insert(&room, 10, Fixed(100), &mut changes);
        series.insert(&room, 20, Fixed(200), &mut changes);
        series.insert(&room, 30, Fixed(300), &mut changes);
        changes.clear();
        series.insert(&room, 20, Fixed(150), &mut changes);
        assert!(changes.is_empty(), "a smaller duplicate changes nothing");
        series.insert(&room, 20, Fixed(250), &mut changes);
        assert_eq!(
            changes,
            vec![
                (delta(20, 10, 200, 100), -1),
                (delta(20, 10, 250, 100), 1),
                (delta(30, 20, 300, 200), -1),
                (delta(30, 20, 300, 250), 1),
            ]
        );
    }

    #[test]
    fn release_keeps_the_predecessor_of_what_may_still_arrive() {
        let room: Name = "r".into();
        let mut series = RoomSeries::default();
        let mut changes = Vec::new();
        for ts in [10, 20, 30, 40] {
            series.insert(&room, ts, Fixed(ts), &mut changes);
        }
        series.release(35);
        assert_eq!(series.len(), 2, "30 (predecessor) and 40 remain");
        changes.clear();
        series.insert(&room, 36, Fixed(0), &mut changes);
        assert_eq!(
            changes,
            vec![
                (delta(36, 30, 0, 30), 1),
                (delta(40, 30, 40, 30), -1),
                (delta(40, 36, 40, 0), 1),
            ]
        );
    }

    /// Random readings in any order, timestamps repeated: the changes add up to the deltas of
    /// consecutive readings (the greater value per timestamp), worked out here by sorting.
    #[test]
    fn changes_add_up_to_the_deltas_of_the_sorted_readings() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(5);
        let room: Name = "r".into();
        for _ in 0..200 {
            let readings: Vec<(EventTime, i64)> = (0..rng.gen_range(1..40))
                .map(|_| (rng.gen_range(0..30), rng.gen_range(-5..5)))
                .collect();
            let (mut series, mut changes) = (RoomSeries::default(), Vec::new());
            for &(ts, value) in &readings {
                series.insert(&room, ts, Fixed(value), &mut changes);
            }
            consolidate(&mut changes);
            let mut best: std::collections::BTreeMap<EventTime, i64> = Default::default();
            for &(ts, value) in &readings {
                let held = best.entry(ts).or_insert(value);
                *held = (*held).max(value);
            }
            let sorted: Vec<(EventTime, i64)> = best.into_iter().collect();
            let mut want: Vec<(TemperatureDelta, isize)> = sorted
                .windows(2)
                .map(|pair| (delta(pair[1].0, pair[0].0, pair[1].1, pair[0].1), 1))
                .collect();
            consolidate(&mut want);
            assert_eq!(changes, want, "{readings:?}");
            let held: Vec<(EventTime, i64)> = series.readings().map(|(t, v)| (t, v.0)).collect();
            assert_eq!(held, sorted);
        }
    }
}
