//! `log_getProof`: a record with what proves it, for a log of this node's cluster or, through
//! the overlay, of any registered cluster; with `finality`, the whole path to a finalized header.
//!
//! Params: `{log, partition, offset, cluster?, finality?, trustedSize?}`.
//! - Without `finality`: the record, its inclusion proof and the partition's latest certified
//!   checkpoint.
//! - With `finality`: the proof is against the partition's checkpoint *anchored on the chain*,
//!   and `finality.evidence` (postcard of `pyralog_light::chain::FinalityEvidence`) adds
//!   the anchor's and the cluster registration's state proofs against the state root of the
//!   finalized head, the head, and its commit certificate. `trustedSize`: the anchored size the
//!   client trusts already; `consistency` then proves the new anchor extends it.

use std::sync::Arc;

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use pyralog_chain::block::committed_state_version;
use pyralog_chain::values::{Anchor, anchor_key, cluster_key};
use pyralog_crypto::ClusterId;
use pyralog_light::chain::{FinalityEvidence, ProvenValue};
use pyralog_light::comet::CometEvidence;
use pyralog_light::wire::{
    certificate_json, consistency_json, header_json, inclusion_json, record_json, to_hex,
};
use pyralog_rpc_params::GetProof;
use serde_json::{Value, json};

use crate::rpc::codes::{self, cluster_error, internal};
use crate::rpc::method::{parse, refused, timed};
use crate::service::chain::ChainService;
use crate::service::links::ClusterNode;
use crate::service::xcluster::{PROOF_PATH, ProofAnswer, ProofRequest, answer};

fn no_chain() -> ErrorObjectOwned {
    ErrorObject::owned(codes::NO_CHAIN, "this node runs no chain ([chain] is not configured)", None::<()>)
}

/// Adds `log_getProof` to `module` (`chain`: the node's chain, for other clusters' records and
/// finality).
pub(crate) fn register(module: &mut RpcModule<ClusterNode>, chain: Option<Arc<ChainService>>) {
    module
        .register_async_method("log_getProof", move |params, node, _| {
            let chain = chain.clone();
            timed("log_getProof", async move { get_proof(&node, chain.as_deref(), params).await })
        })
        .expect("unique method name");
}

