//! The state machine of a partition group: applies [`PartitionCommand`]s to a
//! [`PartitionStore`], persisting the applied log id and membership in the same write as the data,
//! so a restart resumes exactly where the data is.
//!
//! Snapshots are a consistent export of the partition (RocksDB snapshot), kept in the `meta`
//! column family so the latest one survives restarts. They are held in memory while built and
//! sent, which bounds partition size by memory for now.

use std::collections::BTreeSet;
use std::io::Cursor;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, LogId, OptionalSend, RaftLogId, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use pyralog_crypto::ZkTree;
use tokio::sync::watch;

use super::sm_store::{AppliedMarker, StoredSnapshot, load_snapshot, save_snapshot, sm_write, snapshot_err};
use super::{GroupCommand, GroupId, GroupRaft, GroupReply, NodeId, PartitionCommand, PartitionReply};
use crate::storage::{
    PartitionExport, PartitionId, PartitionState, PartitionStore, Storage, StorageError as DbError,
};

/// A partition group's state machine.
#[derive(Debug)]
pub struct PartitionStateMachine {
    store: PartitionStore,
    marker: AppliedMarker,
    /// The state after every apply, for readers outside the Raft task.
    published: watch::Sender<PartitionState>,
}

impl PartitionStateMachine {
    /// Opens the state machine of partition `id`, whose log keeps `zk_trees`.
    pub fn open(storage: &Storage, id: PartitionId, zk_trees: &BTreeSet<ZkTree>) -> Result<Self, DbError> {
        let store = PartitionStore::open_with_zk(storage, id, zk_trees)?;
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

    fn group(&self) -> GroupId {
        GroupId::partition(self.store.id())
    }

    fn apply_command(
        &mut self,
        index: u64,
        command: Option<PartitionCommand>,
        marker: &[u8],
    ) -> Result<PartitionReply, DbError> {
        let state = self.store.state();
        Ok(match command {
            Some(PartitionCommand::Append { records }) => {
                let outcomes = self.store.apply(index, state.epoch, &records, marker)?;
                PartitionReply::Appended { epoch: state.epoch, outcomes }
            }
            Some(PartitionCommand::ActivateEpoch { epoch, .. }) if epoch > state.epoch => {
                self.store.mark_applied(index, epoch, marker)?;
                PartitionReply::EpochActivated { epoch, size: state.size }
            }
            Some(PartitionCommand::ActivateEpoch { .. }) => {
                self.store.mark_applied(index, state.epoch, marker)?;
                PartitionReply::StaleEpoch { current: state.epoch }
            }
            None => {
                self.store.mark_applied(index, state.epoch, marker)?;
                PartitionReply::Nothing
            }
        })
    }
}

impl RaftStateMachine<GroupRaft> for PartitionStateMachine {
    type SnapshotBuilder = PartitionSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        Ok((self.marker.applied, self.marker.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<GroupReply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<GroupRaft>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            let log_id = *entry.get_log_id();
            self.marker.advance(log_id, &entry.payload);
            let marker = postcard::to_allocvec(&self.marker).map_err(sm_write)?;
            let (command, wrong_group) = match entry.payload {
                EntryPayload::Normal(GroupCommand::Partition(command)) => (Some(command), false),
                EntryPayload::Normal(GroupCommand::Global(_)) => (None, true),
                EntryPayload::Blank | EntryPayload::Membership(_) => (None, false),
            };
            let reply = self.apply_command(log_id.index, command, &marker).map_err(sm_write)?;
            replies.push(match wrong_group {
                true => GroupReply::WrongGroup,
                false => GroupReply::Partition(reply),
            });
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
        fail::fail_point!("snapshot-install", |_| Err(sm_write(crate::failpoints::injected(
            "snapshot-install"
        ))));
        let data = snapshot.into_inner();
        let export: PartitionExport = postcard::from_bytes(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        // `import` replaces the partition's data (marker included) and reopens the store.
        self.store.import(&export).map_err(sm_write)?;
        // The snapshot's metadata is the authority on what it contains.
        self.marker = AppliedMarker::of_snapshot(meta);
        self.published.send_replace(self.store.state());
        save_snapshot(self.store.storage(), self.group(), &StoredSnapshot { meta: meta.clone(), data })
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<GroupRaft>>, StorageError<NodeId>> {
        load_snapshot(self.store.storage(), self.group())
    }
}

/// Builds a snapshot from a consistent view of the partition, while applying continues.
#[derive(Debug)]
pub struct PartitionSnapshotBuilder {
    storage: Storage,
    id: PartitionId,
}

impl RaftSnapshotBuilder<GroupRaft> for PartitionSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<GroupRaft>, StorageError<NodeId>> {
        let export = PartitionStore::export(&self.storage, self.id).map_err(snapshot_err)?;
        // The marker inside the export is from the same RocksDB snapshot as the data.
        let marker = export
            .marker()
            .map(postcard::from_bytes::<AppliedMarker>)
            .transpose()
            .map_err(snapshot_err)?
            .unwrap_or_default();
        let group = GroupId::partition(self.id);
        let snapshot_id = marker.snapshot_id(group);
        let meta =
            SnapshotMeta { last_log_id: marker.applied, last_membership: marker.membership, snapshot_id };
        let data = postcard::to_allocvec(&export).map_err(snapshot_err)?;
        save_snapshot(&self.storage, group, &StoredSnapshot { meta: meta.clone(), data: data.clone() })?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}
