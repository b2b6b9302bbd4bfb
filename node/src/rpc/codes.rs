//! Stable error codes (besides JSON-RPC's own -32700..-32600 for malformed requests and -32602
//! for bad params), and the errors each failure becomes. The README's RPC table lists them.

use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use pyralog_cluster::engine::ClusterError;
use serde_json::json;

/// No log with that name.
pub(crate) const UNKNOWN_LOG: i32 = 1001;
/// The log keeps no zk tree for that proof system.
pub(crate) const ZK_TREE_NOT_KEPT: i32 = 1050;
/// The node has no Groth16 keys configured (`[zk] keys`).
pub(crate) const ZK_NO_KEYS: i32 = 1051;
/// The prover refused: the witness does not satisfy the statement (or proving failed).
pub(crate) const ZK_PROVE_FAILED: i32 = 1052;
/// A prover is already busy on this node; retry later.
pub(crate) const ZK_BUSY: i32 = 1053;
/// The log has no such partition.
pub(crate) const UNKNOWN_PARTITION: i32 = 1002;
/// Offset or size beyond the partition.
pub(crate) const OFFSET_OUT_OF_RANGE: i32 = 1003;
/// A record is larger than the log allows.
pub(crate) const RECORD_TOO_LARGE: i32 = 1004;
/// The batch is larger than one request may carry.
pub(crate) const BATCH_TOO_LARGE: i32 = 1005;
/// A record cannot be encoded.
pub(crate) const INVALID_RECORD: i32 = 1006;
/// The log's constraint contract refused a record; nothing of its partition's batch was
/// written. `data`: `index`, `reason`, `constraint` (the code hash).
pub(crate) const RECORD_REFUSED: i32 = 1007;
/// A signed request whose signature does not verify, whose timestamp is out of the window, or
/// whose nonce was used (a replay).
pub(crate) const UNAUTHENTICATED: i32 = 1008;
/// The log's access-control contract denied the request; `data.reason`.
pub(crate) const ACCESS_DENIED: i32 = 1009;
/// Not the leader; `data` has `leader` and `leaderRaftAddr`.
pub(crate) const NOT_LEADER: i32 = 1010;
/// This node has no replica; `data.replicas` lists who has.
pub(crate) const NOT_REPLICA: i32 = 1011;
/// No certified checkpoint covers the record yet.
pub(crate) const NOT_CERTIFIED: i32 = 1012;
/// The write's outcome is unknown (no commit in time).
pub(crate) const TIMEOUT: i32 = 1013;
/// No leader of the partition was elected within the write's wait; nothing was written.
pub(crate) const NO_LEADER: i32 = 1014;
/// The cluster refused the change (log exists, not enough members, ...).
pub(crate) const REJECTED: i32 = 1020;
/// The node failed (storage, Raft).
pub(crate) const INTERNAL: i32 = 1030;
/// The node does not serve the cluster yet (no global leader or members known).
pub(crate) const NOT_READY: i32 = 1031;
/// The client's IP made more calls than `[rpc] rate_limit_per_ip` allows; `data.retryAfterMs`.
pub(crate) const RATE_LIMITED: i32 = 1032;
/// `debug_setFailpoint` on a build without failpoints (a release build).
pub(crate) const FAILPOINTS_NOT_BUILT: i32 = 1033;
/// `admin_addTunnelPeer` on a node whose cluster links are plain TCP.
pub(crate) const NO_TUNNEL: i32 = 1034;
/// No block (or state) at that height; `data.finalizedHead` or `data.latest`.
pub(crate) const UNKNOWN_HEIGHT: i32 = 1040;
/// The transaction is invalid (decoding, signature, chain, nonce, fee).
pub(crate) const TX_REJECTED: i32 = 1041;
/// No anchored checkpoint covers the record yet; `data.anchoredSize`.
pub(crate) const NOT_ANCHORED: i32 = 1042;
/// No cluster of that id is registered on the chain.
pub(crate) const UNKNOWN_CLUSTER: i32 = 1043;
/// No member of the cluster holding the log answered; `data.errors`.
pub(crate) const CLUSTER_UNREACHABLE: i32 = 1044;
/// The node runs no chain (no `[chain]` section).
pub(crate) const NO_CHAIN: i32 = 1045;
/// The chain's engine proves finality without a commit certificate (`chain_getCommit`);
/// `chain_getFinality` serves its proof.
pub(crate) const NO_COMMIT_CERTIFICATE: i32 = 1046;
/// The mempool is full: the transaction was dropped; `data.capacity`. Retry later.
pub(crate) const MEMPOOL_FULL: i32 = 1047;
/// A `staking_*` method on a chain without Proof-of-Stake.
pub(crate) const NOT_STAKING: i32 = 1048;
/// `chain_getSeals` on a chain without Proof-of-Work.
pub(crate) const NOT_MINED: i32 = 1049;
/// `chain_getCometLightBlock` on a chain not run behind CometBFT, or CometBFT did not answer; a
/// block method (`chain_getBlock`, ...) on a chain behind CometBFT, which stores the blocks.
pub(crate) const NOT_COMETBFT: i32 = 1054;
/// No contract (or contract code) of that id (or hash) at that height.
pub(crate) const UNKNOWN_CONTRACT: i32 = 1060;
/// A `contract_query` call did not complete (trap, refusal, a limit); `data.reason`.
pub(crate) const CONTRACT_FAILED: i32 = 1061;

