//! The JSON-RPC 2.0 API (jsonrpsee; HTTP and WebSocket on one port). Bytes are 0x-prefixed
//! hex. Parameters are one object with named fields (by-name), e.g.
//! `{"method":"log_read","params":{"log":"orders","partition":0,"from":0,"max":100}}`.
//!
//! One module per namespace ([`system`], [`log`], [`proof`] (`log_getProof`),
//! [`subscriptions`], [`chain`] (`chain_*`, `state_*`, `tx_*`, `log_anchor`), [`staking`]
//! (`staking_*`), [`contract`] (`contract_*`), [`zk`]); what they
//! share is in [`codes`] (the error-code table and the errors failures become) and [`method`]
//! (registration, timing, params). The JSON shapes a light client reads back are
//! `pyralog_light::wire`, so the server and the client use one encoder. No namespace imports
//! another, and nothing outside `rpc/` uses these helpers: the node wires [`methods`] and
//! [`serve`].

mod admin;
mod chain;
mod codes;
mod contract;
mod log;
mod method;
mod proof;
mod server;
mod staking;
mod subscriptions;
mod system;
mod zk;

use std::sync::Arc;

use jsonrpsee::{Methods, RpcModule};
use pyralog_zk::groth16::MembershipKeys;
use serde_json::{Value, json};

use crate::service::anchor::Anchorer;
use crate::service::chain::ChainService;
use crate::service::links::ClusterNode;

pub(crate) use admin::TunnelCtx;
pub(crate) use server::serve;

/// What the RPC methods run against.
pub(crate) struct Backends {
    /// This node's cluster engine.
    pub(crate) node: Arc<ClusterNode>,
    /// The chain, when the node runs one, and its anchoring task (`log_anchor`).
    pub(crate) chain: Option<(Arc<ChainService>, Arc<Anchorer>)>,
    /// The Groth16 membership keys, when `[zk] keys` is configured.
    pub(crate) zk_keys: Option<Arc<MembershipKeys>>,
    /// The cluster links' tunnel (none with plain TCP links) and the base path its added
    /// peers are kept under.
    pub(crate) tunnel: admin::TunnelCtx,
}

/// Every method the node serves.
pub(crate) fn methods(backends: Backends) -> Methods {
    let Backends { node, chain, zk_keys, tunnel } = backends;
    let mut cluster = RpcModule::from_arc(node.clone());
    system::register(&mut cluster);
    admin::register(&mut cluster);
    log::register(&mut cluster);
    proof::register(&mut cluster, chain.as_ref().map(|(service, _)| service.clone()));
    subscriptions::register(&mut cluster);
    let mut openrpc: Value =
        serde_json::from_str(include_str!("openrpc.json")).expect("openrpc.json is JSON");
    openrpc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    cluster.register_method("rpc.discover", move |_, _, _| openrpc.clone()).expect("unique method name");

    let mut methods: Methods = cluster.into();
    methods.merge(admin::tunnel_module(tunnel)).expect("admin method names are unique");
    methods.merge(zk::module(zk::ZkCtx::new(node.clone(), zk_keys))).expect("zk method names are unique");
    if let Some((chain, anchorer)) = chain {
        methods.merge(staking::module(chain.clone())).expect("staking method names are unique");
        methods.merge(contract::module(chain.clone())).expect("contract method names are unique");
        let ctx = chain::ChainCtx { chain, anchorer };
        methods.merge(chain::module(ctx)).expect("chain method names are unique");
    }
    methods
}
