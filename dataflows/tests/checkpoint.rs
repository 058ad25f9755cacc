//! Checkpoints: the exact state taken at a mark, and a job resumed from it ending where an
//! uninterrupted job ends.

mod support;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use differential_dataflow::input::Input;
use roomflow_dataflows::{
    analytics_resumed, checkpoint_state, restored_at, Checkpointed, Emit, EventTime, Fixed,
    Reading, RoomAverage, Settings, TemperatureDelta, Time, WindowAverage,
};
use support::{reading, Outcome};
use timely::dataflow::operators::{Input as _, Inspect};

/// 60 s windows, 5 min lateness, 1 s tick.
fn settings() -> Settings {
    Settings::new(60_000, 300_000, 1_000)
}

/// What one run produced: every update of the collections, and the checkpoint taken.
struct Run {
    outcome: Outcome,
    checkpoint: Vec<Checkpointed>,
}

/// Runs the computation resumed from `restored` at `resumed_at`, on `readings` (each with its
/// stamp, in order), taking a checkpoint at `mark` if given.
fn run(
    readings: &[(Reading, Time)],
    restored: &[Checkpointed],
    resumed_at: Time,
    mark: Option<Time>,
) -> Run {
    run_with(readings, restored, resumed_at, mark, settings())
}

/// [`run`] with other settings.
fn run_with(
    readings: &[(Reading, Time)],
    restored: &[Checkpointed],
    resumed_at: Time,
    mark: Option<Time>,
    settings: Settings,
) -> Run {
    let (readings, restored) = (readings.to_vec(), restored.to_vec());
    timely::execute_directly(move |worker| {
        let outcome = Rc::new(RefCell::new(Outcome::default()));
        let checkpoint = Rc::new(RefCell::new(Vec::new()));
        let (sink, taken) = (outcome.clone(), checkpoint.clone());
        let (mut readings_input, mut restored_input, mut marks_input) = worker
            .dataflow::<Time, _, _>(|scope| {
                let (readings_input, readings) = scope.new_collection::<Reading, isize>();
                let (restored_input, restored) = scope.new_collection::<Checkpointed, isize>();
                let (marks_input, marks) = scope.new_input::<Vec<Time>>();
                let collections = analytics_resumed(readings.clone(), restored.clone(), settings)
                    .since(resumed_at);
                let (s1, s2, s3) = (sink.clone(), sink.clone(), sink.clone());
                collections
                    .room_averages
                    .inspect(move |u| s1.borrow_mut().room_averages.push(*u));
                collections
                    .window_averages
                    .inspect(move |u| s2.borrow_mut().window_averages.push(*u));
                collections
                    .temperature_deltas
                    .inspect(move |u| s3.borrow_mut().temperature_deltas.push(u.clone()));
                checkpoint_state(readings, restored, marks, settings)
                    .inspect(move |record| taken.borrow_mut().push(record.clone()));
                (readings_input, restored_input, marks_input)
            });
        readings_input.advance_to(resumed_at);
        restored_input.advance_to(restored_at(resumed_at));
        marks_input.advance_to(resumed_at);
        for record in restored {
            restored_input.insert(record);
        }
        restored_input.close();
        for (reading, stamp) in readings {
            if let Some(time) = mark.filter(|time| *time <= stamp) {
                if *marks_input.time() < time {
                    marks_input.advance_to(time);
                    marks_input.send(time);
                }
            }
            readings_input.advance_to(stamp);
            readings_input.insert(reading);
        }
        readings_input.close();
        marks_input.close();
        while worker.step() {}
        let outcome = std::mem::take(&mut *outcome.borrow_mut());
        let mut checkpoint = std::mem::take(&mut *checkpoint.borrow_mut());
        checkpoint.sort();
        Run {
            outcome,
            checkpoint,
        }
    })
}

/// Readings in arrival order with the stamps a stream gives them (its newest event time so far,
/// rounded down to the tick); late readings are dropped, as the source does.
fn stamped(readings: &[Reading]) -> Vec<(Reading, Time)> {
    let horizon = settings().horizon();
    let mut newest = EventTime::MIN;
    let mut out = Vec::new();
    for reading in readings {
        if reading.ts < newest.saturating_sub(horizon.lateness_ms) {
            continue;
        }
        newest = newest.max(reading.ts);
        out.push((reading.clone(), horizon.stamp(newest)));
    }
    out
}

