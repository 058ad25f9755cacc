//! Dead letters and late readings as the dashboard shows them: counted by reason, the newest kept,
//! and tied to a room when the input names one. They come from the dead-letter topic (the
//! original bytes and `roomflow.*` headers) or from a replay's `dead_letters.jsonl` and
//! `late.jsonl`.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::bounds::{excerpt, LINE_KEPT_BYTES, MAX_NAME_BYTES, MAX_TEXT_BYTES};
use serde_json::Value;

/// How many rejected inputs are kept to show, per room and for the building.
pub const REJECTED_KEPT: usize = 20;

/// How many distinct reasons are counted apart; the rest are counted as `other`, so a stream of
/// ever-new reasons cannot grow the dashboard's memory.
pub const REASONS_KEPT: usize = 64;

/// A dead letter or a late reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Unreadable or implausible input.
    DeadLetter,
    /// A reading older than the lateness allows.
    Late,
}

/// One rejected input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RejectedInput {
    /// Dead letter or late.
    pub kind: Kind,
    /// Where it was: `topic/partition/offset` or `file:line`.
    pub source: String,
    /// Why it was rejected.
    pub reason: String,
    /// Its room, when it names one.
    pub room: Option<String>,
    /// Its sensor, when it names one.
    pub sensor: Option<String>,
    /// Its event time, when it has one.
    pub ts: Option<i64>,
    /// Its value, when it has one.
    pub value: Option<f64>,
    /// The beginning of its raw text, for a dead letter that is not a reading.
    pub line: Option<String>,
}

impl RejectedInput {
    /// The input with every text cut to an excerpt, and a name longer than any the job accepts
    /// left out: whatever a file or topic holds, what is kept of it is bounded.
    pub fn bounded(self) -> RejectedInput {
        let name = |name: Option<String>| name.filter(|name| name.len() <= MAX_NAME_BYTES);
        RejectedInput {
            source: excerpt(&self.source, MAX_TEXT_BYTES),
            reason: excerpt(&self.reason, MAX_TEXT_BYTES),
            room: name(self.room),
            sensor: name(self.sensor),
            line: self.line.map(|line| excerpt(&line, LINE_KEPT_BYTES)),
            ..self
        }
    }
}

/// Counts of rejected inputs by kind and reason, and the newest few.
#[derive(Clone, Debug, Default)]
pub struct RejectedTally {
    /// Dead letters counted.
    pub dead_letters: u64,
    /// Late readings counted.
    pub late: u64,
    /// Counts by kind and reason (the reason with its numbers elided).
    pub by_reason: BTreeMap<(Kind, String), u64>,
    /// The newest inputs, oldest first.
    pub recent: VecDeque<RejectedInput>,
}

impl RejectedTally {
    /// Counts `input`.
    pub fn count(&mut self, input: &RejectedInput) {
        match input.kind {
            Kind::DeadLetter => self.dead_letters += 1,
            Kind::Late => self.late += 1,
        }
        let mut reason = reason_class(&input.reason);
        if !self.by_reason.contains_key(&(input.kind, reason.clone()))
            && self.by_reason.len() >= REASONS_KEPT
        {
            reason = "other".to_string();
        }
        *self.by_reason.entry((input.kind, reason)).or_default() += 1;
    }

    /// Keeps `input` among the newest.
    pub fn keep(&mut self, input: RejectedInput) {
        if self.recent.len() == REJECTED_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(input);
    }
}

