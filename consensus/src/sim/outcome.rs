//! What a simulated run ends with: its [`Outcome`], or the [`SimFailure`] the oracle found.

use pyralog_crypto::Digest;

/// How a run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The height every honest validator reached.
    pub height: u64,
    /// Virtual milliseconds the run took.
    pub virtual_ms: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Blocks applied through sync rather than the validator's own decision.
    pub synced_blocks: u64,
    /// Equivocations reported (each verified and naming a Byzantine validator).
    pub evidence: u64,
    /// Of those, conflicting proposals.
    pub proposal_evidence: u64,
    /// Distinct misbehaviours (validator and height) that committed blocks carry to the apps.
    pub evidence_committed: u64,
    /// Blocks the drivers' handshakes replayed into apps that had lost them.
    pub replayed_blocks: u64,
    /// View-change messages delivered (engines with view changes).
    pub view_changes: u64,
    /// Each height's block as the first honest validator stored it, from height 1.
    pub blocks: Vec<DecidedBlockInfo>,
    /// Blocks sealed (Proof-of-Work runs).
    pub mined: u64,
    /// Of those, blocks at a final height that are not the final block there (orphaned by a
    /// heavier branch).
    pub orphaned: u64,
}

/// A decided block, as the simulator saw it stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedBlockInfo {
    /// The round (view) of its commit certificate.
    pub round: u32,
    /// The validator that built its payload (none for a Byzantine twin payload).
    pub proposer: Option<pyralog_crypto::PublicKey>,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimFailure {
    /// Two validators committed different blocks at one height.
    #[error("seed {seed}: safety violated at height {height}: {first} vs {second}")]
    Safety {
        /// The seed.
        seed: u64,
        /// Where.
        height: u64,
        /// One block.
        first: Digest,
        /// The other.
        second: Digest,
    },
    /// A stored block whose certificate does not verify against the scenario's validator set.
    #[error("seed {seed}: node {node} committed height {height} with a bad certificate: {reason}")]
    BadCertificate {
        /// The seed.
        seed: u64,
        /// Who.
        node: usize,
        /// Where.
        height: u64,
        /// Why.
        reason: String,
    },
    /// Two apps committed different app hashes at one height.
    #[error("seed {seed}: node {node}'s app hash at height {height} differs from the others'")]
    AppHash {
        /// The seed.
        seed: u64,
        /// Who.
        node: usize,
        /// Where.
        height: u64,
    },
    /// Evidence that does not verify, or that accuses an honest validator.
    #[error("seed {seed}: node {node} reported bad evidence against {accused}")]
    FalseEvidence {
        /// The seed.
        seed: u64,
        /// The reporter.
        node: usize,
        /// The accused validator's index (`usize::MAX`: not a validator).
        accused: usize,
    },
    /// A report of misbehaviour that names an honest peer.
    #[error("seed {seed}: node {node} reported peer {accused}, which is honest: {reason}")]
    FalseReport {
        /// The seed.
        seed: u64,
        /// The reporter.
        node: usize,
        /// The accused peer's index (`usize::MAX`: not a validator).
        accused: usize,
        /// The report's reason.
        reason: String,
    },
    /// A driver stopped with an error.
    #[error("seed {seed}: node {node}'s driver failed: {reason}")]
    Driver {
        /// The seed.
        seed: u64,
        /// Who.
        node: usize,
        /// The error.
        reason: String,
    },
    /// Honest validators did not reach the target height in time.
    #[error(
        "seed {seed}: no progress: honest heights {heights:?} (deciding {deciding:?}) at {virtual_ms} ms, target {target}"
    )]
    Liveness {
        /// The seed.
        seed: u64,
        /// Each honest validator's committed height.
        heights: Vec<u64>,
        /// The height each validator's driver is deciding, if it is up.
        deciding: Vec<Option<u64>>,
        /// When the run gave up.
        virtual_ms: u64,
        /// The target.
        target: u64,
    },
}