/// Runs `log_getProof`.
async fn get_proof(
    node: &ClusterNode,
    chain: Option<&ChainService>,
    params: Params<'static>,
) -> Result<Value, ErrorObjectOwned> {
    let p: GetProof = parse(&params)?;
    let own = node.status().cluster;
    // A log of this cluster is read as an anonymous client (another cluster's own rules apply
    // where it serves the record).
    if p.cluster_id().map_err(refused)?.is_none_or(|c| c == own) {
        node.authorize(&p.log, None, pyralog_cluster::acl::Operation::Read, Some(p.partition))
            .map_err(crate::rpc::codes::cluster_error)?;
    }
    let cluster = p.cluster_id().map_err(refused)?.unwrap_or_else(|| own.clone());
    if cluster != own && chain.is_none() {
        return Err(no_chain());
    }
    if !p.finality {
        let request = ProofRequest {
            log: p.log,
            partition: p.partition,
            offset: p.offset,
            size: None,
            consistency_from: None,
        };
        let answer = fetch(node, chain, &own, &cluster, &request).await?;
        let certificate =
            answer.certificate.as_ref().ok_or_else(|| internal("answer without a certificate"))?;
        return proof_json(&answer, certificate);
    }
    let chain = chain.ok_or_else(no_chain)?;
    let log = p.log_name().map_err(refused)?;
    let head = chain.finalized_height();
    // Behind CometBFT there is no block of ours to serve: CometBFT's signed header at `head`
    // carries the state root (`chain_getCometLightBlock`).
    let block = match &chain.cometbft_rpc {
        Some(_) if head > 0 => None,
        _ => Some(chain.block(head).map_err(internal)?.ok_or_else(|| {
            ErrorObject::owned(codes::NOT_ANCHORED, "the chain has no finalized block yet", None::<()>)
        })?),
    };
    // The state the head's header commits to: its parent's (Proof-of-Work: `k` blocks below
    // its parent's, the last final one when it was mined).
    let version = committed_state_version(head, chain.confirmations);
    let prove = |key: Vec<u8>| -> Result<ProvenValue, ErrorObjectOwned> {
        let (value, proof) = chain.state.get_with_proof(&key, version).map_err(internal)?;
        Ok(ProvenValue { value, proof })
    };
    let registration = prove(cluster_key(&cluster))?;
    if registration.value.is_none() {
        return Err(ErrorObject::owned(
            codes::UNKNOWN_CLUSTER,
            format!("cluster {cluster} is not registered on the chain"),
            None::<()>,
        ));
    }
    let anchor_value = prove(anchor_key(&cluster, &log, p.partition))?;
    let anchor: Option<Anchor> =
        anchor_value.value.as_ref().map(|bytes| postcard::from_bytes(bytes)).transpose().map_err(internal)?;
    let anchored_size = anchor.as_ref().map_or(0, |a| a.certificate.message.size);
    let Some(anchor) = anchor.filter(|_| p.offset < anchored_size) else {
        return Err(ErrorObject::owned(
            codes::NOT_ANCHORED,
            format!(
                "offset {} of {cluster}/{log}/{} is not anchored in the finalized state yet (anchored size {anchored_size})",
                p.offset, p.partition
            ),
            Some(json!({ "anchoredSize": anchored_size, "finalizedHeight": head })),
        ));
    };
    let request = ProofRequest {
        log: p.log,
        partition: p.partition,
        offset: p.offset,
        size: Some(anchored_size),
        consistency_from: p.trusted_size,
    };
    let answer = fetch(node, Some(chain), &own, &cluster, &request).await?;
    let mut value = proof_json(&answer, &anchor.certificate)?;
    value["finality"] = match block {
        Some((header, block)) => {
            let evidence = FinalityEvidence {
                header: header.clone(),
                finality: block.proof,
                cluster: registration,
                anchor: anchor_value,
                record: answer.encoded.clone(),
                inclusion: answer.inclusion.clone(),
            };
            json!({
                "height": head,
                "anchoredAtHeight": anchor.height,
                "header": header_json(&header),
                "evidence": to_hex(&postcard::to_allocvec(&evidence).expect("evidence serializes")),
            })
        }
        None => {
            let evidence = CometEvidence {
                height: head,
                cluster: registration,
                anchor: anchor_value,
                record: answer.encoded.clone(),
                inclusion: answer.inclusion.clone(),
            };
            json!({
                "height": head,
                "engine": "cometbft",
                "anchoredAtHeight": anchor.height,
                "evidence": to_hex(&postcard::to_allocvec(&evidence).expect("evidence serializes")),
            })
        }
    };
    Ok(value)
}

/// The answer from this node (own cluster) or from a member of `cluster` over the overlay.
async fn fetch(
    node: &ClusterNode,
    chain: Option<&ChainService>,
    own: &ClusterId,
    cluster: &ClusterId,
    request: &ProofRequest,
) -> Result<ProofAnswer, ErrorObjectOwned> {
    if cluster == own {
        return answer(node, request).await.map_err(cluster_error);
    }
    let chain = chain.ok_or_else(no_chain)?;
    let members = chain.members_of(cluster).map_err(internal)?;
    if members.is_empty() {
        return Err(ErrorObject::owned(
            codes::UNKNOWN_CLUSTER,
            format!("cluster {cluster} is not registered on the chain"),
            None::<()>,
        ));
    }
    let bytes = postcard::to_allocvec(request).expect("requests serialize");
    let mut errors = Vec::new();
    for member in members {
        match chain.p2p.query(&member, PROOF_PATH, bytes.clone()).await {
            Ok(reply) => match postcard::from_bytes::<ProofAnswer>(&reply) {
                Ok(answer) => return Ok(answer),
                Err(err) => errors.push(format!("{member}: undecodable answer: {err}")),
            },
            Err(err) => errors.push(format!("{member}: {}", err.0)),
        }
    }
    Err(ErrorObject::owned(
        codes::CLUSTER_UNREACHABLE,
        format!("no member of cluster {cluster} answered"),
        Some(json!({ "errors": errors })),
    ))
}

fn proof_json(
    answer: &ProofAnswer,
    certificate: &pyralog_crypto::QuorumCertificate<pyralog_crypto::Checkpoint>,
) -> Result<Value, ErrorObjectOwned> {
    let record = answer.record().map_err(internal)?;
    Ok(json!({
        "record": record_json(&record),
        "encoded": to_hex(&answer.encoded),
        "proof": inclusion_json(&answer.inclusion),
        "certificate": certificate_json(certificate),
                "consistency": answer.consistency.as_ref().map(consistency_json),
    }))
}
