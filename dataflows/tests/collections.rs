//! Exact collections for small hand-made inputs: window boundaries, corrections of windows and
//! deltas by out-of-order readings, late readings, sealing without deletions, and windows
//! emitted once when final.
//! Every expected value below is worked out by hand in the comments.

mod support;

use roomflow_dataflows::{Emit, Fixed, RoomAverage, Settings, TemperatureDelta, WindowAverage};
use support::{reading, run, Outcome};

fn settings() -> Settings {
    // 60 s windows, 5 min lateness, 1 s tick.
    Settings::new(60_000, 300_000, 1_000)
}

fn delta(ts_s: i64, prev_ts_s: i64, value: i64, prev_value: i64) -> TemperatureDelta {
    TemperatureDelta {
        room: "a".into(),
        ts: ts_s * 1000,
        prev_ts: prev_ts_s * 1000,
        value: Fixed(value * 1_000_000),
        prev_value: Fixed(prev_value * 1_000_000),
    }
}

fn window(start_s: i64, count: i64, sum: i128) -> WindowAverage {
    WindowAverage {
        room: "a".into(),
        sensor: "temperature".into(),
        window_start: start_s * 1000,
        count,
        sum: sum * 1_000_000,
    }
}

fn average(count: i64, sum: i128) -> RoomAverage {
    RoomAverage {
        room: "a".into(),
        sensor: "temperature".into(),
        count,
        sum: sum * 1_000_000,
    }
}

/// Room a's temperatures, in arrival order (seconds, degrees):
/// 0:20, 70:21, 120:22, 180:23, then 60:25 (out of order, 120 s behind 180: applied),
/// 700:24, then 100:30 (600 s behind 700: late).
fn room_a() -> Vec<roomflow_dataflows::Reading> {
    [
        (0, 20),
        (70, 21),
        (120, 22),
        (180, 23),
        (60, 25),
        (700, 24),
        (100, 30),
    ]
    .into_iter()
    .map(|(s, degrees)| reading("a", "temperature", s * 1000, degrees * 1000))
    .collect()
}

#[test]
fn out_of_order_reading_corrects_its_window_and_both_neighbouring_deltas() {
    let outcome = run(vec![room_a()], 1, 1, settings());

    // Stamps are each reading's stream watermark: 0, 70, 120, 180, 180 (the 60 s reading arrives
    // after 180 s), 700. Deltas at 180 s: 180 after 120 (+1 °C); 60 between 0 and 70 gets
    // 25-20 = +5 and 70's delta changes from 21-20 to 21-25.
    assert_eq!(
        Outcome::changes(&outcome.temperature_deltas),
        vec![
            (70_000, delta(70, 0, 21, 20), 1),
            (120_000, delta(120, 70, 22, 21), 1),
            (180_000, delta(60, 0, 25, 20), 1),
            (180_000, delta(70, 0, 21, 20), -1),
            (180_000, delta(70, 60, 21, 25), 1),
            (180_000, delta(180, 120, 23, 22), 1),
            (700_000, delta(700, 180, 24, 23), 1),
        ]
    );

    // Window [60 s, 120 s) held 70:21 and gains 60:25 at 180 s: count 2, sum 46. No window is
    // ever retracted by sealing, though all of them expire (end + 5 min) before the input ends.
    assert_eq!(
        Outcome::changes(&outcome.window_averages),
        vec![
            (0, window(0, 1, 20), 1),
            (70_000, window(60, 1, 21), 1),
            (120_000, window(120, 1, 22), 1),
            (180_000, window(60, 1, 21), -1),
            (180_000, window(60, 2, 46), 1),
            (180_000, window(180, 1, 23), 1),
            (700_000, window(660, 1, 24), 1),
        ]
    );

    // All-time: 20, 20+21 = 41, +22 = 63, +23+25 = 111, +24 = 135.
    assert_eq!(
        Outcome::changes(&outcome.room_averages),
        vec![
            (0, average(1, 20), 1),
            (70_000, average(1, 20), -1),
            (70_000, average(2, 41), 1),
            (120_000, average(2, 41), -1),
            (120_000, average(3, 63), 1),
            (180_000, average(3, 63), -1),
            (180_000, average(5, 111), 1),
            (700_000, average(5, 111), -1),
            (700_000, average(6, 135), 1),
        ]
    );

    assert_eq!(
        outcome.late,
        vec![reading("a", "temperature", 100_000, 30_000)]
    );
}

#[test]
fn emit_final_writes_each_window_once_at_its_expiry_with_its_late_readings() {
    let outcome = run(vec![room_a()], 1, 1, settings().emitting(Emit::Final));

    // A window expires at its end plus the 5 min lateness: [0,60) at 360 s, [60,120) at 420 s,
    // [120,180) at 480 s, [180,240) at 540 s, [660,720) at 1020 s (after the input ends, when
    // the frontier empties). [60,120) holds 70:21 and the out-of-order 60:25, admitted at 180 s:
    // count 2, sum 46, in its one and only version. Nothing is ever retracted.
    assert_eq!(
        Outcome::changes(&outcome.window_averages),
        vec![
            (360_000, window(0, 1, 20), 1),
            (420_000, window(60, 2, 46), 1),
            (480_000, window(120, 1, 22), 1),
            (540_000, window(180, 1, 23), 1),
            (1_020_000, window(660, 1, 24), 1),
        ]
    );

    // The other collections do not depend on the emit mode.
    let updates = run(vec![room_a()], 1, 1, settings());
    assert_eq!(
        Outcome::changes(&outcome.room_averages),
        Outcome::changes(&updates.room_averages)
    );
    assert_eq!(
        Outcome::changes(&outcome.temperature_deltas),
        Outcome::changes(&updates.temperature_deltas)
    );
    assert_eq!(outcome.final_state(), updates.final_state());
}

#[test]
fn window_boundaries_are_half_open_and_epoch_aligned() {
    let stream = vec![
        reading("b", "co2", 59_999, 400_000),
        reading("b", "co2", 0, 500_000),
        reading("b", "co2", 60_000, 600_000),
        reading("b", "co2", 119_999, 700_000),
    ];
    let final_state = run(vec![stream], 1, 100, settings()).final_state();
    let window = |start, count, sum| WindowAverage {
        room: "b".into(),
        sensor: "co2".into(),
        window_start: start,
        count,
        sum,
    };
    // [0, 60000): 400 + 500 ppm; [60000, 120000): 600 + 700 ppm.
    assert_eq!(
        final_state.window_averages.into_iter().collect::<Vec<_>>(),
        vec![window(0, 2, 900_000_000), window(60_000, 2, 1_300_000_000)]
    );
    // co2 readings have no temperature deltas.
    assert!(final_state.temperature_deltas.is_empty());
}

#[test]
fn rooms_in_separate_streams_never_look_late_to_each_other() {
    // Stream 0 runs an hour ahead of stream 1; concatenated, all of stream 1 would be late.
    let ahead: Vec<_> = (0..10)
        .map(|i| reading("a", "temperature", 3_600_000 + i * 5000, 20_000))
        .collect();
    let behind: Vec<_> = (0..10)
        .map(|i| reading("b", "temperature", i * 5000, 21_000))
        .collect();
    let outcome = run(vec![ahead, behind], 2, 3, settings());
    assert!(outcome.late.is_empty());
    let final_state = outcome.final_state();
    assert_eq!(
        final_state.temperature_deltas.len(),
        18,
        "nine deltas per room"
    );
    assert_eq!(final_state.room_averages.len(), 2);
}
