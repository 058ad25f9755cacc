//! Live mode of `roomflow simulate`: the rooms' sensors produce to a Kafka topic at a steady rate,
//! stamped with the time they are produced, until stopped. This is what the old Spring Boot
//! producer and room simulator did.
//!
//! Streams take turns at random; each reading follows its sensor's model (see `model.rs`). The
//! same share of lines as in files is malformed, out of order or late, the two latter by holding
//! back the event time (10–120 s, or 6–15 min) rather than the message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::{BaseRecord, Producer};

use super::lines::{malform, write_line};
use super::model::RoomModel;
use super::{room_name, SimulateOptions, SENSORS};
use crate::kafka::config::KafkaArgs;
use crate::kafka::feed::{feeding_producer, send_waiting};
use crate::kafka::topics::{ensure_topics, TopicSpec};

/// Where and how fast to produce.
pub struct LiveTarget {
    /// The brokers.
    pub kafka: KafkaArgs,
    /// The topic.
    pub topic: String,
    /// Partitions, if the topic is created.
    pub partitions: i32,
    /// Readings per second.
    pub rate: f64,
    /// Stop after this many lines.
    pub limit: Option<u64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Produces until SIGINT/SIGTERM or `target.limit` lines.
pub fn produce(options: &SimulateOptions, target: LiveTarget) -> anyhow::Result<()> {
    target.kafka.check_reachable()?;
    ensure_topics(
        &target.kafka,
        &[TopicSpec {
            name: target.topic.clone(),
            partitions: target.partitions,
            configs: Vec::new(),
        }],
        1,
    )?;
    let producer = feeding_producer(&target.kafka)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle signals")?;
    }

    let mut rng = SmallRng::seed_from_u64(options.seed);
    let models: Vec<RoomModel> = (0..options.rooms)
        .map(|_| RoomModel::new(&mut rng))
        .collect();
    let mut streams: Vec<(usize, usize, Vec<u8>, f64)> = Vec::new();
    for (room, model) in models.iter().enumerate() {
        let name = room_name(room, options.rooms);
        for (kind, sensor) in SENSORS.iter().enumerate() {
            let prefix = format!(r#"{{"room": "{name}", "sensor": "{sensor}", "ts": "#);
            streams.push((
                room,
                kind,
                prefix.into_bytes(),
                model.initial(kind, &mut rng),
            ));
        }
    }
    anyhow::ensure!(!streams.is_empty(), "--rooms must be at least 1");
    tracing::info!(
        topic = %target.topic,
        rooms = options.rooms,
        rate = target.rate,
        "producing simulated readings; stop with Ctrl-C"
    );

    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut malformed: u64 = 0;
    let mut line = Vec::with_capacity(128);
    let mut last_report = Instant::now();
    let late_below = options.malformed_ratio + options.late_ratio;
    let held_below = late_below + options.out_of_order_ratio;
    while !stop.load(Ordering::Relaxed) && target.limit.is_none_or(|limit| sent < limit) {
        let due = (started.elapsed().as_secs_f64() * target.rate) as u64;
        if sent >= due {
            // Sleep rather than wait in `poll`: the producer's poll returns early on every
            // event and would spin a core.
            producer.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let index = rng.gen_range(0..streams.len());
        let (room, kind, prefix, value) = &mut streams[index];
        let now = now_ms();
        *value = models[*room].next(*kind, *value, now, &mut rng);
        let draw: f64 = rng.gen();
        let ts = if draw < options.malformed_ratio {
            now
        } else if draw < late_below {
            now - rng.gen_range(360_000..=900_000)
        } else if draw < held_below {
            now - rng.gen_range(10_000..=120_000)
        } else {
            now
        };
        write_line(&mut line, prefix, ts, (*value * 100.0).round() as i64)?;
        let name = room_name(*room, options.rooms);
        if draw < options.malformed_ratio {
            malform(&mut line, malformed, &name, SENSORS[*kind], ts)?;
            malformed += 1;
        }
        let payload = line.strip_suffix(b"\n").unwrap_or(&line);
        send_waiting(
            &producer,
            BaseRecord::to(&target.topic)
                .key(name.as_bytes())
                .payload(payload),
        )?;
        sent += 1;
        if last_report.elapsed() >= Duration::from_secs(10) {
            tracing::info!(sent, "simulated readings produced");
            last_report = Instant::now();
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .context("cannot deliver the last readings within 30 s")?;
    eprintln!(
        "produced {sent} simulated lines to `{}` ({malformed} malformed) in {:.1} s",
        target.topic,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
