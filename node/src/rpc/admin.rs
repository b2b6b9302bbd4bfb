//! `admin_*`: cluster membership, as etcd's `member add` / `member remove` (call on the global
//! leader; elsewhere `1010` with the leader's id). A member that still hosts partition replicas
//! cannot leave (`1020`).
//!
//! With WireGuard links a member that did not found the cluster must be a tunnel peer of every
//! member before it is added: `admin_addTunnelPeer` on each (as `wg set <dev> peer ...` on each
//! host), kept in `BASE/peers/added.toml` across restarts.

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObject, Params};
use pyralog_cluster::raft::Member;
use pyralog_config::{AddedTunnelPeer, BasePath};
use pyralog_p2p::tunnel::{PeerConfig, Tunnel, TunnelError, WireGuardPublic};
use pyralog_rpc_params::{AddMember, AddTunnelPeer, RemoveMember};
use serde_json::json;

use crate::rpc::codes::{self, cluster_error, internal, invalid};
use crate::rpc::method::{RpcResult, parse, refused, timed};
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

/// Registers node `id` at `raftAddr` with `publicKey`, and makes it a voter of the global
/// group once it has caught up (the node must be running, started with that id).
async fn add_member(node: &ClusterNode, params: Params<'static>) -> RpcResult {
    let p: AddMember = parse(&params)?;
    let key = p.key().map_err(refused)?;
    node.add_member(p.id, Member { addr: p.raft_addr.clone(), key }).await.map_err(cluster_error)?;
    Ok(json!({ "id": p.id, "raftAddr": p.raft_addr, "members": node.status().members.len() }))
}

/// Removes node `id` from the cluster.
async fn remove_member(node: &ClusterNode, params: Params<'static>) -> RpcResult {
    let p: RemoveMember = parse(&params)?;
    node.remove_member(p.id).await.map_err(cluster_error)?;
    Ok(json!({ "id": p.id, "members": node.status().members.len() }))
}

/// What `admin_addTunnelPeer` runs against.
pub(crate) struct TunnelCtx {
    /// The node's tunnel (none with plain TCP links).
    pub(crate) tunnel: Option<Tunnel>,
    /// Where added peers are kept.
    pub(crate) base: BasePath,
    /// One addition at a time, so `BASE/peers/added.toml` is read and written by one call.
    pub(crate) adding: tokio::sync::Mutex<()>,
}

impl TunnelCtx {
    /// The context of a node with `tunnel` (none with plain TCP links) and base path `base`.
    pub(crate) fn new(tunnel: Option<Tunnel>, base: BasePath) -> Self {
        TunnelCtx { tunnel, base, adding: tokio::sync::Mutex::new(()) }
    }
}

/// `admin_addTunnelPeer` and `system_tunnel`, over the node's tunnel.
pub(crate) fn tunnel_module(ctx: TunnelCtx) -> RpcModule<TunnelCtx> {
    let mut module = RpcModule::new(ctx);
    module
        .register_async_method("admin_addTunnelPeer", |params, ctx, _| {
            timed("admin_addTunnelPeer", async move { add_tunnel_peer(&ctx, params).await })
        })
        .expect("unique method name");
    module
        .register_async_method("system_tunnel", |_, ctx, _| {
            timed("system_tunnel", async move { Ok(tunnel_status(&ctx)) })
        })
        .expect("unique method name");
    module
}

/// How the cluster links run: `{links: "tcp"}`, or WireGuard with whether Rosenpass keys it and
/// the tunnel's counters since start (the `pyralog_tunnel_events` metric's kinds).
fn tunnel_status(ctx: &TunnelCtx) -> serde_json::Value {
    let Some(tunnel) = &ctx.tunnel else { return json!({ "links": "tcp" }) };
    let counters: serde_json::Map<String, serde_json::Value> =
        tunnel.stats().by_kind().into_iter().map(|(kind, value)| (kind.to_owned(), json!(value))).collect();
    json!({ "links": "wireguard", "rosenpass": tunnel.runs_rosenpass(), "counters": counters })
}

/// Makes the node at `endpoint` a peer of this node's tunnel and keeps it for restarts. Adding
/// a peer that is already there changes nothing (`added: false`), except that one the last
/// call linked but could not keep is kept now.
async fn add_tunnel_peer(ctx: &TunnelCtx, params: Params<'static>) -> RpcResult {
    let p: AddTunnelPeer = parse(&params)?;
    let endpoint = p.endpoint_addr().map_err(refused)?;
    let rosenpass = p.rosenpass_key_bytes().map_err(refused)?;
    let public_key: WireGuardPublic =
        p.wireguard_public_key.parse().map_err(|err| invalid(format!("wireguardPublicKey: {err}")))?;
    let Some(tunnel) = &ctx.tunnel else {
        let message = "this node's cluster links are plain TCP (node.transport = \"tcp\"): no tunnel";
        return Err(ErrorObject::owned(codes::NO_TUNNEL, message, None::<()>));
    };
    if tunnel.runs_rosenpass() && rosenpass.is_none() {
        // Its side would use a random preshared key until an exchange that never comes.
        return Err(invalid("rosenpassPublicKey: this node keys its links with Rosenpass; give the peer's"));
    }
    let _adding = ctx.adding.lock().await;
    let peer = PeerConfig {
        public_key,
        endpoint: Some(endpoint),
        rosenpass_public_key: rosenpass.clone(),
        rosenpass_endpoint: None,
    };
    let added = tunnel.add_peer(peer).await.map_err(|err| match err {
        TunnelError::BadKey(_) => invalid(err.to_string()),
        TunnelError::Config(_) => ErrorObject::owned(codes::REJECTED, err.to_string(), None::<()>),
        other => internal(other),
    })?;
    let (base, wireguard) = (ctx.base.clone(), p.wireguard_public_key.clone());
    let kept = AddedTunnelPeer {
        wireguard_public_key: p.wireguard_public_key.clone(),
        endpoint: p.endpoint.clone(),
        rosenpass_public_key: None,
    };
    let name = public_key.overlay_ipv4().to_string();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let saved = base.load_added_tunnel_peers()?.iter().any(|peer| peer.wireguard_public_key == wireguard);
        if added || !saved {
            base.save_added_tunnel_peer(&name, kept, rosenpass.as_deref())?;
        }
        Ok(())
    })
    .await
    .map_err(internal)?
    .map_err(|err| {
        internal(format!(
            "the peer is linked but could not be kept for restarts (call again to retry): {err:#}"
        ))
    })?;
    Ok(json!({ "wireguardPublicKey": p.wireguard_public_key, "endpoint": p.endpoint, "added": added }))
}
