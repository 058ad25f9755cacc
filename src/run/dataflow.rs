//! The streaming job's dataflow, as each worker builds it: the Kafka source, the analytics
//! (resumed from the restored state), the state kept for recovery, and the alpha, dead-letter
//! and MongoDB sinks, all fed by one stream of changes.
//!
//! At-least-once, each worker produces its own keys and, with `--mongo`, worker 0 gathers full
//! checkpoints for MongoDB. Exactly-once, every change goes to worker 0's transactional sink and
//! worker 0 gathers each mark's state changes for its transaction.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::AsCollection;
use roomflow_dataflows::{
    analytics, analytics_resumed, changes, checkpoint_state, state_changes, Checkpointed, Time,
};
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use super::plan::JobPlan;
use crate::kafka::admission::SourceCounts;
use crate::kafka::config::SourceConsumer;
use crate::kafka::coordination::CoordinationView;
use crate::kafka::partition::EndProbe;
use crate::kafka::sink::{kafka_sink, AlphaProducer, Deliveries, SinkState};
use crate::kafka::source::kafka_source;
use crate::kafka::source_options::{CheckpointTrigger, LastMark, MarkTime, SourceState};
use crate::kafka::transactional::{transactional_sink, TransactionState};
use crate::mongo::sink::{mongo_sink, MongoSinkState};
use crate::recovery::gather::gather_checkpoints;
use crate::recovery::saver::CheckpointSaver;
use crate::recovery::transactions::Transactions;

/// A worker's Kafka clients.
pub struct JobClients {
    /// The source's consumer (offsets are committed through it too).
    pub consumer: Arc<SourceConsumer>,
    /// Asks where resumed partitions end.
    pub end_probe: Arc<EndProbe>,
    /// Produces alpha and dead letters: the worker's own producer at-least-once; exactly-once,
    /// the job's transactional producer, on worker 0 only.
    pub producer: Option<(Arc<AlphaProducer>, Arc<Deliveries>)>,
}

