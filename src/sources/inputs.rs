//! Recorded inputs: finding them (files, directories, `-` for stdin, pipes and FIFOs), choosing
//! their format, opening them (gzip transparently), and sharing them out among the workers.
//!
//! Directories are walked through symlinks (to files and to directories); a directory reached a
//! second time (a symlink loop) is reported with its path and skipped. Streams (stdin, pipes,
//! FIFOs) are opened once, at discovery, by the process that reads them (see `opening.rs`).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::formats::{self, Format, StreamContext};
use super::opening::{line_reader, sniff_file, StreamHandle};

/// One recorded input and how to read it.
#[derive(Clone, Debug, PartialEq)]
pub struct InputFile {
    /// The file, or `None` for stdin.
    pub path: Option<PathBuf>,
    /// Its format.
    pub format: Format,
    /// Bytes on disk (compressed size for gzip), for progress; 0 for a stream.
    pub size: u64,
    /// Gzip-compressed (told by its first bytes).
    pub gzip: bool,
    /// A stream, read only once (stdin, a pipe, a FIFO, a device): worker 0 reads it.
    pub once: bool,
    /// The stream, opened at discovery, if this process reads it.
    pub stream: Option<StreamHandle>,
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

    /// Opens the input for reading lines, from its first byte, decompressed; `counter` counts
    /// the bytes read (compressed). A stream can be opened once.
    pub(super) fn open(&self, counter: Arc<AtomicU64>) -> io::Result<Box<dyn BufRead + Send>> {
        let raw: Box<dyn Read + Send> = match (&self.stream, &self.path) {
            (Some(stream), _) => stream.take().ok_or_else(|| {
                io::Error::other("a stream (pipe, FIFO or stdin) can be read only once")
            })?,
            (None, Some(path)) => Box::new(File::open(path)?),
            (None, None) => Box::new(io::stdin()),
        };
        Ok(line_reader(raw, self.gzip, counter))
    }
}

/// Expands the command line's paths into input files, in a deterministic order (directories
/// are walked recursively, entries sorted by name), and resolves each file's format: the
/// `forced` one, or the one detected from its name and first line. Files in a directory whose
/// format cannot be detected (checksums, notes) are skipped with a warning; a file named
/// explicitly must be readable. Streams (stdin, pipes, FIFOs) are opened and sniffed here.
pub fn discover(paths: &[PathBuf], forced: Option<Format>) -> anyhow::Result<Vec<InputFile>> {
    discover_inputs(paths, forced, true)
}

