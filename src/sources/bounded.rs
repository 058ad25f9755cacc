//! Reading one line without holding more of it than a limit: a line longer than
//! `--max-line-bytes` is skipped to its newline, keeping only its beginning and counting its
//! length, so one broken line (a 300 MB blob without a newline) costs at most the limit in memory.

use std::io::{self, BufRead};

/// `--max-line-bytes`'s default: 1 MiB, far above any reading (about 80 bytes as JSON).
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// What [`read_line`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineRead {
    /// The input has ended; nothing was read.
    End,
    /// A whole line is in the buffer (without its newline).
    Line,
    /// The line was longer than the limit: the buffer holds its first `limit` bytes, and the
    /// rest was skipped up to and including its newline.
    TooLong {
        /// The line's full length in bytes, without its newline.
        length: u64,
    },
}

/// Reads the next line of `reader` into `line` (cleared first, newline not included), holding at
/// most `limit` bytes of it. The last line of an input may lack its newline.
pub fn read_line(
    reader: &mut (impl BufRead + ?Sized),
    line: &mut Vec<u8>,
    limit: usize,
) -> io::Result<LineRead> {
    line.clear();
    let mut length: u64 = 0;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (chunk, used, ended) = match memchr::memchr(b'\n', available) {
            Some(at) => (&available[..at], at + 1, true),
            None => (available, available.len(), false),
        };
        let room = limit.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        length += chunk.len() as u64;
        reader.consume(used);
        if ended {
            break;
        }
    }
    Ok(if !any {
        LineRead::End
    } else if length > limit as u64 {
        LineRead::TooLong { length }
    } else {
        LineRead::Line
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Read};

    /// Every line of `input`, read through a buffer of `capacity` bytes with `limit`.
    fn lines(input: &[u8], capacity: usize, limit: usize) -> Vec<(String, LineRead)> {
        let mut reader = BufReader::with_capacity(capacity, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader, &mut line, limit).unwrap() {
                LineRead::End => return out,
                read => out.push((String::from_utf8(line.clone()).unwrap(), read)),
            }
        }
    }

    #[test]
    fn lines_within_the_limit_come_whole_whatever_the_buffer() {
        for capacity in [1, 2, 3, 64] {
            assert_eq!(
                lines(b"ab\n\ncdef\ngh", capacity, 4),
                vec![
                    ("ab".to_string(), LineRead::Line),
                    (String::new(), LineRead::Line),
                    ("cdef".to_string(), LineRead::Line),
                    ("gh".to_string(), LineRead::Line),
                ],
                "buffer of {capacity}"
            );
        }
    }

    #[test]
    fn a_longer_line_keeps_its_beginning_and_its_length_and_the_next_line_follows() {
        for capacity in [1, 3, 64] {
            assert_eq!(
                lines(b"abcdefghij\nxy\nlast line without newline", capacity, 4),
                vec![
                    ("abcd".to_string(), LineRead::TooLong { length: 10 }),
                    ("xy".to_string(), LineRead::Line),
                    ("last".to_string(), LineRead::TooLong { length: 25 }),
                ],
                "buffer of {capacity}"
            );
        }
    }

    #[test]
    fn memory_stays_at_the_limit_for_a_huge_line() {
        // 64 MiB without a newline, from a reader that never holds it whole.
        let huge = io::repeat(b'x').take(64 << 20);
        let mut reader = BufReader::with_capacity(1 << 16, huge);
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut line, 1024).unwrap(),
            LineRead::TooLong { length: 64 << 20 }
        );
        assert_eq!(line.len(), 1024);
        assert!(line.capacity() < 4096, "capacity {}", line.capacity());
        assert_eq!(
            read_line(&mut reader, &mut line, 1024).unwrap(),
            LineRead::End
        );
    }
}
