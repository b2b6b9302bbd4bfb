//! The chain state's schema: the values stored under each key of the authenticated state, the
//! keys, and the result codes of transactions. A light client decodes proven state values with
//! these types (postcard; see docs/verifier-spec.md); the app in [`crate::app`] writes them.

use pyralog_crypto::{
    Checkpoint, ClusterId, Digest, Domain, LogName, MemberSet, PublicKey, QuorumCertificate,
};
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

/// Contract code stored on the chain (under [`code_key`] of its [`code_hash`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractCode {
    /// The WASM module.
    pub wasm: Vec<u8>,
    /// Who stored it first.
    pub deployer: PublicKey,
    /// The height that stored it.
    pub height: u64,
}

/// A chain contract (under [`contract_key`] of its [`contract_id`]); its storage is under
/// [`contract_storage_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractRecord {
    /// The [`code_hash`] of the code it runs.
    pub code: Digest,
    /// Who instantiated it.
    pub creator: PublicKey,
    /// The height that instantiated it.
    pub created_at: u64,
    /// Tokens it holds (attached to calls, paid out by `transfer`).
    pub balance: u64,
}

/// The hash that names contract code: BLAKE3 keyed with the `contract_code` domain over the
/// module's bytes.
pub fn code_hash(wasm: &[u8]) -> Digest {
    Domain::ContractCode.hash(wasm)
}

/// The id of the contract `creator` instantiates with the transaction of nonce `nonce`:
/// BLAKE3 keyed with the `contract_id` domain over the key's 32 bytes and the nonce (u64
/// big-endian).
pub fn contract_id(creator: &PublicKey, nonce: u64) -> Digest {
    let mut hasher = Domain::ContractId.hasher();
    hasher.update(creator.as_bytes()).update(&nonce.to_be_bytes());
    Digest(*hasher.finalize().as_bytes())
}

/// Fuel one token buys: a contract call's fee is at least [`MIN_FEE`] plus [`fuel_fee`] of
/// the fuel it may burn, and what it did not burn is refunded when it completes.
pub const FUEL_PER_TOKEN: u64 = 10_000;

/// The most fuel one contract call may be given.
pub const MAX_CALL_FUEL: u64 = 10_000_000;

/// Code bytes one token stores (a deployment's fee is at least [`MIN_FEE`] plus [`code_fee`]).
pub const CODE_BYTES_PER_TOKEN: u64 = 256;

/// The tokens `fuel` costs.
pub fn fuel_fee(fuel: u64) -> u64 {
    fuel.div_ceil(FUEL_PER_TOKEN)
}

/// The tokens storing `len` bytes of code costs.
pub fn code_fee(len: usize) -> u64 {
    (len as u64).div_ceil(CODE_BYTES_PER_TOKEN)
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

/// The state key of contract code: `code/` then its 32-byte [`code_hash`].
pub fn code_key(hash: &Digest) -> Vec<u8> {
    [b"code/".as_slice(), &hash.0].concat()
}

/// The state key of a contract: `contract/` then its 32-byte id.
pub fn contract_key(id: &Digest) -> Vec<u8> {
    [b"contract/".as_slice(), &id.0].concat()
}

/// The state key of a contract's storage key `key`: `cstore/`, its 32-byte id, then `key`. The
/// value is the stored bytes as a postcard byte string (a varint length, then the bytes).
pub fn contract_storage_key(id: &Digest, key: &[u8]) -> Vec<u8> {
    [b"cstore/".as_slice(), &id.0, key].concat()
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
