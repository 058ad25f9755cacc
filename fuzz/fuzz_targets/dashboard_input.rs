//! Any bytes the dashboard reads from outside: as an alpha message, as a line of a replay's
//! `dead_letters.jsonl` or `late.jsonl`, as a dead-letter message with any headers. Each is
//! applied to a building (or counted as malformed), and then every view and chart of every room
//! is drawn: nothing may panic, and every view serializes.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use roomflow::dashboard::building::Building;
use roomflow::dashboard::rejected::{self, Kind};
use roomflow::dashboard::{charts, views};

fuzz_target!(|data: &[u8]| {
    let mut building = Building::new(3);
    // The input split at its newlines: several messages, so keys can be replaced and deleted.
    for (n, message) in data.split(|byte| *byte == b'\n').enumerate() {
        match n % 4 {
            0 | 1 => building.apply("alpha/0/0", message),
            2 => match rejected::from_file_line(Kind::Late, message) {
                Ok(input) => building.reject(input),
                Err(error) => building.malformed("late.jsonl:1", error),
            },
            _ => {
                let headers: BTreeMap<String, String> = [
                    ("roomflow.kind", "malformed"),
                    ("roomflow.reason", "bad"),
                    ("roomflow.topic", "t"),
                    ("roomflow.partition", "0"),
                    ("roomflow.offset", "1"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                match rejected::from_dead_letter(&headers, message) {
                    Ok(input) => building.reject(input),
                    Err(error) => building.malformed("t/0/1", error),
                }
            }
        }
    }
    let staleness = views::Staleness { after_ms: 600_000 };
    serde_json::to_string(&views::building(&building, staleness, 0)).expect("serializes");
    for (name, room) in &building.rooms {
        let view = views::room(&building, staleness, name).expect("a known room");
        serde_json::to_string(&view).expect("serializes");
        for sensor in room.sensors.values() {
            let points: Vec<(i64, f64)> =
                sensor.windows.iter().map(|(start, a)| (*start, a.avg)).collect();
            let svg = charts::line(&points).expect("draws");
            assert_eq!(svg.matches("<circle").count(), points.len());
        }
        let deltas: Vec<(i64, f64)> = room.deltas.values().map(|d| (d.ts, d.delta)).collect();
        charts::deltas(&deltas).expect("draws");
    }
});
