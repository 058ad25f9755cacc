//! The streaming job's dataflow, as each worker builds it: the Kafka source, the analytics
//! (resumed from the restored state with `--mongo`), checkpoint gathering, and the alpha,
//! dead-letter and MongoDB sinks, all fed by one stream of changes.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::AsCollection;
use roomflow_dataflows::{
    analytics, analytics_resumed, changes, checkpoint_state, Checkpointed, Time,
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
use crate::kafka::source_options::{CheckpointTrigger, SourceState};
use crate::mongo::sink::{mongo_sink, MongoSinkState};
use crate::recovery::gather::gather_checkpoints;
use crate::recovery::saver::CheckpointSaver;

/// A worker's Kafka clients.
pub struct JobClients {
    /// The source's consumer (offsets are committed through it too).
    pub consumer: Arc<SourceConsumer>,
    /// Asks where resumed partitions end.
    pub end_probe: Arc<EndProbe>,
    /// Produces alpha and dead letters.
    pub producer: Arc<AlphaProducer>,
    /// What the producer has outstanding.
    pub deliveries: Arc<Deliveries>,
}

/// What a worker holds of its job dataflow: the state its operators share with the worker loop.
pub struct JobDataflow {
    /// The source's capability, offsets and counts.
    pub source: Rc<RefCell<SourceState>>,
    /// The alpha sink's frontier and counts.
    pub alpha: Rc<RefCell<SinkState>>,
    /// The MongoDB sink, with `--mongo`.
    pub mongo: Option<Rc<RefCell<MongoSinkState>>>,
    /// Where the restored state enters, with `--mongo` (closed once fed).
    pub restored: Option<InputSession<Time, Checkpointed, isize>>,
}

/// Builds the job's dataflow on `worker`. `checkpoints` is the leading worker's saver (with
/// `--mongo`): its source marks checkpoints and the gathered ones are left for it.
pub fn build_job_dataflow(
    worker: &mut Worker,
    plan: &JobPlan,
    clients: &JobClients,
    coordination: CoordinationView,
    checkpoints: Option<&CheckpointSaver>,
) -> JobDataflow {
    let resume = plan.resume.clone();
    let source = Rc::new(RefCell::new(SourceState {
        consumer: clients.consumer.clone(),
        end_probe: clients.end_probe.clone(),
        offsets: Default::default(),
        capability: Some(resume.time),
        counts: SourceCounts::default(),
    }));
    let alpha = Rc::new(RefCell::new(SinkState::starting_at(resume.time)));
    let mongo = plan
        .mongo
        .as_ref()
        .map(|mongo| MongoSinkState::start(mongo, resume.time));
    let mut options = plan.source_options(coordination);
    options.checkpoints = checkpoints.map(|saver| CheckpointTrigger {
        interval: plan.checkpoint_interval,
        in_flight: saver.in_flight_flag(),
    });
    let complete = checkpoints.map(CheckpointSaver::complete_slot);
    let restored = worker.dataflow::<Time, _, _>(|scope| {
        let probe = ProbeHandle::new();
        let streams = kafka_source(scope, options, source.clone(), probe.clone());
        let readings = streams.readings.clone().as_collection();
        let mut restored_input = None;
        let collections = match &plan.mongo {
            Some(_) => {
                let (input, restored) = scope.new_collection::<Checkpointed, isize>();
                restored_input = Some(input);
                let state = checkpoint_state(
                    readings.clone(),
                    restored.clone(),
                    streams.marks.clone(),
                    plan.settings,
                );
                // Every worker takes part (the gathering is routed to worker 0); only the
                // leading worker's slot is read.
                gather_checkpoints(
                    streams.positions.clone(),
                    streams.marks.clone(),
                    state,
                    resume.positions.clone(),
                    complete.clone().unwrap_or_default(),
                );
                analytics_resumed(readings, restored, plan.settings)
            }
            None => analytics(readings, plan.settings),
        };
        let changes = changes(&collections).probe_with(&probe);
        kafka_sink(
            changes.clone(),
            streams.rejected.clone(),
            clients.producer.clone(),
            clients.deliveries.clone(),
            plan.topics.clone(),
            alpha.clone(),
        );
        if let (Some(state), Some(config)) = (&mongo, &plan.mongo) {
            let archived = config.archive_readings.then(|| streams.readings.clone());
            mongo_sink(changes, streams.rejected, archived, state.clone());
        }
        restored_input
    });
    JobDataflow {
        source,
        alpha,
        mongo,
        restored,
    }
}
