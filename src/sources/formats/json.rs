//! JSON lines: one reading per line, `{"room": …, "sensor": …, "ts": …, "value": …}`.
//!
//! Nearly every line has the canonical shape and is read by the scanner of `canonical.rs`;
//! anything else takes the general path here, which accepts integer rooms and RFC 3339
//! timestamps and words every error.

use super::canonical::scan_canonical;
use super::{check_ts, excerpt, fixed};
use roomflow_dataflows::{Name, Reading};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

/// A JSON field value, borrowed from the line where it needs no unescaping. Objects, arrays,
/// booleans and null are only ever wrong, so they are kept as a description for the message.
enum Json<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    UInt(u64),
    Float(f64),
    Other(&'static str),
}

impl Json<'_> {
    /// What the value is, for a message saying it is the wrong kind.
    /// A number is quoted as `line` writes it for `key` (`1.7e12`, not `1700000000000`).
    fn describe(&self, line: &str, key: &str) -> String {
        match self {
            Json::Str(s) => format!("string `{}`", excerpt(s)),
            Json::Int(i) => format!("integer `{i}`"),
            Json::UInt(u) => format!("integer `{u}`"),
            Json::Float(f) => match number_as_written(line, key, *f) {
                Some(written) => format!("number `{}`", excerpt(written)),
                None => format!("number `{f}`"),
            },
            Json::Other(kind) => (*kind).to_owned(),
        }
    }
}

/// The text of the number `line` gives for `"key"`, if it can be found as written (an escaped key
/// is not looked for) and reads as `value`.
fn number_as_written<'a>(line: &'a str, key: &str, value: f64) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    line.match_indices(&quoted).find_map(|(at, _)| {
        let rest = line[at + quoted.len()..].trim_start();
        let rest = rest.strip_prefix(':')?.trim_start();
        let end = rest
            .find(|c: char| !matches!(c, '0'..='9' | '-' | '+' | '.' | 'e' | 'E'))
            .unwrap_or(rest.len());
        let number = &rest[..end];
        (number.parse::<f64>().ok()? == value).then_some(number)
    })
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        // Only strings with escapes land here: serde_json lends everything else.
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::UInt(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Json::Float(v))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Json<'de>, E> {
        Ok(Json::Other("a boolean"))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Other("null"))
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Other("null"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Json::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Json::Other("an object"))
    }
}

impl<'de> de::Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// The keys of a reading; any other key is skipped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Room,
    Sensor,
    Ts,
    Value,
    Other,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Room => "room",
            Key::Sensor => "sensor",
            Key::Ts => "ts",
            Key::Value => "value",
            Key::Other => "other",
        }
    }
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "room" => Key::Room,
                    "sensor" => Key::Sensor,
                    "ts" => Key::Ts,
                    "value" => Key::Value,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// The four fields of a JSON line, still unchecked.
#[derive(Default)]
struct RawLine<'a> {
    room: Option<Json<'a>>,
    sensor: Option<Json<'a>>,
    ts: Option<Json<'a>>,
    value: Option<Json<'a>>,
}

/// Reads a JSON object into a [`RawLine`], noting in `current` the field whose value is being
/// read, so that a lexical error inside it (`1e999` overflowing) can name the field.
struct LineSeed<'c> {
    current: &'c Cell<Option<Key>>,
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = RawLine<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawLine<'de>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = RawLine<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawLine<'de>, A::Error> {
        let mut line = RawLine::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::Room => &mut line.room,
                Key::Sensor => &mut line.sensor,
                Key::Ts => &mut line.ts,
                Key::Value => &mut line.value,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom(format_args!(
                    "duplicate field `{}`",
                    key.name()
                )));
            }
            self.current.set(Some(key));
            *slot = Some(map.next_value()?);
            self.current.set(None);
        }
        Ok(line)
    }
}

pub(super) fn parse_json(line: &str) -> Result<Reading, String> {
    // Nearly every line has the canonical shape, which the scanner reads by hand. Anything else
    // (a numeric room, an RFC 3339 ts, escapes, any error) takes the general path below, which
    // also words every error message.
    match scan_canonical(line.as_bytes()) {
        Some(reading) => Ok(reading),
        None => parse_json_general(line),
    }
}

