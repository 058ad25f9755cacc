//! A synthetic building: rooms whose sensors report JSON lines, the fixture generator for tests
//! and benchmarks.
//!
//! Every (room, sensor) reports about every 5 s (3–9 s apart), and the rooms are interleaved in
//! event-time order, as a live building would deliver them. Each room's lines go to one shard,
//! like a topic keyed by room, so each shard is in time order except for the disorder added on
//! purpose: readings held back by less than the job's lateness (out of order, still applied),
//! readings held back by more (late, dropped and counted by the job), and malformed lines. The
//! output depends only on the options, the seed included.
//!
//! - `command.rs`: the `roomflow simulate` command: options from its flags, where lines go.
//! - `mod.rs`: [`SimulateOptions`], [`SimulateSummary`],
//!   [`room_name`] and [`generate`], which interleaves the streams by event time and decides which
//!   lines are malformed, out of order or late.
//! - `model.rs`: how a room's sensor values evolve over the day and week, and how often a stream
//!   reports.
//! - `lines.rs`: the bytes of a line, well-formed or malformed in one of five ways.
//! - `live.rs`: live mode, producing to Kafka at a steady rate until stopped.
//! - `shards.rs`: writing lines to their shards, counting what a per-shard lateness judge sees,
//!   and the lines held back to be written out of order.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

mod command;
mod lines;
mod live;
mod model;
mod shards;

use lines::{malform, write_line};
use model::{interval_ms, RoomModel};
use shards::{Held, ShardWriter};

pub use command::command;

/// The job's default lateness (5 min): how far behind its shard's newest event time a line may
/// be and still be applied, hence where [`SimulateSummary`] draws the line between out of order
/// and late.
pub const LATENESS_MS: i64 = 300_000;

/// The sensors of every room, in the order their streams are laid out.
pub const SENSORS: [&str; 4] = ["temperature", "humidity", "co2", "light"];

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulateOptions {
    /// Number of rooms, named `r000`, `r001`, … (see [`room_name`]).
    pub rooms: usize,
    /// Number of lines to write, malformed ones included.
    pub readings: u64,
    /// Seed of the generator: the same options write the same bytes.
    pub seed: u64,
    /// Event time (epoch ms) of the first reading; every stream starts within 5 s of it.
    pub start_ms: i64,
    /// Fraction of lines replaced by a malformed one.
    pub malformed_ratio: f64,
    /// Fraction of readings held back by 10–120 s of event time.
    pub out_of_order_ratio: f64,
    /// Fraction of readings held back by 6–15 min of event time, beyond [`LATENESS_MS`].
    pub late_ratio: f64,
}

