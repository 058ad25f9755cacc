//! Reading one input line by line into readings and dead letters, each with its `file:line`.

use std::io::{self, BufRead};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use roomflow_dataflows::{EventTime, Item, Reading};

use super::bounded::{read_line, LineRead};
use super::formats::{self, Format, StreamContext};
use super::inputs::InputFile;
use super::opening::line_reader;
use super::validity::{check_names, ValidRanges};
use crate::streams::{RejectKind, Rejected};

/// What a line stream yields: a reading with its line number, or a dead letter. The dead letter
/// is boxed: it is rare and five times a reading's size, and every reading is moved through the
/// merge in this enum, which takes the size of its largest variant.
pub type LineItem = Item<Box<Rejected>>;

/// One input read line by line into [`Item`]s: readings with their line number, or dead letters.
pub struct LineStream {
    name: Arc<str>,
    format: Format,
    context: StreamContext,
    valid: Arc<ValidRanges>,
    reader: Option<Box<dyn BufRead + Send>>,
    /// The longest line read whole (`--max-line-bytes`).
    max_line_bytes: usize,
    line_number: u64,
    bytes: Vec<u8>,
    parsed: Vec<Reading>,
    /// Readings of the current line not yet yielded (an Intel line holds four), reversed.
    queued: Vec<LineItem>,
}

impl LineStream {
    /// Opens `input`; a file that cannot be opened yields a single dead letter saying why. Lines
    /// longer than `max_line_bytes` are dead letters, read without holding more than that.
    pub fn open(
        input: &InputFile,
        valid: Arc<ValidRanges>,
        counter: Arc<AtomicU64>,
        max_line_bytes: usize,
    ) -> LineStream {
        LineStream::reading(input, input.open(counter), valid, max_line_bytes)
    }

    /// The stream of `input`'s lines read from `reader` (what opening it gave).
    fn reading(
        input: &InputFile,
        reader: io::Result<Box<dyn BufRead + Send>>,
        valid: Arc<ValidRanges>,
        max_line_bytes: usize,
    ) -> LineStream {
        let mut stream = LineStream {
            name: input.name().into(),
            format: input.format,
            context: input.context(),
            valid,
            reader: None,
            max_line_bytes,
            line_number: 0,
            bytes: Vec::with_capacity(256),
            parsed: Vec::with_capacity(4),
            queued: Vec::new(),
        };
        match reader {
            Ok(reader) => stream.reader = Some(reader),
            Err(error) => stream
                .queued
                .push(stream.input_failed(format!("cannot open: {error}"))),
        }
        stream
    }

    fn location(&self) -> String {
        format!("{}:{}", self.name, self.line_number)
    }

    /// A dead letter about the input as a whole (it cannot be opened, or reading it failed).
    fn input_failed(&self, reason: String) -> LineItem {
        Item::Other(Box::new(Rejected {
            kind: RejectKind::DeadLetter,
            source: self.location(),
            reason,
            line: None,
            line_bytes: None,
            reading: None,
            origin: None,
        }))
    }

    /// A dead letter for the current line: `bytes` are (the beginning of) its `length` bytes.
    fn unreadable(&self, reason: String, bytes: &[u8], length: u64) -> LineItem {
        Item::Other(Box::new(Rejected::unreadable(
            self.location(),
            reason,
            bytes,
            length,
        )))
    }

