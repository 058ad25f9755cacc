//! Line parsers for the input formats: JSON lines, the KETI layout and the Intel Berkeley lab
//! format, plus guessing which one a file is in.
//!
//! Everything here is pure: a line goes in, readings (or a short human reason why not) come out.
//! Reading files, decompressing and counting rejected lines belong to the callers.

use roomflow_dataflows::{Fixed, Name, Reading};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The format of an input stream, one reading (or one line of readings) per line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `{"room": "413", "sensor": "temperature", "ts": 1377299107000, "value": 23.93}`.
    Json,
    /// `1377299107, 23.93` in a file `<room>/<sensor>.csv[.gz]`.
    Keti,
    /// `2004-03-04 00:00:26.983691 14285 1 20.5666 35.8876 46.92 2.65143`.
    Intel,
}

impl Format {
    /// Every format, in the order they are documented.
    pub const ALL: [Format; 3] = [Format::Json, Format::Keti, Format::Intel];

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Keti => "keti",
            Format::Intel => "intel",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown format `{s}` (expected json, keti or intel)"))
    }
}

/// Where a KETI file's room and sensor come from: its path `<room>/<sensor>.csv[.gz]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamContext {
    /// The room of every reading of the stream, if its path names one.
    pub room: Option<Name>,
    /// The sensor of every reading of the stream, if its path names one.
    pub sensor: Option<Name>,
}

/// The newest accepted event time, 9999-12-31T23:59:59.999Z: RFC 3339 cannot go further, and it
/// keeps every later `ts + duration` far from overflowing.
const MAX_TS: i64 = 253_402_300_799_999;

/// The Intel lab sensors, in the order of their columns (5th to 8th).
const INTEL_SENSORS: [&str; 4] = ["temperature", "humidity", "light", "voltage"];

/// Parses one line (without its newline; a trailing `'\r'` is ignored) into zero or more readings
/// pushed onto `out`.
///
/// Blank lines yield nothing. On failure nothing is pushed and the error is a short human reason,
/// such as ``missing field `ts` `` or ``unparseable date `2004-13-45 25:00:00` ``.
pub fn parse_line(
    format: Format,
    context: &StreamContext,
    line: &str,
    out: &mut Vec<Reading>,
) -> Result<(), String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(());
    }
    match format {
        Format::Json => out.push(parse_json(line)?),
        Format::Keti => out.push(parse_keti(context, line)?),
        Format::Intel => parse_intel(line, out)?,
    }
    Ok(())
}

/// Guesses the format of a file from its path and its first non-blank line.
pub fn detect(path: &Path, first_line: &str) -> Option<Format> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let first_line = first_line.trim();
    if [".json", ".jsonl", ".ndjson"]
        .iter()
        .any(|ext| name.ends_with(ext))
        || first_line.starts_with('{')
    {
        return Some(Format::Json);
    }
    if name.len() > ".csv".len() && name.ends_with(".csv") && looks_like_keti(first_line) {
        return Some(Format::Keti);
    }
    if looks_like_intel(first_line) {
        return Some(Format::Intel);
    }
    None
}

