//! `roomflow run`: the streaming job. Sensor topics → the dataflows → the alpha and dead-letter
//! topics (and MongoDB), with offsets committed only behind acknowledged output, until
//! SIGINT/SIGTERM or, with `--exit-when-idle`, until caught up.
//!
//! What each file owns:
//! - `mod.rs`: the command: checks, topics, the checkpoint to resume from, signals, the workers,
//!   and the closing line.
//! - `plan.rs`: what every worker is given ([`plan::JobPlan`]) and the totals they add up.
//! - `dataflow.rs`: the job's dataflow, built by one function that returns its handles.
//! - `durability.rs`: the job's guarantee as one type, a variant per guarantee: what it adds to
//!   the dataflow, what it does between steps and at the end.
//! - `error.rs`: why the job stops, typed.
//! - `worker.rs`: a worker's loop as a type: start, step, finish.

pub mod dataflow;
pub mod durability;
pub mod error;
pub mod plan;
pub mod worker;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};

use roomflow_dataflows::{Checkpointed, Settings};

use crate::cli::{AlphaGuarantee, RunArgs};
use crate::exactly_once::changelog::restore;
use crate::exactly_once::producer::transactional_producer;
use crate::kafka::discovery::{Discovery, TopicSelection};
use crate::kafka::position::Resume;
use crate::kafka::sink::SinkTopics;
use crate::kafka::topics::{ensure_topics, TopicSpec};
use crate::mongo::config::Mongo;
use crate::recovery::store::CheckpointStore;
use crate::sources::validity::ValidRanges;
use crate::telemetry::health::Health;
use error::JobError;
use plan::{ExactlyOncePlan, JobPlan, RestoredState, Totals};
use worker::JobWorker;

/// The exactly-once state changelog's topic configuration (see where it is created).
pub(crate) const STATE_TOPIC_CONFIGS: [(&str, &str); 4] = [
    ("cleanup.policy", "compact"),
    ("segment.bytes", "16777216"),
    ("segment.ms", "600000"),
    ("min.cleanable.dirty.ratio", "0.25"),
];

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
    let selection = topic_selection(&args, &topics)?;
    // Bound first: a busy --metrics address fails at once, and probes see "starting" meanwhile.
    let health = Arc::new(Health::new(args.workers.workers));
    if let Some(address) = args.metrics {
        crate::telemetry::server::serve(address, health.clone())?;
    }
    args.kafka.check_reachable()?;
    let exactly_once = args.alpha_guarantee == AlphaGuarantee::ExactlyOnce;
    let state_topic = args.state_topic()?;
    let mut specs = vec![
        TopicSpec {
            name: topics.alpha.clone(),
            partitions: args.alpha_partitions,
            configs: Vec::new(),
        },
        TopicSpec {
            name: topics.dead_letters.clone(),
            partitions: args.alpha_partitions,
            configs: Vec::new(),
        },
    ];
    if exactly_once {
        // One partition: the changelog is read back whole, in order, at every start. Compacted
        // promptly, so that a restart reads about the state, not its history: segments of
        // 16 MiB, rolled at least every 10 minutes (the active segment is never compacted), and
        // cleaned once a quarter of the log is superseded values (Kafka's default, a half, and
        // its 1 GiB segments let a 100-room job's restart read a million records of history).
        specs.push(TopicSpec {
            name: state_topic.clone(),
            partitions: 1,
            configs: STATE_TOPIC_CONFIGS.to_vec(),
        });
    }
    ensure_topics(&args.kafka, &specs, args.replication_factor)?;
    let mongo = args.mongo.connect()?;
    let mut exactly_once_plan = None;
    let (store, resume, restored) = if exactly_once {
        let (plan, resume, restored) = exactly_once_start(&args, &state_topic)?;
        exactly_once_plan = Some(plan);
        (None, resume, restored)
    } else {
        match &mongo {
            Some(mongo) => resume_point(mongo, &args.group, settings)?,
            None => (None, Resume::default(), Vec::new()),
        }
    };
    let discovery = Discovery::start(&args.kafka, selection, args.discover_interval)?;

    let stop = stop_on_signals()?;

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

    let plan = Arc::new(JobPlan {
        kafka: args.kafka.clone(),
        group: args.group.clone(),
        topics,
        settings,
        from: args.from,
        batch: args.batch.max(1),
        exit_when_idle: args.exit_when_idle,
        catch_up_tick_ms,
        catch_up_lag: args.catch_up_lag,
        checkpoint_interval: args.checkpoint_interval,
        commit_interval: args.commit_interval,
        exactly_once: exactly_once_plan,
        valid: Arc::new(ValidRanges::new(&args.valid)),
        max_message_bytes: args.max_line_bytes,
        known: discovery.known.clone(),
        resume: Arc::new(resume),
        mongo,
        restored: RestoredState::new(restored, args.workers.workers),
        store: Mutex::new(store),
        stop,
        health,
        totals: Mutex::new(Totals::default()),
        failure: Mutex::new(None),
    });
    let workers_plan = plan.clone();
    let guards = timely::execute(config, move |worker| -> Result<(), JobError> {
        let result = JobWorker::start(worker, &workers_plan).and_then(|mut job| {
            while job.step()? {}
            job.finish()
        });
        // The first failure stops every worker of the process (they would wait for this one),
        // and the failed worker's dataflows go: timely would otherwise step them forever.
        if let Err(error) = &result {
            workers_plan.fail(worker.index(), error);
            for dataflow in worker.installed_dataflows() {
                worker.drop_dataflow(dataflow);
            }
        }
        result
    })
    .map_err(anyhow::Error::msg)
    .context("cannot start the workers")?;
    let mut panicked = None;
    for result in guards.join() {
        if let Err(panic) = result {
            panicked = panicked.or(Some(JobError::WorkerPanicked { detail: panic }));
        }
    }
    drop(discovery);
    // The first worker's failure is the job's (the others stopped because of it).
    if let Some(failure) = plan.take_failure().or(panicked) {
        return Err(failure.into());
    }
    let totals = plan.totals.lock().expect("workers are done");
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

