//! JSON-RPC of Proof-of-Stake, `staking_*`: parameters, validators with their power and status,
//! delegations, unbonding entries and signing info. Every stored value comes with its state
//! proof (`value`, `proof`: postcard, 0x-hex) against the state root of the version read, which
//! the header at `headerHeight` carries, so a light client can check each answer.

use std::sync::Arc;

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use pyralog_chain::staking::StakingParams;
use pyralog_chain::staking::records::{
    CANDIDATES_KEY, Delegation, PARAMS_KEY, SigningInfo, UnbondingEntry, ValidatorRecord, delegation_key,
    delegations_of_key, signing_info_key, unbonding_key, validator_key,
};
use pyralog_chain::values::VALIDATORS_KEY;
use pyralog_consensus::Validator;
use pyralog_crypto::PublicKey;
use pyralog_light::wire::to_hex;
use serde::Deserialize;
use serde_json::{Value, json};

use pyralog_rpc_params::{ConsensusKeyAt, DelegatorAt, OperatorAt, PairAt};

use crate::rpc::codes::{self, internal};
use crate::rpc::method::{RpcResult, height_param, parse, refused, register_timed, state_version};
use crate::service::chain::ChainService;

/// The staking methods.
pub(crate) fn module(chain: Arc<ChainService>) -> RpcModule<Arc<ChainService>> {
    let mut module = RpcModule::new(chain);
    let register = register_timed::<Arc<ChainService>>;
    register(&mut module, "staking_params", params);
    register(&mut module, "staking_validators", validators);
    register(&mut module, "staking_validator", validator);
    register(&mut module, "staking_delegations", delegations);
    register(&mut module, "staking_unbonding", unbonding);
    register(&mut module, "staking_signingInfo", signing_info);
    module
}

/// One state read at a version: its value decoded, and the value and proof as a client checks
/// them.
struct Read<'a> {
    chain: &'a ChainService,
    version: u64,
}

impl Read<'_> {
    fn at(chain: &ChainService, height: Option<u64>) -> Result<Read<'_>, ErrorObjectOwned> {
        Ok(Read { chain, version: state_version(chain, height)? })
    }

    /// The value of `key` and its proof.
    fn proven<T: for<'de> Deserialize<'de>>(
        &self,
        key: &[u8],
    ) -> Result<(Option<T>, Value), ErrorObjectOwned> {
        let (bytes, proof) = self.chain.state.get_with_proof(key, self.version).map_err(internal)?;
        let decoded = bytes
            .as_deref()
            .map(postcard::from_bytes)
            .transpose()
            .map_err(|e| internal(format!("state value under {}: {e}", String::from_utf8_lossy(key))))?;
        let evidence = json!({
            "key": to_hex(key),
            "value": bytes.as_deref().map(to_hex),
            "proof": to_hex(&postcard::to_allocvec(&proof).expect("proofs serialize")),
        });
        Ok((decoded, evidence))
    }

    /// The value of `key`, without a proof (indexes the answer is built from).
    fn get<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, ErrorObjectOwned> {
        pyralog_chain::app::read_state(&self.chain.state, key, self.version).map_err(internal)
    }

    /// The staking parameters, or the error of a chain that does not stake.
    fn params(&self) -> Result<StakingParams, ErrorObjectOwned> {
        self.get(PARAMS_KEY)?.ok_or_else(|| {
            ErrorObject::owned(
                codes::NOT_STAKING,
                "this chain does not stake (its genesis engine is not pos)",
                None::<()>,
            )
        })
    }

    fn envelope(&self, mut answer: Value) -> Result<Value, ErrorObjectOwned> {
        answer["height"] = json!(self.version);
        answer["stateRoot"] = json!(to_hex(&self.chain.state.root(self.version).map_err(internal)?));
        // The header carrying this root is the next block's.
        answer["headerHeight"] = json!(self.version + 1);
        Ok(answer)
    }
}

fn params(chain: &Arc<ChainService>, p: Params<'_>) -> RpcResult {
    let read = Read::at(chain, height_param(&p)?)?;
    read.params()?;
    let (params, evidence) = read.proven::<StakingParams>(PARAMS_KEY)?;
    read.envelope(json!({ "params": params, "evidence": evidence }))
}

