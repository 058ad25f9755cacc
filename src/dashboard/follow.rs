//! `roomflow dashboard --changes DIR/changes.jsonl`: a replay's changes (and, beside them, its
//! `dead_letters.jsonl` and `late.jsonl`) applied as the alpha topic's would be, then followed like
//! `tail -F`: lines appended later are applied within a poll interval, and a file replaced or cut
//! short (a new replay into the same DIR) starts the building over.
//!
//! Only regular files are followed: a path that is (or becomes) a FIFO, a device or a directory
//! is refused with its reason among the malformed messages (a FIFO would block the feed in
//! `open()`, `/dev/zero` would never end), and the other files are followed on.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::bounds::MAX_MESSAGE_BYTES;
use super::rejected::{self, Kind};
use super::shared::Shared;

/// How often the files are looked at when nothing new was there.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The longest line kept; a longer one is counted as malformed and skipped to its newline.
pub const MAX_LINE_BYTES: usize = MAX_MESSAGE_BYTES;

/// What a path is when it is not a regular file, in words; `None` for a regular file.
pub fn not_regular(metadata: &Metadata) -> Option<&'static str> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO");
        }
        if kind.is_char_device() || kind.is_block_device() {
            return Some("a device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("neither a file nor a directory")
}

/// Opens `path` without waiting (a FIFO's open would block for a writer), and refuses what is not
/// a regular file once opened (it may have been replaced since it was looked at).
fn open_regular(path: &Path) -> std::io::Result<Result<(File, Metadata), &'static str>> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    Ok(match not_regular(&metadata) {
        None => Ok((file, metadata)),
        Some(kind) => Err(kind),
    })
}

/// What a followed file holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Role {
    /// Change envelopes.
    Changes,
    /// Rejected inputs of one kind.
    Rejected(Kind),
}

/// The files to follow for `changes` files: each, and the rejected-input files beside them
/// (once per directory).
pub fn files_for(changes: &[PathBuf]) -> Vec<(PathBuf, Role)> {
    let mut files: Vec<(PathBuf, Role)> = Vec::new();
    for path in changes {
        files.push((path.clone(), Role::Changes));
        let directory = path.parent().unwrap_or(Path::new("."));
        for (name, kind) in [
            ("dead_letters.jsonl", Kind::DeadLetter),
            ("late.jsonl", Kind::Late),
        ] {
            let sibling = directory.join(name);
            if !files.iter().any(|(known, _)| *known == sibling) {
                files.push((sibling, Role::Rejected(kind)));
            }
        }
    }
    files
}

/// One followed file.
struct Followed {
    path: PathBuf,
    role: Role,
    file: Option<File>,
    /// The opened file's identity, to see it replaced.
    identity: Option<(u64, u64)>,
    /// Bytes read so far.
    position: u64,
    /// The end of the file that has no newline yet.
    pending: Vec<u8>,
    /// Skipping the rest of a line longer than [`MAX_LINE_BYTES`].
    skipping: bool,
    /// Lines handled so far.
    lines: u64,
    /// What the path was found to be instead of a regular file, once reported.
    refused: Option<&'static str>,
}

/// What one look at a file found.
enum Looked {
    Nothing,
    Applied,
    Replaced,
}

impl Followed {
    fn new(path: PathBuf, role: Role) -> Followed {
        Followed {
            path,
            role,
            file: None,
            identity: None,
            position: 0,
            pending: Vec::new(),
            skipping: false,
            lines: 0,
            refused: None,
        }
    }

    fn reopen(&mut self) {
        *self = Followed::new(self.path.clone(), self.role);
    }