/// The sensor topics to read: named, or matching a pattern (never the job's own outputs).
fn topic_selection(args: &RunArgs, topics: &SinkTopics) -> anyhow::Result<TopicSelection> {
    let outputs = [topics.alpha.clone(), topics.dead_letters.clone()];
    match &args.topic_pattern {
        Some(pattern) => Ok(TopicSelection::Pattern {
            pattern: pattern.clone(),
            except: outputs.to_vec(),
        }),
        None => {
            if args.topics.iter().any(|name| outputs.contains(name)) {
                bail!("--topics must not include the job's own output topics (--alpha-topic, --dead-letter-topic)");
            }
            Ok(TopicSelection::Named(args.topics.clone()))
        }
    }
}

/// The checkpoint store of `group`, where the job resumes and the state it resumes with.
fn resume_point(
    mongo: &Mongo,
    group: &str,
    settings: Settings,
) -> anyhow::Result<(Option<CheckpointStore>, Resume, Vec<Checkpointed>)> {
    let (store, checkpoint) = CheckpointStore::open(mongo, group, settings)?;
    match checkpoint {
        Some(checkpoint) => {
            tracing::info!(
                time = checkpoint.time,
                records = checkpoint.state.len(),
                partitions = checkpoint.positions.len(),
                "resuming from the checkpoint of group {group:?}"
            );
            Ok((Some(store), checkpoint.resume(), checkpoint.state))
        }
        None => {
            tracing::info!("no checkpoint of group {group:?} in MongoDB: starting as --from says");
            Ok((Some(store), Resume::default(), Vec::new()))
        }
    }
}

/// A flag the first SIGINT/SIGTERM sets (the job stops cleanly); a second one exits at once.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())
            .context("cannot handle signals")?;
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle signals")?;
    }
    Ok(stop)
}

/// Exactly-once: process 0 fences any earlier incarnation (so the state read next is final) and
/// holds the transactional producer; every process reads where to resume from the state topic.
fn exactly_once_start(
    args: &RunArgs,
    state_topic: &str,
) -> anyhow::Result<(ExactlyOncePlan, Resume, Vec<Checkpointed>)> {
    let producer = if args.workers.process == 0 {
        let (producer, deliveries) = transactional_producer(&args.kafka, &args.group)?;
        Some((Arc::new(producer), deliveries))
    } else {
        None
    };
    let (resume, restored) = match restore(&args.kafka, state_topic)? {
        Some(checkpoint) => {
            tracing::info!(
                time = checkpoint.time,
                records = checkpoint.state.len(),
                partitions = checkpoint.positions.len(),
                "resuming from the last transaction in {state_topic:?}"
            );
            (checkpoint.resume(), checkpoint.state)
        }
        None => {
            tracing::info!("nothing committed in {state_topic:?}: starting as --from says");
            (Resume::default(), Vec::new())
        }
    };
    let plan = ExactlyOncePlan {
        state_topic: state_topic.to_string(),
        producer,
    };
    Ok((plan, resume, restored))
}
