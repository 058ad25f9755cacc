//! Any bytes, any buffer size and limit: the bounded line reader gives exactly what splitting
//! the bytes at each newline gives, cut to the limit, and says so when it cut.
#![no_main]

use std::io::BufReader;

use libfuzzer_sys::fuzz_target;
use roomflow::sources::bounded::{read_line, LineRead};

fuzz_target!(|input: (u8, u8, Vec<u8>)| {
    let (capacity, limit, bytes) = input;
    let (capacity, limit) = (capacity as usize % 64 + 1, limit as usize % 64 + 1);
    // The reference: split at newlines; a trailing newline ends the last line, not a new one.
    let mut expected: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if expected.last().is_some_and(|last| last.is_empty()) {
        expected.pop();
    }
    let mut reader = BufReader::with_capacity(capacity, bytes.as_slice());
    let mut line = Vec::new();
    for whole in expected {
        let read = read_line(&mut reader, &mut line, limit).expect("reading a slice");
        assert_eq!(line.as_slice(), &whole[..whole.len().min(limit)]);
        if whole.len() > limit {
            assert_eq!(
                read,
                LineRead::TooLong {
                    length: whole.len() as u64
                }
            );
        } else {
            assert_eq!(read, LineRead::Line);
        }
    }
    assert_eq!(
        read_line(&mut reader, &mut line, limit).unwrap(),
        LineRead::End
    );
});
