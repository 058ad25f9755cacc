//! Output files shared by the workers of one process: each worker fills its own buffer and
//! appends it whole, so lines never interleave; the first write error is kept and reported.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

/// One output file, shared by the workers of a process.
#[derive(Clone)]
pub struct SharedFile {
    path: PathBuf,
    inner: Arc<Mutex<(File, Option<String>)>>,
}

impl SharedFile {
    /// Creates (truncates) `dir/name`.
    pub fn create(dir: &Path, name: &str) -> anyhow::Result<SharedFile> {
        let path = dir.join(name);
        let file =
            File::create(&path).with_context(|| format!("cannot create `{}`", path.display()))?;
        Ok(SharedFile {
            path,
            inner: Arc::new(Mutex::new((file, None))),
        })
    }

    /// Appends `buffer` and empties it.
    pub fn append(&self, buffer: &mut Vec<u8>) {
        if buffer.is_empty() {
            return;
        }
        let mut guard = self
            .inner
            .lock()
            .expect("no writer panics holding the lock");
        let (file, error) = &mut *guard;
        if error.is_none() {
            if let Err(e) = file.write_all(buffer) {
                *error = Some(format!("cannot write `{}`: {e}", self.path.display()));
            }
        }
        buffer.clear();
    }

    /// The first write error, if any.
    pub fn error(&self) -> Option<String> {
        self.inner
            .lock()
            .expect("no writer panics holding the lock")
            .1
            .clone()
    }
}

/// The file name of `stem` for process `part` of `processes`: `stem.jsonl` when there is one
/// process, `stem.<part>.jsonl` otherwise.
pub fn part_name(stem: &str, part: usize, processes: usize) -> String {
    if processes > 1 {
        format!("{stem}.{part}.jsonl")
    } else {
        format!("{stem}.jsonl")
    }
}

/// Appends `value` as one JSON line to `buffer`.
pub fn push_json_line<T: serde::Serialize>(buffer: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(&mut *buffer, value).expect("output records serialize");
    buffer.push(b'\n');
}

/// Buffers reach the file once they hold this many bytes.
pub const FLUSH_BYTES: usize = 1 << 20;
