//! Any records on the state changelog topic: a checkpoint or a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roomflow::recovery::changelog::checkpoint_from_changelog;

fuzz_target!(|records: Vec<(Vec<u8>, Option<Vec<u8>>)>| {
    if let Err(error) = checkpoint_from_changelog(records) {
        assert!(!error.to_string().is_empty());
    }
});