impl Default for SimulateOptions {
    /// 10 rooms, 10,000 lines from 2023-11-14T22:13:20Z, seed 1, 0.1 % malformed, 1 % out of order
    /// and 0.05 % late.
    fn default() -> SimulateOptions {
        SimulateOptions {
            rooms: 10,
            readings: 10_000,
            seed: 1,
            start_ms: 1_700_000_000_000,
            malformed_ratio: 0.001,
            out_of_order_ratio: 0.01,
            late_ratio: 0.0005,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimulateSummary {
    /// Lines written, malformed ones included: always the requested number of readings.
    pub lines: u64,
    /// Lines that do not parse.
    pub malformed: u64,
    /// Well-formed lines written behind their shard's newest event time by at most
    /// [`LATENESS_MS`].
    pub out_of_order: u64,
    /// Well-formed lines written behind their shard's newest event time by more than
    /// [`LATENESS_MS`]: what the job, with its default lateness and one stream per shard, reports
    /// as late.
    pub late: u64,
}

/// The name of room `index` of `rooms`: `r` and the index zero-padded to at least three digits,
/// or to the width of the largest index when that is wider (`r0042` among 5,000 rooms).
pub fn room_name(index: usize, rooms: usize) -> String {
    let width = rooms.saturating_sub(1).to_string().len().max(3);
    format!("r{index:0width$}")
}

/// Writes `options.readings` JSON lines to `outputs`, room `i` to shard `i % outputs.len()`.
///
/// Buffering is the caller's: each line is one `write_all`.
pub fn generate(
    options: &SimulateOptions,
    outputs: &mut [Box<dyn Write + '_>],
) -> io::Result<SimulateSummary> {
    validate(options, outputs.len())?;
    let mut summary = SimulateSummary::default();
    if options.readings == 0 {
        return Ok(summary);
    }
    let mut rng = SmallRng::seed_from_u64(options.seed);
    let shards = outputs.len();

    let models: Vec<RoomModel> = (0..options.rooms)
        .map(|_| RoomModel::new(&mut rng))
        .collect();
    let mut streams = Vec::with_capacity(options.rooms * SENSORS.len());
    let mut offsets = Vec::with_capacity(options.rooms * SENSORS.len());
    for (room, model) in models.iter().enumerate() {
        let name = room_name(room, options.rooms);
        for (kind, sensor) in SENSORS.iter().enumerate() {
            streams.push(Stream {
                prefix: format!(r#"{{"room": "{name}", "sensor": "{sensor}", "ts": "#).into_bytes(),
                room,
                kind,
                value: model.initial(kind, &mut rng),
            });
            offsets.push(rng.gen_range(0..5_000));
        }
    }
    // Shifted so that the first reading is at `start_ms` exactly.
    let first = offsets.iter().min().copied().unwrap_or(0);
    // The next due event time of every stream, least first; ties go to the lower stream index.
    let mut due: BinaryHeap<_> = offsets
        .into_iter()
        .enumerate()
        .map(|(index, offset)| Reverse((options.start_ms + offset - first, index)))
        .collect();

    let mut writer = ShardWriter {
        outputs,
        newest: vec![i64::MIN; shards],
        summary: &mut summary,
    };
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut line = Vec::with_capacity(128);
    let late_below = options.malformed_ratio + options.late_ratio;
    let held_below = late_below + options.out_of_order_ratio;

    for sequence in 0..options.readings {
        let Reverse((ts, index)) = due.pop().expect("every stream is always due again");
        due.push(Reverse((ts + interval_ms(&mut rng), index)));
        let stream = &mut streams[index];
        let model = &models[stream.room];
        stream.value = model.next(stream.kind, stream.value, ts, &mut rng);
        let shard = stream.room % shards;

        while held.peek().is_some_and(|Reverse(due)| due.release <= ts) {
            let Reverse(due) = held.pop().expect("just peeked");
            writer.write(due.shard, Some(due.ts), &due.line)?;
        }

        let hundredths = (stream.value * 100.0).round() as i64;
        write_line(&mut line, &stream.prefix, ts, hundredths)?;
        let draw: f64 = rng.gen();
        if draw < options.malformed_ratio {
            let room = room_name(stream.room, options.rooms);
            malform(
                &mut line,
                writer.summary.malformed,
                &room,
                SENSORS[stream.kind],
                ts,
            )?;
            writer.write(shard, None, &line)?;
        } else if draw < held_below {
            let delay = if draw < late_below {
                rng.gen_range(360_000..=900_000)
            } else {
                rng.gen_range(10_000..=120_000)
            };
            held.push(Reverse(Held {
                release: ts + delay,
                sequence,
                shard,
                ts,
                line: line.clone(),
            }));
        } else {
            writer.write(shard, Some(ts), &line)?;
        }
    }
    // The stream ends before these were due: they follow the last line, as late as it allows.
    while let Some(Reverse(last)) = held.pop() {
        writer.write(last.shard, Some(last.ts), &last.line)?;
    }
    Ok(summary)
}

fn validate(options: &SimulateOptions, shards: usize) -> io::Result<()> {
    let invalid = |message: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            message.to_owned(),
        ))
    };
    let ratios = [
        options.malformed_ratio,
        options.out_of_order_ratio,
        options.late_ratio,
    ];
    if ratios.iter().any(|ratio| !(0.0..=1.0).contains(ratio)) || ratios.iter().sum::<f64>() > 1.0 {
        return invalid(
            "malformed, out-of-order and late ratios must be within 0..=1 and sum to at most 1",
        );
    }
    if options.readings > 0 && options.rooms == 0 {
        return invalid("readings need at least one room");
    }
    if options.readings > 0 && shards == 0 {
        return invalid("readings need at least one output");
    }
    Ok(())
}

/// One (room, sensor) series.
struct Stream {
    /// The line up to the timestamp, which never changes.
    prefix: Vec<u8>,
    room: usize,
    /// Index into [`SENSORS`].
    kind: usize,
    /// The current value, unrounded.
    value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::formats::{parse_line, Format, StreamContext};
    use roomflow_dataflows::Reading;
    use std::collections::HashMap;

    /// Generates into `shards` in-memory outputs.
    pub(super) fn run(options: &SimulateOptions, shards: usize) -> (Vec<Vec<u8>>, SimulateSummary) {
        let mut buffers = vec![Vec::new(); shards];
        let mut outputs: Vec<Box<dyn Write + '_>> = buffers
            .iter_mut()
            .map(|b| Box::new(b) as Box<dyn Write + '_>)
            .collect();
        let summary = generate(options, &mut outputs).unwrap();
        drop(outputs);
        (buffers, summary)
    }

    /// Each line of a shard parsed, or the reason it does not parse.
    pub(super) fn parse(shard: &[u8]) -> Vec<Result<Reading, String>> {
        let text = std::str::from_utf8(shard).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'));
        text.lines()
            .map(|line| {
                let mut out = Vec::new();
                parse_line(Format::Json, &StreamContext::default(), line, &mut out)?;
                assert_eq!(out.len(), 1, "{line}");
                Ok(out.pop().unwrap())
            })
            .collect()
    }

    pub(super) fn options(rooms: usize, readings: u64) -> SimulateOptions {
        SimulateOptions {
            rooms,
            readings,
            ..SimulateOptions::default()
        }
    }

    pub(super) fn orderly(rooms: usize, readings: u64) -> SimulateOptions {
        SimulateOptions {
            malformed_ratio: 0.0,
            out_of_order_ratio: 0.0,
            late_ratio: 0.0,
            ..options(rooms, readings)
        }
    }

    #[test]
    fn room_names_are_zero_padded() {
        assert_eq!(room_name(0, 1), "r000");
        assert_eq!(room_name(42, 100), "r042");
        assert_eq!(room_name(999, 1000), "r999");
        assert_eq!(room_name(42, 1001), "r0042");
        assert_eq!(room_name(1234, 5000), "r1234");
    }

    #[test]
    fn same_seed_same_bytes() {
        let first = run(&options(7, 5_000), 3);
        assert_eq!(run(&options(7, 5_000), 3), first);
        let other_seed = SimulateOptions {
            seed: options(7, 5_000).seed + 1,
            ..options(7, 5_000)
        };
        assert_ne!(run(&other_seed, 3).0, first.0);
    }

    #[test]
    fn writes_the_requested_number_of_lines() {
        for readings in [0, 1, 2, 999] {
            let (shards, summary) = run(&options(3, readings), 2);
            let lines = shards.iter().flatten().filter(|&&b| b == b'\n').count();
            assert_eq!(lines as u64, readings);
            assert_eq!(summary.lines, readings);
        }
    }

    #[test]
    fn lines_parse_to_known_rooms_and_sensors_on_their_shard() {
        let options = SimulateOptions {
            malformed_ratio: 0.01,
            ..options(12, 20_000)
        };
        let (shards, summary) = run(&options, 5);
        let rooms: Vec<String> = (0..12).map(|room| room_name(room, 12)).collect();
        let mut malformed = 0;
        let mut seen = HashMap::new();
        for (shard, lines) in shards.iter().enumerate() {
            for line in parse(lines) {
                let Ok(reading) = line else {
                    malformed += 1;
                    continue;
                };
                let room = rooms
                    .iter()
                    .position(|room| reading.room == room.as_str())
                    .unwrap();
                assert_eq!(room % 5, shard, "{reading:?}");
                let sensor = SENSORS
                    .iter()
                    .position(|sensor| reading.sensor == *sensor)
                    .unwrap();
                *seen.entry((room, sensor)).or_insert(0) += 1;
                // Two decimals: a multiple of 10,000 micro-units.
                assert_eq!(reading.value.0 % 10_000, 0, "{reading:?}");
                let (low, high) =
                    [(19.0, 26.0), (30.0, 60.0), (400.0, 1200.0), (0.0, 800.0)][sensor];
                assert!(
                    (low..=high).contains(&reading.value.to_f64()),
                    "{reading:?}"
                );
            }
        }
        assert_eq!(malformed, summary.malformed);
        assert!(summary.malformed > 0);
        // Every (room, sensor) reported.
        assert_eq!(seen.len(), 12 * SENSORS.len());
    }

    #[test]
    fn without_disorder_every_shard_is_in_time_order_and_streams_report_every_3_to_9_s() {
        let options = orderly(10, 10_000);
        let (shards, summary) = run(&options, 3);
        assert_eq!(
            summary,
            SimulateSummary {
                lines: 10_000,
                ..SimulateSummary::default()
            }
        );
        let mut last: HashMap<(String, String), i64> = HashMap::new();
        for shard in &shards {
            let readings: Vec<Reading> = parse(shard).into_iter().map(Result::unwrap).collect();
            assert!(readings.windows(2).all(|pair| pair[0].ts <= pair[1].ts));
            for reading in readings {
                let key = (reading.room.to_string(), reading.sensor.to_string());
                match last.insert(key, reading.ts) {
                    Some(previous) => assert!(
                        (3_000..=9_000).contains(&(reading.ts - previous)),
                        "{reading:?}"
                    ),
                    None => assert!(
                        (0..5_000).contains(&(reading.ts - options.start_ms)),
                        "{reading:?}"
                    ),
                }
            }
        }
        assert_eq!(last.len(), 10 * SENSORS.len());
        let first = shards
            .iter()
            .flat_map(|shard| parse(shard))
            .map(|reading| reading.unwrap().ts)
            .min();
        assert_eq!(first, Some(options.start_ms));
    }

    #[test]
    fn rejects_impossible_options() {
        let mut outputs: Vec<Box<dyn Write>> = vec![Box::new(io::sink())];
        for options in [
            options(0, 1),
            SimulateOptions {
                malformed_ratio: -0.1,
                ..options(1, 1)
            },
            SimulateOptions {
                malformed_ratio: 0.5,
                late_ratio: 0.6,
                ..options(1, 1)
            },
        ] {
            let error = generate(&options, &mut outputs).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(
            generate(&options(1, 1), &mut []).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
