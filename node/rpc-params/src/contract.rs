//! `contract_*`: chain contracts (deploy, call, query, code, storage with proof).

use pyralog_crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::{Params, ParamsError, hex_field, hex32_field};

/// `contract_getCode {code, height?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeAt {
    /// The code hash (0x hex, 32 bytes).
    pub code: String,
    /// State version; default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

impl CodeAt {
    /// The code hash.
    pub fn code_hash(&self) -> Result<[u8; 32], ParamsError> {
        hex32_field("code", "a code hash", &self.code)
    }
}

impl Params for CodeAt {
    fn check(&self) -> Result<(), ParamsError> {
        self.code_hash().map(drop)
    }
}

/// `contract_get {contract, height?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractAt {
    /// The contract id (0x hex, 32 bytes).
    pub contract: String,
    /// State version; default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

impl ContractAt {
    /// The contract id.
    pub fn id(&self) -> Result<[u8; 32], ParamsError> {
        contract_field(&self.contract)
    }
}

impl Params for ContractAt {
    fn check(&self) -> Result<(), ParamsError> {
        self.id().map(drop)
    }
}

fn contract_field(text: &str) -> Result<[u8; 32], ParamsError> {
    hex32_field("contract", "a contract id", text)
}

/// `contract_getStorage {contract, key, height?}`: a storage key (0x hex) of a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractStorageAt {
    /// The contract id (0x hex, 32 bytes).
    pub contract: String,
    /// The contract's storage key (0x hex).
    pub key: String,
    /// State version; default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

impl ContractStorageAt {
    /// The contract id and the key's bytes.
    pub fn target(&self) -> Result<([u8; 32], Vec<u8>), ParamsError> {
        Ok((contract_field(&self.contract)?, hex_field("key", &self.key)?))
    }
}

impl Params for ContractStorageAt {
    fn check(&self) -> Result<(), ParamsError> {
        self.target().map(drop)
    }
}

/// `contract_query {contract, entry, input?, caller?, height?}`: a read-only call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractQuery {
    /// The contract id (0x hex, 32 bytes).
    pub contract: String,
    /// The entry point.
    pub entry: String,
    /// Its input (0x hex); default: empty.
    #[serde(default)]
    pub input: Option<String>,
    /// The caller the contract sees (a public key); default: none.
    #[serde(default)]
    pub caller: Option<String>,
    /// State version; default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

/// A [`ContractQuery`]'s values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTarget {
    /// The contract id.
    pub contract: [u8; 32],
    /// The input.
    pub input: Vec<u8>,
    /// The caller.
    pub caller: Option<PublicKey>,
}

impl ContractQuery {
    /// The contract, input and caller.
    pub fn target(&self) -> Result<QueryTarget, ParamsError> {
        let input = match &self.input {
            Some(hex) => hex_field("input", hex)?,
            None => Vec::new(),
        };
        let caller = match &self.caller {
            Some(text) => Some(text.parse().map_err(|err| ParamsError::Value(format!("caller: {err}")))?),
            None => None,
        };
        Ok(QueryTarget { contract: contract_field(&self.contract)?, input, caller })
    }
}

impl Params for ContractQuery {
    fn check(&self) -> Result<(), ParamsError> {
        if self.entry.is_empty() || self.entry.len() > 64 {
            return Err(ParamsError::Value("entry: 1 to 64 bytes".into()));
        }
        self.target().map(drop)
    }
}
