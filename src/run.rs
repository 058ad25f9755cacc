//! `roomflow run`: the streaming job. Sensor topics → the dataflows → the alpha and dead-letter
//! topics, with offsets committed only behind acknowledged output, until SIGINT/SIGTERM or,
//! with `--exit-when-idle`, until caught up.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use differential_dataflow::input::Input;
use differential_dataflow::AsCollection;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use roomflow_dataflows::{
    analytics, analytics_resumed, changes, checkpoint_state, Checkpointed, Time,
};
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

use crate::cli::RunArgs;
use crate::kafka::admission::SourceCounts;
use crate::kafka::config::{QuietEof, SourceConsumer};
use crate::kafka::coordination::{Coordination, Report};
use crate::kafka::discovery::{Discovery, TopicSelection};
use crate::kafka::offsets::Positions;
use crate::kafka::position::Resume;
use crate::kafka::sink::{flush, kafka_sink, producer, SinkState, SinkTopics};
use crate::kafka::source::{kafka_source, CheckpointTrigger, KafkaSourceOptions, SourceState};
use crate::kafka::topics::{ensure_topics, TopicSpec};
use crate::mongo::sink::{mongo_sink, MongoSinkState};
use crate::recovery::checkpoint::Checkpoint;
use crate::recovery::gather::gather_checkpoints;
use crate::recovery::store::CheckpointStore;
use crate::sources::validity::ValidRanges;
use crate::telemetry::catalog;
use crate::telemetry::health::Health;
use metrics::{counter, gauge};

