//! Votes, commit certificates and evidence: what validators sign. The finality proof a light
//! client checks is in [`crate::finality`] (re-exported here).

use pyralog_crypto::merkle::{Blake3Merkle, Frontier, MerkleHasher};
use pyralog_crypto::quorum::Signable;
use pyralog_crypto::{Digest, PublicKey, QuorumCertificate, Signature};
use serde::{Deserialize, Serialize};

pub use crate::finality::{FinalityError, FinalityProof};

/// A block's identity: the hash of its payload ([`payload_id`]).
pub type BlockId = Digest;

/// The longest chain id, in bytes (room for `pyralog init`'s `pyralog-<cluster id>` with the
/// longest cluster id; CometBFT allows 50). Every signed consensus message starts with the chain
/// id behind a 2-byte length, so the genesis must name a short one.
pub const MAX_CHAIN_ID_BYTES: usize = 128;

/// Why a chain id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainIdError {
    /// It is empty.
    #[error("the chain id is empty")]
    Empty,
    /// It is longer than [`MAX_CHAIN_ID_BYTES`].
    #[error("the chain id has {len} bytes; at most {MAX_CHAIN_ID_BYTES} are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// Checks that `chain_id` is 1 to [`MAX_CHAIN_ID_BYTES`] bytes.
pub fn check_chain_id(chain_id: &str) -> Result<(), ChainIdError> {
    match chain_id.len() {
        0 => Err(ChainIdError::Empty),
        len if len > MAX_CHAIN_ID_BYTES => Err(ChainIdError::TooLong { len }),
        _ => Ok(()),
    }
}

/// The 2-byte length of a chain id in signed messages. No valid chain id is near the limit
/// ([`check_chain_id`]); one a peer made up past it gets the largest length rather than a panic,
/// and its messages verify against no honest signature.
fn chain_id_length(chain: &[u8]) -> [u8; 2] {
    u16::try_from(chain.len()).unwrap_or(u16::MAX).to_be_bytes()
}

/// The id of a block payload: what validators vote for. It hashes the transaction count, the
/// first transaction (the chain puts its block header there) and the RFC 6962 Merkle root
/// (BLAKE3) of the others, so a light client holding only the header, which carries that count
/// and root, can recompute the id the certificate signs; anyone holding the transactions can
/// check them against it.
pub fn payload_id(txs: &[Vec<u8>]) -> BlockId {
    match txs.split_first() {
        Some((first, rest)) => payload_id_from_parts(txs.len() as u64, first, &tx_root(rest)),
        None => payload_id_from_parts(0, &[], &Blake3Merkle::empty_root()),
    }
}

/// [`payload_id`] from its parts: the transaction count, the first transaction and the Merkle
/// root of the others.
pub fn payload_id_from_parts(count: u64, first: &[u8], rest_root: &Digest) -> BlockId {
    let mut hasher = pyralog_crypto::Domain::ConsensusValue.hasher();
    hasher.update(&count.to_be_bytes());
    hasher.update(Blake3Merkle::hash_leaf(first).as_bytes());
    hasher.update(rest_root.as_bytes());
    Digest(*hasher.finalize().as_bytes())
}

/// The RFC 6962 Merkle root (BLAKE3) of `txs`.
pub fn tx_root(txs: &[Vec<u8>]) -> Digest {
    let mut frontier = Frontier::<Blake3Merkle>::new();
    let mut scratch = Vec::new();
    for tx in txs {
        frontier.push(Blake3Merkle::hash_leaf(tx), &mut scratch);
        scratch.clear();
    }
    frontier.root()
}

/// Tendermint's two voting steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    /// First round of voting.
    Prevote,
    /// Second round; a quorum of these for a block commits it.
    Precommit,
}

/// A validator's vote. `block: None` is a vote for nil (no block this round).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    /// The chain; a vote for one chain never counts on another.
    pub chain_id: String,
    /// The height voted at.
    pub height: u64,
    /// The round within the height.
    pub round: u32,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The block voted for, or nil.
    pub block: Option<BlockId>,
}

impl Signable for Vote {
    const SIGNING_CONTEXT: &'static [u8] = b"pyralog/consensus/vote/v1\0";

    /// Fixed layout: chain id length (u16 BE) and bytes, height (u64 BE), round (u32 BE), kind
    /// (1 prevote, 2 precommit), then 0 for nil or 1 and the 32-byte block id.
    fn encode(&self) -> Vec<u8> {
        let chain = self.chain_id.as_bytes();
        let mut bytes = Vec::with_capacity(2 + chain.len() + 8 + 4 + 1 + 33);
        bytes.extend_from_slice(&chain_id_length(chain));
        bytes.extend_from_slice(chain);
        bytes.extend_from_slice(&self.height.to_be_bytes());
        bytes.extend_from_slice(&self.round.to_be_bytes());
        bytes.push(match self.kind {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        });
        match &self.block {
            None => bytes.push(0),
            Some(block) => {
                bytes.push(1);
                bytes.extend_from_slice(&block.0);
            }
        }
        bytes
    }
}

