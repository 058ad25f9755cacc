//! `roomflow run`: the streaming job. Sensor topics → the dataflows → the alpha and dead-letter
//! topics, with offsets committed only behind acknowledged output, until SIGINT/SIGTERM or,
//! with `--exit-when-idle`, until caught up.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use differential_dataflow::AsCollection;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use roomflow_dataflows::{analytics, Time};
use timely::dataflow::operators::{Concatenate, Probe};
use timely::dataflow::ProbeHandle;

use crate::cli::RunArgs;
use crate::kafka::config::{QuietEof, SourceConsumer};
use crate::kafka::coordination::{Coordination, Report};
use crate::kafka::discovery::{Discovery, TopicSelection};
use crate::kafka::offsets::Positions;
use crate::kafka::sink::{flush, kafka_sink, producer, SinkState, SinkTopics};
use crate::kafka::source::{kafka_source, KafkaSourceOptions, SourceCounts, SourceState};
use crate::kafka::topics::{ensure_topics, TopicSpec};
use crate::sinks::changes::envelopes;
use crate::sources::validity::ValidRanges;

/// How often workers commit offsets while running.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// Totals over a process's workers, for the closing log line.
#[derive(Default)]
struct Totals {
    source: SourceCounts,
    changes: u64,
    dead_letter_messages: u64,
}

