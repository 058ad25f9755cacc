//! Opening an input, and looking at its first bytes (gzip or not; the first line, for its format)
//! without losing them.
//!
//! A regular file can be opened twice: once to look, once to read. A pipe, a FIFO, `-` (stdin)
//! or `<(zcat …)` cannot: what the first open read is gone for the second, and a FIFO's second
//! open waits for a writer that has finished. Such a *stream* is therefore opened once, when it is
//! discovered: [`sniff`] reads just enough of it to decide, those bytes stay in front of the rest,
//! and the line reader later takes that one reader over ([`StreamHandle::take`]).
//!
//! Compression is told by content (gzip's magic bytes), not by name, so that a compressed stream
//! without a name (`-`, a pipe) is read as well as a `.gz` file.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most of a first line format detection looks at: a line without a newline may be the whole
/// file.
pub(crate) const DETECTION_BYTES: usize = 64 * 1024;

/// The most raw (possibly compressed) bytes [`sniff`] holds while looking for a first line.
const MAX_SNIFFED_BYTES: usize = 1 << 20;

/// What the first bytes of an input say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sniffed {
    /// The input is gzip-compressed.
    pub gzip: bool,
    /// Its first non-blank line (at most [`DETECTION_BYTES`] of it), trimmed; empty if none.
    pub first_line: String,
}

/// Reads `reader` into `peeked` (which may already hold its first bytes) until its first
/// non-blank line is whole, decompressed if it is gzip; or until [`DETECTION_BYTES`] of text or
/// the end of the input. Reads in chunks of what is available, so that a live stream is not held
/// up waiting for more than its first line.
pub(crate) fn sniff(peeked: &mut Vec<u8>, reader: &mut dyn Read) -> io::Result<Sniffed> {
    let mut ended = false;
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        // One byte cannot tell gzip from text: wait for a second unless that was all.
        if peeked.len() >= GZIP_MAGIC.len() || ended {
            let gzip = peeked.starts_with(&GZIP_MAGIC);
            let text = if gzip {
                gunzip_prefix(peeked)
            } else {
                peeked[..peeked.len().min(DETECTION_BYTES)].to_vec()
            };
            let whole = ended || text.len() >= DETECTION_BYTES || peeked.len() >= MAX_SNIFFED_BYTES;
            if let Some(first_line) = first_nonblank_line(&text, whole) {
                return Ok(Sniffed { gzip, first_line });
            }
            if whole {
                return Ok(Sniffed {
                    gzip,
                    first_line: String::new(),
                });
            }
        }
        let read = match reader.read(&mut chunk) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if read == 0 {
            ended = true;
        } else {
            peeked.extend_from_slice(&chunk[..read]);
        }
    }
}

/// As much of the decompressed text as `compressed` (the beginning of a gzip stream) gives, at
/// most [`DETECTION_BYTES`]. A stream cut short here is expected: what came before the cut counts.
fn gunzip_prefix(compressed: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    let _ = MultiGzDecoder::new(compressed)
        .take(DETECTION_BYTES as u64)
        .read_to_end(&mut text);
    text
}

/// The first non-blank line of `text`, trimmed: a line ended by a newline, or the unended last one
/// if `whole` (nothing more will come).
fn first_nonblank_line(text: &[u8], whole: bool) -> Option<String> {
    let mut rest = text;
    loop {
        let (line, ended) = match memchr::memchr(b'\n', rest) {
            Some(at) => (&rest[..at], Some(at + 1)),
            None => (rest, None),
        };
        if ended.is_none() && !whole {
            return None;
        }
        // Non-UTF-8 content is not a text format we know; read as lossy bytes.
        let line = String::from_utf8_lossy(line);
        if !line.trim().is_empty() {
            return Some(line.trim().to_string());
        }
        rest = &rest[ended?..];
    }
}

/// Sniffs a regular file (opened, looked at and closed again: it is read from its start later).
pub(crate) fn sniff_file(path: &Path) -> io::Result<Sniffed> {
    sniff(&mut Vec::new(), &mut File::open(path)?)
}

/// A stream opened once at discovery: the bytes [`sniff`] read, then the rest, for whoever reads
/// it (once). Clones share it.
#[derive(Clone)]
pub struct StreamHandle(Arc<Mutex<Option<Box<dyn Read + Send>>>>);

impl StreamHandle {
    /// Opens `stream` (stdin, a pipe, a FIFO) and sniffs it, keeping what was read.
    pub(crate) fn open(mut stream: Box<dyn Read + Send>) -> io::Result<(StreamHandle, Sniffed)> {
        let mut peeked = Vec::new();
        let sniffed = sniff(&mut peeked, &mut stream)?;
        let reader: Box<dyn Read + Send> = Box::new(Cursor::new(peeked).chain(stream));
        Ok((StreamHandle(Arc::new(Mutex::new(Some(reader)))), sniffed))
    }

    /// The stream, from its first byte; `None` if it was taken already (a stream reads once).
    pub(crate) fn take(&self) -> Option<Box<dyn Read + Send>> {
        self.0.lock().map(|mut slot| slot.take()).unwrap_or(None)
    }

