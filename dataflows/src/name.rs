//! `Name`: the short strings that key everything (rooms, sensors), interned to 4 bytes.
//!
//! Every key and record of the job carries a room and a sensor name, and at a portfolio's size
//! (100,000 rooms, each key held in an aggregate, a window, a held reading and an output record)
//! the names were most of the state: 24 bytes each, inline or behind an `Arc`. A name is now an
//! index into a process-wide table of the distinct names seen, each kept once for the life of the
//! process (a portfolio's rooms and sensors: about 80 bytes each, 8 MB for 100,000 rooms).
//!
//! - **Equality** is the index's: one integer comparison.
//! - **Order** is exactly the byte-wise order of the strings (outputs and tables sorted by name
//!   stay sorted as before): equal indices are equal, others compare their strings.
//! - **Hash** is the string's, computed once when the name is interned and kept beside it: an
//!   index depends on the order in which a process met its names, and exchanging a key between
//!   processes (`-n 2`) must send it to the same worker from either side.
//! - **Serialized** as the string; a name read back is interned again by the receiving process.
//!
//! Interning a string looks first in a small cache of the thread (most readings repeat a name
//! recently seen), then in the shared map, which takes a lock only to add a name.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::Deref;
use std::sync::LazyLock;

use dashmap::DashMap;
use rustc_hash::FxHasher;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A room or sensor name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name(u32);

/// A distinct name, as the table keeps it.
struct Interned {
    text: &'static str,
    /// The string's hash, the same in every process.
    hash: u64,
}

/// The names by index: append-only, read without locks.
static NAMES: boxcar::Vec<Interned> = boxcar::Vec::new();

/// The index of each name.
static INDICES: LazyLock<DashMap<&'static str, u32, BuildHasherDefault<FxHasher>>> =
    LazyLock::new(DashMap::default);

/// Slots of the thread's cache of recently interned names (a power of two).
const CACHE_SLOTS: usize = 1024;

thread_local! {
    /// Recently interned names, each in the slot its hash picks (a newer one replaces it).
    static RECENT: RefCell<Vec<Option<(&'static str, Name)>>> =
        RefCell::new(vec![None; CACHE_SLOTS]);
}

fn content_hash(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(text.as_bytes());
    hasher.finish()
}

impl Name {
    /// The name as a string slice.
    #[inline]
    pub fn as_str(&self) -> &'static str {
        self.interned().text
    }

    #[inline]
    fn interned(&self) -> &'static Interned {
        // A `Name` is made only by `intern`, after its entry was pushed.
        NAMES.get(self.0 as usize).expect("an interned name")
    }

    fn intern(text: &str) -> Name {
        let hash = content_hash(text);
        let slot = hash as usize & (CACHE_SLOTS - 1);
        let cached = RECENT.with_borrow(|recent| match recent[slot] {
            Some((kept, name)) if kept == text => Some(name),
            _ => None,
        });
        if let Some(name) = cached {
            return name;
        }
        let name = match INDICES.get(text) {
            Some(index) => Name(*index),
            None => Self::add(text, hash),
        };
        RECENT.with_borrow_mut(|recent| recent[slot] = Some((name.as_str(), name)));
        name
    }

    #[cold]
    fn add(text: &str, hash: u64) -> Name {
        // Called after the map had no such name. The entry holds its shard's lock: a name racing
        // in from another thread finds the index this one pushes, or pushes its own first (and
        // this copy of the string is then never used: rare, and a few bytes).
        let text: &'static str = Box::leak(text.into());
        let index = *INDICES.entry(text).or_insert_with(|| {
            let index = NAMES.push(Interned { text, hash });
            u32::try_from(index).expect("fewer than 4 billion distinct names")
        });
        Name(index)
    }
}

impl From<&str> for Name {
    #[inline]
    fn from(text: &str) -> Name {
        Name::intern(text)
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
        if self.0 == other.0 {
            return Ordering::Equal;
        }
        self.as_str().cmp(other.as_str())
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
        state.write_u64(self.interned().hash);
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
    fn hashes_the_string_whatever_the_index() {
        // Two processes meet their names in different orders; an exchange routes by this hash.
        let hash_of = |name: Name| {
            let mut hasher = FxHasher::default();
            name.hash(&mut hasher);
            hasher.finish()
        };
        let mut text_hasher = FxHasher::default();
        text_hasher.write_u64(content_hash("hashes-room-7"));
        assert_eq!(hash_of(Name::from("hashes-room-7")), text_hasher.finish());
        assert_ne!(
            hash_of(Name::from("hashes-room-7")),
            hash_of(Name::from("hashes-room-8"))
        );
    }

    #[test]
    fn threads_racing_to_intern_agree() {
        // Eight threads intern the same 2,000 new names, each in its own order, and beyond the
        // cache's slots: every name gets one index, shared by all of them.
        let texts: Vec<String> = (0..2_000).map(|i| format!("race-{i}")).collect();
        let seen: Vec<Vec<(String, Name)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let texts = &texts;
                    scope.spawn(move || {
                        let mut order: Vec<&String> = texts.iter().collect();
                        order.rotate_left(t * 250);
                        order
                            .into_iter()
                            .map(|text| (text.clone(), Name::from(text.as_str())))
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let first: std::collections::HashMap<&String, Name> =
            seen[0].iter().map(|(t, n)| (t, *n)).collect();
        for thread in &seen {
            for (text, name) in thread {
                assert_eq!(first[text], *name, "{text}");
                assert_eq!(name.as_str(), text);
            }
        }
        let distinct: std::collections::HashSet<Name> = first.values().copied().collect();
        assert_eq!(distinct.len(), texts.len());
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
