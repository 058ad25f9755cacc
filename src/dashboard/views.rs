//! What the pages and the `/api/` endpoints show, as JSON: a tile per room for the building page,
//! the whole of one room for its page, and the building's counters. The page is drawn from these
//! and nothing else, so the API returns exactly the state the page shows.

use serde::Serialize;

use super::building::{Average, Building, Delta, Malformed, Room};
use super::rejected::{Kind, RejectedInput, RejectedTally};

/// How many of its newest windows a tile's trend shows.
pub const TREND_WINDOWS: usize = 12;

/// The building page: every room's tile and the counters.
#[derive(Serialize)]
pub struct BuildingView<'a> {
    /// The state's version: it goes up with every message the dashboard handles.
    pub version: u64,
    /// The newest dataflow time of any change (epoch ms): the building's "now".
    pub newest_time: Option<i64>,
    /// A room not heard from for this long before `newest_time` is stale.
    pub stale_after_ms: i64,
    /// Windows kept per room and sensor.
    pub retain_windows: usize,
    /// The counters.
    pub counters: CountersView<'a>,
    /// The rooms' tiles, by room name (every room, or those changed since a version).
    pub rooms: Vec<TileView<'a>>,
}

/// A room's tile.
#[derive(Serialize)]
pub struct TileView<'a> {
    /// The room's name.
    pub room: &'a str,
    /// The dataflow time of its newest change.
    pub last_heard: Option<i64>,
    /// Whether it was last heard more than `stale_after_ms` before the building's newest time.
    pub stale: bool,
    /// Its sensors, by name.
    pub sensors: Vec<SensorTileView<'a>>,
    /// Its newest temperature delta.
    pub delta: Option<&'a Delta>,
    /// Its dead letters.
    pub dead_letters: u64,
    /// Its late readings.
    pub late: u64,
}

/// One sensor on a tile.
#[derive(Serialize)]
pub struct SensorTileView<'a> {
    /// The sensor's name.
    pub sensor: &'a str,
    /// Its newest window.
    pub window: Option<WindowView>,
    /// Its all-time average.
    pub all_time: Option<&'a Average>,
    /// The averages of its newest windows (at most [`TREND_WINDOWS`]), oldest first.
    pub trend: Vec<f64>,
}

/// One window's average.
#[derive(Serialize, Clone, Copy)]
pub struct WindowView {
    /// The window's start (epoch ms).
    pub window_start: i64,
    /// Readings in it.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Their average.
    pub avg: f64,
}

/// The building's counters.
#[derive(Serialize)]
pub struct CountersView<'a> {
    /// Rooms known.
    pub rooms: usize,
    /// Changes applied.
    pub changes: u64,
    /// Dead letters, by reason.
    pub dead_letters: ReasonsView,
    /// Late readings, by reason.
    pub late: ReasonsView,
    /// Messages that were not changes: how many, and the newest.
    pub malformed_changes: u64,
    /// The newest malformed messages.
    pub malformed_recent: Vec<&'a Malformed>,
}

/// A count and its split by reason (numbers in the reasons elided), most frequent first.
#[derive(Serialize)]
pub struct ReasonsView {
    /// All of them.
    pub total: u64,
    /// By reason.
    pub by_reason: Vec<ReasonCount>,
}

/// One reason's count.
#[derive(Serialize)]
pub struct ReasonCount {
    /// The reason, numbers elided.
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// A room's page.
#[derive(Serialize)]
pub struct RoomView<'a> {
    /// The room's name.
    pub room: &'a str,
    /// The dataflow time of its newest change.
    pub last_heard: Option<i64>,
    /// Whether it is stale.
    pub stale: bool,
    /// Every sensor with every retained window.
    pub sensors: Vec<SensorView<'a>>,
    /// Its retained temperature deltas, oldest first.
    pub deltas: Vec<&'a Delta>,
    /// Its dead letters.
    pub dead_letters: u64,
    /// Its late readings.
    pub late: u64,
    /// Its newest rejected inputs, newest first.
    pub rejected: Vec<&'a RejectedInput>,
}

/// One sensor on a room's page.
#[derive(Serialize)]
pub struct SensorView<'a> {
    /// The sensor's name.
    pub sensor: &'a str,
    /// Its all-time average.
    pub all_time: Option<&'a Average>,
    /// Its retained windows, oldest first.
    pub windows: Vec<WindowView>,
}

/// How staleness is judged.
#[derive(Clone, Copy, Debug)]
pub struct Staleness {
    /// A room last heard this long before the building's newest time is stale.
    pub after_ms: i64,
}

