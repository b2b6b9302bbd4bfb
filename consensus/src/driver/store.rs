//! The driver's storage: committed blocks with their finality proofs, validator-set changes, and
//! the engine's write-ahead log, behind the [`ChainStore`] trait. [`BlockStore`] keeps them in
//! RocksDB (the node); [`MemoryStore`](super::MemoryStore) in memory (the simulator, which keeps
//! a node's store across its crashes).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{ColumnFamilyDescriptor, DB, IteratorMode, Options, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use crate::validators::{Validator, ValidatorSet};
use crate::vote::FinalityProof;

const BLOCKS: &str = "blocks";
const WAL: &str = "wal";
/// Validator sets by the height they take effect at (changes only; genesis is config).
const VALIDATORS: &str = "validators";

/// A committed block as stored and as served to syncing peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlock {
    /// Its height.
    pub height: u64,
    /// Its id (the payload id the validators signed).
    pub block: pyralog_crypto::Digest,
    /// The transactions.
    pub txs: Vec<Vec<u8>>,
    /// Why it is final.
    pub proof: FinalityProof,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB failed.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Stored bytes this code did not write.
    #[error("corrupt {what} at {key}: {reason}")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// Where.
        key: u64,
        /// Why it does not decode.
        reason: String,
    },
}

/// What the driver stores. Clones share one store: the driver writes, readers (RPC, sync) read.
///
/// Durability contract: every write method returns only once what it wrote survives a crash of
/// the process (RocksDB: a synced write). The driver relies on it: a block is not applied, and a
/// vote not sent, before it is durable.
pub trait ChainStore: Clone + Send + Sync + 'static {
    /// Where the store lives, for errors that an operator must act on (a path).
    fn location(&self) -> String;

    /// The highest committed height (0: none).
    fn last_height(&self) -> Result<u64, StoreError>;

    /// The block at `height`, if committed.
    fn block(&self, height: u64) -> Result<Option<StoredBlock>, StoreError>;

    /// Up to `max` consecutive blocks from `from`.
    fn blocks_from(&self, from: u64, max: usize) -> Result<Vec<StoredBlock>, StoreError> {
        let mut blocks = Vec::new();
        for height in from.. {
            if blocks.len() >= max {
                break;
            }
            match self.block(height)? {
                Some(block) => blocks.push(block),
                None => break,
            }
        }
        Ok(blocks)
    }

    /// Stores a committed block, durably.
    fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError>;

    /// Records, durably, that `set` decides from `height` on (a validator update).
    fn put_validator_set(&self, height: u64, set: &ValidatorSet) -> Result<(), StoreError>;

    /// Every recorded validator-set change, by the height it takes effect at.
    fn validator_sets(&self) -> Result<BTreeMap<u64, ValidatorSet>, StoreError>;

    /// Appends WAL entries `(height, entry)` in order, durably, with one sync (group commit).
    fn append_wal_batch(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), StoreError>;

    /// Appends an engine WAL entry of `height`, durably.
    fn append_wal(&self, height: u64, entry: &[u8]) -> Result<(), StoreError> {
        self.append_wal_batch(&[(height, entry.to_vec())])
    }

    /// The WAL entries of `height` and above, in the order they were appended.
    fn wal_from(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Forgets WAL entries below `height` (committed heights are never replayed).
    fn prune_wal_below(&self, height: u64) -> Result<(), StoreError>;
}

/// The node's [`ChainStore`]: blocks and the engine's WAL in RocksDB. Clones share one database: the driver writes, readers (RPC)
/// read.
#[derive(Clone)]
pub struct BlockStore {
    db: Arc<DB>,
    /// The key of the next WAL entry (appends are frequent: one per message that moves the
    /// engine, so the last key is read once, at open).
    next_wal: Arc<AtomicU64>,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore").field("path", &self.db.path()).finish()
    }
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

impl BlockStore {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let families =
            [BLOCKS, WAL, VALIDATORS].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&options, path, families)?;
        let store = BlockStore { db: Arc::new(db), next_wal: Arc::new(AtomicU64::new(0)) };
        let next_wal = store.last_key(WAL, "WAL key")?.map_or(0, |last| last + 1);
        store.next_wal.store(next_wal, Ordering::Relaxed);
        Ok(store)
    }

    /// The largest key of column family `name`, read as a big-endian u64.
    fn last_key(&self, name: &str, what: &'static str) -> Result<Option<u64>, StoreError> {
        match self.db.iterator_cf(self.cf(name), IteratorMode::End).next() {
            None => Ok(None),
            Some(entry) => {
                let (key, _) = entry?;
                let bytes: [u8; 8] = key.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    what,
                    key: 0,
                    reason: format!("{} bytes", key.len()),
                })?;
                Ok(Some(u64::from_be_bytes(bytes)))
            }
        }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("created at open")
    }
}

