//! What staking and slashing keep in the authenticated state, and under which keys (all under
//! `staking/` and `slashing/`, so each value has a state proof like any other).

use pyralog_crypto::PublicKey;
use serde::{Deserialize, Serialize};

/// The parameters (written at genesis; a chain without them does not stake).
pub const PARAMS_KEY: &[u8] = b"staking/params";
/// The operators of every validator candidate, in creation order (at most
/// [`super::params::MAX_CANDIDATES`]).
pub const CANDIDATES_KEY: &[u8] = b"staking/candidates";

/// Longest validator description.
pub const MAX_DESCRIPTION_BYTES: usize = 256;

/// Most validators one delegator's index lists (delegations beyond are refused).
pub const MAX_DELEGATIONS_PER_DELEGATOR: usize = 100;

/// A validator (candidate), keyed by its operator: the account that created it, bonds for it and
/// may edit or unjail it. Its consensus key is what signs blocks and what the set names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorRecord {
    /// The operator's account key.
    pub operator: PublicKey,
    /// The key that signs votes (in the validator set).
    pub consensus_key: PublicKey,
    /// Tokens bonded to it (self-bond and delegations, less slashes).
    pub tokens: u64,
    /// Delegator shares issued; a delegation's tokens are its shares' part of `tokens`.
    pub shares: u128,
    /// Commission on rewards, in basis points.
    pub commission_bps: u16,
    /// The highest commission it may ever set, in basis points (fixed at creation).
    pub max_commission_bps: u16,
    /// Free text (a name, a website).
    pub description: String,
    /// When jailed: the time (ms) from which it may unjail ([`u64::MAX`] once tombstoned).
    pub jailed_until_ms: Option<u64>,
    /// Punished for a double sign: never in the set again.
    pub tombstoned: bool,
    /// The height it was created at.
    pub created_at: u64,
}

impl ValidatorRecord {
    /// Whether it may be in the set (not jailed, not tombstoned).
    pub fn eligible(&self) -> bool {
        self.jailed_until_ms.is_none() && !self.tombstoned
    }

    /// Its status as operators see it: `tombstoned`, `jailed`, `bonded` (its consensus key is in
    /// `set`, the set of the next block) or `unbonded`.
    pub fn status(&self, set: &[pyralog_consensus_types::Validator]) -> &'static str {
        match (self.tombstoned, self.jailed_until_ms) {
            (true, _) => "tombstoned",
            (false, Some(_)) => "jailed",
            _ if set.iter().any(|v| v.key == self.consensus_key) => "bonded",
            _ => "unbonded",
        }
    }

    /// The tokens `shares` of it are worth (rounded down).
    pub fn tokens_of(&self, shares: u128) -> u64 {
        if self.shares == 0 {
            return 0;
        }
        (mul_div(shares, u128::from(self.tokens), self.shares)).min(u128::from(self.tokens)) as u64
    }
}

/// `a * b / c` in 128 bits, exact when the product fits (it does for u64-sized tokens and
/// shares issued from them) and saturating otherwise.
pub(crate) fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    match a.checked_mul(b) {
        Some(product) => product / c,
        None => u128::MAX / c,
    }
}

/// A delegator's stake in one validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// Its shares of the validator's tokens.
    pub shares: u128,
}

/// Tokens on their way out of a validator: locked (and slashable) until both the height and
/// the time have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnbondingEntry {
    /// The height the unbond happened at (slashes of earlier infractions reach it).
    pub creation_height: u64,
    /// The first height it may mature at.
    pub completion_height: u64,
    /// The first block time (ms) it may mature at.
    pub completion_time_ms: u64,
    /// The tokens it started with.
    pub initial_balance: u64,
    /// The tokens it holds now (less slashes).
    pub balance: u64,
}

impl UnbondingEntry {
    /// Whether it matures in a block at `height` and `time_ms`.
    pub fn is_mature(&self, height: u64, time_ms: u64) -> bool {
        height >= self.completion_height && time_ms >= self.completion_time_ms
    }
}

/// A validator's liveness record (Cosmos's `ValidatorSigningInfo`), keyed by consensus key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningInfo {
    /// The height its window started counting at.
    pub start_height: u64,
    /// Blocks counted since then (the window's cursor).
    pub index_offset: u64,
    /// Missed blocks in the window.
    pub missed: u64,
    /// One bit per slot of the window: set when that block was missed.
    pub missed_bits: Vec<u8>,
}

impl SigningInfo {
    /// A fresh record counting from `height` over a window of `window` blocks.
    pub fn new(height: u64, window: u64) -> SigningInfo {
        SigningInfo {
            start_height: height,
            index_offset: 0,
            missed: 0,
            missed_bits: vec![0; window.div_ceil(8) as usize],
        }
    }
}

fn keyed(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

/// `staking/validator/<operator>`: a [`ValidatorRecord`].
pub fn validator_key(operator: &PublicKey) -> Vec<u8> {
    keyed(b"staking/validator/", &[operator.as_bytes()])
}

/// `staking/consensus/<key>`: the operator whose validator signs with `key`.
pub fn consensus_key_index(key: &PublicKey) -> Vec<u8> {
    keyed(b"staking/consensus/", &[key.as_bytes()])
}

/// `staking/delegation/<delegator><operator>`: a [`Delegation`].
pub fn delegation_key(delegator: &PublicKey, operator: &PublicKey) -> Vec<u8> {
    keyed(b"staking/delegation/", &[delegator.as_bytes(), operator.as_bytes()])
}

/// `staking/delegations/<delegator>`: the operators `delegator` delegates to.
pub fn delegations_of_key(delegator: &PublicKey) -> Vec<u8> {
    keyed(b"staking/delegations/", &[delegator.as_bytes()])
}

/// `staking/unbonding/<operator><delegator>`: the pair's [`UnbondingEntry`]s, oldest first.
pub fn unbonding_key(operator: &PublicKey, delegator: &PublicKey) -> Vec<u8> {
    keyed(b"staking/unbonding/", &[operator.as_bytes(), delegator.as_bytes()])
}

/// `staking/unbonding_from/<operator>`: delegators with unbonding entries from `operator` (what
/// a slash walks).
pub fn unbonding_from_key(operator: &PublicKey) -> Vec<u8> {
    keyed(b"staking/unbonding_from/", &[operator.as_bytes()])
}

/// `staking/matures/<height>`: the (operator, delegator) pairs with an entry due at `height`.
pub fn matures_key(height: u64) -> Vec<u8> {
    keyed(b"staking/matures/", &[&height.to_be_bytes()])
}

/// `slashing/info/<consensus key>`: a [`SigningInfo`].
pub fn signing_info_key(key: &PublicKey) -> Vec<u8> {
    keyed(b"slashing/info/", &[key.as_bytes()])
}
