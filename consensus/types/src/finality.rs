//! Finality proofs, tagged by the engine that made them and checked through the rule of the
//! engine's family. The driver, the chain app, the RPC and light clients check a block's
//! finality only through [`FinalityProof::verify`]; none of them looks inside a proof of one
//! engine (polkadot-sdk's `Justifications` follow the same idea: engine id + the engine's proof).
//!
//! Families: **quorum** engines (Tendermint and PBFT today; Proof-of-Stake next) prove a block
//! with precommits of more than 2/3 of the voting power ([`QuorumRule`]); **work** engines
//! (Proof-of-Work) prove a block with its seal and the `k` seals on top of it ([`WorkRule`]).
//! What a verifier trusts besides the proof is a [`Trust`]: a validator set, or the chain's work
//! rules and the seal of the block's parent. A chain run behind CometBFT (ABCI) has no proof in
//! this form: CometBFT signs its own headers, which a light client verifies with CometBFT's light
//! client rules ([`SignedHeaderRule`] refuses every proof here, saying so).

use std::fmt;
use std::str::FromStr;

use pyralog_crypto::PublicKey;
use pyralog_crypto::quorum::QuorumError;
use serde::{Deserialize, Serialize};

use crate::pow::{PowRules, Seal, SealError, U256};
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
    /// Proof-of-Work (Nakamoto consensus): anyone who mines may seal blocks; a block is final
    /// `k` seals deep.
    Pow,
    /// CometBFT, outside the node: the chain app runs behind it as an ABCI application and
    /// CometBFT signs its own headers (verifier spec §12.9).
    #[serde(rename = "cometbft")]
    CometBft,
}

impl Engine {
    /// Every engine this build knows.
    pub const ALL: &'static [Engine] = &[Engine::Tendermint, Engine::Pbft, Engine::Pow, Engine::CometBft];

    /// Its name in genesis files and headers.
    pub const fn name(self) -> &'static str {
        match self {
            Engine::Tendermint => "tendermint",
            Engine::Pbft => "pbft",
            Engine::Pow => "pow",
            Engine::CometBft => "cometbft",
        }
    }

    /// The rule its family proves finality by.
    pub fn finality_rule(self) -> &'static dyn FinalityRule {
        match self {
            Engine::Tendermint | Engine::Pbft => &QuorumRule,
            Engine::Pow => &WorkRule,
            Engine::CometBft => &SignedHeaderRule,
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
#[error("unknown consensus engine {0:?} (known: tendermint, pbft, pow, cometbft)")]
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
    /// The verifier trusts something else than the proof's family needs (a validator set for a
    /// work proof, work rules for a quorum proof).
    #[error("a {family} proof is checked against {needs}, which the verifier did not give")]
    WrongTrust {
        /// The proof's family.
        family: &'static str,
        /// What its rule needs.
        needs: &'static str,
    },
    /// A work proof with another number of seals than the block's plus `k` confirmations.
    #[error("{got} seals, where the block's and {confirmations} confirmations are needed")]
    Confirmations {
        /// `k`.
        confirmations: u64,
        /// The seals given.
        got: usize,
    },
    /// The first seal seals another block or height than claimed.
    #[error("the first seal is for block {block} at height {height}, not the claimed block")]
    WrongSealedBlock {
        /// The block it seals.
        block: BlockId,
        /// Its height.
        height: u64,
    },
    /// A seal of a work proof does not extend the one before it (or the trusted parent).
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// What a verifier trusts besides a proof: the validator set deciding the height (quorum
/// engines), or the chain's work rules and the seal of the block's parent, which the verifier
/// holds from following the chain (work engines; `None` for the first block).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Trust<'a> {
    /// The validator set of the height.
    Validators(&'a ValidatorSet),
    /// The work rules, and the seal of the block's parent.
    Work {
        /// The chain's rules (from its genesis).
        rules: &'a PowRules,
        /// The parent's seal (`None` at height 1).
        parent: Option<&'a Seal>,
    },
}

impl<'a> From<&'a ValidatorSet> for Trust<'a> {
    fn from(validators: &'a ValidatorSet) -> Self {
        Trust::Validators(validators)
    }
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
    /// Work engines: the block's seal, then the `k` seals on top of it, each extending the one
    /// before.
    Work {
        /// The engine that sealed the block.
        engine: Engine,
        /// The block's seal first.
        seals: Vec<Seal>,
    },
}

/// What a light client checks, per engine family.
pub trait FinalityRule: Sync {
    /// The family's name (`quorum`, ...).
    fn family(&self) -> &'static str;

    /// Checks that `proof` finalizes `block` at `height` on `chain_id` given `trust`; returns the
    /// voting power (or work, saturated to 64 bits) behind it. `light` may stop verifying
    /// signatures once they make the threshold (as CometBFT's light client does); the validators'
    /// check does not.
    fn verify(
        &self,
        proof: &FinalityProof,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        trust: Trust<'_>,
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
        self.verify(proof, chain_id, height, block, validators.into(), false)
    }
}

/// The rule of chains run behind CometBFT: blocks are final by CometBFT's signed headers, which
/// are not [`FinalityProof`]s, so every proof given here is refused
/// ([`FinalityError::WrongFamily`]); a verifier checks CometBFT's light blocks instead.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaderRule;

