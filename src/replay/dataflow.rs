//! A replay worker's dataflow: the file source, the analytics, and every sink the flags ask for,
//! fed by one stream of changes.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use differential_dataflow::AsCollection;
use roomflow_dataflows::{analytics, changes, Settings, Time};
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use super::outputs::Outputs;
use crate::mongo::config::Mongo;
use crate::mongo::sink::{mongo_sink, MongoSinkState};
use crate::sinks::changes::write_changes;
use crate::sinks::final_state::final_state;
use crate::sinks::rejected::{rejected_sink, RejectedCounts, RejectedFiles};
use crate::sinks::summary::{gather_room_averages, Gathered, RoomTable};
use crate::sources::replay::{replay as replay_source, ReplayOptions};

/// Where a replay worker's results go.
pub struct ReplaySinks<'a> {
    /// The `--out` files of this process.
    pub outputs: Option<&'a Outputs>,
    /// MongoDB and this worker's sink state, with `--mongo`.
    pub mongo: Option<(&'a Mongo, Rc<RefCell<MongoSinkState>>)>,
    /// Final room averages for the table, gathered on worker 0.
    pub table: RoomTable,
    /// Rejected input counts (and examples).
    pub counts: Arc<Mutex<RejectedCounts>>,
    /// The worker that writes this process's `--changes` file.
    pub changes_writer: usize,
}

/// Builds the replay dataflow of one worker.
pub fn build_replay_dataflow(
    worker: &mut Worker,
    options: ReplayOptions,
    settings: Settings,
    sinks: ReplaySinks<'_>,
) {
    worker.dataflow::<Time, _, _>(|scope| {
        let probe = ProbeHandle::new();
        let (readings, rejected) = replay_source(scope, options, probe.clone());
        let collections = analytics(readings.clone().as_collection(), settings);
        let files = sinks.outputs;
        let changes_file = files.and_then(|f| f.changes.clone());
        let changes =
            (sinks.mongo.is_some() || changes_file.is_some()).then(|| changes(&collections));
        if let (Some((mongo, state)), Some(changes)) = (&sinks.mongo, &changes) {
            let archived = mongo.archive_readings.then(|| readings.clone());
            mongo_sink(changes.clone(), rejected.clone(), archived, state.clone());
        }
        if let (Some(file), Some(changes)) = (changes_file, changes) {
            write_changes(changes, sinks.changes_writer, file);
        }
        let rejected_files = files.and_then(|f| {
            Some(RejectedFiles {
                dead_letters: f.dead_letters.clone()?,
                late: f.late.clone()?,
            })
        });
        rejected_sink(rejected, rejected_files, sinks.counts);
        // With --out, the table is not printed: only the summary line's counts are gathered.
        let gathered = match files {
            Some(_) => Gathered::Counts,
            None => Gathered::Table,
        };
        gather_room_averages(collections.room_averages.clone(), sinks.table, gathered);
        if let Some(files) = files {
            let windows = settings.windows;
            final_state(
                collections.room_averages.clone(),
                files.room_averages.clone(),
                windows,
            );
            final_state(
                collections.window_averages.clone(),
                files.window_averages.clone(),
                windows,
            );
            final_state(
                collections.temperature_deltas.clone(),
                files.temperature_deltas.clone(),
                windows,
            );
        }
        collections.room_averages.inner.probe_with(&probe);
        collections.window_averages.inner.probe_with(&probe);
        collections.temperature_deltas.inner.probe_with(&probe);
    });
}
