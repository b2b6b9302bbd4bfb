//! `system_*`: health, readiness, version and the node's status (members, partitions, roles).

use jsonrpsee::RpcModule;
use jsonrpsee::types::ErrorObject;
use pyralog_cluster::engine::Role;
use pyralog_cluster::failpoints::{self, FailpointError};
use serde_json::{Value, json};

use crate::rpc::codes;
use crate::rpc::method::register_timed;
use crate::service::links::ClusterNode;

/// Adds the system methods to `module`.
pub(crate) fn register(module: &mut RpcModule<ClusterNode>) {
    let register = register_timed::<ClusterNode>;
    register(module, "system_health", |node, _| {
        let status = node.status();
        let ok = status.global_leader.is_some() && !status.members.is_empty();
        Ok(json!({ "ok": ok, "globalLeader": status.global_leader, "members": status.members.len() }))
    });
    register(module, "system_readiness", |node, _| {
        let status = node.status();
        match status.global_leader.is_some() && !status.members.is_empty() {
            true => Ok(json!({ "ready": true })),
            false => Err(ErrorObject::owned(
                codes::NOT_READY,
                "not ready: no global leader or members yet",
                None::<()>,
            )),
        }
    });
    register(module, "system_version", |_, _| {
        Ok(json!({ "name": "pyralog", "version": env!("CARGO_PKG_VERSION") }))
    });
    register(module, "system_status", |node, _| Ok(status_json(node)));
    register(module, "debug_setFailpoint", |_, params| set_failpoint(params));
}

/// `debug_setFailpoint {name, actions}`: a storage failpoint (test builds only; see
/// `pyralog_cluster::failpoints`).
fn set_failpoint(params: jsonrpsee::types::Params<'_>) -> Result<Value, jsonrpsee::types::ErrorObjectOwned> {
    let p: pyralog_rpc_params::SetFailpoint = crate::rpc::method::parse(&params)?;
    match failpoints::configure(&p.name, &p.actions) {
        Ok(()) => Ok(json!({ "name": p.name, "actions": p.actions })),
        Err(err @ FailpointError::NotBuilt) => {
            Err(ErrorObject::owned(codes::FAILPOINTS_NOT_BUILT, err.to_string(), None::<()>))
        }
        Err(err) => Err(codes::invalid(err.to_string())),
    }
}

fn status_json(node: &ClusterNode) -> Value {
    let status = node.status();
    let role = |role: Role| format!("{role:?}").to_lowercase();
    json!({
        "nodeId": status.id,
        "cluster": status.cluster.as_str(),
        "raftAddr": status.addr,
        "globalLeader": status.global_leader,
        "members": status.members.iter().map(|(id, m)| json!({
            "id": id, "raftAddr": m.addr, "publicKey": m.key.to_string(),
        })).collect::<Vec<_>>(),
        "partitions": status.partitions.iter().map(|p| json!({
            "log": p.log.as_str(), "partition": p.partition, "role": role(p.role), "leader": p.leader,
            "epoch": p.epoch, "size": p.size, "certifiedSize": p.certified_size,
        })).collect::<Vec<_>>(),
    })
}
