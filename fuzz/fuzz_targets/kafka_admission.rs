//! Any messages on a partition: each becomes exactly one reading, late reading or dead letter,
//! the times of their effects never decrease, and a dead letter keeps a bounded excerpt while
//! the dead-letter topic gets the message's bytes unchanged.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use roomflow::kafka::admission::{admit_messages, Rules};
use roomflow::sources::validity::ValidRanges;
use roomflow::streams::rejected::{RejectKind, EXCERPT_BYTES};
use roomflow_dataflows::Horizon;

fuzz_target!(|messages: Vec<(Option<Vec<u8>>, Vec<u8>)>| {
    let rules = Rules {
        horizon: Horizon::new(300_000, 100),
        valid: Arc::new(ValidRanges::new(&["temperature=-40..85".parse().unwrap()])),
        max_message_bytes: 2048,
        catch_up_tick_ms: 60_000,
        catch_up_lag: 10_000,
    };
    let borrowed: Vec<(Option<&[u8]>, &[u8])> = messages
        .iter()
        .map(|(key, payload)| (key.as_deref(), payload.as_slice()))
        .collect();
    let (effects, counts, times) = admit_messages(&rules, &borrowed, 1_700_000_000_000);
    assert_eq!(counts.messages, messages.len() as u64);
    assert_eq!(
        counts.readings + counts.dead_letters + counts.late,
        counts.messages,
        "every JSON message is exactly one thing"
    );
    assert_eq!(effects.readings.len() as u64, counts.readings);
    assert_eq!(
        effects.rejections.len() as u64,
        counts.dead_letters + counts.late
    );
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
    for (rejected, _) in &effects.rejections {
        let origin = rejected
            .origin
            .as_ref()
            .expect("a Kafka rejection keeps its origin");
        let (key, payload) = &messages[origin.offset as usize];
        assert_eq!(&origin.payload, payload);
        assert_eq!(&origin.key, key);
        if rejected.kind == RejectKind::DeadLetter {
            let line = rejected
                .line
                .as_deref()
                .expect("a dead letter keeps its line");
            // Invalid UTF-8 shows as U+FFFD, three bytes for one.
            assert!(line.len() <= 3 * EXCERPT_BYTES, "{} bytes kept", line.len());
            assert_eq!(
                rejected.line_bytes.is_some(),
                payload.len() > EXCERPT_BYTES,
                "the full length is given exactly when the line was cut"
            );
        }
    }
});
