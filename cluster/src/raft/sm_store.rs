//! What every state machine persists beside its data: the applied marker (last applied log id
//! and membership) and the latest snapshot, kept in the `meta` column family so it survives
//! restarts.

use std::io::Cursor;

use openraft::storage::Snapshot;
use openraft::{BasicNode, LogId, SnapshotMeta, StorageError, StorageIOError, StoredMembership};
use serde::{Deserialize, Serialize};

use super::{GroupId, GroupRaft, NodeId};
use crate::storage::Storage;

/// What the Raft layer persists with every applied entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppliedMarker {
    pub(crate) applied: Option<LogId<NodeId>>,
    pub(crate) membership: StoredMembership<NodeId, BasicNode>,
}

impl AppliedMarker {
    /// Advances past `entry`, taking its membership if it carries one.
    pub(crate) fn advance(&mut self, log_id: LogId<NodeId>, payload: &openraft::EntryPayload<GroupRaft>) {
        self.applied = Some(log_id);
        if let openraft::EntryPayload::Membership(membership) = payload {
            self.membership = StoredMembership::new(Some(log_id), membership.clone());
        }
    }

    /// The marker an installed snapshot leaves: its metadata is the authority on what it holds.
    pub(crate) fn of_snapshot(meta: &SnapshotMeta<NodeId, BasicNode>) -> Self {
        AppliedMarker { applied: meta.last_log_id, membership: meta.last_membership.clone() }
    }

    /// The snapshot id of a snapshot taken at this marker.
    pub(crate) fn snapshot_id(&self, group: GroupId) -> String {
        match self.applied {
            Some(log_id) => format!("{group}-{}-{}", log_id.leader_id.term, log_id.index),
            None => format!("{group}-empty"),
        }
    }
}

/// A stored snapshot: its metadata and the state machine's export.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    pub(crate) meta: SnapshotMeta<NodeId, BasicNode>,
    pub(crate) data: Vec<u8>,
}

fn snapshot_key(group: GroupId) -> Vec<u8> {
    let mut key = b"snapshot/".to_vec();
    key.extend_from_slice(&group.0.to_be_bytes());
    key
}

/// Keeps `stored` as the group's latest snapshot.
pub(crate) fn save_snapshot(
    storage: &Storage,
    group: GroupId,
    stored: &StoredSnapshot,
) -> Result<(), StorageError<NodeId>> {
    let bytes = postcard::to_allocvec(stored).map_err(snapshot_err)?;
    storage.db().put_cf(storage.cf("meta"), snapshot_key(group), bytes).map_err(snapshot_err)
}

/// The group's latest snapshot, if any.
pub(crate) fn load_snapshot(
    storage: &Storage,
    group: GroupId,
) -> Result<Option<Snapshot<GroupRaft>>, StorageError<NodeId>> {
    let Some(bytes) = storage.db().get_cf(storage.cf("meta"), snapshot_key(group)).map_err(sm_read)? else {
        return Ok(None);
    };
    let stored: StoredSnapshot =
        postcard::from_bytes(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
    Ok(Some(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(stored.data)) }))
}

pub(crate) fn sm_write(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&err).into()
}

pub(crate) fn sm_read(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(&err).into()
}

pub(crate) fn snapshot_err(err: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, &err).into()
}
