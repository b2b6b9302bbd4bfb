//! JSON-RPC of zk proofs: `log_getZkRoots`, `log_getZkPath`, `zk_proveMembership`,
//! `zk_proveAppends` and `zk_verify`.
//!
//! A proof answer is what `pyralog light verify-zk --proof FILE` reads: `{cluster, log,
//! partition, proof}`, the proof in [`ZkProof`]'s JSON shape. Node-side membership proving
//! reads the record's key, value and blinding from the log, so that node learns which record the
//! proof is about; `pyralog zk prove-membership` proves on the client instead.

use std::sync::Arc;

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use pyralog_cluster::engine::ClusterError;
use pyralog_cluster::storage::zk::record_fields;
use pyralog_crypto::ZkTree;
use pyralog_rpc_params::{ProveAppends, ProveMembership, ZkPath, ZkRoots, ZkVerify};
use pyralog_zk::groth16::{self, MembershipKeys, MembershipWitness};
use pyralog_zk::poseidon::{Fr, PoseidonHasher};
use pyralog_zk::proof::{ZkError, ZkProof, membership_statement};
use pyralog_zk::tree::DigestCodec;
use serde_json::json;
use tokio::sync::Semaphore;

use pyralog_light::wire::{to_hex, zk_roots_json};
use pyralog_light::zk::ProofFile;

use crate::rpc::codes::{self, cluster_error, internal, invalid};
use crate::rpc::method::{RpcResult, parse, refused, timed};
use crate::service::links::ClusterNode;

/// What zk methods run against.
pub(crate) struct ZkCtx {
    /// This node's cluster engine.
    node: Arc<ClusterNode>,
    /// The Groth16 membership keys, when `[zk] keys` is configured.
    keys: Option<Arc<MembershipKeys>>,
    /// One proof at a time: provers take every core and, for STARKs, gigabytes.
    prover: Arc<Semaphore>,
}

impl ZkCtx {
    /// The zk methods' context over `node`, proving membership with `keys` when configured.
    pub(crate) fn new(node: Arc<ClusterNode>, keys: Option<Arc<MembershipKeys>>) -> ZkCtx {
        ZkCtx { node, keys, prover: Arc::new(Semaphore::new(1)) }
    }
}