impl Staleness {
    fn of(&self, building: &Building, room: &Room) -> bool {
        match (building.newest_time, room.last_heard) {
            (Some(newest), Some(last)) => newest - last > self.after_ms,
            _ => false,
        }
    }
}

/// The building page's state: every room whose version is above `since` (every room for 0).
pub fn building(building: &Building, staleness: Staleness, since: u64) -> BuildingView<'_> {
    BuildingView {
        version: building.version,
        newest_time: building.newest_time,
        stale_after_ms: staleness.after_ms,
        retain_windows: building.retain(),
        counters: counters(building),
        rooms: building
            .rooms
            .iter()
            .filter(|(_, room)| room.changed > since)
            .map(|(name, room)| tile(building, staleness, name, room))
            .collect(),
    }
}

fn tile<'a>(
    building: &Building,
    staleness: Staleness,
    name: &'a str,
    room: &'a Room,
) -> TileView<'a> {
    TileView {
        room: name,
        last_heard: room.last_heard,
        stale: staleness.of(building, room),
        sensors: room
            .sensors
            .iter()
            .map(|(sensor, state)| SensorTileView {
                sensor,
                window: state
                    .windows
                    .last_key_value()
                    .map(|(start, average)| window(*start, average)),
                all_time: state.all_time.as_ref(),
                trend: state
                    .windows
                    .values()
                    .rev()
                    .take(TREND_WINDOWS)
                    .rev()
                    .map(|average| average.avg)
                    .collect(),
            })
            .collect(),
        delta: room.deltas.last_key_value().map(|(_, delta)| delta),
        dead_letters: room.rejected.dead_letters,
        late: room.rejected.late,
    }
}

fn window(start: i64, average: &Average) -> WindowView {
    WindowView {
        window_start: start,
        count: average.count,
        sum: average.sum,
        avg: average.avg,
    }
}

fn counters(building: &Building) -> CountersView<'_> {
    CountersView {
        rooms: building.rooms.len(),
        changes: building.applied,
        dead_letters: reasons(&building.rejected, Kind::DeadLetter),
        late: reasons(&building.rejected, Kind::Late),
        malformed_changes: building.malformed,
        malformed_recent: building.malformed_recent.iter().rev().collect(),
    }
}

fn reasons(tally: &RejectedTally, kind: Kind) -> ReasonsView {
    let mut by_reason: Vec<ReasonCount> = tally
        .by_reason
        .iter()
        .filter(|((of, _), _)| *of == kind)
        .map(|((_, reason), count)| ReasonCount {
            reason: reason.clone(),
            count: *count,
        })
        .collect();
    by_reason.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    ReasonsView {
        total: match kind {
            Kind::DeadLetter => tally.dead_letters,
            Kind::Late => tally.late,
        },
        by_reason,
    }
}

/// One room's page, if the room is known.
pub fn room<'a>(building: &'a Building, staleness: Staleness, name: &str) -> Option<RoomView<'a>> {
    let (name, room) = building.rooms.get_key_value(name)?;
    Some(RoomView {
        room: name,
        last_heard: room.last_heard,
        stale: staleness.of(building, room),
        sensors: room
            .sensors
            .iter()
            .map(|(sensor, state)| SensorView {
                sensor,
                all_time: state.all_time.as_ref(),
                windows: state
                    .windows
                    .iter()
                    .map(|(start, average)| window(*start, average))
                    .collect(),
            })
            .collect(),
        deltas: room.deltas.values().collect(),
        dead_letters: room.rejected.dead_letters,
        late: room.rejected.late,
        rejected: room.rejected.recent.iter().rev().collect(),
    })
}

/// The name a path segment stands for. "." and ".." cannot be path segments (a browser resolves
/// them, and their %2E forms, as "this" and "the parent" directory), so the pages write such a
/// name, and any of `~`s followed by one or two dots, with one `~` more in front (`segment` in
/// common.js); this takes it off. Every other segment is the name itself.
pub fn name_from_segment(segment: String) -> String {
    let dots = segment.trim_start_matches('~');
    if dots.len() < segment.len() && matches!(dots, "." | "..") {
        segment[1..].to_string()
    } else {
        segment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_names_come_back_from_their_segments() {
        for (segment, name) in [
            ("~.", "."),
            ("~..", ".."),
            ("~~..", "~.."),
            ("~~~.", "~~."),
            ("~", "~"),
            ("~...", "~..."),
            ("r003", "r003"),
            (".hidden", ".hidden"),
            ("...", "..."),
        ] {
            assert_eq!(name_from_segment(segment.into()), name, "{segment}");
        }
    }
}
