//! Updates held by dataflow time until the input frontier passes them: the loop every operator
//! that acts on whole times (sinks, the deltas operator, checkpoint gathering) would otherwise
//! write by hand.
//!
//! Timely delivers a time's updates in any number of batches, interleaved with other times; an
//! operator that must see all of a time at once (to form one change per key, to write a time's
//! lines sorted, to apply updates in time order) holds them here and takes each time out once its
//! input frontier has passed it, least time first.
//!
//! ```
//! use roomflow_dataflows::HeldByTime;
//!
//! let mut held = HeldByTime::default();
//! held.entry(20).push("b");
//! held.entry(10).push("a");
//! held.entry(20).push("c");
//! // The frontier at 20: time 10 is complete, 20 is not.
//! assert_eq!(held.pop_complete(Some(20)), Some((10, (), vec!["a"])));
//! assert_eq!(held.pop_complete(Some(20)), None);
//! // The input is done: everything is complete.
//! assert_eq!(held.pop_complete(None), Some((20, (), vec!["b", "c"])));
//! ```

use std::collections::BTreeMap;

use crate::horizon::Time;

/// Items held per time, each time with a token made when its first item arrived (typically the
/// capability to send that time's output at; `()` for a sink).
pub struct HeldByTime<D, C = ()> {
    by_time: BTreeMap<Time, (C, Vec<D>)>,
    /// Emptied vectors given back with [`HeldByTime::recycle`], reused for new times: a time's
    /// vector then starts with room instead of growing (and copying) from empty every time.
    spare: Vec<Vec<D>>,
}

/// How many emptied vectors are kept for reuse: a few times are in flight at once.
const SPARE: usize = 4;

impl<D, C> Default for HeldByTime<D, C> {
    fn default() -> Self {
        HeldByTime {
            by_time: BTreeMap::new(),
            spare: Vec::new(),
        }
    }
}

impl<D, C> HeldByTime<D, C> {
    /// The items held at `time`, making its token with `token` if it is the first.
    pub fn entry_with(&mut self, time: Time, token: impl FnOnce() -> C) -> &mut Vec<D> {
        &mut self
            .by_time
            .entry(time)
            .or_insert_with(|| (token(), self.spare.pop().unwrap_or_default()))
            .1
    }

    /// Takes out the least time the `frontier` has passed (`None`: the input is complete, so
    /// every time has), with its token and items in arrival order.
    pub fn pop_complete(&mut self, frontier: Option<Time>) -> Option<(Time, C, Vec<D>)> {
        let entry = self.by_time.first_entry()?;
        if frontier.is_some_and(|frontier| frontier <= *entry.key()) {
            return None;
        }
        let (time, (token, items)) = entry.remove_entry();
        Some((time, token, items))
    }

    /// Gives back a vector taken out by [`HeldByTime::pop_complete`], for a later time to reuse.
    pub fn recycle(&mut self, mut items: Vec<D>) {
        if self.spare.len() < SPARE {
            items.clear();
            self.spare.push(items);
        }
    }

    /// The least time held.
    pub fn first_time(&self) -> Option<Time> {
        self.by_time.keys().next().copied()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}

impl<D> HeldByTime<D, ()> {
    /// The items held at `time`.
    pub fn entry(&mut self, time: Time) -> &mut Vec<D> {
        self.entry_with(time, || ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_out_in_order_once_the_frontier_passes_them() {
        let mut held: HeldByTime<&str, u32> = HeldByTime::default();
        let mut tokens_made = 0;
        for (time, item) in [(30, "x"), (10, "a"), (30, "y"), (20, "m"), (10, "b")] {
            held.entry_with(time, || {
                tokens_made += 1;
                tokens_made
            })
            .push(item);
        }
        // One token per time, made on its first item: 30 → 1, 10 → 2, 20 → 3.
        assert_eq!(tokens_made, 3);
        assert_eq!(held.pop_complete(Some(10)), None);
        assert_eq!(held.pop_complete(Some(21)), Some((10, 2, vec!["a", "b"])));
        assert_eq!(held.pop_complete(Some(21)), Some((20, 3, vec!["m"])));
        assert_eq!(held.pop_complete(Some(21)), None);
        assert!(!held.is_empty());
        assert_eq!(held.pop_complete(None), Some((30, 1, vec!["x", "y"])));
        assert!(held.is_empty());
        assert_eq!(held.pop_complete(None), None);
    }

    #[test]
    fn a_recycled_vector_serves_the_next_time_with_its_room() {
        let mut held: HeldByTime<u64> = HeldByTime::default();
        held.entry(1).extend(0..100);
        let (_, (), items) = held.pop_complete(None).unwrap();
        assert_eq!(items.len(), 100);
        let capacity = items.capacity();
        held.recycle(items);
        let reused = held.entry(2);
        assert!(reused.is_empty());
        assert_eq!(reused.capacity(), capacity);
        reused.push(7);
        assert_eq!(held.pop_complete(None), Some((2, (), vec![7])));
    }
}
