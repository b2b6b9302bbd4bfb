//! The rules every validator applies to what a proposed block carries besides its transactions:
//! the parent's finality proof (the "last commit", whose signers the next block's app learns) and
//! evidence of equivocation. CometBFT's `LastCommit` and `Evidence` follow the same idea: each
//! validator sees its own precommits and its own conflicting votes, so these reach the app only
//! inside an agreed block, checked by everyone who voted for it.
//!
//! A piece of evidence may enter a block when it proves what it claims, is of this chain, happened
//! before the block's height and at most [`MAX_EVIDENCE_AGE`] heights before it, and accuses a
//! validator of the height it happened at. A block carries at most [`MAX_EVIDENCE_PER_BLOCK`]
//! pieces, none two against the same validator at the same height. Whether the app already
//! punished a misbehaviour is the app's to check (its state knows).

use pyralog_crypto::PublicKey;

use crate::app::BlockContext;
use crate::finality::{Engine, FinalityError, FinalityProof};
use crate::validators::ValidatorSet;
use crate::vote::{BlockId, Evidence};

/// How many heights after a misbehaviour its evidence may still enter a block (CometBFT's
/// `max_age_num_blocks` default).
pub const MAX_EVIDENCE_AGE: u64 = 100_000;

/// Most pieces of evidence one block carries.
pub const MAX_EVIDENCE_PER_BLOCK: usize = 16;

/// Why a piece of evidence may not enter a block at a height.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The two signed messages do not conflict, or a signature does not verify.
    #[error("the evidence does not prove an equivocation")]
    Unproven,
    /// It is about another chain's messages.
    #[error("evidence of chain {0:?}")]
    WrongChain(String),
    /// It is not from a height before the one it would enter (or it names height 0).
    #[error("evidence of height {height} cannot enter a block at height {at}")]
    NotBefore {
        /// The misbehaviour's height.
        height: u64,
        /// The block's height.
        at: u64,
    },
    /// It is more than [`MAX_EVIDENCE_AGE`] heights old.
    #[error("evidence of height {height} is too old for a block at height {at}")]
    Expired {
        /// The misbehaviour's height.
        height: u64,
        /// The block's height.
        at: u64,
    },
    /// The accused was not a validator at that height.
    #[error("{validator} was not a validator at height {height}")]
    NotValidator {
        /// The accused.
        validator: PublicKey,
        /// The misbehaviour's height.
        height: u64,
    },
}

/// Checks that `evidence` may enter a block at height `at` on `chain_id`, where `validators` is
/// the set that decided the evidence's height.
pub fn check_evidence(
    evidence: &Evidence,
    chain_id: &str,
    at: u64,
    validators: &ValidatorSet,
) -> Result<(), EvidenceError> {
    if !evidence.verify() {
        return Err(EvidenceError::Unproven);
    }
    if evidence.chain_id() != chain_id {
        return Err(EvidenceError::WrongChain(evidence.chain_id().to_string()));
    }
    let height = evidence.height();
    if height == 0 || height >= at {
        return Err(EvidenceError::NotBefore { height, at });
    }
    if at - height > MAX_EVIDENCE_AGE {
        return Err(EvidenceError::Expired { height, at });
    }
    let validator = evidence.validator();
    if validators.power_of(&validator).is_none() {
        return Err(EvidenceError::NotValidator { validator, height });
    }
    Ok(())
}

/// Why a proposed block's last commit or evidence is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockContextError {
    /// The first block has no parent to carry a proof of.
    #[error("the first block carries a last commit")]
    LastCommitAtFirstHeight,
    /// The carried proof does not finalize the parent under the parent's validators.
    #[error("last commit: {0}")]
    LastCommit(FinalityError),
    /// More than [`MAX_EVIDENCE_PER_BLOCK`] pieces of evidence.
    #[error("{0} pieces of evidence; a block carries at most {MAX_EVIDENCE_PER_BLOCK}")]
    TooMuchEvidence(usize),
    /// A piece of evidence may not enter the block.
    #[error("evidence {index}: {reason}")]
    Evidence {
        /// Its position in the block.
        index: usize,
        /// Why.
        reason: EvidenceError,
    },
    /// Two pieces accuse the same validator at the same height.
    #[error("evidence {index} accuses a validator at a height an earlier piece already does")]
    DuplicateEvidence {
        /// The second piece's position.
        index: usize,
    },
}

/// What a block at `height` on a parent is checked against: the chain, its engine, the parent's id
/// and the validator set of each height.
pub struct ContextRules<'a> {
    /// The chain.
    pub chain_id: &'a str,
    /// Its engine (a last commit of another engine is refused).
    pub engine: Engine,
    /// The height of the block checked.
    pub height: u64,
    /// The parent block's id.
    pub parent: &'a BlockId,
    /// The validator's own proof of the parent, verified when it committed the parent (the
    /// carried one's signatures that it holds are not verified again).
    pub parent_proof: Option<&'a FinalityProof>,
    /// The validator set that decided a height.
    pub validators_at: &'a dyn Fn(u64) -> &'a ValidatorSet,
}

impl ContextRules<'_> {
    /// Checks the last commit and evidence a proposed block carries. A block need not carry a
    /// last commit (apps whose payloads carry none); the chain's requires one after height 1.
    pub fn check(&self, carried: &BlockContext) -> Result<(), BlockContextError> {
        if let Some(proof) = &carried.last_commit {
            if self.height <= 1 {
                return Err(BlockContextError::LastCommitAtFirstHeight);
            }
            let (height, validators) = (self.height - 1, (self.validators_at)(self.height - 1));
            match self.parent_proof {
                Some(known) => {
                    proof.verify_given(self.engine, self.chain_id, height, self.parent, validators, known)
                }
                None => proof.verify(self.engine, self.chain_id, height, self.parent, validators),
            }
            .map_err(BlockContextError::LastCommit)?;
        }
        if carried.evidence.len() > MAX_EVIDENCE_PER_BLOCK {
            return Err(BlockContextError::TooMuchEvidence(carried.evidence.len()));
        }
        let mut accused = Vec::with_capacity(carried.evidence.len());
        for (index, evidence) in carried.evidence.iter().enumerate() {
            check_evidence(evidence, self.chain_id, self.height, (self.validators_at)(evidence.height()))
                .map_err(|reason| BlockContextError::Evidence { index, reason })?;
            let who = (evidence.validator(), evidence.height());
            if accused.contains(&who) {
                return Err(BlockContextError::DuplicateEvidence { index });
            }
            accused.push(who);
        }
        Ok(())
    }
}
