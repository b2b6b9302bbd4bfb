//! `admin_*`: cluster membership, as etcd's `member add` / `member remove` (call on the global
//! leader; elsewhere `1010` with the leader's id). A member that still hosts partition replicas
//! cannot leave (`1020`).

use jsonrpsee::RpcModule;
use jsonrpsee::types::Params;
use pyralog_cluster::raft::Member;
use pyralog_crypto::PublicKey;
use serde::Deserialize;
use serde_json::json;

use crate::rpc::codes::{cluster_error, invalid};
use crate::rpc::method::{RpcResult, parse, timed};
use crate::service::links::ClusterNode;

/// Adds the admin methods to `module`.
pub(crate) fn register(module: &mut RpcModule<ClusterNode>) {
    module
        .register_async_method("admin_addMember", |params, node, _| {
            timed("admin_addMember", async move { add_member(&node, params).await })
        })
        .expect("unique method name");
    module
        .register_async_method("admin_removeMember", |params, node, _| {
            timed("admin_removeMember", async move { remove_member(&node, params).await })
        })
        .expect("unique method name");
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AddParams {
    id: u64,
    raft_addr: String,
    public_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveParams {
    id: u64,
}

/// Registers node `id` at `raftAddr` with `publicKey`, and makes it a voter of the global
/// group once it has caught up (the node must be running, started with that id).
async fn add_member(node: &ClusterNode, params: Params<'static>) -> RpcResult {
    let p: AddParams = parse(&params)?;
    let key: PublicKey = p.public_key.parse().map_err(|err| invalid(format!("publicKey: {err}")))?;
    if p.raft_addr.parse::<std::net::SocketAddr>().is_err() {
        return Err(invalid(format!("raftAddr: {:?} is not ip:port", p.raft_addr)));
    }
    node.add_member(p.id, Member { addr: p.raft_addr.clone(), key }).await.map_err(cluster_error)?;
    Ok(json!({ "id": p.id, "raftAddr": p.raft_addr, "members": node.status().members.len() }))
}

/// Removes node `id` from the cluster.
async fn remove_member(node: &ClusterNode, params: Params<'static>) -> RpcResult {
    let p: RemoveParams = parse(&params)?;
    node.remove_member(p.id).await.map_err(cluster_error)?;
    Ok(json!({ "id": p.id, "members": node.status().members.len() }))
}
