//! The run's summary: room averages gathered on worker 0 for the per-room table and the final
//! counts, and how both are printed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::VecCollection;
use roomflow_dataflows::reading::mean_to_f64;
use roomflow_dataflows::{HeldByTime, KeyedState, Name, RoomAverage, Time};
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

/// Final room averages, gathered on worker 0.
pub type RoomTable = Arc<Mutex<Vec<(RoomAverage, isize)>>>;

/// What the summary gathers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gathered {
    /// Every room's averages, for the table printed without `--out`.
    Table,
    /// One entry per room, its sensor empty and its count the room's readings: all the summary
    /// line needs when the results go to files. Keeping every average here as well cost a second
    /// copy of the aggregates (100 MB of a replay of 100,000 rooms).
    Counts,
}

/// Gathers the final `room_averages` on worker 0 into `table`, as `gathered` says. Each worker
/// keeps what it needs of its own keys and sends it once, when its input is complete, so worker 0
/// does not see every intermediate value.
pub fn gather_room_averages(
    room_averages: VecCollection<'_, Time, RoomAverage>,
    table: RoomTable,
    gathered: Gathered,
) {
    let finals = match gathered {
        Gathered::Table => final_averages(room_averages),
        Gathered::Counts => readings_per_room(room_averages),
    };
    finals.sink(
        Exchange::new(|_: &RoomAverage| 0),
        "GatherSummary",
        move |(input, _)| {
            let mut table = table.lock().expect("no panics holding the lock");
            input.for_each(|_, data| table.extend(data.drain(..).map(|record| (record, 1))));
        },
    );
}

/// Per room, its readings (the sum of its keys' final counts), once the input is complete: the
/// counts telescope, so each update adds its count times its sign, in any order.
fn readings_per_room<'s>(
    room_averages: VecCollection<'s, Time, RoomAverage>,
) -> StreamVec<'s, Time, RoomAverage> {
    room_averages
        .inner
        .unary_frontier(Pipeline, "RoomCounts", |capability, _| {
            let mut capability = Some(capability);
            // Per room: its keys with a value, and their readings.
            let mut rooms: FxHashMap<Name, (isize, i64)> = FxHashMap::default();
            move |(input, frontier), output| {
                input.for_each(|_, data| {
                    for (record, _, diff) in data.drain(..) {
                        let (keys, readings) = rooms.entry(record.room).or_default();
                        *keys += diff;
                        *readings += diff as i64 * record.count;
                    }
                });
                match (frontier.frontier().first(), capability.as_mut()) {
                    (Some(time), Some(held)) => held.downgrade(time),
                    (None, Some(held)) => {
                        let rooms = std::mem::take(&mut rooms).into_iter();
                        output.session(held).give_iterator(
                            rooms.filter(|&(_room, (keys, _count))| keys > 0).map(
                                |(room, (_keys, count))| RoomAverage {
                                    room,
                                    sensor: Name::default(),
                                    count,
                                    sum: 0,
                                },
                            ),
                        );
                        capability = None;
                    }
                    _ => {}
                }
            }
        })
}

/// Every key's final average, once the input is complete.
fn final_averages<'s>(
    room_averages: VecCollection<'s, Time, RoomAverage>,
) -> StreamVec<'s, Time, RoomAverage> {
    room_averages
        .inner
        .unary_frontier(Pipeline, "RoomSummary", |capability, _| {
            let mut capability = Some(capability);
            let mut pending: HeldByTime<(RoomAverage, isize)> = HeldByTime::default();
            let mut state: KeyedState<RoomAverage> = KeyedState::default();
            move |(input, frontier), output| {
                input.for_each(|_, data| {
                    for (record, time, diff) in data.drain(..) {
                        pending.entry(time).push((record, diff));
                    }
                });
                let complete_before = frontier.frontier().first().copied();
                while let Some((_, (), mut updates)) = pending.pop_complete(complete_before) {
                    state.apply(updates.drain(..));
                    pending.recycle(updates);
                }
                match (frontier.frontier().first(), capability.as_mut()) {
                    (Some(time), Some(held)) => held.downgrade(time),
                    (None, Some(held)) => {
                        output.session(held).give_iterator(state.drain());
                        capability = None;
                    }
                    _ => {}
                }
            }
        })
}

