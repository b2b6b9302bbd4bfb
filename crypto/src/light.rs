//! The light client's checks: is this record really at this offset of this partition, as a
//! majority of the partition's replicas certified, and does the certified state extend the one
//! the client trusted before (no rollback, no fork)?
//!
//! Pure: the caller fetches the evidence (over RPC, from a file, ...) and keeps the trust state.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, ClusterId, LogName};
use crate::merkle::{Blake3Merkle, ConsistencyProof, InclusionProof, VerifyError};
use crate::quorum::{MemberSet, QuorumCertificate, QuorumError, Threshold};

/// Signatures a checkpoint needs: a majority of the partition's replicas.
pub const CHECKPOINT_THRESHOLD: Threshold = Threshold::MAJORITY;

/// What the client asks about: one record position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordQuery {
    /// The cluster it trusts.
    pub cluster: ClusterId,
    /// The log.
    pub log: LogName,
    /// The partition.
    pub partition: u32,
    /// The record's offset.
    pub offset: u64,
}

/// What a server answers: the record's canonical bytes, their inclusion proof and the
/// certificate of the checkpoint the proof is against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEvidence {
    /// The record's canonical encoding (its Merkle leaf data).
    pub record: Vec<u8>,
    /// Inclusion proof of the record against the checkpoint's root.
    pub proof: InclusionProof<Blake3Merkle>,
    /// The certified checkpoint.
    pub certificate: QuorumCertificate<Checkpoint>,
}

/// Why the client refused the evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LightError {
    /// The checkpoint is for another cluster, log or partition than asked.
    #[error("checkpoint is for {got}, asked about {asked}")]
    WrongPartition {
        /// What was asked.
        asked: String,
        /// What the checkpoint names.
        got: String,
    },
    /// The proof is for another offset than asked.
    #[error("proof is for offset {got}, asked about offset {asked}")]
    WrongOffset {
        /// Asked offset.
        asked: u64,
        /// Proof's leaf index.
        got: u64,
    },
    /// The certificate's signatures do not make a majority of the trusted signers.
    #[error("checkpoint certificate: {0}")]
    Certificate(QuorumError),
    /// The record is not in the certified tree (changed bytes, wrong proof, wrong size).
    #[error("inclusion proof: {0}")]
    Inclusion(VerifyError),
    /// The certified checkpoint is older than one the client already trusts.
    #[error("checkpoint of size {got} is older than the trusted size {trusted} (rollback)")]
    Rollback {
        /// Trusted size.
        trusted: u64,
        /// Offered size.
        got: u64,
    },
    /// The certified state does not extend the trusted one.
    #[error("certified state does not extend the trusted checkpoint (fork): {0}")]
    Fork(VerifyError),
    /// A newer checkpoint came without the consistency proof from the trusted one.
    #[error("no consistency proof from the trusted checkpoint of size {trusted}")]
    MissingConsistencyProof {
        /// Trusted size.
        trusted: u64,
    },
}

/// Checks `evidence` for `query` against the partition's trusted `signers`, and, when the client
/// trusted an earlier checkpoint of the same partition, that the new one extends it
/// (`consistency` proves it; not needed when the sizes are equal). Returns the certified
/// checkpoint, which the client may trust from now on.
pub fn verify_record(
    query: &RecordQuery,
    signers: &MemberSet,
    evidence: &RecordEvidence,
    trusted: Option<&Checkpoint>,
    consistency: Option<&ConsistencyProof<Blake3Merkle>>,
) -> Result<Checkpoint, LightError> {
    let checkpoint = &evidence.certificate.message;
    let names = |c: &ClusterId, l: &LogName, p: u32| format!("{c}/{l}/{p}");
    if checkpoint.cluster != query.cluster
        || checkpoint.log != query.log
        || checkpoint.partition != query.partition
    {
        return Err(LightError::WrongPartition {
            asked: names(&query.cluster, &query.log, query.partition),
            got: names(&checkpoint.cluster, &checkpoint.log, checkpoint.partition),
        });
    }
    if evidence.proof.index != query.offset {
        return Err(LightError::WrongOffset { asked: query.offset, got: evidence.proof.index });
    }
    evidence.certificate.verify_quorum(signers, CHECKPOINT_THRESHOLD).map_err(LightError::Certificate)?;
    checkpoint.verify_inclusion(&evidence.record, &evidence.proof).map_err(LightError::Inclusion)?;
    if let Some(trusted) = trusted {
        check_extends(trusted, checkpoint, consistency)?;
    }
    Ok(checkpoint.clone())
}

/// Checks that `newer` extends `trusted` (same partition assumed): not smaller, the same root at
/// the same size, and a consistency proof between them when it grew (the chain's rule for
/// anchoring a checkpoint after an earlier one, too).
pub fn check_extends(
    trusted: &Checkpoint,
    newer: &Checkpoint,
    consistency: Option<&ConsistencyProof<Blake3Merkle>>,
) -> Result<(), LightError> {
    if newer.size < trusted.size {
        return Err(LightError::Rollback { trusted: trusted.size, got: newer.size });
    }
    if newer.size == trusted.size {
        // Same size: the roots must be equal, or two certified states disagree.
        return match newer.root == trusted.root {
            true => Ok(()),
            false => Err(LightError::Fork(VerifyError::RootMismatch {
                expected: trusted.root,
                computed: newer.root,
            })),
        };
    }
    let proof = consistency.ok_or(LightError::MissingConsistencyProof { trusted: trusted.size })?;
    newer.verify_extends(trusted, proof).map_err(LightError::Fork)
}