    /// Applies what was appended since the last look.
    fn look(&mut self, shared: &Shared, chunk: &mut Vec<u8>) -> std::io::Result<Looked> {
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata,
            // Not there (yet, or any more): a replay writes it later.
            Err(error) if error.kind() == ErrorKind::NotFound => {
                return Ok(if self.file.is_some() {
                    Looked::Replaced
                } else {
                    Looked::Nothing
                });
            }
            Err(error) => return Err(error),
        };
        if let Some(kind) = not_regular(&metadata) {
            return Ok(self.refuse(shared, kind));
        }
        let found = identity(&metadata);
        if self.file.is_some() && (Some(found) != self.identity || metadata.len() < self.position) {
            return Ok(Looked::Replaced);
        }
        if self.file.is_none() {
            match open_regular(&self.path)? {
                Ok((file, metadata)) => {
                    self.file = Some(file);
                    self.identity = Some(identity(&metadata));
                }
                Err(kind) => return Ok(self.refuse(shared, kind)),
            }
            self.refused = None;
        }
        let file = self.file.as_mut().expect("opened above");
        file.seek(SeekFrom::Start(self.position))?;
        chunk.clear();
        file.take(16 << 20).read_to_end(chunk)?;
        if chunk.is_empty() {
            return Ok(Looked::Nothing);
        }
        self.position += chunk.len() as u64;
        let (path, role) = (self.path.display().to_string(), self.role);
        let mut lines = Vec::new();
        // Lines longer than the limit, by number: every line is measured, whether it came whole
        // in this chunk or was begun in an earlier one.
        let mut too_long = Vec::new();
        let mut rest: &[u8] = chunk;
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            let (line, after) = rest.split_at(newline);
            rest = &after[1..];
            self.lines += 1;
            if std::mem::take(&mut self.skipping) {
                // Counted when it grew past the limit.
                continue;
            }
            if self.pending.len() + line.len() > MAX_LINE_BYTES {
                self.pending = Vec::new();
                too_long.push(self.lines);
            } else if self.pending.is_empty() {
                lines.push((self.lines, line.to_vec()));
            } else {
                let mut whole = std::mem::take(&mut self.pending);
                whole.extend_from_slice(line);
                lines.push((self.lines, whole));
            }
        }
        if !self.skipping {
            if self.pending.len() + rest.len() > MAX_LINE_BYTES {
                self.pending = Vec::new();
                self.skipping = true;
                too_long.push(self.lines + 1);
            } else {
                self.pending.extend_from_slice(rest);
            }
        }
        shared.update(|building| {
            for (number, line) in &lines {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let source = format!("{path}:{number}");
                match role {
                    Role::Changes => building.apply(&source, line),
                    Role::Rejected(kind) => match rejected::from_file_line(kind, line) {
                        Ok(input) => building.reject(input),
                        Err(error) => building.malformed(&source, error),
                    },
                }
            }
            for number in too_long {
                building.malformed(
                    &format!("{path}:{number}"),
                    format!("a line longer than {MAX_LINE_BYTES} bytes"),
                );
            }
        });
        Ok(Looked::Applied)
    }

    /// The path is `kind`, not a regular file: not read. Said once (among the malformed messages
    /// and in the log) until it is a regular file again; if it was being followed, what it gave
    /// is stale, and the building starts over.
    fn refuse(&mut self, shared: &Shared, kind: &'static str) -> Looked {
        if self.file.is_some() {
            return Looked::Replaced;
        }
        if self.refused.is_none() {
            let path = self.path.display().to_string();
            let error = format!("{kind}, not a regular file: not followed until it is one");
            tracing::warn!(%path, "{error}");
            shared.update(|building| building.malformed(&path, error));
        }
        self.refused = Some(kind);
        Looked::Nothing
    }
}

#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

#[cfg(not(unix))]
fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    let created = metadata
        .created()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos() as u64);
    (created, 0)
}

/// Applies `files` to the building and follows them, forever (the thread ends with the process).
pub fn follow(files: Vec<(PathBuf, Role)>, shared: Arc<Shared>) {
    let mut followed: Vec<Followed> = files
        .into_iter()
        .map(|(path, role)| Followed::new(path, role))
        .collect();
    let mut chunk = Vec::new();
    loop {
        let mut any = false;
        let mut replaced = false;
        for file in &mut followed {
            match file.look(&shared, &mut chunk) {
                Ok(Looked::Nothing) => {}
                Ok(Looked::Applied) => any = true,
                Ok(Looked::Replaced) => replaced = true,
                Err(error) => {
                    tracing::warn!(path = %file.path.display(), %error, "cannot read; trying again");
                    file.reopen();
                }
            }
        }
        if replaced {
            tracing::info!("an input file was replaced: reading every file again");
            shared.update(|building| building.reset());
            followed.iter_mut().for_each(Followed::reopen);
            continue;
        }
        if !any {
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}
