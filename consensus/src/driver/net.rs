//! The network as the driver sees it: what arrives ([`NetEvent`]) and what it sends
//! ([`ConsensusNet`]). The node implements it over libp2p, the simulator in memory.

use std::future::Future;

use pyralog_crypto::PublicKey;
use tokio::sync::oneshot;

use super::store::StoredBlock;
use crate::vote::Evidence;

/// What the network hands the driver.
#[derive(Debug)]
pub enum NetEvent {
    /// A consensus message from a peer.
    Message {
        /// The sender's key (its authenticated transport identity).
        from: PublicKey,
        /// The engine message.
        bytes: Vec<u8>,
    },
    /// A peer asks for blocks (block sync); answer on `reply`.
    BlocksRequested {
        /// The first height wanted.
        from_height: u64,
        /// At most this many.
        max: u32,
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<StoredBlock>>,
    },
    /// A transaction gossiped by a peer: checked and queued like a local one, not re-gossiped
    /// (the network forwards it).
    Transaction(Vec<u8>),
    /// Evidence of equivocation gossiped by a peer: checked and pooled for a coming block, not
    /// re-gossiped.
    Evidence {
        /// The peer that passed it on (reported if it proves nothing).
        from: PublicKey,
        /// The evidence.
        evidence: Box<Evidence>,
    },
}

/// Blocks a peer served, and who served them (a peer that serves blocks that do not verify
/// is reported).
#[derive(Debug, Clone)]
pub struct FetchedBlocks {
    /// The serving peer.
    pub from: PublicKey,
    /// Its blocks, in height order.
    pub blocks: Vec<StoredBlock>,
}

/// Why the network could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network: {0}")]
pub struct NetError(pub String);

/// The network as consensus sees it (no libp2p type here).
pub trait ConsensusNet: Send + Sync + 'static {
    /// Sends `bytes` to every validator.
    fn broadcast(&self, bytes: Vec<u8>);
    /// Sends `bytes` to one peer.
    fn send_to(&self, to: PublicKey, bytes: Vec<u8>);
    /// Asks some peer for up to `max` blocks from `from_height`. The future owns what it needs
    /// (the driver runs it beside its loop, which keeps deciding meanwhile).
    fn fetch_blocks(
        &self,
        from_height: u64,
        max: u32,
    ) -> impl Future<Output = Result<FetchedBlocks, NetError>> + Send + 'static;
    /// Spreads a transaction this node admitted to the other validators' mempools.
    fn gossip_tx(&self, tx: Vec<u8>);
    /// Spreads verified evidence of equivocation to the other validators, so whoever proposes
    /// next can put it in a block.
    fn gossip_evidence(&self, evidence: &Evidence);
    /// Reports a peer that sent invalid data (scored down; banned past a limit).
    fn report(&self, peer: PublicKey, reason: String);
    /// The keys whose consensus messages count from now on: the current validators and those of
    /// an announced next set (validator updates take effect two heights after their block).
    fn set_validators(&self, keys: Vec<PublicKey>);
}
