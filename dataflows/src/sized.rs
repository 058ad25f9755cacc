//! Containers sized to what they hold.
//!
//! Timely's container builder gives every session a container of its preferred capacity (8 KiB
//! of elements), however few it will hold. An operator that sends many times with a few updates
//! each (a fine tick: one or two readings per time) then allocates 8 KiB per update, and when a
//! frontier passes thousands of times at once they are all alive together: a Kafka job catching
//! up on 300,000 readings held 250 MB of mostly empty `Change` containers at its peak (heaptrack).
//! [`GiveSized::give_sized`] sends the same items in the same order, in containers of the
//! preferred size except the last, which is sized to what is left; [`MapSized::map_sized`] is
//! timely's `map` built on it, and [`MapSized::flat_map_sized`] its `flat_map`.
//!
//! ```
//! use roomflow_dataflows::sized::MapSized;
//! use timely::dataflow::operators::{Capture, ToStream};
//! use timely::dataflow::operators::capture::Extract;
//!
//! let captured = timely::example(|scope| {
//!     (1..=3).to_stream(scope).map_sized(|x: u64| x * 10).capture()
//! });
//! assert_eq!(captured.extract(), vec![(0, vec![10, 20, 30])]);
//! ```

use timely::container::buffer::default_capacity;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::{Operator, Session};
use timely::dataflow::operators::CapabilityTrait;
use timely::dataflow::StreamVec;
use timely::progress::Timestamp;

/// Sends items in containers no larger than needed.
pub trait GiveSized<D> {
    /// Sends `items` at the session's time: full containers of timely's preferred capacity, then
    /// one of exactly what is left (none when nothing is).
    fn give_sized<I: ExactSizeIterator<Item = D>>(&mut self, items: I);
}

impl<T, D, CT> GiveSized<D> for Session<'_, '_, T, CapacityContainerBuilder<Vec<D>>, CT>
where
    T: Timestamp,
    D: Clone + 'static,
    CT: CapabilityTrait<T>,
{
    fn give_sized<I: ExactSizeIterator<Item = D>>(&mut self, mut items: I) {
        let preferred = default_capacity::<D>();
        loop {
            let size = items.len().min(preferred);
            if size == 0 {
                return;
            }
            let mut container = Vec::with_capacity(size);
            container.extend(items.by_ref().take(size));
            self.give_container(&mut container);
        }
    }
}

/// Timely's `map`, with containers sized to what they hold.
pub trait MapSized<'s, T: Timestamp, D> {
    /// Applies `logic` to every item, keeping its time; the output containers are sized as
    /// [`GiveSized::give_sized`] sizes them.
    fn map_sized<D2, L>(self, logic: L) -> StreamVec<'s, T, D2>
    where
        D2: Clone + 'static,
        L: FnMut(D) -> D2 + 'static;

    /// Timely's `flat_map`, with containers sized to what they hold: each input container's
    /// results are gathered first, then sent as they are if they fill a container of timely's
    /// preferred capacity, or copied into one of their size if they do not.
    fn flat_map_sized<I, L>(self, logic: L) -> StreamVec<'s, T, I::Item>
    where
        I: IntoIterator,
        I::Item: Clone + 'static,
        L: FnMut(D) -> I + 'static;
}

impl<'s, T: Timestamp, D: Clone + 'static> MapSized<'s, T, D> for StreamVec<'s, T, D> {
    fn map_sized<D2, L>(self, mut logic: L) -> StreamVec<'s, T, D2>
    where
        D2: Clone + 'static,
        L: FnMut(D) -> D2 + 'static,
    {
        self.unary::<CapacityContainerBuilder<Vec<D2>>, _, _, _>(
            Pipeline,
            "MapSized",
            move |_, _| {
                move |input, output| {
                    input.for_each(|stamp, container| {
                        output
                            .session(&stamp)
                            .give_sized(container.drain(..).map(&mut logic));
                    });
                }
            },
        )
    }

    fn flat_map_sized<I, L>(self, mut logic: L) -> StreamVec<'s, T, I::Item>
    where
        I: IntoIterator,
        I::Item: Clone + 'static,
        L: FnMut(D) -> I + 'static,
    {
        self.unary::<CapacityContainerBuilder<Vec<I::Item>>, _, _, _>(
            Pipeline,
            "FlatMapSized",
            move |_, _| {
                let mut results = Vec::new();
                move |input, output| {
                    input.for_each(|stamp, container| {
                        results.extend(container.drain(..).flat_map(&mut logic));
                        let mut session = output.session(&stamp);
                        if results.len() >= default_capacity::<I::Item>() {
                            // Full enough: sent as it is, without copying (timely takes it).
                            session.give_container(&mut results);
                        } else {
                            session.give_sized(results.drain(..));
                        }
                    });
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use timely::dataflow::channels::pact::Pipeline;
    use timely::dataflow::operators::generic::Operator;
    use timely::dataflow::operators::ToStream;

    use super::*;

    /// The lengths and capacities of the containers `items` arrive in after `map_sized`.
    fn shapes(items: Vec<u64>) -> Vec<(usize, usize)> {
        let shapes = Arc::new(Mutex::new(Vec::new()));
        let seen = shapes.clone();
        timely::example(move |scope| {
            items.to_stream(scope).map_sized(|x| x + 1).sink(
                Pipeline,
                "Shapes",
                move |(input, _)| {
                    input.for_each(|_, container| {
                        seen.lock()
                            .unwrap()
                            .push((container.len(), container.capacity()));
                    });
                },
            );
        });
        let shapes = shapes.lock().unwrap().clone();
        shapes
    }

    #[test]
    fn a_few_items_get_a_container_of_their_size() {
        // timely's own map would give a container of 8192 / 8 = 1024 u64s.
        assert_eq!(shapes(vec![1, 2, 3]), vec![(3, 3)]);
    }

    #[test]
    fn many_items_fill_preferred_containers_then_one_of_the_rest() {
        let preferred = default_capacity::<u64>();
        assert_eq!(preferred, 1024);
        assert_eq!(
            shapes((0..2500).collect()),
            vec![(1024, 1024), (1024, 1024), (452, 452)]
        );
    }

    #[test]
    fn flat_map_sends_every_result_in_order_sized() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        timely::example(move |scope| {
            vec![1u64, 2, 3]
                .to_stream(scope)
                // 1 → [], 2 → [2], 3 → [3, 3]
                .flat_map_sized(|x| std::iter::repeat_n(x, x as usize - 1))
                .sink(Pipeline, "Collect", move |(input, _)| {
                    input.for_each(|_, container| {
                        sink.lock()
                            .unwrap()
                            .push((container.capacity(), container.clone()))
                    });
                });
        });
        assert_eq!(*seen.lock().unwrap(), vec![(3, vec![2, 3, 3])]);
    }

    #[test]
    fn items_keep_their_order_and_values() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        timely::example(move |scope| {
            (0..3000u64).to_stream(scope).map_sized(|x| x * 2).sink(
                Pipeline,
                "Collect",
                move |(input, _)| {
                    input.for_each(|_, container| sink.lock().unwrap().extend(container.drain(..)));
                },
            );
        });
        let expected: Vec<u64> = (0..3000).map(|x| x * 2).collect();
        assert_eq!(*seen.lock().unwrap(), expected);
    }
}
