//! The streaming job's dataflow, as each worker builds it: the Kafka source, the analytics
//! (resumed from the restored state), the state kept for recovery, and the alpha, dead-letter
//! and MongoDB sinks, all fed by one stream of changes. What differs by guarantee (the marks,
//! the state kept, the alpha sink) comes from the worker's [`Durability`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::AsCollection;
use roomflow_dataflows::{analytics, analytics_resumed, changes, Checkpointed, Time};
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use super::durability::Durability;
use super::plan::JobPlan;
use crate::kafka::admission::SourceCounts;
use crate::kafka::config::SourceConsumer;
use crate::kafka::coordination::CoordinationView;
use crate::kafka::partition::EndProbe;
use crate::kafka::source::kafka_source;
use crate::kafka::source_options::SourceState;
use crate::mongo::sink::{mongo_sink, MongoSinkState};

/// A worker's Kafka clients (its producer belongs to its [`Durability`]).
pub struct JobClients {
    /// The source's consumer (offsets are committed through it too).
    pub consumer: Arc<SourceConsumer>,
    /// Asks where resumed partitions end.
    pub end_probe: Arc<EndProbe>,
}

/// What a worker holds of its job dataflow: the state its operators share with the worker loop.
pub struct JobDataflow {
    /// The source's capability, offsets and counts.
    pub source: Rc<RefCell<SourceState>>,
    /// The MongoDB sink, with `--mongo`.
    pub mongo: Option<Rc<RefCell<MongoSinkState>>>,
    /// Where the restored state enters, when the job can resume (closed once fed).
    pub restored: Option<InputSession<Time, Checkpointed, isize>>,
}

/// Builds the job's dataflow on `worker`, with what `durability` adds to it.
pub fn build_job_dataflow(
    worker: &mut Worker,
    plan: &JobPlan,
    clients: &JobClients,
    coordination: CoordinationView,
    durability: &Durability,
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
    options.checkpoints = durability.checkpoints(plan);
    let restored = worker.dataflow::<Time, _, _>(|scope| {
        let probe = ProbeHandle::new();
        let streams = kafka_source(scope, options, source.clone(), probe.clone());
        let readings = streams.readings.clone().as_collection();
        let (restored_input, collections) = if durability.resumes(plan) {
            let (input, restored) = scope.new_collection::<Checkpointed, isize>();
            durability.keep_state(readings.clone(), restored.clone(), &streams, plan);
            // The restored state enters before the resume time: from it on, the outputs are
            // what changes (see `checkpoint.rs` of the dataflows).
            let collections =
                analytics_resumed(readings, restored, plan.settings).since(resume.time);
            (Some(input), collections)
        } else {
            (None, analytics(readings, plan.settings))
        };
        let changes = changes(&collections).probe_with(&probe);
        durability.sink(changes.clone(), &streams, plan);
        if let (Some(state), Some(config)) = (&mongo, &plan.mongo) {
            let archived = config.archive_readings.then(|| streams.readings.clone());
            mongo_sink(changes, streams.rejected, archived, state.clone());
        }
        restored_input
    });
    JobDataflow {
        source,
        mongo,
        restored,
    }
}
