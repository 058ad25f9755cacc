//! What a replay tells its user: a progress bar while it runs (`--progress`), then the per-room
//! table (without `--out`), a few dead letters as examples, and one summary line.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use roomflow_dataflows::RoomAverage;

use crate::mongo::config::Mongo;
use crate::mongo::writer::WriterProgress;
use crate::sinks::rejected::RejectedCounts;
use crate::sinks::summary::render_table;

/// A progress bar of `total` bytes, following `read` until `finished` is set.
pub fn spawn_progress(
    total: u64,
    read: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
) -> JoinHandle<()> {
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

/// The MongoDB part of the summary line, or the first write failure of any worker.
pub fn mongo_summary(mongo: &Mongo, progress: &[Arc<WriterProgress>]) -> anyhow::Result<String> {
    if let Some(failure) = progress.iter().find_map(|p| p.failure()) {
        anyhow::bail!(failure);
    }
    let documents: u64 = progress
        .iter()
        .map(|p| p.documents.load(Ordering::Relaxed))
        .sum();
    let round_trips: u64 = progress
        .iter()
        .map(|p| p.round_trips.load(Ordering::Relaxed))
        .sum();
    Ok(format!(
        "; MongoDB {}: {documents} documents in {round_trips} round trips",
        mongo.db.name()
    ))
}

/// Prints the table (unless the results went to `out`), the dead-letter examples and the
/// summary line.
pub fn print_summary(
    mut table: Vec<(RoomAverage, isize)>,
    counts: &RejectedCounts,
    out: Option<&Path>,
    seconds: f64,
    mongo_summary: &str,
) {
    // Not consolidated here: with `--out`, two workers may send equal per-room entries (a room's
    // sensors split between them, as many readings on each), which must both count.
    let applied: i64 = table
        .iter()
        .map(|(average, diff)| average.count * *diff as i64)
        .sum();
    let rooms = table
        .iter()
        .map(|(average, _)| &average.room)
        .collect::<BTreeSet<_>>()
        .len();
    if out.is_none() {
        print!("{}", render_table(&mut table, 100));
    }
    for example in &counts.examples {
        tracing::warn!("dead letter {example}");
    }
    let unshown = counts
        .dead_letters
        .saturating_sub(counts.examples.len() as u64);
    if unshown > 0 {
        let all = match out {
            Some(dir) => format!("all in {}", dir.join("dead_letters.jsonl").display()),
            None => "write them all with --out DIR".to_string(),
        };
        tracing::warn!("… and {unshown} more dead letters ({all})");
    }
    let total = applied as u64 + counts.dead_letters + counts.late;
    eprintln!(
        "replayed {total} inputs: {applied} readings applied, {} dead letters, {} late; {rooms} rooms; {seconds:.2} s, {:.0} readings/s{}{mongo_summary}",
        counts.dead_letters,
        counts.late,
        total as f64 / seconds.max(1e-9),
        out.map(|dir| format!("; results in {}", dir.display())).unwrap_or_default(),
    );
}
