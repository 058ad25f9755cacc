//! The Intel Berkeley lab format: `<date> <time> <epoch> <mote> <temperature> <humidity> <light>
//! <voltage>`, one line per mote and moment, up to four readings each.

use super::{check_ts, excerpt, fixed};
use roomflow_dataflows::{Name, Reading};

/// The Intel lab sensors, in the order of their columns (5th to 8th).
const INTEL_SENSORS: [&str; 4] = ["temperature", "humidity", "light", "voltage"];

pub(super) fn parse_intel(line: &str, out: &mut Vec<Reading>) -> Result<(), String> {
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
                room,
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
pub(super) fn looks_like_intel(line: &str) -> bool {
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
    use crate::sources::formats::tests::{parse, reading};
    use crate::sources::formats::{parse_line, Format, StreamContext};

    fn intel(line: &str) -> Result<Vec<Reading>, String> {
        parse(Format::Intel, &StreamContext::default(), line)
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

    /// Found by the line_formats fuzz target: a humidity of 3,772,913,729,908 became a reading
    /// whose value did not survive the JSON outputs (it read back 512 millionths off). Values
    /// over about 2.25 billion are out of range.
    #[test]
    fn intel_values_beyond_what_the_outputs_keep_are_out_of_range() {
        assert_eq!(
            intel("2404-02-20 00:59:16.05 7 1 1.984 3772913729908 .664"),
            Err("`humidity` is out of range".to_owned())
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
}
