//! Connecting to MongoDB: the command-line options, a client on its own tokio runtime, the
//! start-up check, and the indexes of the collections.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mongodb::bson::doc;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database, IndexModel};

use super::documents::Target;

/// How long the start-up check waits for the server.
const REACHABLE_WITHIN: Duration = Duration::from_secs(10);

/// MongoDB options shared by `run` and `replay`.
#[derive(Args, Clone)]
#[command(next_help_heading = "MongoDB")]
pub struct MongoArgs {
    /// MongoDB connection string (e.g. mongodb://localhost:27017). With it, every collection is
    /// kept in MongoDB, one document per key, and `run` checkpoints there and resumes from it.
    // The URI may hold a password: `--help` must not print the environment's value.
    #[arg(
        long = "mongo",
        value_name = "URI",
        env = "MONGO_URI",
        hide_env_values = true
    )]
    pub uri: Option<String>,
    /// Database the collections are written to.
    #[arg(
        long = "mongo-db",
        value_name = "NAME",
        default_value = "roomflow",
        env = "MONGO_DB"
    )]
    pub db: String,
    /// Also store every applied reading in the `readings` collection.
    #[arg(long, requires = "uri", env = "ROOMFLOW_ARCHIVE_READINGS")]
    pub archive_readings: bool,
}

// By hand, so that a debug print of the arguments shows the URI with its password redacted.
impl std::fmt::Debug for MongoArgs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MongoArgs")
            .field("uri", &self.uri.as_deref().map(redacted))
            .field("db", &self.db)
            .field("archive_readings", &self.archive_readings)
            .finish()
    }
}

/// A connected database, with the runtime its client runs on.
#[derive(Clone)]
pub struct Mongo {
    /// The runtime every MongoDB future runs on: two threads, not the workers'.
    pub runtime: Arc<tokio::runtime::Runtime>,
    /// The database.
    pub db: Database,
    /// Whether readings are archived.
    pub archive_readings: bool,
}

impl MongoArgs {
    /// Connects and checks the server answers, or `None` without `--mongo`. Fails at start,
    /// with what to do, when the server does not answer.
    pub fn connect(&self) -> anyhow::Result<Option<Mongo>> {
        let Some(uri) = &self.uri else {
            return Ok(None);
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mongo")
            .enable_all()
            .build()
            .context("cannot start the MongoDB runtime")?;
        let db = runtime.block_on(async {
            let mut options = ClientOptions::parse(uri).await.with_context(|| {
                format!(
                    "--mongo {:?} is not a MongoDB connection string",
                    redacted(uri)
                )
            })?;
            options.app_name = Some("roomflow".into());
            // Short, so an unreachable server shows up in the log quickly (the sink retries).
            options.server_selection_timeout = Some(Duration::from_secs(5));
            options.connect_timeout = Some(Duration::from_secs(5));
            let client = Client::with_options(options)?;
            let db = client.database(&self.db);
            tokio::time::timeout(REACHABLE_WITHIN, db.run_command(doc! { "ping": 1 }))
                .await
                .map_err(|_| anyhow::anyhow!("no answer within {REACHABLE_WITHIN:?}"))
                .and_then(|answer| answer.map_err(anyhow::Error::from))
                .with_context(|| {
                    format!(
                        "cannot reach MongoDB at {}. Is it running, and are the credentials \
                         right? (scripts/mongo.sh start runs a local stand-in; docker compose up \
                         runs MongoDB)",
                        redacted(uri)
                    )
                })?;
            ensure_indexes(&db).await?;
            anyhow::Ok(db)
        })?;
        Ok(Some(Mongo {
            runtime: Arc::new(runtime),
            db,
            archive_readings: self.archive_readings,
        }))
    }
}

impl Mongo {
    /// Empties every collection the sink writes (not `_checkpoints`): `replay` writes the
    /// collections of its inputs, nothing else.
    pub fn replace_collections(&self) -> anyhow::Result<()> {
        self.runtime.block_on(async {
            for target in Target::ALL {
                self.db
                    .collection::<mongodb::bson::Document>(target.name())
                    .drop()
                    .await
                    .with_context(|| format!("cannot empty {}", target.name()))?;
            }
            ensure_indexes(&self.db).await
        })
    }
}

/// Creates the secondary indexes of every collection (documents are found by `_id` anyway).
async fn ensure_indexes(db: &Database) -> anyhow::Result<()> {
    for target in Target::ALL {
        let keys = target.index();
        if keys.is_empty() {
            continue;
        }
        db.collection::<mongodb::bson::Document>(target.name())
            .create_index(IndexModel::builder().keys(keys).build())
            .await
            .with_context(|| format!("cannot create an index on {}", target.name()))?;
    }
    Ok(())
}
/// `uri` with its password, if it has one, replaced by `***`: what messages may show.
pub fn redacted(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    // Hosts cannot hold '@': the last one ends the user information, even when the password
    // holds characters a valid URI would have escaped.
    let Some(at) = rest.rfind('@') else {
        return uri.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redacted("mongodb://app:s3cret@db:27017/roomflow"),
            "mongodb://app:***@db:27017/roomflow"
        );
        assert_eq!(
            redacted("mongodb+srv://app:p/a@ss@cluster.example/"),
            "mongodb+srv://app:***@cluster.example/"
        );
        // Nothing to hide.
        for uri in ["mongodb://db:27017", "mongodb://app@db", "not a uri"] {
            assert_eq!(redacted(uri), uri);
        }
    }
}
