//! The sinks' own cost, for `scripts/bench-kafka.sh` and `scripts/bench-mongo.sh`: roomflow's
//! CPU (user + system time of the whole process, every thread included: the worker, librdkafka's
//! or the MongoDB driver's) per alpha message produced or per MongoDB document written.
//!
//! The changes are made in memory first (a realistic mix: room averages, windows and
//! temperature deltas of 100 rooms), then fed through the job's own sink operator (`kafka_sink`
//! or `mongo_sink`) in a dataflow of its own, one batch of 1,000 changes per dataflow time, until
//! the broker or the server has acknowledged all of them. Only that second part is measured:
//! no reading, parsing or computing, only what writing costs.
//!
//! ```text
//! cargo run --release --example sink_cost -- kafka CHANGES --brokers HOST:PORT --topic T
//! cargo run --release --example sink_cost -- mongo CHANGES --mongo URI [--mongo-db DB]
//! ```
//! It prints one line: `changes=… written=… cpu_seconds=… wall_seconds=… cpu_us_per_write=…`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use roomflow::kafka::config::KafkaArgs;
use roomflow::kafka::sink::{kafka_sink, producer, SinkState, SinkTopics};
use roomflow::kafka::topics::{ensure_topics, TopicSpec};
use roomflow::mongo::config::MongoArgs;
use roomflow::mongo::sink::{mongo_sink, MongoSinkState};
use roomflow::streams::Rejected;
use roomflow_dataflows::changes::KeyChange;
use roomflow_dataflows::{
    Change, CollectionChange, Fixed, RoomAverage, TemperatureDelta, Time, WindowAverage,
};
use timely::dataflow::operators::Input;

/// The allocator of the `roomflow` binary, so that the cost is the job's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Changes per dataflow time: the size of one completed tick's output in a busy job.
const PER_TIME: usize = 1_000;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    sink: Sink,
}

#[derive(Subcommand)]
enum Sink {
    /// Produce to an alpha topic.
    Kafka {
        /// Changes to produce.
        changes: usize,
        /// The topic (created with 4 partitions if missing).
        #[arg(long)]
        topic: String,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Write to MongoDB.
    Mongo {
        /// Changes to write.
        changes: usize,
        #[command(flatten)]
        mongo: MongoArgs,
    },
}

/// The `i`th change: in turn a room average, a window and a temperature delta, of 100 rooms,
/// every key different (so that each change is one MongoDB document: the sink writes only the
/// latest change of a key in a batch).
fn change(i: usize) -> Change {
    let room = format!("r{:03}", i % 100);
    let n = i as i64;
    let value = 20_000_000 + (n * 7_919) % 5_000_000;
    let change = match i % 3 {
        0 => CollectionChange::RoomAverages(KeyChange::Upsert(RoomAverage {
            room: room.as_str().into(),
            sensor: format!("sensor{}", i / 300).as_str().into(),
            count: n + 1,
            sum: i128::from(value) * i128::from(n + 1),
        })),
        1 => CollectionChange::WindowAverages(KeyChange::Upsert(WindowAverage {
            room: room.as_str().into(),
            sensor: "temperature".into(),
            window_start: 1_700_000_000_000 + n * 60_000,
            count: 12,
            sum: i128::from(value) * 12,
        })),
        _ => CollectionChange::TemperatureDeltas(KeyChange::Upsert(TemperatureDelta {
            room: room.as_str().into(),
            ts: 1_700_000_000_000 + n * 5_000,
            prev_ts: 1_700_000_000_000 + n * 5_000 - 5_000,
            value: Fixed(value),
            prev_value: Fixed(value - 250_000),
        })),
    };
    Change {
        time: (i / PER_TIME) as Time,
        change,
    }
}

/// User + system CPU seconds of this process so far, every thread included.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat format") + 2..]
        .split(' ')
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // /proc counts in USER_HZ, which is 100 on every Linux architecture.
    ticks / 100.0
}

/// What a sink reports once everything is acknowledged.
struct Outcome {
    written: u64,
    cpu: f64,
    wall: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (count, outcome) = match args.sink {
        Sink::Kafka {
            changes,
            topic,
            kafka,
        } => (changes, produce(changes, topic, kafka)?),
        Sink::Mongo { changes, mongo } => (changes, write(changes, mongo)?),
    };
    println!(
        "changes={count} written={} cpu_seconds={:.3} wall_seconds={:.3} cpu_us_per_write={:.3}",
        outcome.written,
        outcome.cpu,
        outcome.wall,
        1e6 * outcome.cpu / outcome.written.max(1) as f64
    );
    Ok(())
}