/// The zk methods.
pub(crate) fn module(ctx: ZkCtx) -> RpcModule<ZkCtx> {
    let mut module = RpcModule::new(ctx);
    let methods: [(&'static str, Method); 5] = [
        ("log_getZkRoots", |c, p| Box::pin(zk_roots(c, p))),
        ("log_getZkPath", |c, p| Box::pin(zk_path(c, p))),
        ("zk_proveMembership", |c, p| Box::pin(prove_membership(c, p))),
        ("zk_proveAppends", |c, p| Box::pin(prove_appends(c, p))),
        ("zk_verify", |c, p| Box::pin(verify(c, p))),
    ];
    for (name, method) in methods {
        module
            .register_async_method(name, move |params, ctx, _| timed(name, method(ctx, params)))
            .expect("unique method name");
    }
    module
}

type Method = fn(Arc<ZkCtx>, Params<'static>) -> std::pin::Pin<Box<dyn Future<Output = RpcResult> + Send>>;

async fn zk_roots(ctx: Arc<ZkCtx>, params: Params<'static>) -> RpcResult {
    let p: ZkRoots = parse(&params)?;
    let (size, roots) = ctx.node.zk_roots(&p.log, p.partition, p.size).await.map_err(cluster_error)?;
    Ok(json!({ "size": size, "roots": zk_roots_json(&roots) }))
}

async fn zk_path(ctx: Arc<ZkCtx>, params: Params<'static>) -> RpcResult {
    let p: ZkPath = parse(&params)?;
    let (leaf, path) =
        ctx.node.poseidon_path(&p.log, p.partition, p.offset, p.size).await.map_err(cluster_error)?;
    Ok(json!({
        "index": path.index,
        "size": p.size,
        "leaf": fr_hex(&leaf),
        "siblings": path.siblings.iter().map(fr_hex).collect::<Vec<_>>(),
    }))
}

async fn prove_membership(ctx: Arc<ZkCtx>, params: Params<'static>) -> RpcResult {
    let p: ProveMembership = parse(&params)?;
    let nonce = field_element("nonce", p.nonce_bytes().map_err(refused)?)?;
    let keys = ctx.keys.clone().ok_or_else(no_keys)?;
    let node = &ctx.node;
    let info = node.log(&p.log).map_err(cluster_error)?;
    let id = info.partition_id(p.partition);
    let certificate = node
        .checkpoint(&p.log, p.partition)
        .map_err(cluster_error)?
        .filter(|c| p.offset < c.message.size)
        .ok_or(ClusterError::NotCertified { partition: id, offset: p.offset })
        .map_err(cluster_error)?;
    let checkpoint = certificate.message;
    let stored = node.read(&p.log, p.partition, p.offset, 1).map_err(cluster_error)?;
    let record = &stored.first().ok_or_else(|| internal("the certified record is missing"))?.record;
    let fields = record_fields(record);
    let statement = membership_statement(&checkpoint, p.disclose_key.then_some(fields.key), nonce)
        .ok_or(ClusterError::ZkTreeNotKept { log: p.log.clone(), tree: ZkTree::Poseidon })
        .map_err(cluster_error)?;
    let (leaf, path) =
        node.poseidon_path(&p.log, p.partition, p.offset, checkpoint.size).await.map_err(cluster_error)?;
    if leaf != fields.leaf() {
        return Err(internal("the stored Poseidon leaf is not the record's"));
    }
    let witness = MembershipWitness::of_record(&fields, path);
    let proof = prove(&ctx, move || ZkProof::prove_membership(&keys, statement, &witness)).await?;
    proof_answer(checkpoint.cluster.as_str(), &p.log, p.partition, proof)
}

async fn prove_appends(ctx: Arc<ZkCtx>, params: Params<'static>) -> RpcResult {
    let p: ProveAppends = parse(&params)?;
    let (siblings, leaves) =
        ctx.node.rescue_batch(&p.log, p.partition, p.from_size, p.to_size).await.map_err(cluster_error)?;
    let proof = prove(&ctx, move || ZkProof::prove_appends(p.from_size, &siblings, &leaves)).await?;
    proof_answer(ctx.node.status().cluster.as_str(), &p.log, p.partition, proof)
}

async fn verify(ctx: Arc<ZkCtx>, params: Params<'static>) -> RpcResult {
    let p: ZkVerify = parse(&params)?;
    let key_bytes = p.verifying_key_bytes().map_err(refused)?;
    let proof: ZkProof = serde_json::from_value(p.proof).map_err(|err| invalid(format!("proof: {err}")))?;
    let given = match key_bytes {
        Some(bytes) => Some(
            groth16::verifying_key_from_bytes(&bytes)
                .map_err(|err| invalid(format!("verifyingKey: {err}")))?,
        ),
        None => None,
    };
    let key = given.as_ref().or(ctx.keys.as_ref().map(|keys| &keys.verifying));
    // Verification is milliseconds; it runs off the async threads all the same.
    let outcome = tokio::task::spawn_blocking({
        let (proof, key) = (proof.clone(), key.cloned());
        move || proof.verify(key.as_ref())
    })
    .await
    .map_err(internal)?;
    match outcome {
        Ok(()) => Ok(json!({ "valid": true })),
        Err(ZkError::NoVerifyingKey) => Err(no_keys()),
        Err(err) => Ok(json!({ "valid": false, "reason": err.to_string() })),
    }
}

/// Runs a prover on a blocking thread, one at a time per node.
async fn prove(
    ctx: &ZkCtx,
    job: impl FnOnce() -> Result<ZkProof, ZkError> + Send + 'static,
) -> Result<ZkProof, ErrorObjectOwned> {
    let permit = ctx.prover.clone().try_acquire_owned().map_err(|_| {
        ErrorObject::owned(codes::ZK_BUSY, "a proof is being made on this node; retry later", None::<()>)
    })?;
    let outcome = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        job()
    })
    .await
    .map_err(internal)?;
    outcome.map_err(|err| ErrorObject::owned(codes::ZK_PROVE_FAILED, err.to_string(), None::<()>))
}

/// The answer of a prove method: `pyralog light verify-zk`'s proof file.
fn proof_answer(cluster: &str, log: &str, partition: u32, proof: ZkProof) -> RpcResult {
    let file = ProofFile { cluster: cluster.to_owned(), log: log.to_owned(), partition, proof };
    serde_json::to_value(file).map_err(internal)
}

fn no_keys() -> ErrorObjectOwned {
    ErrorObject::owned(
        codes::ZK_NO_KEYS,
        "this node has no Groth16 keys: run `pyralog zk setup` and set [zk] keys in config.toml",
        None::<()>,
    )
}

/// 32 bytes of a param as a canonical field element.
fn field_element(name: &str, bytes: [u8; 32]) -> Result<Fr, ErrorObjectOwned> {
    PoseidonHasher::from_bytes(&bytes)
        .ok_or_else(|| invalid(format!("{name}: not a canonical field element")))
}

fn fr_hex(x: &Fr) -> String {
    to_hex(&PoseidonHasher::to_bytes(x))
}