/// A node-side failure (code 1030) with its message.
pub(crate) fn internal(err: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObject::owned(INTERNAL, err.to_string(), None::<()>)
}

/// Invalid params (-32602) with what is wrong.
pub(crate) fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(jsonrpsee::types::error::INVALID_PARAMS_CODE, message.into(), None::<()>)
}

/// Maps engine errors to stable codes, with the details a client needs in `data`.
pub(crate) fn cluster_error(err: ClusterError) -> ErrorObjectOwned {
    cluster_error_ref(&err)
}

/// [`cluster_error`] of a shared error (a partition's batch shares one error among its records).
pub(crate) fn cluster_error_ref(err: &ClusterError) -> ErrorObjectOwned {
    let message = err.to_string();
    let (code, data) = match err {
        ClusterError::UnknownLog(_) => (UNKNOWN_LOG, None),
        ClusterError::UnknownPartition { partitions, .. } => {
            (UNKNOWN_PARTITION, Some(json!({ "partitions": partitions })))
        }
        ClusterError::OffsetOutOfRange { size, .. } => (OFFSET_OUT_OF_RANGE, Some(json!({ "size": size }))),
        ClusterError::RecordTooLarge { index, max, .. } => {
            (RECORD_TOO_LARGE, Some(json!({ "index": index, "max": max })))
        }
        ClusterError::BatchTooLarge { max, .. } => (BATCH_TOO_LARGE, Some(json!({ "max": max }))),
        ClusterError::InvalidRecord { index, .. } | ClusterError::BadZkBlinding { index, .. } => {
            (INVALID_RECORD, Some(json!({ "index": index })))
        }
        ClusterError::ZkTreeNotKept { .. } => (ZK_TREE_NOT_KEPT, None),
        ClusterError::NotLeader { leader, leader_addr, .. } => {
            (NOT_LEADER, Some(json!({ "leader": leader, "leaderRaftAddr": leader_addr })))
        }
        ClusterError::NotReplica { replicas, .. } => (NOT_REPLICA, Some(json!({ "replicas": replicas }))),
        ClusterError::NotCertified { .. } => (NOT_CERTIFIED, None),
        ClusterError::Timeout { .. } | ClusterError::Interrupted { .. } => (TIMEOUT, None),
        ClusterError::NoLeader { waited, .. } => {
            (NO_LEADER, Some(json!({ "waitedMs": waited.as_millis() as u64 })))
        }
        ClusterError::Refused { index, reason, constraint, .. } => (
            RECORD_REFUSED,
            Some(json!({ "index": index, "reason": reason, "constraint": format!("0x{constraint}") })),
        ),
        ClusterError::AccessDenied { reason, .. } => (ACCESS_DENIED, Some(json!({ "reason": reason }))),
        ClusterError::Rejected(_) | ClusterError::InvalidContract(_) => (REJECTED, None),
        _ => (INTERNAL, None),
    };
    ErrorObject::owned(code, message, data)
}
