//! The 32-byte digest type and domain-separated BLAKE3.
//!
//! Every BLAKE3 use in Pyralog hashes under a [`Domain`]: a key derived once from a context
//! string with BLAKE3's `derive_key` mode, then used in keyed mode. Two uses can therefore never
//! produce the same digest for the same input (a Merkle node can never pass for a checkpoint id).

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length in bytes of every digest in Pyralog.
pub const DIGEST_LEN: usize = 32;

/// A 32-byte hash output (BLAKE3 or SHA-256). Displayed and serialized as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; DIGEST_LEN]);

impl Digest {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// Parses 64 hex digits, with or without a `0x` prefix.
    pub fn from_hex(text: &str) -> Result<Self, DigestParseError> {
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut out = [0u8; DIGEST_LEN];
        hex::decode_to_slice(digits, &mut out).map_err(|_| DigestParseError { input_len: text.len() })?;
        Ok(Digest(out))
    }
}

/// A string that is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hex digits (optionally 0x-prefixed) for a digest, got {input_len} characters")]
pub struct DigestParseError {
    /// Length of the rejected input.
    pub input_len: usize,
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::from_hex(s)
    }
}

/// `0x`-hex in human-readable formats; 32 raw bytes in binary ones (postcard).
impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&format!("0x{self}"))
        } else {
            crate::fixed_bytes::serialize(&self.0, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Digest::from_hex(&text).map_err(serde::de::Error::custom)
        } else {
            crate::fixed_bytes::deserialize(deserializer).map(Digest)
        }
    }
}

/// The purposes BLAKE3 is used for. Each has its own derived key (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// Leaves and interior nodes of partition Merkle trees (inside, RFC 6962's 0x00/0x01 prefixes).
    Merkle,
    /// Checkpoint identifiers (the digest of a checkpoint's canonical encoding).
    Checkpoint,
    /// Choosing a record's partition from its key (must never change: it places data).
    PartitionKey,
    /// The id of a value (block payload) that consensus decides on.
    ConsensusValue,
    /// The chain's authenticated state (the Jellyfish Merkle tree's keys and nodes).
    ChainState,
    /// Chain transaction ids.
    ChainTx,
    /// The hash of a contract's WASM code (its name in the chain state and in a log's
    /// configuration).
    ContractCode,
    /// A chain contract's id: its creator's key and the nonce of the transaction that created it.
    ContractId,
    /// The body a signed client request commits to (the records it appends, the range it reads).
    ClientRequest,
    /// Proof-of-Work seal hashes (the hash a miner searches below the target).
    PowSeal,
}

impl Domain {
    /// The BLAKE3 `derive_key` context string. Changing one changes every digest of that use:
    /// never edit, only add.
    pub const fn context(self) -> &'static str {
        match self {
            Domain::Merkle => "pyralog 2026-11-23 merkle tree v1",
            Domain::Checkpoint => "pyralog 2026-11-23 checkpoint id v1",
            Domain::PartitionKey => "pyralog 2026-11-23 partition key v1",
            Domain::ConsensusValue => "pyralog 2026-11-23 consensus value v1",
            Domain::ChainState => "pyralog 2026-11-23 chain state v1",
            Domain::ChainTx => "pyralog 2026-11-23 chain transaction v1",
            Domain::ContractCode => "pyralog 2026-12-06 contract code v1",
            Domain::ContractId => "pyralog 2026-12-06 contract id v1",
            Domain::ClientRequest => "pyralog 2026-12-06 client request v1",
            Domain::PowSeal => "pyralog 2026-12-06 pow seal v1",
        }
    }

    /// The 32-byte key of this domain, derived once per process.
    pub fn key(self) -> &'static [u8; 32] {
        static MERKLE: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::Merkle));
        static CHECKPOINT: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::Checkpoint));
        static PARTITION_KEY: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::PartitionKey));
        static CONSENSUS_VALUE: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::ConsensusValue));
        static CHAIN_STATE: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::ChainState));
        static CHAIN_TX: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::ChainTx));
        static CONTRACT_CODE: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::ContractCode));
        static CONTRACT_ID: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::ContractId));
        static CLIENT_REQUEST: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::ClientRequest));
        static POW_SEAL: LazyLock<[u8; 32]> = LazyLock::new(|| derive(Domain::PowSeal));
        fn derive(domain: Domain) -> [u8; 32] {
            blake3::derive_key(domain.context(), &[])
        }
        match self {
            Domain::Merkle => &MERKLE,
            Domain::Checkpoint => &CHECKPOINT,
            Domain::PartitionKey => &PARTITION_KEY,
            Domain::ConsensusValue => &CONSENSUS_VALUE,
            Domain::ChainState => &CHAIN_STATE,
            Domain::ChainTx => &CHAIN_TX,
            Domain::ContractCode => &CONTRACT_CODE,
            Domain::ContractId => &CONTRACT_ID,
            Domain::ClientRequest => &CLIENT_REQUEST,
            Domain::PowSeal => &POW_SEAL,
        }
    }

    /// A keyed BLAKE3 hasher for this domain, for inputs built from several parts.
    pub fn hasher(self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(self.key())
    }

    /// Hashes one contiguous input in this domain.
    pub fn hash(self, data: &[u8]) -> Digest {
        Digest(*blake3::keyed_hash(self.key(), data).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate_equal_inputs() {
        let data = b"the same bytes";
        assert_ne!(Domain::Merkle.hash(data), Domain::Checkpoint.hash(data));
        assert_ne!(Domain::Merkle.hash(data).0, *blake3::hash(data).as_bytes());
    }

    #[test]
    fn streaming_and_one_shot_agree() {
        let mut hasher = Domain::Checkpoint.hasher();
        hasher.update(b"the same ");
        hasher.update(b"bytes");
        assert_eq!(Digest(*hasher.finalize().as_bytes()), Domain::Checkpoint.hash(b"the same bytes"));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let digest = Domain::Merkle.hash(b"x");
        assert_eq!(Digest::from_hex(&digest.to_string()), Ok(digest));
        assert_eq!(Digest::from_hex(&format!("0x{digest}")), Ok(digest));
        assert_eq!(Digest::from_hex("abc"), Err(DigestParseError { input_len: 3 }));
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
    }
}
