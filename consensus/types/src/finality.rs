//! Finality proofs, tagged by the engine that made them and checked through the rule of the
//! engine's family. The driver, the chain app, the RPC and light clients check a block's
//! finality only through [`FinalityProof::verify`]; none of them looks inside a proof of one
//! engine (polkadot-sdk's `Justifications` follow the same idea: engine id + the engine's proof).
//!
//! Families: **quorum** engines (Tendermint and PBFT today; Proof-of-Stake next) prove a block
//! with precommits of more than 2/3 of the voting power ([`QuorumRule`]). Proof-of-work
//! confirmations and CometBFT's signed headers will be families of their own.

use std::fmt;
use std::str::FromStr;

use pyralog_crypto::PublicKey;
use pyralog_crypto::quorum::QuorumError;
use serde::{Deserialize, Serialize};

use crate::validators::{QUORUM, ValidatorSet};
use crate::vote::{BlockId, CommitCertificate, VoteKind};

/// A consensus engine a chain can run. The genesis file names it, every header carries it, and a
/// validator or light client refuses blocks and proofs of another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Engine {
    /// Tendermint (Malachite's core); a genesis that names no engine runs it.
    #[default]
    Tendermint,
    /// PBFT (Castro and Liskov), the engine of this repository.
    Pbft,
}

impl Engine {
    /// Every engine this build knows.
    pub const ALL: &'static [Engine] = &[Engine::Tendermint, Engine::Pbft];

    /// Its name in genesis files and headers.
    pub const fn name(self) -> &'static str {
        match self {
            Engine::Tendermint => "tendermint",
            Engine::Pbft => "pbft",
        }
    }

    /// The rule its family proves finality by.
    pub fn finality_rule(self) -> &'static dyn FinalityRule {
        match self {
            Engine::Tendermint | Engine::Pbft => &QuorumRule,
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An engine name this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consensus engine {0:?} (known: tendermint, pbft)")]
pub struct UnknownEngine(pub String);

impl FromStr for Engine {
    type Err = UnknownEngine;

    fn from_str(name: &str) -> Result<Engine, UnknownEngine> {
        Engine::ALL.iter().copied().find(|e| e.name() == name).ok_or_else(|| UnknownEngine(name.into()))
    }
}

/// Why a finality proof does not prove what it is said to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FinalityError {
    /// A proof made by another engine than the chain runs.
    #[error("a {got} finality proof, but the chain runs {expected}")]
    WrongEngine {
        /// The chain's engine.
        expected: Engine,
        /// The proof's.
        got: Engine,
    },
    /// A proof of another family than the engine's rule checks (a proof that names an engine
    /// whose family proves finality otherwise).
    #[error("a {got} proof cannot show finality under {engine}'s rule")]
    WrongFamily {
        /// The engine named.
        engine: Engine,
        /// The proof's family.
        got: &'static str,
    },
    /// The signed vote is not a precommit for the claimed block at the claimed height.
    #[error(
        "certificate is a {kind:?} for {block:?} at height {height} on {chain:?}, not a precommit for the claimed block"
    )]
    WrongVote {
        /// The chain named in the vote.
        chain: String,
        /// Its height.
        height: u64,
        /// Its kind.
        kind: VoteKind,
        /// The block it is for.
        block: Option<BlockId>,
    },
    /// The signatures do not make a quorum of the validator set.
    #[error("commit certificate: {0}")]
    Quorum(#[from] QuorumError),
}

/// Why a block is final, tagged by the engine that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FinalityProof {
    /// Quorum engines: precommits of more than 2/3 of the voting power for the block.
    Quorum {
        /// The engine that decided the block.
        engine: Engine,
        /// The precommits.
        certificate: CommitCertificate,
    },
}

/// What a light client checks, per engine family.
pub trait FinalityRule: Sync {
    /// The family's name (`quorum`, ...).
    fn family(&self) -> &'static str;

    /// Checks that `proof` finalizes `block` at `height` on `chain_id` under `validators`;
    /// returns the voting power (or work) behind it. `light` may stop verifying signatures once
    /// they make the threshold (as CometBFT's light client does); the validators' check does not.
    fn verify(
        &self,
        proof: &FinalityProof,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        validators: &ValidatorSet,
        light: bool,
    ) -> Result<u64, FinalityError>;

    /// [`FinalityRule::verify`] in full, by a validator that has itself verified `known`, a proof
    /// of the same block: what `known` already proves need not be checked again (a proposer's
    /// proof of the parent mostly holds the precommits the validator's own proof holds). Rules
    /// without such a shortcut verify everything.
    #[allow(clippy::too_many_arguments)]
    fn verify_given(
        &self,
        proof: &FinalityProof,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        validators: &ValidatorSet,
        known: &FinalityProof,
    ) -> Result<u64, FinalityError> {
        let _ = known;
        self.verify(proof, chain_id, height, block, validators, false)
    }
}

