//! Proof-of-Work arithmetic (issue 27, first part): the seal a miner produces, its hash, compact
//! targets, the work a target stands for, and the ASERT difficulty rule. Pure functions over
//! 256-bit integers, shared by the engine and the SPV light client (no I/O, no runtime).
//!
//! - **Seal**: parent seal hash, height, the block id it seals, time (ms), compact target,
//!   nonce. Its hash is BLAKE3 keyed in the `pow_seal` domain over the fixed encoding
//!   `parent[32] || u64be(height) || block[32] || u64be(time_ms) || u32be(bits) || u64be(nonce)`;
//!   a seal is valid when its hash, read as a big-endian 256-bit number, is at most its target
//!   and its target at most the chain's limit.
//! - **Compact targets** are Bitcoin's `nBits`: a one-byte exponent and a 23-bit mantissa
//!   (`mantissa * 256^(exponent - 3)`); negative or overflowing encodings are refused.
//! - **Work** of a target is `2^256 / (target + 1)` (the expected number of hashes to find a
//!   seal), computed as `!target / (target + 1) + 1` in 256 bits.
//! - **ASERT** (aserti3-2d, Bitcoin Cash's absolutely scheduled exponentially rising targets):
//!   each target follows from an anchor block and the parent's time and height alone, with the
//!   specification's cubic approximation of `2^x` in 16-bit fixed point.

use pyralog_crypto::{Digest, Domain};
use serde::{Deserialize, Serialize};

/// The macro-made integer type (its generated methods carry no docs of their own).
mod wide {
    #![allow(missing_docs, clippy::manual_div_ceil)]
    uint::construct_uint! {
        /// An unsigned 256-bit integer (targets, seal hashes, work).
        pub struct U256(4);
    }
    uint::construct_uint! {
        /// An unsigned 512-bit integer (ASERT's product before its shifts).
        pub(crate) struct U512(8);
    }

    impl From<U256> for U512 {
        fn from(value: U256) -> U512 {
            let mut limbs = [0u64; 8];
            limbs[..4].copy_from_slice(&value.0);
            U512(limbs)
        }
    }

    impl TryFrom<U512> for U256 {
        type Error = ();
        fn try_from(value: U512) -> Result<U256, ()> {
            if value.0[4..].iter().any(|limb| *limb != 0) {
                return Err(());
            }
            Ok(U256([value.0[0], value.0[1], value.0[2], value.0[3]]))
        }
    }
}

pub use wide::U256;
use wide::U512;

/// What a miner seals: the block and where it sits in the chain of seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Seal {
    /// The parent's seal hash (zeros for the first block).
    pub parent: Digest,
    /// The block's height.
    pub height: u64,
    /// The id of the block it seals (the header's block id).
    pub block: Digest,
    /// The block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The compact target it meets.
    pub bits: u32,
    /// The miner's nonce.
    pub nonce: u64,
}

/// Why a seal or a compact target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PowError {
    /// A compact target that encodes a negative number, zero, or more than 256 bits.
    #[error("compact target {0:#010x} is not a positive 256-bit number")]
    BadBits(u32),
    /// The target is easier than the chain allows.
    #[error("target above the chain's limit")]
    AboveLimit,
    /// The seal's hash is above its target.
    #[error("seal hash above its target")]
    HashAboveTarget,
}

/// How far ahead of a node's clock a seal's time may be.
pub const MAX_FUTURE_MS: u64 = 60_000;

/// How many ancestors' times a seal's time must beat the median of.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// A Proof-of-Work chain's rules, from its genesis file: what every seal is checked against, by
/// miners, full nodes and light clients alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PowRules {
    /// The chain's start, ms since the Unix epoch: the ASERT schedule's origin, and the time the
    /// first block must beat.
    pub genesis_time_ms: u64,
    /// The compact target of the first block (ASERT's anchor).
    pub initial_bits: u32,
    /// The compact form of the easiest target allowed.
    pub limit_bits: u32,
    /// The block interval ASERT aims at, seconds.
    pub ideal_block_time_s: u64,
    /// ASERT's half-life, seconds.
    pub half_life_s: u64,
    /// `k`: a block is final once `k` blocks are sealed on top of it.
    pub confirmations: u64,
}