/// How a worker's output is made durable, and what of it this worker drives.
pub enum Recovery<'a> {
    /// At-least-once; the leading worker's saver with `--mongo`.
    AtLeastOnce(Option<&'a CheckpointSaver>),
    /// Exactly-once: the sink's shared state, and on worker 0 the transactions it commits.
    ExactlyOnce(Rc<RefCell<TransactionState>>, Option<&'a Transactions>),
}

/// The alpha sink's side of the worker loop.
pub enum AlphaSink {
    /// Each worker's own producer.
    AtLeastOnce(Rc<RefCell<SinkState>>),
    /// Worker 0's transactional producer.
    ExactlyOnce(Rc<RefCell<TransactionState>>),
}

impl AlphaSink {
    /// Changes and dead letters produced, as counted.
    pub fn counts(&self) -> (u64, u64) {
        match self {
            AlphaSink::AtLeastOnce(state) => {
                let state = state.borrow();
                (state.changes, state.dead_letters)
            }
            AlphaSink::ExactlyOnce(state) => {
                let state = state.borrow();
                (state.sink.changes, state.sink.dead_letters)
            }
        }
    }
}

/// What a worker holds of its job dataflow: the state its operators share with the worker loop.
pub struct JobDataflow {
    /// The source's capability, offsets and counts.
    pub source: Rc<RefCell<SourceState>>,
    /// The alpha sink's frontier and counts.
    pub alpha: AlphaSink,
    /// The MongoDB sink, with `--mongo`.
    pub mongo: Option<Rc<RefCell<MongoSinkState>>>,
    /// Where the restored state enters, when the job can resume (closed once fed).
    pub restored: Option<InputSession<Time, Checkpointed, isize>>,
}

/// Builds the job's dataflow on `worker`.
pub fn build_job_dataflow(
    worker: &mut Worker,
    plan: &JobPlan,
    clients: &JobClients,
    coordination: CoordinationView,
    recovery: Recovery<'_>,
) -> JobDataflow {
    let resume = plan.resume.clone();
    let source = Rc::new(RefCell::new(SourceState {
        consumer: clients.consumer.clone(),
        end_probe: clients.end_probe.clone(),
        offsets: Default::default(),
        capability: Some(resume.time),
        counts: SourceCounts::default(),
        sent_up_to: resume.time,
        newest_effect: None,
    }));
    let mongo = plan
        .mongo
        .as_ref()
        .map(|mongo| MongoSinkState::start(mongo, resume.time));
    let mut options = plan.source_options(coordination);
    options.checkpoints = match &recovery {
        Recovery::AtLeastOnce(saver) => saver.map(|saver| CheckpointTrigger {
            interval: plan.checkpoint_interval,
            last: LastMark::WhereItStops,
            at: MarkTime::AtCapability,
            in_flight: saver.in_flight_flag(),
            max_in_flight: 1,
        }),
        Recovery::ExactlyOnce(_, transactions) => {
            transactions.map(|transactions| CheckpointTrigger {
                interval: plan.commit_interval,
                last: LastMark::AfterEverything,
                at: MarkTime::AtProgress,
                in_flight: transactions.in_flight_flag(),
                max_in_flight: 1,
            })
        }
    };
    let resumable = plan.mongo.is_some() || matches!(recovery, Recovery::ExactlyOnce(..));
    let alpha_state = Rc::new(RefCell::new(SinkState::starting_at(resume.time)));
    let restored = worker.dataflow::<Time, _, _>(|scope| {
        let probe = ProbeHandle::new();
        let streams = kafka_source(scope, options, source.clone(), probe.clone());
        let readings = streams.readings.clone().as_collection();
        let (restored_input, collections) = if resumable {
            let (input, restored) = scope.new_collection::<Checkpointed, isize>();
            // Every worker takes part in gathering (it is routed to worker 0); only the leading
            // worker's queue is read.
            match &recovery {
                Recovery::AtLeastOnce(saver) => {
                    let state = checkpoint_state(
                        readings.clone(),
                        restored.clone(),
                        streams.marks.clone(),
                        plan.settings,
                    );
                    gather_checkpoints(
                        streams.positions.clone(),
                        streams.marks.clone(),
                        state,
                        resume.positions.clone(),
                        saver
                            .map(CheckpointSaver::complete_slot)
                            .unwrap_or_default(),
                    );
                }
                Recovery::ExactlyOnce(_, transactions) => {
                    let state = state_changes(
                        readings.clone(),
                        restored.clone(),
                        streams.marks.clone(),
                        plan.settings,
                    );
                    gather_checkpoints(
                        streams.positions.clone(),
                        streams.marks.clone(),
                        state,
                        resume.positions.clone(),
                        transactions
                            .map(Transactions::complete_queue)
                            .unwrap_or_default(),
                    );
                }
            }
            // The restored state enters before the resume time: from it on, the outputs are
            // what changes (see `checkpoint.rs` of the dataflows).
            let collections =
                analytics_resumed(readings, restored, plan.settings).since(resume.time);
            (Some(input), collections)
        } else {
            (None, analytics(readings, plan.settings))
        };
        let changes = changes(&collections).probe_with(&probe);
        match &recovery {
            Recovery::AtLeastOnce(_) => {
                let (producer, deliveries) =
                    clients.producer.clone().expect("every worker produces");
                kafka_sink(
                    changes.clone(),
                    streams.rejected.clone(),
                    producer,
                    deliveries,
                    plan.topics.clone(),
                    alpha_state.clone(),
                );
            }
            Recovery::ExactlyOnce(state, _) => transactional_sink(
                changes.clone(),
                streams.rejected.clone(),
                streams.marks.clone(),
                clients.producer.clone(),
                plan.topics.clone(),
                state.clone(),
            ),
        }
        if let (Some(state), Some(config)) = (&mongo, &plan.mongo) {
            let archived = config.archive_readings.then(|| streams.readings.clone());
            mongo_sink(changes, streams.rejected, archived, state.clone());
        }
        restored_input
    });
    let alpha = match recovery {
        Recovery::AtLeastOnce(_) => AlphaSink::AtLeastOnce(alpha_state),
        Recovery::ExactlyOnce(state, _) => AlphaSink::ExactlyOnce(state),
    };
    JobDataflow {
        source,
        alpha,
        mongo,
        restored,
    }
}
