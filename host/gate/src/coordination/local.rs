//! Coordination of one gate with itself: a lock per repository in the process, and the
//! repositories' generations in memory.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Generations one gate keeps in memory; beyond this it starts again from zero for every
/// repository (a generation only tells caches that something changed).
const MAX_GENERATIONS: usize = 100_000;

#[derive(Default)]
pub(super) struct LocalStore {
    pub locks: RepositoryLocks,
    generations: Mutex<HashMap<String, u64>>,
}

impl LocalStore {
    pub fn generation(&self, repository: &str) -> u64 {
        self.generations.lock().get(repository).copied().unwrap_or(0)
    }

    pub fn changed(&self, repository: &str) -> u64 {
        let mut generations = self.generations.lock();
        if generations.len() >= MAX_GENERATIONS && !generations.contains_key(repository) {
            generations.clear();
        }
        let current = generations.entry(repository.to_string()).or_insert(0);
        *current += 1;
        *current
    }
}

/// One async lock per repository, so that two requests changing tags of one repository are
/// decided and applied one after the other: two clients racing to create the same
/// immutable tag cannot both see it absent.
#[derive(Default)]
pub struct RepositoryLocks {
    locks: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

impl RepositoryLocks {
    pub async fn lock(&self, repository: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock();
            if locks.len() > 1024 {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(repository).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(AsyncMutex::new(()));
                    locks.insert(repository.to_string(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}