impl PowRules {
    /// Checks the rules make sense: targets decode, the initial one within the limit, positive
    /// times, at least one confirmation.
    pub fn check(&self) -> Result<(), String> {
        let limit = target_from_bits(self.limit_bits).map_err(|e| format!("limitBits: {e}"))?;
        let initial = target_from_bits(self.initial_bits).map_err(|e| format!("initialBits: {e}"))?;
        if initial > limit {
            return Err("initialBits is easier than limitBits".into());
        }
        if self.ideal_block_time_s == 0 || self.half_life_s == 0 {
            return Err("idealBlockTimeS and halfLifeS must be positive".into());
        }
        if self.ideal_block_time_s > 86_400 || self.half_life_s > 365 * 86_400 {
            return Err("idealBlockTimeS is at most a day, halfLifeS at most a year".into());
        }
        if self.confirmations == 0 || self.confirmations > 1_000 {
            return Err("confirmations must be between 1 and 1000".into());
        }
        Ok(())
    }

    /// The easiest target allowed (the limit's encoding is checked by [`PowRules::check`]; an
    /// undecodable one allows nothing).
    pub fn limit(&self) -> U256 {
        target_from_bits(self.limit_bits).unwrap_or_default()
    }

    /// The ASERT rule of the chain.
    pub fn asert(&self) -> Asert {
        Asert {
            ideal_block_time_s: self.ideal_block_time_s as i64,
            half_life_s: self.half_life_s as i64,
            limit: self.limit(),
        }
    }

    /// The compact target the block after `parent` must carry (`None`: the first block). ASERT
    /// anchored at genesis: the first block carries `initial_bits`, and a chain whose block `h`
    /// came at `genesis + h * ideal` keeps that target.
    pub fn next_bits(&self, parent: Option<&Seal>) -> u32 {
        let Some(parent) = parent else { return self.initial_bits };
        let anchor = target_from_bits(self.initial_bits).unwrap_or_default();
        let since_genesis_ms = i128::from(parent.time_ms) - i128::from(self.genesis_time_ms);
        let time_diff_s = since_genesis_ms.div_euclid(1000).clamp(i64::MIN.into(), i64::MAX.into()) as i64;
        let height_diff = i64::try_from(parent.height).unwrap_or(i64::MAX) - 1;
        bits_from_target(self.asert().next_target(anchor, time_diff_s, height_diff))
    }

    /// Checks `seal` as the block after `parent` (`None`: the first block): link, height, the
    /// target ASERT gives, the proof of work. Returns the work it proves. Time rules need the
    /// ancestors and a clock: [`check_time`].
    pub fn check_seal(&self, seal: &Seal, parent: Option<&Seal>) -> Result<U256, SealError> {
        let (parent_hash, parent_height) = parent.map_or((Digest([0; 32]), 0), |p| (p.hash(), p.height));
        if seal.parent != parent_hash {
            return Err(SealError::BrokenLink { height: seal.height });
        }
        if seal.height != parent_height + 1 {
            return Err(SealError::WrongHeight { expected: parent_height + 1, got: seal.height });
        }
        let expected = self.next_bits(parent);
        if seal.bits != expected {
            return Err(SealError::WrongTarget { height: seal.height, expected, got: seal.bits });
        }
        seal.check(self.limit()).map_err(|source| SealError::Work { height: seal.height, source })
    }
}