#[test]
fn a_checkpoint_holds_aggregates_open_windows_and_the_temperatures_deltas_need() {
    // Room a (seconds, degrees): 0:20, 70:21, 120:22 and 10:humidity 50, then 460:23. Mark at
    // 450 s: everything stamped before it, i.e. all but the last reading.
    let readings = stamped(&[
        reading("a", "temperature", 0, 20_000),
        reading("a", "humidity", 10_000, 50_000),
        reading("a", "temperature", 70_000, 21_000),
        reading("a", "temperature", 120_000, 22_000),
        reading("a", "temperature", 460_000, 23_000),
    ]);
    let taken = run(&readings, &[], 0, Some(450_000)).checkpoint;
    // Windows expire at start + 60 s + 300 s: [0,60) at 360 s and [60,120) at 420 s are sealed
    // by 450 s; [120,180) expires at 480 s and is still open. The lateness settles event times
    // before 450 - 300 = 150 s: of the temperatures, only 120 s remains, as the predecessor of
    // whatever may still come.
    let mut expected = vec![
        Checkpointed::Room(RoomAverage {
            room: "a".into(),
            sensor: "temperature".into(),
            count: 3,
            sum: 63_000_000,
        }),
        Checkpointed::Room(RoomAverage {
            room: "a".into(),
            sensor: "humidity".into(),
            count: 1,
            sum: 50_000_000,
        }),
        Checkpointed::Window(WindowAverage {
            room: "a".into(),
            sensor: "temperature".into(),
            window_start: 120_000,
            count: 1,
            sum: 22_000_000,
        }),
        Checkpointed::Temperature {
            room: "a".into(),
            ts: 120_000,
            value: Fixed(22_000_000),
        },
    ];
    expected.sort();
    assert_eq!(taken, expected);
}

/// A store holding one value per key, as MongoDB does: each collection's updates, applied in
/// time order, overwrite or remove the key's value.
#[derive(Debug, Default, PartialEq)]
struct Store {
    room_averages: BTreeMap<(String, String), RoomAverage>,
    window_averages: BTreeMap<(String, String, EventTime), WindowAverage>,
    temperature_deltas: BTreeMap<(String, EventTime), TemperatureDelta>,
}

fn apply<K: Ord, D: Ord + Clone>(
    store: &mut BTreeMap<K, D>,
    updates: &[(D, Time, isize)],
    up_to: Option<Time>,
    key: impl Fn(&D) -> K,
) {
    let log = Outcome::changes(updates);
    let times: BTreeSet<Time> = log.iter().map(|(time, _, _)| *time).collect();
    for time in times
        .into_iter()
        .filter(|t| up_to.is_none_or(|limit| *t < limit))
    {
        // Within a time, retractions first, then insertions: an update replaces the old value.
        for (_, record, _) in log.iter().filter(|(t, _, r)| *t == time && *r < 0) {
            store.remove(&key(record));
        }
        for (_, record, _) in log.iter().filter(|(t, _, r)| *t == time && *r > 0) {
            store.insert(key(record), record.clone());
        }
    }
}

impl Store {
    fn apply(&mut self, outcome: &Outcome, up_to: Option<Time>) {
        apply(
            &mut self.room_averages,
            &outcome.room_averages,
            up_to,
            |r| (r.room.to_string(), r.sensor.to_string()),
        );
        apply(
            &mut self.window_averages,
            &outcome.window_averages,
            up_to,
            |w| (w.room.to_string(), w.sensor.to_string(), w.window_start),
        );
        apply(
            &mut self.temperature_deltas,
            &outcome.temperature_deltas,
            up_to,
            |d| (d.room.to_string(), d.ts),
        );
    }
}

/// Three rooms, two sensors, readings every 7 s for an hour from 1,000 s, each tenth one 40 s
/// behind (out of order, within the lateness) and each 97th 10 min behind (late); stamped.
fn an_hour_of_readings() -> Vec<(Reading, Time)> {
    let mut readings = Vec::new();
    for i in 0..1_500i64 {
        let room = ["a", "b", "c"][(i % 3) as usize];
        let sensor = if i % 4 == 0 {
            "humidity"
        } else {
            "temperature"
        };
        let mut ts = 1_000_000 + i * 7_000;
        if i % 10 == 5 {
            ts -= 40_000;
        }
        if i % 97 == 3 {
            ts -= 600_000;
        }
        readings.push(reading(room, sensor, ts, 20_000 + (i * 37) % 5_000));
    }
    stamped(&readings)
}

