//! `roomflow publish`: recorded files → a Kafka topic, merged in event-time order, keyed by room.
//!
//! Readings are produced as canonical JSON lines (whatever format they were recorded in), keyed
//! by room so each room's readings stay in order in one partition. Lines that are not readings
//! are produced unchanged and without a key: the job's dead-letter topic is where they belong,
//! and publishing them is how it is exercised. Nothing is judged late here; that is the job's call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::producer::{BaseRecord, Producer};
use roomflow_dataflows::{Event, Horizon, Merge};

use crate::cli::PublishArgs;
use crate::kafka::feed::{feeding_producer, send_waiting, ReadingMessage};
use crate::kafka::topics::{ensure_topics, TopicSpec};
use crate::sources::inputs::discover;
use crate::sources::lines::{first_event_time, LineStream};
use crate::sources::pacing::Pacing;
use crate::sources::validity::ValidRanges;

/// Runs the publish command.
pub fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let inputs = discover(&args.paths, args.format)?;
    args.kafka.check_reachable()?;
    ensure_topics(
        &args.kafka,
        &[TopicSpec {
            name: args.topic.clone(),
            partitions: args.partitions,
            configs: Vec::new(),
        }],
        args.replication_factor,
    )?;
    let producer = feeding_producer(&args.kafka)?;

    let total_bytes: u64 = inputs.iter().map(|input| input.size).sum();
    let bytes_read = Arc::new(AtomicU64::new(0));
    let show_progress = args.progress.show();
    let bar = show_progress.then(|| {
        let bar = indicatif::ProgressBar::new(total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} publishing {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec}, eta {eta}",
            )
            .expect("valid template"),
        );
        bar
    });
    let pacing = args.speed.map(|speed| {
        let origin = first_event_time(&inputs, args.max_line_bytes).unwrap_or(0);
        Pacing::starting_now(origin, speed)
    });

    let valid = Arc::new(ValidRanges::new(&[]));
    let streams: Vec<LineStream> = inputs
        .iter()
        .map(|input| {
            LineStream::open(
                input,
                valid.clone(),
                bytes_read.clone(),
                args.max_line_bytes,
            )
        })
        .collect();
    // Nothing is late here: the merge only orders.
    let mut merge = Merge::new(streams, Horizon::new(i64::MAX, 1));
    let (mut readings, mut others) = (0u64, 0u64);
    let mut value = Vec::with_capacity(128);
    let mut last_progress = Instant::now();
    loop {
        if let (Some(pacing), Some(next)) = (&pacing, merge.next_time()) {
            if let Some(wait) = pacing.wait_for(next, Instant::now()) {
                producer.poll(wait.min(Duration::from_millis(100)));
                continue;
            }
        }
        let Some(event) = merge.next() else { break };
        value.clear();
        match event {
            Event::Apply { reading, .. } | Event::Late { reading, .. } => {
                serde_json::to_writer(&mut value, &ReadingMessage::from(&reading))
                    .expect("readings serialize");
                let record = BaseRecord::to(&args.topic)
                    .key(reading.room.as_str().as_bytes())
                    .payload(value.as_slice());
                send_waiting(&producer, record)?;
                readings += 1;
            }
            Event::Other { item, .. } => {
                // Only lines that could not be read have one; files that cannot be opened do not.
                let (Some(line), None) = (item.line, item.line_bytes) else {
                    // Cannot be opened, or only the beginning of the line was kept: nothing
                    // as it was to publish.
                    tracing::warn!("{}: {} (not published)", item.source, item.reason);
                    continue;
                };
                let record = BaseRecord::<[u8], [u8]>::to(&args.topic).payload(line.as_bytes());
                send_waiting(&producer, record)?;
                others += 1;
            }
        }
        producer.poll(Duration::ZERO);
        if let Some(bar) = &bar {
            if last_progress.elapsed() > Duration::from_millis(100) {
                bar.set_position(bytes_read.load(Ordering::Relaxed));
                last_progress = Instant::now();
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .context("cannot deliver every message within 60 s")?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "published {} messages to `{}`: {readings} readings, {others} unreadable lines as they were; {elapsed:.2} s, {:.0} messages/s",
        readings + others,
        args.topic,
        (readings + others) as f64 / elapsed.max(1e-9),
    );
    Ok(())
}
