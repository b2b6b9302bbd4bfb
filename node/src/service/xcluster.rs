//! Reads of a cluster's data by nodes of other clusters, over the overlay's request-response
//! protocol (query path [`PROOF_PATH`]). A node answers for the logs of its own cluster: the
//! record, its inclusion proof at the asked tree size (or against the latest certified
//! checkpoint), and optionally a consistency proof; the asking node relays it to its client, who
//! verifies it without trusting either node.

use std::sync::Arc;

use crate::service::links::ClusterNode;
use pyralog_cluster::engine::ClusterError;
use pyralog_cluster::model::StoredRecord;
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof, InclusionProof};
use pyralog_crypto::{Checkpoint, QuorumCertificate};
use pyralog_p2p::QueryRequest;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The query path of record proofs.
pub(crate) const PROOF_PATH: &str = "log/proof/1";

/// A record proof request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProofRequest {
    /// The log.
    pub(crate) log: String,
    /// The partition.
    pub(crate) partition: u32,
    /// The record's offset.
    pub(crate) offset: u64,
    /// The tree size to prove against; `None`: the latest certified checkpoint.
    pub(crate) size: Option<u64>,
    /// Also prove that the tree of this size is a prefix of the one proven against.
    pub(crate) consistency_from: Option<u64>,
}

/// Its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProofAnswer {
    /// The record's canonical encoding (the Merkle leaf).
    pub(crate) encoded: Vec<u8>,
    /// Its inclusion proof.
    pub(crate) inclusion: InclusionProof<Blake3Merkle>,
    /// The certified checkpoint proven against (when `size` was `None`).
    pub(crate) certificate: Option<QuorumCertificate<Checkpoint>>,
    /// The consistency proof asked for.
    pub(crate) consistency: Option<ConsistencyProof<Blake3Merkle>>,
}

/// Answers `request` from this node's replicas.
pub(crate) async fn answer(node: &ClusterNode, request: &ProofRequest) -> Result<ProofAnswer, ClusterError> {
    let (log, partition, offset) = (request.log.as_str(), request.partition, request.offset);
    let (record, inclusion, certificate) = match request.size {
        Some(size) => {
            let (record, inclusion) = node.proof_at(log, partition, offset, size).await?;
            (record, inclusion, None)
        }
        None => {
            let proof = node.proof(log, partition, offset).await?;
            (proof.record, proof.proof, Some(proof.certificate))
        }
    };
    let consistency = match request.consistency_from {
        Some(from) if from > 0 && from < inclusion.size => {
            Some(node.consistency_proof(log, partition, from, inclusion.size)?)
        }
        _ => None,
    };
    let encoded = record.encode().map_err(|err| ClusterError::Io(err.to_string()))?;
    Ok(ProofAnswer { encoded, inclusion, certificate, consistency })
}

/// Serves other nodes' queries until the overlay stops.
pub(crate) async fn serve_queries(node: Arc<ClusterNode>, mut queries: mpsc::Receiver<QueryRequest>) {
    while let Some(query) = queries.recv().await {
        let node = node.clone();
        tokio::spawn(async move {
            let reply = match query.path.as_str() {
                PROOF_PATH => match postcard::from_bytes::<ProofRequest>(&query.data) {
                    Ok(request) => match answer(&node, &request).await {
                        Ok(answer) => Ok(postcard::to_allocvec(&answer).expect("answers serialize")),
                        Err(err) => Err(err.to_string()),
                    },
                    Err(err) => Err(format!("undecodable proof request: {err}")),
                },
                other => Err(format!("unknown query path {other:?}")),
            };
            let _ = query.reply.send(reply);
        });
    }
}

impl ProofAnswer {
    /// The record, decoded from its proven encoding.
    pub(crate) fn record(&self) -> Result<StoredRecord, String> {
        StoredRecord::decode(self.inclusion.index, &self.encoded)
            .map_err(|e| format!("undecodable record: {e}"))
    }
}
