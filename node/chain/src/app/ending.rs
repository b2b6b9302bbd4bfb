//! The end of a block: what its consensus info proved (who signed the parent, misbehaviour),
//! then staking's end of block and the validator sets moving one height on.

use pyralog_consensus_types::app::{DecidedBlock, Misbehaviour};
use pyralog_consensus_types::{Validator, ValidatorSet};

use crate::overlay::Overlay;
use crate::staking::end_block::BlockEnd;
use crate::staking::ledger::BlockAt;
use crate::staking::records::PARAMS_KEY;
use crate::staking::{self, StakingParams};
use crate::state::StateError;
use crate::values::{
    LAST_COMMIT_KEY, LastCommit, MisbehaviourKind, MisbehaviourRecord, NEXT_VALIDATORS_KEY, VALIDATORS_KEY,
    misbehaviour_key,
};

/// Records what the block's consensus info proved: who signed its parent, and each misbehaviour
/// not recorded before (the first proof of a double sign at a height counts).
pub(super) fn record_consensus(
    view: &mut Overlay<'_>,
    block: &DecidedBlock,
) -> Result<Vec<Misbehaviour>, StateError> {
    let mut recorded = Vec::new();
    if block.height > 1 {
        let signers = block.last_commit_signers.clone();
        view.put(LAST_COMMIT_KEY.to_vec(), &LastCommit { height: block.height - 1, signers });
    }
    for done in &block.evidence {
        let key = misbehaviour_key(&done.validator, done.height);
        if view.get::<MisbehaviourRecord>(&key)?.is_none() {
            let kind = match done.kind {
                pyralog_consensus_types::app::MisbehaviourKind::DuplicateVote => {
                    MisbehaviourKind::DuplicateVote
                }
                pyralog_consensus_types::app::MisbehaviourKind::DuplicateProposal => {
                    MisbehaviourKind::DuplicateProposal
                }
            };
            tracing::warn!(validator = %done.validator, height = done.height, ?kind, "misbehaviour recorded");
            view.put(key, &MisbehaviourRecord { kind, included_at: block.height });
            recorded.push(done.clone());
        }
    }
    Ok(recorded)
}

/// The end of the block: staking's (on a staking chain), then the validator sets move one
/// height on: the next block's set is the one announced last block, and the one after it takes
/// this block's updates. Returns the updates (effective at height + 2).
pub(super) fn end_block(
    view: &mut Overlay<'_>,
    block: &DecidedBlock,
    at: BlockAt,
    new_misbehaviour: &[Misbehaviour],
) -> Result<Vec<Validator>, StateError> {
    let Some(params) = view.get::<StakingParams>(PARAMS_KEY)? else { return Ok(Vec::new()) };
    let current: Vec<Validator> = view.get(VALIDATORS_KEY)?.unwrap_or_default();
    let stored_next: Option<Vec<Validator>> = view.get(NEXT_VALIDATORS_KEY)?;
    let next = stored_next.clone().unwrap_or_else(|| current.clone());
    let ending =
        BlockEnd { at, last_commit_signers: &block.last_commit_signers, new_misbehaviour, next_set: &next };
    let mut updates = staking::end_block::end_block(view, &params, &ending)?;
    let after = match ValidatorSet::new(next.iter().copied()).and_then(|set| set.with_updates(&updates)) {
        Ok(after) => after.validators().to_vec(),
        Err(err) => {
            // The rules never build such updates; a chain keeps its set rather than halt.
            tracing::error!(%err, "validator updates refused: the set stays as it is");
            updates.clear();
            next.clone()
        }
    };
    if next != current {
        view.put(VALIDATORS_KEY.to_vec(), &next);
    }
    if stored_next.as_ref() != Some(&after) {
        view.put(NEXT_VALIDATORS_KEY.to_vec(), &after);
    }
    Ok(updates)
}