/// Why a seal does not extend its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// It names another parent.
    #[error("seal at height {height} does not link to its parent's seal")]
    BrokenLink {
        /// Its height.
        height: u64,
    },
    /// Not the height after its parent's.
    #[error("seal at height {got} where {expected} follows the parent")]
    WrongHeight {
        /// The parent's height plus one.
        expected: u64,
        /// The seal's.
        got: u64,
    },
    /// Not the target ASERT gives after the parent.
    #[error("seal at height {height} carries target {got:#010x}, ASERT gives {expected:#010x}")]
    WrongTarget {
        /// Its height.
        height: u64,
        /// What ASERT gives.
        expected: u32,
        /// What it carries.
        got: u32,
    },
    /// The proof of work does not hold.
    #[error("seal at height {height}: {source}")]
    Work {
        /// Its height.
        height: u64,
        /// Why.
        source: PowError,
    },
    /// Not later than the median of its ancestors' times.
    #[error("seal at height {height}: time {time_ms} is not after the median {median_ms} of the last blocks")]
    TooEarly {
        /// Its height.
        height: u64,
        /// Its time.
        time_ms: u64,
        /// The median of the last [`MEDIAN_TIME_SPAN`] ancestors (genesis included).
        median_ms: u64,
    },
    /// Too far ahead of the checking node's clock.
    #[error(
        "seal at height {height}: time {time_ms} is more than {MAX_FUTURE_MS} ms ahead of this clock ({now_ms})"
    )]
    FromFuture {
        /// Its height.
        height: u64,
        /// Its time.
        time_ms: u64,
        /// The checker's clock.
        now_ms: u64,
    },
}

/// The median of the times of a seal's last [`MEDIAN_TIME_SPAN`] ancestors, newest first in
/// `ancestors` (fewer near genesis, whose time then counts as one of them).
pub fn median_time(ancestors: &[u64]) -> u64 {
    let mut times: Vec<u64> = ancestors.iter().copied().take(MEDIAN_TIME_SPAN).collect();
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or(0)
}

/// The time rules: `seal` is later than the median of `ancestors` (their times, newest first,
/// with the genesis time last when fewer than [`MEDIAN_TIME_SPAN`] blocks precede it) and at
/// most [`MAX_FUTURE_MS`] ahead of `now_ms`.
pub fn check_time(seal: &Seal, ancestors: &[u64], now_ms: u64) -> Result<(), SealError> {
    let median_ms = median_time(ancestors);
    if seal.time_ms <= median_ms {
        return Err(SealError::TooEarly { height: seal.height, time_ms: seal.time_ms, median_ms });
    }
    if seal.time_ms > now_ms.saturating_add(MAX_FUTURE_MS) {
        return Err(SealError::FromFuture { height: seal.height, time_ms: seal.time_ms, now_ms });
    }
    Ok(())
}

impl Seal {
    /// The fixed encoding the hash covers (92 bytes).
    pub fn encode(&self) -> [u8; 92] {
        let mut out = [0u8; 92];
        out[..32].copy_from_slice(&self.parent.0);
        out[32..40].copy_from_slice(&self.height.to_be_bytes());
        out[40..72].copy_from_slice(&self.block.0);
        out[72..80].copy_from_slice(&self.time_ms.to_be_bytes());
        out[80..84].copy_from_slice(&self.bits.to_be_bytes());
        out[84..].copy_from_slice(&self.nonce.to_be_bytes());
        out
    }

    /// Parses the fixed encoding ([`Seal::encode`]); anything but 92 bytes is none.
    pub fn decode(bytes: &[u8]) -> Option<Seal> {
        let bytes: &[u8; 92] = bytes.try_into().ok()?;
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Some(Seal {
            parent: Digest(bytes[..32].try_into().expect("32 bytes")),
            height: u64_at(32),
            block: Digest(bytes[40..72].try_into().expect("32 bytes")),
            time_ms: u64_at(72),
            bits: u32::from_be_bytes(bytes[80..84].try_into().expect("4 bytes")),
            nonce: u64_at(84),
        })
    }

    /// The seal hash (`pow_seal` domain).
    pub fn hash(&self) -> Digest {
        Domain::PowSeal.hash(&self.encode())
    }

    /// Checks the proof of work: the target decodes, is at most `limit`, and the hash is at
    /// most the target. Returns the work it proves.
    pub fn check(&self, limit: U256) -> Result<U256, PowError> {
        let target = target_from_bits(self.bits)?;
        if target > limit {
            return Err(PowError::AboveLimit);
        }
        if U256::from_big_endian(&self.hash().0) > target {
            return Err(PowError::HashAboveTarget);
        }
        Ok(work(target))
    }
}

