//! Test support: run the dataflow on in-memory streams with any number of workers and any
//! batching, capture every update, and compute the expected final collections independently.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use differential_dataflow::consolidation::consolidate;
use differential_dataflow::input::Input;
use roomflow_dataflows::{
    analytics, Event, EventTime, Fixed, Item, Merge, Reading, RoomAverage, Settings,
    TemperatureDelta, Time, WindowAverage,
};
use timely::dataflow::operators::Probe;

/// One input stream: readings in arrival order.
pub type Stream = Vec<Reading>;

/// Every update the dataflow produced, and the readings it found late.
#[derive(Debug, Default)]
pub struct Outcome {
    pub room_averages: Vec<(RoomAverage, Time, isize)>,
    pub window_averages: Vec<(WindowAverage, Time, isize)>,
    pub temperature_deltas: Vec<(TemperatureDelta, Time, isize)>,
    pub late: Vec<Reading>,
}

/// Final collections (each record with multiplicity one), comparable across runs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Final {
    pub room_averages: BTreeSet<RoomAverage>,
    pub window_averages: BTreeSet<WindowAverage>,
    pub temperature_deltas: BTreeSet<TemperatureDelta>,
    pub late: BTreeSet<Reading>,
}

fn accumulate<D: Ord + Clone + std::fmt::Debug>(updates: &[(D, Time, isize)]) -> BTreeSet<D> {
    let mut collection: Vec<(D, isize)> = updates.iter().map(|(d, _, r)| (d.clone(), *r)).collect();
    consolidate(&mut collection);
    collection
        .into_iter()
        .map(|(d, r)| {
            assert_eq!(r, 1, "final collection holds {d:?} with multiplicity {r}");
            d
        })
        .collect()
}

impl Outcome {
    pub fn final_state(&self) -> Final {
        Final {
            room_averages: accumulate(&self.room_averages),
            window_averages: accumulate(&self.window_averages),
            temperature_deltas: accumulate(&self.temperature_deltas),
            late: self.late.iter().cloned().collect(),
        }
    }

    /// The consolidated change log of one collection: what happened at which time.
    pub fn changes<D: Ord + Clone>(updates: &[(D, Time, isize)]) -> Vec<(Time, D, isize)> {
        let mut log: Vec<((Time, D), isize)> = updates
            .iter()
            .map(|(d, t, r)| ((*t, d.clone()), *r))
            .collect();
        consolidate(&mut log);
        log.into_iter().map(|((t, d), r)| (t, d, r)).collect()
    }
}

/// Runs the dataflow on `streams` with `workers` threads. Worker `i` reads the streams whose
/// index is `i` modulo the number of workers; it feeds `batch` events between steps.
pub fn run(streams: Vec<Stream>, workers: usize, batch: usize, settings: Settings) -> Outcome {
    let streams = Arc::new(streams);
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let shared = outcome.clone();
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let sink = shared.clone();
        let (mut input, probe) = worker.dataflow::<Time, _, _>(|scope| {
            let (input, readings) = scope.new_collection::<Reading, isize>();
            let outputs = analytics(readings, settings);
            let (a, w, d) = (sink.clone(), sink.clone(), sink.clone());
            outputs
                .room_averages
                .inspect(move |u| a.lock().unwrap().room_averages.push(*u));
            outputs
                .window_averages
                .inspect(move |u| w.lock().unwrap().window_averages.push(*u));
            let probe = outputs
                .temperature_deltas
                .inspect(move |u| d.lock().unwrap().temperature_deltas.push(u.clone()))
                .inner
                .probe()
                .0;
            (input, probe)
        });
        let mine: Vec<_> = streams
            .iter()
            .enumerate()
            .filter(|(i, _)| i % peers == index)
            .map(|(_, stream)| {
                stream
                    .iter()
                    .cloned()
                    .enumerate()
                    .map(|(position, reading)| Item::<()>::Reading {
                        reading,
                        position: position as u64,
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
            })
            .collect();
        let mut merge = Merge::new(mine, settings.horizon());
        loop {
            for event in merge.by_ref().take(batch) {
                match event {
                    Event::Apply { reading, stamp } => input.update_at(reading, stamp, 1),
                    Event::Late { reading, .. } => sink.lock().unwrap().late.push(reading),
                    Event::Other { .. } => unreachable!("test streams hold readings only"),
                }
            }
            match merge.lower_bound() {
                Some(bound) => input.advance_to(bound),
                None => break,
            }
            input.flush();
            worker.step();
        }
        input.close();
        while !probe.done() {
            worker.step();
        }
    })
    .expect("timely runs");
    Arc::try_unwrap(outcome).unwrap().into_inner().unwrap()
}

