//! JSON-RPC of the chain: `chain_*` (headers, blocks, finality proofs and commits, validators,
//! finalized heads),
//! `state_*` (values and proofs), `tx_*` (submit, status) and `log_anchor`. Binary structures
//! a light client verifies travel as 0x-hex of their canonical encoding (`encoded`) next to a
//! readable JSON rendering.

use std::sync::Arc;

use jsonrpsee::RpcModule;
use jsonrpsee::core::server::PendingSubscriptionSink;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use pyralog_chain::app::tx_location;
use pyralog_chain::block::{ConsensusInfo, Header, validators_hash};
use pyralog_chain::tx::SignedTx;
use pyralog_consensus::app::Misbehaviour;
use pyralog_crypto::Digest;
use pyralog_light::wire::{commit_json, finality_json, header_json, to_hex};
use pyralog_rpc_params::{MAX_SEALS, SealsFrom, StateKey, SubmitTx, TxStatus};
use serde_json::{Value, json};

use crate::rpc::codes::{self, internal};
use crate::rpc::method::{
    RpcResult, decode_tx, height_param, parse, queue_tx, refused, register_timed, send, state_version, timed,
};
use crate::service::anchor::Anchorer;
use crate::service::chain::ChainService;

/// What chain methods run against.
pub(crate) struct ChainCtx {
    /// The chain.
    pub(crate) chain: Arc<ChainService>,
    /// The anchoring task (`log_anchor` runs a round on demand).
    pub(crate) anchorer: Arc<Anchorer>,
}

/// The chain methods.
pub(crate) fn module(ctx: ChainCtx) -> RpcModule<ChainCtx> {
    let mut module = RpcModule::new(ctx);
    let register = register_timed::<ChainCtx>;

    register(&mut module, "chain_getHeader", get_header);
    register(&mut module, "chain_getBlock", get_block);
    register(&mut module, "chain_getCommit", get_commit);
    register(&mut module, "chain_getFinality", get_finality);
    register(&mut module, "chain_getFinalizedHead", finalized_head);
    register(&mut module, "chain_getSeals", get_seals);
    register(&mut module, "chain_getValidators", get_validators);
    register(&mut module, "state_get", state_get);
    register(&mut module, "state_getProof", state_get_proof);
    register(&mut module, "tx_status", tx_status);
    module
        .register_async_method("tx_submit", |params, ctx, _| async move {
            timed("tx_submit", submit(&ctx.chain, params)).await
        })
        .expect("unique method name");
    module
        .register_async_method("chain_getCometLightBlock", |params, ctx, _| async move {
            timed("chain_getCometLightBlock", comet_light_block(&ctx.chain, params)).await
        })
        .expect("unique method name");
    module
        .register_async_method("log_anchor", |_, ctx, _| async move {
            timed("log_anchor", anchor_now(ctx.anchorer.clone())).await
        })
        .expect("unique method name");
    module
        .register_subscription(
            "chain_subscribeFinalizedHeads",
            "chain_finalizedHead",
            "chain_unsubscribeFinalizedHeads",
            |_, pending, ctx, _| async move { finalized_heads(ctx.chain.clone(), pending).await },
        )
        .expect("unique method names");
    module
}

/// The block at `height` (default: the finalized head) or a clear error.
fn block_at(
    chain: &ChainService,
    height: Option<u64>,
) -> Result<(Header, pyralog_consensus::driver::StoredBlock), ErrorObjectOwned> {
    let head = chain.finalized_height();
    let height = height.unwrap_or(head);
    if height == 0 || height > head {
        return Err(ErrorObject::owned(
            codes::UNKNOWN_HEIGHT,
            format!("no block at height {height} (finalized head {head})"),
            Some(json!({ "finalizedHead": head })),
        ));
    }
    if chain.cometbft_rpc.is_some() {
        return Err(ErrorObject::owned(
            codes::NOT_COMETBFT,
            "CometBFT stores and signs this chain's blocks: ask its RPC (/block), or chain_getCometLightBlock for signed headers",
            Some(json!({ "finalizedHead": head })),
        ));
    }
    chain.block(height).map_err(internal)?.ok_or_else(|| {
        ErrorObject::owned(codes::UNKNOWN_HEIGHT, format!("block {height} not stored"), None::<()>)
    })
}

