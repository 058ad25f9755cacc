//! A partition's queue read in batches, through librdkafka's own batch call
//! (`rd_kafka_consume_batch_queue`), as kcat reads: the queue is locked once per batch instead of
//! once per message. The rdkafka crate's `PartitionQueue::poll` hands out one message per call,
//! and that alone held a consumer that does nothing else to about 40 % of kcat's rate on this
//! project's benchmark (`examples/bare_consumer`: 38–40 % by `poll`, 128–172 % in batches).
//!
//! The queue is the one `BaseConsumer::split_partition_queue` split off (librdkafka hands out a
//! new reference to it), so its wake-up callback and its place in the consumer stay as they were.

use std::ffi::CString;
use std::sync::Arc;

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::admission::Incoming;

/// How many messages one batch call takes at most.
pub const BATCH_CALL: usize = 1024;

/// What one entry of a batch is.
pub enum Polled<'m> {
    /// A message.
    Message(Incoming<'m>),
    /// The partition's end, as far as the broker has it.
    End,
    /// An error the consumer reported for the partition.
    Error(KafkaError),
}

/// One partition's queue, read in batches.
pub struct BatchQueue {
    queue: *mut rdsys::rd_kafka_queue_t,
    /// The messages of the current call (destroyed before the next).
    batch: Vec<*mut rdsys::rd_kafka_message_t>,
    /// The client the queue belongs to: it must outlive the queue.
    _consumer: Arc<dyn Send + Sync>,
}

// SAFETY: librdkafka's queue and message handles may be used from any thread; the batch buffer
// only holds pointers between a call and their destruction within `drain`.
unsafe impl Send for BatchQueue {}

impl BatchQueue {
    /// The queue of `topic`/`partition` of `consumer` (split off before), if the consumer knows
    /// the partition.
    pub fn of<C: ConsumerContext + 'static>(
        consumer: &Arc<BaseConsumer<C>>,
        topic: &str,
        partition: i32,
    ) -> Option<BatchQueue> {
        let topic = CString::new(topic).ok()?;
        // SAFETY: the client pointer is valid while `consumer` lives, which the queue keeps.
        let queue = unsafe {
            rdsys::rd_kafka_queue_get_partition(
                consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
            )
        };
        (!queue.is_null()).then(|| BatchQueue {
            queue,
            batch: vec![std::ptr::null_mut(); BATCH_CALL],
            _consumer: consumer.clone(),
        })
    }

    /// Takes up to `max` (at most [`BATCH_CALL`]) entries that are already there, without
    /// waiting, and hands each to `each` in offset order; returns how many there were.
    pub fn drain(&mut self, max: usize, mut each: impl FnMut(Polled<'_>)) -> usize {
        let max = max.min(BATCH_CALL);
        if max == 0 {
            return 0;
        }
        // SAFETY: the queue is valid (see `of`); the call writes at most `max` pointers into
        // the buffer, which holds `BATCH_CALL`.
        let got = unsafe {
            rdsys::rd_kafka_consume_batch_queue(self.queue, 0, self.batch.as_mut_ptr(), max)
        };
        if got <= 0 {
            // -1 is an invalid queue or a consumer being closed: nothing to read either way.
            return 0;
        }
        let got = got as usize;
        for &message in &self.batch[..got] {
            // SAFETY: librdkafka returned `got` valid messages, each alive until destroyed below;
            // the slices handed out borrow them only for the call of `each`.
            let message = unsafe { &*message };
            let polled = match message.err {
                rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => {
                    Polled::Message(Incoming {
                        offset: message.offset,
                        key: unsafe { bytes(message.key, message.key_len) },
                        payload: unsafe { bytes(message.payload, message.len) }.unwrap_or_default(),
                    })
                }
                rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => Polled::End,
                error => Polled::Error(KafkaError::MessageConsumption(RDKafkaErrorCode::from(
                    error,
                ))),
            };
            each(polled);
        }
        for message in &mut self.batch[..got] {
            // SAFETY: each was returned by the batch call and is destroyed once.
            unsafe { rdsys::rd_kafka_message_destroy(*message) };
            *message = std::ptr::null_mut();
        }
        got
    }
}

/// The bytes at `pointer`, `length` long; `None` for a null pointer (no key).
///
/// # Safety
/// `pointer` must be null or valid for `length` bytes for the returned lifetime.
unsafe fn bytes<'m>(pointer: *mut std::ffi::c_void, length: usize) -> Option<&'m [u8]> {
    if pointer.is_null() {
        None
    } else {
        Some(unsafe { std::slice::from_raw_parts(pointer as *const u8, length) })
    }
}

impl Drop for BatchQueue {
    fn drop(&mut self) {
        // SAFETY: this handle was obtained in `of` and is released once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue) };
    }
}