/// A reason with its numbers elided, so that rejections of one cause count together: "event
/// time 17 is 4 ms behind …" and "event time 99 is 8 ms behind …" are one reason.
pub fn reason_class(reason: &str) -> String {
    let mut class = String::with_capacity(reason.len());
    let mut in_number = false;
    for character in reason.chars() {
        if character.is_ascii_digit() {
            if !in_number {
                class.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            class.push(character);
        }
    }
    class
}

/// A line of a replay's `dead_letters.jsonl` (`kind` dead letter) or `late.jsonl` (late).
pub fn from_file_line(kind: Kind, bytes: &[u8]) -> Result<RejectedInput, String> {
    #[derive(Deserialize)]
    struct Line {
        source: String,
        reason: String,
        line: Option<String>,
        room: Option<String>,
        sensor: Option<String>,
        ts: Option<i64>,
        value: Option<f64>,
    }
    let line: Line = serde_json::from_slice(bytes)
        .map_err(|error| format!("not a rejected input's line: {error}"))?;
    let room = line.room.or_else(|| {
        line.line
            .as_deref()
            .and_then(|text| room_of(text.as_bytes()))
    });
    Ok(RejectedInput {
        kind,
        source: line.source,
        reason: line.reason,
        room,
        sensor: line.sensor,
        ts: line.ts,
        value: line.value,
        line: line.line,
    })
}

/// A message of the dead-letter topic: `kind` and `reason` from its `roomflow.kind` and
/// `roomflow.reason` headers, where it came from out of `roomflow.topic/partition/offset`, and
/// its original bytes.
pub fn from_dead_letter(
    headers: &BTreeMap<String, String>,
    payload: &[u8],
) -> Result<RejectedInput, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .ok_or_else(|| format!("no `{name}` header"))
    };
    let kind = match header("roomflow.kind")?.as_str() {
        "late" => Kind::Late,
        "malformed" => Kind::DeadLetter,
        other => return Err(format!("unknown roomflow.kind `{other}`")),
    };
    let source = format!(
        "{}/{}/{}",
        header("roomflow.topic")?,
        header("roomflow.partition")?,
        header("roomflow.offset")?
    );
    let reading: Option<Value> = serde_json::from_slice(payload).ok();
    let field = |name: &str| reading.as_ref().and_then(|value| value.get(name));
    let text = String::from_utf8_lossy(&payload[..payload.len().min(LINE_KEPT_BYTES)]).into_owned();
    Ok(RejectedInput {
        kind,
        source,
        reason: header("roomflow.reason")?.clone(),
        room: room_of(payload),
        sensor: field("sensor").and_then(Value::as_str).map(str::to_string),
        ts: field("ts").and_then(Value::as_i64),
        value: field("value").and_then(Value::as_f64),
        line: (kind == Kind::DeadLetter).then_some(text),
    })
}

/// The room a raw reading names (`"room"`, a string or an integer), when it is JSON at all.
fn room_of(bytes: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    match value.get("room")? {
        Value::String(room) => Some(room.clone()),
        Value::Number(room) => Some(room.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_elided_from_reasons() {
        assert_eq!(
            reason_class("event time 1700000176067 is 423578 ms behind the newest event time 1700000599645 of its input (lateness 300000 ms)"),
            "event time N is N ms behind the newest event time N of its input (lateness N ms)"
        );
        assert_eq!(
            reason_class("missing field `value`"),
            "missing field `value`"
        );
    }

    #[test]
    fn reasons_beyond_the_limit_count_as_other() {
        let mut tally = RejectedTally::default();
        for n in 0..REASONS_KEPT + 3 {
            let reason = format!("reason {}", "x".repeat(n));
            tally.count(&RejectedInput {
                kind: Kind::DeadLetter,
                source: "f:1".into(),
                reason,
                room: None,
                sensor: None,
                ts: None,
                value: None,
                line: None,
            });
        }
        assert_eq!(tally.by_reason.len(), REASONS_KEPT + 1);
        assert_eq!(tally.by_reason[&(Kind::DeadLetter, "other".into())], 3);
        assert_eq!(tally.dead_letters, REASONS_KEPT as u64 + 3);
    }

    #[test]
    fn a_dead_letter_line_is_tied_to_the_room_its_raw_text_names() {
        let input = from_file_line(
            Kind::DeadLetter,
            br#"{"source":"a.jsonl:3","reason":"missing field `value`","line":"{\"room\": 12, \"sensor\": \"co2\"}"}"#,
        )
        .unwrap();
        assert_eq!(input.room.as_deref(), Some("12"));
        assert_eq!(input.source, "a.jsonl:3");
        let late = from_file_line(
            Kind::Late,
            br#"{"source":"a.jsonl:9","reason":"late","room":"r1","sensor":"co2","ts":5,"value":400.5}"#,
        )
        .unwrap();
        assert_eq!(
            (late.room.as_deref(), late.ts, late.value),
            (Some("r1"), Some(5), Some(400.5))
        );
    }

    #[test]
    fn a_dead_letter_message_needs_its_headers() {
        let mut headers: BTreeMap<String, String> = [
            ("roomflow.kind", "late"),
            ("roomflow.reason", "too old"),
            ("roomflow.topic", "sensors"),
            ("roomflow.partition", "3"),
            ("roomflow.offset", "41"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let input = from_dead_letter(
            &headers,
            br#"{"room":"r2","sensor":"temperature","ts":7,"value":21.5}"#,
        )
        .unwrap();
        assert_eq!(input.source, "sensors/3/41");
        assert_eq!(input.kind, Kind::Late);
        assert_eq!(input.room.as_deref(), Some("r2"));
        assert_eq!(input.line, None);
        headers.remove("roomflow.reason");
        assert_eq!(
            from_dead_letter(&headers, b"x").unwrap_err(),
            "no `roomflow.reason` header"
        );
    }
}
