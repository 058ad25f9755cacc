//! The files a replay writes with `--out DIR`: each process writes its own part of every
//! collection (and of `--changes`); process 0 also writes the rejected input.

use std::path::Path;

use anyhow::Context;

use crate::sinks::files::{part_name, SharedFile};

/// The output files of one process.
#[derive(Clone)]
pub struct Outputs {
    /// `room_averages` (this process's part).
    pub room_averages: SharedFile,
    /// `window_averages`.
    pub window_averages: SharedFile,
    /// `temperature_deltas`.
    pub temperature_deltas: SharedFile,
    /// `changes`, with `--changes`.
    pub changes: Option<SharedFile>,
    /// Only process 0 writes these: rejected inputs are gathered there.
    pub dead_letters: Option<SharedFile>,
    /// `late.jsonl`, on process 0.
    pub late: Option<SharedFile>,
}

impl Outputs {
    /// Every file, to check for write errors at the end.
    pub fn all(&self) -> Vec<&SharedFile> {
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

impl Outputs {
    /// Creates `dir` and the files process `process` of `processes` writes there.
    pub fn create(
        dir: &Path,
        changes: bool,
        process: usize,
        processes: usize,
    ) -> anyhow::Result<Outputs> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --out directory `{}`", dir.display()))?;
        let part = |stem| SharedFile::create(dir, &part_name(stem, process, processes));
        // Rejected inputs are gathered on process 0, which alone writes them.
        let first = process == 0;
        Ok(Outputs {
            room_averages: part("room_averages")?,
            window_averages: part("window_averages")?,
            temperature_deltas: part("temperature_deltas")?,
            changes: changes.then(|| part("changes")).transpose()?,
            dead_letters: first
                .then(|| SharedFile::create(dir, "dead_letters.jsonl"))
                .transpose()?,
            late: first
                .then(|| SharedFile::create(dir, "late.jsonl"))
                .transpose()?,
        })
    }
}
