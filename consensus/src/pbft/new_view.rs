//! The NEW-VIEW check every replica runs, deterministically, before it enters a view a primary
//! announces: right primary, VIEW-CHANGEs of distinct validators with more than 2/3 of the power
//! for this height and view, every prepared certificate valid, and the PRE-PREPARE re-proposing
//! the block of the highest prepared view (a fresh payload only when nothing was prepared).

use pyralog_crypto::PublicKey;
use pyralog_crypto::quorum::Signable;

use super::primary;
use super::wire::{NewView, ViewChange};
use crate::validators::ValidatorSet;
use crate::vote::{BlockId, payload_id};

/// What a valid NEW-VIEW proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The block prepared in `view`, the highest prepared view among the VIEW-CHANGEs.
    Reproposed {
        /// The prepared view.
        view: u32,
        /// The block.
        block: BlockId,
    },
    /// Nothing was prepared: a fresh payload (which the app checks like any proposal).
    Fresh,
}

/// Why a NEW-VIEW is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewViewError {
    /// Its PRE-PREPARE is for another height or view than its VIEW-CHANGEs or the replica's.
    #[error(
        "a NEW-VIEW for height {height} view {view} carries a PRE-PREPARE of height {got_height} view {got_view}"
    )]
    WrongPosition {
        /// The height checked.
        height: u64,
        /// The view checked.
        view: u32,
        /// The PRE-PREPARE's height.
        got_height: u64,
        /// The PRE-PREPARE's view.
        got_view: u32,
    },
    /// Not signed by the primary of the view.
    #[error("the NEW-VIEW of view {view} is signed by {got}, not by its primary {expected}")]
    WrongPrimary {
        /// The view.
        view: u32,
        /// The primary.
        expected: PublicKey,
        /// The signer.
        got: PublicKey,
    },
    /// The PRE-PREPARE's signature does not verify.
    #[error("the NEW-VIEW's PRE-PREPARE has a bad signature")]
    BadSignature,
    /// The payload does not hash to the PRE-PREPARE's block.
    #[error("the NEW-VIEW's payload does not hash to its block")]
    PayloadMismatch,
    /// A VIEW-CHANGE that does not hold, or is for another height or view.
    #[error("VIEW-CHANGE of {signer}: {reason}")]
    ViewChange {
        /// Its signer.
        signer: PublicKey,
        /// Why.
        reason: String,
    },
    /// Two VIEW-CHANGEs of one validator.
    #[error("two VIEW-CHANGEs of {0}")]
    DuplicateSigner(PublicKey),
    /// The VIEW-CHANGEs' signers do not hold more than 2/3 of the power.
    #[error("VIEW-CHANGEs of power {signed} of {total}: not more than 2/3")]
    TooLittlePower {
        /// Their power.
        signed: u64,
        /// The set's.
        total: u64,
    },
    /// Two prepared certificates of the same, highest view for different blocks (impossible
    /// with less than a third Byzantine).
    #[error("two prepared certificates of view {0} for different blocks")]
    ConflictingPrepared(u32),
    /// The PRE-PREPARE does not re-propose the highest prepared block.
    #[error("the NEW-VIEW proposes {got} but {expected} was prepared in view {view}")]
    PreparedBlockOmitted {
        /// The highest prepared view.
        view: u32,
        /// Its block.
        expected: BlockId,
        /// The block proposed.
        got: BlockId,
    },
    /// The PRE-PREPARE names a prepared view that the VIEW-CHANGEs do not show.
    #[error("the NEW-VIEW's PRE-PREPARE claims prepared view {claimed}, the VIEW-CHANGEs show {shown:?}")]
    WrongPreparedView {
        /// What the PRE-PREPARE says.
        claimed: i64,
        /// What the VIEW-CHANGEs show.
        shown: Option<u32>,
    },
}

/// Checks `new_view` for `(height, view)` under `validators`. `check_view_change` verifies one
/// stripped VIEW-CHANGE for this height (the engine's, with its cache of verified ones).
pub fn check(
    chain_id: &str,
    height: u64,
    view: u32,
    validators: &ValidatorSet,
    new_view: &NewView,
    check_view_change: &mut dyn FnMut(&ViewChange) -> Result<(), String>,
) -> Result<Selection, NewViewError> {
    let proposal = &new_view.proposal;
    let pp = &proposal.pre_prepare;
    if pp.height != height || pp.view != view {
        return Err(NewViewError::WrongPosition { height, view, got_height: pp.height, got_view: pp.view });
    }
    let expected = primary(validators, view);
    if pp.proposer != expected {
        return Err(NewViewError::WrongPrimary { view, expected, got: pp.proposer });
    }
    if pp.proposer.verify(&pp.header(chain_id).signing_bytes(), &pp.signature).is_err() {
        return Err(NewViewError::BadSignature);
    }
    if payload_id(&proposal.txs) != pp.block {
        return Err(NewViewError::PayloadMismatch);
    }
    let mut signers = std::collections::BTreeSet::new();
    let mut power = 0u64;
    let mut highest: Option<(u32, BlockId)> = None;
    for vc in &new_view.view_changes {
        if vc.height != height || vc.view != view {
            let reason = format!("for height {} view {}", vc.height, vc.view);
            return Err(NewViewError::ViewChange { signer: vc.signer, reason });
        }
        if !signers.insert(vc.signer) {
            return Err(NewViewError::DuplicateSigner(vc.signer));
        }
        check_view_change(vc).map_err(|reason| NewViewError::ViewChange { signer: vc.signer, reason })?;
        power += validators.power_of(&vc.signer).unwrap_or(0);
        if let Some(prepared) = &vc.prepared {
            let this = (prepared.view(), prepared.block());
            match highest {
                Some((v, block)) if v == this.0 && block != this.1 => {
                    return Err(NewViewError::ConflictingPrepared(v));
                }
                Some((v, _)) if v >= this.0 => {}
                _ => highest = Some(this),
            }
        }
    }
    if !validators.is_quorum(power) {
        return Err(NewViewError::TooLittlePower { signed: power, total: validators.total_power() });
    }
    match highest {
        Some((prepared_view, block)) => {
            if pp.block != block {
                return Err(NewViewError::PreparedBlockOmitted {
                    view: prepared_view,
                    expected: block,
                    got: pp.block,
                });
            }
            if pp.prepared_view != i64::from(prepared_view) {
                return Err(NewViewError::WrongPreparedView {
                    claimed: pp.prepared_view,
                    shown: Some(prepared_view),
                });
            }
            Ok(Selection::Reproposed { view: prepared_view, block })
        }
        None if pp.prepared_view != -1 => {
            Err(NewViewError::WrongPreparedView { claimed: pp.prepared_view, shown: None })
        }
        None => Ok(Selection::Fresh),
    }
}
