//! Checkpoints: "partition P of log L in cluster C had `size` records with Merkle root R at epoch E".
//!
//! # Canonical encoding (version 1)
//!
//! All integers big-endian; names are 1-64 bytes of `[A-Za-z0-9._-]` starting with a letter or digit.
//!
//! | field | bytes |
//! |---|---|
//! | version (= 1) | 1 |
//! | cluster id length, cluster id | 1 + n |
//! | log name length, log name | 1 + n |
//! | partition | 4 |
//! | epoch | 8 |
//! | size (records) | 8 |
//! | root (BLAKE3 Merkle root) | 32 |
//! | time (ms since the Unix epoch) | 8 |
//!
//! Decoding is strict: one encoding per checkpoint, so equal checkpoints have equal bytes,
//! signatures and [ids](Checkpoint::id). Replicas sign [`Checkpoint::SIGNING_CONTEXT`] followed by
//! the encoding.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::{Digest, Domain};
use crate::merkle::{Blake3Merkle, ConsistencyProof, InclusionProof, VerifyError};
use crate::quorum::Signable;

/// Longest cluster id or log name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

const ENCODING_VERSION: u8 = 1;

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
}

impl Checkpoint {
    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 2 + self.cluster.0.len() + self.log.0.len() + 60);
        out.push(ENCODING_VERSION);
        for name in [self.cluster.as_str(), self.log.as_str()] {
            out.push(name.len() as u8); // validated: at most 64
            out.extend_from_slice(name.as_bytes());
        }
        out.extend_from_slice(&self.partition.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(self.root.as_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out
    }

    /// Parses a canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader(bytes);
        let version = reader.array::<1>("version")?[0];
        if version != ENCODING_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let cluster = reader.name("cluster")?;
        let log = reader.name("log")?;
        let checkpoint = Checkpoint {
            cluster: ClusterId(cluster),
            log: LogName(log),
            partition: u32::from_be_bytes(reader.array("partition")?),
            epoch: u64::from_be_bytes(reader.array("epoch")?),
            size: u64::from_be_bytes(reader.array("size")?),
            root: Digest(reader.array("root")?),
            time_ms: u64::from_be_bytes(reader.array("time_ms")?),
        };
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
        assert_eq!(Checkpoint::decode(&[2]), Err(DecodeError::UnknownVersion(2)));
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
        let mut variants = vec![base.clone(); 7];
        variants[0].cluster = ClusterId::new("eu-west-2").unwrap();
        variants[1].log = LogName::new("orderz").unwrap();
        variants[2].partition += 1;
        variants[3].epoch += 1;
        variants[4].size += 1;
        variants[5].root.0[31] ^= 1;
        variants[6].time_ms += 1;
        for variant in variants {
            assert_ne!(variant.id(), base.id(), "{variant:?}");
        }
    }
}
