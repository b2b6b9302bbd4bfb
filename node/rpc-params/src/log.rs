//! `log_*`: logs, appends, reads, proofs and subscriptions.

use pyralog_crypto::{ClusterId, LogName};
use pyralog_record::{Header, LogConfig, ProducerSeq, RESERVED_PRODUCERS, Record, zk_tree_of_option};
use serde::{Deserialize, Serialize};

use crate::{Params, ParamsError, hex_field};

/// `log_create {name, partitions, replicationFactor, maxRecordBytes?, zk?, constraint?, acl?,
/// trigger?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateLog {
    /// The log's name.
    pub name: String,
    /// Partitions.
    pub partitions: u32,
    /// Replicas per partition.
    pub replication_factor: u8,
    /// Largest encoded record accepted (default 1 MiB).
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u32,
    /// zk trees to keep: `groth16` (Poseidon) and/or `stark` (Rescue).
    #[serde(default)]
    pub zk: Vec<String>,
    /// A constraint contract (0x hex of its WASM module): the node stores it in the cluster's
    /// global state and names its hash in the log's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// A trigger contract and the log its outputs go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerParam>,
    /// An access-control contract (0x hex of its WASM module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
}

/// `log_create`'s `trigger`: `{code, target}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerParam {
    /// The trigger's WASM module (0x hex).
    pub code: String,
    /// The log its derived records go to.
    pub target: String,
}

fn default_max_record_bytes() -> u32 {
    1 << 20
}

impl CreateLog {
    /// The log's settings (the engine checks partitions and replication against the cluster).
    pub fn config(&self) -> Result<LogConfig, ParamsError> {
        let name =
            LogName::new(self.name.clone()).map_err(|err| ParamsError::value(format!("name: {err}")))?;
        let zk = self
            .zk
            .iter()
            .map(|option| {
                zk_tree_of_option(option).ok_or_else(|| {
                    ParamsError::value(format!("zk: unknown proof system {option:?} (groth16, stark)"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(LogConfig {
            name,
            partitions: self.partitions,
            replication_factor: self.replication_factor,
            max_record_bytes: self.max_record_bytes,
            zk,
            constraint: None,
            trigger: None,
            acl: None,
        })
    }

    /// The constraint's WASM, when one is given.
    pub fn constraint_wasm(&self) -> Result<Option<Vec<u8>>, ParamsError> {
        self.constraint.as_deref().map(|hex| hex_field("constraint", hex)).transpose()
    }

    /// The access-control contract's WASM, when one is given.
    pub fn acl_wasm(&self) -> Result<Option<Vec<u8>>, ParamsError> {
        self.acl.as_deref().map(|hex| hex_field("acl", hex)).transpose()
    }

    /// The trigger's WASM and target log, when one is given.
    pub fn trigger_wasm(&self) -> Result<Option<(Vec<u8>, LogName)>, ParamsError> {
        let Some(trigger) = &self.trigger else { return Ok(None) };
        let target = LogName::new(trigger.target.clone())
            .map_err(|err| ParamsError::value(format!("trigger.target: {err}")))?;
        Ok(Some((hex_field("trigger.code", &trigger.code)?, target)))
    }
}

impl Params for CreateLog {
    fn check(&self) -> Result<(), ParamsError> {
        self.constraint_wasm()?;
        self.acl_wasm()?;
        self.trigger_wasm()?;
        self.config().map(drop)
    }
}

/// One record of `log_append`: bytes as 0x hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppendedRecord {
    /// Optional key.
    #[serde(default)]
    pub key: Option<String>,
    /// The payload.
    pub value: String,
    /// Headers.
    #[serde(default)]
    pub headers: Vec<RecordHeader>,
    /// The producer's timestamp (default: the node's clock when the request arrives).
    #[serde(default)]
    pub timestamp_ms: Option<u64>,
    /// Idempotent producer and sequence.
    #[serde(default)]
    pub producer: Option<ProducerSeqParam>,
}

/// A record header: a text name and a 0x-hex value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordHeader {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// An idempotent producer and the record's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerSeqParam {
    /// The producer id.
    pub id: u64,
    /// Its sequence number for this record.
    pub seq: u64,
}

/// `log_append {log, records, partition?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Append {
    /// The log.
    pub log: String,
    /// The records, at least one.
    pub records: Vec<AppendedRecord>,
    /// A partition to append to (default: by key, round robin without one).
    #[serde(default)]
    pub partition: Option<u32>,
    /// The client's signature over the request (see [`crate::auth`]); none: anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::auth::Auth>,
}

impl Append {
    /// The records to append, `now_ms` stamped on those without a timestamp.
    pub fn records(&self, now_ms: u64) -> Result<Vec<Record>, ParamsError> {
        if self.records.is_empty() {
            return Err(ParamsError::value("records: at least one record"));
        }
        self.records.iter().enumerate().map(|(index, record)| record.to_record(index, now_ms)).collect()
    }
}

impl AppendedRecord {
    fn to_record(&self, index: usize, now_ms: u64) -> Result<Record, ParamsError> {
        let field = |name: &str| format!("records[{index}].{name}");
        if self.producer.is_some_and(|p| p.id >= RESERVED_PRODUCERS) {
            return Err(ParamsError::value(format!(
                "{}: producer ids from 2^63 are the cluster's own (trigger outputs)",
                field("producer.id")
            )));
        }
        Ok(Record {
            key: self.key.as_ref().map(|key| hex_field(&field("key"), key)).transpose()?,
            value: hex_field(&field("value"), &self.value)?,
            headers: self
                .headers
                .iter()
                .map(|h| {
                    Ok(Header { name: h.name.clone(), value: hex_field(&field("headers.value"), &h.value)? })
                })
                .collect::<Result<_, ParamsError>>()?,
            timestamp_ms: self.timestamp_ms.unwrap_or(now_ms),
            scarab_id: 0,
            producer: self.producer.map(|p| ProducerSeq { producer: p.id, sequence: p.seq }),
        })
    }
}

/// The records' hex is decoded once, by [`Append::records`], which the node calls anyway (a
/// request may carry megabytes of it).
impl Params for Append {}

/// How `log_read` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFormat {
    /// Records as JSON objects.
    Json,
    /// One Arrow IPC stream (hex).
    Arrow,
}

/// Most records one `log_read` returns.
pub const MAX_READ: usize = 10_000;

/// `log_read {log, partition, from?, max?, format?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Read {
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
    /// First offset (default 0).
    #[serde(default)]
    pub from: u64,
    /// Most records (default 1,000; at most [`MAX_READ`] are returned).
    #[serde(default = "default_max")]
    pub max: usize,
    /// `json` (default) or `arrow`.
    #[serde(default)]
    pub format: Option<String>,
    /// The client's signature over the request (see [`crate::auth`]); none: anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::auth::Auth>,
}

fn default_max() -> usize {
    1000
}

impl Read {
    /// The answer's format.
    pub fn format(&self) -> Result<ReadFormat, ParamsError> {
        match self.format.as_deref() {
            None | Some("json") => Ok(ReadFormat::Json),
            Some("arrow") => Ok(ReadFormat::Arrow),
            Some(other) => Err(ParamsError::value(format!("format: \"json\" or \"arrow\", not {other:?}"))),
        }
    }