impl ChainStore for BlockStore {
    fn location(&self) -> String {
        self.db.path().display().to_string()
    }

    /// The highest committed height (0: none).
    fn last_height(&self) -> Result<u64, StoreError> {
        Ok(self.last_key(BLOCKS, "block key")?.unwrap_or(0))
    }

    /// The block at `height`, if committed.
    fn block(&self, height: u64) -> Result<Option<StoredBlock>, StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(BLOCKS), height.to_be_bytes())? else { return Ok(None) };
        postcard::from_bytes(&bytes).map(Some).map_err(|e| StoreError::Corrupt {
            what: "block",
            key: height,
            reason: e.to_string(),
        })
    }

    /// Stores a committed block, durably.
    fn put_block(&self, block: &StoredBlock) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(block).expect("blocks serialize");
        Ok(self.db.put_cf_opt(self.cf(BLOCKS), block.height.to_be_bytes(), bytes, &synced())?)
    }

    /// Records, durably, that `set` decides from `height` on (a validator update).
    fn put_validator_set(&self, height: u64, set: &ValidatorSet) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(set.validators()).expect("validators serialize");
        Ok(self.db.put_cf_opt(self.cf(VALIDATORS), height.to_be_bytes(), bytes, &synced())?)
    }

    /// Every recorded validator-set change, by the height it takes effect at.
    fn validator_sets(&self) -> Result<BTreeMap<u64, ValidatorSet>, StoreError> {
        let mut sets = BTreeMap::new();
        for item in self.db.iterator_cf(self.cf(VALIDATORS), IteratorMode::Start) {
            let (key, value) = item?;
            let height = u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0; 8]));
            let corrupt = |reason: String| StoreError::Corrupt { what: "validator set", key: height, reason };
            let validators: Vec<Validator> =
                postcard::from_bytes(&value).map_err(|e| corrupt(e.to_string()))?;
            sets.insert(height, ValidatorSet::new(validators).map_err(|e| corrupt(e.to_string()))?);
        }
        Ok(sets)
    }

    /// Appends WAL entries `(height, entry)` in order, durably, with one fsync (group commit).
    fn append_wal_batch(&self, entries: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (height, entry) in entries {
            let next = self.next_wal.fetch_add(1, Ordering::Relaxed);
            let bytes = postcard::to_allocvec(&(height, entry)).expect("entries serialize");
            batch.put_cf(self.cf(WAL), next.to_be_bytes(), bytes);
        }
        Ok(self.db.write_opt(batch, &synced())?)
    }

    /// The WAL entries of `height` and above, in the order they were appended.
    fn wal_from(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut entries = Vec::new();
        for item in self.db.iterator_cf(self.cf(WAL), IteratorMode::Start) {
            let (key, value) = item?;
            let (entry_height, entry) = decode_wal(&key, &value)?;
            if entry_height >= height {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Forgets WAL entries below `height` (committed heights are never replayed).
    fn prune_wal_below(&self, height: u64) -> Result<(), StoreError> {
        let mut doomed = Vec::new();
        for item in self.db.iterator_cf(self.cf(WAL), IteratorMode::Start) {
            let (key, value) = item?;
            // Not in height order: a work engine logs blocks of forks below its tip, and final
            // seals ahead of the heights they serve.
            if decode_wal(&key, &value)?.0 < height {
                doomed.push(key);
            }
        }
        for key in doomed {
            self.db.delete_cf(self.cf(WAL), key)?;
        }
        Ok(())
    }
}

fn decode_wal(key: &[u8], value: &[u8]) -> Result<(u64, Vec<u8>), StoreError> {
    let seq = u64::from_be_bytes(key.try_into().unwrap_or([0; 8]));
    postcard::from_bytes(value).map_err(|e| StoreError::Corrupt {
        what: "WAL entry",
        key: seq,
        reason: e.to_string(),
    })
}
