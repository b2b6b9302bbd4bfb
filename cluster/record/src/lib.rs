//! The log data model: logs, partitions and records, and the canonical record encoding. The
//! cluster engine stores it; a light client decodes proven records with it (no async runtime,
//! storage or network here).
//!
//! # Record encoding (version 1)
//!
//! The stored form of a record and, hashed as a Merkle leaf, what a checkpoint commits to. The
//! offset is not encoded: it is the leaf's index. Integers are big-endian.
//!
//! | field | bytes |
//! |---|---|
//! | version (= 1) | 1 |
//! | epoch | 8 |
//! | timestamp (ms since the Unix epoch) | 8 |
//! | scarab id | 8 |
//! | flags (bit 0: key present, bit 1: producer present) | 1 |
//! | key length, key (if present) | 4 + n |
//! | producer id, producer sequence (if present) | 8 + 8 |
//! | value length, value | 4 + n |
//! | header count | 2 |
//! | per header: name length, name (UTF-8), value length, value | 2 + n + 4 + m |
//!
//! Decoding is strict (unknown flags, trailing bytes, non-UTF-8 names are errors), so one record
//! has exactly one encoding and one leaf hash.

use pyralog_crypto::merkle::{Blake3Merkle, MerkleHasher};
use std::collections::BTreeSet;

use pyralog_crypto::{Digest, Domain, LogName, ZkTree};
use serde::{Deserialize, Serialize};

const RECORD_VERSION: u8 = 1;
const FLAG_KEY: u8 = 1;
const FLAG_PRODUCER: u8 = 2;

/// A log's settings, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// The log's name.
    pub name: LogName,
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Replicas per partition.
    pub replication_factor: u8,
    /// Largest encoded record accepted, in bytes.
    pub max_record_bytes: u32,
    /// The zk trees each partition keeps next to its BLAKE3 tree (Poseidon for Groth16
    /// membership proofs, Rescue for append-batch STARKs); their roots ride in checkpoints.
    #[serde(default)]
    pub zk: BTreeSet<ZkTree>,
    /// The code hash of the log's constraint contract (stored in the cluster's global state):
    /// the partition leader runs it on every record before proposing it, and a refusal fails
    /// the record's whole batch. None: every record is accepted.
    #[serde(default)]
    pub constraint: Option<Digest>,
    /// A trigger contract: after a record commits, the partition leader runs it and appends
    /// what it emits to the target log (at least once, written exactly once: see
    /// `pyralog_cluster::engine` triggers). None: no trigger.
    #[serde(default)]
    pub trigger: Option<TriggerConfig>,
    /// The code hash of the log's access-control contract: run on every append and read
    /// request with the client's verified identity (none for an anonymous client); a refusal
    /// denies the request. None: everyone may append and read.
    #[serde(default)]
    pub acl: Option<Digest>,
}

/// A log's trigger: the code to run on every committed record and the log its outputs go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerConfig {
    /// The code hash (stored in the cluster's global state).
    pub code: Digest,
    /// Where derived records go: partition `p` of the source writes to partition
    /// `p mod target.partitions`.
    pub target: LogName,
}

/// Producer ids at or above this are the cluster's own (trigger outputs); clients may not use
/// them.
pub const RESERVED_PRODUCERS: u64 = 1 << 63;

/// The producer id of the trigger outputs of partition `partition` of log id `log`.
pub fn trigger_producer(log: u32, partition: u32) -> u64 {
    RESERVED_PRODUCERS | (u64::from(log) << 32) | u64::from(partition)
}

/// The name a log's `zk` option gives a tree: the proof system it serves.
pub fn zk_option(tree: ZkTree) -> &'static str {
    match tree {
        ZkTree::Poseidon => "groth16",
        ZkTree::Rescue => "stark",
    }
}

/// The tree a `zk` option names (`groth16` or `stark`).
pub fn zk_tree_of_option(option: &str) -> Option<ZkTree> {
    ZkTree::ALL.into_iter().find(|tree| zk_option(*tree) == option)
}

/// An idempotent producer's identity and the sequence number of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProducerSeq {
    /// The producer.
    pub producer: u64,
    /// Its per-partition sequence number for this record.
    pub sequence: u64,
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// What a producer appends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Record {
    /// Optional key: picks the partition and is indexed for "latest by key" reads.
    #[serde(with = "serde_bytes")]
    pub key: Option<Vec<u8>>,
    /// The payload.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Application headers.
    pub headers: Vec<Header>,
    /// Producer's timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The Scarab id assigned on append.
    pub scarab_id: u64,
    /// Set by idempotent producers; duplicates are stored once.
    pub producer: Option<ProducerSeq>,
}

/// A record as stored: its position and the epoch it was written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Contiguous per-partition position, from 0.
    pub offset: u64,
    /// The partition epoch the record was written in.
    pub epoch: u64,
    /// The record.
    pub record: Record,
}

/// Why bytes are not a canonical record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordDecodeError {
    /// The input ends inside `field`.
    #[error("record truncated in field `{0}`")]
    Truncated(&'static str),
    /// Unknown encoding version.
    #[error("unknown record encoding version {0}")]
    UnknownVersion(u8),
    /// Flag bits this version does not define.
    #[error("unknown record flags 0x{0:02x}")]
    UnknownFlags(u8),
    /// A header name that is not UTF-8.
    #[error("header name is not UTF-8")]
    HeaderName,
    /// Bytes after the last field.
    #[error("{0} unexpected bytes after the record")]
    TrailingBytes(usize),
}

