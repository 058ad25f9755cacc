//! The final collections equal an independent computation from the specification, and the whole
//! change log is the same for 1, 2 and 4 workers and for any batching of the input, with windows
//! emitted as they change or once when final.

mod support;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

use roomflow_dataflows::{Emit, Reading, Settings};
use support::{expected, reading, run, Outcome, Stream};

/// Streams with disorder: mostly advancing, sometimes jumping back (within the lateness or
/// beyond it), sometimes repeating a timestamp, several rooms and sensors per stream, and a room
/// that appears in two streams.
fn random_streams(seed: u64) -> Vec<Stream> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let streams = rng.gen_range(1..=6);
    (0..streams)
        .map(|s| {
            let mut ts: i64 = rng.gen_range(0..600_000);
            let length = rng.gen_range(0..400);
            (0..length)
                .map(|_| {
                    ts += rng.gen_range(0..20_000);
                    let when = if rng.gen_bool(0.1) {
                        (ts - rng.gen_range(0..400_000)).max(0)
                    } else {
                        ts
                    };
                    let room = format!(
                        "r{}",
                        if rng.gen_bool(0.1) {
                            0
                        } else {
                            s * 3 + rng.gen_range(0..3)
                        }
                    );
                    let sensor =
                        ["temperature", "temperature", "humidity", "co2"][rng.gen_range(0..4)];
                    reading(&room, sensor, when, rng.gen_range(15_000..30_000))
                })
                .collect::<Vec<Reading>>()
        })
        .collect()
}

#[test]
fn final_collections_match_the_specification_for_every_worker_count_and_batching() {
    for seed in 0..12 {
        let streams = random_streams(seed);
        let settings = Settings::new(60_000, 300_000, [1, 1_000, 7_000][seed as usize % 3]);
        let want = expected(&streams, settings);
        let mut logs = Vec::new();
        for (workers, batch) in [(1, 1), (1, 10_000), (2, 13), (4, 1), (4, 97)] {
            let outcome = run(streams.clone(), workers, batch, settings);
            let got = outcome.final_state();
            assert_eq!(
                got, want,
                "seed {seed}, {workers} workers, batches of {batch}"
            );
            logs.push((
                Outcome::changes(&outcome.room_averages),
                Outcome::changes(&outcome.window_averages),
                Outcome::changes(&outcome.temperature_deltas),
            ));
        }
        assert!(
            logs.windows(2).all(|pair| pair[0] == pair[1]),
            "seed {seed}: change logs differ"
        );
    }
}

#[test]
fn emit_final_gives_the_same_final_collections_with_one_insertion_per_window() {
    for seed in 0..6 {
        let streams = random_streams(seed);
        let updates = Settings::new(60_000, 300_000, [1, 1_000, 7_000][seed as usize % 3]);
        let settings = updates.emitting(Emit::Final);
        let want = expected(&streams, settings);
        let mut logs = Vec::new();
        for (workers, batch) in [(1, 1), (2, 13), (4, 97)] {
            let outcome = run(streams.clone(), workers, batch, settings);
            assert_eq!(
                outcome.final_state(),
                want,
                "seed {seed}, {workers} workers, batches of {batch}"
            );
            // Every window once, inserted at its expiry, never retracted.
            let mut versions = BTreeMap::new();
            for (window, time, diff) in &outcome.window_averages {
                assert_eq!(*diff, 1, "seed {seed}: {window:?} retracted at {time}");
                assert_eq!(
                    *time,
                    settings.windows.expiry(window.window_start),
                    "seed {seed}: {window:?} emitted before or after its expiry"
                );
                *versions
                    .entry((window.room, window.sensor, window.window_start))
                    .or_insert(0) += 1;
            }
            assert!(
                versions.values().all(|count| *count == 1),
                "seed {seed}: a window emitted twice"
            );
            assert_eq!(versions.len(), want.window_averages.len());
            // The other collections change exactly as they do when windows emit updates.
            let reference = run(streams.clone(), workers, batch, updates);
            assert_eq!(
                Outcome::changes(&outcome.room_averages),
                Outcome::changes(&reference.room_averages)
            );
            assert_eq!(
                Outcome::changes(&outcome.temperature_deltas),
                Outcome::changes(&reference.temperature_deltas)
            );
            logs.push(Outcome::changes(&outcome.window_averages));
        }
        assert!(
            logs.windows(2).all(|pair| pair[0] == pair[1]),
            "seed {seed}: change logs differ"
        );
    }
}

#[test]
fn the_oracle_sees_late_readings_in_these_inputs() {
    // Guards the test above against inputs too tame to exercise lateness and corrections.
    let settings = Settings::default();
    let late: usize = (0..12)
        .map(|seed| expected(&random_streams(seed), settings).late.len())
        .sum();
    assert!(late > 10, "only {late} late readings");
}
