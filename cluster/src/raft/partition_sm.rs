//! The state machine of a partition group: applies [`PartitionCommand`]s to a
//! [`PartitionStore`], persisting the applied log id and membership in the same write as the data,
//! so a restart resumes exactly where the data is.
//!
//! Snapshots are a consistent export of the partition (RocksDB snapshot), kept in the `meta`
//! column family so the latest one survives restarts. They are held in memory while built and
//! sent, which bounds partition size by memory for now.

use std::io::Cursor;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, LogId, OptionalSend, RaftLogId, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

use tokio::sync::watch;

use super::{GroupId, NodeId, PartitionCommand, PartitionRaft, PartitionReply};
use crate::storage::{
    PartitionExport, PartitionId, PartitionState, PartitionStore, Storage, StorageError as DbError,
};

/// What the Raft layer persists with every applied entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct AppliedMarker {
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

/// A stored snapshot: its metadata and the partition export.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

fn sm_write(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&err).into()
}

fn sm_read(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(&err).into()
}

fn snapshot_err(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, &err).into()
}

/// A partition group's state machine.
#[derive(Debug)]
pub struct PartitionStateMachine {
    store: PartitionStore,
    marker: AppliedMarker,
    /// The state after every apply, for readers outside the Raft task.
    published: watch::Sender<PartitionState>,
}

impl PartitionStateMachine {
    /// Opens the state machine of partition `id`.
    pub fn open(storage: &Storage, id: PartitionId) -> Result<Self, DbError> {
        let store = PartitionStore::open(storage, id)?;
        let marker = match store.marker()? {
            None => AppliedMarker::default(),
            Some(bytes) => postcard::from_bytes(&bytes).map_err(|err| DbError::Corrupt {
                what: "applied marker",
                partition: id,
                reason: err.to_string(),
            })?,
        };
        let (published, _) = watch::channel(store.state());
        Ok(PartitionStateMachine { store, marker, published })
    }

    /// Follows the partition's state as entries are applied.
    pub fn subscribe(&self) -> watch::Receiver<PartitionState> {
        self.published.subscribe()
    }

    /// The partition's data.
    pub fn store(&self) -> &PartitionStore {
        &self.store
    }

    fn snapshot_key(id: PartitionId) -> Vec<u8> {
        let mut key = b"snapshot/".to_vec();
        key.extend_from_slice(&GroupId::partition(id).0.to_be_bytes());
        key
    }
}

fn save_snapshot(
    storage: &Storage,
    id: PartitionId,
    stored: &StoredSnapshot,
) -> Result<(), StorageError<NodeId>> {
    let bytes = postcard::to_allocvec(stored).map_err(snapshot_err)?;
    storage
        .db()
        .put_cf(storage.cf("meta"), PartitionStateMachine::snapshot_key(id), bytes)
        .map_err(snapshot_err)
}

impl RaftStateMachine<PartitionRaft> for PartitionStateMachine {
    type SnapshotBuilder = PartitionSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        Ok((self.marker.applied, self.marker.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<PartitionReply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<PartitionRaft>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            let log_id = *entry.get_log_id();
            self.marker.applied = Some(log_id);
            if let EntryPayload::Membership(membership) = &entry.payload {
                self.marker.membership = StoredMembership::new(Some(log_id), membership.clone());
            }
            let marker = postcard::to_allocvec(&self.marker).map_err(sm_write)?;
            let epoch = self.store.state().epoch;
            let reply = match entry.payload {
                EntryPayload::Normal(PartitionCommand::Append { records }) => {
                    let outcomes =
                        self.store.apply(log_id.index, epoch, &records, &marker).map_err(sm_write)?;
                    PartitionReply::Appended { epoch, outcomes }
                }
                EntryPayload::Normal(PartitionCommand::ActivateEpoch { epoch: new, .. }) if new > epoch => {
                    self.store.mark_applied(log_id.index, new, &marker).map_err(sm_write)?;
                    PartitionReply::EpochActivated { epoch: new }
                }
                EntryPayload::Normal(PartitionCommand::ActivateEpoch { .. }) => {
                    self.store.mark_applied(log_id.index, epoch, &marker).map_err(sm_write)?;
                    PartitionReply::StaleEpoch { current: epoch }
                }
                EntryPayload::Blank | EntryPayload::Membership(_) => {
                    self.store.mark_applied(log_id.index, epoch, &marker).map_err(sm_write)?;
                    PartitionReply::Nothing
                }
            };
            replies.push(reply);
        }
        self.published.send_replace(self.store.state());
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        PartitionSnapshotBuilder { storage: self.store.storage().clone(), id: self.store.id() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let export: PartitionExport = postcard::from_bytes(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        // `import` replaces the partition's data (marker included) and reopens the store.
        self.store.import(&export).map_err(sm_write)?;
        // The snapshot's metadata is the authority on what it contains.
        self.marker = AppliedMarker { applied: meta.last_log_id, membership: meta.last_membership.clone() };
        self.published.send_replace(self.store.state());
        let stored = StoredSnapshot { meta: meta.clone(), data };
        save_snapshot(self.store.storage(), self.store.id(), &stored)
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<PartitionRaft>>, StorageError<NodeId>> {
        let storage = self.store.storage();
        let key = PartitionStateMachine::snapshot_key(self.store.id());
        let Some(bytes) = storage.db().get_cf(storage.cf("meta"), key).map_err(sm_read)? else {
            return Ok(None);
        };
        let stored: StoredSnapshot =
            postcard::from_bytes(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(Some(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(stored.data)) }))
    }
}

/// Builds a snapshot from a consistent view of the partition, while applying continues.
#[derive(Debug)]
pub struct PartitionSnapshotBuilder {
    storage: Storage,
    id: PartitionId,
}

impl RaftSnapshotBuilder<PartitionRaft> for PartitionSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<PartitionRaft>, StorageError<NodeId>> {
        let export = PartitionStore::export(&self.storage, self.id).map_err(snapshot_err)?;
        // The marker inside the export is from the same RocksDB snapshot as the data.
        let marker = export
            .marker()
            .map(postcard::from_bytes::<AppliedMarker>)
            .transpose()
            .map_err(snapshot_err)?
            .unwrap_or_default();
        let snapshot_id = match marker.applied {
            Some(log_id) => {
                format!("{}-{}-{}", GroupId::partition(self.id), log_id.leader_id.term, log_id.index)
            }
            None => format!("{}-empty", GroupId::partition(self.id)),
        };
        let meta =
            SnapshotMeta { last_log_id: marker.applied, last_membership: marker.membership, snapshot_id };
        let data = postcard::to_allocvec(&export).map_err(snapshot_err)?;
        save_snapshot(&self.storage, self.id, &StoredSnapshot { meta: meta.clone(), data: data.clone() })?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}