pub(super) fn parse_json_general(line: &str) -> Result<Reading, String> {
    let current = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_str(line);
    let raw = LineSeed { current: &current }
        .deserialize(&mut deserializer)
        .and_then(|raw| deserializer.end().map(|()| raw))
        .map_err(|error| json_error(&error, current.get()))?;

    let room = match raw.room.ok_or("missing field `room`")? {
        Json::Str(room) if room.is_empty() => return Err("`room` is empty".into()),
        Json::Str(room) => Name::from(room.as_ref()),
        Json::Int(room) => integer_name(room),
        Json::UInt(room) => integer_name(room),
        other => {
            return Err(format!(
                "`room` must be a string or an integer, found {}",
                other.describe(line, "room")
            ))
        }
    };
    let sensor = match raw.sensor.ok_or("missing field `sensor`")? {
        Json::Str(sensor) if sensor.is_empty() => return Err("`sensor` is empty".into()),
        Json::Str(sensor) => Name::from(sensor.as_ref()),
        other => {
            return Err(format!(
                "`sensor` must be a string, found {}",
                other.describe(line, "sensor")
            ))
        }
    };
    let ts = match raw.ts.ok_or("missing field `ts`")? {
        Json::Int(ts) => check_ts(ts)?,
        Json::UInt(ts) => check_ts(i64::try_from(ts).unwrap_or(i64::MAX))?,
        Json::Str(date) => {
            let parsed = chrono::DateTime::parse_from_rfc3339(&date)
                .map_err(|_| format!("unparseable date `{}`", excerpt(&date)))?;
            check_ts(parsed.timestamp_millis())?
        }
        other => {
            return Err(format!(
                "`ts` must be integer epoch milliseconds or an RFC 3339 string, found {}",
                other.describe(line, "ts")
            ))
        }
    };
    let value = match raw.value.ok_or("missing field `value`")? {
        Json::Float(value) => fixed("value", value)?,
        Json::Int(value) => fixed("value", value as f64)?,
        Json::UInt(value) => fixed("value", value as f64)?,
        // Producers that serialise floats by hand write `"NaN"`: say what it is.
        Json::Str(text) if text.trim().parse::<f64>().is_ok_and(|v| !v.is_finite()) => {
            return Err("`value` is not a finite number".into())
        }
        other => {
            return Err(format!(
                "`value` must be a number, found {}",
                other.describe(line, "value")
            ))
        }
    };
    Ok(Reading {
        room,
        sensor,
        ts,
        value,
    })
}

/// The reason for a serde_json error, with the line number (always 1) left out.
fn json_error(error: &serde_json::Error, field: Option<Key>) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    if error.is_syntax() && message == "number out of range" {
        // `1e999` is valid JSON, but no finite number.
        match field {
            Some(Key::Value) => return "`value` is not a finite number".into(),
            Some(key) => return format!("`{}` is out of range", key.name()),
            None => {}
        }
    }
    if error.is_data() {
        // Only the top level can be of the wrong type: fields take any JSON value.
        return message.to_owned();
    }
    format!("invalid JSON: {message} at column {}", error.column())
}

