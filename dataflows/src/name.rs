//! `Name`: the short strings that key everything (rooms, sensors), compared as integers.
//!
//! Arrangements sort and hash keys over and over. A name of at most 16 bytes is kept inline as a
//! big-endian `u128` with its length, so comparing two names is one integer comparison and
//! hashing one integer; longer names live behind an `Arc<str>` and compare as strings. The order
//! is exactly the byte-wise order of the strings either way.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const INLINE: usize = 16;

/// A room or sensor name.
#[derive(Clone)]
pub struct Name(Repr);

#[derive(Clone)]
enum Repr {
    /// Bytes zero-padded to 16; the length tells `"a"` from `"a\0"`.
    Inline {
        bytes: [u8; INLINE],
        len: u8,
    },
    Heap(Arc<str>),
}

impl Name {
    /// The name as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { bytes, len } => {
                // SAFETY: an inline name is made only by `From<&str>`, which copies the whole
                // string: its first `len` bytes are that string's, valid UTF-8. (Checking them
                // again on every use was 4 % of replay's instructions.)
                unsafe { std::str::from_utf8_unchecked(&bytes[..*len as usize]) }
            }
            Repr::Heap(text) => text,
        }
    }
}

impl From<&str> for Name {
    #[inline]
    fn from(text: &str) -> Name {
        if text.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            Name(Repr::Inline {
                bytes,
                len: text.len() as u8,
            })
        } else {
            Name(Repr::Heap(Arc::from(text)))
        }
    }
}

impl From<String> for Name {
    fn from(text: String) -> Name {
        Name::from(text.as_str())
    }
}

impl Default for Name {
    fn default() -> Name {
        Name::from("")
    }
}

impl Deref for Name {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Name) -> bool {
        match (&self.0, &other.0) {
            (Repr::Inline { bytes: a, len: la }, Repr::Inline { bytes: b, len: lb }) => {
                a == b && la == lb
            }
            _ => self.as_str() == other.as_str(),
        }
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Ord for Name {
    #[inline]
    fn cmp(&self, other: &Name) -> Ordering {
        match (&self.0, &other.0) {
            (Repr::Inline { bytes: a, len: la }, Repr::Inline { bytes: b, len: lb }) => {
                // Zero padding orders like the strings, except that a string ordered before its
                // own zero-extension must come first: the length settles that tie.
                u128::from_be_bytes(*a)
                    .cmp(&u128::from_be_bytes(*b))
                    .then(la.cmp(lb))
            }
            _ => self.as_str().cmp(other.as_str()),
        }
    }
}

impl PartialOrd for Name {
    #[inline]
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for Name {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Equal names have the same representation (up to 16 bytes is always inline).
        match &self.0 {
            Repr::Inline { bytes, len } => {
                state.write_u128(u128::from_ne_bytes(*bytes));
                state.write_u8(*len);
            }
            Repr::Heap(text) => text.hash(state),
        }
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Name, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Name, E> {
                Ok(Name::from(text))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_exactly_like_the_strings() {
        let words = [
            "",
            "\0",
            "a",
            "a\0",
            "a\0b",
            "ab",
            "b",
            "r001",
            "r010",
            "r1",
            "temperature",
            "0123456789abcdef",
            "0123456789abcdefg",
            "0123456789abcdeg",
            "zzzzzzzzzzzzzzzzzz",
            "é",
        ];
        for x in words {
            for y in words {
                let (a, b) = (Name::from(x), Name::from(y));
                assert_eq!(a.cmp(&b), x.cmp(y), "{x:?} vs {y:?}");
                assert_eq!(a == b, x == y, "{x:?} == {y:?}");
            }
            assert_eq!(Name::from(x).as_str(), x);
        }
    }

    #[test]
    fn round_trips_through_serde() {
        for text in ["413", "a-rather-long-room-name-beyond-16"] {
            let name = Name::from(text);
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Name>(&json).unwrap(), name);
        }
    }
}
