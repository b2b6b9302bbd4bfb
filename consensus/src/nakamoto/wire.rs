//! What Proof-of-Work nodes send each other, and what the engine keeps in its WAL. Canonical
//! postcard: bytes that decode to a message but do not re-encode to themselves are refused.

use pyralog_crypto::Digest;
use serde::{Deserialize, Serialize};

use crate::pow::Seal;

/// A block and its seal: what a miner publishes and a node relays on request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBlock {
    /// The seal (its `block` is the payload's id).
    pub seal: Seal,
    /// The payload.
    pub txs: Vec<Vec<u8>>,
}

/// A Proof-of-Work engine message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowMessage {
    /// A sealed block (new, or asked for).
    Block(SealedBlock),
    /// Asks for the block whose seal hashes to `seal` (the parent of a block that arrived before
    /// it).
    GetBlock {
        /// The seal hash.
        seal: Digest,
    },
}

/// A WAL entry: a block accepted but not yet final, or the seal of a final block kept for the
/// time rule of the next blocks (the median of the last [`crate::pow::MEDIAN_TIME_SPAN`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum WalEntry {
    /// A checked block, not yet final.
    Block(SealedBlock),
    /// The seal of a final block.
    Final(Seal),
}

/// The canonical encoding.
pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("pow messages serialize")
}

/// Decodes canonical bytes.
pub(super) fn decode<T: Serialize + for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let value: T = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
    if encode(&value) != bytes {
        return Err("non-canonical encoding".into());
    }
    Ok(value)
}

impl PowMessage {
    /// The message's bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Parses a message; anything but the canonical encoding is refused.
    pub fn decode(bytes: &[u8]) -> Result<PowMessage, String> {
        decode(bytes)
    }
}
