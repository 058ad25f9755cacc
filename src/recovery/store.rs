//! Checkpoints in MongoDB's `_checkpoints` collection.
//!
//! A checkpoint is one head document, `_id` the job's consumer group, and its state in chunk
//! documents `<group>/<generation>/<n>` (a document holds at most 16 MiB). Chunks are written
//! first and the head last: a single-document write, so the head always names a complete
//! checkpoint, whatever is killed when (no transaction needed). The previous generation's chunks
//! are deleted afterwards.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Database;
use roomflow_dataflows::{Checkpointed, Settings};

use super::checkpoint::Checkpoint;
use crate::kafka::position::PartitionPosition;
use crate::mongo::config::Mongo;

/// The collection.
pub const COLLECTION: &str = "_checkpoints";

/// State records per chunk document: far below 16 MiB.
const RECORDS_PER_CHUNK: usize = 20_000;

/// The latest checkpoint of `group`, with the generation it was written as.
pub struct Stored {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Its generation (each write adds one).
    pub generation: i64,
    chunks: i64,
}

/// Writes checkpoints of one job.
pub struct CheckpointStore {
    db: Database,
    group: String,
    settings: Settings,
    /// Generation and chunk count of the current head, if any.
    head: Option<(i64, i64)>,
}

fn chunk_id(group: &str, generation: i64, chunk: i64) -> String {
    format!("{group}/{generation}/{chunk}")
}

impl CheckpointStore {
    /// Loads the latest checkpoint of `group`, checking it was taken with the same windows and
    /// lateness (state of other windows cannot be continued).
    pub fn open(
        mongo: &Mongo,
        group: &str,
        settings: Settings,
    ) -> anyhow::Result<(CheckpointStore, Option<Checkpoint>)> {
        let db = mongo.db.clone();
        let stored = mongo.runtime.block_on(load(&db, group)).with_context(|| {
            format!("cannot read the checkpoint of group {group:?} from MongoDB")
        })?;
        let mut store = CheckpointStore {
            db,
            group: group.to_string(),
            settings,
            head: None,
        };
        let Some((stored, window_ms, lateness_ms)) = stored else {
            return Ok((store, None));
        };
        let ours = (settings.windows.length_ms, settings.horizon().lateness_ms);
        if (window_ms, lateness_ms) != ours {
            bail!(
                "the checkpoint of group {group:?} was taken with --window {window_ms}ms and \
                 --lateness {lateness_ms}ms, this job has {}ms and {}ms. Run with the same \
                 settings, or with another --group to start over",
                ours.0,
                ours.1
            );
        }
        store.head = Some((stored.generation, stored.chunks));
        Ok((store, Some(stored.checkpoint)))
    }

    /// Writes `checkpoint` as the new head; the previous one is deleted once it is replaced.
    pub async fn save(&mut self, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        let generation = self.head.map_or(1, |(generation, _)| generation + 1);
        let chunks = chunk_documents(
            &self.group,
            generation,
            &checkpoint.state,
            RECORDS_PER_CHUNK,
        );
        let statements: Vec<Bson> = chunks
            .iter()
            .map(|chunk| {
                Bson::Document(doc! {
                    "q": { "_id": chunk.get_str("_id").expect("chunks have an id") },
                    "u": chunk,
                    "upsert": true,
                })
            })
            .collect();
        for batch in statements.chunks(8) {
            command(
                &self.db,
                doc! { "update": COLLECTION, "updates": batch, "ordered": false },
            )
            .await?;
        }
        let positions: Vec<Bson> = checkpoint
            .positions
            .values()
            .map(|position| {
                Bson::Document(doc! {
                    "topic": &position.partition.topic,
                    "partition": position.partition.partition,
                    "next": position.next,
                    "newest": position.newest.map(Bson::Int64).unwrap_or(Bson::Null),
                })
            })
            .collect();
        let head = doc! {
            "_id": &self.group,
            "time": checkpoint.time as i64,
            "generation": generation,
            "chunks": chunks.len() as i64,
            "records": checkpoint.state.len() as i64,
            "window_ms": self.settings.windows.length_ms,
            "lateness_ms": self.settings.horizon().lateness_ms,
            "positions": positions,
            "written_at": mongodb::bson::DateTime::now(),
        };
        command(
            &self.db,
            doc! { "update": COLLECTION, "updates": [ { "q": { "_id": &self.group }, "u": head, "upsert": true } ] },
        )
        .await?;
        if let Some((old, old_chunks)) = self.head.replace((generation, chunks.len() as i64)) {
            let deletes: Vec<Bson> = (0..old_chunks)
                .map(|n| {
                    Bson::Document(
                        doc! { "q": { "_id": chunk_id(&self.group, old, n) }, "limit": 1 },
                    )
                })
                .collect();
            for batch in deletes.chunks(1_000) {
                // Leftovers only cost space: the head no longer names them.
                if let Err(error) = command(
                    &self.db,
                    doc! { "delete": COLLECTION, "deletes": batch, "ordered": false },
                )
                .await
                {
                    tracing::warn!(%error, "cannot delete an old checkpoint");
                }
            }
        }
        Ok(())
    }
}

