//! The records of a checkpoint, and the state one worker keeps for them (see `checkpoint.rs`): every room's aggregates,
//! the open windows and the temperatures the deltas still need, as readings and restored records
//! update it; taken whole at a mark, or as the keys that changed since the previous one.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::averages::RoomAverage;
use crate::deltas::RoomSeries;
use crate::horizon::Time;
use crate::reading::{EventTime, Fixed, Name, Reading};
use crate::sum_count::SumCount;
use crate::windows::{WindowAverage, Windows};
use crate::Settings;

/// One record of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Checkpointed {
    /// A room's all-time aggregate of one sensor.
    Room(RoomAverage),
    /// A window that can still change.
    Window(WindowAverage),
    /// A temperature reading the deltas still need.
    Temperature {
        /// The room.
        room: Name,
        /// Event time.
        ts: EventTime,
        /// Value.
        value: Fixed,
    },
}

impl Checkpointed {
    /// The room the record belongs to (state is spread over workers by room).
    pub fn room(&self) -> &Name {
        match self {
            Checkpointed::Room(average) => &average.room,
            Checkpointed::Window(window) => &window.room,
            Checkpointed::Temperature { room, .. } => room,
        }
    }

    /// The room average this record restores, if it is one.
    pub fn room_average(&self) -> Option<RoomAverage> {
        match self {
            Checkpointed::Room(average) => Some(*average),
            _ => None,
        }
    }

    /// The window average this record restores, if it is one.
    pub fn window_average(&self) -> Option<WindowAverage> {
        match self {
            Checkpointed::Window(window) => Some(*window),
            _ => None,
        }
    }

    /// The reading a checkpointed temperature stands for.
    pub fn temperature_reading(&self) -> Option<Reading> {
        match self {
            Checkpointed::Temperature { room, ts, value } => Some(Reading {
                room: *room,
                sensor: Reading::TEMPERATURE.into(),
                ts: *ts,
                value: *value,
            }),
            _ => None,
        }
    }
}

/// What the state keeper applies: a reading, or a record restored from an earlier checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Update {
    Reading(Reading),
    Restored(Checkpointed),
}

impl Update {
    pub(crate) fn room(&self) -> &Name {
        match self {
            Update::Reading(reading) => &reading.room,
            Update::Restored(record) => record.room(),
        }
    }

    /// The state keys this update changes.
    fn keys(&self, windows: &Windows) -> Vec<StateKey> {
        match self {
            Update::Reading(reading) => {
                let mut keys = vec![
                    StateKey::Room(reading.room, reading.sensor),
                    StateKey::Window(reading.room, reading.sensor, windows.start_of(reading.ts)),
                ];
                if reading.is_temperature() {
                    keys.push(StateKey::Temperature(reading.room, reading.ts));
                }
                keys
            }
            Update::Restored(record) => vec![StateKey::of(record)],
        }
    }
}

/// A key of the checkpointed state: what one changelog record holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StateKey {
    /// A room's all-time aggregate of one sensor.
    Room(Name, Name),
    /// A window of a room and sensor, by its start.
    Window(Name, Name, EventTime),
    /// A temperature reading held for a room's deltas, by its event time.
    Temperature(Name, EventTime),
}

impl StateKey {
    /// The key a record belongs under.
    pub fn of(record: &Checkpointed) -> StateKey {
        match record {
            Checkpointed::Room(average) => StateKey::Room(average.room, average.sensor),
            Checkpointed::Window(window) => {
                StateKey::Window(window.room, window.sensor, window.window_start)
            }
            Checkpointed::Temperature { room, ts, .. } => StateKey::Temperature(*room, *ts),
        }
    }
}

/// A change of the checkpointed state since the previous mark: the key now holds exactly
/// `records` (none: the key is gone, e.g. a sealed window). A changelog keeps the latest per key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StateChange {
    /// The key.
    pub key: StateKey,
    /// What it holds now.
    pub records: Vec<Checkpointed>,
}

/// The state of the rooms one worker keeps for checkpoints.
#[derive(Default)]
pub(crate) struct KeptState {
    rooms: FxHashMap<(Name, Name), SumCount>,
    windows: FxHashMap<(Name, Name, EventTime), SumCount>,
    temperatures: FxHashMap<Name, RoomSeries>,
    /// Keys changed since the last mark, when changes are what is emitted.
    changed: Option<FxHashSet<StateKey>>,
}

impl KeptState {
    /// An empty state; with `track_changes`, it keeps which keys change between marks.
    pub(crate) fn new(track_changes: bool) -> Self {
        KeptState {
            changed: track_changes.then(FxHashSet::default),
            ..KeptState::default()
        }
    }

