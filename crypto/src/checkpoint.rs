//! Checkpoints: "partition P of log L in cluster C had `size` records with Merkle root R at epoch E".
//!
//! # Canonical encoding (versions 1 and 2)
//!
//! All integers big-endian; names are 1-64 bytes of `[A-Za-z0-9._-]` starting with a letter or digit.
//! A checkpoint without zk roots is encoded in version 1; one with zk roots in version 2, which
//! appends them. Each checkpoint has exactly one encoding.
//!
//! | field | bytes |
//! |---|---|
//! | version (1, or 2 with zk roots) | 1 |
//! | cluster id length, cluster id | 1 + n |
//! | log name length, log name | 1 + n |
//! | partition | 4 |
//! | epoch | 8 |
//! | size (records) | 8 |
//! | root (BLAKE3 Merkle root) | 32 |
//! | time (ms since the Unix epoch) | 8 |
//! | version 2 only: number of zk roots (1 or 2) | 1 |
//! | version 2 only, per zk root in increasing tree id: tree id ([`ZkTree`]), root | 1 + 32 |
//!
//! Decoding is strict: one encoding per checkpoint, so equal checkpoints have equal bytes,
//! signatures and [ids](Checkpoint::id). Replicas sign [`Checkpoint::SIGNING_CONTEXT`] followed by
//! the encoding.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::{Digest, Domain};
use crate::merkle::{Blake3Merkle, ConsistencyProof, InclusionProof, VerifyError};
use crate::quorum::Signable;

/// Longest cluster id or log name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

const ENCODING_VERSION: u8 = 1;
const ENCODING_VERSION_ZK: u8 = 2;

/// A zk tree a log may keep next to its BLAKE3 tree; its root rides in the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZkTree {
    /// Poseidon on BN254 (Groth16 membership proofs); the root is the scalar's canonical
    /// 32-byte little-endian encoding.
    Poseidon = 1,
    /// Rescue-Prime `Rp64_256` (append-batch STARKs); the root is its 4 elements as 8-byte
    /// little-endian integers.
    Rescue = 2,
}

impl ZkTree {
    /// Every tree, in id order.
    pub const ALL: [ZkTree; 2] = [ZkTree::Poseidon, ZkTree::Rescue];

    fn from_id(id: u8) -> Option<ZkTree> {
        ZkTree::ALL.into_iter().find(|tree| *tree as u8 == id)
    }
}

/// Checks the shared name rule; returns what is wrong.
fn validate_name(name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_NAME_LEN {
        return Err(NameError::Length(bytes.len()));
    }
    if !bytes[0].is_ascii_alphanumeric() {
        return Err(NameError::FirstCharacter);
    }
    match bytes.iter().find(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))) {
        Some(&bad) => Err(NameError::Character(bad)),
        None => Ok(()),
    }
}

