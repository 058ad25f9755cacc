//! The transaction state machine against an in-memory producer that records every call: what
//! joins a transaction and when it commits, by hand-worked sequences.

use std::collections::BTreeMap;

use roomflow_dataflows::{Checkpointed, Fixed, StateKey};

use super::*;
use crate::kafka::discovery::Partition;
use crate::kafka::position::PartitionPosition;

/// What the fake broker saw and how it is to answer.
#[derive(Default)]
struct Broker {
    /// Every call, in order: `send <topic> <key>`, `offsets <n>`, `commit`, `begin`, `abort`.
    calls: Vec<String>,
    /// Messages not yet acknowledged.
    in_flight: usize,
    fatal: Option<(RDKafkaErrorCode, String)>,
    refused: Option<DeliveryFailure>,
    commit_error: Option<KafkaError>,
}

struct FakeProducer(Rc<RefCell<Broker>>);

impl TransactionalProducer for FakeProducer {
    fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.0.borrow().fatal.clone()
    }
    fn delivery_failure(&self) -> Option<DeliveryFailure> {
        self.0.borrow().refused.clone()
    }
    fn in_flight(&self) -> usize {
        self.0.borrow().in_flight
    }
    fn send(&self, topic: &str, _time: Time, key: &[u8], _value: Option<&[u8]>) {
        let mut broker = self.0.borrow_mut();
        broker.in_flight += 1;
        let call = format!("send {topic} {}", String::from_utf8_lossy(key));
        broker.calls.push(call);
    }
    fn send_offsets(&self, offsets: &TopicPartitionList) -> Result<(), KafkaError> {
        let call = format!("offsets {}", offsets.count());
        self.0.borrow_mut().calls.push(call);
        Ok(())
    }
    fn commit(&self) -> Result<(), KafkaError> {
        let mut broker = self.0.borrow_mut();
        broker.calls.push("commit".into());
        match broker.commit_error.clone() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
    fn begin(&self) -> Result<(), KafkaError> {
        self.0.borrow_mut().calls.push("begin".into());
        Ok(())
    }
    fn abort(&self) -> Result<(), KafkaError> {
        self.0.borrow_mut().calls.push("abort".into());
        Ok(())
    }
}

/// A machine over a fresh fake broker, its sink's state, and the source's in-flight flag set
/// (a mark was sent).
fn machine() -> (
    Transactions<FakeProducer>,
    Rc<RefCell<Broker>>,
    Rc<RefCell<TransactionState>>,
) {
    let broker = Rc::new(RefCell::new(Broker::default()));
    let state = TransactionState::starting_at(0);
    let transactions = Transactions::new(
        FakeProducer(broker.clone()),
        state.clone(),
        "state".to_string(),
    );
    transactions.in_flight_flag().set(1);
    (transactions, broker, state)
}

/// The checkpoint of mark `time`: room `a` changed, one partition at offset `next`.
fn checkpoint(time: Time, next: i64) -> Checkpoint<StateChange> {
    let partition = Partition {
        topic: "sensors".into(),
        partition: 0,
    };
    let position = PartitionPosition {
        partition: partition.clone(),
        next,
        newest: Some(1_000),
    };
    let room = Checkpointed::Temperature {
        room: "a".into(),
        ts: 1_000,
        value: Fixed(21_000_000),
    };
    Checkpoint {
        time,
        positions: BTreeMap::from([(partition, position)]),
        state: vec![StateChange {
            key: StateKey { room: "a".into() },
            records: vec![room],
        }],
    }
}

const RECORDS_OF_A_MARK: [&str; 3] = [
    r#"send state {"state":{"room":"a"}}"#,
    r#"send state {"position":["sensors",0]}"#,
    r#"send state "progress""#,
];

fn calls(broker: &Rc<RefCell<Broker>>) -> Vec<String> {
    std::mem::take(&mut broker.borrow_mut().calls)
}

/// The sink waits at mark 10 and its checkpoint (room `a`, the partition at 7) is assembled.
fn reach_mark_10(transactions: &Transactions<FakeProducer>, state: &RefCell<TransactionState>) {
    state.borrow_mut().wait_at(10);
    transactions
        .complete_queue()
        .borrow_mut()
        .push_back(checkpoint(10, 7));
}

#[test]
fn a_transaction_commits_once_its_checkpoint_is_in_and_every_message_is_acknowledged() {
    let (mut transactions, broker, state) = machine();
    // The sink is still producing: nothing to do.
    transactions.step(Some(None)).unwrap();
    assert!(calls(&broker).is_empty());
    // The sink waits at mark 10, whose checkpoint is not assembled yet.
    state.borrow_mut().wait_at(10);
    transactions.step(Some(None)).unwrap();
    assert!(calls(&broker).is_empty());
    // Assembled: its records and the group's offsets join; three messages are in flight.
    transactions
        .complete_queue()
        .borrow_mut()
        .push_back(checkpoint(10, 7));
    transactions.step(Some(None)).unwrap();
    let mut expected: Vec<String> = RECORDS_OF_A_MARK.map(String::from).to_vec();
    expected.push("offsets 1".into());
    assert_eq!(calls(&broker), expected);
    // Not acknowledged yet: no commit, the sink still waits, no next mark.
    broker.borrow_mut().in_flight = 1;
    transactions.step(Some(None)).unwrap();
    assert!(calls(&broker).is_empty());
    assert_eq!(state.borrow().barrier(), Some(10));
    assert_eq!(transactions.in_flight_flag().get(), 1);
    // Acknowledged: commit, the next transaction begins, the sink and the source go on.
    broker.borrow_mut().in_flight = 0;
    transactions.step(Some(None)).unwrap();
    assert_eq!(calls(&broker), ["commit", "begin"]);
    assert_eq!(state.borrow().barrier(), None);
    assert_eq!(transactions.in_flight_flag().get(), 0);
    // Once only.
    transactions.step(Some(None)).unwrap();
    assert!(calls(&broker).is_empty());
}

