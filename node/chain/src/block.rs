//! Block headers and the consensus info after them. A block's payload (what consensus decides)
//! is its header, its [`ConsensusInfo`], then its transactions; the block id the validators sign ([`payload_id`]) hashes the header whole and
//! the other transactions by their count and Merkle root, both of which the header carries. So a
//! light client that holds a header and its commit certificate holds everything the header says
//! (state root, validator hashes, parent) on the validators' word, without the transactions.

use pyralog_consensus_types::vote::{BlockId, Evidence, payload_id_from_parts, tx_root};
use pyralog_consensus_types::{FinalityProof, Validator};
use pyralog_crypto::{Digest, Domain, PublicKey};
use serde::{Deserialize, Serialize};

/// How far ahead of a validator's clock a proposed block time may be.
pub const MAX_CLOCK_DRIFT_MS: u64 = 10_000;

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The chain.
    pub chain_id: String,
    /// The height.
    pub height: u64,
    /// The proposer's time, ms since the Unix epoch (later than the parent's).
    pub time_ms: u64,
    /// The parent block's id (zero at height 1).
    pub parent: BlockId,
    /// How many elements follow the header (the consensus info, then the transactions).
    pub tx_count: u64,
    /// Their Merkle root (RFC 6962, BLAKE3).
    pub tx_root: Digest,
    /// The state root after the parent block (version `height - 1` of the state).
    pub state_root: Digest,
    /// Hash of the validators deciding this block.
    pub validators_hash: Digest,
    /// Hash of the validators deciding the next one.
    pub next_validators_hash: Digest,
    /// Who proposed it.
    pub proposer: PublicKey,
    /// The consensus engine.
    pub engine: String,
}

impl Header {
    /// The canonical encoding (the payload's first element).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("headers serialize")
    }

    /// Parses a header.
    pub fn decode(bytes: &[u8]) -> Result<Header, String> {
        let header: Header = postcard::from_bytes(bytes).map_err(|e| format!("undecodable header: {e}"))?;
        if header.encode() != bytes {
            return Err("non-canonical header encoding".into());
        }
        if header.tx_count == u64::MAX {
            // The block id counts the header too: one more would not fit.
            return Err("a header cannot announce 2^64 - 1 transactions".into());
        }
        Ok(header)
    }

    /// The block id the validators sign (the consensus payload id of this header and its
    /// transactions).
    pub fn block_id(&self) -> BlockId {
        // `decode` refuses `u64::MAX`; a header built here never counts that many.
        payload_id_from_parts(self.tx_count.saturating_add(1), &self.encode(), &self.tx_root)
    }
}

/// The state version the header at `height` commits to in its `state_root`: its parent's
/// (`height - 1`), or on a Proof-of-Work chain (`confirmations = Some(k)`) the state `k` blocks
/// below its parent, the last final one when it was mined (verifier spec §12.8).
pub fn committed_state_version(height: u64, confirmations: Option<u64>) -> u64 {
    height.saturating_sub(1 + confirmations.unwrap_or(0))
}

/// The hash of a validator set, as headers carry it.
pub fn validators_hash(validators: &[Validator]) -> Digest {
    let mut hasher = Domain::ChainState.hasher();
    hasher.update(b"validators\0");
    hasher.update(&postcard::to_allocvec(validators).expect("validators serialize"));
    Digest(*hasher.finalize().as_bytes())
}

/// The Merkle root of a block's transactions (those after the header).
pub fn transactions_root(txs: &[Vec<u8>]) -> Digest {
    tx_root(txs)
}

/// What a block carries for consensus, right after its header (the payload's second element,
/// counted in the header's `tx_count` and `tx_root`): the parent's finality proof, whose signers
/// the app learns (CometBFT's `LastCommit`), and evidence of equivocation for the app to punish.
/// The proposer's driver supplies both; every validator's driver checks them
/// ([`pyralog_consensus_types::evidence`]) and its app checks the rest before voting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusInfo {
    /// The parent's finality proof (none at height 1).
    pub last_commit: Option<FinalityProof>,
    /// Evidence of equivocation, at most one piece per validator and height.
    pub evidence: Vec<Evidence>,
}

impl ConsensusInfo {
    /// The canonical encoding (postcard).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("consensus info serializes")
    }

    /// Parses the payload's second element; only the canonical encoding is accepted.
    pub fn decode(bytes: &[u8]) -> Result<ConsensusInfo, String> {
        let info: ConsensusInfo =
            postcard::from_bytes(bytes).map_err(|e| format!("undecodable consensus info: {e}"))?;
        if info.encode() != bytes {
            return Err("non-canonical consensus info encoding".into());
        }
        Ok(info)
    }
}
