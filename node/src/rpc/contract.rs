//! JSON-RPC of chain contracts, `contract_*`: deploy and call (signed transactions, as
//! `tx_submit` takes them, checked to carry the right action), read-only queries, code,
//! contract records and contract storage with its state proof.

use std::sync::Arc;

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use pyralog_chain::app::read_state;
use pyralog_chain::tx::Action;
use pyralog_chain::values::{
    ContractCode, ContractRecord, code_hash, code_key, contract_id, contract_key, contract_storage_key,
};
use pyralog_crypto::Digest;
use pyralog_light::wire::to_hex;
use pyralog_rpc_params::{CodeAt, ContractAt, ContractQuery, ContractStorageAt, SubmitTx};
use serde_json::json;

use crate::rpc::codes::{self, internal};
use crate::rpc::method::{
    RpcResult, decode_tx, parse, queue_tx, refused, register_timed, state_version, timed,
};
use crate::service::chain::ChainService;

/// The contract methods.
pub(crate) fn module(chain: Arc<ChainService>) -> RpcModule<Arc<ChainService>> {
    let mut module = RpcModule::new(chain);
    let register = register_timed::<Arc<ChainService>>;
    register(&mut module, "contract_query", query);
    register(&mut module, "contract_getCode", get_code);
    register(&mut module, "contract_get", get);
    register(&mut module, "contract_getStorage", get_storage);
    module
        .register_async_method("contract_deploy", |params, chain, _| async move {
            timed("contract_deploy", deploy(&chain, params)).await
        })
        .expect("unique method name");
    module
        .register_async_method("contract_call", |params, chain, _| async move {
            timed("contract_call", call(&chain, params)).await
        })
        .expect("unique method name");
    module
}

fn wrong_action(method: &str, takes: &str) -> ErrorObjectOwned {
    ErrorObject::owned(codes::TX_REJECTED, format!("{method} takes a transaction that {takes}"), None::<()>)
}

/// `contract_deploy {tx}`: a signed `DeployCode` transaction; answers its id and the code hash.
async fn deploy(chain: &ChainService, params: Params<'static>) -> RpcResult {
    let bytes = parse::<SubmitTx>(&params)?.bytes().map_err(refused)?;
    let signed = decode_tx(chain, &bytes)?;
    let Action::DeployCode { wasm } = &signed.tx.action else {
        return Err(wrong_action("contract_deploy", "deploys code"));
    };
    let hash = code_hash(wasm);
    queue_tx(chain, bytes).await?;
    Ok(json!({ "id": to_hex(&signed.id().0), "code": to_hex(&hash.0) }))
}

/// `contract_call {tx}`: a signed `Instantiate` or `CallContract` transaction; answers its id
/// and the contract (for an instantiation, the id it will have).
async fn call(chain: &ChainService, params: Params<'static>) -> RpcResult {
    let bytes = parse::<SubmitTx>(&params)?.bytes().map_err(refused)?;
    let signed = decode_tx(chain, &bytes)?;
    let contract = match &signed.tx.action {
        Action::Instantiate { .. } => contract_id(&signed.tx.sender, signed.tx.nonce),
        Action::CallContract { contract, .. } => *contract,
        _ => return Err(wrong_action("contract_call", "instantiates or calls a contract")),
    };
    queue_tx(chain, bytes).await?;
    Ok(json!({ "id": to_hex(&signed.id().0), "contract": to_hex(&contract.0) }))
}

fn unknown(what: String) -> ErrorObjectOwned {
    ErrorObject::owned(codes::UNKNOWN_CONTRACT, what, None::<()>)
}

