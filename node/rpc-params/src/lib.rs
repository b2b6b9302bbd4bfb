//! The params of the node's JSON-RPC methods, as the node reads them from clients: one type per
//! method (or family of methods), decoded from the request's params text by [`Params::decode`]
//! into the value the handler acts on, or refused with a [`ParamsError`] (code -32602) that says
//! what is wrong. Nothing here touches the node's state, so the fuzz harness runs the same
//! decoding on arbitrary bytes (`rpc_params`).
//!
//! Every type has named fields (`paramStructure: by-name` in `openrpc.json`; an array is also
//! read, positionally in the documented order, as serde reads structs), refuses unknown ones,
//! and serializes back to params that decode to the same value.

mod admin;
pub mod auth;
mod chain;
mod contract;
mod log;
mod zk;

pub use admin::{AddMember, AddTunnelPeer, RemoveMember, SetFailpoint};
pub use chain::{
    AtHeight, ConsensusKeyAt, DelegatorAt, MAX_SEALS, OperatorAt, PairAt, SealsFrom, StateKey, SubmitTx,
    TxStatus,
};
pub use contract::{CodeAt, ContractAt, ContractQuery, ContractStorageAt, QueryTarget};
pub use log::{
    Append, AppendedRecord, CreateLog, GetConsistencyProof, GetLatest, GetProof, MAX_READ, Partition,
    ProducerSeqParam, Read, ReadFormat, RecordHeader, SubscribeRecords, TriggerParam,
};
pub use zk::{MAX_RPC_STARK_BATCH, ProveAppends, ProveMembership, ZkPath, ZkRoots, ZkVerify};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why params are refused (JSON-RPC -32602, with this text as the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// Not the method's params: not JSON, not an object, a missing or unknown field, a value of
    /// the wrong type.
    #[error("{0}")]
    Shape(String),
    /// A field of the right type whose value is not valid (hex, key, address, name, or a rule
    /// between fields).
    #[error("{0}")]
    Value(String),
}

impl ParamsError {
    fn value(message: impl Into<String>) -> Self {
        ParamsError::Value(message.into())
    }
}

/// A method's params.
pub trait Params: Serialize + DeserializeOwned {
    /// Checks beyond the JSON shape (hex fields, keys, addresses, rules between fields).
    fn check(&self) -> Result<(), ParamsError> {
        Ok(())
    }

    /// Decodes and checks the params text of a request (none: JSON `null`, as jsonrpsee reads it).
    fn decode(params: Option<&str>) -> Result<Self, ParamsError> {
        let parsed: Self = serde_json::from_str(params.unwrap_or("null"))
            .map_err(|err| ParamsError::Shape(err.to_string()))?;
        parsed.check()?;
        Ok(parsed)
    }
}

/// The bytes of a 0x-hex field, or a refusal naming `field`.
pub fn hex_field(field: &str, text: &str) -> Result<Vec<u8>, ParamsError> {
    pyralog_light::wire::decode_hex(field, text).map_err(ParamsError::Value)
}

/// The 32 bytes of a 0x-hex field, or a refusal naming `field` (`what`: what 32 bytes it holds).
pub fn hex32_field(field: &str, what: &str, text: &str) -> Result<[u8; 32], ParamsError> {
    hex_field(field, text)?.try_into().map_err(|_| ParamsError::value(format!("{field}: {what} is 32 bytes")))
}

macro_rules! methods {
    ($($name:literal => $variant:ident($ty:ty),)*) => {
        /// The decoded params of any method that takes some.
        #[derive(Debug, Clone, PartialEq)]
        pub enum MethodParams {
            $(
                #[doc = concat!("`", $name, "`.")]
                $variant($ty),
            )*
        }

        /// Every method that takes params.
        pub const METHODS: &[&str] = &[$($name),*];

        impl MethodParams {
            /// Decodes `params` as `method`'s, as the node does; `None` for a method that takes
            /// no params (or is not the node's).
            pub fn decode(method: &str, params: Option<&str>) -> Option<Result<Self, ParamsError>> {
                Some(match method {
                    $($name => <$ty as Params>::decode(params).map(MethodParams::$variant),)*
                    _ => return None,
                })
            }

            /// The checks [`Params::decode`] leaves to the handler, which makes them once while
            /// using the result: `log_append`'s record hex and `admin_addTunnelPeer`'s Rosenpass
            /// key (large, so not decoded twice).
            pub fn check_deferred(&self) -> Result<(), ParamsError> {
                match self {
                    MethodParams::Append(append) => append.records(0).map(drop),
                    MethodParams::AddTunnelPeer(peer) => peer.rosenpass_key_bytes().map(drop),
                    _ => Ok(()),
                }
            }

            /// The params as JSON text a client would send.
            pub fn to_json(&self) -> String {
                let value = match self {
                    $(MethodParams::$variant(params) => serde_json::to_string(params),)*
                };
                value.expect("params serialize")
            }
        }
    };
}

methods! {
    "admin_addMember" => AddMember(AddMember),
    "admin_removeMember" => RemoveMember(RemoveMember),
    "admin_addTunnelPeer" => AddTunnelPeer(AddTunnelPeer),
    "debug_setFailpoint" => SetFailpoint(SetFailpoint),
    "log_create" => CreateLog(CreateLog),
    "log_append" => Append(Append),
    "log_read" => Read(Read),
    "log_getLatest" => GetLatest(GetLatest),
    "log_getCheckpoint" => GetCheckpoint(Partition),
    "log_getProof" => GetProof(GetProof),
    "log_getConsistencyProof" => GetConsistencyProof(GetConsistencyProof),
    "log_getZkRoots" => ZkRoots(ZkRoots),
    "log_getZkPath" => ZkPath(ZkPath),
    "zk_proveMembership" => ProveMembership(ProveMembership),
    "zk_proveAppends" => ProveAppends(ProveAppends),
    "zk_verify" => ZkVerify(ZkVerify),
    "log_subscribeRecords" => SubscribeRecords(SubscribeRecords),
    "log_subscribeCheckpoints" => SubscribeCheckpoints(Partition),
    "chain_getHeader" => GetHeader(AtHeight),
    "chain_getBlock" => GetBlock(AtHeight),
    "chain_getCommit" => GetCommit(AtHeight),
    "chain_getFinality" => GetFinality(AtHeight),
    "chain_getValidators" => GetValidators(AtHeight),
    "state_get" => StateGet(StateKey),
    "state_getProof" => StateGetProof(StateKey),
    "tx_submit" => SubmitTx(SubmitTx),
    "tx_status" => TxStatus(TxStatus),
    "staking_params" => StakingParams(AtHeight),
    "staking_validators" => StakingValidators(AtHeight),
    "staking_validator" => StakingValidator(OperatorAt),
    "staking_delegations" => StakingDelegations(DelegatorAt),
    "staking_unbonding" => StakingUnbonding(PairAt),
    "staking_signingInfo" => StakingSigningInfo(ConsensusKeyAt),
    "contract_deploy" => ContractDeploy(SubmitTx),
    "contract_call" => ContractCall(SubmitTx),
    "contract_query" => ContractQuery(ContractQuery),
    "contract_getCode" => ContractGetCode(CodeAt),
    "contract_get" => ContractGet(ContractAt),
    "contract_getStorage" => ContractGetStorage(ContractStorageAt),
    "chain_getSeals" => GetSeals(SealsFrom),
    "chain_getCometLightBlock" => GetCometLightBlock(AtHeight),
}
