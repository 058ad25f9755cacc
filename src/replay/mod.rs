//! `roomflow replay`: recorded files → the dataflows → files, MongoDB and a summary.
//!
//! What each file owns:
//! - `mod.rs`: the command: inputs shared out, outputs opened, the workers, the ending.
//! - `outputs.rs`: the `--out` files of a process.
//! - `dataflow.rs`: a worker's dataflow, built by one function.
//! - `report.rs`: the progress bar, the table and the summary line.

pub mod dataflow;
pub mod outputs;
pub mod report;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};
use roomflow_dataflows::Time;

use crate::cli::ReplayArgs;
use crate::mongo::sink::MongoSinkState;
use crate::mongo::writer::WriterProgress;
use crate::sinks::rejected::RejectedCounts;
use crate::sinks::summary::RoomTable;
use crate::sources::inputs::{assign, discover_inputs};
use crate::sources::lines::first_event_time;
use crate::sources::pacing::Pacing;
use crate::sources::replay::ReplayOptions;
use crate::sources::validity::ValidRanges;
use dataflow::{build_replay_dataflow, ReplaySinks};
use outputs::Outputs;
use report::{mongo_summary, print_summary, spawn_progress};

/// Runs the replay command.
pub fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let settings = args.settings()?;
    let config = args.workers.timely_config()?;
    let (processes, process, workers) = (
        args.workers.processes,
        args.workers.process,
        args.workers.workers,
    );
    // Streams go to worker 0: only its process opens them.
    let inputs = discover_inputs(&args.paths, args.format, process == 0)?;
    let peers = processes * workers;

    let outputs = match &args.out {
        Some(dir) => Some(Outputs::create(dir, args.changes, process, processes)?),
        None => None,
    };

    let mongo = args.mongo.connect()?;
    if let Some(mongo) = &mongo {
        if process == 0 {
            mongo.replace_collections()?;
        }
    }
    let mongo_progress: Arc<Mutex<Vec<Arc<WriterProgress>>>> = Arc::default();

    let pacing = args.speed.map(|speed| {
        let origin = first_event_time(&inputs, args.max_line_bytes).unwrap_or(0);
        Pacing::starting_now(origin, speed)
    });

    let shares = assign(&inputs, peers);
    let local_bytes: u64 = shares[process * workers..(process + 1) * workers]
        .iter()
        .flatten()
        .map(|input| input.size)
        .sum();
    let bytes_read = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let show_progress = args.progress.show();
    let progress_thread =
        show_progress.then(|| spawn_progress(local_bytes, bytes_read.clone(), finished.clone()));

    let table: RoomTable = Arc::default();
    let counts: Arc<Mutex<RejectedCounts>> = Arc::default();
    let valid = Arc::new(ValidRanges::new(&args.valid));
    let batch = args.batch.max(1);
    let max_line_bytes = args.max_line_bytes;
    let (table_w, counts_w, outputs_w, bytes_w, mongo_progress_w) = (
        table.clone(),
        counts.clone(),
        outputs.clone(),
        bytes_read.clone(),
        mongo_progress.clone(),
    );
    let mongo_w = mongo.clone();
    // A few ticks: enough for the source to hand over whole batches, little enough that what waits
    // inside operators (and so peak memory) does not depend on how fast each worker happens to run.
    let max_ahead = (8 * settings.horizon().tick_ms) as Time;

    let guards = timely::execute(config, move |worker| {
        let index = worker.index();
        let options = ReplayOptions {
            inputs: shares[index].clone(),
            horizon: settings.horizon(),
            valid: valid.clone(),
            max_line_bytes,
            pacing,
            bytes_read: bytes_w.clone(),
            batch,
            max_ahead,
        };
        let mongo_state = mongo_w
            .as_ref()
            .map(|mongo| MongoSinkState::start(mongo, 0));
        let sinks = ReplaySinks {
            outputs: outputs_w.as_ref(),
            mongo: mongo_w.as_ref().zip(mongo_state.clone()),
            table: table_w.clone(),
            counts: counts_w.clone(),
            changes_writer: index - index % workers,
        };
        build_replay_dataflow(worker, options, settings, sinks);
        while worker.step_or_park(None) {}
        if let Some(state) = mongo_state {
            let mut state = state.borrow_mut();
            state.finish();
            mongo_progress_w
                .lock()
                .expect("no panics holding the lock")
                .push(state.progress.clone());
        }
    })
    .map_err(anyhow::Error::msg)
    .context("cannot start the workers")?;
    for result in guards.join() {
        if let Err(panic) = result {
            bail!("a worker failed: {panic}");
        }
    }
    finished.store(true, Ordering::Relaxed);
    if let Some(thread) = progress_thread {
        let _ = thread.join();
    }
    if let Some(outputs) = &outputs {
        if let Some(error) = outputs.all().iter().find_map(|file| file.error()) {
            bail!(error);
        }
    }
    let mongo_summary = match &mongo {
        Some(mongo) => mongo_summary(mongo, &mongo_progress.lock().expect("workers are done"))?,
        None => String::new(),
    };

    let elapsed = started.elapsed();
    if process != 0 {
        eprintln!("process {process}: done in {:.2} s", elapsed.as_secs_f64());
        return Ok(());
    }
    let table = std::mem::take(&mut *table.lock().expect("workers are done"));
    let counts = counts.lock().expect("workers are done").clone();
    print_summary(
        table,
        &counts,
        args.out.as_deref(),
        elapsed.as_secs_f64(),
        &mongo_summary,
    );
    Ok(())
}
