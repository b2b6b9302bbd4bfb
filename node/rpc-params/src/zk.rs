//! `log_getZkRoots`, `log_getZkPath` and `zk_*`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Params, ParamsError, hex_field, hex32_field};

/// `log_getZkRoots {log, partition, size?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkRoots {
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
    /// The tree size (default: the latest certified).
    #[serde(default)]
    pub size: Option<u64>,
}

impl Params for ZkRoots {}

/// `log_getZkPath {log, partition, offset, size}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkPath {
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
    /// The leaf.
    pub offset: u64,
    /// The tree size.
    pub size: u64,
}

impl Params for ZkPath {}

/// `zk_proveMembership {log, partition, offset, nonce, discloseKey?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProveMembership {
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
    /// The record.
    pub offset: u64,
    /// The verifier's nonce: a field element, 32 bytes of 0x hex (the prover checks it is
    /// canonical).
    pub nonce: String,
    /// Make the record's key public in the statement.
    #[serde(default)]
    pub disclose_key: bool,
}

impl ProveMembership {
    /// The nonce's 32 bytes.
    pub fn nonce_bytes(&self) -> Result<[u8; 32], ParamsError> {
        hex32_field("nonce", "a field element", &self.nonce)
    }
}

impl Params for ProveMembership {
    fn check(&self) -> Result<(), ParamsError> {
        self.nonce_bytes().map(drop)
    }
}

/// Most appends one `zk_proveAppends` call proves (about 2.2 GB and 15 s of proving at 4,096).
pub const MAX_RPC_STARK_BATCH: u64 = 4096;

/// `zk_proveAppends {log, partition, fromSize, toSize}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProveAppends {
    /// The log.
    pub log: String,
    /// The partition.
    pub partition: u32,
    /// The size before the appends.
    pub from_size: u64,
    /// The size after them.
    pub to_size: u64,
}

impl Params for ProveAppends {
    fn check(&self) -> Result<(), ParamsError> {
        let count = self.to_size.saturating_sub(self.from_size);
        if count == 0 || count > MAX_RPC_STARK_BATCH {
            return Err(ParamsError::value(format!(
                "toSize - fromSize must be 1..={MAX_RPC_STARK_BATCH} (prove longer ranges in batches)"
            )));
        }
        Ok(())
    }
}

/// `zk_verify {proof, verifyingKey?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ZkVerify {
    /// The proof file's `proof` (the zk crate decodes it).
    pub proof: Value,
    /// A Groth16 verifying key (0x hex) instead of the node's.
    #[serde(default)]
    pub verifying_key: Option<String>,
}

impl ZkVerify {
    /// The verifying key's bytes, when one is given.
    pub fn verifying_key_bytes(&self) -> Result<Option<Vec<u8>>, ParamsError> {
        self.verifying_key.as_ref().map(|text| hex_field("verifyingKey", text)).transpose()
    }
}

impl Params for ZkVerify {
    fn check(&self) -> Result<(), ParamsError> {
        self.verifying_key_bytes().map(drop)
    }
}
