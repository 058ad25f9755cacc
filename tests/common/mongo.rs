//! Helpers for the tests against a MongoDB-protocol server: the address (`ROOMFLOW_TEST_MONGO`,
//! which `scripts/test.sh` sets, else the local stand-in `scripts/mongo.sh start` runs), and
//! reading collections back.

use std::collections::BTreeMap;
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Client;

/// The collections the sink writes, besides the optional `readings`.
pub const COLLECTIONS: [&str; 5] = [
    "room_averages",
    "window_averages",
    "temperature_deltas",
    "dead_letters",
    "late_readings",
];

/// The server the tests use (not `MONGO_URI`, which would turn the sink on in every test).
pub fn mongo_uri() -> String {
    std::env::var("ROOMFLOW_TEST_MONGO").unwrap_or_else(|_| "mongodb://127.0.0.1:27017".into())
}

fn client(uri: &str) -> Client {
    let mut options = mongodb::options::ClientOptions::parse(uri).run().unwrap();
    options.server_selection_timeout = Some(Duration::from_secs(10));
    Client::with_options(options).unwrap()
}

/// Fails with instructions unless the server answers.
pub fn require_mongo() {
    if let Err(error) = client(&mongo_uri())
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .run()
    {
        panic!(
            "no MongoDB at {} ({error}): start one with scripts/mongo.sh start, or set ROOMFLOW_TEST_MONGO",
            mongo_uri()
        );
    }
}

/// Small integers come back as 32-bit ones: compare numbers as 64-bit.
fn normalize(value: Bson) -> Bson {
    match value {
        Bson::Int32(n) => Bson::Int64(n as i64),
        Bson::Document(document) => Bson::Document(
            document
                .into_iter()
                .map(|(k, v)| (k, normalize(v)))
                .collect(),
        ),
        Bson::Array(values) => Bson::Array(values.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// Every document of `collection` in `db`, by `_id`.
pub fn documents(uri: &str, db: &str, collection: &str) -> BTreeMap<String, Document> {
    let cursor = client(uri)
        .database(db)
        .collection::<Document>(collection)
        .find(doc! {})
        .run()
        .unwrap();
    cursor
        .map(|document| {
            let Bson::Document(document) = normalize(Bson::Document(document.unwrap())) else {
                unreachable!()
            };
            (document.get_str("_id").unwrap().to_string(), document)
        })
        .collect()
}

/// Every collection the sink writes, by name.
pub fn all_documents(uri: &str, db: &str) -> BTreeMap<&'static str, BTreeMap<String, Document>> {
    COLLECTIONS
        .iter()
        .map(|collection| (*collection, documents(uri, db, collection)))
        .collect()
}

/// Asserts that `written` holds exactly the documents of `expected`, collection by collection;
/// every collection but `readings` must have some.
pub fn assert_same_documents(
    expected: &BTreeMap<&'static str, BTreeMap<String, Document>>,
    written: &BTreeMap<&'static str, BTreeMap<String, Document>>,
) {
    for (collection, documents) in expected {
        assert!(
            !documents.is_empty() || collection.ends_with("readings"),
            "{collection}"
        );
        assert_eq!(written[collection].len(), documents.len(), "{collection}");
        for (id, document) in documents {
            assert_eq!(
                written[collection].get(id),
                Some(document),
                "{collection} {id}"
            );
        }
    }
}

/// The checkpoint head of `group`, if any.
pub fn checkpoint_head(uri: &str, db: &str, group: &str) -> Option<Document> {
    client(uri)
        .database(db)
        .collection::<Document>("_checkpoints")
        .find_one(doc! { "_id": group })
        .run()
        .unwrap()
}