    pub(crate) fn apply(&mut self, update: Update, windows: &Windows) {
        // A restored record is what the changelog holds already: only readings change keys.
        if let (Some(changed), Update::Reading(_)) = (&mut self.changed, &update) {
            changed.extend(update.keys(windows));
        }
        match update {
            Update::Reading(reading) => {
                let contribution = SumCount::of(reading.value);
                let start = windows.start_of(reading.ts);
                add(
                    &mut self.windows,
                    (reading.room, reading.sensor, start),
                    contribution,
                );
                if reading.is_temperature() {
                    self.temperatures
                        .entry(reading.room)
                        .or_default()
                        .hold(reading.ts, reading.value);
                }
                add(
                    &mut self.rooms,
                    (reading.room, reading.sensor),
                    contribution,
                );
            }
            Update::Restored(Checkpointed::Room(average)) => add(
                &mut self.rooms,
                (average.room, average.sensor),
                SumCount {
                    sum: average.sum,
                    count: average.count,
                },
            ),
            Update::Restored(Checkpointed::Window(window)) => add(
                &mut self.windows,
                (window.room, window.sensor, window.window_start),
                SumCount {
                    sum: window.sum,
                    count: window.count,
                },
            ),
            Update::Restored(Checkpointed::Temperature { room, ts, value }) => {
                self.temperatures.entry(room).or_default().hold(ts, value)
            }
        }
    }

    /// Forgets what can no longer change as of `time`: windows sealed before it, temperatures
    /// settled. With change tracking, what was forgotten counts as changed.
    fn release(&mut self, time: Time, settings: &Settings) {
        let windows = settings.windows;
        // A window whose expiry is before `time` had its sealing retraction applied: it is final.
        let changed = &mut self.changed;
        self.windows.retain(|(room, sensor, start), _| {
            let open = windows.expiry(*start) >= time;
            if !open {
                if let Some(changed) = changed.as_mut() {
                    changed.insert(StateKey::Window(*room, *sensor, *start));
                }
            }
            open
        });
        let settled = settings.horizon().settled_before(Some(time));
        for (room, series) in self.temperatures.iter_mut() {
            match changed.as_mut() {
                // Each released reading is a key gone.
                Some(changed) => {
                    let held: Vec<EventTime> = series.readings().map(|(ts, _)| ts).collect();
                    series.release(settled);
                    if series.len() != held.len() {
                        for ts in held {
                            if series.get(ts).is_none() {
                                changed.insert(StateKey::Temperature(*room, ts));
                            }
                        }
                    }
                }
                None => series.release(settled),
            }
        }
    }

    /// What the key holds now.
    fn records_of(&self, key: &StateKey) -> Vec<Checkpointed> {
        match key {
            StateKey::Room(room, sensor) => self
                .rooms
                .get(&(*room, *sensor))
                .map(|total| room_record(room, sensor, total))
                .into_iter()
                .collect(),
            StateKey::Window(room, sensor, window_start) => self
                .windows
                .get(&(*room, *sensor, *window_start))
                .map(|total| window_record(room, sensor, *window_start, total))
                .into_iter()
                .collect(),
            StateKey::Temperature(room, ts) => self
                .temperatures
                .get(room)
                .and_then(|series| series.get(*ts))
                .map(|value| Checkpointed::Temperature {
                    room: *room,
                    ts: *ts,
                    value,
                })
                .into_iter()
                .collect(),
        }
    }

    /// The keys changed since the last call, with what they hold as of everything before `time`.
    pub(crate) fn changes(&mut self, time: Time, settings: &Settings, out: &mut Vec<StateChange>) {
        self.release(time, settings);
        let mut changed: Vec<StateKey> = self
            .changed
            .as_mut()
            .map(|changed| changed.drain().collect())
            .unwrap_or_default();
        changed.sort_unstable();
        out.extend(changed.into_iter().map(|key| StateChange {
            records: self.records_of(&key),
            key,
        }));
    }

    /// The state as of everything before `time`, released of what can no longer change.
    pub(crate) fn snapshot(
        &mut self,
        time: Time,
        settings: &Settings,
        out: &mut Vec<Checkpointed>,
    ) {
        self.release(time, settings);
        for (room, series) in self.temperatures.iter() {
            out.extend(
                series
                    .readings()
                    .map(|(ts, value)| Checkpointed::Temperature {
                        room: *room,
                        ts,
                        value,
                    }),
            );
        }
        out.extend(
            self.rooms
                .iter()
                .map(|((room, sensor), total)| room_record(room, sensor, total)),
        );
        out.extend(
            self.windows
                .iter()
                .map(|((room, sensor, start), total)| window_record(room, sensor, *start, total)),
        );
    }
}

fn add<K: std::hash::Hash + Eq>(map: &mut FxHashMap<K, SumCount>, key: K, contribution: SumCount) {
    use differential_dataflow::difference::Semigroup;
    map.entry(key)
        .and_modify(|total| total.plus_equals(&contribution))
        .or_insert(contribution);
}

/// A room's aggregate as a checkpoint record.
fn room_record(room: &Name, sensor: &Name, total: &SumCount) -> Checkpointed {
    Checkpointed::Room(RoomAverage {
        room: *room,
        sensor: *sensor,
        count: total.count,
        sum: total.sum,
    })
}

/// A window's aggregate as a checkpoint record.
fn window_record(
    room: &Name,
    sensor: &Name,
    window_start: EventTime,
    total: &SumCount,
) -> Checkpointed {
    Checkpointed::Window(WindowAverage {
        room: *room,
        sensor: *sensor,
        window_start,
        count: total.count,
        sum: total.sum,
    })
}
