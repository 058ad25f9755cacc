//! The incremental state log: the changes [`state_changes`] emits at each mark, applied by key
//! in order, rebuild exactly the full state [`checkpoint_state`] takes at the same mark.

mod support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use differential_dataflow::input::Input;
use roomflow_dataflows::{
    checkpoint_state, restored_at, state_changes, Checkpointed, Fixed, RoomAverage, Settings,
    StateChange, StateKey, Time, WindowAverage,
};
use support::reading;
use timely::dataflow::operators::{Input as _, Inspect};

/// 60 s windows, 2 min lateness, 1 s tick: windows seal and temperatures settle within the run.
fn settings() -> Settings {
    Settings::new(60_000, 120_000, 1_000)
}

#[test]
fn changes_applied_by_key_rebuild_every_full_checkpoint() {
    // Three rooms, two sensors, a reading every 7 s of event time for 20 minutes, some out of
    // order (held back 30 s); a mark every 50 s of stamps.
    let mut readings = Vec::new();
    for step in 0..170i64 {
        let ts = step * 7_000;
        let ts = if step % 11 == 3 { ts - 30_000 } else { ts };
        for room in ["a", "b", "c"] {
            readings.push(reading(room, "temperature", ts, 20_000 + step * 10));
            if step % 3 == 0 {
                readings.push(reading(room, "co2", ts, 400_000 + step));
            }
        }
    }
    let horizon = settings().horizon();
    let (full, changes) = timely::execute_directly(move |worker| {
        let full: Rc<RefCell<Vec<(Checkpointed, Time)>>> = Rc::default();
        let changes: Rc<RefCell<Vec<(StateChange, Time)>>> = Rc::default();
        let (full_sink, changes_sink) = (full.clone(), changes.clone());
        let (mut input, restored_input, mut marks) = worker.dataflow::<Time, _, _>(|scope| {
            let (input, readings) = scope.new_collection::<roomflow_dataflows::Reading, isize>();
            let (restored_input, restored) = scope.new_collection::<Checkpointed, isize>();
            let (marks_input, marks) = scope.new_input::<Vec<Time>>();
            checkpoint_state(
                readings.clone(),
                restored.clone(),
                marks.clone(),
                settings(),
            )
            .inspect_core(move |event| {
                if let Ok((stamp, records)) = event {
                    let time = *stamp.least().expect("a time");
                    let mut sink = full_sink.borrow_mut();
                    sink.extend(records.iter().map(|record| (record.clone(), time)));
                }
            });
            state_changes(readings, restored, marks, settings()).inspect_core(move |event| {
                if let Ok((stamp, records)) = event {
                    let time = *stamp.least().expect("a time");
                    let mut sink = changes_sink.borrow_mut();
                    sink.extend(records.iter().map(|change| (change.clone(), time)));
                }
            });
            (input, restored_input, marks_input)
        });
        restored_input.close();
        let mut newest = i64::MIN;
        let mut next_mark = 50_000;
        for reading in readings {
            newest = newest.max(reading.ts);
            let stamp = horizon.stamp(newest);
            if stamp >= next_mark {
                marks.advance_to(next_mark);
                marks.send(next_mark);
                next_mark += 50_000;
            }
            input.advance_to(stamp);
            marks.advance_to(stamp);
            input.insert(reading);
        }
        input.close();
        marks.close();
        while worker.step() {}
        let full = std::mem::take(&mut *full.borrow_mut());
        let changes = std::mem::take(&mut *changes.borrow_mut());
        (full, changes)
    });

    let mut marks: Vec<Time> = full.iter().map(|(_, time)| *time).collect();
    marks.dedup();
    assert!(marks.len() >= 20, "marks: {marks:?}");
    let mut log: BTreeMap<StateKey, Vec<Checkpointed>> = BTreeMap::new();
    let mut saw_release = false;
    for mark in marks {
        for (change, _) in changes.iter().filter(|(_, time)| *time == mark) {
            let before = log.get(&change.key).map_or(0, Vec::len);
            saw_release |= change.records.len() < before;
            if change.records.is_empty() {
                log.remove(&change.key);
            } else {
                assert!(change.records.iter().all(|r| StateKey::of(r) == change.key));
                log.insert(change.key.clone(), change.records.clone());
            }
        }
        let mut rebuilt: Vec<Checkpointed> = log.values().flatten().cloned().collect();
        let mut expected: Vec<Checkpointed> = full
            .iter()
            .filter(|(_, time)| *time == mark)
            .map(|(record, _)| record.clone())
            .collect();
        rebuilt.sort();
        expected.sort();
        assert_eq!(rebuilt, expected, "state at mark {mark}");
    }
    // Windows were sealed and temperatures settled along the way: a room's record shrank.
    assert!(saw_release);
}

