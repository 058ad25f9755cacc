//! Input that does not become a reading: dead letters (unreadable or implausible) and late readings.
//! They travel through the dataflow as data, to the dead-letter and late outputs.

use roomflow_dataflows::Reading;
use serde::{Deserialize, Serialize};

/// Why an input was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// It could not be read, or its value is implausible.
    DeadLetter,
    /// It is older than the lateness allows.
    Late,
}

/// One input that was not applied, with where it came from and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rejected {
    /// Dead letter or late.
    pub kind: RejectKind,
    /// Where it came from: `file:line` (or `-:line` for stdin), or `topic/partition/offset`.
    pub source: String,
    /// Why it was rejected, for a human.
    pub reason: String,
    /// The raw line, for dead letters: all of it, or its first [`EXCERPT_BYTES`] when longer.
    pub line: Option<String>,
    /// The raw line's full length in bytes, when `line` holds only its beginning.
    pub line_bytes: Option<u64>,
    /// The reading, when one could be read.
    pub reading: Option<Reading>,
    /// The Kafka message it came from, for the dead-letter topic.
    pub origin: Option<Box<KafkaOrigin>>,
}

/// A rejected Kafka message: where it was and its bytes, which the dead-letter topic carries
/// unchanged.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KafkaOrigin {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub payload: Vec<u8>,
}

/// The most bytes of an unreadable line a dead letter keeps: enough to see what went wrong,
/// and one broken line cannot fill the disk or the dead-letter collection.
pub const EXCERPT_BYTES: usize = 1024;

/// The beginning of `line`, at most [`EXCERPT_BYTES`], as text (invalid UTF-8 replaced, a
/// character cut at the end dropped), and how many bytes of `line` it covers.
pub fn excerpt(line: &[u8]) -> (String, u64) {
    let kept = &line[..line.len().min(EXCERPT_BYTES)];
    let text = match std::str::from_utf8(kept) {
        Ok(text) => text.to_string(),
        // Cut inside a character: drop the partial character rather than show a replacement.
        Err(error) if error.error_len().is_none() && kept.len() < line.len() => {
            String::from_utf8_lossy(&kept[..error.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(kept).into_owned(),
    };
    (text, kept.len() as u64)
}

/// Output shape of a rejected input in `dead_letters.jsonl` / `late.jsonl`.
#[derive(Serialize)]
pub struct RejectedJson<'a> {
    source: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
}

impl Rejected {
    /// A late reading from `source`: its stream (`what`: a file's input, a partition) had
    /// already delivered `newest`, more than `lateness_ms` after it.
    pub fn late(
        reading: Reading,
        source: String,
        what: &str,
        newest: i64,
        lateness_ms: i64,
        origin: Option<Box<KafkaOrigin>>,
    ) -> Rejected {
        Rejected {
            kind: RejectKind::Late,
            source,
            reason: format!(
                "event time {} is {} ms behind the newest event time {newest} of its {what} (lateness {lateness_ms} ms)",
                reading.ts,
                newest - reading.ts,
            ),
            line: None,
            line_bytes: None,
            reading: Some(reading),
            origin,
        }
    }

    /// A dead letter from `source` for the raw `line` (of `length` bytes, of which `line` may be
    /// only the beginning), keeping at most [`EXCERPT_BYTES`] of it.
    pub fn unreadable(source: String, reason: String, line: &[u8], length: u64) -> Rejected {
        let (line, kept) = excerpt(line);
        Rejected {
            kind: RejectKind::DeadLetter,
            source,
            reason,
            line: Some(line),
            line_bytes: (kept < length).then_some(length),
            reading: None,
            origin: None,
        }
    }

    /// This rejection in its output shape.
    pub fn json(&self) -> RejectedJson<'_> {
        let reading = self.reading.as_ref();
        RejectedJson {
            source: &self.source,
            reason: &self.reason,
            line: self.line.as_deref(),
            line_bytes: self.line_bytes,
            room: reading.map(|r| r.room.as_str()),
            sensor: reading.map(|r| r.sensor.as_str()),
            ts: reading.map(|r| r.ts),
            value: reading.map(|r| r.value.to_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_keeps_the_beginning_and_never_splits_a_character() {
        assert_eq!(excerpt(b"short"), ("short".to_string(), 5));
        let long = "a".repeat(EXCERPT_BYTES - 1) + "€€";
        let (text, kept) = excerpt(long.as_bytes());
        // The first € starts at byte 1023 and ends beyond 1024: it is dropped whole.
        assert_eq!(text, "a".repeat(EXCERPT_BYTES - 1));
        assert_eq!(kept, EXCERPT_BYTES as u64);
        assert_eq!(excerpt(b"\xffok"), ("\u{fffd}ok".to_string(), 3));
    }

    #[test]
    fn a_long_unreadable_line_says_its_full_length() {
        let line = vec![b'x'; 5000];
        let rejected = Rejected::unreadable("f:1".into(), "bad".into(), &line, 5000);
        assert_eq!(rejected.line.as_deref().map(str::len), Some(EXCERPT_BYTES));
        assert_eq!(rejected.line_bytes, Some(5000));
        let json = serde_json::to_value(rejected.json()).unwrap();
        assert_eq!(json["line_bytes"], 5000);
        let short = Rejected::unreadable("f:2".into(), "bad".into(), b"{", 1);
        assert_eq!(short.line_bytes, None);
        assert!(serde_json::to_value(short.json())
            .unwrap()
            .get("line_bytes")
            .is_none());
    }
}