/// Feeds `changes` into `changes_input`, one time per [`PER_TIME`] changes, and steps the
/// worker until `done` says everything is acknowledged; returns CPU and wall seconds.
fn feed(
    worker: &mut timely::worker::Worker,
    mut changes_input: timely::dataflow::InputHandle<
        Time,
        timely::container::CapacityContainerBuilder<Vec<Change>>,
    >,
    changes: Vec<Change>,
    done: impl Fn() -> bool,
) -> (f64, f64) {
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    for change in changes {
        if *changes_input.time() < change.time {
            changes_input.advance_to(change.time);
            worker.step();
        }
        changes_input.send(change);
    }
    changes_input.close();
    while !done() {
        worker.step_or_park(Some(std::time::Duration::from_millis(1)));
    }
    (cpu_seconds() - cpu, wall.elapsed().as_secs_f64())
}

fn produce(count: usize, topic: String, kafka: KafkaArgs) -> anyhow::Result<Outcome> {
    ensure_topics(
        &kafka,
        &[TopicSpec {
            name: topic.clone(),
            partitions: 4,
            configs: Vec::new(),
        }],
        1,
    )?;
    let (producer, deliveries) = producer(&kafka)?;
    let producer = Arc::new(producer);
    let changes: Vec<Change> = (0..count).map(change).collect();
    let topics = SinkTopics {
        alpha: topic.clone(),
        dead_letters: format!("{topic}.dead"),
    };
    let sink_deliveries = deliveries.clone();
    // Held here as the job's worker holds it: the sink operator's copy goes when its input is
    // complete, and the last copy dropped would drop what is not yet delivered.
    let held = producer.clone();
    let (written, cpu, wall) = timely::execute_directly(move |worker| {
        let state = Rc::new(RefCell::new(SinkState::default()));
        let sink_state = state.clone();
        let (changes_input, rejected_input) = worker.dataflow::<Time, _, _>(|scope| {
            let (changes_input, changes) = scope.new_input::<Vec<Change>>();
            let (rejected_input, rejected) = scope.new_input::<Vec<Rejected>>();
            kafka_sink(
                changes,
                rejected,
                producer,
                sink_deliveries.clone(),
                topics,
                sink_state,
            );
            (changes_input, rejected_input)
        });
        rejected_input.close();
        let (cpu, wall) = feed(worker, changes_input, changes, || {
            let state = state.borrow();
            state.changes == count as u64 && state.acked(&sink_deliveries).is_none()
        });
        let written = state.borrow().changes;
        (written, cpu, wall)
    });
    drop(held);
    if let Some(failure) = deliveries.failure() {
        anyhow::bail!("producing failed: {failure}");
    }
    Ok(Outcome { written, cpu, wall })
}

fn write(count: usize, mongo: MongoArgs) -> anyhow::Result<Outcome> {
    let mongo = mongo
        .connect()?
        .ok_or_else(|| anyhow::anyhow!("--mongo URI is needed"))?;
    mongo.replace_collections()?;
    let changes: Vec<Change> = (0..count).map(change).collect();
    timely::execute_directly(move |worker| {
        let state = MongoSinkState::start(&mongo, 0);
        let sink_state = state.clone();
        let (changes_input, rejected_input) = worker.dataflow::<Time, _, _>(|scope| {
            let (changes_input, changes) = scope.new_input::<Vec<Change>>();
            let (rejected_input, rejected) = scope.new_input::<Vec<Rejected>>();
            mongo_sink(changes, rejected, None, sink_state);
            (changes_input, rejected_input)
        });
        rejected_input.close();
        let (cpu, wall) = feed(worker, changes_input, changes, || {
            state.borrow_mut().acked().is_none()
        });
        let progress = state.borrow().progress.clone();
        if let Some(failure) = progress.failure() {
            anyhow::bail!("writing failed: {failure}");
        }
        state.borrow_mut().finish();
        let written = progress
            .documents
            .load(std::sync::atomic::Ordering::Acquire);
        Ok(Outcome { written, cpu, wall })
    })
}