/// Runs the streaming job.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let settings = args.settings()?;
    let catch_up_tick_ms = args.catch_up_tick_ms()?;
    let config = args.workers.timely_config()?;
    let topics = SinkTopics {
        alpha: args.alpha_topic.clone(),
        dead_letters: args.dead_letter_topic.clone(),
    };
    let selection = match &args.topic_pattern {
        // Never the job's own outputs, whatever the pattern matches.
        Some(pattern) => TopicSelection::Pattern {
            pattern: pattern.clone(),
            except: vec![topics.alpha.clone(), topics.dead_letters.clone()],
        },
        None => TopicSelection::Named(args.topics.clone()),
    };
    if let TopicSelection::Named(names) = &selection {
        if names
            .iter()
            .any(|name| *name == topics.alpha || *name == topics.dead_letters)
        {
            bail!("--topics must not include the job's own output topics (--alpha-topic, --dead-letter-topic)");
        }
    }
    args.kafka.check_reachable()?;
    ensure_topics(
        &args.kafka,
        &[
            TopicSpec {
                name: topics.alpha.clone(),
                partitions: args.alpha_partitions,
            },
            TopicSpec {
                name: topics.dead_letters.clone(),
                partitions: args.alpha_partitions,
            },
        ],
        args.replication_factor,
    )?;
    let discovery = Discovery::start(&args.kafka, selection, args.discover_interval)?;

    // The first SIGINT/SIGTERM stops cleanly; a second one exits at once.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())
            .context("cannot handle signals")?;
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle signals")?;
    }

    tracing::info!(
        brokers = %args.kafka.brokers,
        alpha = %topics.alpha,
        dead_letters = %topics.dead_letters,
        group = %args.group,
        from = ?args.from,
        workers = args.workers.workers,
        processes = args.workers.processes,
        process = args.workers.process,
        "roomflow run starting"
    );

    let totals: Arc<Mutex<Totals>> = Arc::default();
    let valid = Arc::new(ValidRanges::new(&args.valid));
    let known = discovery.known.clone();
    let (kafka, group, from, batch, exit_when_idle) = (
        args.kafka.clone(),
        args.group.clone(),
        args.from,
        args.batch.max(1),
        args.exit_when_idle,
    );
    let catch_up_lag = args.catch_up_lag;
    let totals_w = totals.clone();
    let stop_w = stop.clone();
    // A few coarse ticks: a partition catching up moves a whole catch-up tick at a time.
    let max_ahead = (8 * catch_up_tick_ms) as Time;

    let guards = timely::execute(config, move |worker| -> Result<(), String> {
        let index = worker.index();
        let consumer: SourceConsumer = kafka
            .client_config(&[
                ("group.id", &group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "true"),
                ("auto.offset.reset", "earliest"),
                // The broker answers a fetch when data arrives or after this wait. Kafka answers
                // early; brokers that hold every fetch for the whole wait (the local stand-in)
                // would otherwise add up to 500 ms to every change.
                ("fetch.wait.max.ms", "25"),
            ])
            .create_with_context(QuietEof)
            .map_err(|e| format!("cannot create a Kafka consumer: {e}"))?;
        let consumer = Arc::new(consumer);
        let (producer, deliveries) =
            producer(&kafka).map_err(|e| format!("cannot create a Kafka producer: {e}"))?;
        let producer = Arc::new(producer);

        // Every worker builds its dataflows in the same order: the side dataflow first.
        let mut coordination = Coordination::new(worker);
        let view = coordination.view();
        let source_state = Rc::new(RefCell::new(SourceState {
            consumer: consumer.clone(),
            offsets: Default::default(),
            capability: Some(0),
            counts: SourceCounts::default(),
        }));
        let sink_state: Rc<RefCell<SinkState>> = Rc::default();
        let options = KafkaSourceOptions {
            known: known.clone(),
            start: from,
            horizon: settings.horizon(),
            valid: valid.clone(),
            batch,
            stop: stop_w.clone(),
            exit_when_idle,
            coordination: view.clone(),
            max_ahead,
            catch_up_tick_ms,
            catch_up_lag,
        };
        worker.dataflow::<Time, _, _>(|scope| {
            let probe = ProbeHandle::new();
            let (readings, rejected) =
                kafka_source(scope, options, source_state.clone(), probe.clone());
            let collections = analytics(readings.as_collection(), settings);
            let changes = scope.concatenate(vec![
                envelopes(collections.room_averages),
                envelopes(collections.window_averages),
                envelopes(collections.temperature_deltas),
            ]);
            let changes = changes.probe_with(&probe);
            kafka_sink(
                changes,
                rejected,
                producer.clone(),
                deliveries.clone(),
                topics.clone(),
                sink_state.clone(),
            );
        });

        let mut last_commit = Instant::now();
        let mut committed: Option<Positions> = None;
        loop {
            worker.step_or_park(Some(Duration::from_millis(10)));
            if let Some(failure) = deliveries.failure() {
                return Err(format!("producing failed {failure}; offsets of the unacknowledged changes were not committed"));
            }
            let acked = sink_state.borrow().acked(&deliveries);
            let capability = source_state.borrow().capability;
            coordination.publish(Report { capability, acked });
            let global = view.acked();
            if let Some(global) = global {
                if global.is_none() || last_commit.elapsed() >= COMMIT_INTERVAL {
                    last_commit = Instant::now();
                    if let Some(positions) = source_state.borrow_mut().offsets.committable(global) {
                        commit(&consumer, &positions, CommitMode::Async);
                        committed = Some(positions);
                    }
                }
            }
            if view.all_complete() {
                break;
            }
        }
        flush(&producer, Duration::from_secs(30)).map_err(|e| e.to_string())?;
        if let Some(positions) = &committed {
            // Synchronously, so the position is durable before the process exits.
            commit(&consumer, positions, CommitMode::Sync);
        }
        coordination.close();
        while worker.step_or_park(Some(Duration::from_millis(10))) {}

        let mut totals = totals_w.lock().expect("no panics holding the lock");
        let counts = source_state.borrow().counts;
        totals.source.messages += counts.messages;
        totals.source.readings += counts.readings;
        totals.source.dead_letters += counts.dead_letters;
        totals.source.late += counts.late;
        let sink = sink_state.borrow();
        totals.changes += sink.changes;
        totals.dead_letter_messages += sink.dead_letters;
        tracing::debug!(worker = index, "worker done");
        Ok(())
    })
    .map_err(anyhow::Error::msg)
    .context("cannot start the workers")?;
    let mut failure = None;
    for result in guards.join() {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(panic) => failure = failure.or(Some(format!("a worker failed: {panic}"))),
        }
    }
    drop(discovery);
    if let Some(failure) = failure {
        bail!(failure);
    }
    let totals = totals.lock().expect("workers are done");
    tracing::info!(
        messages = totals.source.messages,
        readings = totals.source.readings,
        dead_letters = totals.source.dead_letters,
        late = totals.source.late,
        changes = totals.changes,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "roomflow run stopped cleanly; offsets committed"
    );
    Ok(())
}

fn commit(consumer: &SourceConsumer, positions: &Positions, mode: CommitMode) {
    let mut list = TopicPartitionList::new();
    for (partition, next) in positions {
        list.add_partition_offset(&partition.topic, partition.partition, Offset::Offset(*next))
            .expect("valid offset");
    }
    if let Err(error) = consumer.commit(&list, mode) {
        tracing::warn!(%error, "cannot commit offsets; will retry with the next commit");
    }
}
