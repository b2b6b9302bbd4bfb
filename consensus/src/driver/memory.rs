//! A [`ChainStore`] in memory: the same contract as [`BlockStore`](super::BlockStore) with
//! "durable" meaning "outlives the driver". The simulator gives each node one and keeps it across
//! the node's crashes, as a disk would be kept; a node with nothing to keep (a throwaway devnet)
//! could run on it too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::store::{ChainStore, StoreError, StoredBlock};
use crate::validators::ValidatorSet;

#[derive(Debug, Default)]
struct Contents {
    blocks: BTreeMap<u64, StoredBlock>,
    sets: BTreeMap<u64, ValidatorSet>,
    /// `(height, entry)` in append order.
    wal: Vec<(u64, Vec<u8>)>,
}

/// Blocks, validator-set changes and the WAL in memory. Clones share the contents.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    contents: Arc<Mutex<Contents>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn contents(&self) -> MutexGuard<'_, Contents> {
        // A panic while holding the lock leaves plain data behind, still consistent per call.
        self.contents.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ChainStore for MemoryStore {
    fn location(&self) -> String {
        "memory".into()
    }

    fn last_height(&self) -> Result<u64, StoreError> {
        Ok(self.contents().blocks.keys().next_back().copied().unwrap_or(0))
    }

    fn block(&self, height: u64) -> Result<Option<StoredBlock>, StoreError> {
        Ok(self.contents().blocks.get(&height).cloned())
    }

    fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError> {
        self.contents().blocks.insert(block.height, block.clone());
        Ok(())
    }

    fn put_validator_set(&self, height: u64, set: &ValidatorSet) -> Result<(), StoreError> {
        self.contents().sets.insert(height, set.clone());
        Ok(())
    }

    fn validator_sets(&self) -> Result<BTreeMap<u64, ValidatorSet>, StoreError> {
        Ok(self.contents().sets.clone())
    }

    fn append_wal_batch(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        self.contents().wal.extend_from_slice(entries);
        Ok(())
    }

    fn wal_from(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.contents().wal.iter().filter(|(h, _)| *h >= height).map(|(_, e)| e.clone()).collect())
    }

    fn prune_wal_below(&self, height: u64) -> Result<(), StoreError> {
        self.contents().wal.retain(|(h, _)| *h >= height);
        Ok(())
    }
}