/// Why a cluster id or log name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty or too long.
    #[error("names are 1 to {MAX_NAME_LEN} bytes, this one is {0}")]
    Length(usize),
    /// Starts with `.`, `_` or `-`.
    #[error("names start with a letter or digit")]
    FirstCharacter,
    /// Contains a byte outside `[A-Za-z0-9._-]`.
    #[error("names use only A-Z a-z 0-9 . _ -, found byte 0x{0:02x}")]
    Character(u8),
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a name.
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                validate_name(&name)?;
                Ok($name(name))
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(name: String) -> Result<Self, NameError> {
                $name::new(name)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(name: &str) -> Result<Self, NameError> {
                $name::new(name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// The name of a Pyralog Cluster, unique in the network (like a CometBFT chain id).
    ClusterId
);
name_type!(
    /// The name of a log within a cluster.
    LogName
);

/// A partition's signed state: the statement replicas sign after applying `size` records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The cluster.
    pub cluster: ClusterId,
    /// The log.
    pub log: LogName,
    /// The partition of the log.
    pub partition: u32,
    /// The partition epoch (leadership era) the checkpoint was taken in.
    pub epoch: u64,
    /// Number of records, i.e. Merkle leaves.
    pub size: u64,
    /// Merkle root over those records ([`Blake3Merkle`]).
    pub root: Digest,
    /// When the checkpoint was taken, ms since the Unix epoch.
    pub time_ms: u64,
    /// The zk trees' roots over the same records, for logs created with zk proofs. (Always
    /// serialized: postcard, which certificates travel in, has no optional fields.)
    #[serde(default)]
    pub zk_roots: BTreeMap<ZkTree, Digest>,
}

/// Why bytes are not a canonical checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends inside `field`.
    #[error("checkpoint truncated in field `{0}`")]
    Truncated(&'static str),
    /// An encoding version this code does not know.
    #[error("unknown checkpoint encoding version {0}")]
    UnknownVersion(u8),
    /// A name field breaks the name rule.
    #[error("invalid {field}: {error}")]
    InvalidName {
        /// Which name.
        field: &'static str,
        /// What is wrong.
        error: NameError,
    },
    /// Bytes follow the last field.
    #[error("{0} unexpected bytes after the checkpoint")]
    TrailingBytes(usize),
    /// A zk tree id this code does not know.
    #[error("unknown zk tree id {0}")]
    UnknownZkTree(u8),
    /// Version 2 with no zk roots, or zk roots out of order or repeated.
    #[error("zk roots not in canonical form")]
    NonCanonicalZkRoots,
}

impl Checkpoint {
    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let zk_len = if self.zk_roots.is_empty() { 0 } else { 1 + 33 * self.zk_roots.len() };
        let mut out = Vec::with_capacity(1 + 2 + self.cluster.0.len() + self.log.0.len() + 60 + zk_len);
        out.push(if self.zk_roots.is_empty() { ENCODING_VERSION } else { ENCODING_VERSION_ZK });
        for name in [self.cluster.as_str(), self.log.as_str()] {
            out.push(name.len() as u8); // validated: at most 64
            out.extend_from_slice(name.as_bytes());
        }
        out.extend_from_slice(&self.partition.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(self.root.as_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        if !self.zk_roots.is_empty() {
            out.push(self.zk_roots.len() as u8); // at most one per tree
            for (tree, root) in &self.zk_roots {
                out.push(*tree as u8);
                out.extend_from_slice(root.as_bytes());
            }
        }
        out
    }

    /// Parses a canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader(bytes);
        let version = reader.array::<1>("version")?[0];
        if version != ENCODING_VERSION && version != ENCODING_VERSION_ZK {
            return Err(DecodeError::UnknownVersion(version));
        }
        let cluster = reader.name("cluster")?;
        let log = reader.name("log")?;
        let mut checkpoint = Checkpoint {
            cluster: ClusterId(cluster),
            log: LogName(log),
            partition: u32::from_be_bytes(reader.array("partition")?),
            epoch: u64::from_be_bytes(reader.array("epoch")?),
            size: u64::from_be_bytes(reader.array("size")?),
            root: Digest(reader.array("root")?),
            time_ms: u64::from_be_bytes(reader.array("time_ms")?),
            zk_roots: BTreeMap::new(),
        };
        if version == ENCODING_VERSION_ZK {
            checkpoint.zk_roots = reader.zk_roots()?;
        }
        match reader.0.len() {
            0 => Ok(checkpoint),
            extra => Err(DecodeError::TrailingBytes(extra)),
        }
    }

    /// The checkpoint's identifier: its encoding hashed in [`Domain::Checkpoint`].
    pub fn id(&self) -> Digest {
        Domain::Checkpoint.hash(&self.encode())
    }

    /// Checks that `record` is at `proof.index` in the partition this checkpoint describes.
    pub fn verify_inclusion(
        &self,
        record: &[u8],
        proof: &InclusionProof<Blake3Merkle>,
    ) -> Result<(), VerifyError> {
        self.check_size(proof.size)?;
        proof.verify(record, &self.root)
    }

    /// Checks that `older`'s partition state is a prefix of this one's (no rollback, no fork).
    /// The caller checks both belong to the same partition.
    pub fn verify_extends(
        &self,
        older: &Checkpoint,
        proof: &ConsistencyProof<Blake3Merkle>,
    ) -> Result<(), VerifyError> {
        self.check_size(proof.new_size)?;
        if proof.old_size != older.size {
            return Err(VerifyError::WrongTreeSize { claimed: proof.old_size, signed: older.size });
        }
        proof.verify(&older.root, &self.root)
    }

    fn check_size(&self, proof_size: u64) -> Result<(), VerifyError> {
        match proof_size == self.size {
            true => Ok(()),
            false => Err(VerifyError::WrongTreeSize { claimed: proof_size, signed: self.size }),
        }
    }
}

impl Signable for Checkpoint {
    const SIGNING_CONTEXT: &'static [u8] = b"pyralog checkpoint signature v1\0";

    fn encode(&self) -> Vec<u8> {
        Checkpoint::encode(self)
    }
}

/// A cursor over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(DecodeError::Truncated(field))?;
        self.0 = rest;
        Ok(*head)
    }

    /// Version 2's zk roots: at least one, tree ids strictly increasing.
    fn zk_roots(&mut self) -> Result<BTreeMap<ZkTree, Digest>, DecodeError> {
        let count = self.array::<1>("zk root count")?[0];
        let mut roots = BTreeMap::new();
        let mut last = None;
        for _ in 0..count {
            let id = self.array::<1>("zk tree")?[0];
            let tree = ZkTree::from_id(id).ok_or(DecodeError::UnknownZkTree(id))?;
            if last.is_some_and(|last| last >= tree) {
                return Err(DecodeError::NonCanonicalZkRoots);
            }
            last = Some(tree);
            roots.insert(tree, Digest(self.array("zk root")?));
        }
        if roots.is_empty() {
            return Err(DecodeError::NonCanonicalZkRoots);
        }
        Ok(roots)
    }

    fn name(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = usize::from(self.array::<1>(field)?[0]);
        if self.0.len() < len {
            return Err(DecodeError::Truncated(field));
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        let invalid = |error| DecodeError::InvalidName { field, error };
        // Valid names are ASCII, so a non-UTF-8 name fails the same character rule.
        let name = String::from_utf8(bytes.to_vec())
            .map_err(|err| invalid(NameError::Character(bytes[err.utf8_error().valid_up_to()])))?;
        validate_name(&name).map_err(invalid)?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            cluster: ClusterId::new("eu-west-1").unwrap(),
            log: LogName::new("orders").unwrap(),
            partition: 3,
            epoch: 7,
            size: 1000,
            root: Digest([9; 32]),
            time_ms: 1_763_856_000_000,
            zk_roots: BTreeMap::new(),
        }
    }

    #[test]
    fn encoding_is_exactly_as_documented() {
        let bytes = sample().encode();
        let mut expected = vec![1, 9];
        expected.extend_from_slice(b"eu-west-1");
        expected.push(6);
        expected.extend_from_slice(b"orders");
        expected.extend_from_slice(&[0, 0, 0, 3]);
        expected.extend_from_slice(&7u64.to_be_bytes());
        expected.extend_from_slice(&1000u64.to_be_bytes());
        expected.extend_from_slice(&[9; 32]);
        expected.extend_from_slice(&1_763_856_000_000u64.to_be_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(Checkpoint::decode(&bytes), Ok(sample()));
    }

    #[test]
    fn zk_roots_use_version_2_exactly_as_documented() {
        let mut checkpoint = sample();
        checkpoint.zk_roots.insert(ZkTree::Rescue, Digest([2; 32]));
        checkpoint.zk_roots.insert(ZkTree::Poseidon, Digest([1; 32]));
        let bytes = checkpoint.encode();
        let mut expected = sample().encode();
        expected[0] = 2;
        expected.push(2);
        expected.push(1);
        expected.extend_from_slice(&[1; 32]);
        expected.push(2);
        expected.extend_from_slice(&[2; 32]);
        assert_eq!(bytes, expected);
        assert_eq!(Checkpoint::decode(&bytes), Ok(checkpoint.clone()));
        assert_ne!(checkpoint.id(), sample().id());

        let v1_len = sample().encode().len();
        let with = |tail: &[u8]| [&[2u8][..], &expected[1..v1_len], tail].concat();
        // Version 2 without roots, repeated or swapped trees, unknown trees, a cut root.
        assert_eq!(Checkpoint::decode(&with(&[0])), Err(DecodeError::NonCanonicalZkRoots));
        let mut repeated = vec![2, 1];
        repeated.extend_from_slice(&[1; 32]);
        repeated.push(1);
        repeated.extend_from_slice(&[1; 32]);
        assert_eq!(Checkpoint::decode(&with(&repeated)), Err(DecodeError::NonCanonicalZkRoots));
        let mut swapped = vec![2, 2];
        swapped.extend_from_slice(&[2; 32]);
        swapped.push(1);
        swapped.extend_from_slice(&[1; 32]);
        assert_eq!(Checkpoint::decode(&with(&swapped)), Err(DecodeError::NonCanonicalZkRoots));
        assert_eq!(Checkpoint::decode(&with(&[1, 3])), Err(DecodeError::UnknownZkTree(3)));
        assert_eq!(Checkpoint::decode(&with(&[1, 2, 7])), Err(DecodeError::Truncated("zk root")));
        // A version-1 checkpoint followed by roots is not version 2.
        let mut v1_with_roots = sample().encode();
        v1_with_roots.extend_from_slice(&expected[v1_len..]);
        assert_eq!(Checkpoint::decode(&v1_with_roots), Err(DecodeError::TrailingBytes(67)));

        let json = serde_json::to_value(&checkpoint).unwrap();
        assert_eq!(json["zk_roots"]["poseidon"], serde_json::to_value(Digest([1; 32])).unwrap());
        assert_eq!(serde_json::to_value(sample()).unwrap()["zk_roots"], serde_json::json!({}));
        let postcard = postcard::to_allocvec(&checkpoint).unwrap();
        assert_eq!(postcard::from_bytes::<Checkpoint>(&postcard).unwrap(), checkpoint);
    }

    #[test]
    fn names_are_validated() {
        assert_eq!(LogName::new(""), Err(NameError::Length(0)));
        assert_eq!(LogName::new("a".repeat(65)), Err(NameError::Length(65)));
        assert_eq!(LogName::new("-x"), Err(NameError::FirstCharacter));
        assert_eq!(LogName::new("a b"), Err(NameError::Character(b' ')));
        assert!(LogName::new("a".repeat(64)).is_ok());
        assert!(serde_json::from_str::<LogName>("\"a/b\"").is_err());
    }

    #[test]
    fn malformed_encodings_get_typed_errors() {
        let bytes = sample().encode();
        assert_eq!(Checkpoint::decode(&[]), Err(DecodeError::Truncated("version")));
        assert_eq!(Checkpoint::decode(&[3]), Err(DecodeError::UnknownVersion(3)));
        assert_eq!(Checkpoint::decode(&bytes[..bytes.len() - 1]), Err(DecodeError::Truncated("time_ms")));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Checkpoint::decode(&long), Err(DecodeError::TrailingBytes(1)));
        let mut bad_name = bytes.clone();
        bad_name[2] = b'/';
        assert_eq!(
            Checkpoint::decode(&bad_name),
            Err(DecodeError::InvalidName { field: "cluster", error: NameError::FirstCharacter })
        );
        let mut non_utf8 = bytes;
        non_utf8[3] = 0xff;
        assert_eq!(
            Checkpoint::decode(&non_utf8),
            Err(DecodeError::InvalidName { field: "cluster", error: NameError::Character(0xff) })
        );
    }

    #[test]
    fn id_changes_with_every_field() {
        let base = sample();
        let mut variants = vec![base.clone(); 9];
        variants[0].cluster = ClusterId::new("eu-west-2").unwrap();
        variants[1].log = LogName::new("orderz").unwrap();
        variants[2].partition += 1;
        variants[3].epoch += 1;
        variants[4].size += 1;
        variants[5].root.0[31] ^= 1;
        variants[6].time_ms += 1;
        variants[7].zk_roots.insert(ZkTree::Rescue, Digest([0; 32]));
        variants[8].zk_roots.insert(ZkTree::Poseidon, Digest([0; 32]));
        for variant in variants {
            assert_ne!(variant.id(), base.id(), "{variant:?}");
        }
    }
}
