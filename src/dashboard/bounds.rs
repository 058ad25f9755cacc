//! What the dashboard keeps of any input, at most: the limits every feed and view shares, and
//! [`excerpt`], which cuts a text to one of them. Whatever a topic or file holds, what is kept of
//! it, and so what a page is sent, is bounded by these.

pub use crate::sources::validity::MAX_NAME_BYTES;

/// The longest message (alpha value, or line of a changes file) read; a longer one is malformed.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The most of an error, a reason or a source kept to show, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;

/// The most of a dead letter's raw text kept, as the job's dead letters keep it.
pub const LINE_KEPT_BYTES: usize = 1024;

/// At most `max_bytes` of `text` (cut at a character boundary), with `…` when it was cut.
pub fn excerpt(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_cuts_at_a_character_boundary() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        // "é" is two bytes: a cut inside it goes back before it.
        assert_eq!(excerpt("aé", 2), "a…");
    }
}