/// The block's commit certificate as JSON (`null` for engines whose proofs have none).
fn commit_of(block: &pyralog_consensus::driver::StoredBlock) -> Value {
    block.proof.commit_certificate().map_or(Value::Null, commit_json)
}

fn get_header(ctx: &ChainCtx, params: Params<'_>) -> RpcResult {
    let chain = &ctx.chain;
    let (header, _) = block_at(chain, height_param(&params)?)?;
    Ok(header_json(&header))
}

fn get_commit(ctx: &ChainCtx, params: Params<'_>) -> RpcResult {
    let chain = &ctx.chain;
    let (_, block) = block_at(chain, height_param(&params)?)?;
    let commit = block.proof.commit_certificate().ok_or_else(|| {
        let engine = block.proof.engine();
        ErrorObject::owned(
            codes::NO_COMMIT_CERTIFICATE,
            format!(
                "the {engine} engine proves finality without a commit certificate: use chain_getFinality"
            ),
            Some(json!({ "engine": engine.name() })),
        )
    })?;
    Ok(commit_json(commit))
}

fn get_finality(ctx: &ChainCtx, params: Params<'_>) -> RpcResult {
    let chain = &ctx.chain;
    let (header, block) = block_at(chain, height_param(&params)?)?;
    let mut answer = finality_json(&block.proof);
    answer["height"] = json!(header.height);
    answer["blockId"] = json!(to_hex(&block.block.0));
    Ok(answer)
}

/// Proof-of-Work seals from `from`: each final block's (its proof's first), then the `k` seals
/// on top of the last final block (its proof's others), as the SPV light client follows them.
fn get_seals(ctx: &ChainCtx, params: Params<'_>) -> RpcResult {
    let p: SealsFrom = crate::rpc::method::parse(&params)?;
    let chain = &ctx.chain;
    let head = chain.finalized_height();
    let count = u64::from(p.count.unwrap_or(MAX_SEALS));
    let mut seals = Vec::new();
    let last = head.min(p.from.saturating_add(count) - 1);
    for height in p.from..=last {
        let (_, block) = block_at(chain, Some(height))?;
        let Some(first) = block.proof.seals().and_then(<[_]>::first) else {
            return Err(ErrorObject::owned(
                codes::NOT_MINED,
                format!("the chain runs {}, which seals no blocks", block.proof.engine()),
                None::<()>,
            ));
        };
        seals.push(*first);
    }
    if (seals.len() as u64) < count && head > 0 {
        let (_, block) = block_at(chain, Some(head))?;
        let above = block.proof.seals().unwrap_or_default().iter().skip(1).filter(|s| s.height >= p.from);
        seals.extend(above.take((count - seals.len() as u64) as usize).copied());
    }
    Ok(json!({
        "finalizedHeight": head,
        "seals": seals.iter().map(|s| to_hex(&s.encode())).collect::<Vec<_>>(),
    }))
}

/// CometBFT's signed header and validators at a height (default: the finalized head), as its
/// RPC serves them (`/commit`, `/validators`), for a light client to verify with CometBFT's rules.
async fn comet_light_block(chain: &ChainService, params: Params<'static>) -> RpcResult {
    let p: pyralog_rpc_params::AtHeight = parse(&params)?;
    let Some(url) = &chain.cometbft_rpc else {
        return Err(ErrorObject::owned(
            codes::NOT_COMETBFT,
            "the chain is not run behind CometBFT",
            None::<()>,
        ));
    };
    let height = p.height.unwrap_or_else(|| chain.finalized_height());
    let unavailable = |e: jsonrpsee::core::client::Error| {
        ErrorObject::owned(codes::NOT_COMETBFT, format!("CometBFT at {url}: {e}"), None::<()>)
    };
    let client = jsonrpsee::http_client::HttpClientBuilder::default().build(url).map_err(unavailable)?;
    let at = |extra: &[(&str, &str)]| {
        let mut params = jsonrpsee::core::params::ObjectParams::new();
        let _ = params.insert("height", height.to_string());
        for (key, value) in extra {
            let _ = params.insert(key, *value);
        }
        params
    };
    use jsonrpsee::core::client::ClientT;
    let commit: Value = client.request("commit", at(&[])).await.map_err(unavailable)?;
    // CometBFT pages validators, 100 at most per page.
    let validators: Value =
        client.request("validators", at(&[("per_page", "100")])).await.map_err(unavailable)?;
    Ok(json!({
        "height": height,
        "signedHeader": commit["signed_header"],
        "validators": validators["validators"],
    }))
}

