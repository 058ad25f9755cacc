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
    /// The raw line, for dead letters.
    pub line: Option<String>,
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

/// Output shape of a rejected input in `dead_letters.jsonl` / `late.jsonl`.
#[derive(Serialize)]
pub struct RejectedJson<'a> {
    source: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<&'a str>,
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
            reading: Some(reading),
            origin,
        }
    }

    /// This rejection in its output shape.
    pub fn json(&self) -> RejectedJson<'_> {
        let reading = self.reading.as_ref();
        RejectedJson {
            source: &self.source,
            reason: &self.reason,
            line: self.line.as_deref(),
            room: reading.map(|r| r.room.as_str()),
            sensor: reading.map(|r| r.sensor.as_str()),
            ts: reading.map(|r| r.ts),
            value: reading.map(|r| r.value.to_f64()),
        }
    }
}
