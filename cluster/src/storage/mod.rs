//! Node storage: one RocksDB per node, a column family per concern, big-endian keys.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `raft_log` | group, index | Raft entry (Raft layer) |
//! | `raft_state` | group, field | vote, committed, purged (Raft layer) |
//! | `meta` | name | global group state, snapshots of every group |
//! | `partition_state` | partition, 0x01 | [`PartitionState`] |
//! | `partition_state` | partition, 0x02, producer | last sequence and its offset |
//! | `partition_state` | partition, 0x03 | the Raft layer's applied marker (log id, membership) |
//! | `records` | partition, offset | record encoding ([`crate::model`]) |
//! | `key_index` | partition, key | offset of the latest record with that key |
//! | `merkle` | partition, level, index | perfect-subtree hash |
//! | `zk_nodes` | partition, zk tree id, level, index | complete node of a zk tree ([`zk`]) |
//!
//! A partition's records, Merkle nodes, key index, producer sequences and state (with the Raft
//! index applied) change in one `WriteBatch`, so a crash never leaves them out of step.
//!
//! **Memory-only mode** runs the same code on RocksDB's in-memory environment: nothing touches the
//! disk, every code path is the one production runs.

mod keys;
mod partition;
mod reader;
mod syncer;
pub mod zk;

pub use keys::PartitionId;
pub use partition::{AppendOutcome, PartitionExport, PartitionState, PartitionStore};
pub use reader::PartitionReader;
pub use syncer::{SyncCallback, SyncStats, WalSyncer};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::statistics::{StatsLevel, Ticker};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Env, Options};

/// Column family names, in creation order.
pub(crate) const COLUMN_FAMILIES: [&str; 8] =
    ["raft_log", "raft_state", "meta", "partition_state", "records", "key_index", "merkle", "zk_nodes"];

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageMode {
    /// On disk under this directory.
    Disk(PathBuf),
    /// In memory only (tests, ephemeral nodes): lost when the process ends.
    Memory,
}

/// Bytes the database wrote since it was opened (RocksDB's tickers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Keys and values written by the node (before any amplification).
    pub user: u64,
    /// Bytes appended to the write-ahead log.
    pub wal: u64,
    /// Bytes written to SST files by memtable flushes.
    pub flush: u64,
    /// Bytes written to SST files by compactions.
    pub compaction: u64,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// RocksDB failed.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// An offset at or past the end of the partition.
    #[error("offset {offset} is out of range: partition {partition} has {size} records")]
    OffsetOutOfRange {
        /// The partition.
        partition: PartitionId,
        /// The requested offset.
        offset: u64,
        /// The partition's size.
        size: u64,
    },
    /// A tree size larger than the partition.
    #[error("size {requested} requested, partition {partition} has {size} records")]
    SizeBeyondPartition {
        /// The partition.
        partition: PartitionId,
        /// The requested size.
        requested: u64,
        /// The partition's size.
        size: u64,
    },
    /// A consistency proof asked to go backwards.
    #[error("old size {old_size} is larger than new size {new_size} (partition {partition})")]
    SizeDecreased {
        /// The partition.
        partition: PartitionId,
        /// Requested old size.
        old_size: u64,
        /// Requested new size.
        new_size: u64,
    },
    /// A zk tree refused an operation (full, or asked past its size).
    #[error("zk tree: {0}")]
    ZkTree(#[from] pyralog_zk::tree::TreeError),
    /// Stored bytes are not what this code writes: the data is damaged.
    #[error("corrupt {what} in partition {partition}: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Where.
        partition: PartitionId,
        /// What is wrong.
        reason: String,
    },
    /// The data directory was written by a version whose format this one does not read.
    #[error("the data directory is incompatible with this version: {0}")]
    Incompatible(String),
}

/// The node's database.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    mode: StorageMode,
    db: Arc<DB>,
    /// The options the database was opened with; they hold its statistics (tickers).
    options: Options,
    /// Dropped after `db`'s handle: joins the thread holding the other handle, so the database
    /// is closed when the last `Storage` is dropped.
    syncer: WalSyncer,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("mode", &self.inner.mode).finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens (or creates) the database.
    pub fn open(mode: StorageMode) -> Result<Self, StorageError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        // Tickers only (no histograms or timers): a few atomic adds per write, for the
        // bytes-written metrics.
        options.enable_statistics();
        options.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
        options.create_missing_column_families(true);
        let path: &Path = match &mode {
            StorageMode::Disk(path) => path,
            StorageMode::Memory => {
                options.set_env(&Env::mem_env()?);
                Path::new("/pyralog-memory")
            }
        };
        let families =
            COLUMN_FAMILIES.iter().map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = DB::open_cf_descriptors(&options, path, families)?;
        zk::check_tree_format(&db)?;
        let db = Arc::new(db);
        let syncer = WalSyncer::start(db.clone(), matches!(mode, StorageMode::Disk(_)));
        Ok(Storage { inner: Arc::new(Inner { mode, db, options, syncer }) })
    }

    /// Where the database lives.
    pub fn mode(&self) -> &StorageMode {
        &self.inner.mode
    }

    /// Makes every write so far durable with one WAL fsync (nothing to do in memory-only mode).
    pub fn sync_wal(&self) -> Result<(), StorageError> {
        match self.inner.mode {
            StorageMode::Disk(_) => Ok(self.inner.db.flush_wal(true)?),
            StorageMode::Memory => Ok(()),
        }
    }

    /// How many handles share this database; it closes when the last one is dropped.
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// The node's shared WAL syncer (group commit across Raft groups).
    pub fn syncer(&self) -> &WalSyncer {
        &self.inner.syncer
    }

    /// Bytes written since the database was opened.
    pub fn write_stats(&self) -> WriteStats {
        let ticker = |t| self.inner.options.get_ticker_count(t);
        WriteStats {
            user: ticker(Ticker::BytesWritten),
            wal: ticker(Ticker::WalFileBytes),
            flush: ticker(Ticker::FlushWriteBytes),
            compaction: ticker(Ticker::CompactWriteBytes),
        }
    }

    pub(crate) fn db(&self) -> &DB {
        &self.inner.db
    }

    pub(crate) fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.inner.db.cf_handle(name).expect("every column family is created at open")
    }
}
