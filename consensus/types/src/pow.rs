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

/// The macro-made integer type (its generated methods carry no docs of their own).
mod wide {
    #![allow(missing_docs, clippy::manual_div_ceil)]
    uint::construct_uint! {
        /// An unsigned 256-bit integer (targets, seal hashes, work).
        pub struct U256(4);
    }
}

pub use wide::U256;

/// What a miner seals: the block and where it sits in the chain of seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        // 16.16 fixed point; floor division, as the specification's arithmetic shift does.
        let exponent = (behind * 65_536).div_euclid(i128::from(self.half_life_s.max(1)));
        let shifts = exponent.div_euclid(65_536);
        let frac = exponent.rem_euclid(65_536) as u128;
        let factor = 65_536
            + ((195_766_423_245_049 * frac
                + 971_821_376 * frac * frac
                + 5_127 * frac * frac * frac
                + (1 << 47))
                >> 48);
        // anchor * factor fits 256 bits when the anchor is below the limit (< 2^224 in practice);
        // past it, the limit.
        let Some(mut target) = anchor_target.checked_mul(U256::from(factor as u64)) else {
            return self.limit;
        };
        if shifts < 0 {
            let right = (-shifts) as usize;
            target = if right >= 256 { U256::zero() } else { target >> right };
        } else {
            let left = shifts as usize;
            if left >= 256 || target.leading_zeros() < left as u32 {
                return self.limit;
            }
            target <<= left;
        }
        target >>= 16;
        if target.is_zero() {
            return U256::one();
        }
        target.min(self.limit)
    }
}
