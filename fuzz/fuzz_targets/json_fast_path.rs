//! Any line: wherever the hand-written scanner for the canonical JSON line answers, the general
//! JSON parser (serde_json, as roomflow builds it, without `float_roundtrip`) reads the same
//! reading; where the scanner declines, the general parser decides alone, so the two paths
//! together give the general parser's result on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roomflow::sources::formats::json_paths;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let (Some(scanned), general) = json_paths(line) {
        assert_eq!(Ok(scanned), general, "{line:?}");
    }
});
