//! Recorded inputs: finding them (files, directories, `-` for stdin), choosing their format,
//! opening them (`.gz` transparently), and sharing them out among the workers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use flate2::read::MultiGzDecoder;

use super::bounded::{read_line, LineRead};
use super::formats::{self, Format, StreamContext};

/// One recorded input and how to read it.
#[derive(Clone, Debug, PartialEq)]
pub struct InputFile {
    /// The file, or `None` for stdin.
    pub path: Option<PathBuf>,
    /// Its format.
    pub format: Format,
    /// Bytes on disk (compressed size for `.gz`), for progress; 0 for stdin.
    pub size: u64,
}

impl InputFile {
    /// How the input is named in `file:line` locations.
    pub fn name(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => "-".to_string(),
        }
    }

    /// Room and sensor that the input's path implies (KETI layout).
    pub fn context(&self) -> StreamContext {
        match (&self.path, self.format) {
            (Some(path), Format::Keti) => formats::keti_context(path),
            _ => StreamContext {
                room: None,
                sensor: None,
            },
        }
    }
}

fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "gz")
}

/// Opens a file for reading lines, decompressing `.gz`; `counter` counts the bytes read from disk.
pub(super) fn open(path: &Path, counter: Arc<AtomicU64>) -> io::Result<Box<dyn BufRead + Send>> {
    let file = CountingReader {
        inner: File::open(path)?,
        counter,
    };
    Ok(if is_gzip(path) {
        Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    })
}

/// Counts bytes as they are read, for the progress bar.
struct CountingReader<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The most of a first line format detection looks at: a line without a newline may be the whole
/// file.
const DETECTION_BYTES: usize = 64 * 1024;

/// The first non-blank line of a file (at most its first [`DETECTION_BYTES`]), for format
/// detection.
fn first_line(path: &Path) -> anyhow::Result<String> {
    let mut reader = open(path, Arc::default())?;
    let mut bytes = Vec::new();
    loop {
        if read_line(&mut reader, &mut bytes, DETECTION_BYTES)? == LineRead::End {
            return Ok(String::new());
        }
        // Non-UTF-8 content is not a text format we know; read as lossy bytes.
        let line = String::from_utf8_lossy(&bytes);
        if !line.trim().is_empty() {
            return Ok(line.trim_end().to_string());
        }
    }
}

/// Expands the command line's paths into input files, in a deterministic order (directories
/// are walked recursively, entries sorted by name), and resolves each file's format: the
/// `forced` one, or the one detected from its name and first line. Files in a directory whose
/// format cannot be detected (checksums, notes) are skipped with a warning; a file named
/// explicitly must be readable.
pub fn discover(paths: &[PathBuf], forced: Option<Format>) -> anyhow::Result<Vec<InputFile>> {
    let mut inputs = Vec::new();
    let mut stdin = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin {
                bail!("`-` (stdin) is given twice");
            }
            stdin = true;
            inputs.push(InputFile {
                path: None,
                format: forced.unwrap_or(Format::Json),
                size: 0,
            });
            continue;
        }
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("cannot read input `{}`", path.display()))?;
        if metadata.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found).with_context(|| format!("cannot list `{}`", path.display()))?;
            for file in found {
                match resolve(&file, forced)? {
                    Some(input) => inputs.push(input),
                    None => {
                        tracing::warn!(file = %file.display(), "skipping a file of unknown format")
                    }
                }
            }
        } else {
            match resolve(path, forced)? {
                Some(input) => inputs.push(input),
                None => bail!(
                    "cannot tell the format of `{}`: name it with --format json|keti|intel",
                    path.display()
                ),
            }
        }
    }
    // A file reached twice (named, and inside a named directory) is read once.
    let mut seen = std::collections::HashSet::new();
    inputs.retain(|input| match &input.path {
        Some(path) => seen.insert(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone())),
        None => true,
    });
    if inputs.is_empty() {
        bail!(
            "no input files found in {}",
            paths
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(inputs)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, found)?;
        } else if !entry.file_name().to_string_lossy().starts_with('.') {
            found.push(path);
        }
    }
    Ok(())
}

fn resolve(path: &Path, forced: Option<Format>) -> anyhow::Result<Option<InputFile>> {
    let size = std::fs::metadata(path)?.len();
    let format = match forced {
        Some(format) => Some(format),
        None => formats::detect(
            path,
            &first_line(path).with_context(|| format!("cannot read `{}`", path.display()))?,
        ),
    };
    Ok(format.map(|format| InputFile {
        path: Some(path.to_path_buf()),
        format,
        size,
    }))
}

/// Splits inputs over `peers` workers, largest first onto the least loaded, so that a worker's
/// share does not depend on anything but the input list. Stdin always goes to worker 0.
pub fn assign(inputs: &[InputFile], peers: usize) -> Vec<Vec<InputFile>> {
    let mut shares: Vec<Vec<InputFile>> = vec![Vec::new(); peers];
    let mut loads = vec![0u64; peers];
    let mut order: Vec<&InputFile> = inputs.iter().collect();
    order.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    for input in order {
        let worker = if input.path.is_none() {
            0
        } else {
            (0..peers)
                .min_by_key(|&w| (loads[w], w))
                .expect("at least one worker")
        };
        loads[worker] += input.size.max(1);
        shares[worker].push(input.clone());
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reached_twice_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.jsonl");
        std::fs::write(
            &file,
            "{\"room\":\"1\",\"sensor\":\"co2\",\"ts\":1,\"value\":1}\n",
        )
        .unwrap();
        let inputs = discover(
            &[
                dir.path().to_path_buf(),
                file.clone(),
                dir.path().join("./a.jsonl"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(inputs.len(), 1);
    }

    #[test]
    fn a_named_file_of_unknown_format_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let notes = dir.path().join("notes.txt");
        std::fs::write(&notes, "hello\n").unwrap();
        let error = discover(&[notes], None).unwrap_err().to_string();
        assert!(error.contains("--format"), "{error}");
        let error = discover(&[dir.path().join("missing")], None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot read input"), "{error}");
    }

    #[test]
    fn assignment_balances_sizes_and_keeps_stdin_on_worker_zero() {
        let file = |name: &str, size| InputFile {
            path: Some(name.into()),
            format: Format::Json,
            size,
        };
        let stdin = InputFile {
            path: None,
            format: Format::Json,
            size: 0,
        };
        let shares = assign(
            &[file("a", 10), file("b", 7), file("c", 4), stdin.clone()],
            2,
        );
        let names = |share: &Vec<InputFile>| share.iter().map(InputFile::name).collect::<Vec<_>>();
        assert_eq!(names(&shares[0]), vec!["a", "-"]);
        assert_eq!(names(&shares[1]), vec!["b", "c"]);
    }
}