/// Proof that a validator signed two different votes of one kind at one height and round
/// (CometBFT's duplicate-vote evidence): anyone can check it with the validator's key alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateVote {
    /// The validator.
    pub validator: PublicKey,
    /// One vote.
    pub first: Vote,
    /// Its signature.
    pub first_signature: Signature,
    /// The conflicting vote.
    pub second: Vote,
    /// Its signature.
    pub second_signature: Signature,
}

impl DuplicateVote {
    /// Whether this proves equivocation: same chain, height, round and kind, different blocks,
    /// both signatures valid.
    pub fn verify(&self) -> bool {
        let (a, b) = (&self.first, &self.second);
        a.chain_id == b.chain_id
            && a.height == b.height
            && a.round == b.round
            && a.kind == b.kind
            && a.block != b.block
            && signed_both(&self.validator, a, &self.first_signature, b, &self.second_signature)
    }
}

/// Whether `validator` signed both `a` and `b` (the second half of every equivocation proof).
fn signed_both<M: Signable>(
    validator: &PublicKey,
    a: &M,
    a_signature: &Signature,
    b: &M,
    b_signature: &Signature,
) -> bool {
    validator.verify(&a.signing_bytes(), a_signature).is_ok()
        && validator.verify(&b.signing_bytes(), b_signature).is_ok()
}

/// What a proposer signs: chain, height, round, proof-of-lock round (-1: none) and block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalHeader {
    /// The chain.
    pub chain_id: String,
    /// The height.
    pub height: u64,
    /// The round.
    pub round: i64,
    /// The round of the proof-of-lock it re-proposes from, or -1.
    pub pol_round: i64,
    /// The proposed block.
    pub block: BlockId,
}

impl Signable for ProposalHeader {
    const SIGNING_CONTEXT: &'static [u8] = b"pyralog/consensus/proposal/v1\0";

    fn encode(&self) -> Vec<u8> {
        let chain = self.chain_id.as_bytes();
        let mut bytes = Vec::with_capacity(2 + chain.len() + 8 + 8 + 8 + 32);
        bytes.extend_from_slice(&chain_id_length(chain));
        bytes.extend_from_slice(chain);
        bytes.extend_from_slice(&self.height.to_be_bytes());
        bytes.extend_from_slice(&self.round.to_be_bytes());
        bytes.extend_from_slice(&self.pol_round.to_be_bytes());
        bytes.extend_from_slice(&self.block.0);
        bytes
    }
}

/// Proof that a proposer signed two different blocks for one height and round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateProposal {
    /// The proposer.
    pub validator: PublicKey,
    /// One proposal.
    pub first: ProposalHeader,
    /// Its signature.
    pub first_signature: Signature,
    /// The conflicting proposal.
    pub second: ProposalHeader,
    /// Its signature.
    pub second_signature: Signature,
}

impl DuplicateProposal {
    /// Whether this proves equivocation: same chain, height and round, different blocks, both
    /// signatures valid.
    pub fn verify(&self) -> bool {
        let (a, b) = (&self.first, &self.second);
        a.chain_id == b.chain_id
            && a.height == b.height
            && a.round == b.round
            && a.block != b.block
            && signed_both(&self.validator, a, &self.first_signature, b, &self.second_signature)
    }
}

/// Misbehaviour a validator can be punished for, provable with its key alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// Two conflicting votes.
    DuplicateVote(DuplicateVote),
    /// Two conflicting proposals.
    DuplicateProposal(DuplicateProposal),
}

impl Evidence {
    /// The accused validator.
    pub fn validator(&self) -> PublicKey {
        match self {
            Evidence::DuplicateVote(e) => e.validator,
            Evidence::DuplicateProposal(e) => e.validator,
        }
    }

    /// The chain whose messages it holds (the first one's: [`Evidence::verify`] checks both name
    /// the same).
    pub fn chain_id(&self) -> &str {
        match self {
            Evidence::DuplicateVote(e) => &e.first.chain_id,
            Evidence::DuplicateProposal(e) => &e.first.chain_id,
        }
    }

    /// The height of the misbehaviour.
    pub fn height(&self) -> u64 {
        match self {
            Evidence::DuplicateVote(e) => e.first.height,
            Evidence::DuplicateProposal(e) => e.first.height,
        }
    }

    /// Whether it proves what it claims.
    pub fn verify(&self) -> bool {
        match self {
            Evidence::DuplicateVote(e) => e.verify(),
            Evidence::DuplicateProposal(e) => e.verify(),
        }
    }
}

/// Precommits of more than 2/3 of the voting power for one block at one height and round.
pub type CommitCertificate = QuorumCertificate<Vote>;
