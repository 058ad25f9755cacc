//! Plausibility ranges per sensor (`--valid temperature=-40..85`): readings outside them are dead
//! letters, not data. KETI room 419 reports 579.27 °C thousands of times; this is how it is kept
//! out of the averages without vanishing.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context};
use roomflow_dataflows::{Fixed, Reading};

/// One `sensor=min..max` range, inclusive at both ends.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidRange {
    /// The sensor it applies to.
    pub sensor: String,
    /// Least plausible value.
    pub min: f64,
    /// Greatest plausible value.
    pub max: f64,
}

impl FromStr for ValidRange {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> anyhow::Result<ValidRange> {
        let usage = || format!("expected SENSOR=MIN..MAX (e.g. temperature=-40..85), got `{text}`");
        let (sensor, range) = text.split_once('=').ok_or_else(|| anyhow!(usage()))?;
        let (min, max) = range.split_once("..").ok_or_else(|| anyhow!(usage()))?;
        let min: f64 = min.trim().parse().with_context(usage)?;
        let max: f64 = max.trim().parse().with_context(usage)?;
        if sensor.trim().is_empty() || min.is_nan() || max.is_nan() || min > max {
            bail!(usage());
        }
        Ok(ValidRange {
            sensor: sensor.trim().to_string(),
            min,
            max,
        })
    }
}

/// The longest room or sensor name accepted, in bytes. Names key every collection, every
/// MongoDB document and every alpha message; one of 100,000 characters is a broken sender, not a
/// room, and it becomes a dead letter like any other implausible reading.
pub const MAX_NAME_BYTES: usize = 256;

/// `Err(reason)` when the reading's room or sensor name is longer than [`MAX_NAME_BYTES`].
pub fn check_names(reading: &Reading) -> Result<(), String> {
    for (what, name) in [("room", &reading.room), ("sensor", &reading.sensor)] {
        if name.len() > MAX_NAME_BYTES {
            return Err(format!(
                "{what} name of {} bytes is longer than the {MAX_NAME_BYTES} allowed",
                name.len()
            ));
        }
    }
    Ok(())
}

/// All ranges, by sensor.
#[derive(Clone, Debug, Default)]
pub struct ValidRanges {
    ranges: HashMap<String, (Fixed, Fixed, String)>,
}

impl ValidRanges {
    /// Ranges from parsed `--valid` flags; a later flag for the same sensor replaces an earlier one.
    pub fn new(ranges: &[ValidRange]) -> ValidRanges {
        let ranges = ranges
            .iter()
            .map(|r| {
                let min = Fixed::from_f64(r.min).unwrap_or(Fixed(i64::MIN));
                let max = Fixed::from_f64(r.max).unwrap_or(Fixed(i64::MAX));
                (
                    r.sensor.clone(),
                    (min, max, format!("{}..{}", r.min, r.max)),
                )
            })
            .collect();
        ValidRanges { ranges }
    }

    /// `Err(reason)` when a name is longer than [`MAX_NAME_BYTES`] or the reading is outside its
    /// sensor's range.
    pub fn check(&self, reading: &Reading) -> Result<(), String> {
        check_names(reading)?;
        if self.ranges.is_empty() {
            // Without --valid, every reading: no lookup (it hashed every sensor name).
            return Ok(());
        }
        match self.ranges.get(reading.sensor.as_str()) {
            Some((min, max, text)) if reading.value < *min || reading.value > *max => Err(format!(
                "{} {} outside the plausible range {}",
                reading.sensor, reading.value, text
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_inclusive_ranges() {
        let range: ValidRange = "temperature=-40..85".parse().unwrap();
        assert_eq!(
            range,
            ValidRange {
                sensor: "temperature".into(),
                min: -40.0,
                max: 85.0
            }
        );
        let ranges = ValidRanges::new(&[range]);
        let reading = |sensor: &str, value: f64| Reading {
            room: "419".into(),
            sensor: sensor.into(),
            ts: 0,
            value: Fixed::from_f64(value).unwrap(),
        };
        assert_eq!(ranges.check(&reading("temperature", 85.0)), Ok(()));
        assert_eq!(ranges.check(&reading("temperature", -40.0)), Ok(()));
        assert_eq!(
            ranges.check(&reading("temperature", 579.27)),
            Err("temperature 579.27 outside the plausible range -40..85".to_string())
        );
        assert_eq!(
            ranges.check(&reading("co2", 9999.0)),
            Ok(()),
            "no range for co2"
        );
    }

    #[test]
    fn names_longer_than_the_limit_are_implausible() {
        let ranges = ValidRanges::new(&[]);
        let reading = |room: &str, sensor: &str| Reading {
            room: room.into(),
            sensor: sensor.into(),
            ts: 0,
            value: Fixed(0),
        };
        let longest = "r".repeat(256);
        assert_eq!(ranges.check(&reading(&longest, "co2")), Ok(()));
        assert_eq!(
            ranges.check(&reading(&"r".repeat(257), "co2")),
            Err("room name of 257 bytes is longer than the 256 allowed".to_string())
        );
        // Bytes, not characters: 86 three-byte characters are 258 bytes.
        assert_eq!(
            ranges.check(&reading("1", &"€".repeat(86))),
            Err("sensor name of 258 bytes is longer than the 256 allowed".to_string())
        );
    }

    #[test]
    fn rejects_malformed_ranges_with_an_example() {
        for bad in ["temperature", "temperature=1", "=1..2", "t=5..1", "t=a..b"] {
            let error = bad.parse::<ValidRange>().unwrap_err().to_string();
            assert!(error.contains("SENSOR=MIN..MAX"), "{bad}: {error}");
        }
    }
}
