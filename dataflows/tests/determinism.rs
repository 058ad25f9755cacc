//! The final collections equal an independent computation from the specification, and the whole
//! change log is the same for 1, 2 and 4 workers and for any batching of the input.

mod support;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use roomflow_dataflows::{Reading, Settings};
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
fn the_oracle_sees_late_readings_in_these_inputs() {
    // Guards the test above against inputs too tame to exercise lateness and corrections.
    let settings = Settings::default();
    let late: usize = (0..12)
        .map(|seed| expected(&random_streams(seed), settings).late.len())
        .sum();
    assert!(late > 10, "only {late} late readings");
}
