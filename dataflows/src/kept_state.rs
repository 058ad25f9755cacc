//! The records of a checkpoint, and the state one worker keeps for them (see `checkpoint.rs`):
//! every room's aggregates, the open windows and the temperatures the deltas still need, as
//! readings and restored records update it; taken whole at a mark, or as the rooms that changed
//! since the previous one.
//!
//! State is kept and logged per room: a room's sensors, windows and held temperatures are a few
//! small vectors under one map entry (three maps keyed by room and sensor names took most of an
//! exactly-once job's memory at 100,000 rooms), and a changelog holds one record per room, all of
//! the room (1.3M records per key at 100,000 rooms, read back at every restart, became 100,000).

use differential_dataflow::difference::Semigroup;
use rustc_hash::FxHashMap;
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
}

/// A key of the checkpointed state: what one changelog record holds, all of one room.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StateKey {
    /// The room.
    pub room: Name,
}

impl StateKey {
    /// The key a record belongs under.
    pub fn of(record: &Checkpointed) -> StateKey {
        StateKey {
            room: *record.room(),
        }
    }
}

/// A change of the checkpointed state since the previous mark: the key (a room) now holds exactly
/// `records` (none: the room holds nothing any more). A changelog keeps the latest per key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StateChange {
    /// The key.
    pub key: StateKey,
    /// What it holds now.
    pub records: Vec<Checkpointed>,
}

/// What one room holds for checkpoints: a few entries each, searched in order.
#[derive(Default)]
struct RoomState {
    /// Whether the room is among the changed ones since the last mark (kept here rather than
    /// in a set of names: a second hash lookup per reading was a measurable part of keeping
    /// the state, the profile's top entry at 7 % of a catch-up).
    changed: bool,
    /// Per sensor, the all-time aggregate.
    aggregates: Vec<(Name, SumCount)>,
    /// Per sensor and window start, the aggregates of the windows still open, in order of start.
    windows: Vec<(Name, EventTime, SumCount)>,
    /// The temperatures the deltas still need.
    temperatures: RoomSeries,
}

impl RoomState {
    fn add_aggregate(&mut self, sensor: Name, contribution: SumCount) {
        match self.aggregates.iter_mut().find(|(s, _)| *s == sensor) {
            Some((_, total)) => total.plus_equals(&contribution),
            None => self.aggregates.push((sensor, contribution)),
        }
    }

    fn add_window(&mut self, sensor: Name, start: EventTime, contribution: SumCount) {
        // Kept in order of start and searched from the newest, stopping at an older start: a
        // room's readings come about in time order, so their window is among the last few, and
        // a new one goes at the end at once, while a catch-up opens hundreds of windows per room
        // between two marks (searched whole from the oldest, this scan was 70 % of keeping the
        // state, 7 % of an exactly-once catch-up; docs/performance.md).
        let mut at = self.windows.len();
        while at > 0 {
            let (held_sensor, held_start, total) = &mut self.windows[at - 1];
            if *held_start < start {
                break;
            }
            if *held_start == start && *held_sensor == sensor {
                total.plus_equals(&contribution);
                return;
            }
            at -= 1;
        }
        self.windows.insert(at, (sensor, start, contribution));
    }

    /// Forgets windows sealed before `time` and temperatures settled before `settled`; whether
    /// anything was forgotten.
    fn release(&mut self, time: Time, settled: EventTime, windows: &Windows) -> bool {
        let (held_windows, held_temperatures) = (self.windows.len(), self.temperatures.len());
        // A window whose expiry is before `time` had its sealing retraction applied: it is final.
        self.windows
            .retain(|(_, start, _)| windows.expiry(*start) >= time);
        self.temperatures.release(settled);
        held_windows != self.windows.len() || held_temperatures != self.temperatures.len()
    }

    /// The room's checkpoint records.
    fn records(&self, room: Name, out: &mut Vec<Checkpointed>) {
        out.extend(
            self.temperatures
                .readings()
                .map(|(ts, value)| Checkpointed::Temperature { room, ts, value }),
        );
        out.extend(
            self.aggregates
                .iter()
                .map(|(sensor, total)| room_record(&room, sensor, total)),
        );
        out.extend(
            self.windows
                .iter()
                .map(|(sensor, start, total)| window_record(&room, sensor, *start, total)),
        );
    }
}

/// The state of the rooms one worker keeps for checkpoints.
#[derive(Default)]
pub(crate) struct KeptState {
    rooms: FxHashMap<Name, RoomState>,
    /// Rooms changed since the last mark (each once: its `changed` flag), when changes are what
    /// is emitted.
    changed: Option<Vec<Name>>,
}

impl KeptState {
    /// An empty state; with `track_changes`, it keeps which rooms change between marks.
    pub(crate) fn new(track_changes: bool) -> Self {
        KeptState {
            changed: track_changes.then(Vec::new),
            ..KeptState::default()
        }
    }

    pub(crate) fn apply(&mut self, update: Update, windows: &Windows) {
        let room = *update.room();
        let state = self.rooms.entry(room).or_default();
        // A restored record is what the changelog holds already: only readings change rooms.
        if let (Some(changed), Update::Reading(_)) = (&mut self.changed, &update) {
            note_change(changed, room, state);
        }
        match update {
            Update::Reading(reading) => {
                let contribution = SumCount::of(reading.value);
                state.add_window(reading.sensor, windows.start_of(reading.ts), contribution);
                if reading.is_temperature() {
                    state.temperatures.hold(reading.ts, reading.value);
                }
                state.add_aggregate(reading.sensor, contribution);
            }
            Update::Restored(Checkpointed::Room(average)) => state.add_aggregate(
                average.sensor,
                SumCount {
                    sum: average.sum,
                    count: average.count,
                },
            ),
            Update::Restored(Checkpointed::Window(window)) => state.add_window(
                window.sensor,
                window.window_start,
                SumCount {
                    sum: window.sum,
                    count: window.count,
                },
            ),
            Update::Restored(Checkpointed::Temperature { ts, value, .. }) => {
                state.temperatures.hold(ts, value)
            }
        }
    }

    /// Forgets what can no longer change as of `time`: windows sealed before it, temperatures
    /// settled. With change tracking, a room that forgot something counts as changed.
    fn release(&mut self, time: Time, settings: &Settings) {
        let settled = settings.horizon().settled_before(Some(time));
        for (room, state) in self.rooms.iter_mut() {
            if state.release(time, settled, &settings.windows) {
                if let Some(changed) = self.changed.as_mut() {
                    note_change(changed, *room, state);
                }
            }
        }
    }

    /// The rooms changed since the last call, with what they hold as of everything before
    /// `time`.
    pub(crate) fn changes(&mut self, time: Time, settings: &Settings, out: &mut Vec<StateChange>) {
        self.release(time, settings);
        let mut changed: Vec<Name> = self
            .changed
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        changed.sort_unstable();
        out.extend(changed.into_iter().map(|room| {
            let mut records = Vec::new();
            if let Some(state) = self.rooms.get_mut(&room) {
                state.changed = false;
                state.records(room, &mut records);
            }
            StateChange {
                key: StateKey { room },
                records,
            }
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
        for (room, state) in &self.rooms {
            state.records(*room, out);
        }
    }
}

/// Notes that `room` changed, once until the next mark.
fn note_change(changed: &mut Vec<Name>, room: Name, state: &mut RoomState) {
    if !state.changed {
        state.changed = true;
        changed.push(room);
    }
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
