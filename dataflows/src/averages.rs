//! `room_averages` and `window_averages`: per (room, sensor), the count, sum and mean of every
//! reading applied so far, and the same per tumbling event-time window.
//!
//! Both are sums, so both are computed by one operator: each reading is combined into its window's
//! contribution per time where it is produced, each window's contribution also counts for its
//! room's all-time aggregate, and `running_totals` (`totals.rs`: `count_total` without an
//! arrangement) accumulates them per key. State is one accumulated `SumCount` per key.
//!
//! What a window receives is received twice: once now, and once negated at the window's
//! *expiry*, the first dataflow time at which the window can no longer change (its end plus the
//! lateness). The negation empties the window's accumulation, so its state is dropped; the
//! retraction that `running_totals` then reports is filtered out, because it says "sealed",
//! not "deleted". State is thus proportional to the keys and to the windows inside the lateness
//! horizon, and every sealed window keeps its final value in the output.
//!
//! With [`Emit::Final`] the roles turn around: the intermediate versions are dropped and the
//! sealing retraction, negated, is the output. It holds the window's final value, at its expiry,
//! once; no reading can reach a window at or after its expiry (an admitted reading is stamped
//! before it, see `horizon.rs`), so nothing follows it.

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::{Map, Partition};
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

use crate::combine::combine;
use crate::horizon::Time;
use crate::reading::{EventTime, Name, Reading};
use crate::sized::MapSized;
use crate::sum_count::SumCount;
use crate::totals::running_totals;
use crate::windows::{Emit, WindowAverage, Windows};

/// The all-time aggregate of one sensor of one room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
// Aligned to 8, not to the `i128`'s 16: 8 bytes less per aggregate (and per key holding one) at
// a portfolio's size. Fields are read by value (the derives copy them; the type is `Copy`).
#[repr(C, packed(8))]
pub struct RoomAverage {
    /// The room.
    pub room: Name,
    /// The sensor.
    pub sensor: Name,
    /// Readings applied.
    pub count: i64,
    /// Their sum, in micro-units.
    pub sum: i128,
}

/// What a contribution adds to: a room's all-time aggregate or one of its windows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Aggregate {
    Room(Name, Name),
    Window(Name, Name, EventTime),
}

/// Aggregates restored from a checkpoint: each counts as a contribution at its time.
pub struct Restored<'s> {
    /// Rooms' all-time aggregates.
    pub rooms: VecCollection<'s, Time, RoomAverage>,
    /// Windows' aggregates.
    pub windows: VecCollection<'s, Time, WindowAverage>,
}