/// A validator's JSON: its record, power, status and the record's proof.
fn validator_json(
    record: &ValidatorRecord,
    params: &StakingParams,
    set: &[Validator],
    evidence: Value,
) -> Value {
    let in_set = set.iter().find(|v| v.key == record.consensus_key).map(|v| v.power);
    let status = record.status(set);
    json!({
        "operator": record.operator.to_string(),
        "consensusKey": record.consensus_key.to_string(),
        "tokens": record.tokens,
        "shares": record.shares.to_string(),
        "power": params.power(record.tokens),
        "votingPower": in_set.unwrap_or(0),
        "status": status,
        "commissionBps": record.commission_bps,
        "maxCommissionBps": record.max_commission_bps,
        "description": record.description,
        "jailedUntilMs": record.jailed_until_ms,
        "createdAt": record.created_at,
        "evidence": evidence,
    })
}

fn validators(chain: &Arc<ChainService>, p: Params<'_>) -> RpcResult {
    let read = Read::at(chain, height_param(&p)?)?;
    let params = read.params()?;
    let set: Vec<Validator> = read.get(VALIDATORS_KEY)?.unwrap_or_default();
    let operators: Vec<PublicKey> = read.get(CANDIDATES_KEY)?.unwrap_or_default();
    let mut list = Vec::with_capacity(operators.len());
    for operator in operators {
        if let (Some(record), evidence) = read.proven::<ValidatorRecord>(&validator_key(&operator))? {
            list.push(validator_json(&record, &params, &set, evidence));
        }
    }
    let bonded: u64 = set.iter().map(|v| v.power).sum();
    read.envelope(json!({ "bondedPower": bonded, "activeValidators": set.len(), "validators": list }))
}

fn validator(chain: &Arc<ChainService>, p: Params<'_>) -> RpcResult {
    let p: OperatorAt = parse(&p)?;
    let operator = p.operator_key().map_err(refused)?;
    let read = Read::at(chain, p.height)?;
    let params = read.params()?;
    let set: Vec<Validator> = read.get(VALIDATORS_KEY)?.unwrap_or_default();
    match read.proven::<ValidatorRecord>(&validator_key(&operator))? {
        (Some(record), evidence) => {
            read.envelope(json!({ "validator": validator_json(&record, &params, &set, evidence) }))
        }
        (None, evidence) => read.envelope(json!({ "validator": null, "evidence": evidence })),
    }
}

fn delegations(chain: &Arc<ChainService>, p: Params<'_>) -> RpcResult {
    let p: DelegatorAt = parse(&p)?;
    let delegator = p.delegator_key().map_err(refused)?;
    let read = Read::at(chain, p.height)?;
    read.params()?;
    let operators: Vec<PublicKey> = read.get(&delegations_of_key(&delegator))?.unwrap_or_default();
    let mut list = Vec::with_capacity(operators.len());
    for operator in operators {
        let (delegation, evidence) = read.proven::<Delegation>(&delegation_key(&delegator, &operator))?;
        let Some(delegation) = delegation else { continue };
        let record: Option<ValidatorRecord> = read.get(&validator_key(&operator))?;
        list.push(json!({
            "validator": operator.to_string(),
            "shares": delegation.shares.to_string(),
            "tokens": record.map_or(0, |r| r.tokens_of(delegation.shares)),
            "evidence": evidence,
        }));
    }
    read.envelope(json!({ "delegator": delegator.to_string(), "delegations": list }))
}

fn unbonding(chain: &Arc<ChainService>, p: Params<'_>) -> RpcResult {
    let p: PairAt = parse(&p)?;
    let (delegator, operator) = p.keys().map_err(refused)?;
    let read = Read::at(chain, p.height)?;
    read.params()?;
    let (entries, evidence) = read.proven::<Vec<UnbondingEntry>>(&unbonding_key(&operator, &delegator))?;
    let entries: Vec<Value> = entries
        .unwrap_or_default()
        .iter()
        .map(|e| {
            json!({
                "creationHeight": e.creation_height, "completionHeight": e.completion_height,
                "completionTimeMs": e.completion_time_ms, "initialBalance": e.initial_balance,
                "balance": e.balance,
            })
        })
        .collect();
    read.envelope(json!({ "entries": entries, "evidence": evidence }))
}

fn signing_info(chain: &Arc<ChainService>, p: Params<'_>) -> RpcResult {
    let p: ConsensusKeyAt = parse(&p)?;
    let key = p.key().map_err(refused)?;
    let read = Read::at(chain, p.height)?;
    let params = read.params()?;
    let (info, evidence) = read.proven::<SigningInfo>(&signing_info_key(&key))?;
    let info = info.map(|i| {
        json!({
            "startHeight": i.start_height, "indexOffset": i.index_offset, "missedBlocks": i.missed,
            "window": params.signed_blocks_window, "maxMissed": params.max_missed(),
        })
    });
    read.envelope(json!({ "signingInfo": info, "evidence": evidence }))
}