/// `contract_query {contract, entry, input?, caller?, height?}`: what the call would do in the
/// block after `height`; nothing is written.
fn query(chain: &Arc<ChainService>, params: Params<'_>) -> RpcResult {
    let p: ContractQuery = parse(&params)?;
    let target = p.target().map_err(refused)?;
    let version = state_version(chain, p.height)?;
    let id = Digest(target.contract);
    let outcome = pyralog_chain::contracts::query(
        &chain.state,
        version,
        &id,
        &p.entry,
        &target.input,
        target.caller.as_ref(),
    )
    .map_err(internal)?;
    match outcome {
        Ok(outcome) => Ok(json!({
            "height": version,
            "output": to_hex(&outcome.output),
            "events": outcome.events.iter().map(|e| to_hex(e)).collect::<Vec<_>>(),
            "fuelUsed": outcome.fuel_used,
        })),
        Err(reason) if reason.starts_with("no contract") => Err(unknown(reason)),
        Err(reason) => {
            Err(ErrorObject::owned(codes::CONTRACT_FAILED, reason.clone(), Some(json!({ "reason": reason }))))
        }
    }
}

/// `contract_getCode {code, height?}`.
fn get_code(chain: &Arc<ChainService>, params: Params<'_>) -> RpcResult {
    let p: CodeAt = parse(&params)?;
    let hash = Digest(p.code_hash().map_err(refused)?);
    let version = state_version(chain, p.height)?;
    let code: ContractCode = read_state(&chain.state, &code_key(&hash), version)
        .map_err(internal)?
        .ok_or_else(|| unknown(format!("no code {hash} at height {version}")))?;
    Ok(json!({
        "height": version,
        "code": to_hex(&hash.0),
        "deployer": code.deployer.to_string(),
        "deployedAt": code.height,
        "size": code.wasm.len(),
        "wasm": to_hex(&code.wasm),
    }))
}

/// `contract_get {contract, height?}`: the contract's record.
fn get(chain: &Arc<ChainService>, params: Params<'_>) -> RpcResult {
    let p: ContractAt = parse(&params)?;
    let id = Digest(p.id().map_err(refused)?);
    let version = state_version(chain, p.height)?;
    let record: ContractRecord = read_state(&chain.state, &contract_key(&id), version)
        .map_err(internal)?
        .ok_or_else(|| unknown(format!("no contract {id} at height {version}")))?;
    Ok(json!({
        "height": version,
        "contract": to_hex(&id.0),
        "code": to_hex(&record.code.0),
        "creator": record.creator.to_string(),
        "createdAt": record.created_at,
        "balance": record.balance,
    }))
}

/// `contract_getStorage {contract, key, height?}`: the value under a contract's storage key and
/// its proof against the state root (the state key is `cstore/` + id + key; the proven value is
/// a postcard byte string).
fn get_storage(chain: &Arc<ChainService>, params: Params<'_>) -> RpcResult {
    let p: ContractStorageAt = parse(&params)?;
    let (id, key) = p.target().map_err(refused)?;
    let id = Digest(id);
    let version = state_version(chain, p.height)?;
    if read_state::<ContractRecord>(&chain.state, &contract_key(&id), version).map_err(internal)?.is_none() {
        return Err(unknown(format!("no contract {id} at height {version}")));
    }
    let state_key = contract_storage_key(&id, &key);
    let (stored, proof) = chain.state.get_with_proof(&state_key, version).map_err(internal)?;
    let value: Option<Vec<u8>> = stored
        .as_deref()
        .map(postcard::from_bytes)
        .transpose()
        .map_err(|e| internal(format!("contract storage value: {e}")))?;
    let root = chain.state.root(version).map_err(internal)?;
    Ok(json!({
        "height": version,
        "contract": to_hex(&id.0),
        "key": to_hex(&key),
        "value": value.as_deref().map(to_hex),
        "stateKey": to_hex(&state_key),
        "stateValue": stored.as_deref().map(to_hex),
        "stateRoot": to_hex(&root),
        // The header carrying this root is the next block's.
        "headerHeight": version + 1,
        "proof": to_hex(&postcard::to_allocvec(&proof).expect("proofs serialize")),
    }))
}
