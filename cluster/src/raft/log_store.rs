//! The Raft log of one group in the node's RocksDB, shared by every group.
//!
//! Durability contract (openraft's `RaftLogStorage`): entries are readable when `append`
//! returns and durable when its callback runs; the callback goes through the shared
//! [`WalSyncer`](crate::storage::WalSyncer), so concurrent appends of many groups share one fsync.
//! Votes and truncations are written with a synced write before returning: a lost vote could
//! let this node vote twice in a term, and a lost truncation could resurrect entries of an old
//! term behind newer ones.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{LogId, OptionalSend, RaftLogId, RaftTypeConfig, StorageError, StorageIOError, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{GroupId, NodeId};
use crate::storage::Storage;

const VOTE: u8 = 1;
const LAST_PURGED: u8 = 2;

/// One group's Raft log and vote.
pub struct RocksLogStore<C> {
    storage: Storage,
    group: GroupId,
    committed: CommitIndex,
    config: PhantomData<fn() -> C>,
}

/// The group's latest commit index as openraft reports it (`save_committed`), kept in memory
/// only, for metrics: openraft 0.9's own metrics have no commit index. It is not persisted (the
/// state machines persist what they applied), so it reads 0 after a restart until the next
/// commit.
#[derive(Debug, Clone, Default)]
pub struct CommitIndex(Arc<AtomicU64>);

impl CommitIndex {
    /// The last committed log index, if any commit happened since start.
    pub fn get(&self) -> Option<u64> {
        self.0.load(Ordering::Relaxed).checked_sub(1)
    }

    fn set(&self, index: Option<u64>) {
        self.0.store(index.map_or(0, |i| i + 1), Ordering::Relaxed);
    }
}

impl<C> Clone for RocksLogStore<C> {
    fn clone(&self) -> Self {
        RocksLogStore {
            storage: self.storage.clone(),
            group: self.group,
            committed: self.committed.clone(),
            config: PhantomData,
        }
    }
}

impl<C> Debug for RocksLogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksLogStore").field("group", &self.group).finish_non_exhaustive()
    }
}

impl<C> RocksLogStore<C> {
    /// The log of `group` in `storage`.
    pub fn new(storage: Storage, group: GroupId) -> Self {
        RocksLogStore { storage, group, committed: CommitIndex::default(), config: PhantomData }
    }

    /// A handle on the group's commit index (for metrics).
    pub fn commit_index(&self) -> CommitIndex {
        self.committed.clone()
    }

    fn entry_key(&self, index: u64) -> [u8; 16] {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&self.group.0.to_be_bytes());
        key[8..].copy_from_slice(&index.to_be_bytes());
        key
    }

    fn state_key(&self, field: u8) -> [u8; 9] {
        let mut key = [0u8; 9];
        key[..8].copy_from_slice(&self.group.0.to_be_bytes());
        key[8] = field;
        key
    }

    fn read_state<T: DeserializeOwned>(&self, field: u8) -> Result<Option<T>, StorageError<NodeId>> {
        let bytes = self
            .storage
            .db()
            .get_cf(self.storage.cf("raft_state"), self.state_key(field))
            .map_err(read_err)?;
        bytes.map(|b| postcard::from_bytes(&b).map_err(read_err)).transpose()
    }
}

fn read_err(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(&err).into()
}

fn write_err(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(&err).into()
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

impl<C> RaftLogReader<C> for RocksLogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let from = self.entry_key(start);
        let iter = self
            .storage
            .db()
            .iterator_cf(self.storage.cf("raft_log"), IteratorMode::From(&from, Direction::Forward));
        let mut entries = Vec::new();
        for item in iter {
            let (key, value) = item.map_err(read_err)?;
            if key[..8] != self.group.0.to_be_bytes() {
                break;
            }
            let index = u64::from_be_bytes(key[8..16].try_into().expect("16-byte key"));
            if index >= end {
                break;
            }
            entries.push(postcard::from_bytes(&value).map_err(read_err)?);
        }
        Ok(entries)
    }
}

impl<C> RaftLogStorage<C> for RocksLogStore<C>
where
    C: RaftTypeConfig<NodeId = NodeId>,
    C::Entry: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.read_state(LAST_PURGED)?;
        let from = self.entry_key(u64::MAX);
        let mut iter = self
            .storage
            .db()
            .iterator_cf(self.storage.cf("raft_log"), IteratorMode::From(&from, Direction::Reverse));
        let last = match iter.next() {
            Some(item) => {
                let (key, value) = item.map_err(read_err)?;
                if key[..8] == self.group.0.to_be_bytes() {
                    let entry: C::Entry = postcard::from_bytes(&value).map_err(read_err)?;
                    Some(*entry.get_log_id())
                } else {
                    None
                }
            }
            None => None,
        };
        Ok(LogState { last_purged_log_id, last_log_id: last.or(last_purged_log_id) })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        self.committed.set(committed.map(|id| id.index));
        Ok(())
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = postcard::to_allocvec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        self.storage
            .db()
            .put_cf_opt(self.storage.cf("raft_state"), self.state_key(VOTE), bytes, &synced())
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read_state(VOTE)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        fail::fail_point!("raft-log-append", |_| Err(write_err(crate::failpoints::injected(
            "raft-log-append"
        ))));
        let cf = self.storage.cf("raft_log");
        let mut batch = WriteBatch::default();
        for entry in entries {
            let bytes = postcard::to_allocvec(&entry).map_err(write_err)?;
            batch.put_cf(cf, self.entry_key(entry.get_log_id().index), bytes);
        }
        self.storage.db().write(batch).map_err(write_err)?;
        self.storage.syncer().after_sync(Box::new(move |result| callback.log_io_completed(result)));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.storage.cf("raft_log"),
            self.entry_key(log_id.index),
            self.entry_key(u64::MAX),
        );
        batch.delete_cf(self.storage.cf("raft_log"), self.entry_key(u64::MAX));
        self.storage.db().write_opt(batch, &synced()).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut batch = WriteBatch::default();
        let marker = postcard::to_allocvec(&log_id).map_err(write_err)?;
        batch.put_cf(self.storage.cf("raft_state"), self.state_key(LAST_PURGED), marker);
        batch.delete_range_cf(
            self.storage.cf("raft_log"),
            self.entry_key(0),
            self.entry_key(log_id.index + 1),
        );
        self.storage.db().write(batch).map_err(write_err)
    }
}
