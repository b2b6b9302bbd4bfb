//! Where a write goes: the local replica when this node leads the partition, else its leader
//! (one forwarding hop), waiting for an election when there is no leader yet.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;

use super::ClusterError;
use crate::model::Record;
use crate::raft::{GroupId, NodeId, PartitionReplica};
use crate::storage::PartitionId;
use crate::transport::{CallError, ForwardRefusal, RaftRequest, RaftResponse, Transport};

/// How long a write waits for its commit before answering [`ClusterError::Timeout`].
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a write to a partition without a leader waits for one to be elected.
const ELECTION_WAIT: Duration = Duration::from_secs(10);
/// How often a write waiting for a partition's leader looks again without being woken.
const ROUTE_RECHECK: Duration = Duration::from_millis(50);

/// Where a write to a partition goes.
pub(super) enum Route {
    /// This node leads it, with this replica.
    Local(Arc<PartitionReplica>),
    /// Its leader, and that leader's address.
    Forward { leader: NodeId, addr: String },
}

/// Where a write to partition `id` goes, waiting up to [`ELECTION_WAIT`] for a leader to be
/// elected (and its address known) when none is: on the local replica's Raft metrics and the
/// global state, whichever changes first, and at least every [`ROUTE_RECHECK`] (a replica this
/// node opens meanwhile, after a restart, has no watch to wake on yet).
pub(super) async fn route<T: Transport>(
    shared: &super::Shared<T>,
    id: PartitionId,
) -> Result<Route, ClusterError> {
    let deadline = tokio::time::Instant::now() + ELECTION_WAIT;
    let mut global = shared.global.state();
    loop {
        let replica = shared.replicas.read().expect("replica map lock").get(&id).cloned();
        let replica = replica.as_ref();
        let mut metrics = replica.map(|r| r.raft().metrics());
        if let Some(replica) = replica.filter(|r| r.raft().metrics().borrow().state == ServerState::Leader) {
            return Ok(Route::Local(replica.clone()));
        }
        let known = {
            let state = global.borrow_and_update();
            let leader =
                replica.and_then(|r| r.leader()).or_else(|| state.partitions.get(&id).and_then(|p| p.leader));
            let addr = leader.and_then(|l| state.members.get(&l)).map(|m| m.addr.clone());
            leader.zip(addr)
        };
        match known {
            // A leader this node believes is itself but that is not leading yet (it just lost or
            // is taking office) is waited for like an election.
            Some((leader, addr)) if leader != shared.id => return Ok(Route::Forward { leader, addr }),
            _ => {}
        }
        let changed = async {
            let replica_changed = async {
                match metrics.as_mut() {
                    Some(metrics) => {
                        let _ = metrics.changed().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = replica_changed => {}
                _ = global.changed() => {}
                _ = tokio::time::sleep(ROUTE_RECHECK) => {}
            }
        };
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return Err(ClusterError::NoLeader { partition: id, waited: ELECTION_WAIT });
        }
    }
}

/// Sends a partition's records to its leader at `addr` (one hop: a node that does not lead
/// either answers with its own hint).
pub(super) async fn forward_append<T: Transport>(
    shared: &super::Shared<T>,
    id: PartitionId,
    leader: NodeId,
    addr: String,
    records: Vec<Record>,
) -> Result<crate::raft::Appended, ClusterError> {
    let request = RaftRequest::AppendRecords(records);
    let answer = shared.peers.call(&addr, GroupId::partition(id), request, WRITE_TIMEOUT).await;
    let hint = |leader: Option<NodeId>| {
        let leader_addr =
            leader.and_then(|l| shared.global.state().borrow().members.get(&l).map(|m| m.addr.clone()));
        ClusterError::NotLeader { partition: Some(id), leader, leader_addr }
    };
    match answer {
        Ok(RaftResponse::RecordsAppended(Ok(written))) => Ok(written),
        Ok(RaftResponse::RecordsAppended(Err(ForwardRefusal::NotLeader(other)))) => Err(hint(other)),
        Ok(RaftResponse::RecordsAppended(Err(ForwardRefusal::Failed(reason)))) => {
            Err(ClusterError::Remote { node: leader, reason })
        }
        Ok(RaftResponse::RecordsAppended(Err(ForwardRefusal::Refused { index, reason, constraint }))) => {
            Err(ClusterError::Refused { partition: id, index: index as usize, reason, constraint })
        }
        Ok(_) => Err(hint(None)),
        Err(CallError::Timeout { .. }) => Err(ClusterError::Timeout { partition: id, after: WRITE_TIMEOUT }),
        // Never sent: nothing was written, and the leader may have moved.
        Err(CallError::Unreachable(_)) => Err(hint(Some(leader))),
        Err(CallError::Broken(_)) => Err(ClusterError::Interrupted { partition: id, leader }),
    }
}