impl FinalityRule for SignedHeaderRule {
    fn family(&self) -> &'static str {
        "signed-header"
    }

    fn verify(
        &self,
        proof: &FinalityProof,
        _chain_id: &str,
        _height: u64,
        _block: &BlockId,
        _trust: Trust<'_>,
        _light: bool,
    ) -> Result<u64, FinalityError> {
        Err(FinalityError::WrongFamily { engine: Engine::CometBft, got: proof.family() })
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
        trust: Trust<'_>,
        light: bool,
    ) -> Result<u64, FinalityError> {
        let certificate = precommits_for(proof, chain_id, height, block)?;
        let Trust::Validators(validators) = trust else {
            return Err(FinalityError::WrongTrust { family: "quorum", needs: "a validator set" });
        };
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
            FinalityProof::Quorum { engine, .. } | FinalityProof::Work { engine, .. } => *engine,
        }
    }

    /// The family of its form (`quorum`, `work`).
    pub fn family(&self) -> &'static str {
        match self {
            FinalityProof::Quorum { .. } => "quorum",
            FinalityProof::Work { .. } => "work",
        }
    }

    /// Checks that the proof is `engine`'s and finalizes `block` at `height` on `chain_id` given
    /// `trust` (a validator set, or work rules and the parent's seal), verifying every signature.
    /// Returns the voting power (or work) behind it.
    pub fn verify<'t>(
        &self,
        engine: Engine,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        trust: impl Into<Trust<'t>>,
    ) -> Result<u64, FinalityError> {
        self.check(engine, chain_id, height, block, trust.into(), false)
    }

    /// The seals of a work proof, the block's first.
    pub fn seals(&self) -> Option<&[Seal]> {
        match self {
            FinalityProof::Work { seals, .. } => Some(seals),
            FinalityProof::Quorum { .. } => None,
        }
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
    pub fn verify_light<'t>(
        &self,
        engine: Engine,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        trust: impl Into<Trust<'t>>,
    ) -> Result<u64, FinalityError> {
        self.check(engine, chain_id, height, block, trust.into(), true)
    }

    fn check(
        &self,
        engine: Engine,
        chain_id: &str,
        height: u64,
        block: &BlockId,
        trust: Trust<'_>,
        light: bool,
    ) -> Result<u64, FinalityError> {
        if self.engine() != engine {
            return Err(FinalityError::WrongEngine { expected: engine, got: self.engine() });
        }
        engine.finality_rule().verify(self, chain_id, height, block, trust, light)
    }

    /// The round (view, for PBFT) the block was decided in; none for families without rounds.
    pub fn round(&self) -> Option<u32> {
        match self {
            FinalityProof::Quorum { certificate, .. } => Some(certificate.message.round),
            FinalityProof::Work { .. } => None,
        }
    }

    /// How many rounds deciding the block took, given the round its parent was decided in:
    /// Tendermint's rounds restart at 0 at every height; PBFT's views are global and a height
    /// starts in the view its parent was committed in. None for families without rounds.
    pub fn rounds_taken(&self, parent_round: Option<u32>) -> Option<u32> {
        let round = self.round()?;
        Some(match self.engine() {
            Engine::Pbft => round.saturating_sub(parent_round.unwrap_or(0)).saturating_add(1),
            _ => round.saturating_add(1),
        })
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
            FinalityProof::Work { .. } => Vec::new(),
        }
    }

    /// The commit certificate, for engines of the quorum family (`chain_getCommit`).
    pub fn commit_certificate(&self) -> Option<&CommitCertificate> {
        match self {
            FinalityProof::Quorum { certificate, .. } => Some(certificate),
            FinalityProof::Work { .. } => None,
        }
    }
}

/// The work family's rule: the proof's first seal seals the block at its height and extends the
/// trusted parent's seal; `k` more seals follow, each extending the one before. Every seal
/// carries the target ASERT gives after its parent and a hash under it. Returns the work of the
/// `k + 1` seals (saturated to 64 bits).
///
/// What it cannot check without the chain and a clock: the time rules (the median of the last
/// blocks, the limit ahead of the clock), which bound how much easier a seal's target may be made
/// by a parent time in the future. A node checks them as blocks arrive; the SPV light client as
/// it follows the seals.
#[derive(Debug, Clone, Copy)]
pub struct WorkRule;

impl FinalityRule for WorkRule {
    fn family(&self) -> &'static str {
        "work"
    }

    fn verify(
        &self,
        proof: &FinalityProof,
        _chain_id: &str,
        height: u64,
        block: &BlockId,
        trust: Trust<'_>,
        _light: bool,
    ) -> Result<u64, FinalityError> {
        let FinalityProof::Work { seals, .. } = proof else {
            return Err(FinalityError::WrongFamily { engine: proof.engine(), got: proof.family() });
        };
        let Trust::Work { rules, parent } = trust else {
            return Err(FinalityError::WrongTrust { family: "work", needs: "work rules" });
        };
        let wanted = rules.confirmations.saturating_add(1);
        if seals.len() as u64 != wanted {
            return Err(FinalityError::Confirmations {
                confirmations: rules.confirmations,
                got: seals.len(),
            });
        }
        let first = &seals[0];
        if first.block != *block || first.height != height {
            return Err(FinalityError::WrongSealedBlock { block: first.block, height: first.height });
        }
        let mut total = U256::zero();
        let mut previous = parent;
        for seal in seals {
            total = total.saturating_add(rules.check_seal(seal, previous)?);
            previous = Some(seal);
        }
        Ok(if total > U256::from(u64::MAX) { u64::MAX } else { total.low_u64() })
    }
}
