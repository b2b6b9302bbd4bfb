//! Proof-of-Stake: the validator set and its voting power come from bonded stake, as in Cosmos
//! SDK's x/staking and x/slashing over CometBFT.
//!
//! - [`params`]: the genesis parameters (unbonding period, set size, slashing fractions).
//! - [`records`]: what the state keeps under `staking/` and `slashing/`, and the keys.
//! - `ledger` and `end_block` (feature `store`): the transactions and the end of every block.
//!
//! A validator is created by its operator's account, which bonds a self-delegation and names
//! the consensus key that signs votes; anyone may delegate to it. Voting power is bonded tokens
//! divided by `powerReduction`; the top `maxValidators` eligible validators form the set, and
//! changes take effect two heights after the block that made them (ABCI's rule), so a header's
//! `next_validators_hash` always names the set of the block after it. Unbonded tokens stay
//! locked and slashable until both `unbondingBlocks` and `unbondingTimeMs` have passed. A double
//! sign proved by a block slashes `slashFractionDoubleSign` of the stake the validator had at
//! the infraction (unbonding entries created since included) and tombstones it; missing more
//! than `1 - minSignedPerWindow` of the last `signedBlocksWindow` blocks slashes
//! `slashFractionDowntime` and jails it for `downtimeJailMs`, after which its operator may send
//! `Unjail`.

#[cfg(feature = "store")]
pub(crate) mod end_block;
#[cfg(feature = "store")]
pub(crate) mod genesis;
#[cfg(feature = "store")]
pub(crate) mod ledger;
pub mod params;
pub mod records;

pub use params::{Fraction, StakingParams};