    /// The most records to return.
    pub fn limit(&self) -> usize {
        self.max.min(MAX_READ)
    }
}

impl Params for Read {
    fn check(&self) -> Result<(), ParamsError> {
        self.format().map(drop)
    }
}

/// `log_getLatest {log, key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetLatest {
    /// The log.
    pub log: String,
    /// The key (0x hex).
    pub key: String,
}

impl GetLatest {
    /// The key's bytes.
    pub fn key_bytes(&self) -> Result<Vec<u8>, ParamsError> {
        hex_field("key", &self.key)
    }
}

impl Params for GetLatest {
    fn check(&self) -> Result<(), ParamsError> {
        self.key_bytes().map(drop)
    }
}

/// `{log, partition}`: `log_getCheckpoint`, `log_subscribeCheckpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
}

impl Params for Partition {}

/// `log_subscribeRecords {log, partition, from?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRecords {
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
    /// First offset sent (default 0).
    #[serde(default)]
    pub from: u64,
}

impl Params for SubscribeRecords {}

/// `log_getConsistencyProof {log, partition, oldSize, newSize}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetConsistencyProof {
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
    /// The size the client trusts.
    pub old_size: u64,
    /// The size to prove it extends to.
    pub new_size: u64,
}

impl Params for GetConsistencyProof {}

/// `log_getProof {log, partition, offset, cluster?, finality?, trustedSize?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetProof {
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
    /// The record's offset.
    pub offset: u64,
    /// The cluster that holds the log (default: this node's).
    #[serde(default)]
    pub cluster: Option<String>,
    /// Prove the path to a finalized header too.
    #[serde(default)]
    pub finality: bool,
    /// The anchored size the client trusts already.
    #[serde(default)]
    pub trusted_size: Option<u64>,
}

impl GetProof {
    /// The cluster named, if any.
    pub fn cluster_id(&self) -> Result<Option<ClusterId>, ParamsError> {
        self.cluster
            .as_ref()
            .map(|name| {
                ClusterId::new(name.clone()).map_err(|err| ParamsError::value(format!("cluster: {err}")))
            })
            .transpose()
    }

    /// The log's name (checked: with `finality` the node looks it up in the chain state).
    pub fn log_name(&self) -> Result<LogName, ParamsError> {
        LogName::new(self.log.clone()).map_err(|err| ParamsError::value(format!("log: {err}")))
    }
}

impl Params for GetProof {
    fn check(&self) -> Result<(), ParamsError> {
        self.cluster_id()?;
        Ok(())
    }
}
