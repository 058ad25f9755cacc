//! A synthetic building: rooms whose sensors report JSON lines, the fixture generator for tests
//! and benchmarks.
//!
//! Every (room, sensor) reports about every 5 s (3–9 s apart), and the rooms are interleaved in
//! event-time order, as a live building would deliver them. Each room's lines go to one shard,
//! like a topic keyed by room, so each shard is in time order except for the disorder added on
//! purpose: readings held back by less than the job's lateness (out of order, still applied),
//! readings held back by more (late, dropped and counted by the job), and malformed lines. The
//! output depends only on the options, the seed included.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::f64::consts::PI;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::Context;

use crate::cli::SimulateArgs;

/// The job's default lateness (5 min): how far behind its shard's newest event time a line may
/// be and still be applied, hence where [`SimulateSummary`] draws the line between out of order
/// and late.
pub const LATENESS_MS: i64 = 300_000;

/// The sensors of every room, in the order their streams are laid out.
pub const SENSORS: [&str; 4] = ["temperature", "humidity", "co2", "light"];

/// `roomflow simulate`: writes to stdout, a file, or (with `--shards N > 1`) a directory of
/// `shard-<i>.jsonl` files.
pub fn command(args: SimulateArgs) -> anyhow::Result<()> {
    let options = SimulateOptions {
        rooms: args.rooms,
        readings: args.readings,
        seed: args.seed,
        start_ms: args.start,
        malformed_ratio: args.malformed,
        out_of_order_ratio: args.out_of_order,
        late_ratio: args.late,
    };
    let shards = args.shards.max(1);
    let mut outputs: Vec<Box<dyn Write>> = match (&args.out, shards) {
        (None, 1) => vec![Box::new(BufWriter::with_capacity(
            1 << 16,
            io::stdout().lock(),
        ))],
        (None, _) => {
            anyhow::bail!("--shards {shards} needs --out DIR to write the shard files into")
        }
        (Some(path), 1) => vec![create(path)?],
        (Some(dir), _) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            (0..shards)
                .map(|i| create(&dir.join(format!("shard-{i}.jsonl"))))
                .collect::<anyhow::Result<_>>()?
        }
    };
    let summary =
        generate(&options, &mut outputs).context("cannot write the simulated readings")?;
    for output in &mut outputs {
        output
            .flush()
            .context("cannot write the simulated readings")?;
    }
    eprintln!(
        "simulated {} lines for {} rooms: {} malformed, {} out of order, {} late",
        summary.lines, options.rooms, summary.malformed, summary.out_of_order, summary.late
    );
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 16, file)))
}

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

/// Writes lines to their shards, keeping the summary of what was written.
struct ShardWriter<'o, 'w, 's> {
    outputs: &'o mut [Box<dyn Write + 'w>],
    /// The newest event time written to each shard.
    newest: Vec<i64>,
    summary: &'s mut SimulateSummary,
}

impl ShardWriter<'_, '_, '_> {
    /// Writes a line with event time `ts`, or a malformed line (`None`).
    fn write(&mut self, shard: usize, ts: Option<i64>, line: &[u8]) -> io::Result<()> {
        self.outputs[shard].write_all(line)?;
        self.summary.lines += 1;
        let Some(ts) = ts else {
            self.summary.malformed += 1;
            return Ok(());
        };
        let newest = &mut self.newest[shard];
        let behind = newest.saturating_sub(ts);
        if behind > LATENESS_MS {
            self.summary.late += 1;
        } else if behind > 0 {
            self.summary.out_of_order += 1;
        }
        *newest = (*newest).max(ts);
        Ok(())
    }
}

/// A well-formed line held back until the generator's clock reaches `release`.
struct Held {
    release: i64,
    /// Which reading it was: orders lines released at the same event time.
    sequence: u64,
    shard: usize,
    ts: i64,
    line: Vec<u8>,
}

