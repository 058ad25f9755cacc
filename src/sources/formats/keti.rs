//! The KETI layout: `<epoch seconds>, <value>` lines in a file `<room>/<sensor>.csv[.gz]`, whose
//! path names the room and sensor of every line.

use super::{check_ts, excerpt, fixed, StreamContext};
use roomflow_dataflows::{Name, Reading};
use std::path::Path;

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

pub(super) fn parse_keti(context: &StreamContext, line: &str) -> Result<Reading, String> {
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
        room: *room,
        sensor: *sensor,
        ts,
        value,
    })
}

/// Whether a line reads `<digits>,<number>`, allowing whitespace around both.
pub(super) fn looks_like_keti(line: &str) -> bool {
    line.split_once(',').is_some_and(|(seconds, value)| {
        let seconds = seconds.trim();
        !seconds.is_empty()
            && seconds.bytes().all(|b| b.is_ascii_digit())
            && value.trim().parse::<f64>().is_ok_and(f64::is_finite)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::formats::tests::{parse, reading};
    use crate::sources::formats::Format;

    fn keti_413_temperature() -> StreamContext {
        StreamContext {
            room: Some("413".into()),
            sensor: Some("temperature".into()),
        }
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
}