/// The expected final collections, computed the plain way from the specification: merge the
/// streams by event time (least head first, ties to the lower stream index), call a reading late
/// when it is more than the lateness behind the newest event time before it in that merged order,
/// and aggregate the rest directly.
pub fn expected(streams: &[Stream], settings: Settings) -> Final {
    let lateness = settings.horizon().lateness_ms;
    let window = settings.windows.length_ms;
    let mut positions = vec![0usize; streams.len()];
    let mut newest = EventTime::MIN;
    let mut applied = Vec::new();
    let mut late = BTreeSet::new();
    loop {
        let next = (0..streams.len())
            .filter(|&s| positions[s] < streams[s].len())
            .min_by_key(|&s| (streams[s][positions[s]].ts, s));
        let Some(s) = next else { break };
        let reading = streams[s][positions[s]].clone();
        positions[s] += 1;
        if newest != EventTime::MIN && reading.ts < newest - lateness {
            late.insert(reading);
        } else {
            newest = newest.max(reading.ts);
            applied.push(reading);
        }
    }

    let mut averages: BTreeMap<(String, String), (i64, i128)> = BTreeMap::new();
    let mut windows: BTreeMap<(String, String, i64), (i64, i128)> = BTreeMap::new();
    let mut temperatures: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
    for r in &applied {
        let (room, sensor) = (r.room.to_string(), r.sensor.to_string());
        let total = averages.entry((room.clone(), sensor.clone())).or_default();
        total.0 += 1;
        total.1 += r.value.0 as i128;
        let start = r.ts.div_euclid(window) * window;
        let total = windows
            .entry((room.clone(), sensor.clone(), start))
            .or_default();
        total.0 += 1;
        total.1 += r.value.0 as i128;
        if sensor == "temperature" {
            let value = temperatures
                .entry(room)
                .or_default()
                .entry(r.ts)
                .or_insert(i64::MIN);
            *value = (*value).max(r.value.0);
        }
    }
    let mut deltas = BTreeSet::new();
    for (room, series) in temperatures {
        let series: Vec<(i64, i64)> = series.into_iter().collect();
        for pair in series.windows(2) {
            deltas.insert(TemperatureDelta {
                room: room.as_str().into(),
                ts: pair[1].0,
                prev_ts: pair[0].0,
                value: Fixed(pair[1].1),
                prev_value: Fixed(pair[0].1),
            });
        }
    }
    Final {
        room_averages: averages
            .into_iter()
            .map(|((room, sensor), (count, sum))| RoomAverage {
                room: room.into(),
                sensor: sensor.into(),
                count,
                sum,
            })
            .collect(),
        window_averages: windows
            .into_iter()
            .map(
                |((room, sensor, window_start), (count, sum))| WindowAverage {
                    room: room.into(),
                    sensor: sensor.into(),
                    window_start,
                    count,
                    sum,
                },
            )
            .collect(),
        temperature_deltas: deltas,
        late,
    }
}

/// A reading, with the value given in thousandths for brevity.
pub fn reading(room: &str, sensor: &str, ts: EventTime, milli: i64) -> Reading {
    Reading {
        room: room.into(),
        sensor: sensor.into(),
        ts,
        value: Fixed(milli * 1000),
    }
}