/// Room and sensor of a KETI-layout path (`.../413/temperature.csv` or `.csv.gz`): the parent
/// directory's name and the file's name without its extensions.
pub fn keti_context(path: &Path) -> StreamContext {
    let sensor = path.file_name().map(|name| {
        let name = name.to_string_lossy();
        let stem = name.strip_suffix(".gz").unwrap_or(&name);
        let stem = stem.strip_suffix(".csv").unwrap_or(stem);
        // Not a `.csv`: the stem is still the best guess at what the file measures.
        let stem = if stem.len() == name.len() {
            stem.rsplit_once('.').map_or(stem, |(stem, _)| stem)
        } else {
            stem
        };
        Name::from(stem)
    });
    let room = path
        .parent()
        .and_then(Path::file_name)
        .map(|room| Name::from(room.to_string_lossy().as_ref()));
    StreamContext {
        room: room.filter(|room| !room.is_empty()),
        sensor: sensor.filter(|sensor| !sensor.is_empty()),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON lines

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
    fn describe(&self) -> String {
        match self {
            Json::Str(s) => format!("string `{}`", excerpt(s)),
            Json::Int(i) => format!("integer `{i}`"),
            Json::UInt(u) => format!("integer `{u}`"),
            Json::Float(f) => format!("number `{f}`"),
            Json::Other(kind) => (*kind).to_owned(),
        }
    }
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

/// The canonical line, read the fast way: borrowed strings, integer `ts`, numeric `value`.
#[derive(serde::Deserialize)]
struct CanonicalLine<'a> {
    room: &'a str,
    sensor: &'a str,
    ts: i64,
    value: f64,
}

fn parse_json(line: &str) -> Result<Reading, String> {
    // Nearly every line has the canonical shape, which serde reads straight into borrowed fields.
    // Anything else (a numeric room, an RFC 3339 ts, escapes, any error) takes the general path
    // below, which also words every error message.
    if let Ok(fast) = serde_json::from_str::<CanonicalLine>(line) {
        if !fast.room.is_empty() && !fast.sensor.is_empty() && (0..=MAX_TS).contains(&fast.ts) {
            if let Some(value) = Fixed::from_f64(fast.value) {
                return Ok(Reading {
                    room: Name::from(fast.room),
                    sensor: Name::from(fast.sensor),
                    ts: fast.ts,
                    value,
                });
            }
        }
    }
    parse_json_general(line)
}

fn parse_json_general(line: &str) -> Result<Reading, String> {
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
                other.describe()
            ))
        }
    };
    let sensor = match raw.sensor.ok_or("missing field `sensor`")? {
        Json::Str(sensor) if sensor.is_empty() => return Err("`sensor` is empty".into()),
        Json::Str(sensor) => Name::from(sensor.as_ref()),
        other => {
            return Err(format!(
                "`sensor` must be a string, found {}",
                other.describe()
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
                other.describe()
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
                other.describe()
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

fn check_ts(ts: i64) -> Result<i64, String> {
    if ts < 0 {
        Err("timestamp before 1970".into())
    } else if ts > MAX_TS {
        Err("timestamp after year 9999".into())
    } else {
        Ok(ts)
    }
}

fn fixed(field: &str, value: f64) -> Result<Fixed, String> {
    Fixed::from_f64(value).ok_or_else(|| {
        if value.is_finite() {
            format!("`{field}` is out of range")
        } else {
            format!("`{field}` is not a finite number")
        }
    })
}

/// At most 40 characters of `text`, so that a runaway field cannot flood the log.
fn excerpt(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(40) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

// ---------------------------------------------------------------------------------------------
// KETI

fn parse_keti(context: &StreamContext, line: &str) -> Result<Reading, String> {
    let (Some(room), Some(sensor)) = (&context.room, &context.sensor) else {
        return Err("KETI line outside a <room>/<sensor>.csv file".into());
    };
    let (seconds, value) = line
        .split_once(',')
        .ok_or("expected `<epoch seconds>, <value>`")?;
    let seconds = seconds.trim();
    let ts = match seconds.parse::<i64>() {
        Ok(seconds) if seconds < 0 => return Err("timestamp before 1970".into()),
        Ok(seconds) => check_ts(seconds.saturating_mul(1000))?,
        Err(_) => return Err(format!("unparseable epoch seconds `{}`", excerpt(seconds))),
    };
    let value = value.trim();
    let value = match value.parse::<f64>() {
        Ok(value) => fixed("value", value)?,
        Err(_) => return Err(format!("unparseable value `{}`", excerpt(value))),
    };
    Ok(Reading {
        room: room.clone(),
        sensor: sensor.clone(),
        ts,
        value,
    })
}

/// Whether a line reads `<digits>,<number>`, allowing whitespace around both.
fn looks_like_keti(line: &str) -> bool {
    line.split_once(',').is_some_and(|(seconds, value)| {
        let seconds = seconds.trim();
        !seconds.is_empty()
            && seconds.bytes().all(|b| b.is_ascii_digit())
            && value.trim().parse::<f64>().is_ok_and(f64::is_finite)
    })
}

// ---------------------------------------------------------------------------------------------
// Intel Berkeley lab

fn parse_intel(line: &str, out: &mut Vec<Reading>) -> Result<(), String> {
    // Split on single spaces: an empty field is an absent value (the data set's missing light).
    let mut fields = [""; 8];
    let mut count = 0;
    for field in line.trim().split(' ') {
        if count == fields.len() {
            return Err("too many fields (expected at most 8)".into());
        }
        fields[count] = field;
        count += 1;
    }
    if count < 5 {
        return Err(format!("too few fields ({count}, expected at least 5)"));
    }
    let [date, time, _epoch, mote, values @ ..] = fields;
    let ts = intel_time(date, time)
        .ok_or_else(|| format!("unparseable date `{} {}`", excerpt(date), excerpt(time)))?;
    let ts = check_ts(ts)?;
    if mote.is_empty() {
        return Err("missing mote id".into());
    }
    if !mote.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("non-numeric mote id `{}`", excerpt(mote)));
    }

    // Check every value before pushing any, so that a rejected line leaves `out` untouched.
    let mut parsed = [None; 4];
    for ((slot, text), sensor) in parsed.iter_mut().zip(values).zip(INTEL_SENSORS) {
        if !text.is_empty() {
            let value = text
                .parse::<f64>()
                .map_err(|_| format!("non-numeric {sensor} `{}`", excerpt(text)))?;
            *slot = Some(fixed(sensor, value)?);
        }
    }
    let room = Name::from(mote);
    for (value, sensor) in parsed.into_iter().zip(INTEL_SENSORS) {
        if let Some(value) = value {
            out.push(Reading {
                room: room.clone(),
                sensor: Name::from(sensor),
                ts,
                value,
            });
        }
    }
    Ok(())
}

/// Epoch milliseconds of `YYYY-MM-DD` and `HH:MM:SS[.fraction]` read as UTC, keeping milliseconds
/// of the fraction (any number of digits) and dropping the rest.
fn intel_time(date: &str, time: &str) -> Option<i64> {
    let d = date.as_bytes();
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(
        digits(&d[0..4])? as i32,
        digits(&d[5..7])?,
        digits(&d[8..10])?,
    )?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let c = clock.as_bytes();
    if c.len() != 8 || c[2] != b':' || c[5] != b':' {
        return None;
    }
    if time.len() > clock.len() && fraction.is_empty() {
        return None;
    }
    let f = fraction.as_bytes();
    if !f.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // "9882" -> 988, "5" -> 500.
    let millis = f
        .iter()
        .chain(b"000")
        .take(3)
        .fold(0, |millis, b| millis * 10 + u32::from(b - b'0'));
    let time = chrono::NaiveTime::from_hms_milli_opt(
        digits(&c[0..2])?,
        digits(&c[3..5])?,
        digits(&c[6..8])?,
        millis,
    )?;
    Some(date.and_time(time).and_utc().timestamp_millis())
}

/// The value of a run of ASCII digits, `None` if anything else is in it.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// Whether a line starts with `YYYY-MM-DD HH:MM`.
fn looks_like_intel(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 16
        && b[..16].iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b' ',
            13 => c == b':',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(room: &str, sensor: &str, ts: i64, micros: i64) -> Reading {
        Reading {
            room: room.into(),
            sensor: sensor.into(),
            ts,
            value: Fixed(micros),
        }
    }

    fn parse(format: Format, context: &StreamContext, line: &str) -> Result<Vec<Reading>, String> {
        let mut out = Vec::new();
        parse_line(format, context, line, &mut out).map(|()| out)
    }

    fn json(line: &str) -> Result<Vec<Reading>, String> {
        parse(Format::Json, &StreamContext::default(), line)
    }

    fn intel(line: &str) -> Result<Vec<Reading>, String> {
        parse(Format::Intel, &StreamContext::default(), line)
    }

    fn keti_413_temperature() -> StreamContext {
        StreamContext {
            room: Some("413".into()),
            sensor: Some("temperature".into()),
        }
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
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
        }
        assert_eq!("KETI".parse::<Format>(), Ok(Format::Keti));
        assert_eq!(
            "csv".parse::<Format>(),
            Err("unknown format `csv` (expected json, keti or intel)".to_owned())
        );
        assert_eq!(Format::Intel.to_string(), "intel");
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
    fn blank_lines_yield_nothing() {
        for format in Format::ALL {
            assert_eq!(
                parse(format, &StreamContext::default(), "  \t\r"),
                Ok(vec![])
            );
            assert_eq!(parse(format, &StreamContext::default(), ""), Ok(vec![]));
        }
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
            Err("`ts` must be integer epoch milliseconds or an RFC 3339 string, found number `1500000000000`".to_owned())
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

    #[test]
    fn keti_lines() {
        let context = keti_413_temperature();
        assert_eq!(
            parse(Format::Keti, &context, "1377299107, 23.93"),
            Ok(vec![reading(
                "413",
                "temperature",
                1_377_299_107_000,
                23_930_000
            )])
        );
        assert_eq!(
            parse(Format::Keti, &context, " 1377299108,23.94 \r"),
            Ok(vec![reading(
                "413",
                "temperature",
                1_377_299_108_000,
                23_940_000
            )])
        );
        assert_eq!(
            parse(Format::Keti, &context, "1377299108,\t  -0.5"),
            Ok(vec![reading(
                "413",
                "temperature",
                1_377_299_108_000,
                -500_000
            )])
        );
    }

    #[test]
    fn keti_malformed_lines() {
        let context = keti_413_temperature();
        let keti = |line| parse(Format::Keti, &context, line);
        assert_eq!(
            parse(Format::Keti, &StreamContext::default(), "1377299107, 23.93"),
            Err("KETI line outside a <room>/<sensor>.csv file".to_owned())
        );
        assert_eq!(
            keti("1377299107 23.93"),
            Err("expected `<epoch seconds>, <value>`".to_owned())
        );
        assert_eq!(
            keti("13772x, 23.93"),
            Err("unparseable epoch seconds `13772x`".to_owned())
        );
        assert_eq!(keti("-5, 23.93"), Err("timestamp before 1970".to_owned()));
        assert_eq!(
            keti("1377299107, 23.93, 1"),
            Err("unparseable value `23.93, 1`".to_owned())
        );
        assert_eq!(keti("1377299107, "), Err("unparseable value ``".to_owned()));
        assert_eq!(
            keti("1377299107, nan"),
            Err("`value` is not a finite number".to_owned())
        );
    }

    #[test]
    fn intel_lines() {
        // date -u -d '2004-03-04 00:00:26' +%s -> 1078358426
        assert_eq!(
            intel("2004-03-04 00:00:26.983691 14285 1 20.5666 35.8876 46.92 2.65143"),
            Ok(vec![
                reading("1", "temperature", 1_078_358_426_983, 20_566_600),
                reading("1", "humidity", 1_078_358_426_983, 35_887_600),
                reading("1", "light", 1_078_358_426_983, 46_920_000),
                reading("1", "voltage", 1_078_358_426_983, 2_651_430),
            ])
        );
        // date -u -d '2004-03-08 00:01:42' +%s -> 1078704102; no fraction, and an empty epoch.
        assert_eq!(
            intel("2004-03-08 00:01:42  39 22.2032"),
            Ok(vec![reading(
                "39",
                "temperature",
                1_078_704_102_000,
                22_203_200
            )])
        );
        // A short fraction is tenths: ".5" is 500 ms.
        assert_eq!(
            intel("2004-03-08 00:01:42.5 7 39 22.2032\r"),
            Ok(vec![reading(
                "39",
                "temperature",
                1_078_704_102_500,
                22_203_200
            )])
        );
    }

    #[test]
    fn intel_missing_light_is_absent_not_an_error() {
        // date -u -d '2004-03-08 08:36:01' +%s -> 1078734961
        let ts = 1_078_734_961_592;
        assert_eq!(
            intel("2004-03-08 08:36:01.592835 26836 12 22.3796 43.7186  2.60491"),
            Ok(vec![
                reading("12", "temperature", ts, 22_379_600),
                reading("12", "humidity", ts, 43_718_600),
                reading("12", "voltage", ts, 2_604_910),
            ])
        );
    }

    #[test]
    fn intel_malformed_lines() {
        let mut out = vec![reading("kept", "x", 1, 1)];
        let err = parse_line(
            Format::Intel,
            &StreamContext::default(),
            "2004-03-08 00:00:34.2 1 8 22.6 -8983 abc 0.03",
            &mut out,
        );
        assert_eq!(err, Err("non-numeric light `abc`".to_owned()));
        assert_eq!(out, vec![reading("kept", "x", 1, 1)]);

        assert_eq!(
            intel("2004-13-45 25:00:00 1 2 20.0"),
            Err("unparseable date `2004-13-45 25:00:00`".to_owned())
        );
        assert_eq!(
            intel("2004-03-08 24:00:00 1 2 20.0"),
            Err("unparseable date `2004-03-08 24:00:00`".to_owned())
        );
        assert_eq!(
            intel("2004-03-08 00:00:00. 1 2 20.0"),
            Err("unparseable date `2004-03-08 00:00:00.`".to_owned())
        );
        assert_eq!(
            intel("1969-12-31 23:59:59 1 2 20.0"),
            Err("timestamp before 1970".to_owned())
        );
        assert_eq!(
            intel("2004-03-08 00:00:34 1 2"),
            Err("too few fields (4, expected at least 5)".to_owned())
        );
        assert_eq!(
            intel("2004-03-08 00:00:34 1 2 1 2 3 4 5"),
            Err("too many fields (expected at most 8)".to_owned())
        );
        assert_eq!(
            intel("2004-03-08 00:00:34 1  20.0"),
            Err("missing mote id".to_owned())
        );
        assert_eq!(
            intel("2004-03-08 00:00:34 1 x7 20.0"),
            Err("non-numeric mote id `x7`".to_owned())
        );
    }

    #[test]
    fn keti_context_from_paths() {
        assert_eq!(
            keti_context(Path::new("/data/keti/413/temperature.csv.gz")),
            keti_413_temperature()
        );
        assert_eq!(
            keti_context(Path::new("keti_ci/621A/co2.csv")),
            StreamContext {
                room: Some("621A".into()),
                sensor: Some("co2".into()),
            }
        );
        assert_eq!(
            keti_context(Path::new("temperature.csv")),
            StreamContext {
                room: None,
                sensor: Some("temperature".into()),
            }
        );
    }

    #[test]
    fn detection() {
        let keti_line = "1377299107, 23.93";
        let intel_line = "2004-03-04 00:00:26.983691 14285 1 20.5666 35.8876 46.92 2.65143";
        let json_line = r#"{"room": "413", "sensor": "t", "ts": 1, "value": 1}"#;
        let cases = [
            ("a/b.json", "garbage", Some(Format::Json)),
            ("a/b.JSONL.gz", "", Some(Format::Json)),
            ("b.ndjson", "", Some(Format::Json)),
            ("stdin", json_line, Some(Format::Json)),
            ("413/temperature.csv", keti_line, Some(Format::Keti)),
            (
                "413/temperature.csv.gz",
                "1377299107,23.93\r",
                Some(Format::Keti),
            ),
            ("413/temperature.csv", "ts, value", None),
            ("413/temperature.txt", keti_line, None),
            ("intel/1.txt", intel_line, Some(Format::Intel)),
            (
                "intel/1.csv",
                "2004-03-08 00:01:42 1 2 3",
                Some(Format::Intel),
            ),
            ("intel/1.txt", "2004-03-08T00:01:42", None),
            ("x", "", None),
        ];
        for (path, line, expected) in cases {
            assert_eq!(detect(Path::new(path), line), expected, "{path}: {line}");
        }
    }
}