/// The target a compact `bits` encodes.
pub fn target_from_bits(bits: u32) -> Result<U256, PowError> {
    let exponent = bits >> 24;
    let mantissa = bits & 0x007f_ffff;
    // The sign bit, a zero mantissa and targets past 256 bits are refused.
    if bits & 0x0080_0000 != 0 || mantissa == 0 {
        return Err(PowError::BadBits(bits));
    }
    let target = if exponent <= 3 {
        U256::from(mantissa >> (8 * (3 - exponent)))
    } else {
        let shift = 8 * (exponent - 3);
        let significant = 32 - mantissa.leading_zeros();
        if shift + significant > 256 {
            return Err(PowError::BadBits(bits));
        }
        U256::from(mantissa) << shift
    };
    if target.is_zero() {
        return Err(PowError::BadBits(bits));
    }
    Ok(target)
}

/// The compact form of `target` (rounded down to its 23-bit mantissa, as Bitcoin rounds).
pub fn bits_from_target(target: U256) -> u32 {
    let mut size = target.bits().div_ceil(8) as u32;
    let mut mantissa = if size <= 3 {
        target.low_u64() << (8 * (3 - size))
    } else {
        (target >> (8 * (size - 3) as usize)).low_u64()
    } as u32;
    // A mantissa with its top bit set would read as negative: one more byte of exponent.
    if mantissa & 0x0080_0000 != 0 {
        mantissa >>= 8;
        size += 1;
    }
    (size << 24) | mantissa
}

/// The work `target` stands for: `2^256 / (target + 1)`.
pub fn work(target: U256) -> U256 {
    if target == U256::MAX {
        return U256::one();
    }
    (!target / (target + U256::one())) + U256::one()
}

/// ASERT's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asert {
    /// The target block interval, seconds.
    pub ideal_block_time_s: i64,
    /// The half-life: a schedule this many seconds behind halves (or ahead doubles) the target.
    pub half_life_s: i64,
    /// The easiest target allowed.
    pub limit: U256,
}

impl Asert {
    /// The target of the block after a parent that is `height_diff` blocks above the anchor and
    /// `time_diff_s` seconds after the anchor's parent (aserti3-2d): the anchor's target scaled
    /// by `2^((time_diff - ideal * (height_diff + 1)) / half_life)`, at most the limit, at least 1.
    pub fn next_target(&self, anchor_target: U256, time_diff_s: i64, height_diff: i64) -> U256 {
        let behind =
            i128::from(time_diff_s) - i128::from(self.ideal_block_time_s) * (i128::from(height_diff) + 1);
        // 16.16 fixed point. The division truncates toward zero (C's `/`, as the reference
        // implementation that made the published vectors does); the split into whole shifts and
        // the fraction is an arithmetic shift (floor).
        let exponent = (behind * 65_536) / i128::from(self.half_life_s.max(1));
        let shifts = exponent.div_euclid(65_536);
        let frac = exponent.rem_euclid(65_536) as u128;
        let factor = 65_536
            + ((195_766_423_245_049 * frac
                + 971_821_376 * frac * frac
                + 5_127 * frac * frac * frac
                + (1 << 47))
                >> 48);
        // In 512 bits: anchor * factor overflows 256 when the anchor is within 2^17 of the top
        // (easy targets, as in tests and the simulator); Bitcoin Cash's targets never are.
        let mut target = U512::from(anchor_target) * U512::from(factor as u64);
        if shifts < 0 {
            let right = (-shifts) as usize;
            target = if right >= 512 { U512::zero() } else { target >> right };
        } else {
            let left = shifts as usize;
            if left >= 512 || target.leading_zeros() < left as u32 {
                return self.limit;
            }
            target <<= left;
        }
        target >>= 16;
        if target.is_zero() {
            return U256::one();
        }
        let Ok(target) = U256::try_from(target) else { return self.limit };
        target.min(self.limit)
    }
}