/// A room named by an integer, as its decimal digits.
fn integer_name(number: impl fmt::Display) -> Name {
    Name::from(number.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::formats::tests::{parse, reading};
    use crate::sources::formats::{Format, StreamContext};

    fn json(line: &str) -> Result<Vec<Reading>, String> {
        parse(Format::Json, &StreamContext::default(), line)
    }

    #[test]
    fn fast_and_general_json_paths_agree() {
        let lines = [
            r#"{"room": "413", "sensor": "temperature", "ts": 1377299107000, "value": 23.93}"#,
            r#"{"value": -1.5, "ts": 0, "sensor": "co2", "room": "a", "extra": [1, 2]}"#,
            r#"{"room": "x", "sensor": "co2", "ts": 5, "value": 7}"#,
        ];
        for line in lines {
            assert_eq!(parse_json(line), parse_json_general(line), "{line}");
            assert!(parse_json(line).is_ok(), "{line}");
        }
    }

    #[test]
    fn json_with_epoch_milliseconds() {
        assert_eq!(
            json(
                r#"{"room": "413", "sensor": "temperature", "ts": 1377299107000, "value": 23.93}"#
            ),
            Ok(vec![reading(
                "413",
                "temperature",
                1_377_299_107_000,
                23_930_000
            )])
        );
    }

    #[test]
    fn json_ignores_extra_fields_order_and_carriage_return() {
        assert_eq!(
            json("{\"value\": -4, \"unit\": {\"a\": [1, 2]}, \"ts\": 0, \"sensor\": \"x\", \"room\": \"a\\\"b\"}\r"),
            Ok(vec![reading("a\"b", "x", 0, -4_000_000)])
        );
    }

    #[test]
    fn json_room_may_be_an_integer() {
        assert_eq!(
            json(r#"{"room": 413, "sensor": "co2", "ts": 5, "value": 488}"#),
            Ok(vec![reading("413", "co2", 5, 488_000_000)])
        );
    }

    #[test]
    fn json_rfc3339_timestamps() {
        // date -u -d '2013-08-23 23:05:07' +%s -> 1377299107
        assert_eq!(
            json(r#"{"room": "413", "sensor": "t", "ts": "2013-08-23T23:05:07Z", "value": 1.5}"#),
            Ok(vec![reading("413", "t", 1_377_299_107_000, 1_500_000)])
        );
        // 23:05:07.5 at +02:00 is 21:05:07.5 UTC, two hours (7,200,000 ms) earlier.
        assert_eq!(
            json(
                r#"{"room": "413", "sensor": "t", "ts": "2013-08-23T23:05:07.5+02:00", "value": 1.5}"#
            ),
            Ok(vec![reading("413", "t", 1_377_291_907_500, 1_500_000)])
        );
    }

    #[test]
    fn json_syntax_errors_name_the_column() {
        // Columns count from 1 and point at the last character read: here the 16th, the `"` that
        // should have been a `,` or a `}`; below, the line's last (21st) character.
        assert_eq!(
            json(r#"{"room": "413" "sensor": "t", "ts": 1, "value": 1}"#),
            Err("invalid JSON: expected `,` or `}` at column 16".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "413", "sens"#),
            Err("invalid JSON: EOF while parsing a string at column 21".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "413"} x"#),
            Err("invalid JSON: trailing characters at column 17".to_owned())
        );
        assert_eq!(
            json("[1, 2]"),
            Err("invalid type: sequence, expected a JSON object".to_owned())
        );
    }

    #[test]
    fn json_missing_and_duplicate_fields() {
        assert_eq!(
            json(r#"{"room": "413", "sensor": "t", "value": 1}"#),
            Err("missing field `ts`".to_owned())
        );
        assert_eq!(json("{}"), Err("missing field `room`".to_owned()));
        assert_eq!(
            json(r#"{"room": "413", "sensor": "t", "ts": 1}"#),
            Err("missing field `value`".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "room": "2", "sensor": "t", "ts": 1, "value": 1}"#),
            Err("duplicate field `room`".to_owned())
        );
    }

    #[test]
    fn json_ill_typed_fields() {
        assert_eq!(
            json(r#"{"room": {}, "sensor": "t", "ts": 1, "value": 1}"#),
            Err("`room` must be a string or an integer, found an object".to_owned())
        );
        assert_eq!(
            json(r#"{"room": 4.5, "sensor": "t", "ts": 1, "value": 1}"#),
            Err("`room` must be a string or an integer, found number `4.5`".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "", "sensor": "t", "ts": 1, "value": 1}"#),
            Err("`room` is empty".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": 7, "ts": 1, "value": 1}"#),
            Err("`sensor` must be a string, found integer `7`".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": 1.5e12, "value": 1}"#),
            Err("`ts` must be integer epoch milliseconds or an RFC 3339 string, found number `1.5e12`".to_owned())
        );
        // Quoted as written, wherever the key is.
        assert_eq!(
            json(r#"{"room": "1", "ts" :  1.7E+12 , "sensor": "t", "value": 1, "x": "\"ts\": 5"}"#),
            Err("`ts` must be integer epoch milliseconds or an RFC 3339 string, found number `1.7E+12`".to_owned())
        );
        assert_eq!(
            json(r#"{"room": 4.50, "sensor": "t", "ts": 1, "value": 1}"#),
            Err("`room` must be a string or an integer, found number `4.50`".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": 1, "value": "n/a"}"#),
            Err("`value` must be a number, found string `n/a`".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": 1, "value": null}"#),
            Err("`value` must be a number, found null".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": 1, "value": [true]}"#),
            Err("`value` must be a number, found an array".to_owned())
        );
    }

    #[test]
    fn json_values_must_be_finite() {
        for value in [r#""NaN""#, r#""Infinity""#, r#""-inf""#, "1e999", "-1e999"] {
            let line = format!(r#"{{"room": "1", "sensor": "t", "ts": 1, "value": {value}}}"#);
            assert_eq!(
                json(&line),
                Err("`value` is not a finite number".to_owned()),
                "{line}"
            );
        }
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": 1, "value": 1e13}"#),
            Err("`value` is out of range".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": 1e999, "value": 1}"#),
            Err("`ts` is out of range".to_owned())
        );
    }

    #[test]
    fn json_timestamps_must_be_after_1970() {
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": -1, "value": 1}"#),
            Err("timestamp before 1970".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": "1969-12-31T23:59:59Z", "value": 1}"#),
            Err("timestamp before 1970".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": "yesterday", "value": 1}"#),
            Err("unparseable date `yesterday`".to_owned())
        );
        // date -u -d '9999-12-31 23:59:59' +%s -> 253402300799
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": 253402300799999, "value": 1}"#),
            Ok(vec![reading("1", "t", 253_402_300_799_999, 1_000_000)])
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": 253402300800000, "value": 1}"#),
            Err("timestamp after year 9999".to_owned())
        );
        assert_eq!(
            json(r#"{"room": "1", "sensor": "t", "ts": 18446744073709551615, "value": 1}"#),
            Err("timestamp after year 9999".to_owned())
        );
    }
}