    /// Reads lines until one yields something, and returns the first thing (the rest of the
    /// line's wait in `queued`); `None` at the end of the input.
    fn read_item(&mut self) -> Option<LineItem> {
        loop {
            let reader = self.reader.as_mut()?;
            let read = read_line(reader, &mut self.bytes, self.max_line_bytes);
            let length = match read {
                Ok(LineRead::End) => {
                    self.reader = None;
                    return None;
                }
                Ok(LineRead::Line) => self.bytes.len() as u64,
                Ok(LineRead::TooLong { length }) => length,
                Err(error) => {
                    // A corrupt or truncated file: report it where it broke and stop reading it.
                    self.reader = None;
                    self.line_number += 1;
                    self.queued
                        .push(self.input_failed(format!("read error: {error}")));
                    return self.queued.pop();
                }
            };
            self.line_number += 1;
            // The canonical JSON line of a plausible reading, nearly every line of a recording:
            // straight out, without the vectors that lines of several readings or of errors go
            // through.
            if let (Ok(LineRead::Line), Format::Json) = (&read, self.format) {
                if let Some(reading) = formats::scan_json_line(&self.bytes) {
                    if self.valid.check(&reading).is_ok() {
                        return Some(Item::Reading {
                            reading,
                            position: self.line_number,
                        });
                    }
                }
            }
            let bytes = std::mem::take(&mut self.bytes);
            let outcome = if let Ok(LineRead::TooLong { length }) = read {
                Err(self.unreadable(
                    format!(
                        "line of {length} bytes is longer than the {} allowed (--max-line-bytes)",
                        self.max_line_bytes
                    ),
                    &bytes,
                    length,
                ))
            } else if let Some(reading) = (self.format == Format::Json)
                .then(|| formats::scan_json_line(&bytes))
                .flatten()
            {
                // The canonical JSON line, read without checking the whole line as UTF-8 first.
                self.parsed.clear();
                self.parsed.push(reading);
                Ok(())
            } else {
                match std::str::from_utf8(&bytes) {
                    Ok(text) => {
                        let text = text.trim_end_matches('\r');
                        self.parsed.clear();
                        formats::parse_line(self.format, &self.context, text, &mut self.parsed)
                            .map_err(|reason| self.unreadable(reason, text.as_bytes(), length))
                    }
                    Err(_) => Err(self.unreadable("not UTF-8 text".to_string(), &bytes, length)),
                }
            };
            self.bytes = bytes;
            match outcome {
                Ok(()) if self.parsed.is_empty() => continue,
                Ok(()) => {
                    // The location is formatted only for a rejected reading: formatting it for
                    // every line was 9 % of replay's instructions.
                    // Taken out for the loop, which formats locations from `self`; put back empty
                    // so that its allocation is reused.
                    let mut parsed = std::mem::take(&mut self.parsed);
                    for reading in parsed.drain(..).rev() {
                        let item = match self.valid.check(&reading) {
                            Ok(()) => Item::Reading {
                                reading,
                                position: self.line_number,
                            },
                            // A name too long is kept as the line's excerpt, not as a reading
                            // whose name alone could be megabytes.
                            Err(reason) if check_names(&reading).is_err() => Item::Other(Box::new(
                                Rejected::unreadable(self.location(), reason, &self.bytes, length),
                            )),
                            Err(reason) => Item::Other(Box::new(Rejected {
                                kind: RejectKind::DeadLetter,
                                source: self.location(),
                                reason,
                                line: None,
                                line_bytes: None,
                                reading: Some(reading),
                                origin: None,
                            })),
                        };
                        self.queued.push(item);
                    }
                    self.parsed = parsed;
                    return self.queued.pop();
                }
                Err(dead_letter) => {
                    self.queued.push(dead_letter);
                    return self.queued.pop();
                }
            }
        }
    }

    /// The stream's name in locations.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }
}

impl Iterator for LineStream {
    type Item = LineItem;

    fn next(&mut self) -> Option<LineItem> {
        if let Some(item) = self.queued.pop() {
            return Some(item);
        }
        self.read_item()
    }
}

/// The earliest event time among the first readings of the files: where `--speed` starts the
/// clock, the same for every worker and process. Streams count only when no file has a reading
/// (then they are all there is, all on worker 0): only the process that reads a stream can look
/// into it, and every process must start its clock at the same time.
pub fn first_event_time(
    inputs: &[InputFile],
    max_line_bytes: usize,
) -> Option<roomflow_dataflows::EventTime> {
    let files = inputs
        .iter()
        .filter(|input| !input.once)
        .filter_map(|input| {
            first_reading_time(LineStream::open(
                input,
                Arc::default(),
                Arc::default(),
                max_line_bytes,
            ))
        })
        .min();
    files.or_else(|| {
        inputs
            .iter()
            .filter_map(|input| first_stream_time(input, max_line_bytes))
            .min()
    })
}