/// [`discover`], for a process that may not read the streams among `paths`: with
/// `open_streams` false they are listed (so that every process shares out the same list) but not
/// opened, since opening a pipe or stdin takes its bytes from the process that reads it.
pub fn discover_inputs(
    paths: &[PathBuf],
    forced: Option<Format>,
    open_streams: bool,
) -> anyhow::Result<Vec<InputFile>> {
    let mut inputs = Vec::new();
    let mut stdin = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin {
                bail!("`-` (stdin) is given twice");
            }
            stdin = true;
            inputs.push(stream_input(None, forced, open_streams)?);
            continue;
        }
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("cannot read input `{}`", path.display()))?;
        if metadata.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found, &mut HashSet::from([identity(&metadata)]))?;
            for file in found {
                match resolve(&file, forced)? {
                    Some(input) => inputs.push(input),
                    None => {
                        tracing::warn!(file = %file.display(), "skipping a file of unknown format")
                    }
                }
            }
        } else if !metadata.is_file() {
            inputs.push(stream_input(Some(path), forced, open_streams)?);
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
    let mut seen = HashSet::new();
    inputs.retain(|input| match &input.path {
        Some(path) if !input.once => {
            seen.insert(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()))
        }
        _ => true,
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

/// A stream input: stdin (`path` `None`), or a named pipe, FIFO or device; opened and sniffed if
/// `open` (its format: `forced`, else detected, else JSON lines).
fn stream_input(
    path: Option<&Path>,
    forced: Option<Format>,
    open: bool,
) -> anyhow::Result<InputFile> {
    let name = path.map_or("-".into(), |path| path.display().to_string());
    let mut input = InputFile {
        path: path.map(Path::to_path_buf),
        format: forced.unwrap_or(Format::Json),
        size: 0,
        gzip: false,
        once: true,
        stream: None,
    };
    if open {
        let raw: Box<dyn Read + Send> = match path {
            Some(path) => {
                Box::new(File::open(path).with_context(|| format!("cannot open `{name}`"))?)
            }
            None => Box::new(io::stdin()),
        };
        let (stream, sniffed) =
            StreamHandle::open(raw).with_context(|| format!("cannot read `{name}`"))?;
        input.gzip = sniffed.gzip;
        if forced.is_none() {
            input.format = formats::detect(path.unwrap_or(Path::new("-")), &sniffed.first_line)
                .unwrap_or(Format::Json);
        }
        input.stream = Some(stream);
    }
    Ok(input)
}

/// A file's identity (device and inode), to see a directory reached twice.
#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

#[cfg(not(unix))]
fn identity(_metadata: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// Adds the regular files under `dir` to `found`, sorted by name, following symlinks. `walked`
/// holds the directories walked so far: one reached again (a symlink loop, or a second link to
/// it) is reported and skipped. Dangling symlinks, FIFOs, sockets and devices are reported and
/// skipped; any other failure is an error naming its path.
fn walk(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    walked: &mut HashSet<(u64, u64)>,
) -> anyhow::Result<()> {
    let listing = || -> io::Result<Vec<std::fs::DirEntry>> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|entry| entry.file_name());
        Ok(entries)
    };
    let entries = listing().with_context(|| format!("cannot list `{}`", dir.display()))?;
    for entry in entries {
        let path = entry.path();
        let is_link = entry.file_type().is_ok_and(|kind| kind.is_symlink());
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if is_link && error.kind() == io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), "skipping a dangling symlink");
                continue;
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read `{}`", path.display()))
            }
        };
        if metadata.is_dir() {
            if walked.insert(identity(&metadata)) {
                walk(&path, found, walked)?;
            } else {
                tracing::warn!(
                    path = %path.display(),
                    "skipping a directory already walked (a symlink loop, or a second link to it)"
                );
            }
        } else if entry.file_name().to_string_lossy().starts_with('.') {
            // Hidden files: editors' swap files, checksums, notes.
        } else if metadata.is_file() {
            found.push(path);
        } else {
            tracing::warn!(
                path = %path.display(),
                "skipping what is not a regular file (a FIFO, socket or device) inside a directory"
            );
        }
    }
    Ok(())
}

fn resolve(path: &Path, forced: Option<Format>) -> anyhow::Result<Option<InputFile>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?
        .len();
    let sniffed = sniff_file(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let format = forced.or_else(|| formats::detect(path, &sniffed.first_line));
    Ok(format.map(|format| InputFile {
        path: Some(path.to_path_buf()),
        format,
        size,
        gzip: sniffed.gzip,
        once: false,
        stream: None,
    }))
}

/// Splits inputs over `peers` workers, largest first onto the least loaded, so that a worker's
/// share does not depend on anything but the input list. Streams (stdin, pipes, FIFOs) always go
/// to worker 0, whose process is the one that opened them.
pub fn assign(inputs: &[InputFile], peers: usize) -> Vec<Vec<InputFile>> {
    let mut shares: Vec<Vec<InputFile>> = vec![Vec::new(); peers];
    let mut loads = vec![0u64; peers];
    let mut order: Vec<&InputFile> = inputs.iter().collect();
    order.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    for input in order {
        let worker = if input.once {
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
            gzip: false,
            once: false,
            stream: None,
        };
        let stdin = InputFile {
            path: None,
            format: Format::Json,
            size: 0,
            gzip: false,
            once: true,
            stream: None,
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