fn finalized_head(ctx: &ChainCtx, _: Params<'_>) -> RpcResult {
    let chain = &ctx.chain;
    if chain.cometbft_rpc.is_some() {
        // CometBFT stores and signs the blocks (`chain_getCometLightBlock`).
        return Ok(json!({ "height": chain.finalized_height(), "engine": "cometbft" }));
    }
    let (header, block) = block_at(chain, None)?;
    Ok(json!({
        "height": header.height,
        "header": header_json(&header),
        "commit": commit_of(&block),
        "finality": finality_json(&block.proof),
    }))
}

fn get_block(ctx: &ChainCtx, params: Params<'_>) -> RpcResult {
    let chain = &ctx.chain;
    let (header, block) = block_at(chain, height_param(&params)?)?;
    // After the header: the consensus info (the parent's signers, evidence), then transactions.
    let info = block.txs.get(1).and_then(|bytes| ConsensusInfo::decode(bytes).ok());
    let first_tx = if info.is_some() { 2 } else { 1 };
    let info = info.unwrap_or_default();
    let signers: Vec<String> = info
        .last_commit
        .as_ref()
        .map(|p| p.signers())
        .unwrap_or_default()
        .iter()
        .map(|k| k.to_string())
        .collect();
    let evidence: Vec<Value> = info
        .evidence
        .iter()
        .map(|e| {
            let done = Misbehaviour::from(e);
            json!({ "validator": done.validator.to_string(), "height": done.height, "kind": format!("{:?}", done.kind) })
        })
        .collect();
    let txs: Vec<Value> = block.txs[first_tx.min(block.txs.len())..]
        .iter()
        .map(|bytes| {
            let summary = postcard::from_bytes::<SignedTx>(bytes).ok().map(|signed| {
                let location = tx_location(&chain.state, &signed.id()).ok().flatten();
                json!({
                    "id": to_hex(&signed.id().0),
                    "sender": signed.tx.sender.to_string(),
                    "nonce": signed.tx.nonce,
                    "fee": signed.tx.fee,
                    "action": action_name(&signed),
                    "code": location.as_ref().map(|l| l.code),
                    "log": location.map(|l| l.log),
                    "anchor": anchor_summary(&signed),
                })
            });
            json!({ "bytes": to_hex(bytes), "decoded": summary })
        })
        .collect();
    Ok(json!({
        "header": header_json(&header),
        "lastCommitSigners": signers,
        "evidence": evidence,
        "txs": txs,
        "commit": commit_of(&block),
        "finality": finality_json(&block.proof),
    }))
}

/// What an anchoring transaction anchors: `{cluster, log, partition, size}` (null for others).
fn anchor_summary(signed: &SignedTx) -> Value {
    match &signed.tx.action {
        pyralog_chain::tx::Action::AnchorCheckpoint { certificate, .. } => {
            let checkpoint = &certificate.message;
            json!({
                "cluster": checkpoint.cluster.as_str(), "log": checkpoint.log.as_str(),
                "partition": checkpoint.partition, "size": checkpoint.size,
            })
        }
        _ => Value::Null,
    }
}

fn action_name(signed: &SignedTx) -> &'static str {
    match signed.tx.action {
        pyralog_chain::tx::Action::RegisterCluster { .. } => "registerCluster",
        pyralog_chain::tx::Action::AnchorCheckpoint { .. } => "anchorCheckpoint",
        pyralog_chain::tx::Action::Transfer { .. } => "transfer",
        pyralog_chain::tx::Action::CreateValidator { .. } => "createValidator",
        pyralog_chain::tx::Action::Delegate { .. } => "delegate",
        pyralog_chain::tx::Action::Unbond { .. } => "unbond",
        pyralog_chain::tx::Action::Unjail => "unjail",
        pyralog_chain::tx::Action::EditValidator { .. } => "editValidator",
        pyralog_chain::tx::Action::DeployCode { .. } => "deployCode",
        pyralog_chain::tx::Action::Instantiate { .. } => "instantiate",
        pyralog_chain::tx::Action::CallContract { .. } => "callContract",
    }
}

