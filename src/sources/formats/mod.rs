//! Line parsers for the input formats: JSON lines, the KETI layout and the Intel Berkeley lab
//! format, plus guessing which one a file is in.
//!
//! Everything here is pure: a line goes in, readings (or a short human reason why not) come out.
//! Reading files, decompressing and counting rejected lines belong to the callers.
//!
//! - `mod.rs`: [`Format`], [`StreamContext`], [`parse_line`] dispatching to the format's parser,
//!   [`detect`], and the checks every parser shares (timestamp range, fixed-point values,
//!   excerpts for messages).
//! - `json.rs`: JSON lines: the canonical shape by the scanner, anything else by a general
//!   parser that words every error.
//! - `canonical.rs`: the hand-written scanner for the canonical JSON line.
//! - `keti.rs`: the KETI layout, `<epoch seconds>, <value>` lines in `<room>/<sensor>.csv[.gz]`
//!   files, and [`keti_context`] reading room and sensor from such a path.
//! - `intel.rs`: the Intel Berkeley lab format, four sensors per line.

use roomflow_dataflows::{Fixed, Name, Reading};
use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

mod canonical;
mod intel;
mod json;
mod keti;

use intel::{looks_like_intel, parse_intel};
use json::parse_json;
pub use keti::keti_context;
use keti::{looks_like_keti, parse_keti};

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

/// A JSON line read straight from its bytes by the canonical-line scanner, if it has the
/// canonical shape (see `canonical.rs`); `None` otherwise, when [`parse_line`] must read it.
/// A line it reads is UTF-8 and gives what [`parse_line`] gives, so callers need not check it.
pub fn scan_json_line(line: &[u8]) -> Option<Reading> {
    canonical::scan_canonical(line)
}

/// For the `json_fast_path` fuzz target and the tests: what the canonical-line scanner reads from
/// `line` (`None`: it leaves the line to the general parser), and what the general parser does.
/// Wherever the first is `Some`, the second must be the same reading.
#[doc(hidden)]
pub fn json_paths(line: &str) -> (Option<Reading>, Result<Reading, String>) {
    (
        canonical::scan_canonical(line.as_bytes()),
        json::parse_json_general(line),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn reading(room: &str, sensor: &str, ts: i64, micros: i64) -> Reading {
        Reading {
            room: room.into(),
            sensor: sensor.into(),
            ts,
            value: Fixed(micros),
        }
    }

    pub(super) fn parse(
        format: Format,
        context: &StreamContext,
        line: &str,
    ) -> Result<Vec<Reading>, String> {
        let mut out = Vec::new();
        parse_line(format, context, line, &mut out).map(|()| out)
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