/// Why a record cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordEncodeError {
    /// A field is longer than its length prefix allows.
    #[error("{field} is {len} bytes, the limit is {limit}")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

impl StoredRecord {
    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> Result<Vec<u8>, RecordEncodeError> {
        let r = &self.record;
        let check = |field, len: usize, limit: usize| match len <= limit {
            true => Ok(()),
            false => Err(RecordEncodeError::FieldTooLong { field, len, limit }),
        };
        let mut out = Vec::with_capacity(64 + r.value.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&r.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&r.scarab_id.to_be_bytes());
        let flags =
            if r.key.is_some() { FLAG_KEY } else { 0 } | if r.producer.is_some() { FLAG_PRODUCER } else { 0 };
        out.push(flags);
        if let Some(key) = &r.key {
            check("key", key.len(), u32::MAX as usize)?;
            out.extend_from_slice(&(key.len() as u32).to_be_bytes());
            out.extend_from_slice(key);
        }
        if let Some(p) = r.producer {
            out.extend_from_slice(&p.producer.to_be_bytes());
            out.extend_from_slice(&p.sequence.to_be_bytes());
        }
        check("value", r.value.len(), u32::MAX as usize)?;
        out.extend_from_slice(&(r.value.len() as u32).to_be_bytes());
        out.extend_from_slice(&r.value);
        check("header count", r.headers.len(), u16::MAX as usize)?;
        out.extend_from_slice(&(r.headers.len() as u16).to_be_bytes());
        for header in &r.headers {
            check("header name", header.name.len(), u16::MAX as usize)?;
            check("header value", header.value.len(), u32::MAX as usize)?;
            out.extend_from_slice(&(header.name.len() as u16).to_be_bytes());
            out.extend_from_slice(header.name.as_bytes());
            out.extend_from_slice(&(header.value.len() as u32).to_be_bytes());
            out.extend_from_slice(&header.value);
        }
        Ok(out)
    }

    /// Parses the canonical encoding of the record at `offset`.
    pub fn decode(offset: u64, bytes: &[u8]) -> Result<Self, RecordDecodeError> {
        let mut input = Input(bytes);
        let version = input.take::<1>("version")?[0];
        if version != RECORD_VERSION {
            return Err(RecordDecodeError::UnknownVersion(version));
        }
        let epoch = input.u64("epoch")?;
        let timestamp_ms = input.u64("timestamp")?;
        let scarab_id = input.u64("scarab id")?;
        let flags = input.take::<1>("flags")?[0];
        if flags & !(FLAG_KEY | FLAG_PRODUCER) != 0 {
            return Err(RecordDecodeError::UnknownFlags(flags));
        }
        let key = match flags & FLAG_KEY {
            0 => None,
            _ => Some(input.bytes_u32("key")?.to_vec()),
        };
        let producer = match flags & FLAG_PRODUCER {
            0 => None,
            _ => Some(ProducerSeq {
                producer: input.u64("producer")?,
                sequence: input.u64("producer sequence")?,
            }),
        };
        let value = input.bytes_u32("value")?.to_vec();
        let count = u16::from_be_bytes(input.take("header count")?);
        let mut headers = Vec::with_capacity(usize::from(count).min(64));
        for _ in 0..count {
            let name_len = usize::from(u16::from_be_bytes(input.take("header name")?));
            let name = input.slice(name_len, "header name")?;
            let name = String::from_utf8(name.to_vec()).map_err(|_| RecordDecodeError::HeaderName)?;
            let value = input.bytes_u32("header value")?.to_vec();
            headers.push(Header { name, value });
        }
        if !input.0.is_empty() {
            return Err(RecordDecodeError::TrailingBytes(input.0.len()));
        }
        let record = Record { key, value, headers, timestamp_ms, scarab_id, producer };
        Ok(StoredRecord { offset, epoch, record })
    }

    /// The Merkle leaf hash of this record (the hash of its encoding).
    pub fn leaf_hash(&self) -> Result<Digest, RecordEncodeError> {
        Ok(Blake3Merkle::hash_leaf(&self.encode()?))
    }
}

/// The partition of a keyed record: a stable hash of the key modulo the partition count. Stable
/// forever: changing it would move keys between partitions.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    assert!(partitions > 0, "a log has at least one partition");
    let digest = Domain::PartitionKey.hash(key);
    let head = u64::from_be_bytes(digest.0[..8].try_into().expect("8 bytes"));
    (head % u64::from(partitions)) as u32
}

/// A cursor over untrusted bytes.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], RecordDecodeError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(RecordDecodeError::Truncated(field))?;
        self.0 = rest;
        Ok(*head)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, RecordDecodeError> {
        self.take(field).map(u64::from_be_bytes)
    }

    fn slice(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], RecordDecodeError> {
        if self.0.len() < len {
            return Err(RecordDecodeError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn bytes_u32(&mut self, field: &'static str) -> Result<&'a [u8], RecordDecodeError> {
        let len = u32::from_be_bytes(self.take(field)?) as usize;
        self.slice(len, field)
    }
}
