//! Validator sets: ed25519 keys with voting power, in a canonical order, and the quorum rule.
//!
//! Quorums follow Tendermint: strictly more than two thirds of the total voting power. With
//! n = 3f + 1 equal validators that is 2f + 1, so two quorums always share an honest validator.
//! The arithmetic is exact in 128 bits, so no total power can overflow it. Totals stay within
//! CometBFT's bound, `i64::MAX / 8`: Malachite multiplies the total power by 3 in 64 bits, and
//! proposer priorities (signed 64-bit, starting at `-1.125 * total`) must not overflow.
//! [`ValidatorSet::new`] enforces it for every set.

use pyralog_crypto::{MemberSet, PublicKey, Threshold};
use serde::{Deserialize, Serialize};

/// The quorum of a validator set: more than 2/3 of the voting power.
pub const QUORUM: Threshold = Threshold::more_than(2, 3);

/// The largest total voting power a set may have (CometBFT's `MaxTotalVotingPower`): engines
/// may compute `3 * total` in 64 bits and proposer priorities `-1.125 * total` in signed 64 bits.
pub const MAX_TOTAL_POWER: u64 = (i64::MAX / 8) as u64;

/// One validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// Its signing key.
    pub key: PublicKey,
    /// Its voting power (> 0).
    pub power: u64,
}

/// Why a validator set is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validators.
    #[error("a validator set needs at least one validator")]
    Empty,
    /// A validator with zero power.
    #[error("validator {0} has zero voting power")]
    ZeroPower(PublicKey),
    /// The same key twice.
    #[error("validator {0} appears more than once")]
    Duplicate(PublicKey),
    /// The total power exceeds [`MAX_TOTAL_POWER`].
    #[error("total voting power exceeds {MAX_TOTAL_POWER}")]
    PowerOverflow,
}

/// Sorts `validators` in the canonical order: decreasing power, then increasing key (what a
/// set's hash, its proposer rotation and a staking chain's top-N cut-off all follow).
pub fn sort_canonical(validators: &mut [Validator]) {
    validators.sort_by(|a, b| b.power.cmp(&a.power).then_with(|| a.key.cmp(&b.key)));
}

/// Validators ordered by decreasing power, then by key: the same set always has the same order
/// (and so the same hash and proposer rotation) on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    members: MemberSet,
    total: u64,
}

impl ValidatorSet {
    /// Checks and orders `validators`.
    pub fn new(validators: impl IntoIterator<Item = Validator>) -> Result<Self, ValidatorSetError> {
        let mut validators: Vec<Validator> = validators.into_iter().collect();
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        let mut total: u64 = 0;
        for v in &validators {
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower(v.key));
            }
            total = total
                .checked_add(v.power)
                .filter(|t| *t <= MAX_TOTAL_POWER)
                .ok_or(ValidatorSetError::PowerOverflow)?;
        }
        sort_canonical(&mut validators);
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = validators.iter().find(|v| !seen.insert(v.key)) {
            return Err(ValidatorSetError::Duplicate(twice.key));
        }
        let members = MemberSet::new(validators.iter().map(|v| (v.key, v.power)))
            .expect("non-empty, distinct, non-zero and bounded: checked above");
        Ok(ValidatorSet { validators, members, total })
    }

    /// The validators in canonical order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The total voting power.
    pub fn total_power(&self) -> u64 {
        self.total
    }

    /// The power of `key`, if it is a validator.
    pub fn power_of(&self, key: &PublicKey) -> Option<u64> {
        self.members.weight(key)
    }

    /// Whether `power` is a quorum (more than 2/3 of the total).
    pub fn is_quorum(&self, power: u64) -> bool {
        QUORUM.is_met(power, self.total)
    }

    /// Whether `power` is more than 1/3 of the total: enough that at least one honest validator
    /// is among them (what a light client needs to skip ahead with a trusted set).
    pub fn is_one_third(&self, power: u64) -> bool {
        Threshold::more_than(1, 3).is_met(power, self.total)
    }

    /// The set after ABCI-style `updates`: a validator with power 0 leaves, any other is added
    /// or gets the new power. The result is checked like any set (not empty, bounded).
    pub fn with_updates(&self, updates: &[Validator]) -> Result<ValidatorSet, ValidatorSetError> {
        let mut next: std::collections::BTreeMap<PublicKey, u64> =
            self.validators.iter().map(|v| (v.key, v.power)).collect();
        for update in updates {
            if update.power == 0 {
                next.remove(&update.key);
            } else {
                next.insert(update.key, update.power);
            }
        }
        ValidatorSet::new(next.into_iter().map(|(key, power)| Validator { key, power }))
    }

    /// The set as the quorum-certificate layer sees it.
    pub fn members(&self) -> &MemberSet {
        &self.members
    }
}
