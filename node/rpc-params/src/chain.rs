//! `chain_*`, `state_*`, `tx_*` and `staking_*`.

use pyralog_crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::{Params, ParamsError, hex_field, hex32_field};

/// `{height?}`: a block or state version (default: the latest). The params may be left out
/// entirely (none, `[]` or empty) for the default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtHeight {
    /// The height; default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

impl Params for AtHeight {
    fn decode(params: Option<&str>) -> Result<Self, ParamsError> {
        if params.is_none_or(|s| s.trim().is_empty() || s.trim() == "[]") {
            return Ok(AtHeight::default());
        }
        let parsed: Self = serde_json::from_str(params.unwrap_or("null"))
            .map_err(|err| ParamsError::Shape(err.to_string()))?;
        Ok(parsed)
    }
}

/// Most seals one `chain_getSeals` answer holds.
pub const MAX_SEALS: u32 = 1000;

/// `chain_getSeals {from, count?}`: Proof-of-Work seals from height `from` (at least 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealsFrom {
    /// The first height.
    pub from: u64,
    /// At most this many (default and most: [`MAX_SEALS`]).
    #[serde(default)]
    pub count: Option<u32>,
}

impl Params for SealsFrom {
    fn check(&self) -> Result<(), ParamsError> {
        if self.from == 0 {
            return Err(ParamsError::value("from is a height, at least 1"));
        }
        if self.count.is_some_and(|c| c == 0 || c > MAX_SEALS) {
            return Err(ParamsError::value(format!("count is 1 to {MAX_SEALS}")));
        }
        Ok(())
    }
}

/// `state_get` / `state_getProof {key | keyText, height?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateKey {
    /// Raw key bytes (0x hex) ...
    #[serde(default)]
    pub key: Option<String>,
    /// ... or the key as text (`anchor/alpha/demo/0`).
    #[serde(default, rename = "keyText")]
    pub key_text: Option<String>,
    /// State version (the state after that block); default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

impl StateKey {
    /// The key's bytes: exactly one of `key` and `keyText` is given.
    pub fn bytes(&self) -> Result<Vec<u8>, ParamsError> {
        match (&self.key, &self.key_text) {
            (Some(hex), None) => hex_field("key", hex),
            (None, Some(text)) => Ok(text.as_bytes().to_vec()),
            _ => Err(ParamsError::value("give exactly one of key (0x hex) and keyText")),
        }
    }
}

impl Params for StateKey {
    fn check(&self) -> Result<(), ParamsError> {
        self.bytes().map(drop)
    }
}

/// `tx_submit {tx}`: a signed transaction's bytes (0x hex); the chain checks the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitTx {
    /// The transaction.
    pub tx: String,
}

impl SubmitTx {
    /// The transaction's bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, ParamsError> {
        hex_field("tx", &self.tx)
    }
}

impl Params for SubmitTx {
    fn check(&self) -> Result<(), ParamsError> {
        self.bytes().map(drop)
    }
}

/// `tx_status {id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxStatus {
    /// The transaction id (0x hex, 32 bytes).
    pub id: String,
}

impl TxStatus {
    /// The transaction id.
    pub fn tx_id(&self) -> Result<[u8; 32], ParamsError> {
        hex32_field("id", "a transaction id", &self.id)
    }
}

impl Params for TxStatus {
    fn check(&self) -> Result<(), ParamsError> {
        self.tx_id().map(drop)
    }
}

/// A public-key field, or a refusal naming it.
fn key_field(field: &str, text: &str) -> Result<PublicKey, ParamsError> {
    text.parse().map_err(|err| ParamsError::value(format!("{field}: {err}")))
}

/// `staking_validator {operator, height?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorAt {
    /// The validator's operator key.
    pub operator: String,
    /// State version; default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

impl OperatorAt {
    /// The operator key.
    pub fn operator_key(&self) -> Result<PublicKey, ParamsError> {
        key_field("operator", &self.operator)
    }
}

impl Params for OperatorAt {
    fn check(&self) -> Result<(), ParamsError> {
        self.operator_key().map(drop)
    }
}

/// `staking_delegations {delegator, height?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegatorAt {
    /// The delegator's key.
    pub delegator: String,
    /// State version; default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

impl DelegatorAt {
    /// The delegator's key.
    pub fn delegator_key(&self) -> Result<PublicKey, ParamsError> {
        key_field("delegator", &self.delegator)
    }
}

impl Params for DelegatorAt {
    fn check(&self) -> Result<(), ParamsError> {
        self.delegator_key().map(drop)
    }
}

/// `staking_unbonding {delegator, validator, height?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairAt {
    /// The delegator's key.
    pub delegator: String,
    /// The validator's operator key.
    pub validator: String,
    /// State version; default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

impl PairAt {
    /// The delegator's and the validator's keys.
    pub fn keys(&self) -> Result<(PublicKey, PublicKey), ParamsError> {
        Ok((key_field("delegator", &self.delegator)?, key_field("validator", &self.validator)?))
    }
}

impl Params for PairAt {
    fn check(&self) -> Result<(), ParamsError> {
        self.keys().map(drop)
    }
}

/// `staking_signingInfo {consensusKey, height?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsensusKeyAt {
    /// The validator's consensus key.
    pub consensus_key: String,
    /// State version; default: the latest.
    #[serde(default)]
    pub height: Option<u64>,
}

impl ConsensusKeyAt {
    /// The consensus key.
    pub fn key(&self) -> Result<PublicKey, ParamsError> {
        key_field("consensusKey", &self.consensus_key)
    }
}

impl Params for ConsensusKeyAt {
    fn check(&self) -> Result<(), ParamsError> {
        self.key().map(drop)
    }
}