#[test]
fn a_job_resumed_from_a_checkpoint_ends_where_an_uninterrupted_job_ends() {
    let readings = an_hour_of_readings();
    let mut uninterrupted = Store::default();
    uninterrupted.apply(&run(&readings, &[], 0, None).outcome, None);

    for mark in [1_500_000, 4_000_000, 8_000_000] {
        // The first run goes past the mark, as a job does before it is killed; what it wrote at
        // or after the mark is overwritten when the resumed job gets there.
        let first = run(&readings, &[], 0, Some(mark));
        let mut store = Store::default();
        store.apply(&first.outcome, None);
        assert!(!first.checkpoint.is_empty());
        let after: Vec<_> = readings
            .iter()
            .filter(|(_, stamp)| *stamp >= mark)
            .cloned()
            .collect();
        let resumed = run(&after, &first.checkpoint, mark, None);
        store.apply(&resumed.outcome, None);
        assert_eq!(
            store, uninterrupted,
            "resumed from the checkpoint at {mark}"
        );

        // And from a store that holds only what was written before the mark.
        let mut store = Store::default();
        store.apply(&first.outcome, Some(mark));
        store.apply(&resumed.outcome, None);
        assert_eq!(
            store, uninterrupted,
            "resumed at {mark}, output cut at the mark"
        );
    }
}

#[test]
fn with_emit_final_a_resumed_job_emits_each_window_once_even_one_sealed_at_the_mark() {
    let settings = settings().emitting(Emit::Final);
    let readings = an_hour_of_readings();
    let uninterrupted = run_with(&readings, &[], 0, None, settings).outcome;
    // [1140 s, 1200 s) expires at 1140 + 60 + 300 = 1500 s: exactly at the first mark, so the
    // checkpoint holds it and its final value is due after the checkpoint.
    assert!(uninterrupted
        .window_averages
        .iter()
        .any(|(window, time, _)| *time == 1_500_000 && window.window_start == 1_140_000));
    for mark in [1_500_000, 4_000_000, 8_000_000] {
        let first = run_with(&readings, &[], 0, Some(mark), settings);
        let after: Vec<_> = readings
            .iter()
            .filter(|(_, stamp)| *stamp >= mark)
            .cloned()
            .collect();
        let resumed = run_with(&after, &first.checkpoint, mark, None, settings).outcome;
        // What an exactly-once consumer receives: the first run's output before the mark
        // (committed with the checkpoint), then the resumed run's.
        let mut delivered: Vec<_> = first
            .outcome
            .window_averages
            .iter()
            .filter(|(_, time, _)| *time < mark)
            .cloned()
            .collect();
        delivered.extend(resumed.window_averages);
        assert_eq!(
            Outcome::changes(&delivered),
            Outcome::changes(&uninterrupted.window_averages),
            "resumed from the checkpoint at {mark}"
        );
    }
}

#[test]
fn a_resumed_job_writes_again_only_what_changes_from_the_checkpoint_on() {
    let readings = an_hour_of_readings();
    let mark = 4_000_000;
    let first = run(&readings, &[], 0, Some(mark));
    assert!(first.checkpoint.len() > 10, "{}", first.checkpoint.len());
    // Nothing new to read: nothing to write, whatever the checkpoint holds (the restored state
    // is in every output already, up to the mark).
    let idle = run(&[], &first.checkpoint, mark, None).outcome;
    assert!(idle.room_averages.is_empty(), "{:?}", idle.room_averages);
    assert!(
        idle.window_averages.is_empty(),
        "{:?}",
        idle.window_averages
    );
    assert!(idle.temperature_deltas.is_empty());
    // Only room a reads on: rooms b and c are not written again; a changes from its restored
    // values (its aggregates' old values retracted, as from an uninterrupted run's).
    let only_a: Vec<_> = readings
        .iter()
        .filter(|(reading, stamp)| *stamp >= mark && reading.room == "a")
        .cloned()
        .collect();
    let resumed = run(&only_a, &first.checkpoint, mark, None).outcome;
    assert!(!resumed.room_averages.is_empty());
    assert!(resumed.room_averages.iter().all(|(r, _, _)| r.room == "a"));
    assert!(resumed
        .window_averages
        .iter()
        .all(|(w, _, _)| w.room == "a"));
    assert!(resumed
        .temperature_deltas
        .iter()
        .all(|(d, _, _)| d.room == "a"));
    assert!(resumed
        .room_averages
        .iter()
        .any(|(_, time, diff)| *time >= mark && *diff < 0));
}