/// Renders the per-room table: one row per room, one column per sensor, `mean (count)`.
pub fn render_table(table: &mut Vec<(RoomAverage, isize)>, max_rows: usize) -> String {
    consolidate(table);
    let sensors: BTreeSet<String> = table.iter().map(|(r, _)| shown(&r.sensor)).collect();
    let mut rows: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (record, _) in table.iter() {
        rows.entry(shown(&record.room)).or_default().insert(
            shown(&record.sensor),
            format!(
                "{:.2} ({})",
                mean_to_f64(record.sum, record.count),
                record.count
            ),
        );
    }
    // Widths in characters, as the formatter pads.
    let chars = |text: &str| text.chars().count();
    let room_width = rows
        .keys()
        .map(|room| chars(room))
        .max()
        .unwrap_or(4)
        .max(4);
    let width = |sensor: &str| {
        rows.values()
            .filter_map(|row| row.get(sensor))
            .map(|cell| chars(cell))
            .max()
            .unwrap_or(0)
            .max(chars(sensor))
    };
    let widths: Vec<(&str, usize)> = sensors.iter().map(|s| (s.as_str(), width(s))).collect();
    let mut out = String::new();
    let _ = write!(out, "{:room_width$}", "room");
    for (sensor, w) in &widths {
        let _ = write!(out, "  {sensor:>w$}");
    }
    out.push('\n');
    for (room, row) in rows.iter().take(max_rows) {
        let _ = write!(out, "{room:room_width$}");
        for (sensor, w) in &widths {
            let _ = write!(
                out,
                "  {:>w$}",
                row.get(*sensor).map_or("-", String::as_str)
            );
        }
        out.push('\n');
    }
    if rows.len() > max_rows {
        let _ = writeln!(
            out,
            "… and {} more rooms (write them all with --out DIR)",
            rows.len() - max_rows
        );
    }
    out
}

/// The most characters of a name the table shows.
const SHOWN_NAME_CHARS: usize = 24;

/// A name as the table shows it: on one line (control characters escaped) and at most
/// [`SHOWN_NAME_CHARS`] characters, cut with `…`. The files and MongoDB keep names whole.
fn shown(name: &str) -> String {
    let mut shown: Vec<char> = Vec::with_capacity(SHOWN_NAME_CHARS + 4);
    for c in name.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
        if shown.len() > SHOWN_NAME_CHARS {
            shown.truncate(SHOWN_NAME_CHARS - 1);
            shown.push('…');
            break;
        }
    }
    shown.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_room_and_a_column_per_sensor() {
        let average = |room: &str, sensor: &str, count, sum| RoomAverage {
            room: room.into(),
            sensor: sensor.into(),
            count,
            sum,
        };
        let mut table = vec![
            (average("413", "temperature", 2, 47_870_000), 1),
            (average("413", "co2", 1, 450_000_000), 1),
            (average("415", "temperature", 1, 21_000_000), 1),
            (average("415", "temperature", 1, 20_000_000), 1),
            (average("415", "temperature", 1, 20_000_000), -1),
        ];
        // 47.87 / 2 = 23.935, which as a float is 23.93499…: two decimals show 23.93. Columns are
        // right-aligned to the wider of header and cells: co2 10, temperature 11.
        assert_eq!(
            render_table(&mut table, 10),
            "room         co2  temperature\n\
             413   450.00 (1)    23.93 (2)\n\
             415            -    21.00 (1)\n"
        );
    }

    #[test]
    fn long_and_unprintable_names_are_shown_short_and_on_one_line() {
        // A 100,000-character room once made the formatter panic (width out of range).
        let long = "x".repeat(100_000);
        let mut table = vec![
            (
                RoomAverage {
                    room: long.as_str().into(),
                    sensor: "co\n2".into(),
                    count: 1,
                    sum: 1_000_000,
                },
                1,
            ),
            (
                RoomAverage {
                    room: "é".into(),
                    sensor: "co\n2".into(),
                    count: 1,
                    sum: 2_000_000,
                },
                1,
            ),
        ];
        // Room column: 24 characters (23 x and an ellipsis). The sensor shows as `co\n2`, five
        // characters, right-aligned to its cells' eight. é is one character, padded to 24.
        let expected = format!(
            "room{}co\\n2\n{}…  1.00 (1)\né{}  2.00 (1)\n",
            " ".repeat(25),
            "x".repeat(23),
            " ".repeat(23),
        );
        assert_eq!(render_table(&mut table, 10), expected);
    }
}
