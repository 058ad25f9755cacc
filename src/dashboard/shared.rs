//! The state the feed writes and the web server reads: the building behind a lock, and a watch
//! channel that tells every live page when it changed.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use super::building::Building;
use super::views::Staleness;

/// The building, shared between the feed's thread and the server's tasks.
pub struct Shared {
    building: Mutex<Building>,
    /// The building's version after each update.
    version: watch::Sender<u64>,
    /// How staleness is judged.
    pub staleness: Staleness,
}

impl Shared {
    /// A shared, empty building.
    pub fn new(building: Building, staleness: Staleness) -> Shared {
        Shared {
            version: watch::Sender::new(building.version),
            building: Mutex::new(building),
            staleness,
        }
    }

    /// Changes the building with `update`, then wakes every live page.
    pub fn update<T>(&self, update: impl FnOnce(&mut Building) -> T) -> T {
        let (result, version) = {
            let mut building = self.lock();
            let result = update(&mut building);
            (result, building.version)
        };
        self.version.send_replace(version);
        result
    }

    /// The building, to read. Hold it briefly: the feed waits meanwhile.
    pub fn lock(&self) -> MutexGuard<'_, Building> {
        // A panic while holding the lock leaves a building that is still whole (every change is
        // applied field by field): keep serving it.
        self.building
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A receiver that sees each new version.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}
