//! The broker as every connection sees it: the cluster node and the brokers Metadata lists.

use std::sync::Arc;

use anyhow::Context;

use super::groups::Coordinator;
use crate::service::links::ClusterNode;

/// A broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerAddr {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
}

/// `host:port` of broker `id`.
pub(crate) fn broker_addr(id: u64, addr: &str) -> anyhow::Result<BrokerAddr> {
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<i32>().ok()?)))
        .with_context(|| format!("kafka address {addr:?} is not host:port"))?;
    let id = i32::try_from(id).context("a member id does not fit a Kafka broker id")?;
    Ok(BrokerAddr { id, host, port })
}

/// What every connection shares.
pub(crate) struct Broker {
    pub(crate) node: Arc<ClusterNode>,
    /// This node's broker id (its cluster member id).
    pub(crate) id: i32,
    /// Every broker Metadata lists: this node first, then its peers.
    pub(crate) brokers: Vec<BrokerAddr>,
    /// The consumer group coordinator (active while this node leads the global group).
    pub(crate) groups: Arc<Coordinator>,
}
