//! Any file name and first line: format detection answers or declines, never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use roomflow::sources::formats::detect;

fuzz_target!(|input: (String, String)| {
    let (name, first_line) = input;
    if name.contains('\0') {
        return;
    }
    let _ = detect(Path::new(&name), &first_line);
});