impl Held {
    fn key(&self) -> (i64, u64) {
        (self.release, self.sequence)
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Held) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
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

/// What makes rooms differ: their usual climate and how much they are used.
struct RoomModel {
    temperature: f64,
    humidity: f64,
    /// CO2 (ppm) that people add when the room is occupied.
    occupants_co2: f64,
    /// Light (lux) through the windows at noon.
    daylight: f64,
    /// Light (lux) of the lamps, on while the room is occupied.
    lamps: f64,
}

impl RoomModel {
    fn new(rng: &mut SmallRng) -> RoomModel {
        RoomModel {
            temperature: rng.gen_range(20.5..24.5),
            humidity: rng.gen_range(38.0..52.0),
            occupants_co2: rng.gen_range(200.0..700.0),
            daylight: rng.gen_range(100.0..350.0),
            lamps: rng.gen_range(250.0..400.0),
        }
    }

    fn initial(&self, kind: usize, rng: &mut SmallRng) -> f64 {
        match kind {
            0 => self.temperature + rng.gen_range(-0.5..0.5),
            1 => self.humidity,
            2 => 420.0 + rng.gen_range(0.0..30.0),
            _ => 0.0,
        }
    }

    /// The value a sensor reads at `ts` after reading `value` about 5 s before: a random walk
    /// pulled towards what the time of day calls for.
    fn next(&self, kind: usize, value: f64, ts: i64, rng: &mut SmallRng) -> f64 {
        let day = ts.div_euclid(86_400_000);
        let hour = ts.rem_euclid(86_400_000) as f64 / 3_600_000.0;
        // 1970-01-01 was a Thursday: (day + 3) % 7 counts from Monday.
        let occupied = (day + 3).rem_euclid(7) < 5 && (8.0..18.0).contains(&hour);
        let occupancy = if occupied { 1.0 } else { 0.0 };
        match kind {
            0 => {
                let target = self.temperature + occupancy;
                (value + 0.01 * (target - value) + rng.gen_range(-0.03..0.03)).clamp(19.0, 26.0)
            }
            1 => (value + 0.01 * (self.humidity - value) + rng.gen_range(-0.1..0.1))
                .clamp(30.0, 60.0),
            2 => {
                let target = 420.0 + occupancy * self.occupants_co2;
                (value + 0.01 * (target - value) + rng.gen_range(-3.0..3.0)).clamp(400.0, 1200.0)
            }
            _ => {
                let sun = (PI * (hour - 6.0) / 12.0).sin().max(0.0);
                let target = sun * self.daylight + occupancy * self.lamps;
                (target + rng.gen_range(-10.0..10.0)).clamp(0.0, 800.0)
            }
        }
    }
}

/// Milliseconds until a stream's next reading: mostly about 5 s, sometimes anywhere in 3–9 s.
fn interval_ms(rng: &mut SmallRng) -> i64 {
    if rng.gen_bool(0.9) {
        rng.gen_range(4_000..=6_000)
    } else {
        rng.gen_range(3_000..=9_000)
    }
}

/// Replaces `line` by a canonical line: `prefix`, then `ts` and the value with two decimals.
fn write_line(line: &mut Vec<u8>, prefix: &[u8], ts: i64, hundredths: i64) -> io::Result<()> {
    line.clear();
    line.extend_from_slice(prefix);
    let sign = if hundredths < 0 { "-" } else { "" };
    let magnitude = hundredths.unsigned_abs();
    writeln!(
        line,
        r#"{ts}, "value": {sign}{}.{:02}}}"#,
        magnitude / 100,
        magnitude % 100
    )
}

/// Replaces the well-formed `line` by malformed line number `nth`, rotating through the ways real
/// producers get it wrong.
fn malform(line: &mut Vec<u8>, nth: u64, room: &str, sensor: &str, ts: i64) -> io::Result<()> {
    match nth % 5 {
        0 => {
            // Cut off mid-write: any proper prefix of an object is unterminated.
            line.truncate((line.len() - 1) / 2);
            line.push(b'\n');
            Ok(())
        }
        1 => {
            line.clear();
            writeln!(
                line,
                r#"{{"room": "{room}", "sensor": "{sensor}", "ts": {ts}}}"#
            )
        }
        2 => {
            line.clear();
            writeln!(
                line,
                r#"{{"room": "{room}", "sensor": "{sensor}", "ts": {ts}, "value": "n/a"}}"#
            )
        }
        3 => {
            line.clear();
            writeln!(
                line,
                r#"{{"room": "{room}", "sensor": "{sensor}", "ts": "yesterday", "value": 0.00}}"#
            )
        }
        _ => {
            line.clear();
            writeln!(
                line,
                r#"{{"room": {{}}, "sensor": "{sensor}", "ts": {ts}, "value": 0.00}}"#
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::formats::{parse_line, Format, StreamContext};
    use roomflow_dataflows::Reading;
    use std::collections::HashMap;

    /// Generates into `shards` in-memory outputs.
    fn run(options: &SimulateOptions, shards: usize) -> (Vec<Vec<u8>>, SimulateSummary) {
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
    fn parse(shard: &[u8]) -> Vec<Result<Reading, String>> {
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

    fn options(rooms: usize, readings: u64) -> SimulateOptions {
        SimulateOptions {
            rooms,
            readings,
            ..SimulateOptions::default()
        }
    }

    fn orderly(rooms: usize, readings: u64) -> SimulateOptions {
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
    fn malformed_lines_rotate_through_five_kinds() {
        let options = SimulateOptions {
            malformed_ratio: 1.0,
            ..orderly(1, 6)
        };
        let (shards, summary) = run(&options, 1);
        let reasons: Vec<String> = parse(&shards[0])
            .into_iter()
            .map(Result::unwrap_err)
            .collect();
        assert!(
            reasons[0].starts_with("invalid JSON: EOF while parsing"),
            "{}",
            reasons[0]
        );
        assert_eq!(
            reasons[1..5],
            [
                "missing field `value`",
                "`value` must be a number, found string `n/a`",
                "unparseable date `yesterday`",
                "`room` must be a string or an integer, found an object",
            ]
        );
        assert!(
            reasons[5].starts_with("invalid JSON: EOF while parsing"),
            "{}",
            reasons[5]
        );
        assert_eq!(
            summary,
            SimulateSummary {
                lines: 6,
                malformed: 6,
                out_of_order: 0,
                late: 0,
            }
        );
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
    fn summary_counts_what_a_per_shard_lateness_judge_sees() {
        let options = SimulateOptions {
            out_of_order_ratio: 0.05,
            late_ratio: 0.01,
            ..options(10, 30_000)
        };
        let (shards, summary) = run(&options, 3);
        let parsed: Vec<_> = shards.iter().map(|shard| parse(shard)).collect();
        let newest_overall = parsed
            .iter()
            .flatten()
            .flatten()
            .map(|reading| reading.ts)
            .max()
            .unwrap();
        let mut counted = SimulateSummary {
            lines: 30_000,
            ..SimulateSummary::default()
        };
        for lines in parsed {
            let mut newest = i64::MIN;
            for line in lines {
                let Ok(reading) = line else {
                    counted.malformed += 1;
                    continue;
                };
                let behind = newest.saturating_sub(reading.ts);
                if behind > LATENESS_MS {
                    counted.late += 1;
                } else if behind > 0 {
                    counted.out_of_order += 1;
                }
                // Readings held back longer than the stream lasted come at its end, less behind
                // than intended; every other one is 10-120 s or 6-15 min (less the time since its
                // shard's previous line) behind.
                if reading.ts + 900_000 < newest_overall {
                    assert!(
                        behind <= 120_000 || (LATENESS_MS < behind && behind <= 900_000),
                        "{reading:?} is {behind} ms behind"
                    );
                }
                newest = newest.max(reading.ts);
            }
        }
        assert_eq!(summary, counted);
        assert!(summary.out_of_order > 0 && summary.late > 0, "{summary:?}");
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