/// The chunk documents of `state`, `per_chunk` records each: `_id` `<group>/<generation>/<n>`,
/// the records as one JSON array.
fn chunk_documents(
    group: &str,
    generation: i64,
    state: &[Checkpointed],
    per_chunk: usize,
) -> Vec<Document> {
    state
        .chunks(per_chunk)
        .enumerate()
        .map(|(n, records)| {
            let records = serde_json::to_string(records).expect("records serialize");
            doc! { "_id": chunk_id(group, generation, n as i64), "records": records }
        })
        .collect()
}

/// The records of chunk `id` of `_checkpoints`: anything else is an error, never a panic (the
/// fuzz target `checkpoint_chunk` feeds it arbitrary documents).
pub fn read_chunk(id: &str, chunk: &Document) -> anyhow::Result<Vec<Checkpointed>> {
    let records = chunk
        .get_str("records")
        .with_context(|| format!("checkpoint chunk {id} has no records"))?;
    serde_json::from_str(records).with_context(|| format!("checkpoint chunk {id} is not readable"))
}

async fn command(db: &Database, command: Document) -> anyhow::Result<()> {
    let answer = db.run_command(command).await?;
    if let Ok(errors) = answer.get_array("writeErrors") {
        bail!("MongoDB rejected a checkpoint write: {errors:?}");
    }
    Ok(())
}

/// Numbers come back as 32- or 64-bit integers, whichever fits.
fn integer(document: &Document, field: &str) -> anyhow::Result<i64> {
    match document.get(field) {
        Some(Bson::Int64(value)) => Ok(*value),
        Some(Bson::Int32(value)) => Ok(*value as i64),
        other => bail!("checkpoint field {field:?} is {other:?}, not an integer"),
    }
}

/// The head and state of `group`'s checkpoint, with its window and lateness.
async fn load(db: &Database, group: &str) -> anyhow::Result<Option<(Stored, i64, i64)>> {
    let collection = db.collection::<Document>(COLLECTION);
    let Some(head) = collection.find_one(doc! { "_id": group }).await? else {
        return Ok(None);
    };
    let generation = integer(&head, "generation")?;
    let chunks = integer(&head, "chunks")?;
    let mut state = Vec::new();
    for n in 0..chunks {
        let id = chunk_id(group, generation, n);
        let chunk = collection
            .find_one(doc! { "_id": &id })
            .await?
            .with_context(|| format!("checkpoint chunk {id} is missing"))?;
        state.extend(read_chunk(&id, &chunk)?);
    }
    let mut positions = BTreeMap::new();
    for position in head.get_array("positions")? {
        let Bson::Document(position) = position else {
            bail!("a checkpoint position is not a document");
        };
        let partition = crate::kafka::discovery::Partition {
            topic: position.get_str("topic")?.to_string(),
            partition: integer(position, "partition")? as i32,
        };
        let newest = match position.get("newest") {
            Some(Bson::Null) | None => None,
            Some(_) => Some(integer(position, "newest")?),
        };
        positions.insert(
            partition.clone(),
            PartitionPosition {
                partition,
                next: integer(position, "next")?,
                newest,
            },
        );
    }
    let checkpoint = Checkpoint {
        time: integer(&head, "time")? as u64,
        positions,
        state,
    };
    Ok(Some((
        Stored {
            checkpoint,
            generation,
            chunks,
        },
        integer(&head, "window_ms")?,
        integer(&head, "lateness_ms")?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomflow_dataflows::{Fixed, RoomAverage};

    fn temperature(room: &str, ts: i64) -> Checkpointed {
        Checkpointed::Temperature {
            room: room.into(),
            ts,
            value: Fixed(21_500_000),
        }
    }

    #[test]
    fn state_is_written_in_numbered_chunks_and_read_back_whole() {
        let state = vec![
            Checkpointed::Room(RoomAverage {
                room: "a".into(),
                sensor: "co2".into(),
                count: 2,
                sum: 900_000_000,
            }),
            temperature("a", 1),
            temperature("a", 2),
            temperature("b", 3),
            temperature("b", 4),
        ];
        // Five records, two per chunk: 2 + 2 + 1.
        let chunks = chunk_documents("job", 7, &state, 2);
        let ids: Vec<&str> = chunks.iter().map(|c| c.get_str("_id").unwrap()).collect();
        assert_eq!(ids, vec!["job/7/0", "job/7/1", "job/7/2"]);
        let mut read = Vec::new();
        for chunk in &chunks {
            read.extend(read_chunk(chunk.get_str("_id").unwrap(), chunk).unwrap());
        }
        assert_eq!(read, state);
        assert!(chunk_documents("job", 1, &[], 2).is_empty());
    }

    #[test]
    fn an_unreadable_chunk_names_itself() {
        let error = read_chunk("job/3/1", &doc! { "_id": "job/3/1", "records": "[{" }).unwrap_err();
        assert!(
            format!("{error:#}").contains("checkpoint chunk job/3/1 is not readable"),
            "{error:#}"
        );
        let error = read_chunk("job/3/2", &doc! { "_id": "job/3/2" }).unwrap_err();
        assert!(
            format!("{error:#}").contains("checkpoint chunk job/3/2 has no records"),
            "{error:#}"
        );
    }
}
