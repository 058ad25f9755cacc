//! JSON written by hand for the output records, their keys and the change envelope: the bytes
//! serde_json writes for the same values, without serde's call per token.
//!
//! Writing the final state was an eighth of a replay's instructions, most of it serde_json's
//! machinery around very small records (escaping every field name on every line; about 2,000
//! instructions per temperature delta). The shapes here are fixed, so field names are written as
//! literals, strings are escaped only when they need it, and numbers still go through serde_json
//! (its integer and float formatting, `null` for a NaN average). The tests compare every
//! record, key and envelope with serde_json's own output on random values, names with quotes,
//! backslashes, control characters and any Unicode included.

use serde::Serialize;

/// A value that writes itself as JSON, byte for byte as `serde_json::to_writer` would.
pub trait WriteJson {
    /// Appends this value's JSON to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Appends `text` as a JSON string.
#[inline]
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    // serde_json escapes exactly these bytes: control characters, `"` and `\`.
    if text
        .bytes()
        .all(|byte| byte >= 0x20 && byte != b'"' && byte != b'\\')
    {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, text).expect("strings serialize");
    }
}

/// Appends a number (or anything else serde_json writes without error) as serde_json writes it.
#[inline]
pub fn write_number<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(&mut *out, value).expect("numbers serialize");
}

/// Writes a JSON object of literal field names, in order: `str` values as strings, `num` values
/// as serde_json writes numbers. `write_object!(out, "room": str &room, "ts": num ts)`.
macro_rules! write_object {
    ($out:expr, $first:literal: $first_kind:ident $first_value:expr
     $(, $name:literal: $kind:ident $value:expr)* $(,)?) => {{
        let out: &mut Vec<u8> = $out;
        out.extend_from_slice(concat!("{\"", $first, "\":").as_bytes());
        $crate::json::write_object!(@value out, $first_kind, $first_value);
        $(
            out.extend_from_slice(concat!(",\"", $name, "\":").as_bytes());
            $crate::json::write_object!(@value out, $kind, $value);
        )*
        out.push(b'}');
    }};
    (@value $out:ident, str, $value:expr) => {
        $crate::json::write_str($out, $value)
    };
    (@value $out:ident, num, $value:expr) => {
        $crate::json::write_number($out, &$value)
    };
}
pub(crate) use write_object;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "",
            "413",
            "a\"b",
            "back\\slash",
            "tab\there",
            "nul\0",
            "\u{7f}del",
            "été 🌡",
            "\u{1f}",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn numbers_are_serde_jsons() {
        let mut out = Vec::new();
        write_number(&mut out, &f64::NAN);
        write_number(&mut out, &-0.5f64);
        write_number(&mut out, &i64::MIN);
        assert_eq!(out, b"null-0.5-9223372036854775808");
    }
}