/// The quorum family's rule: a commit certificate of precommits for the block, signed by distinct
/// validators holding more than 2/3 of the set's power.
#[derive(Debug, Clone, Copy)]
pub struct QuorumRule;

impl FinalityRule for QuorumRule {
    fn family(&self) -> &'static str {
        "quorum"
    }

    fn verify(
        &self,
        proof: &FinalityProof,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        validators: &ValidatorSet,
        light: bool,
    ) -> Result<u64, FinalityError> {
        let certificate = precommits_for(proof, chain_id, height, block)?;
        let members = validators.members();
        Ok(if light {
            certificate.verify_quorum(members, QUORUM)?
        } else {
            certificate.verify(members, QUORUM)?
        })
    }

    fn verify_given(
        &self,
        proof: &FinalityProof,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        validators: &ValidatorSet,
        known: &FinalityProof,
    ) -> Result<u64, FinalityError> {
        let certificate = precommits_for(proof, chain_id, height, block)?;
        let members = validators.members();
        Ok(match known.commit_certificate() {
            Some(known) => certificate.verify_given(members, QUORUM, known)?,
            None => certificate.verify(members, QUORUM)?,
        })
    }
}

/// The quorum proof's certificate, if its vote is a precommit for `block` at `height` on
/// `chain_id`.
fn precommits_for<'p>(
    proof: &'p FinalityProof,
    chain_id: &str,
    height: u64,
    block: &BlockId,
) -> Result<&'p CommitCertificate, FinalityError> {
    #[allow(unreachable_patterns)] // other families will have variants of their own
    let certificate = match proof {
        FinalityProof::Quorum { certificate, .. } => certificate,
        other => return Err(FinalityError::WrongFamily { engine: other.engine(), got: other.family() }),
    };
    let vote = &certificate.message;
    if vote.chain_id != chain_id
        || vote.height != height
        || vote.kind != VoteKind::Precommit
        || vote.block.as_ref() != Some(block)
    {
        return Err(FinalityError::WrongVote {
            chain: vote.chain_id.clone(),
            height: vote.height,
            kind: vote.kind,
            block: vote.block,
        });
    }
    Ok(certificate)
}

impl FinalityProof {
    /// A quorum engine's proof.
    pub fn quorum(engine: Engine, certificate: CommitCertificate) -> Self {
        FinalityProof::Quorum { engine, certificate }
    }

    /// The engine that made it.
    pub fn engine(&self) -> Engine {
        match self {
            FinalityProof::Quorum { engine, .. } => *engine,
        }
    }

    /// The family of its form (`quorum`, ...).
    pub fn family(&self) -> &'static str {
        match self {
            FinalityProof::Quorum { .. } => "quorum",
        }
    }

    /// Checks that the proof is `engine`'s and finalizes `block` at `height` on `chain_id` under
    /// `validators`, verifying every signature. Returns the voting power behind it.
    pub fn verify(
        &self,
        engine: Engine,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        validators: &ValidatorSet,
    ) -> Result<u64, FinalityError> {
        self.check(engine, chain_id, height, block, validators, false)
    }

    /// [`FinalityProof::verify`] by a validator that has itself verified `known`, its own proof of
    /// the same block (the rule may skip what `known` already proves).
    pub fn verify_given(
        &self,
        engine: Engine,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        validators: &ValidatorSet,
        known: &FinalityProof,
    ) -> Result<u64, FinalityError> {
        if self.engine() != engine {
            return Err(FinalityError::WrongEngine { expected: engine, got: self.engine() });
        }
        engine.finality_rule().verify_given(self, chain_id, height, block, validators, known)
    }

    /// [`FinalityProof::verify`] for light clients: signatures are verified only until they make
    /// the threshold.
    pub fn verify_light(
        &self,
        engine: Engine,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        validators: &ValidatorSet,
    ) -> Result<u64, FinalityError> {
        self.check(engine, chain_id, height, block, validators, true)
    }

    fn check(
        &self,
        engine: Engine,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        validators: &ValidatorSet,
        light: bool,
    ) -> Result<u64, FinalityError> {
        if self.engine() != engine {
            return Err(FinalityError::WrongEngine { expected: engine, got: self.engine() });
        }
        engine.finality_rule().verify(self, chain_id, height, block, validators, light)
    }

    /// The validators whose signatures the proof carries (a block's "last commit" signers, for
    /// the next block's app: liveness accounting needs them). Empty for families without
    /// signers.
    pub fn signers(&self) -> Vec<PublicKey> {
        match self {
            FinalityProof::Quorum { certificate, .. } => {
                let mut signers: Vec<PublicKey> = certificate.signatures.iter().map(|s| s.signer).collect();
                signers.sort();
                signers.dedup();
                signers
            }
        }
    }

    /// The commit certificate, for engines of the quorum family (`chain_getCommit`).
    pub fn commit_certificate(&self) -> Option<&CommitCertificate> {
        match self {
            FinalityProof::Quorum { certificate, .. } => Some(certificate),
        }
    }
}
