//! Any document in `_checkpoints`: its records or a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mongodb::bson::Document;
use roomflow::recovery::store::read_chunk;

fuzz_target!(|data: &[u8]| {
    // Raw BSON, as the server would hand it over; and the records field as text alone.
    if let Ok(document) = Document::from_reader(data) {
        let _ = read_chunk("group/1/0", &document);
    }
    if let Ok(records) = std::str::from_utf8(data) {
        let document = mongodb::bson::doc! { "records": records };
        let _ = read_chunk("group/1/0", &document);
    }
});
