//! Anchoring: each partition's leader puts the partition's latest certified checkpoint on the
//! chain (an `AnchorCheckpoint` transaction from the node's own account, with the consistency
//! proof from the previously anchored checkpoint), every `[chain] anchor_interval_ms` and when
//! `log_anchor` asks.
//!
//! Nonces: a round signs consecutive nonces from the account's next one (or past what this node
//! already has in flight). In-flight anchors older than [`RESUBMIT_AFTER`] are forgotten, so a
//! transaction lost on the way (a crash, a full mempool) is sent again from the state's nonce.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyralog_chain::app::read_state;
use pyralog_chain::tx::{Action, SignedTx, Tx};
use pyralog_chain::values::{Account, Anchor, MIN_FEE, account_key, anchor_key};
use pyralog_cluster::engine::Role;
use pyralog_crypto::Digest;
use pyralog_light::wire::to_hex;
use serde::Serialize;

use crate::service::chain::ChainService;
use crate::service::links::ClusterNode;

/// When unconfirmed anchors are sent again.
const RESUBMIT_AFTER: Duration = Duration::from_secs(10);

/// One anchor this node submitted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Submitted {
    /// The log.
    pub(crate) log: String,
    /// The partition.
    pub(crate) partition: u32,
    /// The checkpoint size anchored.
    pub(crate) size: u64,
    /// The transaction id (0x hex).
    pub(crate) tx: String,
}

/// The anchoring task: rounds on a timer ([`Anchorer::run`]) and on demand (`log_anchor`),
/// one at a time.
pub(crate) struct Anchorer {
    service: Arc<ChainService>,
    cluster: Arc<ClusterNode>,
    memory: tokio::sync::Mutex<Anchoring>,
}

impl Anchorer {
    /// Anchors `cluster`'s partitions on `service`'s chain.
    pub(crate) fn new(service: Arc<ChainService>, cluster: Arc<ClusterNode>) -> Arc<Anchorer> {
        Arc::new(Anchorer { service, cluster, memory: Default::default() })
    }

    /// Runs a round every `interval` (zero: never; `log_anchor` runs rounds on demand).
    pub(crate) async fn run(self: Arc<Self>, interval: Duration) {
        if interval.is_zero() {
            return;
        }
        loop {
            tokio::time::sleep(interval).await;
            match self.round().await {
                Ok(submitted) if !submitted.is_empty() => tracing::debug!(?submitted, "anchors submitted"),
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "anchoring round failed"),
            }
        }
    }

    /// One round now (waits for a round in progress to finish first).
    pub(crate) async fn round(&self) -> anyhow::Result<Vec<Submitted>> {
        let mut memory = self.memory.lock().await;
        round(&self.service, &self.cluster, &mut memory).await
    }
}

/// The anchoring task's memory between rounds.
#[derive(Default)]
struct Anchoring {
    /// The next nonce to use while earlier anchors are in flight.
    next_nonce: Option<u64>,
    /// Sizes in flight per (log, partition), and since when.
    in_flight: BTreeMap<(String, u32), (u64, Instant)>,
}

/// Submits an anchor for every partition this node leads whose certified checkpoint is ahead of
/// the anchored one (and of what is in flight).
async fn round(
    service: &ChainService,
    cluster: &ClusterNode,
    memory: &mut Anchoring,
) -> anyhow::Result<Vec<Submitted>> {
    let Some(version) = service.state.latest_version()? else { return Ok(Vec::new()) };
    let me = service.key.public();
    let account: Account = read_state(&service.state, &account_key(&me), version)?.unwrap_or_default();
    memory.in_flight.retain(|_, (_, since)| since.elapsed() < RESUBMIT_AFTER);
    if memory.in_flight.is_empty() {
        memory.next_nonce = None;
    }
    let mut nonce = memory.next_nonce.unwrap_or(account.nonce).max(account.nonce);
    let mut submitted = Vec::new();
    let status = cluster.status();
    for partition in status.partitions.iter().filter(|p| p.role == Role::Leader) {
        let (log, index) = (partition.log.as_str(), partition.partition);
        let Some(certificate) = cluster.checkpoint(log, index)? else { continue };
        let size = certificate.message.size;
        let key = anchor_key(&status.cluster, &partition.log, index);
        let anchored: Option<Anchor> = read_state(&service.state, &key, version)?;
        let anchored_size = anchored.as_ref().map_or(0, |a| a.certificate.message.size);
        let in_flight = memory.in_flight.get(&(log.to_owned(), index)).map_or(0, |(s, _)| *s);
        if size == 0 || size <= anchored_size.max(in_flight) {
            continue;
        }
        let consistency = match anchored_size {
            0 => None,
            old => Some(cluster.consistency_proof(log, index, old, size)?),
        };
        let tx = Tx {
            chain_id: service.chain_id.clone(),
            sender: me,
            nonce,
            fee: MIN_FEE,
            action: Action::AnchorCheckpoint { certificate, consistency },
        };
        let signed = SignedTx::sign(tx, &service.key);
        let id: Digest = signed.id();
        service.txs.send(signed.encode()).await.map_err(|_| anyhow::anyhow!("the chain driver stopped"))?;
        memory.in_flight.insert((log.to_owned(), index), (size, Instant::now()));
        submitted.push(Submitted { log: log.to_owned(), partition: index, size, tx: to_hex(&id.0) });
        nonce += 1;
    }
    if !submitted.is_empty() {
        memory.next_nonce = Some(nonce);
    }
    Ok(submitted)
}