/// The state changes of a job resumed at `resume` from `restored`, reading `readings` (event
/// time = stamp here), with one mark at `mark`.
fn resumed_changes(
    restored: Vec<Checkpointed>,
    resume: Time,
    readings: Vec<roomflow_dataflows::Reading>,
    mark: Time,
) -> Vec<StateChange> {
    timely::execute_directly(move |worker| {
        let changes: Rc<RefCell<Vec<StateChange>>> = Rc::default();
        let sink = changes.clone();
        let (mut input, mut restored_input, mut marks) = worker.dataflow::<Time, _, _>(|scope| {
            let (input, readings) = scope.new_collection::<roomflow_dataflows::Reading, isize>();
            let (restored_input, restored) = scope.new_collection::<Checkpointed, isize>();
            let (marks_input, marks) = scope.new_input::<Vec<Time>>();
            state_changes(readings, restored, marks, settings()).inspect_core(move |event| {
                if let Ok((_, records)) = event {
                    sink.borrow_mut().extend(records.iter().cloned());
                }
            });
            (input, restored_input, marks_input)
        });
        restored_input.advance_to(restored_at(resume));
        for record in restored {
            restored_input.insert(record);
        }
        restored_input.close();
        input.advance_to(resume);
        for reading in readings {
            input.insert(reading);
        }
        marks.advance_to(mark);
        marks.send(mark);
        input.close();
        marks.close();
        while worker.step() {}
        let changes = std::mem::take(&mut *changes.borrow_mut());
        changes
    })
}

#[test]
fn a_resumed_job_logs_only_what_changed_since_its_checkpoint() {
    // Resumed at 1,000 s: room a's co2 aggregate, its window [960 s, 1,020 s) (open until
    // 1,020 + 120 s), and its temperature at 990 s (held for the deltas).
    let resume = 1_000_000;
    let restored = vec![
        Checkpointed::Room(RoomAverage {
            room: "a".into(),
            sensor: "co2".into(),
            count: 2,
            sum: 900_000_000,
        }),
        Checkpointed::Window(WindowAverage {
            room: "a".into(),
            sensor: "co2".into(),
            window_start: 960_000,
            count: 2,
            sum: 900_000_000,
        }),
        Checkpointed::Temperature {
            room: "a".into(),
            ts: 990_000,
            value: Fixed(21_000_000),
        },
    ];
    // Nothing new: the changelog holds all of it already, nothing is written at the mark.
    let idle = resumed_changes(restored.clone(), resume, Vec::new(), resume + 1_000);
    assert_eq!(idle, Vec::new());
    // One co2 reading of room b: room b's record (its aggregate and its window), nothing of
    // room a's.
    let one = resumed_changes(
        restored,
        resume,
        vec![reading("b", "co2", 1_000_500, 500_000)],
        resume + 1_000,
    );
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0].key, StateKey { room: "b".into() });
    let mut records = one[0].records.clone();
    records.sort();
    let mut expected = vec![
        Checkpointed::Room(RoomAverage {
            room: "b".into(),
            sensor: "co2".into(),
            count: 1,
            sum: 500_000_000, // 500 (the helper takes thousandths) in millionths
        }),
        Checkpointed::Window(WindowAverage {
            room: "b".into(),
            sensor: "co2".into(),
            window_start: 960_000,
            count: 1,
            sum: 500_000_000,
        }),
    ];
    expected.sort();
    assert_eq!(records, expected);
}
