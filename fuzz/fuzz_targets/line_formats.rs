//! Any line, in each format: a parser returns readings or a reason, never panics, never both;
//! every reading it accepts is well formed, and survives `publish`'s canonical JSON unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roomflow::kafka::feed::ReadingMessage;
use roomflow::sources::formats::{parse_line, Format, StreamContext};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(line) = std::str::from_utf8(rest) else {
        return;
    };
    let format = [Format::Json, Format::Keti, Format::Intel][selector as usize % 3];
    // A KETI file's path names its room and sensor.
    let context = match format {
        Format::Keti => StreamContext {
            room: Some("413".into()),
            sensor: Some("co2".into()),
        },
        _ => StreamContext::default(),
    };
    let mut readings = Vec::new();
    match parse_line(format, &context, line, &mut readings) {
        Err(reason) => {
            assert!(readings.is_empty(), "a reason and readings for {line:?}");
            assert!(!reason.is_empty(), "an empty reason for {line:?}");
        }
        Ok(()) => {
            let expected = match format {
                Format::Intel => 0..=4,
                _ => 0..=1,
            };
            assert!(expected.contains(&readings.len()), "{line:?}");
            for reading in &readings {
                assert!(!reading.room.is_empty() && !reading.sensor.is_empty());
                let canonical =
                    serde_json::to_string(&ReadingMessage::from(reading)).expect("serializes");
                let mut again = Vec::new();
                parse_line(
                    Format::Json,
                    &StreamContext::default(),
                    &canonical,
                    &mut again,
                )
                .unwrap_or_else(|reason| panic!("{canonical} from {line:?}: {reason}"));
                assert_eq!(again, vec![reading.clone()], "{canonical} from {line:?}");
            }
        }
    }
});
