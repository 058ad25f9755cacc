//! `roomflow replay`: recorded files → the dataflows → files and a summary.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use differential_dataflow::AsCollection;
use roomflow_dataflows::{analytics, changes, Time};
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

use crate::cli::ReplayArgs;
use crate::mongo::sink::{mongo_sink, MongoSinkState};
use crate::mongo::writer::WriterProgress;
use crate::sinks::changes::write_changes;
use crate::sinks::files::{part_name, SharedFile};
use crate::sinks::final_state::final_state;
use crate::sinks::rejected::{rejected_sink, RejectedCounts, RejectedFiles};
use crate::sinks::summary::{gather_room_averages, render_table, RoomTable};
use crate::sources::inputs::{assign, discover};
use crate::sources::lines::first_event_time;
use crate::sources::pacing::Pacing;
use crate::sources::replay::{replay as replay_source, ReplayOptions};
use crate::sources::validity::ValidRanges;

/// The output files of one process.
#[derive(Clone)]
struct Outputs {
    room_averages: SharedFile,
    window_averages: SharedFile,
    temperature_deltas: SharedFile,
    changes: Option<SharedFile>,
    /// Only process 0 writes these: rejected inputs are gathered there.
    dead_letters: Option<SharedFile>,
    late: Option<SharedFile>,
}

impl Outputs {
    fn all(&self) -> Vec<&SharedFile> {
        let mut files = vec![
            &self.room_averages,
            &self.window_averages,
            &self.temperature_deltas,
        ];
        files.extend(
            self.changes
                .iter()
                .chain(&self.dead_letters)
                .chain(&self.late),
        );
        files
    }
}

/// Runs the replay command.
pub fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let settings = args.settings()?;
    let config = args.workers.timely_config()?;
    let inputs = discover(&args.paths, args.format)?;
    let (processes, process, workers) = (
        args.workers.processes,
        args.workers.process,
        args.workers.workers,
    );
    let peers = processes * workers;

    let outputs = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create --out directory `{}`", dir.display()))?;
            let part = |stem| SharedFile::create(dir, &part_name(stem, process, processes));
            let first = process == 0;
            Some(Outputs {
                room_averages: part("room_averages")?,
                window_averages: part("window_averages")?,
                temperature_deltas: part("temperature_deltas")?,
                changes: if args.changes {
                    Some(part("changes")?)
                } else {
                    None
                },
                dead_letters: if first {
                    Some(SharedFile::create(dir, "dead_letters.jsonl")?)
                } else {
                    None
                },
                late: if first {
                    Some(SharedFile::create(dir, "late.jsonl")?)
                } else {
                    None
                },
            })
        }
        None => None,
    };

    let mongo = args.mongo.connect()?;
    if let Some(mongo) = &mongo {
        if process == 0 {
            mongo.replace_collections()?;
        }
    }
    let mongo_progress: Arc<Mutex<Vec<Arc<WriterProgress>>>> = Arc::default();

    let pacing = args
        .speed
        .map(|speed| Pacing::starting_now(first_event_time(&inputs).unwrap_or(0), speed));

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
        let first_local = index - index % workers;
        let options = ReplayOptions {
            inputs: shares[index].clone(),
            horizon: settings.horizon(),
            valid: valid.clone(),
            pacing,
            bytes_read: bytes_w.clone(),
            batch,
            max_ahead,
        };
        let mongo_state = mongo_w
            .as_ref()
            .map(|mongo| MongoSinkState::start(mongo, 0));
        worker.dataflow::<Time, _, _>(|scope| {
            let probe = ProbeHandle::new();
            let (readings, rejected) = replay_source(scope, options, probe.clone());
            let collections = analytics(readings.clone().as_collection(), settings);
            let files = outputs_w.as_ref();
            let wants_changes = mongo_state.is_some() || files.is_some_and(|f| f.changes.is_some());
            let changes = wants_changes.then(|| changes(&collections));
            if let (Some(state), Some(mongo), Some(changes)) = (&mongo_state, &mongo_w, &changes) {
                let changes = changes.clone();
                let archived = mongo.archive_readings.then(|| readings.clone());
                mongo_sink(changes, rejected.clone(), archived, state.clone());
            }

            let rejected_files = files.and_then(|f| {
                Some(RejectedFiles {
                    dead_letters: f.dead_letters.clone()?,
                    late: f.late.clone()?,
                })
            });
            rejected_sink(rejected, rejected_files, counts_w.clone());
            gather_room_averages(collections.room_averages.clone(), table_w.clone());
            if let Some(files) = files {
                final_state(
                    collections.room_averages.clone(),
                    files.room_averages.clone(),
                    settings.windows,
                );
                final_state(
                    collections.window_averages.clone(),
                    files.window_averages.clone(),
                    settings.windows,
                );
                final_state(
                    collections.temperature_deltas.clone(),
                    files.temperature_deltas.clone(),
                    settings.windows,
                );
                if let (Some(file), Some(changes)) = (&files.changes, &changes) {
                    write_changes(changes.clone(), first_local, file.clone());
                }
            }
            collections.room_averages.inner.probe_with(&probe);
            collections.window_averages.inner.probe_with(&probe);
            collections.temperature_deltas.inner.probe_with(&probe);
        });
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
        Some(mongo) => {
            let progress = mongo_progress.lock().expect("workers are done");
            if let Some(failure) = progress.iter().find_map(|p| p.failure()) {
                bail!(failure);
            }
            let documents: u64 = progress
                .iter()
                .map(|p| p.documents.load(Ordering::Relaxed))
                .sum();
            let round_trips: u64 = progress
                .iter()
                .map(|p| p.round_trips.load(Ordering::Relaxed))
                .sum();
            format!(
                "; MongoDB {}: {documents} documents in {round_trips} round trips",
                mongo.db.name()
            )
        }
        None => String::new(),
    };

    let elapsed = started.elapsed();
    if process != 0 {
        eprintln!("process {process}: done in {:.2} s", elapsed.as_secs_f64());
        return Ok(());
    }
    let mut table = std::mem::take(&mut *table.lock().expect("workers are done"));
    let counts = counts.lock().expect("workers are done").clone();
    let rendered = render_table(&mut table, if args.out.is_some() { 0 } else { 100 });
    let applied: i64 = table.iter().map(|(average, _)| average.count).sum();
    let rooms = table
        .iter()
        .map(|(average, _)| &average.room)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if args.out.is_none() {
        print!("{rendered}");
    }
    for example in &counts.examples {
        tracing::warn!("dead letter {example}");
    }
    let unshown = counts
        .dead_letters
        .saturating_sub(counts.examples.len() as u64);
    if unshown > 0 {
        let all = match &args.out {
            Some(dir) => format!("all in {}", dir.join("dead_letters.jsonl").display()),
            None => "write them all with --out DIR".to_string(),
        };
        tracing::warn!("… and {unshown} more dead letters ({all})");
    }
    let total = applied as u64 + counts.dead_letters + counts.late;
    eprintln!(
        "replayed {total} inputs: {applied} readings applied, {} dead letters, {} late; {rooms} rooms; {:.2} s, {:.0} readings/s{}{mongo_summary}",
        counts.dead_letters,
        counts.late,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64().max(1e-9),
        args.out.as_ref().map(|dir| format!("; results in {}", dir.display())).unwrap_or_default(),
    );
    Ok(())
}

fn spawn_progress(
    total: u64,
    read: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} replaying {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec}, eta {eta}",
            )
            .expect("valid template"),
        );
        while !finished.load(Ordering::Relaxed) {
            bar.set_position(read.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    })
}