#[test]
fn a_transaction_waits_for_every_mongodb_write_before_its_mark() {
    let (mut transactions, broker, state) = machine();
    reach_mark_10(&transactions, &state);
    // Not every worker has reported; then writes before 9 only (one at 9 may be pending).
    transactions.step(None).unwrap();
    transactions.step(Some(Some(9))).unwrap();
    assert!(calls(&broker).is_empty());
    // Everything before 10 is written: the records join, and commit once acknowledged.
    transactions.step(Some(Some(10))).unwrap();
    broker.borrow_mut().in_flight = 0;
    transactions.step(Some(Some(10))).unwrap();
    let sent = calls(&broker);
    assert_eq!(&sent[..3], RECORDS_OF_A_MARK);
    assert_eq!(&sent[4..], ["commit", "begin"]);
}

#[test]
fn offsets_join_a_transaction_at_most_once_a_second() {
    let (mut transactions, broker, state) = machine();
    for (mark, next) in [(10, 7), (20, 9)] {
        state.borrow_mut().wait_at(mark);
        transactions
            .complete_queue()
            .borrow_mut()
            .push_back(checkpoint(mark, next));
        transactions.step(Some(None)).unwrap();
        // The fake's sends are never acknowledged by themselves.
        broker.borrow_mut().in_flight = 0;
        transactions.step(Some(None)).unwrap();
        assert_eq!(state.borrow().barrier(), None, "mark {mark} committed");
    }
    let offsets = calls(&broker)
        .iter()
        .filter(|call| call.starts_with("offsets"))
        .count();
    assert_eq!(offsets, 1);
}

#[test]
fn a_fenced_producer_stops_the_job_as_fenced_and_commits_nothing() {
    let (mut transactions, broker, state) = machine();
    reach_mark_10(&transactions, &state);
    transactions.step(Some(None)).unwrap();
    calls(&broker);
    // Fenced while the transaction flushes: its purged messages fail too, but fencing is what
    // is reported.
    broker.borrow_mut().fatal = Some((RDKafkaErrorCode::ProducerFenced, "fenced".into()));
    broker.borrow_mut().refused = Some(DeliveryFailure::NotSent {
        reason: "purged".into(),
    });
    broker.borrow_mut().in_flight = 0;
    let error = transactions.step(Some(None)).unwrap_err();
    assert!(error.is_fenced(), "{error}");
    assert!(calls(&broker).is_empty(), "nothing committed");
}

#[test]
fn a_refused_message_is_never_committed_past() {
    let (mut transactions, broker, state) = machine();
    reach_mark_10(&transactions, &state);
    transactions.step(Some(None)).unwrap();
    calls(&broker);
    // A message of the transaction was refused; its delivery report ends its flight.
    broker.borrow_mut().refused = Some(DeliveryFailure::Refused {
        topic: "alpha".into(),
        error: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
    });
    broker.borrow_mut().in_flight = 0;
    let error = transactions.step(Some(None)).unwrap_err();
    assert!(
        matches!(error, JobError::Produce { .. }),
        "{error:?} instead of a produce failure"
    );
    assert!(error.to_string().contains("not committed"), "{error}");
    assert!(calls(&broker).is_empty(), "nothing committed");
    assert_eq!(state.borrow().barrier(), Some(10));
}

#[test]
fn a_refused_commit_stops_the_job_and_says_whether_it_was_fenced() {
    for (code, fenced) in [
        (RDKafkaErrorCode::ProducerFenced, true),
        (RDKafkaErrorCode::InvalidTransactionalState, false),
    ] {
        let (mut transactions, broker, state) = machine();
        broker.borrow_mut().commit_error = Some(KafkaError::Flush(code));
        reach_mark_10(&transactions, &state);
        transactions.step(Some(None)).unwrap();
        broker.borrow_mut().in_flight = 0;
        let error = transactions.step(Some(None)).unwrap_err();
        assert_eq!(error.is_fenced(), fenced, "{error}");
        assert!(!calls(&broker).contains(&"begin".to_string()));
        assert_eq!(state.borrow().barrier(), Some(10), "the sink stays stopped");
    }
}

#[test]
fn the_end_aborts_the_open_empty_transaction() {
    let (mut transactions, broker, _) = machine();
    transactions.finish();
    assert_eq!(calls(&broker), ["abort"]);
}