/// Per (room, sensor) the all-time aggregate, and per (room, sensor, window) the window's
/// (every version, or only the final one as `emit` says), continuing from `restored` aggregates
/// when a job resumes.
pub fn averages<'s>(
    readings: VecCollection<'s, Time, Reading>,
    restored: Option<Restored<'s>>,
    windows: Windows,
    emit: Emit,
) -> (
    VecCollection<'s, Time, RoomAverage>,
    VecCollection<'s, Time, WindowAverage>,
) {
    // Readings are combined per window only (one hash-map update per reading, not two); each
    // window's combined total then counts for its room's all-time aggregate as well.
    let contributions = combine(readings, move |reading: Reading| {
        let window = Aggregate::Window(reading.room, reading.sensor, windows.start_of(reading.ts));
        [(window, SumCount::of(reading.value))]
    })
    .inner
    .flat_map_sized(|(aggregate, time, total)| {
        let room = match &aggregate {
            Aggregate::Window(room, sensor, _) => Aggregate::Room(*room, *sensor),
            Aggregate::Room(..) => unreachable!("combined per window"),
        };
        [(room, time, total), (aggregate, time, total)]
    })
    .as_collection();
    let (contributions, sealed_at_restore) = with_restored(contributions, restored, windows);
    // Each window's combined contribution is cancelled again at the window's expiry. Adding the
    // cancellation after combining costs one update per window and batch, not per reading.
    let with_expiries = contributions
        .inner
        .flat_map_sized(move |(aggregate, time, total)| {
            let expiry = match &aggregate {
                Aggregate::Window(.., start) => {
                    Some((aggregate.clone(), windows.expiry(*start), total.negated()))
                }
                Aggregate::Room(..) => None,
            };
            std::iter::once((aggregate, time, total)).chain(expiry)
        });
    // Three parts, by what each update is: a room's aggregate, a window's, or the retraction that
    // seals a window.
    let mut parts = running_totals(with_expiries)
        .partition(3, move |((aggregate, total), time, diff)| {
            let part = match &aggregate {
                Aggregate::Room(..) => 0,
                Aggregate::Window(.., start) if time < windows.expiry(*start) => 1,
                Aggregate::Window(..) => 2,
            };
            (part, ((aggregate, total), time, diff))
        })
        .into_iter();
    let (rooms, versions, sealing) = (
        parts.next().expect("three parts"),
        parts.next().expect("three parts"),
        parts.next().expect("three parts"),
    );
    let windowed = match emit {
        // The sealing retraction says "sealed", not "deleted": dropped.
        Emit::Updates => versions,
        Emit::Final => {
            let finals = sealing.map(|(update, time, diff)| (update, time, -diff));
            match sealed_at_restore {
                None => finals,
                Some(sealed) => finals.concat(sealed.map(|(window, time, diff)| {
                    let total = SumCount {
                        sum: window.sum,
                        count: window.count,
                    };
                    let aggregate =
                        Aggregate::Window(window.room, window.sensor, window.window_start);
                    ((aggregate, total), time, diff)
                })),
            }
        }
    };
    // Sized containers: the aggregates of a fine tick are a few per time, and timely's `map`
    // would give each time 8 KiB (see `sized.rs`).
    let room_averages = rooms
        .map_sized(|((aggregate, total), time, diff)| match aggregate {
            Aggregate::Room(room, sensor) => (
                RoomAverage {
                    room,
                    sensor,
                    count: total.count,
                    sum: total.sum,
                },
                time,
                diff,
            ),
            Aggregate::Window(..) => unreachable!("partitioned"),
        })
        .as_collection();
    let window_averages = windowed
        .map_sized(|((aggregate, total), time, diff)| match aggregate {
            Aggregate::Window(room, sensor, window_start) => (
                WindowAverage {
                    room,
                    sensor,
                    window_start,
                    count: total.count,
                    sum: total.sum,
                },
                time,
                diff,
            ),
            Aggregate::Room(..) => unreachable!("partitioned"),
        })
        .as_collection();
    (room_averages, window_averages)
}

/// The readings' contributions and, when a job resumes, its `restored` aggregates counted as
/// contributions at their times; beside them, the restored windows that were already sealed at
/// their time, whose final values go to the output directly.
#[allow(clippy::type_complexity)]
fn with_restored<'s>(
    contributions: VecCollection<'s, Time, Aggregate, SumCount>,
    restored: Option<Restored<'s>>,
    windows: Windows,
) -> (
    VecCollection<'s, Time, Aggregate, SumCount>,
    Option<StreamVec<'s, Time, (WindowAverage, Time, isize)>>,
) {
    match restored {
        None => (contributions, None),
        Some(restored) => {
            let rooms = restored.rooms.inner.map(|(average, time, _)| {
                (
                    Aggregate::Room(average.room, average.sensor),
                    time,
                    SumCount {
                        sum: average.sum,
                        count: average.count,
                    },
                )
            });
            // A checkpoint at `T` keeps the windows whose expiry is at or after `T`. One that
            // expires exactly at `T` would be added and cancelled at the same time, which
            // differential consolidates to nothing: its final value, due at `T` and not yet
            // emitted when the checkpoint was taken, goes to the output directly.
            let mut restored_windows = restored
                .windows
                .inner
                .partition(2, move |(window, time, diff)| {
                    let sealed = windows.expiry(window.window_start) <= time;
                    (u64::from(sealed), (window, time, diff))
                })
                .into_iter();
            let open = restored_windows.next().expect("two parts");
            let sealed = restored_windows.next().expect("two parts");
            let windows = open.map(|(window, time, _)| {
                (
                    Aggregate::Window(window.room, window.sensor, window.window_start),
                    time,
                    SumCount {
                        sum: window.sum,
                        count: window.count,
                    },
                )
            });
            let contributions = contributions
                .inner
                .concat(rooms)
                .concat(windows)
                .as_collection();
            (contributions, Some(sealed))
        }
    }
}
