//! The SPV light client of a Proof-of-Work chain: it trusts the genesis's work rules (and, if
//! given, a seal trusted out of band), checks every seal servers send (link, height, the target
//! ASERT gives after its parent, hash under target, later than the median of the last 11 blocks,
//! at most a minute ahead of its clock), sums work, and keeps the heaviest chain any server
//! showed. A header is final once `k` seals of that chain are on top of it; then the record path
//! (anchored checkpoint, state proofs) works as for the BFT engines.
//!
//! What that guarantees: a server that lies about a final header must out-mine the chain the
//! client saw by `k` blocks' work, or show a chain heavier than any honest server's. It does not
//! guarantee the client saw the heaviest chain: ask several servers.

use pyralog_consensus_types::pow::{MEDIAN_TIME_SPAN, PowRules, Seal, SealError, U256, check_time};
use serde::{Deserialize, Serialize};

/// Why the client refused what a server sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkLightError {
    /// A seal that does not extend the one before it under the rules, or breaks a time rule.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Seals that do not start right after what the client holds.
    #[error("seals start at height {got}, the client can extend only from {from} to {tip}")]
    Detached {
        /// The lowest height the client can take a fork from.
        from: u64,
        /// Its tip.
        tip: u64,
        /// The first seal's height.
        got: u64,
    },
    /// A header that is not `k` seals deep in the client's chain.
    #[error("height {height} is not final: the client's chain is at {tip}, and k = {confirmations}")]
    NotFinal {
        /// The height.
        height: u64,
        /// The client's tip.
        tip: u64,
        /// `k`.
        confirmations: u64,
    },
    /// A header whose block is not the one the client's chain sealed at its height.
    #[error("the header at height {height} is not the block the client's chain sealed there")]
    NotOnChain {
        /// The height.
        height: u64,
    },
}

/// The chain of seals the client follows: from genesis, every seal it verified (92 bytes each;
/// Bitcoin's SPV clients keep every header too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealChain {
    /// The rules, from the genesis file.
    pub rules: PowRules,
    /// The verified seals, from height 1.
    pub seals: Vec<Seal>,
    /// The height up to which the client treats blocks as final ([`SealChain::settle`]): no
    /// fork below it is taken.
    #[serde(default)]
    pub settled: u64,
}

impl SealChain {
    /// A client that trusts only the genesis.
    pub fn genesis(rules: PowRules) -> SealChain {
        SealChain { rules, seals: Vec::new(), settled: 0 }
    }

    /// Its tip's height (0: genesis).
    pub fn height(&self) -> u64 {
        self.seals.len() as u64
    }

    /// The seal at `height`.
    pub fn seal_at(&self, height: u64) -> Option<&Seal> {
        self.seals.get(usize::try_from(height.checked_sub(1)?).ok()?)
    }

    /// The times of `ancestors` (newest first), at most the median's span, the genesis's last
    /// when fewer blocks precede.
    fn times_of<'a>(&self, ancestors: impl Iterator<Item = &'a Seal>) -> Vec<u64> {
        let mut times: Vec<u64> = ancestors.take(MEDIAN_TIME_SPAN).map(|s| s.time_ms).collect();
        if times.len() < MEDIAN_TIME_SPAN {
            times.push(self.rules.genesis_time_ms);
        }
        times
    }

    /// Checks `seals` (consecutive, from a height above the settled one, up to right after the
    /// tip) against the rules on top of the client's chain below them, at `now_ms`. When the
    /// result is heavier than the client's chain it becomes the chain (ties keep the chain seen
    /// first); returns whether it did. Offer every server's seals, then [`SealChain::settle`]:
    /// a lighter chain offered first is replaced by a heavier one from any height not settled.
    pub fn offer(&mut self, seals: &[Seal], now_ms: u64) -> Result<bool, WorkLightError> {
        let Some(first) = seals.first() else { return Ok(false) };
        let tip = self.height();
        let from = self.settled + 1;
        if first.height < from || first.height > tip + 1 {
            return Err(WorkLightError::Detached { from, tip, got: first.height });
        }
        // Below `base` both chains are the client's: only what differs is checked and weighed.
        let base = (first.height - 1) as usize;
        let mut verified: Vec<Seal> = Vec::with_capacity(seals.len());
        for seal in seals {
            self.rules.check_seal(seal, verified.last().or(self.seals[..base].last()))?;
            let ancestors = verified.iter().rev().chain(self.seals[..base].iter().rev());
            check_time(seal, &self.times_of(ancestors), now_ms)?;
            verified.push(*seal);
        }
        if work_of(&verified) > work_of(&self.seals[base..]) {
            self.seals.truncate(base);
            self.seals.extend(verified);
            return Ok(true);
        }
        Ok(false)
    }

    /// Treats the blocks `k` seals deep as final: no later offer reverts them.
    pub fn settle(&mut self) {
        self.settled = self.settled.max(self.height().saturating_sub(self.rules.confirmations));
    }

    /// The seal at `height` if it is final in the client's chain (settled: `k` seals on top
    /// when the client last settled).
    pub fn final_seal(&self, height: u64) -> Result<&Seal, WorkLightError> {
        let tip = self.height();
        let confirmations = self.rules.confirmations;
        match self.seal_at(height) {
            Some(seal) if height <= self.settled => Ok(seal),
            _ => Err(WorkLightError::NotFinal { height, tip, confirmations }),
        }
    }

    /// Checks that the header whose block id is `block` at `height` is final in the client's
    /// chain.
    pub fn check_final(&self, height: u64, block: &pyralog_crypto::Digest) -> Result<(), WorkLightError> {
        if self.final_seal(height)?.block != *block {
            return Err(WorkLightError::NotOnChain { height });
        }
        Ok(())
    }

    /// The last settled block as a trusted head (for checks made under one header: state and
    /// contract proofs), on the chain and genesis of `genesis_head`; none before a block is
    /// final. Its header's state root is the state `k + 1` blocks below it.
    pub fn settled_head(
        &self,
        genesis_head: &crate::chain::TrustedHead,
    ) -> Option<crate::chain::TrustedHead> {
        let seal = self.seal_at(self.settled)?;
        Some(crate::chain::TrustedHead {
            height: seal.height,
            block_id: seal.block,
            time_ms: seal.time_ms,
            ..genesis_head.clone()
        })
    }

    /// The state version the header at `height` commits to (`k` blocks below its parent).
    pub fn state_version_at(&self, height: u64) -> u64 {
        pyralog_chain::block::committed_state_version(height, Some(self.rules.confirmations))
    }
}

/// The work `seals` prove together.
fn work_of(seals: &[Seal]) -> U256 {
    seals.iter().fold(U256::zero(), |sum, seal| {
        let target = pyralog_consensus_types::pow::target_from_bits(seal.bits);
        sum.saturating_add(target.map_or(U256::zero(), pyralog_consensus_types::pow::work))
    })
}