/// How often workers commit offsets while running.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// Totals over a process's workers, for the closing log line.
#[derive(Default)]
struct Totals {
    source: SourceCounts,
    changes: u64,
    dead_letter_messages: u64,
    mongo_documents: u64,
    mongo_round_trips: u64,
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
    // Bound first: a busy --metrics address fails at once, and probes see "starting" meanwhile.
    let health = Arc::new(Health::new(args.workers.workers));
    if let Some(address) = args.metrics {
        crate::telemetry::server::serve(address, health.clone())?;
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
    let mongo = args.mongo.connect()?;
    let (store, resume, restored) = match &mongo {
        Some(mongo) => {
            let (store, checkpoint) = CheckpointStore::open(mongo, &args.group, settings)?;
            match checkpoint {
                Some(checkpoint) => {
                    tracing::info!(
                        time = checkpoint.time,
                        records = checkpoint.state.len(),
                        partitions = checkpoint.positions.len(),
                        "resuming from the checkpoint of group {:?}",
                        args.group
                    );
                    (Some(store), checkpoint.resume(), checkpoint.state)
                }
                None => {
                    tracing::info!(
                        "no checkpoint of group {:?} in MongoDB: starting as --from says",
                        args.group
                    );
                    (Some(store), Resume::default(), Vec::new())
                }
            }
        }
        None => (None, Resume::default(), Vec::new()),
    };
    let resume = Arc::new(resume);
    // Worker 0 feeds the restored state and writes checkpoints.
    let restored_state = Arc::new(Mutex::new(Some(restored)));
    let store = Arc::new(tokio::sync::Mutex::new(store));
    let checkpoint_interval = args.checkpoint_interval;
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
    let health_w = health.clone();
    let stop_w = stop.clone();
    // A few coarse ticks: a partition catching up moves a whole catch-up tick at a time.
    let max_ahead = (8 * catch_up_tick_ms) as Time;

    let guards = timely::execute(config, move |worker| -> Result<(), String> {
        let index = worker.index();
        let health = health_w.clone();
        let consumer: SourceConsumer = kafka
            .client_config(&[
                ("group.id", &group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "true"),
                ("auto.offset.reset", "earliest"),
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
        let end_probe = kafka
            .client_config(&[])
            .create()
            .map_err(|e| format!("cannot create a Kafka client: {e}"))?;
        let source_state = Rc::new(RefCell::new(SourceState {
            consumer: consumer.clone(),
            end_probe: Arc::new(end_probe),
            offsets: Default::default(),
            capability: Some(resume.time),
            counts: SourceCounts::default(),
        }));
        let leader = index == 0;
        let mongo_state = mongo
            .as_ref()
            .map(|mongo| MongoSinkState::start(mongo, resume.time));
        let checkpoint_in_flight = Rc::new(Cell::new(false));
        let complete_checkpoint: Rc<RefCell<Option<Checkpoint>>> = Rc::default();
        let sink_state = Rc::new(RefCell::new(SinkState::starting_at(resume.time)));
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
            resume: resume.clone(),
            checkpoints: (leader && mongo.is_some()).then(|| CheckpointTrigger {
                interval: checkpoint_interval,
                in_flight: checkpoint_in_flight.clone(),
            }),
        };
        let restored_input = worker.dataflow::<Time, _, _>(|scope| {
            let probe = ProbeHandle::new();
            let streams = kafka_source(scope, options, source_state.clone(), probe.clone());
            let mut restored_input = None;
            let readings = streams.readings.clone().as_collection();
            let collections = match &mongo {
                Some(_) => {
                    let (input, restored) = scope.new_collection::<Checkpointed, isize>();
                    restored_input = Some(input);
                    let state = checkpoint_state(
                        readings.clone(),
                        restored.clone(),
                        streams.marks.clone(),
                        settings,
                    );
                    gather_checkpoints(
                        streams.positions.clone(),
                        streams.marks.clone(),
                        state,
                        resume.positions.clone(),
                        complete_checkpoint.clone(),
                    );
                    analytics_resumed(readings, restored, settings)
                }
                None => analytics(readings, settings),
            };
            let changes = changes(&collections).probe_with(&probe);
            kafka_sink(
                changes.clone(),
                streams.rejected.clone(),
                producer.clone(),
                deliveries.clone(),
                topics.clone(),
                sink_state.clone(),
            );
            if let (Some(state), Some(mongo)) = (&mongo_state, &mongo) {
                let archived = mongo.archive_readings.then(|| streams.readings.clone());
                mongo_sink(changes, streams.rejected, archived, state.clone());
            }
            restored_input
        });
        health.beat(index);
        // The restored state enters at the checkpoint's time, through worker 0.
        if let Some(mut input) = restored_input {
            input.advance_to(resume.time);
            if leader {
                let records = restored_state
                    .lock()
                    .expect("no panics holding the lock")
                    .take();
                for record in records.into_iter().flatten() {
                    input.insert(record);
                }
            }
            input.close();
        }

        let mut last_commit = Instant::now();
        let mut committed: Option<Positions> = None;
        let mut saving: Option<tokio::task::JoinHandle<anyhow::Result<Time>>> = None;
        let mut last_checkpoint = Instant::now();
        let checkpoint_age = (leader && mongo.is_some()).then(|| gauge!(catalog::CHECKPOINT_AGE));
        loop {
            worker.step_or_park(Some(Duration::from_millis(10)));
            health.beat(index);
            if stop_w.load(std::sync::atomic::Ordering::Relaxed) {
                health.stopping();
            }
            if let Some(gauge) = &checkpoint_age {
                gauge.set(last_checkpoint.elapsed());
            }
            if let Some(failure) = deliveries.failure() {
                return Err(format!("producing failed {failure}; offsets of the unacknowledged changes were not committed"));
            }
            let mut acked = sink_state.borrow().acked(&deliveries);
            if let Some(state) = &mongo_state {
                let mut state = state.borrow_mut();
                if let Some(failure) = state.progress.failure() {
                    return Err(format!("{failure}; the job stops (nothing after the last checkpoint is lost: a restart redoes it)"));
                }
                acked = match (acked, state.acked()) {
                    (None, None) => None,
                    (Some(time), None) | (None, Some(time)) => Some(time),
                    (Some(kafka), Some(mongo)) => Some(kafka.min(mongo)),
                };
            }
            let capability = source_state.borrow().capability;
            coordination.publish(Report { capability, acked });
            let global = view.acked();
            if let (Some(mongo), Some(global)) = (&mongo, global) {
                // A checkpoint is written once every output before its time is acknowledged.
                let ready = complete_checkpoint
                    .borrow()
                    .as_ref()
                    .is_some_and(|checkpoint| global.is_none_or(|acked| acked >= checkpoint.time));
                if saving.is_none() && ready {
                    let checkpoint = complete_checkpoint.borrow_mut().take().expect("ready");
                    let store = store.clone();
                    saving = Some(mongo.runtime.spawn(async move {
                        let mut store = store.lock().await;
                        let store = store.as_mut().expect("a store with --mongo");
                        store.save(&checkpoint).await.map(|()| checkpoint.time)
                    }));
                }
                if saving.as_ref().is_some_and(|task| task.is_finished()) {
                    let task = saving.take().expect("finished");
                    match mongo.runtime.block_on(task) {
                        Ok(Ok(time)) => {
                            tracing::info!(time, "checkpoint written");
                            counter!(catalog::CHECKPOINTS).increment(1);
                            last_checkpoint = Instant::now();
                        }
                        Ok(Err(error)) => tracing::warn!(error = format!("{error:#}"), "cannot write a checkpoint; the next one will be tried"),
                        Err(error) => tracing::warn!(%error, "cannot write a checkpoint"),
                    }
                    checkpoint_in_flight.set(false);
                }
            }
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
        health.stopping();
        flush(&producer, Duration::from_secs(30)).map_err(|e| e.to_string())?;
        if let Some(mongo) = &mongo {
            // Everything is acknowledged: the newest complete checkpoint can be written.
            if let Some(task) = saving.take() {
                let _ = mongo.runtime.block_on(task);
            }
            if let Some(checkpoint) = complete_checkpoint.borrow_mut().take() {
                let mut store = store.blocking_lock();
                let store = store.as_mut().expect("a store with --mongo");
                match mongo.runtime.block_on(store.save(&checkpoint)) {
                    Ok(()) => {
                        tracing::info!(time = checkpoint.time, "last checkpoint written");
                        counter!(catalog::CHECKPOINTS).increment(1);
                    }
                    Err(error) => tracing::warn!(error = format!("{error:#}"), "cannot write the last checkpoint"),
                }
            }
        }
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
        if let Some(state) = &mongo_state {
            let mut state = state.borrow_mut();
            state.finish();
            totals.mongo_documents += state.progress.documents.load(std::sync::atomic::Ordering::Relaxed);
            totals.mongo_round_trips += state.progress.round_trips.load(std::sync::atomic::Ordering::Relaxed);
        }
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
        mongo_documents = totals.mongo_documents,
        mongo_round_trips = totals.mongo_round_trips,
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
