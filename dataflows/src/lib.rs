//! roomflow's pure computations: per-room averages, windowed averages and temperature deltas, as
//! differential collections updated incrementally. Nothing here reads files, talks to Kafka or
//! writes to a database: inputs are collections of [`Reading`]s and outputs are collections that
//! sinks elsewhere consume, so every computation is tested with in-memory inputs.
//!
//! What each file owns:
//! - `reading.rs`: the [`Reading`] type and exact fixed-point values.
//! - `name.rs`: room and sensor names that compare as integers.
//! - `horizon.rs`: lateness per input stream, dataflow timestamps, and when state is settled.
//! - `sum_count.rs`: the difference type that accumulates sums and counts.
//! - `combine.rs`: adds up each batch's updates per key and time before they are arranged.
//! - `averages.rs`: `room_averages` and `window_averages`, one running total per key for both.
//! - `totals.rs`: running totals per key, what `count_total` gives, without an arrangement.
//! - `windows.rs`: window boundaries, when a window is sealed, and when it is emitted.
//! - `merge.rs`: the streaming k-way merge of input streams by event time, judging lateness.
//! - `deltas.rs`: `temperature_deltas`, with corrections for out-of-order readings.
//! - `records.rs`: each output record's key, JSON shape and when it is final.
//! - `json.rs`: the records', keys' and envelope's JSON written by hand, as serde_json writes it.
//! - `keyed_state.rs`: the current value per key, kept from a collection's updates.
//! - `settling.rs`: the same, ordered by when each key settles, for sinks that write final records.
//! - `changes.rs`: updates → per-key changes, the typed change every sink consumes, its envelope.
//! - `held.rs`: updates held by time until the input frontier passes them.
//! - `sized.rs`: output containers sized to what they hold, not timely's 8 KiB per session.
//! - `kept_state.rs`: the state a worker keeps for checkpoints, taken whole or as changes.
//! - `checkpoint.rs`: the state a job resumes from, taken at a mark, and how it is fed back.
//!
//! # Example
//! ```
//! use differential_dataflow::input::Input;
//! use roomflow_dataflows::{analytics, Fixed, Reading, Settings};
//!
//! timely::execute_directly(|worker| {
//!     worker.dataflow::<u64, _, _>(|scope| {
//!         let (mut input, readings) = scope.new_collection::<Reading, isize>();
//!         let outputs = analytics(readings, Settings::default());
//!         outputs.room_averages.inspect(|x| println!("{x:?}"));
//!         input.insert(Reading { room: "413".into(), sensor: "co2".into(), ts: 0, value: Fixed(450_000_000) });
//!     });
//! });
//! ```

pub mod averages;
pub mod changes;
pub mod checkpoint;
pub mod combine;
pub mod deltas;
pub mod held;
pub mod horizon;
pub mod json;
pub mod kept_state;
pub mod keyed_state;
pub mod merge;
pub mod name;
pub mod reading;
pub mod records;
pub mod settling;
pub mod sized;
pub mod sum_count;
pub mod totals;
pub mod windows;

pub use averages::{averages, RoomAverage};
pub use changes::{changes, key_changes, Change, CollectionChange, Envelope, KeyChange, Operation};
pub use checkpoint::{
    checkpoint_state, restored_at, state_changes, Checkpointed, StateChange, StateKey,
};
pub use deltas::{temperature_deltas, TemperatureDelta};
pub use held::HeldByTime;
pub use horizon::{Admission, Horizon, StreamWatermark, Time};
pub use keyed_state::KeyedState;
pub use merge::{Event, Item, Merge};
pub use reading::{EventTime, Fixed, Name, Reading};
pub use records::Record;
pub use settling::SettlingState;
pub use windows::{Emit, WindowAverage, Windows};

use differential_dataflow::VecCollection;

/// What shapes the computation: window length, lateness, tick, and when windows are emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Tumbling windows of `window_averages`, with the horizon that seals them.
    pub windows: Windows,
    /// Whether `window_averages` carries every version of a window or only its final one.
    pub emit: Emit,
}

impl Settings {
    /// Settings from lengths in milliseconds.
    pub fn new(window_ms: i64, lateness_ms: i64, tick_ms: i64) -> Settings {
        assert!(window_ms > 0, "window must be positive");
        Settings {
            windows: Windows {
                length_ms: window_ms,
                horizon: Horizon::new(lateness_ms, tick_ms),
            },
            emit: Emit::Updates,
        }
    }

    /// The same settings, emitting windows as `emit` says.
    pub fn emitting(self, emit: Emit) -> Settings {
        Settings { emit, ..self }
    }

    /// The lateness horizon.
    pub fn horizon(&self) -> Horizon {
        self.windows.horizon
    }
}

impl Default for Settings {
    /// 60 s windows, 5 min lateness, 1 s tick.
    fn default() -> Settings {
        Settings::new(60_000, 300_000, 1_000)
    }
}

/// The three output collections.
pub struct Collections<'s> {
    /// Per (room, sensor): count, sum, mean of all readings.
    pub room_averages: VecCollection<'s, Time, RoomAverage>,
    /// Per (room, sensor, window): count, sum, mean; every version, or with [`Emit::Final`] one
    /// insertion per window at its expiry.
    pub window_averages: VecCollection<'s, Time, WindowAverage>,
    /// Per temperature reading after a room's first: the change since the previous one.
    pub temperature_deltas: VecCollection<'s, Time, TemperatureDelta>,
}

impl<'s> Collections<'s> {
    /// The collections' updates at `start` and after: what a resumed job outputs. Its restored
    /// state enters just before `start` (see [`checkpoint::restored_at`]), so the outputs hold
    /// what changes from the checkpoint on, not the restored state again.
    pub fn since(self, start: Time) -> Collections<'s> {
        use differential_dataflow::AsCollection;
        use timely::dataflow::operators::vec::Filter;
        Collections {
            room_averages: self
                .room_averages
                .inner
                .filter(move |(_, time, _)| *time >= start)
                .as_collection(),
            window_averages: self
                .window_averages
                .inner
                .filter(move |(_, time, _)| *time >= start)
                .as_collection(),
            temperature_deltas: self
                .temperature_deltas
                .inner
                .filter(move |(_, time, _)| *time >= start)
                .as_collection(),
        }
    }
}

/// Builds every collection from the readings that were not late.
pub fn analytics<'s>(
    readings: VecCollection<'s, Time, Reading>,
    settings: Settings,
) -> Collections<'s> {
    let (room_averages, window_averages) =
        averages(readings.clone(), None, settings.windows, settings.emit);
    Collections {
        room_averages,
        window_averages,
        temperature_deltas: temperature_deltas(readings, settings.horizon()),
    }
}

/// Builds every collection from a checkpoint's records (`restored`, see `checkpoint.rs`) and the
/// readings that follow it.
pub fn analytics_resumed<'s>(
    readings: VecCollection<'s, Time, Reading>,
    restored: VecCollection<'s, Time, Checkpointed>,
    settings: Settings,
) -> Collections<'s> {
    let aggregates = averages::Restored {
        rooms: restored.clone().flat_map(|record| record.room_average()),
        windows: restored.clone().flat_map(|record| record.window_average()),
    };
    let (room_averages, window_averages) = averages(
        readings.clone(),
        Some(aggregates),
        settings.windows,
        settings.emit,
    );
    let held_temperatures = restored.flat_map(|record| record.temperature_reading());
    Collections {
        room_averages,
        window_averages,
        temperature_deltas: temperature_deltas(
            readings.concat(held_temperatures),
            settings.horizon(),
        ),
    }
}
