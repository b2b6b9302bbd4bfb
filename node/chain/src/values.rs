//! The chain state's schema: the values stored under each key of the authenticated state, the
//! keys, and the result codes of transactions. A light client decodes proven state values with
//! these types (postcard; see docs/verifier-spec.md); the app in [`crate::app`] writes them.

use pyralog_crypto::{Checkpoint, ClusterId, LogName, MemberSet, PublicKey, QuorumCertificate};
use serde::{Deserialize, Serialize};

use crate::tx::MAX_CLUSTER_MEMBERS;

/// An account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance.
    pub balance: u64,
    /// The nonce its next transaction must carry.
    pub nonce: u64,
}

/// A registered cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// Who may re-register it.
    pub owner: PublicKey,
    /// Its replicas' checkpoint-signing keys.
    pub members: Vec<PublicKey>,
    /// Their overlay addresses.
    pub peers: Vec<String>,
}

/// A partition's latest anchored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The certified checkpoint.
    pub certificate: QuorumCertificate<Checkpoint>,
    /// The height of the block that anchored it.
    pub height: u64,
}

/// The genesis app state: initial balances and the clusters registered from the start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Accounts and their balances.
    pub accounts: Vec<(PublicKey, u64)>,
    /// Clusters registered at genesis.
    pub clusters: Vec<(ClusterId, ClusterRecord)>,
    /// Proof-of-Stake's parameters (none: the validator set is the genesis set, forever).
    pub staking: Option<crate::staking::StakingParams>,
    /// The chain's start (ms since the Unix epoch): the first block's time must be later.
    pub genesis_time_ms: Option<u64>,
}

impl Genesis {
    /// Refuses what would make validators fail later: a cluster without members, with more than
    /// [`MAX_CLUSTER_MEMBERS`], with a member twice, or registered twice.
    pub fn check(&self) -> Result<(), String> {
        let mut ids = std::collections::BTreeSet::new();
        for (id, record) in &self.clusters {
            if !ids.insert(id) {
                return Err(format!("cluster {id} is registered twice"));
            }
            cluster_members(&record.members).map_err(|reason| format!("cluster {id}: {reason}"))?;
        }
        if let Some(params) = &self.staking {
            params.check()?;
        }
        Ok(())
    }
}

/// The member set of a cluster whose `members` are valid: 1 to [`MAX_CLUSTER_MEMBERS`] distinct
/// keys (the same rule for registration transactions and genesis).
pub fn cluster_members(members: &[PublicKey]) -> Result<MemberSet, String> {
    if members.is_empty() || members.len() > MAX_CLUSTER_MEMBERS {
        return Err(format!("a cluster has 1 to {MAX_CLUSTER_MEMBERS} members, not {}", members.len()));
    }
    MemberSet::equal(members.iter().copied()).map_err(|_| "members must be distinct".into())
}

/// Where a committed transaction landed and how it went (`tx_status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    /// The block's height.
    pub height: u64,
    /// Its position in the block (0 is the header, 1 the consensus info).
    pub index: u32,
    /// The result code ([`codes`]).
    pub code: u32,
    /// What happened.
    pub log: String,
}

/// A validator's misbehaviour that a block proved (stored under [`misbehaviour_key`]), for
/// slashing to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MisbehaviourRecord {
    /// What it did.
    pub kind: MisbehaviourKind,
    /// The height of the block that carried the evidence.
    pub included_at: u64,
}

/// Kinds of misbehaviour, as the state records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MisbehaviourKind {
    /// Two conflicting votes of one kind at one height and round.
    DuplicateVote,
    /// Two conflicting proposals at one height and round.
    DuplicateProposal,
}

/// Who signed the finality proof of the last block's parent, as the last block carried it (the
/// validators' liveness record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCommit {
    /// The parent's height.
    pub height: u64,
    /// The signers, sorted.
    pub signers: Vec<PublicKey>,
}

/// The last committed block, as the next header refers to it (under [`LAST_BLOCK_KEY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastBlock {
    /// Its height.
    pub height: u64,
    /// Its id.
    pub id: pyralog_crypto::Digest,
    /// Its header time.
    pub time_ms: u64,
}

/// `meta/validators`: the validators of the next block (a `Vec<Validator>` in canonical order);
/// at version `h` the set that decides height `h + 1`.
pub const VALIDATORS_KEY: &[u8] = b"meta/validators";
/// `meta/next_validators`: the set of the block after the next (absent: the same as
/// [`VALIDATORS_KEY`]); the next header's `next_validators_hash` commits to it.
pub const NEXT_VALIDATORS_KEY: &[u8] = b"meta/next_validators";
/// `meta/last_block`: the last block's [`LastBlock`].
pub const LAST_BLOCK_KEY: &[u8] = b"meta/last_block";
/// `meta/last_commit`: who signed the last block's parent ([`LastCommit`]).
pub const LAST_COMMIT_KEY: &[u8] = b"meta/last_commit";

/// How far past a sender's next nonce the mempool accepts transactions.
pub const MEMPOOL_NONCE_WINDOW: u64 = 64;

/// The lowest fee a transaction may carry (spam costs at least this).
pub const MIN_FEE: u64 = 1;

/// The state key of an account.
pub fn account_key(key: &PublicKey) -> Vec<u8> {
    [b"account/".as_slice(), key.as_bytes()].concat()
}

/// The state key of a cluster.
pub fn cluster_key(cluster: &ClusterId) -> Vec<u8> {
    format!("cluster/{cluster}").into_bytes()
}

/// The state key of a partition's anchor.
pub fn anchor_key(cluster: &ClusterId, log: &LogName, partition: u32) -> Vec<u8> {
    format!("anchor/{cluster}/{log}/{partition}").into_bytes()
}

/// The state key of a validator's misbehaviour at a height: one record per validator and height,
/// so the same double sign is never punished twice.
pub fn misbehaviour_key(validator: &PublicKey, height: u64) -> Vec<u8> {
    [b"misbehaviour/".as_slice(), validator.as_bytes(), &height.to_be_bytes()].concat()
}

/// Result codes of transactions in a block.
pub mod codes {
    /// Applied.
    pub const OK: u32 = 0;
    /// Undecodable, another chain, or a bad signature.
    pub const INVALID: u32 = 1;
    /// Not the sender's next nonce.
    pub const BAD_NONCE: u32 = 2;
    /// The sender cannot pay the fee (or the fee is under the minimum).
    pub const FEE: u32 = 3;
    /// The action failed (its fee was charged).
    pub const ACTION_FAILED: u32 = 4;
}