/// The event time of the first reading of `stream`, dead letters skipped.
fn first_reading_time(mut stream: LineStream) -> Option<EventTime> {
    stream.find_map(|item| match item {
        Item::Reading { reading, .. } => Some(reading.ts),
        Item::Other(_) => None,
    })
}

/// How much of a stream [`first_stream_time`] looks at (kept in memory until it is read).
const STREAM_PEEK_BYTES: usize = 1 << 20;

/// The event time of the first reading in the first [`STREAM_PEEK_BYTES`] of a stream this
/// process opened; peeked, so that the stream is still read from its first byte.
fn first_stream_time(input: &InputFile, max_line_bytes: usize) -> Option<EventTime> {
    let stream = input.stream.as_ref()?;
    stream
        .peek(STREAM_PEEK_BYTES, |raw| {
            let reader = line_reader(raw, input.gzip, Arc::default());
            first_reading_time(LineStream::reading(
                input,
                Ok(reader),
                Arc::default(),
                max_line_bytes,
            ))
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::bounded::DEFAULT_MAX_LINE_BYTES;
    use crate::sources::inputs::discover;
    use std::fs::File;
    use std::io::Write;

    #[test]
    fn reads_plain_and_gzip_files_with_line_numbers_and_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        std::fs::write(
            &plain,
            "{\"room\":\"1\",\"sensor\":\"co2\",\"ts\":1000,\"value\":400}\n\nnot json\n",
        )
        .unwrap();
        let gz = dir.path().join("b.jsonl.gz");
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        encoder
            .write_all(b"{\"room\":\"2\",\"sensor\":\"co2\",\"ts\":2000,\"value\":500.5}\n")
            .unwrap();
        encoder.finish().unwrap();

        let inputs = discover(&[dir.path().to_path_buf()], None).unwrap();
        assert_eq!(
            inputs.iter().map(|i| i.format).collect::<Vec<_>>(),
            vec![Format::Json, Format::Json]
        );

        let items: Vec<_> = LineStream::open(
            &inputs[0],
            Arc::default(),
            Arc::default(),
            DEFAULT_MAX_LINE_BYTES,
        )
        .collect();
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[0], Item::Reading { reading, position: 1 } if reading.ts == 1000));
        match &items[1] {
            Item::Other(rejected) => {
                assert_eq!(rejected.source, format!("{}:3", plain.display()));
                assert_eq!(rejected.line.as_deref(), Some("not json"));
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
        let items: Vec<_> = LineStream::open(
            &inputs[1],
            Arc::default(),
            Arc::default(),
            DEFAULT_MAX_LINE_BYTES,
        )
        .collect();
        assert!(
            matches!(&items[..], [Item::Reading { reading, position: 1 }] if reading.value.0 == 500_500_000)
        );
    }

    #[test]
    fn implausible_values_become_dead_letters_carrying_the_reading() {
        let dir = tempfile::tempdir().unwrap();
        let room = dir.path().join("419");
        std::fs::create_dir(&room).unwrap();
        std::fs::write(
            room.join("temperature.csv"),
            "1377299115, 579.27\n1377299122, 23.38\n",
        )
        .unwrap();
        let inputs = discover(&[dir.path().to_path_buf()], None).unwrap();
        assert_eq!(inputs[0].format, Format::Keti);
        let valid = Arc::new(ValidRanges::new(&["temperature=-40..85".parse().unwrap()]));
        let items: Vec<_> =
            LineStream::open(&inputs[0], valid, Arc::default(), DEFAULT_MAX_LINE_BYTES).collect();
        match &items[0] {
            Item::Other(rejected) => {
                assert_eq!(rejected.kind, RejectKind::DeadLetter);
                assert!(
                    rejected.source.ends_with("temperature.csv:1"),
                    "{}",
                    rejected.source
                );
                assert_eq!(rejected.reading.as_ref().unwrap().ts, 1_377_299_115_000);
            }
            other => panic!("expected a dead letter, got {other:?}"),
        }
        assert!(
            matches!(&items[1], Item::Reading { reading, position: 2 } if reading.room == "419")
        );
    }
}