fn get_validators(ctx: &ChainCtx, params: Params<'_>) -> RpcResult {
    let chain = &ctx.chain;
    let head = chain.finalized_height();
    let height = height_param(&params)?.unwrap_or(head.max(1));
    let set = chain.validators_at(height).map_err(internal)?;
    Ok(json!({
        "height": height,
        "hash": to_hex(&validators_hash(set.validators()).0),
        "totalPower": set.total_power(),
        "validators": set.validators().iter().map(|v| json!({
            "publicKey": v.key.to_string(), "power": v.power,
        })).collect::<Vec<_>>(),
    }))
}

fn state_get(ctx: &ChainCtx, params: Params<'_>) -> RpcResult {
    let chain = &ctx.chain;
    let p: StateKey = parse(&params)?;
    let key = p.bytes().map_err(refused)?;
    let version = state_version(chain, p.height)?;
    let value = chain.state.get(&key, version).map_err(internal)?;
    Ok(json!({ "height": version, "key": to_hex(&key), "value": value.as_deref().map(to_hex) }))
}

fn state_get_proof(ctx: &ChainCtx, params: Params<'_>) -> RpcResult {
    let chain = &ctx.chain;
    let p: StateKey = parse(&params)?;
    let key = p.bytes().map_err(refused)?;
    let version = state_version(chain, p.height)?;
    let (value, proof) = chain.state.get_with_proof(&key, version).map_err(internal)?;
    let root = chain.state.root(version).map_err(internal)?;
    Ok(json!({
        "height": version,
        "key": to_hex(&key),
        "value": value.as_deref().map(to_hex),
        "stateRoot": to_hex(&root),
        // The header carrying this root is the next block's.
        "headerHeight": version + 1,
        "proof": to_hex(&postcard::to_allocvec(&proof).expect("proofs serialize")),
    }))
}

async fn submit(chain: &ChainService, params: Params<'static>) -> RpcResult {
    let p: SubmitTx = parse(&params)?;
    let bytes = p.bytes().map_err(refused)?;
    let signed = decode_tx(chain, &bytes)?;
    queue_tx(chain, bytes).await?;
    Ok(json!({ "id": to_hex(&signed.id().0) }))
}

fn tx_status(ctx: &ChainCtx, params: Params<'_>) -> RpcResult {
    let chain = &ctx.chain;
    let p: TxStatus = parse(&params)?;
    let id = p.tx_id().map_err(refused)?;
    Ok(match tx_location(&chain.state, &Digest(id)).map_err(internal)? {
        Some(location) => json!({
            "status": "committed", "height": location.height, "index": location.index,
            "code": location.code, "log": location.log,
        }),
        None => json!({ "status": "unknown" }),
    })
}

async fn anchor_now(anchorer: Arc<Anchorer>) -> RpcResult {
    let submitted = anchorer.round().await.map_err(internal)?;
    Ok(json!({ "submitted": submitted }))
}

async fn finalized_heads(chain: Arc<ChainService>, pending: PendingSubscriptionSink) {
    let Ok(sink) = pending.accept().await else { return };
    let mut progress = chain.progress.clone();
    let mut sent = 0;
    loop {
        let head = progress.borrow_and_update().height;
        // Every height once, in order, from the head at subscription on.
        let from = if sent == 0 { head } else { sent + 1 };
        for height in from.max(1)..=head {
            // Behind CometBFT the node holds no headers of its own: the height alone.
            let head_json = match &chain.cometbft_rpc {
                Some(_) => json!({ "height": height, "engine": "cometbft" }),
                None => {
                    let Ok(Some((header, _))) = chain.block(height) else { return };
                    header_json(&header)
                }
            };
            if !send(&sink, head_json).await {
                return;
            }
            sent = height;
        }
        tokio::select! {
            changed = progress.changed() => if changed.is_err() { return },
            () = sink.closed() => return,
        }
    }
}