    /// Lets `look` read the stream from its first byte, at most `limit` bytes of it, then puts
    /// what it read back in front: whoever takes the stream later still reads it whole. `None` if
    /// the stream was taken already. The reader `look` gets is its own (a line stream can own it)
    /// and reads nothing once `look` has returned.
    pub(crate) fn peek<T>(
        &self,
        limit: usize,
        look: impl FnOnce(Box<dyn Read + Send>) -> T,
    ) -> Option<T> {
        let mut slot = self.0.lock().ok()?;
        let recorded: Recorded = Arc::new(Mutex::new((slot.take()?, Vec::new())));
        let looked = look(Box::new(Recording {
            recorded: recorded.clone(),
            limit,
        }));
        let mut recorded = recorded.lock().ok()?;
        let empty: Box<dyn Read + Send> = Box::new(io::empty());
        let (stream, seen) = std::mem::replace(&mut *recorded, (empty, Vec::new()));
        *slot = Some(Box::new(Cursor::new(seen).chain(stream)));
        Some(looked)
    }
}

/// A peeked stream, and what was read of it.
type Recorded = Arc<Mutex<(Box<dyn Read + Send>, Vec<u8>)>>;

/// Reads through to a stream, keeping what it read beside it, up to `limit` bytes (then it ends).
struct Recording {
    recorded: Recorded,
    limit: usize,
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut recorded = self
            .recorded
            .lock()
            .map_err(|_| io::Error::other("a peek at a stream panicked"))?;
        let (stream, seen) = &mut *recorded;
        let room = self.limit.saturating_sub(seen.len()).min(buf.len());
        let read = stream.read(&mut buf[..room])?;
        seen.extend_from_slice(&buf[..read]);
        Ok(read)
    }
}

impl PartialEq for StreamHandle {
    fn eq(&self, other: &StreamHandle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamHandle")
    }
}

/// Wraps raw input bytes for reading lines: counted (`counter`, for the progress bar), and
/// decompressed if `gzip`.
pub(crate) fn line_reader(
    raw: Box<dyn Read + Send>,
    gzip: bool,
    counter: Arc<AtomicU64>,
) -> Box<dyn BufRead + Send> {
    let counted = CountingReader {
        inner: raw,
        counter,
    };
    if gzip {
        Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(BufReader::with_capacity(1 << 16, counted)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, counted))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A reader that hands out `chunks` one per read, as a pipe does.
    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let chunk = self.0.remove(0);
            assert!(chunk.len() <= buf.len());
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn the_first_line_is_found_across_chunks_and_nothing_after_it_is_waited_for() {
        let mut peeked = Vec::new();
        // The third chunk would block a live stream: sniffing must stop before it.
        let mut reader = Chunks(vec![
            b"\n  \n{\"ro".to_vec(),
            b"om\": 1}\nmore".to_vec(),
            b"never".to_vec(),
        ]);
        let sniffed = sniff(&mut peeked, &mut reader).unwrap();
        assert_eq!(
            sniffed,
            Sniffed {
                gzip: false,
                first_line: "{\"room\": 1}".into()
            }
        );
        assert_eq!(peeked, b"\n  \n{\"room\": 1}\nmore");
        assert_eq!(reader.0, vec![b"never".to_vec()]);
    }

    #[test]
    fn gzip_is_told_by_its_magic_bytes_even_one_byte_at_a_time() {
        let compressed = gzip(b"1377299107, 23.93\n");
        let mut peeked = Vec::new();
        let chunks = compressed.iter().map(|byte| vec![*byte]).collect();
        let sniffed = sniff(&mut peeked, &mut Chunks(chunks)).unwrap();
        assert!(sniffed.gzip);
        assert_eq!(sniffed.first_line, "1377299107, 23.93");
    }

    #[test]
    fn a_stream_reads_once_from_its_first_byte() {
        let text = b"first\nsecond\n".to_vec();
        let (handle, sniffed) = StreamHandle::open(Box::new(Cursor::new(text.clone()))).unwrap();
        assert_eq!(sniffed.first_line, "first");
        let mut read = Vec::new();
        handle
            .clone()
            .take()
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, text);
        assert!(handle.take().is_none());
    }

    #[test]
    fn a_peek_puts_back_what_it_read() {
        let text = b"first\nsecond\nthird\n".to_vec();
        let (handle, _) = StreamHandle::open(Box::new(Cursor::new(text.clone()))).unwrap();
        let peeked = handle.peek(9, |mut reader| {
            let mut seen = Vec::new();
            reader.read_to_end(&mut seen).unwrap();
            seen
        });
        assert_eq!(peeked.as_deref(), Some(&b"first\nsec"[..9]));
        let mut read = Vec::new();
        handle.take().unwrap().read_to_end(&mut read).unwrap();
        assert_eq!(read, text);
        assert!(handle.peek(1, |_| ()).is_none());
    }

    #[test]
    fn an_unended_last_line_and_empty_inputs() {
        let sniffed = sniff(&mut Vec::new(), &mut Chunks(vec![b"  only".to_vec()])).unwrap();
        assert_eq!(sniffed.first_line, "only");
        let sniffed = sniff(&mut Vec::new(), &mut Chunks(vec![])).unwrap();
        assert_eq!(
            sniffed,
            Sniffed {
                gzip: false,
                first_line: String::new()
            }
        );
        let sniffed = sniff(&mut Vec::new(), &mut Chunks(vec![vec![0x1f]])).unwrap();
        assert!(!sniffed.gzip);
    }
}
