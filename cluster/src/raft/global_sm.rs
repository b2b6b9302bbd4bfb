//! The global group's state machine. The state is small (it grows with members and partitions,
//! not with records), so it lives in memory and is written whole, together with the applied
//! marker, in one RocksDB put per applied batch; a snapshot is the same bytes.

use std::io::Cursor;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, LogId, OptionalSend, RaftLogId, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use pyralog_crypto::ClusterId;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::sm_store::{
    AppliedMarker, StoredSnapshot, load_snapshot, save_snapshot, sm_read, sm_write, snapshot_err,
};
use super::{GlobalReply, GlobalState, GroupCommand, GroupId, GroupRaft, GroupReply, NodeId};
use crate::storage::Storage;

const STATE_KEY: &[u8] = b"global/state";

/// The state and its applied marker, as stored and as snapshotted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Persisted {
    marker: AppliedMarker,
    state: GlobalState,
}

/// The global group's state machine.
#[derive(Debug)]
pub struct GlobalStateMachine {
    storage: Storage,
    cluster: ClusterId,
    persisted: Persisted,
    published: watch::Sender<GlobalState>,
}

impl GlobalStateMachine {
    /// Opens the global state of cluster `cluster` stored in `storage`.
    pub fn open(storage: &Storage, cluster: ClusterId) -> Result<Self, StorageError<NodeId>> {
        let persisted = match storage.db().get_cf(storage.cf("meta"), STATE_KEY).map_err(sm_read)? {
            None => Persisted::default(),
            Some(bytes) => postcard::from_bytes(&bytes).map_err(sm_read)?,
        };
        let (published, _) = watch::channel(persisted.state.clone());
        Ok(GlobalStateMachine { storage: storage.clone(), cluster, persisted, published })
    }

    /// Follows the state as entries are applied.
    pub fn subscribe(&self) -> watch::Receiver<GlobalState> {
        self.published.subscribe()
    }

    fn persist(&self) -> Result<(), StorageError<NodeId>> {
        let bytes = postcard::to_allocvec(&self.persisted).map_err(sm_write)?;
        // No fsync: the Raft log is the durable record and is re-applied after a crash.
        self.storage.db().put_cf(self.storage.cf("meta"), STATE_KEY, bytes).map_err(sm_write)
    }
}

impl RaftStateMachine<GroupRaft> for GlobalStateMachine {
    type SnapshotBuilder = GlobalSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        Ok((self.persisted.marker.applied, self.persisted.marker.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<GroupReply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<GroupRaft>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            self.persisted.marker.advance(*entry.get_log_id(), &entry.payload);
            replies.push(match entry.payload {
                EntryPayload::Normal(GroupCommand::Global(command)) => {
                    GroupReply::Global(self.persisted.state.apply(&self.cluster, command))
                }
                EntryPayload::Normal(GroupCommand::Partition(_)) => GroupReply::WrongGroup,
                EntryPayload::Blank | EntryPayload::Membership(_) => GroupReply::Global(GlobalReply::Done),
            });
        }
        self.persist()?;
        self.published.send_replace(self.persisted.state.clone());
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        GlobalSnapshotBuilder { storage: self.storage.clone(), persisted: self.persisted.clone() }
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
        let persisted: Persisted = postcard::from_bytes(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        // The snapshot's metadata is the authority on what it contains.
        self.persisted = Persisted { marker: AppliedMarker::of_snapshot(meta), state: persisted.state };
        self.persist()?;
        self.published.send_replace(self.persisted.state.clone());
        save_snapshot(&self.storage, GroupId::GLOBAL, &StoredSnapshot { meta: meta.clone(), data })
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<GroupRaft>>, StorageError<NodeId>> {
        load_snapshot(&self.storage, GroupId::GLOBAL)
    }
}

/// Builds a snapshot from the state as it was when the builder was made.
#[derive(Debug)]
pub struct GlobalSnapshotBuilder {
    storage: Storage,
    persisted: Persisted,
}

impl RaftSnapshotBuilder<GroupRaft> for GlobalSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<GroupRaft>, StorageError<NodeId>> {
        let marker = &self.persisted.marker;
        let meta = SnapshotMeta {
            last_log_id: marker.applied,
            last_membership: marker.membership.clone(),
            snapshot_id: marker.snapshot_id(GroupId::GLOBAL),
        };
        let data = postcard::to_allocvec(&self.persisted).map_err(snapshot_err)?;
        save_snapshot(
            &self.storage,
            GroupId::GLOBAL,
            &StoredSnapshot { meta: meta.clone(), data: data.clone() },
        )?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}
